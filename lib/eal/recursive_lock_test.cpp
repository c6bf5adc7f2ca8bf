#include "vfiokit/eal/recursive_lock.hpp"

#include <gtest/gtest.h>

#include <mutex>
#include <thread>
#include <vector>

namespace vfiokit {
namespace {

TEST(RecursiveLock, TheOwnerLocksAgainAndOthersWait) {
    RecursiveLock l;
    std::unique_lock outer(l);
    {
        std::lock_guard inner(l);  // the same thread: no deadlock
        bool other_got_it = true;
        std::thread t([&] { other_got_it = l.try_lock(); });
        t.join();
        EXPECT_FALSE(other_got_it);
    }
    // Still held once: another thread still cannot take it.
    bool other_got_it = true;
    std::thread t([&] { other_got_it = l.try_lock(); });
    t.join();
    EXPECT_FALSE(other_got_it);
    outer.unlock();
    std::thread u([&] {
        other_got_it = l.try_lock();
        if (other_got_it)
            l.unlock();
    });
    u.join();
    EXPECT_TRUE(other_got_it);
}

// Threads that contend (and so sleep in the futex) still exclude each
// other: a plain counter incremented under the lock comes out exact.
TEST(RecursiveLock, ContendingThreadsExcludeEachOther) {
    RecursiveLock l;
    long counter = 0;
    constexpr int kThreads = 4, kEach = 20000;
    std::vector<std::thread> ts;
    for (int i = 0; i < kThreads; ++i)
        ts.emplace_back([&] {
            for (int n = 0; n < kEach; ++n) {
                std::lock_guard g(l);
                std::lock_guard again(l);
                ++counter;
            }
        });
    for (auto& t : ts)
        t.join();
    EXPECT_EQ(counter, long{kThreads} * kEach);
}

}  // namespace
}  // namespace vfiokit

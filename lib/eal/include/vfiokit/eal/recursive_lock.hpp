/// \file
/// The type of the EAL lock (vfio::Vfio::control_lock()): a recursive mutex
/// whose uncontended lock and unlock are one atomic instruction each.
///
/// The EAL lock is taken on every Container::map and unmap, calls that cost
/// little more than the ioctl they wrap (doc/benchmarks.md); glibc's
/// recursive pthread mutex, behind std::recursive_mutex, spends about 75
/// instructions on a lock/unlock pair there, this one about 25.
///
/// A thread is known by its thread pointer, read inline where the compiler
/// can (GCC on x86-64: one load, where glibc's pthread_self() is a call
/// into libc that, in the lab's emulated guests, costs more than the lock
/// itself), else by pthread_self().
///
/// Semantics are std::recursive_mutex's: the owning thread may lock again
/// and must unlock as often; unlocking from another thread, or one not
/// holding it, is undefined. It meets the Lockable requirements, so
/// std::lock_guard, std::unique_lock and std::scoped_lock take it. A thread
/// that finds it held sleeps in the kernel (a futex, through
/// std::atomic::wait) rather than spinning.
///
/// Thread-safety: that is its purpose; it is not copyable or movable.
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstdint>

namespace vfiokit {

/// A recursive mutex (see the file's description).
class RecursiveLock {
public:
    RecursiveLock() = default;
    RecursiveLock(const RecursiveLock&) = delete;
    RecursiveLock& operator=(const RecursiveLock&) = delete;

    /// Blocks until this thread holds the lock; at once when it already does.
    void lock() {
        const pthread_t self = self_id();
        if (owner_.load(std::memory_order_relaxed) == self) {
            ++depth_;
            return;
        }
        int free = kFree;
        if (!state_.compare_exchange_strong(free, kHeld, std::memory_order_acquire,
                                            std::memory_order_relaxed))
            wait_for_it();
        owner_.store(self, std::memory_order_relaxed);
        depth_ = 1;
    }
    /// Takes the lock if no other thread holds it.
    [[nodiscard]] bool try_lock() {
        const pthread_t self = self_id();
        if (owner_.load(std::memory_order_relaxed) == self) {
            ++depth_;
            return true;
        }
        int free = kFree;
        if (!state_.compare_exchange_strong(free, kHeld, std::memory_order_acquire,
                                            std::memory_order_relaxed))
            return false;
        owner_.store(self, std::memory_order_relaxed);
        depth_ = 1;
        return true;
    }
    /// Undoes one lock(); the last one lets the next thread in.
    void unlock() {
        if (--depth_ != 0)
            return;
        owner_.store(pthread_t{}, std::memory_order_relaxed);
        if (state_.exchange(kFree, std::memory_order_release) == kWaited)
            state_.notify_one();
    }

private:
    // This thread's identity: unique among live threads, the same for the
    // life of the thread, never pthread_t{} (the value of a free lock).
    // x86-64 glibc's pthread_self() is the thread pointer too.
    static pthread_t self_id() {
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
        return reinterpret_cast<pthread_t>(__builtin_thread_pointer());
#else
        return ::pthread_self();
#endif
    }

    // The contended path: mark the lock as waited for and sleep until it is
    // free (a futex wait), so the unlocking thread knows to wake one.
    void wait_for_it() {
        while (state_.exchange(kWaited, std::memory_order_acquire) != kFree)
            state_.wait(kWaited, std::memory_order_relaxed);
    }

    static constexpr int kFree = 0, kHeld = 1, kWaited = 2;
    std::atomic<int> state_{kFree};
    // Only the owner writes its own id here, and only while it holds the
    // lock, so a thread reading its own id knows it is the owner; any other
    // value (another thread's, or none) means it is not.
    std::atomic<pthread_t> owner_{};
    std::uint32_t depth_ = 0;  // written only by the owner
};

}  // namespace vfiokit

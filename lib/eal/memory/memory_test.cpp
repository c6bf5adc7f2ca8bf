// Host tests of EAL memory with 4 KiB pages (--no-huge): the host has no
// hugepages reserved, and tests must not change that. Hugepage-backed
// memory is tested in the lab (memory_lab_test).
#include "vfiokit/eal/memory.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>

#include "fake_sysfs.hpp"

namespace vfiokit::eal {
namespace {

MemoryOptions small() {
    MemoryOptions o;
    o.no_huge = true;
    o.window = 64ULL << 20;
    return o;
}

TEST(Hugepages, DiscoversSizesCountsAndMounts) {
    testing::FakeSysfs fs;
    fs.file("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", "128\n");
    fs.file("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages", "100\n");
    fs.file("/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages", "0\n");
    fs.file("/sys/kernel/mm/hugepages/hugepages-1048576kB/free_hugepages", "0\n");
    fs.file("/proc/meminfo", "MemTotal: 1 kB\nHugepagesize:       2048 kB\n");
    fs.file("/proc/mounts", "nodev /dev/hugepages hugetlbfs rw,relatime 0 0\n"
                            "nodev /mnt/huge1g hugetlbfs rw,pagesize=1G 0 0\n");
    auto pools = discover_hugepages(fs.root());
    ASSERT_EQ(pools.size(), 2u);
    // list() is sorted: "hugepages-1048576kB" first.
    EXPECT_EQ(pools[0].page_size, 1ULL << 30);
    EXPECT_EQ(pools[0].mount, "/mnt/huge1g");
    EXPECT_EQ(pools[1].page_size, 2ULL << 20);
    EXPECT_EQ(pools[1].total, 128u);
    EXPECT_EQ(pools[1].free, 100u);
    EXPECT_EQ(pools[1].mount, "/dev/hugepages");
}

TEST(Memory, NoHugepagesIsExplained) {
    testing::FakeSysfs fs;
    MemoryOptions o;
    o.sysroot = fs.root().path("");
    auto m = Memory::create(o);
    ASSERT_FALSE(m);
    EXPECT_NE(m.error().message().find("--no-huge"), std::string::npos) << m.error().message();
    fs.file("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", "0\n");
    auto z = Memory::create(o);
    ASSERT_FALSE(z);
    EXPECT_NE(z.error().message().find("nr_hugepages"), std::string::npos) << z.error().message();
}

TEST(Memory, SegmentsAreUsableAndTranslateInConstantTime) {
    auto m = Memory::create(small());
    ASSERT_TRUE(m) << m.error().message();
    auto a = (*m)->add(10000);
    ASSERT_TRUE(a) << a.error().message();
    EXPECT_EQ((*a)->len, 12288u);  // rounded to pages
    EXPECT_EQ((*a)->va, (*m)->window_base());
    std::memset(reinterpret_cast<void*>((*a)->va), 0xab, (*a)->len);
    auto* p = reinterpret_cast<const char*>((*a)->va) + 5000;
    EXPECT_EQ((*m)->virt2iova(p), (*a)->va + 5000);  // va mode: IOVA = VA
    EXPECT_FALSE((*m)->virt2iova(p + 20000));
    EXPECT_FALSE((*m)->virt2iova(&m));
    EXPECT_GE((*a)->fd, 0);
    EXPECT_EQ((*a)->backing, "memfd");
    // The window is reused after removal.
    auto b = (*m)->add(4096);
    ASSERT_TRUE(b);
    ASSERT_TRUE((*m)->remove(*a));
    EXPECT_FALSE((*m)->virt2iova(p));
    auto c = (*m)->add(8192);
    ASSERT_TRUE(c);
    EXPECT_EQ((*c)->va, (*m)->window_base());
}

TEST(Memory, WindowFull) {
    auto m = Memory::create(small());
    ASSERT_TRUE(m);
    auto big = (*m)->add(65ULL << 20);
    ASSERT_FALSE(big);
    EXPECT_EQ(big.error().err(), ENOSPC);
}

struct FailingListener : MemoryListener {
    Result<void> on_add(Segment&) override { return fail(ENOMEM, "map DMA"); }
    Result<void> on_remove(const Segment&) override { return {}; }
};

TEST(Memory, ListenerFailureRollsBack) {
    FailingListener l;  // outlives the memory, whose destructor tells it of each removal
    auto m = Memory::create(small());
    ASSERT_TRUE(m);
    (*m)->set_listener(&l);
    auto a = (*m)->add(4096);
    ASSERT_FALSE(a);
    EXPECT_EQ(a.error().err(), ENOMEM);
    EXPECT_TRUE((*m)->segments().empty());
    EXPECT_FALSE((*m)->virt2iova(reinterpret_cast<void*>((*m)->window_base())));
}

// Places every segment at IOVAs of its own choice, as the container's IOVA
// policy does when IOVA = VA does not fit.
struct PlacingListener : MemoryListener {
    std::uint64_t next = 0x200000;
    Result<void> on_add(Segment& s) override {
        if (s.iova != s.va)
            return fail(EINVAL, "on_add must see IOVA = VA first");
        s.iova = next;
        next += s.len;
        return {};
    }
    Result<void> on_remove(const Segment&) override { return {}; }
};

TEST(Memory, TheListenerPlacesTheIovaAndSetIovaMovesIt) {
    PlacingListener l;  // outlives the memory, whose destructor tells it of each removal
    auto m = Memory::create(small());
    ASSERT_TRUE(m);
    (*m)->set_listener(&l);
    auto a = (*m)->add(8192);
    ASSERT_TRUE(a) << a.error().message();
    auto b = (*m)->add(4096);
    ASSERT_TRUE(b) << b.error().message();
    EXPECT_EQ((*a)->iova, 0x200000u);
    EXPECT_EQ((*b)->iova, 0x202000u);
    const auto* pa = reinterpret_cast<const char*>((*a)->va);
    EXPECT_EQ((*m)->virt2iova(pa + 4100), 0x200000u + 4100);
    EXPECT_EQ((*m)->virt2iova(reinterpret_cast<const char*>((*b)->va) + 7), 0x202007u);
    // Moved: every page of the segment follows, the other segment stays.
    ASSERT_TRUE((*m)->set_iova(*a, 0x7000000));
    EXPECT_EQ((*a)->iova, 0x7000000u);
    EXPECT_EQ((*m)->virt2iova(pa + 4100), 0x7000000u + 4100);
    EXPECT_EQ((*m)->virt2iova(reinterpret_cast<const char*>((*b)->va) + 7), 0x202007u);
    EXPECT_FALSE((*m)->set_iova(*a, 0x7000010));  // unaligned
    Segment stranger;
    EXPECT_FALSE((*m)->set_iova(&stranger, 0x7000000));
}

TEST(Memory, ControlOperationsTakeTheGivenLock) {
    auto m = Memory::create(small());
    ASSERT_TRUE(m);
    RecursiveLock lock;
    (*m)->set_control_lock(&lock);
    auto a = (*m)->add(4096);
    ASSERT_TRUE(a);
    // Another thread holding the lock keeps add() and segments() waiting;
    // virt2iova does not wait.
    std::atomic<int> stage{0};
    std::thread holder([&] {
        std::lock_guard g(lock);
        stage = 1;
        while (stage != 2)
            std::this_thread::yield();
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        stage = 3;
    });
    while (stage != 1)
        std::this_thread::yield();
    EXPECT_TRUE((*m)->virt2iova(reinterpret_cast<const void*>((*a)->va)));
    stage = 2;
    auto b = (*m)->add(4096);
    EXPECT_EQ(stage.load(), 3) << "add() ran while another thread held the control lock";
    holder.join();
    ASSERT_TRUE(b);
}

TEST(Memory, PaModeNeedsHugepages) {
    MemoryOptions o = small();
    o.iova_mode = IovaMode::pa;
    auto m = Memory::create(o);
    ASSERT_FALSE(m);
    EXPECT_NE(m.error().message().find("hugepages"), std::string::npos);
}

TEST(Memory, ParseIovaMode) {
    EXPECT_EQ(*parse_iova_mode("va"), IovaMode::va);
    EXPECT_EQ(*parse_iova_mode("pa"), IovaMode::pa);
    EXPECT_FALSE(parse_iova_mode("xx"));
}

}  // namespace
}  // namespace vfiokit::eal

// Every call EAL memory makes, failed in turn (the syscall seam's
// FaultInjector, on the real kernel): creating the window, adding and
// removing segments, and a secondary's attach. After each failure nothing
// is left: no fd, no mapping in the window or of a backing, no hugepage
// file, no hugepage held; and the memory works again at once (the same
// addresses are handed out). Once per backing: memfd of 4 KiB pages, memfd
// of hugepages, hugetlbfs file. The host has no hugepages reserved (tests
// never reserve any), so there the hugepage backings are skipped with the
// reason; the lab (memory_fault_lab_test, run by the memory jobs) requires
// them, and adds the EAL's own memory, mapped into the default container in
// each VFIO mode, where a failed DMA map must roll back too.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "fault_util.hpp"
#include "vfiokit/eal/eal.hpp"
#include "vfiokit/eal/memory.hpp"

namespace vfiokit::eal {
namespace {

using testing::Backing;
using testing::describe;
using testing::every_call;
using testing::expect_error_names;
using testing::fail_in_turn;
using testing::Fault;
using testing::Leftovers;
using vfio::Call;

constexpr std::uint64_t kBase = 0x320000000000ULL;

class MemoryFault : public ::testing::TestWithParam<Backing> {
protected:
    void SetUp() override {
        opts = testing::memory_options(GetParam(), kBase, 8, why_not);
        seg = GetParam() == Backing::memfd_4k ? 3 * 4096 : 2 * testing::kHuge;
    }
    [[nodiscard]] Leftovers now() const {
        return Leftovers::now(opts.base_virtaddr, opts.window, opts.huge_dir);
    }
    MemoryOptions opts;
    std::string why_not;
    std::uint64_t seg = 0;
};

TEST_P(MemoryFault, CreateLeavesNothing) {
    FAULT_REQUIRE_BACKING(why_not);
    const std::string what = "Memory::create (" + std::string(name_of(GetParam())) + ")";
    const auto plan = every_call(what, {Call::mmap, Call::open, Call::close},
                                 [&] { ASSERT_TRUE(Memory::create(opts)); });
    ASSERT_FALSE(plan.empty());
    Result<std::unique_ptr<Memory>> m;
    fail_in_turn(what, plan,
                 {.before = [&] { return now(); },
                  .run = [&](const Fault&, const vfio::FaultInjector&) { m = Memory::create(opts); },
                  .check =
                      [&](const Fault& f) {
                          ASSERT_FALSE(m) << "the failed call went unnoticed";
                          expect_error_names(m.error(), f);
                      },
                  .next = [&](const Fault& f) {
                      ASSERT_TRUE(Memory::create(opts)) << "after " << describe(f);
                  }});
}

TEST_P(MemoryFault, AddLeavesNothingAndTheRangeIsReused) {
    FAULT_REQUIRE_BACKING(why_not);
    auto m = Memory::create(opts);
    ASSERT_TRUE(m) << m.error().message();
    Memory& mem = **m;
    // One segment stays, so the failing add is not the window's first.
    auto keep = mem.add(seg);
    ASSERT_TRUE(keep) << keep.error().message();
    const std::uint64_t next_va = (*keep)->va + (*keep)->len;
    const std::string what = "Memory::add (" + std::string(name_of(GetParam())) + ")";
    const auto plan = every_call(
        what,
        {Call::memfd_create, Call::open, Call::ftruncate, Call::mmap, Call::munmap, Call::close},
        [&] {
            auto s = mem.add(seg);
            ASSERT_TRUE(s) << s.error().message();
            ASSERT_TRUE(mem.remove(*s));
        });
    ASSERT_GE(plan.size(), 3u) << "a backing file, its size and its mapping";
    Result<const Segment*> s;
    fail_in_turn(
        what, plan,
        {.before = [&] { return now(); },
         .run =
             [&](const Fault&, const vfio::FaultInjector& fi) {
                 s = mem.add(seg);
                 if (s) {
                     // Only the removal's calls may fail after a good add.
                     EXPECT_FALSE(fi.fired()) << "the add succeeded with a failed call";
                     auto r = mem.remove(*s);
                     EXPECT_TRUE(r) << r.error().message();
                 }
             },
         .check =
             [&](const Fault& f) {
                 if (!s)
                     expect_error_names(s.error(), f, "memory");
             },
         .next = [&](const Fault& f) {
             EXPECT_EQ(mem.segments().size(), 1u);
             EXPECT_FALSE(mem.virt2iova(reinterpret_cast<const void*>(next_va)));
             EXPECT_EQ(mem.quarantined().segments, 0u);
             // The same addresses come back, and the memory is usable.
             auto again = mem.add(seg);
             ASSERT_TRUE(again) << "after " << describe(f) << ": " << again.error().message();
             EXPECT_EQ((*again)->va, next_va);
             std::memset(reinterpret_cast<void*>((*again)->va), 0x5a, (*again)->len);
             ASSERT_TRUE(mem.remove(*again));
         }});
}

TEST_P(MemoryFault, RemoveGivesEverythingBack) {
    FAULT_REQUIRE_BACKING(why_not);
    auto m = Memory::create(opts);
    ASSERT_TRUE(m) << m.error().message();
    Memory& mem = **m;
    const Leftovers empty = now();
    const std::string what = "Memory::remove (" + std::string(name_of(GetParam())) + ")";
    std::vector<Fault> removal;
    {
        auto s = mem.add(seg);
        ASSERT_TRUE(s) << s.error().message();
        removal = every_call(what, {Call::mmap, Call::munmap, Call::close},
                             [&] { ASSERT_TRUE(mem.remove(*s)); });
    }
    ASSERT_GE(removal.size(), 2u) << "the range reserved again, the backing closed";
    const Segment* s = nullptr;
    std::uint64_t va = 0;
    Result<void> r;
    fail_in_turn(
        what, removal,
        {.prepare =
             [&](const Fault&) {
                 auto added = mem.add(seg);
                 ASSERT_TRUE(added) << added.error().message();
                 s = *added;
                 va = s->va;
                 std::memset(reinterpret_cast<void*>(va), 0x5a, s->len);  // pages really taken
             },
         // The segment is gone whatever the kernel refused: its pages and
         // its backing go back, its range stays reserved for the window.
         .before = [&] { return empty; },
         .after = [&] { return now(); },
         .run = [&](const Fault&, const vfio::FaultInjector&) { r = mem.remove(s); },
         .check = [&](const Fault&) { EXPECT_TRUE(r) << r.error().message(); },
         .next = [&](const Fault& f) {
             EXPECT_TRUE(mem.segments().empty());
             auto again = mem.add(seg);
             ASSERT_TRUE(again) << "after " << describe(f) << ": " << again.error().message();
             EXPECT_EQ((*again)->va, va) << "the range was not given back to the window";
             ASSERT_TRUE(mem.remove(*again));
         }});
}

// A secondary's attach (Memory::attach, as attach_memory calls it with the
// fds the primary sent): the primary's segments, with a gap between them,
// mapped at the same addresses in this process once the primary's Memory
// is gone (its backings live on in dup'ed fds, as they do in a secondary).
TEST_P(MemoryFault, AttachLeavesNothing) {
    FAULT_REQUIRE_BACKING(why_not);
    std::vector<Segment> segs;
    std::vector<vfio::Fd> originals;
    {
        auto m = Memory::create(opts);
        ASSERT_TRUE(m) << m.error().message();
        std::vector<const Segment*> added;
        for (int i = 0; i < 3; ++i) {
            auto s = (*m)->add(seg);
            ASSERT_TRUE(s) << s.error().message();
            added.push_back(*s);
        }
        ASSERT_TRUE((*m)->remove(added[1]));  // a gap: the attach reserves it
        for (const Segment* s : (*m)->segments()) {
            segs.push_back(*s);
            originals.emplace_back(::fcntl(s->fd, F_DUPFD_CLOEXEC, 0));
            ASSERT_TRUE(originals.back().valid());
        }
        std::memset(reinterpret_cast<void*>(segs[0].va), 0x5a, 64);
    }
    MemoryOptions o = opts;
    o.page_size = segs[0].page_size;
    auto fds = [&] {
        std::vector<vfio::Fd> v;
        for (const auto& f : originals)
            v.emplace_back(::fcntl(f.get(), F_DUPFD_CLOEXEC, 0));
        return v;
    };
    const std::string what = "Memory::attach (" + std::string(name_of(GetParam())) + ")";
    const auto plan = every_call(what, {Call::mmap, Call::munmap, Call::close, Call::open}, [&] {
        auto a = Memory::attach(o, segs, fds());
        ASSERT_TRUE(a) << a.error().message();
        EXPECT_EQ(reinterpret_cast<unsigned char*>(segs[0].va)[63], 0x5a);
    });
    ASSERT_GE(plan.size(), 4u) << "two segments and the reservations around them";
    std::vector<vfio::Fd> given;
    Result<std::unique_ptr<Memory>> a;
    fail_in_turn(
        what, plan,
        {.prepare = [&](const Fault&) { given = fds(); },
         .before = [&] { return now(); },
         .after =
             [&] {
                 // The fds given to attach are its to close.
                 Leftovers after = now();
                 after.fds += static_cast<int>(segs.size());
                 return after;
             },
         .run =
             [&](const Fault&, const vfio::FaultInjector& fi) {
                 a = Memory::attach(o, segs, std::move(given));
                 if (a) {
                     // Only the detach's calls may fail after a good attach.
                     EXPECT_FALSE(fi.fired()) << "the attach succeeded with a failed call";
                     a->reset();
                 }
             },
         .check =
             [&](const Fault& f) {
                 if (!a)
                     expect_error_names(a.error(), f, "attach");
             },
         .next = [&](const Fault& f) {
             EXPECT_TRUE(testing::maps_lines(o.base_virtaddr, o.window, "").empty())
                 << "the window is not free again:"
                 << testing::joined(testing::maps_lines(o.base_virtaddr, o.window, ""));
             auto again = Memory::attach(o, segs, fds());
             ASSERT_TRUE(again) << "after " << describe(f) << ": " << again.error().message();
         }});
}

// The EAL's own memory in the VFIO mode the lab job chose, with the edu
// assigned: a segment added to the EAL's Memory is mapped into the default
// container by its listener (a DMA map ioctl in the translated modes, a
// pin and physical addresses in cdev no-IOMMU). Any failed call, the map
// included, must leave the container's table, the window and the
// hugepages as they were.
TEST(EalMemoryFault, AddRollsBackTheDefaultContainerToo) {
    if (testing::env("VFIOKIT_VFIO_MODE").empty())
        GTEST_SKIP() << "needs a VFIO mode and the edu on vfio-pci (the lab's memory jobs set "
                        "VFIOKIT_VFIO_MODE)";
    Options o;
    ASSERT_TRUE(vfio::apply_environment(o.vfio));
    o.memory_mb = 8;
    auto e = Eal::init(o);
    ASSERT_TRUE(e) << e.error().message();
    vfio::Container& dc = (*e)->vfio().default_container();
    auto d = (*e)->vfio().assign_device(dc, "0000:00:03.0");
    ASSERT_TRUE(d) << d.error().message();
    Memory& mem = (*e)->memory();
    auto now = [&] { return Leftovers::now(mem.window_base(), mem.window_size(), ""); };
    const std::string what = "Eal memory add (" + testing::mode_label() + ")";
    // The first add teaches the container what the kernel offers (cdev:
    // whether it maps by file); the plan is made on the steady state.
    {
        auto warm = mem.add(testing::kHuge);
        ASSERT_TRUE(warm) << warm.error().message();
        ASSERT_TRUE(mem.remove(*warm));
    }
    const Segment* added = nullptr;
    const auto plan = every_call(
        what, {Call::memfd_create, Call::open, Call::ftruncate, Call::mmap, Call::ioctl}, [&] {
            auto s = mem.add(testing::kHuge);
            ASSERT_TRUE(s) << s.error().message();
            added = *s;
        });
    ASSERT_NE(added, nullptr);
    const std::uint64_t va = added->va;
    ASSERT_TRUE(mem.remove(added));
    ASSERT_GE(plan.size(), 3u);
    std::size_t maps = 0, segs = 0;
    Result<const Segment*> s;
    fail_in_turn(
        what, plan,
        {.prepare =
             [&](const Fault&) {
                 maps = dc.mapping_count();
                 segs = mem.segments().size();
             },
         .before = now,
         .run =
             [&](const Fault& f, const vfio::FaultInjector&) {
                 s = mem.add(testing::kHuge);
                 if (s) {
                     std::printf("%s: %s did not fail the add (not needed for it)\n",
                                 what.c_str(), describe(f).c_str());
                     vfio::ScopedSyscalls real(vfio::real_syscalls());
                     ASSERT_TRUE(mem.remove(*s));
                 }
             },
         .check =
             [&](const Fault& f) {
                 if (!s)
                     expect_error_names(s.error(), f);
             },
         .next = [&](const Fault& f) {
             EXPECT_EQ(dc.mapping_count(), maps)
                 << describe(f) << ": the container kept a mapping";
             EXPECT_EQ(mem.segments().size(), segs);
             EXPECT_EQ(mem.quarantined().segments, 0u);
             auto again = mem.add(testing::kHuge);
             ASSERT_TRUE(again) << "after " << describe(f) << ": " << again.error().message();
             EXPECT_EQ((*again)->va, va);
             EXPECT_TRUE(mem.virt2iova(reinterpret_cast<const void*>(va)));
             ASSERT_TRUE(mem.remove(*again));
         }});
}

INSTANTIATE_TEST_SUITE_P(Backings, MemoryFault,
                         ::testing::Values(Backing::memfd_4k, Backing::memfd_huge,
                                           Backing::hugetlbfs),
                         [](const auto& i) { return std::string(name_of(i.param)); });

}  // namespace
}  // namespace vfiokit::eal

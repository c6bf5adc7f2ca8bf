// Helpers for the fault-injection tests of EAL memory and the mp channel
// (lib/eal/memory/memory_fault_test.cpp, lib/eal/mp/fault_test.cpp), which
// run on the host and in the lab: the backings a segment can have and
// whether this machine offers them, what "nothing left behind" is measured
// by (fds, mappings, hugepage files, free hugepages), and the plan of faults
// (every call of every kind an operation makes) and its run, one fault at a
// time. Header-only; tests only.
#pragma once

#include <dirent.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "lab_env.hpp"
#include "vfiokit/eal/memory.hpp"
#include "vfiokit/eal/vfio/syscalls.hpp"

namespace vfiokit::testing {

// How a segment is backed: a memfd of 4 KiB pages (--no-huge), a memfd of
// 2 MiB hugepages (MFD_HUGETLB), or a file on a 2 MiB hugetlbfs mount
// (--huge-dir).
enum class Backing { memfd_4k, memfd_huge, hugetlbfs };

inline const char* name_of(Backing b) {
    switch (b) {
    case Backing::memfd_4k: return "memfd_4k";
    case Backing::memfd_huge: return "memfd_huge";
    case Backing::hugetlbfs: return "hugetlbfs";
    }
    return "?";
}

inline constexpr std::uint64_t kHuge = 2ULL << 20;

// Whether the lab runs this program: there, every backing must be
// available (the guest reserves hugepages and mounts /dev/hugepages), and
// a missing one is a failure, not a skip.
inline bool in_lab() { return !env("VFIOKIT_LAB_SHAPE").empty(); }

inline unsigned free_hugepages() {
    return static_cast<unsigned>(
        sysfs::Root()
            .read_uint("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages")
            .value_or(0));
}

// A hugetlbfs mount of 2 MiB pages, or "".
inline std::string huge_mount() {
    for (const auto& p : eal::discover_hugepages(sysfs::Root()))
        if (p.page_size == kHuge)
            return p.mount;
    return {};
}

// Memory options for `b` at `base`; `why_not` is set when this machine
// cannot give that backing (`pages` hugepages are needed free).
inline eal::MemoryOptions memory_options(Backing b, std::uint64_t base, unsigned pages,
                                         std::string& why_not) {
    eal::MemoryOptions o;
    o.base_virtaddr = base;
    o.window = 64ULL << 20;
    if (b == Backing::memfd_4k) {
        o.no_huge = true;
        return o;
    }
    o.page_size = kHuge;
    if (free_hugepages() < pages)
        why_not = "needs " + std::to_string(pages) + " free 2 MiB hugepages, " +
                  std::to_string(free_hugepages()) + " free (tests do not reserve any)";
    if (b == Backing::hugetlbfs) {
        o.huge_dir = huge_mount();
        if (o.huge_dir.empty() && why_not.empty())
            why_not = "no hugetlbfs mount of 2 MiB pages in /proc/mounts";
    }
    return o;
}

// Skips (host) or fails (lab) when the backing is not available here.
#define FAULT_REQUIRE_BACKING(why_not)                                                     \
    do {                                                                                   \
        if (!(why_not).empty()) {                                                          \
            if (::vfiokit::testing::in_lab())                                              \
                FAIL() << "the lab guest must offer this backing: " << (why_not);          \
            GTEST_SKIP() << (why_not);                                                     \
        }                                                                                  \
    } while (0)

// Lines of /proc/self/maps that overlap [base, base + len) or name `tag`.
inline std::vector<std::string> maps_lines(std::uint64_t base, std::uint64_t len,
                                           const std::string& tag) {
    std::vector<std::string> out;
    std::ifstream in("/proc/self/maps");
    for (std::string line; std::getline(in, line);) {
        std::uint64_t lo = 0, hi = 0;
        if (std::sscanf(line.c_str(), "%" SCNx64 "-%" SCNx64, &lo, &hi) != 2)
            continue;
        if ((hi > base && lo < base + len) || (!tag.empty() && line.find(tag) != line.npos))
            out.push_back(line);
    }
    return out;
}

// Names starting with "vfiokit-" in `dir` (hugepage files; "" : none).
inline std::vector<std::string> huge_files(const std::string& dir) {
    std::vector<std::string> out;
    if (dir.empty())
        return out;
    if (DIR* d = ::opendir(dir.c_str())) {
        while (const dirent* e = ::readdir(d))
            if (std::string_view(e->d_name).starts_with("vfiokit-"))
                out.emplace_back(e->d_name);
        ::closedir(d);
    }
    return out;
}

// What a failed operation must leave as it found: this process's fds, its
// mappings in the memory window and of EAL backings (memfds are named
// "vfiokit-memory"), the hugepage files, and the free hugepages.
struct Leftovers {
    int fds = 0;
    std::vector<std::string> maps;
    std::vector<std::string> files;
    unsigned free_huge = 0;

    static Leftovers now(std::uint64_t base, std::uint64_t len, const std::string& huge_dir) {
        return {open_fds(), maps_lines(base, len, "vfiokit-memory"), huge_files(huge_dir),
                free_hugepages()};
    }
};

inline std::string joined(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& l : v)
        s += "\n    " + l;
    return s.empty() ? " (none)" : s;
}

#define EXPECT_NOTHING_LEFT(before, after, what)                                             \
    do {                                                                                     \
        EXPECT_EQ((after).fds, (before).fds) << (what) << ": fds leaked";                    \
        EXPECT_EQ((after).maps, (before).maps)                                               \
            << (what) << ": mappings before:" << ::vfiokit::testing::joined((before).maps)   \
            << "\n  after:" << ::vfiokit::testing::joined((after).maps);                     \
        EXPECT_EQ((after).files, (before).files) << (what) << ": hugepage files left";       \
        EXPECT_EQ((after).free_huge, (before).free_huge) << (what) << ": hugepages held";    \
    } while (0)

// One planned fault: the nth call of `kind`.
struct Fault {
    vfio::Call kind;
    unsigned n;
};

inline std::string describe(const Fault& f) {
    return std::string(vfio::to_string(f.kind)) + " #" + std::to_string(f.n);
}

// Runs `op` once under a counting injector and plans one fault per call of
// each of `kinds` it made. Prints the counts, with `what` naming the
// operation (the lab log keeps them).
inline std::vector<Fault> every_call(const std::string& what,
                                     std::initializer_list<vfio::Call> kinds,
                                     const std::function<void()>& op) {
    vfio::FaultInjector counter;
    {
        vfio::ScopedSyscalls g(counter);
        op();
    }
    std::vector<Fault> plan;
    std::string counts;
    for (vfio::Call k : kinds) {
        const unsigned n = counter.count(k);
        for (unsigned i = 1; i <= n; ++i)
            plan.push_back({k, i});
        counts += " " + std::string(vfio::to_string(k)) + "=" + std::to_string(n);
    }
    std::printf("fault plan: %s:%s: %zu faults\n", what.c_str(), counts.c_str(), plan.size());
    return plan;
}

// The error of an operation that `f` failed: EIO, naming the call and,
// when given, what the operation was (`doing`: "memory", "attach", "mp").
inline void expect_error_names(const Error& e, const Fault& f, std::string_view doing = {}) {
    EXPECT_EQ(e.err(), EIO) << e.message();
    EXPECT_NE(e.message().find(vfio::to_string(f.kind)), std::string::npos) << e.message();
    if (!doing.empty()) {
        EXPECT_NE(e.message().find(doing), std::string::npos) << e.message();
    }
}

// What trying one fault asks of a test (fail_in_turn). `run` makes the
// operation with the fault armed and keeps what it returned; `check` looks
// at that once the injector is gone (the error is EIO and names the call);
// `next` proves the next operation works. "Nothing left" compares
// `before()`, taken after `prepare` and before the fault is armed, with
// `after()` (by default `before` again), taken after `check`.
struct FaultSteps {
    std::function<void(const Fault&)> prepare = [](const Fault&) {};
    std::function<Leftovers()> before;
    std::function<Leftovers()> after = {};
    std::function<void(const Fault&, const vfio::FaultInjector&)> run;
    std::function<void(const Fault&)> check = [](const Fault&) {};
    std::function<void(const Fault&)> next;
};

// Tries every fault of `plan` in turn: injects EIO at that call, runs the
// operation under the injector, requires that the fault fired, checks the
// result, that nothing is left behind and that the next operation works.
// Stops at the first fatal failure, as an ASSERT in the loop's body would
// stop the test. Prints how many faults it tried, with `what` naming the
// operation as every_call's plan line does.
inline void fail_in_turn(const std::string& what, const std::vector<Fault>& plan,
                         const FaultSteps& steps) {
    std::size_t tried = 0;
    for (const Fault& f : plan) {
        SCOPED_TRACE(describe(f));
        ASSERT_NO_FATAL_FAILURE(steps.prepare(f));
        const Leftovers before = steps.before();
        vfio::FaultInjector fi;
        fi.fail_nth(f.kind, f.n, EIO);
        {
            vfio::ScopedSyscalls g(fi);
            ASSERT_NO_FATAL_FAILURE(steps.run(f, fi));
            ASSERT_TRUE(fi.fired());
        }
        ASSERT_NO_FATAL_FAILURE(steps.check(f));
        const Leftovers after = steps.after ? steps.after() : steps.before();
        EXPECT_NOTHING_LEFT(before, after, describe(f));
        ASSERT_NO_FATAL_FAILURE(steps.next(f));
        ++tried;
    }
    std::printf("fault run: %s: %zu of %zu faults tried\n", what.c_str(), tried, plan.size());
}

}  // namespace vfiokit::testing

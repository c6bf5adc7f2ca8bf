// Crash behaviour of multi-process, on the real kernel, once per VFIO mode:
// the primary is SIGKILLed while a secondary DMAs through its edu.
//   - the secondary's primary-exit callback (Eal::add_primary_exit_callback)
//     fires within 1 s of the kill, measured on CLOCK_MONOTONIC (one clock
//     for every process of the guest);
//   - a new primary cannot take the edu while the secondary holds it, and
//     its error names the secondary's pid;
//   - once the secondary exits, the new primary takes the edu and DMAs;
//   - afterwards the free hugepages are back at their count before the
//     test, and neither the runtime directory nor the --huge-dir holds a
//     stale file.
// And a secondary SIGKILLed while it holds DMA mappings of its own in the
// primary's container (doc/multiprocess.md "A secondary's own mappings"):
//   - while it lives (and after its death, until the cleanup) its hugepages
//     are pinned (HugePages_Free is N lower) and the primary cannot map
//     the same IOVAs (EEXIST from the kernel);
//   - the primary's secondary-exit callback fires, naming its pid, with N
//     ranges unmapped and the one it announced but never mapped counted as
//     already gone;
//   - then the primary maps the same IOVAs, and HugePages_Free is back.
// A secondary that exits normally leaves nothing for that callback.
//
//   VFIOKIT_VFIO_MODE=group VFIOKIT_LAB_SHAPE=iommu mp_crash_lab_test
//
// The same binary is exec'd as the primary ("--primary PREFIX HUGEDIR FD"),
// as the secondary ("--secondary PREFIX SRC DST") and as the secondary that
// maps its own buffers ("--own-maps PREFIX IOVA N"), fresh process images as
// real ones would be.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "edu.hpp"
#include "foreign_dma.hpp"
#include "lab_env.hpp"
#include "mp_test_util.hpp"
#include "vfiokit/bus/pci/device.hpp"
#include "vfiokit/eal/eal.hpp"
#include "vfiokit/eal/mp.hpp"

namespace vfiokit::eal {
namespace {

using testing::iommu_shape;
using testing::mode_label;
using testing::self_exe;

constexpr const char* kEdu = "0000:00:03.0";
constexpr std::size_t kLen = 2048;  // edu: a transfer must end before 0x41000
const std::string kHuge = "/tmp/vfiokit-lab-crash-hugetlbfs";

std::uint64_t now_ns() {
    timespec t{};
    ::clock_gettime(CLOCK_MONOTONIC, &t);
    return static_cast<std::uint64_t>(t.tv_sec) * 1000000000ULL + static_cast<std::uint64_t>(t.tv_nsec);
}

std::uint64_t edu_mask() { return iommu_shape() ? edu::kDefaultDmaMask : 0xffffffffULL; }

unsigned free_hugepages() {
    return static_cast<unsigned>(sysfs::Root()
                                     .read_uint("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages")
                                     .value_or(0));
}

Options options(const std::string& prefix, ProcType role, const std::string& huge_dir) {
    Options o;
    o.vfio.mode = std::nullopt;
    if (auto ok = vfio::apply_environment(o.vfio); !ok)
        ADD_FAILURE() << ok.error().message();
    o.memory_mb = 8;
    o.multi_process = true;
    o.file_prefix = prefix;
    o.proc_type = role;
    if (role == ProcType::primary)
        o.memory.huge_dir = huge_dir;
    return o;
}

std::set<std::string> entries(const std::string& dir) {
    std::set<std::string> out;
    if (DIR* d = ::opendir(dir.c_str())) {
        while (const dirent* e = ::readdir(d))
            if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0)
                out.insert(e->d_name);
        ::closedir(d);
    }
    return out;
}

std::string text(const std::set<std::string>& s) {
    std::string t;
    for (const auto& x : s)
        t += (t.empty() ? "" : " ") + x;
    return t.empty() ? "(none)" : t;
}

// The primary: EAL with the edu and two heap buffers; says where they are
// on `ready` and waits to be killed.
int primary_main(char** argv) {
    auto e = Eal::init(options(argv[2], ProcType::primary, argv[3]));
    if (!e)
        return std::fprintf(stderr, "primary: %s\n", e.error().message().c_str()), 10;
    vfio::Vfio& v = (*e)->vfio();
    if (auto d = v.assign_device(v.default_container(), kEdu); !d)
        return std::fprintf(stderr, "primary: %s\n", d.error().message().c_str()), 11;
    if (auto ok = v.default_container().require_dma_mask(edu_mask(), "edu"); !ok)
        return std::fprintf(stderr, "primary: %s\n", ok.error().message().c_str()), 12;
    auto src = (*e)->heap().alloc(kLen), dst = (*e)->heap().alloc(kLen);
    if (!src || !dst)
        return 13;
    const std::string where = std::to_string(reinterpret_cast<std::uintptr_t>(*src)) + " " +
                              std::to_string(reinterpret_cast<std::uintptr_t>(*dst)) + "\n";
    const int fd = std::atoi(argv[4]);
    (void)!::write(fd, where.data(), where.size());
    ::close(fd);
    for (;;)
        ::pause();
}

// The secondary: DMA src -> edu -> dst in a loop until its primary-exit
// callback fires; reports when that was, then holds the device until its
// stdin closes.
int secondary_main(char** argv) {
    auto e = Eal::init(options(argv[2], ProcType::secondary, ""));
    if (!e)
        return std::fprintf(stderr, "secondary: %s\n", e.error().message().c_str()), 20;
    std::atomic<std::uint64_t> seen{0};
    std::string why;
    auto id = (*e)->add_primary_exit_callback([&](const Error& err) {
        why = err.message();
        seen.store(now_ns(), std::memory_order_release);
    });
    if (!id)
        return std::fprintf(stderr, "secondary: %s\n", id.error().message().c_str()), 21;
    vfio::Device* d = (*e)->vfio().find_device(*PciAddress::parse(kEdu));
    if (d == nullptr)
        return 22;
    pci::PciDevice pd(*d);
    auto edu = edu::EduDevice::open(pd, edu_mask());
    if (!edu)
        return std::fprintf(stderr, "secondary: %s\n", edu.error().message().c_str()), 23;
    auto* src = reinterpret_cast<unsigned char*>(std::strtoull(argv[3], nullptr, 0));
    auto* dst = reinterpret_cast<unsigned char*>(std::strtoull(argv[4], nullptr, 0));
    auto si = (*e)->virt2iova(src), di = (*e)->virt2iova(dst);
    if (!si || !di)
        return 24;
    unsigned loops = 0, bad = 0;
    while (seen.load(std::memory_order_acquire) == 0) {
        for (std::size_t i = 0; i < kLen; ++i)
            src[i] = static_cast<unsigned char>(i * 7 + loops);
        std::memset(dst, 0, kLen);
        if (!(*edu)->dma_to_device(*si, 0, kLen) || !(*edu)->dma_to_ram(*di, 0, kLen) ||
            std::memcmp(src, dst, kLen) != 0)
            ++bad;
        if (++loops == 1) {
            std::printf("looping\n");
            std::fflush(stdout);
        }
    }
    std::printf("primary-exit-seen %" PRIu64 " after %u DMA loops (%u bad): %s\n",
                seen.load(), loops, bad, why.c_str());
    std::fflush(stdout);
    char c;
    while (::read(0, &c, 1) > 0) {
    }
    return bad == 0 ? 0 : 25;
}

// A process's VmPin and VmLck (kB) from /proc/PID/status, for the report.
std::string pinned_text(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/status");
    std::string line, out;
    while (std::getline(f, line))
        if (line.rfind("VmPin:", 0) == 0 || line.rfind("VmLck:", 0) == 0)
            out += (out.empty() ? "" : ", ") + line;
    return out.empty() ? "(no status)" : out;
}

constexpr std::uint64_t kHugePage = 2ULL << 20;

// The secondary with mappings of its own: N anonymous hugepages mapped into
// the primary's default container at IOVA, IOVA + 2 MiB, ...; then one
// more range announced to the primary but never mapped (as if it died
// between the announcement and the map ioctl). Says "mapped N" and waits
// to be killed, or, with stdin closed, exits normally.
int own_maps_main(char** argv) {
    auto e = Eal::init(options(argv[2], ProcType::secondary, ""));
    if (!e)
        return std::fprintf(stderr, "own-maps: %s\n", e.error().message().c_str()), 30;
    const std::uint64_t iova = std::strtoull(argv[3], nullptr, 0);
    const unsigned n = static_cast<unsigned>(std::atoi(argv[4]));
    vfio::Container& c = (*e)->vfio().default_container();
    for (unsigned i = 0; i < n; ++i) {
        void* p = ::mmap(nullptr, kHugePage, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_POPULATE, -1, 0);
        if (p == MAP_FAILED)
            return std::fprintf(stderr, "own-maps: mmap a hugepage: %s\n", std::strerror(errno)), 31;
        std::memset(p, 0xa5, kHugePage);
        if (auto ok = c.map(reinterpret_cast<std::uintptr_t>(p), iova + i * kHugePage, kHugePage); !ok)
            return std::fprintf(stderr, "own-maps: %s\n", ok.error().message().c_str()), 32;
    }
    const mp::DmaRange never{c.import_index(), iova + n * kHugePage, kHugePage};
    if (auto ok = (*e)->primary()->request(mp::kDmaIntentRequest, mp::encode(never)); !ok)
        return std::fprintf(stderr, "own-maps: %s\n", ok.error().message().c_str()), 33;
    std::printf("mapped %u: %s\n", n, pinned_text(::getpid()).c_str());
    std::fflush(stdout);
    char ch;
    while (::read(0, &ch, 1) > 0) {
    }
    // The announced range it never mapped: taken back, as a map that failed would.
    if (auto ok = (*e)->primary()->request(mp::kDmaUnmappedRequest, mp::encode(never)); !ok)
        return std::fprintf(stderr, "own-maps: %s\n", ok.error().message().c_str()), 34;
    return 0;  // ~Eal unmaps the N buffers and tells the primary
}

struct Child {
    pid_t pid = -1;
    vfio::Fd in, out;  // its stdin (write end), its stdout (read end)
};

Child spawn(const std::vector<std::string>& args, int keep_fd = -1) {
    mp::test::Pipe in, out;
    const std::string exe = self_exe();
    std::fflush(stdout);
    Child c;
    c.pid = ::fork();
    if (c.pid == 0) {
        ::dup2(in.r.get(), 0);
        ::dup2(out.w.get(), 1);
        if (keep_fd >= 0)
            ::fcntl(keep_fd, F_SETFD, 0);
        std::vector<char*> argv;
        argv.push_back(const_cast<char*>(exe.c_str()));
        for (const auto& a : args)
            argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        ::execv(exe.c_str(), argv.data());
        std::_Exit(101);
    }
    c.in = std::move(in.w);
    c.out = std::move(out.r);
    return c;
}

// Reads the child's stdout until a line starting with `what` (or EOF).
std::string read_until(int fd, std::string_view what, std::string& all) {
    char b[512];
    for (;;) {
        if (auto at = all.find(what); at != std::string::npos) {
            auto end = all.find('\n', at);
            if (end != std::string::npos)
                return all.substr(at, end - at);
        }
        const ssize_t n = ::read(fd, b, sizeof b);
        if (n <= 0)
            return {};
        all.append(b, static_cast<std::size_t>(n));
    }
}

class MpCrash : public ::testing::TestWithParam<std::string> {};

TEST_P(MpCrash, PrimaryKilledDuringASecondarysDma) {
    const std::string prefix = "crash-" + mode_label();
    (void)::umount(kHuge.c_str());
    ::mkdir(kHuge.c_str(), 0700);
    ASSERT_EQ(::mount("none", kHuge.c_str(), "hugetlbfs", 0, "pagesize=2M"), 0)
        << std::strerror(errno);
    auto dir = mp::open_runtime_dir(prefix);
    ASSERT_TRUE(dir) << dir.error().message();
    const auto dir_before = entries(dir->path);
    const unsigned free_before = free_hugepages();

    mp::test::Pipe ready;
    Child p = spawn({"--primary", prefix, kHuge, std::to_string(ready.w.get())}, ready.w.get());
    ready.w.reset();
    std::string where;
    char b[128];
    for (ssize_t n; where.find('\n') == std::string::npos && (n = ::read(ready.r.get(), b, sizeof b)) > 0;)
        where.append(b, static_cast<std::size_t>(n));
    ASSERT_NE(where.find('\n'), std::string::npos) << "the primary did not start";
    const auto space = where.find(' ');
    Child s = spawn({"--secondary", prefix, where.substr(0, space),
                     where.substr(space + 1, where.find('\n') - space - 1)});
    std::string out;
    ASSERT_FALSE(read_until(s.out.get(), "looping", out).empty()) << out;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // DMA in flight

    const std::uint64_t killed = now_ns();
    ASSERT_EQ(::kill(p.pid, SIGKILL), 0);
    EXPECT_EQ(mp::test::wait_child(p.pid), 128 + SIGKILL);
    const std::string seen = read_until(s.out.get(), "primary-exit-seen", out);
    ASSERT_FALSE(seen.empty()) << "the secondary never saw the primary's death: " << out;
    const std::uint64_t at = std::strtoull(seen.c_str() + std::strlen("primary-exit-seen "), nullptr, 10);
    const double ms = (static_cast<double>(at) - static_cast<double>(killed)) / 1e6;
    std::printf("%s: SIGKILL to the secondary's callback: %.1f ms\n  %s\n", mode_label().c_str(),
                ms, seen.c_str());
    EXPECT_LT(ms, 1000.0) << "the callback fired later than 1 s after the kill";
    EXPECT_NE(seen.find("primary (pid " + std::to_string(p.pid)), std::string::npos) << seen;

    // A new primary while the secondary holds the edu.
    {
        auto e = Eal::init(options(prefix, ProcType::primary, kHuge));
        ASSERT_TRUE(e) << e.error().message();
        vfio::Vfio& v = (*e)->vfio();
        auto d = v.assign_device(v.default_container(), kEdu);
        ASSERT_FALSE(d) << "a new primary took the edu a secondary still holds";
        std::printf("%s: restart while the secondary holds the edu: %s\n", mode_label().c_str(),
                    d.error().message().c_str());
        EXPECT_NE(d.error().message().find("pid " + std::to_string(s.pid) + " "), std::string::npos)
            << "the error does not name the secondary (pid " << s.pid << "): "
            << d.error().message();
    }

    s.in.reset();  // the secondary lets go and exits
    EXPECT_EQ(mp::test::wait_child(s.pid), 0) << out;

    // Now the restart succeeds, and the edu DMAs for the new primary.
    {
        auto e = Eal::init(options(prefix, ProcType::primary, kHuge));
        ASSERT_TRUE(e) << e.error().message();
        vfio::Vfio& v = (*e)->vfio();
        auto d = v.assign_device(v.default_container(), kEdu);
        ASSERT_TRUE(d) << d.error().message();
        ASSERT_TRUE(v.default_container().require_dma_mask(edu_mask(), "edu"));
        pci::PciDevice pd(**d);
        auto edu = edu::EduDevice::open(pd, edu_mask());
        ASSERT_TRUE(edu) << edu.error().message();
        auto src = (*e)->heap().alloc(kLen), dst = (*e)->heap().alloc(kLen);
        ASSERT_TRUE(src && dst);
        std::memset(*src, 0x5c, kLen);
        std::memset(*dst, 0, kLen);
        auto si = (*e)->virt2iova(*src), di = (*e)->virt2iova(*dst);
        ASSERT_TRUE(si && di);
        ASSERT_TRUE((*edu)->dma_to_device(*si, 0, kLen));
        ASSERT_TRUE((*edu)->dma_to_ram(*di, 0, kLen));
        EXPECT_EQ(std::memcmp(*src, *dst, kLen), 0);
        std::printf("%s: restarted primary took the edu, DMA ok\n", mode_label().c_str());
    }

    // Nothing left behind.
    EXPECT_TRUE(mp::test::wait_until([&] { return free_hugepages() == free_before; }, 3000))
        << "HugePages free " << free_hugepages() << ", before the test " << free_before;
    auto stale = entries(dir->path);
    for (const auto& x : dir_before)
        stale.erase(x);
    stale.erase("primary.lock");  // the lock file stays: flock needs a file
    const auto huge_left = entries(kHuge);
    std::printf("%s: hugepages free %u (before %u); new runtime dir entries: %s; huge dir: %s\n",
                mode_label().c_str(), free_hugepages(), free_before, text(stale).c_str(),
                text(huge_left).c_str());
    EXPECT_TRUE(stale.empty()) << "stale files in " << dir->path << ": " << text(stale);
    EXPECT_TRUE(huge_left.empty()) << "stale files in " << kHuge << ": " << text(huge_left);
    (void)::umount(kHuge.c_str());
}

// A secondary's own mappings outlive it in the primary's container unless
// the primary unmaps them: see the file's description.
TEST_P(MpCrash, SecondaryKilledWithOwnMappingsIsCleanedUp) {
    constexpr unsigned kN = 4;
    const std::string prefix = "crashmap-" + mode_label();
    const unsigned free_start = free_hugepages();
    auto e = Eal::init(options(prefix, ProcType::primary, ""));  // memfds, no --huge-dir
    ASSERT_TRUE(e) << e.error().message();
    vfio::Vfio& v = (*e)->vfio();
    vfio::Container& c = v.default_container();
    if (!c.translates())
        GTEST_SKIP() << "no IOMMU translation in " << mode_label()
                     << ": a secondary maps nothing of its own here (cdev-noiommu pins, but the "
                        "lab checks it in the iommu shape only)";
    // A device makes group-style containers ready to map.
    ASSERT_TRUE(v.assign_device(c, kEdu));
    std::mutex mu;
    std::optional<Eal::SecondaryExit> exit_seen;
    std::uint64_t exit_at = 0;
    auto cb = (*e)->add_secondary_exit_callback([&](const Eal::SecondaryExit& x) {
        std::lock_guard g(mu);
        exit_seen = x;
        exit_at = now_ns();
    });
    ASSERT_TRUE(cb) << cb.error().message();
    auto iova = c.alloc_iova((kN + 1) * kHugePage, edu_mask(), kHugePage);
    ASSERT_TRUE(iova) << iova.error().message();
    // The primary's own probe buffer: mapping it at a secondary's IOVA
    // shows whether the kernel still holds that IOVA.
    void* probe = ::mmap(nullptr, kHugePage, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    ASSERT_NE(probe, MAP_FAILED);
    const auto probe_va = reinterpret_cast<std::uintptr_t>(probe);
    const unsigned free_before = free_hugepages();

    for (const bool kill_it : {false, true}) {
        SCOPED_TRACE(kill_it ? "killed" : "exits normally");
        {
            std::lock_guard g(mu);
            exit_seen.reset();
        }
        Child s = spawn({"--own-maps", prefix, std::to_string(*iova), std::to_string(kN)});
        std::string out;
        const std::string mapped = read_until(s.out.get(), "mapped", out);
        ASSERT_FALSE(mapped.empty()) << "the secondary did not map: " << out;
        const unsigned free_mapped = free_hugepages();
        std::printf("%s: secondary pid %d %s; HugePages_Free %u (before %u)\n", mode_label().c_str(),
                    s.pid, mapped.c_str(), free_mapped, free_before);
        EXPECT_EQ(free_mapped + kN, free_before);
        // The kernel holds the secondary's IOVAs: the primary cannot map them.
        for (unsigned i = 0; i < kN; ++i) {
            auto taken = c.map(probe_va, *iova + i * kHugePage, kHugePage);
            ASSERT_FALSE(taken) << "IOVA " << std::hex << *iova + i * kHugePage
                                << " mapped over the secondary's mapping";
            EXPECT_EQ(taken.error().err(), EEXIST) << taken.error().message();
        }
        const std::uint64_t killed = now_ns();
        if (kill_it) {
            ASSERT_EQ(::kill(s.pid, SIGKILL), 0);
            EXPECT_EQ(mp::test::wait_child(s.pid), 128 + SIGKILL);
            ASSERT_TRUE(mp::test::wait_until(
                [&] {
                    std::lock_guard g(mu);
                    return exit_seen.has_value();
                },
                5000))
                << "the primary's secondary-exit callback did not fire";
            std::lock_guard g(mu);
            const Eal::SecondaryExit& x = *exit_seen;
            std::printf("%s: SIGKILL to the primary's cleanup callback: %.1f ms: pid %d, %zu "
                        "ranges, %zu unmapped (%llu bytes), %zu already gone, %zu failed\n",
                        mode_label().c_str(), (static_cast<double>(exit_at) - killed) / 1e6, x.pid,
                        x.ranges, x.unmapped, static_cast<unsigned long long>(x.bytes),
                        x.already_gone, x.failed);
            EXPECT_EQ(x.pid, s.pid);
            EXPECT_FALSE(x.still_running);
            EXPECT_EQ(x.ranges, kN + 1);
            EXPECT_EQ(x.unmapped, kN);
            EXPECT_EQ(x.bytes, kN * kHugePage);
            EXPECT_EQ(x.already_gone, 1u);  // announced, never mapped
            EXPECT_EQ(x.failed, 0u);
        } else {
            s.in.reset();
            EXPECT_EQ(mp::test::wait_child(s.pid), 0) << out;
            // The clean detach leaves the callback nothing to do.
            std::this_thread::sleep_for(std::chrono::milliseconds(300));
            std::lock_guard g(mu);
            EXPECT_FALSE(exit_seen.has_value()) << "the callback fired after a clean exit";
        }
        // The IOVAs are free again: the primary maps (and unmaps) each.
        for (unsigned i = 0; i < kN; ++i) {
            auto ok = c.map(probe_va, *iova + i * kHugePage, kHugePage);
            ASSERT_TRUE(ok) << ok.error().message();
            ASSERT_TRUE(c.unmap(*iova + i * kHugePage, kHugePage));
        }
        EXPECT_TRUE(mp::test::wait_until([&] { return free_hugepages() == free_before; }, 3000))
            << "HugePages_Free " << free_hugepages() << ", before the secondary " << free_before;
        std::printf("%s: %s: IOVAs free again, HugePages_Free %u (before %u)\n",
                    mode_label().c_str(), kill_it ? "after the cleanup" : "after a clean exit",
                    free_hugepages(), free_before);
    }
    ::munmap(probe, kHugePage);
    e->reset();
    EXPECT_TRUE(mp::test::wait_until([&] { return free_hugepages() == free_start; }, 3000))
        << "HugePages_Free " << free_hugepages() << ", at the start " << free_start;
}

INSTANTIATE_TEST_SUITE_P(Lab, MpCrash, ::testing::Values(mode_label()),
                         [](const auto& p) { return p.param; });

}  // namespace
}  // namespace vfiokit::eal

int main(int argc, char** argv) {
    if (argc == 5 && std::string_view(argv[1]) == "--primary")
        return vfiokit::eal::primary_main(argv);
    if (argc == 5 && std::string_view(argv[1]) == "--secondary")
        return vfiokit::eal::secondary_main(argv);
    if (argc == 5 && std::string_view(argv[1]) == "--own-maps")
        return vfiokit::eal::own_maps_main(argv);
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}

// The handover of a running driver to a new process (vfio::hand_over /
// take_over, handover.hpp), and what mapping by file changes (map time,
// pinned-page accounting), on the real kernel, once per mode:
//
//   VFIOKIT_VFIO_MODE=cdev VFIOKIT_LAB_SHAPE=iommu vfio_handover_lab_test
//
// This gtest process is the old primary: it assigns edu, maps a hugetlb
// memfd by file, starts a DMA and hands everything to a fresh image of this
// binary (--role=new) over a socketpair. The new process takes over, reads
// the DMA's bytes, drives edu itself and reports back. In cdev mode on a
// kernel with IOMMU_IOAS_CHANGE_PROCESS (6.13+) the handover must work; in
// every other mode and kernel it must fail with ENOTSUP naming what it
// needs, before anything is sent.
//
// Pinned-page accounting is read from /proc/PID/status (VmPin: the mm's
// pinned_vm, which iommufd charges for every mapping, iommufd/pages.c
// iopt_pages_update_pinned). The process drops CAP_IPC_LOCK first: a
// mapping made with it is charged to nobody's limit
// (IOPT_PAGES_ACCOUNT_NONE), and IOMMU_IOAS_CHANGE_PROCESS then moves no
// count (need_charge_update), though the pages still change owner.
#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "edu.hpp"
#include "lab_env.hpp"
#include "vfiokit/bus/pci/device.hpp"
#include "vfiokit/eal/format.hpp"
#include "vfiokit/eal/mp.hpp"
#include "vfiokit/eal/vfio/handover.hpp"
#include "vfiokit/eal/vfio/vfio.hpp"

namespace vfiokit::vfio {
namespace {

using testing::mode_label;
using testing::open_fds;

constexpr const char* kEdu = "0000:00:03.0";
constexpr std::uint64_t kVa = 0x5b0000000000ULL;  // both processes map the memory here
constexpr std::uint64_t kMemLen = 4ULL << 20;     // two 2 MiB huge pages
constexpr std::uint64_t kPage = 4096;
constexpr std::uint32_t kLen = 4000;              // < 4095: edu's QEMU 7.2 bound (edu.hpp)
constexpr std::uint64_t kEduMask = (1ULL << 28) - 1;

std::uint64_t now_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ULL +
           static_cast<std::uint64_t>(ts.tv_nsec);
}

// A field of /proc/PID/status in kB ("VmPin"); -1 when absent.
long status_kb(pid_t pid, const char* field) {
    std::ifstream f("/proc/" + (pid == 0 ? std::string("self") : std::to_string(pid)) + "/status");
    std::string line;
    const std::string key = std::string(field) + ":";
    while (std::getline(f, line))
        if (line.starts_with(key))
            return std::strtol(line.c_str() + key.size(), nullptr, 10);
    return -1;
}

bool handover_expected() {
    return mode_label() == "cdev" && testing::kernel_version().at_least(6, 13);
}

void fill(std::uint8_t* p, std::uint32_t seed) {
    for (std::uint32_t i = 0; i < kLen; ++i)
        p[i] = static_cast<std::uint8_t>(seed * 131 + i * 7 + (i >> 8));
}
bool matches(const std::uint8_t* p, std::uint32_t seed) {
    for (std::uint32_t i = 0; i < kLen; ++i)
        if (p[i] != static_cast<std::uint8_t>(seed * 131 + i * 7 + (i >> 8)))
            return false;
    return true;
}

// What the new process reports after its take-over.
struct Report {
    std::uint32_t magic = 0x52455054;
    std::uint32_t ok = 0;
    std::uint32_t dma_busy_at_first = 0;  // the old's transfer still running at our first access
    std::uint32_t bytes_ok = 0;           // its bytes in memory, read through our mapping
    std::uint32_t own_dma_ok = 0;         // our own round trip afterwards
    std::uint32_t pad = 0;
    std::int64_t vmpin_before_kb = -1;    // before take_over
    std::int64_t vmpin_after_kb = -1;     // after it
    std::uint64_t first_access_ns = 0;
    std::uint64_t ready_ns = 0;
    std::uint64_t released_ns = 0;
    char text[1024] = {};
};

// --- the new process ---------------------------------------------------------------

int new_main(int sock, const std::string& stop, long memlock) {
    Report rep;
    auto say = [&](const std::string& s) {
        std::snprintf(rep.text, sizeof rep.text, "%s", s.c_str());
    };
    if (memlock >= 0) {
        // Too little to take the old process's pinned pages: the kernel
        // must refuse IOMMU_IOAS_CHANGE_PROCESS (ENOMEM) and change nothing.
        rlimit r{static_cast<rlim_t>(memlock), static_cast<rlim_t>(memlock)};
        ::setrlimit(RLIMIT_MEMLOCK, &r);
    }
    const TakeOverStop s = stop == "offer"    ? TakeOverStop::after_offer
                           : stop == "change" ? TakeOverStop::after_change_process
                                              : TakeOverStop::none;
    rep.vmpin_before_kb = status_kb(0, "VmPin");
    auto t = take_over(sock, std::chrono::milliseconds(20000), s);
    if (!t) {
        // Failure cases: the old process learns it from the socket.
        std::fprintf(stderr, "new process: %s\n", t.error().message().c_str());
        return 3;
    }
    rep.vmpin_after_kb = status_kb(0, "VmPin");
    rep.ready_ns = t->ready_ns;
    rep.released_ns = t->released_ns;
    Device* d = t->vfio->find_device(*PciAddress::parse(kEdu));
    if (d == nullptr) {
        say("the device is not in the taken-over state");
    } else {
        pci::PciDevice pd(*d);
        // The first device access is open()'s (command register, the id).
        rep.first_access_ns = now_ns();
        auto e = edu::EduDevice::open(pd, kEduMask);
        if (!e) {
            say("edu open: " + e.error().message());
        } else {
            rep.dma_busy_at_first = (*e)->dma_busy() ? 1 : 0;
            auto w = (*e)->wait_dma();
            const auto* mem = reinterpret_cast<const std::uint8_t*>(kVa);
            rep.bytes_ok = w && matches(mem + kPage, 1) ? 1 : 0;
            // Our own round trip, through the mapping we now own.
            const auto& m = t->vfio->default_container().mappings();
            auto* src = reinterpret_cast<std::uint8_t*>(kVa + 2 * kPage);
            fill(src, 2);
            std::memset(src + kPage, 0, kLen);
            const std::uint64_t iova = m.front().iova + 2 * kPage;
            rep.own_dma_ok = (*e)->dma_to_device(iova, 0, kLen) &&
                                     (*e)->dma_to_ram(iova + kPage, 0, kLen) &&
                                     matches(src + kPage, 2)
                                 ? 1
                                 : 0;
            say(std::string(w ? "" : "wait for the old process's DMA: " + w.error().message()) +
                " mode reason: " + t->vfio->mode_reason());
            rep.ok = rep.bytes_ok && rep.own_dma_ok;
        }
    }
    const iovec iov{&rep, sizeof rep};
    (void)eal::mp::send_with_fds(sock, std::span(&iov, 1), {});
    return rep.ok ? 0 : 1;
}

// The restarted driver of ReinitBaseline: waits for the old one to go,
// then does what a driver's start does; the time of its first device access
// goes back. The exit status names the step that failed.
int reinit_main(int sock) {
    char go = 0;
    if (::recv(sock, &go, 1, 0) != 1)
        return 2;
    Options o;
    if (!apply_environment(o))
        return 3;
    auto v = Vfio::create(o);
    if (!v)
        return 3;
    auto d = (*v)->assign_device((*v)->default_container(), kEdu);
    if (!d)
        return 4;
    Fd fd(::memfd_create("reinit", MFD_CLOEXEC | MFD_HUGETLB));
    if (::ftruncate(fd.get(), kMemLen) != 0)
        return 5;
    void* p = ::mmap(nullptr, kMemLen, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd.get(), 0);
    auto io = (*v)->default_container().alloc_iova(kMemLen, kEduMask, 2 << 20);
    if (p == MAP_FAILED || !io ||
        !(*v)->default_container().map_file(reinterpret_cast<std::uint64_t>(p), fd.get(), 0, *io,
                                            kMemLen))
        return 6;
    pci::PciDevice pd(**d);
    const std::uint64_t first = now_ns();
    auto e = edu::EduDevice::open(pd, kEduMask);
    if (!e)
        return 7;
    (void)::send(sock, &first, sizeof first, 0);
    e->reset();
    ::munmap(p, kMemLen);
    return 0;
}

// --- the old process (this gtest process) --------------------------------------------

struct Child {
    pid_t pid = -1;
    Fd sock;
};

// A fresh image of this binary as the new process, on one end of a socketpair.
Child spawn_new(const std::string& stop = "", long memlock = -1) {
    Child c;
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return c;
    c.sock = Fd(sv[0]);
    Fd child_end(sv[1]);
    c.pid = ::fork();
    if (c.pid == 0) {
        if (::dup2(child_end.get(), 3) != 3)
            _exit(126);
        ::close_range(4, ~0U, 0);
        const std::string a1 = "--stop=" + stop, a2 = "--memlock=" + std::to_string(memlock);
        ::execl("/proc/self/exe", "vfio_handover_lab_test", "--role=new", a1.c_str(), a2.c_str(),
                static_cast<char*>(nullptr));
        _exit(127);
    }
    return c;
}

int wait_child(pid_t pid) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// The old process's driver: edu in the default container, a hugetlb memfd
// at kVa mapped by file (by address where the kernel or mode cannot).
class Handover : public ::testing::TestWithParam<std::string> {
protected:
    void SetUp() override {
        Options o;
        ASSERT_TRUE(apply_environment(o));
        auto v = Vfio::create(o);
        ASSERT_TRUE(v) << v.error().message();
        vfio = std::move(*v);
        auto d = vfio->assign_device(vfio->default_container(), kEdu);
        ASSERT_TRUE(d) << d.error().message();
        dev = *d;
        memfd = Fd(::memfd_create("handover", MFD_CLOEXEC | MFD_HUGETLB));
        ASSERT_TRUE(memfd.valid());
        ASSERT_EQ(::ftruncate(memfd.get(), kMemLen), 0);
        void* p = ::mmap(reinterpret_cast<void*>(kVa), kMemLen, PROT_READ | PROT_WRITE,
                         MAP_SHARED | MAP_FIXED_NOREPLACE | MAP_POPULATE, memfd.get(), 0);
        ASSERT_EQ(p, reinterpret_cast<void*>(kVa)) << std::strerror(errno);
        mem = static_cast<std::uint8_t*>(p);
        Container& c = vfio->default_container();
        if (!c.maps_memory())
            return;  // group no-IOMMU: nothing to map; the handover refuses anyway
        auto io = c.alloc_iova(kMemLen, kEduMask, 2 << 20);
        ASSERT_TRUE(io) << io.error().message();
        iova = *io;
        ASSERT_TRUE(c.map_file(kVa, memfd.get(), 0, iova, kMemLen));
        pd = std::make_unique<pci::PciDevice>(*dev);
        auto e = edu::EduDevice::open(*pd, kEduMask);
        ASSERT_TRUE(e) << e.error().message();
        edu = std::move(*e);
    }
    void TearDown() override {
        edu.reset();
        pd.reset();
        vfio.reset();
        if (mem != nullptr)
            ::munmap(mem, kMemLen);
    }
    // The old process's own round trip: it is (still) in charge.
    void round_trip(std::uint32_t seed) {
        fill(mem + 4 * kPage, seed);
        std::memset(mem + 5 * kPage, 0, kLen);
        ASSERT_TRUE(edu->dma_to_device(iova + 4 * kPage, 0, kLen));
        ASSERT_TRUE(edu->dma_to_ram(iova + 5 * kPage, 0, kLen));
        EXPECT_TRUE(matches(mem + 5 * kPage, seed)) << "the old process's own DMA";
    }
    std::vector<FileRegion> regions() const { return {{kVa, kMemLen, memfd.get(), 0}}; }

    std::unique_ptr<Vfio> vfio;
    Device* dev = nullptr;
    Fd memfd;
    std::uint8_t* mem = nullptr;
    std::uint64_t iova = 0;
    std::unique_ptr<pci::PciDevice> pd;
    std::unique_ptr<edu::EduDevice> edu;
};

// Where the kernel or mode cannot, the call says what it needs and sends
// nothing; quiesce is never called.
TEST_P(Handover, RefusedWhereUnsupported) {
    if (handover_expected())
        GTEST_SKIP() << "cdev on Linux " << testing::kernel_version().str()
                     << " hands over (the other tests)";
    auto why = can_hand_over(*vfio);
    ASSERT_FALSE(why);
    EXPECT_EQ(why.error().err(), ENOTSUP) << why.error().message();
    const std::string msg = why.error().message();
    std::printf("handover (%s, Linux %s): %s\n", mode_label().c_str(),
                testing::kernel_version().str().c_str(), msg.c_str());
    EXPECT_NE(msg.find("6.13"), std::string::npos) << "names the kernel it needs: " << msg;
    if (mode_label() != "cdev") {
        EXPECT_NE(msg.find("cdev"), std::string::npos) << "names the mode it needs: " << msg;
    }
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    Fd a(sv[0]), b(sv[1]);
    bool quiesced = false;
    auto r = hand_over(*vfio, a.get(), regions(), [&] { quiesced = true; });
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().err(), ENOTSUP);
    EXPECT_FALSE(quiesced);
    char byte;
    EXPECT_EQ(::recv(b.get(), &byte, 1, MSG_DONTWAIT), -1) << "nothing was sent";
}

// A DMA started by the old process lands in memory the new process reads.
// edu runs a transfer on a 100 ms QEMU timer after its start bit is set
// (QEMU hw/misc/edu.c edu_dma_timer): started just before the handover, it
// is still pending when the old process makes its last access, and the
// device writes the bytes while (or after) the new process takes over.
TEST_P(Handover, DmaInFlightLandsInTheNewProcess) {
    if (!handover_expected())
        GTEST_SKIP() << "no handover in " << mode_label() << " on Linux "
                     << testing::kernel_version().str() << " (RefusedWhereUnsupported)";
    ASSERT_TRUE(can_hand_over(*vfio)) << "cdev on 6.13+ maps by file and changes process";
    const long pin_before = status_kb(0, "VmPin");
    Child c = spawn_new();
    ASSERT_GT(c.pid, 0);
    // The transfer: device buffer -> page 1, its bytes put there first by
    // a finished transfer from page 0.
    fill(mem, 1);
    std::memset(mem + kPage, 0, kLen);
    ASSERT_TRUE(edu->dma_to_device(iova, 0, kLen));
    std::uint64_t last_access = 0, started = 0;
    bool busy_at_last = false;
    std::string start_error;
    auto t = hand_over(*vfio, c.sock.get(), regions(), [&] {
        // The new process is ready: the transfer starts now, the old
        // process's last act on the device, and runs on past it.
        started = now_ns();
        if (auto s = edu->start_dma(edu::Direction::to_ram, iova + kPage, 0, kLen); !s)
            start_error = s.error().message();
        busy_at_last = edu->dma_busy();  // the last device access
        last_access = now_ns();
        edu->let_go();  // its destructor must not stop the new owner's device
        edu.reset();
        pd.reset();
    });
    ASSERT_TRUE(t) << t.error().message();
    EXPECT_EQ(start_error, "");
    const long pin_after = status_kb(0, "VmPin");
    vfio.reset();  // closes this process's fds; the kernel objects stay
    Report rep;
    auto got = eal::mp::receive_with_fds(c.sock.get(), std::as_writable_bytes(std::span(&rep, 1)), 0);
    const int status = wait_child(c.pid);
    ASSERT_TRUE(got && got->bytes == sizeof rep) << "no report from the new process (exit "
                                                  << status << ")";
    rep.text[sizeof rep.text - 1] = 0;
    const double gap_ms = (static_cast<double>(rep.first_access_ns) - last_access) / 1e6;
    std::printf("handover (%s): DMA started %.1f ms before the old process's last access, "
                "still running then: %s, still running at the new process's first: %s\n",
                mode_label().c_str(), (last_access - started) / 1e6, busy_at_last ? "yes" : "no",
                rep.dma_busy_at_first ? "yes" : "no");
    std::printf("handover (%s): OFFER->READY %.1f ms, gap last access (old) -> first access "
                "(new) %.2f ms, whole handover %.1f ms\n",
                mode_label().c_str(), (t->ready_ns - t->offered_ns) / 1e6, gap_ms,
                (rep.first_access_ns - t->offered_ns) / 1e6);
    std::printf("handover (%s): VmPin old %ld -> %ld kB, new %ld -> %ld kB (%llu kB mapped)\n",
                mode_label().c_str(), pin_before, pin_after,
                static_cast<long>(rep.vmpin_before_kb), static_cast<long>(rep.vmpin_after_kb),
                static_cast<unsigned long long>(kMemLen / 1024));
    std::printf("new process: %s\n", rep.text);
    EXPECT_EQ(status, 0);
    EXPECT_TRUE(rep.bytes_ok) << "the old process's DMA in the new process's memory";
    EXPECT_TRUE(rep.own_dma_ok) << "the new process drives edu itself";
    EXPECT_GT(rep.first_access_ns, last_access);
    // The accounting moved: the old process's pinned pages are the new one's.
    EXPECT_EQ(pin_before - pin_after, static_cast<long>(kMemLen / 1024));
    EXPECT_EQ(rep.vmpin_after_kb - rep.vmpin_before_kb, static_cast<long>(kMemLen / 1024));
}

// The same driver stopped and started again in a new process: the old one
// releases everything, the new one (already running, as in the handover)
// opens the device, maps the memory and makes its first access.
TEST_P(Handover, ReinitBaseline) {
    if (!handover_expected())
        GTEST_SKIP() << "compared with the handover, which " << mode_label()
                     << " does not have on Linux " << testing::kernel_version().str();
    Child c = spawn_new("reinit");
    ASSERT_GT(c.pid, 0);
    (void)edu->dma_busy();  // the last access
    const std::uint64_t last_access = now_ns();
    edu.reset();
    pd.reset();
    vfio.reset();
    const char go = 1;
    ASSERT_EQ(::send(c.sock.get(), &go, 1, 0), 1);
    std::uint64_t first = 0;
    const auto n = ::recv(c.sock.get(), &first, sizeof first, 0);
    const int status = wait_child(c.pid);
    ASSERT_EQ(status, 0) << "the restarted driver failed at step " << status;
    ASSERT_EQ(n, static_cast<ssize_t>(sizeof first));
    std::printf("re-init (%s): gap last access (old) -> first access (new process, after "
                "release, open, assign, map by file, BAR map) %.2f ms\n",
                mode_label().c_str(), (first - last_access) / 1e6);
}

// Failure half-way: the old process stays in charge with what it had.
struct Before {
    int fds;
    long vmpin;
    std::size_t mappings;
};

class HandoverFails : public Handover {
protected:
    Before before() { return {open_fds(), status_kb(0, "VmPin"), vfio->default_container().mapping_count()}; }
    void expect_in_charge(const Before& b, const char* what) {
        EXPECT_EQ(open_fds(), b.fds) << what << ": an fd leaked or went missing";
        EXPECT_EQ(status_kb(0, "VmPin"), b.vmpin) << what << ": the pinned pages are charged back";
        EXPECT_EQ(vfio->default_container().mapping_count(), b.mappings) << what;
        EXPECT_TRUE(can_hand_over(*vfio)) << what << ": and can try again";
        round_trip(9);
    }
    void run(const std::string& stop, long memlock, int want_err, const char* what) {
        if (!handover_expected())
            GTEST_SKIP() << "no handover in " << mode_label() << " on Linux "
                         << testing::kernel_version().str();
        const Before b = before();
        Child c = spawn_new(stop, memlock);
        ASSERT_GT(c.pid, 0);
        bool quiesced = false;
        auto r = hand_over(*vfio, c.sock.get(), regions(), [&] { quiesced = true; });
        const int status = wait_child(c.pid);
        ASSERT_FALSE(r) << what;
        std::printf("handover (%s), %s: %s (new process exit %d)\n", mode_label().c_str(), what,
                    r.error().message().c_str(), status);
        EXPECT_EQ(r.error().err(), want_err) << r.error().message();
        EXPECT_FALSE(quiesced) << "the old process never stopped its driver";
        c.sock.reset();
        expect_in_charge(b, what);
    }
};

TEST_P(HandoverFails, NewProcessDiesBeforeChangeProcess) {
    run("offer", -1, EPIPE, "new process died after the OFFER");
}

TEST_P(HandoverFails, NewProcessDiesAfterChangeProcess) {
    run("change", -1, EPIPE, "new process died after IOMMU_IOAS_CHANGE_PROCESS");
}

TEST_P(HandoverFails, ChangeProcessRefused) {
    run("", 4096, ECANCELED, "the new process's RLIMIT_MEMLOCK is 4 KiB");
}

// A mapping by address cannot change process: refused before anything is
// sent, naming the mapping.
TEST_P(HandoverFails, MappingByAddress) {
    if (!handover_expected())
        GTEST_SKIP() << "no handover in " << mode_label();
    void* p = ::mmap(nullptr, 2 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(p, MAP_FAILED);
    Container& c = vfio->default_container();
    auto io = c.alloc_iova(2 * kPage, kEduMask);
    ASSERT_TRUE(io);
    ASSERT_TRUE(c.map(reinterpret_cast<std::uint64_t>(p), *io, 2 * kPage));
    auto why = can_hand_over(*vfio);
    ASSERT_FALSE(why);
    EXPECT_EQ(why.error().err(), ENOTSUP);
    EXPECT_NE(why.error().message().find("by address"), std::string::npos)
        << why.error().message();
    ASSERT_TRUE(c.unmap(*io, 2 * kPage));
    EXPECT_TRUE(can_hand_over(*vfio));
    ::munmap(p, 2 * kPage);
}

// Item of the map-by-file question: 1 GiB mapped by address and by file in
// interleaved rounds, time and VmPin/VmLck growth of each.
TEST_P(Handover, MapByFileTimeAndAccounting) {
    if (!(mode_label() == "cdev" && testing::kernel_version().at_least(6, 13)))
        GTEST_SKIP() << "map by file needs cdev on Linux 6.13+ (" << mode_label() << ", Linux "
                     << testing::kernel_version().str() << ")";
    constexpr std::uint64_t kGiB = 1ULL << 30;
    Fd fd(::memfd_create("gib", MFD_CLOEXEC | MFD_HUGETLB));
    ASSERT_EQ(::ftruncate(fd.get(), kGiB), 0);
    void* p = ::mmap(nullptr, kGiB, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd.get(), 0);
    ASSERT_NE(p, MAP_FAILED) << "1 GiB of 2 MiB huge pages: " << std::strerror(errno);
    Container& c = vfio->default_container();
    auto io = c.alloc_iova(kGiB, ~0ULL, 2 << 20);
    ASSERT_TRUE(io) << io.error().message();
    const int rounds = std::getenv("VFIOKIT_MAP_ROUNDS") ? std::atoi(std::getenv("VFIOKIT_MAP_ROUNDS")) : 5;
    std::vector<double> by_addr, by_file;
    long pin_addr = 0, pin_file = 0, lck_addr = 0, lck_file = 0;
    const std::size_t file_maps0 = c.file_maps();
    for (int r = 0; r < rounds; ++r) {
        for (int k = 0; k < 2; ++k) {
            const bool file = (k == 0) == (r % 2 == 0);  // alternate which goes first
            const long pin0 = status_kb(0, "VmPin"), lck0 = status_kb(0, "VmLck");
            const std::uint64_t t0 = now_ns();
            auto ok = file ? c.map_file(reinterpret_cast<std::uint64_t>(p), fd.get(), 0, *io, kGiB)
                           : c.map(reinterpret_cast<std::uint64_t>(p), *io, kGiB);
            const std::uint64_t t1 = now_ns();
            ASSERT_TRUE(ok) << ok.error().message();
            (file ? pin_file : pin_addr) = status_kb(0, "VmPin") - pin0;
            (file ? lck_file : lck_addr) = status_kb(0, "VmLck") - lck0;
            (file ? by_file : by_addr).push_back((t1 - t0) / 1e6);
            ASSERT_TRUE(c.unmap(*io, kGiB));
        }
    }
    EXPECT_EQ(c.file_maps() - file_maps0, static_cast<std::size_t>(rounds)) << "every map_file by file";
    auto stats = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        char b[96];
        std::snprintf(b, sizeof b, "median %.1f ms, min %.1f, max %.1f", v[v.size() / 2], v.front(),
                      v.back());
        return std::string(b);
    };
    std::printf("map 1 GiB (%s, %d interleaved rounds): IOMMU_IOAS_MAP %s; IOMMU_IOAS_MAP_FILE %s\n",
                mode_label().c_str(), rounds, stats(by_addr).c_str(), stats(by_file).c_str());
    std::printf("accounting per 1 GiB map (%s, no CAP_IPC_LOCK): by address VmPin +%ld kB, VmLck "
                "+%ld kB; by file VmPin +%ld kB, VmLck +%ld kB\n",
                mode_label().c_str(), pin_addr, lck_addr, pin_file, lck_file);
    // The kernel charges the mapping process either way (measured, and
    // iommufd/pages.c: iopt_alloc_file_pages sets source_mm = current->mm
    // as the by-address path does): the file does not carry the charge.
    EXPECT_EQ(pin_addr, static_cast<long>(kGiB / 1024));
    EXPECT_EQ(pin_file, static_cast<long>(kGiB / 1024));
    ::munmap(p, kGiB);
}

INSTANTIATE_TEST_SUITE_P(Lab, Handover, ::testing::Values(std::string("mode")));
INSTANTIATE_TEST_SUITE_P(Lab, HandoverFails, ::testing::Values(std::string("mode")));

}  // namespace
}  // namespace vfiokit::vfio

int main(int argc, char** argv) {
    std::string role, stop;
    long memlock = -1;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a.starts_with("--role="))
            role = a.substr(7);
        else if (a.starts_with("--stop="))
            stop = a.substr(7);
        else if (a.starts_with("--memlock="))
            memlock = std::atol(a.c_str() + 10);
    }
    if (role == "new" && stop == "reinit")
        return vfiokit::vfio::reinit_main(3);
    if (role == "new")
        return vfiokit::vfio::new_main(3, stop, memlock);
    // Pages pinned without CAP_IPC_LOCK are charged (to the user's
    // locked_vm, limited by RLIMIT_MEMLOCK), so the accounting can be seen
    // to move; the limit itself is lifted.
    rlimit r{RLIM_INFINITY, RLIM_INFINITY};
    if (::setrlimit(RLIMIT_MEMLOCK, &r) != 0)
        std::perror("setrlimit RLIMIT_MEMLOCK");
    vfiokit::testing::drop_capability(CAP_IPC_LOCK);
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}

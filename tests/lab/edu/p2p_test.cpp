// Peer-to-peer DMA into a BAR (Container::map_device_bar), on the modern
// shape (Linux 7.3, QEMU 11.1), once per VFIO mode:
//
//   VFIOKIT_VFIO_MODE=cdev VFIOKIT_LAB_SHAPE=modern p2p_lab_test
//
// The exporter is the ivshmem-plain at 0000:00:07.0, whose BAR 2 is 1 MiB
// of memory (a memfd in QEMU); the DMA engine is the edu at 0000:00:03.0,
// probed by the EAL (Eal::init -a) with its 28-bit mask, so EAL memory lies
// under it. Both are in the EAL's default container. In cdev mode the BAR
// is mapped at an IOVA under edu's mask, edu copies a pattern from EAL
// memory into it and back out, and the bytes are checked through the
// ivshmem's own BAR mapping. Then the exporter is released while its BAR
// is mapped: the kernel revokes the dma-buf, and the test shows what
// follows (the mapping reports it, edu's DMA there is stopped by the IOMMU
// and reported as a DMAR fault, unmap still works, nothing leaks). In the
// other modes the call is refused with ENOTSUP naming cdev mode.
//
// The job (devtools/lab/jobs/selftest-modern.sh) binds both devices to
// vfio-pci.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "edu.hpp"
#include "lab_env.hpp"
#include "vfiokit/eal/eal.hpp"
#include "vfiokit/eal/format.hpp"
#include "vfiokit/eal/vfio/syscalls.hpp"
#include "vfiokit/eal/vfio/vfio.hpp"
#include "vfiokit/uapi/iommufd.hpp"

namespace vfiokit::edu {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
using testing::mode_label;
using testing::open_fds;

const PciAddress kEdu = *PciAddress::parse("0000:00:03.0");
const PciAddress kIvshmem = *PciAddress::parse("0000:00:07.0");
constexpr unsigned kIvshmemBar = 2;
constexpr std::uint64_t kBarSize = 1 << 20;  // the shape's memory backend (lab.py)
constexpr std::size_t kChunk = kMaxTransfer;  // 4095: the most one edu transfer moves

std::uint8_t pattern(unsigned seed, std::size_t i) {
    return static_cast<std::uint8_t>(seed * 29 + i * 13 + (i >> 7));
}

// Kernel log records written after construction (/dev/kmsg, non-blocking).
class KernelLog {
public:
    KernelLog() : fd_(::open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC)) {
        if (fd_ >= 0)
            ::lseek(fd_, 0, SEEK_END);
    }
    ~KernelLog() {
        if (fd_ >= 0)
            ::close(fd_);
    }
    KernelLog(const KernelLog&) = delete;
    KernelLog& operator=(const KernelLog&) = delete;
    [[nodiscard]] bool ok() const { return fd_ >= 0; }
    std::vector<std::string> lines() const {
        std::vector<std::string> out;
        char rec[2048];
        ssize_t n;
        while (fd_ >= 0 && (n = ::read(fd_, rec, sizeof rec - 1)) > 0) {
            std::string r(rec, static_cast<std::size_t>(n));
            const auto semi = r.find(';');
            std::string text = r.substr(semi == std::string::npos ? 0 : semi + 1);
            out.push_back(text.substr(0, text.find('\n')));
        }
        return out;
    }

private:
    int fd_;
};

// --no-huge: 4 KiB pages. The shape reserves a 1 GiB huge page, and a
// segment of it cannot lie under edu's 28-bit mask (256 MiB of IOVA).
Result<std::unique_ptr<eal::Eal>> init_eal() {
    const char* argv[] = {"p2p_lab_test", "--no-huge", "-a", "0000:00:03.0"};
    return eal::Eal::init(4, argv);
}

class P2p : public ::testing::TestWithParam<std::string> {
protected:
    void SetUp() override {
        auto e = init_eal();
        ASSERT_TRUE(e) << e.error().message();
        eal_ = std::move(*e);
        edu_ = driver().find(kEdu);
        ASSERT_NE(edu_, nullptr) << "the EAL did not probe edu " << kEdu.str();
        assign_ivshmem();
    }
    void TearDown() override {
        bar_ = {};
        eal_.reset();
    }

    vfio::Container& dc() { return eal_->vfio().default_container(); }

    // The exporter, straight from VFIO (no driver of ours takes it), and
    // its BAR 2 mapped for the CPU.
    void assign_ivshmem() {
        auto d = eal_->vfio().assign_device(dc(), kIvshmem.str());
        ASSERT_TRUE(d) << d.error().message();
        ivshmem_ = *d;
        auto m = ivshmem_->ops().map_region(kIvshmemBar, 0, kBarSize, PROT_READ | PROT_WRITE,
                                            nullptr);
        ASSERT_TRUE(m) << m.error().message();
        bar_ = std::move(*m);
    }
    std::uint8_t* bar() { return static_cast<std::uint8_t*>(bar_.addr()); }

    // `len` bytes of EAL memory and their IOVA.
    std::pair<std::uint8_t*, std::uint64_t> eal_buffer(std::size_t len) {
        auto p = eal_->heap().alloc(len, 4096);
        if (!p) {
            ADD_FAILURE() << p.error().message();
            return {nullptr, 0};
        }
        auto iova = eal_->virt2iova(*p);
        EXPECT_TRUE(iova) << "EAL memory without an IOVA";
        return {static_cast<std::uint8_t*>(*p), iova.value_or(0)};
    }

    // An IOVA range for the BAR that edu can reach.
    std::uint64_t bar_iova() {
        auto iova = dc().alloc_iova(kBarSize, kDefaultDmaMask);
        EXPECT_TRUE(iova) << iova.error().message();
        return iova.value_or(0);
    }

    std::unique_ptr<eal::Eal> eal_;
    EduDevice* edu_ = nullptr;
    vfio::Device* ivshmem_ = nullptr;
    vfio::Mapping bar_;
};

#define CDEV_ONLY()                                                                      \
    if (dc().mode() != vfio::Mode::cdev)                                                 \
        GTEST_SKIP() << "BAR mappings are cdev's; in " << GetParam()                     \
                     << " P2p.RefusedOutsideCdevMode checks the refusal"

// edu copies from EAL memory into the BAR (three places: the first page,
// across a page boundary in the middle, the last bytes) and from the BAR
// into EAL memory; the CPU checks each through the BAR's own mapping.
TEST_P(P2p, EduDmaIntoTheIvshmemBarAndBack) {
    CDEV_ONLY();
    // EAL memory first: growing the heap opens the segment's memfd.
    auto [src, src_iova] = eal_buffer(2 * 4096);
    auto [dst, dst_iova] = eal_buffer(2 * 4096);
    ASSERT_TRUE(src && dst);
    const std::uint64_t iova = bar_iova();
    ASSERT_NE(iova, 0u);
    const int fds = open_fds();
    auto r = dc().map_device_bar(*ivshmem_, kIvshmemBar, 0, kBarSize, iova);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(open_fds(), fds) << "map_device_bar kept an fd (its dma-buf)";
    const auto bars = dc().bar_mappings();
    ASSERT_EQ(bars.size(), 1u);
    EXPECT_EQ(bars[0].device, kIvshmem);
    EXPECT_FALSE(bars[0].revoked);
    ASSERT_TRUE(dc().lookup(iova + kBarSize - 1));
    std::printf("p2p %s: ivshmem %s BAR %u (%s bytes) at IOVA %s, under edu's mask %s\n",
                GetParam().c_str(), kIvshmem.str().c_str(), kIvshmemBar, hex(kBarSize).c_str(),
                range_text(iova, kBarSize).c_str(), hex(kDefaultDmaMask).c_str());

    std::size_t verified = 0, into_bar = 0, from_bar = 0;

    // EAL memory -> edu -> BAR.
    std::memset(bar(), 0xee, kBarSize);
    const std::uint64_t offsets[] = {0, kBarSize / 2 - 100, kBarSize - kChunk};
    unsigned seed = 1;
    for (std::uint64_t off : offsets) {
        for (std::size_t i = 0; i < kChunk; ++i)
            src[i] = pattern(seed, i);
        auto to = edu_->dma_to_device(src_iova, 0, kChunk);
        ASSERT_TRUE(to) << to.error().message();
        auto out = edu_->dma_to_ram(iova + off, 0, kChunk);
        ASSERT_TRUE(out) << out.error().message();
        ASSERT_EQ(std::memcmp(bar() + off, src, kChunk), 0)
            << kChunk << " bytes at BAR offset " << hex(off) << " are not what edu wrote";
        if (off > 0) {
            EXPECT_EQ(bar()[off - 1], 0xee) << "edu wrote before its range";
        }
        if (off + kChunk < kBarSize) {
            EXPECT_EQ(bar()[off + kChunk], 0xee) << "edu wrote past its range";
        }
        verified += kChunk;
        into_bar += kChunk;
        std::printf("p2p %s: edu -> ivshmem BAR offset %s: %zu bytes ok\n", GetParam().c_str(),
                    hex(off).c_str(), kChunk);
        ++seed;
    }

    // BAR -> edu -> EAL memory: the CPU writes the BAR, edu reads it.
    const std::uint64_t from = 0x40000 + 7;
    for (std::size_t i = 0; i < kChunk; ++i)
        bar()[from + i] = pattern(seed, i);
    std::memset(dst, 0x5a, 2 * 4096);
    auto in = edu_->dma_to_device(iova + from, 0, kChunk);
    ASSERT_TRUE(in) << in.error().message();
    auto back = edu_->dma_to_ram(dst_iova, 0, kChunk);
    ASSERT_TRUE(back) << back.error().message();
    ASSERT_EQ(std::memcmp(dst, bar() + from, kChunk), 0) << "edu did not read the BAR's bytes";
    EXPECT_EQ(dst[kChunk], 0x5a);
    verified += kChunk;
    from_bar += kChunk;
    std::printf("p2p %s: ivshmem BAR offset %s -> edu -> EAL memory: %zu bytes ok\n",
                GetParam().c_str(), hex(from).c_str(), kChunk);

    // Unmapped: the table and the kernel are both rid of it (memory maps
    // at the same IOVA only if the kernel freed it).
    ASSERT_TRUE(dc().unmap(iova, kBarSize));
    EXPECT_TRUE(dc().bar_mappings().empty());
    EXPECT_FALSE(dc().lookup(iova));
    auto probe = dc().map(reinterpret_cast<std::uint64_t>(dst), iova, 4096);
    EXPECT_TRUE(probe) << "the IOVA is still taken in the kernel: "
                       << (probe ? "" : probe.error().message());
    if (probe) {
        EXPECT_TRUE(dc().unmap(iova, 4096));
    }
    EXPECT_EQ(open_fds(), fds);
    std::printf("p2p %s: bytes verified: %zu (%zu edu -> ivshmem BAR, %zu ivshmem BAR -> edu); "
                "unmapped, the IOVA free again, no fd left\n",
                GetParam().c_str(), verified, into_bar, from_bar);
}

// Bad input fails before anything reaches the kernel; a map the kernel
// refuses (injected at IOMMU_IOAS_MAP_FILE) leaves no fd and no mapping.
TEST_P(P2p, BadInputAndAFailedMapLeaveNothing) {
    CDEV_ONLY();
    const std::uint64_t iova = bar_iova();
    ASSERT_NE(iova, 0u);
    const int fds = open_fds();
    struct Case {
        unsigned bar;
        std::uint64_t offset, len;
        int err;
        const char* says;
    };
    const Case cases[] = {
        {kIvshmemBar, 0, kBarSize + 4096, EINVAL, "beyond the BAR's 0x100000 bytes"},
        {kIvshmemBar, 12, 4096, EINVAL, "multiples of the page size"},
        {0, 0, 4096, EINVAL, "beyond the BAR's 0x100"},  // ivshmem's 256 bytes of registers
        {1, 0, 4096, ENODEV, "no BAR 1"},                 // ivshmem-plain has no MSI-X BAR
        {6, 0, 4096, EINVAL, "BARs 0-5"},
    };
    for (const Case& c : cases) {
        auto r = dc().map_device_bar(*ivshmem_, c.bar, c.offset, c.len, iova);
        ASSERT_FALSE(r) << "BAR " << c.bar;
        EXPECT_EQ(r.error().err(), c.err) << r.error().message();
        EXPECT_NE(r.error().message().find(c.says), std::string::npos) << r.error().message();
        std::printf("p2p %s: refused: %s\n", GetParam().c_str(), r.error().message().c_str());
    }
    {
        vfio::FaultInjector fi;
        vfio::ScopedSyscalls guard(fi);
        fi.fail_nth(vfio::Call::ioctl, 1, EIO, uapi::kIommuIoasMapFile);
        auto r = dc().map_device_bar(*ivshmem_, kIvshmemBar, 0, kBarSize, iova);
        ASSERT_FALSE(r);
        EXPECT_TRUE(fi.fired());
        EXPECT_EQ(r.error().err(), EIO) << r.error().message();
        std::printf("p2p %s: map refused (injected): %s\n", GetParam().c_str(),
                    r.error().message().c_str());
    }
    EXPECT_EQ(open_fds(), fds) << "the dma-buf's fd leaked";
    EXPECT_TRUE(dc().bar_mappings().empty());
    EXPECT_FALSE(dc().lookup(iova));
    // Nothing of it in the kernel either: the same mapping goes in.
    auto r = dc().map_device_bar(*ivshmem_, kIvshmemBar, 0, kBarSize, iova);
    ASSERT_TRUE(r) << r.error().message();
    ASSERT_TRUE(dc().unmap(iova, kBarSize));
    EXPECT_EQ(open_fds(), fds);
}

// The exporter is released while its BAR is mapped. The kernel revokes
// the dma-buf when the device's last fd closes (vfio_pci_core_close_device
// -> vfio_pci_dma_buf_cleanup -> iommufd's revoke: the range leaves the
// IOMMU's page table, the IOVA stays taken). What vfiokit shows: the
// mapping reports `revoked`; edu's write to it lands nowhere and the
// IOMMU reports a DMAR fault naming edu and the IOVA; unmap() succeeds;
// no fd is left; the BAR's memory, seen again after re-assigning the
// ivshmem, holds what it held before.
TEST_P(P2p, ReleasingTheExporterRevokesItsMappedBar) {
    CDEV_ONLY();
    auto [src, src_iova] = eal_buffer(4096);
    ASSERT_NE(src, nullptr);
    const std::uint64_t iova = bar_iova();
    ASSERT_NE(iova, 0u);
    const int fds = open_fds();
    ASSERT_TRUE(dc().map_device_bar(*ivshmem_, kIvshmemBar, 0, kBarSize, iova));
    const std::uint64_t off = 0x80000;
    // Control: mapped, the write lands.
    for (std::size_t i = 0; i < kChunk; ++i)
        src[i] = pattern(7, i);
    std::memset(bar() + off, 0xc5, 4096);
    ASSERT_TRUE(edu_->dma_to_device(src_iova, 0, kChunk));
    ASSERT_TRUE(edu_->dma_to_ram(iova + off, 0, kChunk));
    ASSERT_EQ(std::memcmp(bar() + off, src, kChunk), 0)
        << "the control write did not land: what follows would prove nothing";
    std::memset(bar() + off, 0xc5, 4096);

    // The CPU mapping holds the device file open (vfio-pci's mmap), which
    // would keep the kernel from closing the device: it goes first.
    bar_ = {};
    auto klog = std::make_unique<KernelLog>();
    ASSERT_TRUE(klog->ok()) << "/dev/kmsg: the IOMMU's fault report cannot be read";
    ::alarm(60);  // a release that hangs kills the test, loudly
    const auto t0 = Clock::now();
    auto rel = eal_->vfio().release_device(*ivshmem_);
    const auto release_ms =
        std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count();
    ::alarm(0);
    ivshmem_ = nullptr;
    ASSERT_TRUE(rel) << rel.error().message();
    const auto bars = dc().bar_mappings();
    ASSERT_EQ(bars.size(), 1u) << "the mapping must stay until unmapped: its IOVA is taken";
    EXPECT_TRUE(bars[0].revoked) << "the exporter is gone, the mapping must say so";
    std::printf("p2p %s: released %s in %lld ms with its BAR mapped; bar_mappings(): %s %s %s\n",
                GetParam().c_str(), kIvshmem.str().c_str(), static_cast<long long>(release_ms),
                bars[0].device.str().c_str(), range_text(bars[0].iova, bars[0].len).c_str(),
                bars[0].revoked ? "revoked" : "live");

    // edu writes there again: nothing may arrive, the IOMMU must say why.
    const auto t1 = Clock::now();
    auto w = edu_->dma_to_ram(iova + off, 0, kChunk);
    std::printf("p2p %s: edu write to the revoked IOVA %s: %s after %lld ms\n", GetParam().c_str(),
                hex(iova + off).c_str(), w ? "device reports done" : w.error().message().c_str(),
                static_cast<long long>(
                    std::chrono::duration_cast<milliseconds>(Clock::now() - t1).count()));
    if (!w) {
        EXPECT_EQ(w.error().err(), ETIMEDOUT) << w.error().message();
        ASSERT_TRUE(edu_->wait_dma(milliseconds(5000)));
    }
    const std::string addr = hex(iova + off);
    const std::string who[] = {"Request device [" + kEdu.str().substr(5) + "]",
                               "Request device [" + kEdu.str() + "]"};
    std::vector<std::string> faults;
    const auto deadline = Clock::now() + milliseconds(3000);
    while (faults.empty() && Clock::now() < deadline) {
        for (const std::string& line : klog->lines())
            if (line.find("DMAR") != std::string::npos &&
                line.find("[DMA Write") != std::string::npos &&
                (line.find(who[0]) != std::string::npos ||
                 line.find(who[1]) != std::string::npos) &&
                line.find("fault addr " + addr + " ") != std::string::npos)
                faults.push_back(line);
        if (faults.empty())
            std::this_thread::sleep_for(milliseconds(50));
    }
    klog.reset();
    for (const std::string& line : faults)
        std::printf("kernel: %s\n", line.c_str());
    EXPECT_FALSE(faults.empty()) << "no DMAR fault for " << kEdu.str() << " at " << addr
                                 << ": nothing shows that the IOMMU stopped the write";

    // The mapping still unmaps; nothing is left but one fd fewer: the
    // released device's.
    auto u = dc().unmap(iova, kBarSize);
    EXPECT_TRUE(u) << u.error().message();
    std::printf("p2p %s: unmap of the revoked mapping: %s\n", GetParam().c_str(),
                u ? "ok" : u.error().message().c_str());
    EXPECT_TRUE(dc().bar_mappings().empty());
    EXPECT_EQ(open_fds(), fds - 1);

    // The BAR's memory, through the device taken again: the canary is
    // whole, so the revoked write went nowhere.
    assign_ivshmem();
    ASSERT_NE(bar(), nullptr);
    std::size_t changed = 0;
    for (std::size_t i = 0; i < 4096; ++i)
        changed += bar()[off + i] != 0xc5;
    EXPECT_EQ(changed, 0u) << "the write after the revoke reached the BAR";
    // And P2P works again with the new device's dma-buf.
    ASSERT_TRUE(dc().map_device_bar(*ivshmem_, kIvshmemBar, 0, kBarSize, iova));
    ASSERT_TRUE(edu_->dma_to_ram(iova + off, 0, kChunk));
    EXPECT_EQ(std::memcmp(bar() + off, src, kChunk), 0) << "no P2P after re-assigning";
    ASSERT_TRUE(dc().unmap(iova, kBarSize));
    std::printf("p2p %s: after the revoke: %zu of %zu canary bytes changed, %zu DMAR fault "
                "record(s); re-assigned, mapped and written again: ok\n",
                GetParam().c_str(), changed, std::size_t{4096}, faults.size());
}

// Every other mode refuses, naming cdev mode, before exporting anything.
TEST_P(P2p, RefusedOutsideCdevMode) {
    if (dc().mode() == vfio::Mode::cdev)
        GTEST_SKIP() << "cdev maps BARs (the other P2p tests)";
    const int fds = open_fds();
    const std::size_t before = dc().mapping_count();
    auto r = dc().map_device_bar(*ivshmem_, kIvshmemBar, 0, kBarSize, 0x8000000);
    ASSERT_FALSE(r);
    const std::string msg = r.error().message();
    std::printf("p2p %s: %s\n", GetParam().c_str(), msg.c_str());
    EXPECT_EQ(r.error().err(), ENOTSUP) << msg;
    EXPECT_NE(msg.find("cdev mode"), std::string::npos) << msg;
    EXPECT_NE(msg.find(kIvshmem.str()), std::string::npos) << msg;
    EXPECT_EQ(open_fds(), fds);
    EXPECT_EQ(dc().mapping_count(), before);
    EXPECT_TRUE(dc().bar_mappings().empty());
}

INSTANTIATE_TEST_SUITE_P(Lab, P2p, ::testing::Values(mode_label()),
                         [](const auto& p) { return p.param; });

}  // namespace
}  // namespace vfiokit::edu

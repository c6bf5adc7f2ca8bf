// DeviceHandle over a fake device (release semantics), and KernelDevice,
// the kernel backends' device operations, over a fake kernel behind the
// syscall seam: what each operation asks the kernel, and how it reads the
// answers.
#include <sys/mman.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <thread>
#include <vector>

#include "fake_device.hpp"
#include "kernel_device.hpp"
#include "vfiokit/eal/vfio/device_ops.hpp"
#include "vfiokit/uapi/vfio.hpp"

namespace vfiokit::vfio {
namespace {

using testing::FakeDevice;
using testing::FakeDeviceLog;

PciAddress bdf() { return *PciAddress::parse("0000:00:03.0"); }

std::shared_ptr<DeviceHandle> fake_handle(const std::shared_ptr<FakeDeviceLog>& log) {
    auto dev = std::make_unique<FakeDevice>(log);
    dev->regions[7].bytes.assign(256, 0xab);
    return std::make_shared<DeviceHandle>(bdf(), std::move(dev));
}

void expect_released(const Error& e) {
    EXPECT_EQ(e.err(), ENODEV);
    EXPECT_NE(e.message().find("device 0000:00:03.0 was released"), std::string::npos)
        << e.message();
}

TEST(DeviceHandle, ForwardsWhileAlive) {
    auto log = std::make_shared<FakeDeviceLog>();
    auto h = fake_handle(log);
    EXPECT_TRUE(h->alive());
    EXPECT_EQ(h->address(), bdf());
    ASSERT_TRUE(h->info());
    std::uint32_t v = 0;
    ASSERT_TRUE(h->read_region(7, 4, &v, 4));
    EXPECT_EQ(v, 0xababababu);
    ASSERT_TRUE(h->set_irqs(IrqRequest{1, IrqAction::trigger, 0, 0, {}}));
    auto f = h->feature(3, FeatureOp::probe, {});
    ASSERT_FALSE(f);
    EXPECT_EQ(f.error().err(), ENOTSUP);
    EXPECT_NE(f.error().message().find("not supported in the fake device"), std::string::npos);
    EXPECT_EQ(log->calls,
              (std::vector<std::string>{"info", "read_region", "set_irqs", "feature"}));
}

TEST(DeviceHandle, AfterReleaseEveryCallFailsWithoutReachingTheDevice) {
    auto log = std::make_shared<FakeDeviceLog>();
    auto h = fake_handle(log);
    h->release();
    EXPECT_FALSE(h->alive());
    ASSERT_EQ(log->calls, std::vector<std::string>{"destroyed"});
    std::uint32_t v = 0;
    std::uint8_t payload[4] = {};
    expect_released(h->info().error());
    expect_released(h->region_info(0).error());
    expect_released(h->read_region(7, 0, &v, 4).error());
    expect_released(h->write_region(7, 0, &v, 4).error());
    expect_released(h->map_region(0, 0, 4096, PROT_READ, nullptr).error());
    expect_released(h->irq_info(0).error());
    expect_released(h->set_irqs(IrqRequest{}).error());
    expect_released(h->reset().error());
    expect_released(h->feature(0, FeatureOp::get, payload).error());
    EXPECT_EQ(log->calls, std::vector<std::string>{"destroyed"});
    h->release();  // idempotent
    EXPECT_EQ(log->calls, std::vector<std::string>{"destroyed"});
}

TEST(DeviceHandle, DestroyingTheLastReferenceReleases) {
    auto log = std::make_shared<FakeDeviceLog>();
    { auto h = fake_handle(log); }
    EXPECT_EQ(log->calls, std::vector<std::string>{"destroyed"});
}

// Calls racing the release either complete on the live device or fail
// cleanly; none reaches it after "destroyed".
TEST(DeviceHandle, ReleaseWaitsForCallsInProgress) {
    auto log = std::make_shared<FakeDeviceLog>();
    auto h = fake_handle(log);
    std::vector<std::thread> callers;
    std::atomic<int> ok{0}, refused{0};
    for (int t = 0; t < 2; ++t)
        callers.emplace_back([&] {
            for (int i = 0; i < 2000; ++i) {
                std::uint32_t v;
                if (auto r = h->read_region(7, 0, &v, 4))
                    ++ok;
                else if (r.error().err() == ENODEV)
                    ++refused;
            }
        });
    std::this_thread::yield();
    h->release();
    for (auto& c : callers)
        c.join();
    EXPECT_EQ(ok + refused, 4000);
    // Calls are logged from two threads only before the release; the log
    // is read here, after the joins.
    ASSERT_FALSE(log->calls.empty());
    EXPECT_EQ(log->calls.back(), "destroyed");
    EXPECT_EQ(static_cast<int>(log->calls.size()), ok + 1);
}

// --- KernelDevice over a fake kernel -------------------------------------------

// Answers the device ioctls on fd 42 the way vfio-pci would for a device
// with a sparse BAR0 and a config region; records SET_IRQS and FEATURE
// arguments and every pread/mmap offset.
class FakeKernel : public Syscalls {
public:
    static constexpr int kFd = 42;
    std::vector<unsigned long> ioctls;
    std::vector<std::uint8_t> last_irq_set, last_feature;
    std::vector<off_t> preads, mmaps;
    // Region info chain for BAR0, built by the test (after the header).
    std::vector<std::uint8_t> bar0_chain;
    std::uint32_t bar0_first_cap = 0;

    int open(const char*, int) override { return -1; }
    int close(int) override { return 0; }
    int ioctl(int fd, unsigned long req, void* arg) override {
        ioctls.push_back(req);
        if (fd != kFd) {
            errno = EBADF;
            return -1;
        }
        if (req == uapi::kVfioDeviceGetRegionInfo)
            return region_info(static_cast<uapi::vfio_region_info*>(arg));
        if (req == uapi::kVfioDeviceSetIrqs) {
            auto* s = static_cast<uapi::vfio_irq_set*>(arg);
            auto* b = static_cast<std::uint8_t*>(arg);
            last_irq_set.assign(b, b + s->argsz);
            return 0;
        }
        if (req == uapi::kVfioDeviceFeature) {
            auto* f = static_cast<uapi::vfio_device_feature*>(arg);
            auto* b = static_cast<std::uint8_t*>(arg);
            last_feature.assign(b, b + f->argsz);
            if ((f->flags & uapi::kVfioDeviceFeatureGet) != 0 && f->argsz > sizeof *f)
                std::memset(b + sizeof *f, 0x5a, f->argsz - sizeof *f);
            return 0;
        }
        errno = ENOTTY;
        return -1;
    }
    void* mmap(void*, std::size_t len, int prot, int, int, off_t off) override {
        mmaps.push_back(off);
        return ::mmap(nullptr, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    }
    int munmap(void* a, std::size_t len) override { return ::munmap(a, len); }
    int eventfd(unsigned, int) override { return -1; }
    ssize_t pread(int, void* buf, std::size_t len, off_t off) override {
        preads.push_back(off);
        std::memset(buf, 0x11, len);
        return static_cast<ssize_t>(len);
    }
    ssize_t pwrite(int, const void*, std::size_t len, off_t) override {
        return static_cast<ssize_t>(len);
    }
    ssize_t readlink(const char*, char*, std::size_t) override { return -1; }

private:
    int region_info(uapi::vfio_region_info* r) {
        const std::uint32_t need = static_cast<std::uint32_t>(sizeof *r + bar0_chain.size());
        const std::uint32_t in = r->argsz;
        r->offset = std::uint64_t{r->index} << 40;
        r->cap_offset = 0;
        if (r->index == 0) {  // BAR0: 1 MiB, mmap, with a chain
            r->size = 1 << 20;
            r->flags = uapi::kVfioRegionInfoFlagRead | uapi::kVfioRegionInfoFlagWrite |
                       uapi::kVfioRegionInfoFlagMmap |
                       (bar0_chain.empty() ? 0 : uapi::kVfioRegionInfoFlagCaps);
            if (!bar0_chain.empty()) {
                if (in < need) {
                    r->argsz = need;
                } else {
                    std::memcpy(r + 1, bar0_chain.data(), bar0_chain.size());
                    r->cap_offset = bar0_first_cap;
                }
            }
        } else if (r->index == 7) {  // config: 256 bytes, no mmap
            r->size = 256;
            r->flags = uapi::kVfioRegionInfoFlagRead | uapi::kVfioRegionInfoFlagWrite;
        } else if (r->index <= 8) {
            r->size = 0;
            r->flags = 0;
        } else {
            errno = EINVAL;
            return -1;
        }
        return 0;
    }
};

class KernelDeviceOnFake : public ::testing::Test {
protected:
    struct Dev : detail::KernelDevice {
        [[nodiscard]] int fd() const override { return FakeKernel::kFd; }
    };
    FakeKernel k;
    ScopedSyscalls seam{k};
    Dev dev;

    // A sparse-mmap capability with `n` areas claimed, `real` present.
    void sparse_chain(std::uint32_t n, std::uint32_t real) {
        uapi::vfio_region_info_cap_sparse_mmap s{};
        s.header.id = uapi::kVfioRegionInfoCapSparseMmap;
        s.header.version = 1;
        s.nr_areas = n;
        k.bar0_chain.resize(sizeof s + real * sizeof(uapi::vfio_region_sparse_mmap_area));
        std::memcpy(k.bar0_chain.data(), &s, sizeof s);
        for (std::uint32_t i = 0; i < real; ++i) {
            uapi::vfio_region_sparse_mmap_area a{0x1000u * (2 * i), 0x1000};
            std::memcpy(k.bar0_chain.data() + sizeof s + i * sizeof a, &a, sizeof a);
        }
        k.bar0_first_cap = sizeof(uapi::vfio_region_info);
    }
};

TEST_F(KernelDeviceOnFake, RegionInfoParsesTheSparseChain) {
    sparse_chain(2, 2);
    auto r = dev.region_info(0);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->size, 1u << 20);
    EXPECT_TRUE(r->mappable);
    ASSERT_EQ(r->sparse.size(), 2u);
    EXPECT_EQ(r->sparse[1].offset, 0x2000u);
    EXPECT_EQ(k.ioctls.size(), 2u);  // learn the size, then read the chain
}

TEST_F(KernelDeviceOnFake, ASparseCapabilityClaimingMoreAreasThanItHoldsIsMalformed) {
    sparse_chain(0x10000000u, 1);
    auto r = dev.region_info(0);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().err(), EPROTO);
    EXPECT_NE(r.error().message().find("region 0"), std::string::npos) << r.error().message();
}

TEST_F(KernelDeviceOnFake, RegionAccessLearnsTheOffsetOnceAndChecksBounds) {
    std::uint32_t v = 0;
    ASSERT_TRUE(dev.read_region(7, 0x10, &v, 4));
    ASSERT_TRUE(dev.read_region(7, 0x14, &v, 4));
    EXPECT_EQ(k.ioctls.size(), 1u);  // one GET_REGION_INFO, then cached
    EXPECT_EQ(k.preads, (std::vector<off_t>{(off_t{7} << 40) + 0x10, (off_t{7} << 40) + 0x14}));
    EXPECT_EQ(dev.read_region(7, 0xfe, &v, 4).error().err(), EINVAL);
    EXPECT_EQ(dev.read_region(7, ~std::uint64_t{0}, &v, 4).error().err(), EINVAL);
    EXPECT_EQ(dev.read_region(6, 0, &v, 4).error().err(), ENODEV);  // no ROM
    EXPECT_EQ(dev.read_region(9, 0, &v, 4).error().err(), EINVAL);  // kernel refuses
    EXPECT_EQ(k.preads.size(), 2u);
}

TEST_F(KernelDeviceOnFake, MapRegionMapsAtTheRegionsOffset) {
    sparse_chain(1, 1);
    auto m = dev.map_region(0, 0x2000, 0x1000, PROT_READ, nullptr);
    ASSERT_TRUE(m) << m.error().message();
    EXPECT_EQ(k.mmaps, std::vector<off_t>{0x2000});
    EXPECT_EQ(dev.map_region(0, 1 << 20, 0x1000, PROT_READ, nullptr).error().err(), EINVAL);
    EXPECT_EQ(dev.map_region(0, 0, 0, PROT_READ, nullptr).error().err(), EINVAL);
}

TEST_F(KernelDeviceOnFake, SetIrqsLaysOutTheKernelsStruct) {
    const int fds[3] = {10, 11, -1};
    ASSERT_TRUE(dev.set_irqs(IrqRequest{2, IrqAction::trigger, 0, 3, fds}));
    uapi::vfio_irq_set s;
    ASSERT_EQ(k.last_irq_set.size(), sizeof s + 3 * sizeof(std::int32_t));
    std::memcpy(&s, k.last_irq_set.data(), sizeof s);
    EXPECT_EQ(s.flags, uapi::kVfioIrqSetDataEventfd | uapi::kVfioIrqSetActionTrigger);
    EXPECT_EQ(s.index, 2u);
    EXPECT_EQ(s.count, 3u);
    std::int32_t got[3];
    std::memcpy(got, k.last_irq_set.data() + sizeof s, sizeof got);
    EXPECT_EQ(got[0], 10);
    EXPECT_EQ(got[2], -1);

    ASSERT_TRUE(dev.set_irqs(IrqRequest{0, IrqAction::unmask, 0, 1, {}}));
    ASSERT_EQ(k.last_irq_set.size(), sizeof s);
    std::memcpy(&s, k.last_irq_set.data(), sizeof s);
    EXPECT_EQ(s.flags, uapi::kVfioIrqSetDataNone | uapi::kVfioIrqSetActionUnmask);

    // A count that does not match the eventfds never reaches the kernel.
    const auto before = k.ioctls.size();
    EXPECT_EQ(dev.set_irqs(IrqRequest{2, IrqAction::trigger, 0, 2, fds}).error().err(), EINVAL);
    EXPECT_EQ(k.ioctls.size(), before);
}

TEST_F(KernelDeviceOnFake, FeatureFlagsAndPayload) {
    std::uint8_t payload[4] = {1, 2, 3, 4};
    ASSERT_TRUE(dev.feature(10, FeatureOp::set, payload));
    uapi::vfio_device_feature f;
    ASSERT_EQ(k.last_feature.size(), sizeof f + 4);
    std::memcpy(&f, k.last_feature.data(), sizeof f);
    EXPECT_EQ(f.flags, 10u | uapi::kVfioDeviceFeatureSet);
    EXPECT_EQ(k.last_feature[sizeof f + 3], 4);

    ASSERT_TRUE(dev.feature(10, FeatureOp::probe_set, payload));
    ASSERT_EQ(k.last_feature.size(), sizeof f);  // a probe carries no payload
    std::memcpy(&f, k.last_feature.data(), sizeof f);
    EXPECT_EQ(f.flags, 10u | uapi::kVfioDeviceFeatureProbe | uapi::kVfioDeviceFeatureSet);

    ASSERT_TRUE(dev.feature(3, FeatureOp::get, payload));
    EXPECT_EQ(payload[0], 0x5a);  // copied back
    EXPECT_EQ(dev.feature(0x10000, FeatureOp::probe, {}).error().err(), EINVAL);
}

TEST_F(KernelDeviceOnFake, UnknownIoctlsReportTheKernelsErrno) {
    auto r = dev.reset();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().err(), ENOTTY);
    EXPECT_NE(r.error().message().find("VFIO_DEVICE_RESET"), std::string::npos);
}

}  // namespace
}  // namespace vfiokit::vfio

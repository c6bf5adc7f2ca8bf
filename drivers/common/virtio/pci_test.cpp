// Host tests of the virtio 1.x PCI transport over a device the test
// plays through the device operations: a config space with the vendor
// capabilities, and a BAR whose common, ISR and device windows are
// registers the fake serves through region read/write (selectors and all,
// as QEMU's virtio-pci does) while its notify page is a memfd the
// transport maps, so the test sees the kicks.
#include "vfiokit/common/virtio/pci.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

#include "vfiokit/eal/vfio/device_ops.hpp"

namespace vfiokit::virtio {
namespace {

constexpr unsigned kBar = 4;
constexpr std::uint32_t kBarSize = 0x4000;
constexpr std::uint32_t kIsrOff = 0x1000, kDevOff = 0x2000, kNotifyOff = 0x3000;
constexpr std::uint32_t kNotifyMult = 4;
constexpr std::uint16_t kQueues = 3, kQueueMax = 256, kVectors = 4;

struct Queue {
    std::uint16_t size = kQueueMax, vector = kNoVector, enable = 0;
    std::uint64_t desc = 0, driver = 0, device = 0;
};

// What the device holds, shared with the test (the fake itself belongs to
// its DeviceHandle).
struct State {
    std::uint64_t offered = feature(kFVersion1) | feature(kFAccessPlatform) | feature(5);
    std::uint64_t driver_features = 0;
    std::uint32_t dfselect = 0, gfselect = 0;
    std::uint16_t config_vector = kNoVector;
    std::uint8_t status = 0;
    std::uint8_t generation = 0;
    std::uint16_t queue_select = 0;
    std::array<Queue, kQueues> queues{};
    std::array<std::uint8_t, 0x100> device_cfg{};
    std::array<std::uint8_t, 256> config{};
    std::uint8_t isr = 0;
    // Misbehaviour on demand.
    bool refuse_features = false;   // FEATURES_OK does not stick
    bool stuck_reset = false;       // status never reads 0 again
    int generation_bumps = 0;       // config reads that see the generation move
    std::vector<std::string> status_writes;
    int notify_fd = -1;
};

class FakeVirtio final : public vfio::DeviceOps {
public:
    explicit FakeVirtio(std::shared_ptr<State> s) : s_(std::move(s)) {}

    Result<vfio::DeviceInfo> info() override { return vfio::DeviceInfo{0x3, 9, 5, true, true}; }
    Result<vfio::RegionInfo> region_info(std::uint32_t index) override {
        vfio::RegionInfo r;
        r.index = index;
        if (index == kBar) {
            r.size = kBarSize;
            r.readable = r.writable = r.mappable = true;
            r.sparse = {{kNotifyOff, 0x1000}};  // only the notify page is mmap()able
        } else if (index == 7) {
            r.size = s_->config.size();
            r.readable = r.writable = true;
        }
        return r;
    }
    Result<void> read_region(std::uint32_t index, std::uint64_t off, void* buf,
                             std::size_t len) override {
        if (index == 7) {
            if (off + len > s_->config.size())
                return fail(EINVAL, "fake config read");
            std::memcpy(buf, s_->config.data() + off, len);
            return {};
        }
        if (index != kBar)
            return fail(EINVAL, "fake read of region " + std::to_string(index));
        std::uint64_t v = 0;
        if (off < 0x38) {
            v = common_read(static_cast<std::uint32_t>(off), len);
        } else if (off == kIsrOff) {
            v = s_->isr;
            s_->isr = 0;
        } else if (off >= kDevOff && off + len <= kDevOff + s_->device_cfg.size()) {
            std::memcpy(&v, s_->device_cfg.data() + (off - kDevOff), len);
        } else {
            return fail(EINVAL, "fake read of BAR4 at " + std::to_string(off));
        }
        std::memcpy(buf, &v, len);
        return {};
    }
    Result<void> write_region(std::uint32_t index, std::uint64_t off, const void* buf,
                              std::size_t len) override {
        if (index == 7) {
            if (off + len > s_->config.size())
                return fail(EINVAL, "fake config write");
            std::memcpy(s_->config.data() + off, buf, len);
            return {};
        }
        std::uint64_t v = 0;
        std::memcpy(&v, buf, len);
        if (index != kBar || off >= 0x38)
            return fail(EINVAL, "fake write of BAR4 at " + std::to_string(off));
        common_write(static_cast<std::uint32_t>(off), len, v);
        return {};
    }
    Result<vfio::Mapping> map_region(std::uint32_t index, std::uint64_t off, std::uint64_t len,
                                     int prot, void* at) override {
        if (index != kBar || off != kNotifyOff || len != 0x1000)
            return fail(EINVAL, "fake map_region");
        return vfio::map_memory(at, len, prot, MAP_SHARED, s_->notify_fd, 0, "fake notify page");
    }
    Result<vfio::IrqInfo> irq_info(std::uint32_t index) override {
        vfio::IrqInfo i;
        i.index = index;
        i.count = index == 2 ? kVectors : 0;
        i.eventfd = true;
        return i;
    }
    Result<void> set_irqs(const vfio::IrqRequest&) override { return {}; }
    Result<void> reset() override { return {}; }
    Result<void> feature(std::uint32_t, vfio::FeatureOp, std::span<std::uint8_t>) override {
        return fail(vfio::not_supported("device feature", "the fake virtio device"));
    }

private:
    // struct virtio_pci_common_cfg, as the transport's offsets say.
    std::uint64_t common_read(std::uint32_t off, std::size_t len) {
        State& s = *s_;
        Queue& q = s.queues[s.queue_select % kQueues];
        switch (off) {
        case 0x00: return s.dfselect;
        case 0x04: return s.dfselect < 2 ? static_cast<std::uint32_t>(s.offered >> (32 * s.dfselect)) : 0;
        case 0x08: return s.gfselect;
        case 0x0c: return s.gfselect < 2 ? static_cast<std::uint32_t>(s.driver_features >> (32 * s.gfselect)) : 0;
        case 0x10: return s.config_vector;
        case 0x12: return kQueues;
        case 0x14: return s.status;
        case 0x15:
            if (s.generation_bumps > 0) {
                --s.generation_bumps;
                ++s.generation;
            }
            return s.generation;
        case 0x16: return s.queue_select;
        case 0x18: return s.queue_select < kQueues ? q.size : 0;
        case 0x1a: return q.vector;
        case 0x1c: return q.enable;
        case 0x1e: return s.queue_select;  // queue_notify_off: the queue's index
        case 0x20: case 0x24: return static_cast<std::uint32_t>(q.desc >> (off == 0x24 ? 32 : 0));
        case 0x28: case 0x2c: return static_cast<std::uint32_t>(q.driver >> (off == 0x2c ? 32 : 0));
        case 0x30: case 0x34: return static_cast<std::uint32_t>(q.device >> (off == 0x34 ? 32 : 0));
        }
        ADD_FAILURE() << "common read at " << off << " of " << len;
        return 0;
    }
    void common_write(std::uint32_t off, std::size_t len, std::uint64_t v) {
        State& s = *s_;
        Queue& q = s.queues[s.queue_select % kQueues];
        auto half = [&](std::uint64_t& field, bool hi) {
            EXPECT_EQ(len, 4u) << "64-bit fields go as two 32-bit halves";
            field = hi ? (field & 0xffffffffULL) | v << 32 : (field & ~0xffffffffULL) | v;
        };
        switch (off) {
        case 0x00: s.dfselect = static_cast<std::uint32_t>(v); return;
        case 0x08: s.gfselect = static_cast<std::uint32_t>(v); return;
        case 0x0c:
            if (s.gfselect < 2)
                s.driver_features = (s.driver_features & ~(0xffffffffULL << (32 * s.gfselect))) |
                                    v << (32 * s.gfselect);
            return;
        case 0x10: s.config_vector = v < kVectors ? static_cast<std::uint16_t>(v) : kNoVector; return;
        case 0x14:
            s.status_writes.push_back(std::to_string(v));
            if (v == 0) {
                s.driver_features = 0;
                s.queues = {};
                if (s.stuck_reset)
                    return;
            }
            if ((v & status::kFeaturesOk) && s.refuse_features)
                v &= ~std::uint64_t{status::kFeaturesOk};
            s.status = static_cast<std::uint8_t>(v);
            return;
        case 0x16: s.queue_select = static_cast<std::uint16_t>(v); return;
        case 0x18: q.size = static_cast<std::uint16_t>(v); return;
        case 0x1a: q.vector = v < kVectors ? static_cast<std::uint16_t>(v) : kNoVector; return;
        case 0x1c: q.enable = static_cast<std::uint16_t>(v); return;
        case 0x20: case 0x24: half(q.desc, off == 0x24); return;
        case 0x28: case 0x2c: half(q.driver, off == 0x2c); return;
        case 0x30: case 0x34: half(q.device, off == 0x34); return;
        }
        ADD_FAILURE() << "common write at " << off << " of " << len;
    }
    std::shared_ptr<State> s_;
};

// A vendor capability at `at` in config space, linked to `next`.
void put_cap(std::array<std::uint8_t, 256>& c, std::uint8_t at, std::uint8_t next, CapType type,
             std::uint32_t off, std::uint32_t len, std::uint8_t cap_len = 16) {
    c[at] = 0x09;
    c[at + 1] = next;
    c[at + 2] = cap_len;
    c[at + 3] = static_cast<std::uint8_t>(type);
    c[at + 4] = kBar;
    std::memcpy(&c[at + 8], &off, 4);
    std::memcpy(&c[at + 12], &len, 4);
}

class Transport : public ::testing::Test {
protected:
    void SetUp() override {
        notify_ = vfio::Fd(::memfd_create("virtio-notify", MFD_CLOEXEC));
        ASSERT_TRUE(notify_.valid());
        ASSERT_EQ(::ftruncate(notify_.get(), 0x1000), 0);
        s_->notify_fd = notify_.get();
        auto& c = s_->config;
        c[0] = 0xf4; c[1] = 0x1a;           // 1af4
        c[2] = 0x41; c[3] = 0x10;           // 1041
        c[6] = 0x10;                        // status: capability list
        c[0x20] = 0x0c;                     // BAR4: 64-bit prefetchable memory
        c[0x34] = 0x40;
        put_cap(c, 0x40, 0x50, CapType::common, 0, 0x38);
        put_cap(c, 0x50, 0x60, CapType::isr, kIsrOff, 0x1000);
        put_cap(c, 0x60, 0x70, CapType::device, kDevOff, 0x100);
        put_cap(c, 0x70, 0x00, CapType::notify, kNotifyOff, 0x1000, 20);
        c[0x70 + 16] = kNotifyMult;
        const std::uint8_t mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
        std::memcpy(s_->device_cfg.data(), mac, 6);
        handle_ = std::make_shared<vfio::DeviceHandle>(*PciAddress::parse("0000:00:06.0"),
                                                       std::make_unique<FakeVirtio>(s_));
        pci_ = std::make_unique<pci::PciDevice>(handle_);
    }
    void TearDown() override {
        pci_.reset();
        handle_->release();
    }
    // What the device saw at notify offset `off` (16 bits).
    std::uint16_t notified(std::uint32_t off) {
        std::uint16_t v = 0xffff;
        EXPECT_EQ(::pread(notify_.get(), &v, 2, off), 2);
        return v;
    }
    Result<PciTransport> open() { return PciTransport::open(*pci_); }

    std::shared_ptr<State> s_ = std::make_shared<State>();
    vfio::Fd notify_;
    std::shared_ptr<vfio::DeviceHandle> handle_;
    std::unique_ptr<pci::PciDevice> pci_;
};

TEST_F(Transport, OpenFindsEveryWindowAndEnablesTheDevice) {
    auto t = open();
    ASSERT_TRUE(t) << t.error().message();
    EXPECT_EQ(t->window(CapType::common).bar, kBar);
    EXPECT_EQ(t->window(CapType::common).length, 0x38u);
    EXPECT_EQ(t->window(CapType::isr).offset, kIsrOff);
    EXPECT_EQ(t->window(CapType::notify).offset, kNotifyOff);
    EXPECT_EQ(t->window(CapType::device).offset, kDevOff);
    EXPECT_TRUE(t->has_device_config());
    EXPECT_EQ(t->num_queues(), kQueues);
    EXPECT_EQ(t->queue_max_size(1), kQueueMax);
    EXPECT_EQ(s_->config[4] & 0x6, 0x6) << "memory space and bus mastering on";
}

TEST_F(Transport, NegotiateFollowsTheInitializationSequence) {
    auto t = open();
    ASSERT_TRUE(t) << t.error().message();
    s_->status = status::kAcknowledge | status::kDriver | status::kDriverOk;  // a previous run
    const std::uint64_t want = feature(5) | feature(7);  // 7 is not offered
    auto got = t->negotiate(want, feature(kFVersion1) | feature(kFAccessPlatform));
    ASSERT_TRUE(got) << got.error().message();
    EXPECT_EQ(*got, feature(5) | feature(kFVersion1) | feature(kFAccessPlatform));
    EXPECT_EQ(s_->driver_features, *got) << "both halves written";
    EXPECT_EQ(t->driver_features(), *got);
    // Section 3.1.1: reset, ACKNOWLEDGE, DRIVER, (features), FEATURES_OK.
    EXPECT_EQ(s_->status_writes, (std::vector<std::string>{"0", "1", "3", "11"}));
    EXPECT_EQ(t->status(), status::kAcknowledge | status::kDriver | status::kFeaturesOk);
    t->driver_ok();
    EXPECT_EQ(s_->status & status::kDriverOk, status::kDriverOk);
}

TEST_F(Transport, MissingOrRefusedFeaturesFailAndSayWhich) {
    auto t = open();
    ASSERT_TRUE(t) << t.error().message();
    s_->offered = feature(5);
    auto got = t->negotiate(0, feature(kFVersion1));
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error().err(), ENOTSUP);
    EXPECT_NE(got.error().message().find("does not offer VERSION_1"), std::string::npos)
        << got.error().message();
    EXPECT_NE(got.error().message().find("0000:00:06.0"), std::string::npos);
    EXPECT_EQ(s_->status & status::kFailed, status::kFailed);

    s_->offered = feature(kFVersion1);
    s_->refuse_features = true;
    got = t->negotiate(0, feature(kFVersion1));
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error().err(), ENOTSUP);
    EXPECT_NE(got.error().message().find("FEATURES_OK"), std::string::npos) << got.error().message();
}

TEST_F(Transport, SetupQueueProgramsAndEnablesIt) {
    auto t = open();
    ASSERT_TRUE(t) << t.error().message();
    ASSERT_TRUE(t->negotiate(0, feature(kFVersion1)));
    const QueueAddrs a{0x1'2345'6000, 0x1'2345'7000, 0x1'2345'8000};
    auto r = t->setup_queue(1, 128, a, 2);
    ASSERT_TRUE(r) << r.error().message();
    const Queue& q = s_->queues[1];
    EXPECT_EQ(q.size, 128);
    EXPECT_EQ(q.desc, a.desc);
    EXPECT_EQ(q.driver, a.driver);
    EXPECT_EQ(q.device, a.device);
    EXPECT_EQ(q.vector, 2);
    EXPECT_EQ(q.enable, 1);
    EXPECT_TRUE(t->queue_enabled(1));
    EXPECT_FALSE(t->queue_enabled(0));
    // Queue 1's notify address: notify_off (1) times the multiplier.
    EXPECT_EQ(t->notify_offset(1), std::optional<std::uint64_t>(kNotifyOff + kNotifyMult));
    EXPECT_EQ(t->notify_offset(0), std::nullopt);
    EXPECT_EQ(t->notify_addr(0), nullptr);
    t->notify(1);
    EXPECT_EQ(notified(kNotifyMult), 1);
    *t->notify_addr(1) = 0x77;
    EXPECT_EQ(notified(kNotifyMult), 0x77) << "the pointer is into the mapped notify page";
}

TEST_F(Transport, SetupQueueRefusesBadArguments) {
    auto t = open();
    ASSERT_TRUE(t) << t.error().message();
    ASSERT_TRUE(t->negotiate(0, feature(kFVersion1)));
    auto expect = [&](const Result<void>& r, int err, const char* text) {
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().err(), err) << r.error().message();
        EXPECT_NE(r.error().message().find(text), std::string::npos) << r.error().message();
    };
    const QueueAddrs ok{0x10000, 0x11000, 0x12000};
    expect(t->setup_queue(3, 64, ok, kNoVector), EINVAL, "the device has 3 queues");
    expect(t->setup_queue(0, 100, ok, kNoVector), EINVAL, "not a power of two up to 256");
    expect(t->setup_queue(0, 512, ok, kNoVector), EINVAL, "not a power of two up to 256");
    expect(t->setup_queue(0, 64, {0x10008, 0x11000, 0x12000}, kNoVector), EINVAL, "aligned");
    expect(t->setup_queue(0, 64, {0x10000, 0x11001, 0x12000}, kNoVector), EINVAL, "aligned");
    expect(t->setup_queue(0, 64, {0x10000, 0x11000, 0x12002}, kNoVector), EINVAL, "aligned");
    expect(t->setup_queue(0, 64, ok, kVectors), EIO, "refused MSI-X vector");
    EXPECT_FALSE(t->queue_enabled(0)) << "a refused queue stays disabled";
    expect(t->set_config_vector(kVectors), EIO, "refused MSI-X vector");
    EXPECT_TRUE(t->set_config_vector(0));
    EXPECT_TRUE(t->set_config_vector(kNoVector));
}

TEST_F(Transport, ResetClearsTheQueuesAndTimesOutOnAStuckDevice) {
    auto t = open();
    ASSERT_TRUE(t) << t.error().message();
    ASSERT_TRUE(t->negotiate(0, feature(kFVersion1)));
    ASSERT_TRUE(t->setup_queue(0, 64, {0x10000, 0x11000, 0x12000}, kNoVector));
    ASSERT_TRUE(t->reset());
    EXPECT_EQ(t->status(), 0);
    EXPECT_EQ(t->notify_addr(0), nullptr) << "notify addresses go with the queues";
    EXPECT_EQ(t->driver_features(), 0u);
    s_->status = status::kDriverOk;
    s_->stuck_reset = true;
    auto r = t->reset(std::chrono::milliseconds(20));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().err(), ETIMEDOUT);
    EXPECT_NE(r.error().message().find("status still reads 0x4"), std::string::npos)
        << r.error().message();
}

TEST_F(Transport, DeviceConfigReadsRetryWhileTheGenerationMoves) {
    auto t = open();
    ASSERT_TRUE(t) << t.error().message();
    std::array<std::uint8_t, 6> mac{};
    s_->generation_bumps = 3;
    ASSERT_TRUE(t->read_device_config(0, mac));
    EXPECT_EQ(mac, (std::array<std::uint8_t, 6>{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}));
    EXPECT_EQ(s_->generation_bumps, 0) << "read again until two generations matched";
    std::array<std::uint8_t, 4> out{};
    auto r = t->read_device_config(0xfe, out);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().err(), ERANGE);
    s_->isr = 3;
    EXPECT_EQ(t->isr(), 3);
    EXPECT_EQ(t->isr(), 0) << "reading the ISR clears it";
}

TEST_F(Transport, WithoutTheModernCapabilitiesItIsNotAModernDevice) {
    s_->config[0x34] = 0x60;  // only the device and notify capabilities left
    auto t = open();
    ASSERT_FALSE(t);
    EXPECT_EQ(t.error().err(), ENODEV);
    const std::string m = t.error().message();
    EXPECT_NE(m.find("no common configuration capability"), std::string::npos) << m;
    EXPECT_NE(m.find("disable-legacy=on"), std::string::npos) << m;
}

TEST_F(Transport, AWindowOutsideItsBarIsRefused) {
    const std::uint32_t len = 0x2000;  // ISR window past the BAR's end from 0x3000
    put_cap(s_->config, 0x50, 0x60, CapType::isr, 0x3000, len);
    auto t = open();
    ASSERT_FALSE(t);
    EXPECT_EQ(t.error().err(), ENODEV);
    EXPECT_NE(t.error().message().find("outside BAR4"), std::string::npos) << t.error().message();
}

TEST_F(Transport, NamesFeatures) {
    EXPECT_EQ(feature_names(feature(kFVersion1) | feature(kFAccessPlatform) | feature(50)),
              "VERSION_1|ACCESS_PLATFORM|bit 50");
    EXPECT_EQ(feature_names(0), "none");
}

}  // namespace
}  // namespace vfiokit::virtio

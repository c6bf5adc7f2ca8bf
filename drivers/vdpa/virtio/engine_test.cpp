// The engine behind a real vhost-user session over a socketpair, with a
// software virtio device and a recording IO address space in place of the
// PCI device and the VFIO container. The software device finds the rings
// only through what the engine mapped (IOVA -> this process), serves the
// transmit ring on the relay's notify and signals the call eventfd the
// engine gave it; the test is the front end, with its own memfd.
#include "engine.hpp"

#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

#include "test_util.hpp"
#include "vfiokit/common/virtio/split_ring.hpp"
#include "vfiokit/vhost_user/session.hpp"

namespace vfiokit::vdpa {
namespace {

namespace vu = vhost_user;
using namespace vu::test;
using namespace std::chrono_literals;

constexpr std::uint64_t kFeat = virtio::feature(virtio::kFVersion1) |
                                virtio::feature(virtio::kFAccessPlatform) |
                                virtio::feature(virtio::kFRingEventIdx) |
                                virtio::feature(15) /* MRG_RXBUF */ |
                                virtio::feature(5) /* MAC */ | virtio::feature(17) /* CTRL_VQ */;
constexpr std::uint64_t kGpa = 0x7f1200000000;  // a 47-bit address, as virtio_user's
constexpr std::uint64_t kSize = 1 << 20;
constexpr std::uint32_t kNum = 256;

// The IO address space: the mappings, in the order made.
class FakeDma final : public DmaSpace {
public:
    ~FakeDma() override {
        for (const auto& [iova, m] : maps)
            ::munmap(reinterpret_cast<void*>(m.hva), m.len);
    }
    Result<std::vector<vfio::IovaRange>> ranges() override { return ranges_; }
    Result<void> map(const Piece& p) override {
        std::lock_guard l(mu);
        for (const auto& [iova, m] : maps)
            if (p.iova < iova + m.len && iova < p.iova + p.len)
                return fail(EEXIST, "map over a mapping");
        if (p.fd < 0)
            return fail(EBADF, "map without the region's fd");
        // As an IOMMU pins the file's pages, whatever happens to the
        // session's mapping of them: the device reaches them through this.
        void* m = ::mmap(nullptr, p.len, PROT_READ | PROT_WRITE, MAP_SHARED, p.fd,
                         static_cast<off_t>(p.offset));
        if (m == MAP_FAILED)
            return fail(errno, "mmap");
        Piece q = p;
        q.hva = reinterpret_cast<std::uint64_t>(m);
        maps[p.iova] = q;
        log.push_back("map " + std::to_string(p.iova - kGpa));
        return {};
    }
    Result<void> unmap(const Piece& p) override {
        std::lock_guard l(mu);
        auto it = maps.find(p.iova);
        if (it == maps.end() || it->second.len != p.len)
            return fail(ENOENT, "unmap what is not mapped");
        ::munmap(reinterpret_cast<void*>(it->second.hva), it->second.len);
        maps.erase(it);
        log.push_back("unmap " + std::to_string(p.iova - kGpa));
        return {};
    }
    // What the device reaches at `iova`: nullptr when nothing is mapped.
    template <class T>
    T* at(std::uint64_t iova) {
        std::lock_guard l(mu);
        for (const auto& [start, m] : maps)
            if (iova >= start && iova + sizeof(T) <= start + m.len)
                return reinterpret_cast<T*>(m.hva + (iova - start));
        return nullptr;
    }

    std::vector<vfio::IovaRange> ranges_ = {{0, 0xfedfffff}, {0xfef00000, (1ull << 48) - 1}};
    std::mutex mu;
    std::map<std::uint64_t, Piece> maps;
    std::vector<std::string> log;
};

// A virtio device in software: serves the transmit queue (1) when kicked.
// With `kernel` set it takes kick eventfds as VFIO's ioeventfd would: a
// thread of its own (the kernel's, in the real thing) kicks the queue.
class SoftHw final : public VirtioHw {
public:
    explicit SoftHw(FakeDma& dma) : dma_(&dma) {}
    ~SoftHw() override {
        stop_kicker = true;
        if (kicker.joinable())
            kicker.join();
    }
    Result<void> attach_kick(std::uint16_t q, int fd) override {
        if (!kernel)
            return fail(ENOTSUP, "ioeventfd: not supported here");
        std::lock_guard l(mu);
        attached[q] = fd;
        if (!kicker.joinable())
            kicker = std::thread([this] { kick_loop(); });
        return {};
    }
    void kick_loop() {
        while (!stop_kicker) {
            std::map<std::uint16_t, int> now;
            {
                std::lock_guard l(mu);
                now = attached;
            }
            for (auto [q, fd] : now) {
                std::uint64_t v = 0;
                if (fd >= 0 && ::read(fd, &v, sizeof v) == sizeof v) {
                    ++kernel_kicks;
                    notify(q);
                }
            }
            std::this_thread::sleep_for(1ms);
        }
    }
    std::uint64_t device_features() const override { return kFeat; }
    std::uint16_t queue_max_size(std::uint16_t) const override { return kNum; }
    Result<void> start(std::uint64_t f, std::span<const QueueSetup> q) override {
        std::lock_guard l(mu);
        features = f;
        queues.assign(q.begin(), q.end());
        last_avail = used = 0;
        running = true;
        ++starts;
        return {};
    }
    Result<void> stop() override {
        std::lock_guard l(mu);
        attached.clear();  // the registrations go with the reset
        running = false;
        ++stops;
        return {};
    }
    Result<void> set_call(std::uint16_t q, int fd) override {
        std::lock_guard l(mu);
        queues.at(q).call_fd = fd;
        ++call_moves;
        return {};
    }
    void notify(std::uint16_t q) override {
        std::lock_guard l(mu);
        ++notifies;
        if (!running || q != 1)
            return;
        const QueueSetup& s = queues.at(1);
        auto* avail = dma_->at<virtio::AvailRing>(s.addrs.driver);
        auto* ur = dma_->at<virtio::UsedRing>(s.addrs.device);
        if (!avail || !ur) {
            ++faults;  // the IOMMU would fault: the ring is not mapped
            return;
        }
        const std::uint16_t idx = __atomic_load_n(&avail->idx, __ATOMIC_ACQUIRE);
        if (idx == last_avail)
            return;  // nothing new: no interrupt either
        while (last_avail != idx) {
            const std::uint16_t head = *virtio::avail_entry(avail, last_avail % s.size);
            auto* d = dma_->at<virtio::Desc>(s.addrs.desc + 16u * head);
            if (!d || !dma_->at<std::uint8_t>(d->addr))
                ++faults;
            *virtio::used_entry(ur, used % s.size) = {head, 0};
            ++used;
            ++last_avail;
            ++packets;
        }
        __atomic_store_n(&ur->idx, used, __ATOMIC_RELEASE);
        if (s.call_fd >= 0) {
            const std::uint64_t one = 1;
            (void)!::write(s.call_fd, &one, sizeof one);
        }
    }

    FakeDma* dma_;
    std::mutex mu;
    bool kernel = false;
    std::map<std::uint16_t, int> attached;
    std::atomic<int> kernel_kicks{0};
    std::atomic<bool> stop_kicker{false};
    std::thread kicker;
    std::uint64_t features = 0;
    std::vector<QueueSetup> queues;
    std::uint16_t last_avail = 0, used = 0;
    bool running = false;
    int starts = 0, stops = 0, call_moves = 0, notifies = 0, faults = 0, packets = 0;
};

// Ring layout in the front end's memory (offsets): vring 0 at 0x0000,
// vring 1 at 0x8000 (desc, avail +0x1000, used +0x2000); buffers at 0x40000.
constexpr std::uint64_t ring_at(unsigned i) { return i * 0x8000ull; }

class EngineTest : public ::testing::Test {
protected:
    void SetUp() override {
        memfd_ = ::memfd_create("vdpa-engine-test", MFD_CLOEXEC);
        ASSERT_GE(memfd_, 0);
        ASSERT_EQ(::ftruncate(memfd_, kSize), 0);
        mem_ = static_cast<std::uint8_t*>(
            ::mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_SHARED, memfd_, 0));
        ASSERT_NE(mem_, MAP_FAILED);
        connect();
    }
    void TearDown() override {
        session_.reset();
        if (client_ >= 0)
            ::close(client_);
        for (int fd : efds_)
            ::close(fd);
        ::munmap(mem_, kSize);
        ::close(memfd_);
    }
    void connect() {
        int sv[2];
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        client_ = sv[0];
        session_ = std::make_unique<vu::Session>(vfio::Fd(sv[1]), engine_, engine_.config());
    }
    void hang_up() {
        ::close(client_);
        client_ = -1;
        auto r = session_->poll(2000);
        ASSERT_TRUE(r);
        EXPECT_FALSE(*r);
    }
    bool serve() {
        auto r = session_->poll(2000);
        if (!r)
            why_ = r.error().message();
        return r && *r;
    }
    void send(vu::Request r, const std::vector<std::uint8_t>& p = {}, const std::vector<int>& fds = {}) {
        ASSERT_TRUE(send_msg(client_, r, p, fds));
        ASSERT_TRUE(serve()) << why_;
    }
    int efd() {
        efds_.push_back(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        return efds_.back();
    }
    std::uint64_t uva(std::uint64_t off) const { return reinterpret_cast<std::uint64_t>(mem_) + off; }
    vu::MemoryRegionDesc region() const { return {kGpa, kSize, uva(0), 0}; }
    // Features, the table, both rings (base `base`), enabled.
    void handshake(std::uint32_t base = 0) {
        ASSERT_TRUE(send_msg(client_, vu::Request::get_features));
        ASSERT_TRUE(serve());
        auto f = read_reply(client_);
        ASSERT_TRUE(f);
        offered_ = f->u64();
        send(vu::Request::set_protocol_features, u64_bytes(vu::bit(vu::ProtocolFeature::reply_ack)));
        send(vu::Request::set_features, u64_bytes(offered_));
        send(vu::Request::set_mem_table, mem_table({region()}), {memfd_});
        for (unsigned i = 0; i < 2; ++i) {
            send(vu::Request::set_vring_num, vring_state(i, kNum));
            vu::VringAddr a{i, 0, uva(ring_at(i)), uva(ring_at(i) + 0x2000), uva(ring_at(i) + 0x1000), 0};
            send(vu::Request::set_vring_addr, bytes_of(a));
            send(vu::Request::set_vring_base, vring_state(i, base));
            kick_[i] = efd();
            call_[i] = efd();
            send(vu::Request::set_vring_kick, u64_bytes(i), {kick_[i]});
            send(vu::Request::set_vring_call, u64_bytes(i), {call_[i]});
        }
        send(vu::Request::set_vring_enable, vring_state(0, 1));
        ASSERT_TRUE(send_msg(client_, vu::Request::set_vring_enable, vring_state(1, 1)));
        ready_ok_ = serve();
    }
    // The front end queues `n` frames on the transmit ring and kicks.
    void transmit(unsigned n) {
        auto* desc = reinterpret_cast<virtio::Desc*>(mem_ + ring_at(1));
        auto* avail = reinterpret_cast<virtio::AvailRing*>(mem_ + ring_at(1) + 0x1000);
        for (unsigned i = 0; i < n; ++i) {
            const std::uint16_t slot = avail_idx_ % kNum;
            desc[slot] = {kGpa + 0x40000 + slot * 2048u, 64, 0, 0};
            *virtio::avail_entry(avail, slot) = slot;
            ++avail_idx_;
        }
        __atomic_store_n(&avail->idx, avail_idx_, __ATOMIC_RELEASE);
        const std::uint64_t one = 1;
        ASSERT_EQ(::write(kick_[1], &one, sizeof one), 8);
    }
    std::uint16_t used_idx() const {
        return __atomic_load_n(&reinterpret_cast<virtio::UsedRing*>(mem_ + ring_at(1) + 0x2000)->idx,
                               __ATOMIC_ACQUIRE);
    }
    // Waits (2 s at most) for the front end's call eventfd of vring 1.
    bool called() {
        for (int i = 0; i < 400; ++i) {
            std::uint64_t v = 0;
            if (::read(call_[1], &v, sizeof v) == sizeof v)
                return true;
            std::this_thread::sleep_for(5ms);
        }
        return false;
    }
    template <class F>
    static bool eventually(F f) {
        for (int i = 0; i < 400 && !f(); ++i)
            std::this_thread::sleep_for(5ms);
        return f();
    }

    FakeDma dma_;
    SoftHw hw_{dma_};
    Engine engine_{hw_, dma_, "test"};
    std::unique_ptr<vu::Session> session_;
    int client_ = -1, memfd_ = -1;
    std::uint8_t* mem_ = nullptr;
    std::vector<int> efds_;
    int kick_[2] = {-1, -1}, call_[2] = {-1, -1};
    std::uint64_t offered_ = 0;
    std::uint16_t avail_idx_ = 0;
    bool ready_ok_ = false;
    std::string why_;
};

TEST_F(EngineTest, OffersTheDevicesDataPathFeaturesOnly) {
    const std::uint64_t f = engine_.config().features;
    EXPECT_EQ(f, virtio::feature(virtio::kFVersion1) | virtio::feature(virtio::kFRingEventIdx) |
                     virtio::feature(15));
    EXPECT_EQ(engine_.config().vrings, 2u);
}

// The whole path: table mapped at its guest-physical address, both rings
// ready -> device started with the front end's features plus
// ACCESS_PLATFORM, queues at the rings' guest-physical addresses, the call
// eventfd the front end gave; a kick reaches the device through the relay,
// the device completes the frames into the front end's used ring and
// signals the front end; GET_VRING_BASE stops the device and answers its
// used index.
TEST_F(EngineTest, RelaysKicksAndAnswersTheUsedIndex) {
    handshake();
    ASSERT_TRUE(ready_ok_) << why_;
    EXPECT_EQ(dma_.log, (std::vector<std::string>{"map 0"}));
    ASSERT_EQ(hw_.starts, 1);
    EXPECT_EQ(hw_.features, (offered_ & ~vu::bit(vu::kFeatureProtocolFeatures)) |
                                virtio::feature(virtio::kFAccessPlatform));
    ASSERT_EQ(hw_.queues.size(), 2u);
    EXPECT_EQ(hw_.queues[1].addrs.desc, kGpa + ring_at(1));
    EXPECT_EQ(hw_.queues[1].addrs.driver, kGpa + ring_at(1) + 0x1000);
    EXPECT_EQ(hw_.queues[1].addrs.device, kGpa + ring_at(1) + 0x2000);

    transmit(5);
    ASSERT_TRUE(called());
    EXPECT_EQ(used_idx(), 5);
    transmit(3);
    ASSERT_TRUE(called());
    EXPECT_EQ(used_idx(), 8);
    EXPECT_EQ(hw_.faults, 0);
    EXPECT_TRUE(eventually([&] { return engine_.stats().tx_used == 8; }));
    EXPECT_GE(engine_.stats().kicks, 2u);

    send(vu::Request::get_vring_base, vring_state(1, 0));
    auto b = read_reply(client_);
    ASSERT_TRUE(b);
    vu::VringState st{};
    std::memcpy(&st, b->payload.data(), sizeof st);
    EXPECT_EQ(st.num, 8u);
    EXPECT_EQ(hw_.stops, 1);
    EXPECT_FALSE(engine_.stats().running);
}

// A new table that keeps the old region and adds one: the new region is
// mapped, nothing unmapped, and the device runs on through it.
TEST_F(EngineTest, ANewTableMapsBeforeItUnmapsAndTheDeviceRunsOn) {
    handshake();
    ASSERT_TRUE(ready_ok_) << why_;
    transmit(2);
    ASSERT_TRUE(called());
    const int other = ::memfd_create("vdpa-engine-test2", MFD_CLOEXEC);
    ASSERT_EQ(::ftruncate(other, kSize), 0);
    send(vu::Request::set_mem_table,
         mem_table({region(), {kGpa + 4 * kSize, kSize, uva(0) + 64 * kSize, 0}}), {memfd_, other});
    ::close(other);
    EXPECT_EQ(dma_.log, (std::vector<std::string>{"map 0", "map " + std::to_string(4 * kSize)}));
    EXPECT_EQ(hw_.stops, 0);
    ASSERT_TRUE(called());  // repeated on the ring's (same) call fd as it came back
    transmit(4);
    ASSERT_TRUE(called());
    EXPECT_EQ(used_idx(), 6);

    // Back to the first table alone: the second region goes, the first stays.
    send(vu::Request::set_mem_table, mem_table({region()}), {memfd_});
    EXPECT_EQ(dma_.log.back(), "unmap " + std::to_string(4 * kSize));
    EXPECT_EQ(dma_.maps.size(), 1u);
    ASSERT_TRUE(called());
    transmit(1);
    ASSERT_TRUE(called());
    EXPECT_EQ(used_idx(), 7);
    EXPECT_EQ(hw_.stops, 0);
}

// A new call eventfd: the device keeps running and signals the new one.
TEST_F(EngineTest, ANewCallEventfdTakesTheInterrupt) {
    handshake();
    ASSERT_TRUE(ready_ok_) << why_;
    call_[1] = efd();
    send(vu::Request::set_vring_call, u64_bytes(1), {call_[1]});
    EXPECT_EQ(hw_.call_moves, 1);
    EXPECT_EQ(hw_.stops, 0);
    ASSERT_TRUE(called());  // the repeated interrupt
    transmit(1);
    ASSERT_TRUE(called());
}

// The front end goes and another comes: device reset, every mapping
// removed, and the new one starts again from index 0.
TEST_F(EngineTest, AReconnectedFrontEndStartsAgain) {
    handshake();
    ASSERT_TRUE(ready_ok_) << why_;
    transmit(3);
    ASSERT_TRUE(called());
    hang_up();
    EXPECT_EQ(hw_.stops, 1);
    EXPECT_TRUE(dma_.maps.empty());
    EXPECT_EQ(engine_.stats().sessions, 1u);

    std::memset(mem_, 0, kSize);
    avail_idx_ = 0;
    connect();
    handshake();
    ASSERT_TRUE(ready_ok_) << why_;
    EXPECT_EQ(hw_.starts, 2);
    transmit(2);
    ASSERT_TRUE(called());
    EXPECT_EQ(used_idx(), 2);
    EXPECT_TRUE(eventually([&] { return engine_.stats().tx_used == 5; }));
}

// Where the kernel can ring the doorbell (VFIO ioeventfd), the front
// end's kick eventfds go to it and the relay only counts.
TEST_F(EngineTest, KicksGoToTheKernelWhenItCan) {
    hw_.kernel = true;
    handshake();
    ASSERT_TRUE(ready_ok_) << why_;
    EXPECT_TRUE(engine_.stats().kernel_kicks);
    transmit(5);
    ASSERT_TRUE(called());
    EXPECT_EQ(used_idx(), 5);
    EXPECT_GE(hw_.kernel_kicks.load(), 1);
    EXPECT_EQ(engine_.stats().kicks, 0u);
    EXPECT_TRUE(eventually([&] { return engine_.stats().tx_used == 5; }));
    // A new kick eventfd replaces the old registration.
    kick_[1] = efd();
    send(vu::Request::set_vring_kick, u64_bytes(1), {kick_[1]});
    EXPECT_EQ(hw_.stops, 0);
    ASSERT_TRUE(called());  // repeated as the ring came back
    transmit(2);
    ASSERT_TRUE(called());
    EXPECT_EQ(used_idx(), 7);
}

TEST_F(EngineTest, ResumingAtANonzeroIndexIsRefused) {
    handshake(7);
    EXPECT_FALSE(ready_ok_);
    EXPECT_NE(why_.find("would resume at avail index 7"), std::string::npos) << why_;
    EXPECT_EQ(hw_.starts, 0);
    EXPECT_TRUE(dma_.maps.empty());
}

TEST_F(EngineTest, AnIommuTooNarrowForTheFrontEndIsRefusedNamingItsWidth) {
    dma_.ranges_ = {{0, 0xfedfffff}, {0xfef00000, (1ull << 39) - 1}};
    ASSERT_TRUE(send_msg(client_, vu::Request::set_features,
                         u64_bytes(virtio::feature(virtio::kFVersion1))));
    ASSERT_TRUE(serve());
    ASSERT_TRUE(send_msg(client_, vu::Request::set_mem_table, mem_table({region()}), {memfd_}));
    EXPECT_FALSE(serve());
    for (const char* want : {"39-bit IOVA space", "needs 47 bits", "aw-bits=48"})
        EXPECT_NE(why_.find(want), std::string::npos) << want << " in: " << why_;
    EXPECT_TRUE(dma_.maps.empty());
}

}  // namespace
}  // namespace vfiokit::vdpa

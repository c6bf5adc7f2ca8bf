#include "engine.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <thread>

#include "vfiokit/eal/format.hpp"
#include "vfiokit/eal/log.hpp"

namespace vfiokit::vdpa {

namespace {

// The engine's life: memory tables, starts, stops, front ends gone.
const log::Component kLog("vdpa.virtio");

namespace vu = vhost_user;
using virtio::feature;

// virtio-net feature bits (virtio 1.2, 5.1.3).
constexpr unsigned kNetCsum = 0, kNetGuestCsum = 1, kNetGuestTso4 = 7, kNetGuestTso6 = 8,
                   kNetGuestEcn = 9, kNetGuestUfo = 10, kNetHostTso4 = 11, kNetHostTso6 = 12,
                   kNetHostEcn = 13, kNetHostUfo = 14, kNetMrgRxbuf = 15;

// The IOMMU maps 4 KiB pages (vfio.hpp: the container's page size).
constexpr std::uint64_t kIommuPage = 4096;

std::string num(std::uint64_t n) { return std::to_string(n); }

Result<vfio::Fd> dup_fd(int fd, const std::string& what) {
    if (fd < 0)
        return vfio::Fd();
    const int d = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (d < 0)
        return fail(errno, "dup " + what);
    return vfio::Fd(d);
}

// [uva, uva+len) in the new table, as guest-physical and host addresses.
std::optional<vu::RingAddr> translate(std::span<const vu::Region> regions, std::uint64_t uva,
                                      std::uint64_t len) {
    for (const auto& r : regions)
        if (uva >= r.uva && len <= r.size && uva - r.uva <= r.size - len)
            return vu::RingAddr{uva, r.gpa + (uva - r.uva),
                                static_cast<std::uint8_t*>(r.hva) + (uva - r.uva)};
    return std::nullopt;
}

}  // namespace

std::uint64_t passthrough_features() {
    std::uint64_t f = 0;
    for (unsigned b : {kNetCsum, kNetGuestCsum, kNetGuestTso4, kNetGuestTso6, kNetGuestEcn,
                       kNetGuestUfo, kNetHostTso4, kNetHostTso6, kNetHostEcn, kNetHostUfo,
                       kNetMrgRxbuf, virtio::kFRingIndirectDesc, virtio::kFRingEventIdx,
                       virtio::kFVersion1})
        f |= feature(b);
    return f;
}

std::uint64_t front_end_features(std::uint64_t device_features) {
    return device_features & passthrough_features();
}

Engine::Engine(VirtioHw& hw, DmaSpace& dma, std::string name, unsigned vrings)
    : hw_(&hw), dma_(&dma), name_(std::move(name)), rings_(vrings), used_(vrings), relay_(hw) {
    device_features_ = hw.device_features();
    offered_ = front_end_features(device_features_);
}

Engine::~Engine() {
    stop_device("the driver is removed");
    unmap_all();
}

vu::Config Engine::config() const {
    vu::Config c;
    c.features = offered_;
    c.protocol_features = vu::bit(vu::ProtocolFeature::mq) | vu::bit(vu::ProtocolFeature::reply_ack);
    c.vrings = static_cast<std::uint32_t>(rings_.size());
    c.queue_num = c.vrings / 2;
    return c;
}

EngineStats Engine::stats() const {
    EngineStats s;
    for (std::size_t i = 0; i < used_.size(); ++i)
        (i % 2 == 0 ? s.rx_used : s.tx_used) += used_[i].load(std::memory_order_relaxed);
    s.kicks = relay_.kicks();
    s.kernel_kicks = kernel_kicks_.load();
    s.relay_wakeups = relay_.wakeups();
    s.starts = starts_.load();
    s.stops = stops_.load();
    s.sessions = sessions_.load();
    s.maps = maps_.load();
    s.unmaps = unmaps_.load();
    s.mapped_bytes = mapped_bytes_.load();
    s.running = running_flag_.load();
    return s;
}

void Engine::log(const std::string& msg) const {
    kLog.info("{}: {}", name_, msg);
}

std::uint16_t Engine::used_index(const vu::VringInfo& v) {
    // struct virtq_used: le16 flags, le16 idx (virtio 1.2, 2.7.8).
    return *reinterpret_cast<const volatile std::uint16_t*>(static_cast<std::uint8_t*>(v.used.hva) + 2);
}

std::uint16_t Engine::avail_index(const vu::VringInfo& v) {
    // struct virtq_avail: le16 flags, le16 idx (virtio 1.2, 2.7.6).
    return *reinterpret_cast<const volatile std::uint16_t*>(static_cast<std::uint8_t*>(v.avail.hva) + 2);
}

std::string Engine::drain_transmit() {
    // Packets the front end counted as sent are in its transmit rings
    // (the odd vrings) until the device uses them; a reset would drop
    // them. Give the device a moment to finish what it was handed, as a
    // NIC's queue stop does; the receive rings only wait for packets.
    using Clock = std::chrono::steady_clock;
    const auto until = Clock::now() + std::chrono::milliseconds(kDrainMs);
    std::string dropped;
    for (unsigned i = 1; i < rings_.size(); i += 2) {
        const Ring& r = rings_[i];
        if (!r.in_device)
            continue;
        while (used_index(r.info) != avail_index(r.info) && Clock::now() < until)
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        if (const std::uint16_t left = avail_index(r.info) - used_index(r.info); left != 0)
            dropped += " vring " + num(i) + ": " + num(left);
    }
    return dropped;
}

Result<void> Engine::features_set(std::uint64_t features) {
    const std::uint64_t f = features & ~vu::bit(vu::kFeatureProtocolFeatures);
    if (f & ~offered_)
        return fail(Error(EINVAL, "features " + virtio::feature_names(f & ~offered_) +
                                      " were never offered"));
    if (running_ && f != features_)
        stop_device("the front end changed its features");
    features_ = f;
    return {};
}

Result<void> Engine::memory_set(std::span<const vu::Region> regions) {
    auto wanted = pieces_for(regions, kIommuPage);
    if (!wanted)
        return fail(std::move(wanted.error()));
    auto ranges = dma_->ranges();
    if (!ranges)
        return fail(std::move(ranges.error()));
    if (auto fits = check_fits(*wanted, *ranges); !fits)
        return fail(std::move(fits.error()));

    // The relay reads used indexes through the old table's mapping: let
    // go of it before the session unmaps it (device.hpp).
    const bool relaying = relay_.running();
    relay_.stop();

    const RemapPlan plan = plan_remap(pieces_, *wanted);
    std::vector<Piece> now = plan.keep;
    // 1. The new table where nothing is mapped yet: the device keeps
    //    reaching the old table meanwhile. A failure here undoes this step
    //    and leaves the old table whole.
    for (std::size_t i = 0; i < plan.map_first.size(); ++i) {
        if (auto r = dma_->map(plan.map_first[i]); !r) {
            for (std::size_t j = 0; j < i; ++j)
                (void)dma_->unmap(plan.map_first[j]);
            if (relaying)
                (void)start_relay();
            return fail(std::move(r.error()).context("map the new memory table"));
        }
        maps_.fetch_add(1);
        now.push_back(plan.map_first[i]);
    }
    // 2. What the new table no longer has; 3. the IOVAs whose backing
    //    changed (absent between 2 and 3: they cannot translate twice).
    std::optional<Error> err;
    for (const auto& p : plan.unmap) {
        if (auto r = dma_->unmap(p); !r) {
            if (!err)
                err = std::move(r.error()).context("unmap the old memory table");
            now.push_back(p);  // still mapped: unmapped with the rest later
            continue;
        }
        unmaps_.fetch_add(1);
    }
    for (const auto& p : plan.map_after) {
        if (auto r = dma_->map(p); !r) {
            if (!err)
                err = std::move(r.error()).context("map the new memory table");
            continue;
        }
        maps_.fetch_add(1);
        now.push_back(p);
    }
    std::uint64_t bytes = 0;
    for (auto& p : now) {
        p.fd = -1;  // borrowed from this call only
        bytes += p.len;
    }
    pieces_ = std::move(now);
    mapped_bytes_ = bytes;
    std::string where;
    for (const auto& r : regions)
        where += " " + range_text(r.gpa, r.size);
    log("memory table:" + where + "; " + num(plan.keep.size()) +
        " mapping(s) kept, " + num(plan.map_first.size()) + " mapped before and " +
        num(plan.map_after.size()) + " after unmapping " + num(plan.unmap.size()) + ", " +
        hex(bytes) + " bytes mapped");
    if (err)
        return fail(std::move(*err));

    // Rings the device runs stay where they are in guest-physical terms;
    // only their mapping here moved. A ring whose guest-physical address
    // changed cannot move under a running device.
    for (unsigned i = 0; i < rings_.size(); ++i) {
        Ring& r = rings_[i];
        if (!r.in_device)
            continue;
        auto& v = r.info;
        auto d = translate(regions, v.desc.uva, vu::desc_bytes(v.num));
        auto a = translate(regions, v.avail.uva, 4);
        auto u = translate(regions, v.used.uva, 4);
        if (!d || !a || !u || d->gpa != v.desc.gpa || a->gpa != v.avail.gpa || u->gpa != v.used.gpa) {
            stop_device("vring " + num(i) + " moved in guest-physical memory");
            continue;
        }
        v.desc.hva = d->hva;
        v.avail.hva = a->hva;
        v.used.hva = u->hva;
    }
    if (running_)
        if (auto r = start_relay(); !r)
            return r;
    return {};
}

Result<void> Engine::vring_ready(const vu::VringInfo& v) {
    if (v.index >= rings_.size())
        return fail(Error(EINVAL, "vring " + num(v.index) + " out of range"));
    if (v.kick_fd < 0)
        return fail(Error(ENOTSUP, "vring " + num(v.index) + " has no kick eventfd (the front "
                                   "end polls): a device's queue needs its kicks")
                        .hint("give the vring a kick eventfd (DPDK's virtio_user always does)"));
    const auto q = static_cast<std::uint16_t>(v.index);
    if (const std::uint16_t max = hw_->queue_max_size(q); v.num > max)
        return fail(Error(EINVAL, "vring " + num(v.index) + " has " + num(v.num) +
                                      " entries; the device's queue takes " + num(max) + " at most")
                        .hint("give the front end that queue size (virtio_user: queue_size=" +
                              num(max) + ")"));
    auto kick = dup_fd(v.kick_fd, "kick eventfd");
    auto call = dup_fd(v.call_fd, "call eventfd");
    if (!kick)
        return fail(std::move(kick.error()));
    if (!call)
        return fail(std::move(call.error()));
    Ring& r = rings_[v.index];
    if (running_ && r.in_device) {
        const auto& o = r.info;
        if (o.num == v.num && o.desc.gpa == v.desc.gpa && o.avail.gpa == v.avail.gpa &&
            o.used.gpa == v.used.gpa) {
            // The same ring with new fds (or a new table): the device runs
            // on; its interrupt and the relay move over. An interrupt the
            // old call fd took is repeated on the new one (a spurious one
            // costs the front end a look at the used ring).
            relay_.stop();
            if (auto s = hw_->set_call(q, call->get()); !s) {
                stop_device("the call eventfd of vring " + num(v.index) + " could not be moved");
                return fail(std::move(s.error()));
            }
            if (call->valid()) {
                const std::uint64_t one = 1;
                (void)!::write(call->get(), &one, sizeof one);
            }
            r.kick = std::move(*kick);
            r.call = std::move(*call);
            r.info = v;
            r.ready = true;
            attach_kick(v.index);
            return start_relay();
        }
        stop_device("vring " + num(v.index) + " was placed elsewhere");
    }
    r.info = v;
    r.kick = std::move(*kick);
    r.call = std::move(*call);
    r.start = v.base;
    r.ready = true;
    for (const auto& o : rings_)
        if (!o.ready)
            return {};  // the device starts once the whole queue pair can
    return start_device();
}

Result<void> Engine::start_device() {
    if (running_)
        return {};
    if (!(features_ & feature(virtio::kFVersion1)))
        return fail(Error(ENOTSUP, "the front end did not accept VERSION_1; the device is a "
                                   "modern (virtio 1.x) device"));
    std::vector<QueueSetup> queues;
    for (unsigned i = 0; i < rings_.size(); ++i) {
        const Ring& r = rings_[i];
        if (r.start != 0)
            return fail(Error(ENOTSUP, "vring " + num(i) + " would resume at avail index " +
                                           num(r.start) + ": a virtio 1.x PCI device starts its "
                                           "queues at 0 after a reset and has no register to "
                                           "start elsewhere")
                            .hint("restart the front end's port (or reconnect): it starts its "
                                  "rings from 0"));
        queues.push_back({static_cast<std::uint16_t>(i), static_cast<std::uint16_t>(r.info.num),
                          {r.info.desc.gpa, r.info.avail.gpa, r.info.used.gpa}, r.call.get()});
    }
    if (auto s = hw_->start(features_ | feature(virtio::kFAccessPlatform), queues); !s)
        return fail(std::move(s.error()).context("start the device"));
    running_ = true;
    running_flag_ = true;
    starts_.fetch_add(1);
    for (auto& r : rings_)
        r.in_device = true;
    kernel_kicks_ = true;
    for (unsigned i = 0; i < rings_.size(); ++i)
        attach_kick(i);
    if (auto s = start_relay(); !s) {
        stop_device("the kick relay did not start");
        return s;
    }
    std::string where;
    for (const auto& q : queues)
        where += " q" + num(q.index) + "=" + hex(q.addrs.desc) + "/" + num(q.size);
    log("device started: features " + virtio::feature_names(features_ | feature(virtio::kFAccessPlatform)) +
        ";" + where + "; kicks " +
        (kernel_kicks_ ? "rung by the kernel (VFIO ioeventfd)" : "relayed by a thread"));
    return {};
}

void Engine::attach_kick(unsigned i) {
    if (!kernel_kicks_)
        return;
    auto r = hw_->attach_kick(static_cast<std::uint16_t>(i), rings_[i].kick.get());
    if (r)
        return;
    // Every queue the same way: the relay takes them all.
    kernel_kicks_ = false;
    for (unsigned j = 0; j < rings_.size(); ++j)
        if (rings_[j].in_device)
            (void)hw_->attach_kick(static_cast<std::uint16_t>(j), -1);
    log("the kernel cannot kick the device (" + r.error().message() + "): a thread relays kicks");
}

Result<void> Engine::start_relay() {
    std::vector<RelayRing> rr;
    for (unsigned i = 0; i < rings_.size(); ++i) {
        const Ring& r = rings_[i];
        if (!r.in_device)
            continue;
        // With the kernel kicking, the relay only counts ring progress.
        rr.push_back({static_cast<std::uint16_t>(i), kernel_kicks_ ? -1 : r.kick.get(),
                      reinterpret_cast<const volatile std::uint16_t*>(
                          static_cast<std::uint8_t*>(r.info.used.hva) + 2),
                      &used_[i]});
    }
    return relay_.start(std::move(rr));
}

void Engine::stop_device(std::string_view why) {
    if (!running_)
        return;
    const std::string dropped = drain_transmit();
    relay_.stop();
    if (auto r = hw_->stop(); !r)
        log("reset failed (" + r.error().message() + "); unmapping keeps it from the memory");
    running_ = false;
    running_flag_ = false;
    stops_.fetch_add(1);
    std::string where;
    for (unsigned i = 0; i < rings_.size(); ++i) {
        Ring& r = rings_[i];
        if (!r.in_device)
            continue;
        r.in_device = false;
        r.start = used_index(r.info);
        where += " vring " + num(i) + " used " + num(r.start);
    }
    log("device stopped (" + std::string(why) + "):" + where);
    if (!dropped.empty())
        log("transmit buffers the device had not used within " + num(kDrainMs) +
            " ms were dropped by the reset:" + dropped);
}

std::uint16_t Engine::vring_stopped(unsigned index, vu::StopReason why, std::uint16_t base) {
    if (index >= rings_.size())
        return base;
    Ring& r = rings_[index];
    r.ready = false;
    if (why == vu::StopReason::reconfigured && running_ && r.in_device)
        return used_index(r.info);  // the device goes on (see vring_ready)
    if (running_ && r.in_device)
        stop_device(std::string(vu::to_string(why)) + " of vring " + num(index));
    if (!r.in_device) {
        r.kick.reset();
        r.call.reset();
    }
    return r.start;
}

void Engine::disconnected(std::string_view why) {
    stop_device("the front end is gone: " + std::string(why));
    for (auto& r : rings_)
        r = Ring{};
    unmap_all();
    features_ = 0;
    sessions_.fetch_add(1);
    log("front end gone (" + std::string(why) + "); every mapping removed");
}

void Engine::unmap_all() {
    for (const auto& p : pieces_) {
        if (auto r = dma_->unmap(p); !r)
            log("unmap " + range_text(p.iova, p.len) + " failed: " + r.error().message());
        else
            unmaps_.fetch_add(1);
    }
    pieces_.clear();
    mapped_bytes_ = 0;
}

}  // namespace vfiokit::vdpa

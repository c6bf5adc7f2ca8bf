#include "vfiokit/vhost_user/session.hpp"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "codec.hpp"
#include "memory.hpp"
#include "vfiokit/eal/format.hpp"

namespace vfiokit::vhost_user {

namespace {

std::string num(std::uint64_t n) { return std::to_string(n); }

bool power_of_two(std::uint32_t n) { return n != 0 && (n & (n - 1)) == 0; }

}  // namespace

Session::Session(vfio::Fd sock, Device& dev, const Config& cfg)
    // KICK/CALL/ERR name a vring in 8 bits: more could not be started.
    : sock_(std::move(sock)), dev_(&dev), cfg_(cfg),
      vrings_(std::min<std::size_t>(cfg.vrings, kVringIndexMask + 1)) {
    offered_ = (cfg.features & ~(bit(kFeatureIommuPlatform) | bit(kFeatureRingPacked))) |
               bit(kFeatureProtocolFeatures);
    cfg_.protocol_features &= bit(ProtocolFeature::mq) | bit(ProtocolFeature::reply_ack);
}

Session::~Session() {
    if (connected())
        release("session closed by the back end");
}

std::span<const Region> Session::regions() const {
    return mem_ ? mem_->regions() : std::span<const Region>{};
}

std::optional<VringInfo> Session::vring(unsigned index) const {
    if (index >= vrings_.size() || !vrings_[index].running)
        return std::nullopt;
    auto i = info(index);
    return i ? std::optional<VringInfo>(*i) : std::nullopt;
}

std::uint64_t Session::handled(Request r) const {
    const auto i = static_cast<std::size_t>(r);
    return i < handled_.size() ? handled_[i] : 0;
}

Result<bool> Session::poll(int timeout_ms) {
    if (!connected())
        return false;
    pollfd p{sock_.get(), POLLIN, 0};
    int r;
    do {
        r = ::poll(&p, 1, timeout_ms);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
        Error e(errno, "poll");
        release(e.message());
        return fail(std::move(e));
    }
    if (r == 0)
        return true;
    auto m = receive(sock_.get());
    if (!m) {
        release(m.error().message());
        return fail(std::move(m.error()));
    }
    if (!*m) {
        release("peer closed");
        return false;
    }
    Message& msg = **m;
    auto h = handle(msg);
    if (!h) {
        Error e = std::move(h.error());
        e.context(request_name(msg.hdr.request));
        // The front end asked to hear the outcome: say it failed before
        // hanging up, so its log shows which request it was.
        if (msg.need_reply() && (protocol_ & bit(ProtocolFeature::reply_ack)))
            (void)send_u64(sock_.get(), msg.request(), 1);
        release(e.message());
        return fail(std::move(e));
    }
    if (msg.hdr.request < handled_.size())
        ++handled_[msg.hdr.request];
    return true;
}

void Session::close(std::string_view why) {
    if (connected())
        release(why);
}

void Session::release(std::string_view why) {
    for (unsigned i = 0; i < vrings_.size(); ++i)
        if (vrings_[i].running)
            stop(i, StopReason::disconnect);
    dev_->disconnected(why);
    mem_.reset();
    for (auto& v : vrings_)
        v = Vring{};
    features_ = 0;
    features_set_ = false;
    protocol_ = 0;
    sock_.reset();
}

bool Session::protocol_negotiated() const {
    return (features_ & bit(kFeatureProtocolFeatures)) != 0;
}

Result<unsigned> Session::vring_index(std::uint64_t index, const char* what) const {
    if (index >= vrings_.size())
        return fail(0, std::string(what) + " " + num(index) + " out of range: the device has " +
                           num(vrings_.size()) + " vrings");
    return static_cast<unsigned>(index);
}

bool Session::ready(const Vring& v) const {
    // Without F_PROTOCOL_FEATURES a ring starts enabled ("Ring states").
    const bool enabled = protocol_negotiated() ? v.enabled : true;
    return features_set_ && mem_ && v.num != 0 && v.addr_set && v.kick_set && v.call_set &&
           enabled;
}

Result<void> Session::check_ring(const MemoryTable& t, const VringAddr& a,
                                 std::uint32_t num_entries) const {
    const bool ev = (features_ & bit(kFeatureRingEventIdx)) != 0;
    struct Part {
        const char* name;
        std::uint64_t uva, len, align;
    } parts[] = {
        // Alignments from virtio 1.1, 2.6 (split virtqueues).
        {"descriptor table", a.desc, desc_bytes(num_entries), 16},
        {"avail ring", a.avail, avail_bytes(num_entries, ev), 2},
        {"used ring", a.used, used_bytes(num_entries, ev), 4},
    };
    for (const auto& p : parts) {
        if (p.uva % p.align != 0)
            return fail(0, "vring " + num(a.index) + " " + p.name + " at " + hex(p.uva) +
                               " is not " + num(p.align) + "-byte aligned");
        if (!t.translate_uva(p.uva, p.len))
            return fail(0, "vring " + num(a.index) + " " + p.name + " " +
                               range_text(p.uva, p.len) + " is not inside one memory region");
    }
    return {};
}

Result<VringInfo> Session::info(unsigned index) const {
    const Vring& v = vrings_[index];
    const bool ev = (features_ & bit(kFeatureRingEventIdx)) != 0;
    VringInfo i;
    i.index = index;
    i.num = v.num;
    i.base = v.base;
    i.flags = v.addr.flags;
    auto d = mem_->translate_uva(v.addr.desc, desc_bytes(v.num));
    auto a = mem_->translate_uva(v.addr.avail, avail_bytes(v.num, ev));
    auto u = mem_->translate_uva(v.addr.used, used_bytes(v.num, ev));
    if (!d || !a || !u)
        return fail(0, "vring " + num(index) + " is not inside the memory table");
    i.desc = *d;
    i.avail = *a;
    i.used = *u;
    i.kick_fd = v.kick.get();
    i.call_fd = v.call.get();
    return i;
}

void Session::stop(unsigned index, StopReason why) {
    Vring& v = vrings_[index];
    v.base = dev_->vring_stopped(index, why, v.base);
    v.running = false;
}

Result<void> Session::refresh(unsigned index, bool reconfigured) {
    Vring& v = vrings_[index];
    const bool can_run = ready(v);
    if (v.running && (!can_run || reconfigured)) {
        const bool disabled = protocol_negotiated() && !v.enabled;
        stop(index, disabled ? StopReason::disabled : StopReason::reconfigured);
    }
    if (!v.running && can_run) {
        auto i = info(index);
        if (!i)
            return fail(std::move(i.error()));
        if (auto r = dev_->vring_ready(*i); !r)
            return fail(std::move(r.error().context("device refused vring " + num(index))));
        v.running = true;
    }
    return {};
}

Result<void> Session::reply_u64(std::uint32_t request, std::uint64_t v) {
    return send_u64(sock_.get(), static_cast<Request>(request), v);
}

Result<void> Session::handle(Message& m) {
    auto shape = check_shape(m);
    if (!shape)
        return fail(std::move(shape.error()));
    const Request req = m.request();
    // GET_QUEUE_NUM exists only with MQ offered.
    const bool unsupported =
        *shape == Shape::unsupported ||
        (req == Request::get_queue_num && !(cfg_.protocol_features & bit(ProtocolFeature::mq)));
    if (unsupported) {
        if (!(m.need_reply() && (protocol_ & bit(ProtocolFeature::reply_ack))))
            return fail(0, "not served here, and no reply was asked for: the front end would "
                           "take silence for success");
        m.fds.clear();
        return reply_u64(m.hdr.request, 1);
    }
    bool replied = false;  // the request has a reply of its own
    switch (req) {
    case Request::get_features:
        if (auto r = reply_u64(m.hdr.request, offered_); !r)
            return r;
        replied = true;
        break;
    case Request::set_features: {
        const std::uint64_t f = m.u64();
        if (f & ~offered_)
            return fail(0, "features " + hex(f) + " include bits never offered (" +
                               hex(f & ~offered_) + ")");
        if (auto r = dev_->features_set(f); !r)
            return fail(std::move(r.error().context("device refused the features")));
        features_ = f;
        features_set_ = true;
        for (unsigned i = 0; i < vrings_.size(); ++i)
            if (auto r = refresh(i, false); !r)
                return r;
        break;
    }
    case Request::get_protocol_features:
        if (auto r = reply_u64(m.hdr.request, cfg_.protocol_features); !r)
            return r;
        replied = true;
        break;
    case Request::set_protocol_features: {
        const std::uint64_t f = m.u64();
        if (f & ~cfg_.protocol_features)
            return fail(0, "protocol features " + hex(f) + " include bits never offered (" +
                               hex(f & ~cfg_.protocol_features) + ")");
        protocol_ = f;
        break;
    }
    case Request::set_owner:
        break;
    case Request::reset_owner:
        // Deprecated; the spec recommends ignoring it, since back ends
        // that dropped state on it broke front ends.
        break;
    case Request::get_queue_num:
        if (auto r = reply_u64(m.hdr.request, cfg_.queue_num); !r)
            return r;
        replied = true;
        break;
    case Request::set_mem_table: {
        const auto h = m.as<MemoryHeader>();
        std::vector<MemoryRegionDesc> descs(h.nregions);
        if (h.nregions != 0)  // no regions: descs.data() may be null (fuzzing: UBSan)
            std::memcpy(descs.data(), m.payload.data() + sizeof(MemoryHeader),
                        h.nregions * sizeof(MemoryRegionDesc));
        auto t = MemoryTable::map(descs, std::move(m.fds));
        if (!t)
            return fail(std::move(t.error()));
        auto next = std::make_unique<MemoryTable>(std::move(*t));
        // Every ring already placed must still be inside the new table.
        for (unsigned i = 0; i < vrings_.size(); ++i)
            if (vrings_[i].addr_set)
                if (auto r = check_ring(*next, vrings_[i].addr, vrings_[i].num); !r)
                    return fail(std::move(r.error().context("in the new table")));
        for (unsigned i = 0; i < vrings_.size(); ++i)
            if (vrings_[i].running)
                stop(i, StopReason::reconfigured);
        if (auto r = dev_->memory_set(next->regions()); !r)
            return fail(std::move(r.error().context("device refused the memory table")));
        // The old table goes once the device has moved to the new one.
        std::unique_ptr<MemoryTable> old = std::exchange(mem_, std::move(next));
        for (unsigned i = 0; i < vrings_.size(); ++i)
            if (auto r = refresh(i, false); !r)
                return r;
        break;
    }
    case Request::set_vring_num: {
        const auto s = m.as<VringState>();
        auto i = vring_index(s.index, "vring");
        if (!i)
            return fail(std::move(i.error()));
        Vring& v = vrings_[*i];
        if (v.running)
            return fail(0, "vring " + num(*i) + " is running; GET_VRING_BASE stops it first");
        if (!power_of_two(s.num) || s.num > kMaxVringNum)
            return fail(0, "vring " + num(*i) + " size " + num(s.num) +
                               " is not a power of two up to " + num(kMaxVringNum));
        v.num = s.num;
        // A ring placed for another size must fit the new one.
        if (v.addr_set)
            if (auto r = check_ring(*mem_, v.addr, v.num); !r)
                return r;
        if (auto r = refresh(*i, false); !r)
            return r;
        break;
    }
    case Request::set_vring_addr: {
        const auto a = m.as<VringAddr>();
        auto i = vring_index(a.index, "vring");
        if (!i)
            return fail(std::move(i.error()));
        Vring& v = vrings_[*i];
        if (a.flags & ~kVringFlagLog)
            return fail(0, "vring " + num(*i) + " flags " + hex(a.flags) + " unknown");
        if (v.num == 0)
            return fail(0, "vring " + num(*i) + " placed before SET_VRING_NUM sized it");
        if (!mem_)
            return fail(0, "vring " + num(*i) + " placed before SET_MEM_TABLE");
        if (auto r = check_ring(*mem_, a, v.num); !r)
            return r;
        v.addr = a;
        const bool was = v.addr_set;
        v.addr_set = true;
        if (auto r = refresh(*i, was); !r)
            return r;
        break;
    }
    case Request::set_vring_base: {
        const auto s = m.as<VringState>();
        auto i = vring_index(s.index, "vring");
        if (!i)
            return fail(std::move(i.error()));
        Vring& v = vrings_[*i];
        if (v.running)
            return fail(0, "vring " + num(*i) + " is running; GET_VRING_BASE stops it first");
        // Split rings count avail entries in 16 bits.
        if (s.num > 0xffff)
            return fail(0, "vring " + num(*i) + " base " + num(s.num) + " is past 16 bits");
        v.base = static_cast<std::uint16_t>(s.num);
        break;
    }
    case Request::get_vring_base: {
        const auto s = m.as<VringState>();
        auto i = vring_index(s.index, "vring");
        if (!i)
            return fail(std::move(i.error()));
        Vring& v = vrings_[*i];
        if (v.running)
            stop(*i, StopReason::get_vring_base);
        // A stopped ring starts again only on a new kick ("Ring states").
        v.kick.reset();
        v.kick_set = false;
        VringState out{*i, v.base};
        std::uint8_t b[sizeof out];
        std::memcpy(b, &out, sizeof out);
        if (auto r = send_reply(sock_.get(), req, b); !r)
            return r;
        replied = true;
        break;
    }
    case Request::set_vring_kick:
    case Request::set_vring_call:
    case Request::set_vring_err: {
        const std::uint64_t u = m.u64();
        auto i = vring_index(u & kVringIndexMask, "vring");
        if (!i)
            return fail(std::move(i.error()));
        Vring& v = vrings_[*i];
        vfio::Fd fd = m.fds.empty() ? vfio::Fd() : std::move(m.fds[0]);
        if (req == Request::set_vring_err) {
            v.err = std::move(fd);
            break;
        }
        const bool kick = req == Request::set_vring_kick;
        (kick ? v.kick : v.call) = std::move(fd);
        (kick ? v.kick_set : v.call_set) = true;
        // A running ring moves to the new fd through a stop and a start.
        if (auto r = refresh(*i, true); !r)
            return r;
        break;
    }
    case Request::set_vring_enable: {
        const auto s = m.as<VringState>();
        auto i = vring_index(s.index, "vring");
        if (!i)
            return fail(std::move(i.error()));
        if (s.num > 1)
            return fail(0, "vring " + num(*i) + " enable " + num(s.num) + " is neither 0 nor 1");
        vrings_[*i].enabled = s.num == 1;
        if (auto r = refresh(*i, false); !r)
            return r;
        break;
    }
    default:
        return fail(0, "no handler");  // check_shape and the switch disagree
    }
    // Checked after the request: SET_PROTOCOL_FEATURES may have just
    // negotiated REPLY_ACK, and the front end asked.
    if (!replied && m.need_reply() && (protocol_ & bit(ProtocolFeature::reply_ack)))
        return reply_u64(m.hdr.request, 0);
    return {};
}

}  // namespace vfiokit::vhost_user

#include "codec.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "vfiokit/eal/format.hpp"
#include "vfiokit/eal/mp.hpp"

namespace vfiokit::vhost_user {

std::string_view to_string(Request r) {
    switch (r) {
    case Request::none: return "VHOST_USER_NONE";
    case Request::get_features: return "VHOST_USER_GET_FEATURES";
    case Request::set_features: return "VHOST_USER_SET_FEATURES";
    case Request::set_owner: return "VHOST_USER_SET_OWNER";
    case Request::reset_owner: return "VHOST_USER_RESET_OWNER";
    case Request::set_mem_table: return "VHOST_USER_SET_MEM_TABLE";
    case Request::set_log_base: return "VHOST_USER_SET_LOG_BASE";
    case Request::set_log_fd: return "VHOST_USER_SET_LOG_FD";
    case Request::set_vring_num: return "VHOST_USER_SET_VRING_NUM";
    case Request::set_vring_addr: return "VHOST_USER_SET_VRING_ADDR";
    case Request::set_vring_base: return "VHOST_USER_SET_VRING_BASE";
    case Request::get_vring_base: return "VHOST_USER_GET_VRING_BASE";
    case Request::set_vring_kick: return "VHOST_USER_SET_VRING_KICK";
    case Request::set_vring_call: return "VHOST_USER_SET_VRING_CALL";
    case Request::set_vring_err: return "VHOST_USER_SET_VRING_ERR";
    case Request::get_protocol_features: return "VHOST_USER_GET_PROTOCOL_FEATURES";
    case Request::set_protocol_features: return "VHOST_USER_SET_PROTOCOL_FEATURES";
    case Request::get_queue_num: return "VHOST_USER_GET_QUEUE_NUM";
    case Request::set_vring_enable: return "VHOST_USER_SET_VRING_ENABLE";
    case Request::send_rarp: return "VHOST_USER_SEND_RARP";
    case Request::net_set_mtu: return "VHOST_USER_NET_SET_MTU";
    case Request::set_backend_req_fd: return "VHOST_USER_SET_BACKEND_REQ_FD";
    case Request::iotlb_msg: return "VHOST_USER_IOTLB_MSG";
    case Request::set_vring_endian: return "VHOST_USER_SET_VRING_ENDIAN";
    case Request::get_config: return "VHOST_USER_GET_CONFIG";
    case Request::set_config: return "VHOST_USER_SET_CONFIG";
    case Request::reset_device: return "VHOST_USER_RESET_DEVICE";
    case Request::vring_kick: return "VHOST_USER_VRING_KICK";
    case Request::get_max_mem_slots: return "VHOST_USER_GET_MAX_MEM_SLOTS";
    case Request::add_mem_reg: return "VHOST_USER_ADD_MEM_REG";
    case Request::rem_mem_reg: return "VHOST_USER_REM_MEM_REG";
    case Request::set_status: return "VHOST_USER_SET_STATUS";
    case Request::get_status: return "VHOST_USER_GET_STATUS";
    }
    return {};
}

std::string request_name(std::uint32_t request) {
    const std::string_view s = to_string(static_cast<Request>(request));
    return s.empty() ? "request " + std::to_string(request) : std::string(s);
}

namespace {

std::string num(std::uint64_t n) { return std::to_string(n); }

Error malformed(std::string what) { return Error(0, std::move(what)); }

// Reads exactly buf.size() bytes (the first byte may already be waiting),
// collecting any fds that come with them. `first`: whether nothing of the
// message has been read yet, so that EOF there is a clean close.
enum class Got { all, eof_clean };
Result<Got> read_exact(int sock, std::span<std::uint8_t> buf, std::vector<vfio::Fd>& fds,
                       bool first, const char* part) {
    std::size_t have = 0;
    while (have < buf.size()) {
        if (have > 0 || !first) {
            // The rest of a message must follow promptly: a peer that stops
            // half-way must not hold the session forever.
            pollfd p{sock, POLLIN, 0};
            int r;
            do {
                r = ::poll(&p, 1, kRestTimeoutMs);
            } while (r < 0 && errno == EINTR);
            if (r < 0)
                return fail(errno, "poll");
            if (r == 0)
                return fail(malformed("truncated " + std::string(part) + ": " + num(have) +
                                      " of " + num(buf.size()) + " bytes, then nothing for " +
                                      num(kRestTimeoutMs) + " ms"));
        }
        // CLOEXEC (always, there): the front end's memory and eventfds must
        // not leak into programs this process runs. The result owns every
        // fd that arrived, so every exit path below closes them.
        auto got = eal::mp::receive_with_fds(sock, std::as_writable_bytes(buf.subspan(have)), kMaxFds);
        if (!got)
            return fail(std::move(got.error()));
        for (vfio::Fd& fd : got->fds)
            fds.push_back(std::move(fd));
        const std::size_t n = got->bytes;
        // The kernel drops the fds that do not fit the control buffer and
        // says so (net/core/scm.c): the message is not what was sent.
        if (got->msg_flags & MSG_CTRUNC)
            return fail(malformed("more than " + num(kMaxFds) +
                                  " fds in one message (ancillary data truncated)"));
        if (fds.size() > kMaxFds)
            return fail(malformed(num(fds.size()) + " fds in one message, at most " +
                                  num(kMaxFds)));
        if (n == 0) {
            if (have == 0 && first && fds.empty())
                return Got::eof_clean;
            return fail(malformed("truncated " + std::string(part) + ": " + num(have) + " of " +
                                  num(buf.size()) + " bytes before the peer closed"));
        }
        have += n;
    }
    return Got::all;
}

}  // namespace

Result<std::optional<Message>> receive(int sock) {
    Message m;
    std::uint8_t hb[sizeof(Header)];
    auto got = read_exact(sock, hb, m.fds, true, "header");
    if (!got)
        return fail(std::move(got.error()));
    if (*got == Got::eof_clean)
        return std::nullopt;
    std::memcpy(&m.hdr, hb, sizeof hb);
    const std::string name = request_name(m.hdr.request);
    if ((m.hdr.flags & kVersionMask) != kVersion)
        return fail(malformed(name + ": version " + num(m.hdr.flags & kVersionMask) +
                              ", only version 1 exists"));
    if (m.hdr.flags & kFlagReply)
        return fail(malformed(name + ": the reply flag is set on a request"));
    if (m.hdr.flags & ~(kVersionMask | kFlagReply | kFlagNeedReply))
        return fail(malformed(name + ": unknown header flags " + hex(m.hdr.flags)));
    if (m.hdr.size > kMaxPayload)
        return fail(malformed(name + ": payload of " + num(m.hdr.size) +
                              " bytes declared, no request has more than " + num(kMaxPayload)));
    m.payload.resize(m.hdr.size);
    if (m.hdr.size > 0) {
        auto p = read_exact(sock, m.payload, m.fds, false, "payload");
        if (!p)
            return fail(std::move(p.error().context(name)));
    }
    return std::optional<Message>(std::move(m));
}

namespace {

// Payload size and fd count one request needs.
struct Rule {
    std::size_t size;
    enum class Fds { none, vring_u64, per_region } fds;
};

std::optional<Rule> rule_of(Request r) {
    using F = Rule::Fds;
    switch (r) {
    case Request::get_features:
    case Request::get_protocol_features:
    case Request::set_owner:
    case Request::reset_owner:
    case Request::get_queue_num:
        return Rule{0, F::none};
    case Request::set_features:
    case Request::set_protocol_features:
        return Rule{sizeof(std::uint64_t), F::none};
    case Request::set_vring_num:
    case Request::set_vring_base:
    case Request::get_vring_base:
    case Request::set_vring_enable:
        return Rule{sizeof(VringState), F::none};
    case Request::set_vring_addr:
        return Rule{sizeof(VringAddr), F::none};
    case Request::set_vring_kick:
    case Request::set_vring_call:
    case Request::set_vring_err:
        return Rule{sizeof(std::uint64_t), F::vring_u64};
    case Request::set_mem_table:
        return Rule{sizeof(MemoryHeader), F::per_region};  // plus the regions
    default:
        return std::nullopt;
    }
}

}  // namespace

Result<Shape> check_shape(const Message& m) {
    const std::string name = request_name(m.hdr.request);
    const auto rule = rule_of(m.request());
    if (!rule)
        return Shape::unsupported;
    const std::size_t size = m.payload.size();
    auto fds_must_be = [&](std::size_t want, const std::string& why) -> Result<Shape> {
        if (m.fds.size() != want)
            return fail(malformed(name + ": " + num(m.fds.size()) + " fd(s) received, " + why));
        return Shape::served;
    };
    switch (rule->fds) {
    case Rule::Fds::none:
        if (size != rule->size)
            return fail(malformed(name + ": payload of " + num(size) + " bytes, it takes " +
                                  num(rule->size)));
        return fds_must_be(0, "it takes none");
    case Rule::Fds::vring_u64: {
        if (size != rule->size)
            return fail(malformed(name + ": payload of " + num(size) + " bytes, it takes " +
                                  num(rule->size)));
        const std::uint64_t v = m.u64();
        if (v & ~(kVringIndexMask | kVringNoFd))
            return fail(malformed(name + ": reserved bits set in " + hex(v)));
        if (v & kVringNoFd)
            return fds_must_be(0, "the no-fd flag is set");
        return fds_must_be(1, "it takes exactly one (the no-fd flag is clear)");
    }
    case Rule::Fds::per_region: {
        if (size < sizeof(MemoryHeader))
            return fail(malformed(name + ": payload of " + num(size) +
                                  " bytes, shorter than the region count"));
        const auto h = m.as<MemoryHeader>();
        if (h.nregions > kMaxMemRegions)
            return fail(malformed(name + ": " + num(h.nregions) + " regions, at most " +
                                  num(kMaxMemRegions) +
                                  " without VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS"));
        const std::size_t want = sizeof(MemoryHeader) + h.nregions * sizeof(MemoryRegionDesc);
        if (size != want)
            return fail(malformed(name + ": payload of " + num(size) + " bytes, " +
                                  num(h.nregions) + " regions take " + num(want)));
        return fds_must_be(h.nregions, "one per region is needed (" + num(h.nregions) + ")");
    }
    }
    return Shape::served;
}

Result<void> send_reply(int sock, Request r, std::span<const std::uint8_t> payload) {
    Header h{static_cast<std::uint32_t>(r), kVersion | kFlagReply,
             static_cast<std::uint32_t>(payload.size())};
    iovec iov[2] = {{&h, sizeof h},
                    {const_cast<std::uint8_t*>(payload.data()), payload.size()}};
    const std::size_t total = sizeof h + payload.size();
    auto n = eal::mp::send_with_fds(sock, std::span<const iovec>(iov, payload.empty() ? 1 : 2), {});
    if (!n)
        return fail(std::move(n.error()).context(request_name(h.request) + " reply"));
    // Replies are a few dozen bytes on an idle socket; a short write means
    // the peer is not reading, which ends the session like any failure.
    if (*n != total)
        return fail(EAGAIN, "sendmsg " + request_name(h.request) + " reply: short write");
    return {};
}

Result<void> send_u64(int sock, Request r, std::uint64_t v) {
    std::uint8_t b[sizeof v];
    std::memcpy(b, &v, sizeof v);
    return send_reply(sock, r, b);
}

}  // namespace vfiokit::vhost_user

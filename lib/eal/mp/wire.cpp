#include "wire.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "vfiokit/eal/format.hpp"

namespace vfiokit::eal::mp {

Result<std::size_t> send_with_fds(int sock, std::span<const iovec> iov, std::span<const int> fds,
                                  int flags) {
    msghdr mh{};
    mh.msg_iov = const_cast<iovec*>(iov.data());
    mh.msg_iovlen = iov.size();
    // cmsghdr needs its alignment: std::vector's storage comes from operator new.
    std::vector<std::byte> cbuf;
    if (!fds.empty()) {
        cbuf.resize(CMSG_SPACE(fds.size() * sizeof(int)));
        mh.msg_control = cbuf.data();
        mh.msg_controllen = cbuf.size();
        cmsghdr* c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
        std::memcpy(CMSG_DATA(c), fds.data(), fds.size() * sizeof(int));
    }
    ssize_t n;
    do {
        n = vfio::sys().sendmsg(sock, &mh, flags | MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return fail(Error(errno, "sendmsg"));
    return static_cast<std::size_t>(n);
}

Result<ReceivedWithFds> receive_with_fds(int sock, std::span<std::byte> buf, std::size_t max_fds,
                                         int flags) {
    max_fds = std::min(max_fds, kMaxFds);
    std::vector<std::byte> cbuf(max_fds ? CMSG_SPACE(max_fds * sizeof(int)) : 0);
    iovec iov{buf.data(), buf.size()};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cbuf.empty() ? nullptr : cbuf.data();
    mh.msg_controllen = cbuf.size();
    ssize_t n;
    do {
        // MSG_CMSG_CLOEXEC: fds received must not leak into programs this
        // process execs (the primary starts secondaries with fork+exec).
        n = vfio::sys().recvmsg(sock, &mh, flags | MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return fail(Error(errno, "recvmsg"));
    ReceivedWithFds r;
    r.bytes = static_cast<std::size_t>(n);
    r.msg_flags = mh.msg_flags;
    for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c != nullptr; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        const std::size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (std::size_t i = 0; i < k; ++i) {
            int fd;
            std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            r.fds.emplace_back(fd);
        }
    }
    return r;
}

}  // namespace vfiokit::eal::mp

namespace vfiokit::eal::mp::wire {

Header make_header(Kind kind, std::uint32_t seq, std::string_view name) {
    Header h;
    h.kind = static_cast<std::uint16_t>(kind);
    h.seq = seq;
    std::memcpy(h.name, name.data(), std::min(name.size(), kMaxNameLen));
    return h;
}

std::string frame(const Header& h, std::string_view payload) {
    std::string s(reinterpret_cast<const char*>(&h), sizeof h);
    s.append(payload);
    return s;
}

namespace {

std::string num(std::uint64_t n) { return std::to_string(n); }

// Checks a message whose fds are already owned by `r.msg`. Returns the
// reason it is malformed, or "" when it is well formed.
std::string check(int msg_flags, std::size_t n, Received& r, std::span<const std::byte> buf) {
    // The kernel drops the fds that do not fit the control buffer (and those
    // the receiver has no room for under RLIMIT_NOFILE) and says so with
    // MSG_CTRUNC (net/core/scm.c, scm_detach_fds): the message is incomplete.
    if (msg_flags & MSG_CTRUNC)
        return "control data truncated: " + num(r.msg.fds.size()) +
               " fd(s) arrived, the kernel dropped the rest (too many fds, or RLIMIT_NOFILE)";
    // SOCK_SEQPACKET discards what does not fit the buffer: more than a
    // header and kMaxPayload.
    if (msg_flags & MSG_TRUNC)
        return "message longer than " + num(kMaxMessage) + " bytes (payload limit " +
               num(kMaxPayload) + ")";
    if (n < sizeof(Header))
        return "short message: " + num(n) + " bytes, the header alone is " + num(sizeof(Header));
    std::memcpy(&r.msg.h, buf.data(), sizeof(Header));
    const Header& h = r.msg.h;
    if (h.magic != kMagic)
        return "bad magic 0x" + hex_digits(h.magic, 8);
    if (h.version != kVersion)
        return "protocol version " + num(h.version) + ", this side speaks " + num(kVersion);
    r.header_ok = true;
    if (h.payload_len > kMaxPayload)
        return "payload of " + num(h.payload_len) + " bytes declared, the limit is " +
               num(kMaxPayload);
    if (n - sizeof(Header) != h.payload_len)
        return "truncated: the header declares " + num(h.payload_len) + " payload bytes, " +
               num(n - sizeof(Header)) + " arrived";
    if (h.nfds != r.msg.fds.size())
        return "the header declares " + num(h.nfds) + " fd(s), " + num(r.msg.fds.size()) +
               " arrived";
    if (h.name[kMaxNameLen] != '\0')
        return "request name not NUL-terminated";
    if (h.kind < static_cast<std::uint16_t>(Kind::request) ||
        h.kind > static_cast<std::uint16_t>(Kind::error))
        return "unknown message kind " + num(h.kind);
    return {};
}

}  // namespace

Result<Received> receive(int sock, std::span<std::byte> buf, int flags, std::size_t max_fds) {
    auto raw = receive_with_fds(sock, buf, max_fds, flags);
    if (!raw)
        return fail(std::move(raw.error()));
    const std::size_t n = raw->bytes;
    Received r;
    // Every fd is owned from here on, so every rejection closes them.
    r.msg.fds = std::move(raw->fds);
    // A SOCK_SEQPACKET read of 0 bytes is the peer's orderly close, and
    // also what an empty datagram reads as: either way the conversation is
    // over (an empty message is not one of ours).
    if (n == 0) {
        r.msg.fds.clear();
        r.status = Received::Status::closed;
        return r;
    }
    r.why = check(raw->msg_flags, n, r, buf);
    if (!r.why.empty()) {
        r.msg.fds.clear();
        r.status = Received::Status::malformed;
        return r;
    }
    r.msg.payload.assign(reinterpret_cast<const char*>(buf.data()) + sizeof(Header),
                         r.msg.h.payload_len);
    r.status = Received::Status::message;
    return r;
}

Result<void> send(int sock, Header h, std::string_view payload, std::span<const int> fds,
                  int flags) {
    if (payload.size() > kMaxPayload)
        return fail(Error(EMSGSIZE, "send a message of " + num(payload.size()) +
                                        " payload bytes (limit " + num(kMaxPayload) + ")"));
    if (fds.size() > kMaxFds)
        return fail(Error(EMSGSIZE, "send " + num(fds.size()) + " fds (the kernel's SCM_MAX_FD is " +
                                        num(kMaxFds) + ")"));
    h.payload_len = static_cast<std::uint32_t>(payload.size());
    h.nfds = static_cast<std::uint32_t>(fds.size());
    const std::string bytes = frame(h, payload);
    const iovec iov{const_cast<char*>(bytes.data()), bytes.size()};
    auto n = send_with_fds(sock, std::span(&iov, 1), fds, flags);
    if (!n)
        return fail(std::move(n.error()));
    return {};
}

}  // namespace vfiokit::eal::mp::wire

// The vhost-user codec: reads one message (header, payload, the fds in its
// ancillary data) from a stream socket, checks its shape against the
// request type, and writes replies. Private to lib/vhost-user.
//
// Shape means everything that can be checked without the session's state:
// the header's version and flags, the payload size the request type
// demands, and the number of fds it carries (SCM_RIGHTS, never truncated).
// What the values mean (region overlaps, vring indexes, ring addresses) is
// the session's business.
//
// Errors: err 0 for a malformed message (the op says what is wrong), the
// errno for a failed syscall. Either way the received fds are closed when
// the Message (or the partial one) goes out of scope.
// Thread-safety: none needed; every function works on its arguments.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "vfiokit/eal/error.hpp"
#include "vfiokit/eal/vfio/syscalls.hpp"
#include "vfiokit/vhost_user/protocol.hpp"

namespace vfiokit::vhost_user {

// No served request carries more fds than SET_MEM_TABLE's one per region;
// more than this in one message is truncated by the kernel (MSG_CTRUNC).
inline constexpr std::size_t kMaxFds = kMaxMemRegions;
// Larger than any payload the spec defines for the requests served or
// skipped here (GET_CONFIG: 12 + 256). A larger declared size is refused
// before anything is read.
inline constexpr std::size_t kMaxPayload = 4096;
// How long the rest of a message may take once its first byte is in.
inline constexpr int kRestTimeoutMs = 1000;

struct Message {
    Header hdr{};
    std::vector<std::uint8_t> payload;
    std::vector<vfio::Fd> fds;

    [[nodiscard]] Request request() const { return static_cast<Request>(hdr.request); }
    [[nodiscard]] bool need_reply() const { return (hdr.flags & kFlagNeedReply) != 0; }
    // Payload as T; the shape check has made sure the size is right.
    template <class T>
    [[nodiscard]] T as() const;
    [[nodiscard]] std::uint64_t u64() const { return as<std::uint64_t>(); }
};

// "VHOST_USER_SET_MEM_TABLE", or "request 77".
[[nodiscard]] std::string request_name(std::uint32_t request);

// Reads one message. nullopt: the peer closed the connection between
// messages. An Error: a syscall failed, the peer closed or stalled inside a
// message (truncated), or the header is malformed (bad version, reply flag
// set, payload larger than kMaxPayload), or fds were truncated.
[[nodiscard]] Result<std::optional<Message>> receive(int sock);

enum class Shape { served, unsupported };
// Checks payload size and fd count of a request this library serves;
// `unsupported` for the others (their fds are the caller's to close).
[[nodiscard]] Result<Shape> check_shape(const Message& m);

// Writes a reply: the request's number, version 1 and the reply flag.
[[nodiscard]] Result<void> send_reply(int sock, Request r, std::span<const std::uint8_t> payload);
[[nodiscard]] Result<void> send_u64(int sock, Request r, std::uint64_t v);

template <class T>
T Message::as() const {
    T v{};
    std::copy_n(payload.data(), std::min(payload.size(), sizeof v),
                reinterpret_cast<std::uint8_t*>(&v));
    return v;
}

}  // namespace vfiokit::vhost_user

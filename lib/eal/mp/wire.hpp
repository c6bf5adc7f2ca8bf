// The channel's framing: one message per SOCK_SEQPACKET datagram.
//
//   [Header][payload: header.payload_len bytes]   + SCM_RIGHTS: header.nfds fds
//
// Private to lib/eal/mp (and its tests, which forge malformed messages).
// Both ends run on the same machine, so integers are in host byte order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vfiokit/eal/error.hpp"
#include "vfiokit/eal/mp.hpp"
#include "vfiokit/eal/vfio/syscalls.hpp"

namespace vfiokit::eal::mp::wire {

inline constexpr std::uint32_t kMagic = 0x504d4b56;  // "VKMP" in memory on little-endian
inline constexpr std::uint16_t kVersion = 1;

enum class Kind : std::uint16_t { request = 1, reply = 2, error = 3 };

struct Header {
    std::uint32_t magic = kMagic;
    std::uint16_t version = kVersion;
    std::uint16_t kind = 0;
    std::uint32_t seq = 0;          // a reply carries its request's
    std::uint32_t payload_len = 0;  // bytes after the header
    std::uint32_t nfds = 0;         // fds sent with SCM_RIGHTS
    std::int32_t err = 0;           // Kind::error: the errno; payload is the message
    char name[kMaxNameLen + 1] = {};  // NUL-terminated request name
};
static_assert(sizeof(Header) == 88, "the header is part of the protocol");

inline constexpr std::size_t kMaxMessage = sizeof(Header) + kMaxPayload;

struct Message {
    Header h;
    std::string payload;
    std::vector<vfio::Fd> fds;
};

// What one receive produced. Any fds that came with a closed or malformed
// message are closed before receive() returns.
struct Received {
    enum class Status { message, closed, malformed } status = Status::closed;
    Message msg;             // status == message
    std::string why;         // status == malformed: what was wrong
    bool header_ok = false;  // malformed, but magic and version were right: msg.h is usable
};

// One receive with `flags` (MSG_DONTWAIT, ...; MSG_CMSG_CLOEXEC is always
// added). `buf` must hold kMaxMessage bytes: anything longer is truncated by
// the kernel (MSG_TRUNC) and rejected. `max_fds` sizes the control buffer
// (fds beyond it are dropped by the kernel: MSG_CTRUNC, rejected). Errors
// are the recvmsg errno (EAGAIN, ECONNRESET, ...).
[[nodiscard]] Result<Received> receive(int sock, std::span<std::byte> buf, int flags,
                                       std::size_t max_fds = kMaxFds);

// Sends one message; fills payload_len and nfds. MSG_NOSIGNAL always: a
// dead peer is EPIPE, not SIGPIPE. EMSGSIZE for more than kMaxPayload bytes
// or kMaxFds fds.
[[nodiscard]] Result<void> send(int sock, Header h, std::string_view payload,
                                std::span<const int> fds, int flags = 0);

// The bytes of one message: the header exactly as given, then the payload.
// send() frames with this after filling payload_len and nfds; tests frame
// forged headers with it.
[[nodiscard]] std::string frame(const Header& h, std::string_view payload);

// A header of `kind` named `name` (truncated to kMaxNameLen).
[[nodiscard]] Header make_header(Kind kind, std::uint32_t seq, std::string_view name);

}  // namespace vfiokit::eal::mp::wire

// The multi-process channel (lib/eal/mp/wire.hpp) as the primary serves
// it: a Server on one end of a SOCK_SEQPACKET socketpair, the input sent
// from the other end as datagrams with fds attached. Whatever arrives, the
// server answers with well-formed replies or errors, or closes the
// connection, and keeps no fd of it.
//
// Input: records of [control byte][16-bit length][bytes]. Control bits 0-2:
// fds to attach (eventfds); bit 3: the bytes are a payload framed behind a
// valid header (kind from bits 4-5, the name its first byte selects),
// else they are the whole datagram.
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <array>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "fuzz_util.hpp"
#include "vfiokit/eal/mp.hpp"
#include "wire.hpp"

using namespace vfiokit;
using namespace vfiokit::eal;

namespace {

constexpr std::array<const char*, 5> kNames = {"echo", "fail", "throw", "fds", "nosuch"};

mp::Server& server() {
    static std::unique_ptr<mp::Server> s = [] {
        auto r = mp::Server::create();
        FUZZ_CHECK(r.has_value(), "Server::create: %s", r.error().message().c_str());
        auto srv = std::move(*r);
        srv->set_logger([](std::string_view) {});
        // Echo: the payload back, and a dup of every fd received.
        srv->handle("echo", [](const mp::Request& q, const mp::Peer&) -> Result<mp::Reply> {
            mp::Reply rep;
            rep.payload = q.payload;
            for (const auto& f : q.fds)
                rep.owned_fds.emplace_back(::fcntl(f.get(), F_DUPFD_CLOEXEC, 0));
            return rep;
        });
        srv->handle("fail", [](const mp::Request& q, const mp::Peer&) -> Result<mp::Reply> {
            return fail(EINVAL, "fail: " + q.payload);
        });
        srv->handle("throw", [](const mp::Request& q, const mp::Peer&) -> Result<mp::Reply> {
            throw std::runtime_error("throw: " + std::to_string(q.payload.size()));
        });
        // As many borrowed fds as the payload's length says (a reply over
        // kMaxFds must become an error).
        srv->handle("fds", [](const mp::Request& q, const mp::Peer&) -> Result<mp::Reply> {
            mp::Reply rep;
            rep.fds.assign(q.payload.size() * 2, STDERR_FILENO);
            return rep;
        });
        auto ok = srv->start();
        FUZZ_CHECK(ok.has_value(), "Server::start: %s", ok.error().message().c_str());
        return srv;
    }();
    return *s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const bool quiet = fuzz::quiet_logs();
    (void)quiet;
    mp::Server& srv = server();
    const int before = fuzz::open_fds();
    int sv[2];
    FUZZ_CHECK(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
    vfio::Fd mine(sv[0]);
    auto added = srv.add_connection(vfio::Fd(sv[1]));
    FUZZ_CHECK(added.has_value(), "add_connection: %s", added.error().message().c_str());

    fuzz::Input in(data, size);
    std::uint32_t seq = 0;
    while (in.left() > 0) {
        const std::uint8_t ctl = in.u8();
        const auto bytes = in.bytes(in.u16() % (mp::kMaxPayload + 256));
        std::string dgram;
        if ((ctl & 8) != 0) {
            const std::string_view name =
                bytes.empty() ? "" : kNames[bytes[0] % kNames.size()];
            auto kind = static_cast<mp::wire::Kind>(1 + ((ctl >> 4) & 3) % 3);
            auto h = mp::wire::make_header(kind, ++seq, name);
            h.payload_len = static_cast<std::uint32_t>(bytes.size());
            h.nfds = ctl & 7;
            dgram = mp::wire::frame(
                h, {reinterpret_cast<const char*>(bytes.data()), bytes.size()});
        } else {
            dgram.assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
        }
        std::vector<vfio::Fd> fds;
        std::vector<int> raw;
        for (int i = 0; i < (ctl & 7); ++i) {
            fds.emplace_back(::eventfd(0, EFD_CLOEXEC));
            raw.push_back(fds.back().get());
        }
        iovec iov{dgram.data(), dgram.size()};
        // The server may already have closed its end: EPIPE ends the input.
        if (!mp::send_with_fds(mine.get(), {&iov, 1}, raw, MSG_DONTWAIT))
            break;
    }
    ::shutdown(mine.get(), SHUT_WR);

    // Replies until the server closes: each one well formed.
    std::vector<std::byte> buf(mp::wire::kMaxMessage);
    for (;;) {
        auto r = mp::wire::receive(mine.get(), buf, 0);
        if (!r)
            break;  // ECONNRESET: the server dropped us
        if (r->status == mp::wire::Received::Status::closed)
            break;
        FUZZ_CHECK(r->status == mp::wire::Received::Status::message,
                   "the server sent a malformed message: %s", r->why.c_str());
        const auto kind = r->msg.h.kind;
        FUZZ_CHECK(kind == static_cast<std::uint16_t>(mp::wire::Kind::reply) ||
                       kind == static_cast<std::uint16_t>(mp::wire::Kind::error),
                   "the server sent kind %u", kind);
    }
    mine.reset();
    // The server closes its end before our read sees the end of the stream.
    const int after = fuzz::open_fds();
    FUZZ_CHECK(after == before, "%d fds open before, %d after", before, after);
    return 0;
}

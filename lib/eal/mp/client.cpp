// A secondary's side of the channel: requests with a deadline, and noticing
// the primary's death from the connection itself (the kernel closes every
// socket of a process that dies, however it dies).
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <thread>

#include "vfiokit/eal/mp.hpp"
#include "../process.hpp"
#include "wire.hpp"
#include "vfiokit/eal/sysfs.hpp"

namespace vfiokit::eal::mp {

namespace {

using Clock = std::chrono::steady_clock;

using detail::process_alive;

}  // namespace

struct Client::Impl {
    vfio::Fd sock;
    std::string prefix;
    std::optional<RuntimeDir> dir;
    ClientOptions opts;
    Peer primary;
    std::mutex mu;  // one request at a time
    std::uint32_t seq = 0;
    std::vector<std::byte> buf = std::vector<std::byte>(wire::kMaxMessage);
    std::thread watcher;
    vfio::Fd watch_stop;

    std::string who() const {
        return "primary (pid " + std::to_string(primary.pid) + ", prefix " + prefix + ")";
    }
    bool primary_running() const;
    // The primary says why before it closes a connection it refuses (a
    // limit): an error with sequence number 0 still queued after the
    // reset (the kernel reports ECONNRESET once, then the queued data).
    std::optional<Error> refusal() {
        for (int attempt = 0; attempt < 2; ++attempt) {
            auto r = wire::receive(sock.get(), buf, MSG_DONTWAIT);
            if (!r) {
                if (r.error().err() == ECONNRESET)
                    continue;
                return std::nullopt;
            }
            if (r->status == wire::Received::Status::message && r->msg.h.seq == 0 &&
                r->msg.h.kind == static_cast<std::uint16_t>(wire::Kind::error))
                return Error(r->msg.h.err, "the " + who() + " closed this connection: " +
                                               r->msg.payload);
            return std::nullopt;
        }
        return std::nullopt;
    }
};

bool Client::Impl::primary_running() const {
    if (dir) {
        // The primary's lock outlives its socket by a moment when it dies
        // (the kernel closes a dying process's fds one by one): wait for it
        // briefly before concluding that it lives and closed on us.
        for (int attempt = 0; attempt < 40; ++attempt) {
            auto r = running_primary(*dir);
            if (!r)
                break;  // unreadable (another user's directory): ask /proc
            if (!*r || **r != primary.pid)
                return false;
            if (!process_alive(primary.pid))
                return false;
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
    }
    return process_alive(primary.pid);
}

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Client::~Client() {
    if (impl_->watcher.joinable()) {
        std::uint64_t one = 1;
        (void)!::write(impl_->watch_stop.get(), &one, sizeof one);
        impl_->watcher.join();
    }
}

Result<std::unique_ptr<Client>> Client::adopt(vfio::Fd sock, std::string prefix, ClientOptions o) {
    auto impl = std::make_unique<Impl>();
    ucred c{};
    socklen_t len = sizeof c;
    if (::getsockopt(sock.get(), SOL_SOCKET, SO_PEERCRED, &c, &len) != 0)
        return fail(Error(errno, "getsockopt SO_PEERCRED").context("mp: connect to the primary"));
    // Before anything it sends is used: its memfds would become our DMA
    // heap, its fds our devices.
    if (c.uid != ::geteuid() && c.uid != 0 &&
        std::find(o.trusted_uids.begin(), o.trusted_uids.end(), c.uid) == o.trusted_uids.end())
        return fail(Error(EPERM, "the primary of prefix " + prefix + " is pid " +
                                     std::to_string(c.pid) + " running as uid " +
                                     std::to_string(c.uid) + ", neither this process's uid (" +
                                     std::to_string(::geteuid()) + ") nor root")
                        .context("mp: connect to the primary")
                        .hint("nothing it sends is used; if that user's primary is meant, trust "
                              "it with ClientOptions::trusted_uids"));
    impl->sock = std::move(sock);
    impl->prefix = std::move(prefix);
    impl->opts = o;
    impl->primary = {c.pid, c.uid, c.gid};
    return std::unique_ptr<Client>(new Client(std::move(impl)));
}

Result<std::unique_ptr<Client>> Client::connect(const RuntimeDir& d, ClientOptions o) {
    const std::string path = d.socket_path();
    // Through the checked directory's fd when there is one.
    const std::string via = d.at("mp_socket");
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (via.size() >= sizeof a.sun_path)
        return fail(Error(ENAMETOOLONG, "mp: socket path " + path));
    std::memcpy(a.sun_path, via.c_str(), via.size());
    const auto deadline = Clock::now() + o.connect_wait;
    for (;;) {
        int s = vfio::sys().socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (s < 0)
            return fail(Error(errno, "socket(AF_UNIX, SOCK_SEQPACKET)").context("mp"));
        vfio::Fd fd(s);
        if (vfio::sys().connect(s, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0) {
            // For a connected unix socket SO_PEERCRED gives the credentials
            // of the process that called listen(): the primary's pid.
            auto c = adopt(std::move(fd), d.prefix, o);
            if (c)
                (*c)->impl_->dir = d;
            return c;
        }
        const int err = errno;
        if (err == EACCES)
            return fail(Error(err, "connect to " + path)
                            .context("mp: prefix " + d.prefix)
                            .hint("the runtime directory belongs to another user: run as the "
                                  "primary's user"));
        if (err != ENOENT && err != ECONNREFUSED && err != EAGAIN)
            return fail(Error(err, "connect to " + path).context("mp: prefix " + d.prefix));
        auto running = running_primary(d);
        if (!running)
            return fail(std::move(running.error()));
        if (!*running)
            return fail(Error(ENOENT, "no primary with prefix " + d.prefix + " is running")
                            .hint("start the primary first (same --file-prefix), or use "
                                  "--proc-type=auto"));
        // Locked but not listening yet: a primary starting up (or its
        // backlog is full). Wait for it, within reason.
        if (Clock::now() >= deadline)
            return fail(Error(err, "connect to the primary (pid " + std::to_string(**running) +
                                       ") at " + path)
                            .context("mp: prefix " + d.prefix)
                            .hint("the primary holds its lock but does not accept connections"));
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

pid_t Client::primary_pid() const { return impl_->primary.pid; }
uid_t Client::primary_uid() const { return impl_->primary.uid; }
const std::string& Client::prefix() const { return impl_->prefix; }

bool Client::primary_alive() const {
    pollfd p{impl_->sock.get(), POLLRDHUP, 0};
    if (::poll(&p, 1, 0) < 0)
        return true;  // EINTR and the like say nothing about the primary
    return !(p.revents & (POLLHUP | POLLRDHUP | POLLERR | POLLNVAL));
}

Error Client::primary_gone() const {
    if (impl_->primary_running())
        return std::move(Error(ECONNRESET, "the " + impl_->who() + " closed this connection")
                             .hint("it rejected this process, or failed to receive or send "
                                   "on this connection: its log says why (another uid needs "
                                   "Server::allow_uid; a malformed message is dropped)"));
    return std::move(Error(ECONNRESET, impl_->who() + " has exited")
                         .hint("start the primary again, then this secondary"));
}

Result<Response> Client::request(std::string_view name, std::string_view payload,
                                 std::span<const int> fds) {
    return request(name, payload, fds, impl_->opts.timeout);
}

Result<Response> Client::request(std::string_view name, std::string_view payload,
                                 std::span<const int> fds, std::chrono::milliseconds timeout) {
    Impl& i = *impl_;
    const std::string what = "mp request '" + std::string(name) + "'";
    if (name.empty() || name.size() > kMaxNameLen)
        return fail(Error(EINVAL, what + ": names have 1 to " + std::to_string(kMaxNameLen) +
                                      " characters"));
    std::lock_guard g(i.mu);
    // 0 is the primary's, for messages that answer no request.
    if (++i.seq == 0)
        ++i.seq;
    const std::uint32_t seq = i.seq;
    if (auto ok = wire::send(i.sock.get(), wire::make_header(wire::Kind::request, seq, name),
                             payload, fds);
        !ok) {
        const int e = ok.error().err();
        if (e == EPIPE || e == ECONNRESET || e == ENOTCONN) {
            if (auto why = i.refusal())
                return fail(std::move(why->context(what)));
            return fail(primary_gone().context(what));
        }
        return fail(std::move(ok.error()).context(what + " to the " + i.who()));
    }
    const auto deadline = Clock::now() + timeout;
    for (;;) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        pollfd p{i.sock.get(), POLLIN, 0};
        const int n = left.count() > 0 ? ::poll(&p, 1, static_cast<int>(left.count())) : 0;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail(Error(errno, "poll").context(what));
        if (n == 0)
            return fail(Error(ETIMEDOUT, what + " to the " + i.who())
                            .hint("no reply in " + std::to_string(timeout.count()) +
                                  " ms: the primary is busy or stuck"));
        auto r = wire::receive(i.sock.get(), i.buf, MSG_DONTWAIT);
        if (!r) {
            const int e = r.error().err();
            if (e == EAGAIN)
                continue;
            if (e == ECONNRESET || e == ENOTCONN) {
                if (auto why = i.refusal())
                    return fail(std::move(why->context(what)));
                return fail(primary_gone().context(what));
            }
            return fail(std::move(r.error()).context(what));
        }
        if (r->status == wire::Received::Status::closed)
            return fail(primary_gone().context(what));
        if (r->status == wire::Received::Status::malformed)
            return fail(Error(EPROTO, "malformed reply from the " + i.who() + ": " + r->why)
                            .context(what));
        // Sequence number 0 is no request's: the primary refused this
        // connection (a limit of its Limits) and closes it.
        if (r->msg.h.seq == 0 && r->msg.h.kind == static_cast<std::uint16_t>(wire::Kind::error))
            return fail(Error(r->msg.h.err, "the " + i.who() + " closed this connection: " +
                                                r->msg.payload)
                            .context(what));
        // A late reply to a request that timed out: drop it (and its fds).
        if (r->msg.h.seq != seq)
            continue;
        if (r->msg.h.kind == static_cast<std::uint16_t>(wire::Kind::error))
            return fail(Error(r->msg.h.err, r->msg.payload).context(what + " to the " + i.who()));
        if (r->msg.h.kind != static_cast<std::uint16_t>(wire::Kind::reply))
            return fail(Error(EPROTO, "a request from the " + i.who() + " where a reply belongs")
                            .context(what));
        return Response{std::move(r->msg.payload), std::move(r->msg.fds)};
    }
}

Result<void> Client::watch(std::function<void(const Error&)> on_exit) {
    Impl& i = *impl_;
    if (i.watcher.joinable())
        return fail(EBUSY, "mp: the primary is watched already");
    int w = ::eventfd(0, EFD_CLOEXEC);
    if (w < 0)
        return fail(Error(errno, "eventfd").context("mp: watch the primary"));
    i.watch_stop = vfio::Fd(w);
    i.watcher = std::thread([this, cb = std::move(on_exit)] {
        Impl& im = *impl_;
        // POLLRDHUP alone: replies arriving (POLLIN) must not wake us; a
        // hang-up (POLLHUP) is reported whether asked for or not.
        pollfd p[2] = {{im.sock.get(), POLLRDHUP, 0}, {im.watch_stop.get(), POLLIN, 0}};
        for (;;) {
            if (::poll(p, 2, -1) < 0) {
                if (errno == EINTR)
                    continue;
                return;
            }
            if (p[1].revents)
                return;
            if (p[0].revents & (POLLHUP | POLLRDHUP | POLLERR | POLLNVAL)) {
                cb(primary_gone());
                return;
            }
        }
    });
    return {};
}

}  // namespace vfiokit::eal::mp

// The primary's side of the channel: one thread polls the listening socket
// and every connection, and runs the handlers one request at a time (as
// DPDK's rte_mp handle thread does). Nothing a peer sends can stop it: bad
// input closes that peer's connection only.
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <thread>

#include "vfiokit/eal/mp.hpp"
#include "wire.hpp"
#include "vfiokit/eal/log.hpp"

namespace vfiokit::eal::mp {

namespace {

// The server's events (peers admitted, refused, gone) when no log callback is set.
const log::Component kLog("mp");

std::string describe(const Peer& p) {
    return "pid " + std::to_string(p.pid) + " (uid " + std::to_string(p.uid) + ")";
}

Result<Peer> peer_of(int sock) {
    ucred c{};
    socklen_t len = sizeof c;
    if (::getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &c, &len) != 0)
        return fail(Error(errno, "getsockopt SO_PEERCRED"));
    return Peer{c.pid, c.uid, c.gid};
}

}  // namespace

struct Server::Impl {
    vfio::Fd listen_fd;
    std::string path;
    std::shared_ptr<const vfio::Fd> dir;  // the runtime directory the socket is in
    ino_t path_ino = 0;  // the socket file we bound: unlink only that one
    dev_t path_dev = 0;
    vfio::Fd wake;       // eventfd: stop() and add_connection() wake the thread
    std::thread thread;
    std::atomic<bool> stopping{false};

    mutable std::mutex mu;  // guards the members up to `conns`
    struct Entry {
        std::shared_ptr<Handler> handler;
        Policy policy;
    };
    std::map<std::string, Entry, std::less<>> handlers;
    Limits limits;
    std::vector<uid_t> allowed;
    std::vector<vfio::Fd> pending;
    std::function<std::string()> info;
    std::function<void(std::string_view)> log;
    std::function<void(const Peer&)> disconnected;

    // Server thread only.
    using Clock = std::chrono::steady_clock;
    struct Conn {
        vfio::Fd fd;
        Peer peer;
        Clock::time_point since;  // connected
        bool asked = false;       // has sent a request
    };
    std::vector<Conn> conns;
    std::uint64_t next_connection = 1;
    // Removes conns[k] and tells on_disconnect()'s callback.
    void drop_conn(std::size_t k);
    std::vector<std::byte> buf = std::vector<std::byte>(wire::kMaxMessage);
    // accept() failed for lack of fds: leave the listening socket out of
    // poll for a moment rather than spin on it.
    std::chrono::steady_clock::time_point accept_paused_until{};

    std::atomic<std::uint64_t> accepted{0}, rejected_uid{0}, malformed{0}, requests{0}, unknown{0},
        send_failed{0}, open{0}, refused_policy{0}, refused_full{0}, refused_fds{0},
        idle_closed{0};

    void say(const std::string& m) {
        std::function<void(std::string_view)> l;
        {
            std::lock_guard g(mu);
            l = log;
        }
        if (l)
            l(m);
        else
            kLog.notice("{}", m);
    }
    void kick() {
        std::uint64_t one = 1;
        if (wake)
            (void)!::write(wake.get(), &one, sizeof one);
    }

    void run();
    void admit(vfio::Fd fd);
    // Tells a peer why it is closed (sequence number 0: no request of its).
    void refuse(int fd, int err, const std::string& text);
    void close_idle(Clock::time_point now);
    void accept_all();
    // False: close the connection.
    bool serve(Conn& c);
    void dispatch(Conn& c, wire::Message& m);
    bool reply_error(Conn& c, const wire::Header& req, int err, const std::string& text);
};

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() { stop(); }

Result<std::unique_ptr<Server>> Server::create() {
    return std::unique_ptr<Server>(new Server(std::make_unique<Impl>()));
}

Result<std::unique_ptr<Server>> Server::listen(const RuntimeDir& d, const PrimaryLock& lock) {
    (void)lock;  // its existence is the proof that replacing the socket file is safe
    auto impl = std::make_unique<Impl>();
    impl->path = d.socket_path();
    impl->dir = d.fd;
    // Bound through the directory's fd when there is one (the path we
    // checked, not whatever sits at its name now).
    const std::string via = d.at("mp_socket");
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (via.size() >= sizeof a.sun_path)
        return fail(Error(ENAMETOOLONG, "mp: socket path " + impl->path)
                        .hint("unix socket paths have " + std::to_string(sizeof a.sun_path - 1) +
                              " bytes at most: use a shorter --file-prefix or XDG_RUNTIME_DIR"));
    std::memcpy(a.sun_path, via.c_str(), via.size());
    int s = vfio::sys().socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s < 0)
        return fail(Error(errno, "socket(AF_UNIX, SOCK_SEQPACKET)").context("mp"));
    impl->listen_fd = vfio::Fd(s);
    // A crashed primary leaves its socket file behind; we hold the lock,
    // so no live primary uses it.
    if (::unlink(via.c_str()) != 0 && errno != ENOENT)
        return fail(Error(errno, "unlink stale " + impl->path).context("mp"));
    if (::bind(s, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0)
        return fail(Error(errno, "bind " + impl->path).context("mp"));
    // The mode of a socket file is set on the path: fchmod() on the socket
    // fd changes the socket's own inode, not the file. Nobody can connect
    // before listen(), so there is no window at a wider mode.
    struct stat st {};
    if (::chmod(via.c_str(), 0600) != 0 || ::lstat(via.c_str(), &st) != 0) {
        Error e(errno, "chmod 0600 " + impl->path);
        ::unlink(via.c_str());
        return fail(std::move(e.context("mp")));
    }
    impl->path_ino = st.st_ino;
    impl->path_dev = st.st_dev;
    if (::listen(s, 64) != 0) {
        Error e(errno, "listen " + impl->path);
        ::unlink(via.c_str());
        return fail(std::move(e.context("mp")));
    }
    return std::unique_ptr<Server>(new Server(std::move(impl)));
}

const std::string& Server::socket_path() const { return impl_->path; }

void Server::handle(std::string name, Handler h, Policy p) {
    std::lock_guard g(impl_->mu);
    impl_->handlers[std::move(name)] = {std::make_shared<Handler>(std::move(h)), p};
}

void Server::set_policy(std::string_view name, Policy p) {
    std::lock_guard g(impl_->mu);
    if (auto it = impl_->handlers.find(name); it != impl_->handlers.end())
        it->second.policy = p;
}

void Server::set_limits(Limits l) {
    std::lock_guard g(impl_->mu);
    impl_->limits = l;
}

void Server::allow_uid(uid_t uid) {
    std::lock_guard g(impl_->mu);
    impl_->allowed.push_back(uid);
}

void Server::set_info_provider(std::function<std::string()> p) {
    std::lock_guard g(impl_->mu);
    impl_->info = std::move(p);
}

std::string Server::info() const {
    std::function<std::string()> p;
    {
        std::lock_guard g(impl_->mu);
        p = impl_->info;
    }
    return p ? p() : std::string();
}

void Server::set_logger(std::function<void(std::string_view)> log) {
    std::lock_guard g(impl_->mu);
    impl_->log = std::move(log);
}

void Server::on_disconnect(std::function<void(const Peer&)> cb) {
    std::lock_guard g(impl_->mu);
    impl_->disconnected = std::move(cb);
}

Result<void> Server::add_connection(vfio::Fd sock) {
    if (!sock)
        return fail(EBADF, "mp: add a connection");
    {
        std::lock_guard g(impl_->mu);
        impl_->pending.push_back(std::move(sock));
    }
    impl_->kick();
    return {};
}

Result<void> Server::start() {
    if (impl_->thread.joinable())
        return fail(EALREADY, "mp: start the server");
    int w = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (w < 0)
        return fail(Error(errno, "eventfd").context("mp: start the server"));
    impl_->wake = vfio::Fd(w);
    impl_->stopping = false;
    impl_->thread = std::thread([i = impl_.get()] { i->run(); });
    return {};
}

void Server::stop() {
    Impl& i = *impl_;
    if (i.thread.joinable()) {
        i.stopping = true;
        i.kick();
        i.thread.join();
    }
    i.conns.clear();
    i.open = 0;
    {
        std::lock_guard g(i.mu);
        i.pending.clear();
    }
    if (i.listen_fd) {
        const std::string via = i.dir && i.dir->valid()
                                    ? "/proc/self/fd/" + std::to_string(i.dir->get()) + "/mp_socket"
                                    : i.path;
        struct stat st {};
        if (::lstat(via.c_str(), &st) == 0 && st.st_ino == i.path_ino && st.st_dev == i.path_dev)
            ::unlink(via.c_str());
        i.listen_fd.reset();
    }
}

Server::Stats Server::stats() const {
    const Impl& i = *impl_;
    return {i.accepted,       i.rejected_uid, i.malformed,   i.requests,    i.unknown,
            i.send_failed,    i.open,         i.refused_policy, i.refused_full, i.refused_fds,
            i.idle_closed};
}

// The credentials are the peer's at connect() time (SO_PEERCRED), so a
// process cannot connect as one user and then switch to another.
void Server::Impl::admit(vfio::Fd fd) {
    auto peer = peer_of(fd.get());
    if (!peer) {
        say("closed a connection: " + peer.error().message());
        return;
    }
    bool ok = peer->uid == ::geteuid();
    Limits lim;
    {
        std::lock_guard g(mu);
        ok = ok || std::find(allowed.begin(), allowed.end(), peer->uid) != allowed.end();
        lim = limits;
    }
    if (!ok) {
        ++rejected_uid;
        say("rejected a connection from " + describe(*peer) + ": the primary runs as uid " +
            std::to_string(::geteuid()) + " (Server::allow_uid admits other users)");
        return;
    }
    if (conns.size() >= lim.max_connections) {
        ++refused_full;
        const std::string m = "the primary serves " + std::to_string(conns.size()) +
                              " connections, its limit (Limits::max_connections)";
        say("refused a connection from " + describe(*peer) + ": " + m);
        refuse(fd.get(), EBUSY, m + "; try again when one has closed");
        return;
    }
    // fds are numbered lowest-free first: this one's number is a floor for
    // how many this process has open.
    rlimit nofile{};
    if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY &&
        static_cast<rlim_t>(fd.get()) + lim.fd_reserve >= nofile.rlim_cur) {
        ++refused_fds;
        const std::string m = "the primary has fd " + std::to_string(fd.get()) + " of " +
                              std::to_string(nofile.rlim_cur) + " (RLIMIT_NOFILE) in use and "
                              "keeps " + std::to_string(lim.fd_reserve) +
                              " for itself (Limits::fd_reserve)";
        say("refused a connection from " + describe(*peer) + ": " + m);
        refuse(fd.get(), EMFILE, m);
        return;
    }
    ++accepted;
    ++open;
    Peer pr = *peer;
    pr.connection = next_connection++;
    conns.push_back({std::move(fd), pr, Clock::now(), false});
}

void Server::Impl::drop_conn(std::size_t k) {
    const Peer peer = conns[k].peer;
    conns.erase(conns.begin() + static_cast<std::ptrdiff_t>(k));
    --open;
    std::function<void(const Peer&)> cb;
    {
        std::lock_guard g(mu);
        cb = disconnected;
    }
    if (!cb)
        return;
    // Like a handler, the callback must not take the server thread down.
    try {
        cb(peer);
    } catch (const std::exception& e) {
        say("the disconnect callback for " + describe(peer) + " threw: " + e.what());
    } catch (...) {
        say("the disconnect callback for " + describe(peer) + " threw");
    }
}

void Server::Impl::refuse(int fd, int err, const std::string& text) {
    auto h = wire::make_header(wire::Kind::error, 0, "");
    h.err = err;
    (void)wire::send(fd, h, text, {}, MSG_DONTWAIT);
}

void Server::Impl::close_idle(Clock::time_point now) {
    std::chrono::milliseconds t;
    {
        std::lock_guard g(mu);
        t = limits.first_request_timeout;
    }
    if (t.count() <= 0)
        return;
    for (std::size_t k = conns.size(); k-- > 0;) {
        Conn& c = conns[k];
        if (c.asked || now - c.since < t)
            continue;
        ++idle_closed;
        say("closed the connection of " + describe(c.peer) + ": no request in " +
            std::to_string(t.count()) + " ms (Limits::first_request_timeout)");
        refuse(c.fd.get(), ETIMEDOUT,
               "no request in " + std::to_string(t.count()) + " ms after connecting");
        drop_conn(k);
    }
}

void Server::Impl::accept_all() {
    for (;;) {
        int fd = vfio::sys().accept(listen_fd.get(), SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd >= 0) {
            admit(vfio::Fd(fd));
            continue;
        }
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            say(std::string("accept: ") + std::strerror(errno) + ": not accepting for 100 ms");
            accept_paused_until = std::chrono::steady_clock::now() + std::chrono::milliseconds(100);
        } else if (errno != EAGAIN && errno != ECONNABORTED && errno != EINTR) {
            // The connection stays in the backlog: the next poll retries it.
            say(std::string("accept: ") + std::strerror(errno));
        }
        return;  // EAGAIN, or a connection that died in the backlog
    }
}

void Server::Impl::run() {
    std::vector<pollfd> pfds;
    while (!stopping) {
        {
            std::vector<vfio::Fd> fresh;
            {
                std::lock_guard g(mu);
                fresh.swap(pending);
            }
            for (auto& f : fresh)
                admit(std::move(f));
        }
        pfds.clear();
        pfds.push_back({wake.get(), POLLIN, 0});
        const bool accepting =
            listen_fd && std::chrono::steady_clock::now() >= accept_paused_until;
        pfds.push_back({accepting ? listen_fd.get() : -1, POLLIN, 0});
        for (const auto& c : conns)
            pfds.push_back({c.fd.get(), POLLIN, 0});
        // Wake for the first connection still owing its first request.
        int timeout = listen_fd && !accepting ? 100 : -1;
        {
            std::chrono::milliseconds t;
            {
                std::lock_guard g(mu);
                t = limits.first_request_timeout;
            }
            if (t.count() > 0)
                for (const auto& c : conns)
                    if (!c.asked) {
                        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                                              c.since + t - Clock::now())
                                              .count() + 1;
                        const int l = static_cast<int>(std::clamp<long long>(left, 0, 1 << 30));
                        timeout = timeout < 0 ? l : std::min(timeout, l);
                    }
        }
        if (::poll(pfds.data(), pfds.size(), timeout) < 0) {
            if (errno != EINTR)
                say(std::string("poll: ") + std::strerror(errno));
            continue;
        }
        if (pfds[0].revents & POLLIN) {
            std::uint64_t n;
            (void)!::read(wake.get(), &n, sizeof n);
        }
        if (pfds[1].revents & POLLIN)
            accept_all();
        // Connections admitted above sit after the polled ones; only the
        // polled ones have revents.
        std::vector<bool> drop(conns.size(), false);
        for (std::size_t k = 2; k < pfds.size(); ++k) {
            Conn& c = conns[k - 2];
            if (pfds[k].revents & POLLIN)
                drop[k - 2] = !serve(c);
            else if (pfds[k].revents & (POLLHUP | POLLERR | POLLNVAL))
                drop[k - 2] = true;
        }
        for (std::size_t k = conns.size(); k-- > 0;)
            if (drop[k])
                drop_conn(k);
        close_idle(Clock::now());
    }
}

bool Server::Impl::reply_error(Conn& c, const wire::Header& req, int err, const std::string& text) {
    auto h = wire::make_header(wire::Kind::error, req.seq, req.name);
    h.err = err;
    std::string_view body(text);
    body = body.substr(0, kMaxPayload);
    if (auto ok = wire::send(c.fd.get(), h, body, {}, MSG_DONTWAIT); !ok) {
        // Logged before counted: whoever sees the count also finds the line.
        say("could not answer " + describe(c.peer) + ": " + ok.error().message());
        ++send_failed;
        return false;
    }
    return true;
}

// How many fds a request may bring without eating into Limits::fd_reserve:
// the lowest free fd number is a floor for how many are open.
static std::size_t fds_allowed(std::size_t reserve) {
    rlimit nofile{};
    if (::getrlimit(RLIMIT_NOFILE, &nofile) != 0 || nofile.rlim_cur == RLIM_INFINITY)
        return kMaxFds;
    const int probe = ::fcntl(0, F_DUPFD_CLOEXEC, 0);
    if (probe < 0)
        return 0;
    ::close(probe);
    const rlim_t used = static_cast<rlim_t>(probe) + reserve;
    return used >= nofile.rlim_cur
               ? 0
               : static_cast<std::size_t>(std::min<rlim_t>(nofile.rlim_cur - used, kMaxFds));
}

bool Server::Impl::serve(Conn& c) {
    std::size_t reserve;
    {
        std::lock_guard g(mu);
        reserve = limits.fd_reserve;
    }
    // Fds beyond what is allowed are dropped by the kernel (MSG_CTRUNC):
    // the message is rejected as malformed, naming RLIMIT_NOFILE.
    auto r = wire::receive(c.fd.get(), buf, MSG_DONTWAIT, fds_allowed(reserve));
    if (!r) {
        const int err = r.error().err();
        if (err == EAGAIN)
            return true;
        // ECONNRESET: the peer is gone. Anything else is ours to report:
        // the connection is closed, and its peer learns no more than that.
        if (err != ECONNRESET)
            say("closed the connection of " + describe(c.peer) + ": " + r.error().message());
        return false;
    }
    switch (r->status) {
    case wire::Received::Status::closed:
        return false;
    case wire::Received::Status::malformed:
        ++malformed;
        say("rejected a message from " + describe(c.peer) + ": " + r->why +
            "; connection closed");
        // With a trustworthy header the peer learns why before the close.
        if (r->header_ok)
            (void)reply_error(c, r->msg.h, EBADMSG, "malformed message: " + r->why);
        return false;
    case wire::Received::Status::message:
        break;
    }
    if (r->msg.h.kind != static_cast<std::uint16_t>(wire::Kind::request)) {
        ++malformed;
        say("rejected a message from " + describe(c.peer) + ": a reply where a request belongs; "
            "connection closed");
        return false;
    }
    c.asked = true;
    dispatch(c, r->msg);
    return c.fd.valid();
}

void Server::Impl::dispatch(Conn& c, wire::Message& m) {
    ++requests;
    const std::string name(m.h.name);
    std::shared_ptr<Handler> h;
    Policy policy;
    std::string known;
    {
        std::lock_guard g(mu);
        if (auto it = handlers.find(name); it != handlers.end()) {
            h = it->second.handler;
            policy = it->second.policy;
        } else
            for (const auto& [n, _] : handlers)
                known += (known.empty() ? "" : ", ") + n;
    }
    if (!h) {
        ++unknown;
        say("unknown request '" + name + "' from " + describe(c.peer));
        if (!reply_error(c, m.h, ENOENT,
                         "unknown request '" + name + "' (this primary serves: " + known + ")"))
            c.fd.reset();
        return;
    }
    if (c.peer.uid != ::geteuid() && !policy.other_uids) {
        ++refused_policy;
        const std::string why = "request '" + name + "' refused for " + describe(c.peer) +
                                ": the primary (uid " + std::to_string(::geteuid()) +
                                ") serves it to its own uid only (mp::Policy::other_uids)";
        say(why);
        if (!reply_error(c, m.h, EACCES, why))
            c.fd.reset();
        return;
    }
    Request req{name, std::move(m.payload), std::move(m.fds)};
    Result<Reply> out = fail(EIO, "handler");
    // A handler that throws must not take the primary down with it.
    try {
        out = (*h)(req, c.peer);
    } catch (const std::exception& e) {
        out = fail(EIO, "handler of '" + name + "' threw: " + e.what());
    } catch (...) {
        out = fail(EIO, "handler of '" + name + "' threw");
    }
    bool sent;
    if (!out) {
        sent = reply_error(c, m.h, out.error().err(), out.error().message());
    } else {
        std::vector<int> fds = out->fds;
        for (const auto& f : out->owned_fds)
            fds.push_back(f.get());
        if (out->payload.size() > kMaxPayload || fds.size() > kMaxFds) {
            sent = reply_error(c, m.h, EMSGSIZE,
                               "the reply to '" + name + "' has " +
                                   std::to_string(out->payload.size()) + " bytes and " +
                                   std::to_string(fds.size()) + " fds; the limits are " +
                                   std::to_string(kMaxPayload) + " and " + std::to_string(kMaxFds));
        } else {
            auto hdr = wire::make_header(wire::Kind::reply, m.h.seq, name);
            // MSG_DONTWAIT: a peer that never reads its replies fills our
            // send buffer; it loses its connection instead of stalling us.
            auto ok = wire::send(c.fd.get(), hdr, out->payload, fds, MSG_DONTWAIT);
            sent = static_cast<bool>(ok);
            if (!ok) {
                say("reply to '" + name + "' for " + describe(c.peer) +
                    " not delivered (the peer exited or does not read): " + ok.error().message());
                ++send_failed;  // after the line, as in reply_error
            }
        }
    }
    if (!sent)
        c.fd.reset();
}

}  // namespace vfiokit::eal::mp

// The primary's side of the channel: one thread polls the listening socket
// and every connection, and runs the handlers one request at a time (as
// DPDK's rte_mp handle thread does). Nothing a peer sends can stop it: bad
// input closes that peer's connection only.
#include <poll.h>
#include <sys/eventfd.h>
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
    ino_t path_ino = 0;  // the socket file we bound: unlink only that one
    dev_t path_dev = 0;
    vfio::Fd wake;       // eventfd: stop() and add_connection() wake the thread
    std::thread thread;
    std::atomic<bool> stopping{false};

    mutable std::mutex mu;  // guards the members up to `conns`
    std::map<std::string, std::shared_ptr<Handler>, std::less<>> handlers;
    std::vector<uid_t> allowed;
    std::vector<vfio::Fd> pending;
    std::function<std::string()> info;
    std::function<void(std::string_view)> log;

    // Server thread only.
    struct Conn {
        vfio::Fd fd;
        Peer peer;
    };
    std::vector<Conn> conns;
    std::vector<std::byte> buf = std::vector<std::byte>(wire::kMaxMessage);
    // accept() failed for lack of fds: leave the listening socket out of
    // poll for a moment rather than spin on it.
    std::chrono::steady_clock::time_point accept_paused_until{};

    std::atomic<std::uint64_t> accepted{0}, rejected_uid{0}, malformed{0}, requests{0}, unknown{0},
        send_failed{0}, open{0};

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
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (impl->path.size() >= sizeof a.sun_path)
        return fail(Error(ENAMETOOLONG, "mp: socket path " + impl->path)
                        .hint("unix socket paths have " + std::to_string(sizeof a.sun_path - 1) +
                              " bytes at most: use a shorter --file-prefix or XDG_RUNTIME_DIR"));
    std::memcpy(a.sun_path, impl->path.c_str(), impl->path.size());
    int s = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s < 0)
        return fail(Error(errno, "socket(AF_UNIX, SOCK_SEQPACKET)").context("mp"));
    impl->listen_fd = vfio::Fd(s);
    // A crashed primary leaves its socket file behind; we hold the lock,
    // so no live primary uses it.
    if (::unlink(impl->path.c_str()) != 0 && errno != ENOENT)
        return fail(Error(errno, "unlink stale " + impl->path).context("mp"));
    if (::bind(s, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0)
        return fail(Error(errno, "bind " + impl->path).context("mp"));
    // The mode of a socket file is set on the path: fchmod() on the socket
    // fd changes the socket's own inode, not the file. Nobody can connect
    // before listen(), so there is no window at a wider mode.
    struct stat st {};
    if (::chmod(impl->path.c_str(), 0600) != 0 || ::stat(impl->path.c_str(), &st) != 0) {
        Error e(errno, "chmod 0600 " + impl->path);
        ::unlink(impl->path.c_str());
        return fail(std::move(e.context("mp")));
    }
    impl->path_ino = st.st_ino;
    impl->path_dev = st.st_dev;
    if (::listen(s, 64) != 0) {
        Error e(errno, "listen " + impl->path);
        ::unlink(impl->path.c_str());
        return fail(std::move(e.context("mp")));
    }
    return std::unique_ptr<Server>(new Server(std::move(impl)));
}

const std::string& Server::socket_path() const { return impl_->path; }

void Server::handle(std::string name, Handler h) {
    std::lock_guard g(impl_->mu);
    impl_->handlers[std::move(name)] = std::make_shared<Handler>(std::move(h));
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
        struct stat st {};
        if (::stat(i.path.c_str(), &st) == 0 && st.st_ino == i.path_ino && st.st_dev == i.path_dev)
            ::unlink(i.path.c_str());
        i.listen_fd.reset();
    }
}

Server::Stats Server::stats() const {
    const Impl& i = *impl_;
    return {i.accepted, i.rejected_uid, i.malformed, i.requests, i.unknown, i.send_failed, i.open};
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
    {
        std::lock_guard g(mu);
        ok = ok || std::find(allowed.begin(), allowed.end(), peer->uid) != allowed.end();
    }
    if (!ok) {
        ++rejected_uid;
        say("rejected a connection from " + describe(*peer) + ": the primary runs as uid " +
            std::to_string(::geteuid()) + " (Server::allow_uid admits other users)");
        return;
    }
    ++accepted;
    ++open;
    conns.push_back({std::move(fd), *peer});
}

void Server::Impl::accept_all() {
    for (;;) {
        int fd = ::accept4(listen_fd.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd >= 0) {
            admit(vfio::Fd(fd));
            continue;
        }
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            say(std::string("accept: ") + std::strerror(errno) + ": not accepting for 100 ms");
            accept_paused_until = std::chrono::steady_clock::now() + std::chrono::milliseconds(100);
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
        const int timeout = listen_fd && !accepting ? 100 : -1;
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
            if (drop[k]) {
                conns.erase(conns.begin() + static_cast<std::ptrdiff_t>(k));
                --open;
            }
    }
}

bool Server::Impl::reply_error(Conn& c, const wire::Header& req, int err, const std::string& text) {
    auto h = wire::make_header(wire::Kind::error, req.seq, req.name);
    h.err = err;
    std::string_view body(text);
    body = body.substr(0, kMaxPayload);
    if (auto ok = wire::send(c.fd.get(), h, body, {}, MSG_DONTWAIT); !ok) {
        ++send_failed;
        say("could not answer " + describe(c.peer) + ": " + ok.error().message());
        return false;
    }
    return true;
}

bool Server::Impl::serve(Conn& c) {
    auto r = wire::receive(c.fd.get(), buf, MSG_DONTWAIT);
    if (!r)
        return r.error().err() == EAGAIN;  // ECONNRESET and the like: the peer is gone
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
    dispatch(c, r->msg);
    return c.fd.valid();
}

void Server::Impl::dispatch(Conn& c, wire::Message& m) {
    ++requests;
    const std::string name(m.h.name);
    std::shared_ptr<Handler> h;
    std::string known;
    {
        std::lock_guard g(mu);
        if (auto it = handlers.find(name); it != handlers.end())
            h = it->second;
        else
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
                ++send_failed;
                say("reply to '" + name + "' for " + describe(c.peer) +
                    " not delivered (the peer exited or does not read): " + ok.error().message());
            }
        }
    }
    if (!sent)
        c.fd.reset();
}

}  // namespace vfiokit::eal::mp

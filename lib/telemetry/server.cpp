// The telemetry socket: one listening SOCK_SEQPACKET socket and its
// clients, served by one thread that polls them all (telemetry.hpp).
//
// No client can hold the thread: sockets are non-blocking, a request is
// one message (SEQPACKET keeps boundaries; an oversized one is seen whole
// with MSG_TRUNC and refused), a reply the client's socket buffer cannot
// take at once closes that client (it is not reading), and a client that
// sends nothing for idle_timeout is closed. The thread takes the EAL lock
// only inside commands, which lcores never take on the data path.
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "vfiokit/eal/strformat.hpp"
#include "vfiokit/eal/vfio/syscalls.hpp"
#include "vfiokit/telemetry/telemetry.hpp"

namespace vfiokit::telemetry {

using vfio::Fd;
using Clock = std::chrono::steady_clock;

std::string dpdk_runtime_dir(std::string_view prefix) {
    std::string base;
    if (const char* r = std::getenv("RUNTIME_DIRECTORY"); r && *r)
        base = r;
    else if (::getuid() == 0)
        base = "/var/run";
    else if (const char* x = std::getenv("XDG_RUNTIME_DIR"); x && *x)
        base = x;
    else
        base = "/tmp";
    return base + "/dpdk/" + std::string(prefix);
}

namespace {

Result<sockaddr_un> unix_address(const std::string& path) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path.size() >= sizeof a.sun_path)
        return fail(Error(ENAMETOOLONG, strformat("telemetry socket {}: {} bytes, a UNIX socket "
                                                  "path has at most {}",
                                                  path, path.size(), sizeof a.sun_path - 1))
                        .hint("use a shorter --file-prefix or RUNTIME_DIRECTORY"));
    std::memcpy(a.sun_path, path.data(), path.size());
    return a;
}

// Whether a process accepts connections on `a` (a live server).
bool live(const sockaddr_un& a) {
    Fd s(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    return s && ::connect(s.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0;
}

// mkdir -p: the last two components (DPDK's "dpdk/<prefix>") with mode
// 0700 as DPDK's EAL makes them, the parents (/var/run in a bare root)
// with 0755. The last must be a directory owned by this user: a directory
// that someone else controls could have our socket swapped under us.
Result<void> make_private_dir(const std::string& dir) {
    const std::size_t parent = dir.rfind('/');
    const std::size_t grandparent = parent == 0 || parent == std::string::npos
                                        ? 0
                                        : dir.rfind('/', parent - 1);
    for (std::size_t i = 1; i <= dir.size(); ++i) {
        if (i < dir.size() && dir[i] != '/')
            continue;
        const std::string part = dir.substr(0, i);
        const mode_t mode = grandparent != std::string::npos && i > grandparent ? 0700 : 0755;
        if (::mkdir(part.c_str(), mode) != 0 && errno != EEXIST)
            return fail(Error(errno, "mkdir " + part).context("telemetry runtime directory"));
    }
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0)
        return fail(Error(errno, "stat " + dir).context("telemetry runtime directory"));
    if (!S_ISDIR(st.st_mode) || st.st_uid != ::geteuid())
        return fail(Error(EPERM, strformat("{} is not a directory of uid {} (owner {})", dir,
                                           ::geteuid(), st.st_uid))
                        .context("telemetry runtime directory")
                        .hint("remove it, or set RUNTIME_DIRECTORY to a directory of yours"));
    return {};
}

void send_now(int fd, const std::string& m) {
    (void)::send(fd, m.data(), m.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
}

}  // namespace

struct Server::Impl {
    std::string path;
    unsigned instance = 0;
    const Commands* commands = nullptr;
    ServerOptions opts;
    Fd listener;
    Fd wake;  // eventfd: stop
    std::thread thread;
    mutable std::mutex mu;  // stats
    Stats stats;

    struct Client {
        Fd fd;
        Clock::time_point last;
    };
    std::vector<Client> clients;  // the thread's own

    void count(std::uint64_t Stats::*field) {
        std::lock_guard g(mu);
        ++(stats.*field);
    }
    void run();
    void accept_one();
    // False: the client is to be closed.
    bool serve(Client& c, std::vector<char>& buf);
};

void Server::Impl::accept_one() {
    Fd s(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!s)
        return;  // the peer went away already (or EMFILE: it is closed, try later)
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(s.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
        (cred.uid != ::geteuid() && cred.uid != 0 &&
         std::find(opts.allow_uids.begin(), opts.allow_uids.end(), cred.uid) ==
             opts.allow_uids.end())) {
        send_now(s.get(), error_message({}, strformat("telemetry: uid {} is not served here",
                                                      cred.uid)));
        count(&Stats::refused_uid);
        return;
    }
    if (clients.size() >= opts.max_clients) {
        send_now(s.get(), error_message({}, strformat("telemetry: {} clients are connected, the "
                                                      "most this process serves; try again when "
                                                      "one has left",
                                                      clients.size())));
        count(&Stats::refused_full);
        return;
    }
    const std::string hello = hello_message(version_string(), ::getpid(), commands->max_output());
    if (::send(s.get(), hello.data(), hello.size(), MSG_DONTWAIT | MSG_NOSIGNAL) !=
        static_cast<ssize_t>(hello.size()))
        return;
    clients.push_back({std::move(s), Clock::now()});
    std::lock_guard g(mu);
    ++stats.accepted;
    stats.open = clients.size();
}

bool Server::Impl::serve(Client& c, std::vector<char>& buf) {
    // MSG_TRUNC: the message's real length, even beyond the buffer.
    const ssize_t n = ::recv(c.fd.get(), buf.data(), buf.size(), MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0)
        return errno == EAGAIN || errno == EINTR;
    if (n == 0)
        return false;  // the client closed (SEQPACKET has no empty messages from DPDK's client)
    c.last = Clock::now();
    std::string out;
    if (static_cast<std::size_t>(n) > kMaxRequest) {
        out = error_message({}, strformat("telemetry request: {} bytes, longer than the {} a "
                                          "request may have",
                                          n, kMaxRequest));
        count(&Stats::malformed);
    } else {
        const std::string_view msg(buf.data(), static_cast<std::size_t>(n));
        if (!parse_command(msg))
            count(&Stats::malformed);
        out = commands->reply(msg);
    }
    count(&Stats::requests);
    if (::send(c.fd.get(), out.data(), out.size(), MSG_DONTWAIT | MSG_NOSIGNAL) !=
        static_cast<ssize_t>(out.size())) {
        count(&Stats::send_failed);
        return false;
    }
    return true;
}

void Server::Impl::run() {
    std::vector<char> buf(kMaxRequest + 1);
    std::vector<pollfd> pfds;
    for (;;) {
        pfds.clear();
        pfds.push_back({wake.get(), POLLIN, 0});
        pfds.push_back({listener.get(), POLLIN, 0});
        auto deadline = Clock::time_point::max();
        for (const Client& c : clients) {
            pfds.push_back({c.fd.get(), POLLIN, 0});
            deadline = std::min(deadline, c.last + opts.idle_timeout);
        }
        int timeout = -1;
        if (!clients.empty()) {
            const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
            timeout = static_cast<int>(std::clamp<std::int64_t>(left.count(), 0, 60'000));
        }
        const int r = ::poll(pfds.data(), pfds.size(), timeout);
        if (r < 0 && errno != EINTR)
            return;  // cannot happen with valid fds; nothing is served after it
        if (pfds[0].revents != 0)
            return;
        const auto now = Clock::now();
        std::vector<bool> drop(clients.size(), false);
        for (std::size_t i = 0; i < clients.size(); ++i) {
            const short ev = pfds[i + 2].revents;
            if (ev & POLLIN)
                drop[i] = !serve(clients[i], buf);
            else if (ev & (POLLHUP | POLLERR | POLLNVAL))
                drop[i] = true;
            else if (now - clients[i].last >= opts.idle_timeout) {
                send_now(clients[i].fd.get(),
                         error_message({}, strformat("telemetry: closing a connection idle for "
                                                     "{} ms",
                                                     opts.idle_timeout.count())));
                count(&Stats::idle_closed);
                drop[i] = true;
            }
        }
        std::size_t k = 0;
        for (std::size_t i = 0; i < clients.size(); ++i)
            if (!drop[i])
                clients[k++] = std::move(clients[i]);
        clients.resize(k);
        {
            std::lock_guard g(mu);
            stats.open = clients.size();
        }
        if (pfds[1].revents & POLLIN)
            accept_one();
    }
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() {
    const std::uint64_t one = 1;
    [[maybe_unused]] ssize_t w = ::write(impl_->wake.get(), &one, sizeof one);
    if (impl_->thread.joinable())
        impl_->thread.join();
    impl_->clients.clear();
    impl_->listener.reset();
    ::unlink(impl_->path.c_str());
}

const std::string& Server::path() const { return impl_->path; }
unsigned Server::instance() const { return impl_->instance; }

Server::Stats Server::stats() const {
    std::lock_guard g(impl_->mu);
    return impl_->stats;
}

Result<std::unique_ptr<Server>> Server::listen(std::string path, const Commands& commands,
                                               ServerOptions o) {
    auto addr = unix_address(path);
    if (!addr)
        return fail(std::move(addr.error()));
    auto impl = std::make_unique<Impl>();
    impl->path = path;
    impl->commands = &commands;
    impl->opts = std::move(o);
    if (impl->opts.max_clients == 0 || impl->opts.idle_timeout.count() <= 0)
        return fail(Error(EINVAL, "telemetry server: max_clients and idle_timeout must be "
                                  "positive"));
    impl->listener = Fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!impl->listener)
        return fail(Error(errno, "socket(AF_UNIX, SOCK_SEQPACKET)").context("telemetry"));
    const auto* sa = reinterpret_cast<const sockaddr*>(&*addr);
    if (::bind(impl->listener.get(), sa, sizeof *addr) != 0) {
        const int err = errno;
        if (err != EADDRINUSE)
            return fail(Error(err, "bind " + path).context("telemetry"));
        // DPDK's rule: a file nobody listens on is a dead process's.
        if (live(*addr))
            return fail(Error(EADDRINUSE, "bind " + path + ": another process serves telemetry "
                                                          "there")
                            .context("telemetry"));
        ::unlink(path.c_str());
        if (::bind(impl->listener.get(), sa, sizeof *addr) != 0)
            return fail(Error(errno, "bind " + path + " (after removing a stale socket)")
                            .context("telemetry"));
    }
    // Owner only: the directory is private already; this also covers a
    // socket a caller places elsewhere.
    if (::chmod(path.c_str(), 0600) != 0 || ::listen(impl->listener.get(), 8) != 0) {
        const int err = errno;
        ::unlink(path.c_str());
        return fail(Error(err, "listen on " + path).context("telemetry"));
    }
    impl->wake = Fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!impl->wake) {
        const int err = errno;
        ::unlink(path.c_str());
        return fail(Error(err, "eventfd").context("telemetry"));
    }
    Impl* raw = impl.get();
    try {
        impl->thread = std::thread([raw] {
            ::pthread_setname_np(::pthread_self(), "vfiokit-telem");
            raw->run();
        });
    } catch (const std::system_error& e) {
        ::unlink(path.c_str());
        return fail(Error(e.code().value(), "start the telemetry thread").context("telemetry"));
    }
    return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Result<std::unique_ptr<Server>> Server::listen_in(const std::string& dir, const Commands& commands,
                                                  ServerOptions o) {
    if (auto ok = make_private_dir(dir); !ok)
        return fail(std::move(ok.error()));
    const std::string base = dir + "/" + std::string(kSocketName);
    // As DPDK 22.11 numbers the processes of one prefix; 64 is plenty.
    for (unsigned i = 0; i < 64; ++i) {
        auto s = listen(i == 0 ? base : base + ":" + std::to_string(i), commands, o);
        if (s) {
            (*s)->impl_->instance = i;
            return s;
        }
        if (s.error().err() != EADDRINUSE)
            return fail(std::move(s.error()));
    }
    return fail(Error(EADDRINUSE, "telemetry: " + base + " and its 63 numbered instances are "
                                                         "all served by other processes")
                    .hint("use another --file-prefix, or --no-telemetry"));
}

}  // namespace vfiokit::telemetry

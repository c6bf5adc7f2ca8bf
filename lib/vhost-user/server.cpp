#include "vfiokit/vhost_user/server.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vfiokit::vhost_user {

Result<Server> Server::listen(const std::string& path, Device& dev, const Config& cfg) {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof sa.sun_path)
        return fail(ENAMETOOLONG, "vhost-user socket path \"" + path + "\"");
    std::memcpy(sa.sun_path, path.data(), path.size());
    vfio::Fd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!s)
        return fail(errno, "socket AF_UNIX");
    if (::bind(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        int err = errno;
        struct stat st{};
        // A socket left by a back end that died: replace it if nobody
        // answers on it, as a restarted back end must.
        if (err == EADDRINUSE && ::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
            vfio::Fd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
            if (probe && ::connect(probe.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 &&
                errno == ECONNREFUSED && ::unlink(path.c_str()) == 0 &&
                ::bind(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0)
                err = 0;
        }
        if (err != 0)
            return fail(Error(err, "bind " + path)
                            .hint(err == EADDRINUSE ? "another process serves this path, or a "
                                                      "file that is not a socket is there"
                                                    : ""));
    }
    // Backlog 1: a second front end waits in the queue until the first
    // session ends.
    if (::listen(s.get(), 1) != 0) {
        int err = errno;
        ::unlink(path.c_str());
        return fail(err, "listen " + path);
    }
    return Server(std::move(s), path, dev, cfg);
}

Server::Server(vfio::Fd listener, std::string path, Device& dev, const Config& cfg)
    : listener_(std::move(listener)), path_(std::move(path)), dev_(&dev), cfg_(cfg) {}

Server::Server(Server&& o) noexcept = default;

Server& Server::operator=(Server&& o) noexcept {
    if (this != &o) {
        session_.reset();
        if (listener_)
            ::unlink(path_.c_str());
        listener_ = std::move(o.listener_);
        path_ = std::move(o.path_);
        dev_ = o.dev_;
        cfg_ = o.cfg_;
        session_ = std::move(o.session_);
        accepted_ = o.accepted_;
        ended_ = o.ended_;
        last_end_ = std::move(o.last_end_);
        handled_ = o.handled_;
    }
    return *this;
}

Server::~Server() {
    session_.reset();
    if (listener_)
        ::unlink(path_.c_str());
}

std::uint64_t Server::handled(Request r) const {
    const std::uint64_t now = session_ ? session_->handled(r) : 0;
    const auto i = static_cast<std::size_t>(r);
    return (i < handled_.size() ? handled_[i] : 0) + now;
}

Result<void> Server::poll(int timeout_ms) {
    if (connected()) {
        auto r = session_->poll(timeout_ms);
        if (r && *r)
            return {};
        last_end_ = r ? "peer closed" : r.error().message();
        ++ended_;
        for (std::size_t i = 0; i < handled_.size(); ++i)
            handled_[i] += session_->handled(static_cast<Request>(i));
        session_.reset();
        return {};
    }
    pollfd p{listener_.get(), POLLIN, 0};
    int n;
    do {
        n = ::poll(&p, 1, timeout_ms);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return fail(errno, "poll " + path_);
    if (n == 0)
        return {};
    vfio::Fd c(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!c) {
        // The peer may have gone between poll and accept.
        if (errno == ECONNABORTED || errno == EAGAIN || errno == EINTR)
            return {};
        return fail(errno, "accept " + path_);
    }
    session_ = std::make_unique<Session>(std::move(c), *dev_, cfg_);
    ++accepted_;
    return {};
}

}  // namespace vfiokit::vhost_user

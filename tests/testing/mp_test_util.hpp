// Helpers for the multi-process tests (host and lab): a temporary
// directory, child processes, pipes, waiting for a condition, forged
// messages. Tests only.
#pragma once

#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "vfiokit/eal/vfio/syscalls.hpp"
#include "wire.hpp"

namespace vfiokit::eal::mp::test {

class TempDir {
public:
    TempDir() {
        char t[] = "/tmp/vfiokit-mp-XXXXXX";
        path_ = ::mkdtemp(t) ? t : "";
    }
    ~TempDir() {
        if (!path_.empty())
            ::nftw(path_.c_str(),
                   [](const char* p, const struct stat*, int, FTW*) { return ::remove(p); }, 16,
                   FTW_DEPTH | FTW_PHYS);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    [[nodiscard]] const std::string& path() const { return path_; }

private:
    std::string path_;
};

// Runs f() in a forked child, which _exits with its result (no destructors
// of the parent's objects run in the child: a copied Server must not unlink
// the parent's socket).
inline pid_t fork_child(const std::function<int()>& f) {
    pid_t p = ::fork();
    if (p == 0)
        ::_exit(f());
    return p;
}

// The child's exit status, or 128 + signal.
inline int wait_child(pid_t p) {
    int st = 0;
    if (::waitpid(p, &st, 0) != p)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

struct Pipe {
    vfio::Fd r, w;
    Pipe() {
        int p[2];
        if (::pipe2(p, O_CLOEXEC) == 0) {
            r = vfio::Fd(p[0]);
            w = vfio::Fd(p[1]);
        }
    }
};

// Whether every write end of the pipe is closed (read() would see EOF),
// waiting up to `ms`.
inline bool write_ends_closed(int read_end, int ms = 2000) {
    pollfd p{read_end, POLLIN, 0};
    return ::poll(&p, 1, ms) == 1 && (p.revents & POLLHUP);
}

inline bool wait_until(const std::function<bool()>& f, int ms = 3000) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (!f()) {
        if (std::chrono::steady_clock::now() > end)
            return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
}

inline std::pair<vfio::Fd, vfio::Fd> seqpacket_pair() {
    int sv[2] = {-1, -1};
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return {};
    return {vfio::Fd(sv[0]), vfio::Fd(sv[1])};
}

// One byte through a pipe: "ready", from a child to its parent.
inline void signal_ready(int w) { (void)!::write(w, "r", 1); }
inline bool await_ready(int r, int ms = 5000) {
    pollfd p{r, POLLIN, 0};
    char c;
    return ::poll(&p, 1, ms) == 1 && ::read(r, &c, 1) == 1;
}

// Sends bytes and fds exactly as given, no checks: for forging messages.
inline bool raw_send(int sock, std::string_view bytes, std::span<const int> fds = {}) {
    const iovec iov{const_cast<char*>(bytes.data()), bytes.size()};
    auto n = send_with_fds(sock, std::span(&iov, 1), fds);
    return n && *n == bytes.size();
}

inline std::string header_bytes(const wire::Header& h, std::string_view payload = {}) {
    return wire::frame(h, payload);
}

inline wire::Header echo_header(std::uint32_t payload_len = 0, std::uint32_t nfds = 0) {
    auto h = wire::make_header(wire::Kind::request, 1, "test.echo");
    h.payload_len = payload_len;
    h.nfds = nfds;
    return h;
}

// Whether the peer closed the connection within `ms`, reading past what it
// said first (an error reply).
inline bool closed_by_peer(int sock, int ms = 2000) {
    std::vector<std::byte> buf(wire::kMaxMessage);
    for (;;) {
        pollfd p{sock, POLLIN, 0};
        if (::poll(&p, 1, ms) != 1)
            return false;
        ssize_t n = ::recv(sock, buf.data(), buf.size(), MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return true;
        if (n < 0 && errno != EAGAIN)
            return false;
    }
}

}  // namespace vfiokit::eal::mp::test

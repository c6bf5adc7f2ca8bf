#include "guard.hpp"

#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string_view>

namespace vfiokit::broker {

namespace {

std::string who(uid_t u) { return u == 0 ? "root" : "uid " + std::to_string(u); }

std::string allowed(std::optional<uid_t> expect) {
    return expect ? "root or --expect-uid " + std::to_string(*expect) : "root (no --expect-uid)";
}

bool trusted(uid_t u, std::optional<uid_t> expect) { return u == 0 || (expect && u == *expect); }

}  // namespace

Result<vfio::Fd> connect_receiver(const std::string& path, std::optional<uid_t> expect_uid) {
    const std::string what = "--socket " + path;
    const std::size_t slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
    const std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
    if (name.empty() || name == "." || name == "..")
        return fail(Error(EINVAL, what + ": not a socket file name"));
    vfio::Fd dfd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!dfd)
        return fail(Error(errno, "open directory " + dir).context(what));
    struct stat st {};
    if (::fstatat(dfd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
        return fail(Error(errno, "lstat " + path).context(what));
    if (S_ISLNK(st.st_mode))
        return fail(Error(ELOOP, what + " is a symlink: the broker connects only to the socket "
                                        "itself")
                        .hint("give the socket's real path"));
    if (!S_ISSOCK(st.st_mode))
        return fail(Error(ENOTSOCK, what + " is not a socket"));
    if (!trusted(st.st_uid, expect_uid))
        return fail(Error(EACCES, what + " belongs to " + who(st.st_uid) + "; the broker sends "
                                         "its fds only to " + allowed(expect_uid))
                        .hint("start the receiver as that user, or pass --expect-uid " +
                              std::to_string(st.st_uid) + " if it is the intended driver"));
    // Through the directory we checked in, not the path again (its parent
    // could be renamed meanwhile). The last component could still be
    // swapped for another socket or a symlink before connect(): the
    // listener's credentials below decide.
    const std::string via = "/proc/self/fd/" + std::to_string(dfd.get()) + "/" + name;
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (via.size() >= sizeof sa.sun_path)
        return fail(Error(ENAMETOOLONG, what + ": socket name too long"));
    std::memcpy(sa.sun_path, via.c_str(), via.size() + 1);
    vfio::Fd sock(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    if (!sock)
        return fail(Error(errno, "socket(AF_UNIX, SOCK_SEQPACKET)").context(what));
    if (::connect(sock.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0)
        return fail(Error(errno, "connect " + path).context(what));
    ucred peer{};
    socklen_t len = sizeof peer;
    if (::getsockopt(sock.get(), SOL_SOCKET, SO_PEERCRED, &peer, &len) != 0)
        return fail(Error(errno, "getsockopt SO_PEERCRED").context(what));
    if (!trusted(peer.uid, expect_uid))
        return fail(Error(EACCES, "the listener at " + path + " is pid " +
                                      std::to_string(peer.pid) + " running as " + who(peer.uid) +
                                      "; the broker sends its fds only to " + allowed(expect_uid))
                        .hint("nothing was sent; pass --expect-uid " + std::to_string(peer.uid) +
                              " if that process is the intended driver"));
    return sock;
}

std::string sysfs_dev_file(const std::string& sysfs, const std::string& node,
                           const std::string& bdf, const std::string& vfio_dev) {
    const std::string_view n(node);
    const std::string base(n.substr(n.rfind('/') + 1));
    if (n.starts_with("/dev/vfio/devices/"))
        return sysfs + "/bus/pci/devices/" + bdf + "/vfio-dev/" + vfio_dev + "/dev";
    if (n == "/dev/vfio/vfio")
        return sysfs + "/class/misc/vfio/dev";
    if (n.starts_with("/dev/vfio/"))
        return sysfs + "/class/vfio/" + base + "/dev";
    return sysfs + "/class/misc/" + base + "/dev";
}

Result<void> verify_node(int fd, const std::string& node, const std::string& dev_file) {
    struct stat st {};
    if (::fstat(fd, &st) != 0)
        return fail(Error(errno, "fstat " + node));
    if (!S_ISCHR(st.st_mode))
        return fail(Error(EXDEV, node + " is not a character device")
                        .hint("only the kernel's VFIO nodes are handed out; check /dev"));
    vfio::Fd f(::open(dev_file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!f)
        return fail(Error(errno, "open " + dev_file).context("verify " + node));
    char b[32] = {};
    const ssize_t k = ::read(f.get(), b, sizeof b - 1);
    unsigned maj = 0, min = 0;
    if (k <= 0 || std::sscanf(b, "%u:%u", &maj, &min) != 2)
        return fail(Error(EINVAL, dev_file + " holds no MAJOR:MINOR").context("verify " + node));
    if (major(st.st_rdev) != maj || minor(st.st_rdev) != min)
        return fail(Error(EXDEV, node + " is device " + std::to_string(major(st.st_rdev)) + ":" +
                                     std::to_string(minor(st.st_rdev)) + ", but " + dev_file +
                                     " says " + std::to_string(maj) + ":" + std::to_string(min))
                        .hint("the node at that path is not the kernel's: check /dev"));
    return {};
}

Result<void> keep_only_fds(std::span<const int> keep) {
    // First above every target and every source, so that moving one down
    // never lands on another not yet moved.
    int top = 3 + static_cast<int>(keep.size());
    for (int fd : keep)
        top = std::max(top, fd + 1);
    std::vector<int> high;
    for (int fd : keep) {
        const int h = ::fcntl(fd, F_DUPFD_CLOEXEC, top);
        if (h < 0)
            return fail(Error(errno, "fcntl F_DUPFD"));
        high.push_back(h);
        top = h + 1;
    }
    for (std::size_t i = 0; i < high.size(); ++i)
        if (::dup2(high[i], 3 + static_cast<int>(i)) < 0)  // dup2 clears close-on-exec
            return fail(Error(errno, "dup2"));
    const unsigned first = 3 + static_cast<unsigned>(keep.size());
    if (::syscall(SYS_close_range, first, ~0U, 0) != 0)
        return fail(Error(errno, "close_range(" + std::to_string(first) + ", ~0)"));
    return {};
}

std::vector<std::string> driver_environment(const std::vector<std::string>& env,
                                            const std::string& external_fds_env,
                                            const std::string& external_fds) {
    std::vector<std::string> out{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                                 "HOME=/"};
    for (const std::string& e : env) {
        const std::string_view v(e);
        const std::string_view name = v.substr(0, v.find('='));
        if (name.size() == v.size() || name == external_fds_env)
            continue;
        if (name == "TERM" || name == "LANG" || name == "TZ" || name.starts_with("LC_") ||
            name.starts_with("VFIOKIT_"))
            out.push_back(e);
    }
    out.push_back(external_fds_env + "=" + external_fds);
    return out;
}

Result<std::string> resolve_command(const std::string& cmd, const std::string& path_env) {
    if (cmd.find('/') != std::string::npos)
        return cmd;
    std::size_t start = 0;
    for (;;) {
        const std::size_t end = path_env.find(':', start);
        std::string dir = path_env.substr(start, end == std::string::npos ? end : end - start);
        if (dir.empty())
            dir = ".";
        const std::string p = dir + "/" + cmd;
        struct stat st {};
        if (::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111) != 0)
            return p;
        if (end == std::string::npos)
            break;
        start = end + 1;
    }
    return fail(Error(ENOENT, "command " + cmd + " not found in PATH " + path_env));
}

}  // namespace vfiokit::broker

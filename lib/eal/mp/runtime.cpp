// The runtime directory of a prefix, the primary's lock in it, and which
// role a process gets (DPDK's --proc-type).
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "vfiokit/eal/mp.hpp"

namespace vfiokit::eal::mp {

namespace {

std::string mode_str(mode_t m) {
    char b[8];
    std::snprintf(b, sizeof b, "%04o", static_cast<unsigned>(m & 07777));
    return b;
}

// mkdir that tolerates an existing directory.
Result<void> make_dir(const std::string& p, mode_t mode) {
    if (::mkdir(p.c_str(), mode) != 0 && errno != EEXIST)
        return fail(Error(errno, "mkdir " + p));
    return {};
}

// Creates `p` and any missing parents; the parents get 0755 (they are
// shared places like /var/run), `p` itself `mode`.
Result<void> make_dirs(const std::string& p, mode_t mode) {
    for (std::size_t i = 1; i < p.size(); ++i)
        if (p[i] == '/')
            if (auto ok = make_dir(p.substr(0, i), 0755); !ok)
                return ok;
    return make_dir(p, mode);
}

// Opens `name` in `at` (a directory fd, or AT_FDCWD for an absolute
// path) as a directory without following a symlink, and checks what was
// opened: a directory, ours, without the mode bits in `forbidden`. The
// checks are on the opened fd, so nothing can be swapped between check and
// use. `what` names it in errors ("runtime directory /run/x").
Result<vfio::Fd> open_checked_dir(int at, const std::string& name, const std::string& p,
                                  mode_t forbidden, const std::string& what,
                                  const std::string& fix) {
    struct stat st {};
    if (::fstatat(at, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
        return fail(Error(errno, "lstat " + p));
    if (S_ISLNK(st.st_mode))
        return fail(Error(ENOTDIR, what + " is a symlink")
                        .hint("remove it (someone may have planted it), or " + fix));
    if (!S_ISDIR(st.st_mode))
        return fail(Error(ENOTDIR, what + " is not a directory").hint("remove it, or " + fix));
    vfio::Fd fd(::openat(at, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd)
        return fail(Error(errno, "open " + p));
    if (::fstat(fd.get(), &st) != 0)
        return fail(Error(errno, "fstat " + p));
    if (st.st_uid != ::geteuid())
        return fail(Error(EPERM, what + " belongs to uid " + std::to_string(st.st_uid) +
                                     ", not " + std::to_string(::geteuid()))
                        .hint("run as the user who owns it, or " + fix));
    if (st.st_mode & forbidden)
        return fail(Error(EPERM, what + " has mode " + mode_str(st.st_mode) +
                                     ": other users could reach the primary")
                        .hint("chmod 0700 " + p + ", or " + fix));
    return fd;
}

// The pid the primary wrote into its lock file. The primary writes it right
// after taking the lock, so an empty file is a primary starting up: retry
// briefly.
pid_t read_pid(int fd) {
    for (int attempt = 0; attempt < 20; ++attempt) {
        char b[32] = {};
        ssize_t n = ::pread(fd, b, sizeof b - 1, 0);
        pid_t pid = 0;
        if (n > 0 && std::from_chars(b, b + n, pid).ec == std::errc() && pid > 0)
            return pid;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return 0;
}

std::string pid_text(pid_t pid) { return pid > 0 ? std::to_string(pid) : "unknown"; }

}  // namespace

Result<std::string> default_runtime_base() {
    // DPDK's rules: /var/run for root, XDG_RUNTIME_DIR (systemd's per-user
    // tmpfs, mode 0700) for others.
    if (::geteuid() == 0)
        return std::string("/var/run/vfiokit");
    if (const char* x = std::getenv("XDG_RUNTIME_DIR"); x && *x)
        return std::string(x) + "/vfiokit";
    // Not /tmp/vfiokit: a directory shared by users could be created by
    // someone else first. One per uid, checked like the prefix directory.
    return "/tmp/vfiokit-" + std::to_string(::geteuid());
}

Result<RuntimeDir> open_runtime_dir(std::string_view prefix, std::string base) {
    if (prefix.empty() || prefix == "." || prefix == ".." || prefix.find('/') != prefix.npos)
        return fail(Error(EINVAL, "runtime directory for prefix '" + std::string(prefix) + "'")
                        .hint("a prefix is one directory name (see --file-prefix)"));
    if (base.empty()) {
        auto b = default_runtime_base();
        if (!b)
            return fail(std::move(b.error()));
        base = *b;
    }
    RuntimeDir d{std::string(prefix), base + "/" + std::string(prefix), nullptr};
    if (auto ok = make_dirs(base, 0700); !ok)
        return fail(std::move(ok.error()).context("mp: runtime directory"));
    // The base is ours and only we write to it, or another user could
    // swap our directory for theirs between its check and its use (a
    // symlink is refused: /tmp's fallback is shared). Everything after is
    // relative to the opened directories.
    auto bfd = open_checked_dir(AT_FDCWD, base, base, 022, "runtime base directory " + base,
                                "set XDG_RUNTIME_DIR to a directory of yours");
    if (!bfd)
        return fail(std::move(bfd.error()).context("mp: runtime directory"));
    const std::string name(prefix);
    if (::mkdirat(bfd->get(), name.c_str(), 0700) != 0 && errno != EEXIST)
        return fail(Error(errno, "mkdir " + d.path).context("mp: runtime directory"));
    auto dfd = open_checked_dir(bfd->get(), name, d.path, 077, "runtime directory " + d.path,
                                "choose another --file-prefix");
    if (!dfd)
        return fail(std::move(dfd.error()).context("mp"));
    d.fd = std::make_shared<const vfio::Fd>(std::move(*dfd));
    return d;
}

std::string RuntimeDir::at(std::string_view name) const {
    if (fd && fd->valid())
        return "/proc/self/fd/" + std::to_string(fd->get()) + "/" + std::string(name);
    return path + "/" + std::string(name);
}

Result<PrimaryLock> PrimaryLock::acquire(const RuntimeDir& d) {
    const std::string p = d.lock_path();
    int fd = d.fd ? ::openat(d.fd->get(), "primary.lock",
                             O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)
                  : ::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return fail(Error(errno, "open " + p).context("mp: take the primary lock"));
    vfio::Fd owner(fd);
    // running_primary() probes with a shared lock for microseconds; retry
    // for a moment so that a probe is not mistaken for a primary.
    int err = 0;
    for (int attempt = 0; attempt < 10; ++attempt) {
        if (::flock(fd, LOCK_EX | LOCK_NB) == 0) {
            err = 0;
            break;
        }
        err = errno;
        if (err != EWOULDBLOCK)
            return fail(Error(err, "flock " + p).context("mp: take the primary lock"));
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (err == EWOULDBLOCK)
        return fail(Error(EBUSY, "a primary with prefix " + d.prefix + " is running (pid " +
                                     pid_text(read_pid(fd)) + ")")
                        .hint("stop it, start this process with --proc-type=secondary (or auto), "
                              "or use another --file-prefix"));
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd, 0) != 0 ||
        ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size()))
        return fail(Error(errno, "write the pid into " + p).context("mp: take the primary lock"));
    return PrimaryLock(std::move(owner), d.prefix);
}

Result<std::optional<pid_t>> running_primary(const RuntimeDir& d) {
    const std::string p = d.lock_path();
    int fd = d.fd ? ::openat(d.fd->get(), "primary.lock", O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
                  : ::open(p.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT)
            return std::optional<pid_t>();
        return fail(Error(errno, "open " + p).context("mp: is a primary running"));
    }
    vfio::Fd owner(fd);
    // flock has no "who holds it" query (F_GETLK is for POSIX locks), so
    // probe: a shared lock succeeds exactly when no primary holds its
    // exclusive one. Dropped at once (and acquire() tolerates the probe).
    if (::flock(fd, LOCK_SH | LOCK_NB) == 0) {
        ::flock(fd, LOCK_UN);
        return std::optional<pid_t>();
    }
    if (errno != EWOULDBLOCK)
        return fail(Error(errno, "flock " + p).context("mp: is a primary running"));
    return std::optional<pid_t>(read_pid(fd));
}

Result<Role> claim_role(ProcType asked, const RuntimeDir& d) {
    if (asked != ProcType::secondary) {
        auto lock = PrimaryLock::acquire(d);
        if (lock) {
            Role r;
            r.type = ProcType::primary;
            r.lock.emplace(std::move(*lock));
            return r;
        }
        if (asked == ProcType::primary || lock.error().err() != EBUSY)
            return fail(std::move(lock.error()));
        // auto and a primary runs: secondary.
        return Role{ProcType::secondary, std::nullopt};
    }
    auto running = running_primary(d);
    if (!running)
        return fail(std::move(running.error()));
    if (!*running)
        return fail(Error(ENOENT, "no primary with prefix " + d.prefix + " is running")
                        .hint("start the primary first (same --file-prefix), or use "
                              "--proc-type=auto"));
    return Role{ProcType::secondary, std::nullopt};
}

}  // namespace vfiokit::eal::mp

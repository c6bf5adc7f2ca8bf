/// \file
/// The syscall seam of the control path, and owners built on it.
///
/// Every open/close/ioctl/mmap/munmap/eventfd/pread/pwrite/readlink the VFIO
/// code issues goes through the process-wide Syscalls object (sys()), and so
/// do the calls that make, map and share EAL memory (memfd_create,
/// ftruncate, and open/mmap/munmap/close of segments and the window) and
/// those of the multi-process channel (socket, connect, accept, sendmsg,
/// recvmsg). The default forwards to the kernel. A test installs a
/// FaultInjector, which forwards too but can make the Nth call of a kind
/// (optionally: of one ioctl request) fail with a chosen errno. This works
/// on the real kernel, so a lab test can fail, say, the 3rd ioctl of
/// assign_device, or the 2nd mmap of a secondary's attach, and then check
/// that nothing was left behind (doc/hardening.md, "Fault injection").
///
/// Thread-safety: set_syscalls() is for test setup; a call on another
/// thread sees either the old or the new Syscalls, so the one installed
/// must outlive every call that may still be using it (stop or quiesce
/// other threads first). The FaultInjector counts and fails calls from
/// every thread under one lock: the Nth call is the Nth in the order the
/// threads reached the seam.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "vfiokit/eal/error.hpp"

namespace vfiokit::vfio {

/// The calls the seam (Syscalls) makes, for fault injection and messages.
enum class Call {
    open,
    close,
    ioctl,
    mmap,
    munmap,
    eventfd,
    pread,
    pwrite,
    readlink,
    memfd_create,  ///< EAL memory: a segment's backing
    ftruncate,     ///< EAL memory: a segment's size
    socket,        ///< mp channel: both ends
    connect,       ///< mp channel: the client
    accept,        ///< mp channel: the server (accept4)
    sendmsg,       ///< mp channel: every message, with its fds
    recvmsg,       ///< mp channel: every message, with its fds
};
/// The call's name: "open", "ioctl", ...
[[nodiscard]] std::string_view to_string(Call c);

/// Raw calls with the kernel's conventions: -1 (MAP_FAILED for mmap) and errno.
/// The memory and channel calls have bodies that go to the kernel, so a
/// fake that models only the VFIO calls need not override them.
class Syscalls {
public:
    virtual ~Syscalls() = default;
    virtual int open(const char* path, int flags) = 0;
    virtual int close(int fd) = 0;
    virtual int ioctl(int fd, unsigned long request, void* arg) = 0;
    virtual void* mmap(void* addr, std::size_t len, int prot, int flags, int fd, off_t off) = 0;
    virtual int munmap(void* addr, std::size_t len) = 0;
    virtual int eventfd(unsigned initval, int flags) = 0;
    virtual ssize_t pread(int fd, void* buf, std::size_t len, off_t off) = 0;
    virtual ssize_t pwrite(int fd, const void* buf, std::size_t len, off_t off) = 0;
    virtual ssize_t readlink(const char* path, char* buf, std::size_t len) = 0;
    virtual int memfd_create(const char* name, unsigned flags);
    virtual int ftruncate(int fd, off_t len);
    virtual int socket(int domain, int type, int protocol);
    virtual int connect(int fd, const sockaddr* addr, socklen_t len);
    /// accept4(fd, nullptr, nullptr, flags).
    virtual int accept(int fd, int flags);
    virtual ssize_t sendmsg(int fd, const msghdr* m, int flags);
    virtual ssize_t recvmsg(int fd, msghdr* m, int flags);
};

/// The kernel.
Syscalls& real_syscalls();
/// The seam in use. Defaults to real_syscalls().
Syscalls& sys();
/// Installs `s` (nullptr: back to the kernel). Returns the previous one.
Syscalls* set_syscalls(Syscalls* s);

/// Forwards to another Syscalls (the kernel by default) and injects faults.
class FaultInjector : public Syscalls {
public:
    explicit FaultInjector(Syscalls& next = real_syscalls()) : next_(next) {}

    /// Make the nth (1-based, counted from now) call of `kind` fail with
    /// `err`. With `request`, only ioctls with that request number count.
    /// The failing call is not forwarded to the kernel.
    void fail_nth(Call kind, unsigned n, int err, std::optional<unsigned long> request = {});
    /// Forget the planned fault and reset the counters.
    void reset();
    /// Calls of `kind` (and `request`) seen since the last reset, failed or not.
    [[nodiscard]] unsigned count(Call kind, std::optional<unsigned long> request = {}) const;
    /// Whether the planned fault has fired.
    [[nodiscard]] bool fired() const {
        std::lock_guard g(mu_);
        return fired_;
    }

    int open(const char* path, int flags) override;
    int close(int fd) override;
    int ioctl(int fd, unsigned long request, void* arg) override;
    void* mmap(void* addr, std::size_t len, int prot, int flags, int fd, off_t off) override;
    int munmap(void* addr, std::size_t len) override;
    int eventfd(unsigned initval, int flags) override;
    ssize_t pread(int fd, void* buf, std::size_t len, off_t off) override;
    ssize_t pwrite(int fd, const void* buf, std::size_t len, off_t off) override;
    ssize_t readlink(const char* path, char* buf, std::size_t len) override;
    int memfd_create(const char* name, unsigned flags) override;
    int ftruncate(int fd, off_t len) override;
    int socket(int domain, int type, int protocol) override;
    int connect(int fd, const sockaddr* addr, socklen_t len) override;
    int accept(int fd, int flags) override;
    ssize_t sendmsg(int fd, const msghdr* m, int flags) override;
    ssize_t recvmsg(int fd, msghdr* m, int flags) override;

private:
    // Counts the call; true (and errno set) when it must fail.
    bool inject(Call kind, unsigned long request = 0);
    unsigned count_locked(Call kind, std::optional<unsigned long> request) const;

    struct Seen {
        Call kind;
        unsigned long request;
    };
    Syscalls& next_;
    mutable std::mutex mu_;  // the members below
    std::vector<Seen> seen_;
    std::optional<Call> kind_;
    std::optional<unsigned long> request_;
    unsigned nth_ = 0;
    int err_ = 0;
    bool fired_ = false;
};

/// Installs a Syscalls for the lifetime of the guard.
class ScopedSyscalls {
public:
    explicit ScopedSyscalls(Syscalls& s) : prev_(set_syscalls(&s)) {}
    ~ScopedSyscalls() { set_syscalls(prev_); }
    ScopedSyscalls(const ScopedSyscalls&) = delete;
    ScopedSyscalls& operator=(const ScopedSyscalls&) = delete;

private:
    Syscalls* prev_;
};

/// Move-only owner of a file descriptor; closes it through the seam.
class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    Fd& operator=(Fd&& o) noexcept {
        if (this != &o) {
            reset();
            fd_ = std::exchange(o.fd_, -1);
        }
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }

    [[nodiscard]] int get() const { return fd_; }
    [[nodiscard]] bool valid() const { return fd_ >= 0; }
    explicit operator bool() const { return valid(); }
    /// Gives up ownership without closing.
    [[nodiscard]] int release() { return std::exchange(fd_, -1); }
    void reset();

private:
    int fd_ = -1;
};

///@{
/// Result-returning wrappers: the one place where control-path errors are
/// made. `what` names the ioctl for messages ("VFIO_GROUP_GET_STATUS").
[[nodiscard]] Result<Fd> open_fd(const std::string& path, int flags);
[[nodiscard]] Result<int> do_ioctl(int fd, unsigned long request, void* arg, std::string_view what);
[[nodiscard]] Result<Fd> ioctl_fd(int fd, unsigned long request, void* arg, std::string_view what);
[[nodiscard]] Result<std::string> read_link(const std::string& path);
///@}

/// Move-only owner of an mmap()ed range; unmaps through the seam.
class Mapping {
public:
    Mapping() = default;
    Mapping(void* addr, std::size_t len) : addr_(addr), len_(len) {}
    Mapping(Mapping&& o) noexcept
        : addr_(std::exchange(o.addr_, nullptr)), len_(std::exchange(o.len_, 0)) {}
    Mapping& operator=(Mapping&& o) noexcept {
        if (this != &o) {
            reset();
            addr_ = std::exchange(o.addr_, nullptr);
            len_ = std::exchange(o.len_, 0);
        }
        return *this;
    }
    Mapping(const Mapping&) = delete;
    Mapping& operator=(const Mapping&) = delete;
    ~Mapping() { reset(); }

    [[nodiscard]] void* addr() const { return addr_; }
    [[nodiscard]] std::size_t size() const { return len_; }
    void reset();

private:
    void* addr_ = nullptr;
    std::size_t len_ = 0;
};

/// mmap() through the seam, as a Mapping; `what` names the mapping in the
/// error.
[[nodiscard]] Result<Mapping> map_memory(void* addr, std::size_t len, int prot, int flags, int fd,
                                         off_t off, std::string_view what);

}  // namespace vfiokit::vfio

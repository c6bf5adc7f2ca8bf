#include "vfiokit/eal/vfio/syscalls.hpp"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>

#include "dma_path.hpp"

namespace vfiokit::vfio {

namespace {

class Kernel final : public Syscalls {
public:
    // 0600 for what O_CREAT makes (hugepage files): without a mode argument
    // open(2) would use whatever the register held.
    int open(const char* path, int flags) override { return ::open(path, flags | O_CLOEXEC, 0600); }
    int close(int fd) override { return ::close(fd); }
    int ioctl(int fd, unsigned long request, void* arg) override { return ::ioctl(fd, request, arg); }
    void* mmap(void* addr, std::size_t len, int prot, int flags, int fd, off_t off) override {
        return ::mmap(addr, len, prot, flags, fd, off);
    }
    int munmap(void* addr, std::size_t len) override { return ::munmap(addr, len); }
    int eventfd(unsigned initval, int flags) override { return ::eventfd(initval, flags | EFD_CLOEXEC); }
    ssize_t pread(int fd, void* buf, std::size_t len, off_t off) override {
        return ::pread(fd, buf, len, off);
    }
    ssize_t pwrite(int fd, const void* buf, std::size_t len, off_t off) override {
        return ::pwrite(fd, buf, len, off);
    }
    ssize_t readlink(const char* path, char* buf, std::size_t len) override {
        return ::readlink(path, buf, len);
    }
};

}  // namespace

// The installed Syscalls (dma_path.hpp reads it inline). Atomic: the mp
// server's thread reads it while a test installs an injector. An acquire
// load is a plain load on x86: the seam stays one load and one call.
std::atomic<Syscalls*> detail::g_installed_syscalls{nullptr};

// The memory and channel calls: the kernel, unless a Syscalls overrides them.
int Syscalls::memfd_create(const char* name, unsigned flags) { return ::memfd_create(name, flags); }
int Syscalls::ftruncate(int fd, off_t len) { return ::ftruncate(fd, len); }
int Syscalls::socket(int domain, int type, int protocol) { return ::socket(domain, type, protocol); }
int Syscalls::connect(int fd, const sockaddr* addr, socklen_t len) { return ::connect(fd, addr, len); }
int Syscalls::accept(int fd, int flags) { return ::accept4(fd, nullptr, nullptr, flags); }
ssize_t Syscalls::sendmsg(int fd, const msghdr* m, int flags) { return ::sendmsg(fd, m, flags); }
ssize_t Syscalls::recvmsg(int fd, msghdr* m, int flags) { return ::recvmsg(fd, m, flags); }

std::string_view to_string(Call c) {
    switch (c) {
    case Call::open: return "open";
    case Call::close: return "close";
    case Call::ioctl: return "ioctl";
    case Call::mmap: return "mmap";
    case Call::munmap: return "munmap";
    case Call::eventfd: return "eventfd";
    case Call::pread: return "pread";
    case Call::pwrite: return "pwrite";
    case Call::readlink: return "readlink";
    case Call::memfd_create: return "memfd_create";
    case Call::ftruncate: return "ftruncate";
    case Call::socket: return "socket";
    case Call::connect: return "connect";
    case Call::accept: return "accept";
    case Call::sendmsg: return "sendmsg";
    case Call::recvmsg: return "recvmsg";
    }
    return "?";
}

Syscalls& real_syscalls() {
    static Kernel k;
    return k;
}

Syscalls& sys() {
    Syscalls* s = detail::g_installed_syscalls.load(std::memory_order_acquire);
    return s ? *s : real_syscalls();
}

Syscalls* set_syscalls(Syscalls* s) {
    return detail::g_installed_syscalls.exchange(s, std::memory_order_acq_rel);
}

// --- FaultInjector ----------------------------------------------------------

void FaultInjector::fail_nth(Call kind, unsigned n, int err, std::optional<unsigned long> request) {
    reset();
    std::lock_guard g(mu_);
    kind_ = kind;
    request_ = request;
    nth_ = n;
    err_ = err;
}

void FaultInjector::reset() {
    std::lock_guard g(mu_);
    seen_.clear();
    kind_.reset();
    request_.reset();
    nth_ = 0;
    err_ = 0;
    fired_ = false;
}

unsigned FaultInjector::count(Call kind, std::optional<unsigned long> request) const {
    std::lock_guard g(mu_);
    return count_locked(kind, request);
}

unsigned FaultInjector::count_locked(Call kind, std::optional<unsigned long> request) const {
    return static_cast<unsigned>(std::count_if(seen_.begin(), seen_.end(), [&](const Seen& s) {
        return s.kind == kind && (!request || s.request == *request);
    }));
}

bool FaultInjector::inject(Call kind, unsigned long request) {
    std::lock_guard g(mu_);
    seen_.push_back({kind, request});
    if (fired_ || !kind_ || *kind_ != kind || (request_ && *request_ != request))
        return false;
    if (count_locked(kind, request_) != nth_)
        return false;
    fired_ = true;
    errno = err_;
    return true;
}

int FaultInjector::open(const char* path, int flags) {
    return inject(Call::open) ? -1 : next_.open(path, flags);
}
int FaultInjector::close(int fd) {
    // A close that "fails" must still release the fd, as the kernel does
    // (close(2): the descriptor is freed even on EINTR/EIO), or the test
    // itself would leak it.
    if (inject(Call::close)) {
        int saved = errno;
        next_.close(fd);
        errno = saved;
        return -1;
    }
    return next_.close(fd);
}
int FaultInjector::ioctl(int fd, unsigned long request, void* arg) {
    return inject(Call::ioctl, request) ? -1 : next_.ioctl(fd, request, arg);
}
void* FaultInjector::mmap(void* addr, std::size_t len, int prot, int flags, int fd, off_t off) {
    return inject(Call::mmap) ? MAP_FAILED : next_.mmap(addr, len, prot, flags, fd, off);
}
int FaultInjector::munmap(void* addr, std::size_t len) {
    return inject(Call::munmap) ? -1 : next_.munmap(addr, len);
}
int FaultInjector::eventfd(unsigned initval, int flags) {
    return inject(Call::eventfd) ? -1 : next_.eventfd(initval, flags);
}
ssize_t FaultInjector::pread(int fd, void* buf, std::size_t len, off_t off) {
    return inject(Call::pread) ? -1 : next_.pread(fd, buf, len, off);
}
ssize_t FaultInjector::pwrite(int fd, const void* buf, std::size_t len, off_t off) {
    return inject(Call::pwrite) ? -1 : next_.pwrite(fd, buf, len, off);
}
ssize_t FaultInjector::readlink(const char* path, char* buf, std::size_t len) {
    return inject(Call::readlink) ? -1 : next_.readlink(path, buf, len);
}
int FaultInjector::memfd_create(const char* name, unsigned flags) {
    return inject(Call::memfd_create) ? -1 : next_.memfd_create(name, flags);
}
int FaultInjector::ftruncate(int fd, off_t len) {
    return inject(Call::ftruncate) ? -1 : next_.ftruncate(fd, len);
}
int FaultInjector::socket(int domain, int type, int protocol) {
    return inject(Call::socket) ? -1 : next_.socket(domain, type, protocol);
}
int FaultInjector::connect(int fd, const sockaddr* addr, socklen_t len) {
    return inject(Call::connect) ? -1 : next_.connect(fd, addr, len);
}
int FaultInjector::accept(int fd, int flags) {
    return inject(Call::accept) ? -1 : next_.accept(fd, flags);
}
// A failed sendmsg sends nothing, and a failed recvmsg takes nothing off
// the socket: the peer's message (and its fds) stays queued, as after a
// recvmsg the kernel refused.
ssize_t FaultInjector::sendmsg(int fd, const msghdr* m, int flags) {
    return inject(Call::sendmsg) ? -1 : next_.sendmsg(fd, m, flags);
}
ssize_t FaultInjector::recvmsg(int fd, msghdr* m, int flags) {
    return inject(Call::recvmsg) ? -1 : next_.recvmsg(fd, m, flags);
}

// --- owners and wrappers ------------------------------------------------------

void Fd::reset() {
    if (fd_ >= 0)
        sys().close(fd_);
    fd_ = -1;
}

void Mapping::reset() {
    // munmap fails only when the kernel cannot get the memory to split a
    // mapping (ENOMEM, a transient state): once more before giving up, or
    // the whole range (EAL memory's window: every segment's pages) stays.
    if (addr_ != nullptr && sys().munmap(addr_, len_) != 0)
        sys().munmap(addr_, len_);
    addr_ = nullptr;
    len_ = 0;
}

Result<Fd> open_fd(const std::string& path, int flags) {
    int fd = sys().open(path.c_str(), flags);
    if (fd < 0)
        return fail(errno, "open " + path);
    return Fd(fd);
}

namespace {

// do_ioctl's error, out of line: every map and unmap goes through do_ioctl,
// and formatting in its body would cost the success path a stack frame.
[[gnu::cold, gnu::noinline]] Error ioctl_error(int err, std::string_view what) {
    return Error(err, "ioctl " + std::string(what));
}

}  // namespace

Result<int> do_ioctl(int fd, unsigned long request, void* arg, std::string_view what) {
    int r = detail::seam_ioctl(fd, request, arg);
    if (r < 0) [[unlikely]]
        return fail(ioctl_error(errno, what));
    return r;
}

Result<Fd> ioctl_fd(int fd, unsigned long request, void* arg, std::string_view what) {
    auto r = do_ioctl(fd, request, arg, what);
    if (!r)
        return fail(std::move(r.error()));
    return Fd(*r);
}

Result<std::string> read_link(const std::string& path) {
    char buf[4096];
    ssize_t n = sys().readlink(path.c_str(), buf, sizeof buf - 1);
    if (n < 0)
        return fail(errno, "readlink " + path);
    return std::string(buf, static_cast<std::size_t>(n));
}

Result<Mapping> map_memory(void* addr, std::size_t len, int prot, int flags, int fd, off_t off,
                           std::string_view what) {
    void* p = sys().mmap(addr, len, prot, flags, fd, off);
    if (p == MAP_FAILED)
        return fail(errno, "mmap " + std::string(what));
    return Mapping(p, len);
}

}  // namespace vfiokit::vfio

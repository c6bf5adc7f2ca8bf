// Support for vfio_share_lab_test; see share_util.hpp.
#include "share_util.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <map>
#include <memory>
#include <string>

#include "edu.hpp"
#include "vfiokit/bus/pci/device.hpp"
#include "vfiokit/eal/format.hpp"
#include "vfiokit/eal/mp.hpp"

namespace vfiokit::vfio::share_lab {

namespace {

// --- the test's transport: one SOCK_SEQPACKET message, bytes + SCM_RIGHTS ---

constexpr std::size_t kMaxFds = 253;  // SCM_MAX_FD
constexpr std::size_t kMaxBytes = 64 * 1024;

Result<void> send_msg(int sock, std::span<const std::uint8_t> bytes, std::span<const int> fds) {
    if (fds.size() > kMaxFds)
        return fail(E2BIG, "send: more fds than SCM_RIGHTS carries");
    const iovec iov{const_cast<std::uint8_t*>(bytes.data()), bytes.size()};
    auto n = eal::mp::send_with_fds(sock, std::span(&iov, 1), fds);
    if (!n)
        return fail(std::move(n.error()));
    if (*n != bytes.size())
        return fail(EIO, "sendmsg: short send");
    return {};
}

struct Msg {
    std::vector<std::uint8_t> bytes;
    std::vector<Fd> fds;
};

Result<Msg> recv_msg(int sock) {
    Msg m;
    m.bytes.resize(kMaxBytes);
    auto r = eal::mp::receive_with_fds(sock, std::as_writable_bytes(std::span(m.bytes)), kMaxFds);
    if (!r)
        return fail(std::move(r.error()));
    if (r->bytes == 0)
        return fail(EPIPE, "recvmsg: the peer closed the socket");
    if ((r->msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0)
        return fail(EMSGSIZE, "recvmsg: message or fds truncated");
    m.bytes.resize(r->bytes);
    m.fds = std::move(r->fds);
    return m;
}

// Failures of a role without gtest: collected, printed, counted.
struct Checks {
    std::string log;
    int failed = 0;
    bool operator()(bool ok, const std::string& what) {
        if (!ok) {
            ++failed;
            std::fprintf(stderr, "FAILED: %s\n", what.c_str());
            log += "FAILED: " + what + "; ";
        }
        return ok;
    }
};

// Round trip through edu: kLen bytes of `seed` at src (CPU at `sva`) to the
// device buffer, and back to dst.
bool edu_round_trip(edu::EduDevice& e, std::uint64_t src, std::uint64_t dst, Checks& c) {
    auto to = e.dma_to_device(src, 0, kLen);
    if (!c(to.has_value(), "dma_to_device " + hex(src) + ": " + (to ? "" : to.error().message())))
        return false;
    auto back = e.dma_to_ram(dst, 0, kLen);
    return c(back.has_value(),
             "dma_to_ram " + hex(dst) + ": " + (back ? "" : back.error().message()));
}

// The root-only nodes a process in mode `m` opens for device `a`: the
// device cdev or the group node, and /dev/iommu where the mode uses it
// (/dev/vfio/vfio is open to everyone: it grants nothing by itself).
std::vector<std::string> private_nodes(Mode m, PciAddress a) {
    const sysfs::Root root("");
    auto d = probe_device(root, probe_kernel(root), a);
    std::vector<std::string> out;
    if (const ModeNodes n = mode_nodes(m); n.first == "/dev/iommu")
        out.push_back(n.first);
    if (!d)
        return out;
    out.push_back(mode_device_node(m, *d).value_or("?"));
    return out;
}

}  // namespace

// --- shared memory ---------------------------------------------------------------

SharedMem::SharedMem(bool hugetlb) : len(hugetlb ? 2 << 20 : 16 * kPage) {
    fd = ::memfd_create("vfio-share", MFD_CLOEXEC | (hugetlb ? MFD_HUGETLB : 0u));
    if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(len)) != 0) {
        std::perror("memfd");
        return;
    }
    void* m = ::mmap(reinterpret_cast<void*>(kMemVa), len, PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_FIXED_NOREPLACE | MAP_POPULATE, fd, 0);
    if (m == MAP_FAILED)
        std::perror("mmap memfd at kMemVa");
    else
        p = m;
}

SharedMem::SharedMem(int memfd, std::uint64_t n) : fd(memfd), len(n) {
    void* m = ::mmap(reinterpret_cast<void*>(kMemVa), len, PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_FIXED_NOREPLACE | MAP_POPULATE, fd, 0);
    if (m == MAP_FAILED)
        std::perror("mmap the primary's memfd at its address");
    else
        p = m;
}

SharedMem::~SharedMem() {
    if (p != nullptr)
        ::munmap(p, len);
    if (fd >= 0)
        ::close(fd);
}

void fill(std::uint8_t* p, std::uint32_t seed) {
    for (std::uint32_t i = 0; i < kLen; ++i)
        p[i] = static_cast<std::uint8_t>(seed * 131 + i * 7 + (i >> 8));
}

bool matches(const std::uint8_t* p, std::uint32_t seed) {
    for (std::uint32_t i = 0; i < kLen; ++i)
        if (p[i] != static_cast<std::uint8_t>(seed * 131 + i * 7 + (i >> 8)))
            return false;
    return true;
}

Task make_task(const SharedMem& mem, std::uint32_t container, std::uint32_t what) {
    Task t;
    t.what = what;
    t.container = container;
    t.seed = static_cast<std::uint32_t>(::getpid()) * 7 + container + what;
    t.mem_va = mem.va();
    t.mem_len = mem.len;
    t.dma_mask = shape_dma_mask();
    std::snprintf(t.bdf, sizeof t.bdf, "%s", kEdu);
    return t;
}

std::vector<Fd> dup_all(const std::vector<int>& fds) {
    std::vector<Fd> out;
    for (int fd : fds)
        out.emplace_back(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
    return out;
}

// --- the secondary ----------------------------------------------------------------

Reply spawn_secondary(const Task& t, const SharedState& state, int memfd) {
    Reply r;
    auto say = [&](const std::string& s) {
        std::snprintf(r.text, sizeof r.text, "%s", s.c_str());
        return r;
    };
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return say(std::string("socketpair: ") + std::strerror(errno));
    Fd parent(sv[0]), child_end(sv[1]);
    const pid_t pid = ::fork();
    if (pid < 0)
        return say(std::string("fork: ") + std::strerror(errno));
    if (pid == 0) {
        // A fresh image with nothing but stdio and the socket, so the VFIO
        // fds it uses can only be the ones it receives (vfiokit's are
        // close-on-exec already, syscalls.cpp; this makes sure of the rest).
        if (child_end.get() == 3)
            ::fcntl(3, F_SETFD, 0);
        else if (::dup2(child_end.get(), 3) != 3)
            _exit(126);
        ::close_range(4, ~0U, 0);
        ::execl("/proc/self/exe", "vfio_share_lab_test", "--role=secondary", "--sock=3",
                static_cast<char*>(nullptr));
        _exit(127);
    }
    child_end.reset();
    // Task, then the state. (Two memcpys: GCC 12 misreads vector::insert
    // here as out of bounds, -Warray-bounds.)
    std::vector<std::uint8_t> bytes(sizeof t + state.bytes.size());
    std::memcpy(bytes.data(), &t, sizeof t);
    if (!state.bytes.empty())
        std::memcpy(bytes.data() + sizeof t, state.bytes.data(), state.bytes.size());
    std::vector<int> fds = state.fds;
    fds.push_back(memfd);
    auto sent = send_msg(parent.get(), bytes, fds);
    Result<Msg> reply = fail(EIO, "");
    if (sent)
        reply = recv_msg(parent.get());
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!sent)
        return say(sent.error().message());
    if (!reply || reply->bytes.size() != sizeof r)
        return say("no reply from the secondary (exit status " + std::to_string(status) + ")" +
                   (reply ? "" : ": " + reply.error().message()));
    std::memcpy(&r, reply->bytes.data(), sizeof r);
    r.text[sizeof r.text - 1] = 0;
    r.ok = r.ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    return r;
}

int secondary_main(int argc, char** argv) {
    int sock = -1;
    for (int i = 1; i < argc; ++i)
        if (std::strncmp(argv[i], "--sock=", 7) == 0)
            sock = std::atoi(argv[i] + 7);
    auto msg = recv_msg(sock);
    if (!msg || msg->bytes.size() < sizeof(Task) || msg->fds.empty()) {
        std::fprintf(stderr, "secondary: no task: %s\n",
                     msg ? "short" : msg.error().message().c_str());
        return 2;
    }
    Task t;
    std::memcpy(&t, msg->bytes.data(), sizeof t);
    const std::span<const std::uint8_t> state(msg->bytes.data() + sizeof t,
                                              msg->bytes.size() - sizeof t);
    Fd memfd = std::move(msg->fds.back());
    msg->fds.pop_back();
    Reply r;
    Checks c;
    std::string said;
    {
        SharedMem mem(memfd.release(), t.mem_len);
        auto v = Vfio::import_shared(state, std::move(msg->fds));
        if (c(mem.ok(), "the shared memory at the primary's address") &&
            c(v.has_value(), "import: " + (v ? "" : v.error().message())) &&
            c(t.container < (*v)->containers().size(), "the task's container exists")) {
            Container& ct = *(*v)->containers()[t.container];
            Device* d = (*v)->find_device(*PciAddress::parse(t.bdf));
            said = std::string(to_string((*v)->mode())) + ": imported " +
                   std::to_string((*v)->containers().size()) + " container(s); " + ct.describe();
            if (c(d != nullptr && &d->container() == &ct && ct.imported() &&
                      ct.is_default() == (t.container == 0),
                  "the device is in the imported container the task names")) {
                pci::PciDevice pd(*d);
                auto info = pd.info();
                c(info && info->num_regions >= 7, "device info through the imported device");
                auto e = edu::EduDevice::open(pd, t.dma_mask);
                if (c(e.has_value(), "edu open (BAR0 mmap): " + (e ? "" : e.error().message()))) {
                    const std::uint32_t live = (*e)->liveness(0xa5a51234u);
                    c(live == ~0xa5a51234u, "BAR0 liveness");
                    said += "; device " + d->address().str() + ": BAR0 liveness ok";
                    if ((t.what & kIrq) != 0) {
                        auto irqs = pd.enable_irqs(pci::IrqType::msi, 1);
                        if (c(irqs.has_value(), "enable MSI through the imported fd")) {
                            (void)irqs->vector(0).poll();
                            (*e)->raise_irq(0x42);
                            auto fired = irqs->vector(0).wait(std::chrono::milliseconds(1000));
                            c(fired.has_value(), "MSI fired on the secondary's eventfd");
                            (*e)->ack_irq(0x42);
                            said += "; MSI raised -> eventfd fired";
                        }
                    }
                    if ((t.what & kPrimaryMapped) != 0) {
                        fill(mem.at(0), t.seed);
                        if (edu_round_trip(**e, t.src_iova, t.dst_iova, c))
                            said += "; DMA " + std::to_string(kLen) + " bytes " +
                                    (ct.translates() ? "through the primary's mapping at IOVA "
                                                     : "to the primary's physical address ") +
                                    hex(t.src_iova);
                    }
                    if ((t.what & kSecondaryMaps) != 0) {
                        // Pinned from this process's mm: the same memfd pages.
                        auto own = t.own_iova != 0 ? Result<std::uint64_t>(t.own_iova)
                                                   : ct.alloc_iova(2 * kPage, t.dma_mask);
                        if (c(own.has_value(), "alloc_iova in the imported container") &&
                            c(ct.map(mem.va() + 2 * kPage, *own, 2 * kPage).has_value(),
                              "map the secondary's own pages")) {
                            fill(mem.at(2 * kPage), t.seed + 1);
                            if (edu_round_trip(**e, *own, *own + kPage, c))
                                said += std::string("; own mapping at ") +
                                        (t.own_iova != 0 ? "the primary's IOVA " : "IOVA ") +
                                        hex(*own) + ": DMA ok";
                            auto un = ct.unmap(t.src_iova, 2 * kPage);
                            c(!un && un.error().err() == EPERM,
                              "unmapping the primary's mapping is refused");
                            r.own_iova = *own;  // left for ~Vfio to unmap
                        }
                    }
                }
            }
        }
    }  // the Vfio (own mapping unmapped, fd copies closed), then the memory
    r.ok = c.failed == 0;
    std::snprintf(r.text, sizeof r.text, "%s%s", said.c_str(), c.log.c_str());
    std::printf("secondary pid %d: %s\n", static_cast<int>(::getpid()), r.text);
    std::fflush(stdout);
    std::vector<std::uint8_t> out(sizeof r);
    std::memcpy(out.data(), &r, sizeof r);
    (void)send_msg(sock, out, {});
    return r.ok ? 0 : 1;
}

// --- fds the way a broker hands them out -----------------------------------------

ExternalFds open_external(const Options& o) {
    ExternalFds x;
    x.mode = o.mode.value_or(Mode::cdev);
    const PciAddress a = *PciAddress::parse(kEdu);
    const sysfs::Root root("");
    auto d = probe_device(root, probe_kernel(root), a);
    if (!d)
        return x;
    // The mode table's nodes: the iommufd (cdev, cdev-noiommu) or the
    // container node, then the device's cdev or its group.
    const ModeNodes n = mode_nodes(x.mode);
    const int first = ::open(n.first.c_str(), O_RDWR | O_CLOEXEC);
    (n.process_iommufd ? x.iommufd : x.container) = first;
    const std::string node = mode_device_node(x.mode, *d).value_or("?");
    x.devices.emplace_back(a, ::open(node.c_str(), O_RDWR | O_CLOEXEC));
    return x;
}

Result<ExternalFds> receive_from_broker(const char* bdf, Mode mode) {
    const char* path = "/tmp/vfiokit-share-broker.sock";
    ::unlink(path);
    Fd lsock(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    if (::bind(lsock.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0 ||
        ::listen(lsock.get(), 1) != 0)
        return fail(errno, std::string("bind/listen ") + path);
    const pid_t pid = ::fork();
    if (pid == 0) {
        const std::string m(to_string(mode));
        ::execlp("vfiokit-broker", "vfiokit-broker", "--vfio-mode", m.c_str(), "--socket", path,
                 "--device", bdf, static_cast<char*>(nullptr));
        std::perror("exec vfiokit-broker");
        _exit(127);
    }
    pollfd pfd{lsock.get(), POLLIN, 0};
    Result<Msg> m = fail(ETIMEDOUT, "accept the broker's connection");
    if (::poll(&pfd, 1, 10000) == 1) {
        Fd conn(::accept4(lsock.get(), nullptr, nullptr, SOCK_CLOEXEC));
        m = recv_msg(conn.get());
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    ::unlink(path);
    if (!m)
        return fail(std::move(m.error()));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return fail(EIO, "vfiokit-broker exited with status " + std::to_string(status));
    const std::string text(m->bytes.begin(), m->bytes.end());
    std::printf("from the broker: \"%s\" with %zu fds\n", text.c_str(), m->fds.size());
    auto x = parse_external_fds(text);
    if (!x)
        return fail(std::move(x.error()));
    // The numbers are indexes into the fds that came with the message.
    auto take = [&](int& i) {
        if (i < 0 || static_cast<std::size_t>(i) >= m->fds.size() || !m->fds[i].valid())
            return false;
        i = m->fds[static_cast<std::size_t>(i)].release();
        return true;
    };
    if (x->mode != mode)
        return fail(EPROTO, "asked the broker for " + std::string(to_string(mode)) + " mode, got " +
                                std::string(to_string(x->mode)));
    bool ok = take(mode_nodes(x->mode).process_iommufd ? x->iommufd : x->container);
    // Devices of one group name one fd: take it once.
    std::map<int, int> taken;
    for (auto& dev : x->devices) {
        if (auto it = taken.find(dev.second); it != taken.end()) {
            dev.second = it->second;
            continue;
        }
        const int index = dev.second;
        ok = take(dev.second) && ok;
        taken[index] = dev.second;
    }
    if (!ok)
        return fail(EPROTO, "the broker's message names an fd it did not send");
    return x;
}

BrokerAttempt broker_to_listener(const char* bdf, Mode mode, uid_t listener_uid,
                                 bool via_symlink, bool root_owned_file, const std::vector<std::string>& extra_args) {
    BrokerAttempt out;
    const std::string path = "/tmp/vfiokit-share-untrusted.sock";
    const std::string link = "/tmp/vfiokit-share-untrusted.link";
    ::unlink(path.c_str());
    ::unlink(link.c_str());
    // The listener: its own process, as `listener_uid`; it reports how
    // many fds it got (or -1) on a pipe.
    int ready[2], result[2];
    if (::pipe2(ready, O_CLOEXEC) != 0 || ::pipe2(result, O_CLOEXEC) != 0)
        return out;
    const pid_t listener = ::fork();
    if (listener == 0) {
        int got = -1;
        if (::setgid(listener_uid) != 0 || ::setuid(listener_uid) != 0)
            _exit(10);
        Fd l(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path.c_str());
        if (::bind(l.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0 ||
            ::listen(l.get(), 1) != 0)
            _exit(11);
        (void)!::write(ready[1], "r", 1);
        pollfd p{l.get(), POLLIN, 0};
        if (::poll(&p, 1, 10000) == 1) {
            Fd c(::accept4(l.get(), nullptr, nullptr, SOCK_CLOEXEC));
            auto m = recv_msg(c.get());
            got = m ? static_cast<int>(m->fds.size()) : 0;
        }
        (void)!::write(result[1], &got, sizeof got);
        _exit(0);
    }
    ::close(ready[1]);
    ::close(result[1]);
    char r = 0;
    if (::read(ready[0], &r, 1) != 1) {
        ::close(ready[0]);
        ::close(result[0]);
        ::waitpid(listener, nullptr, 0);
        return out;
    }
    ::close(ready[0]);
    if (root_owned_file && ::chown(path.c_str(), 0, 0) != 0)
        std::perror("chown");
    std::string target = path;
    if (via_symlink) {
        if (::symlink(path.c_str(), link.c_str()) != 0)
            return out;
        target = link;
    }
    std::string cmd = "vfiokit-broker --vfio-mode " + std::string(to_string(mode)) +
                      " --socket " + target + " --device " + bdf;
    for (const auto& a : extra_args)
        cmd += " " + a;
    FILE* f = ::popen((cmd + " 2>&1").c_str(), "r");
    if (f) {
        char buf[512];
        while (std::fgets(buf, sizeof buf, f))
            out.output += buf;
        const int st = ::pclose(f);
        out.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    // The listener reports once it has what was sent (or saw the broker
    // close); a broker that refused before connecting leaves it waiting.
    pollfd rp{result[0], POLLIN, 0};
    if (::poll(&rp, 1, 2000) != 1)
        ::kill(listener, SIGTERM);
    int got = -1;
    if (::read(result[0], &got, sizeof got) == static_cast<ssize_t>(sizeof got))
        out.fds_received = got;
    ::close(result[0]);
    ::waitpid(listener, nullptr, 0);
    ::unlink(path.c_str());
    ::unlink(link.c_str());
    std::printf("broker to a listener of uid %u%s: status %d, %d fds received: %s",
                static_cast<unsigned>(listener_uid), via_symlink ? " via a symlink" : "",
                out.status, out.fds_received, out.output.c_str());
    return out;
}

// --- the unprivileged driver the broker starts ----------------------------------

int unprivileged_main() {
    Checks c;
    rlimit lim{};
    ::getrlimit(RLIMIT_MEMLOCK, &lim);
    std::printf("unprivileged: uid %u gid %u, RLIMIT_MEMLOCK %llu\n",
                static_cast<unsigned>(::getuid()), static_cast<unsigned>(::getgid()),
                static_cast<unsigned long long>(lim.rlim_cur));
    c(::getuid() != 0 && ::geteuid() != 0, "not running as root");
    const char* text = std::getenv(kExternalFdsEnv);
    auto x = parse_external_fds(text ? text : "");
    if (!c(x.has_value(), std::string(kExternalFdsEnv) + ": " + (x ? "" : x.error().message())))
        return 1;
    std::printf("unprivileged: %s mode from the broker\n", std::string(to_string(x->mode)).c_str());
    // Only the broker's fds came along (the job starts the broker with an
    // extra fd open and LAB_SECRET set), and a known environment.
    {
        std::vector<int> named{mode_nodes(x->mode).process_iommufd ? x->iommufd : x->container};
        for (const auto& [a, fd] : x->devices)
            named.push_back(fd);
        std::string extra;
        for (int fd = 3; fd < 1024; ++fd)
            if (::fcntl(fd, F_GETFD) >= 0 &&
                std::find(named.begin(), named.end(), fd) == named.end())
                extra += " " + std::to_string(fd);
        c(extra.empty(), "only the broker's fds are open (also open:" + extra + ")");
        c(std::getenv("LAB_SECRET") == nullptr, "the broker's environment is not passed on");
        const char* path = std::getenv("PATH");
        c(path && std::string(path).find("/tmp") == std::string::npos, "PATH is the broker's own");
        std::printf("unprivileged: fds beyond 2: only the broker's; environment: LAB_SECRET %s\n",
                    std::getenv("LAB_SECRET") ? "passed on?!" : "dropped");
    }
    // It cannot open what the broker opened for it.
    std::vector<std::string> nodes;
    for (const auto& [a, fd] : x->devices)
        for (const auto& n : private_nodes(x->mode, a))
            if (std::find(nodes.begin(), nodes.end(), n) == nodes.end())
                nodes.push_back(n);
    for (const auto& n : nodes) {
        const int fd = ::open(n.c_str(), O_RDWR);
        const int err = errno;
        c(fd < 0 && err == EACCES, "open " + n + " is refused with EACCES");
        std::printf("unprivileged: open %s: %s\n", n.c_str(),
                    fd < 0 ? std::strerror(err) : "opened?!");
        if (fd >= 0)
            ::close(fd);
    }
    // Nor get the device through vfiokit on its own: cdev and compat fail
    // at /dev/iommu, group mode at the group node.
    Options forced;
    forced.mode = x->mode;
    auto own = Vfio::create(forced);
    Result<Device*> own_dev = fail(EACCES, "Vfio::create");
    if (own)
        own_dev = (*own)->assign_device((*own)->default_container(), x->devices.front().first.str());
    else
        own_dev = fail(std::move(own.error()));
    c(!own_dev && own_dev.error().err() == EACCES, "getting the device without the broker is refused");
    if (!own_dev)
        std::printf("unprivileged: on its own: %s\n", own_dev.error().message().c_str());
    own = fail(EINVAL, "");  // releases anything it opened

    // The type1 flavour from the environment (the mode is the broker's).
    Options o;
    if (auto env_ok = apply_environment(o); !env_ok)
        c(false, env_ok.error().message());
    auto v = Vfio::from_external_fds(*x, o);
    if (!c(v.has_value(), "from_external_fds: " + (v ? "" : v.error().message())))
        return 1;
    Device* d = (*v)->find_device(x->devices.front().first);
    if (!c(d != nullptr, "the device is assigned"))
        return 1;
    pci::PciDevice pd(*d);
    auto e = edu::EduDevice::open(pd, edu::kDefaultDmaMask);
    if (!c(e.has_value(), "edu open: " + (e ? "" : e.error().message())))
        return 1;
    c((*e)->liveness(0x600dcafe) == ~0x600dcafeu, "BAR0 liveness");
    auto f = (*e)->factorial(10);
    c(f && *f == 3628800u, "factorial(10)");
    std::printf("unprivileged: %s via inherited fds, %s: liveness and factorial ok\n",
                d->address().str().c_str(), (*v)->default_container().describe().c_str());

    // DMA through memory it pins itself (charged to uid 65534 against the
    // RLIMIT_MEMLOCK the broker set).
    Container& dc = (*v)->default_container();
    void* m = ::mmap(nullptr, 2 * kPage, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (!c(m != MAP_FAILED, "mmap"))
        return 1;
    auto* p = static_cast<std::uint8_t*>(m);
    auto iova = dc.alloc_iova(2 * kPage, edu::kDefaultDmaMask);
    auto mapped = iova ? dc.map(reinterpret_cast<std::uint64_t>(m), *iova, 2 * kPage)
                       : Result<void>(std::unexpected(iova.error()));
    if (c(mapped.has_value(), "map: " + (mapped ? "" : mapped.error().message()))) {
        fill(p, 4242);
        std::memset(p + kPage, 0x5a, kPage);
        if (edu_round_trip(**e, *iova, *iova + kPage, c) &&
            c(matches(p + kPage, 4242), "the bytes came back"))
            std::printf("unprivileged: DMA round trip of %u bytes at IOVA %s ok\n", kLen,
                        hex(*iova).c_str());
        c(dc.unmap(*iova, 2 * kPage).has_value(), "unmap");
    }
    e->reset();
    ::munmap(m, 2 * kPage);
    std::printf("unprivileged: %s\n", c.failed == 0 ? "PASS" : "FAIL");
    return c.failed == 0 ? 0 : 1;
}

}  // namespace vfiokit::vfio::share_lab

// vfiokit-broker: opens a device's VFIO nodes as root and hands the fds to
// a driver process, which never opens /dev itself.
//
//   vfiokit-broker [--vfio-mode M] [--uid N] [--gid N] [--memlock SIZE] --device BDF... -- CMD ARGS...
//   vfiokit-broker [--vfio-mode M] --socket PATH [--expect-uid N] --device BDF...
//
// Which nodes, per mode (--vfio-mode, else VFIOKIT_VFIO_MODE; auto: the
// mode the first device offers first, cdev before group before no-IOMMU;
// the paths come from the mode table, vfio::mode_nodes()):
//   cdev     /dev/iommu and each device's cdev (/dev/vfio/devices/vfioN)
//   group    /dev/vfio/vfio and each device's group (/dev/vfio/N)
//   compat   /dev/iommu (as the container) and each device's group
//   noiommu  /dev/vfio/vfio and each device's no-IOMMU group
//            (/dev/vfio/noiommu-N); socket mode only: setting the
//            no-IOMMU model and finding physical addresses need
//            CAP_SYS_RAWIO and CAP_SYS_ADMIN in the driver process
//            (vfio_noiommu_open, pagemap), which exec mode drops.
//   cdev-noiommu  /dev/iommu and each device's no-IOMMU cdev
//            (/dev/vfio/devices/noiommu-vfioN); socket mode only: its
//            physical addresses (IOMMU_IOAS_NOIOMMU_GET_PA) need
//            CAP_SYS_RAWIO in the driver process.
// Devices of one IOMMU group share its group fd (a group node opens once).
//
// Every node is opened without following a symlink and checked against
// sysfs (its st_rdev against the dev file of that group or cdev) before it
// is handed out.
//
// Exec mode: forks; the child raises RLIMIT_MEMLOCK (it pins its DMA
// memory, and iommufd charges the pages to its uid against this limit:
// iommufd/pages.c incr_user_locked_vm), clears close-on-exec on the fds,
// moves the fds to 3, 4, ... and closes every other inherited fd
// (close_range), replaces the environment with a known set (guard.hpp
// driver_environment) and VFIOKIT_EXTERNAL_FDS="mode=cdev,iommufd=3,0000:00:03.0=4"
// (group style: "mode=group,container=3,0000:00:03.0=4"), drops
// privileges for good (setgroups, setgid, setuid; no_new_privs) and execs
// CMD. The broker closes its copies, so the child is the fds' only holder
// (its exit releases the devices), waits, and exits with the child's
// status (128+signal when killed).
//
// Socket mode: connects to a unix SOCK_SEQPACKET socket at PATH, which must
// be a socket (not a symlink) owned by root or --expect-uid, and whose
// listener (SO_PEERCRED) runs as root or --expect-uid: checked before
// anything is sent (guard.hpp connect_receiver). Then it sends one message: the same text with fd indexes into the message's SCM_RIGHTS
// array in place of numbers ("mode=cdev,iommufd=0,0000:00:03.0=1"). The
// receiver replaces the indexes with the fds it got. Its RLIMIT_MEMLOCK is
// its own business.
//
// The broker only opens the nodes: binding to the iommufd, the IOAS and the
// attach (group style: setting the container and the IOMMU model) are the
// receiver's (Vfio::from_external_fds), so the receiver owns the device's
// whole lifecycle and its DMA pinning is charged to it.
#include <fcntl.h>
#include <grp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <optional>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "guard.hpp"
#include "vfiokit/eal/mp.hpp"
#include "vfiokit/eal/vfio/probe.hpp"
#include "vfiokit/eal/vfio/share.hpp"
#include "vfiokit/eal/vfio/syscalls.hpp"
#include "vfiokit/eal/vfio/vfio.hpp"

namespace {

using namespace vfiokit;
using vfio::Fd;

void usage(FILE* out) {
    std::fprintf(out,
                 "usage: vfiokit-broker [--vfio-mode M] [--uid N] [--gid N] [--memlock SIZE] "
                 "--device BDF... -- CMD [ARGS...]\n"
                 "       vfiokit-broker [--vfio-mode M] --socket PATH [--expect-uid N] --device BDF...\n"
                 "  Runs as root. Opens the VFIO nodes of each device bound to vfio-pci for\n"
                 "  mode M, then either starts CMD as an unprivileged user with the fds\n"
                 "  inherited and named in %s, or sends them over the unix\n"
                 "  SOCK_SEQPACKET socket PATH (SCM_RIGHTS).\n"
                 "  --device BDF      a device bound to vfio-pci whose nodes to open\n"
                 "                    (repeatable; at least one)\n"
                 "  -- CMD [ARGS...]  the driver to run with the fds (exec mode)\n"
                 "  --socket PATH     send the fds to the process listening on PATH\n"
                 "                    instead of running CMD (socket mode)\n"
                 "  --vfio-mode M     auto (default), cdev (/dev/iommu + device cdevs), group\n"
                 "                    (/dev/vfio/vfio + groups), compat (/dev/iommu + groups),\n"
                 "                    noiommu (/dev/vfio/vfio + no-IOMMU groups; --socket only),\n"
                 "                    cdev-noiommu (/dev/iommu + no-IOMMU cdevs; --socket only)\n"
                 "  --uid N, --gid N  the user and group CMD runs as (default 65534; gid = uid;\n"
                 "                    neither may be 0)\n"
                 "  --expect-uid N    --socket: the user the receiver runs as (default: root\n"
                 "                    only); PATH must be its socket, its listener that user\n"
                 "  --memlock SIZE    RLIMIT_MEMLOCK for CMD, bytes with K/M/G or 'unlimited'\n"
                 "                    (default 64M): the DMA memory it may pin\n"
                 "  -h, --help        this text\n",
                 vfio::kExternalFdsEnv);
}

[[noreturn]] void die(const std::string& msg) {
    std::fprintf(stderr, "vfiokit-broker: %s\n", msg.c_str());
    std::exit(1);
}

template <class T>
bool parse_num(std::string_view s, T& out) {
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && end == s.data() + s.size();
}

rlim_t parse_size(std::string_view s) {
    if (s == "unlimited")
        return RLIM_INFINITY;
    unsigned shift = 0;
    if (!s.empty()) {
        switch (s.back()) {
        case 'K': case 'k': shift = 10; break;
        case 'M': case 'm': shift = 20; break;
        case 'G': case 'g': shift = 30; break;
        default: break;
        }
    }
    if (shift != 0)
        s.remove_suffix(1);
    unsigned long long v = 0;
    if (!parse_num(s, v) || v > (~0ULL >> shift))
        die("--memlock: '" + std::string(s) + "' is not a size");
    return static_cast<rlim_t>(v << shift);
}

struct Args {
    std::optional<vfio::Mode> mode;  // nullopt: auto
    uid_t uid = 65534;
    std::optional<gid_t> gid;
    rlim_t memlock = rlim_t{64} << 20;
    std::vector<PciAddress> devices;
    std::string socket;
    std::optional<uid_t> expect_uid;  // --socket: who may receive besides root
    std::vector<char*> command;
};

Args parse_args(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        auto value = [&]() -> std::string_view {
            if (i + 1 >= argc)
                die(std::string(arg) + " needs a value");
            return argv[++i];
        };
        if (arg == "--") {
            a.command.assign(argv + i + 1, argv + argc);
            break;
        }
        if (arg == "-h" || arg == "--help") {
            usage(stdout);
            std::exit(0);
        } else if (arg == "--uid") {
            if (!parse_num(value(), a.uid))
                die("--uid: not a number");
        } else if (arg == "--gid") {
            gid_t g = 0;
            if (!parse_num(value(), g))
                die("--gid: not a number");
            a.gid = g;
        } else if (arg == "--memlock") {
            a.memlock = parse_size(value());
        } else if (arg == "--device") {
            auto d = PciAddress::parse(value());
            if (!d)
                die("--device: '" + std::string(argv[i]) + "' is not a PCI address");
            a.devices.push_back(*d);
        } else if (arg == "--vfio-mode") {
            auto m = vfio::parse_mode(value());
            if (!m)
                die(m.error().message());
            a.mode = *m;
        } else if (arg == "--socket") {
            a.socket = value();
        } else if (arg == "--expect-uid") {
            uid_t u = 0;
            if (!parse_num(value(), u))
                die("--expect-uid: not a number");
            a.expect_uid = u;
        } else {
            usage(stderr);
            die("unknown argument '" + std::string(arg) + "'");
        }
    }
    if (a.devices.empty())
        die("no --device given");
    if (a.socket.empty() == a.command.empty())
        die(a.socket.empty() ? "give a command after --, or --socket PATH"
                             : "--socket and a command exclude each other");
    if (a.uid == 0)
        die("--uid 0: the point is to run the driver without root");
    if (a.gid && *a.gid == 0)
        die("--gid 0: group root can open what the driver should not (disk and /dev nodes of "
            "group root); give the driver's own group");
    if (a.expect_uid && a.socket.empty())
        die("--expect-uid is for --socket (exec mode takes --uid)");
    if (!a.mode) {
        // Like every vfiokit program: VFIOKIT_VFIO_MODE when no option says.
        vfio::Options vo;
        if (auto ok = vfio::apply_environment(vo); !ok)
            die(ok.error().message());
        a.mode = vo.mode;
    }
    return a;
}

// The fds the broker hands over, in the order they travel: [0] the iommufd
// (cdev) or the container (group style), then one node per device (cdev) or
// per IOMMU group (group style).
struct Opened {
    std::vector<Fd> fds;
    vfio::Mode mode = vfio::Mode::cdev;
    std::vector<std::size_t> device_fd;  // per --device: its index in fds
    // The text for the receiver: fds[i] is number first + i (exec: the
    // child moves them to 3, 4, ...; socket: indexes from 0).
    [[nodiscard]] vfio::ExternalFds external(const Args& a, int first) const {
        vfio::ExternalFds x;
        x.mode = mode;
        auto num = [&](std::size_t i) { return first + static_cast<int>(i); };
        (vfio::mode_nodes(mode).process_iommufd ? x.iommufd : x.container) = num(0);
        for (std::size_t i = 0; i < a.devices.size(); ++i)
            x.devices.emplace_back(a.devices[i], num(device_fd[i]));
        return x;
    }
};

// Opens a node (a symlink at its place is refused) and checks that it is
// the kernel's device that sysfs names for it.
Fd open_node(const std::string& path, const std::string& why, const std::string& bdf = {},
             const std::string& vfio_dev = {}) {
    auto fd = vfio::open_fd(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (!fd)
        die(fd.error().message() + (why.empty() ? "" : " (" + why + ")"));
    if (auto ok = broker::verify_node(fd->get(), path,
                                      broker::sysfs_dev_file("/sys", path, bdf, vfio_dev));
        !ok)
        die(ok.error().message());
    return std::move(*fd);
}

Opened open_nodes(const Args& a) {
    const sysfs::Root root("");
    const auto kernel = vfio::probe_kernel(root);
    std::vector<vfio::DeviceSupport> devs;
    for (const PciAddress& d : a.devices) {
        auto sup = vfio::probe_device(root, kernel, d);
        if (!sup)
            die(sup.error().message());
        devs.push_back(std::move(*sup));
    }
    Opened o;
    if (a.mode) {
        o.mode = *a.mode;
    } else if (devs.front().automatic) {
        o.mode = *devs.front().automatic;
    } else {
        die(devs.front().addr.str() + ": no VFIO mode available" +
            (devs.front().action.empty() ? "" : ": " + devs.front().action));
    }
    for (const auto& d : devs) {
        const auto& st = d.status(o.mode);
        if (!st.available)
            die(d.addr.str() + ": " + std::string(vfio::to_string(o.mode)) + " mode unavailable: " +
                st.reason + (d.action.empty() ? "" : "; " + d.action));
    }
    const vfio::ModeNodes nodes = vfio::mode_nodes(o.mode);
    o.fds.push_back(open_node(nodes.first, "the kernel needs " + nodes.first_option));
    // Devices whose node is the same (the group node in group style) share
    // one fd: a group node opens once.
    std::map<std::string, std::size_t> node_fd;  // node -> index in fds
    for (const auto& d : devs) {
        auto path = vfio::mode_device_node(o.mode, d);
        if (!path)
            die(path.error().message());
        const std::string& node = *path;
        if (auto it = node_fd.find(node); it != node_fd.end()) {
            o.device_fd.push_back(it->second);
            std::printf("vfiokit-broker: %s: shares %s's fd\n", d.addr.str().c_str(), node.c_str());
            continue;
        }
        node_fd[node] = o.fds.size();
        o.device_fd.push_back(o.fds.size());
        o.fds.push_back(open_node(node, "", d.addr.str(), d.vfio_dev.value_or("")));
        std::printf("vfiokit-broker: %s: opened %s (%s mode)\n", d.addr.str().c_str(),
                    node.c_str(), std::string(vfio::to_string(o.mode)).c_str());
    }
    return o;
}

// Child side of exec mode: never returns.
[[noreturn]] void become_driver(const Args& a, const Opened& o, const std::string& program) {
    auto child_die = [](const std::string& msg) {
        std::fprintf(stderr, "vfiokit-broker (child): %s: %s\n", msg.c_str(), std::strerror(errno));
        _exit(127);
    };
    // Only the fds we opened reach the driver (as 3, 4, ...): whatever the
    // broker inherited (a root-opened file, a socket) is closed here.
    std::vector<int> keep;
    for (const Fd& fd : o.fds)
        keep.push_back(fd.get());
    if (auto ok = broker::keep_only_fds(keep); !ok)
        child_die(ok.error().message());
    // A known environment: nothing of root's (LD_PRELOAD, LD_LIBRARY_PATH,
    // ...) steers the driver's start.
    std::vector<std::string> env;
    for (char** e = environ; e && *e; ++e)
        env.emplace_back(*e);
    env = broker::driver_environment(env, vfio::kExternalFdsEnv,
                                     vfio::format_external_fds(o.external(a, 3)));
    std::vector<char*> envp;
    for (std::string& e : env)
        envp.push_back(e.data());
    envp.push_back(nullptr);
    environ = envp.data();
    // Raising the hard limit needs CAP_SYS_RESOURCE: before dropping root.
    const rlimit lim{a.memlock, a.memlock};
    if (::setrlimit(RLIMIT_MEMLOCK, &lim) != 0)
        child_die("setrlimit(RLIMIT_MEMLOCK)");
    const gid_t gid = a.gid.value_or(static_cast<gid_t>(a.uid));
    // Supplementary groups first (needs root), then gid, then uid: after
    // setuid nothing else can be changed.
    if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(a.uid) != 0)
        child_die("drop privileges to uid " + std::to_string(a.uid));
    if (::setuid(0) == 0)
        child_die("root could be regained after setuid");
    // No setuid binary or file capability can give root back after exec.
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        child_die("PR_SET_NO_NEW_PRIVS");
    // The program was looked up in the caller's PATH (run_child): the
    // driver's own PATH is the fixed one.
    ::execv(program.c_str(), a.command.data());
    child_die("exec " + program);
    _exit(127);  // not reached
}

int run_child(const Args& a, Opened o) {
    const char* path = std::getenv("PATH");
    auto program = broker::resolve_command(a.command[0], path ? path : "/usr/bin:/bin");
    if (!program)
        die(program.error().message());
    std::printf("vfiokit-broker: starting %s as uid %u with %s=%s, RLIMIT_MEMLOCK %llu\n",
                a.command[0], static_cast<unsigned>(a.uid), vfio::kExternalFdsEnv,
                vfio::format_external_fds(o.external(a, 3)).c_str(),
                static_cast<unsigned long long>(a.memlock));
    std::fflush(stdout);
    const pid_t pid = ::fork();
    if (pid < 0)
        die(std::string("fork: ") + std::strerror(errno));
    if (pid == 0)
        become_driver(a, o, *program);
    o.fds.clear();  // the child holds the only copies now
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            die(std::string("waitpid: ") + std::strerror(errno));
    if (WIFSIGNALED(status)) {
        std::fprintf(stderr, "vfiokit-broker: %s killed by signal %d\n", a.command[0],
                     WTERMSIG(status));
        return 128 + WTERMSIG(status);
    }
    return WEXITSTATUS(status);
}

int send_over_socket(const Args& a, const Opened& o) {
    const std::string text = vfio::format_external_fds(o.external(a, 0));
    auto sock = broker::connect_receiver(a.socket, a.expect_uid);
    if (!sock)
        die(sock.error().message());

    std::vector<int> nums;
    for (const Fd& fd : o.fds)
        nums.push_back(fd.get());
    const iovec iov{const_cast<char*>(text.data()), text.size()};
    auto sent = vfiokit::eal::mp::send_with_fds(sock->get(), std::span(&iov, 1), nums);
    if (!sent || *sent != text.size())
        die("sendmsg " + a.socket + ": " + (sent ? "short send" : sent.error().message()));
    ucred peer{};
    socklen_t len = sizeof peer;
    if (::getsockopt(sock->get(), SOL_SOCKET, SO_PEERCRED, &peer, &len) == 0)
        std::printf("vfiokit-broker: sent %zu fds (%s) to pid %d uid %u over %s\n", nums.size(),
                    text.c_str(), static_cast<int>(peer.pid), static_cast<unsigned>(peer.uid),
                    a.socket.c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    const Args a = parse_args(argc, argv);
    if (::geteuid() != 0)
        die("run as root: the broker opens the VFIO nodes for its child");
    Opened o = open_nodes(a);
    if (!vfio::mode_nodes(o.mode).translates && a.socket.empty())
        die("no-IOMMU mode: the driver process needs CAP_SYS_RAWIO to set the no-IOMMU model "
            "(noiommu) or to ask the kernel for physical addresses (cdev-noiommu), and "
            "CAP_SYS_ADMIN to read them from pagemap (noiommu), which exec mode drops; use "
            "--socket with a privileged receiver");
    return a.socket.empty() ? run_child(a, std::move(o)) : send_over_socket(a, o);
}

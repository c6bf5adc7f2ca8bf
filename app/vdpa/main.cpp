// vfiokit-vdpa: serves one vhost-user socket per vDPA device (DPDK's vdpa
// example, over vfiokit's EAL and the vdpa_virtio driver; doc/vdpa.md).
//
//   vfiokit-vdpa -a 0000:00:06.0 -- --iface /tmp/vdpa-
//
// Every -a device is probed by the vDPA driver (the app adds vdpa=1 to
// each) in a container of its own; device i is served at PREFIXi
// (/tmp/vdpa-0, ...), one front end at a time, accepting again after each.
// A thread per socket serves the control path; the packets go between the
// device and the front end's memory without this process. SIGINT or
// SIGTERM ends it, printing each device's statistics; SIGUSR1 prints them
// and goes on.
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "vfiokit/eal/eal.hpp"
#include "vfiokit/vdpa/virtio.hpp"
#include "vfiokit/vhost_user/server.hpp"

namespace {

using namespace vfiokit;

constexpr const char* kUsage =
    "usage: vfiokit-vdpa [EAL options] -a BDF [-a BDF...] -- --iface PREFIX\n"
    "  --iface PREFIX   serve device i (in -a order of PCI address) at the\n"
    "                   vhost-user socket PREFIXi (server mode)\n"
    "  -h, --help       this text\n"
    "Every -a device goes to the vDPA driver (vdpa=1 is implied).\n"
    "SIGUSR1 prints the statistics; SIGINT/SIGTERM print them and exit.\n";

int g_sig_pipe[2] = {-1, -1};

void on_signal(int sig) {
    const unsigned char b = static_cast<unsigned char>(sig);
    const int saved = errno;
    [[maybe_unused]] ssize_t r = ::write(g_sig_pipe[1], &b, 1);
    errno = saved;
}

bool install_signals() {
    if (::pipe2(g_sig_pipe, O_CLOEXEC) != 0)
        return false;
    struct sigaction sa = {};
    sa.sa_handler = on_signal;
    ::sigemptyset(&sa.sa_mask);
    for (int s : {SIGINT, SIGTERM, SIGUSR1})
        if (::sigaction(s, &sa, nullptr) != 0)
            return false;
    return true;
}

// One device and its socket, served by a thread of its own.
struct Served {
    vdpa::VirtioVdpa* dev = nullptr;
    std::string path;
    std::unique_ptr<vhost_user::Server> server;  // the serving thread's
    std::thread thread;
    // The server's counts, copied by the serving thread for print().
    std::atomic<unsigned> accepted{0}, ended{0};
};

void serve(Served& s, const std::atomic<bool>& stop) {
    ::pthread_setname_np(::pthread_self(), "vdpa-serve");
    const std::string who = "vdpa " + s.dev->address().str();
    while (!stop.load()) {
        // One accept or one request, or 200 ms without either.
        auto r = s.server->poll(200);
        if (s.server->accepted() != s.accepted) {
            s.accepted = s.server->accepted();
            std::fprintf(stderr, "%s: front end %u connected on %s\n", who.c_str(),
                         s.accepted.load(), s.path.c_str());
        }
        if (s.server->ended() != s.ended) {
            s.ended = s.server->ended();
            std::fprintf(stderr, "%s: front end gone: %s\n", who.c_str(),
                         s.server->last_end().c_str());
        }
        if (!r) {
            std::fprintf(stderr, "%s: %s: %s\n", who.c_str(), s.path.c_str(),
                         r.error().message().c_str());
            return;
        }
    }
}

void print(std::vector<std::unique_ptr<Served>>& all, const char* when) {
    for (auto& s : all) {
        const auto st = s->dev->stats();
        std::printf("vdpa stats (%s) %s %s: rx_used %llu tx_used %llu kicks %llu "
                    "relay_wakeups %llu starts %llu stops %llu front_ends %u ended %u "
                    "maps %llu unmaps %llu mapped_bytes %llu running %s\n",
                    when, s->dev->address().str().c_str(), s->path.c_str(),
                    static_cast<unsigned long long>(st.rx_used),
                    static_cast<unsigned long long>(st.tx_used),
                    static_cast<unsigned long long>(st.kicks),
                    static_cast<unsigned long long>(st.relay_wakeups),
                    static_cast<unsigned long long>(st.starts),
                    static_cast<unsigned long long>(st.stops), s->accepted.load(),
                    s->ended.load(), static_cast<unsigned long long>(st.maps),
                    static_cast<unsigned long long>(st.unmaps),
                    static_cast<unsigned long long>(st.mapped_bytes), st.running ? "yes" : "no");
    }
    std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
    for (int i = 1; i < argc; ++i)
        if (std::string_view(argv[i]) == "-h" || std::string_view(argv[i]) == "--help") {
            std::printf("%s\n%s", kUsage, eal::options_usage().c_str());
            return 0;
        }
    eal::Options o;
    auto first = eal::parse_options(argc, argv, o);
    if (!first) {
        std::fprintf(stderr, "vfiokit-vdpa: %s\n%s", first.error().message().c_str(), kUsage);
        return 2;
    }
    std::string prefix;
    for (int i = *first; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--iface" && i + 1 < argc) {
            prefix = argv[++i];
        } else if (a.starts_with("--iface=")) {
            prefix = std::string(a.substr(8));
        } else {
            std::fprintf(stderr, "vfiokit-vdpa: unknown argument '%s'\n%s", argv[i], kUsage);
            return 2;
        }
    }
    if (prefix.empty() || o.allow.empty()) {
        std::fprintf(stderr, "vfiokit-vdpa: give the devices (-a BDF) and --iface PREFIX\n%s",
                     kUsage);
        return 2;
    }
    // Every named device is for the vDPA driver.
    for (auto& al : o.allow) {
        bool has = false;
        for (const auto& a : al.args)
            has = has || a.key == "vdpa";
        if (!has)
            al.args.push_back({"vdpa", "1"});
    }
    if (!install_signals()) {
        std::perror("vfiokit-vdpa: signals");
        return 1;
    }
    auto e = eal::Eal::init(o);
    if (!e) {
        std::fprintf(stderr, "vfiokit-vdpa: %s\n", e.error().message().c_str());
        return 1;
    }
    std::printf("VFIO mode: %s (%s)\n", std::string(vfio::to_string((*e)->vfio().mode())).c_str(),
                (*e)->vfio().mode_reason().c_str());

    std::vector<std::unique_ptr<Served>> all;
    for (const auto& rep : (*e)->device_report()) {
        auto* dev = rep.probed ? vdpa::vdpa_virtio_driver().find(rep.addr) : nullptr;
        if (!dev)
            continue;
        auto s = std::make_unique<Served>();
        s->dev = dev;
        s->path = prefix + std::to_string(all.size());
        auto srv = vhost_user::Server::listen(s->path, dev->device(), dev->config());
        if (!srv) {
            std::fprintf(stderr, "vfiokit-vdpa: %s\n", srv.error().message().c_str());
            return 1;
        }
        s->server = std::make_unique<vhost_user::Server>(std::move(*srv));
        std::printf("vdpa device %s at %s\n", dev->describe().c_str(), s->path.c_str());
        all.push_back(std::move(s));
    }
    if (all.empty()) {
        std::fprintf(stderr, "vfiokit-vdpa: no device was probed by the vDPA driver\n");
        return 1;
    }
    std::fflush(stdout);

    std::atomic<bool> stop{false};
    for (auto& s : all)
        s->thread = std::thread([p = s.get(), &stop] { serve(*p, stop); });
    for (;;) {
        unsigned char sig = 0;
        if (::read(g_sig_pipe[0], &sig, 1) != 1) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (sig == SIGUSR1) {
            print(all, "SIGUSR1");
            continue;
        }
        std::printf("signal %d: stopping\n", sig);
        break;
    }
    stop = true;
    for (auto& s : all)
        s->thread.join();
    print(all, "exit");
    // The servers (and their sessions) go before the EAL, which removes
    // the devices: the engines stop the devices and unmap everything.
    all.clear();
    return 0;
}

// vfiokit-testpmd: DPDK testpmd's options, prompt and output over vfiokit's
// EAL, ethdev and drivers (doc/testpmd.md).
//
//   vfiokit-testpmd -l 0-1 -a 0000:00:05.0 -a 0000:00:06.0 -- -i
//
// The main lcore runs the prompt (or waits for Enter); --nb-cores worker
// lcores forward. SIGINT and SIGTERM stop forwarding, print the forward
// statistics, close the ports and exit 0.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string_view>

#include "params.hpp"
#include "shell.hpp"
#include "testpmd.hpp"
#include "vfiokit/eal/eal.hpp"
#include "vfiokit/eal/lcore.hpp"
#include "vfiokit/eal/strformat.hpp"
#include "vfiokit/ethdev/ethdev.hpp"
#include "vfiokit/mbuf/mbuf.hpp"

namespace {

using namespace vfiokit;

// The EAL's worker lcores, in ascending order.
class LcoreRunner final : public testpmd::Runner {
public:
    explicit LcoreRunner(eal::Lcores& l) : lcores_(l), ids_(l.workers()) {}
    unsigned workers() const override { return static_cast<unsigned>(ids_.size()); }
    unsigned lcore(unsigned i) const override { return ids_.at(i); }
    Result<void> launch(unsigned i, std::function<int()> fn) override {
        return lcores_.launch(ids_.at(i), std::move(fn));
    }
    void wait(unsigned i) override { (void)lcores_.wait(ids_.at(i)); }

private:
    eal::Lcores& lcores_;
    std::vector<unsigned> ids_;
};

// Self-pipe: the handler writes the signal number; the main loop polls it.
int g_sig_pipe[2] = {-1, -1};

void on_signal(int sig) {
    const unsigned char b = static_cast<unsigned char>(sig);
    const int saved = errno;
    [[maybe_unused]] ssize_t r = ::write(g_sig_pipe[1], &b, 1);
    errno = saved;
}

bool install_signals() {
    if (::pipe2(g_sig_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
        return false;
    struct sigaction sa = {};
    sa.sa_handler = on_signal;
    ::sigemptyset(&sa.sa_mask);
    return ::sigaction(SIGINT, &sa, nullptr) == 0 && ::sigaction(SIGTERM, &sa, nullptr) == 0;
}

int received_signal() {
    unsigned char b = 0;
    return ::read(g_sig_pipe[0], &b, 1) == 1 ? b : 0;
}

// -h/--help after "--" needs no EAL (no device, no VFIO on this machine).
bool wants_help(int argc, char** argv) {
    bool app = false;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--")
            app = true;
        else if (app && (a == "-h" || a == "--help"))
            return true;
    }
    return false;
}

void usage(const char* prog) {
    std::cout << "usage: " << prog << " [EAL options] -- [testpmd options]\n\n"
              << eal::options_usage() << "\n"
              << testpmd::params_usage() << "\n" << testpmd::commands_help();
}

int run(int argc, char** argv) {
    if (wants_help(argc, argv)) {
        usage(argv[0]);
        return 0;
    }
    int first = argc;
    auto e = eal::Eal::init(argc, argv, &first);
    if (!e) {
        std::fprintf(stderr, "EAL: %s\n", e.error().message().c_str());
        return 1;
    }
    auto params = testpmd::parse_params(argc - first, argv + first);
    if (!params) {
        std::fprintf(stderr, "%s\n%s", params.error().message().c_str(),
                     testpmd::params_usage().c_str());
        return 1;
    }
    if (params->help) {
        usage(argv[0]);
        return 0;
    }
    if (!install_signals()) {
        std::perror("testpmd: signal handlers");
        return 1;
    }
    params->secondary = (*e)->proc_type() == eal::ProcType::secondary;
    LcoreRunner runner((*e)->lcores());
    testpmd::Testpmd tp(*params, runner, std::cout);
    const auto ports = ethdev::ports();
    const unsigned n = params->total_num_mbufs ? params->total_num_mbufs
                                               : tp.pool_size(ports.size());
    unsigned cache = params->mbcache;
    if (cache * 3 / 2 > n)
        cache = n * 2 / 3;
    // A secondary uses the primary's pool (found by name over the channel).
    Result<mbuf::MbufPool*> pool = fail(Error(ENOENT, "testpmd: no mbuf pool mb_pool_0 in the "
                                                      "primary")
                                            .hint("start the primary (vfiokit-testpmd) first, "
                                                  "with the same --file-prefix"));
    if (params->secondary) {
        if (mbuf::MbufPool* p = mbuf::MbufPool::lookup("mb_pool_0"))
            pool = p;
    } else {
        std::cout << strformat("testpmd: create a new mbuf pool <mb_pool_0>: n={}, size={}\n", n,
                               params->mbuf_size);
        pool = mbuf::MbufPool::create("mb_pool_0", n, cache, 0, params->mbuf_size, -1);
    }
    if (!pool) {
        std::fprintf(stderr, "testpmd: mbuf pool: %s\n", pool.error().message().c_str());
        return 1;
    }
    int rc = 0;
    if (auto set = tp.setup_ports(ports, **pool); !set) {
        std::fprintf(stderr, "%s\n", set.error().message().c_str());
        rc = 1;
    } else {
        testpmd::LineReader in(STDIN_FILENO, g_sig_pipe[0]);
        if (params->interactive) {
            if (params->auto_start)
                if (auto st = tp.start(params->tx_first); !st)
                    std::cout << st.error().message() << "\n";
            for (;;) {
                std::cout << testpmd::kPrompt << std::flush;
                auto line = in.next();
                if (!line) {
                    std::cout << "\n";
                    break;
                }
                if (!testpmd::execute(tp, *line, std::cout))
                    break;
            }
        } else if (auto st = tp.start(params->tx_first); !st) {
            std::fprintf(stderr, "%s\n", st.error().message().c_str());
            rc = 1;
        } else if (params->stats_period) {
            // As DPDK: print the stats every period until a signal.
            for (;;) {
                pollfd pf = {g_sig_pipe[0], POLLIN, 0};
                if (::poll(&pf, 1, static_cast<int>(params->stats_period * 1000)) > 0)
                    break;
                std::cout << "\nPort statistics ====================================";
                tp.show_port_stats(testpmd::Testpmd::kAll);
            }
        } else {
            std::cout << "Press enter to exit\n" << std::flush;
            (void)in.next();
        }
        if (int sig = received_signal())
            std::cout << strformat("\nSignal {} received, preparing to exit...\n", sig);
    }
    tp.close_ports();
    if (params->secondary)
        std::cout << strformat("mbuf pool mb_pool_0: {} of {} mbufs in the pool\n",
                               (*pool)->avail_count(), (*pool)->size());
    else if (auto ok = mbuf::MbufPool::destroy(*pool); !ok)
        std::fprintf(stderr, "testpmd: %s\n", ok.error().message().c_str());
    std::cout << "\nBye...\n" << std::flush;
    return rc;
}

}  // namespace

int main(int argc, char** argv) { return run(argc, argv); }

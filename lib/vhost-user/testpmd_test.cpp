// DPDK's testpmd as a real front end: its virtio_user port connects to our
// server, and a small software device in this test serves the transmit
// ring through the translated addresses, so testpmd's TX-packets count must
// equal the packets the device took off the ring. testpmd then quits, the
// server releases everything, and a second testpmd connects to the same
// path (reconnect).
//
// testpmd's memory must be shareable by fd: --no-huge gives memfd-backed
// memory (DPDK 19.02 and later), so no huge pages are needed. Without
// dpdk-testpmd on the host the test reports itself skipped, naming why.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "test_util.hpp"
#include "vfiokit/vhost_user/server.hpp"

extern char** environ;

namespace vfiokit::vhost_user {
namespace {

using namespace std::chrono_literals;
using namespace test;

// Split-ring layouts (virtio 1.1, 2.6.5 and 2.6.8).
struct Desc {
    std::uint64_t addr;
    std::uint32_t len;
    std::uint16_t flags;
    std::uint16_t next;
};
static_assert(sizeof(Desc) == 16);
constexpr std::uint16_t kDescNext = 1;
struct UsedElem {
    std::uint32_t id;
    std::uint32_t len;
};

std::string find_testpmd() {
    const char* path = std::getenv("PATH");
    std::stringstream ss(path ? path : "/usr/bin:/bin");
    for (std::string dir; std::getline(ss, dir, ':');) {
        const std::string p = dir + "/dpdk-testpmd";
        if (::access(p.c_str(), X_OK) == 0)
            return p;
    }
    return {};
}

// The first two CPUs this process may run on, as testpmd's "-l a,b" (its
// main lcore and one forwarding lcore); empty when there is only one.
std::string two_lcores() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(0, sizeof set, &set) != 0)
        return {};
    std::vector<int> cpus;
    for (int c = 0; c < CPU_SETSIZE && cpus.size() < 2; ++c)
        if (CPU_ISSET(c, &set))
            cpus.push_back(c);
    return cpus.size() == 2 ? std::to_string(cpus[0]) + "," + std::to_string(cpus[1]) : "";
}

// Whether `addr` lies inside any mapping of this process.
bool mapped(const void* addr) {
    const auto a = reinterpret_cast<std::uintptr_t>(addr);
    std::ifstream in("/proc/self/maps");
    for (std::string line; std::getline(in, line);) {
        std::uintptr_t lo = 0, hi = 0;
        if (std::sscanf(line.c_str(), "%lx-%lx", &lo, &hi) == 2 && a >= lo && a < hi)
            return true;
    }
    return false;
}

// Serves the transmit ring (vring 1) in software: takes each chain off the
// avail ring, reads the packet through gpa_to_hva, returns the chain on the
// used ring and signals the call eventfd. Records every Device call.
class SoftDevice : public RecordingDevice {
public:
    Result<void> vring_ready(const VringInfo& v) override {
        auto r = RecordingDevice::vring_ready(v);
        if (v.index == 1) {
            stop_ = false;
            last_ = v.base;
            worker_ = std::thread([this, v] { serve(v); });
        }
        return r;
    }
    std::uint16_t vring_stopped(unsigned index, StopReason why, std::uint16_t base) override {
        (void)RecordingDevice::vring_stopped(index, why, base);
        if (index != 1 || !worker_.joinable())
            return base;
        stop_ = true;
        worker_.join();  // the worker drains the ring before it exits
        return last_;
    }
    Result<void> memory_set(std::span<const Region> r) override {
        regions_.assign(r.begin(), r.end());
        return RecordingDevice::memory_set(r);
    }

    std::atomic<std::uint64_t> packets{0};
    std::atomic<std::uint64_t> bad{0};   // chains that did not translate or were not IPv4
    std::atomic<std::uint64_t> calls{0};

private:
    void serve(const VringInfo v) {
        auto* desc = static_cast<volatile Desc*>(v.desc.hva);
        auto* avail = static_cast<volatile std::uint16_t*>(v.avail.hva);  // flags, idx, ring[]
        auto* used_idx = static_cast<std::uint16_t*>(v.used.hva) + 1;
        auto* used_ring =
            reinterpret_cast<volatile UsedElem*>(static_cast<std::uint8_t*>(v.used.hva) + 4);
        std::uint16_t used = __atomic_load_n(used_idx, __ATOMIC_ACQUIRE);
        std::uint16_t last = last_;
        for (;;) {
            const bool stopping = stop_.load();
            const std::uint16_t head_idx =
                __atomic_load_n(const_cast<std::uint16_t*>(&avail[1]), __ATOMIC_ACQUIRE);
            bool any = false;
            while (last != head_idx) {
                const std::uint16_t head = avail[2 + last % v.num];
                std::uint8_t frame[64];
                std::size_t got = 0;
                std::uint32_t total = 0;
                bool ok = head < v.num;
                for (std::uint16_t i = head, hops = 0; ok && hops < v.num; ++hops) {
                    const Desc d{desc[i].addr, desc[i].len, desc[i].flags, desc[i].next};
                    const auto* buf =
                        static_cast<const std::uint8_t*>(gpa_to_hva(regions_, d.addr, d.len));
                    if (buf == nullptr) {
                        ok = false;
                        break;
                    }
                    for (std::uint32_t k = 0; k < d.len && got < sizeof frame; ++k)
                        frame[got++] = buf[k];
                    total += d.len;
                    if (!(d.flags & kDescNext))
                        break;
                    i = d.next;
                    ok = i < v.num;
                }
                // A virtio-net header (12 bytes with VERSION_1), then an
                // Ethernet frame carrying IPv4 (testpmd's txonly packets).
                if (!ok || got < 12 + 14 || frame[12 + 12] != 0x08 || frame[12 + 13] != 0x00)
                    ++bad;
                used_ring[used % v.num].id = head;
                used_ring[used % v.num].len = 0;
                ++used;
                ++last;
                ++packets;
                any = true;
            }
            if (any) {
                __atomic_store_n(used_idx, used, __ATOMIC_RELEASE);
                if (v.call_fd >= 0) {
                    std::uint64_t one = 1;
                    if (::write(v.call_fd, &one, sizeof one) == sizeof one)
                        ++calls;
                }
            } else if (stopping) {
                break;  // drained
            } else {
                std::this_thread::sleep_for(20us);
            }
        }
        last_ = last;
    }

    std::vector<Region> regions_;
    std::thread worker_;
    std::atomic<bool> stop_{false};
    std::uint16_t last_ = 0;
};

// testpmd in interactive mode, fed commands on stdin, its output collected.
class Testpmd {
public:
    Testpmd(const std::string& bin, const std::string& lcores, const std::string& sock, int id) {
        int in[2], out[2];
        EXPECT_EQ(::pipe2(in, O_CLOEXEC), 0);
        EXPECT_EQ(::pipe2(out, O_CLOEXEC), 0);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, in[0], 0);
        posix_spawn_file_actions_adddup2(&fa, out[1], 1);
        posix_spawn_file_actions_adddup2(&fa, out[1], 2);
        prefix_ = "vfiokit-vhost-" + std::to_string(::getpid()) + "-" +
                                   std::to_string(id);
        // stdbuf: testpmd's stdout is a pipe here, and block-buffered
        // statistics would only appear at exit.
        // --no-huge: memfd-backed memory the front end can share by fd;
        // --no-shconf: no runtime files left behind.
        std::vector<std::string> args = {"/usr/bin/stdbuf", "-oL", bin, "-l", lcores,
                                         "--no-huge", "-m", "256", "--no-pci", "--no-shconf",
                                         "--file-prefix", prefix_, "--vdev",
                                         "net_virtio_user0,path=" + sock + ",queues=1", "--", "-i",
                                         "--nb-cores=1", "--total-num-mbufs=2048"};
        std::vector<char*> argv;
        for (auto& a : args)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        spawned_ = posix_spawn(&pid_, args[0].c_str(), &fa, nullptr, argv.data(), environ) == 0;
        posix_spawn_file_actions_destroy(&fa);
        ::close(in[0]);
        ::close(out[1]);
        stdin_ = in[1];
        out_ = out[0];
        reader_ = std::thread([this] {
            char b[4096];
            for (ssize_t n; (n = ::read(out_, b, sizeof b)) > 0;) {
                std::lock_guard l(mu_);
                text_.append(b, static_cast<std::size_t>(n));
            }
        });
    }
    ~Testpmd() {
        if (pid_ > 0 && !reaped_) {
            ::kill(pid_, SIGKILL);
            (void)wait(5s);
        }
        if (stdin_ >= 0)
            ::close(stdin_);
        if (reader_.joinable())
            reader_.join();
        ::close(out_);
        // EAL makes a runtime directory named by the prefix even with
        // --no-shconf: /var/run/dpdk for root, else $XDG_RUNTIME_DIR/dpdk.
        std::error_code ec;
        std::filesystem::remove_all("/var/run/dpdk/" + prefix_, ec);
        if (const char* x = std::getenv("XDG_RUNTIME_DIR"))
            std::filesystem::remove_all(std::string(x) + "/dpdk/" + prefix_, ec);
    }
    bool spawned() const { return spawned_; }
    void send(const std::string& cmd) {
        EXPECT_EQ(::write(stdin_, cmd.data(), cmd.size()), static_cast<ssize_t>(cmd.size()));
    }
    std::string text() {
        std::lock_guard l(mu_);
        return text_;
    }
    bool wait_for_text(const std::string& s, std::chrono::seconds limit) {
        for (auto end = std::chrono::steady_clock::now() + limit;
             std::chrono::steady_clock::now() < end; std::this_thread::sleep_for(50ms))
            if (text().find(s) != std::string::npos)
                return true;
        return false;
    }
    // Whether it has exited (it is reaped then).
    bool exited() {
        int st = 0;
        if (!reaped_ && ::waitpid(pid_, &st, WNOHANG) == pid_) {
            reaped_ = true;
            status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        return reaped_;
    }
    // Exit status, or -1 if it did not exit in time.
    int wait(std::chrono::seconds limit) {
        for (auto end = std::chrono::steady_clock::now() + limit;
             std::chrono::steady_clock::now() < end; std::this_thread::sleep_for(50ms))
            if (exited())
                return status_;
        return -1;
    }

private:
    std::string prefix_;
    pid_t pid_ = -1;
    bool spawned_ = false;
    bool reaped_ = false;
    int status_ = -1;
    int stdin_ = -1, out_ = -1;
    std::thread reader_;
    std::mutex mu_;
    std::string text_;
};

// The number after `key` in the accumulated block of testpmd's "stop".
std::optional<std::uint64_t> accumulated(const std::string& out, const std::string& key) {
    auto at = out.rfind("Accumulated forward statistics for all ports");
    if (at == std::string::npos)
        return std::nullopt;
    at = out.find(key, at);
    if (at == std::string::npos)
        return std::nullopt;
    return std::strtoull(out.c_str() + at + key.size(), nullptr, 10);
}

template <class F>
bool eventually(F f, std::chrono::seconds limit) {
    for (auto end = std::chrono::steady_clock::now() + limit;
         std::chrono::steady_clock::now() < end; std::this_thread::sleep_for(20ms))
        if (f())
            return true;
    return f();
}

TEST(VhostUserTestpmd, HandshakeTrafficAndReconnect) {
    const std::string bin = find_testpmd();
    if (bin.empty())
        GTEST_SKIP() << "dpdk-testpmd not found in PATH: install Debian's dpdk package to run "
                        "the real front-end test";
    const std::string lcores = two_lcores();
    if (lcores.empty())
        GTEST_SKIP() << "testpmd needs two CPUs (a main and a forwarding lcore); this process "
                        "may run on one";
    char tmpl[] = "/tmp/vfiokit-vhost-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    const std::string dir = tmpl;
    const std::string sock = dir + "/vhost.sock";

    SoftDevice dev;
    Config cfg;  // VERSION_1, one queue pair
    auto srv = Server::listen(sock, dev, cfg);
    ASSERT_TRUE(srv) << srv.error().message();
    const int fds0 = open_fds();
    for (int round = 1; round <= 2; ++round) {
        SCOPED_TRACE("testpmd run " + std::to_string(round));
        // The server runs on its own thread while testpmd does; the test
        // reads the server's counters once that thread has stopped.
        std::atomic<bool> done{false};
        std::string server_error;
        std::thread loop([&] {
            while (!done) {
                auto r = srv->poll(50);
                if (!r) {
                    server_error = r.error().message();
                    return;
                }
            }
        });
        struct Joiner {  // stops the server thread however the round ends
            std::atomic<bool>& done;
            std::thread& t;
            ~Joiner() {
                done = true;
                if (t.joinable())
                    t.join();
            }
        } joiner{done, loop};
        std::array<std::uint64_t, kRequestSlots> handled_before{};
        for (std::size_t i = 0; i < kRequestSlots; ++i)
            handled_before[i] = srv->handled(static_cast<Request>(i));
        const std::uint64_t before = dev.packets.load();
        const std::uint64_t calls_before = dev.calls.load();
        std::size_t ready_before;
        {
            std::lock_guard l(dev.mu);
            ready_before = dev.ready.size();
        }
        std::optional<std::uint64_t> tx;
        {
            Testpmd t(bin, lcores, sock, round);
            ASSERT_TRUE(t.spawned());
            // The full handshake: both vrings of the queue pair run.
            const bool up = eventually(
                [&] {
                    std::lock_guard l(dev.mu);
                    return dev.ready.size() >= ready_before + 2 || t.exited();
                },
                120s);
            ASSERT_FALSE(t.exited()) << "testpmd exited early:\n" << t.text();
            ASSERT_TRUE(up) << "testpmd output:\n" << t.text();
            ASSERT_TRUE(t.wait_for_text("testpmd> ", 60s)) << t.text();
            {
                std::lock_guard l(dev.mu);
                EXPECT_NE(dev.features & bit(kFeatureVersion1), 0u);
                EXPECT_NE(dev.features & bit(kFeatureProtocolFeatures), 0u);
                ASSERT_FALSE(dev.regions.empty());
                for (const auto& r : dev.regions) {
                    EXPECT_GE(r.fd, 0);
                    EXPECT_TRUE(mapped(r.hva));
                }
                for (std::size_t i = ready_before; i < dev.ready.size(); ++i) {
                    const VringInfo& v = dev.ready[i];
                    EXPECT_LT(v.index, 2u);
                    EXPECT_GE(v.kick_fd, 0);
                    EXPECT_GE(v.call_fd, 0);
                    // virtio_user puts its virtual addresses in the guest
                    // address fields: GPA and UVA agree, and the ring's
                    // host address is inside a region's mapping.
                    EXPECT_EQ(v.desc.gpa, v.desc.uva);
                    EXPECT_EQ(gpa_to_hva(dev.regions, v.desc.gpa, desc_bytes(v.num)), v.desc.hva);
                    EXPECT_EQ(gpa_to_hva(dev.regions, v.used.gpa, 4), v.used.hva);
                }
            }
            t.send("set fwd txonly\nstart\n");
            std::this_thread::sleep_for(2s);
            t.send("stop\n");
            ASSERT_TRUE(t.wait_for_text("Accumulated forward statistics for all ports", 30s))
                << t.text();
            // The prompt after the stats block: it is all printed.
            ASSERT_TRUE(eventually(
                [&] {
                    const std::string o = t.text();
                    return o.find("testpmd> ", o.rfind("Accumulated forward statistics")) !=
                           std::string::npos;
                },
                30s))
                << t.text();
            t.send("quit\n");
            ASSERT_EQ(t.wait(60s), 0) << t.text();
            ASSERT_TRUE(eventually(
                [&] {
                    std::lock_guard l(dev.mu);
                    return dev.disconnects == round;
                },
                30s))
                << "the server did not see testpmd go";
            tx = accumulated(t.text(), "TX-packets:");
            ASSERT_TRUE(tx) << t.text();
        }
        done = true;
        loop.join();
        EXPECT_TRUE(server_error.empty()) << server_error;

        const std::uint64_t seen = dev.packets.load() - before;
        std::printf("testpmd run %d: testpmd TX-packets %llu, device took %llu off the ring, "
                    "%llu call signals, %llu bad chains\n",
                    round, static_cast<unsigned long long>(*tx),
                    static_cast<unsigned long long>(seen),
                    static_cast<unsigned long long>(dev.calls.load() - calls_before),
                    static_cast<unsigned long long>(dev.bad.load()));
        EXPECT_GT(*tx, 0u);
        EXPECT_EQ(seen, *tx);
        EXPECT_EQ(dev.bad.load(), 0u);
        // The requests of the handshake and of the stop, as the server
        // counted them for this connection.
        std::string counts;
        auto n = [&](Request r) {
            return srv->handled(r) - handled_before[static_cast<std::size_t>(r)];
        };
        for (std::size_t i = 0; i < kRequestSlots; ++i)
            if (const auto k = n(static_cast<Request>(i)); k > 0)
                counts += " " + std::string(to_string(static_cast<Request>(i))) + "=" +
                          std::to_string(k);
        std::printf("testpmd run %d requests:%s\n", round, counts.c_str());
        EXPECT_GE(n(Request::get_features), 1u);
        EXPECT_GE(n(Request::set_features), 1u);
        EXPECT_GE(n(Request::set_protocol_features), 1u);
        EXPECT_GE(n(Request::set_mem_table), 1u);
        EXPECT_GE(n(Request::set_vring_num), 2u);
        EXPECT_GE(n(Request::set_vring_addr), 2u);
        EXPECT_GE(n(Request::set_vring_kick), 2u);
        EXPECT_GE(n(Request::set_vring_call), 2u);
        EXPECT_GE(n(Request::set_vring_enable), 2u);
        EXPECT_EQ(n(Request::get_vring_base), 2u);  // testpmd stopping both rings
        {
            std::lock_guard l(dev.mu);
            EXPECT_EQ(dev.disconnects, round);
            // The mapped regions are gone with the session.
            for (const auto& r : dev.regions)
                EXPECT_FALSE(mapped(r.hva)) << "region at " << r.hva << " still mapped";
        }
        EXPECT_EQ(srv->accepted(), static_cast<unsigned>(round));
        EXPECT_EQ(srv->ended(), static_cast<unsigned>(round));
        EXPECT_EQ(srv->last_end(), "peer closed");
        // testpmd's pipes are closed, and every fd the session held
        // (socket, region fds, eventfds) is closed too.
        EXPECT_EQ(open_fds(), fds0);
    }
    {
        std::lock_guard l(dev.mu);
        std::string all;
        for (const auto& e : dev.events)
            all += e + "; ";
        std::printf("device events: %s\n", all.c_str());
    }
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace vfiokit::vhost_user

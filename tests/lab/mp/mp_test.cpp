// Multi-process on the real kernel, in the lab guest, once per VFIO mode:
// a primary (Eal::init -m 64 --file-prefix) serves its memory; secondaries,
// fork+exec'd from this same binary so that each is a fresh process image,
// attach at the same addresses and write into the primary's heap.
//
//   VFIOKIT_VFIO_MODE=cdev VFIOKIT_LAB_SHAPE=iommu mp_lab_test
//
// Roles (argv[1]); without one, the gtest run:
//   --secondary SCENARIO --file-prefix P [--addr VA --len N --t0 NS]
//   --primary run --file-prefix P --ready-fd N   a primary in its own process
//   --as-nobody run --file-prefix P               connect as uid 65534
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include <gtest/gtest.h>

#include <charconv>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <future>
#include <map>

#include "lab_env.hpp"
#include "mp_test_util.hpp"
#include "vfiokit/eal/eal.hpp"
#include "vfiokit/eal/mp.hpp"

namespace vfiokit::eal::mp {
namespace {

using namespace std::chrono_literals;
using testing::mode_label;
using test::Pipe;

std::uint64_t now_ns() {
    timespec t{};
    ::clock_gettime(CLOCK_MONOTONIC, &t);  // one clock for every process
    return static_cast<std::uint64_t>(t.tv_sec) * 1000000000ULL + static_cast<std::uint64_t>(t.tv_nsec);
}

std::string prefix_for(std::string_view what) { return "mp-" + mode_label() + "-" + std::string(what); }

bool contains(const std::string& s, std::string_view what) { return s.find(what) != s.npos; }

// A primary: EAL, lock, server with the runtime handlers. Member order is
// teardown order reversed: the server goes first (its handlers use the
// EAL's memory), then the lock, then the EAL.
struct Primary {
    std::unique_ptr<Eal> eal;
    RuntimeDir dir;            // for its paths; Eal::init holds the lock
    Server* server = nullptr;  // Eal's: serves eal.memory, eal.info, eal.vfio
    std::uint64_t up_ns = 0;   // when the server started: "primary up"
};

Result<std::unique_ptr<Primary>> start_primary(const std::string& prefix) {
    const char* argv[] = {"mp_lab_test", "-m", "64", "--proc-type=primary", "--file-prefix",
                          prefix.c_str()};
    Options o;
    if (auto ok = parse_options(6, argv, o); !ok)  // VFIOKIT_VFIO_MODE comes in here
        return fail(std::move(ok.error()));
    auto p = std::make_unique<Primary>();
    auto d = open_runtime_dir(o.file_prefix);
    if (!d)
        return fail(std::move(d.error()));
    p->dir = *d;
    // Runtime directory, lock, and the channel with the runtime and VFIO
    // handlers: all Eal::init's work for a primary.
    auto e = Eal::init(o);
    if (!e)
        return fail(std::move(e.error()));
    p->eal = std::move(*e);
    // cdev no-IOMMU: the kernel pins memory, and reports where it lies,
    // only while a device is attached: the primary takes the edu (the job
    // binds it), so its pages have physical addresses for the secondaries
    // (whose own pagemap must agree) to compare with.
    if (vfio::Container& dc = p->eal->vfio().default_container(); dc.reports_physical())
        if (auto a = p->eal->vfio().assign_device(dc, "0000:00:03.0"); !a)
            return fail(std::move(a.error()));
    p->server = p->eal->server();
    if (p->server == nullptr)
        return fail(EINVAL, "Eal::init with --proc-type=primary started no server");
    p->server->handle("test.exit", [](const Request&, const Peer&) -> Result<Reply> {
        std::exit(0);  // a primary's orderly exit, for the role below
    });
    p->up_ns = now_ns();
    return p;
}

// ---------------------------------------------------------------------------
// Roles run in child processes

// Every role argument is "--name value".
std::map<std::string, std::string> args_of(int argc, char** argv) {
    std::map<std::string, std::string> a;
    for (int i = 1; i + 1 < argc; i += 2)
        a[argv[i]] = argv[i + 1];
    return a;
}

std::uint64_t num(const std::string& s) {
    std::uint64_t v = 0;
    const int base = s.starts_with("0x") ? 16 : 10;
    std::from_chars(s.data() + (base == 16 ? 2 : 0), s.data() + s.size(), v, base);
    return v;
}

int die(const Error& e, int code) {
    std::fprintf(stderr, "%s\n", e.message().c_str());
    return code;
}

// A secondary: --proc-type=secondary semantics, channel, memory at the
// primary's addresses. Scenarios: "write" fills [addr, addr+len) and
// reports; "slow" sends a request that takes long (the test kills it
// meanwhile); "watch" waits for the primary's death and prints the error.
int secondary_main(const std::map<std::string, std::string>& a) {
    const std::uint64_t exec_ns = now_ns();
    const std::string& scenario = a.at("--secondary");
    auto dir = open_runtime_dir(a.at("--file-prefix"));
    if (!dir)
        return die(dir.error(), 10);
    auto role = claim_role(ProcType::secondary, *dir);
    if (!role)
        return die(role.error(), 11);
    auto c = Client::connect(*dir);
    if (!c)
        return die(c.error(), 12);
    if (scenario == "slow") {
        auto r = (*c)->request("test.slow", "", {}, 30s);
        return r ? 0 : die(r.error(), 13);
    }
    auto mem = attach_memory(**c);
    if (!mem)
        return die(mem.error(), 14);
    const std::uint64_t attached_ns = now_ns();
    // (VFIO state comes with kVfioRequest: Eal::init does it for a
    // secondary; tests/lab/mp/device_test.cpp DMAs through it.)
    if (scenario == "write") {
        auto* p = reinterpret_cast<unsigned char*>(num(a.at("--addr")));
        const std::uint64_t len = num(a.at("--len"));
        for (std::uint64_t i = 0; i < len; ++i)
            p[i] = static_cast<unsigned char>(i * 7 + 1);
        const auto iova = (*mem)->virt2iova(p);
        const std::uint64_t attach_ms = (attached_ns - num(a.at("--t0"))) / 1000000;
        std::printf("secondary attach time: %llu ms (exec to attached: %llu ms)\n",
                    static_cast<unsigned long long>(attach_ms),
                    static_cast<unsigned long long>((attached_ns - exec_ns) / 1000000));
        std::fflush(stdout);
        char report[96];
        std::snprintf(report, sizeof report, "iova=0x%llx attach_ms=%llu",
                      static_cast<unsigned long long>(iova.value_or(0)),
                      static_cast<unsigned long long>(attach_ms));
        auto r = (*c)->request("test.report", report);
        return r ? 0 : die(r.error(), 15);
    }
    if (scenario == "watch") {
        std::promise<std::string> gone;
        if (auto ok = (*c)->watch([&](const Error& e) { gone.set_value(e.message()); }); !ok)
            return die(ok.error(), 16);
        std::printf("attached\n");
        std::fflush(stdout);
        auto f = gone.get_future();
        if (f.wait_for(20s) != std::future_status::ready)
            return 17;
        std::printf("%s\n", f.get().c_str());
        auto r = (*c)->request("test.echo");
        if (r)
            return 18;
        std::printf("%s\n", r.error().message().c_str());
        return (*c)->primary_alive() ? 19 : 0;
    }
    return 20;
}

int primary_main(const std::map<std::string, std::string>& a) {
    auto p = start_primary(a.at("--file-prefix"));
    if (!p)
        return die(p.error(), 30);
    test::signal_ready(static_cast<int>(num(a.at("--ready-fd"))));
    for (;;)
        ::pause();
}

// 1: connect refused by the directory's permissions; 2: the primary closed
// the connection; 0: served.
int nobody_main(const std::map<std::string, std::string>& a) {
    // The path root uses (nobody's default would differ). Not
    // open_runtime_dir(): the test opened the directory up on purpose, and
    // open_runtime_dir() refuses such a directory.
    auto base = default_runtime_base();
    if (!base)
        return die(base.error(), 40);
    const RuntimeDir dir{a.at("--file-prefix"), *base + "/" + a.at("--file-prefix"), nullptr};
    if (::setgid(65534) != 0 || ::setuid(65534) != 0)
        return 41;
    auto c = Client::connect(dir);
    if (!c)
        return c.error().err() == EACCES ? 1 : die(c.error(), 42);
    auto r = (*c)->request(kInfoRequest, "", {}, 5s);
    if (r)
        return 0;
    return contains(r.error().message(), "closed this connection") ? 2 : die(r.error(), 43);
}

// ---------------------------------------------------------------------------
// The gtest side

struct Child {
    pid_t pid = -1;
    vfio::Fd out;  // its stdout and stderr, when captured
    std::string read_all() {
        std::string s;
        char b[4096];
        ssize_t n;
        while (out && (n = ::read(out.get(), b, sizeof b)) > 0)
            s.append(b, static_cast<std::size_t>(n));
        return s;
    }
};

// fork + exec of this binary: a fresh image, as a real secondary is. argv is
// built before fork (after fork only async-signal-safe calls: the parent has
// threads).
Child spawn(std::vector<std::string> args, bool capture, int keep_fd = -1) {
    args.insert(args.begin(), "mp_lab_test");
    std::vector<char*> argv;
    for (auto& s : args)
        argv.push_back(s.data());
    argv.push_back(nullptr);
    Pipe out;
    Child c;
    c.pid = ::fork();
    if (c.pid == 0) {
        if (capture) {
            ::dup2(out.w.get(), 1);
            ::dup2(out.w.get(), 2);
        }
        if (keep_fd >= 0)
            ::fcntl(keep_fd, F_SETFD, 0);
        ::execv("/proc/self/exe", argv.data());
        ::_exit(127);
    }
    if (capture)
        c.out = std::move(out.r);
    return c;
}

class Mp : public ::testing::TestWithParam<std::string> {
protected:
    void start(std::string_view what) {
        auto p = start_primary(prefix_for(what));
        ASSERT_TRUE(p) << p.error().message();
        primary = std::move(*p);
        primary->server->handle("test.report", [this](const Request& q, const Peer&) -> Result<Reply> {
            std::lock_guard g(mu);
            report = q.payload;
            return Reply{};
        });
        primary->server->handle("test.echo", [](const Request& q, const Peer&) -> Result<Reply> {
            return Reply{q.payload, {}, {}};
        });
    }
    // A "write" secondary into a fresh heap buffer; checks what it wrote.
    void attach_and_write(std::uint64_t t0) {
        auto buf = primary->eal->heap().alloc(8192);
        ASSERT_TRUE(buf) << buf.error().message();
        auto* p = static_cast<unsigned char*>(*buf);
        std::memset(p, 0, 8192);
        Child c = spawn({"--secondary", "write", "--file-prefix", primary->dir.prefix, "--addr",
                         std::to_string(reinterpret_cast<std::uint64_t>(p)), "--len", "8192",
                         "--t0", std::to_string(t0)},
                        false);
        ASSERT_EQ(test::wait_child(c.pid), 0);
        for (int i = 0; i < 8192; ++i)
            ASSERT_EQ(p[i], static_cast<unsigned char>(i * 7 + 1)) << "byte " << i;
        char iova[64];
        std::snprintf(iova, sizeof iova, "iova=0x%llx ",
                      static_cast<unsigned long long>(primary->eal->virt2iova(p).value_or(1)));
        std::lock_guard g(mu);
        EXPECT_TRUE(contains(report, iova)) << "secondary: " << report << ", primary: " << iova;
        (void)primary->eal->heap().free(p);
    }
    // Before `primary`: its server's handlers use them until it stops.
    std::mutex mu;
    std::string report;
    std::unique_ptr<Primary> primary;
};

TEST_P(Mp, SecondaryWritesIntoThePrimarysHeap) {
    start("write");
    attach_and_write(primary->up_ns);
    std::lock_guard g(mu);
    std::printf("[%s] %s\n", mode_label().c_str(), report.c_str());
}

TEST_P(Mp, ASecondPrimaryFailsAndAutoBecomesSecondary) {
    start("roles");
    auto second = claim_role(ProcType::primary, primary->dir);
    ASSERT_FALSE(second);
    EXPECT_TRUE(contains(second.error().message(), "a primary with prefix " + primary->dir.prefix +
                                                       " is running (pid " +
                                                       std::to_string(::getpid()) + ")"))
        << second.error().message();
    auto aut = claim_role(ProcType::automatic, primary->dir);
    ASSERT_TRUE(aut);
    EXPECT_EQ(aut->type, ProcType::secondary);
    struct stat st {};
    ASSERT_EQ(::stat(primary->dir.path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    EXPECT_EQ(primary->dir.path, "/var/run/vfiokit/" + primary->dir.prefix);
    ASSERT_EQ(::stat(primary->dir.socket_path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_P(Mp, SecondaryKilledMidRequestThenANewOneAttaches) {
    start("kill");
    std::mutex m;
    std::condition_variable cv;
    bool entered = false;
    primary->server->handle("test.slow", [&](const Request&, const Peer&) -> Result<Reply> {
        {
            std::lock_guard g(m);
            entered = true;
        }
        cv.notify_all();
        std::this_thread::sleep_for(500ms);
        return Reply{"nobody to read this", {}, {}};
    });
    primary->server->set_logger([](std::string_view l) { std::printf("primary log: %.*s\n", static_cast<int>(l.size()), l.data()); });
    Child c = spawn({"--secondary", "slow", "--file-prefix", primary->dir.prefix}, false);
    {
        std::unique_lock g(m);
        ASSERT_TRUE(cv.wait_for(g, 30s, [&] { return entered; }));
    }
    ::kill(c.pid, SIGKILL);
    EXPECT_EQ(test::wait_child(c.pid), 128 + SIGKILL);
    EXPECT_TRUE(test::wait_until([&] { return primary->server->stats().send_failed == 1; }, 5000));
    attach_and_write(now_ns());
}

TEST_P(Mp, MalformedMessagesAndOtherUsersAreRejected) {
    start("reject");
    primary->server->set_logger([](std::string_view l) { std::printf("primary log: %.*s\n", static_cast<int>(l.size()), l.data()); });
    const std::string path = primary->dir.socket_path();
    auto raw_connect = [&] {
        vfio::Fd s(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::memcpy(a.sun_path, path.c_str(), path.size());
        EXPECT_EQ(::connect(s.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a), 0);
        return s;
    };
    EXPECT_TRUE(test::wait_until([&] { return primary->server->stats().open == 0; }));
    const int fds_before = testing::open_fds();
    auto bad_magic = test::echo_header();
    bad_magic.magic = 0x12345678;
    const std::vector<std::pair<std::string, int>> forged = {
        {test::header_bytes(bad_magic), 0},
        {test::header_bytes(test::echo_header(0, 1)), 3},                  // more fds than declared
        {test::header_bytes(test::echo_header(kMaxPayload + 1)), 0},      // oversized declaration
        {std::string(kMaxPayload + 200, 'o'), 0},                          // longer than any message
        {std::string(7, 's'), 0},                                          // short
    };
    for (const auto& [bytes, nfds] : forged) {
        vfio::Fd s = raw_connect();
        Pipe p;
        std::vector<int> fds(static_cast<std::size_t>(nfds), p.w.get());
        ASSERT_TRUE(test::raw_send(s.get(), bytes, fds));
        p.w.reset();
        EXPECT_TRUE(test::closed_by_peer(s.get()));
        EXPECT_TRUE(test::write_ends_closed(p.r.get())) << "the primary kept a received fd";
    }
    EXPECT_EQ(primary->server->stats().malformed, forged.size());
    EXPECT_TRUE(test::wait_until([&] { return primary->server->stats().open == 0; }));
    EXPECT_EQ(testing::open_fds(), fds_before) << "no fd left behind in the primary";

    // uid 65534: the 0700 directory stops it first; opened up, SO_PEERCRED does.
    Child closed = spawn({"--as-nobody", "run", "--file-prefix", primary->dir.prefix}, false);
    EXPECT_EQ(test::wait_child(closed.pid), 1);
    const std::string base = primary->dir.path.substr(0, primary->dir.path.rfind('/'));
    ASSERT_EQ(::chmod(base.c_str(), 0711), 0);
    ASSERT_EQ(::chmod(primary->dir.path.c_str(), 0711), 0);
    ASSERT_EQ(::chmod(path.c_str(), 0666), 0);
    Child rejected = spawn({"--as-nobody", "run", "--file-prefix", primary->dir.prefix}, false);
    const int rc = test::wait_child(rejected.pid);
    ::chmod(path.c_str(), 0600);
    ::chmod(primary->dir.path.c_str(), 0700);
    ::chmod(base.c_str(), 0700);
    EXPECT_EQ(rc, 2);
    EXPECT_EQ(primary->server->stats().rejected_uid, 1u);
    // Still serving.
    attach_and_write(now_ns());
}

TEST_P(Mp, SecondaryNoticesThePrimarysExit) {
    for (const bool crash : {true, false}) {
        SCOPED_TRACE(crash ? "SIGKILL" : "exit");
        const std::string prefix = prefix_for(crash ? "crash" : "exit");
        Pipe ready;
        Child p = spawn({"--primary", "run", "--file-prefix", prefix, "--ready-fd",
                         std::to_string(ready.w.get())},
                        false, ready.w.get());
        ready.w.reset();
        ASSERT_TRUE(test::await_ready(ready.r.get(), 60000));
        Child s = spawn({"--secondary", "watch", "--file-prefix", prefix}, true);
        // Wait for "attached" before the primary goes.
        std::string out;
        char b[256];
        while (!contains(out, "attached\n")) {
            ssize_t n = ::read(s.out.get(), b, sizeof b);
            ASSERT_GT(n, 0) << out;
            out.append(b, static_cast<std::size_t>(n));
        }
        if (crash) {
            ::kill(p.pid, SIGKILL);
        } else {
            auto d = open_runtime_dir(prefix);
            ASSERT_TRUE(d);
            auto c = Client::connect(*d);
            ASSERT_TRUE(c);
            (void)(*c)->request("test.exit", "", {}, 1s);  // no reply: it exits
        }
        EXPECT_EQ(test::wait_child(p.pid), crash ? 128 + SIGKILL : 0);
        EXPECT_EQ(test::wait_child(s.pid), 0);
        out += s.read_all();
        const std::string expect =
            "primary (pid " + std::to_string(p.pid) + ", prefix " + prefix + ") has exited";
        EXPECT_TRUE(contains(out, expect)) << out;
        std::printf("%s", out.c_str());
    }
}

TEST_P(Mp, ProcinfoReportsThePrimary) {
    start("procinfo");
    for (const bool json : {false, true}) {
        const std::string cmd = "vfiokit-procinfo --file-prefix " + primary->dir.prefix +
                                (json ? " --json" : "") + " 2>&1";
        FILE* f = ::popen(cmd.c_str(), "r");
        ASSERT_NE(f, nullptr);
        std::string out;
        char b[4096];
        for (std::size_t n; (n = std::fread(b, 1, sizeof b, f)) > 0;)
            out.append(b, n);
        ASSERT_EQ(::pclose(f), 0) << out;
        std::printf("%s", out.c_str());
        const std::string mode(vfio::to_string(primary->eal->vfio().mode()));
        const std::string iova = primary->eal->iova_mode() == IovaMode::pa ? "pa" : "va";
        if (json) {
            EXPECT_TRUE(contains(out, "\"pid\": " + std::to_string(::getpid()))) << out;
            EXPECT_TRUE(contains(out, "\"mode\": \"" + mode + "\"")) << out;
            EXPECT_TRUE(contains(out, "\"iova_mode\": \"" + iova + "\"")) << out;
            EXPECT_TRUE(contains(out, "\"segment_count\": 1")) << out;
        } else {
            EXPECT_TRUE(contains(out, "pid " + std::to_string(::getpid()))) << out;
            EXPECT_TRUE(contains(out, "vfio mode    " + mode)) << out;
            EXPECT_TRUE(contains(out, "64 MiB")) << out;
        }
    }
}

// A secondary's DMA through the primary's devices (VFIO fds over this
// channel) is tested in tests/lab/mp/device_test.cpp, which can use the
// edu driver.

INSTANTIATE_TEST_SUITE_P(Lab, Mp, ::testing::Values(mode_label()),
                         [](const auto& p) { return p.param; });

}  // namespace
}  // namespace vfiokit::eal::mp

int main(int argc, char** argv) {
    using namespace vfiokit::eal::mp;
    if (argc >= 2) {
        const std::string_view role = argv[1];
        if (role == "--secondary")
            return secondary_main(args_of(argc, argv));
        if (role == "--primary")
            return primary_main(args_of(argc, argv));
        if (role == "--as-nobody")
            return nobody_main(args_of(argc, argv));
    }
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}

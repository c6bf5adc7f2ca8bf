// The telemetry socket on the host: the hello, commands, and what a
// misbehaving client gets (malformed and oversized requests, one client
// too many, an idle client, a client that never reads, another uid),
// while the others keep being served.
#include <gtest/gtest.h>

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "json_check.hpp"
#include "vfiokit/eal/vfio/syscalls.hpp"
#include "vfiokit/telemetry/telemetry.hpp"

namespace vfiokit::telemetry {
namespace {

using namespace std::chrono_literals;
using testing::valid_json;
using vfio::Fd;

// A client as DPDK's dpdk-telemetry.py is one: SEQPACKET, one message per
// command, replies read whole.
class Client {
public:
    explicit Client(const std::string& path) {
        fd_ = Fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        path.copy(a.sun_path, sizeof a.sun_path - 1);
        connected_ = ::connect(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    }
    bool connected() const { return connected_; }
    bool send(std::string_view m) {
        return ::send(fd_.get(), m.data(), m.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(m.size());
    }
    // The next message; "" at EOF, "<timeout>" when none came in time.
    std::string recv(std::chrono::milliseconds wait = 5s) {
        pollfd p{fd_.get(), POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(wait.count())) <= 0)
            return "<timeout>";
        std::string buf(kMaxOutput + 1, '\0');
        const ssize_t n = ::recv(fd_.get(), buf.data(), buf.size(), 0);
        buf.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
        return buf;
    }
    std::string ask(std::string_view m) { return send(m) ? recv() : "<send failed>"; }
    int fd() const { return fd_.get(); }

private:
    Fd fd_;
    bool connected_ = false;
};

class TelemetryServerTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() /
               ("vfiokit-telemetry-test-" + std::to_string(::getpid()));
        std::filesystem::remove_all(dir_);
        ASSERT_TRUE(c_.add("/test/echo", "echo", [](std::string_view p) -> Result<Json> {
            return Json(p);
        }));
        // 60 KiB: a few fill a socket's send buffer.
        ASSERT_TRUE(c_.add("/test/big", "big", [](std::string_view) -> Result<Json> {
            return Json(std::string(60 * 1024, 'b'));
        }));
    }
    void TearDown() override {
        server_.reset();
        std::filesystem::remove_all(dir_);
    }
    Server& start(ServerOptions o = {}) {
        auto s = Server::listen_in(dir_.string(), c_, std::move(o));
        EXPECT_TRUE(s) << (s ? "" : s.error().message());
        server_ = std::move(*s);
        return *server_;
    }
    // Waits until the server's counters satisfy `pred` (its thread runs
    // apart from the test's).
    template <class Pred>
    bool until(Pred pred) {
        for (int i = 0; i < 500; ++i) {
            if (pred(server_->stats()))
                return true;
            std::this_thread::sleep_for(10ms);
        }
        return false;
    }
    std::filesystem::path dir_;
    Commands c_;
    std::unique_ptr<Server> server_;
};

TEST_F(TelemetryServerTest, HelloThenOneReplyPerCommand) {
    Server& s = start();
    EXPECT_EQ(s.path(), (dir_ / "dpdk_telemetry.v2").string());
    EXPECT_EQ(s.instance(), 0u);
    struct stat st {};
    ASSERT_EQ(::stat(dir_.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    ASSERT_EQ(::stat(s.path().c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0600u);

    Client cl(s.path());
    ASSERT_TRUE(cl.connected());
    EXPECT_EQ(cl.recv(), hello_message(version_string(), ::getpid()));
    EXPECT_EQ(cl.ask("/test/echo,hi"), R"({"/test/echo":"hi"})");
    EXPECT_EQ(cl.ask("/"), R"({"/":["/","/help","/info","/test/big","/test/echo"]})");
    EXPECT_TRUE(until([](const Server::Stats& x) { return x.requests == 2 && x.open == 1; }));
}

TEST_F(TelemetryServerTest, MalformedAndOversizedRequestsGetErrorsAndKeepTheConnection) {
    Server& s = start();
    Client cl(s.path());
    ASSERT_TRUE(cl.connected());
    cl.recv();
    const std::string bad = cl.ask(std::string_view("\xff\x00/x", 4));
    EXPECT_TRUE(bad.starts_with(R"({"error":"telemetry request: byte 0xff at offset 0)")) << bad;
    const std::string big = cl.ask(std::string(5000, '/'));
    EXPECT_TRUE(big.starts_with(R"({"error":"telemetry request: 5000 bytes, longer than the 1023)"))
        << big;
    EXPECT_TRUE(valid_json(bad) && valid_json(big));
    EXPECT_EQ(cl.ask("/test/echo,after"), R"({"/test/echo":"after"})");
    EXPECT_TRUE(until([](const Server::Stats& x) { return x.malformed == 2 && x.requests == 3; }));
}

TEST_F(TelemetryServerTest, OneClientTooManyIsToldAndClosed) {
    ServerOptions o;
    o.max_clients = 3;
    Server& s = start(o);
    std::vector<std::unique_ptr<Client>> cls;
    for (int i = 0; i < 3; ++i) {
        cls.push_back(std::make_unique<Client>(s.path()));
        ASSERT_TRUE(cls.back()->recv().starts_with(R"({"version":)"));
    }
    Client extra(s.path());
    ASSERT_TRUE(extra.connected());
    EXPECT_EQ(extra.recv(), R"({"error":"telemetry: 3 clients are connected, the most this )"
                            R"(process serves; try again when one has left"})");
    EXPECT_EQ(extra.recv(), "");  // closed
    EXPECT_TRUE(until([](const Server::Stats& x) { return x.refused_full == 1; }));
    // The three are still served; once one leaves, a newcomer is.
    EXPECT_EQ(cls[2]->ask("/test/echo,3"), R"({"/test/echo":"3"})");
    cls.pop_back();
    EXPECT_TRUE(until([](const Server::Stats& x) { return x.open == 2; }));
    Client next(s.path());
    EXPECT_TRUE(next.recv().starts_with(R"({"version":)"));
    EXPECT_EQ(next.ask("/test/echo,n"), R"({"/test/echo":"n"})");
}

TEST_F(TelemetryServerTest, IdleClientIsClosedOthersAreNot) {
    ServerOptions o;
    o.idle_timeout = 300ms;
    Server& s = start(o);
    Client idle(s.path()), busy(s.path());
    idle.recv();
    busy.recv();
    const auto t0 = std::chrono::steady_clock::now();
    // busy keeps talking past the idle client's deadline.
    for (int i = 0; i < 8; ++i) {
        std::this_thread::sleep_for(100ms);
        ASSERT_EQ(busy.ask("/test/echo,x"), R"({"/test/echo":"x"})");
    }
    const std::string bye = idle.recv(2s);
    EXPECT_EQ(bye, R"({"error":"telemetry: closing a connection idle for 300 ms"})");
    EXPECT_EQ(idle.recv(2s), "");
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 300ms);
    EXPECT_TRUE(until([](const Server::Stats& x) { return x.idle_closed == 1 && x.open == 1; }));
    EXPECT_EQ(busy.ask("/test/echo,y"), R"({"/test/echo":"y"})");
}

// A client that sends and never reads cannot stall the thread: once its
// socket holds no more, it is closed, and the others were answered all
// along.
TEST_F(TelemetryServerTest, ClientThatNeverReadsIsDroppedWithoutStallingOthers) {
    Server& s = start();
    Client greedy(s.path()), polite(s.path());
    greedy.recv();
    polite.recv();
    for (int i = 0; i < 64 && greedy.send("/test/big"); ++i)
        ;
    EXPECT_TRUE(until([](const Server::Stats& x) { return x.send_failed == 1; }));
    EXPECT_EQ(polite.ask("/test/echo,ok"), R"({"/test/echo":"ok"})");
    EXPECT_TRUE(until([](const Server::Stats& x) { return x.open == 1; }));
}

TEST_F(TelemetryServerTest, InstancesLikeDpdkAndStaleSocketsReplaced) {
    Server& first = start();
    auto second = Server::listen_in(dir_.string(), c_);
    ASSERT_TRUE(second) << second.error().message();
    EXPECT_EQ((*second)->path(), first.path() + ":1");
    EXPECT_EQ((*second)->instance(), 1u);
    auto clash = Server::listen(first.path(), c_);
    ASSERT_FALSE(clash);
    EXPECT_EQ(clash.error().err(), EADDRINUSE);
    Client cl((*second)->path());
    EXPECT_TRUE(cl.recv().starts_with(R"({"version":)"));
    second->reset();
    EXPECT_FALSE(std::filesystem::exists(first.path() + ":1"));

    // A socket file left by a process that died: bound, never listened.
    const std::string stale = (dir_ / "stale").string();
    {
        Fd s(::socket(AF_UNIX, SOCK_SEQPACKET, 0));
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        stale.copy(a.sun_path, sizeof a.sun_path - 1);
        ASSERT_EQ(::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    }
    auto over = Server::listen(stale, c_);
    ASSERT_TRUE(over) << over.error().message();
    Client again(stale);
    EXPECT_TRUE(again.recv().starts_with(R"({"version":)"));
}

TEST_F(TelemetryServerTest, ClosesClientsAndUnlinksWhenDestroyed) {
    Server& s = start();
    const std::string path = s.path();
    Client cl(path);
    cl.recv();
    server_.reset();
    EXPECT_EQ(cl.recv(2s), "");
    EXPECT_FALSE(std::filesystem::exists(path));
}

TEST_F(TelemetryServerTest, BadPathsSayWhy) {
    auto longp = Server::listen("/tmp/" + std::string(200, 'x'), c_);
    ASSERT_FALSE(longp);
    EXPECT_EQ(longp.error().err(), ENAMETOOLONG);
    ServerOptions zero;
    zero.max_clients = 0;
    EXPECT_EQ(Server::listen((dir_ / "z").string(), c_, zero).error().err(), EINVAL);
    auto nodir = Server::listen("/nonexistent-dir/sock", c_);
    ASSERT_FALSE(nodir);
    EXPECT_EQ(nodir.error().err(), ENOENT);
}

TEST_F(TelemetryServerTest, AnotherUidIsRefused) {
    if (::geteuid() != 0)
        GTEST_SKIP() << "needs root to connect as another uid";
    Server& s = start();
    // The directory and socket keep other users out already; open them so
    // that the peer check is what refuses.
    ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
    ASSERT_EQ(::chmod(s.path().c_str(), 0666), 0);
    int pipefd[2];
    ASSERT_EQ(::pipe(pipefd), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        ::close(pipefd[0]);
        if (::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0)
            ::_exit(2);
        Client cl(s.path());
        std::string r = cl.connected() ? cl.recv() : "<no connect>";
        r += "|" + cl.recv();  // then EOF
        [[maybe_unused]] ssize_t w = ::write(pipefd[1], r.data(), r.size());
        ::_exit(0);
    }
    ::close(pipefd[1]);
    std::string got(512, '\0');
    const ssize_t n = ::read(pipefd[0], got.data(), got.size());
    got.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    ::close(pipefd[0]);
    int status = 0;
    ::waitpid(child, &status, 0);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    EXPECT_EQ(got, R"({"error":"telemetry: uid 65534 is not served here"}|)");
    EXPECT_TRUE(until([](const Server::Stats& x) { return x.refused_uid == 1; }));
}

TEST(TelemetryRuntimeDir, DpdkRules) {
    const char* old = std::getenv("RUNTIME_DIRECTORY");
    const std::string saved = old ? old : "";
    ::setenv("RUNTIME_DIRECTORY", "/run/here", 1);
    EXPECT_EQ(dpdk_runtime_dir("p"), "/run/here/dpdk/p");
    ::unsetenv("RUNTIME_DIRECTORY");
    if (::getuid() == 0) {
        EXPECT_EQ(dpdk_runtime_dir("vfiokit"), "/var/run/dpdk/vfiokit");
    }
    if (old)
        ::setenv("RUNTIME_DIRECTORY", saved.c_str(), 1);
}

}  // namespace
}  // namespace vfiokit::telemetry

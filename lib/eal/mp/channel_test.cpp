// The channel on the host: over a socketpair and over a real socket in a
// temporary directory. Request/reply, fd passing both ways, every kind of
// malformed message (the server closes that connection, closes the fds it
// carried and serves the next client), timeouts, the peer uid check and a
// dying primary.
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <future>

#include "lab_env.hpp"
#include "mp_test_util.hpp"
#include "vfiokit/eal/mp.hpp"
#include "wire.hpp"

namespace vfiokit::eal::mp {
namespace {

using namespace std::chrono_literals;
using test::echo_header;
using test::header_bytes;
using test::Pipe;
using test::raw_send;
using test::TempDir;

bool contains(const std::string& s, std::string_view what) { return s.find(what) != s.npos; }

// The handlers every test server has: echo (payload and dup'd fds back),
// write (writes the payload into the fd it got), pipe (answers with the read
// end of a fresh pipe holding the payload).
// echo is open to users admitted with allow_uid (Policy::other_uids), the
// others keep the default policy (the primary's own uid only).
void add_test_handlers(Server& s) {
    s.handle(
        "test.echo",
        [](const Request& q, const Peer&) -> Result<Reply> {
            Reply r{q.payload, {}, {}};
            for (const auto& f : q.fds)
                r.owned_fds.emplace_back(::fcntl(f.get(), F_DUPFD_CLOEXEC, 0));
            return r;
        },
        Policy{.other_uids = true});
    s.handle("test.write", [](const Request& q, const Peer&) -> Result<Reply> {
        if (q.fds.size() != 1)
            return fail(EINVAL, "test.write wants one fd");
        if (::write(q.fds[0].get(), q.payload.data(), q.payload.size()) < 0)
            return fail(Error(errno, "write"));
        return Reply{};
    });
    s.handle("test.pipe", [](const Request& q, const Peer&) -> Result<Reply> {
        Pipe p;
        (void)!::write(p.w.get(), q.payload.data(), q.payload.size());
        Reply r;
        r.owned_fds.push_back(std::move(p.r));
        return r;
    });
}

struct PairFixture : ::testing::Test {
    void SetUp() override {
        auto s = Server::create();
        ASSERT_TRUE(s);
        server = std::move(*s);
        server->set_logger([this](std::string_view m) {
            std::lock_guard g(log_mu);
            log += std::string(m) + "\n";
        });
        add_test_handlers(*server);
        ASSERT_TRUE(server->start());
        client = connect_pair();
        ASSERT_TRUE(client);
    }
    std::unique_ptr<Client> connect_pair(ClientOptions o = {}) {
        auto [a, b] = test::seqpacket_pair();
        if (!server->add_connection(std::move(a)))
            return nullptr;
        auto c = Client::adopt(std::move(b), "pair", o);
        return c ? std::move(*c) : nullptr;
    }
    // The server's thread uses log_mu and log until it stops.
    void TearDown() override {
        if (server)
            server->stop();
    }
    std::string logged() {
        std::lock_guard g(log_mu);
        return log;
    }
    std::unique_ptr<Server> server;
    std::unique_ptr<Client> client;
    std::mutex log_mu;
    std::string log;
};

TEST_F(PairFixture, RequestAndReply) {
    auto r = client->request("test.echo", "hello");
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->payload, "hello");
    EXPECT_EQ(client->primary_pid(), ::getpid());
    EXPECT_TRUE(client->primary_alive());
    const std::string big(kMaxPayload, 'x');
    auto b = client->request("test.echo", big);
    ASSERT_TRUE(b) << b.error().message();
    EXPECT_EQ(b->payload, big);
}

TEST_F(PairFixture, UnknownRequestGetsAnErrorReplyNamingIt) {
    auto r = client->request("no.such.thing");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().err(), ENOENT);
    EXPECT_TRUE(contains(r.error().message(), "unknown request 'no.such.thing'")) << r.error().message();
    EXPECT_TRUE(contains(r.error().message(), "test.echo")) << "lists what is served";
    EXPECT_TRUE(client->request("test.echo", "still here"));  // same connection
    EXPECT_EQ(server->stats().unknown, 1u);
}

TEST_F(PairFixture, FdsTravelBothWays) {
    // Secondary -> primary: the primary writes through our pipe.
    Pipe p;
    const int w = p.w.get();
    auto r = client->request("test.write", "through the pipe", std::span(&w, 1));
    ASSERT_TRUE(r) << r.error().message();
    char buf[64] = {};
    ASSERT_EQ(::read(p.r.get(), buf, sizeof buf), 16);
    EXPECT_STREQ(buf, "through the pipe");
    // Primary -> secondary: we read from the primary's pipe.
    auto q = client->request("test.pipe", "from the primary");
    ASSERT_TRUE(q) << q.error().message();
    ASSERT_EQ(q->fds.size(), 1u);
    char b2[64] = {};
    ASSERT_EQ(::read(q->fds[0].get(), b2, sizeof b2), 16);
    EXPECT_STREQ(b2, "from the primary");
    EXPECT_TRUE(::fcntl(q->fds[0].get(), F_GETFD) & FD_CLOEXEC);
    // The kernel's cap: 253 fds in one message.
    std::vector<int> many(kMaxFds, p.w.get());
    auto e = client->request("test.echo", "", many);
    ASSERT_TRUE(e) << e.error().message();
    EXPECT_EQ(e->fds.size(), kMaxFds);
    std::vector<int> too_many(kMaxFds + 1, p.w.get());
    auto t = client->request("test.echo", "", too_many);
    ASSERT_FALSE(t);
    EXPECT_EQ(t.error().err(), EMSGSIZE);
}

TEST_F(PairFixture, HandlerFailuresComeBackAsErrors) {
    server->handle("test.fail", [](const Request&, const Peer&) -> Result<Reply> {
        return fail(Error(EPERM, "nope").hint("ask nicely"));
    });
    server->handle("test.huge", [](const Request&, const Peer&) -> Result<Reply> {
        return Reply{std::string(kMaxPayload + 1, 'y'), {}, {}};
    });
    server->handle("test.throw", [](const Request&, const Peer&) -> Result<Reply> {
        throw std::runtime_error("boom");
    });
    auto f = client->request("test.fail");
    ASSERT_FALSE(f);
    EXPECT_EQ(f.error().err(), EPERM);
    EXPECT_TRUE(contains(f.error().message(), "ask nicely")) << f.error().message();
    auto h = client->request("test.huge");
    ASSERT_FALSE(h);
    EXPECT_EQ(h.error().err(), EMSGSIZE);
    auto t = client->request("test.throw");
    ASSERT_FALSE(t);
    EXPECT_TRUE(contains(t.error().message(), "boom")) << t.error().message();
    EXPECT_TRUE(client->request("test.echo", "alive"));
}

TEST_F(PairFixture, TimeoutNamesTheRequestAndThePrimary) {
    server->handle("test.slow", [](const Request&, const Peer&) -> Result<Reply> {
        std::this_thread::sleep_for(300ms);
        return Reply{"late", {}, {}};
    });
    auto r = client->request("test.slow", "", {}, 50ms);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().err(), ETIMEDOUT);
    const std::string m = r.error().message();
    EXPECT_TRUE(contains(m, "'test.slow'")) << m;
    EXPECT_TRUE(contains(m, "pid " + std::to_string(::getpid()))) << m;
    // The late reply to test.slow is dropped, not taken for this one.
    auto e = client->request("test.echo", "mine", {}, 2000ms);
    ASSERT_TRUE(e) << e.error().message();
    EXPECT_EQ(e->payload, "mine");
}

TEST_F(PairFixture, MalformedMessagesCloseTheirConnectionOnly) {
    struct Case {
        const char* what;
        std::string bytes;
        int fds_sent;
        const char* logged;
    };
    auto bad_magic = echo_header();
    bad_magic.magic = 0xdeadbeef;
    auto bad_version = echo_header();
    bad_version.version = 99;
    auto no_nul = echo_header();
    std::memset(no_nul.name, 'n', sizeof no_nul.name);
    auto reply_kind = echo_header();
    reply_kind.kind = static_cast<std::uint16_t>(wire::Kind::reply);
    auto odd_kind = echo_header();
    odd_kind.kind = 77;
    const std::vector<Case> cases = {
        {"bad magic", header_bytes(bad_magic), 0, "bad magic 0xdeadbeef"},
        {"bad version", header_bytes(bad_version), 0, "protocol version 99"},
        {"short", std::string(10, 'z'), 0, "short message: 10 bytes"},
        {"truncated payload", header_bytes(echo_header(100), std::string(50, 'p')), 0,
         "declares 100 payload bytes, 50 arrived"},
        {"oversized message", header_bytes(echo_header(kMaxPayload + 100),
                                           std::string(kMaxPayload + 100, 'o')),
         0, "message longer than"},
        {"oversized declaration", header_bytes(echo_header(kMaxPayload + 1)), 0,
         "the limit is 65536"},
        {"more fds than declared", header_bytes(echo_header(0, 1)), 3, "declares 1 fd(s), 3 arrived"},
        {"fewer fds than declared", header_bytes(echo_header(0, 3)), 1, "declares 3 fd(s), 1 arrived"},
        {"name without NUL", header_bytes(no_nul), 0, "not NUL-terminated"},
        {"reply from a client", header_bytes(reply_kind), 0, "a reply where a request belongs"},
        {"unknown kind", header_bytes(odd_kind), 0, "unknown message kind 77"},
        {"empty datagram", std::string(), 2, ""},
    };
    const int fds_before = testing::open_fds();
    std::uint64_t malformed = 0;
    for (const auto& c : cases) {
        SCOPED_TRACE(c.what);
        auto [mine, theirs] = test::seqpacket_pair();
        ASSERT_TRUE(server->add_connection(std::move(theirs)));
        vfio::Fd raw = std::move(mine);
        // Send the write ends of a pipe: when the server has closed every
        // copy it received, the read end sees the hang-up. A leak would
        // keep it open.
        Pipe p;
        std::vector<int> fds(static_cast<std::size_t>(c.fds_sent), p.w.get());
        ASSERT_TRUE(raw_send(raw.get(), c.bytes, fds));
        p.w.reset();
        EXPECT_TRUE(test::closed_by_peer(raw.get()));
        EXPECT_TRUE(test::write_ends_closed(p.r.get())) << "the server kept a received fd";
        if (*c.logged) {
            ++malformed;
            EXPECT_TRUE(test::wait_until([&] { return contains(logged(), c.logged); }))
                << logged();
        }
        EXPECT_EQ(server->stats().malformed, malformed);
        // The server still serves.
        auto r = client->request("test.echo", "next");
        ASSERT_TRUE(r) << r.error().message();
    }
    EXPECT_TRUE(test::wait_until([&] { return server->stats().open == 1; }));
    EXPECT_EQ(testing::open_fds(), fds_before);
}

// The kernel drops fds it cannot install (no room under RLIMIT_NOFILE, or
// no room in the control buffer) and sets MSG_CTRUNC; the fds that did
// arrive must be closed, not leaked.
TEST(Wire, ControlTruncationClosesWhatArrived) {
    auto [a, b] = test::seqpacket_pair();
    Pipe p;
    const int fds[3] = {p.w.get(), p.w.get(), p.w.get()};
    ASSERT_TRUE(wire::send(a.get(), wire::make_header(wire::Kind::request, 1, "x"), "", fds));
    p.w.reset();
    std::vector<std::byte> buf(wire::kMaxMessage);
    auto r = wire::receive(b.get(), buf, 0, /*max_fds=*/1);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, wire::Received::Status::malformed);
    EXPECT_TRUE(contains(r->why, "control data truncated")) << r->why;
    EXPECT_TRUE(test::write_ends_closed(p.r.get()));

    // The same at the limit of RLIMIT_NOFILE, in a child so the limit stays there.
    Pipe q;
    const int fds2[3] = {q.w.get(), q.w.get(), q.w.get()};
    ASSERT_TRUE(wire::send(a.get(), wire::make_header(wire::Kind::request, 2, "x"), "", fds2));
    q.w.reset();
    pid_t child = test::fork_child([&, sock = b.get()] {
        // Room for exactly one more fd.
        int top = ::fcntl(sock, F_DUPFD, 0);
        ::close(top);
        rlimit rl{static_cast<rlim_t>(top + 1), static_cast<rlim_t>(top + 1)};
        if (::setrlimit(RLIMIT_NOFILE, &rl) != 0)
            return 2;
        std::vector<std::byte> b2(wire::kMaxMessage);
        auto rr = wire::receive(sock, b2, 0);
        if (!rr || rr->status != wire::Received::Status::malformed)
            return 3;
        return contains(rr->why, "RLIMIT_NOFILE") ? 0 : 4;
    });
    EXPECT_EQ(test::wait_child(child), 0);
    q.r.reset();
}

class SocketFixture : public ::testing::Test {
protected:
    void SetUp() override {
        auto d = open_runtime_dir("unit", tmp.path());
        ASSERT_TRUE(d) << d.error().message();
        dir = *d;
    }
    TempDir tmp;
    RuntimeDir dir;
};

TEST_F(SocketFixture, RealSocketIsPrivateAndServes) {
    auto lock = PrimaryLock::acquire(dir);
    ASSERT_TRUE(lock) << lock.error().message();
    auto s = Server::listen(dir, *lock);
    ASSERT_TRUE(s) << s.error().message();
    add_test_handlers(**s);
    ASSERT_TRUE((*s)->start());
    struct stat st {};
    ASSERT_EQ(::stat(dir.socket_path().c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    ASSERT_EQ(::stat(dir.path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    auto c = Client::connect(dir);
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_EQ((*c)->primary_pid(), ::getpid());
    auto r = (*c)->request("test.echo", "over the socket");
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->payload, "over the socket");
    s->reset();
    EXPECT_NE(::access(dir.socket_path().c_str(), F_OK), 0) << "the socket file goes with the server";
}

TEST_F(SocketFixture, NoPrimaryIsAClearError) {
    auto c = Client::connect(dir);
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().err(), ENOENT);
    EXPECT_TRUE(contains(c.error().message(), "no primary with prefix unit is running"))
        << c.error().message();
}

// SO_PEERCRED holds the credentials of connect() time. The runtime
// directory (0700) already keeps other users out; the check is the second
// barrier, for a directory opened up by mistake or on purpose (a broker).
TEST_F(SocketFixture, OtherUidsAreRejectedUnlessAllowed) {
    if (::geteuid() != 0)
        GTEST_SKIP() << "needs root to run a child as uid 65534 (nobody)";
    auto lock = PrimaryLock::acquire(dir);
    ASSERT_TRUE(lock);
    auto s = Server::listen(dir, *lock);
    ASSERT_TRUE(s);
    add_test_handlers(**s);
    std::string log;
    std::mutex mu;
    (*s)->set_logger([&](std::string_view m) {
        std::lock_guard g(mu);
        log += m;
    });
    // As nobody: 0 connected and served, 1 connect refused (EACCES),
    // 2 closed by the primary (rejected), other: unexpected.
    auto as_nobody = [&] {
        if (::setgid(65534) != 0 || ::setuid(65534) != 0)
            return 10;
        auto c = Client::connect(dir);
        if (!c)
            return c.error().err() == EACCES ? 1 : 11;
        auto r = (*c)->request("test.echo", "hi", {}, 2000ms);
        if (!r)
            return contains(r.error().message(), "closed this connection") ? 2 : 12;
        // Admitted, but only to what the policy opens to other uids.
        auto p = (*c)->request("test.pipe", "x", {}, 2000ms);
        if (p)
            return 14;
        if (p.error().err() != EACCES ||
            !contains(p.error().message(), "request 'test.pipe' refused for pid") ||
            !contains(p.error().message(), "(uid 65534)"))
            return 15;
        return 0;
    };
    // Fork before the server thread exists: the children are copies of a
    // single-threaded process.
    pid_t closed_dir = test::fork_child(as_nobody);
    EXPECT_EQ(test::wait_child(closed_dir), 1) << "the 0700 directory keeps nobody out";
    ASSERT_EQ(::chmod(tmp.path().c_str(), 0711), 0);
    ASSERT_EQ(::chmod(dir.path.c_str(), 0711), 0);
    ASSERT_EQ(::chmod(dir.socket_path().c_str(), 0666), 0);
    Pipe go1, go2;
    pid_t rejected = test::fork_child([&] { return test::await_ready(go1.r.get()) ? as_nobody() : 13; });
    pid_t allowed = test::fork_child([&] { return test::await_ready(go2.r.get()) ? as_nobody() : 13; });
    ASSERT_TRUE((*s)->start());
    test::signal_ready(go1.w.get());
    EXPECT_EQ(test::wait_child(rejected), 2);
    EXPECT_EQ((*s)->stats().rejected_uid, 1u);
    {
        std::lock_guard g(mu);
        EXPECT_TRUE(contains(log, "uid 65534")) << log;
    }
    (*s)->allow_uid(65534);
    test::signal_ready(go2.w.get());
    EXPECT_EQ(test::wait_child(allowed), 0);
    EXPECT_EQ((*s)->stats().rejected_uid, 1u);
    EXPECT_EQ((*s)->stats().refused_policy, 1u);
    (*s)->stop();  // before `log` goes
}

// A primary in a child process; the test is its secondary.
pid_t start_primary_child(const RuntimeDir& dir, const std::function<void(Server&)>& setup = {}) {
    Pipe ready;
    pid_t pid = test::fork_child([&] {
        auto lock = PrimaryLock::acquire(dir);
        if (!lock)
            return 20;
        auto s = Server::listen(dir, *lock);
        if (!s)
            return 21;
        add_test_handlers(**s);
        if (setup)
            setup(**s);
        if (!(*s)->start())
            return 22;
        test::signal_ready(ready.w.get());
        for (;;)
            ::pause();
    });
    ready.w.reset();
    if (!test::await_ready(ready.r.get())) {
        ::kill(pid, SIGKILL);
        test::wait_child(pid);
        return -1;
    }
    return pid;
}

TEST_F(SocketFixture, SecondaryNoticesThePrimarysDeath) {
    pid_t primary = start_primary_child(dir);
    ASSERT_GT(primary, 0);
    auto c = Client::connect(dir);
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_EQ((*c)->primary_pid(), primary);
    std::promise<std::string> noticed;
    ASSERT_TRUE((*c)->watch([&](const Error& e) { noticed.set_value(e.message()); }));
    ASSERT_TRUE((*c)->request("test.echo", "x"));
    EXPECT_TRUE((*c)->primary_alive());
    // A second primary with the same prefix is refused, naming the first.
    auto second = PrimaryLock::acquire(dir);
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error().err(), EBUSY);
    EXPECT_TRUE(contains(second.error().message(), "a primary with prefix unit is running (pid " +
                                                       std::to_string(primary) + ")"))
        << second.error().message();

    ::kill(primary, SIGKILL);
    const std::string expect =
        "primary (pid " + std::to_string(primary) + ", prefix unit) has exited";
    auto f = noticed.get_future();
    ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
    EXPECT_TRUE(contains(f.get(), expect));
    EXPECT_FALSE((*c)->primary_alive());
    auto r = (*c)->request("test.echo", "x");
    ASSERT_FALSE(r);
    EXPECT_TRUE(contains(r.error().message(), expect)) << r.error().message();
    EXPECT_EQ(test::wait_child(primary), 128 + SIGKILL);
    // The lock died with it: this process may be the primary now.
    EXPECT_TRUE(PrimaryLock::acquire(dir));
}

// A secondary killed while the primary works on its request: the reply has
// nowhere to go (EPIPE, not SIGPIPE), and the next secondary is served.
TEST_F(SocketFixture, SecondaryKilledMidRequest) {
    auto lock = PrimaryLock::acquire(dir);
    ASSERT_TRUE(lock);
    auto s = Server::listen(dir, *lock);
    ASSERT_TRUE(s);
    add_test_handlers(**s);
    std::mutex mu;
    std::condition_variable cv;
    bool entered = false;
    (*s)->handle("test.slow", [&](const Request&, const Peer&) -> Result<Reply> {
        {
            std::lock_guard g(mu);
            entered = true;
        }
        cv.notify_all();
        std::this_thread::sleep_for(200ms);
        return Reply{"too late", {}, {}};
    });
    std::string log;
    (*s)->set_logger([&](std::string_view m) {
        std::lock_guard g(mu);
        log += m;
    });
    // Forked before the server thread starts; the backlog holds its
    // connection until then.
    pid_t child = test::fork_child([&] {
        auto c = Client::connect(dir);
        if (!c)
            return 1;
        (void)(*c)->request("test.slow", "", {}, 10s);
        return 2;
    });
    ASSERT_TRUE((*s)->start());
    {
        std::unique_lock g(mu);
        ASSERT_TRUE(cv.wait_for(g, 5s, [&] { return entered; }));
    }
    ::kill(child, SIGKILL);
    EXPECT_EQ(test::wait_child(child), 128 + SIGKILL);
    EXPECT_TRUE(test::wait_until([&] { return (*s)->stats().send_failed == 1; }));
    {
        std::lock_guard g(mu);
        EXPECT_TRUE(contains(log, "not delivered")) << log;
        EXPECT_TRUE(contains(log, "Broken pipe")) << log;  // EPIPE: MSG_NOSIGNAL kept SIGPIPE away
    }
    auto c = Client::connect(dir);
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_TRUE((*c)->request("test.echo", "next one"));
    EXPECT_TRUE(test::wait_until([&] { return (*s)->stats().open == 1; }));
    (*s)->stop();  // before the handler's and logger's locals go
}

// A secondary maps the primary's memfds as its DMA heap and uses its fds as
// devices: a "primary" of another user (a socket planted in a directory we
// were pointed at) is refused before anything it sends is used.
TEST(ServerIdentity, ClientRefusesAPrimaryOfAnotherUid) {
    if (::geteuid() != 0)
        GTEST_SKIP() << "needs root to run a primary as uid 65534 (nobody)";
    TempDir tmp;
    ASSERT_EQ(::chmod(tmp.path().c_str(), 0711), 0);
    const std::string base = tmp.path() + "/base";
    ASSERT_EQ(::mkdir(base.c_str(), 0700), 0);
    ASSERT_EQ(::chown(base.c_str(), 65534, 65534), 0);
    Pipe ready;
    pid_t primary = test::fork_child([&] {
        if (::setgid(65534) != 0 || ::setuid(65534) != 0)
            return 10;
        auto d = open_runtime_dir("other", base);
        if (!d)
            return 11;
        auto lock = PrimaryLock::acquire(*d);
        if (!lock)
            return 12;
        auto s = Server::listen(*d, *lock);
        if (!s)
            return 13;
        add_test_handlers(**s);
        if (!(*s)->start())
            return 14;
        test::signal_ready(ready.w.get());
        for (;;)
            ::pause();
    });
    ready.w.reset();
    ASSERT_TRUE(test::await_ready(ready.r.get()));
    const RuntimeDir d{"other", base + "/other", nullptr};
    auto c = Client::connect(d);
    ASSERT_FALSE(c) << "connected to uid 65534's primary";
    EXPECT_EQ(c.error().err(), EPERM);
    EXPECT_TRUE(contains(c.error().message(), "pid " + std::to_string(primary) +
                                                  " running as uid 65534"))
        << c.error().message();
    ClientOptions trust;
    trust.trusted_uids = {65534};
    auto trusted = Client::connect(d, trust);
    EXPECT_TRUE(trusted) << trusted.error().message();
    ::kill(primary, SIGKILL);
    EXPECT_EQ(test::wait_child(primary), 128 + SIGKILL);
}

// One connection more than Limits::max_connections is told why and closed.
TEST_F(PairFixture, ConnectionsAreCapped) {
    const std::size_t cap = Limits{}.max_connections;
    EXPECT_GE(cap, 8u) << "the default leaves room for a few secondaries";
    server->set_limits({.max_connections = 3});
    std::vector<std::unique_ptr<Client>> more;
    for (int k = 0; k < 2; ++k) {
        more.push_back(connect_pair());
        ASSERT_TRUE(more.back());
        ASSERT_TRUE(more.back()->request("test.echo", "in"));
    }
    auto over = connect_pair();
    ASSERT_TRUE(over);  // adopt() sends nothing
    auto r = over->request("test.echo", "one too many", {}, 2000ms);
    ASSERT_FALSE(r) << "a fourth connection was served";
    EXPECT_EQ(r.error().err(), EBUSY) << r.error().message();
    EXPECT_TRUE(contains(r.error().message(), "Limits::max_connections")) << r.error().message();
    EXPECT_EQ(server->stats().refused_full, 1u);
    EXPECT_TRUE(client->request("test.echo", "still served"));
    more.pop_back();  // one leaves: room for one again
    EXPECT_TRUE(test::wait_until([&] { return server->stats().open == 2; }));
    auto next = connect_pair();
    ASSERT_TRUE(next);
    EXPECT_TRUE(next->request("test.echo", "now"));
}

// A peer that connects and never asks is closed after
// first_request_timeout; one that has asked may stay idle.
TEST_F(PairFixture, SilentPeersTimeOut) {
    server->set_limits({.first_request_timeout = 200ms});
    ASSERT_TRUE(client->request("test.echo", "asked"));
    auto [mine, theirs] = test::seqpacket_pair();
    ASSERT_TRUE(server->add_connection(std::move(mine)));
    pollfd p{theirs.get(), POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 3000), 1) << "the silent peer was not closed";
    std::vector<std::byte> b(wire::kMaxMessage);
    auto rr = wire::receive(theirs.get(), b, MSG_DONTWAIT);
    ASSERT_TRUE(rr);
    ASSERT_EQ(rr->status, wire::Received::Status::message);
    EXPECT_EQ(rr->msg.h.seq, 0u);
    EXPECT_EQ(rr->msg.h.err, ETIMEDOUT);
    EXPECT_TRUE(contains(rr->msg.payload, "no request in 200 ms")) << rr->msg.payload;
    EXPECT_TRUE(test::wait_until([&] { return server->stats().idle_closed == 1; }));
    std::this_thread::sleep_for(300ms);
    EXPECT_TRUE(client->request("test.echo", "idle but known"));
    EXPECT_EQ(server->stats().idle_closed, 1u);
    std::lock_guard g(log_mu);
    EXPECT_TRUE(contains(log, "Limits::first_request_timeout")) << log;
}

// Peers may not take the fds the primary keeps for itself: near
// RLIMIT_NOFILE minus the reserve, connections are refused, and the
// primary can still open what it needs.
TEST_F(PairFixture, FdReserveIsKeptFromPeers) {
    rlimit old{};
    ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &old), 0);
    const int probe = ::fcntl(0, F_DUPFD_CLOEXEC, 0);
    ASSERT_GE(probe, 0);
    ::close(probe);
    const rlim_t soft = static_cast<rlim_t>(probe) + 100;
    ASSERT_LE(soft, old.rlim_max);
    rlimit low{soft, old.rlim_max};
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
    server->set_limits({.fd_reserve = 50});
    std::vector<std::unique_ptr<Client>> clients;
    std::size_t served = 0, refused = 0;
    std::string why;
    for (int k = 0; k < 40; ++k) {
        auto c = connect_pair();
        if (!c)
            break;
        auto r = c->request("test.echo", "x", {}, 2000ms);
        if (r) {
            ++served;
        } else {
            ++refused;
            why = r.error().message();
        }
        clients.push_back(std::move(c));
    }
    // The primary's own open still works: the reserve is there.
    vfio::Fd own(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    EXPECT_TRUE(own) << std::strerror(errno);
    own.reset();
    clients.clear();
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &old), 0);
    EXPECT_GT(served, 0u);
    EXPECT_GT(refused, 0u) << "peers took fds up to the limit";
    EXPECT_GT(server->stats().refused_fds, 0u);
    EXPECT_TRUE(contains(why, "Limits::fd_reserve")) << why;
}

}  // namespace
}  // namespace vfiokit::eal::mp

namespace vfiokit::eal::mp {
namespace {

// Handlers learn which connection asked (Peer::connection), and the
// disconnect callback gets the same number once that connection ends, for
// a clean close and a malformed message alike; connections the server's
// stop() closes are not reported.
TEST(Disconnect, CallbackNamesTheConnectionThatEnded) {
    auto s = Server::create();
    ASSERT_TRUE(s);
    Server& server = **s;
    server.set_logger([](std::string_view) {});
    std::mutex mu;
    std::vector<std::uint64_t> asked, gone;
    server.handle("test.who", [&](const Request&, const Peer& p) -> Result<Reply> {
        std::lock_guard g(mu);
        asked.push_back(p.connection);
        return Reply{std::to_string(p.connection), {}, {}};
    });
    server.on_disconnect([&](const Peer& p) {
        std::lock_guard g(mu);
        EXPECT_EQ(p.pid, ::getpid());
        gone.push_back(p.connection);
    });
    ASSERT_TRUE(server.start());
    auto pair = [&]() -> std::pair<std::unique_ptr<Client>, std::uint64_t> {
        auto [a, b] = test::seqpacket_pair();
        EXPECT_TRUE(server.add_connection(std::move(a)));
        auto c = Client::adopt(std::move(b), "pair");
        EXPECT_TRUE(c);
        auto r = (*c)->request("test.who");
        EXPECT_TRUE(r);
        return {std::move(*c), r ? std::stoull(r->payload) : 0};
    };
    auto [c1, n1] = pair();
    auto [c2, n2] = pair();
    EXPECT_NE(n1, 0u);
    EXPECT_NE(n1, n2);
    c1.reset();
    ASSERT_TRUE(test::wait_until([&] {
        std::lock_guard g(mu);
        return gone.size() == 1;
    }));
    {
        std::lock_guard g(mu);
        EXPECT_EQ(gone[0], n1);
    }
    // A malformed message from a raw peer ends its connection too.
    auto [a, b] = test::seqpacket_pair();
    ASSERT_TRUE(server.add_connection(std::move(a)));
    ASSERT_EQ(::send(b.get(), "junk", 4, 0), 4);
    ASSERT_TRUE(test::wait_until([&] {
        std::lock_guard g(mu);
        return gone.size() == 2;
    }));
    {
        std::lock_guard g(mu);
        EXPECT_NE(gone[1], n1);
        EXPECT_NE(gone[1], n2);
    }
    server.stop();  // c2's connection: closed by stop, not reported
    std::lock_guard g(mu);
    EXPECT_EQ(gone.size(), 2u);
}

}  // namespace
}  // namespace vfiokit::eal::mp

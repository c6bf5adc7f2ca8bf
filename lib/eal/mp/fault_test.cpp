// Every call of the mp channel and of a secondary's attach, failed in turn
// (the syscall seam's FaultInjector, on the real kernel): connection set-up
// (socket, connect, accept), a request and its reply (sendmsg, recvmsg on
// both ends), fds passed both ways, and attach_memory over the shared
// runtime (the channel, then the mmaps of Memory::attach). After each
// failure: no fd, no mapping in the window, the primary serves the next
// request, and the side that failed says which call it was (the client in
// its error, the server in its log). Host unit test, and in the lab
// (mp_fault_lab_test, run by the mp jobs) with hugepage backings and, in
// the no-IOMMU shape, physical addresses.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>

#include "fault_util.hpp"
#include "mp_test_util.hpp"
#include "vfiokit/eal/mp.hpp"

namespace vfiokit::eal::mp {
namespace {

using namespace std::chrono_literals;
using testing::Backing;
using testing::describe;
using testing::every_call;
using testing::expect_error_names;
using testing::fail_in_turn;
using testing::Fault;
using testing::Leftovers;
using vfio::Call;

bool mentions(std::string_view text, std::string_view what) {
    return text.find(what) != std::string_view::npos;
}

ClientOptions patient_enough() {
    ClientOptions o;
    o.timeout = 5s;
    o.connect_wait = 500ms;
    return o;
}

// A primary's channel in this process: "test.echo" answers its payload,
// "test.fds" answers with copies of the fds it was sent. Its log is kept.
struct ChannelFault : ::testing::Test {
    void SetUp() override {
        auto d = open_runtime_dir("fault", tmp.path());
        ASSERT_TRUE(d) << d.error().message();
        dir = *d;
        auto l = PrimaryLock::acquire(dir);
        ASSERT_TRUE(l) << l.error().message();
        lock.emplace(std::move(*l));
        auto s = Server::listen(dir, *lock);
        ASSERT_TRUE(s) << s.error().message();
        server = std::move(*s);
        server->set_logger([this](std::string_view line) {
            std::lock_guard g(mu);
            log += std::string(line) + "\n";
        });
        server->handle("test.echo", [](const Request& q, const Peer&) -> Result<Reply> {
            return Reply{q.payload, {}, {}};
        });
        server->handle("test.fds", [](const Request& q, const Peer&) -> Result<Reply> {
            Reply r;
            r.payload = std::to_string(q.fds.size());
            for (const auto& f : q.fds)
                r.owned_fds.emplace_back(::fcntl(f.get(), F_DUPFD_CLOEXEC, 0));
            return r;
        });
        ASSERT_TRUE(server->start());
    }
    void TearDown() override {
        if (server)
            server->stop();
    }
    std::string take_log() {
        std::lock_guard g(mu);
        return std::exchange(log, {});
    }
    // The server has accepted `connections` in all and closed every one:
    // its thread is back in poll and makes no call until the next
    // connection. The count matters: a client whose first send failed
    // closes before the server has even accepted it, and "none open" is
    // then true while the connection still waits in the backlog, to be
    // accepted (one more fd) just as the test counts fds.
    bool quiet(std::uint64_t connections) {
        return test::wait_until(
            [&] {
                const auto s = server->stats();
                return s.accepted >= connections && s.open == 0;
            },
            5000);
    }
    // A fresh client is served: the primary survived whatever failed.
    void still_serves(const std::string& after) {
        const std::uint64_t n = server->stats().accepted + 1;
        auto c = Client::connect(dir, patient_enough());
        ASSERT_TRUE(c) << "after " << after << ": " << c.error().message();
        auto r = (*c)->request("test.echo", "again");
        ASSERT_TRUE(r) << "after " << after << ": " << r.error().message();
        EXPECT_EQ(r->payload, "again");
        c->reset();
        ASSERT_TRUE(quiet(n));
    }

    // Connects, sends `name` with `fds`, checks the reply, closes; waits
    // for the server to see the close. The error of the first step that
    // failed, or nullopt.
    std::optional<Error> converse(const std::string& name, std::span<const int> fds) {
        std::optional<Error> err;
        std::uint64_t connections = server->stats().accepted;
        {
            auto c = Client::connect(dir, patient_enough());
            if (c)
                ++connections;  // in the backlog at least: the server will accept it
            if (!c) {
                err = c.error();
            } else {
                auto r = (*c)->request(name, "hello", fds);
                if (!r)
                    err = r.error();
                else if (name == "test.fds" &&
                         (r->payload != std::to_string(fds.size()) || r->fds.size() != fds.size()))
                    err = Error(EPROTO, "test.fds answered " + r->payload);
                else if (name == "test.echo" && r->payload != "hello")
                    err = Error(EPROTO, "test.echo answered " + r->payload);
            }
        }
        if (!quiet(connections))
            err = Error(ETIMEDOUT, "the server kept a connection");
        return err;
    }

    // Every call of `kinds` one conversation makes, failed in turn.
    void fail_each(const std::string& what, std::initializer_list<Call> kinds,
                   const std::string& name, std::span<const int> fds) {
        const auto plan = every_call(what, kinds, [&] {
            auto e = converse(name, fds);
            ASSERT_FALSE(e) << e->message();
        });
        take_log();
        ASSERT_FALSE(plan.empty());
        std::optional<Error> e;
        fail_in_turn(
            what, plan,
            {.before = [] { return Leftovers::now(0, 0, ""); },
             .run = [&](const Fault&, const vfio::FaultInjector&) { e = converse(name, fds); },
             .check =
                 [&](const Fault& f) {
                     const std::string said = take_log();
                     const std::string call(vfio::to_string(f.kind));
                     if (e) {
                         std::printf("%s, %s: client: %s\n", what.c_str(), describe(f).c_str(),
                                     e->message().c_str());
                         EXPECT_NE(e->err(), ETIMEDOUT) << e->message();
                         EXPECT_NE(e->err(), EPROTO) << e->message();
                         // The client names what it was doing, and the call
                         // when it was its own; the server's log names the
                         // server's.
                         EXPECT_TRUE(mentions(e->message(), "mp")) << e->message();
                         EXPECT_TRUE(mentions(e->message(), call) || mentions(said, call))
                             << "neither the client's error nor the server's log names " << call
                             << ":\n  client: " << e->message() << "\n  server: " << said;
                     } else if (f.kind != Call::close) {
                         // The client got its answer: the call that failed
                         // was the server's (an accept it retries, the
                         // connection waiting in the backlog; a receive
                         // after the client's close), and its log says so.
                         // A failed close still releases the fd.
                         EXPECT_TRUE(mentions(said, call))
                             << "the failure went unnoticed: " << said;
                     }
                 },
             .next = [&](const Fault& f) { still_serves(describe(f)); }});
    }

    test::TempDir tmp;
    RuntimeDir dir;
    std::optional<PrimaryLock> lock;
    std::unique_ptr<Server> server;
    std::mutex mu;
    std::string log;
};

TEST_F(ChannelFault, ConnectionSetUp) {
    fail_each("mp connection set-up", {Call::socket, Call::connect, Call::accept}, "test.echo",
              {});
}

TEST_F(ChannelFault, RequestAndReply) {
    fail_each("mp request and reply", {Call::sendmsg, Call::recvmsg}, "test.echo", {});
}

TEST_F(ChannelFault, FdsPassedBothWays) {
    std::vector<vfio::Fd> owned;
    std::vector<int> fds;
    for (int i = 0; i < 3; ++i) {
        owned.emplace_back(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        ASSERT_TRUE(owned.back().valid());
        fds.push_back(owned.back().get());
    }
    fail_each("mp fds both ways (3 each)", {Call::sendmsg, Call::recvmsg, Call::close},
              "test.fds", fds);
}

// ---------------------------------------------------------------------------
// A secondary's attach over the shared runtime, against a primary in a
// child process (so every counted call is the secondary's).

constexpr std::uint64_t kBase = 0x330000000000ULL;

struct Primary {
    pid_t pid = -1;
    MemoryOptions opts;
    std::uint64_t first_va = 0;
    ~Primary() {
        if (pid > 0) {
            ::kill(pid, SIGKILL);
            test::wait_child(pid);
        }
    }
};

// The primary's memory: `nseg` segments of `len`, the second of three
// removed (a gap in the window, reserved by the secondary), 0x5a bytes at
// the start of the first. pa mode where the lab shape has no IOMMU and the
// pages are hugepages (physical addresses need pinned pages).
void start_primary(Primary& p, const RuntimeDir& dir, std::size_t nseg, std::uint64_t len) {
    test::Pipe ready;
    p.pid = test::fork_child([&] {
        auto lock = PrimaryLock::acquire(dir);
        auto m = Memory::create(p.opts);
        if (!lock || !m)
            return 20;
        std::vector<const Segment*> segs;
        for (std::size_t i = 0; i < nseg; ++i) {
            auto s = (*m)->add(len);
            if (!s)
                return 21;
            segs.push_back(*s);
        }
        if (nseg == 3 && !(*m)->remove(segs[1]))
            return 22;
        auto* first = reinterpret_cast<unsigned char*>(segs[0]->va);
        std::memset(first, 0x5a, 64);
        auto s = Server::listen(dir, *lock);
        if (!s)
            return 23;
        serve_runtime(**s, **m, RuntimeFacts{dir.prefix, "none", "fault test"});
        if (!(*s)->start())
            return 24;
        (void)!::write(ready.w.get(), &first, sizeof first);
        for (;;)
            ::pause();
    });
    ready.w.reset();
    pollfd pf{ready.r.get(), POLLIN, 0};
    unsigned char* first = nullptr;
    ASSERT_EQ(::poll(&pf, 1, 20000), 1) << "the primary did not start";
    ASSERT_EQ(::read(ready.r.get(), &first, sizeof first), static_cast<ssize_t>(sizeof first))
        << "the primary exited with " << test::wait_child(std::exchange(p.pid, -1));
    p.first_va = reinterpret_cast<std::uint64_t>(first);
}

class AttachFault : public ::testing::TestWithParam<Backing> {
protected:
    void SetUp() override {
        auto d = open_runtime_dir("attach", tmp.path());
        ASSERT_TRUE(d) << d.error().message();
        dir = *d;
        primary.opts = testing::memory_options(GetParam(), kBase, 8, why_not);
        if (GetParam() != Backing::memfd_4k && !testing::iommu_shape() && testing::in_lab())
            primary.opts.iova_mode = IovaMode::pa;
    }
    // Connects, attaches, checks the primary's bytes, detaches. With `fi`:
    // an attach that succeeds although its fault fired is an error, unless
    // the call was a close (which releases the fd all the same: pa mode's
    // pagemap reads close theirs during the attach).
    std::optional<Error> attach_once(const vfio::FaultInjector* fi = nullptr,
                                     Call kind = Call::close) {
        auto c = Client::connect(dir, patient_enough());
        if (!c)
            return c.error();
        auto m = attach_memory(**c);
        if (!m)
            return m.error();
        if (fi != nullptr && fi->fired() && kind != Call::close)
            return Error(EPROTO, "the attach succeeded with a failed call");
        if (reinterpret_cast<const unsigned char*>(primary.first_va)[63] != 0x5a)
            return Error(EPROTO, "the primary's bytes are not at the primary's address");
        return std::nullopt;
    }
    void fail_each(std::size_t nseg, std::uint64_t len, std::initializer_list<Call> kinds) {
        ASSERT_NO_FATAL_FAILURE(start_primary(primary, dir, nseg, len));
        const std::string what = "attach_memory, " + std::to_string(nseg) + " segments (" +
                                 name_of(GetParam()) +
                                 (primary.opts.iova_mode == IovaMode::pa ? ", pa" : "") + ")";
        const auto plan = every_call(what, kinds, [&] {
            auto e = attach_once();
            ASSERT_FALSE(e) << e->message();
        });
        ASSERT_FALSE(plan.empty());
        const std::uint64_t base = primary.opts.base_virtaddr, win = primary.opts.window;
        std::optional<Error> e;
        fail_in_turn(
            what, plan,
            {.before = [&] { return Leftovers::now(base, win, ""); },
             .run = [&](const Fault& f,
                        const vfio::FaultInjector& fi) { e = attach_once(&fi, f.kind); },
             .check =
                 [&](const Fault& f) {
                     // No error: the call was the detach's, which gives
                     // everything back all the same (checked after).
                     if (!e)
                         return;
                     std::printf("%s, %s: %s\n", what.c_str(), describe(f).c_str(),
                                 e->message().c_str());
                     expect_error_names(*e, f, "mp");
                 },
             .next = [&](const Fault& f) {
                 EXPECT_TRUE(testing::maps_lines(base, win, "").empty())
                     << testing::joined(testing::maps_lines(base, win, ""));
                 auto again = attach_once();
                 ASSERT_FALSE(again) << "after " << describe(f) << ": " << again->message();
             }});
    }
    test::TempDir tmp;
    RuntimeDir dir;
    Primary primary;
    std::string why_not;
};

TEST_P(AttachFault, EveryCallOfTheAttach) {
    FAULT_REQUIRE_BACKING(why_not);
    const std::uint64_t len = GetParam() == Backing::memfd_4k ? 3 * 4096 : 2 * testing::kHuge;
    fail_each(3, len,
              {Call::socket, Call::connect, Call::sendmsg, Call::recvmsg, Call::mmap,
               Call::munmap, Call::close, Call::open, Call::pread});
}

// More segments than one reply carries fds (kMaxFds): the attach takes two
// requests, and any of their messages may fail.
TEST_P(AttachFault, AnswerInTwoReplies) {
    if (GetParam() != Backing::memfd_4k)
        GTEST_SKIP() << "4 KiB segments only: 260 hugepage segments would need 520 MiB";
    fail_each(260, 4096, {Call::sendmsg, Call::recvmsg});
}

INSTANTIATE_TEST_SUITE_P(Backings, AttachFault,
                         ::testing::Values(Backing::memfd_4k, Backing::memfd_huge,
                                           Backing::hugetlbfs),
                         [](const auto& i) { return std::string(name_of(i.param)); });

}  // namespace
}  // namespace vfiokit::eal::mp

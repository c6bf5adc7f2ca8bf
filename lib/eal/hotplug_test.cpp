// Host tests of the cross-process removal protocol (hotplug.hpp) over a
// socketpair: a subscriber that answers lets the primary go on at once, one
// that does not is named after the wait, and a dead one is not waited for.
#include "hotplug.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace vfiokit::eal::hotplug {
namespace {

using namespace std::chrono_literals;

struct BoardTest : ::testing::Test {
    void SetUp() override {
        auto s = mp::Server::create();
        ASSERT_TRUE(s);
        server = std::move(*s);
        board.serve(*server);
        ASSERT_TRUE(server->start());
        int sv[2] = {-1, -1};
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        ASSERT_TRUE(server->add_connection(vfio::Fd(sv[0])));
        auto c = mp::Client::adopt(vfio::Fd(sv[1]), "hotplug");
        ASSERT_TRUE(c);
        client = std::move(*c);
    }
    void TearDown() override {
        if (server)
            server->stop();
    }
    Board board;
    std::unique_ptr<mp::Server> server;
    std::unique_ptr<mp::Client> client;
};

const PciAddress kEdu = *PciAddress::parse("0000:02:00.0");

TEST_F(BoardTest, NoSubscriberNoWait) {
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_TRUE(board.ask_secondaries(kEdu, 2s).empty());
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 500ms);
}

TEST_F(BoardTest, AnsweringSubscriberIsWaitedForAndReleasesFirst) {
    auto sub = Subscription::subscribe(*client);
    ASSERT_TRUE(sub) << sub.error().message();
    EXPECT_EQ(board.subscribers(), 1u);
    // Nothing rang yet: polling costs one read and finds nothing.
    auto none = sub->poll(*client);
    ASSERT_TRUE(none);
    EXPECT_TRUE(none->empty());

    std::atomic<bool> released{false};
    std::thread secondary([&] {
        for (int i = 0; i < 2000; ++i) {
            auto r = sub->poll(*client);
            ASSERT_TRUE(r) << r.error().message();
            if (!r->empty()) {
                ASSERT_EQ(r->size(), 1u);
                EXPECT_EQ(r->front(), kEdu);
                released = true;
                ASSERT_TRUE(sub->released(*client, kEdu));
                return;
            }
            std::this_thread::sleep_for(1ms);
        }
    });
    const auto t0 = std::chrono::steady_clock::now();
    const auto late = board.ask_secondaries(kEdu, 5s);
    const auto took = std::chrono::steady_clock::now() - t0;
    secondary.join();
    EXPECT_TRUE(late.empty());
    EXPECT_TRUE(released);
    EXPECT_LT(took, 2s) << "the primary waited although the secondary answered";
    board.done(kEdu);
    // Done: no longer listed to a later ring.
    auto r = client->request(kRemoving);
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->payload.empty());
}

TEST_F(BoardTest, SilentSubscriberIsNamedAfterTheWait) {
    auto sub = Subscription::subscribe(*client);
    ASSERT_TRUE(sub);
    const auto t0 = std::chrono::steady_clock::now();
    const auto late = board.ask_secondaries(kEdu, 300ms);
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 300ms);
    ASSERT_EQ(late.size(), 1u);
    EXPECT_EQ(late[0], ::getpid());
    // It is still listed as removing until the primary is done with it.
    auto listed = sub->poll(*client);
    ASSERT_TRUE(listed);
    ASSERT_EQ(listed->size(), 1u);
    EXPECT_EQ(listed->front(), kEdu);
}

TEST_F(BoardTest, BadRequestsAreRefused) {
    auto no_fd = client->request(kSubscribe);
    ASSERT_FALSE(no_fd);
    EXPECT_EQ(no_fd.error().err(), EINVAL);
    auto bad = client->request(kReleased, "not-an-address");
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().err(), EINVAL);
    EXPECT_EQ(board.subscribers(), 0u);
}

}  // namespace
}  // namespace vfiokit::eal::hotplug

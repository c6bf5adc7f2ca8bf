// The server: one front end at a time, accepting again after each one ends
// (closed or dropped), and taking over a stale socket path.
#include "vfiokit/vhost_user/server.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>

#include "test_util.hpp"

namespace vfiokit::vhost_user {
namespace {

using namespace test;

int connect_to(const std::string& path) {
    int s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, path.data(), path.size());
    if (::connect(s, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        ::close(s);
        return -1;
    }
    return s;
}

class ServerTest : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/vfiokit-vhost-srv-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        path_ = dir_ + "/s";
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    std::string dir_, path_;
    RecordingDevice dev_;
};

TEST_F(ServerTest, AcceptsAgainAfterDropAndAfterClose) {
    const int fds0 = open_fds();
    {
        auto srv = Server::listen(path_, dev_);
        ASSERT_TRUE(srv) << srv.error().message();
        // First front end: a malformed message drops it.
        int c1 = connect_to(path_);
        ASSERT_GE(c1, 0);
        ASSERT_TRUE(srv->poll(1000));
        ASSERT_TRUE(srv->connected());
        ASSERT_TRUE(send_raw(c1, 1, 3, {}));  // version 3
        ASSERT_TRUE(srv->poll(1000));
        EXPECT_FALSE(srv->connected());
        EXPECT_EQ(srv->ended(), 1u);
        EXPECT_NE(srv->last_end().find("version 3"), std::string::npos) << srv->last_end();
        ::close(c1);
        // Second: served, then it closes.
        int c2 = connect_to(path_);
        ASSERT_GE(c2, 0);
        ASSERT_TRUE(srv->poll(1000));
        ASSERT_TRUE(send_msg(c2, Request::get_features));
        ASSERT_TRUE(srv->poll(1000));
        auto r = read_reply(c2);
        ASSERT_TRUE(r);
        EXPECT_NE(r->u64() & bit(kFeatureProtocolFeatures), 0u);
        ::close(c2);
        ASSERT_TRUE(srv->poll(1000));
        EXPECT_EQ(srv->ended(), 2u);
        EXPECT_EQ(srv->last_end(), "peer closed");
        EXPECT_EQ(srv->accepted(), 2u);
        EXPECT_EQ(dev_.disconnects, 2);
    }
    // The path goes with the server, and so does every fd.
    struct stat st{};
    EXPECT_NE(::lstat(path_.c_str(), &st), 0);
    EXPECT_EQ(open_fds(), fds0);
}

TEST_F(ServerTest, SecondFrontEndWaitsForTheFirst) {
    auto srv = Server::listen(path_, dev_);
    ASSERT_TRUE(srv) << srv.error().message();
    int c1 = connect_to(path_);
    ASSERT_TRUE(srv->poll(1000));
    int c2 = connect_to(path_);  // queued in the backlog
    ASSERT_GE(c2, 0);
    ASSERT_TRUE(srv->poll(100));
    EXPECT_EQ(srv->accepted(), 1u);
    ::close(c1);
    ASSERT_TRUE(srv->poll(1000));  // c1's end
    ASSERT_TRUE(srv->poll(1000));  // c2 accepted
    EXPECT_EQ(srv->accepted(), 2u);
    EXPECT_TRUE(srv->connected());
    ::close(c2);
}

TEST_F(ServerTest, ReplacesStaleSocketButNotALiveOne) {
    {
        // A socket file nobody listens on any more.
        int s = ::socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        std::memcpy(sa.sun_path, path_.data(), path_.size());
        ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
        ::close(s);
    }
    auto srv = Server::listen(path_, dev_);
    ASSERT_TRUE(srv) << srv.error().message();
    RecordingDevice other;
    auto second = Server::listen(path_, other);
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error().err(), EADDRINUSE);
}

}  // namespace
}  // namespace vfiokit::vhost_user

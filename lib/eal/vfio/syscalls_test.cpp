// The fault injector on the host's real kernel (files, not VFIO).
#include "vfiokit/eal/vfio/syscalls.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <cerrno>

namespace vfiokit::vfio {
namespace {

TEST(FaultInjector, FailsExactlyTheNthCallOfAKind) {
    FaultInjector fi;
    ScopedSyscalls guard(fi);
    fi.fail_nth(Call::open, 2, EACCES);
    auto a = open_fd("/dev/null", O_RDONLY);
    ASSERT_TRUE(a);
    auto b = open_fd("/dev/null", O_RDONLY);
    ASSERT_FALSE(b);
    EXPECT_EQ(b.error().err(), EACCES);
    EXPECT_EQ(b.error().message(), "open /dev/null: Permission denied (errno 13)");
    EXPECT_TRUE(fi.fired());
    auto c = open_fd("/dev/null", O_RDONLY);
    EXPECT_TRUE(c);
    EXPECT_EQ(fi.count(Call::open), 3u);
}

TEST(FaultInjector, MatchesOneIoctlRequest) {
    FaultInjector fi;
    ScopedSyscalls guard(fi);
    auto f = open_fd("/dev/null", O_RDONLY);
    ASSERT_TRUE(f);
    int n = 0;
    fi.fail_nth(Call::ioctl, 1, EIO, FIONREAD);
    // Another request does not count.
    (void)do_ioctl(f->get(), FIOCLEX, nullptr, "FIOCLEX");
    auto r = do_ioctl(f->get(), FIONREAD, &n, "FIONREAD");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().err(), EIO);
    EXPECT_EQ(r.error().op(), "ioctl FIONREAD");
    EXPECT_EQ(fi.count(Call::ioctl), 2u);
    EXPECT_EQ(fi.count(Call::ioctl, FIONREAD), 1u);
}

TEST(FaultInjector, FailedCloseStillReleasesTheFd) {
    FaultInjector fi;
    ScopedSyscalls guard(fi);
    auto f = open_fd("/dev/null", O_RDONLY);
    ASSERT_TRUE(f);
    const int fd = f->get();
    fi.fail_nth(Call::close, 1, EIO);
    f->reset();
    EXPECT_TRUE(fi.fired());
    EXPECT_EQ(::fcntl(fd, F_GETFD), -1);  // gone
}

// The memory and channel calls: counted, and failed without reaching the
// kernel (no fd made, nothing sent), like the VFIO ones.
TEST(FaultInjector, MemoryAndChannelCalls) {
    FaultInjector fi;
    ScopedSyscalls guard(fi);
    fi.fail_nth(Call::memfd_create, 1, ENOMEM);
    EXPECT_EQ(sys().memfd_create("t", 0), -1);
    EXPECT_EQ(errno, ENOMEM);
    Fd m(sys().memfd_create("t", MFD_CLOEXEC));
    ASSERT_TRUE(m.valid());
    fi.fail_nth(Call::ftruncate, 1, EFBIG);
    EXPECT_EQ(sys().ftruncate(m.get(), 4096), -1);
    EXPECT_EQ(errno, EFBIG);
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    Fd a(sv[0]), b(sv[1]);
    char byte = 'x';
    iovec iov{&byte, 1};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    fi.fail_nth(Call::sendmsg, 1, EIO);
    EXPECT_EQ(sys().sendmsg(a.get(), &mh, MSG_DONTWAIT), -1);
    EXPECT_EQ(sys().recvmsg(b.get(), &mh, MSG_DONTWAIT), -1);
    EXPECT_EQ(errno, EAGAIN) << "the failed sendmsg sent something";
    ASSERT_EQ(sys().sendmsg(a.get(), &mh, MSG_DONTWAIT), 1);
    fi.fail_nth(Call::recvmsg, 1, EIO);
    EXPECT_EQ(sys().recvmsg(b.get(), &mh, MSG_DONTWAIT), -1);
    EXPECT_EQ(sys().recvmsg(b.get(), &mh, MSG_DONTWAIT), 1) << "the failed recvmsg took it";
    EXPECT_EQ(fi.count(Call::recvmsg), 2u);
    EXPECT_EQ(to_string(Call::memfd_create), "memfd_create");
    EXPECT_EQ(to_string(Call::accept), "accept");
}

TEST(Syscalls, SeamRestoredAfterScope) {
    {
        FaultInjector fi;
        ScopedSyscalls guard(fi);
        EXPECT_EQ(&sys(), &fi);
    }
    EXPECT_EQ(&sys(), &real_syscalls());
}

TEST(Fd, MoveTransfersOwnership) {
    auto f = open_fd("/dev/null", O_RDONLY);
    ASSERT_TRUE(f);
    Fd a = std::move(*f);
    EXPECT_FALSE(f->valid());
    Fd b;
    b = std::move(a);
    EXPECT_TRUE(b.valid());
    EXPECT_FALSE(a.valid());
    const int raw = b.release();
    EXPECT_FALSE(b.valid());
    EXPECT_GE(::fcntl(raw, F_GETFD), 0);
    Fd c(raw);  // closes it
}

}  // namespace
}  // namespace vfiokit::vfio

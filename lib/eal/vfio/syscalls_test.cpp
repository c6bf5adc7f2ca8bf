// The fault injector on the host's real kernel (files, not VFIO).
#include "vfiokit/eal/vfio/syscalls.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>

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

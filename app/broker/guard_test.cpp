// The broker's guards on the host: whom it connects to, what it checks a
// node against, and what a driver it starts inherits. The lab's vfio-share
// jobs run the broker itself on real VFIO nodes.
#include "guard.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "mp_test_util.hpp"

namespace vfiokit::broker {
namespace {

using eal::mp::test::fork_child;
using eal::mp::test::Pipe;
using eal::mp::test::TempDir;
using eal::mp::test::wait_child;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != s.npos; }

vfio::Fd listen_at(const std::string& path) {
    vfio::Fd s(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path.c_str());
    if (::bind(s.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0 ||
        ::listen(s.get(), 4) != 0)
        return {};
    return s;
}

#define NEED_ROOT()                                                                        \
    if (::geteuid() != 0)                                                                  \
    GTEST_SKIP() << "needs root: the broker's checks are about files and listeners of "   \
                    "other users"

TEST(ConnectReceiver, RootsOwnListenerIsAccepted) {
    NEED_ROOT();
    TempDir t;
    const std::string p = t.path() + "/s";
    auto l = listen_at(p);
    ASSERT_TRUE(l);
    auto c = connect_receiver(p, std::nullopt);
    ASSERT_TRUE(c) << c.error().message();
}

TEST(ConnectReceiver, SymlinkIsRefused) {
    NEED_ROOT();
    TempDir t;
    const std::string real = t.path() + "/real", link = t.path() + "/link";
    auto l = listen_at(real);
    ASSERT_TRUE(l);
    ASSERT_EQ(::symlink(real.c_str(), link.c_str()), 0);
    auto c = connect_receiver(link, std::nullopt);
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().err(), ELOOP);
    EXPECT_TRUE(contains(c.error().message(), "symlink")) << c.error().message();
}

TEST(ConnectReceiver, NonSocketIsRefused) {
    TempDir t;
    const std::string p = t.path() + "/file";
    std::ofstream(p) << "x";
    auto c = connect_receiver(p, std::nullopt);
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().err(), ENOTSOCK) << c.error().message();
}

TEST(ConnectReceiver, SocketFileOfAnotherUserIsRefused) {
    NEED_ROOT();
    TempDir t;
    const std::string p = t.path() + "/s";
    auto l = listen_at(p);
    ASSERT_TRUE(l);
    ASSERT_EQ(::chown(p.c_str(), 65534, 65534), 0);
    auto c = connect_receiver(p, std::nullopt);
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().err(), EACCES);
    EXPECT_TRUE(contains(c.error().message(), "belongs to uid 65534")) << c.error().message();
    EXPECT_FALSE(connect_receiver(p, 1000u));
    auto ok = connect_receiver(p, 65534u);
    EXPECT_TRUE(ok) << ok.error().message();
}

// The file says root, the listener is another user (it bound the socket,
// root chowned the file, or the file was swapped after the check): the
// listener's credentials decide, before anything is sent.
TEST(ConnectReceiver, ListenerOfAnotherUidIsRefused) {
    NEED_ROOT();
    TempDir t;
    ASSERT_EQ(::chmod(t.path().c_str(), 0777), 0);
    const std::string p = t.path() + "/s";
    Pipe ready, done;
    pid_t child = fork_child([&] {
        if (::setgid(65534) != 0 || ::setuid(65534) != 0)
            return 10;
        auto l = listen_at(p);
        if (!l)
            return 11;
        char c = 1;
        if (::write(ready.w.get(), &c, 1) != 1)
            return 12;
        done.w.reset();
        // Until the parent closes its end of `done`.
        return ::read(done.r.get(), &c, 1) == 0 ? 0 : 13;
    });
    ready.w.reset();
    done.r.reset();
    char c = 0;
    ASSERT_EQ(::read(ready.r.get(), &c, 1), 1);
    ASSERT_EQ(::chown(p.c_str(), 0, 0), 0);
    auto refused = connect_receiver(p, std::nullopt);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().err(), EACCES);
    EXPECT_TRUE(contains(refused.error().message(), "running as uid 65534"))
        << refused.error().message();
    EXPECT_TRUE(contains(refused.error().message(), "pid " + std::to_string(child)))
        << refused.error().message();
    EXPECT_FALSE(connect_receiver(p, 1000u));
    auto ok = connect_receiver(p, 65534u);
    EXPECT_TRUE(ok) << ok.error().message();
    done.w.reset();
    EXPECT_EQ(wait_child(child), 0);
}

TEST(VerifyNode, SysfsPathsPerNode) {
    EXPECT_EQ(sysfs_dev_file("/sys", "/dev/vfio/devices/vfio2", "0000:00:03.0", "vfio2"),
              "/sys/bus/pci/devices/0000:00:03.0/vfio-dev/vfio2/dev");
    EXPECT_EQ(sysfs_dev_file("/sys", "/dev/vfio/devices/noiommu-vfio0", "0000:00:03.0", "vfio0"),
              "/sys/bus/pci/devices/0000:00:03.0/vfio-dev/vfio0/dev");
    EXPECT_EQ(sysfs_dev_file("/sys", "/dev/vfio/7", "", ""), "/sys/class/vfio/7/dev");
    EXPECT_EQ(sysfs_dev_file("/sys", "/dev/vfio/noiommu-0", "", ""),
              "/sys/class/vfio/noiommu-0/dev");
    EXPECT_EQ(sysfs_dev_file("/sys", "/dev/vfio/vfio", "", ""), "/sys/class/misc/vfio/dev");
    EXPECT_EQ(sysfs_dev_file("/sys", "/dev/iommu", "", ""), "/sys/class/misc/iommu/dev");
}

TEST(VerifyNode, RdevMustMatchSysfs) {
    TempDir t;
    const std::string dev = t.path() + "/dev";
    vfio::Fd null(::open("/dev/null", O_RDWR | O_CLOEXEC));
    ASSERT_TRUE(null);
    struct stat st {};
    ASSERT_EQ(::fstat(null.get(), &st), 0);
    std::ofstream(dev) << major(st.st_rdev) << ":" << minor(st.st_rdev) << "\n";
    auto ok = verify_node(null.get(), "/dev/null", dev);
    EXPECT_TRUE(ok) << ok.error().message();
    std::ofstream(dev) << major(st.st_rdev) << ":" << minor(st.st_rdev) + 1 << "\n";
    auto wrong = verify_node(null.get(), "/dev/null", dev);
    ASSERT_FALSE(wrong);
    EXPECT_EQ(wrong.error().err(), EXDEV);
    EXPECT_TRUE(contains(wrong.error().message(), "says")) << wrong.error().message();
    // A regular file where a device node belongs.
    vfio::Fd file(::open(dev.c_str(), O_RDONLY | O_CLOEXEC));
    auto notdev = verify_node(file.get(), dev, dev);
    ASSERT_FALSE(notdev);
    EXPECT_EQ(notdev.error().err(), EXDEV);
    auto nosysfs = verify_node(null.get(), "/dev/null", t.path() + "/missing");
    EXPECT_FALSE(nosysfs);
}

// In a child (it closes fds): two kept fds land on 3 and 4 in order,
// without close-on-exec, and every other fd above 2 is gone.
TEST(KeepOnlyFds, MovesKeptFdsAndClosesTheRest) {
    pid_t child = fork_child([] {
        const int a = ::memfd_create("a", MFD_CLOEXEC), b = ::memfd_create("b", MFD_CLOEXEC);
        const int stray = ::open("/dev/null", O_RDONLY);  // inherited, not close-on-exec
        const int high = ::fcntl(a, F_DUPFD, 40);
        if (a < 0 || b < 0 || stray < 0 || high < 0 || ::ftruncate(a, 4096) != 0 ||
            ::ftruncate(b, 8192) != 0)
            return 10;
        const int keep[] = {b, high};  // b (8192 bytes) to 3, a's copy (4096) to 4
        if (!keep_only_fds(keep))
            return 11;
        struct stat st {};
        if (::fstat(3, &st) != 0 || st.st_size != 8192)
            return 12;
        if (::fstat(4, &st) != 0 || st.st_size != 4096)
            return 13;
        if (::fcntl(3, F_GETFD) != 0 || ::fcntl(4, F_GETFD) != 0)
            return 14;  // close-on-exec must be clear
        for (int fd = 5; fd < 1024; ++fd)
            if (::fcntl(fd, F_GETFD) >= 0)
                return 15;
        return 0;
    });
    EXPECT_EQ(wait_child(child), 0);
}

TEST(DriverEnvironment, KnownSetOnly) {
    const auto env = driver_environment(
        {"LD_PRELOAD=/tmp/evil.so", "PATH=/tmp/evil", "LD_LIBRARY_PATH=/tmp", "TERM=xterm",
         "LC_ALL=C", "VFIOKIT_VFIO_MODE=cdev", "VFIOKIT_EXTERNAL_FDS=mode=cdev,iommufd=9",
         "IFS=x", "NOEQUALS"},
        "VFIOKIT_EXTERNAL_FDS", "mode=cdev,iommufd=3,0000:00:03.0=4");
    const std::vector<std::string> want{
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/",
        "TERM=xterm", "LC_ALL=C", "VFIOKIT_VFIO_MODE=cdev",
        "VFIOKIT_EXTERNAL_FDS=mode=cdev,iommufd=3,0000:00:03.0=4"};
    EXPECT_EQ(env, want);
}

TEST(ResolveCommand, CallersPathFindsTheProgram) {
    TempDir t;
    const std::string exe = t.path() + "/drv", plain = t.path() + "/data";
    std::ofstream(exe) << "#!/bin/sh\n";
    std::ofstream(plain) << "x";
    ASSERT_EQ(::chmod(exe.c_str(), 0755), 0);
    auto r = resolve_command("drv", "/nonexistent:" + t.path());
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(*r, exe);
    EXPECT_FALSE(resolve_command("data", t.path())) << "not executable";
    auto missing = resolve_command("nope", t.path());
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().err(), ENOENT);
    EXPECT_TRUE(contains(missing.error().message(), "nope")) << missing.error().message();
    EXPECT_EQ(resolve_command("/bin/true", "").value_or(""), "/bin/true");
}

// The binary refuses bad options before it opens anything.
std::pair<int, std::string> run_broker(const std::string& args) {
    const char* b = std::getenv("VFIOKIT_BROKER");
    if (!b)
        return {-1, "VFIOKIT_BROKER is not set (meson sets it)"};
    FILE* f = ::popen((std::string(b) + " " + args + " 2>&1").c_str(), "r");
    if (!f)
        return {-1, "popen"};
    std::string out;
    char buf[256];
    while (std::fgets(buf, sizeof buf, f))
        out += buf;
    const int st = ::pclose(f);
    return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

TEST(BrokerBinary, GidZeroIsRefused) {
    auto [rc, out] = run_broker("--uid 1000 --gid 0 --device 0000:00:03.0 -- true");
    EXPECT_EQ(rc, 1) << out;
    EXPECT_TRUE(contains(out, "--gid 0")) << out;
}

TEST(BrokerBinary, ExpectUidIsForSocketMode) {
    auto [rc, out] = run_broker("--expect-uid 1000 --device 0000:00:03.0 -- true");
    EXPECT_EQ(rc, 1) << out;
    EXPECT_TRUE(contains(out, "--expect-uid is for --socket")) << out;
}

}  // namespace
}  // namespace vfiokit::broker

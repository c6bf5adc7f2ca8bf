#include "huge_dir.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <string>

namespace vfiokit::eal::detail {
namespace {

TEST(HugeDir, TmpfsIsRefusedByName) {
    // /dev/shm is tmpfs on Linux; the test says so if this machine differs.
    struct statfs st {};
    ASSERT_EQ(::statfs("/dev/shm", &st), 0) << "no /dev/shm on this machine";
    ASSERT_EQ(static_cast<unsigned long>(st.f_type), 0x01021994UL) << "/dev/shm is not tmpfs here";
    auto r = check_huge_dir("/dev/shm", 2u << 20);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().err(), EINVAL);
    EXPECT_NE(r.error().message().find("--huge-dir /dev/shm is on tmpfs, not hugetlbfs"),
              std::string::npos)
        << r.error().message();
    EXPECT_NE(r.error().message().find("mount -t hugetlbfs -o pagesize=2M none /dev/shm"),
              std::string::npos)
        << r.error().message();
}

TEST(HugeDir, MissingDirectoryGivesItsErrno) {
    auto r = check_huge_dir("/nonexistent-vfiokit-dir", 2u << 20);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().err(), ENOENT);
}

TEST(HugeDir, StaleFilesOfExitedProcessesAreRemoved) {
    char tmpl[] = "/tmp/vfiokit-huge-dir-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    const std::string dir = tmpl;
    // A pid that is certainly gone: a child, reaped.
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0)
        ::_exit(0);
    ASSERT_EQ(::waitpid(child, nullptr, 0), child);
    const std::string gone = dir + "/vfiokit-" + std::to_string(child) + "-0";
    const std::string mine = dir + "/vfiokit-" + std::to_string(::getpid()) + "-4096";
    const std::string other = dir + "/not-ours-1-2";
    for (const auto& f : {gone, mine, other}) {
        const int fd = ::open(f.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        ASSERT_GE(fd, 0) << f;
        ::close(fd);
    }
    EXPECT_EQ(remove_stale_files(dir), 1u);
    EXPECT_NE(::access(gone.c_str(), F_OK), 0);
    EXPECT_EQ(::access(mine.c_str(), F_OK), 0);
    EXPECT_EQ(::access(other.c_str(), F_OK), 0);
    for (const auto& f : {mine, other})
        ::unlink(f.c_str());
    ::rmdir(dir.c_str());
}

}  // namespace
}  // namespace vfiokit::eal::detail

// Other processes as the EAL sees them (process.hpp): alive or not (a
// zombie is not), and who holds a file open.
#include "process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

namespace vfiokit::eal::detail {
namespace {

TEST(Process, AliveUntilExitedAndNotAsAZombie) {
    EXPECT_TRUE(process_alive(::getpid()));
    EXPECT_FALSE(process_alive(0));
    EXPECT_FALSE(process_alive(-1));
    int go[2];
    ASSERT_EQ(::pipe(go), 0);
    const pid_t child = ::fork();
    if (child == 0) {
        ::close(go[1]);  // EOF once the parent closes its end
        char c;
        (void)!::read(go[0], &c, 1);
        ::_exit(0);
    }
    ::close(go[0]);
    EXPECT_TRUE(process_alive(child));
    ::close(go[1]);  // the child exits; not reaped yet: a zombie
    bool zombie_seen_dead = false;
    for (int i = 0; i < 200 && !zombie_seen_dead; ++i) {
        zombie_seen_dead = !process_alive(child);
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    EXPECT_TRUE(zombie_seen_dead) << "a zombie counted as alive";
    int st = 0;
    ASSERT_EQ(::waitpid(child, &st, 0), child);
    EXPECT_FALSE(process_alive(child));
}

TEST(Process, HoldersOfAFileAreNamedWithTheirPids) {
    char path[] = "/tmp/vfiokit-process-test-XXXXXX";
    const int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    ::close(fd);
    // This process is never listed, even holding the file.
    const int mine = ::open(path, O_RDONLY | O_CLOEXEC);
    EXPECT_TRUE(processes_holding({path}).empty());
    int go[2], ready[2];
    ASSERT_EQ(::pipe(go), 0);
    ASSERT_EQ(::pipe(ready), 0);
    const pid_t child = ::fork();
    if (child == 0) {
        const int held = ::open(path, O_RDONLY);
        (void)!::write(ready[1], "r", 1);
        char c;
        (void)!::read(go[0], &c, 1);
        ::_exit(held >= 0 ? 0 : 1);
    }
    char c;
    ASSERT_EQ(::read(ready[0], &c, 1), 1);
    const auto holders = processes_holding({"/nonexistent", path});
    ASSERT_EQ(holders.size(), 1u);
    EXPECT_EQ(holders.front(), child);
    const std::string text = pids_text(holders);
    EXPECT_EQ(text.rfind("pid " + std::to_string(child) + " (", 0), 0u) << text;
    (void)!::write(go[1], "g", 1);
    int st = 0;
    ASSERT_EQ(::waitpid(child, &st, 0), child);
    EXPECT_TRUE(processes_holding({path}).empty());
    for (int f : {go[0], go[1], ready[0], ready[1], mine})
        ::close(f);
    ::unlink(path);
}

}  // namespace
}  // namespace vfiokit::eal::detail

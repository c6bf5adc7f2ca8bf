// testpmd's interactive commands (a subset of DPDK testpmd's, same words),
// and reading lines from a file descriptor while watching for a signal.
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <string_view>

#include "testpmd.hpp"

namespace vfiokit::testpmd {

inline constexpr std::string_view kPrompt = "testpmd> ";

// Runs one command line on `tp`, printing to `out`. Returns false when the
// command was quit (or exit). Unknown commands print "Command not found".
[[nodiscard]] bool execute(Testpmd& tp, std::string_view line, std::ostream& out);
[[nodiscard]] std::string commands_help();

// Lines from `fd` (stdin), waiting in poll() so that a byte on `wake_fd`
// (a signal handler's self-pipe) interrupts the wait.
class LineReader {
public:
    LineReader(int fd, int wake_fd) : fd_(fd), wake_(wake_fd) {}
    // The next line without its newline; nullopt at end of input (a last
    // unterminated line is returned first) or when woken.
    [[nodiscard]] std::optional<std::string> next();
    [[nodiscard]] bool woken() const { return woken_; }

private:
    int fd_;
    int wake_;
    std::string buf_;
    bool eof_ = false;
    bool woken_ = false;
};

}  // namespace vfiokit::testpmd

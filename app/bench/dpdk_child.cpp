#include "dpdk_child.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <sstream>

namespace vfiokit::bench {

namespace {

constexpr std::string_view kMark = "@@DPDK-BENCH ";

std::string exit_status(int st) {
    if (WIFEXITED(st))
        return "exit status " + std::to_string(WEXITSTATUS(st));
    if (WIFSIGNALED(st))
        return "signal " + std::to_string(WTERMSIG(st));
    return "status " + std::to_string(st);
}

}  // namespace

double DpdkRun::number(const std::string& key) const {
    auto it = values.find(key);
    return it == values.end() ? -1 : std::strtod(it->second.c_str(), nullptr);
}

std::string find_dpdk_program(const std::string& path) {
    if (!path.empty())
        return path == "none" || ::access(path.c_str(), X_OK) != 0 ? std::string() : path;
    char self[4096];
    ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return {};
    std::string dir(self, static_cast<std::size_t>(n));
    std::string candidate = dir.substr(0, dir.rfind('/') + 1) + "vfiokit-bench-dpdk";
    return ::access(candidate.c_str(), X_OK) == 0 ? candidate : std::string();
}

Result<DpdkRun> run_dpdk(const std::vector<std::string>& argv) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0)
        return fail(errno, "pipe2");
    std::vector<char*> args;
    for (const auto& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid = ::fork();
    if (pid < 0) {
        int err = errno;
        ::close(fds[0]);
        ::close(fds[1]);
        return fail(err, "fork");
    }
    if (pid == 0) {
        // stdout and stderr both into the pipe (dup2 clears O_CLOEXEC).
        ::dup2(fds[1], 1);
        ::dup2(fds[1], 2);
        ::execv(args[0], args.data());
        _exit(127);
    }
    ::close(fds[1]);
    std::string out;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fds[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fds[0]);
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }

    DpdkRun r;
    std::istringstream lines(out);
    for (std::string line; std::getline(lines, line);) {
        if (!line.starts_with(kMark)) {
            r.log += line + "\n";
            continue;
        }
        std::istringstream kv(line.substr(kMark.size()));
        for (std::string tok; kv >> tok;)
            if (auto eq = tok.find('='); eq != std::string::npos)
                r.values[tok.substr(0, eq)] = tok.substr(eq + 1);
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || r.values.empty())
        return fail(Error(0, argv[0] + " failed (" + exit_status(st) + ")")
                        .hint("its output:\n" + r.log));
    return r;
}

}  // namespace vfiokit::bench

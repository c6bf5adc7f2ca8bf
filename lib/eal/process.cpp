#include "process.hpp"

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <optional>
#include <string_view>

#include "vfiokit/eal/sysfs.hpp"

namespace vfiokit::eal::detail {

namespace {

std::optional<pid_t> pid_of(std::string_view name) {
    pid_t pid = 0;
    auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), pid);
    if (ec != std::errc() || end != name.data() + name.size() || pid <= 0)
        return std::nullopt;
    return pid;
}

}  // namespace

bool process_alive(pid_t pid) {
    if (pid <= 0 || (::kill(pid, 0) != 0 && errno != EPERM))
        return false;
    auto stat = sysfs::Root().read("/proc/" + std::to_string(pid) + "/stat");
    if (!stat)
        return false;  // gone between the two looks
    // The command name may hold spaces and ')': the state follows the last.
    const std::string& line = *stat;
    const auto paren = line.rfind(')');
    if (paren == std::string::npos || paren + 2 >= line.size())
        return true;
    const char state = line[paren + 2];
    return state != 'Z' && state != 'X';
}

std::vector<pid_t> processes_holding(const std::vector<std::string>& paths) {
    std::vector<pid_t> out;
    DIR* proc = ::opendir("/proc");
    if (proc == nullptr)
        return out;
    const pid_t self = ::getpid();
    while (const dirent* p = ::readdir(proc)) {
        const auto pid = pid_of(p->d_name);
        if (!pid || *pid == self)
            continue;
        const std::string fds = "/proc/" + std::string(p->d_name) + "/fd";
        DIR* d = ::opendir(fds.c_str());
        if (d == nullptr)
            continue;  // exited meanwhile, or not ours to read
        bool holds = false;
        while (const dirent* f = ::readdir(d)) {
            if (f->d_name[0] == '.')
                continue;
            char target[256];
            const ssize_t n =
                ::readlinkat(::dirfd(d), f->d_name, target, sizeof target - 1);
            if (n <= 0)
                continue;
            const std::string_view t(target, static_cast<std::size_t>(n));
            if (std::find(paths.begin(), paths.end(), t) != paths.end()) {
                holds = true;
                break;
            }
        }
        ::closedir(d);
        if (holds)
            out.push_back(*pid);
    }
    ::closedir(proc);
    std::sort(out.begin(), out.end());
    return out;
}

std::string pids_text(const std::vector<pid_t>& pids) {
    std::string s;
    for (pid_t pid : pids) {
        std::string comm =
            sysfs::Root().read("/proc/" + std::to_string(pid) + "/comm").value_or("?");
        while (!comm.empty() && comm.back() == '\n')
            comm.pop_back();
        s += (s.empty() ? "" : ", ") + ("pid " + std::to_string(pid) + " (" + comm + ")");
    }
    return s;
}

}  // namespace vfiokit::eal::detail

// Other processes, as the EAL needs to know them: whether one still runs,
// and which ones hold a device node open. Private to lib/eal.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace vfiokit::eal::detail {

// Whether `pid` is a live process: it exists (kill(pid, 0) finds it, or
// finds it and refuses: EPERM) and is neither a zombie nor dead
// (/proc/PID/stat state Z or X: kill would still find a zombie until its
// parent reaps it, but it holds no memory, fds or devices any more).
[[nodiscard]] bool process_alive(pid_t pid);

// The processes other than this one that have one of `paths` open (by
// /proc/PID/fd links; a process whose fds cannot be read is not listed),
// in pid order. For errors that name who holds a device.
[[nodiscard]] std::vector<pid_t> processes_holding(const std::vector<std::string>& paths);

// "pid 12 (name), pid 34 (name)": each process with its command name.
[[nodiscard]] std::string pids_text(const std::vector<pid_t>& pids);

}  // namespace vfiokit::eal::detail

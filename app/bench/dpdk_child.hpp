// Runs vfiokit-bench-dpdk (app/bench/dpdk_eal_init.c) as a child process and
// reads back its "@@DPDK-BENCH key=value ..." line. DPDK gets a process of its
// own each round: its EAL can be initialized once per process, and its
// teardown is only complete when the process exits.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "vfiokit/eal/error.hpp"

namespace vfiokit::bench {

struct DpdkRun {
    std::map<std::string, std::string> values;  // from the @@DPDK-BENCH line
    std::string log;                            // everything else it printed
    [[nodiscard]] double number(const std::string& key) const;
};

// The program next to this executable (or `path` when given); empty when
// there is none (DPDK was not found when the project was configured).
[[nodiscard]] std::string find_dpdk_program(const std::string& path);

// Runs `argv` (argv[0] is the program), waits for it, and parses its output.
// Fails, with the program's output in the message, when it exits non-zero
// or prints no result line.
[[nodiscard]] Result<DpdkRun> run_dpdk(const std::vector<std::string>& argv);

}  // namespace vfiokit::bench

// EAL command-line options. Names follow DPDK's EAL where the meaning is the
// same (-a/--allow, -b/--block); the VFIO options are vfiokit's own.
//
//   app [EAL options] -- [application options]
//
//   --vfio-mode=auto|cdev|group|compat|noiommu   force a VFIO mode (default auto;
//                                                also VFIOKIT_VFIO_MODE)
//   --vfio-type1=auto|v2|v1                      type1 flavour in group/compat mode
//                                                (also VFIOKIT_VFIO_TYPE1)
//   -a, --allow <address>[,vf_token=<UUID>]      use only these devices (repeatable)
//   -b, --block <address>                        never use these devices (repeatable)
//   -m <MiB>                                     memory to reserve at start-up
//   --socket-mem <MiB>[,<MiB>...]                memory per NUMA node at start-up
//   --no-huge                                    4 KiB pages instead of hugepages
//   --huge-dir <dir>                             back memory with files in this hugetlbfs
//   --iova-mode=va|pa|auto                       IOVA = VA, or physical addresses
//   --base-virtaddr <addr>                       where the memory window starts
//   --proc-type=primary|secondary|auto           this process's role (default primary;
//                                                auto: secondary if a primary with the
//                                                same --file-prefix runs, else primary)
//   --file-prefix <name>                         names the runtime directory that primary
//                                                and secondaries share (default "vfiokit")
//
// Options on the command line win over the environment.
//
// Thread-safety: parse_options() writes only `out`; Options is a value.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "vfiokit/eal/error.hpp"
#include "vfiokit/eal/memory.hpp"
#include "vfiokit/eal/pci_address.hpp"
#include "vfiokit/eal/vfio/vfio.hpp"

namespace vfiokit::eal {

// DPDK's --proc-type. See vfiokit/eal/mp.hpp for what each role does.
enum class ProcType { primary, secondary, automatic };
[[nodiscard]] Result<ProcType> parse_proc_type(std::string_view s);
[[nodiscard]] std::string_view to_string(ProcType t);

struct AllowedDevice {
    PciAddress addr;
    std::string vf_token;  // empty when none
};

struct Options {
    vfio::Options vfio;
    std::vector<AllowedDevice> allow;
    std::vector<PciAddress> block;
    MemoryOptions memory;                    // iova_mode starts at automatic
    std::uint64_t memory_mb = 0;             // -m
    std::vector<std::uint64_t> socket_mem_mb;  // --socket-mem, index = node
    ProcType proc_type = ProcType::primary;  // --proc-type
    // Whether this process takes part in multi-process (a runtime
    // directory, a primary's channel): set by --proc-type or --file-prefix.
    // Without either, the EAL is a plain single process.
    bool multi_process = false;
    // --file-prefix: letters, digits, '.', '_', '-'; no leading '.'; at
    // most 64 characters (it becomes a directory name).
    std::string file_prefix = "vfiokit";
    Options() { memory.iova_mode = IovaMode::automatic; }
};

// Parses argv[1..] up to "--" (or the end). Returns the index of the first
// application argument (after "--"), argc when there is none. Errors name
// the option and what it accepts.
[[nodiscard]] Result<int> parse_options(int argc, const char* const* argv, Options& out);

[[nodiscard]] std::string options_usage();

}  // namespace vfiokit::eal

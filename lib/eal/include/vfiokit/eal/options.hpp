/// \file
/// EAL command-line options. Names follow DPDK's EAL where the meaning is the
/// same (-a/`--allow`, -b/`--block`, -m, `--socket-mem`, ...); the VFIO options are
/// vfiokit's own.
///
/// \verbatim
///   app [EAL options] -- [application options]
/// \endverbatim
///
/// Every option is one row of the table in options.cpp (kOptions): its long
/// and short name, argument, help text, and the parser that checks the value
/// and stores it in Options. options_usage() prints that table; it is the
/// reference for what each option does. Options on the command line win over
/// the environment (VFIOKIT_VFIO_MODE, VFIOKIT_VFIO_TYPE1).
///
/// Thread-safety: parse_options() writes only `out`; Options is a value.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vfiokit/eal/error.hpp"
#include "vfiokit/eal/lcore.hpp"
#include "vfiokit/eal/log.hpp"
#include "vfiokit/eal/memory.hpp"
#include "vfiokit/eal/pci_address.hpp"
#include "vfiokit/eal/vfio/vfio.hpp"

namespace vfiokit::eal {

/// DPDK's `--proc-type`. See vfiokit/eal/mp.hpp for what each role does.
enum class ProcType { primary, secondary, automatic };
/// "primary", "secondary" or "auto"; EINVAL naming the value otherwise.
[[nodiscard]] Result<ProcType> parse_proc_type(std::string_view s);
/// The name parse_proc_type() reads.
[[nodiscard]] std::string_view to_string(ProcType t);

/// One "KEY=VALUE" of -a BDF,KEY=VALUE,...: an argument for the driver that
/// probes the device. The driver checks the key against the parameters it
/// declares when it probes (the EAL does not know them at parse time).
struct DeviceArg {
    std::string key;
    std::string value;
    bool operator==(const DeviceArg&) const = default;
};

/// -a BDF[,vf_token=UUID][,KEY=VALUE...]. vf_token goes to VFIO (the kernel
/// checks it when the device is opened); the other pairs to the driver.
struct AllowedDevice {
    PciAddress addr;
    std::string vf_token;        ///< empty when none
    std::vector<DeviceArg> args;  ///< in command-line order, vf_token excluded
};

/// Every EAL option, as parse_options() stores them (DPDK's names).
struct Options {
    vfio::Options vfio;
    std::vector<AllowedDevice> allow;
    std::vector<PciAddress> block;
    MemoryOptions memory;                    ///< iova_mode starts at automatic
    std::uint64_t memory_mb = 0;             ///< -m, at most kMaxMemoryMb
    std::vector<std::uint64_t> socket_mem_mb;  ///< --socket-mem, index = node
    ProcType proc_type = ProcType::primary;  ///< --proc-type
    /// Whether this process takes part in multi-process (a runtime
    /// directory, a primary's channel): set by `--proc-type` or `--file-prefix`.
    /// Without either, the EAL is a plain single process.
    bool multi_process = false;
    /// `--file-prefix`: letters, digits, '.', '_', '-'; no leading '.'; at
    /// most 64 characters (it becomes a directory name).
    std::string file_prefix = "vfiokit";
    /// -l, -c or `--lcores` (one of them): the lcores and their CPUs, by
    /// ascending id. Empty: the main lcore alone, on every CPU the process
    /// may use (Lcores::start).
    std::vector<LcoreCpus> lcores;
    /// `--main-lcore`; unset: the lowest id of `lcores` (0 when empty).
    std::optional<unsigned> main_lcore;
    /// `--telemetry` / `--no-telemetry` (DPDK's): whether the telemetry service
    /// serves this process, when the program links it (lib/telemetry,
    /// doc/telemetry.md). On by default, as in DPDK.
    bool telemetry = true;
    /// `--log-level` (repeatable, applied in order), `--log-timestamp`, `--syslog`
    /// (vfiokit/eal/log.hpp): Eal::init applies them before anything else.
    std::vector<log::LevelSpec> log_levels;
    log::Timestamp log_timestamp = log::Timestamp::none;
    std::optional<int> syslog_facility;
    /// The command line parse_options() read: argv[0] and the EAL options up
    /// to "--", and the application's arguments after it (what telemetry's
    /// /eal/params and /eal/app_params report).
    std::vector<std::string> eal_args;
    std::vector<std::string> app_args;
    /// The main lcore these options give.
    [[nodiscard]] unsigned main_lcore_id() const {
        return main_lcore ? *main_lcore : lcores.empty() ? 0 : lcores.front().id;
    }
    Options() { memory.iova_mode = IovaMode::automatic; }
};

/// The largest -m or `--socket-mem` value: 2^47 bytes (128 TiB), the user
/// address space of x86-64 with 4-level paging. Above it the byte count would
/// mean nothing a process can map (and 2^44 MiB and up wrap around 64 bits).
inline constexpr std::uint64_t kMaxMemoryMb = std::uint64_t{1} << 27;
/// `--base-virtaddr` must be at least this: the kernel never maps the lowest
/// pages (vm.mmap_min_addr, 64 KiB by default).
inline constexpr std::uint64_t kMinBaseVirtaddr = 0x10000;

/// Parses argv[1..] up to "--" (or the end). Returns the index of the first
/// application argument (after "--"), argc when there is none. Errors name
/// the option and what it accepts.
[[nodiscard]] Result<int> parse_options(int argc, const char* const* argv, Options& out);

/// One row of the option table. `parse` checks the value (empty for a flag)
/// and stores it; errors name the option and what it accepts.
struct OptionSpec {
    std::string_view name;     ///< long name without "--": "allow"; empty for -m
    char short_name;           ///< 'a', or 0 when there is none
    std::string_view arg;      ///< "ADDRESS[,KEY=VALUE...]"; empty for a flag; "[=...]" for an
                               ///< optional value, given only as `--name=value`
    std::string_view help;
    Result<void> (*parse)(std::string_view opt, std::string_view value, Options& out);
};
/// Every EAL option, in the order options_usage() prints them.
[[nodiscard]] std::span<const OptionSpec> option_table();

/// Parses one -a value: "BDF[,vf_token=UUID][,KEY=VALUE...]".
[[nodiscard]] Result<AllowedDevice> parse_allowed_device(std::string_view v);

/// The help text of every EAL option, generated from the table.
[[nodiscard]] std::string options_usage();

}  // namespace vfiokit::eal

/// \file
/// Logging: events the library reports as they happen, by component and
/// level, in the manner of DPDK's rte_log.
///
/// \code
///   static log::Component kLog("pci.bar");
///   kLog.warning("{}: read outside the BAR (read returns all-ones)", what);
///   if (kLog.enabled(log::Level::debug)) kLog.debug("mapped {:#x}", iova);
/// \endcode
///
/// Errors stay values (vfiokit/eal/error.hpp): a function that fails returns
/// its Error and logs nothing. Logging is for what no caller is told: a
/// read that went wrong inside an unchecked accessor, a kernel request that
/// arrived, a fallback that was taken.
///
/// Components are objects with static storage duration, registered when
/// constructed; names are dotted ("vfio", "pci.bar", "net.virtio"). Each has
/// a level: messages above it are dropped after one relaxed atomic load, so
/// a disabled debug message costs nothing on the data path (its arguments
/// are formatted only when enabled). Every component starts at info.
///
/// Levels are set by specs, as DPDK's `--log-level` takes them:
///   LEVEL             every component (a name below, or 1..8)
///   PATTERN:LEVEL     components whose name matches the shell pattern
///                     (fnmatch: "pci.*", "vfio")
///   REGEX,LEVEL       components whose name matches the extended regex
/// Specs apply in the order given, to the components that exist and to
/// those registered later, so a pattern may name a driver not yet loaded.
///
/// Output goes to stderr, one line per message:
///   [TIMESTAMP ]vfiokit: COMPONENT: LEVEL: MESSAGE       (warning and worse)
///   [TIMESTAMP ]vfiokit: COMPONENT: MESSAGE              (notice, info, debug)
/// or to syslog (`--syslog`), with the level as the syslog priority; then a
/// copy goes to stderr only when stderr is a terminal (as DPDK does).
///
/// Thread-safety: every function may be called from any thread; a message
/// is written with one write(2) (lines are never interleaved).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "vfiokit/eal/error.hpp"
#include "vfiokit/eal/strformat.hpp"

namespace vfiokit::log {

/// syslog's priorities, one higher (DPDK's RTE_LOG_EMERG = 1 ... DEBUG = 8).
enum class Level : std::uint8_t {
    emergency = 1,
    alert,
    critical,
    error,
    warning,
    notice,
    info,
    debug,
};
/// The level's name: "emergency" ... "debug".
[[nodiscard]] std::string_view to_string(Level l);
/// "debug", "DEBUG", "8"; DPDK's short names too ("emerg", "crit", "err").
[[nodiscard]] Result<Level> parse_level(std::string_view s);

/// A named source of log messages ("pci.bar"), with its own level; see the
/// file's description for how levels are set.
class Component {
public:
    /// `name` must stay valid for the component's life (a literal).
    explicit Component(std::string_view name);
    ~Component();
    Component(const Component&) = delete;
    Component& operator=(const Component&) = delete;

    [[nodiscard]] std::string_view name() const { return name_; }
    [[nodiscard]] Level level() const { return level_.load(std::memory_order_relaxed); }
    [[nodiscard]] bool enabled(Level l) const { return l <= level(); }
    void set_level(Level l) { level_.store(l, std::memory_order_relaxed); }

    /// Writes `message` if `l` is enabled.
    void write(Level l, std::string_view message) const;
    template <class... A>
    void log(Level l, std::string_view pattern, const A&... args) const {
        if (enabled(l))
            write(l, strformat(pattern, args...));
    }
    template <class... A>
    void error(std::string_view p, const A&... a) const { log(Level::error, p, a...); }
    template <class... A>
    void warning(std::string_view p, const A&... a) const { log(Level::warning, p, a...); }
    template <class... A>
    void notice(std::string_view p, const A&... a) const { log(Level::notice, p, a...); }
    template <class... A>
    void info(std::string_view p, const A&... a) const { log(Level::info, p, a...); }
    template <class... A>
    void debug(std::string_view p, const A&... a) const { log(Level::debug, p, a...); }

private:
    std::string_view name_;
    std::atomic<Level> level_;
};

/// One `--log-level` value, checked. `text` is what the user gave (for
/// messages); the rest is what it means.
struct LevelSpec {
    enum class Match { all, glob, regex };
    Match match = Match::all;
    std::string pattern;  ///< empty for `all`
    Level level = Level::info;
    std::string text;
};
/// Errors name the spec and what is accepted (and a bad regex's reason).
[[nodiscard]] Result<LevelSpec> parse_level_spec(std::string_view s);
/// Applies `spec` now and to components registered later.
void apply(const LevelSpec& spec);
/// Forgets every applied spec and puts every component back to info (tests,
/// and an EAL that is initialised again).
void reset_levels();

///@{
/// `--log-timestamp[=FORMAT]`: none, "reltime" (seconds since the first
/// message or since set_timestamp, "[   12.345678]"), "iso" (local time,
/// "2026-12-02T13:04:05.123456"). DPDK has more formats; these two are the
/// ones a reader of a lab log or a journal needs.
enum class Timestamp { none, reltime, iso };
[[nodiscard]] Result<Timestamp> parse_timestamp(std::string_view s);
void set_timestamp(Timestamp t);
///@}

///@{
/// `--syslog[=FACILITY]`: DPDK's facility names (auth, cron, daemon, ftp,
/// kern, lpr, mail, news, syslog, user, uucp, local0 ... local7). Opens the
/// log with the program's name and pid.
[[nodiscard]] Result<int> parse_syslog_facility(std::string_view s);
void use_syslog(int facility);
///@}
/// Back to stderr only.
void use_stderr();

/// Every registered component and its level, by name (telemetry, `--help`).
struct ComponentLevel {
    std::string name;
    Level level;
};
/// The registered components and their levels, sorted by name.
[[nodiscard]] std::vector<ComponentLevel> components();

/// Tests: every written line goes to `sink` instead of stderr and syslog
/// (the formatted line, without its newline), until cleared with nullptr.
void set_sink(std::function<void(Level, std::string_view component, std::string_view line)> sink);

}  // namespace vfiokit::log

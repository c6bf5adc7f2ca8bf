/// \file
/// Telemetry: DPDK's v2 telemetry protocol, served by a vfiokit process
/// (doc/telemetry.md), so that DPDK's own client (dpdk-telemetry.py) and
/// the monitoring tools built on it read a vfiokit process unchanged.
///
/// The protocol (DPDK's lib/telemetry, version 2):
///   - a SOCK_SEQPACKET listening socket, `<runtime dir>/dpdk_telemetry.v2`
///     (":1", ":2", ... appended for the second, third process of a
///     prefix), where the runtime directory is DPDK's for the EAL's
///     `--file-prefix`: dpdk_runtime_dir();
///   - on connect, the server sends a hello:
///       {"version":"vfiokit 0.1.0","pid":1234,"max_output_len":65536}
///   - then each message the client sends is one command, "/path" or
///     "/path,params", and gets one message back:
///       `{"/path":<value>}`                   the command's answer
///       {"/path":null,"error":"..."}          unknown command, bad params,
///                                             or the command failed
///       {"error":"..."}                       not a command at all (empty,
///                                             no leading '/', not
///                                             printable ASCII, too long)
///     DPDK's server answers the failures with {"/path":null} alone; the
///     "error" member is vfiokit's, and a client that reads only the
///     command's key sees the same null.
///
/// Commands are registered in a Commands table; the Server serves one table
/// on one socket, on a thread of its own (never an lcore: the data path
/// takes no lock the commands take). Telemetry::start (service.cpp) is what
/// an EAL process runs: every command set below on the prefix's socket.
///
/// Thread-safety: Commands::add() and reply() may be called from any
/// thread (one lock; handlers run under it, one at a time). A Server's
/// methods may be called from any thread; its handlers run on its thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "vfiokit/eal/error.hpp"
#include "vfiokit/eal/recursive_lock.hpp"
#include "vfiokit/telemetry/json.hpp"

namespace vfiokit::eal {
class Eal;
class Heap;
class Lcores;
class Memory;
}  // namespace vfiokit::eal
namespace vfiokit::vfio {
class Vfio;
}  // namespace vfiokit::vfio

namespace vfiokit::telemetry {

/// The longest command name (DPDK's MAX_CMD_LEN is 56, terminator included).
inline constexpr std::size_t kMaxCommandLen = 55;
/// The longest request message (DPDK's server reads 1024 bytes, keeping one
/// for a terminator).
inline constexpr std::size_t kMaxRequest = 1023;
/// The longest reply: what the hello announces as max_output_len, and what
/// DPDK's client then passes to recv(). A reply that would be longer is
/// replaced by an error naming its size.
inline constexpr std::size_t kMaxOutput = 64 * 1024;
/// The socket's file name (DPDK's SOCKET_NAME for version 2).
inline constexpr std::string_view kSocketName = "dpdk_telemetry.v2";

// ---------------------------------------------------------------------------
// Codec: requests and replies as bytes (codec.cpp). No I/O.

/// A request message, parsed: the command name and its parameters.
struct Command {
    std::string name;    ///< "/ethdev/stats"
    std::string params;  ///< "0" ("" when none was given)
    bool has_params = false;
};
/// One request message. A trailing '\n' (or "\r\n") is dropped, so a line
/// typed into a raw socket tool works. EINVAL naming what is wrong: empty,
/// no leading '/', a byte outside printable ASCII, a name longer than
/// kMaxCommandLen, a message longer than kMaxRequest.
[[nodiscard]] Result<Command> parse_command(std::string_view msg);

/// {"version":...,"pid":...,"max_output_len":...}
[[nodiscard]] std::string hello_message(std::string_view version, pid_t pid,
                                        std::size_t max_output = kMaxOutput);
/// `{"<name>":<value>}`; when longer than max_output, an error reply saying so.
[[nodiscard]] std::string reply_message(std::string_view name, const Json& value,
                                        std::size_t max_output = kMaxOutput);
/// `{"<name>":null,"error":"<why>"}`, or `{"error":"<why>"}` when name is empty.
[[nodiscard]] std::string error_message(std::string_view name, std::string_view why);

/// What this build calls itself in the hello and /info ("vfiokit 0.1.0").
[[nodiscard]] std::string_view version_string();

// ---------------------------------------------------------------------------
// Commands

/// A command's answer from its parameters (the text after the first ','; ""
/// when none). A failed Result becomes an error reply carrying message().
using Handler = std::function<Result<Json>(std::string_view params)>;

/// The command table: names, help texts and handlers.
class Commands {
public:
    /// With DPDK's built-in commands: "/" (every command's name), "/info"
    /// (the hello's fields) and `"/help,<command>"` (its help text).
    explicit Commands(std::size_t max_output = kMaxOutput);
    Commands(const Commands&) = delete;
    Commands& operator=(const Commands&) = delete;

    /// EINVAL for a name that is not '/' and printable ASCII without ',' or
    /// space, or longer than kMaxCommandLen; EEXIST when taken.
    [[nodiscard]] Result<void> add(std::string name, std::string help, Handler h);
    /// The reply to one request message: parse, run, encode. Never fails:
    /// every failure is an error reply. A handler that throws gets one too.
    [[nodiscard]] std::string reply(std::string_view request) const;
    /// Registered names, sorted.
    [[nodiscard]] std::vector<std::string> names() const;
    [[nodiscard]] std::size_t max_output() const { return max_output_; }

private:
    struct Entry {
        std::string help;
        Handler fn;
    };
    mutable std::mutex mu_;
    std::map<std::string, Entry, std::less<>> cmds_;
    std::size_t max_output_;
};

// ---------------------------------------------------------------------------
// Socket server (server.cpp)

/// DPDK's runtime directory for a file prefix, by the rules DPDK's EAL and
/// dpdk-telemetry.py share: $RUNTIME_DIRECTORY if set, else /var/run for
/// root, else $XDG_RUNTIME_DIR, else /tmp; then `"dpdk/<prefix>"`.
[[nodiscard]] std::string dpdk_runtime_dir(std::string_view prefix);

/// The server's limits.
struct ServerOptions {
    /// Connections served at once (DPDK's MAX_CONNECTIONS); one more is
    /// told so ({"error":...}) and closed at accept.
    std::size_t max_clients = 10;
    /// A client that sends nothing for this long is closed.
    std::chrono::milliseconds idle_timeout{std::chrono::minutes(5)};
    /// Peers of other uids than these are closed at accept (SO_PEERCRED);
    /// the process's effective uid and root are always served.
    std::vector<uid_t> allow_uids;
};

/// The telemetry socket and its thread, which answers every client from a
/// Commands table.
class Server {
public:
    /// Listens on `path` exactly. A socket file there that nobody listens
    /// on (a process that died) is replaced; EADDRINUSE when a live server
    /// has it. ENAMETOOLONG beyond sun_path. `commands` must outlive the
    /// Server. The file is unlinked when the Server goes.
    [[nodiscard]] static Result<std::unique_ptr<Server>> listen(std::string path,
                                                                const Commands& commands,
                                                                ServerOptions o = {});
    /// Listens in `dir` (created with its parents, mode 0700, when missing)
    /// as DPDK does: dpdk_telemetry.v2, or, while a live process holds it,
    /// dpdk_telemetry.v2:1, :2, ... (dpdk-telemetry.py -i N).
    [[nodiscard]] static Result<std::unique_ptr<Server>> listen_in(const std::string& dir,
                                                                   const Commands& commands,
                                                                   ServerOptions o = {});
    ~Server();  ///< stops the thread, closes every connection, unlinks the file
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    [[nodiscard]] const std::string& path() const;
    /// 0 for dpdk_telemetry.v2, N for dpdk_telemetry.v2:N.
    [[nodiscard]] unsigned instance() const;

    /// What the server has done so far.
    struct Stats {
        std::uint64_t accepted = 0;      ///< connections served
        std::uint64_t refused_full = 0;  ///< closed at accept: max_clients reached
        std::uint64_t refused_uid = 0;   ///< closed at accept: another uid
        std::uint64_t requests = 0;      ///< messages answered (any outcome)
        std::uint64_t malformed = 0;     ///< of which not a command at all
        std::uint64_t idle_closed = 0;   ///< closed after idle_timeout
        std::uint64_t send_failed = 0;   ///< closed: a reply could not be sent at once
        std::uint64_t open = 0;          ///< connections open now
    };
    [[nodiscard]] Stats stats() const;

private:
    struct Impl;
    explicit Server(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------------------
// Command sets

/// What the EAL commands read. parts_of() takes them from a running Eal; a
/// program without one (host tests) fills in what it has, and the commands
/// whose part is missing answer with an error saying so.
struct EalParts {
    std::vector<std::string> eal_args;  ///< argv[0] and the EAL options
    std::vector<std::string> app_args;  ///< after "--"
    eal::Lcores* lcores = nullptr;
    eal::Memory* memory = nullptr;
    std::function<std::vector<const eal::Heap*>()> heaps;
    vfio::Vfio* vfio = nullptr;
    /// Taken around reads of memory, heaps and VFIO state (the EAL lock).
    RecursiveLock* lock = nullptr;
};
/// The parts of a running Eal.
[[nodiscard]] EalParts parts_of(eal::Eal& e);

/// /eal/params, /eal/app_params, /eal/lcore/list, /eal/lcore/info,N,
/// /heap/info (commands_eal.cpp).
[[nodiscard]] Result<void> add_eal_commands(Commands& c, EalParts parts);
/// /vfio/mode, /vfio/containers, /vfio/devices, /vfio/mappings,ID
/// (commands_vfio.cpp).
[[nodiscard]] Result<void> add_vfio_commands(Commands& c, EalParts parts);
/// /ethdev/list, /ethdev/info,N, /ethdev/stats,N, /ethdev/xstats,N[,hide_zero=true],
/// /ethdev/link_status,N (commands_ethdev.cpp): this process's ports.
[[nodiscard]] Result<void> add_ethdev_commands(Commands& c);
/// /mempool/list, /mempool/info,NAME (commands_mempool.cpp): this
/// process's mbuf pools.
[[nodiscard]] Result<void> add_mempool_commands(Commands& c);

// ---------------------------------------------------------------------------
// What an EAL process runs (service.cpp)

/// Every command set above, served on the socket of `prefix` (listen_in
/// dpdk_runtime_dir(prefix)).
class Telemetry {
public:
    [[nodiscard]] static Result<std::unique_ptr<Telemetry>> start(const std::string& prefix,
                                                                  EalParts parts,
                                                                  ServerOptions o = {});
    ~Telemetry();
    [[nodiscard]] const Commands& commands() const { return *commands_; }
    [[nodiscard]] Server& server() const { return *server_; }

private:
    Telemetry() = default;
    // The server's handlers use the table: the server goes first.
    std::unique_ptr<Commands> commands_;
    std::unique_ptr<Server> server_;
};

}  // namespace vfiokit::telemetry

/// \file
/// Multi-process: a primary process and the secondaries that attach to it, as
/// in DPDK (`--proc-type`, `--file-prefix`). doc/multiprocess.md has the picture.
///
/// \code
///   primary                                   secondary
///   -------                                   ---------
///   auto dir  = open_runtime_dir(prefix);     auto dir = open_runtime_dir(prefix);
///   auto role = claim_role(type, *dir);       auto role = claim_role(type, *dir);
///   auto srv  = Server::listen(*dir, *role->lock);
///   serve_runtime(*srv, memory, facts);       auto c   = Client::connect(*dir);
///   srv->start();                             auto mem = attach_memory(**c);
/// \endcode
///
/// Runtime directory. One per prefix: `/var/run/vfiokit/<prefix>` for root
/// (DPDK: `/var/run/dpdk/<prefix>`), `$XDG_RUNTIME_DIR/vfiokit/<prefix>` for
/// others (`/tmp/vfiokit-<uid>/<prefix>` without XDG_RUNTIME_DIR). Mode 0700,
/// owned by the user: the directory is the first barrier against other
/// users, the SO_PEERCRED check the second. It holds:
///   primary.lock  flock(LOCK_EX) by the primary for its lifetime, with its
///                 pid as text: whether a primary runs is whether the lock
///                 is taken (no stale pid files: the kernel drops the lock
///                 when the process dies, however it dies);
///   mp_socket     the primary's SOCK_SEQPACKET listening socket, mode 0600.
///
/// Channel. Request/response over SOCK_SEQPACKET (the kernel keeps message
/// boundaries): a fixed header (magic, version, kind, sequence number, name,
/// payload length, fd count), a payload of at most 64 KiB and at most 253 fds
/// (SCM_MAX_FD, include/net/scm.h) with SCM_RIGHTS. The server is one thread
/// of the primary polling every connection; handlers run on it, one at a
/// time, keyed by request name. Whatever a peer sends, the primary keeps
/// serving: a malformed message (bad magic or version, truncated, oversized,
/// fds not matching the header) closes that connection and every fd it
/// carried; an unknown name gets an error reply; a peer of another uid is
/// closed at accept unless allow_uid() was called for it, and then gets only
/// the requests whose Policy admits other uids (EACCES otherwise); a peer
/// dying mid-request costs only its connection (replies use MSG_NOSIGNAL:
/// EPIPE, not SIGPIPE). Limits cap the connections, close peers that never
/// send a request, and keep fds in reserve for the primary. A client uses
/// nothing from a primary whose uid is neither its own nor root
/// (ClientOptions::trusted_uids adds others). doc/multiprocess.md
/// "Security" states the model.
///
/// Shared runtime. serve_runtime() registers "eal.memory" (the segments,
/// their backing fds and the window) and "eal.info" (a summary for
/// vfiokit-procinfo). attach_memory() maps the primary's segments into a
/// secondary at the same virtual addresses, so pointers are valid in both.
///
/// Thread-safety: Server's methods may be called from any thread; handlers
/// run on the server thread. A Client serializes its requests with a lock;
/// its watcher calls back on its own thread.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vfiokit/eal/error.hpp"
#include "vfiokit/eal/memory.hpp"
#include "vfiokit/eal/options.hpp"
#include "vfiokit/eal/vfio/syscalls.hpp"

namespace vfiokit::eal::mp {

// ---------------------------------------------------------------------------
// Runtime directory and the primary's lock

/// An opened runtime directory: the prefix and its path.
struct RuntimeDir {
    std::string prefix;
    std::string path;  ///< `<base>/<prefix>`
    /// The directory itself, opened (O_PATH, O_NOFOLLOW) when it was checked:
    /// the lock and the socket are made and found through it, so a directory
    /// renamed or swapped after the check is not the one used. Null for a
    /// RuntimeDir built from a path only (then the paths are used).
    std::shared_ptr<const vfio::Fd> fd;
    [[nodiscard]] std::string socket_path() const { return path + "/mp_socket"; }
    [[nodiscard]] std::string lock_path() const { return path + "/primary.lock"; }
    // A path to `name` in this directory that goes through `fd`
    // ("/proc/self/fd/N/name"), or path + "/" + name without one.
    [[nodiscard]] std::string at(std::string_view name) const;
};

/// The directory that holds every prefix's runtime directory for this user
/// (see above). Fails when a non-root user has neither XDG_RUNTIME_DIR nor a
/// usable /tmp.
[[nodiscard]] Result<std::string> default_runtime_base();

/// Creates `<base>/<prefix>` (and `<base>`) with mode 0700 if needed and checks,
/// on what it opened and without following symlinks, that `<base>` is a
/// directory of ours that no other user can write to (no symlink, no group
/// or other write bit), and `<prefix>` one of ours with no group or other
/// bits at all (EPERM or ENOTDIR naming the path and its owner/mode
/// otherwise). `base` empty: default_runtime_base().
[[nodiscard]] Result<RuntimeDir> open_runtime_dir(std::string_view prefix, std::string base = {});

/// The primary's exclusive flock on primary.lock. Move-only; dropping it (or
/// the process dying) releases the lock. The fd is O_CLOEXEC: a secondary
/// fork+exec'd by the primary does not inherit it. A child forked without
/// exec does share the lock (flock belongs to the open file description).
class PrimaryLock {
public:
    /// EBUSY "a primary with prefix X is running (pid N)" when taken.
    [[nodiscard]] static Result<PrimaryLock> acquire(const RuntimeDir& d);
    [[nodiscard]] const std::string& prefix() const { return prefix_; }

private:
    PrimaryLock(vfio::Fd fd, std::string prefix) : fd_(std::move(fd)), prefix_(std::move(prefix)) {}
    vfio::Fd fd_;
    std::string prefix_;
};

/// The pid of the primary holding d's lock; nullopt when none runs. The pid
/// is 0 if the primary has the lock but has not written its pid yet.
[[nodiscard]] Result<std::optional<pid_t>> running_primary(const RuntimeDir& d);

/// The role this process gets. primary: takes the lock (fails if taken);
/// secondary: needs a running primary (ENOENT "no primary with prefix X is
/// running" otherwise); automatic: primary when the lock is free, else
/// secondary (DPDK's `--proc-type=auto`).
struct Role {
    ProcType type = ProcType::primary;   ///< primary or secondary, never automatic
    std::optional<PrimaryLock> lock;     ///< held when primary
};
/// Takes the role `asked` for, as Role describes.
[[nodiscard]] Result<Role> claim_role(ProcType asked, const RuntimeDir& d);

// ---------------------------------------------------------------------------
// Channel

/// The largest payload of a channel message, in bytes.
inline constexpr std::size_t kMaxPayload = 64 * 1024;
inline constexpr std::size_t kMaxFds = 253;   ///< SCM_MAX_FD: the kernel refuses more
inline constexpr std::size_t kMaxNameLen = 63;         ///< The longest request name.

/// One SOCK_SEQPACKET message of bytes and fds (SCM_RIGHTS), unframed: what
/// the channel's messages ride on, and what a tool handing fds to another
/// process (vfiokit-broker) uses directly. MSG_NOSIGNAL always (a dead peer
/// is EPIPE, not SIGPIPE); EINTR is retried. No limits are checked here
/// beyond the kernel's own (SCM_MAX_FD fds). Returns the bytes sent.
[[nodiscard]] Result<std::size_t> send_with_fds(int sock, std::span<const iovec> iov,
                                                std::span<const int> fds, int flags = 0);

/// What receive_with_fds() got.
struct ReceivedWithFds {
    std::size_t bytes = 0;       ///< 0: the peer closed (or sent an empty message)
    int msg_flags = 0;           ///< MSG_TRUNC / MSG_CTRUNC as the kernel set them
    std::vector<vfio::Fd> fds;   ///< owned, close-on-exec
};
/// One receive into `buf`, with room for `max_fds` fds (more are dropped by
/// the kernel: MSG_CTRUNC). Every fd that arrived is owned by the result,
/// also when the message is then rejected. MSG_CMSG_CLOEXEC is always added.
[[nodiscard]] Result<ReceivedWithFds> receive_with_fds(int sock, std::span<std::byte> buf,
                                                       std::size_t max_fds, int flags = 0);

/// Who is at the other end, from SO_PEERCRED (the credentials at connect()).
struct Peer {
    pid_t pid = 0;
    uid_t uid = 0;
    gid_t gid = 0;
    /// Which connection of the Server (numbered from 1 in the order they
    /// were admitted, never reused): what a handler keys per-connection
    /// state by, and what Server::on_disconnect() reports. 0 outside a
    /// Server.
    std::uint64_t connection = 0;
};

/// A request as a handler sees it. The fds arrived with it and are owned by
/// the Request: they close after the handler returns unless it moved them
/// out (dup() to keep one past the call: the Request is const).
struct Request {
    std::string name;
    std::string payload;  ///< bytes, at most kMaxPayload
    std::vector<vfio::Fd> fds;
};

/// A handler's answer. `fds` are borrowed (they must stay open until the
/// handler returns; the reply is sent before the next request is read),
/// `owned_fds` are closed once sent. At most kMaxPayload bytes and kMaxFds
/// fds in all, or the requester gets an EMSGSIZE error instead.
struct Reply {
    std::string payload;
    std::vector<int> fds;
    std::vector<vfio::Fd> owned_fds;
};

/// A reply as the requester receives it; the fds are its own (O_CLOEXEC).
struct Response {
    std::string payload;
    std::vector<vfio::Fd> fds;
};

/// A failed Result becomes an error reply carrying the errno and message().
using Handler = std::function<Result<Reply>(const Request&, const Peer&)>;

/// Who may make a request. The primary's own uid always may; a peer of
/// another uid (admitted with allow_uid()) only where the policy says so:
/// it gets EACCES naming the request and its uid otherwise.
struct Policy {
    bool other_uids = false;
};

/// The channel's limits against peers that hold on to the primary's
/// resources (DPDK's telemetry caps its clients the same way). A peer over
/// a limit is told why (an error message with sequence number 0) and
/// closed; the primary's own work never waits for it.
struct Limits {
    /// Connections served at once; one more is refused.
    std::size_t max_connections = 64;
    /// A peer that sends no request this long after connecting is closed
    /// (zero: never). Peers that have made a request may stay idle: a
    /// secondary keeps its connection for its lifetime.
    std::chrono::milliseconds first_request_timeout{std::chrono::seconds(10)};
    /// Fds kept free for the primary itself below RLIMIT_NOFILE's soft
    /// limit: a connection, or a request's fds, that would eat into them is
    /// refused, so the primary's own opens (devices, memory, eventfds) do
    /// not fail because of peers.
    std::size_t fd_reserve = 256;
};

/// The primary's end of the channel: serves the requests of secondaries and
/// tools with the Handler registered for each name.
class Server {
public:
    /// Listens on d.socket_path() (mode 0600). Holding the lock proves no
    /// other primary uses the socket, so a stale file from a crashed primary
    /// is replaced. The file is unlinked when the Server goes.
    [[nodiscard]] static Result<std::unique_ptr<Server>> listen(const RuntimeDir& d,
                                                                const PrimaryLock& lock);
    /// No listening socket: serves only sockets given to add_connection()
    /// (one end of a socketpair).
    [[nodiscard]] static Result<std::unique_ptr<Server>> create();
    ~Server();  ///< stop()s
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    /// Registers (or replaces) the handler of `name` (at most kMaxNameLen
    /// characters) with its policy.
    void handle(std::string name, Handler h, Policy p = {});
    /// Changes the policy of a registered handler (EINVAL-free: no effect
    /// when `name` has none).
    void set_policy(std::string_view name, Policy p);
    /// Before start() or at any time; applies to connections accepted after.
    void set_limits(Limits l);
    /// Accepts connections from `uid` too (a broker running as another
    /// user). By default only the primary's own effective uid is served.
    void allow_uid(uid_t uid);
    /// What "eal.info" reports about VFIO: an opaque string (the VFIO side
    /// fills it). Called on the server thread.
    void set_info_provider(std::function<std::string()> p);
    [[nodiscard]] std::string info() const;
    /// Where rejections and dropped connections are reported (default: the
    /// log, component mp, vfiokit/eal/log.hpp). Called on the server thread.
    void set_logger(std::function<void(std::string_view)> log);

    /// Called on the server thread when a served connection ends while the
    /// server runs: the peer closed it or died (the kernel closes a dying
    /// process's sockets), or the server closed it (malformed message,
    /// reply not delivered, idle). Not called for the connections stop()
    /// closes. The peer may still be exiting when this runs: its pid can
    /// outlive its sockets for a moment. One callback; a later call
    /// replaces it.
    void on_disconnect(std::function<void(const Peer&)> cb);
    /// Serves an already connected socket (its peer is checked like an
    /// accepted one).
    [[nodiscard]] Result<void> add_connection(vfio::Fd sock);
    /// Starts the server thread. Handlers may be registered before or after.
    [[nodiscard]] Result<void> start();
    /// Stops and joins the thread, closes every connection. Idempotent.
    void stop();

    [[nodiscard]] const std::string& socket_path() const;

    /// Counters, for tests and diagnostics.
    struct Stats {
        std::uint64_t accepted = 0;      // connections served
        std::uint64_t rejected_uid = 0;  // closed at accept: another uid
        std::uint64_t malformed = 0;     // connections closed for a bad message
        std::uint64_t requests = 0;      // requests handled (any outcome)
        std::uint64_t unknown = 0;       // requests with no handler
        std::uint64_t send_failed = 0;   // replies the peer was not there for
        std::uint64_t open = 0;          // connections open now
        std::uint64_t refused_policy = 0;  // requests refused by their handler's Policy
        std::uint64_t refused_full = 0;    // closed at accept: max_connections reached
        std::uint64_t refused_fds = 0;     // closed at accept: fd_reserve reached
        std::uint64_t idle_closed = 0;     // closed: no request in first_request_timeout
    };
    [[nodiscard]] Stats stats() const;

private:
    struct Impl;
    explicit Server(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

/// How patient a Client is.
struct ClientOptions {
    /// Per request: no answer in time is ETIMEDOUT naming the request and the
    /// primary's pid.
    std::chrono::milliseconds timeout{5000};
    /// connect(): how long to retry while the primary holds its lock but is
    /// not listening yet (two processes started together with auto).
    std::chrono::milliseconds connect_wait{2000};
    // Besides root and this process's own uid, the uids whose primary this
    // client trusts. The primary's memfds become this process's DMA heap
    // and its fds its devices: a primary of any other uid is refused at
    // connect (EPERM naming its pid and uid).
    std::vector<uid_t> trusted_uids;
};

/// A secondary's or a tool's end of the channel: sends requests to the
/// primary and waits for their responses.
class Client {
public:
    /// Connects to the primary of `d`. ENOENT "no primary with prefix X is
    /// running" when the lock is free.
    [[nodiscard]] static Result<std::unique_ptr<Client>> connect(const RuntimeDir& d,
                                                                 ClientOptions o = {});
    /// Uses a connected socket (one end of a socketpair); `prefix` is for
    /// messages only.
    [[nodiscard]] static Result<std::unique_ptr<Client>> adopt(vfio::Fd sock, std::string prefix,
                                                               ClientOptions o = {});
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    /// Sends a request and waits for its reply. An error reply comes back as
    /// the primary's errno and message; a reply that arrives after its
    /// request timed out is discarded (matched by sequence number).
    [[nodiscard]] Result<Response> request(std::string_view name, std::string_view payload = {},
                                           std::span<const int> fds = {});
    [[nodiscard]] Result<Response> request(std::string_view name, std::string_view payload,
                                           std::span<const int> fds,
                                           std::chrono::milliseconds timeout);

    /// False once the primary's end of the connection has closed.
    [[nodiscard]] bool primary_alive() const;
    /// ECONNRESET "primary (pid N, prefix X) has exited", or "... closed
    /// this connection" when the primary still runs (it rejected us).
    [[nodiscard]] Error primary_gone() const;
    [[nodiscard]] pid_t primary_pid() const;
    [[nodiscard]] uid_t primary_uid() const;
    [[nodiscard]] const std::string& prefix() const;

    /// Calls on_exit once, on a watcher thread, when the primary's end
    /// closes (POLLHUP on the connection: however the primary dies, the
    /// kernel closes its sockets). One watcher per Client; on_exit must not
    /// destroy the Client (its destructor joins the watcher).
    [[nodiscard]] Result<void> watch(std::function<void(const Error&)> on_exit);

private:
    struct Impl;
    explicit Client(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------------------
// Shared runtime

/// Request: the primary\'s memory, its segments and their fds.
inline constexpr std::string_view kMemoryRequest = "eal.memory";
/// Request: the primary\'s RuntimeFacts and segments (PrimaryInfo).
inline constexpr std::string_view kInfoRequest = "eal.info";
/// Reserved for the VFIO side: Vfio::export_shared() bytes and fds
/// (lib/eal/vfio/share.cpp), carried as they are.
inline constexpr std::string_view kVfioRequest = "eal.vfio";

/// What the primary says about itself beyond its memory.
struct RuntimeFacts {
    std::string prefix;
    std::string vfio_mode;         ///< "cdev", "group", ...
    std::string vfio_mode_reason;  ///< Vfio::mode_reason()
};

/// Registers "eal.memory" and "eal.info" for `m`. Handlers read `m` on the
/// server thread: if the primary adds or removes segments while serving,
/// pass the lock it holds around those changes (the EAL lock,
/// Vfio::control_lock(), which Memory takes itself once given it), and the
/// handlers take it too; segment fds are dup'ed under it. The info
/// provider runs before the lock is taken (it takes the lock itself). `m`
/// must outlive the Server.
void serve_runtime(Server& s, const Memory& m, RuntimeFacts facts,
                   RecursiveLock* memory_lock = nullptr);

/// Secondary: asks for the primary's memory and maps every segment from its
/// fd at the primary's virtual address (Memory::attach). Fails naming the
/// range when an address is taken in this process; leaves nothing mapped on
/// failure. `physical`: where pa-mode physical addresses come from instead
/// of /proc/self/pagemap (the EAL's secondary, in cdev no-IOMMU: the
/// imported container, which asks the kernel; a page the primary has no
/// IOVA for yet, cdev no-IOMMU before its first device, has none here
/// either).
[[nodiscard]] Result<std::unique_ptr<Memory>> attach_memory(Client& c,
                                                            const PhysicalLookup& physical = {});

/// A segment as "eal.info" reports it.
struct SegmentInfo {
    std::uint64_t va = 0;
    std::uint64_t len = 0;
    std::uint64_t page_size = 0;
    int node = -1;
    std::uint64_t iova = 0;        ///< of the first byte
    bool iova_contiguous = false;  ///< va mode: the whole segment from `iova` on
    std::string backing;
};

/// What "eal.info" returns, decoded.
struct PrimaryInfo {
    pid_t pid = 0;
    uid_t uid = 0;
    std::string prefix;
    std::string vfio_mode;
    std::string vfio_mode_reason;
    std::string iova_mode;  ///< "va" or "pa"
    std::uint64_t window_base = 0;
    std::uint64_t window_size = 0;
    std::uint64_t page_size = 0;
    std::vector<SegmentInfo> segments;
    std::size_t segments_total = 0;  ///< more than segments.size() when the list did not fit
    std::string vfio;               ///< Server::set_info_provider's string ("" when none)
};
/// Asks the primary behind `c` for "eal.info" and decodes it.
[[nodiscard]] Result<PrimaryInfo> query_info(Client& c);
/// Human-readable, one fact per line.
[[nodiscard]] std::string to_text(const PrimaryInfo& i);
/// A stable JSON document (doc/multiprocess.md lists its keys): addresses are
/// hex strings (JSON numbers lose precision above 2^53), sizes are numbers.
[[nodiscard]] std::string to_json(const PrimaryInfo& i);

}  // namespace vfiokit::eal::mp

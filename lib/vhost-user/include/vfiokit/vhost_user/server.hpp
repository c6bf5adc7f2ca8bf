/// \file
/// A vhost-user back end in server mode: listens on a UNIX socket path and
/// serves one front end at a time. When the front end goes (it closed the
/// connection, or a malformed message made the session drop it) everything
/// it gave is released and the next poll() accepts again, so a front end
/// that restarts reconnects to the same path.
///
/// Ownership: the server owns the listening socket and the path (removed
/// on destruction), and the current Session. The Device is borrowed and
/// must outlive the server.
/// Errors: listen() names the syscall and path. poll() fails only when the
/// listening socket does; a dropped session is not an error of the server
/// (last_drop() says why it went).
/// Threads: one thread drives the server; Device calls come from it. The
/// accessors are for that thread too (or for another once it has stopped).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "vfiokit/eal/error.hpp"
#include "vfiokit/eal/vfio/syscalls.hpp"
#include "vfiokit/vhost_user/device.hpp"
#include "vfiokit/vhost_user/session.hpp"

namespace vfiokit::vhost_user {

/// A vhost-user back end in server mode (see the file's description).
class Server {
public:
    /// Binds and listens at `path`. A stale socket at the path (nobody
    /// listening) is replaced; anything else there is an error.
    [[nodiscard]] static Result<Server> listen(const std::string& path, Device& dev,
                                               const Config& cfg = {});
    Server(Server&&) noexcept;
    Server& operator=(Server&&) noexcept;
    ~Server();

    /// Waits up to `timeout_ms` (-1: forever): accepts a front end when none
    /// is connected, else serves one of its requests.
    [[nodiscard]] Result<void> poll(int timeout_ms);

    [[nodiscard]] const std::string& path() const { return path_; }
    [[nodiscard]] bool connected() const { return session_ && session_->connected(); }
    [[nodiscard]] const Session* session() const { return connected() ? session_.get() : nullptr; }
    /// Front ends accepted, and sessions ended (closed or dropped).
    [[nodiscard]] unsigned accepted() const { return accepted_; }
    [[nodiscard]] unsigned ended() const { return ended_; }
    /// Why the last session ended: "peer closed", or the drop's message.
    [[nodiscard]] const std::string& last_end() const { return last_end_; }
    /// Session::handled summed over every session, the current one included.
    [[nodiscard]] std::uint64_t handled(Request r) const;

private:
    Server(vfio::Fd listener, std::string path, Device& dev, const Config& cfg);

    vfio::Fd listener_;
    std::string path_;
    Device* dev_;
    Config cfg_;
    std::unique_ptr<Session> session_;
    unsigned accepted_ = 0;
    unsigned ended_ = 0;
    std::string last_end_;
    std::array<std::uint64_t, kRequestSlots> handled_{};  // of sessions that ended
};

}  // namespace vfiokit::vhost_user

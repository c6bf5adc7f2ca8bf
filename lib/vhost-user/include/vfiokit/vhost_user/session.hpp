/// \file
/// One vhost-user connection, back-end side: reads the front end's requests,
/// checks each one completely, applies it, replies, and tells the Device.
///
/// Served: GET/SET_FEATURES, GET/SET_PROTOCOL_FEATURES (MQ, REPLY_ACK),
/// SET_OWNER, RESET_OWNER (ignored, as the spec recommends), SET_MEM_TABLE
/// (replaces the whole table), SET_VRING_NUM/ADDR/BASE/KICK/CALL/ERR,
/// GET_VRING_BASE (stops the ring), SET_VRING_ENABLE, GET_QUEUE_NUM, and
/// need_reply once REPLY_ACK is negotiated. doc/vhost-user.md has the checks.
///
/// Failure policy. A message that breaks a rule (shape, value, order) or
/// that the Device refuses ends the connection: a failure reply first when
/// the front end asked for one (need_reply with REPLY_ACK), then every ring
/// stopped, Device::disconnected(), the table unmapped and every received fd
/// closed. A request this library does not serve is answered with a failure
/// reply and skipped when the front end asked for a reply; without one the
/// connection ends too, since the front end would take silence for success.
///
/// Ownership: the session owns the socket and everything received on it.
/// Threads: one thread drives a session (poll()); the Device is called from
/// it. Not copyable or movable (the Device keeps pointers into it).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "vfiokit/eal/error.hpp"
#include "vfiokit/eal/vfio/syscalls.hpp"
#include "vfiokit/vhost_user/device.hpp"
#include "vfiokit/vhost_user/protocol.hpp"

namespace vfiokit::vhost_user {

/// What a session offers the front end.
struct Config {
    /// Virtio features offered by GET_FEATURES. The session adds bit 30
    /// (protocol features) and removes what it cannot serve:
    /// VIRTIO_F_IOMMU_PLATFORM (ring addresses would be IOVAs behind an
    /// IOTLB) and VIRTIO_F_RING_PACKED (only split rings are checked).
    std::uint64_t features = bit(kFeatureVersion1);
    /// Protocol features offered; only MQ and REPLY_ACK are served.
    std::uint64_t protocol_features = bit(ProtocolFeature::mq) | bit(ProtocolFeature::reply_ack);
    /// GET_QUEUE_NUM's answer (queue pairs, for a net device).
    std::uint32_t queue_num = 1;
    /// Vring indexes accepted: 0 .. vrings-1 (2 per queue pair for net; at
    /// most 256, as KICK/CALL/ERR carry the index in 8 bits).
    std::uint32_t vrings = 2;
};

class MemoryTable;
struct Message;

/// One vhost-user connection, back-end side (see the file's description).
class Session {
public:
    /// Takes a connected stream socket. `dev` must outlive the session.
    Session(vfio::Fd sock, Device& dev, const Config& cfg);
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    /// Waits up to `timeout_ms` (-1: forever) for a request and handles it.
    /// true: still connected (also after a timeout); false: the front end
    /// closed the connection between messages. An Error: the connection was
    /// dropped for the reason it gives. Either way a closed session has
    /// released everything; further calls return false.
    [[nodiscard]] Result<bool> poll(int timeout_ms);
    /// Ends the connection now, as a drop for `why`.
    void close(std::string_view why);

    [[nodiscard]] bool connected() const { return sock_.valid(); }
    [[nodiscard]] int fd() const { return sock_.get(); }
    /// Offered and acknowledged features.
    [[nodiscard]] std::uint64_t offered_features() const { return offered_; }
    [[nodiscard]] std::uint64_t features() const { return features_; }
    [[nodiscard]] std::uint64_t protocol_features() const { return protocol_; }
    /// The mapped table (empty before SET_MEM_TABLE).
    [[nodiscard]] std::span<const Region> regions() const;
    /// A running vring's description; nullopt when it is not running.
    [[nodiscard]] std::optional<VringInfo> vring(unsigned index) const;
    /// Requests of type `r` applied or answered on this connection (not
    /// the one that ended it).
    [[nodiscard]] std::uint64_t handled(Request r) const;

private:
    struct Vring {
        std::uint32_t num = 0;
        bool addr_set = false;
        VringAddr addr{};
        std::uint16_t base = 0;
        vfio::Fd kick, call, err;
        bool kick_set = false, call_set = false;  // an fd, or "poll" (no fd)
        bool enabled = false;
        bool running = false;
    };
    [[nodiscard]] Result<void> handle(Message& m);
    [[nodiscard]] Result<unsigned> vring_index(std::uint64_t index, const char* what) const;
    [[nodiscard]] bool protocol_negotiated() const;
    [[nodiscard]] bool ready(const Vring& v) const;
    [[nodiscard]] Result<VringInfo> info(unsigned index) const;
    [[nodiscard]] Result<void> check_ring(const MemoryTable& t, const VringAddr& a,
                                         std::uint32_t num) const;
    // Brings the Device in line with vring `index`: stops it if it can no
    // longer run (or `reconfigured` and it runs), starts it if it can.
    [[nodiscard]] Result<void> refresh(unsigned index, bool reconfigured);
    void stop(unsigned index, StopReason why);
    [[nodiscard]] Result<void> reply_u64(std::uint32_t request, std::uint64_t v);
    void release(std::string_view why);

    // Member order: the device hears about rings and memory before they
    // go, and the socket closes last.
    vfio::Fd sock_;
    Device* dev_;
    Config cfg_;
    std::uint64_t offered_ = 0;
    std::uint64_t features_ = 0;
    bool features_set_ = false;
    std::uint64_t protocol_ = 0;
    std::unique_ptr<MemoryTable> mem_;
    std::vector<Vring> vrings_;
    std::array<std::uint64_t, kRequestSlots> handled_{};
};

}  // namespace vfiokit::vhost_user

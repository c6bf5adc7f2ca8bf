// The vDPA engine: a vhost_user::Device that passes a front end's rings to
// a virtio device, which then moves packets to and from the front end's
// memory by itself (DMA through the device's own IO address space). The
// engine only relays control:
//
//   SET_MEM_TABLE   each region mapped into the device's IO address space
//                   at its guest-physical address (remap.hpp for the
//                   order when a table replaces another);
//   vring ready     once every vring of the queue pair can run: device
//                   reset, features (the front end's, plus
//                   ACCESS_PLATFORM so the device goes through the IOMMU),
//                   queues at the rings' guest-physical addresses, each
//                   queue's MSI-X vector signalling the front end's call
//                   eventfd, DRIVER_OK; the kick relay starts;
//   vring stop      the device is given up to kDrainMs to use what the
//                   transmit rings hold (the front end counted it as
//                   sent), then reset (virtio 1.x PCI stops queues only
//                   all at once), and GET_VRING_BASE answers the used index
//                   the device left in the front end's memory, which is
//                   the next avail index to serve for a split ring whose
//                   every popped buffer was returned;
//   reconfigured    (a new call or kick fd, or a new table leaving the
//                   rings where they are): the device keeps running; the
//                   interrupt and the relay move to the new fds;
//   disconnect      device reset, every mapping unmapped.
//
// Restarting a queue at a nonzero avail index is refused (ENOTSUP): a
// virtio 1.x PCI device starts its queues at index 0 after a reset and has
// no register to start elsewhere (DPDK's ifcvf writes the index into a
// vendor register; QEMU's virtio-net-pci has none). A front end that
// reconnects, or restarts its port, starts from 0.
//
// Threads: the vhost_user::Device calls come from the server's thread;
// stats() may be read from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "hw.hpp"
#include "relay.hpp"
#include "vfiokit/vdpa/virtio.hpp"
#include "vfiokit/vhost_user/device.hpp"
#include "vfiokit/vhost_user/session.hpp"

namespace vfiokit::vdpa {

// virtio-net feature bits the engine passes between the front end and the
// device: offloads and buffer layout, which both sides read the same way
// from the rings, and ring features the device implements. Left out:
// everything that needs the device's config space or its control queue
// (MAC, STATUS, MTU, CTRL_*, MQ, ...), which vhost-user does not carry to
// this back end, packed rings, and NOTIFICATION_DATA (the relay writes the
// queue index only).
[[nodiscard]] std::uint64_t passthrough_features();
// What the front end is offered: the device's features within
// passthrough_features() (ACCESS_PLATFORM is the engine's business, never
// the front end's).
[[nodiscard]] std::uint64_t front_end_features(std::uint64_t device_features);


class Engine final : public vhost_user::Device {
public:
    // Serves `vrings` vrings (2 per queue pair; the device needs at least
    // as many queues and MSI-X vectors). `name` prefixes log lines.
    Engine(VirtioHw& hw, DmaSpace& dma, std::string name, unsigned vrings = 2);
    ~Engine() override;
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    // The session's configuration for this device.
    [[nodiscard]] vhost_user::Config config() const;
    [[nodiscard]] EngineStats stats() const;
    // The pieces now mapped (for tests and the report).
    [[nodiscard]] const std::vector<Piece>& mapped() const { return pieces_; }

    Result<void> features_set(std::uint64_t features) override;
    Result<void> memory_set(std::span<const vhost_user::Region> regions) override;
    Result<void> vring_ready(const vhost_user::VringInfo& v) override;
    std::uint16_t vring_stopped(unsigned index, vhost_user::StopReason why,
                                std::uint16_t base) override;
    void disconnected(std::string_view why) override;

private:
    struct Ring {
        bool ready = false;       // the session runs it
        bool in_device = false;   // programmed in the running device
        vhost_user::VringInfo info{};  // fds: see kick/call
        vfio::Fd kick, call;      // dups of the front end's
        std::uint16_t start = 0;  // the avail index the device would start from
    };
    [[nodiscard]] Result<void> start_device();
    // Resets the device; every ring in it keeps the used index it reached
    // as its start.
    void stop_device(std::string_view why);
    [[nodiscard]] Result<void> start_relay();
    // Hands queue i's kicks to the kernel when it can (kernel_kicks_).
    void attach_kick(unsigned i);
    [[nodiscard]] static std::uint16_t used_index(const vhost_user::VringInfo& v);
    [[nodiscard]] static std::uint16_t avail_index(const vhost_user::VringInfo& v);
    // Waits (up to kDrainMs) for the device to use what the transmit rings
    // hold; returns the rings and counts it did not, for the log.
    [[nodiscard]] std::string drain_transmit();
    static constexpr unsigned kDrainMs = 200;
    void unmap_all();
    void log(const std::string& msg) const;

    VirtioHw* hw_;
    DmaSpace* dma_;
    std::string name_;
    std::uint64_t device_features_ = 0;
    std::uint64_t offered_ = 0;     // to the front end
    std::uint64_t features_ = 0;    // the front end's, for the device (without bit 30)
    std::vector<Ring> rings_;
    std::vector<Piece> pieces_;
    bool running_ = false;
    std::vector<std::atomic<std::uint64_t>> used_;  // per vring
    Relay relay_;
    std::atomic<std::uint64_t> starts_{0}, stops_{0}, sessions_{0}, maps_{0}, unmaps_{0},
        mapped_bytes_{0};
    std::atomic<bool> running_flag_{false};
    // The kernel kicks the device from the front end's kick eventfds (VFIO
    // ioeventfd); false: the relay thread does.
    std::atomic<bool> kernel_kicks_{false};
};

}  // namespace vfiokit::vdpa

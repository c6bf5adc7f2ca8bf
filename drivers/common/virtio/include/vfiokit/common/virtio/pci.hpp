/// \file
/// The virtio 1.x PCI transport ("Virtio Over PCI Bus" in the virtio
/// specification, version 1.2, section 4.1): what the virtio-net PMD and the
/// vDPA driver both drive.
///
/// A modern virtio PCI device describes its register blocks with
/// vendor-specific capabilities (id 0x09) in config space: common
/// configuration, notifications, ISR status and device-specific
/// configuration, each a window (BAR, offset, length). PciTransport::open
/// walks the capability list through the framework's device operations
/// (PciDevice::capabilities, config_read), maps the BARs those windows lie
/// in and checks that every window fits its BAR. Nothing here depends on
/// how the device is assigned: it works in every VFIO mode.
///
/// Addresses the device DMAs to (queue rings, buffers) are the caller's
/// IOVAs: the PMD's come from EAL memory, the vDPA driver's are the front
/// end's guest-physical addresses. The transport only writes them.
///
/// Errors name the device, the register or capability, and what the device
/// answered. A device without a required capability is ENODEV ("not a
/// modern virtio device"), with the hint to use QEMU's disable-legacy=on or
/// a 1.0 device.
///
/// Thread-safety: control calls (status, features, queue setup, vectors)
/// are for one thread, the control path. notify() and the notify address
/// may be used from the data path of any thread, one queue per thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "vfiokit/bus/pci/bar.hpp"
#include "vfiokit/bus/pci/device.hpp"
#include "vfiokit/eal/error.hpp"

namespace vfiokit::virtio {

/// Feature bits (specification section 6, "Reserved Feature Bits", and the
/// device sections). Bit numbers, not masks: use feature().
inline constexpr unsigned kFRingIndirectDesc = 28;  ///< VIRTIO_F_INDIRECT_DESC
inline constexpr unsigned kFRingEventIdx = 29;      ///< VIRTIO_F_EVENT_IDX
inline constexpr unsigned kFVersion1 = 32;          ///< VIRTIO_F_VERSION_1
inline constexpr unsigned kFAccessPlatform = 33;    ///< VIRTIO_F_ACCESS_PLATFORM
inline constexpr unsigned kFRingPacked = 34;        ///< VIRTIO_F_RING_PACKED
inline constexpr unsigned kFInOrder = 35;           ///< VIRTIO_F_IN_ORDER
inline constexpr unsigned kFOrderPlatform = 36;     ///< VIRTIO_F_ORDER_PLATFORM
inline constexpr unsigned kFSrIov = 37;             ///< VIRTIO_F_SR_IOV
inline constexpr unsigned kFNotificationData = 38;  ///< VIRTIO_F_NOTIFICATION_DATA
inline constexpr unsigned kFRingReset = 40;  ///< per-queue reset (virtio 1.2)
/// The mask of feature bit `bit`.
[[nodiscard]] constexpr std::uint64_t feature(unsigned bit) { return std::uint64_t{1} << bit; }
/// "VERSION_1|ACCESS_PLATFORM|bit 40" for messages.
[[nodiscard]] std::string feature_names(std::uint64_t features);

/// Device status bits (section 2.1).
namespace status {
inline constexpr std::uint8_t kAcknowledge = 1;  ///< ACKNOWLEDGE: the guest found the device
inline constexpr std::uint8_t kDriver = 2;       ///< DRIVER: the guest knows how to drive it
inline constexpr std::uint8_t kDriverOk = 4;       ///< DRIVER_OK: the driver is ready
inline constexpr std::uint8_t kFeaturesOk = 8;     ///< FEATURES_OK: feature negotiation is complete
inline constexpr std::uint8_t kNeedsReset = 0x40;  ///< DEVICE_NEEDS_RESET: the device cannot go on
inline constexpr std::uint8_t kFailed = 0x80;      ///< FAILED: the driver gave up on the device
}  // namespace status

/// "no vector" for config_msix_vector and queue_msix_vector.
inline constexpr std::uint16_t kNoVector = 0xffff;

/// The capability kinds (cfg_type of struct virtio_pci_cap).
enum class CapType : std::uint8_t {
    common = 1,
    notify = 2,
    isr = 3,
    device = 4,
    pci_cfg = 5,
};

/// Where one register block is.
struct Window {
    unsigned bar = 0;
    std::uint32_t offset = 0;   ///< in the BAR
    std::uint32_t length = 0;
};

/// Where a queue's three parts are, as IOVAs the device will use.
struct QueueAddrs {
    std::uint64_t desc = 0;     ///< descriptor table (16 bytes per entry, 16-aligned)
    std::uint64_t driver = 0;   ///< available ring (2-aligned)
    std::uint64_t device = 0;   ///< used ring (4-aligned)
};

/// The transport of one modern virtio PCI device: its mapped register blocks
/// (see the file's description).
class PciTransport {
public:
    /// Finds the common, notify, ISR and (when present) device-config
    /// capabilities of `dev`, maps their BARs and enables memory space and
    /// bus mastering. `dev` must outlive the transport. ENODEV when a
    /// required capability is missing or a window lies outside its BAR.
    [[nodiscard]] static Result<PciTransport> open(pci::PciDevice& dev);

    PciTransport(PciTransport&&) noexcept = default;
    PciTransport& operator=(PciTransport&&) noexcept = default;
    PciTransport(const PciTransport&) = delete;
    PciTransport& operator=(const PciTransport&) = delete;
    ~PciTransport() = default;  ///< leaves the device as it is: reset() it first

    [[nodiscard]] PciAddress address() const { return addr_; }
    [[nodiscard]] const Window& window(CapType t) const;
    [[nodiscard]] bool has_device_config() const { return device_.length != 0; }

    // --- status and reset
    [[nodiscard]] std::uint8_t status() const;
    /// ORs `bits` into the status register.
    void add_status(std::uint8_t bits);
    /// Writes 0 and waits until the device reads back 0 (section 4.1.4.3.2:
    /// the reset is complete then), at most `timeout`. ETIMEDOUT naming the
    /// status it kept.
    [[nodiscard]] Result<void> reset(std::chrono::milliseconds timeout = std::chrono::seconds(2));

    // --- features
    [[nodiscard]] std::uint64_t device_features() const;
    /// The initialization sequence up to FEATURES_OK (section 3.1.1): reset,
    /// ACKNOWLEDGE, DRIVER, write `wanted & device_features()`, FEATURES_OK,
    /// read it back. `required` bits must be offered (else ENOTSUP naming the
    /// missing ones and sets FAILED). Returns the negotiated set.
    [[nodiscard]] Result<std::uint64_t> negotiate(std::uint64_t wanted, std::uint64_t required);
    /// The features written by the last negotiate().
    [[nodiscard]] std::uint64_t driver_features() const { return negotiated_; }
    /// Sets DRIVER_OK: the device may start using the queues set up.
    void driver_ok() { add_status(status::kDriverOk); }

    // --- queues
    [[nodiscard]] std::uint16_t num_queues() const;
    /// The largest size queue `q` can have (0: the queue does not exist).
    [[nodiscard]] std::uint16_t queue_max_size(std::uint16_t q) const;
    /// Programs queue `q`: size (a power of two, at most queue_max_size),
    /// ring IOVAs and MSI-X vector (kNoVector for none; EIO when the device
    /// refuses the vector, i.e. reads back kNoVector). Then enables it. Call
    /// between negotiate() and driver_ok() (or, for a queue the device has
    /// not started, after; section 4.1.4.3.2). EINVAL naming the queue for
    /// a bad size or misaligned address.
    [[nodiscard]] Result<void> setup_queue(std::uint16_t q, std::uint16_t size,
                                           const QueueAddrs& addrs, std::uint16_t vector);
    /// Whether queue `q` is enabled (queue_enable reads 1).
    [[nodiscard]] bool queue_enabled(std::uint16_t q) const;
    /// The vector for configuration changes (kNoVector: none); EIO when the
    /// device refuses it.
    [[nodiscard]] Result<void> set_config_vector(std::uint16_t vector);

    // --- notifications (data path)
    // Where the driver writes queue `q`'s index to kick it: a pointer into
    // the mapped notify window, valid for the transport's life (and in a
    // secondary that mapped the BAR at the same address). Computed at
    // setup_queue(); nullptr for a queue not set up.
    [[nodiscard]] volatile std::uint16_t* notify_addr(std::uint16_t q) const {
        return q < notify_addrs_.size() ? notify_addrs_[q] : nullptr;
    }
    /// The notify address as a BAR offset (for the vDPA driver and for
    /// messages).
    [[nodiscard]] std::optional<std::uint64_t> notify_offset(std::uint16_t q) const;
    /// Kicks queue `q` (a 16-bit store of `q`, ordered after earlier memory
    /// writes).
    void notify(std::uint16_t q) const;
    /// Reads (and so clears) the ISR status: bit 0 queue interrupt, bit 1
    /// configuration change. For INTx only; MSI-X does not use it.
    [[nodiscard]] std::uint8_t isr() const;

    // --- device-specific configuration (section 4.1.4.6)
    // Reads `out.size()` bytes at `offset` of the device configuration,
    // retrying while config_generation changes (section 2.5.1). ERANGE
    // outside the window, ENODEV without a device config capability.
    [[nodiscard]] Result<void> read_device_config(std::uint32_t offset,
                                                  std::span<std::uint8_t> out) const;
    [[nodiscard]] Result<void> write_device_config(std::uint32_t offset,
                                                   std::span<const std::uint8_t> in);

    /// The BAR that holds `t`'s window (for mapping in a secondary).
    [[nodiscard]] const pci::Bar& bar_of(CapType t) const;

private:
    PciTransport() = default;
    template <class T>
    [[nodiscard]] T common_read(std::uint32_t off) const;
    template <class T>
    void common_write(std::uint32_t off, T v) const;
    [[nodiscard]] std::string who() const;

    PciAddress addr_{};
    // Mapped BARs, by index; only those a window lies in. Bars are
    // move-only and their mappings do not move with them.
    std::vector<std::optional<pci::Bar>> bars_;
    Window common_{}, notify_{}, isr_{}, device_{};
    std::uint32_t notify_multiplier_ = 0;
    std::uint64_t negotiated_ = 0;
    std::vector<volatile std::uint16_t*> notify_addrs_;
};

}  // namespace vfiokit::virtio

/// \file
/// Interrupts of a VFIO PCI device, delivered to eventfds.
///
/// enable_irqs() (device.hpp) returns an IrqSet: the eventfds of the enabled
/// vectors, owned, and the knowledge to disable them again (its destructor
/// does, before closing the eventfds). INTx is level-triggered and masked by
/// the kernel on delivery: after handling it, clear the cause in the device
/// and call unmask(). trigger() asks the backend to signal a vector's eventfd
/// itself (set_irqs without payload), which tests the delivery path without
/// the device.
///
/// An IrqSet holds a shared handle to the device's operations
/// (device_ops.hpp), not a device fd: once the device is released,
/// unmask/trigger/disable fail with ENODEV "device `<BDF>` was released" and
/// the destructor only closes the eventfds, issuing nothing to the device.
///
/// Thread-safety: EventFd::wait/poll may be called from any thread (each
/// vector from one reader at a time). IrqSet's own calls, moves and
/// destruction are for one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "vfiokit/eal/error.hpp"
#include "vfiokit/eal/vfio/device_ops.hpp"
#include "vfiokit/eal/vfio/syscalls.hpp"

namespace vfiokit::pci {

/// The IRQ indexes of a vfio-pci device (VFIO_PCI_*_IRQ_INDEX).
enum class IrqType : std::uint32_t { intx = 0, msi = 1, msix = 2, err = 3, req = 4 };
/// "INTx", "MSI", "MSI-X", "ERR", "REQ".
[[nodiscard]] std::string to_string(IrqType t);

/// What the device offers at one IRQ index (VFIO_DEVICE_GET_IRQ_INFO).
struct IrqInfo {
    IrqType type{};
    std::uint32_t count = 0;  ///< vectors the device offers (0: none)
    bool eventfd = false;
    bool maskable = false;
    bool automasked = false;
};

/// The read end of an eventfd the kernel signals. Move-only.
class EventFd {
public:
    explicit EventFd(vfio::Fd fd) : fd_(std::move(fd)) {}
    [[nodiscard]] int fd() const { return fd_.get(); }
    /// Waits up to `timeout` for the eventfd to fire; returns the count read
    /// (>= 1), or ETIMEDOUT.
    [[nodiscard]] Result<std::uint64_t> wait(std::chrono::milliseconds timeout) const;
    /// Reads without waiting: 0 when it has not fired.
    [[nodiscard]] Result<std::uint64_t> poll() const;

private:
    vfio::Fd fd_;
};

/// Enabled interrupt vectors and their eventfds, owned; disables them when
/// destroyed (see the file's description).
class IrqSet {
public:
    IrqSet() = default;
    /// Vectors [0, fds.size()) of `t`, enabled on `device` to signal `fds`.
    IrqSet(std::shared_ptr<vfio::DeviceOps> device, IrqType t, std::vector<EventFd> fds);
    IrqSet(IrqSet&& o) noexcept;
    IrqSet& operator=(IrqSet&& o) noexcept;
    IrqSet(const IrqSet&) = delete;
    IrqSet& operator=(const IrqSet&) = delete;
    ~IrqSet();

    [[nodiscard]] IrqType type() const { return type_; }
    [[nodiscard]] std::size_t size() const { return fds_.size(); }
    [[nodiscard]] const EventFd& vector(std::size_t i) const { return fds_.at(i); }

    /// INTx: re-arm after handling (IrqAction::unmask).
    [[nodiscard]] Result<void> unmask() const;
    /// Backend-side loopback: signal vector i's eventfd (trigger, no payload).
    [[nodiscard]] Result<void> trigger(std::size_t i) const;
    /// Disables every vector (trigger with count 0); the destructor does it.
    /// A second call does nothing; trigger/unmask then fail with EINVAL. The
    /// eventfds stay open until the IrqSet is destroyed.
    [[nodiscard]] Result<void> disable();

private:
    std::shared_ptr<vfio::DeviceOps> dev_;
    IrqType type_{};
    // Whether the vectors are still enabled by this set: after disable() the
    // destructor must not disable again, since by then the same IRQ type may
    // belong to a newer IrqSet of the same device.
    bool enabled_ = false;
    std::vector<EventFd> fds_;
};

}  // namespace vfiokit::pci

// Interrupts of a VFIO PCI device, delivered to eventfds.
//
// enable_irqs() (device.hpp) returns an IrqSet: the eventfds of the enabled
// vectors, owned, and the knowledge to disable them again (its destructor
// does, before closing the eventfds). INTx is level-triggered and masked by
// the kernel on delivery: after handling it, clear the cause in the device
// and call unmask(). trigger() asks the kernel to signal a vector's eventfd
// itself (SET_IRQS with DATA_NONE), which tests the delivery path without
// the device.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "vfiokit/eal/error.hpp"
#include "vfiokit/eal/vfio/syscalls.hpp"

namespace vfiokit::pci {

enum class IrqType : std::uint32_t { intx = 0, msi = 1, msix = 2, err = 3, req = 4 };
[[nodiscard]] std::string to_string(IrqType t);

struct IrqInfo {
    IrqType type{};
    std::uint32_t count = 0;  // vectors the device offers (0: none)
    bool eventfd = false;
    bool maskable = false;
    bool automasked = false;
};

// The read end of an eventfd the kernel signals. Move-only.
class EventFd {
public:
    explicit EventFd(vfio::Fd fd) : fd_(std::move(fd)) {}
    [[nodiscard]] int fd() const { return fd_.get(); }
    // Waits up to `timeout` for the eventfd to fire; returns the count read
    // (>= 1), or ETIMEDOUT.
    [[nodiscard]] Result<std::uint64_t> wait(std::chrono::milliseconds timeout) const;
    // Reads without waiting: 0 when it has not fired.
    [[nodiscard]] Result<std::uint64_t> poll() const;

private:
    vfio::Fd fd_;
};

class IrqSet {
public:
    IrqSet() = default;
    IrqSet(int device_fd, IrqType t, std::vector<EventFd> fds);
    IrqSet(IrqSet&& o) noexcept;
    IrqSet& operator=(IrqSet&& o) noexcept;
    IrqSet(const IrqSet&) = delete;
    IrqSet& operator=(const IrqSet&) = delete;
    ~IrqSet();

    [[nodiscard]] IrqType type() const { return type_; }
    [[nodiscard]] std::size_t size() const { return fds_.size(); }
    [[nodiscard]] const EventFd& vector(std::size_t i) const { return fds_.at(i); }

    // INTx: re-arm after handling (VFIO_IRQ_SET_ACTION_UNMASK).
    [[nodiscard]] Result<void> unmask() const;
    // Kernel-side loopback: signal vector i's eventfd (DATA_NONE | TRIGGER).
    [[nodiscard]] Result<void> trigger(std::size_t i) const;
    // Disables every vector (SET_IRQS with count 0); the destructor does it.
    // A second call does nothing; trigger/unmask then fail with EINVAL. The
    // eventfds stay open until the IrqSet is destroyed.
    [[nodiscard]] Result<void> disable();

private:
    int device_fd_ = -1;
    IrqType type_{};
    // Whether the vectors are still enabled by this set: after disable() the
    // destructor must not disable again, since by then the same IRQ type may
    // belong to a newer IrqSet of the same device.
    bool enabled_ = false;
    std::vector<EventFd> fds_;
};

}  // namespace vfiokit::pci

// What the vDPA engine drives, as two small interfaces: the virtio device
// (its queues, interrupts and doorbells) and the IO address space the
// device DMAs through. The driver implements them over the virtio PCI
// transport and a VFIO container (pci_hw.cpp); the host tests over fakes.
// Private to drivers/vdpa/virtio.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "remap.hpp"
#include "vfiokit/common/virtio/pci.hpp"
#include "vfiokit/eal/error.hpp"
#include "vfiokit/eal/vfio/types.hpp"

namespace vfiokit::vdpa {

// One queue as the device gets it: the front end's vring at its
// guest-physical addresses, and the front end's call eventfd as the
// queue's interrupt (-1: none, the front end polls).
struct QueueSetup {
    std::uint16_t index = 0;
    std::uint16_t size = 0;
    virtio::QueueAddrs addrs;
    int call_fd = -1;
};

// The device. Control calls come from the thread that serves the front
// end; notify() from the kick relay's thread.
class VirtioHw {
public:
    virtual ~VirtioHw() = default;
    [[nodiscard]] virtual std::uint64_t device_features() const = 0;
    [[nodiscard]] virtual std::uint16_t queue_max_size(std::uint16_t q) const = 0;
    // From reset to DRIVER_OK with `features` (exactly those) and these
    // queues, each queue's interrupt signalling its call_fd. On failure
    // the device is reset and its interrupts off again.
    [[nodiscard]] virtual Result<void> start(std::uint64_t features,
                                             std::span<const QueueSetup> queues) = 0;
    // Reset (every queue stops; the device forgets its ring indexes) and
    // interrupts off. Reports a reset that did not complete.
    [[nodiscard]] virtual Result<void> stop() = 0;
    // Queue q's interrupt signals `fd` from now on (-1: none).
    [[nodiscard]] virtual Result<void> set_call(std::uint16_t q, int fd) = 0;
    // Kicks queue q (data path).
    virtual void notify(std::uint16_t q) = 0;
    // From now on the device is kicked for queue q whenever eventfd `fd`
    // is signalled, by the kernel, with no thread here (VFIO's ioeventfd);
    // -1 stops that. Until the next stop(). ENOTSUP when the device or
    // backend cannot: the relay thread kicks then.
    [[nodiscard]] virtual Result<void> attach_kick(std::uint16_t q, int fd) = 0;
};

// The IO address space of the device (its own container).
class DmaSpace {
public:
    virtual ~DmaSpace() = default;
    [[nodiscard]] virtual Result<std::vector<vfio::IovaRange>> ranges() = 0;
    // Maps p.iova..+p.len to the file p.fd at p.offset (mapped here at p.hva).
    [[nodiscard]] virtual Result<void> map(const Piece& p) = 0;
    [[nodiscard]] virtual Result<void> unmap(const Piece& p) = 0;
};

}  // namespace vfiokit::vdpa

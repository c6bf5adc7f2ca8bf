// VirtioHw and DmaSpace over the real thing: the virtio 1.x PCI transport
// of a device assigned through VFIO, its MSI-X vectors given the front
// end's call eventfds (VFIO_DEVICE_SET_IRQS with those fds: the kernel
// signals them straight from the device's interrupt), and the device's own
// VFIO container. Private to drivers/vdpa/virtio.
#pragma once

#include <memory>
#include <vector>

#include "hw.hpp"
#include "vfiokit/bus/pci/device.hpp"
#include "vfiokit/common/virtio/pci.hpp"
#include "vfiokit/eal/vfio/vfio.hpp"

namespace vfiokit::vdpa {

class PciHw final : public VirtioHw {
public:
    PciHw(virtio::PciTransport t, std::shared_ptr<vfio::DeviceHandle> dev, unsigned msix_vectors)
        : t_(std::move(t)), dev_(std::move(dev)), msix_(msix_vectors) {}
    ~PciHw() override;

    [[nodiscard]] std::uint64_t device_features() const override { return t_.device_features(); }
    [[nodiscard]] std::uint16_t queue_max_size(std::uint16_t q) const override {
        return t_.queue_max_size(q);
    }
    [[nodiscard]] Result<void> start(std::uint64_t features,
                                     std::span<const QueueSetup> queues) override;
    [[nodiscard]] Result<void> stop() override;
    [[nodiscard]] Result<void> set_call(std::uint16_t q, int fd) override;
    void notify(std::uint16_t q) override { t_.notify(q); }
    [[nodiscard]] Result<void> attach_kick(std::uint16_t q, int fd) override;

    [[nodiscard]] virtio::PciTransport& transport() { return t_; }

private:
    [[nodiscard]] Result<void> irqs_off();
    void detach_kicks();

    virtio::PciTransport t_;
    std::shared_ptr<vfio::DeviceHandle> dev_;
    unsigned msix_;
    bool irqs_on_ = false;
    // Kick eventfds registered with the kernel, by queue and BAR offset
    // (what removing one names, with the width and data).
    struct Kick {
        std::uint16_t q;
        std::uint64_t offset;
    };
    std::vector<Kick> kicks_;
};

class ContainerDma final : public DmaSpace {
public:
    explicit ContainerDma(vfio::Container& c) : c_(&c) {}
    [[nodiscard]] Result<std::vector<vfio::IovaRange>> ranges() override { return c_->iova_ranges(); }
    [[nodiscard]] Result<void> map(const Piece& p) override {
        return c_->map_file(p.hva, p.fd, p.offset, p.iova, p.len);
    }
    [[nodiscard]] Result<void> unmap(const Piece& p) override { return c_->unmap(p.iova, p.len); }

private:
    vfio::Container* c_;
};

}  // namespace vfiokit::vdpa

// The device operations of the kernel backends (private to lib/eal/vfio).
//
// group, compat, noiommu and cdev all end with a VFIO device fd, and a
// device fd answers the same ioctls in every mode (drivers/vfio/vfio_main.c
// vfio_device_fops_unl_ioctl; vfio_pci_core.c for the PCI ones): region
// info, region access by pread/pwrite/mmap at the region's offset, IRQ info
// and SET_IRQS, reset, VFIO_DEVICE_FEATURE. KernelDevice implements
// DeviceOps once over that fd; each backend's device class derives from it
// and owns the fd (and the teardown order around it). Every call goes
// through the syscall seam (syscalls.hpp), so faults can be injected.
//
// Thread-safety: the operations may be called concurrently (through a
// DeviceHandle); the only state, the cache of region offsets, is locked.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>

#include "backend.hpp"

namespace vfiokit::vfio::detail {

class KernelDevice : public BackendDevice {
public:
    [[nodiscard]] Result<DeviceInfo> info() override;
    [[nodiscard]] Result<RegionInfo> region_info(std::uint32_t index) override;
    [[nodiscard]] Result<void> read_region(std::uint32_t index, std::uint64_t offset, void* buf,
                                           std::size_t len) override;
    [[nodiscard]] Result<void> write_region(std::uint32_t index, std::uint64_t offset,
                                            const void* buf, std::size_t len) override;
    [[nodiscard]] Result<Mapping> map_region(std::uint32_t index, std::uint64_t offset,
                                             std::uint64_t len, int prot, void* at) override;
    [[nodiscard]] Result<IrqInfo> irq_info(std::uint32_t index) override;
    [[nodiscard]] Result<void> set_irqs(const IrqRequest& r) override;
    [[nodiscard]] Result<void> reset() override;
    [[nodiscard]] Result<void> ioeventfd(std::uint32_t index, std::uint64_t offset, unsigned size,
                                         std::uint64_t data, int fd) override;
    [[nodiscard]] Result<void> feature(std::uint32_t feature, FeatureOp op,
                                       std::span<std::uint8_t> payload) override;
    [[nodiscard]] Result<Fd> export_dma_buf(std::uint32_t index, std::uint64_t offset,
                                            std::uint64_t len) override;

private:
    // What region access needs of a region: fixed for the device's
    // lifetime (vfio-pci sets it at open), so learned once per index, at
    // the first region_info() or access.
    struct Slot {
        std::uint64_t offset = 0;  // in the device fd
        std::uint64_t size = 0;
        std::uint32_t flags = 0;
    };
    [[nodiscard]] Result<Slot> slot(std::uint32_t index);
    // Checks [offset, offset + len) against the region and `need`ed flag.
    [[nodiscard]] Result<Slot> checked(std::uint32_t index, std::uint64_t offset,
                                       std::uint64_t len, std::uint32_t need,
                                       std::string_view what);
    void remember(std::uint32_t index, const Slot& s);

    std::mutex mu_;  // guards slots_
    std::map<std::uint32_t, Slot> slots_;
};

// Whether `fd`, given by another process for device `a`, is a VFIO PCI
// device: it must answer VFIO_DEVICE_GET_INFO with the PCI flag, which any
// holder of the open file may ask (vfio_pci_core.c vfio_pci_ioctl_get_info).
// EPROTO otherwise.
[[nodiscard]] Result<void> check_kernel_device_fd(int fd, PciAddress a);

}  // namespace vfiokit::vfio::detail

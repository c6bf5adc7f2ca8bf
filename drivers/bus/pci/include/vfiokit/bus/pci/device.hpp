// A PCI device opened through VFIO: regions, config space, BARs, IRQs, reset.
//
// PciDevice wraps a vfio::Device (which owns the device fd and its place in a
// container) and speaks the VFIO device ioctls, which are the same in every
// mode. It does not own the vfio::Device: release it only after every Bar
// and IrqSet taken from this PciDevice is gone.
//
// Thread-safety: none; one thread drives a device's control path.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "vfiokit/bus/pci/bar.hpp"
#include "vfiokit/bus/pci/irq.hpp"
#include "vfiokit/eal/error.hpp"
#include "vfiokit/eal/vfio/vfio.hpp"

namespace vfiokit::pci {

// Region indexes of a vfio-pci device (VFIO_PCI_*_REGION_INDEX).
enum class Region : std::uint32_t { bar0 = 0, bar1, bar2, bar3, bar4, bar5, rom, config, vga };
[[nodiscard]] std::string to_string(Region r);
[[nodiscard]] inline Region bar_region(unsigned n) { return static_cast<Region>(n); }

struct SparseArea {
    std::uint64_t offset = 0;  // from the start of the region
    std::uint64_t size = 0;
};

struct RegionInfo {
    Region index{};
    std::uint64_t size = 0;       // 0: the region does not exist
    std::uint64_t offset = 0;     // of the region in the device fd (pread/pwrite/mmap)
    bool readable = false;
    bool writable = false;
    bool mappable = false;        // mmap allowed (VFIO_REGION_INFO_FLAG_MMAP)
    // Only these parts may be mmap()ed, when the kernel gave a sparse-mmap
    // capability (e.g. to keep the MSI-X table out); empty = the whole region.
    std::vector<SparseArea> sparse;
    bool msix_mappable = false;   // the MSI-X table may be mapped too
    std::optional<std::uint32_t> type, subtype;  // region type capability
    bool io_port = false;         // BAR is an I/O port BAR (from config space)
};

struct DeviceInfo {
    std::uint32_t flags = 0;
    std::uint32_t num_regions = 0;
    std::uint32_t num_irqs = 0;
    bool can_reset = false;       // VFIO_DEVICE_FLAGS_RESET
};

class PciDevice {
public:
    // `dev` must outlive the PciDevice and everything taken from it.
    explicit PciDevice(vfio::Device& dev) : dev_(&dev) {}

    [[nodiscard]] vfio::Device& vfio_device() const { return *dev_; }
    [[nodiscard]] PciAddress address() const { return dev_->address(); }

    [[nodiscard]] Result<DeviceInfo> info() const;
    // VFIO_DEVICE_GET_REGION_INFO with its capability chain.
    [[nodiscard]] Result<RegionInfo> region_info(Region r) const;

    // Config space through the config region (pread/pwrite); width 1, 2 or 4.
    [[nodiscard]] Result<std::uint32_t> config_read(std::uint32_t off, unsigned width) const;
    [[nodiscard]] Result<void> config_write(std::uint32_t off, unsigned width, std::uint32_t v) const;
    [[nodiscard]] Result<std::uint16_t> vendor_id() const;
    [[nodiscard]] Result<std::uint16_t> device_id() const;
    [[nodiscard]] Result<std::uint32_t> class_code() const;  // 24 bits

    // Any region through pread/pwrite: for regions that cannot be mapped,
    // I/O port BARs, and the ROM. Short transfers are errors.
    [[nodiscard]] Result<void> read_region(Region r, std::uint64_t off, void* buf, std::size_t len) const;
    [[nodiscard]] Result<void> write_region(Region r, std::uint64_t off, const void* buf,
                                            std::size_t len) const;

    // Maps a BAR: every part the kernel lets us mmap, honouring sparse areas
    // (the MSI-X table stays out unless the kernel says it is mappable);
    // the rest is reached through pread/pwrite by the same Bar. An I/O port
    // BAR or a BAR without MMAP gives a Bar with no mapping at all. A BAR
    // the device does not implement (size 0, e.g. the upper half of a
    // 64-bit BAR) fails with ENODEV. On failure nothing stays mapped.
    // `at`, when non-zero: map at exactly this address (a secondary process
    // mapping the BAR where its primary has it, so pointers into it are the
    // same in both); EEXIST naming the address when it is taken.
    [[nodiscard]] Result<Bar> map_bar(unsigned n, std::uint64_t at = 0) const;

    // PCI command register: memory space and bus mastering (needed for DMA).
    [[nodiscard]] Result<void> enable_memory_and_bus_master() const;
    [[nodiscard]] Result<void> disable_bus_master() const;
    // VFIO_DEVICE_RESET; ENOTSUP when the device has no reset method.
    [[nodiscard]] Result<void> reset() const;

    [[nodiscard]] Result<IrqInfo> irq_info(IrqType t) const;
    // Enables `count` vectors of `t` (INTx: 1), each signalling its own
    // eventfd. The IrqSet disables them when destroyed.
    [[nodiscard]] Result<IrqSet> enable_irqs(IrqType t, unsigned count = 1) const;

private:
    [[nodiscard]] Result<RegionInfo> cached_config_region() const;
    vfio::Device* dev_;
    mutable std::optional<RegionInfo> config_;
};

}  // namespace vfiokit::pci

/// \file
/// A PCI device opened through VFIO: regions, config space, BARs, IRQs, reset.
///
/// PciDevice speaks PCI on top of the device operations of vfio::Device
/// (device_ops.hpp): it never sees a device fd, so it works the same in
/// every mode and over any backend. It holds a shared handle to the
/// device, not the device: the vfio::Device may be released first, and then
/// every call here (and on the Bars and IrqSets it gave out) fails with
/// ENODEV "device `<BDF>` was released" and reaches no kernel object. Releasing
/// first is still the caller's mistake (a live Bar's mapping keeps the
/// kernel's device open, interrupts included, until the Bar goes), but a
/// reported one, never a call on a reused fd number.
///
/// Thread-safety: the calls are safe to make from several threads (each is
/// one or a few device operations, and the handle serializes them against
/// the release); what they do to the device is for the caller to order, as
/// for any register sequence.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vfiokit/bus/pci/bar.hpp"
#include "vfiokit/bus/pci/irq.hpp"
#include "vfiokit/eal/error.hpp"
#include "vfiokit/eal/vfio/device_ops.hpp"
#include "vfiokit/eal/vfio/vfio.hpp"

namespace vfiokit::pci {

/// Region indexes of a vfio-pci device (VFIO_PCI_*_REGION_INDEX).
enum class Region : std::uint32_t { bar0 = 0, bar1, bar2, bar3, bar4, bar5, rom, config, vga };
/// "BAR0" ... "BAR5", "ROM", "config", ...
[[nodiscard]] std::string to_string(Region r);
/// The region of BAR `n` (0 to 5).
[[nodiscard]] inline Region bar_region(unsigned n) { return static_cast<Region>(n); }

/// A part of a region that may be mmap()ed.
using SparseArea = vfio::SparseArea;

/// A region of the device: its size, where it is, and how it may be accessed.
struct RegionInfo {
    Region index{};
    std::uint64_t size = 0;       ///< 0: the region does not exist
    std::uint64_t offset = 0;     ///< where the backend keeps it (kernel: in the device fd)
    bool readable = false;
    bool writable = false;
    bool mappable = false;        ///< mmap allowed (VFIO_REGION_INFO_FLAG_MMAP)
    /// Only these parts may be mmap()ed, when the kernel gave a sparse-mmap
    /// capability (e.g. to keep the MSI-X table out); empty = the whole region.
    std::vector<SparseArea> sparse;
    bool msix_mappable = false;   ///< the MSI-X table may be mapped too
    std::optional<std::uint32_t> type, subtype;  ///< region type capability
    bool io_port = false;         ///< BAR is an I/O port BAR (from config space)
};

/// One entry of the standard capability list in config space.
struct Capability {
    std::uint8_t id = 0;       ///< PCI_CAP_ID_* (0x05 MSI, 0x09 vendor, 0x10 PCIe, 0x11 MSI-X)
    std::uint8_t offset = 0;   ///< where it starts in config space
};

/// The device's info: VFIO flags, region and IRQ counts, can_reset.
using DeviceInfo = vfio::DeviceInfo;

/// A PCI device opened through VFIO (see the file's description).
class PciDevice {
public:
    /// Takes a handle to `dev`'s operations; `dev` may be released first
    /// (see above).
    explicit PciDevice(vfio::Device& dev) : PciDevice(dev.handle()) { container_ = &dev.container(); }
    explicit PciDevice(std::shared_ptr<vfio::DeviceHandle> dev) : dev_(std::move(dev)) {}

    /// The device's operations, for what PciDevice does not wrap (device
    /// features, sparse mappings of other regions).
    [[nodiscard]] const std::shared_ptr<vfio::DeviceHandle>& handle() const { return dev_; }
    /// The container the device was assigned to, for a driver that maps
    /// memory of its own for it (a vDPA driver: DriverClass::vdpa);
    /// nullptr when made from a bare handle. Valid while the device stays
    /// assigned, which the bus guarantees for the driver's instance.
    [[nodiscard]] vfio::Container* container() const { return container_; }
    [[nodiscard]] PciAddress address() const { return dev_->address(); }

    [[nodiscard]] Result<DeviceInfo> info() const;
    /// The region's info, its capability chain parsed (sparse areas, MSI-X
    /// mappable, type), and whether a BAR decodes I/O space.
    [[nodiscard]] Result<RegionInfo> region_info(Region r) const;

    /// Config space through the config region (region read/write); width 1,
    /// 2 or 4, naturally aligned.
    [[nodiscard]] Result<std::uint32_t> config_read(std::uint32_t off, unsigned width) const;
    [[nodiscard]] Result<void> config_write(std::uint32_t off, unsigned width, std::uint32_t v) const;
    [[nodiscard]] Result<std::uint16_t> vendor_id() const;
    [[nodiscard]] Result<std::uint16_t> device_id() const;
    [[nodiscard]] Result<std::uint32_t> class_code() const;  ///< 24 bits
    /// The standard capability list (from the pointer at 0x34), in list
    /// order; empty when the status register says there is none. EPROTO
    /// when the list loops or points into the header.
    [[nodiscard]] Result<std::vector<Capability>> capabilities() const;

    /// Any region through region read/write: for regions that cannot be mapped,
    /// I/O port BARs, and the ROM. Short transfers are errors.
    [[nodiscard]] Result<void> read_region(Region r, std::uint64_t off, void* buf, std::size_t len) const;
    [[nodiscard]] Result<void> write_region(Region r, std::uint64_t off, const void* buf,
                                            std::size_t len) const;

    /// Maps a BAR: every part the kernel lets us mmap, honouring sparse areas
    /// (the MSI-X table stays out unless the kernel says it is mappable);
    /// the rest is reached through region read/write by the same Bar. An I/O port
    /// BAR or a BAR without MMAP gives a Bar with no mapping at all. A BAR
    /// the device does not implement (size 0, e.g. the upper half of a
    /// 64-bit BAR) fails with ENODEV. On failure nothing stays mapped.
    /// `at`, when non-zero: map at exactly this address (a secondary process
    /// mapping the BAR where its primary has it, so pointers into it are the
    /// same in both); EEXIST naming the address when it is taken.
    [[nodiscard]] Result<Bar> map_bar(unsigned n, std::uint64_t at = 0) const;

    /// PCI command register: memory space and bus mastering (needed for DMA).
    [[nodiscard]] Result<void> enable_memory_and_bus_master() const;
    [[nodiscard]] Result<void> disable_bus_master() const;
    /// Function reset; ENOTSUP when the device has no reset method.
    [[nodiscard]] Result<void> reset() const;
    /// SR-IOV PF driver: sets the token the PF's VFs open with
    /// (vfio::DeviceHandle::set_vf_token).
    [[nodiscard]] Result<void> set_vf_token(const Uuid& token) const {
        return dev_->set_vf_token(token);
    }

    [[nodiscard]] Result<IrqInfo> irq_info(IrqType t) const;
    /// Enables `count` vectors of `t` (INTx: 1), each signalling its own
    /// eventfd. The IrqSet disables them when destroyed.
    [[nodiscard]] Result<IrqSet> enable_irqs(IrqType t, unsigned count = 1) const;

private:
    std::shared_ptr<vfio::DeviceHandle> dev_;
    vfio::Container* container_ = nullptr;
};

}  // namespace vfiokit::pci

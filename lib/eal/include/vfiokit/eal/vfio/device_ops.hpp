/// \file
/// The operations of a VFIO device: what a bus or driver may ask of it.
///
/// Everything above the backends reaches a device through this interface,
/// never through a device fd: the PCI bus, every driver, the tools and the
/// tests. Each backend serves it its own way; the kernel backends (group,
/// compat, noiommu, cdev) share one implementation over the device fd
/// (lib/eal/vfio/kernel_device.cpp), and a backend that is not the kernel
/// (a vfio-user client) would implement it over its socket.
///
/// The vocabulary is VFIO's own (include/uapi/linux/vfio.h): regions and IRQs
/// are numbered by index (for vfio-pci: BAR0-5, ROM, config, VGA; INTx, MSI,
/// MSI-X, ERR, REQ), flags keep the kernel's bit values, and a region's
/// capability chain is already parsed into RegionInfo.
///
/// Errors: every call returns the backend's errno and names the operation
/// (the kernel ioctl or syscall). An operation a backend cannot do fails
/// with ENOTSUP "`<operation>`: not supported in `<mode>`". Once the device is
/// released (DeviceHandle below), every call fails with ENODEV "device
/// `<BDF>` was released" and reaches no backend at all.
///
/// Lifetime: vfio::Device (vfio.hpp) owns the device; Device::handle() gives
/// out shared references to its DeviceHandle, which stay safe to call after
/// the release. Bar, IrqSet and PciDevice (drivers/bus/pci) hold such a
/// handle, never a device fd or a Device pointer.
///
/// Thread-safety: a DeviceHandle may be called from any thread, concurrently
/// with other calls and with the release: calls share a lock that the
/// release takes exclusively, so no call is in a backend while the device
/// is being released, and none starts afterwards. What the calls do to the
/// device (two threads reprogramming the same IRQ index, say) is for the
/// caller to order. Implementations of DeviceOps are called only through a
/// handle, so they may assume the device is alive.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <vector>

#include "vfiokit/eal/error.hpp"
#include "vfiokit/eal/pci_address.hpp"
#include "vfiokit/eal/uuid.hpp"
#include "vfiokit/eal/vfio/syscalls.hpp"

namespace vfiokit::vfio {

/// VFIO_DEVICE_GET_INFO.
struct DeviceInfo {
    std::uint32_t flags = 0;        ///< VFIO_DEVICE_FLAGS_* bit values
    std::uint32_t num_regions = 0;  ///< highest region index + 1
    std::uint32_t num_irqs = 0;     ///< highest IRQ index + 1
    bool can_reset = false;         ///< VFIO_DEVICE_FLAGS_RESET: reset() may work
    bool pci = false;               ///< VFIO_DEVICE_FLAGS_PCI
};

/// A part of a region that may be mmap()ed (sparse-mmap capability).
struct SparseArea {
    std::uint64_t offset = 0;  ///< from the start of the region
    std::uint64_t size = 0;
};

/// VFIO_DEVICE_GET_REGION_INFO with its capability chain parsed.
struct RegionInfo {
    std::uint32_t index = 0;
    std::uint64_t size = 0;    ///< 0: the region does not exist
    /// Where the backend keeps the region (kernel: its offset in the device
    /// fd). Informational: read_region/map_region take region offsets.
    std::uint64_t offset = 0;
    bool readable = false;
    bool writable = false;
    bool mappable = false;     ///< map_region allowed (VFIO_REGION_INFO_FLAG_MMAP)
    /// Only these parts may be mapped, when the backend gave a sparse-mmap
    /// capability; empty = the whole region.
    std::vector<SparseArea> sparse;
    bool msix_mappable = false;  ///< the MSI-X table inside may be mapped too
    std::optional<std::uint32_t> type, subtype;  ///< region type capability
};

/// VFIO_DEVICE_GET_IRQ_INFO.
struct IrqInfo {
    std::uint32_t index = 0;
    std::uint32_t count = 0;  ///< vectors the device offers (0: none)
    bool eventfd = false;     ///< can signal an eventfd
    bool maskable = false;    ///< mask/unmask work
    bool automasked = false;  ///< level-triggered: masked on delivery
    bool noresize = false;    ///< vector count fixed once enabled
};

/// VFIO_DEVICE_SET_IRQS: one action on vectors [start, start + count) of
/// one IRQ index.
enum class IrqAction { trigger, mask, unmask };
/// One VFIO_DEVICE_SET_IRQS request (see IrqAction).
struct IrqRequest {
    std::uint32_t index = 0;
    IrqAction action = IrqAction::trigger;
    std::uint32_t start = 0;
    std::uint32_t count = 0;
    /// Empty: no payload (DATA_NONE). With trigger, that signals the vectors
    /// from the backend (a loopback); trigger with count 0 disables the
    /// whole index. Non-empty: one eventfd per vector (count must equal its
    /// size; -1 releases that vector): trigger enables the vectors to signal
    /// them, mask/unmask installs eventfds that mask/unmask when signalled.
    std::span<const int> eventfds;
};

/// VFIO_DEVICE_FEATURE: what to do with feature `feature`.
///   probe, probe_get, probe_set: ask whether the feature (and that access)
///     is supported; success means yes, the payload is not used;
///   get: the backend fills `payload`; set: the backend reads it.
enum class FeatureOp { probe, probe_get, probe_set, get, set };

/// The operations on an open device that differ between VFIO modes: info,
/// regions, interrupts, reset, features. Each backend implements them.
class DeviceOps {
public:
    virtual ~DeviceOps() = default;

    [[nodiscard]] virtual Result<DeviceInfo> info() = 0;
    [[nodiscard]] virtual Result<RegionInfo> region_info(std::uint32_t index) = 0;
    /// Exactly `len` bytes at `offset` inside region `index` (a short
    /// transfer is an error, EIO). EINVAL outside the region, ENODEV for a
    /// region of size 0, EACCES when the region is not readable/writable.
    /// One access of `len` bytes for len 1, 2, 4 or 8 (register accesses).
    [[nodiscard]] virtual Result<void> read_region(std::uint32_t index, std::uint64_t offset,
                                                   void* buf, std::size_t len) = 0;
    [[nodiscard]] virtual Result<void> write_region(std::uint32_t index, std::uint64_t offset,
                                                    const void* buf, std::size_t len) = 0;
    /// Maps [offset, offset + len) of region `index` (a sparse area, or the
    /// whole region) with `prot` (PROT_READ/PROT_WRITE), shared. `at`, when
    /// not null: exactly there, never over an existing mapping (EEXIST). The
    /// Mapping owns the range and stays valid after the device's release.
    [[nodiscard]] virtual Result<Mapping> map_region(std::uint32_t index, std::uint64_t offset,
                                                     std::uint64_t len, int prot, void* at) = 0;
    [[nodiscard]] virtual Result<IrqInfo> irq_info(std::uint32_t index) = 0;
    [[nodiscard]] virtual Result<void> set_irqs(const IrqRequest& r) = 0;
    [[nodiscard]] virtual Result<void> reset() = 0;
    [[nodiscard]] virtual Result<void> feature(std::uint32_t feature, FeatureOp op,
                                               std::span<std::uint8_t> payload) = 0;
    /// VFIO_DEVICE_IOEVENTFD: whenever eventfd `fd` is signalled, the
    /// backend itself writes `data` (`size` bytes: 1, 2, 4 or 8) at `offset`
    /// of region `index`, with no thread of this process involved (a
    /// doorbell rung by another process's eventfd write). fd -1 removes the
    /// one registered for that offset, size and data. vfio-pci serves BARs
    /// (not the MSI-X table); the registrations go with the device.
    /// ENOTSUP from a backend that cannot (the default).
    [[nodiscard]] virtual Result<void> ioeventfd(std::uint32_t index, std::uint64_t offset,
                                                 unsigned size, std::uint64_t data, int fd);
    /// VFIO_DEVICE_FEATURE_DMA_BUF (Linux 6.19+, CONFIG_VFIO_PCI_DMABUF):
    /// [offset, offset + len) of region `index` (a memory BAR) as a dma-buf,
    /// a new fd (close-on-exec) the caller owns; offset and len are
    /// page-aligned and inside the region. What it is for:
    /// Container::map_device_bar. The kernel revokes the dma-buf (its
    /// importers lose the memory) when the device is reset, its memory
    /// decoding is turned off, or its last fd is closed. ENOTSUP, naming the
    /// kernel it needs, where the kernel cannot; ENOTSUP from a backend that
    /// cannot (the default).
    [[nodiscard]] virtual Result<Fd> export_dma_buf(std::uint32_t index, std::uint64_t offset,
                                                    std::uint64_t len);
};

/// The shared, release-aware reference to a device's operations. Made by
/// the front end when a device is assigned; release() is called when it is
/// released (or its container destroyed), and destroys the operations:
/// the backend closes the device then, whoever still holds the handle.
class DeviceHandle final : public DeviceOps {
public:
    DeviceHandle(PciAddress addr, std::unique_ptr<DeviceOps> ops);
    DeviceHandle(const DeviceHandle&) = delete;
    DeviceHandle& operator=(const DeviceHandle&) = delete;
    ~DeviceHandle() override;

    [[nodiscard]] PciAddress address() const { return addr_; }
    [[nodiscard]] bool alive() const;
    /// Waits for calls in progress, then destroys the operations (which
    /// releases the device in the backend). Idempotent.
    void release();

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
    [[nodiscard]] Result<void> feature(std::uint32_t feature, FeatureOp op,
                                       std::span<std::uint8_t> payload) override;
    [[nodiscard]] Result<void> ioeventfd(std::uint32_t index, std::uint64_t offset, unsigned size,
                                         std::uint64_t data, int fd) override;
    [[nodiscard]] Result<Fd> export_dma_buf(std::uint32_t index, std::uint64_t offset,
                                            std::uint64_t len) override;
    /// How many resets went through this handle and succeeded. A reset
    /// revokes the device's dma-bufs (vfio_pci_core.c vfio_pci_ioctl_reset
    /// calls vfio_pci_dma_buf_move), so a BAR mapping made before it is dead.
    [[nodiscard]] std::uint64_t resets() const { return resets_.load(); }

    /// SR-IOV: sets this PF's VF token (VFIO_DEVICE_FEATURE_SET with
    /// VFIO_DEVICE_FEATURE_PCI_VF_TOKEN, the 16 bytes of the UUID), which
    /// vfio-pci then asks of every open of its VFs, and of the PF itself
    /// while a VF is open (probe.hpp, VfToken). Allowed at any time, VFs
    /// open or not; VFs already open stay open. The kernel keeps the token
    /// after the PF is closed, until vfio-pci lets go of the PF; it never
    /// reads it back. ENOTTY, naming the device, for anything but an SR-IOV
    /// PF bound to vfio-pci.
    [[nodiscard]] Result<void> set_vf_token(const Uuid& token);

private:
    // ENODEV "device <BDF> was released", with `what` as context.
    [[nodiscard]] Error released(std::string_view what) const;

    PciAddress addr_;
    std::atomic<std::uint64_t> resets_{0};
    mutable std::shared_mutex mu_;      // shared by calls, exclusive for release()
    std::unique_ptr<DeviceOps> ops_;    // null once released
};

/// ENOTSUP "`<what>`: not supported in `<where>`", for backends that lack an
/// operation ("reset: not supported in vfio-user mode").
[[nodiscard]] Error not_supported(std::string_view what, std::string_view where);

}  // namespace vfiokit::vfio

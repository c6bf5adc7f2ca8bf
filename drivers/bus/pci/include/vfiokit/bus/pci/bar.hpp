/// \file
/// A mapped BAR: owner of its mmap()ed parts, with typed register access.
///
/// `read<T>`/`write<T>` (T = uint8/16/32/64_t) go straight to the mapping when
/// the offset lies in a mapped part, and through the device's region
/// read/write operation otherwise (unmapped parts, I/O port BARs). MMIO
/// accesses are single volatile loads/stores of exactly sizeof(T) bytes;
/// `write<T>` is ordered after earlier memory writes (a release fence before
/// the store), so a driver that fills a DMA buffer and then writes a
/// doorbell needs nothing more; `read<T>` is ordered before later memory
/// reads (an acquire fence after the load).
///
/// Ownership: move-only; destroying it unmaps. It owns its mappings, which
/// stay valid until then, and holds a shared handle to the device's
/// operations (device_ops.hpp) for the rest. If the device is released
/// first, the mapped parts still work (the mapping keeps the kernel's device
/// open until the Bar goes), and everything else fails with ENODEV "device
/// `<BDF>` was released" without reaching the kernel.
///
/// Thread-safety: accesses from several threads are as safe as the device's
/// registers make them; the Bar itself is not changed by them. Moving or
/// destroying a Bar while another thread uses it is not.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "vfiokit/eal/error.hpp"
#include "vfiokit/eal/vfio/device_ops.hpp"
#include "vfiokit/eal/vfio/syscalls.hpp"

namespace vfiokit::pci {

/// The widths a PCI register access can have.
template <class T>
concept RegisterWord = std::is_same_v<T, std::uint8_t> || std::is_same_v<T, std::uint16_t> ||
                       std::is_same_v<T, std::uint32_t> || std::is_same_v<T, std::uint64_t>;

/// A mapped BAR (see the file's description). Made by PciDevice::map_bar.
class Bar {
public:
    /// One mmap()ed part of the BAR.
    struct Part {
        std::uint64_t offset = 0;  ///< within the BAR
        vfio::Mapping map;
    };

    Bar() = default;
    /// BAR `index` of `device` (its region index too), `size` bytes, with
    /// the `parts` already mapped.
    Bar(unsigned index, std::shared_ptr<vfio::DeviceOps> device, std::uint64_t size, bool io_port,
        std::vector<Part> parts);
    Bar(Bar&&) noexcept = default;
    Bar& operator=(Bar&&) noexcept = default;

    [[nodiscard]] unsigned index() const { return index_; }
    [[nodiscard]] std::uint64_t size() const { return size_; }
    [[nodiscard]] bool io_port() const { return io_port_; }
    /// Whether [off, off+len) is inside one mmap()ed part.
    [[nodiscard]] bool mapped(std::uint64_t off, std::uint64_t len = 1) const;
    [[nodiscard]] const std::vector<Part>& parts() const { return parts_; }
    /// Pointer into the mapping for bulk access (e.g. a device buffer);
    /// nullptr when [off, off+len) is not mapped.
    [[nodiscard]] volatile std::uint8_t* pointer(std::uint64_t off, std::uint64_t len) const;

    /// Register access. Out-of-range offsets and failed region accesses are
    /// programming or device errors: the checked forms report them (EINVAL
    /// for an offset outside the BAR or not a multiple of sizeof(T), ENODEV
    /// after the device's release, else the backend's errno), with the
    /// device, BAR and offset. The unchecked
    /// forms act like a PCI master abort: read returns all-ones, write is
    /// dropped, and the error is logged (component pci.bar, warning); they
    /// never abort.
    ///
    /// read/write are inline for the data path: an aligned access inside the
    /// BAR's largest mapped part is one volatile load or store and a fence;
    /// anything else (other parts, region read/write, errors) goes out of
    /// line. Neither path takes a lock or makes a virtual call when mapped.
    template <RegisterWord T>
    [[nodiscard]] T read(std::uint64_t off) const {
        if (off - fast_lo_ < fast_len_ && fast_len_ - (off - fast_lo_) >= sizeof(T) &&
            off % sizeof(T) == 0) {
            const T v = *static_cast<const volatile T*>(
                static_cast<const volatile void*>(fast_ + (off - fast_lo_)));
            // Later reads of memory (a DMA buffer whose completion this
            // register reported) must not be satisfied before this load.
            std::atomic_thread_fence(std::memory_order_acquire);
            return v;
        }
        return slow_read<T>(off);
    }
    template <RegisterWord T>
    void write(std::uint64_t off, T v) {
        if (off - fast_lo_ < fast_len_ && fast_len_ - (off - fast_lo_) >= sizeof(T) &&
            off % sizeof(T) == 0) {
            // Earlier memory writes (a descriptor, a DMA buffer) become
            // visible before the device sees this store (a doorbell).
            std::atomic_thread_fence(std::memory_order_release);
            *static_cast<volatile T*>(static_cast<volatile void*>(fast_ + (off - fast_lo_))) = v;
            return;
        }
        slow_write<T>(off, v);
    }
    template <RegisterWord T>
    [[nodiscard]] Result<T> try_read(std::uint64_t off) const;
    template <RegisterWord T>
    [[nodiscard]] Result<void> try_write(std::uint64_t off, T v);

private:
    template <RegisterWord T>
    [[nodiscard]] T slow_read(std::uint64_t off) const;
    template <RegisterWord T>
    void slow_write(std::uint64_t off, T v);

    friend class PciDevice;  // sets owner_
    // "BAR0 offset 0x4" prefixed with the device address, for messages.
    [[nodiscard]] std::string where(std::uint64_t off) const;

    std::string owner_;  // device address; empty for a Bar built by hand
    unsigned index_ = 0;
    std::shared_ptr<vfio::DeviceOps> dev_;  // the slow path; null for Bar()
    std::uint64_t size_ = 0;
    bool io_port_ = false;
    std::vector<Part> parts_;
    // The largest mapped part, for the inline path: [fast_lo_, fast_lo_ +
    // fast_len_) of the BAR at fast_. Empty (len 0) when nothing is mapped.
    // Moving a Bar keeps these valid: the mappings themselves do not move.
    volatile std::uint8_t* fast_ = nullptr;
    std::uint64_t fast_lo_ = 0;
    std::uint64_t fast_len_ = 0;
};

}  // namespace vfiokit::pci

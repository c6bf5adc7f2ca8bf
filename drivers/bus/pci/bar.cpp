#include "vfiokit/bus/pci/bar.hpp"
#include "vfiokit/eal/format.hpp"
#include "vfiokit/eal/log.hpp"

#include <atomic>
#include <bit>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <type_traits>

namespace vfiokit::pci {

// PCI is little-endian and so are the hosts vfiokit targets (x86-64,
// arm64): a load from the mapping and the bytes pread() returns are the
// register's value without swapping.
static_assert(std::endian::native == std::endian::little,
              "Bar accesses assume a little-endian host");

namespace {

// Reads and writes the unchecked accessors could not do.
const log::Component kLog("pci.bar");

template <class T>
std::string width() {
    return std::to_string(sizeof(T) * 8) + "-bit";
}

}  // namespace

Bar::Bar(unsigned index, std::shared_ptr<vfio::DeviceOps> device, std::uint64_t size, bool io_port,
         std::vector<Part> parts)
    : index_(index),
      dev_(std::move(device)),
      size_(size),
      io_port_(io_port),
      parts_(std::move(parts)) {
    for (const auto& p : parts_) {
        if (p.map.size() > fast_len_) {
            fast_ = static_cast<volatile std::uint8_t*>(p.map.addr());
            fast_lo_ = p.offset;
            fast_len_ = p.map.size();
        }
    }
}

std::string Bar::where(std::uint64_t off) const {
    return (owner_.empty() ? "" : owner_ + " ") + "BAR" + std::to_string(index_) + " offset " + hex(off);
}

bool Bar::mapped(std::uint64_t off, std::uint64_t len) const {
    return pointer(off, len) != nullptr;
}

volatile std::uint8_t* Bar::pointer(std::uint64_t off, std::uint64_t len) const {
    if (len == 0)
        len = 1;
    for (const auto& p : parts_) {
        // Written so that nothing overflows, whatever off and len are.
        if (off < p.offset || off - p.offset >= p.map.size() || len > p.map.size() - (off - p.offset))
            continue;
        return static_cast<volatile std::uint8_t*>(p.map.addr()) + (off - p.offset);
    }
    return nullptr;
}

template <RegisterWord T>
Result<T> Bar::try_read(std::uint64_t off) const {
    if (off > size_ || sizeof(T) > size_ - off)
        return fail(Error(EINVAL, width<T>() + " read outside the BAR (size " + hex(size_) + ")")
                        .context(where(off)));
    // A naturally aligned access is one PCI transaction; an unaligned one
    // may be split (or, over the mapping, tear across two registers).
    if (off % sizeof(T) != 0)
        return fail(Error(EINVAL, "unaligned " + width<T>() + " read").context(where(off)));
    if (volatile std::uint8_t* p = pointer(off, sizeof(T))) {
        const T v = *static_cast<const volatile T*>(static_cast<const volatile void*>(p));
        // Later reads of memory (e.g. a DMA buffer whose completion this
        // register reported) must not be satisfied before this load.
        std::atomic_thread_fence(std::memory_order_acquire);
        return v;
    }
    // Unmapped part, I/O port BAR, or the MSI-X table when the kernel keeps
    // it out of the mapping: the region read does one access of this width
    // (device_ops.hpp). The kernel's is a syscall, which orders like a full
    // barrier, so no fence is needed here.
    T v{};
    if (!dev_)
        return fail(Error(EBADF, width<T>() + " read: no device").context(where(off)));
    if (auto r = dev_->read_region(index_, off, &v, sizeof v); !r)
        return fail(std::move(r.error().context(where(off) + ": " + width<T>() + " read")));
    return v;
}

template <RegisterWord T>
Result<void> Bar::try_write(std::uint64_t off, T v) {
    if (off > size_ || sizeof(T) > size_ - off)
        return fail(Error(EINVAL, width<T>() + " write outside the BAR (size " + hex(size_) + ")")
                        .context(where(off)));
    if (off % sizeof(T) != 0)
        return fail(Error(EINVAL, "unaligned " + width<T>() + " write").context(where(off)));
    if (volatile std::uint8_t* p = pointer(off, sizeof(T))) {
        // Earlier memory writes (a descriptor, a DMA buffer) become visible
        // before the device sees this store (a doorbell).
        std::atomic_thread_fence(std::memory_order_release);
        *static_cast<volatile T*>(static_cast<volatile void*>(p)) = v;
        return {};
    }
    if (!dev_)
        return fail(Error(EBADF, width<T>() + " write: no device").context(where(off)));
    if (auto r = dev_->write_region(index_, off, &v, sizeof v); !r)
        return fail(std::move(r.error().context(where(off) + ": " + width<T>() + " write")));
    return {};
}

// The unchecked forms behave like a PCI master abort: a read that cannot be
// done returns all-ones, a write is dropped. Either is a bug in the driver
// (or a dead device), never a reason to take the process down; it is
// logged (component pci.bar, warning) so it does not go unnoticed.
template <RegisterWord T>
T Bar::slow_read(std::uint64_t off) const {
    auto r = try_read<T>(off);
    if (r)
        return *r;
    kLog.warning("{} (read returns all-ones)", r.error().message());
    return static_cast<T>(~T{0});
}

template <RegisterWord T>
void Bar::slow_write(std::uint64_t off, T v) {
    auto r = try_write<T>(off, v);
    if (!r)
        kLog.warning("{} (write dropped)", r.error().message());
}

// The register widths (RegisterWord rejects others at compile time).
template std::uint8_t Bar::slow_read<std::uint8_t>(std::uint64_t) const;
template std::uint16_t Bar::slow_read<std::uint16_t>(std::uint64_t) const;
template std::uint32_t Bar::slow_read<std::uint32_t>(std::uint64_t) const;
template std::uint64_t Bar::slow_read<std::uint64_t>(std::uint64_t) const;
template void Bar::slow_write<std::uint8_t>(std::uint64_t, std::uint8_t);
template void Bar::slow_write<std::uint16_t>(std::uint64_t, std::uint16_t);
template void Bar::slow_write<std::uint32_t>(std::uint64_t, std::uint32_t);
template void Bar::slow_write<std::uint64_t>(std::uint64_t, std::uint64_t);
template Result<std::uint8_t> Bar::try_read<std::uint8_t>(std::uint64_t) const;
template Result<std::uint16_t> Bar::try_read<std::uint16_t>(std::uint64_t) const;
template Result<std::uint32_t> Bar::try_read<std::uint32_t>(std::uint64_t) const;
template Result<std::uint64_t> Bar::try_read<std::uint64_t>(std::uint64_t) const;
template Result<void> Bar::try_write<std::uint8_t>(std::uint64_t, std::uint8_t);
template Result<void> Bar::try_write<std::uint16_t>(std::uint64_t, std::uint16_t);
template Result<void> Bar::try_write<std::uint32_t>(std::uint64_t, std::uint32_t);
template Result<void> Bar::try_write<std::uint64_t>(std::uint64_t, std::uint64_t);

}  // namespace vfiokit::pci

// PciDevice: the VFIO device ioctls of vfio-pci (vfio_pci_core.c), config
// space and regions through pread/pwrite, BAR mappings.
#include "vfiokit/bus/pci/device.hpp"

#include <sys/mman.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "vfiokit/bus/pci/register.hpp"
#include "vfiokit/eal/format.hpp"
#include "vfiokit/uapi/vfio.hpp"

namespace vfiokit::pci {

namespace {

// PCI Local Bus Specification 3.0, 6.2.2: the Command register. The Status
// register next to it (0x06) has write-1-to-clear bits, which is why it is
// written as 16 bits, never as part of a 32-bit write.
struct Command : Register<Command, std::uint16_t, 0x04> {
    VFIOKIT_FIELD(0, 0, io_space);
    VFIOKIT_FIELD(1, 1, memory_space);
    VFIOKIT_FIELD(2, 2, bus_master);
};

// Config space header offsets (PCI 3.0, 6.1).
constexpr std::uint32_t kVendorId = 0x00;
constexpr std::uint32_t kDeviceId = 0x02;
constexpr std::uint32_t kRevisionAndClass = 0x08;
constexpr std::uint32_t kBar0 = 0x10;
// Bit 0 of a BAR: 1 = I/O space (PCI 3.0, 6.2.5.1). vfio-pci virtualizes the
// BARs but keeps these flag bits (vfio_pci_config.c, vfio_bar_fixup).
constexpr std::uint32_t kBarIoSpace = 0x1;

// pread (into `rd`) or pwrite (from `wr`) of exactly `len` bytes at `off`
// inside region `r`.
Result<void> region_io(int fd, const RegionInfo& r, std::uint64_t off, void* rd, const void* wr,
                       std::size_t len, const std::string& who) {
    const bool write = wr != nullptr;
    const std::string what = who + " offset " + hex(off) + " length " + std::to_string(len);
    if (r.size == 0)
        return fail(Error(ENODEV, "region does not exist (size 0)").context(what));
    if (off > r.size || len > r.size - off)
        return fail(Error(EINVAL, "access outside the region (size " + hex(r.size) + ")").context(what));
    if (write ? !r.writable : !r.readable)
        return fail(Error(EACCES, write ? "region is not writable" : "region is not readable").context(what));
    const auto pos = static_cast<off_t>(r.offset + off);
    const ssize_t n = write ? vfio::sys().pwrite(fd, wr, len, pos) : vfio::sys().pread(fd, rd, len, pos);
    if (n < 0)
        return fail(Error(errno, write ? "pwrite" : "pread").context(what));
    if (static_cast<std::size_t>(n) != len)
        return fail(Error(EIO, std::string("short ") + (write ? "pwrite" : "pread") + ": " +
                                   std::to_string(n) + " bytes")
                        .context(what));
    return {};
}

}  // namespace

std::string to_string(Region r) {
    const auto i = static_cast<std::uint32_t>(r);
    switch (r) {
    case Region::bar0:
    case Region::bar1:
    case Region::bar2:
    case Region::bar3:
    case Region::bar4:
    case Region::bar5: return "BAR" + std::to_string(i);
    case Region::rom: return "ROM";
    case Region::config: return "config";
    case Region::vga: return "VGA";
    }
    return "region " + std::to_string(i);  // device-specific (type capability)
}

Result<DeviceInfo> PciDevice::info() const {
    uapi::vfio_device_info i{};
    i.argsz = sizeof i;
    if (auto r = vfio::do_ioctl(dev_->fd(), uapi::kVfioDeviceGetInfo, &i, "VFIO_DEVICE_GET_INFO"); !r)
        return fail(std::move(r.error().context(address().str())));
    return DeviceInfo{i.flags, i.num_regions, i.num_irqs, (i.flags & uapi::kVfioDeviceFlagsReset) != 0};
}

Result<RegionInfo> PciDevice::region_info(Region r) const {
    constexpr std::string_view what = "VFIO_DEVICE_GET_REGION_INFO";
    const std::string who = address().str() + " " + to_string(r);
    const auto index = static_cast<std::uint32_t>(r);
    uapi::vfio_region_info head{};
    head.argsz = sizeof head;
    head.index = index;
    if (auto res = vfio::do_ioctl(dev_->fd(), uapi::kVfioDeviceGetRegionInfo, &head, what); !res)
        return fail(std::move(res.error().context(who)));

    // With capabilities the first call only learns how big the chain is:
    // argsz comes back raised and cap_offset 0 (vfio_pci_core.c,
    // vfio_pci_ioctl_get_region_info). Ask again with a buffer that large.
    std::vector<std::uint64_t> buf;  // u64 elements: 8-byte alignment for the structs
    std::uint32_t size = sizeof head;
    if ((head.flags & uapi::kVfioRegionInfoFlagCaps) != 0 && head.argsz > sizeof head) {
        size = head.argsz;
        for (int attempt = 0;; ++attempt) {
            buf.assign((size + 7) / 8, 0);
            auto* h = static_cast<uapi::vfio_region_info*>(static_cast<void*>(buf.data()));
            h->argsz = size;
            h->index = index;
            if (auto res = vfio::do_ioctl(dev_->fd(), uapi::kVfioDeviceGetRegionInfo, h, what); !res)
                return fail(std::move(res.error().context(who)));
            if (h->argsz <= size)
                break;
            if (attempt == 2)
                return fail(Error(EAGAIN, std::string(what) + ": the capability chain keeps growing")
                                .context(who));
            size = h->argsz;
        }
        std::memcpy(&head, buf.data(), sizeof head);
    }

    RegionInfo info;
    info.index = r;
    info.size = head.size;
    info.offset = head.offset;
    info.readable = (head.flags & uapi::kVfioRegionInfoFlagRead) != 0;
    info.writable = (head.flags & uapi::kVfioRegionInfoFlagWrite) != 0;
    info.mappable = (head.flags & uapi::kVfioRegionInfoFlagMmap) != 0;

    const auto* base = reinterpret_cast<const unsigned char*>(buf.data());
    auto malformed = [&] {
        return fail(Error(EPROTO, std::string(what) + ": malformed capability chain").context(who));
    };
    // Offsets count from the start of the buffer and only grow; anything
    // else would be a kernel bug, and must not make us loop or overrun.
    for (std::uint32_t off = buf.empty() ? 0 : head.cap_offset; off != 0;) {
        uapi::vfio_info_cap_header cap;
        if (off < sizeof head || std::size_t{off} + sizeof cap > size)
            return malformed();
        std::memcpy(&cap, base + off, sizeof cap);
        if (cap.id == uapi::kVfioRegionInfoCapSparseMmap) {
            using Area = uapi::vfio_region_sparse_mmap_area;
            uapi::vfio_region_info_cap_sparse_mmap s;
            if (std::size_t{off} + sizeof s > size)
                return malformed();
            std::memcpy(&s, base + off, sizeof s);
            if (std::size_t{off} + uapi::size_with_trailer<decltype(s), Area>(s.nr_areas) > size)
                return malformed();
            for (std::uint32_t i = 0; i < s.nr_areas; ++i) {
                Area a;
                std::memcpy(&a, base + off + sizeof s + i * sizeof a, sizeof a);
                info.sparse.push_back({a.offset, a.size});
            }
        } else if (cap.id == uapi::kVfioRegionInfoCapType) {
            uapi::vfio_region_info_cap_type t;
            if (std::size_t{off} + sizeof t > size)
                return malformed();
            std::memcpy(&t, base + off, sizeof t);
            info.type = t.type;
            info.subtype = t.subtype;
        } else if (cap.id == uapi::kVfioRegionInfoCapMsixMappable) {
            info.msix_mappable = true;
        }
        if (cap.next != 0 && cap.next <= off)
            return malformed();
        off = cap.next;
    }

    // VFIO does not say whether a BAR decodes memory or I/O space; the BAR
    // register in config space does.
    if (index <= static_cast<std::uint32_t>(Region::bar5) && info.size != 0) {
        auto bar = config_read(kBar0 + 4 * index, 4);
        if (!bar)
            return fail(std::move(bar.error().context(who + ": I/O or memory BAR?")));
        info.io_port = (*bar & kBarIoSpace) != 0;
    }
    return info;
}

Result<RegionInfo> PciDevice::cached_config_region() const {
    if (!config_) {
        auto r = region_info(Region::config);
        if (!r)
            return fail(std::move(r.error()));
        config_ = std::move(*r);
    }
    return *config_;
}

Result<std::uint32_t> PciDevice::config_read(std::uint32_t off, unsigned width) const {
    const std::string who = address().str() + " config";
    if (width != 1 && width != 2 && width != 4)
        return fail(Error(EINVAL, "config read of width " + std::to_string(width) + " (1, 2 or 4)")
                        .context(who));
    // Config accesses are dword-granular (PCI 3.0, 3.2.2.3.2): a naturally
    // aligned access never straddles two registers' dwords.
    if (off % width != 0)
        return fail(Error(EINVAL, "unaligned config read at " + hex(off)).context(who));
    auto region = cached_config_region();
    if (!region)
        return fail(std::move(region.error()));
    unsigned char b[4] = {};
    if (auto r = region_io(dev_->fd(), *region, off, b, nullptr, width, who); !r)
        return fail(std::move(r.error()));
    std::uint32_t v = 0;
    for (unsigned i = 0; i < width; ++i)  // config space is little-endian
        v |= std::uint32_t{b[i]} << (8 * i);
    return v;
}

Result<void> PciDevice::config_write(std::uint32_t off, unsigned width, std::uint32_t v) const {
    const std::string who = address().str() + " config";
    if (width != 1 && width != 2 && width != 4)
        return fail(Error(EINVAL, "config write of width " + std::to_string(width) + " (1, 2 or 4)")
                        .context(who));
    if (off % width != 0)
        return fail(Error(EINVAL, "unaligned config write at " + hex(off)).context(who));
    if (width < 4 && (v >> (8 * width)) != 0)
        return fail(Error(EINVAL, "value " + hex(v) + " wider than " + std::to_string(width) + " byte(s)")
                        .context(who));
    auto region = cached_config_region();
    if (!region)
        return fail(std::move(region.error()));
    unsigned char b[4];
    for (unsigned i = 0; i < 4; ++i)
        b[i] = static_cast<unsigned char>(v >> (8 * i));
    return region_io(dev_->fd(), *region, off, nullptr, b, width, who);
}

Result<std::uint16_t> PciDevice::vendor_id() const {
    auto v = config_read(kVendorId, 2);
    if (!v)
        return fail(std::move(v.error()));
    return static_cast<std::uint16_t>(*v);
}

Result<std::uint16_t> PciDevice::device_id() const {
    auto v = config_read(kDeviceId, 2);
    if (!v)
        return fail(std::move(v.error()));
    return static_cast<std::uint16_t>(*v);
}

Result<std::uint32_t> PciDevice::class_code() const {
    auto v = config_read(kRevisionAndClass, 4);  // revision ID in the low byte
    if (!v)
        return fail(std::move(v.error()));
    return *v >> 8;
}

Result<void> PciDevice::read_region(Region r, std::uint64_t off, void* buf, std::size_t len) const {
    auto info = region_info(r);
    if (!info)
        return fail(std::move(info.error()));
    return region_io(dev_->fd(), *info, off, buf, nullptr, len, address().str() + " " + to_string(r));
}

Result<void> PciDevice::write_region(Region r, std::uint64_t off, const void* buf, std::size_t len) const {
    auto info = region_info(r);
    if (!info)
        return fail(std::move(info.error()));
    return region_io(dev_->fd(), *info, off, nullptr, buf, len, address().str() + " " + to_string(r));
}

Result<Bar> PciDevice::map_bar(unsigned n, std::uint64_t at) const {
    const std::string who = address().str() + " BAR" + std::to_string(n);
    if (n > 5)
        return fail(Error(EINVAL, "map_bar: a PCI device has BAR0 to BAR5").context(who));
    auto info = region_info(bar_region(n));
    if (!info)
        return fail(std::move(info.error()));
    // Also the upper half of a 64-bit BAR: vfio-pci reports it with size 0.
    if (info->size == 0)
        return fail(Error(ENODEV, "map_bar: the device does not implement this BAR").context(who));

    std::vector<Bar::Part> parts;
    if (!info->io_port && info->mappable) {
        // Without a sparse capability the whole region may be mapped. Linux
        // 6.12 no longer carves the MSI-X table out of its BAR (it reports
        // MSIX_MAPPABLE instead); older kernels listed the parts around it
        // as sparse areas, which is why both are honoured.
        std::vector<SparseArea> areas = info->sparse;
        if (areas.empty())
            areas.push_back({0, info->size});
        const int prot = (info->readable ? PROT_READ : 0) | (info->writable ? PROT_WRITE : 0);
        for (const auto& a : areas) {
            if (a.size == 0)
                continue;
            if (a.offset > info->size || a.size > info->size - a.offset)
                return fail(Error(EPROTO, "sparse area " + hex(a.offset) + "+" + hex(a.size) +
                                              " outside the region (size " + hex(info->size) + ")")
                                .context(who));
            // At a chosen address (a secondary mirroring its primary's
            // layout), never over an existing mapping.
            void* where = at != 0 ? reinterpret_cast<void*>(at + a.offset) : nullptr;
            const int flags = MAP_SHARED | (at != 0 ? MAP_FIXED_NOREPLACE : 0);
            auto m = vfio::map_memory(where, a.size, prot, flags, dev_->fd(),
                                      static_cast<off_t>(info->offset + a.offset), who);
            if (!m) {  // `parts` unmaps what was mapped so far
                Error e = std::move(m.error());
                if (at != 0 && e.err() == EEXIST)
                    e.hint("the address " + hex(at + a.offset) + " is taken in this process");
                return fail(std::move(e.context("map_bar: area " + hex(a.offset) + "+" +
                                                hex(a.size))));
            }
            if (at != 0 && m->addr() != where)  // kernels before 4.17 ignore the flag
                return fail(Error(EEXIST, "map_bar: the kernel placed the BAR elsewhere than " +
                                              hex(at + a.offset))
                                .context(who));
            parts.push_back({a.offset, std::move(*m)});
        }
    }
    Bar bar(n, dev_->fd(), info->offset, info->size, info->io_port, std::move(parts));
    bar.owner_ = address().str();
    return bar;
}

Result<void> PciDevice::enable_memory_and_bus_master() const {
    auto raw = config_read(Command::offset, 2);
    if (!raw)
        return fail(std::move(raw.error().context("enable memory space and bus master")));
    auto cmd = Command::from_raw(static_cast<std::uint16_t>(*raw));
    if (cmd.memory_space() && cmd.bus_master())
        return {};
    cmd.set_memory_space(1).set_bus_master(1);
    if (auto w = config_write(Command::offset, 2, cmd.raw()); !w)
        return fail(std::move(w.error().context("enable memory space and bus master")));
    return {};
}

Result<void> PciDevice::disable_bus_master() const {
    auto raw = config_read(Command::offset, 2);
    if (!raw)
        return fail(std::move(raw.error().context("disable bus master")));
    auto cmd = Command::from_raw(static_cast<std::uint16_t>(*raw));
    if (!cmd.bus_master())
        return {};
    cmd.set_bus_master(0);
    if (auto w = config_write(Command::offset, 2, cmd.raw()); !w)
        return fail(std::move(w.error().context("disable bus master")));
    return {};
}

Result<void> PciDevice::reset() const {
    auto i = info();
    if (!i)
        return fail(std::move(i.error()));
    // Without a reset method the kernel answers EINVAL
    // (vfio_pci_ioctl_reset); say what it means instead.
    if (!i->can_reset)
        return fail(Error(ENOTSUP, "VFIO_DEVICE_RESET: the device has no reset method "
                                   "(no FLR, PM reset, or bus reset it alone can take)")
                        .context(address().str()));
    if (auto r = vfio::do_ioctl(dev_->fd(), uapi::kVfioDeviceReset, nullptr, "VFIO_DEVICE_RESET"); !r)
        return fail(std::move(r.error().context(address().str())));
    return {};
}

}  // namespace vfiokit::pci

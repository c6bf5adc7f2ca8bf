// PciDevice: PCI on top of the device operations (device_ops.hpp): config
// space and regions through region read/write, BAR mappings, reset.
#include "vfiokit/bus/pci/device.hpp"

#include <sys/mman.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>

#include "vfiokit/bus/pci/register.hpp"
#include "vfiokit/eal/format.hpp"

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
constexpr auto kConfigIndex = static_cast<std::uint32_t>(Region::config);

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
    auto i = dev_->info();
    if (!i)
        return fail(std::move(i.error().context(address().str())));
    return *i;
}

Result<RegionInfo> PciDevice::region_info(Region r) const {
    const std::string who = address().str() + " " + to_string(r);
    const auto index = static_cast<std::uint32_t>(r);
    auto got = dev_->region_info(index);
    if (!got)
        return fail(std::move(got.error().context(who)));
    RegionInfo info;
    info.index = r;
    info.size = got->size;
    info.offset = got->offset;
    info.readable = got->readable;
    info.writable = got->writable;
    info.mappable = got->mappable;
    info.sparse = std::move(got->sparse);
    info.msix_mappable = got->msix_mappable;
    info.type = got->type;
    info.subtype = got->subtype;

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

Result<std::uint32_t> PciDevice::config_read(std::uint32_t off, unsigned width) const {
    const std::string who = address().str() + " config";
    if (width != 1 && width != 2 && width != 4)
        return fail(Error(EINVAL, "config read of width " + std::to_string(width) + " (1, 2 or 4)")
                        .context(who));
    // Config accesses are dword-granular (PCI 3.0, 3.2.2.3.2): a naturally
    // aligned access never straddles two registers' dwords.
    if (off % width != 0)
        return fail(Error(EINVAL, "unaligned config read at " + hex(off)).context(who));
    unsigned char b[4] = {};
    if (auto r = dev_->read_region(kConfigIndex, off, b, width); !r)
        return fail(std::move(r.error().context(who)));
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
    unsigned char b[4];
    for (unsigned i = 0; i < 4; ++i)
        b[i] = static_cast<unsigned char>(v >> (8 * i));
    if (auto r = dev_->write_region(kConfigIndex, off, b, width); !r)
        return fail(std::move(r.error().context(who)));
    return {};
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

Result<std::vector<Capability>> PciDevice::capabilities() const {
    constexpr std::uint32_t kStatus = 0x06, kCapPointer = 0x34;
    constexpr std::uint32_t kStatusCapList = 1u << 4;
    const std::string who = address().str() + " capability list";
    auto status = config_read(kStatus, 2);
    if (!status)
        return fail(std::move(status.error().context(who)));
    std::vector<Capability> caps;
    if (!(*status & kStatusCapList))
        return caps;
    auto ptr = config_read(kCapPointer, 1);
    if (!ptr)
        return fail(std::move(ptr.error().context(who)));
    // The low two bits are reserved; 48 entries at most fit in the 192
    // bytes after the header, so more means a loop.
    for (std::uint32_t off = *ptr & 0xfc; off != 0; ) {
        if (off < 0x40)
            return fail(Error(EPROTO, "entry at " + hex(off) + " points into the header")
                            .context(who));
        if (caps.size() == 48)
            return fail(Error(EPROTO, "the list loops").context(who));
        auto head = config_read(off, 2);  // id, next
        if (!head)
            return fail(std::move(head.error().context(who)));
        caps.push_back({static_cast<std::uint8_t>(*head & 0xff), static_cast<std::uint8_t>(off)});
        off = (*head >> 8) & 0xfc;
    }
    return caps;
}

Result<void> PciDevice::read_region(Region r, std::uint64_t off, void* buf, std::size_t len) const {
    if (auto ok = dev_->read_region(static_cast<std::uint32_t>(r), off, buf, len); !ok)
        return fail(std::move(ok.error().context(address().str() + " " + to_string(r))));
    return {};
}

Result<void> PciDevice::write_region(Region r, std::uint64_t off, const void* buf, std::size_t len) const {
    if (auto ok = dev_->write_region(static_cast<std::uint32_t>(r), off, buf, len); !ok)
        return fail(std::move(ok.error().context(address().str() + " " + to_string(r))));
    return {};
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
            auto m = dev_->map_region(static_cast<std::uint32_t>(n), a.offset, a.size, prot, where);
            if (!m) {  // `parts` unmaps what was mapped so far
                Error e = std::move(m.error());
                if (at != 0 && e.err() == EEXIST)
                    e.hint("the address " + hex(at + a.offset) + " is taken in this process");
                return fail(std::move(e.context(who + ": map_bar: area " + hex(a.offset) + "+" +
                                                hex(a.size))));
            }
            if (at != 0 && m->addr() != where)  // kernels before 4.17 ignore the flag
                return fail(Error(EEXIST, "map_bar: the kernel placed the BAR elsewhere than " +
                                              hex(at + a.offset))
                                .context(who));
            parts.push_back({a.offset, std::move(*m)});
        }
    }
    Bar bar(n, dev_, info->size, info->io_port, std::move(parts));
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
        return fail(Error(ENOTSUP, "device reset: the device has no reset method "
                                   "(no FLR, PM reset, or bus reset it alone can take)")
                        .context(address().str()));
    if (auto r = dev_->reset(); !r)
        return fail(std::move(r.error().context(address().str())));
    return {};
}

}  // namespace vfiokit::pci

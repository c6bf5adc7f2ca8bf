// Shared VFIO state: encoding and validating decoding (share_codec.hpp).
#include "share_codec.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <limits>
#include <map>
#include <set>
#include <string>

#include "../byte_codec.hpp"
#include "modes.hpp"
#include "vfiokit/eal/format.hpp"
#include "vfiokit/uapi/vfio.hpp"

namespace vfiokit::vfio::share {

namespace {

constexpr std::uint8_t kMagic[4] = {'V', 'F', 'K', 'S'};
constexpr std::size_t kHeaderSize = 24;
constexpr std::size_t kContainerSize = 24;
constexpr std::size_t kGroupSize = 8;
constexpr std::size_t kDeviceSize = 16;
constexpr std::size_t kMappingSize = 24;
constexpr std::uint64_t kPage = 4096;  // the IOMMU page size every table entry is a multiple of

constexpr std::uint8_t kDefaultFlag = 1;
constexpr std::uint8_t kModelSetFlag = 2;
constexpr std::uint8_t kHasGroupFlag = 1;

std::uint8_t type1_code(Type1 t) {
    switch (t) {
    case Type1::automatic: return 0;
    case Type1::v2: return 1;
    case Type1::v1: return 2;
    }
    return 0xff;
}

std::optional<Type1> type1_of(std::uint8_t c) {
    for (Type1 t : {Type1::automatic, Type1::v2, Type1::v1})
        if (type1_code(t) == c)
            return t;
    return std::nullopt;
}

using codec::Reader;
using codec::Writer;

std::unexpected<Error> bad(const std::string& why) {
    return fail(Error(EPROTO, "decode shared VFIO state: " + why)
                    .hint("the bytes and fds must come unchanged from Vfio::export_shared() of "
                          "the same vfiokit version"));
}

}  // namespace

Result<std::vector<std::uint8_t>> encode(const Snapshot& s) {
    auto too_big = [](const std::string& what) {
        return fail(E2BIG, "encode shared VFIO state: too many " + what);
    };
    if (s.containers.size() > std::numeric_limits<std::uint16_t>::max())
        return too_big("containers");
    Writer w;
    w.bytes(kMagic, sizeof kMagic);
    w.u16(kVersion);
    w.u16(0);
    w.u32(0);  // total length, patched below
    w.u32(s.fd_count);
    w.u8(detail::mode_row(s.mode).wire_id);
    w.u8(type1_code(s.type1));
    w.u16(static_cast<std::uint16_t>(s.containers.size()));
    w.u32(s.iommufd);
    for (const auto& c : s.containers) {
        if (c.groups.size() > std::numeric_limits<std::uint16_t>::max())
            return too_big("groups in a container");
        if (c.devices.size() > std::numeric_limits<std::uint16_t>::max())
            return too_big("devices in a container");
        if (c.mappings.size() > std::numeric_limits<std::uint32_t>::max())
            return too_big("mappings in a container");
        w.u8(static_cast<std::uint8_t>((c.is_default ? kDefaultFlag : 0) |
                                       (c.model_set ? kModelSetFlag : 0)));
        w.u8(0);
        w.u16(static_cast<std::uint16_t>(c.groups.size()));
        w.u32(c.iommu_model);
        w.u32(c.container_fd);
        w.u32(c.ioas_id);
        w.u16(static_cast<std::uint16_t>(c.devices.size()));
        w.u16(0);
        w.u32(static_cast<std::uint32_t>(c.mappings.size()));
        for (const auto& g : c.groups) {
            w.u32(g.number);
            w.u32(g.fd);
        }
        for (const auto& d : c.devices) {
            w.u32(d.addr.domain);
            w.u8(d.addr.bus);
            w.u8(d.addr.dev);
            w.u8(d.addr.func);
            w.u8(d.group ? kHasGroupFlag : 0);
            w.u32(d.group.value_or(0));
            w.u32(d.fd);
        }
        for (const auto& m : c.mappings) {
            w.u64(m.iova);
            w.u64(m.vaddr);
            w.u64(m.len);
        }
    }
    if (w.size() > std::numeric_limits<std::uint32_t>::max())
        return too_big("bytes");
    w.patch_u32(8, static_cast<std::uint32_t>(w.size()));
    return w.take();
}

Result<Snapshot> decode(std::span<const std::uint8_t> bytes, std::size_t fd_count) {
    Reader r(bytes);
    if (bytes.size() < kHeaderSize)
        return bad("truncated: " + std::to_string(bytes.size()) + " bytes, the header alone is " +
                   std::to_string(kHeaderSize));
    if (!std::equal(kMagic, kMagic + sizeof kMagic, bytes.begin()))
        return bad("no \"VFKS\" magic: not shared VFIO state");
    (void)r.u32("magic");
    if (const auto v = r.u16("version"); v != kVersion)
        return bad("version " + std::to_string(v) + ", this build reads version " +
                   std::to_string(kVersion));
    if (const auto f = r.u16("header flags"); f != 0)
        return bad("unknown header flags " + hex(f));
    if (const auto n = r.u32("length"); n != bytes.size())
        return bad("the header says " + std::to_string(n) + " bytes, " +
                   std::to_string(bytes.size()) + " arrived");
    Snapshot s;
    s.fd_count = r.u32("fd count");
    if (s.fd_count != fd_count)
        return bad("the header says " + std::to_string(s.fd_count) + " fds, " +
                   std::to_string(fd_count) + " arrived");
    const detail::ModeRow* row = detail::mode_row_by_wire_id(r.u8("mode"));
    const auto type1 = type1_of(r.u8("type1"));
    if (!row || !type1)
        return bad(!row ? "unknown mode" : "unknown type1 flavour");
    s.mode = row->mode;
    s.type1 = *type1;
    // Which fields the mode's containers use (modes.hpp ShareStyle).
    const bool ioas = row->share == detail::ShareStyle::ioas_in_iommufd;
    const std::string mode_name(row->name);
    const std::uint16_t ncontainers = r.u16("container count");
    s.iommufd = r.u32("iommufd");
    if (ncontainers == 0)
        return bad("no container (there is always a default one)");
    // As for each container's entries below: a count the bytes cannot hold
    // is refused before anything is read for it.
    if (std::uint64_t{ncontainers} * kContainerSize > r.left())
        return bad(std::to_string(ncontainers) + " containers need at least " +
                   std::to_string(std::uint64_t{ncontainers} * kContainerSize) + " bytes, " +
                   std::to_string(r.left()) + " are left");
    if (ioas != (s.iommufd != kNoFd))
        return bad(ioas ? mode_name + " mode without an iommufd"
                        : "an iommufd in " + mode_name + " mode");

    std::set<std::uint32_t> used_fds;
    auto take_fd = [&](std::uint32_t fd, const std::string& what) -> Result<void> {
        if (fd >= fd_count)
            return bad(what + ": fd index " + std::to_string(fd) + " out of range (" +
                       std::to_string(fd_count) + " fds)");
        if (!used_fds.insert(fd).second)
            return bad(what + ": fd index " + std::to_string(fd) + " used twice");
        return {};
    };
    if (ioas)
        if (auto ok = take_fd(s.iommufd, "iommufd"); !ok)
            return fail(std::move(ok.error()));

    std::set<PciAddress> addrs;
    std::map<std::uint32_t, std::size_t> group_owner;  // group number -> container index
    for (std::size_t ci = 0; ci < ncontainers; ++ci) {
        const std::string who = "container " + std::to_string(ci);
        ContainerEntry c;
        const std::uint8_t flags = r.u8("container flags");
        const std::uint8_t reserved1 = r.u8("container");
        const std::uint16_t ngroups = r.u16("group count");
        c.iommu_model = r.u32("IOMMU model");
        c.container_fd = r.u32("container fd");
        c.ioas_id = r.u32("IOAS id");
        const std::uint16_t ndevices = r.u16("device count");
        const std::uint16_t reserved2 = r.u16("container");
        const std::uint32_t nmappings = r.u32("mapping count");
        if (!r.ok())
            return bad(r.error());
        if ((flags & ~(kDefaultFlag | kModelSetFlag)) != 0 || reserved1 != 0 || reserved2 != 0)
            return bad(who + ": unknown flags or non-zero reserved fields");
        c.is_default = (flags & kDefaultFlag) != 0;
        c.model_set = (flags & kModelSetFlag) != 0;
        if (c.is_default != (ci == 0))
            return bad(who + (c.is_default ? ": a second default container"
                                           : ": the first container is not the default one"));
        // Each entry has a fixed size: a count the remaining bytes cannot
        // hold is refused before anything is allocated for it.
        const std::uint64_t need = std::uint64_t{ngroups} * kGroupSize +
                                   std::uint64_t{ndevices} * kDeviceSize +
                                   std::uint64_t{nmappings} * kMappingSize;
        if (need > r.left())
            return bad(who + ": " + std::to_string(ngroups) + " groups, " +
                       std::to_string(ndevices) + " devices and " + std::to_string(nmappings) +
                       " mappings need " + std::to_string(need) + " bytes, " +
                       std::to_string(r.left()) + " are left");
        if (ioas) {
            if (c.container_fd != kNoFd || c.iommu_model != 0 || c.model_set || ngroups != 0)
                return bad(who + ": a container fd, IOMMU model or groups in " + mode_name +
                           " mode");
        } else {
            if (c.ioas_id != 0)
                return bad(who + ": an IOAS id in " + mode_name + " mode");
            if (!row->model_fits(s.type1, c.iommu_model))
                return bad(who + ": IOMMU model " + std::to_string(c.iommu_model) + " in " +
                           std::string(to_string(s.mode)) + " mode with type1 " +
                           std::string(to_string(s.type1)));
            if (c.model_set != (ngroups != 0))
                return bad(who + (c.model_set ? ": IOMMU model set without a group"
                                              : ": groups but no IOMMU model set"));
            if (auto ok = take_fd(c.container_fd, who + " fd"); !ok)
                return fail(std::move(ok.error()));
        }

        for (std::uint16_t i = 0; i < ngroups; ++i) {
            GroupEntry g{r.u32("group number"), r.u32("group fd")};
            const std::string gw = who + " group " + std::to_string(g.number);
            if (!group_owner.emplace(g.number, ci).second)
                return bad(gw + ": listed twice");
            if (auto ok = take_fd(g.fd, gw); !ok)
                return fail(std::move(ok.error()));
            c.groups.push_back(g);
        }
        std::set<std::uint32_t> groups_with_devices;
        for (std::uint16_t i = 0; i < ndevices; ++i) {
            DeviceEntry d;
            d.addr.domain = r.u32("device domain");
            d.addr.bus = r.u8("device bus");
            d.addr.dev = r.u8("device number");
            d.addr.func = r.u8("device function");
            const std::uint8_t dflags = r.u8("device flags");
            const std::uint32_t group = r.u32("device group");
            d.fd = r.u32("device fd");
            if (!r.ok())
                return bad(r.error());
            if (d.addr.dev > 31 || d.addr.func > 7 || (dflags & ~kHasGroupFlag) != 0)
                return bad(who + " device " + std::to_string(i) + ": not a PCI address, or "
                                                                   "unknown flags");
            const std::string dw = who + " device " + d.addr.str();
            if (!addrs.insert(d.addr).second)
                return bad(dw + ": listed twice");
            if ((dflags & kHasGroupFlag) != 0) {
                d.group = group;
            } else if (group != 0) {
                return bad(dw + ": a group number without the has-group flag");
            }
            if (!ioas) {
                const bool listed = d.group && std::any_of(c.groups.begin(), c.groups.end(),
                                                           [&](const GroupEntry& g) {
                                                               return g.number == *d.group;
                                                           });
                if (!listed)
                    return bad(dw + ": its group is not among the container's groups");
                groups_with_devices.insert(*d.group);
            } else if (d.group) {
                // A group belongs to one container (one IO page table).
                auto [it, fresh] = group_owner.emplace(*d.group, ci);
                if (!fresh && it->second != ci)
                    return bad(dw + ": group " + std::to_string(*d.group) +
                               " is in another container too");
            }
            if (auto ok = take_fd(d.fd, dw); !ok)
                return fail(std::move(ok.error()));
            c.devices.push_back(d);
        }
        if (groups_with_devices.size() != c.groups.size())
            return bad(who + ": a group without a device");

        if (nmappings != 0 && !row->maps_memory)
            return bad(who + ": DMA mappings in " + mode_name + " mode, which maps nothing");
        for (std::uint32_t i = 0; i < nmappings; ++i) {
            DmaMapping m{r.u64("mapping iova"), r.u64("mapping vaddr"), r.u64("mapping length")};
            const std::string mw = who + " mapping " + range_text(m.iova, m.len);
            if (m.len == 0 || (m.iova | m.vaddr | m.len) % kPage != 0)
                return bad(mw + ": empty or not 4 KiB-aligned");
            if (m.iova + (m.len - 1) < m.iova || m.vaddr + (m.len - 1) < m.vaddr)
                return bad(mw + ": wraps around");
            c.mappings.push_back(m);
        }
        if (!r.ok())
            return bad(r.error());
        std::sort(c.mappings.begin(), c.mappings.end(),
                  [](const DmaMapping& a, const DmaMapping& b) { return a.iova < b.iova; });
        for (std::size_t i = 1; i < c.mappings.size(); ++i)
            if (c.mappings[i].iova <= c.mappings[i - 1].iova + (c.mappings[i - 1].len - 1))
                return bad(who + " mapping " +
                           range_text(c.mappings[i].iova, c.mappings[i].len) +
                           ": overlaps " +
                           range_text(c.mappings[i - 1].iova, c.mappings[i - 1].len));
        s.containers.push_back(std::move(c));
    }
    if (r.left() != 0)
        return bad(std::to_string(r.left()) + " bytes after the last container");
    if (used_fds.size() != fd_count)
        return bad(std::to_string(fd_count - used_fds.size()) + " of the " +
                   std::to_string(fd_count) + " fds belong to nothing");
    return s;
}

}  // namespace vfiokit::vfio::share

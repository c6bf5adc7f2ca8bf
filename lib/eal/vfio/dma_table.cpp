#include "vfiokit/eal/vfio/dma_table.hpp"

#include <cerrno>
#include <cstdio>

#include "vfiokit/eal/format.hpp"

namespace vfiokit::vfio {

Result<void> DmaTable::check_free(std::uint64_t iova, std::uint64_t len) const {
    // Above every mapping (EAL memory, most workloads map upwards): nothing
    // to search.
    if (by_iova_.empty() || iova >= std::prev(by_iova_.end())->second.end())
        return {};
    const std::uint64_t end = iova + len;
    // The first mapping starting at or after iova, and the one before it:
    // only these two can overlap, since mappings never overlap each other.
    auto next = by_iova_.lower_bound(iova);
    if (next != by_iova_.end() && next->second.iova < end)
        return fail(EEXIST, "map " + range_text(iova, len) + ": overlaps mapping " +
                                range_text(next->second.iova, next->second.len));
    if (next != by_iova_.begin()) {
        const auto& prev = std::prev(next)->second;
        if (prev.end() > iova)
            return fail(EEXIST, "map " + range_text(iova, len) + ": overlaps mapping " +
                                    range_text(prev.iova, prev.len));
    }
    return {};
}

void DmaTable::insert(const DmaMapping& m) {
    // Hinted at the end: a mapping above all others (EAL memory, most
    // workloads) goes in without a search; any other is placed by one.
    const std::size_t before = by_iova_.size();
    by_iova_.emplace_hint(by_iova_.end(), m.iova, m);
    if (by_iova_.size() != before)
        bytes_ += m.len;
}

namespace {

// The messages of an unmap range that does not hold whole mappings; built
// only on failure (unmap is a per-call path).
Error cuts_through(std::uint64_t iova, std::uint64_t len, const DmaMapping& m) {
    return Error(EINVAL, "unmap " + range_text(iova, len) + ": cuts through mapping " +
                             range_text(m.iova, m.len) + " (only whole mappings can be unmapped)");
}

}  // namespace

Result<DmaTable::Extent> DmaTable::whole_extent(std::uint64_t iova, std::uint64_t len) const {
    const std::uint64_t end = iova + len;
    auto it = by_iova_.lower_bound(iova);
    if (it != by_iova_.begin()) {
        const auto& prev = std::prev(it)->second;
        if (prev.end() > iova)
            return fail(cuts_through(iova, len, prev));
    }
    Extent x;
    for (; it != by_iova_.end() && it->second.iova < end; ++it) {
        if (it->second.end() > end)
            return fail(cuts_through(iova, len, it->second));
        ++x.count;
        x.bytes += it->second.len;
    }
    if (x.count == 0)
        return fail(ENOENT, "unmap " + range_text(iova, len) + ": no mapping in that range");
    return x;
}

Result<std::vector<DmaMapping>> DmaTable::whole_mappings_in(std::uint64_t iova,
                                                            std::uint64_t len) const {
    auto x = whole_extent(iova, len);
    if (!x)
        return fail(std::move(x.error()));
    std::vector<DmaMapping> out;
    out.reserve(x->count);
    for_each_in(iova, len, [&](const DmaMapping& m) { out.push_back(m); });
    return out;
}

void DmaTable::erase(const std::vector<DmaMapping>& ms) {
    for (const auto& m : ms) {
        auto it = by_iova_.find(m.iova);
        if (it == by_iova_.end())
            continue;
        bytes_ -= it->second.len;
        by_iova_.erase(it);
    }
}

void DmaTable::erase_range(std::uint64_t iova, std::uint64_t len) {
    auto it = by_iova_.lower_bound(iova);
    while (it != by_iova_.end() && it->first - iova < len) {
        bytes_ -= it->second.len;
        it = by_iova_.erase(it);
    }
}

std::optional<DmaMapping> DmaTable::lookup(std::uint64_t iova) const {
    auto it = by_iova_.upper_bound(iova);
    if (it == by_iova_.begin())
        return std::nullopt;
    const auto& m = std::prev(it)->second;
    if (iova < m.end())
        return m;
    return std::nullopt;
}

std::vector<DmaMapping> DmaTable::all() const {
    std::vector<DmaMapping> v;
    v.reserve(by_iova_.size());
    for (const auto& [k, m] : by_iova_)
        v.push_back(m);
    return v;
}

Result<std::uint64_t> DmaTable::find_free(const std::vector<IovaRange>& ranges, std::uint64_t len,
                                          std::uint64_t align, std::uint64_t limit,
                                          std::uint64_t floor) const {
    if (len == 0 || align == 0 || (align & (align - 1)) != 0)
        return fail(EINVAL, "allocate IOVA: length must be non-zero and alignment a power of two");
    auto align_up = [align](std::uint64_t v, bool& overflow) {
        std::uint64_t r = (v + align - 1) & ~(align - 1);
        overflow = r < v;
        return r;
    };
    for (const auto& r : ranges) {
        const std::uint64_t last = std::min(r.last, limit);
        if (r.start > last)
            continue;
        bool ovf = false;
        std::uint64_t pos = align_up(std::max(r.start, floor), ovf);
        while (!ovf && pos <= last && last - pos >= len - 1) {
            // The mapping that would collide: the one containing pos, or the
            // first starting inside [pos, pos+len).
            auto it = by_iova_.upper_bound(pos);
            if (it != by_iova_.begin() && std::prev(it)->second.end() > pos) {
                pos = align_up(std::prev(it)->second.end(), ovf);
                continue;
            }
            if (it != by_iova_.end() && it->second.iova <= pos + len - 1) {
                pos = align_up(it->second.end(), ovf);
                continue;
            }
            return pos;
        }
    }
    return fail(ENOSPC, "allocate IOVA: no free " + hex(len) + " bytes (alignment " + hex(align) +
                            ") below " + hex(limit) + " inside the container's IOVA ranges");
}

}  // namespace vfiokit::vfio

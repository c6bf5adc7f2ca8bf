#include "vfiokit/eal/vfio/dma_table.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include "vfiokit/eal/format.hpp"

namespace vfiokit::vfio {

namespace {

// The errors of the checks, built only on failure and out of line: map and
// unmap are per-call paths, and formatting inline would cost every call a
// larger stack frame.
[[gnu::cold, gnu::noinline]] Error overlaps(std::uint64_t iova, std::uint64_t len,
                                            const DmaMapping& m) {
    return Error(EEXIST, "map " + range_text(iova, len) + ": overlaps mapping " +
                             range_text(m.iova, m.len));
}

[[gnu::cold, gnu::noinline]] Error cuts_through(std::uint64_t iova, std::uint64_t len,
                                                const DmaMapping& m) {
    return Error(EINVAL, "unmap " + range_text(iova, len) + ": cuts through mapping " +
                             range_text(m.iova, m.len) + " (only whole mappings can be unmapped)");
}

[[gnu::cold, gnu::noinline]] Error nothing_in(std::uint64_t iova, std::uint64_t len) {
    return Error(ENOENT, "unmap " + range_text(iova, len) + ": no mapping in that range");
}

}  // namespace

std::size_t DmaTable::lower(std::uint64_t iova) const {
    // Either end first: mapping upwards, and unmapping in the order mapped
    // or the reverse, never search.
    const std::size_t n = by_iova_.size();
    if (n == 0 || iova <= by_iova_.front().iova)
        return 0;
    if (iova > by_iova_.back().iova)
        return n;
    if (iova == by_iova_.back().iova)
        return n - 1;
    auto it = std::partition_point(by_iova_.begin(), by_iova_.end(),
                                   [iova](const DmaMapping& m) { return m.iova < iova; });
    return static_cast<std::size_t>(it - by_iova_.begin());
}

Result<void> DmaTable::check_free(std::uint64_t iova, std::uint64_t len) const {
    // Above every mapping (EAL memory, most workloads map upwards): nothing
    // to search.
    if (by_iova_.empty() || iova >= by_iova_.back().end())
        return {};
    const std::uint64_t end = iova + len;
    // The first mapping starting at or after iova, and the one before it:
    // only these two can overlap, since mappings never overlap each other.
    const std::size_t i = lower(iova);
    const DmaMapping* hit = nullptr;
    if (i < by_iova_.size() && by_iova_[i].iova < end)
        hit = &by_iova_[i];
    else if (i > 0 && by_iova_[i - 1].end() > iova)
        hit = &by_iova_[i - 1];
    if (hit != nullptr)
        return fail(overlaps(iova, len, *hit));
    return {};
}

void DmaTable::insert(const DmaMapping& m) {
    // At either end (EAL memory and most workloads map upwards) without a
    // search; anywhere else the deque moves the shorter side.
    if (by_iova_.empty() || m.iova > by_iova_.back().iova) {
        by_iova_.push_back(m);
    } else if (m.iova < by_iova_.front().iova) {
        by_iova_.push_front(m);
    } else {
        const std::size_t i = lower(m.iova);
        if (by_iova_[i].iova == m.iova)  // already there (the precondition says it is not)
            return;
        by_iova_.insert(by_iova_.begin() + static_cast<std::ptrdiff_t>(i), m);
    }
    bytes_ += m.len;
}

Result<DmaTable::Extent> DmaTable::whole_extent(std::uint64_t iova, std::uint64_t len) const {
    const std::uint64_t end = iova + len;
    Extent x;
    x.first = lower(iova);
    auto it = by_iova_.begin() + static_cast<std::ptrdiff_t>(x.first);
    if (it != by_iova_.begin()) {
        const auto& prev = *std::prev(it);
        if (prev.end() > iova)
            return fail(cuts_through(iova, len, prev));
    }
    for (; it != by_iova_.end() && it->iova < end; ++it) {
        if (it->end() > end)
            return fail(cuts_through(iova, len, *it));
        ++x.count;
        x.bytes += it->len;
    }
    if (x.count == 0)
        return fail(nothing_in(iova, len));
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

void DmaTable::erase_at(std::size_t first, std::size_t count) {
    if (count == 0)
        return;
    auto it = by_iova_.begin() + static_cast<std::ptrdiff_t>(first);
    for (std::size_t i = 0; i < count; ++i, ++it)
        bytes_ -= it->len;
    // At either end the deque only drops elements; in the middle it moves
    // the shorter side.
    if (first == 0 && count == 1)
        by_iova_.pop_front();
    else if (first + count == by_iova_.size() && count == 1)
        by_iova_.pop_back();
    else
        by_iova_.erase(by_iova_.begin() + static_cast<std::ptrdiff_t>(first),
                       by_iova_.begin() + static_cast<std::ptrdiff_t>(first + count));
}

void DmaTable::erase(const std::vector<DmaMapping>& ms) {
    for (const auto& m : ms) {
        const std::size_t i = lower(m.iova);
        if (i < by_iova_.size() && by_iova_[i].iova == m.iova)
            erase_at(i, 1);
    }
}

void DmaTable::erase_range(std::uint64_t iova, std::uint64_t len) {
    const std::size_t first = lower(iova);
    std::size_t last = first;
    while (last < by_iova_.size() && by_iova_[last].iova - iova < len)
        ++last;
    erase_at(first, last - first);
}

std::optional<DmaMapping> DmaTable::lookup(std::uint64_t iova) const {
    // The last mapping starting at or below iova.
    const std::size_t n = by_iova_.size();
    std::size_t i = lower(iova);
    if (i < n && by_iova_[i].iova == iova)
        return by_iova_[i];
    if (i == 0)
        return std::nullopt;
    const auto& m = by_iova_[i - 1];
    if (iova < m.end())
        return m;
    return std::nullopt;
}

std::vector<DmaMapping> DmaTable::all() const {
    return std::vector<DmaMapping>(by_iova_.begin(), by_iova_.end());
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
            std::size_t i = lower(pos);  // first starting at or after pos
            if (i < by_iova_.size() && by_iova_[i].iova == pos) {
                pos = align_up(by_iova_[i].end(), ovf);
                continue;
            }
            if (i > 0 && by_iova_[i - 1].end() > pos) {
                pos = align_up(by_iova_[i - 1].end(), ovf);
                continue;
            }
            if (i < by_iova_.size() && by_iova_[i].iova <= pos + len - 1) {
                pos = align_up(by_iova_[i].end(), ovf);
                continue;
            }
            return pos;
        }
    }
    return fail(ENOSPC, "allocate IOVA: no free " + hex(len) + " bytes (alignment " + hex(align) +
                            ") below " + hex(limit) + " inside the container's IOVA ranges");
}

}  // namespace vfiokit::vfio

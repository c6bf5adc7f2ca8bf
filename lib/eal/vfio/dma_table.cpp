#include "vfiokit/eal/vfio/dma_table.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <type_traits>
#include <utility>

#include "vfiokit/eal/format.hpp"

namespace vfiokit::vfio {

static_assert(std::is_trivially_copyable_v<DmaMapping>,
              "the table moves mappings with memmove and grows with realloc");

namespace {

// The one spare array of the process: a dying table's storage, kept for
// the next table's first growth so that its pages, already touched, cost
// no page faults again. Never freed (reachable, not a leak).
constexpr std::size_t kSpareMaxBytes = std::size_t{8} << 20;
struct Spare {
    std::mutex mu;
    DmaMapping* buf = nullptr;
    std::size_t cap = 0;
};
Spare& spare() {
    static Spare* s = new Spare;
    return *s;
}

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
    const std::size_t n = size();
    if (n == 0 || iova <= at(0).iova)
        return 0;
    if (iova > at(n - 1).iova)
        return n;
    if (iova == at(n - 1).iova)
        return n - 1;
    const DmaMapping* it = std::partition_point(
        buf_ + head_, buf_ + tail_, [iova](const DmaMapping& m) { return m.iova < iova; });
    return static_cast<std::size_t>(it - (buf_ + head_));
}

DmaTable::~DmaTable() {
    if (buf_ == nullptr)
        return;
    Spare& sp = spare();
    {
        std::lock_guard g(sp.mu);
        if (cap_ > sp.cap && cap_ * sizeof(DmaMapping) <= kSpareMaxBytes) {
            std::swap(buf_, sp.buf);
            std::swap(cap_, sp.cap);
        }
    }
    std::free(buf_);
}

void DmaTable::grow(std::size_t cap) {
    if (buf_ == nullptr) {
        Spare& sp = spare();
        std::lock_guard g(sp.mu);
        if (sp.cap >= cap) {
            buf_ = std::exchange(sp.buf, nullptr);
            cap_ = std::exchange(sp.cap, 0);
            return;
        }
    }
    auto* b = static_cast<DmaMapping*>(std::realloc(buf_, cap * sizeof(DmaMapping)));
    if (b == nullptr)
        throw std::bad_alloc();
    buf_ = b;
    cap_ = cap;
}

void DmaTable::room_at_back() {
    const std::size_t n = size();
    // Unmapped from the front while mapping at the back: slide down when
    // that frees half the array, rather than grow it.
    if (head_ > 0 && n <= cap_ / 2) {
        std::memmove(buf_, buf_ + head_, n * sizeof(DmaMapping));
        head_ = 0;
        tail_ = n;
        return;
    }
    grow(cap_ == 0 ? 64 : cap_ * 2);  // realloc keeps the positions
}

void DmaTable::room_at_front() {
    // Room on both sides of the mappings, half of what is free on each, so
    // that mapping downwards is amortized O(1) as upwards is.
    const std::size_t n = size();
    std::size_t cap = cap_;
    while (cap < 2 * (n + 1))
        cap = cap == 0 ? 64 : cap * 2;
    if (cap != cap_)
        grow(cap);
    const std::size_t head = (cap_ - n) / 2;
    std::memmove(buf_ + head, buf_ + head_, n * sizeof(DmaMapping));
    head_ = head;
    tail_ = head + n;
}

Result<void> DmaTable::check_free(std::uint64_t iova, std::uint64_t len) const {
    // Above every mapping (EAL memory, most workloads map upwards): nothing
    // to search.
    if (above_all(iova))
        return {};
    const std::uint64_t end = iova + len;
    // The first mapping starting at or after iova, and the one before it:
    // only these two can overlap, since mappings never overlap each other.
    const std::size_t i = lower(iova);
    const DmaMapping* hit = nullptr;
    if (i < size() && at(i).iova < end)
        hit = &at(i);
    else if (i > 0 && at(i - 1).end() > iova)
        hit = &at(i - 1);
    if (hit != nullptr)
        return fail(overlaps(iova, len, *hit));
    return {};
}

void DmaTable::insert(const DmaMapping& m) {
    // At either end (EAL memory and most workloads map upwards) without a
    // search; anywhere else the shorter side moves.
    if (head_ == tail_ || m.iova > at(size() - 1).iova) {
        append(m);
        return;
    }
    if (m.iova < at(0).iova) {
        if (head_ == 0)
            room_at_front();
        buf_[--head_] = m;
    } else {
        const std::size_t i = lower(m.iova);
        if (at(i).iova == m.iova)  // already there (the precondition says it is not)
            return;
        if (i < size() - i && head_ > 0) {  // the i before it, one slot down
            std::memmove(buf_ + head_ - 1, buf_ + head_, i * sizeof(DmaMapping));
            --head_;
        } else {  // the ones from i on, one slot up
            if (tail_ == cap_)
                room_at_back();
            std::memmove(buf_ + head_ + i + 1, buf_ + head_ + i, (size() - i) * sizeof(DmaMapping));
            ++tail_;
        }
        buf_[head_ + i] = m;
    }
    bytes_ += m.len;
}

Result<DmaTable::Extent> DmaTable::whole_extent(std::uint64_t iova, std::uint64_t len) const {
    const std::uint64_t end = iova + len;
    Extent x;
    x.first = lower(iova);
    const DmaMapping* it = buf_ + head_ + x.first;
    if (x.first > 0) {
        const DmaMapping& prev = it[-1];
        if (prev.end() > iova)
            return fail(cuts_through(iova, len, prev));
    }
    for (; it != buf_ + tail_ && it->iova < end; ++it) {
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
    for (std::size_t i = 0; i < count; ++i)
        bytes_ -= at(first + i).len;
    // At either end only an index moves; in the middle the shorter side
    // does.
    const std::size_t after = size() - first - count;
    if (first <= after) {
        std::memmove(buf_ + head_ + count, buf_ + head_, first * sizeof(DmaMapping));
        head_ += count;
    } else {
        std::memmove(buf_ + head_ + first, buf_ + head_ + first + count,
                     after * sizeof(DmaMapping));
        tail_ -= count;
    }
    if (head_ == tail_)
        head_ = tail_ = 0;
}

void DmaTable::erase(const std::vector<DmaMapping>& ms) {
    for (const auto& m : ms) {
        const std::size_t i = lower(m.iova);
        if (i < size() && at(i).iova == m.iova)
            erase_at(i, 1);
    }
}

void DmaTable::erase_range(std::uint64_t iova, std::uint64_t len) {
    const std::size_t first = lower(iova);
    std::size_t last = first;
    while (last < size() && at(last).iova - iova < len)
        ++last;
    erase_at(first, last - first);
}

std::optional<DmaMapping> DmaTable::lookup(std::uint64_t iova) const {
    // The last mapping starting at or below iova.
    const std::size_t n = size();
    std::size_t i = lower(iova);
    if (i < n && at(i).iova == iova)
        return at(i);
    if (i == 0)
        return std::nullopt;
    const auto& m = at(i - 1);
    if (iova < m.end())
        return m;
    return std::nullopt;
}

std::vector<DmaMapping> DmaTable::all() const {
    return std::vector<DmaMapping>(buf_ + head_, buf_ + tail_);
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
            if (i < size() && at(i).iova == pos) {
                pos = align_up(at(i).end(), ovf);
                continue;
            }
            if (i > 0 && at(i - 1).end() > pos) {
                pos = align_up(at(i - 1).end(), ovf);
                continue;
            }
            if (i < size() && at(i).iova <= pos + len - 1) {
                pos = align_up(at(i).end(), ovf);
                continue;
            }
            return pos;
        }
    }
    return fail(ENOSPC, "allocate IOVA: no free " + hex(len) + " bytes (alignment " + hex(align) +
                            ") below " + hex(limit) + " inside the container's IOVA ranges");
}

}  // namespace vfiokit::vfio

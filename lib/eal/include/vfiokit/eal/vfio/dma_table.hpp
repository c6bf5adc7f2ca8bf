/// \file
/// The DMA mapping table of one container, and its IOVA allocator.
///
/// Pure bookkeeping, no kernel: the container consults it before asking the
/// backend, so every mode gets the same overlap, partial-unmap and lookup
/// semantics (see vfio.hpp). There is no size limit.
///
/// Storage: the mappings sorted by IOVA in one array, not a node per
/// mapping. Map and unmap are per-call paths that cost little more than
/// the ioctl they wrap (doc/benchmarks.md), and a tree node is a malloc
/// and a rebalance on each. The array keeps free room at both ends, so
/// costs, for n mappings, are: lookup and the overlap and whole-mapping
/// checks O(log n) (a binary search; O(1) at either end); insert and erase
/// at either end (mapping upwards or downwards, unmapping in the order
/// mapped or the reverse) O(1), amortized over the array's doublings;
/// elsewhere they move the mappings on the shorter side, O(n) 32-byte
/// copies. find_free() walks gaps and is O(n) in the mappings it skips.
///
/// The array is kept when mappings go (an emptied table reuses it), and a
/// table that dies leaves it to the next table of the process (one spare,
/// up to 8 MiB): the first touch of fresh memory is a page fault, one per
/// 128 mappings, which in the lab's emulated guests cost more than the
/// table's own work for all of them (doc/benchmarks.md).
///
/// Thread-safety: none of its own; its Container guards it with the EAL lock
/// (Vfio::control_lock()).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "vfiokit/eal/error.hpp"
#include "vfiokit/eal/vfio/types.hpp"

namespace vfiokit::vfio {

/// The mappings of one container by IOVA, and a finder of free IOVA ranges.
class DmaTable {
public:
    DmaTable() = default;
    ~DmaTable();
    DmaTable(const DmaTable&) = delete;
    DmaTable& operator=(const DmaTable&) = delete;

    /// EEXIST, naming the mapping, when [iova, iova+len) overlaps one.
    [[nodiscard]] Result<void> check_free(std::uint64_t iova, std::uint64_t len) const;
    /// Precondition: check_free() passed.
    void insert(const DmaMapping& m);

    /// Whether [iova, ...) starts at or above the end of every mapping: a
    /// range there overlaps none. O(1), inline: the usual case of map's
    /// per-call path (mapping upwards), whose overlap check it is.
    [[nodiscard]] bool above_all(std::uint64_t iova) const {
        return head_ == tail_ || iova >= buf_[tail_ - 1].end();
    }
    /// insert() for a mapping above_all() said is above every other.
    void append(const DmaMapping& m) {
        if (tail_ == cap_) [[unlikely]]
            room_at_back();
        buf_[tail_++] = m;
        bytes_ += m.len;
    }

    /// The whole mappings that make up the unmap request [iova, iova+len):
    /// EINVAL when the range cuts through a mapping (naming it), ENOENT when
    /// it holds none.
    [[nodiscard]] Result<std::vector<DmaMapping>> whole_mappings_in(std::uint64_t iova,
                                                                    std::uint64_t len) const;
    void erase(const std::vector<DmaMapping>& ms);
    /// What an unmap of [iova, iova+len) takes: how many mappings, how many
    /// bytes, and where they sit in the table. The same checks and errors as
    /// whole_mappings_in(), without copying the mappings out (the per-call
    /// path of Container::unmap).
    struct Extent {
        std::size_t count = 0;
        std::uint64_t bytes = 0;
        std::size_t first = 0;  ///< position of the first mapping, for erase(Extent)
    };
    [[nodiscard]] Result<Extent> whole_extent(std::uint64_t iova, std::uint64_t len) const;
    /// whole_extent()'s usual case, inline and O(1): [iova, iova+len) is
    /// exactly the first or the last mapping (unmapping in the order
    /// mapped, or the reverse). False for anything else, which then needs
    /// whole_extent(); mappings never overlap, so such a range holds that
    /// one mapping whole and no other.
    [[nodiscard]] bool one_at_either_end(std::uint64_t iova, std::uint64_t len, Extent& x) const {
        if (head_ == tail_)
            return false;
        if (const DmaMapping& f = buf_[head_]; f.iova == iova && f.len == len) {
            x = {1, len, 0};
            return true;
        }
        if (const DmaMapping& b = buf_[tail_ - 1]; b.iova == iova && b.len == len) {
            x = {1, len, size() - 1};
            return true;
        }
        return false;
    }
    /// Erases what whole_extent() or one_at_either_end() returned; the
    /// table must not have changed since.
    void erase(const Extent& x) {
        // At either end only an index moves.
        if (x.count == 1 && (x.first == 0 || x.first + 1 == size())) {
            if (x.first == 0)
                bytes_ -= buf_[head_++].len;
            else
                bytes_ -= buf_[--tail_].len;
            if (head_ == tail_)
                head_ = tail_ = 0;
        } else {
            erase_at(x.first, x.count);
        }
    }
    /// Calls f(const DmaMapping&) for each mapping starting in [iova, iova+len).
    template <class F>
    void for_each_in(std::uint64_t iova, std::uint64_t len, F&& f) const {
        for (std::size_t i = lower(iova); i < size() && at(i).iova - iova < len; ++i)
            f(at(i));
    }
    /// Erases the mappings starting in [iova, iova+len) (after
    /// whole_extent() said that is what the range holds).
    void erase_range(std::uint64_t iova, std::uint64_t len);
    /// Forgets every mapping; keeps the storage.
    void clear() {
        head_ = tail_ = 0;
        bytes_ = 0;
    }

    /// The mapping containing `iova`.
    [[nodiscard]] std::optional<DmaMapping> lookup(std::uint64_t iova) const;
    [[nodiscard]] std::size_t size() const { return tail_ - head_; }
    [[nodiscard]] std::vector<DmaMapping> all() const;
    /// Bytes mapped in all: kept as mappings come and go, O(1).
    [[nodiscard]] std::uint64_t bytes() const { return bytes_; }

    /// Lowest IOVA where `len` bytes, aligned to `align` (a power of two),
    /// fit inside one of `ranges` without touching a mapping, ending at or
    /// below `limit` (inclusive) and starting at or above `floor`. ENOSPC
    /// when there is none.
    [[nodiscard]] Result<std::uint64_t> find_free(const std::vector<IovaRange>& ranges,
                                                  std::uint64_t len, std::uint64_t align,
                                                  std::uint64_t limit,
                                                  std::uint64_t floor = 0) const;

private:
    // Position of the first mapping starting at or after `iova`.
    [[nodiscard]] std::size_t lower(std::uint64_t iova) const;
    void erase_at(std::size_t first, std::size_t count);
    [[nodiscard]] const DmaMapping& at(std::size_t i) const { return buf_[head_ + i]; }
    // Free room where there was none, out of line (rare: once per doubling,
    // or when a table unmapped from its front has drifted to the end).
    void room_at_back();
    void room_at_front();
    void grow(std::size_t cap);

    // The mappings, sorted by iova and never overlapping, are
    // buf_[head_, tail_) of cap_ slots (malloc'd; DmaMapping is trivially
    // copyable, so the array moves with memmove and grows with realloc).
    DmaMapping* buf_ = nullptr;
    std::size_t cap_ = 0, head_ = 0, tail_ = 0;
    std::uint64_t bytes_ = 0;
};

}  // namespace vfiokit::vfio

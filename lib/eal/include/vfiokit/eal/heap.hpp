/// \file
/// A heap of DMA-able memory, and a fixed-size object pool on top of it.
///
/// Heap: one per NUMA node (or one for "any node"). It carves allocations out
/// of Memory segments, adding a segment when it runs out; adding the segment
/// maps it for DMA through Memory's listener, so every allocation has an
/// IOVA (Memory::virt2iova) without a call from the user. First fit over an
/// address-ordered free list, coalescing on free: free is O(log n); alloc
/// walks the free blocks in address order until one fits (O(n) in free blocks
/// at worst; a size-indexed free list would make it O(log n)). An allocation never spans two segments, so
/// each is IOVA-contiguous; the largest is one segment's size (`chunk`).
/// Bookkeeping lives outside the DMA memory (a device cannot corrupt it).
///
/// ObjectPool: `count` objects of one size, carved from one heap allocation,
/// handed out and taken back in O(1) (LIFO, so recently used objects stay
/// warm in the cache) — the shape of a packet-buffer pool.
///
/// Thread-safety: a Heap's alloc(), free() and reserve() take the EAL lock
/// (Memory::lock()): any thread may call them; growth is control path.
/// bytes_in_use() and segments() are unlocked snapshots. An ObjectPool is
/// the data path and takes no lock: one thread per pool (a per-lcore cache),
/// or external locking.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "vfiokit/eal/error.hpp"
#include "vfiokit/eal/memory.hpp"

namespace vfiokit::eal {

/// A heap of DMA-able memory on one NUMA node; see the file's description.
class Heap {
public:
    /// `chunk`: size of the segments the heap adds (rounded up to pages).
    Heap(Memory& mem, int node = -1, std::uint64_t chunk = 64ULL << 20);
    ~Heap();
    Heap(const Heap&) = delete;
    Heap& operator=(const Heap&) = delete;

    /// `align`: a power of two (at least 64, a cache line). ENOMEM naming the
    /// limit when Memory cannot grow; EINVAL when size exceeds the chunk.
    [[nodiscard]] Result<void*> alloc(std::uint64_t size, std::uint64_t align = 64);
    /// Adds one segment of `bytes` (rounded up to pages) now: start-up
    /// memory (-m, `--socket-mem`), exactly as much as asked.
    [[nodiscard]] Result<void> reserve(std::uint64_t bytes) { return grow(bytes, true); }
    /// nullptr is ignored; a pointer not from alloc() is an error.
    [[nodiscard]] Result<void> free(void* p);

    [[nodiscard]] int node() const { return node_; }
    [[nodiscard]] std::uint64_t bytes_in_use() const { return in_use_; }
    [[nodiscard]] std::size_t segments() const { return segs_.size(); }
    [[nodiscard]] Memory& memory() const { return *mem_; }

private:
    [[nodiscard]] Result<void> grow(std::uint64_t at_least, bool exact = false);
    Memory* mem_;
    int node_;
    std::uint64_t chunk_;
    std::vector<const Segment*> segs_;
    std::map<std::uint64_t, std::uint64_t> free_;   // start -> length, non-adjacent
    std::map<std::uint64_t, std::uint64_t> used_;   // start -> length
    std::map<std::uint64_t, std::uint64_t> seg_end_;  // segment start -> end, to keep merges inside
    std::uint64_t in_use_ = 0;
};

/// `count` objects of one size from one heap allocation, handed out and
/// taken back in O(1); see the file's description.
class ObjectPool {
public:
    [[nodiscard]] static Result<ObjectPool> create(Heap& heap, std::uint64_t obj_size,
                                                   std::size_t count, std::uint64_t align = 64);
    ObjectPool(ObjectPool&&) noexcept;
    ObjectPool& operator=(ObjectPool&&) = delete;
    ~ObjectPool();

    /// nullptr when empty.
    [[nodiscard]] void* get();
    // Builds without NDEBUG check each put, as DPDK's mempool cookies do:
    // an object that is not this pool's, or is already in it (a double
    // put), aborts with a message naming it.
    void put(void* obj);
    [[nodiscard]] std::size_t available() const { return free_.size(); }
    [[nodiscard]] std::size_t capacity() const { return count_; }
    [[nodiscard]] std::uint64_t object_size() const { return stride_; }
    [[nodiscard]] bool owns(const void* obj) const;

private:
    ObjectPool(Heap& h, void* base, std::uint64_t stride, std::size_t count);
    Heap* heap_;
    void* base_;
    std::uint64_t stride_;
    std::size_t count_;
    std::vector<void*> free_;
    // Per object: 1 while it is in the pool. Kept up to date only in
    // builds without NDEBUG; present in all, so the layout does not depend
    // on how a user of the header is built.
    std::vector<std::uint8_t> in_pool_;
};

}  // namespace vfiokit::eal

/// \file
/// A heap of DMA-able memory, and a fixed-size object pool on top of it.
///
/// Heap: one per NUMA node (or one for "any node"). It carves allocations out
/// of Memory segments, adding a segment when it runs out; adding the segment
/// maps it for DMA through Memory's listener, so every allocation has an
/// IOVA (Memory::virt2iova) without a call from the user. An allocation
/// never spans two segments, so each is IOVA-contiguous; the largest is one
/// segment's size (`chunk`).
///
/// The allocator is a two-level segregated fit (TLSF): free blocks sit in
/// size classes, the first level a power of two, the second 16 linear steps
/// inside it, with one bitmap per level; alloc finds the smallest non-empty
/// class that is certain to fit with two find-first-set operations, and
/// free merges a block with its free neighbours at once (each block knows
/// its neighbours in address order). Both are O(1) in the number of blocks:
/// no search walks a list. Sizes are multiples of 64 bytes (a cache line).
/// A block whose size is in the class of the request but below the class's
/// top is found only by a bounded look at that class's first blocks
/// (kNearFitProbes) before the heap grows: the price of O(1).
/// Bookkeeping (block descriptors, free lists, the address table that
/// free() uses) lives outside the DMA memory: a device cannot corrupt it,
/// and the heap memory holds nothing but allocations.
///
/// ObjectPool: `count` objects of one size, carved from one heap allocation,
/// handed out and taken back in O(1) — DPDK's rte_mempool. The free objects
/// sit in a lock-free ring shared by all threads, with an optional cache
/// per lcore in front of it (eal::detail::PoolCore, the engine
/// mbuf::MbufPool uses too): on an lcore, get/put and their bulk forms are
/// inline and touch only that lcore's cache (LIFO, so recently used objects
/// stay warm in the CPU cache), reaching the ring in bulk when the cache
/// runs empty or over its flush threshold. The ring and caches live in the
/// creating process's private memory (not DMA memory, not shared).
///
/// Thread-safety: a Heap's alloc(), free(), reserve(), stats() and check()
/// take the EAL lock (Memory::lock()): any thread may call them; growth is
/// control path. bytes_in_use() and segments() are unlocked snapshots.
/// An ObjectPool is the data path and takes no lock: get/put from any
/// thread of the process (each lcore in its own cache, other threads in
/// the ring, lock-free); create and destruction are control path.
///
/// Multi-process: a heap's bookkeeping is private to the process that made
/// it. A secondary that maps the primary's memory can use objects the
/// primary allocated, but cannot allocate from the primary's heap.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "vfiokit/eal/error.hpp"
#include "vfiokit/eal/memory.hpp"
#include "vfiokit/eal/pool_core.hpp"

namespace vfiokit::eal {

/// A heap of DMA-able memory on one NUMA node; see the file's description.
class Heap {
public:
    /// Blocks looked at in the request's own class before the heap grows.
    static constexpr unsigned kNearFitProbes = 8;

    /// `chunk`: size of the segments the heap adds (rounded up to pages).
    Heap(Memory& mem, int node = -1, std::uint64_t chunk = 64ULL << 20);
    ~Heap();
    Heap(const Heap&) = delete;
    Heap& operator=(const Heap&) = delete;

    /// `align`: a power of two (at least 64, a cache line). ENOMEM naming the
    /// limit when Memory cannot grow; EINVAL when size or align exceeds the
    /// chunk (checked before any rounding, so sizes near 2^64 cannot wrap).
    [[nodiscard]] Result<void*> alloc(std::uint64_t size, std::uint64_t align = 64);
    /// Adds one segment of `bytes` (rounded up to pages) now: start-up
    /// memory (-m, `--socket-mem`), exactly as much as asked.
    [[nodiscard]] Result<void> reserve(std::uint64_t bytes);
    /// nullptr is ignored; a pointer not from alloc() (or freed already) is
    /// an error, EINVAL, and changes nothing.
    [[nodiscard]] Result<void> free(void* p);

    [[nodiscard]] int node() const { return node_; }
    [[nodiscard]] std::uint64_t bytes_in_use() const { return in_use_; }
    [[nodiscard]] std::size_t segments() const { return segs_.size(); }
    [[nodiscard]] Memory& memory() const { return *mem_; }

    /// How the free memory lies: a snapshot (telemetry, tests).
    struct Stats {
        std::uint64_t free_bytes = 0;     ///< in all free blocks
        std::uint64_t largest_free = 0;   ///< the largest free block
        std::size_t free_blocks = 0;      ///< free blocks (after merging)
        std::size_t used_blocks = 0;      ///< live allocations
    };
    /// O(blocks): walks every segment.
    [[nodiscard]] Stats stats() const;
    /// Checks the allocator's invariants (blocks tile each segment, no two
    /// free neighbours, every free block in the class list its size says
    /// and the bitmaps matching the lists, the address table holding exactly
    /// the used blocks, bytes_in_use() their sum). EPROTO naming the first
    /// broken one. O(blocks): for tests and debugging.
    [[nodiscard]] Result<void> check() const;

private:
    // One block of a segment, free or used; descriptors live in slabs_.
    struct Block {
        std::uint64_t addr = 0, size = 0;
        Block* prev_phys = nullptr;  // neighbours in the same segment, by address
        Block* next_phys = nullptr;
        Block* prev_free = nullptr;  // the class list, while free
        Block* next_free = nullptr;  // (also the spare descriptors' list)
        bool free = false;
    };
    // Class indices: 64-byte units; below 16 units one class per unit,
    // then 16 classes per power of two.
    static constexpr unsigned kSlBits = 4, kSl = 1u << kSlBits, kFl = 56;

    [[nodiscard]] Result<Block*> grow(std::uint64_t at_least, bool exact = false);
    [[nodiscard]] Block* find_free(std::uint64_t size);
    void insert_free(Block* b);
    void remove_free(Block* b);
    [[nodiscard]] Block* new_block();
    void release_block(Block* b);
    void table_insert(Block* b);
    [[nodiscard]] Block* table_take(std::uint64_t addr);
    [[nodiscard]] std::size_t table_slot(std::uint64_t addr) const;

    Memory* mem_;
    int node_;
    std::uint64_t chunk_;
    std::vector<const Segment*> segs_;
    std::vector<Block*> seg_first_;   // each segment's lowest block
    std::uint64_t fl_map_ = 0;        // bit f: some class (f, s) is non-empty
    std::uint32_t sl_map_[kFl] = {};  // bit s of [f]: class (f, s) is non-empty
    Block* heads_[kFl][kSl] = {};     // the class lists
    std::vector<std::unique_ptr<Block[]>> slabs_;
    Block* spare_ = nullptr;          // unused descriptors
    std::vector<Block*> table_;       // used blocks by address: open addressing
    unsigned table_shift_ = 64;
    std::size_t table_used_ = 0;
    std::uint64_t in_use_ = 0;
};

/// `count` objects of one size from one heap allocation, handed out and
/// taken back in O(1), with per-lcore caches; see the file's description.
class ObjectPool {
public:
    /// The largest per-lcore cache (DPDK's RTE_MEMPOOL_CACHE_MAX_SIZE).
    static constexpr unsigned kMaxCacheSize = 512;

    /// `count` objects of `obj_size` bytes, each aligned to `align` (a power
    /// of two, at least 64), with a cache of `cache_size` objects per lcore
    /// (0: none; at most kMaxCacheSize and count / 1.5, DPDK's rules).
    /// EINVAL naming the bad argument, EOVERFLOW when the pool's size does
    /// not fit in 64 bits, the heap's error when it cannot hold the pool.
    [[nodiscard]] static Result<ObjectPool> create(Heap& heap, std::uint64_t obj_size,
                                                   std::size_t count, std::uint64_t align = 64,
                                                   unsigned cache_size = 0);
    ObjectPool(ObjectPool&&) noexcept;
    ObjectPool& operator=(ObjectPool&&) = delete;
    /// Gives the objects' memory back to the heap (objects still out with
    /// then: the caller's bug).
    ~ObjectPool();

    /// One object; nullptr when the pool (and this lcore's cache) is empty.
    [[nodiscard]] void* get() {
        void* o = core_.get();
        if (checks_ && o != nullptr) [[unlikely]]
            note_get(&o, 1);
        return o;
    }
    /// `n` objects or none: 0, or -ENOENT when fewer than n are available.
    [[nodiscard]] int get_bulk(void** out, unsigned n) {
        const int rc = core_.get_bulk(out, n);
        if (checks_ && rc == 0) [[unlikely]]
            note_get(out, n);
        return rc;
    }
    /// Gives an object back. Libraries built without NDEBUG (the default
    /// debugoptimized build) check each put, as DPDK's mempool debug
    /// cookies do: an object that is not this pool's, or is already in it
    /// (a double put), aborts with a message naming it. Release builds
    /// (NDEBUG) leave the check out.
    void put(void* obj) {
        if (checks_) [[unlikely]]
            note_put(&obj, 1);
        core_.put(obj);
    }
    /// Gives `n` objects back; checked as put() is.
    void put_bulk(void* const* objs, unsigned n) {
        if (checks_) [[unlikely]]
            note_put(objs, n);
        core_.put_bulk(objs, n);
    }
    /// Objects in the ring and every cache: a snapshot.
    [[nodiscard]] std::size_t available() const {
        return std::size_t{core_.ring_count()} + core_.cache_count();
    }
    /// How many objects the pool was made with.
    [[nodiscard]] std::size_t capacity() const { return count_; }
    /// Bytes from one object to the next (the size rounded up to `align`).
    [[nodiscard]] std::uint64_t object_size() const { return stride_; }
    /// The per-lcore cache's size (0: none).
    [[nodiscard]] unsigned cache_size() const { return core_.cache_size(); }
    /// Whether `obj` is the start of one of this pool's objects.
    [[nodiscard]] bool owns(const void* obj) const;

private:
    struct FreeAligned {
        void operator()(std::byte* p) const;
    };
    ObjectPool(Heap& h, void* base, std::uint64_t stride, std::size_t count, unsigned cache_size);
    // The debug checks, out of line (heap.cpp decides whether they run).
    void note_get(void* const* objs, unsigned n);
    void note_put(void* const* objs, unsigned n);
    [[nodiscard]] std::size_t index_of(const void* obj) const;

    detail::PoolCore<void> core_;  // first: read by every get and put
    bool checks_ = false;
    Heap* heap_;
    void* base_;
    std::uint64_t stride_;
    std::size_t count_;
    std::unique_ptr<std::byte, FreeAligned> store_;  // the ring and the caches
    // Per object: 1 while it is in the pool, when checks_.
    std::vector<std::uint8_t> in_pool_;
};

}  // namespace vfiokit::eal

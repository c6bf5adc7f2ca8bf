/// \file
/// The engine shared by every object pool of vfiokit (eal::ObjectPool and
/// mbuf::MbufPool): a shared store of free objects and a cache per lcore in
/// front of it, as DPDK's rte_mempool has.
///
/// Shared store: PtrRing, a bounded lock-free multi-producer
/// multi-consumer ring of pointers, laid out in place (its slots follow its
/// header in the same memory), so it works across processes that map that
/// memory at the same address. Each side has a head and a tail: a producer
/// reserves slots by moving prod_head with a CAS, fills them, waits until
/// earlier producers have published (prod_tail == its old head), then
/// publishes by moving prod_tail; consumers mirror it on cons_head and
/// cons_tail. Counters run free over 32 bits (only differences are used; the
/// size is at most 2^31). A producer descheduled between reserving and
/// publishing makes later ones spin (they yield after a short spin): lcores
/// should not share a CPU where that matters, as in DPDK.
///
/// Per-lcore caches: PoolCore keeps, per lcore id below kMaxLcores, a LIFO
/// stack (get_bulk takes the top n in the order they were put) of `cache_size` (up to flush_threshold + cache_size) pointers,
/// touched only by that lcore: get and put there are plain loads and stores,
/// no atomic operation and no lock. An empty cache refills from the ring in
/// one bulk dequeue (cache_size beyond what is asked); a cache that reaches
/// the flush threshold (1.5 x cache_size, DPDK's) gives back what is above
/// cache_size in one bulk enqueue. Threads that are not lcores, requests
/// larger than the cache, and pools without a cache use the ring directly.
///
/// Thread-safety: get/put and their bulk forms from any thread (a cache is
/// used only by its own lcore's thread). Counts are snapshots.
#pragma once

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <thread>

#include "vfiokit/eal/lcore.hpp"

namespace vfiokit::eal {
/// Internals shared by vfiokit's pools; not an API of their own.
namespace detail {

/// One spin of a busy wait (the x86 PAUSE hint).
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/// Waits until `tail` reaches `want` (earlier reservations published).
/// Acquire: the store that moved `tail` to `want` was the previous
/// reservation's release; reading it with acquire makes that reservation's
/// slot accesses happen before this one's release, so whoever acquires this
/// one's tail also sees them. (A release store by another thread does not
/// continue the previous one's release sequence: with a relaxed read here,
/// a producer that acquired the consumers' tail would be ordered only after
/// the last consumer's slot reads, not the earlier ones'. ThreadSanitizer
/// reports that as a race on the slot; on x86 both loads are the same
/// instruction.)
inline void wait_turn(const std::atomic<std::uint32_t>& tail, std::uint32_t want) {
    for (unsigned spins = 0; tail.load(std::memory_order_acquire) != want; ++spins) {
        if (spins < 256)
            cpu_relax();
        else
            std::this_thread::yield();  // the other side may be descheduled
    }
}

/// The shared store of a pool: a lock-free MPMC ring of `T*`, in place; see
/// the file's description.
template <class T>
struct PtrRing {
    // Producer and consumer counters on lines of their own: the two sides
    // do not invalidate each other's line on every operation.
    alignas(64) std::atomic<std::uint32_t> prod_head{0};  ///< next slot to reserve
    std::atomic<std::uint32_t> prod_tail{0};              ///< published up to here
    alignas(64) std::atomic<std::uint32_t> cons_head{0};  ///< next slot to take
    std::atomic<std::uint32_t> cons_tail{0};              ///< released up to here
    alignas(64) std::uint32_t size = 0;                   ///< slots, a power of two
    std::uint32_t mask = 0;                               ///< size - 1

    /// Bytes of a ring with `n_slots` slots (header included).
    static constexpr std::size_t bytes(std::uint32_t n_slots) {
        return sizeof(PtrRing) + std::size_t{n_slots} * sizeof(T*);
    }
    /// The smallest power of two holding `n` pointers.
    static constexpr std::uint32_t slots_for(std::uint32_t n) {
        std::uint32_t s = 1;
        while (s < n)
            s <<= 1;
        return s;
    }
    /// `sz`: a power of two; the memory after this header holds sz slots.
    explicit PtrRing(std::uint32_t sz) : size(sz), mask(sz - 1) {}
    /// The slots, right after the header.
    [[nodiscard]] T** slots() { return reinterpret_cast<T**>(this + 1); }

    /// Adds up to n pointers; `all`: exactly n or none. Returns how many.
    unsigned enqueue(T* const* objs, unsigned n, bool all) {
        std::uint32_t head = prod_head.load(std::memory_order_acquire);
        std::uint32_t k = 0;
        for (;;) {
            // Acquire: the consumers' reads of the slots we may reuse are done.
            const std::uint32_t room = size + cons_tail.load(std::memory_order_acquire) - head;
            k = n <= room ? n : (all ? 0 : room);
            if (k == 0)
                return 0;
            if (prod_head.compare_exchange_weak(head, head + k, std::memory_order_acquire,
                                                std::memory_order_acquire))
                break;
        }
        T** s = slots();
        for (std::uint32_t i = 0; i < k; ++i)
            s[(head + i) & mask] = objs[i];
        wait_turn(prod_tail, head);
        prod_tail.store(head + k, std::memory_order_release);
        return k;
    }

    /// Takes up to n pointers; `all`: exactly n or none. Returns how many.
    unsigned dequeue(T** objs, unsigned n, bool all) {
        std::uint32_t head = cons_head.load(std::memory_order_acquire);
        std::uint32_t k = 0;
        for (;;) {
            // Acquire: the producers' writes of the slots are visible.
            const std::uint32_t avail = prod_tail.load(std::memory_order_acquire) - head;
            k = n <= avail ? n : (all ? 0 : avail);
            if (k == 0)
                return 0;
            if (cons_head.compare_exchange_weak(head, head + k, std::memory_order_acquire,
                                                std::memory_order_acquire))
                break;
        }
        T** s = slots();
        for (std::uint32_t i = 0; i < k; ++i)
            objs[i] = s[(head + i) & mask];
        wait_turn(cons_tail, head);
        cons_tail.store(head + k, std::memory_order_release);
        return k;
    }

    /// Entries published and not taken: a snapshot.
    [[nodiscard]] unsigned count() const {
        const std::uint32_t c = cons_tail.load(std::memory_order_acquire);
        const std::uint32_t p = prod_tail.load(std::memory_order_acquire);
        const std::uint32_t n = p - c;
        return n > size ? size : n;
    }
};

/// The head of one lcore's cache; the `T*` slots follow it. `len` is
/// atomic (relaxed) only so that counts may read it from another thread.
struct CacheHead {
    std::atomic<std::uint32_t> len{0};  ///< objects in the cache
    std::uint32_t reserved = 0;         ///< keeps the slots 8-byte aligned
};

/// A cache's flush threshold for `cache_size` (1.5 x, DPDK's); 0 without a cache.
constexpr std::uint32_t flush_threshold(std::uint32_t cache_size) {
    return cache_size == 0 ? 0 : cache_size + (cache_size + 1) / 2;
}
/// Bytes of one lcore's cache (head and slots), a multiple of 64: the
/// threshold plus one bulk put or refill of at most cache_size always fits.
constexpr std::uint32_t cache_stride(std::uint32_t cache_size, std::size_t slot) {
    return cache_size == 0
               ? 0
               : static_cast<std::uint32_t>(
                     (sizeof(CacheHead) + std::uint64_t{flush_threshold(cache_size) + cache_size} *
                                              slot + 63) / 64 * 64);
}

/// A ring and kMaxLcores caches of `T*`, in memory the owner provides (the
/// pool's own allocation); see the file's description. Trivially copyable:
/// it holds pointers to that memory only.
template <class T>
class PoolCore {
public:
    PoolCore() = default;
    /// `ring`: a constructed ring; `caches`: kMaxLcores x cache_stride(cache_size)
    /// bytes, 8-byte aligned (null when cache_size is 0).
    PoolCore(PtrRing<T>* ring, std::byte* caches, std::uint32_t cache_size)
        : caches_(cache_size ? caches : nullptr),
          cache_lcores_(cache_size ? kMaxLcores : 0),
          cache_stride_(cache_stride(cache_size, sizeof(T*))),
          cache_size_(cache_size),
          flush_threshold_(flush_threshold(cache_size)),
          ring_(ring) {
        if (caches_ != nullptr)
            for (unsigned i = 0; i < kMaxLcores; ++i)
                new (cache(i)) CacheHead();
    }

    /// One object, or nullptr when the ring (and this lcore's cache) is empty.
    [[nodiscard]] T* get() {
        const unsigned lc = lcore_id();
        if (on_lcore(lc)) [[likely]] {
            CacheHead* c = cache(lc);
            std::uint32_t len = c->len.load(std::memory_order_relaxed);
            if (len == 0) [[unlikely]] {
                if (!refill(c, 1))
                    return nullptr;
                len = c->len.load(std::memory_order_relaxed);
            }
            T* o = objs(c)[--len];
            c->len.store(len, std::memory_order_relaxed);
            return o;
        }
        T* o = nullptr;
        return ring_->dequeue(&o, 1, true) == 1 ? o : nullptr;
    }

    /// All `n` or none: 0, or -ENOENT when fewer than n are available.
    [[nodiscard]] int get_bulk(T** out, unsigned n) {
        const unsigned lc = lcore_id();
        if (on_lcore(lc) && n <= cache_size_) [[likely]] {
            CacheHead* c = cache(lc);
            std::uint32_t len = c->len.load(std::memory_order_relaxed);
            if (len < n) [[unlikely]] {
                if (!refill(c, n))
                    return -ENOENT;
                len = c->len.load(std::memory_order_relaxed);
            }
            len -= n;
            copy_ptrs(out, objs(c) + len, n);
            c->len.store(len, std::memory_order_relaxed);
            return 0;
        }
        return ring_->dequeue(out, n, true) == n ? 0 : -ENOENT;
    }

    /// Gives one object back (to this lcore's cache when it has one).
    void put(T* o) {
        const unsigned lc = lcore_id();
        if (on_lcore(lc)) [[likely]] {
            CacheHead* c = cache(lc);
            std::uint32_t len = c->len.load(std::memory_order_relaxed);
            objs(c)[len++] = o;
            c->len.store(len, std::memory_order_relaxed);
            if (len >= flush_threshold_) [[unlikely]]
                flush(c);
            return;
        }
        ring_put(&o, 1);
    }

    /// Gives `n` objects back.
    void put_bulk(T* const* os, unsigned n) {
        const unsigned lc = lcore_id();
        if (on_lcore(lc) && n <= cache_size_) [[likely]] {
            CacheHead* c = cache(lc);
            std::uint32_t len = c->len.load(std::memory_order_relaxed);
            copy_ptrs(objs(c) + len, os, n);
            len += n;
            c->len.store(len, std::memory_order_relaxed);
            if (len >= flush_threshold_) [[unlikely]]
                flush(c);
            return;
        }
        ring_put(os, n);
    }

    /// Objects in the ring: a snapshot.
    [[nodiscard]] unsigned ring_count() const { return ring_->count(); }
    /// Objects in every lcore's cache: a snapshot.
    [[nodiscard]] unsigned cache_count() const {
        unsigned n = 0;
        if (caches_ != nullptr)
            for (unsigned i = 0; i < kMaxLcores; ++i)
                n += cache(i)->len.load(std::memory_order_relaxed);
        return n;
    }
    /// The per-lcore cache's size (0: none).
    [[nodiscard]] std::uint32_t cache_size() const { return cache_size_; }
    /// The shared ring.
    [[nodiscard]] PtrRing<T>* ring() const { return ring_; }

private:
    // Copies n pointers, 4 per step, with plain 8-byte loads and stores:
    // the empty asm keeps the compiler from turning the loop into memcpy
    // or vector moves. A burst is a few dozen pointers: on hardware the
    // difference is a few cycles, and under emulation (QEMU's TCG, where
    // the lab and its benchmarks run) a vector move costs several scalar
    // ones (a memcpy here made bulk get+put a third slower there).
    static void copy_ptrs(T** to, T* const* from, unsigned n) {
        unsigned i = 0;
        for (; i + 4 <= n; i += 4) {
            T* a = from[i];
            T* b = from[i + 1];
            T* c = from[i + 2];
            T* d = from[i + 3];
            asm("" : "+r"(a), "+r"(b), "+r"(c), "+r"(d));
            to[i] = a;
            to[i + 1] = b;
            to[i + 2] = c;
            to[i + 3] = d;
        }
        for (; i < n; ++i) {
            T* a = from[i];
            asm("" : "+r"(a));
            to[i] = a;
        }
    }
    [[nodiscard]] CacheHead* cache(unsigned lcore) const {
        return reinterpret_cast<CacheHead*>(caches_ + std::size_t{lcore} * cache_stride_);
    }
    [[nodiscard]] static T** objs(CacheHead* c) { return reinterpret_cast<T**>(c + 1); }
    // Whether `lc` has a cache: one compare (kLcoreIdAny and every id
    // without a cache fail it).
    [[nodiscard]] bool on_lcore(unsigned lc) const { return lc < cache_lcores_; }

    // Slow paths, kept out of the callers' inline code.
    // Refills to cache_size above what is wanted, so the next gets hit the
    // cache; settles for less, down to exactly what is missing. True: c
    // holds >= want.
    [[gnu::noinline]] bool refill(CacheHead* c, unsigned want) {
        std::uint32_t len = c->len.load(std::memory_order_relaxed);
        const unsigned need = want - len;
        const unsigned got = ring_->dequeue(objs(c) + len, cache_size_ + need, false);
        len += got;
        c->len.store(len, std::memory_order_relaxed);
        return got >= need;
    }
    [[gnu::noinline]] void flush(CacheHead* c) {
        const std::uint32_t len = c->len.load(std::memory_order_relaxed);
        ring_put(objs(c) + cache_size_, len - cache_size_);
        c->len.store(cache_size_, std::memory_order_relaxed);
    }
    // The ring holds every object of the pool: this fails only for objects
    // put twice or foreign to the pool, the caller's bug.
    [[gnu::noinline]] void ring_put(T* const* os, unsigned n) { ring_->enqueue(os, n, true); }

    // Read by every get and put: the first line.
    std::byte* caches_ = nullptr;        // kMaxLcores caches; null without a cache
    std::uint32_t cache_lcores_ = 0;     // kMaxLcores with caches, else 0
    std::uint32_t cache_stride_ = 0;
    std::uint32_t cache_size_ = 0;
    std::uint32_t flush_threshold_ = 0;
    PtrRing<T>* ring_ = nullptr;
};

}  // namespace detail
}  // namespace vfiokit::eal

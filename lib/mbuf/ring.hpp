// The shared store of an MbufPool: a bounded lock-free multi-producer
// multi-consumer ring of pointers, laid out in place (the slots follow the
// header in the same memory), so it works across processes that map that
// memory at the same address.
//
// Each side has a head and a tail. A producer reserves slots by moving
// prod_head with a CAS, fills them, waits until earlier producers have
// published (prod_tail == its old head), then publishes by moving
// prod_tail; consumers mirror it on cons_head/cons_tail. Counters are
// free-running 32-bit values (wrap-around is harmless: only differences
// are used, and the size is at most 2^31). Not preemption-safe in the
// sense that a producer descheduled between reserving and publishing
// makes later ones spin (they yield after a short spin): lcores should
// not share a CPU where that matters, as in DPDK.
//
// Private to lib/mbuf. Thread-safety: enqueue/dequeue from any thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <thread>

namespace vfiokit::mbuf {
struct Mbuf;
namespace detail {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

// Waits until `tail` reaches `want` (earlier reservations published).
inline void wait_turn(const std::atomic<std::uint32_t>& tail, std::uint32_t want) {
    for (unsigned spins = 0; tail.load(std::memory_order_relaxed) != want; ++spins) {
        if (spins < 256)
            cpu_relax();
        else
            std::this_thread::yield();  // the other side may be descheduled
    }
}

struct PoolRing {
    // Producer and consumer counters on lines of their own: the two sides
    // do not invalidate each other's line on every operation.
    alignas(64) std::atomic<std::uint32_t> prod_head{0};
    std::atomic<std::uint32_t> prod_tail{0};
    alignas(64) std::atomic<std::uint32_t> cons_head{0};
    std::atomic<std::uint32_t> cons_tail{0};
    alignas(64) std::uint32_t size = 0;  // a power of two
    std::uint32_t mask = 0;

    // Bytes of a ring with `size` slots (header included).
    static constexpr std::size_t bytes(std::uint32_t n_slots) {
        return sizeof(PoolRing) + std::size_t{n_slots} * sizeof(Mbuf*);
    }
    explicit PoolRing(std::uint32_t sz) : size(sz), mask(sz - 1) {}
    [[nodiscard]] Mbuf** slots() { return reinterpret_cast<Mbuf**>(this + 1); }

    // Adds up to n pointers; `all`: exactly n or none. Returns how many.
    unsigned enqueue(Mbuf* const* objs, unsigned n, bool all) {
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
        Mbuf** s = slots();
        for (std::uint32_t i = 0; i < k; ++i)
            s[(head + i) & mask] = objs[i];
        wait_turn(prod_tail, head);
        prod_tail.store(head + k, std::memory_order_release);
        return k;
    }

    // Takes up to n pointers; `all`: exactly n or none. Returns how many.
    unsigned dequeue(Mbuf** objs, unsigned n, bool all) {
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
        Mbuf** s = slots();
        for (std::uint32_t i = 0; i < k; ++i)
            objs[i] = s[(head + i) & mask];
        wait_turn(cons_tail, head);
        cons_tail.store(head + k, std::memory_order_release);
        return k;
    }

    // Entries published and not taken: a snapshot.
    [[nodiscard]] unsigned count() const {
        const std::uint32_t c = cons_tail.load(std::memory_order_acquire);
        const std::uint32_t p = prod_tail.load(std::memory_order_acquire);
        const std::uint32_t n = p - c;
        return n > size ? size : n;
    }
};

}  // namespace detail
}  // namespace vfiokit::mbuf

// What every virtqueue of the PMD shares: its memory (one DMA block from
// ethdev::dma_alloc holding the split ring's three parts, and whatever the
// queue keeps beside them), typed views of the ring, the kick, and the
// counters.
//
// Index arithmetic: avail->idx and used->idx run freely over 16 bits
// (section 2.7.6 and 2.7.8); a slot is idx & (num - 1), num being a power
// of two.
//
// Memory order (section 2.7.13.3): descriptors and avail entries are
// written before avail->idx (a release store); used entries are read after
// used->idx (an acquire load); and between publishing avail->idx and
// reading used->flags, to decide whether the device wants a kick, a full
// fence, or the device could miss the new entries while the driver skips
// the kick.
#pragma once

#include <atomic>
#include <cstdint>

#include "vfiokit/common/virtio/split_ring.hpp"
#include "vfiokit/eal/error.hpp"
#include "vfiokit/ethdev/ethdev.hpp"

namespace vfiokit::virtio::net {

// EAL memory for rings: zeroed, 64-byte aligned; freed when destroyed.
class DmaBlock {
public:
    DmaBlock() = default;
    [[nodiscard]] static Result<DmaBlock> alloc(std::uint64_t bytes, int socket);
    ~DmaBlock();
    DmaBlock(DmaBlock&& o) noexcept : m_(o.m_) { o.m_ = {}; }
    DmaBlock& operator=(DmaBlock&& o) noexcept;
    DmaBlock(const DmaBlock&) = delete;
    DmaBlock& operator=(const DmaBlock&) = delete;
    [[nodiscard]] std::uint8_t* va() const { return static_cast<std::uint8_t*>(m_.va); }
    [[nodiscard]] std::uint64_t iova() const { return m_.iova; }
    [[nodiscard]] std::uint64_t bytes() const { return m_.len; }

private:
    ethdev::DmaMemory m_;
};

// The three parts of a split ring of `num` entries laid out from `va`
// (IOVA `iova`) by split_layout().
struct Vring {
    Desc* desc = nullptr;
    AvailRing* avail = nullptr;
    UsedRing* used = nullptr;
    std::uint16_t num = 0;
    std::uint16_t mask = 0;
    QueueAddrs addrs;  // what PciTransport::setup_queue is given

    [[nodiscard]] static Vring at(std::uint8_t* va, std::uint64_t iova, std::uint16_t num) {
        const SplitLayout l = split_layout(num);
        Vring r;
        r.desc = reinterpret_cast<Desc*>(va);
        r.avail = reinterpret_cast<AvailRing*>(va + l.avail_off);
        r.used = reinterpret_cast<UsedRing*>(va + l.used_off);
        r.num = num;
        r.mask = static_cast<std::uint16_t>(num - 1);
        r.addrs = {iova, iova + l.avail_off, iova + l.used_off};
        return r;
    }
    [[nodiscard]] std::uint16_t used_idx() const {
        return std::atomic_ref<std::uint16_t>(used->idx).load(std::memory_order_acquire);
    }
    void publish(std::uint16_t avail_idx) const {
        std::atomic_ref<std::uint16_t>(avail->idx).store(avail_idx, std::memory_order_release);
    }
    // After publish(): whether the device asked not to be kicked.
    [[nodiscard]] bool kick_suppressed() const {
        std::atomic_thread_fence(std::memory_order_seq_cst);
        return (std::atomic_ref<std::uint16_t>(used->flags).load(std::memory_order_relaxed) &
                kUsedNoNotify) != 0;
    }
    void set_interrupts(bool on) const {
        std::atomic_ref<std::uint16_t>(avail->flags)
            .store(on ? 0 : kAvailNoInterrupt, std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_seq_cst);
    }
};

// The kick: a 16-bit store of the queue's index into its notify address
// (PciTransport::notify_addr), after a release fence, through a plain
// pointer a queue in shared memory can hold.
struct Kick {
    volatile std::uint16_t* reg = nullptr;
    std::uint16_t vq = 0;
    void ring() const {
        std::atomic_thread_fence(std::memory_order_release);
        *reg = vq;
    }
};

// Written by the queue's one thread, read anywhere: a relaxed load and
// store, no read-modify-write on the data path.
struct Counter {
    std::atomic<std::uint64_t> v{0};
    void add(std::uint64_t n) {
        v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    [[nodiscard]] std::uint64_t get() const { return v.load(std::memory_order_relaxed); }
    void reset() { v.store(0, std::memory_order_relaxed); }
};

// The batch size for refill/reclaim: the requested one, kept inside the
// ring (a quarter of it when out of range).
[[nodiscard]] constexpr std::uint16_t batch_thresh(std::uint16_t want, std::uint16_t num) {
    if (want == 0 || want >= num)
        return static_cast<std::uint16_t>(num / 4 ? num / 4 : 1);
    return want;
}

}  // namespace vfiokit::virtio::net

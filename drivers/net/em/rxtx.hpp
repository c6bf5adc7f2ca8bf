// The em data path: one receive and one transmit ring of legacy
// descriptors, and the burst functions ethdev calls through its FastPath.
//
// Receive: every slot of the ring holds an mbuf whose data area the NIC
// may fill. The NIC owns the slots from RDH up to, not including, RDT;
// rx_burst takes the slots whose descriptor says DD, hands their mbufs
// out, and refills the slots in batches of free_thresh with one
// alloc_bulk and one RDT write (the slot at RDT always holds an mbuf but
// is not the NIC's, which tells a full ring from an empty one [SDM 3.2.6]).
// A frame longer than one buffer spans several descriptors, EOP on the
// last; rx_burst chains their mbufs into one packet.
//
// Transmit: tx_burst writes one descriptor per segment (more where a
// segment crosses a 4 KiB IOVA boundary: see rxtx.cpp), RS on the burst's
// last one, and moves TDT once per burst. The NIC writes DD into the RS
// descriptors it has sent [SDM 3.3.3.2]; tx_burst reclaims (frees) whole
// bursts when fewer than free_thresh slots are free.
//
// The tail writes go through an ethdev::Doorbell: one release fence and
// one volatile store into the mapped BAR, as pci::Bar::write does.
//
// Shared with secondaries: a queue, its ring and its slot arrays are in
// EAL memory (SharedObject, SharedVector, dma_alloc), and the doorbell is
// a plain pointer into BAR0, which a secondary maps at the primary's
// address: a secondary's burst functions run on the primary's queues.
//
// Ownership: a queue owns its ring (EAL memory from ethdev::dma_alloc),
// its slot arrays and the mbufs in them; destroying it frees all of
// them. The NIC must have stopped using the ring first (EmPort stops it).
// Thread-safety: one thread per queue runs its burst function; the
// counters (atomics, written by that thread only) may be read anywhere.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "regs.hpp"
#include "vfiokit/bus/pci/bar.hpp"
#include "vfiokit/eal/error.hpp"
#include "vfiokit/ethdev/ethdev.hpp"
#include "vfiokit/mbuf/mbuf.hpp"

namespace vfiokit::em {

// Ring sizes are powers of two (ethdev checks): index arithmetic is a mask.
[[nodiscard]] constexpr std::uint16_t ring_add(std::uint16_t i, std::uint16_t n,
                                               std::uint16_t mask) {
    return static_cast<std::uint16_t>((i + n) & mask);
}
[[nodiscard]] constexpr std::uint16_t ring_sub(std::uint16_t i, std::uint16_t n,
                                               std::uint16_t mask) {
    return static_cast<std::uint16_t>((i - n) & mask);
}
// The batch size for refill/reclaim: the requested one, kept inside the
// ring (at least 1, at most a quarter of it when out of range).
[[nodiscard]] constexpr std::uint16_t batch_thresh(std::uint16_t want, std::uint16_t nb_desc) {
    if (want == 0 || want >= nb_desc)
        return static_cast<std::uint16_t>(nb_desc / 4 ? nb_desc / 4 : 1);
    return want;
}

// The doorbell of register `off` in BAR0, which EmDevice::open checked is
// mmap()ed.
[[nodiscard]] inline ethdev::Doorbell doorbell(const pci::Bar& bar, std::uint64_t off) {
    return {reinterpret_cast<volatile std::uint32_t*>(bar.pointer(off, 4))};
}

// A counter written by one thread and read by others: a relaxed load and
// store, no read-modify-write on the data path.
struct Counter {
    std::atomic<std::uint64_t> v{0};
    void add(std::uint64_t n) { v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
    [[nodiscard]] std::uint64_t get() const { return v.load(std::memory_order_relaxed); }
    void reset() { v.store(0, std::memory_order_relaxed); }
};

// Descriptor ring memory: ethdev::dma_alloc'ed, freed when destroyed.
class DmaRing {
public:
    DmaRing() = default;
    [[nodiscard]] static Result<DmaRing> alloc(std::uint64_t bytes, int socket);
    ~DmaRing();
    DmaRing(DmaRing&& o) noexcept : m_(o.m_) { o.m_ = {}; }
    DmaRing& operator=(DmaRing&& o) noexcept;
    DmaRing(const DmaRing&) = delete;
    DmaRing& operator=(const DmaRing&) = delete;
    [[nodiscard]] void* va() const { return m_.va; }
    [[nodiscard]] std::uint64_t iova() const { return m_.iova; }
    [[nodiscard]] std::uint64_t bytes() const { return m_.len; }

private:
    ethdev::DmaMemory m_;
};

struct RxQueue : ethdev::SharedObject {
    // --- what rx_burst touches
    RxDesc* ring = nullptr;
    mbuf::Mbuf** sw = nullptr;         // the mbuf of each slot; nullptr: to refill
    mbuf::Mbuf** staging = nullptr;    // alloc_bulk's output for one refill
    ethdev::Doorbell rdt;              // RDT in the mapped BAR0
    mbuf::MbufPool* pool = nullptr;
    std::uint16_t mask = 0;
    std::uint16_t next = 0;            // the next slot to look at
    std::uint16_t nb_hold = 0;         // slots taken and not refilled: [next - nb_hold, next)
    std::uint16_t free_thresh = 0;
    std::uint16_t port = 0xffff;
    bool cksum = false;                // report the NIC's checksum results in ol_flags
    mbuf::Mbuf* pkt_first = nullptr;   // a frame whose EOP has not come yet
    mbuf::Mbuf* pkt_last = nullptr;
    Counter packets, bytes, nombuf, errors;

    // --- control
    std::uint16_t nb_desc = 0;
    regs::RxBufferSize buf;            // what RCTL.BSIZE/BSEX say
    DmaRing mem;
    ethdev::SharedVector<mbuf::Mbuf*> sw_store, staging_store;

    // A ring of nb_desc descriptors with an mbuf from `pool` in every slot.
    // EINVAL when the pool's buffers are smaller than 256 bytes after the
    // headroom; ENOMEM when the pool cannot fill the ring or the ring
    // memory cannot be had. Nothing is kept on failure.
    [[nodiscard]] static Result<std::unique_ptr<RxQueue>> create(std::uint16_t nb_desc, int socket,
                                                                const ethdev::RxConf& conf,
                                                                mbuf::MbufPool& pool,
                                                                pci::Bar& bar);
    ~RxQueue();
    RxQueue() = default;
    RxQueue(const RxQueue&) = delete;
    RxQueue& operator=(const RxQueue&) = delete;

    // Before the NIC is given the ring (start): every slot holds an mbuf
    // and a fresh descriptor, a half-received frame is dropped, and the
    // indices restart at 0. ENOMEM (naming the pool) if a slot cannot be
    // filled.
    [[nodiscard]] Result<void> reset();
};

struct TxQueue : ethdev::SharedObject {
    // --- what tx_burst touches
    TxDesc* ring = nullptr;
    mbuf::Mbuf** sw = nullptr;         // the segment each slot ends; nullptr: a piece before its last
    std::uint16_t* last = nullptr;     // per burst's first slot: its RS slot
    ethdev::Doorbell tdt;              // TDT in the mapped BAR0
    std::uint16_t mask = 0;
    std::uint16_t tail = 0;            // the next slot to fill (TDT)
    std::uint16_t clean = 0;           // the oldest slot not reclaimed
    std::uint16_t nb_free = 0;         // at most nb_desc - 1 (TDT never reaches TDH)
    std::uint16_t free_thresh = 0;
    Counter packets, bytes;

    // --- control
    std::uint16_t nb_desc = 0;
    DmaRing mem;
    ethdev::SharedVector<mbuf::Mbuf*> sw_store;
    ethdev::SharedVector<std::uint16_t> last_store;

    [[nodiscard]] static Result<std::unique_ptr<TxQueue>> create(std::uint16_t nb_desc, int socket,
                                                                const ethdev::TxConf& conf,
                                                                pci::Bar& bar);
    ~TxQueue();
    TxQueue() = default;
    TxQueue(const TxQueue&) = delete;
    TxQueue& operator=(const TxQueue&) = delete;

    // Before the NIC is given the ring (start): frees what the last run
    // left in it and restarts the indices at 0.
    void reset();
    // Frees the bursts whose RS descriptor the NIC marked done.
    void reclaim();
};

// The burst functions (ethdev::RxBurst / TxBurst): `q` is the queue.
std::uint16_t rx_burst(void* q, mbuf::Mbuf** pkts, std::uint16_t n);
std::uint16_t tx_burst(void* q, mbuf::Mbuf** pkts, std::uint16_t n);

}  // namespace vfiokit::em

// The virtio-net data path: one receive and one transmit virtqueue per
// queue pair, split rings (virtio 1.2, section 2.7), and the burst
// functions ethdev calls through its FastPath.
//
// Every packet is preceded by a 12-byte NetHdr (net.hpp). It lives in the
// mbuf's headroom, so neither direction copies a byte:
//
// Receive: descriptor i is one device-writable buffer, the mbuf sw[i]
// from 12 bytes before its data (the header) to the end of its buffer.
// rx_burst reads the used ring, hands the mbufs out with data_off at the
// frame, and re-posts the descriptors it took with fresh mbufs, in batches
// of free_thresh (one alloc_bulk, one avail->idx store, a kick only when
// the device asked for one). With MRG_RXBUF a frame may span several
// buffers (NetHdr::num_buffers, in the first): the following buffers hold
// frame bytes from their start and are chained as segments. Without it a
// buffer holds a whole frame (the port checks the pool's data room).
// DATA_VALID in the header (only sent with GUEST_CSUM) becomes
// kRxL4CksumGood; NEEDS_CSUM (a partial checksum from a sender on the
// same host) leaves the verdict unknown.
//
// Transmit: a packet is one descriptor chain: the header and the first
// segment in one descriptor when the mbuf's headroom can take the header
// (it is zeroed there: no offload asked), else a header of the queue's own
// (hdrs, one per descriptor) in a descriptor of its own; then one
// descriptor per further segment. Free descriptors form a list through
// Desc::next, so a chain taken from it is already linked. tx_burst kicks
// once per burst unless the device suppressed kicks; it reclaims the
// chains the device returned when fewer than free_thresh descriptors are
// free, freeing their packets.
//
// Shared with secondaries: a queue, its ring and arrays are in EAL memory
// (SharedObject, SharedVector, DmaBlock), and the kick is a plain pointer
// into the notify BAR.
//
// Ownership: a queue owns its ring memory, its arrays and the mbufs in
// them; destroying it frees them all. The device must have been reset
// first (VirtioPort does it). Thread-safety: one thread per queue runs its
// burst function; the counters may be read anywhere.
#pragma once

#include <cstdint>
#include <memory>

#include "net.hpp"
#include "vfiokit/eal/error.hpp"
#include "vfiokit/ethdev/ethdev.hpp"
#include "vfiokit/mbuf/mbuf.hpp"
#include "vring.hpp"

namespace vfiokit::virtio::net {

// The receive checksum flags of a frame whose NetHdr precedes its first
// segment's data, with GUEST_CSUM negotiated. DATA_VALID: the device
// checked the L4 checksum (kRxL4CksumGood). NEEDS_CSUM: the sender (on the
// same host) left the L4 checksum partial, csum_start and csum_offset
// saying where; it is completed here in software (RFC 1071) when that
// range lies in the first segment, and then good; else no verdict (0),
// as for a header without either flag.
[[nodiscard]] std::uint64_t rx_cksum(mbuf::Mbuf& m);

struct RxQueue : ethdev::SharedObject {
    // --- what rx_burst touches
    Vring ring;
    mbuf::Mbuf** sw = nullptr;        // per descriptor: the mbuf posted in it
    std::uint16_t* hold = nullptr;    // descriptors taken, waiting to be re-posted
    mbuf::Mbuf** staging = nullptr;   // refill's alloc_bulk target
    mbuf::MbufPool* pool = nullptr;
    Kick kick;
    std::uint32_t buf_len = 0;        // each descriptor's length: header + frame room
    std::uint16_t last_used = 0;      // the next used entry to read
    std::uint16_t avail_idx = 0;      // what avail->idx was last set to
    std::uint16_t nb_hold = 0;
    std::uint16_t free_thresh = 0;
    std::uint16_t port = 0xffff;
    std::uint16_t segs_left = 0;      // MRG_RXBUF: buffers of pkt_first still to come
    bool mrg = false;                 // MRG_RXBUF negotiated
    bool cksum = false;               // GUEST_CSUM negotiated and rx checksum offload asked
    mbuf::Mbuf* pkt_first = nullptr;  // a frame whose buffers span two bursts
    mbuf::Mbuf* pkt_last = nullptr;
    Counter packets, bytes, errors, nombuf, kicks;

    // --- control
    std::uint16_t nb_desc = 0;
    DmaBlock mem;
    ethdev::SharedVector<mbuf::Mbuf*> sw_store, staging_store;
    ethdev::SharedVector<std::uint16_t> hold_store;

    // A ring of nb_desc descriptors in EAL memory of `socket`, every slot
    // given an mbuf of `pool` now (ENOMEM naming the pool when it is
    // short; nothing kept then). EINVAL when the pool's buffers cannot take
    // the header.
    [[nodiscard]] static Result<std::unique_ptr<RxQueue>> create(std::uint16_t nb_desc, int socket,
                                                                const ethdev::RxConf& conf,
                                                                mbuf::MbufPool& pool);
    // The same on ring memory the caller provides (split_layout(nb_desc)
    // bytes, 16-aligned, at `iova` for the device): for host tests.
    [[nodiscard]] static Result<std::unique_ptr<RxQueue>> create_at(
        std::uint8_t* va, std::uint64_t iova, std::uint16_t nb_desc, const ethdev::RxConf& conf,
        mbuf::MbufPool& pool);
    ~RxQueue();
    RxQueue() = default;
    RxQueue(const RxQueue&) = delete;
    RxQueue& operator=(const RxQueue&) = delete;

    // Before the device gets the ring (start, after its reset): the ring
    // memory zeroed, every descriptor posted with an mbuf (slots emptied
    // by a failed refill get one now; ENOMEM naming the pool if it is
    // empty), a frame half-received dropped, indexes at 0, interrupts off.
    [[nodiscard]] Result<void> reset();
};

struct TxQueue : ethdev::SharedObject {
    // --- what tx_burst touches
    Vring ring;
    mbuf::Mbuf** sw = nullptr;        // per chain head: its packet
    std::uint16_t* chain = nullptr;   // per chain head: its descriptor count
    NetHdr* hdrs = nullptr;           // per descriptor: a zero header for packets without headroom
    std::uint64_t hdrs_iova = 0;
    Kick kick;
    std::uint16_t free_head = 0;      // the first free descriptor
    std::uint16_t nb_free = 0;
    std::uint16_t last_used = 0;
    std::uint16_t avail_idx = 0;
    std::uint16_t free_thresh = 0;
    Counter packets, bytes, errors, kicks;

    // --- control
    std::uint16_t nb_desc = 0;
    DmaBlock mem;
    ethdev::SharedVector<mbuf::Mbuf*> sw_store;
    ethdev::SharedVector<std::uint16_t> chain_store;

    // Bytes of ring memory create_at needs: the ring, then the headers.
    [[nodiscard]] static std::uint64_t mem_bytes(std::uint16_t nb_desc);
    [[nodiscard]] static Result<std::unique_ptr<TxQueue>> create(std::uint16_t nb_desc, int socket,
                                                                const ethdev::TxConf& conf);
    [[nodiscard]] static std::unique_ptr<TxQueue> create_at(std::uint8_t* va, std::uint64_t iova,
                                                            std::uint16_t nb_desc,
                                                            const ethdev::TxConf& conf);
    ~TxQueue();
    TxQueue() = default;
    TxQueue(const TxQueue&) = delete;
    TxQueue& operator=(const TxQueue&) = delete;

    // Before the device gets the ring (start, after its reset), and at
    // stop: the packets still in the ring freed (the reset device will not
    // send them), the ring zeroed, every descriptor free, indexes at 0.
    void reset();
    // Takes back the chains the device returned and frees their packets.
    void reclaim();
};

// The burst functions (ethdev::RxBurst / TxBurst): `q` is the queue.
std::uint16_t rx_burst(void* q, mbuf::Mbuf** pkts, std::uint16_t n);
std::uint16_t tx_burst(void* q, mbuf::Mbuf** pkts, std::uint16_t n);

}  // namespace vfiokit::virtio::net

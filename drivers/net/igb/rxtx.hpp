// The igb rings and their burst functions (private to the driver).
//
// Receive (7.1): one advanced one-buffer descriptor per mbuf. The ring is
// always full of mbufs: rx_burst hands a received mbuf to the caller and
// puts a fresh one in its slot before moving on, so a ring never holds a
// hole; when the pool is empty the burst stops there (rx_nombuf) and the
// packet stays in the ring for the next call. The tail register (RDT) is
// written every `free_thresh` refills: it points at the last descriptor
// given back, one behind the next to be read, so the device never fills
// the slot software reads next (7.1.3.1: head == tail means empty).
//
// Transmit (7.2): each packet takes one data descriptor per segment, and
// one context descriptor before it when it asks for a VLAN tag different
// from the one in the queue's context slot (the data descriptor's VLE
// inserts the tag of the context it names, 7.2.2.3). Only the packet's
// last descriptor asks for status (RS); every sw slot of the packet
// remembers that index, and cleaning frees a whole packet once its last
// descriptor reads DD. One descriptor stays unused so a full ring is
// never mistaken for an empty one.
//
// Shared with secondaries: queues and their slot arrays are in EAL memory
// (SharedObject, SharedVector, rings from dma_alloc) and the tail
// registers are plain pointers into BAR0 (ethdev::Doorbell), which a
// secondary maps at the primary's address: the burst functions of either
// process run on the same queues.
//
// Thread-safety: a queue is used by one thread at a time (ethdev's rule);
// nothing here locks.
#pragma once

#include <cstdint>
#include <vector>

#include "regs.hpp"
#include "vfiokit/bus/pci/bar.hpp"
#include "vfiokit/ethdev/ethdev.hpp"
#include "vfiokit/mbuf/mbuf.hpp"

namespace vfiokit::igb {

struct RxQueue : ethdev::SharedObject {
    // --- touched per packet
    volatile AdvRxDesc* ring = nullptr;
    mbuf::Mbuf** sw = nullptr;      // sw[i]: the mbuf whose buffer descriptor i holds
    mbuf::MbufPool* pool = nullptr;
    ethdev::Doorbell rdt;           // this queue's RDT in the mapped BAR0
    std::uint16_t mask = 0;         // nb_desc - 1
    std::uint16_t next = 0;         // next descriptor to read
    std::uint16_t nb_hold = 0;      // refilled since the last RDT write
    std::uint16_t free_thresh = 32;
    std::uint16_t port = 0;
    std::uint16_t crc_len = 0;      // 4 when the CRC is kept in the buffer
    bool strip_vlan = false;
    bool rss = false;
    bool cksum = false;
    bool discard = false;           // dropping the rest of a multi-descriptor frame
    std::uint64_t packets = 0, bytes = 0, nombuf = 0, errors = 0;

    // --- control path
    std::uint16_t index = 0;
    std::uint16_t nb_desc = 0;
    bool drop_en = true;
    ethdev::DmaMemory mem;
    ethdev::SharedVector<mbuf::Mbuf*> sw_storage;
};

struct TxEntry {
    mbuf::Mbuf* m = nullptr;  // the segment this descriptor sends; null for a context
    std::uint16_t last = 0;   // at a burst's first descriptor: the burst's last (the one with RS)
};

struct TxQueue : ethdev::SharedObject {
    // --- touched per packet
    volatile AdvTxDesc* ring = nullptr;
    TxEntry* sw = nullptr;
    ethdev::Doorbell tdt;
    std::uint16_t mask = 0;
    std::uint16_t tail = 0;         // next descriptor to fill
    std::uint16_t clean = 0;        // oldest descriptor not yet reclaimed
    std::uint16_t nb_free = 0;
    std::uint16_t free_thresh = 32;
    std::uint16_t ctx_vlan = 0;     // the tag in context slot 0
    bool ctx_valid = false;
    std::uint64_t packets = 0, bytes = 0;

    // --- control path
    std::uint16_t index = 0;
    std::uint16_t nb_desc = 0;
    ethdev::DmaMemory mem;
    ethdev::SharedVector<TxEntry> sw_storage;
};

// The tail register at `off` of a BAR0 whose registers are mmap()ed (the
// ports check at open).
[[nodiscard]] inline ethdev::Doorbell doorbell(const pci::Bar& bar, std::uint64_t off) {
    return {reinterpret_cast<volatile std::uint32_t*>(bar.pointer(off, 4))};
}

// The burst functions ethdev calls through FastPath (void* is the queue).
std::uint16_t rx_burst(void* rxq, mbuf::Mbuf** pkts, std::uint16_t n);
std::uint16_t tx_burst(void* txq, mbuf::Mbuf** pkts, std::uint16_t n);

// Reclaims descriptors whose packets the device has sent; returns how many.
std::uint16_t tx_clean(TxQueue& q);
// Frees every mbuf a tx ring still holds and empties it (queue stopped).
void tx_drop_all(TxQueue& q);

}  // namespace vfiokit::igb

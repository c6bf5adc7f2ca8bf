// Packet buffers (DPDK's rte_mbuf) and the pools they come from.
//
// An Mbuf is a header followed by its data buffer, both inside one object
// of a MbufPool, carved from EAL memory (DMA-mapped: every buffer has an
// IOVA, stored in the header when the pool is made, so iova() is O(1) and
// makes no lookup). The buffer begins with `headroom` bytes (kHeadroom by
// default) so a header can be prepended without a copy.
//
//   auto pool = mbuf::MbufPool::create("rx", 8191, 256, 0, mbuf::kDefaultDataRoom);
//   mbuf::Mbuf* m = (*pool)->alloc();            // nullptr when empty
//   std::memcpy(m->append(60), frame, 60);       // data_len = pkt_len = 60
//   uint64_t dma = m->iova();                     // where the device reads
//   m->free();                                    // back to its pool
//
// Multi-segment packets: `next` chains segments; the first one holds
// nb_segs and pkt_len (the sum of data_len), the others only data_len.
// free() frees the whole chain; free_seg() one segment.
//
// Reference counts: a buffer with refcnt > 1 is shared (e.g. the same
// frame queued to two ports); free() drops one reference and returns the
// mbuf to its pool at zero. refcnt is updated atomically only when it is
// above 1 (as DPDK does), so the common single-owner case is a plain store.
//
// The pool: a fixed number of mbufs made at create(), never grown. get/put
// go through a per-lcore cache (an array of pointers, LIFO, no atomic
// operation, no lock) of `cache_size` entries; the cache refills from and
// flushes to the pool's shared store in bulk. Threads that are not EAL
// lcores (eal::lcore_id() == kLcoreIdAny) use the shared store directly.
// The shared store is a lock-free multi-producer multi-consumer ring of
// pointers, so any lcore may free an mbuf another allocated.
//
// Memory: the whole pool (its header, ring, caches and mbufs) is one
// allocation from an EAL heap, so a secondary process that maps the
// primary's memory at the same addresses sees the same pool.
//
// Ownership: pools are named and live until destroy(); destroy fails with
// EBUSY, naming how many mbufs are out, while any are.
// Thread-safety: alloc/free/alloc_bulk/free_bulk from any thread (each
// lcore uses its own cache, non-lcore threads the ring); create/destroy
// are control path (EAL lock).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "vfiokit/eal/error.hpp"
#include "vfiokit/eal/heap.hpp"

namespace vfiokit::mbuf {

class MbufPool;

inline constexpr std::uint16_t kHeadroom = 128;          // RTE_PKTMBUF_HEADROOM
inline constexpr std::uint16_t kDefaultDataRoom = 2048 + kHeadroom;  // RTE_MBUF_DEFAULT_DATAROOM
inline constexpr unsigned kMaxCacheSize = 512;

// Offload flags (ol_flags). Rx flags are set by drivers, tx flags by the
// application to ask the driver for an offload.
namespace ol {
inline constexpr std::uint64_t kRxVlan = 1ULL << 0;            // vlan_tci holds the tag
inline constexpr std::uint64_t kRxVlanStripped = 1ULL << 1;    // and the NIC removed it
inline constexpr std::uint64_t kRxRssHash = 1ULL << 2;         // rss_hash is valid
inline constexpr std::uint64_t kRxIpCksumGood = 1ULL << 4;
inline constexpr std::uint64_t kRxIpCksumBad = 1ULL << 5;
inline constexpr std::uint64_t kRxL4CksumGood = 1ULL << 6;
inline constexpr std::uint64_t kRxL4CksumBad = 1ULL << 7;
inline constexpr std::uint64_t kTxVlan = 1ULL << 32;           // insert vlan_tci
inline constexpr std::uint64_t kTxIpCksum = 1ULL << 33;        // needs l2_len, l3_len
inline constexpr std::uint64_t kTxTcpCksum = 1ULL << 34;       // needs l4 lengths too
inline constexpr std::uint64_t kTxUdpCksum = 1ULL << 35;
inline constexpr std::uint64_t kTxIpv4 = 1ULL << 36;
inline constexpr std::uint64_t kTxIpv6 = 1ULL << 37;
}  // namespace ol

// The header. Its first cache line holds what rx and tx touch per packet.
struct alignas(64) Mbuf {
    // --- cache line 0
    std::uint8_t* buf_addr = nullptr;  // start of the buffer (headroom first)
    std::uint64_t buf_iova = 0;        // IOVA of buf_addr, fixed at pool creation
    std::uint16_t data_off = 0;        // where the data starts in the buffer
    std::uint16_t refcnt = 1;
    std::uint16_t nb_segs = 1;         // first segment only
    std::uint16_t port = 0xffff;       // input port (rx), 0xffff: none
    std::uint64_t ol_flags = 0;
    std::uint32_t packet_type = 0;
    std::uint32_t pkt_len = 0;         // whole packet (first segment only)
    std::uint16_t data_len = 0;        // this segment
    std::uint16_t vlan_tci = 0;
    std::uint32_t rss_hash = 0;
    std::uint16_t buf_len = 0;         // the buffer's size, headroom included
    std::uint16_t priv_size = 0;       // application area after the header
    // --- cache line 1
    alignas(64) Mbuf* next = nullptr;
    MbufPool* pool = nullptr;
    // Tx offload lengths (for checksum offloads).
    std::uint16_t l2_len = 0;
    std::uint16_t l3_len = 0;
    std::uint16_t l4_len = 0;
    std::uint64_t user = 0;            // for the application

    // The data of this segment.
    template <class T = std::uint8_t>
    [[nodiscard]] T* data(std::size_t off = 0) {
        return reinterpret_cast<T*>(buf_addr + data_off + off);
    }
    template <class T = std::uint8_t>
    [[nodiscard]] const T* data(std::size_t off = 0) const {
        return reinterpret_cast<const T*>(buf_addr + data_off + off);
    }
    // IOVA of the data's first byte: what a descriptor points at. O(1).
    [[nodiscard]] std::uint64_t iova() const { return buf_iova + data_off; }
    [[nodiscard]] std::uint16_t headroom() const { return data_off; }
    [[nodiscard]] std::uint16_t tailroom() const {
        return static_cast<std::uint16_t>(buf_len - data_off - data_len);
    }
    // Grows the data at the end by `len` (this segment and pkt_len of a
    // single-segment packet); nullptr when the tailroom is too small.
    [[nodiscard]] std::uint8_t* append(std::uint16_t len);
    // Grows the data at the front; nullptr when the headroom is too small.
    [[nodiscard]] std::uint8_t* prepend(std::uint16_t len);
    // Removes `len` bytes at the front / the end; false when too long.
    bool adj(std::uint16_t len);
    bool trim(std::uint16_t len);
    // Back to the state alloc() gives: one empty segment, headroom kept.
    void reset();
    // Links `tail` (a packet) after this packet's last segment; false (and
    // nothing changed) when nb_segs would overflow.
    bool chain(Mbuf* tail);
    [[nodiscard]] Mbuf* last_seg();

    // Reference counting; see the file comment.
    void refcnt_add(std::int16_t v);
    // Drops one reference of this segment only; at zero returns it to its
    // pool. Returns the next segment.
    Mbuf* free_seg();
    // Frees every segment of the packet.
    void free();
};
static_assert(sizeof(Mbuf) == 128, "two cache lines");
static_assert(offsetof(Mbuf, next) == 64, "cache line 1 starts with next");

struct PoolStats {
    std::uint64_t alloc_ok = 0;
    std::uint64_t alloc_fail = 0;
};

class MbufPool {
public:
    // `n` mbufs of `data_room` buffer bytes (headroom included) and
    // `priv_size` application bytes each, with per-lcore caches of
    // `cache_size` (<= kMaxCacheSize, <= n / 1.5 as in DPDK; 0: no cache).
    // Memory from `heap`. Errors: EINVAL naming the bad argument, EEXIST for
    // a name in use, ENOMEM from the heap (with its reason).
    [[nodiscard]] static Result<MbufPool*> create(eal::Heap& heap, std::string_view name,
                                                  unsigned n, unsigned cache_size,
                                                  std::uint16_t priv_size,
                                                  std::uint16_t data_room);
    // The same, from the heap of NUMA node `socket` of this process's EAL
    // (eal::Eal::current()); ENODEV when no EAL is up.
    [[nodiscard]] static Result<MbufPool*> create(std::string_view name, unsigned n,
                                                  unsigned cache_size, std::uint16_t priv_size,
                                                  std::uint16_t data_room, int socket = -1);
    [[nodiscard]] static MbufPool* lookup(std::string_view name);
    // EBUSY naming the count while mbufs are out; the pool stays usable then.
    [[nodiscard]] static Result<void> destroy(MbufPool* p);

    // One mbuf, reset; nullptr when the pool (and this lcore's cache) is empty.
    [[nodiscard]] Mbuf* alloc();
    // All `n` or none: 0, or -ENOENT when fewer than n are available.
    [[nodiscard]] int alloc_bulk(Mbuf** out, unsigned n);
    // Returns segments whose refcnt already dropped to zero (drivers' tx
    // completion path: no reset, no refcnt check). Prefer Mbuf::free().
    void put(Mbuf* m);
    void put_bulk(Mbuf* const* ms, unsigned n);

    [[nodiscard]] const std::string& name() const;
    [[nodiscard]] unsigned size() const;              // n
    [[nodiscard]] unsigned cache_size() const;
    [[nodiscard]] std::uint16_t data_room() const;    // buf_len of each mbuf
    [[nodiscard]] std::uint16_t priv_size() const;
    // Mbufs in the ring and every cache: size() when all are back.
    [[nodiscard]] unsigned avail_count() const;
    [[nodiscard]] unsigned in_use_count() const { return size() - avail_count(); }
    [[nodiscard]] bool owns(const Mbuf* m) const;
    [[nodiscard]] eal::Heap& heap() const;

    MbufPool(const MbufPool&) = delete;
    MbufPool& operator=(const MbufPool&) = delete;

private:
    MbufPool() = default;
    ~MbufPool() = default;
    struct Impl;
    Impl* impl_ = nullptr;  // lives in the pool's own allocation
};

}  // namespace vfiokit::mbuf

/// \file
/// Packet buffers (DPDK's rte_mbuf) and the pools they come from.
///
/// An Mbuf is a header followed by its data buffer, both inside one object
/// of a MbufPool, carved from EAL memory (DMA-mapped: every buffer has an
/// IOVA, stored in the header when the pool is made, so iova() is O(1) and
/// makes no lookup). The buffer begins with `headroom` bytes (kHeadroom by
/// default) so a header can be prepended without a copy.
///
/// \code
///   auto pool = mbuf::MbufPool::create("rx", 8191, 256, 0, mbuf::kDefaultDataRoom);
///   mbuf::Mbuf* m = (*pool)->alloc();            // nullptr when empty
///   std::memcpy(m->append(60), frame, 60);       // data_len = pkt_len = 60
///   uint64_t dma = m->iova();                     // where the device reads
///   m->free();                                    // back to its pool
/// \endcode
///
/// Multi-segment packets: `next` chains segments; the first one holds
/// nb_segs and pkt_len (the sum of data_len), the others only data_len.
/// free() frees the whole chain; free_seg() one segment.
///
/// Reference counts: a buffer with refcnt > 1 is shared (e.g. the same
/// frame queued to two ports); free() drops one reference and returns the
/// mbuf to its pool at zero. refcnt is updated atomically only when it is
/// above 1 (as DPDK does), so the common single-owner case is a plain store.
///
/// The pool: a fixed number of mbufs made at create(), never grown. get/put
/// go through a per-lcore cache (an array of pointers, LIFO, no atomic
/// operation, no lock) of `cache_size` entries; the cache refills from and
/// flushes to the pool's shared store in bulk. Threads that are not EAL
/// lcores (eal::lcore_id() == kLcoreIdAny) use the shared store directly.
/// The shared store is a lock-free multi-producer multi-consumer ring of
/// pointers, so any lcore may free an mbuf another allocated.
///
/// Memory: the whole pool (its header, ring, caches and mbufs) is one
/// allocation from an EAL heap, so a secondary process that maps the
/// primary's memory at the same addresses sees the same pool.
///
/// Ownership: pools are named and live until destroy(); destroy fails with
/// EBUSY, naming how many mbufs are out, while any are. Destroy a pool
/// before its heap goes: its name stays taken (EEXIST) until destroy().
/// Speed: alloc/free/put and the bulk calls are inline; on an lcore they
/// touch only its cache (slow paths, the ring, are calls into mbuf.cpp).
///
/// Thread-safety: alloc/free/alloc_bulk/free_bulk from any thread (each
/// lcore uses its own cache, non-lcore threads the ring); create/destroy
/// are control path (EAL lock).
#pragma once

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "vfiokit/eal/error.hpp"
#include "vfiokit/eal/heap.hpp"
#include "vfiokit/eal/lcore.hpp"
#include "vfiokit/eal/pool_core.hpp"

namespace vfiokit::mbuf {

class MbufPool;

inline constexpr std::uint16_t kHeadroom = 128;          ///< RTE_PKTMBUF_HEADROOM
inline constexpr std::uint16_t kDefaultDataRoom = 2048 + kHeadroom;  ///< RTE_MBUF_DEFAULT_DATAROOM
/// The largest per-lcore cache a pool can have.
inline constexpr unsigned kMaxCacheSize = 512;

/// Offload flags (ol_flags). Rx flags are set by drivers, tx flags by the
/// application to ask the driver for an offload.
namespace ol {
inline constexpr std::uint64_t kRxVlan = 1ULL << 0;            ///< vlan_tci holds the tag
inline constexpr std::uint64_t kRxVlanStripped = 1ULL << 1;    ///< and the NIC removed it
inline constexpr std::uint64_t kRxRssHash = 1ULL << 2;         ///< rss_hash is valid
inline constexpr std::uint64_t kRxIpCksumGood = 1ULL << 4;     ///< IPv4 checksum checked: good
inline constexpr std::uint64_t kRxIpCksumBad = 1ULL << 5;      ///< IPv4 checksum checked: bad
inline constexpr std::uint64_t kRxL4CksumGood = 1ULL << 6;     ///< TCP/UDP checksum checked: good
inline constexpr std::uint64_t kRxL4CksumBad = 1ULL << 7;      ///< TCP/UDP checksum checked: bad
inline constexpr std::uint64_t kTxVlan = 1ULL << 32;           ///< insert vlan_tci
inline constexpr std::uint64_t kTxIpCksum = 1ULL << 33;        ///< needs l2_len, l3_len
inline constexpr std::uint64_t kTxTcpCksum = 1ULL << 34;       ///< needs l4 lengths too
inline constexpr std::uint64_t kTxUdpCksum = 1ULL << 35;       ///< RTE_MBUF_F_TX_UDP_CKSUM
inline constexpr std::uint64_t kTxIpv4 = 1ULL << 36;           ///< RTE_MBUF_F_TX_IPV4
inline constexpr std::uint64_t kTxIpv6 = 1ULL << 37;           ///< RTE_MBUF_F_TX_IPV6
}  // namespace ol

/// The header. Its first cache line holds what rx and tx touch per packet.
struct alignas(64) Mbuf {
    // --- cache line 0
    std::uint8_t* buf_addr = nullptr;  ///< start of the buffer (headroom first)
    std::uint64_t buf_iova = 0;        ///< IOVA of buf_addr, fixed at pool creation
    std::uint16_t data_off = 0;        ///< where the data starts in the buffer
    std::uint16_t refcnt = 1;
    std::uint16_t nb_segs = 1;         ///< first segment only
    std::uint16_t port = 0xffff;       ///< input port (rx), 0xffff: none
    std::uint64_t ol_flags = 0;
    std::uint32_t packet_type = 0;
    std::uint32_t pkt_len = 0;         ///< whole packet (first segment only)
    std::uint16_t data_len = 0;        ///< this segment
    std::uint16_t vlan_tci = 0;
    std::uint32_t rss_hash = 0;
    std::uint16_t buf_len = 0;         ///< the buffer's size, headroom included
    std::uint16_t priv_size = 0;       ///< application area after the header
    // --- cache line 1 (line 0's fields end at byte 52: aligned, so line
    // 1 starts here, not at the next 8-byte boundary)
    alignas(64) Mbuf* next = nullptr;
    MbufPool* pool = nullptr;
    /// Tx offload lengths (for checksum offloads).
    std::uint16_t l2_len = 0;
    std::uint16_t l3_len = 0;
    std::uint16_t l4_len = 0;
    std::uint64_t user = 0;            ///< for the application

    /// The data of this segment.
    template <class T = std::uint8_t>
    [[nodiscard]] T* data(std::size_t off = 0) {
        return reinterpret_cast<T*>(buf_addr + data_off + off);
    }
    template <class T = std::uint8_t>
    [[nodiscard]] const T* data(std::size_t off = 0) const {
        return reinterpret_cast<const T*>(buf_addr + data_off + off);
    }
    /// IOVA of the data's first byte: what a descriptor points at. O(1).
    [[nodiscard]] std::uint64_t iova() const { return buf_iova + data_off; }
    [[nodiscard]] std::uint16_t headroom() const { return data_off; }
    [[nodiscard]] std::uint16_t tailroom() const {
        return static_cast<std::uint16_t>(buf_len - data_off - data_len);
    }
    /// Grows the data at the end by `len`: called on a packet's first
    /// segment, grows its last segment and pkt_len (DPDK's
    /// rte_pktmbuf_append; for one segment, this one). nullptr when that
    /// segment's tailroom is too small.
    [[nodiscard]] std::uint8_t* append(std::uint16_t len);
    /// Grows the data at the front; nullptr when the headroom is too small.
    [[nodiscard]] std::uint8_t* prepend(std::uint16_t len);
    /// Removes `len` bytes at the front (of this segment) / the end (of the
    /// last segment), keeping pkt_len; false (nothing changed) when that
    /// segment holds fewer bytes.
    bool adj(std::uint16_t len);
    bool trim(std::uint16_t len);
    /// Back to the state alloc() gives: one empty segment, headroom kept.
    void reset();
    /// Links `tail` (a packet) after this packet's last segment; false (and
    /// nothing changed) when nb_segs would overflow.
    bool chain(Mbuf* tail);
    [[nodiscard]] Mbuf* last_seg();

    /// Reference counting; see the file comment.
    void refcnt_add(std::int16_t v);
    /// Drops one reference of this segment only; at zero returns it to its
    /// pool. Returns the next segment.
    Mbuf* free_seg();
    /// Frees every segment of the packet.
    void free();
};
static_assert(sizeof(Mbuf) == 128, "two cache lines");
static_assert(offsetof(Mbuf, next) == 64, "cache line 1 starts with next");

/// A pool of mbufs (DPDK's rte_mempool of rte_mbufs); see the file's description.
class MbufPool {
public:
    /// Longest pool name (DPDK's RTE_MEMPOOL_NAMESIZE is 26).
    static constexpr std::size_t kNameMax = 31;

    /// `n` mbufs of `data_room` buffer bytes (headroom included) and
    /// `priv_size` application bytes each (a multiple of 8), with per-lcore
    /// caches of `cache_size` (<= kMaxCacheSize, <= n / 1.5 as in DPDK; 0:
    /// no cache). Memory from `heap`. Errors: EINVAL naming the bad argument,
    /// EEXIST for a name in use, ENOMEM (or EINVAL above the heap's segment
    /// size) from the heap with its reason, EFAULT when the heap's memory
    /// has no IOVA for a buffer or a buffer would not be IOVA-contiguous.
    /// Buffers get their IOVAs now: create pools after the devices that use
    /// them are probed (a device with a narrower DMA mask that arrives
    /// later may move EAL memory to other IOVAs).
    [[nodiscard]] static Result<MbufPool*> create(eal::Heap& heap, std::string_view name,
                                                  unsigned n, unsigned cache_size,
                                                  std::uint16_t priv_size,
                                                  std::uint16_t data_room);
    /// The same, from the heap of NUMA node `socket` of this process's EAL
    /// (eal::Eal::current()); ENODEV when no EAL is up.
    [[nodiscard]] static Result<MbufPool*> create(std::string_view name, unsigned n,
                                                  unsigned cache_size, std::uint16_t priv_size,
                                                  std::uint16_t data_room, int socket = -1);
    /// A pool created in this process; in a secondary, else the primary's
    /// pool of that name (asked over the multi-process channel: its address,
    /// checked to lie in the memory mapped from the primary). nullptr when
    /// there is none. A secondary's lcores must not share ids with the
    /// primary's while both use a pool: caches are per lcore id (as in
    /// DPDK; give the secondary other -l ids).
    [[nodiscard]] static MbufPool* lookup(std::string_view name);
    /// EBUSY naming the count while mbufs are out; the pool stays usable then.
    /// EPERM in a process other than the creator (it owns the heap block).
    [[nodiscard]] static Result<void> destroy(MbufPool* p);

    /// One mbuf, reset; nullptr when the pool (and this lcore's cache) is empty.
    [[nodiscard]] Mbuf* alloc();
    /// All `n` or none: 0, or -ENOENT when fewer than n are available.
    [[nodiscard]] int alloc_bulk(Mbuf** out, unsigned n);
    /// Returns segments the caller holds the only reference to (drivers' tx
    /// completion path: no reset, no refcnt check). Prefer Mbuf::free().
    void put(Mbuf* m);
    void put_bulk(Mbuf* const* ms, unsigned n);

    [[nodiscard]] const std::string& name() const;
    [[nodiscard]] unsigned size() const { return n_; }   // n
    [[nodiscard]] unsigned cache_size() const { return core_.cache_size(); }
    [[nodiscard]] std::uint16_t data_room() const { return data_room_; }  // buf_len of each mbuf
    [[nodiscard]] std::uint16_t priv_size() const { return priv_size_; }
    /// Mbufs in the ring and every cache: size() when all are back. A
    /// snapshot: exact only while no other thread allocates or frees.
    [[nodiscard]] unsigned avail_count() const;
    [[nodiscard]] unsigned in_use_count() const { return size() - avail_count(); }
    /// avail_count()'s two parts, as DPDK's mempool telemetry reports them:
    /// the mbufs in the shared ring, and those in the lcores' caches.
    [[nodiscard]] unsigned common_count() const;
    [[nodiscard]] unsigned cache_count() const;
    /// Bytes each mbuf takes in the pool (header, priv_size, data room, padding).
    [[nodiscard]] std::uint32_t element_size() const { return obj_stride_; }
    /// The names of the pools this process created, sorted (telemetry's
    /// /mempool/list).
    [[nodiscard]] static std::vector<std::string> names();
    [[nodiscard]] bool owns(const Mbuf* m) const;
    /// The creator's heap (not usable in another process).
    [[nodiscard]] eal::Heap& heap() const { return *heap_; }

    MbufPool(const MbufPool&) = delete;
    MbufPool& operator=(const MbufPool&) = delete;

private:
    MbufPool() = default;
    ~MbufPool() = default;

    // Everything lives in the pool's own allocation, this object first:
    // pointers are valid in every process mapping EAL memory at the same
    // addresses (a secondary), except heap_.
    // --- read by every alloc and free: the ring and the per-lcore caches
    // (eal::detail::PoolCore, the engine eal::ObjectPool uses too)
    eal::detail::PoolCore<Mbuf> core_;
    std::uint32_t n_ = 0;
    // --- the rest
    std::uint16_t data_room_ = 0;
    std::uint16_t priv_size_ = 0;
    std::uint32_t obj_stride_ = 0;
    std::uint64_t page_ = 0;         // objects kept inside pages of this size (pa); 0: packed
    std::uint32_t per_page_ = 0;
    std::byte* objs_lo_ = nullptr;   // [objs_lo_, objs_hi_): the mbufs
    std::byte* objs_hi_ = nullptr;
    eal::Heap* heap_ = nullptr;
    void* block_ = nullptr;          // the heap allocation
    std::int32_t owner_pid_ = 0;
    std::uint64_t magic_ = 0;
    char name_[kNameMax + 1] = {};
};

/// Frees `n` packets (every segment of each), returning segments to their
/// pools in bulk (DPDK's rte_pktmbuf_free_bulk).
inline void free_bulk(Mbuf* const* pkts, unsigned n);

// ---- inline definitions: the per-packet path ------------------------------------

inline Mbuf* Mbuf::last_seg() {
    Mbuf* m = this;
    while (m->next != nullptr)
        m = m->next;
    return m;
}

inline std::uint8_t* Mbuf::append(std::uint16_t len) {
    Mbuf* last = last_seg();
    if (len > last->tailroom())
        return nullptr;
    std::uint8_t* tail = last->buf_addr + last->data_off + last->data_len;
    last->data_len = static_cast<std::uint16_t>(last->data_len + len);
    pkt_len += len;
    return tail;
}

inline std::uint8_t* Mbuf::prepend(std::uint16_t len) {
    if (len > data_off)
        return nullptr;
    data_off = static_cast<std::uint16_t>(data_off - len);
    data_len = static_cast<std::uint16_t>(data_len + len);
    pkt_len += len;
    return buf_addr + data_off;
}

inline bool Mbuf::adj(std::uint16_t len) {
    if (len > data_len)
        return false;
    data_off = static_cast<std::uint16_t>(data_off + len);
    data_len = static_cast<std::uint16_t>(data_len - len);
    pkt_len -= len;
    return true;
}

inline bool Mbuf::trim(std::uint16_t len) {
    Mbuf* last = last_seg();
    if (len > last->data_len)
        return false;
    last->data_len = static_cast<std::uint16_t>(last->data_len - len);
    pkt_len -= len;
    return true;
}

// Every field alloc() promises, but refcnt (the owner's) and what the
// pool fixed (buf_*, priv_size, pool).
inline void Mbuf::reset() {
    data_off = buf_len < kHeadroom ? buf_len : kHeadroom;
    nb_segs = 1;
    port = 0xffff;
    ol_flags = 0;
    packet_type = 0;
    pkt_len = 0;
    data_len = 0;
    vlan_tci = 0;
    rss_hash = 0;
    next = nullptr;
    l2_len = 0;
    l3_len = 0;
    l4_len = 0;
    user = 0;
}

inline bool Mbuf::chain(Mbuf* tail) {
    if (nb_segs + tail->nb_segs > 0xffff)
        return false;
    last_seg()->next = tail;
    nb_segs = static_cast<std::uint16_t>(nb_segs + tail->nb_segs);
    pkt_len += tail->pkt_len;
    // tail is a middle segment now: only the first one holds the totals.
    tail->pkt_len = tail->data_len;
    tail->nb_segs = 1;
    return true;
}

inline void Mbuf::refcnt_add(std::int16_t v) {
    std::atomic_ref<std::uint16_t> rc(refcnt);
    // The only owner cannot race with anyone: a plain store (DPDK's shortcut).
    if (rc.load(std::memory_order_relaxed) == 1) [[likely]] {
        rc.store(static_cast<std::uint16_t>(1 + v), std::memory_order_relaxed);
        return;
    }
    rc.fetch_add(static_cast<std::uint16_t>(v), std::memory_order_acq_rel);
}

namespace detail {
// Drops one reference of `m`; true when it was the last (the segment goes
// back to its pool).
inline bool drop_ref(Mbuf* m) {
    std::atomic_ref<std::uint16_t> rc(m->refcnt);
    if (rc.load(std::memory_order_relaxed) == 1) [[likely]]
        return true;
    return rc.fetch_sub(1, std::memory_order_acq_rel) == 1;
}
}  // namespace detail

inline Mbuf* Mbuf::free_seg() {
    Mbuf* nxt = next;
    if (detail::drop_ref(this))
        pool->put(this);
    return nxt;
}

inline void Mbuf::free() {
    Mbuf* m = this;
    do
        m = m->free_seg();
    while (m != nullptr);
}

inline Mbuf* MbufPool::alloc() {
    Mbuf* m = core_.get();
    if (m == nullptr)
        return nullptr;
    m->refcnt = 1;
    m->reset();
    return m;
}

inline int MbufPool::alloc_bulk(Mbuf** out, unsigned n) {
    if (int rc = core_.get_bulk(out, n); rc != 0)
        return rc;
    for (unsigned i = 0; i < n; ++i) {
        out[i]->refcnt = 1;
        out[i]->reset();
    }
    return 0;
}

inline void MbufPool::put(Mbuf* m) { core_.put(m); }

inline void MbufPool::put_bulk(Mbuf* const* ms, unsigned n) { core_.put_bulk(ms, n); }

inline void free_bulk(Mbuf* const* pkts, unsigned n) {
    constexpr unsigned kBatch = 64;
    Mbuf* batch[kBatch];
    unsigned nb = 0;
    MbufPool* pool = nullptr;
    for (unsigned i = 0; i < n; ++i) {
        for (Mbuf* m = pkts[i]; m != nullptr;) {
            Mbuf* nxt = m->next;
            if (detail::drop_ref(m)) {
                if (nb != 0 && (nb == kBatch || m->pool != pool)) {
                    pool->put_bulk(batch, nb);
                    nb = 0;
                }
                pool = m->pool;
                batch[nb++] = m;
            }
            m = nxt;
        }
    }
    if (nb != 0)
        pool->put_bulk(batch, nb);
}

}  // namespace vfiokit::mbuf

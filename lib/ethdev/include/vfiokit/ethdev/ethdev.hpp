/// \file
/// Ethernet ports (DPDK's ethdev): the API applications use, and the one
/// poll-mode drivers implement.
///
/// An application sees numbered ports and calls, in DPDK's order:
///
/// \code
///   ethdev::configure(port, nb_rxq, nb_txq, conf);
///   ethdev::rx_queue_setup(port, q, 512, socket, {}, *pool);
///   ethdev::tx_queue_setup(port, q, 512, socket, {});
///   ethdev::start(port);
///   n = ethdev::rx_burst(port, q, pkts, 32);   // inline, no lock, no virtual call
///   sent = ethdev::tx_burst(port, q, pkts, n);  // the rest stay the caller's
///   ethdev::stop(port); ethdev::close(port);
/// \endcode
///
/// State machine: attached -> configured -> (queues set up) -> started ->
/// stopped -> (reconfigured or started again) -> closed (detached). A call
/// out of order fails with EINVAL naming the port, its state and what to
/// call first ("port 0 (0000:00:05.0, net_e1000_em): start needs every rx
/// queue set up; rx queue 1 is not: call rx_queue_setup"). An unknown port
/// or queue is ENODEV / EINVAL naming it and how many there are.
///
/// The per-packet path: rx_burst/tx_burst read the port's FastPath entry
/// (burst functions and queue pointers, set by start; stop puts back idle
/// functions)
/// and call the driver's function. Ports that are not started have burst
/// functions that return 0, so a poll loop racing a stop never crashes.
/// Port and queue numbers are not checked there (as in DPDK); the control
/// calls check them.
///
/// Drivers: a PMD's probe makes a PortOps for its device and attach()es it,
/// which gives the port its id; removing the device detach()es it. ethdev
/// checks every argument against the driver's DevInfo (queue counts, ring
/// sizes: power of two and within [min, max], MTU range) before the driver
/// sees it, so drivers implement only valid requests. Ring memory comes from
/// dma_alloc() (EAL memory, DMA-mapped in the default container).
///
/// Secondary processes (doc/multiprocess.md, "Ports"): a secondary's EAL
/// probe attaches the primary's started ports under the same ids; their
/// bursts run on the primary's queues (which drivers keep in shared memory:
/// SharedObject, SharedVector, Doorbell), reads of stats and link go to the
/// primary, and the calls that change a port fail there with EPERM.
///
/// Thread-safety: control calls are for one thread at a time (the EAL lock
/// is taken inside; without an EAL, as in host tests with software ports,
/// ethdev's own lock). rx_burst on one queue from one thread; tx_burst on one
/// queue from one thread; different queues from different threads.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "vfiokit/eal/error.hpp"
#include "vfiokit/eal/pci_address.hpp"
#include "vfiokit/mbuf/mbuf.hpp"

namespace vfiokit::ethdev {

inline constexpr std::uint16_t kMaxPorts = 32;   ///< port ids are below this
inline constexpr std::uint16_t kMaxQueues = 16;  ///< rx (and tx) queues per port at most

/// A driver's receive burst: up to n packets from queue `rxq` into pkts;
/// returns how many.
using RxBurst = std::uint16_t (*)(void* rxq, mbuf::Mbuf** pkts, std::uint16_t n);
/// A driver's transmit burst: up to n packets from pkts onto queue `txq`;
/// returns how many it took.
using TxBurst = std::uint16_t (*)(void* txq, mbuf::Mbuf** pkts, std::uint16_t n);

///@{
/// The burst functions of a port that is not started: they take and give
/// nothing. Every FastPath entry starts with them (constant initialization,
/// so even a poll before main() is safe) and stop() puts them back.
std::uint16_t idle_rx_burst(void* rxq, mbuf::Mbuf** pkts, std::uint16_t n);
std::uint16_t idle_tx_burst(void* txq, mbuf::Mbuf** pkts, std::uint16_t n);
///@}

/// What rx_burst/tx_burst read: one cache-line-aligned entry per port.
/// start() writes the queue pointers, then the functions (release); stop()
/// puts the idle functions back and leaves the queue pointers, so a poll
/// racing a stop calls either the driver with its queue (still allocated:
/// queues are released only by close or a new configure) or the idle
/// function. Read without a lock: on x86 the acquire load is a plain load.
struct alignas(64) FastPath {
    RxBurst rx = idle_rx_burst;
    TxBurst tx = idle_tx_burst;
    std::array<void*, kMaxQueues> rxq{};
    std::array<void*, kMaxQueues> txq{};
};
/// The FastPath entry of every port id.
extern FastPath fast_path[kMaxPorts];

/// Receives up to n packets from queue q; returns how many were stored in pkts.
inline std::uint16_t rx_burst(std::uint16_t port, std::uint16_t q, mbuf::Mbuf** pkts,
                              std::uint16_t n) {
    FastPath& p = fast_path[port];
    const RxBurst fn = std::atomic_ref<RxBurst>(p.rx).load(std::memory_order_acquire);
    return fn(std::atomic_ref<void*>(p.rxq[q]).load(std::memory_order_relaxed), pkts, n);
}
/// Queues up to n packets on queue q; returns how many the driver took (it
/// frees them when sent). The others remain the caller's.
inline std::uint16_t tx_burst(std::uint16_t port, std::uint16_t q, mbuf::Mbuf** pkts,
                              std::uint16_t n) {
    FastPath& p = fast_path[port];
    const TxBurst fn = std::atomic_ref<TxBurst>(p.tx).load(std::memory_order_acquire);
    return fn(std::atomic_ref<void*>(p.txq[q]).load(std::memory_order_relaxed), pkts, n);
}

/// Offload capability / request bits (DPDK's RTE_ETH_{RX,TX}_OFFLOAD_*).
namespace offload {
inline constexpr std::uint64_t kRxVlanStrip = 1ULL << 0;  ///< RTE_ETH_RX_OFFLOAD_VLAN_STRIP
inline constexpr std::uint64_t kRxIpv4Cksum = 1ULL << 1;  ///< RTE_ETH_RX_OFFLOAD_IPV4_CKSUM
inline constexpr std::uint64_t kRxUdpCksum = 1ULL << 2;   ///< RTE_ETH_RX_OFFLOAD_UDP_CKSUM
inline constexpr std::uint64_t kRxTcpCksum = 1ULL << 3;   ///< RTE_ETH_RX_OFFLOAD_TCP_CKSUM
inline constexpr std::uint64_t kRxKeepCrc = 1ULL << 16;    ///< RTE_ETH_RX_OFFLOAD_KEEP_CRC
inline constexpr std::uint64_t kRxRssHash = 1ULL << 19;    ///< RTE_ETH_RX_OFFLOAD_RSS_HASH
inline constexpr std::uint64_t kTxVlanInsert = 1ULL << 0;  ///< RTE_ETH_TX_OFFLOAD_VLAN_INSERT
inline constexpr std::uint64_t kTxIpv4Cksum = 1ULL << 1;   ///< RTE_ETH_TX_OFFLOAD_IPV4_CKSUM
inline constexpr std::uint64_t kTxUdpCksum = 1ULL << 2;    ///< RTE_ETH_TX_OFFLOAD_UDP_CKSUM
inline constexpr std::uint64_t kTxTcpCksum = 1ULL << 3;    ///< RTE_ETH_TX_OFFLOAD_TCP_CKSUM
inline constexpr std::uint64_t kTxMultiSegs = 1ULL << 15;  ///< RTE_ETH_TX_OFFLOAD_MULTI_SEGS
}  // namespace offload

/// RSS hash functions (DPDK's RTE_ETH_RSS_*), the subset Intel NICs hash on.
namespace rss {
inline constexpr std::uint64_t kIpv4 = 1ULL << 2;     ///< RTE_ETH_RSS_IPV4
inline constexpr std::uint64_t kIpv4Tcp = 1ULL << 4;  ///< RTE_ETH_RSS_NONFRAG_IPV4_TCP
inline constexpr std::uint64_t kIpv4Udp = 1ULL << 5;   ///< RTE_ETH_RSS_NONFRAG_IPV4_UDP
inline constexpr std::uint64_t kIpv6 = 1ULL << 8;      ///< RTE_ETH_RSS_IPV6
inline constexpr std::uint64_t kIpv6Tcp = 1ULL << 10;  ///< RTE_ETH_RSS_NONFRAG_IPV6_TCP
inline constexpr std::uint64_t kIpv6Udp = 1ULL << 11;  ///< RTE_ETH_RSS_NONFRAG_IPV6_UDP
}  // namespace rss

/// An Ethernet address.
struct MacAddr {
    std::array<std::uint8_t, 6> bytes{};
    [[nodiscard]] std::string str() const;  ///< "52:54:00:12:34:56"
    [[nodiscard]] static Result<MacAddr> parse(std::string_view s);
    bool operator==(const MacAddr&) const = default;
};

/// How configure() sets a port up (DPDK's rte_eth_conf, the part vfiokit has).
struct PortConf {
    std::uint64_t rx_offloads = 0;
    std::uint64_t tx_offloads = 0;
    std::uint64_t rss_hf = 0;          ///< 0: no RSS (one rx queue gets all)
    std::uint32_t mtu = 0;             ///< 0: keep the current one (1500 at attach)
    bool lsc_interrupt = false;        ///< link changes signal lsc_fd()
    bool rxq_interrupt = false;        ///< rx_intr_* usable (doc/ethdev.md, "Interrupts")
};
/// How rx_queue_setup() sets a receive queue up.
struct RxConf {
    std::uint16_t free_thresh = 32;    ///< refill the ring in batches of this many
    bool drop_en = true;               ///< drop when no descriptor, count imissed
};
/// How tx_queue_setup() sets a transmit queue up.
struct TxConf {
    std::uint16_t free_thresh = 32;    ///< reclaim sent buffers in batches of this many
};

/// The descriptor counts a driver accepts for a ring.
struct DescLimits {
    std::uint16_t min = 0;
    std::uint16_t max = 0;
    std::uint16_t align = 1;           ///< multiple of (ring byte size alignment / desc size)
};

/// A port's driver, limits and capabilities (DPDK's rte_eth_dev_info).
struct DevInfo {
    std::string driver_name;           ///< "net_e1000_em", as DPDK names it where it has one
    std::string device_name;           ///< "0000:00:05.0"
    std::uint16_t max_rx_queues = 1;
    std::uint16_t max_tx_queues = 1;
    DescLimits rx_desc;
    DescLimits tx_desc;
    std::uint64_t rx_offload_capa = 0;
    std::uint64_t tx_offload_capa = 0;
    std::uint64_t rss_offload_capa = 0;
    std::uint32_t min_mtu = 68;
    std::uint32_t max_mtu = 1500;
    std::uint32_t max_rx_pktlen = 1518;
    bool rxq_interrupt = false;        ///< rx queue interrupts possible (MSI-X, or INTx)
    bool lsc_interrupt = false;
};

/// A port's link: up or down, speed, duplex, autonegotiation.
struct Link {
    bool up = false;
    std::uint32_t speed_mbps = 0;      ///< 0 when down or unknown
    bool full_duplex = false;
    bool autoneg = false;
    [[nodiscard]] std::string str() const;  ///< "Link up at 1 Gbps FDX Autoneg"
};

/// A port's counters (DPDK's rte_eth_stats), per port and per queue.
struct Stats {
    std::uint64_t ipackets = 0, opackets = 0;
    std::uint64_t ibytes = 0, obytes = 0;
    std::uint64_t imissed = 0;         ///< dropped by the NIC for lack of descriptors
    std::uint64_t ierrors = 0, oerrors = 0;
    std::uint64_t rx_nombuf = 0;       ///< rx refills that found the pool empty
    std::array<std::uint64_t, kMaxQueues> q_ipackets{}, q_opackets{}, q_ibytes{}, q_obytes{};
};

/// One extended counter of a driver: a name and its value.
struct Xstat {
    std::string name;                  ///< DPDK's names where they exist: "rx_good_packets"
    std::uint64_t value = 0;
};

/// What a driver implements for each port (control path: virtual calls are
/// fine here). Arguments are already checked against info().
class PortOps {
public:
    virtual ~PortOps() = default;
    [[nodiscard]] virtual DevInfo info() const = 0;
    [[nodiscard]] virtual Result<void> configure(std::uint16_t nb_rxq, std::uint16_t nb_txq,
                                                 const PortConf& conf) = 0;
    /// Returns the queue object the burst function receives.
    [[nodiscard]] virtual Result<void*> rx_queue_setup(std::uint16_t q, std::uint16_t nb_desc,
                                                       int socket, const RxConf& conf,
                                                       mbuf::MbufPool& pool) = 0;
    [[nodiscard]] virtual Result<void*> tx_queue_setup(std::uint16_t q, std::uint16_t nb_desc,
                                                       int socket, const TxConf& conf) = 0;
    /// Frees the queue's ring and every mbuf it holds.
    virtual void rx_queue_release(std::uint16_t q) = 0;
    virtual void tx_queue_release(std::uint16_t q) = 0;
    [[nodiscard]] virtual Result<void> start() = 0;
    /// Stops the device's DMA; mbufs held by the rings stay until release.
    virtual void stop() = 0;
    [[nodiscard]] virtual RxBurst rx_burst_fn() const = 0;
    [[nodiscard]] virtual TxBurst tx_burst_fn() const = 0;

    [[nodiscard]] virtual Result<Link> link(bool wait) = 0;
    [[nodiscard]] virtual Result<void> promiscuous(bool on) = 0;
    [[nodiscard]] virtual Result<void> allmulticast(bool on) = 0;
    [[nodiscard]] virtual MacAddr mac() const = 0;
    [[nodiscard]] virtual Result<void> set_mac(const MacAddr& a) = 0;
    [[nodiscard]] virtual Result<void> set_mtu(std::uint32_t mtu) = 0;
    [[nodiscard]] virtual Result<Stats> stats() = 0;
    [[nodiscard]] virtual Result<void> stats_reset() = 0;
    [[nodiscard]] virtual Result<std::vector<Xstat>> xstats() = 0;
    /// Rx interrupts (PortConf::rxq_interrupt): the queue's eventfd, and
    /// arming / disarming the queue's vector. ENOTSUP where the NIC has none;
    /// the eventfd is the driver's, from start() to stop() (EINVAL outside).
    [[nodiscard]] virtual Result<int> rx_intr_fd(std::uint16_t q);
    [[nodiscard]] virtual Result<void> rx_intr_enable(std::uint16_t q);
    [[nodiscard]] virtual Result<void> rx_intr_disable(std::uint16_t q);
    /// Link-state interrupts (PortConf::lsc_interrupt): an eventfd that fires
    /// on a link change; read link() after it does (which clears the cause,
    /// so the next change fires again). ENOTSUP where none; from start() to
    /// stop(), like the rx eventfds.
    [[nodiscard]] virtual Result<int> lsc_fd();
    /// What the driver's secondary probe needs besides the queues (passed
    /// to it as PrimaryPort::driver_data): em and igb give where BAR0 is
    /// mapped, so the secondary maps it at the same address. 0: nothing.
    [[nodiscard]] virtual std::uint64_t secondary_data() const { return 0; }
};

// --- driver side
/// Gives `ops` a port id (the lowest free); ENOSPC beyond kMaxPorts. ethdev
/// owns the ops from then on; the driver keeps a plain pointer to identify
/// its port.
[[nodiscard]] Result<std::uint16_t> attach(std::unique_ptr<PortOps> ops);
/// The driver's remove: stops the port whose ops are `ops` if it is started,
/// releases its queues, destroys the ops and frees the id. When the
/// application closed that port already, close() kept the ops (stopped,
/// queues released, id free) for this call, which only destroys them now:
/// the ops' address cannot be reused while the driver still holds it, so
/// detach never reaches a port attached later. A driver instance calls it
/// unconditionally from its destructor; nullptr or an unknown ops is a
/// no-op.
void detach(const PortOps* ops);
/// A block of DMA-able memory: its address, IOVA and length.
struct DmaMemory {
    void* va = nullptr;
    std::uint64_t iova = 0;
    std::uint64_t len = 0;
};
///@{
/// DMA-able memory for rings: zeroed, `align`-aligned, from the heap of
/// `socket` of this process's EAL, its IOVA in `iova`. ENODEV without
/// an EAL. dma_free gives it back.
[[nodiscard]] Result<DmaMemory> dma_alloc(std::uint64_t len, std::uint64_t align, int socket);
void dma_free(DmaMemory& m);
///@}

// --- memory shared with secondary processes
//
// A secondary process polls a primary's queues (attach_secondary below):
// everything its burst functions touch must be where both processes see
// it at the same address, the EAL heap the secondary maps. Queue objects
// derive from SharedObject (their `new` takes EAL heap memory) and keep
// their arrays in SharedVector; mbuf pools and dma_alloc rings are there
// already. What differs per process stays out of them: the burst
// functions (each process's FastPath) and the BAR mapping, which the
// secondary's driver maps at the primary's address so that a doorbell
// pointer in a queue is valid in both.

///@{
/// shared_alloc: `bytes` from the heap of this process's EAL (any node),
/// or from the C++ heap when the process has no EAL or is a secondary (a
/// secondary cannot allocate EAL memory; host tests have none). Throws
/// std::bad_alloc as operator new does when neither has room. shared_free
/// gives back what shared_alloc gave.
[[nodiscard]] void* shared_alloc(std::size_t bytes, std::size_t align);
void shared_free(void* p) noexcept;
///@}

/// A base for objects that secondary processes reach (queues): `new` and
/// `delete` go through shared_alloc and shared_free.
struct SharedObject {
    static void* operator new(std::size_t n) { return shared_alloc(n, 64); }
    static void* operator new(std::size_t n, std::align_val_t a) {
        return shared_alloc(n, static_cast<std::size_t>(a));
    }
    static void operator delete(void* p) noexcept { shared_free(p); }
    static void operator delete(void* p, std::align_val_t) noexcept { shared_free(p); }
};

/// An allocator over shared_alloc and shared_free, for SharedVector.
template <class T>
struct SharedAllocator {
    using value_type = T;
    SharedAllocator() = default;
    template <class U>
    SharedAllocator(const SharedAllocator<U>&) noexcept {}
    [[nodiscard]] T* allocate(std::size_t n) {
        return static_cast<T*>(shared_alloc(n * sizeof(T), alignof(T) < 64 ? 64 : alignof(T)));
    }
    void deallocate(T* p, std::size_t) noexcept { shared_free(p); }
    template <class U>
    bool operator==(const SharedAllocator<U>&) const noexcept { return true; }
};
/// A vector whose elements are in memory that secondary processes reach.
template <class T>
using SharedVector = std::vector<T, SharedAllocator<T>>;

/// A device register written from the data path (a ring's tail): one
/// release fence and one volatile store to the mapped register, as
/// pci::Bar::write does, through a plain pointer that a queue in shared
/// memory can hold (valid wherever the BAR is mapped at the same address).
struct Doorbell {
    volatile std::uint32_t* reg = nullptr;
    void ring(std::uint32_t v) const {
        std::atomic_thread_fence(std::memory_order_release);
        *reg = v;
    }
};

// --- secondary processes (DPDK's symmetric multi-process)

/// A primary's started port, as a secondary sees it: asked from the primary
/// over the multi-process channel (request "ethdev.port") by the device's
/// name. Queue pointers are the primary's, in the memory the secondary
/// mapped at the same addresses (checked).
struct PrimaryPort {
    std::uint16_t id = 0;              ///< the primary's port id: the secondary uses the same
    DevInfo info;
    MacAddr mac;
    std::uint16_t nb_rxq = 0, nb_txq = 0;
    std::array<void*, kMaxQueues> rxq{}, txq{};
    std::uint64_t driver_data = 0;     ///< PortOps::secondary_data() in the primary
    int primary_pid = 0;
};
/// In a secondary: the primary's port for `device` ("0000:00:05.0").
/// ENODEV when the primary has no port for it; EAGAIN naming its state when
/// it is not started (a secondary polls only started ports); EPERM in a
/// process that is not a secondary; EPROTO for a reply that does not check.
[[nodiscard]] Result<PrimaryPort> primary_port(std::string_view device);
/// In a secondary: makes `p` a port of this process, with the same id and
/// this process's burst functions; `keep` (the driver's per-process state,
/// e.g. the BAR mapping the doorbells point into) lives as long as the
/// port. Returns the port's ops for the driver's detach(). On this port,
/// rx_burst/tx_burst, info, link, MAC, stats and xstats work (link and
/// stats are read by the primary, over the channel); the calls that change
/// the port (configure, queue setup, start, stop, promiscuous, MAC, MTU,
/// stats reset, interrupts) fail with EPERM: they are the primary's.
/// close() forgets the port in this process only. EBUSY when the id is in
/// use here.
[[nodiscard]] Result<const PortOps*> attach_secondary(const PrimaryPort& p, RxBurst rx,
                                                      TxBurst tx, std::shared_ptr<void> keep);
/// Whether port `port` of this process is a primary's port attached by a
/// secondary (false for unknown ports).
[[nodiscard]] bool is_attached_from_primary(std::uint16_t port);

// --- application side
[[nodiscard]] std::uint16_t count_avail();          ///< attached ports
[[nodiscard]] std::vector<std::uint16_t> ports();   ///< their ids, ascending
/// Whether `port` is attached in this process.
[[nodiscard]] bool is_valid(std::uint16_t port);
/// The port of a device ("0000:00:05.0"); ENODEV when none.
[[nodiscard]] Result<std::uint16_t> find(PciAddress addr);
/// The port's driver, limits and capabilities.
[[nodiscard]] Result<DevInfo> info(std::uint16_t port);

/// Configuring again (stopped, or configured) releases the queues of the
/// previous configuration first, as DPDK does; EBUSY while started.
[[nodiscard]] Result<void> configure(std::uint16_t port, std::uint16_t nb_rxq,
                                     std::uint16_t nb_txq, const PortConf& conf);
///@{
/// nb_desc 0 asks for the default: 512, within the driver's limits. Setting
/// a queue up again replaces it. rx: ENOMEM when `pool` cannot fill this
/// ring besides every other rx ring already set up on it (any port).
[[nodiscard]] Result<void> rx_queue_setup(std::uint16_t port, std::uint16_t q,
                                          std::uint16_t nb_desc, int socket,
                                          const RxConf& conf, mbuf::MbufPool& pool);
[[nodiscard]] Result<void> tx_queue_setup(std::uint16_t port, std::uint16_t q,
                                          std::uint16_t nb_desc, int socket,
                                          const TxConf& conf);
///@}
/// Starts a configured port whose queues are all set up (EINVAL naming
/// what is missing otherwise): rx_burst and tx_burst reach its driver from
/// then on. A started port: nothing to do.
[[nodiscard]] Result<void> start(std::uint16_t port);
/// A port that is not started: nothing to do (as DPDK's).
[[nodiscard]] Result<void> stop(std::uint16_t port);
/// Stops, releases the queues and frees the id (a later attach may take
/// it). The driver's ops stay alive until the driver's detach() (the device
/// is still the driver's until it is removed).
[[nodiscard]] Result<void> close(std::uint16_t port);

[[nodiscard]] Result<Link> link_get(std::uint16_t port);         ///< waits up to 9 s for up
/// The link as it is now, without waiting.
[[nodiscard]] Result<Link> link_get_nowait(std::uint16_t port);
///@{
/// Promiscuous mode (every unicast frame received) on and off.
[[nodiscard]] Result<void> promiscuous_enable(std::uint16_t port);
[[nodiscard]] Result<void> promiscuous_disable(std::uint16_t port);
///@}
///@{
/// All-multicast mode (every multicast frame received) on and off.
[[nodiscard]] Result<void> allmulticast_enable(std::uint16_t port);
[[nodiscard]] Result<void> allmulticast_disable(std::uint16_t port);
///@}
/// The port's MAC address.
[[nodiscard]] Result<MacAddr> macaddr_get(std::uint16_t port);
/// Sets the port's MAC address.
[[nodiscard]] Result<void> macaddr_set(std::uint16_t port, const MacAddr& a);
/// Sets the MTU; EINVAL outside the driver's [min_mtu, max_mtu].
[[nodiscard]] Result<void> mtu_set(std::uint16_t port, std::uint32_t mtu);
/// The port's counters.
[[nodiscard]] Result<Stats> stats_get(std::uint16_t port);
/// Resets the counters stats_get() reports (the driver's stats_reset).
[[nodiscard]] Result<void> stats_reset(std::uint16_t port);
/// The driver's extended counters (DPDK's names where they exist).
[[nodiscard]] Result<std::vector<Xstat>> xstats_get(std::uint16_t port);
///@{
/// Arms and disarms queue `q`'s receive interrupt (PortConf::rxq_interrupt;
/// doc/ethdev.md, "Interrupts").
[[nodiscard]] Result<void> rx_intr_enable(std::uint16_t port, std::uint16_t q);
[[nodiscard]] Result<void> rx_intr_disable(std::uint16_t port, std::uint16_t q);
///@}
/// The eventfd queue `q`'s receive interrupt signals, from start to stop.
[[nodiscard]] Result<int> rx_intr_fd(std::uint16_t port, std::uint16_t q);
/// The eventfd a link change signals (PortConf::lsc_interrupt), from start to
/// stop; read link_get_nowait() after it fires.
[[nodiscard]] Result<int> lsc_fd(std::uint16_t port);

}  // namespace vfiokit::ethdev

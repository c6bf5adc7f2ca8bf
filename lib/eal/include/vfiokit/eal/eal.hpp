/// \file
/// The environment abstraction layer of one process: options, VFIO, memory.
///
/// \code
///   int first_app_arg;
///   auto eal = vfiokit::eal::Eal::init(argc, argv, &first_app_arg);
///   if (!eal) { fprintf(stderr, "%s\n", eal.error().message().c_str()); return 1; }
///   void* buf = *(*eal)->heap().alloc(4096);          // DMA-able, mapped
///   uint64_t iova = *(*eal)->virt2iova(buf);
/// \endcode
///
/// init() picks the VFIO mode and opens the default container, reserves the
/// memory window, connects memory events to the default container (every
/// segment is mapped for DMA as it is added, unmapped before it goes), and
/// reserves the start-up memory (-m or `--socket-mem`). The IOVA mode follows
/// the VFIO mode unless forced: va where an IOMMU translates, pa without one.
/// Then it scans the buses linked into the program and probes their
/// registered drivers on the devices -a/-b select (vfiokit/eal/bus.hpp).
/// A failure at any step undoes the earlier ones.
///
/// Multi-process (doc/multiprocess.md), with `--proc-type` / `--file-prefix`:
/// a primary also takes the prefix's runtime directory and lock and serves
/// its memory and VFIO state to secondaries; a secondary maps the primary's
/// memory at the same addresses and adopts its VFIO containers and devices
/// (fds over the channel), so it can DMA through the primary's devices. A
/// secondary cannot add memory (Heap::alloc beyond attached memory fails),
/// and probes no bus: it drives the primary's devices.
///
/// Concurrency model (thread-safety). The control path is serialized by one EAL lock,
/// vfio().control_lock(), a recursive mutex: every Vfio and Container method
/// (assign/release, map/unmap, containers), memory growth (Memory::add and
/// remove, Heap alloc/free, heap()), and the multi-process server's handlers
/// (eal.memory, eal.vfio, eal.info) take it, and the fds sent to
/// secondaries are dup'ed under it. So any thread may grow the heap or
/// assign devices while secondaries attach. The data path takes no lock:
/// virt2iova() (an atomic table read), BAR access, and ObjectPool get/put
/// (per-lcore caches, a lock-free ring). Eal::init and the destructor run alone.
///
/// Lcores (-l, -c, `--lcores`, `--main-lcore`; vfiokit/eal/lcore.hpp): init()
/// pins the calling thread, which becomes the main lcore, and starts a
/// pinned worker thread per other lcore, in primaries and secondaries alike.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "vfiokit/eal/bus.hpp"
#include "vfiokit/eal/device_event.hpp"
#include "vfiokit/eal/error.hpp"
#include "vfiokit/eal/heap.hpp"
#include "vfiokit/eal/lcore.hpp"
#include "vfiokit/eal/memory.hpp"
#include "vfiokit/eal/memory_dma.hpp"
#include "vfiokit/eal/mp.hpp"
#include "vfiokit/eal/options.hpp"
#include "vfiokit/eal/service.hpp"
#include "vfiokit/eal/vfio/vfio.hpp"

namespace vfiokit::eal {

namespace mp {
/// The primary's record of its secondaries' own DMA mappings (private to
/// lib/eal; Eal::SecondaryExit tells what it is used for).
class ForeignDma;
}  // namespace mp

namespace hotplug {
class Board;
class Subscription;
}  // namespace hotplug

/// The EAL of one process: made by init(), it owns the VFIO front end, memory,
/// heaps, lcores, probed buses and services, and undoes them all when destroyed.
class Eal {
public:
    [[nodiscard]] static Result<std::unique_ptr<Eal>> init(int argc, const char* const* argv,
                                                           int* first_app_arg = nullptr);
    [[nodiscard]] static Result<std::unique_ptr<Eal>> init(const Options& o);
    ~Eal();
    Eal(const Eal&) = delete;
    /// The process's EAL from the moment its drivers are probed until it is
    /// destroyed; nullptr otherwise. One EAL per process (as in DPDK):
    /// a second init() while one lives fails with EBUSY. For libraries that
    /// need EAL memory without being handed an Eal (mbuf pools by name,
    /// ethdev rings).
    [[nodiscard]] static Eal* current();
    Eal& operator=(const Eal&) = delete;

    [[nodiscard]] const Options& options() const { return opts_; }
    /// The lcores of -l/-c/`--lcores`: the thread that called init() is the
    /// main lcore; the workers wait for launch(). Stop what runs on them
    /// before destroying the Eal: its destructor waits for them first.
    [[nodiscard]] Lcores& lcores() const { return *lcores_; }
    [[nodiscard]] vfio::Vfio& vfio() const { return *vfio_; }
    [[nodiscard]] Memory& memory() const { return *memory_; }
    [[nodiscard]] IovaMode iova_mode() const { return memory_->iova_mode(); }
    /// The heap of a NUMA node (-1: no placement), created on first use.
    [[nodiscard]] Heap& heap(int node = -1);
    /// The heaps created so far, by node (for tools: telemetry's /heap/info).
    [[nodiscard]] std::vector<const Heap*> heaps() const;
    [[nodiscard]] std::optional<std::uint64_t> virt2iova(const void* p) const {
        return memory_->virt2iova(p);
    }
    /// What the buses did with each device they looked at (probed, or why
    /// not). Find a driver's instance through the driver:
    /// my_driver().find(addr).
    [[nodiscard]] std::vector<DeviceReport> device_report() const;

    /// Hot-unplug (DPDK's RTE_ETH_EVENT_INTR_RMV and rte_dev_remove). When a
    /// device is unplugged or unbound from vfio-pci, the kernel asks for it
    /// back through the device's request interrupt and waits (repeating the
    /// request every 10 s) until the process closes the device; the
    /// device's BARs stay mapped meanwhile, so bursts still run safely.
    ///
    /// removal_requests() lists the devices the kernel asked for, until they
    /// are removed; it polls each device's request eventfd without blocking
    /// (one read per probed device), and logs each new request once
    /// (component eal), naming the device and its driver. Call it from the control
    /// loop (testpmd does, with its stats).
    [[nodiscard]] std::vector<RemovalRequest> removal_requests();
    /// Gives a device back: the driver's remove (an ethdev port is stopped,
    /// its queues released with every mbuf they held back to its pool, the
    /// port id freed, BARs unmapped, interrupts disabled), then the VFIO
    /// release (device fd closed; the group fd or cdev binding too with its
    /// last device), after which the kernel completes the unplug. Stop
    /// every lcore's bursts on the device's ports first: a burst running
    /// inside the driver while its queues are released is the caller's race
    /// (as in DPDK); bursts after remove_device() return 0 (idle functions).
    /// ENODEV when no bus probed the device. Control path: under the EAL
    /// lock.
    [[nodiscard]] Result<void> remove_device(PciAddress a);

    /// Device events in DPDK's style (vfiokit/eal/device_event.hpp says
    /// where each comes from and why they are polled). The order of a
    /// hot-unplug, each step's time in DeviceEvent::seen:
    ///   remove  (poll_device_events: the kernel's request)
    ///   -> the application stops the device's ports and calls
    ///      remove_device(): secondaries that monitor events release their
    ///      copies first, then the driver's remove, then the VFIO release
    ///   -> removed (a later poll: the kernel's "remove" uevent, with the
    ///      device monitor started).
    ///
    /// Reads every event source without blocking: the request eventfds of
    /// the probed devices (always) and, once start_device_monitor() ran, the
    /// kernel's uevents (add, removed); in a secondary that started its
    /// monitor, the primary's removals of devices it holds. Calls each
    /// registered callback with each new event, in order, on this thread,
    /// without the EAL lock held (a callback may call remove_device or
    /// probe_device), then returns the events. A remove is reported once per
    /// request; the stderr line of removal_requests() is printed for it too.
    /// Fails only when the uevent socket fails (the events read before are
    /// lost with it: the kernel dropped messages, ENOBUFS).
    [[nodiscard]] Result<std::vector<DeviceEvent>> poll_device_events();
    /// DPDK's rte_dev_event_callback_register/unregister: ids are never
    /// reused; unregistering inside a callback is allowed (it takes effect
    /// at the next event).
    using DeviceEventCallback = std::function<void(const DeviceEvent&)>;
    int add_device_event_callback(DeviceEventCallback cb);
    bool remove_device_event_callback(int id);
    /// DPDK's rte_dev_event_monitor_start/stop: opens (closes) the uevent
    /// socket. In a secondary, also subscribes to the primary's removals
    /// (hotplug.hpp); that subscription lasts until the process exits (the
    /// primary keeps asking it first, and waits for its answer). Starting
    /// twice is a no-op.
    [[nodiscard]] Result<void> start_device_monitor();
    void stop_device_monitor();
    [[nodiscard]] bool device_monitor_running() const { return monitor_.has_value(); }

    /// DPDK's rte_dev_probe: probes one device after init (one that was
    /// hot-added, say) with the registered driver, through the bus's probe
    /// path. `devargs` is -a's syntax ("0000:02:00.0,dma_mask=0xffffffff").
    /// The EAL never binds a device to vfio-pci by itself (nor does DPDK):
    /// `bind_vfio` asks it to, through driver_override (the override stays
    /// on the device). `container`: assign it to this container instead of
    /// the default one (it must be this EAL's). Fails with the reason when
    /// the device is not probed (no driver, on a kernel driver, refused by
    /// its driver, probed already: EEXIST). Primary only (ENOTSUP in a
    /// secondary: it adopts what the primary probed). Under the EAL lock.
    struct ProbeOptions {
        vfio::Container* container = nullptr;
        bool bind_vfio = false;
    };
    [[nodiscard]] Result<DeviceReport> probe_device(std::string_view devargs,
                                                    const ProbeOptions& o);
    [[nodiscard]] Result<DeviceReport> probe_device(std::string_view devargs) {
        return probe_device(devargs, ProbeOptions{});
    }

    /// Secondary: calls `cb` once when the primary exits or dies, with the
    /// error that says so ("primary (pid N, prefix P) has exited"). The EAL
    /// watches its channel from init on (a thread polling the socket for
    /// the hang-up the kernel gives when the primary's last reference goes,
    /// SIGKILL included), so callbacks fire within milliseconds, not at
    /// the next request. They run on that watcher thread, in registration
    /// order, without the EAL lock; a callback registered after the exit
    /// runs at once, on the caller's thread. A callback must not destroy
    /// the Eal. What to do next is the application's: stop using the
    /// primary's devices (their DMA may still run into memory that is now
    /// only the secondaries'), release them and exit, so that a new primary
    /// can take them. Returns an id for remove_primary_exit_callback; ENOTSUP
    /// in a primary.
    using PrimaryExitCallback = std::function<void(const Error&)>;
    [[nodiscard]] Result<int> add_primary_exit_callback(PrimaryExitCallback cb);
    bool remove_primary_exit_callback(int id);
    /// Secondary: whether the watcher has seen the primary go.
    [[nodiscard]] bool primary_exited() const;

    /// What the primary did when the channel connection of a secondary
    /// ended with some of the secondary's own DMA mappings still recorded
    /// (it was killed, or closed its channel without unmapping them).
    struct SecondaryExit {
        pid_t pid = 0;                  ///< the secondary (SO_PEERCRED at connect)
        std::uint64_t connection = 0;   ///< mp::Peer::connection
        /// The pid still ran 1 s after the connection ended: it left the
        /// channel but lives. Its ranges are unmapped all the same (the
        /// connection is what keeps them).
        bool still_running = false;
        std::size_t ranges = 0;         ///< ranges it had announced or confirmed
        std::size_t unmapped = 0;       ///< of those, unmapped now
        std::uint64_t bytes = 0;        ///< bytes the kernel unmapped
        std::size_t already_gone = 0;   ///< nothing was mapped there (ENOENT)
        std::size_t failed = 0;         ///< refused by the kernel or by a check (logged)
    };
    /// Primary with multi-process: calls `cb` on the channel's server
    /// thread, after the cleanup, each time a secondary's connection ends
    /// with own mappings recorded (doc/multiprocess.md "A secondary's own
    /// mappings"). Runs with the EAL lock released; must not destroy the
    /// Eal. Returns an id for remove_secondary_exit_callback; ENOTSUP in a
    /// secondary or a single process.
    using SecondaryExitCallback = std::function<void(const SecondaryExit&)>;
    [[nodiscard]] Result<int> add_secondary_exit_callback(SecondaryExitCallback cb);
    bool remove_secondary_exit_callback(int id);

    /// primary (also for a single process) or secondary.
    [[nodiscard]] ProcType proc_type() const { return role_.type; }
    /// Secondary: the channel to the primary (primary_alive(), watch()).
    [[nodiscard]] mp::Client* primary() const { return client_.get(); }
    /// Primary with multi-process: the channel's server (stats).
    [[nodiscard]] mp::Server* server() const { return server_.get(); }

private:
    Eal() = default;
    [[nodiscard]] Result<void> init_secondary(const mp::RuntimeDir& dir);
    [[nodiscard]] Result<void> serve(const mp::RuntimeDir& dir);
    [[nodiscard]] Result<void> make_current();
    // Starts every registered service (service.hpp).
    [[nodiscard]] Result<void> start_services();
    Options opts_;
    // Started first (the main thread is pinned before memory is touched),
    // stopped first: worker functions may use everything below.
    std::unique_ptr<Lcores> lcores_;
    // Teardown runs bottom-up: heaps give their segments back, memory
    // unmaps them through the listener, then VFIO closes the container.
    std::unique_ptr<vfio::Vfio> vfio_;
    std::unique_ptr<ContainerDmaListener> listener_;
    std::unique_ptr<Memory> memory_;
    std::map<int, std::unique_ptr<Heap>> heaps_;
    // After heaps_: destroyed first, so drivers stop their devices before
    // memory or containers go away.
    std::vector<std::unique_ptr<ProbedBus>> buses_;
    // Devices whose removal request was already printed.
    std::vector<PciAddress> removal_reported_;
    // Device events (eal_events.cpp).
    [[nodiscard]] bool holds(PciAddress a) const;
    void note_removal_request(const RemovalRequest& r);
    std::optional<UeventMonitor> monitor_;
    std::vector<std::pair<int, DeviceEventCallback>> callbacks_;
    // Secondary: the primary's exit (add_primary_exit_callback). Its own
    // lock: the watcher thread never waits for the EAL lock.
    mutable std::mutex exit_mu_;
    std::vector<std::pair<int, PrimaryExitCallback>> exit_callbacks_;
    int next_exit_callback_ = 1;
    std::optional<Error> primary_exit_;
    void primary_exited(const Error& e);
    // Primary: the secondaries' own mappings (eal_foreign_dma.cpp).
    void serve_foreign_dma();
    void secondary_gone(const mp::Peer& peer);
    std::unique_ptr<mp::ForeignDma> foreign_dma_;  // under the EAL lock
    mutable std::mutex secondary_exit_mu_;
    std::vector<std::pair<int, SecondaryExitCallback>> secondary_exit_callbacks_;
    int next_secondary_exit_callback_ = 1;
    // Secondary: reports its own mappings to the primary.
    void report_dma_to_primary();
    int next_callback_ = 1;
    std::vector<PciAddress> remove_delivered_;  // remove events given, until removed
    std::unique_ptr<hotplug::Board> board_;                // primary with multi-process
    std::unique_ptr<hotplug::Subscription> subscription_;  // secondary with a monitor
    mp::Role role_;  // holds the primary's lock for the process's lifetime
    // Destroyed first: the server's handlers read memory_ and vfio_.
    std::unique_ptr<mp::Server> server_;
    std::unique_ptr<mp::Client> client_;
    // Destroyed before anything else (~Eal stops them first): services
    // read everything above.
    std::vector<std::unique_ptr<Service>> services_;
};

}  // namespace vfiokit::eal

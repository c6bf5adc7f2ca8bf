/// \file
/// The VFIO subsystem of one process: mode, containers, devices, DMA.
///
/// One Vfio object per process (the EAL owns it). It picks the VFIO mode once
/// (forced, or automatic), opens the default container, and from then on:
///
/// \code
///   auto vfio = Vfio::create(opts);                  // mode chosen, default container ready
///   Container& c = vfio->default_container();
///   Result<Device*> d = vfio->assign_device(c, "0000:00:03.0");
///   c.map(vaddr, iova, len);  ... c.unmap(iova, len);
///   vfio->release_device(**d);
/// \endcode
///
/// Containers. A container is one IO address space with its devices: group
/// mode, a /dev/vfio/vfio container with groups; compat, a /dev/iommu fd used
/// as that container; cdev, an IOAS in the process's iommufd with bound
/// devices; no-IOMMU, a container with no translation. The API is the same in
/// every mode.
///
/// DMA semantics are vfiokit's, identical in every translated mode:
///   - mapping works before any device is assigned (group and compat replay
///     the table when the first group attaches, and again if the container
///     loses its last group and gains a new one);
///   - vaddr, iova and len must be multiples of the IOMMU page size (4 KiB);
///   - a mapping that overlaps an existing one fails with EEXIST;
///   - unmap(iova, len) removes the whole mappings inside [iova, iova+len);
///     a range that cuts through a mapping fails with EINVAL and changes
///     nothing; a range that holds no mapping fails with ENOENT;
///   - there is no fixed limit on the number of mappings (type1's kernel
///     limit, dma_entry_limit, is reported by name when reached); lookup by
///     IOVA is O(log n);
///   - every IOVA is checked against the ranges the kernel reports for the
///     container; alloc_iova() hands out IOVAs inside them, under a DMA mask.
///
/// IOVA policy: one per container, used by EAL memory. choose_iova() gives a
/// mapping IOVA = VA where that lies inside the kernel's ranges and under the
/// DMA mask of every device that uses the container (require_dma_mask()),
/// and an IOVA allocated inside them otherwise. A device whose mask the
/// container's memory cannot meet is refused at probe time, naming the mask
/// and the range; memory placed by the policy (the EAL's segments, through
/// IovaUser) is moved under the mask instead.
/// In the no-IOMMU modes nothing translates: the device sees physical
/// addresses. Group no-IOMMU (noiommu) maps nothing: map/unmap/alloc_iova
/// fail with ENOTSUP and say so, and physical addresses come from
/// /proc/self/pagemap. cdev no-IOMMU (cdev-noiommu, Linux 7.3) maps as the
/// translated modes do, but a mapping only pins the memory, and its IOVA
/// is the key physical_address() asks the kernel with
/// (IOMMU_IOAS_NOIOMMU_GET_PA); the device is given the physical address.
/// The kernel pins a container's mappings, and so knows their physical
/// addresses, only while a device is attached to it: from the first
/// assignment to the last release, which tell the IovaUsers
/// (physical_addresses()).
///
/// Errors name the device, group, mode and IOVA concerned, and what to do.
/// A failed assign_device or map leaves nothing behind: no fd, group
/// attachment, IOMMU model or mapping.
///
/// Thread-safety: the control path is serialized by one lock per process,
/// Vfio::control_lock() (the "EAL lock", a recursive mutex: RecursiveLock,
/// recursive_lock.hpp): every public method of Vfio and Container takes it,
/// and so do EAL memory growth and the multi-process server's handlers
/// (lib/eal/eal.cpp), so a secondary attaching never sees a half-made
/// container, device or mapping. Call them from any thread. What they
/// return by pointer or reference (Device*, Container&, devices(),
/// containers()) stays valid only until the matching release/destroy, which
/// the caller must order itself: hold control_lock() across the lookup and
/// the use when another thread may release. The data path takes no lock:
/// Device::fd() and what is built on it (BAR access, IRQ eventfds) are
/// plain reads.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vfiokit/eal/error.hpp"
#include "vfiokit/eal/pci_address.hpp"
#include "vfiokit/eal/recursive_lock.hpp"
#include "vfiokit/eal/sysfs.hpp"
#include "vfiokit/eal/uuid.hpp"
#include "vfiokit/eal/vfio/device_ops.hpp"
#include "vfiokit/eal/vfio/dma_table.hpp"
#include "vfiokit/eal/vfio/probe.hpp"
#include "vfiokit/eal/vfio/share.hpp"
#include "vfiokit/eal/vfio/syscalls.hpp"
#include "vfiokit/eal/vfio/types.hpp"

namespace vfiokit::vfio {

class ContainerBackend;
class BackendDevice;
class Container;
class Vfio;
/// A backend's map and unmap ioctls as data, for Container's per-call path
/// (private: lib/eal/vfio/dma_path.hpp).
struct DmaPath;
// Host unit tests of the front end (container_test.cpp): builds a Vfio
// around a fake ContainerBackend. Not part of the API.
struct VfioTesting;
// The handover (handover.cpp) changes who owns the kernel objects. Not
// part of the API.
struct HandoverAccess;

/// How the VFIO front end picks its mode.
struct Options {
    /// nullopt: automatic (cdev where the kernel offers it, else group, else
    /// no-IOMMU). Set by `--vfio-mode` or VFIOKIT_VFIO_MODE.
    std::optional<Mode> mode;
    /// group and compat: type1 flavour (`--vfio-type1=auto|v2|v1`).
    Type1 type1 = Type1::automatic;
    /// Where sysfs and /dev are read for device facts (tests; "" = /).
    std::string sysroot;
};

/// Parses a mode name: auto|cdev|group|compat|noiommu|cdev-noiommu. "auto" gives nullopt.
[[nodiscard]] Result<std::optional<Mode>> parse_mode(std::string_view s);
/// Parses a `--vfio-type1` value: auto|v2|v1.
[[nodiscard]] Result<Type1> parse_type1(std::string_view s);
/// Applies VFIOKIT_VFIO_MODE and VFIOKIT_VFIO_TYPE1 from the environment
/// (options given on the command line win: call this first).
[[nodiscard]] Result<void> apply_environment(Options& o);

/// The mode a process gets, and why (choose_mode()).
struct ModeChoice {
    Mode mode;
    std::string reason;  ///< "forced (...)" or why auto picked it
};
/// The mode a process with these options gets, from sysfs and /dev alone:
/// forced modes are checked for what the kernel lacks (kernel option, node,
/// module parameter, permission); auto follows the devices bound to
/// vfio-pci (cdev, else group, else cdev-noiommu, else noiommu), else the kernel's facilities.
[[nodiscard]] Result<ModeChoice> choose_mode(const sysfs::Root& root, const Options& o);

/// A user of a container's IOVA policy that can move its mappings: EAL
/// memory places its segments with choose_iova() and, asked by
/// require_dma_mask(), moves those above a device's mask under it. Called
/// with the control lock held; the user may call back into the container.
class IovaUser {
public:
    virtual ~IovaUser() = default;
    /// Makes every mapping of this user reachable by a device with `mask`
    /// (the last byte's IOVA <= mask): moves them, or fails with ERANGE
    /// naming `who`, the mask and the range that cannot move. In no-IOMMU
    /// mode (nothing translates) it checks the physical addresses instead.
    [[nodiscard]] virtual Result<void> meet_dma_mask(Container& c, std::uint64_t mask,
                                                     std::string_view who) = 0;
    /// cdev no-IOMMU: `c` has just been given its first device (`known`),
    /// so the kernel now pins its mappings and reports their physical
    /// addresses (Container::physical_address): a user that keeps physical
    /// addresses reads them now; a failure makes the assignment fail (the
    /// device is released again, and the user is told !known). Or `c` has
    /// lost its last device (release_device; !known): the kernel has
    /// unpinned the memory, so its physical addresses are no longer
    /// guaranteed, and a user forgets them until the next device.
    [[nodiscard]] virtual Result<void> physical_addresses(Container& c, bool known) {
        (void)c, (void)known;
        return {};
    }
};

/// A slice of a device's BAR mapped into a container for peer-to-peer DMA
/// (Container::map_device_bar).
struct BarMapping {
    std::uint64_t iova = 0;
    std::uint64_t len = 0;
    PciAddress device;         ///< the exporter
    unsigned bar = 0;
    std::uint64_t offset = 0;  ///< in the BAR
    /// The kernel has revoked the exporter's dma-buf since the mapping was
    /// made: the exporter was released, or reset through its handle. The
    /// IOVA stays taken; DMA there no longer reaches the BAR (the IOMMU
    /// blocks and reports it); unmap() removes the mapping.
    bool revoked = false;
};

/// A device assigned to a container. Owned by its container; valid until
/// released or the container is destroyed.
///
/// Its operations (region info, region read/write and mmap, IRQs, reset,
/// features: device_ops.hpp) are reached through ops(), or through handle(),
/// a shared reference that outlives the Device: when the device is released,
/// the handle is marked released, the backend closes the device, and every
/// later call through the handle fails with ENODEV "device `<BDF>` was
/// released" without reaching the kernel. Bars, IrqSets and PciDevices hold
/// such a handle. There is no device fd here: how a backend reaches the
/// device is its own business.
///
/// Thread-safety: immutable after assignment; read it from any thread while
/// it is assigned (its handle's operations: see device_ops.hpp).
class Device {
public:
    [[nodiscard]] PciAddress address() const { return addr_; }
    /// The device's operations; valid as long as the Device.
    [[nodiscard]] DeviceHandle& ops() const { return *handle_; }
    /// A shared reference to them, safe to keep past the release.
    [[nodiscard]] std::shared_ptr<DeviceHandle> handle() const { return handle_; }
    [[nodiscard]] std::optional<unsigned> iommu_group() const { return group_; }
    [[nodiscard]] Container& container() const { return *container_; }
    /// SR-IOV PF: sets the VF token its VFs open with (DeviceHandle::
    /// set_vf_token; doc/vfio.md "VF tokens").
    [[nodiscard]] Result<void> set_vf_token(const Uuid& token) const {
        return handle_->set_vf_token(token);
    }
    /// Marks the handle released and releases the device in the backend.
    ~Device();
    Device(const Device&) = delete;
    Device& operator=(const Device&) = delete;

private:
    friend class Container;
    friend class Vfio;
    Device(PciAddress a, std::optional<unsigned> g, Container* c, std::unique_ptr<BackendDevice> b);
    PciAddress addr_;
    std::optional<unsigned> group_;
    Container* container_;
    // Owned by handle_ until the release; for the front end's own use
    // (the fd exported to secondaries).
    BackendDevice* backend_;
    std::shared_ptr<DeviceHandle> handle_;
};

/// What a process that imported a container (Vfio::import_shared) tells
/// the container's owner about the mappings it makes there, so that the
/// owner can unmap them if the process dies without doing so (its pages
/// stay pinned in the owner's container otherwise). doc/multiprocess.md,
/// "A secondary's own mappings".
struct DmaReport {
    /// intent: about to map (sent before the ioctl); mapped: the map
    /// succeeded; unmapped: the range is no longer mapped (an unmap, or a
    /// map that failed after its intent).
    enum class Kind { intent, mapped, unmapped };
    Kind kind = Kind::intent;
    /// The container's position in the exporter's list (the order it was
    /// imported in; 0 is the default container).
    std::uint32_t container = 0;
    std::uint64_t iova = 0;  ///< first byte of the range
    std::uint64_t len = 0;   ///< bytes
};
/// Sends a DmaReport to the owner. A failed intent fails the map before the
/// kernel is asked; failures of the other two are ignored (the owner's
/// cleanup tolerates a range that is already gone).
using DmaReporter = std::function<Result<void>(const DmaReport&)>;

/// One IO address space and its devices, with vfiokit's DMA semantics and
/// IOVA policy (see the file's description).
/// Thread-safety: every method takes Vfio::control_lock() (see the top).
class Container {
public:
    [[nodiscard]] Mode mode() const;
    [[nodiscard]] bool is_default() const { return default_; }
    [[nodiscard]] std::string describe() const;
    /// False in the no-IOMMU modes: devices are given physical addresses.
    [[nodiscard]] bool translates() const;
    /// Whether memory is mapped into the container: true where an IOMMU
    /// translates and in cdev no-IOMMU (mapping pins the memory there);
    /// false in group no-IOMMU, where map() and the IOVA calls are refused.
    [[nodiscard]] bool maps_memory() const;
    /// cdev no-IOMMU: the kernel reports the physical addresses of what is
    /// mapped (maps_memory() and not translates()).
    [[nodiscard]] bool reports_physical() const;
    /// cdev no-IOMMU: the physical address of the byte mapped at `iova` and
    /// how many bytes from there (at most `max_len`, never past the end of
    /// its mapping) are physically contiguous, from the kernel
    /// (IOMMU_IOAS_NOIOMMU_GET_PA). ENOTSUP in other modes, ENOENT when
    /// nothing is mapped at `iova`, EAGAIN while no device is attached (the
    /// kernel pins the memory, and knows where it lies, only then).
    [[nodiscard]] Result<PhysicalRange> physical_address(std::uint64_t iova,
                                                         std::uint64_t max_len = ~0ULL) const;
    /// The same for every byte of [iova, iova+len), which must lie inside
    /// one mapping: its physically contiguous pieces, in order.
    [[nodiscard]] Result<std::vector<PhysicalRange>> physical_ranges(std::uint64_t iova,
                                                                     std::uint64_t len) const;

    [[nodiscard]] Result<void> map(std::uint64_t vaddr, std::uint64_t iova, std::uint64_t len);
    /// Like map(), for memory backed by a file: where the kernel has
    /// IOMMU_IOAS_MAP_FILE (cdev, Linux 6.13+) the range is mapped from `fd`
    /// at `offset`; elsewhere, and after the kernel once answered that it
    /// lacks it, by `vaddr` (which must map the same file range).
    [[nodiscard]] Result<void> map_file(std::uint64_t vaddr, int fd, std::uint64_t offset,
                                        std::uint64_t iova, std::uint64_t len);
    /// How many mappings went in by file so far; and whether the container
    /// has learned that it cannot map by file (the kernel or mode lacks it).
    [[nodiscard]] std::size_t file_maps() const { return file_maps_; }
    [[nodiscard]] bool file_maps_unsupported() const { return file_maps_unsupported_; }
    /// Peer-to-peer DMA: maps [offset, offset+len) of BAR `bar` of device
    /// `exporter` at `iova`, so that this container's devices reach that
    /// device's memory by DMA (a NIC writing into a GPU's or an NVMe CMB's
    /// BAR). The exporter is any device of this process, in this container
    /// or another; the BAR must be a memory BAR; offset, len and iova are
    /// multiples of the page size, and the IOVA rules of map() apply. Named
    /// for what is mapped, as map_file() is: the memory is the device's,
    /// not the process's.
    ///
    /// How: the slice is exported as a dma-buf (VFIO_DEVICE_FEATURE_DMA_BUF
    /// on the exporter) and the dma-buf mapped with IOMMU_IOAS_MAP_FILE. The
    /// IOAS keeps its own reference to the dma-buf while mapped, so the fd
    /// is closed before this returns: nothing else is held. On failure
    /// nothing is left (no fd, no mapping).
    ///
    /// Where it cannot, ENOTSUP with the reason: every mode but cdev (the
    /// group and compat containers' type1 interface maps user addresses
    /// only; nothing translates in the no-IOMMU modes), and kernels before
    /// Linux 6.19 or without CONFIG_VFIO_PCI_DMABUF.
    ///
    /// The mapping is in the table like any other (lookup(), mappings():
    /// vaddr 0) and goes with unmap(), unmap_all() and the container; its
    /// device side is in bar_mappings(). The kernel revokes it when the
    /// exporter is released or reset (also when its memory decoding is
    /// turned off, which vfiokit does not track): from then on DMA to the
    /// IOVA faults in the IOMMU, the mapping shows `revoked`, and unmap()
    /// still removes it (the IOVA stays taken until then). Map it again
    /// after a reset.
    [[nodiscard]] Result<void> map_device_bar(Device& exporter, unsigned bar, std::uint64_t offset,
                                              std::uint64_t len, std::uint64_t iova);
    /// The BAR mappings of this container, by IOVA.
    [[nodiscard]] std::vector<BarMapping> bar_mappings() const;
    [[nodiscard]] Result<void> unmap(std::uint64_t iova, std::uint64_t len);
    [[nodiscard]] Result<void> unmap_all();

    /// The mapping containing `iova`, if any: O(log n). Takes the control
    /// lock: the data path translates with Memory::virt2iova instead.
    [[nodiscard]] std::optional<DmaMapping> lookup(std::uint64_t iova) const;
    [[nodiscard]] std::size_t mapping_count() const;
    [[nodiscard]] std::vector<DmaMapping> mappings() const;

    /// The IOVA ranges the kernel accepts. Group and compat mode know them
    /// only once a device is assigned (the IOMMU model needs a group):
    /// before that this fails with EAGAIN, and map() checks ranges at the
    /// first assignment instead (which fails, naming the mapping, if one is
    /// outside them).
    [[nodiscard]] Result<std::vector<IovaRange>> iova_ranges();
    /// A free IOVA range of `len` bytes, aligned to `align`, inside the
    /// kernel's ranges, with its last byte at or below `dma_mask` (e.g.
    /// 0x0fffffff for a 28-bit device). Does not map: pass it to map().
    [[nodiscard]] Result<std::uint64_t> alloc_iova(std::uint64_t len, std::uint64_t dma_mask,
                                                   std::uint64_t align = 4096);

    /// IOVA policy (see the top). The IOVA that a mapping of [vaddr,
    /// vaddr+len) should get: vaddr itself when that range is free, at or
    /// above 1 MiB, inside the kernel's IOVA ranges (group-style before the
    /// first device: the x86 layout below and above the MSI window) and
    /// under dma_mask(); otherwise alloc_iova(len, dma_mask(), align).
    /// Does not map. ENOTSUP in group no-IOMMU mode. In cdev no-IOMMU the
    /// IOVA is only a lookup key, so the DMA mask does not apply to it.
    [[nodiscard]] Result<std::uint64_t> choose_iova(std::uint64_t vaddr, std::uint64_t len,
                                                    std::uint64_t align = 4096);
    /// The narrowest DMA mask required so far (~0: none).
    [[nodiscard]] std::uint64_t dma_mask() const;
    /// A device that reaches only IOVAs <= `mask` uses this container
    /// (`who` names it in messages: "edu 0000:00:03.0"). Asks every
    /// IovaUser to move its mappings under the mask, then checks every
    /// mapping of the container: one still above it fails with ERANGE
    /// naming `who`, the mask and the mapping's range, and the mask is not
    /// kept (cdev no-IOMMU: the mapping's physical addresses are checked,
    /// once a device is attached). On success the mask stays in force for choose_iova() until the
    /// container is destroyed. No-IOMMU: the IovaUsers check physical
    /// addresses (nothing is mapped). EINVAL for a mask below 0x1fffff
    /// (IOVAs are handed out from 1 MiB up). Idempotent: calling it again
    /// with the same mask moves nothing. Drivers call it from probe
    /// (directly, or the bus with the mask of the driver's registry entry).
    /// map() itself does not check masks: an explicit IOVA is the caller's.
    [[nodiscard]] Result<void> require_dma_mask(std::uint64_t mask, std::string_view who);
    /// Not owned; must be removed before it goes.
    void add_iova_user(IovaUser* u);
    void remove_iova_user(IovaUser* u);

    /// The list itself is only stable under control_lock().
    [[nodiscard]] const std::vector<std::unique_ptr<Device>>& devices() const { return devices_; }
    /// Stops every device of the container from mastering the bus: clears
    /// Bus Master Enable (bit 2 of the PCI command register, PCI Local Bus
    /// spec 6.2.2) through each device's config region, so none can start
    /// another DMA. For no-IOMMU memory about to go back to the kernel,
    /// which no IOMMU mapping protects: a driver sets the bit again when it
    /// starts its device. Every device is tried; the first error (naming
    /// the device) is returned. Takes the control lock.
    [[nodiscard]] Result<void> stop_bus_mastering();

    /// Another process's container, adopted by Vfio::import_shared(): see
    /// the ownership rules in share.hpp (assign refused; inherited mappings
    /// cannot be unmapped here; unmap_all() and destruction remove only the
    /// mappings this process made).
    [[nodiscard]] bool imported() const { return imported_; }
    /// Whether the mapping starting at `iova` came with the import.
    [[nodiscard]] bool inherited(std::uint64_t iova) const { return inherited_.contains(iova); }
    /// Imported: this container's position in the exporter's list (0: the
    /// default container). 0 for a container of this process.
    [[nodiscard]] std::uint32_t import_index() const { return import_index_; }

    /// The owner's side of DmaReport: unmaps [iova, iova+len), which another
    /// process that imported this container mapped there and did not unmap
    /// (it died). Asks the kernel directly: the range is in no table of
    /// this process. Returns the bytes the kernel unmapped; ENOENT when
    /// nothing was mapped there (the other process had already unmapped
    /// it, or died before its map ioctl). EPERM when the range overlaps a
    /// mapping of this process's own table (never unmapped for another),
    /// ENOTSUP where nothing is mapped (group no-IOMMU), EAGAIN while a
    /// group-style container has no IOMMU model (nobody can have mapped).
    /// The kernel lets any holder of the container unmap any range (type1
    /// since Linux 5.x keeps no check of the mapper's mm on unmap; iommufd
    /// never had one); the lab shows it for every mode.
    [[nodiscard]] Result<std::uint64_t> unmap_foreign(std::uint64_t iova, std::uint64_t len);

    ~Container();
    Container(const Container&) = delete;
    Container& operator=(const Container&) = delete;

private:
    friend class Vfio;
    friend struct VfioTesting;
    friend struct HandoverAccess;
    Container(Vfio* v, std::unique_ptr<ContainerBackend> b, bool is_default);
    // Handover, the old process: another process now owns the IOAS, its
    // mappings and devices; this one only closes its fds when it goes
    // (no unmap, DETACH or IOMMU_DESTROY).
    void let_go();
    // Handover, the new process: the adopted container becomes this
    // process's, as if it had made it (every mapping by file).
    void take_charge();
    struct FileRef {
        int fd;
        std::uint64_t offset;
    };
    Result<void> map_impl(std::uint64_t vaddr, std::uint64_t iova, std::uint64_t len,
                          const FileRef* file);
    // unmap() for everything its inline path does not take: the checks
    // with their errors, imported containers, peer BARs, the middle of the
    // table.
    Result<void> unmap_impl(std::uint64_t iova, std::uint64_t len);
    // The errors of an ioctl that map() and unmap() issued themselves
    // through path_ (cold, out of line).
    Error map_failed(int err, std::uint64_t vaddr, std::uint64_t iova, std::uint64_t len) const;
    Error unmap_failed(int err, std::uint64_t iova, std::uint64_t len) const;
    // The map ioctl itself: by file where the kernel can (by_file set),
    // by address otherwise.
    Result<void> map_kernel(std::uint64_t vaddr, std::uint64_t iova, std::uint64_t len,
                            const FileRef* file, bool& by_file);
    // Checks iova/len against kernel ranges and type1's entry limit.
    Result<void> check_limits(std::uint64_t iova, std::uint64_t len);
    // The same from what the container already holds, without building an
    // error: map()'s per-call path; false sends it to check_limits().
    [[nodiscard]] bool within_known_limits(std::uint64_t iova, std::uint64_t len) const;
    // Where IOVAs may be placed: the kernel's ranges once the backend knows
    // them, else the assumed x86 layout (kAssumedRanges).
    Result<std::vector<IovaRange>> placement_ranges();
    // Called after the backend gained or lost a device: ranges and entry
    // counts may have changed.
    void forget_limits();
    [[nodiscard]] std::string name() const;
    // Replays the table into a backend that just became ready; on failure
    // undoes what it mapped.
    Result<void> replay();
    // Imported containers: unmaps the mappings this process made.
    Result<void> unmap_own();

    Vfio* vfio_;
    bool default_;
    // Declared before devices_: devices are released first (destroyed in
    // reverse order), while the backend's container/IOAS still exists.
    std::unique_ptr<ContainerBackend> backend_;
    // The backend's DmaPath (owned by it), or one with no protocol: what
    // map() and unmap() issue inline on their per-call path.
    DmaPath* path_;
    DmaTable table_;
    std::vector<std::unique_ptr<Device>> devices_;
    std::optional<std::vector<IovaRange>> ranges_;  // cached until the next attach/release
    std::optional<std::uint32_t> entries_avail_;    // type1: entries left, kept up to date
    unsigned id_ = 0;                               // for messages: "container 1"
    std::size_t file_maps_ = 0;
    bool file_maps_unsupported_ = false;
    bool imported_ = false;
    std::uint32_t import_index_ = 0;     // imported: position in the exporter's list
    std::set<std::uint64_t> inherited_;  // imported: IOVAs of the exporter's mappings
    std::uint64_t dma_mask_ = ~0ULL;     // narrowest required mask (require_dma_mask)
    std::vector<IovaUser*> iova_users_;
    // map_device_bar's mappings, by IOVA (each also in table_): the
    // exporter's handle tells whether it was released, and its reset count
    // whether it was reset since.
    struct PeerBar {
        PciAddress device;
        unsigned bar = 0;
        std::uint64_t offset = 0;
        std::shared_ptr<DeviceHandle> exporter;
        std::uint64_t resets = 0;  // exporter->resets() when mapped
    };
    std::map<std::uint64_t, PeerBar> bars_;
};

/// The VFIO subsystem of one process: its mode, containers and devices (see
/// the file's description).
/// Thread-safety: every public method takes control_lock() (see the top).
class Vfio {
public:
    /// Chooses the mode and opens the default container. Fails with the
    /// missing piece when a forced mode is unavailable (kernel option, device
    /// node, module parameter, permission).
    [[nodiscard]] static Result<std::unique_ptr<Vfio>> create(const Options& o);
    ~Vfio();

    /// get_mode(): the mode every container of this process uses.
    [[nodiscard]] Mode mode() const { return mode_; }
    /// Why this mode: "forced by `--vfio-mode`" or the automatic reasoning.
    [[nodiscard]] const std::string& mode_reason() const { return mode_reason_; }
    [[nodiscard]] Type1 type1() const { return options_.type1; }

    [[nodiscard]] Container& default_container() { return *containers_.front(); }
    [[nodiscard]] Result<Container*> create_container();
    /// Releases the container's devices and mappings. The default container
    /// cannot be destroyed.
    [[nodiscard]] Result<void> destroy_container(Container& c);
    [[nodiscard]] const std::vector<std::unique_ptr<Container>>& containers() const {
        return containers_;
    }

    /// `spec` is "0000:00:03.0" or "0000:00:03.0 vf_token=`<UUID>`". The
    /// token goes to vfio-pci with the open, in every mode (group-style: in
    /// the device name; cdev: VFIO_DEVICE_BIND_FLAG_TOKEN, Linux 6.17+,
    /// EOPNOTSUPP naming the kernel before that), which checks it against
    /// the PF's (probe.hpp, VfToken). On an SR-IOV PF bound to vfio-pci the
    /// token is then set as the PF's VF token (Device::set_vf_token), so
    /// that the PF's VFs open with exactly that UUID from then on. EACCES
    /// when vfio-pci refuses a missing or wrong token, naming the PF and
    /// what to give.
    [[nodiscard]] Result<Device*> assign_device(Container& c, std::string_view spec);
    [[nodiscard]] Result<void> release_device(Device& d);
    [[nodiscard]] Device* find_device(PciAddress a) const;

    /// Sharing with other processes (share.cpp; encoding and ownership rules
    /// in share.hpp).
    ///
    /// Describes every container, device and mapping, with the fds another
    /// process needs. The fds are borrowed (see SharedState). E2BIG when a
    /// count does not fit the encoding.
    [[nodiscard]] Result<SharedState> export_shared() const;
    /// A Vfio equivalent to the exporter's: same mode, containers (default
    /// first), devices and mapping tables, made of the given fds (in the
    /// order SharedState::fds had). Takes every fd, used or not. EPROTO when
    /// the bytes are malformed or an fd is not what they say (each fd's kind
    /// is checked with a harmless ioctl); nothing is left open on failure.
    [[nodiscard]] static Result<std::unique_ptr<Vfio>> import_shared(
        std::span<const std::uint8_t> bytes, std::vector<Fd> fds);
    /// For a process given fds by a broker (see ExternalFds). cdev: the
    /// iommufd becomes the process's; the default container is a new IOAS
    /// in it; each device cdev is bound (VFIO_DEVICE_BIND_IOMMUFD) and
    /// attached to it, and is this process's to release. Group-style: the
    /// container fd becomes the default container and each group fd is set
    /// into it, as assign_device() would after opening the nodes. Nothing in
    /// /dev is opened. `o` gives the type1 flavour and the sysfs root; its
    /// mode is ignored (x.mode is used). Takes ownership of every fd in `x`.
    [[nodiscard]] static Result<std::unique_ptr<Vfio>> from_external_fds(const ExternalFds& x,
                                                                        const Options& o = {});

    /// The EAL lock: serializes the control path of this process (every
    /// Vfio and Container method, EAL memory growth, the multi-process
    /// handlers). Recursive, so a control operation may call another (a
    /// heap growing maps its segment). Never held on the data path.
    [[nodiscard]] RecursiveLock& control_lock() const { return control_; }

    /// In a process that imported its containers: who hears of the
    /// mappings it makes in them (DmaReport). The EAL sets it in a
    /// secondary to report to the primary over the channel. Empty (the
    /// default): nothing is reported.
    void set_dma_reporter(DmaReporter r);
    /// Unmaps every mapping this process made in its imported containers
    /// (what destroying the Vfio does), reporting each to the DmaReporter:
    /// a secondary calls it before it leaves the primary's channel. The
    /// first error is returned; the others are still tried.
    [[nodiscard]] Result<void> unmap_own();

    Vfio(const Vfio&) = delete;
    Vfio& operator=(const Vfio&) = delete;

private:
    friend struct VfioTesting;
    friend struct HandoverAccess;
    friend class Container;  // reports its mappings through dma_reporter_
    Vfio() = default;
    Result<std::unique_ptr<ContainerBackend>> make_backend();
    // assign_device(), with the node already open (from_external_fds).
    Result<Device*> assign(Container& c, std::string_view spec, Fd* given);

    mutable RecursiveLock control_;  // the EAL lock; outlives everything below
    Options options_;
    sysfs::Root root_;
    Mode mode_ = Mode::group;
    std::string mode_reason_;
    // Modes whose row says process_iommufd (cdev): one iommufd per process,
    // shared by its containers; declared before containers_.
    Fd iommufd_;
    std::vector<std::unique_ptr<Container>> containers_;  // [0] is the default
    unsigned next_container_id_ = 1;
    DmaReporter dma_reporter_;  // imported containers report their own mappings here
};

}  // namespace vfiokit::vfio

// The backend interface: everything that differs between VFIO modes.
//
// The front end (container.cpp, vfio.cpp) owns the DMA mapping table, the
// IOVA checks and allocator, the group/container bookkeeping across
// containers, and rollback of multi-step operations; a backend only speaks
// its mode's kernel protocol. Nothing outside a backend's own file knows its
// concrete type. Every backend method that touches the kernel goes through
// the syscall seam (syscalls.hpp), so faults can be injected.
#pragma once

#include <cerrno>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vfiokit/eal/error.hpp"
#include "vfiokit/eal/pci_address.hpp"
#include "vfiokit/eal/sysfs.hpp"
#include "vfiokit/eal/vfio/device_ops.hpp"
#include "vfiokit/eal/vfio/probe.hpp"
#include "vfiokit/eal/vfio/syscalls.hpp"
#include "vfiokit/eal/vfio/types.hpp"

namespace vfiokit::vfio {

struct DmaPath;  // dma_path.hpp

// What the front end knows about a device before asking a backend to open it
// (read from sysfs by the front end).
struct DeviceRequest {
    PciAddress addr;
    std::optional<unsigned> group;       // IOMMU group number (vfio's own for no-IOMMU)
    std::optional<std::string> vfio_dev; // "vfio3": the cdev name, when vfio-pci registered one
    std::string vf_token;                // UUID text; empty when none was given
    const sysfs::Root* root = nullptr;   // for messages that need sysfs (group-mates)
    // Vfio::from_external_fds: the node this process was given instead of
    // opening it (cdev: the device cdev; group-style: the device's group).
    // Not owned by the request: attach() moves from it, whether it succeeds
    // or not. An empty Fd here means "given, but already taken" (EBADF).
    Fd* given = nullptr;
};

// What Vfio::export_shared() needs of a container. The fds are borrowed
// from the backend.
struct SharedContainer {
    int container_fd = -1;          // group-style: /dev/vfio/vfio (compat: /dev/iommu)
    std::uint32_t iommu_model = 0;  // group-style: the VFIO_SET_IOMMU id
    bool model_set = false;         // group-style: set (a group is in the container)
    std::uint32_t ioas_id = 0;      // cdev: the IOAS in the process's iommufd
    struct Group {
        unsigned number = 0;
        int fd = -1;
    };
    std::vector<Group> groups;      // group-style: the open groups
};

// A device opened and attached to a backend's container, with its
// operations (device_ops.hpp: region info, region read/write and mmap, IRQ
// info and set_irqs, reset, features). Destroying it releases the device
// in the order the kernel needs (cdev: detach, then close, which unbinds;
// group: close the device fd, and when it was the group's last device,
// unset the group's container and close the group).
//
// The front end wraps it in a DeviceHandle, so its operations are only
// called while it is alive. The kernel backends share one implementation of
// the operations over the device fd (kernel_device.hpp); a fake for tests,
// or a backend that is not the kernel, implements DeviceOps itself and
// answers what it cannot do with not_supported(op, "<mode> mode").
class BackendDevice : public DeviceOps {
public:
    // The fd another process is given for this device (share.cpp), owned
    // by the device; -1 when the backend has none to give (exporting the
    // device then fails with ENOTSUP).
    [[nodiscard]] virtual int fd() const = 0;
    // Handover (handover.hpp): whether this process releases the device
    // in the kernel when it goes (cdev: DETACH before the close), or only
    // closes its fd. The old process of a handover lets go (false) and the
    // new one takes charge (true) of a device it adopted. Backends without
    // a handover ignore it.
    virtual void set_owner(bool owner) { (void)owner; }
};

// One IO address space and its devices, in one mode.
class ContainerBackend {
public:
    virtual ~ContainerBackend() = default;

    [[nodiscard]] virtual Mode mode() const = 0;
    // One line for logs and the inventory: "type1v2 container fd 7".
    [[nodiscard]] virtual std::string describe() const = 0;

    // Opens the device and puts it in this container. On failure nothing the
    // call acquired is left behind (fds, group attachment, IOMMU model).
    [[nodiscard]] virtual Result<std::unique_ptr<BackendDevice>> attach(const DeviceRequest& req) = 0;

    // Whether map/unmap/iova_ranges can be issued now. Group-style backends
    // have no IOMMU model until their first group is attached, and lose it
    // (with every mapping) when their last group leaves; the front end then
    // replays its mapping table on the next attach.
    [[nodiscard]] virtual bool dma_ready() const = 0;
    // False for no-IOMMU: the device sees physical addresses.
    [[nodiscard]] virtual bool translates() const = 0;
    // Whether memory is mapped into this container at all: where an IOMMU
    // translates, and in cdev no-IOMMU, where nothing translates but a
    // mapping pins the memory and its IOVA is the key the kernel's physical
    // address lookup goes by (physical_address()). Group no-IOMMU maps
    // nothing. map/unmap/iova_ranges are only called when this is true.
    [[nodiscard]] virtual bool maps_memory() const { return translates(); }
    // cdev no-IOMMU: the physical address of the byte mapped at `iova`, and
    // how many bytes from there, at most `max_len`, are physically
    // contiguous (IOMMU_IOAS_NOIOMMU_GET_PA). The kernel knows them only
    // while a device is attached (attaching pins the mapped memory): EAGAIN
    // before. ENOTSUP in every other mode.
    [[nodiscard]] virtual Result<PhysicalRange> physical_address(std::uint64_t iova,
                                                                 std::uint64_t max_len) {
        (void)iova, (void)max_len;
        return fail(ENOTSUP, "physical address lookup: not in " + std::string(to_string(mode())) +
                                 " mode");
    }

    // The front end has already checked alignment, overlap and IOVA ranges.
    [[nodiscard]] virtual Result<void> map(std::uint64_t vaddr, std::uint64_t iova,
                                           std::uint64_t len) = 0;
    // Maps `len` bytes of the file `fd` from `offset` at `iova`, without a
    // user address: the kernel pins the file's pages directly
    // (IOMMU_IOAS_MAP_FILE, Linux 6.13+). ENOTSUP when the backend or the
    // running kernel cannot; the front end then maps by address. Issues no
    // syscall once it has learned that the kernel lacks it.
    [[nodiscard]] virtual Result<void> map_file(int fd, std::uint64_t offset, std::uint64_t iova,
                                                std::uint64_t len) {
        (void)fd, (void)offset, (void)iova, (void)len;
        return fail(ENOTSUP, "map by file: not in " + std::string(to_string(mode())) + " mode");
    }
    // Peer-to-peer DMA (Container::map_device_bar): whether this container
    // maps dma-bufs at all, asked before a BAR is exported. ENOTSUP with
    // the reason and what to use instead where it does not: the default,
    // for every backend but cdev's (translated) IOAS.
    [[nodiscard]] virtual Result<void> maps_dma_bufs() const {
        return fail(dma_bufs_unsupported());
    }
    // Maps the first `len` bytes of the dma-buf `fd` (a BAR slice from
    // DeviceOps::export_dma_buf) at `iova`: IOMMU_IOAS_MAP_FILE, which
    // takes VFIO dma-bufs from Linux 6.19. The IOAS holds its own
    // reference to the dma-buf until the mapping goes (iommufd
    // iopt_map_file_pages keeps dma_buf_get's), so the caller may close
    // `fd` at once. The front end has checked alignment, overlap and IOVA
    // ranges.
    [[nodiscard]] virtual Result<void> map_dma_buf(int fd, std::uint64_t iova, std::uint64_t len) {
        (void)fd, (void)iova, (void)len;
        return fail(dma_bufs_unsupported());
    }
    // Unmaps whole mappings inside [iova, iova+len); returns bytes unmapped.
    [[nodiscard]] virtual Result<std::uint64_t> unmap(std::uint64_t iova, std::uint64_t len) = 0;
    // The per-call path (dma_path.hpp): the map and unmap ioctls of map()
    // and unmap() as data, which the front end issues inline. nullptr where
    // the backend has none (no-IOMMU groups, fakes, backends that are not
    // the kernel): the front end then calls map() and unmap(). The object
    // is the backend's, lives as long as it, and follows its state (no
    // protocol while a group container has no IOMMU model; the page size).
    [[nodiscard]] virtual DmaPath* dma_path() { return nullptr; }
    // The errors map() and unmap() return when their ioctl fails with
    // `err`: what the front end returns when an ioctl it issued through
    // dma_path() fails. Out of line and cold: only failures build them.
    [[nodiscard]] virtual Error map_error(int err, std::uint64_t vaddr, std::uint64_t iova,
                                          std::uint64_t len) const {
        (void)vaddr, (void)iova, (void)len;
        return Error(err, "map");
    }
    [[nodiscard]] virtual Error unmap_error(int err, std::uint64_t iova, std::uint64_t len) const {
        (void)iova, (void)len;
        return Error(err, "unmap");
    }
    // Unmaps everything; returns bytes unmapped.
    [[nodiscard]] virtual Result<std::uint64_t> unmap_all() = 0;

    // The IOVA ranges the kernel accepts (type1 IOVA-range capability,
    // IOMMU_IOAS_IOVA_RANGES). Requires dma_ready().
    [[nodiscard]] virtual Result<std::vector<IovaRange>> iova_ranges() = 0;
    // type1's remaining DMA mapping entries (DMA-avail capability); nullopt
    // where the backend has no such limit. Requires dma_ready().
    [[nodiscard]] virtual Result<std::optional<std::uint32_t>> dma_entries_avail() = 0;
    // Page size granularity of the IOMMU (smallest supported page): a power
    // of two, which the front end's alignment checks rely on.
    [[nodiscard]] virtual std::uint64_t page_size() const { return 4096; }

    // Sharing with other processes (share.cpp). share(): this container's
    // fds and ids. adopt_device(): a device another process opened and put
    // in this container, given as its fd (and, group-style, its group's fd
    // for the first device of a group; otherwise empty). Only for adopted
    // backends (below); releasing an adopted device closes its fds and
    // nothing else.
    [[nodiscard]] virtual SharedContainer share() const = 0;

    // Handover (handover.hpp). change_process(): moves the pinned-page
    // accounting of every mapping in the process's iommufd to the calling
    // process (IOMMU_IOAS_CHANGE_PROCESS); ENOTSUP with what it needs where
    // the mode or kernel has no such thing. set_owner(): whether this
    // process destroys the container's kernel object when it goes (false:
    // the process let go of it; true: it took charge of an adopted one).
    [[nodiscard]] virtual Result<void> change_process() {
        return fail(Error(ENOTSUP, "move pinned-page accounting to this process: not in " +
                                       std::string(to_string(mode())) + " mode")
                        .hint("a handover needs cdev mode (--vfio-mode=cdev) and a kernel "
                              "with IOMMU_IOAS_CHANGE_PROCESS (Linux 6.13+)"));
    }
    virtual void set_owner(bool owner) { (void)owner; }
    [[nodiscard]] virtual Result<std::unique_ptr<BackendDevice>> adopt_device(
        const DeviceRequest& req, Fd device, Fd group) = 0;

protected:
    // ENOTSUP for a BAR mapping in this mode, saying why and what works.
    [[nodiscard]] Error dma_bufs_unsupported() const {
        Error e(ENOTSUP, "map a device BAR for peer-to-peer DMA: not in " +
                             std::string(to_string(mode())) + " mode");
        if (!translates())
            e.hint("nothing translates without an IOMMU: give the device the BAR's physical "
                   "address (its line in /sys/bus/pci/devices/<BDF>/resource) instead");
        else
            e.hint("vfiokit maps a BAR from its dma-buf (VFIO_DEVICE_FEATURE_DMA_BUF), which "
                   "only an iommufd IOAS takes (IOMMU_IOAS_MAP_FILE): use cdev mode "
                   "(--vfio-mode=cdev) on Linux 6.19+; the type1 interface of group and compat "
                   "containers maps user addresses only");
        return e;
    }
};

// A group-style container fd from elsewhere.
//  - adopted (Vfio::import_shared): another process's live container. Its
//    IOMMU model `iommu_model` is set when `model_set`; the backend never
//    sets, unsets or empties it, and its groups are adopted with
//    adopt_device() and only closed, never taken out of the container.
//  - not adopted (Vfio::from_external_fds): a fresh container handed over
//    by a broker, used exactly as if this process had opened it.
struct GivenContainer {
    Fd fd;
    bool adopted = false;
    std::uint32_t iommu_model = 0;
    bool model_set = false;
};

// Kernel-facing settings shared by the containers of one process, and what
// a factory of the mode table (modes.hpp) is given.
struct BackendConfig {
    Type1 type1 = Type1::automatic;  // group and compat: which type1 flavour
    // The process's iommufd (/dev/iommu) in modes whose row says
    // process_iommufd (cdev): shared by every container, each an IOAS in it.
    // Not owned.
    int iommufd = -1;
    // Group-style: a container fd this process did not open (see
    // GivenContainer); the factory moves from it. nullptr: open the node.
    GivenContainer* given = nullptr;
    // Adopting an IOAS-style container (Vfio::import_shared): the IOAS in
    // `iommufd` that another process created.
    std::uint32_t ioas_id = 0;
};

// Factories, one per backend file; the mode table (modes.cpp) is their only
// caller. make_*: a fresh container; they open what it needs up front
// (group: /dev/vfio/vfio, or take c.given, and its API check; cdev: an IOAS
// in the shared iommufd) and fail with a message naming the missing piece.
// adopt_*: another process's container (Vfio::import_shared), never torn
// down here: group-style, c.given is set and adopted; cdev, the IOAS
// c.ioas_id of the (not owned) c.iommufd, which is checked to exist.
[[nodiscard]] Result<std::unique_ptr<ContainerBackend>> make_group_backend(const BackendConfig& c);
[[nodiscard]] Result<std::unique_ptr<ContainerBackend>> make_compat_backend(const BackendConfig& c);
[[nodiscard]] Result<std::unique_ptr<ContainerBackend>> make_noiommu_backend(const BackendConfig& c);
[[nodiscard]] Result<std::unique_ptr<ContainerBackend>> make_cdev_backend(const BackendConfig& c);
[[nodiscard]] Result<std::unique_ptr<ContainerBackend>> adopt_cdev_backend(const BackendConfig& c);
// cdev no-IOMMU: the cdev backend's protocol on /dev/vfio/devices/noiommu-vfioN,
// in an IOAS that does not translate (cdev.cpp).
[[nodiscard]] Result<std::unique_ptr<ContainerBackend>> make_cdev_noiommu_backend(const BackendConfig& c);
[[nodiscard]] Result<std::unique_ptr<ContainerBackend>> adopt_cdev_noiommu_backend(const BackendConfig& c);

}  // namespace vfiokit::vfio

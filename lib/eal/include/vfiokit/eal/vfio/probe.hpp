/// \file
/// Which VFIO modes the running kernel offers, globally and per device.
///
/// Everything here is read from sysfs and /dev: no device, group or container
/// is opened, so it is safe to call while another process owns the device.
/// Thread-safe: the functions keep no state; the results are values.
/// The same rules decide the automatic mode choice, so what the inventory tool
/// prints is what vfiokit would do.
///
/// Modes (named with the kernel's words; the mode table, lib/eal/vfio/
/// modes.cpp, holds each one's name, nodes, checks and backend):
/// \verbatim
///   group    legacy container /dev/vfio/vfio with /dev/vfio/<group>, type1 IOMMU
///   compat   /dev/vfio/<group> attached to an iommufd (/dev/iommu) instead of
///            /dev/vfio/vfio: the iommufd container-compatibility path
///   cdev     device node /dev/vfio/devices/vfioN bound to an iommufd
///   noiommu  /dev/vfio/noiommu-<group>: no translation, physical addresses;
///            needs vfio.enable_unsafe_noiommu_mode=1 and CAP_SYS_RAWIO
///   cdev-noiommu  /dev/vfio/devices/noiommu-vfioN bound to an iommufd whose
///            IOAS does not translate (Linux 7.3, CONFIG_IOMMUFD_NOIOMMU):
///            physical addresses from IOMMU_IOAS_NOIOMMU_GET_PA; needs
///            no-IOMMU mode enabled and CAP_SYS_RAWIO. Automatic choice
///            prefers it to noiommu where the device has such a cdev.
/// \endverbatim
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vfiokit/eal/pci_address.hpp"
#include "vfiokit/eal/sysfs.hpp"

namespace vfiokit::vfio {

/// A key into the mode table; each enumerator has exactly one row there.
enum class Mode { group, compat, cdev, noiommu, cdev_noiommu };

/// Every mode, in the table's order (the inventory's order).
[[nodiscard]] std::span<const Mode> all_modes();
/// The mode's one name ("cdev"); mode_from_string is its inverse.
[[nodiscard]] std::string_view to_string(Mode m);
/// The mode named `s` ("cdev"); nullopt for any other text.
[[nodiscard]] std::optional<Mode> mode_from_string(std::string_view s);

/// The kernel-wide facts, from /dev and /sys/module.
struct KernelSupport {
    bool vfio_container = false;    ///< /dev/vfio/vfio: CONFIG_VFIO_CONTAINER
    bool iommufd = false;           ///< /dev/iommu: CONFIG_IOMMUFD
    bool noiommu_built = false;     ///< module parameter exists: CONFIG_VFIO_NOIOMMU
    bool noiommu_enabled = false;   ///< enable_unsafe_noiommu_mode is Y
    bool vfio_pci = false;          ///< the vfio-pci driver is registered
    /// Whether no-IOMMU devices get a device cdev, /dev/vfio/devices/
    /// noiommu-vfioN (CONFIG_IOMMUFD_NOIOMMU, Linux 7.3+): what the devices
    /// on vfio-pci show (a VFIO device named noiommu-vfioN says yes; a
    /// no-IOMMU device registered as plain vfioN, which gets no node, says
    /// no), else the kernel release (7.3 or later). `noiommu_cdev_why` says
    /// which, for messages.
    bool noiommu_cdev = false;
    std::string noiommu_cdev_why;
    std::string release;            ///< /proc/sys/kernel/osrelease
    /// The process (not the kernel): CAP_SYS_RAWIO in its effective set
    /// (/proc/self/status CapEff), which opening a no-IOMMU device and
    /// IOMMU_IOAS_NOIOMMU_GET_PA need.
    bool raw_io = false;
    /// vfio-pci's enable_sriov module parameter (vfio_pci.enable_sriov=1 on
    /// the command line): without it, a PF bound to vfio-pci refuses
    /// sriov_numvfs (vfio_pci.c vfio_pci_sriov_configure). nullopt when the
    /// parameter is not there (no vfio-pci).
    std::optional<bool> vfio_pci_sriov;
};

/// The kernel-wide facts of the system at `root`.
[[nodiscard]] KernelSupport probe_kernel(const sysfs::Root& root);

/// Whether one mode is usable for a device, and why not.
struct ModeStatus {
    Mode mode;
    bool available = false;
    /// Why not, and what to change; for an available mode, the node used.
    std::string reason;
};

/// A device of an IOMMU group, and whether it keeps the group from VFIO.
struct GroupMember {
    PciAddress addr;
    std::string driver;  ///< empty when unbound
    /// Whether this member keeps the group from being used by VFIO: bound to
    /// a driver that does kernel DMA (anything but vfio-pci or a variant,
    /// pci-stub, pcieport, or no driver at all).
    bool blocks = false;
};

/// SR-IOV relations from sysfs (Documentation/ABI/testing/sysfs-bus-pci):
/// a physical function has sriov_totalvfs, sriov_numvfs and a virtfnN link
/// per enabled VF; a virtual function has a physfn link to its PF.
///
/// vfio-pci's VF token (drivers/vfio/pci/vfio_pci_core.c,
/// vfio_pci_validate_vf_token; vfio_pci_core_match_token_uuid in Linux
/// 6.17+, the same rules): a PF bound to vfio-pci has a token, a UUID
/// that its owner sets (VFIO_DEVICE_FEATURE_PCI_VF_TOKEN, or by opening the
/// PF with a token while none of its VFs is open). Then
///   - its VFs open only with that token (vfio-pci made them, so they know
///     their PF): EACCES without it or with another;
///   - the PF itself opens only with it while any of its VFs is open;
///   - a token given to a device that is neither, or to a VF whose PF is not
///     on vfio-pci, is refused (EINVAL).
enum class VfToken {
    none,            ///< not an SR-IOV function, or its PF is not on vfio-pci
    required,        ///< a VF whose PF is on vfio-pci: always
    while_vfs_open,  ///< a PF on vfio-pci with VFs: while any VF is open
    settable,        ///< a PF on vfio-pci without VFs: a token given sets it
};
/// The token rule's name: "none", "required", "while_vfs_open", "settable".
[[nodiscard]] std::string_view to_string(VfToken t);

/// A device's SR-IOV facts (see VfToken).
struct Sriov {
    bool pf = false;                  ///< has the SR-IOV capability
    unsigned total_vfs = 0;           ///< PF: sriov_totalvfs
    unsigned num_vfs = 0;             ///< PF: sriov_numvfs
    std::vector<PciAddress> vfs;      ///< PF: its enabled VFs, virtfn0 first
    std::optional<PciAddress> physfn; ///< VF: its PF
    std::string pf_driver;            ///< VF: the PF's driver (empty: none)
    VfToken token = VfToken::none;
    [[nodiscard]] bool vf() const { return physfn.has_value(); }
};

/// The device's SR-IOV facts; a device that is neither PF nor VF gives a
/// default Sriov.
[[nodiscard]] Sriov probe_sriov(const sysfs::Root& root, PciAddress addr);

/// Everything about one device that decides how VFIO can use it: its
/// driver, IOMMU group and group-mates, and every mode's status.
struct DeviceSupport {
    PciAddress addr;
    std::string driver;                  ///< empty when unbound
    bool bound = false;                  ///< bound_to_vfio_pci()
    bool group_viable = true;            ///< no group-mate is held by a kernel driver
    std::optional<unsigned> iommu_group; ///< nullopt: no IOMMU group at all
    bool noiommu_group = false;          ///< group created by vfio for no-IOMMU
    std::vector<GroupMember> group_members;  ///< including the device itself
    std::optional<std::string> vfio_dev;     ///< "vfio3" when vfio-pci registered it
    std::vector<ModeStatus> modes;           ///< one entry per all_modes(), same order
    std::optional<Mode> automatic;           ///< what mode=auto picks
    std::string automatic_reason;
    /// What to do to make the device usable, when it is not (bind commands,
    /// blocking group-mates); empty otherwise.
    std::string action;
    Sriov sriov;  ///< PF/VF relations and whether a VF token is needed

    [[nodiscard]] const ModeStatus& status(Mode m) const;
};

/// The kernel nodes a process of mode `m` opens (from the mode table): the
/// process-wide node (cdev and compat: /dev/iommu; group and noiommu:
/// /dev/vfio/vfio), then one node per device (cdev: its device cdev) or per
/// IOMMU group (group style: the group node, shared by the group's devices).
struct ModeNodes {
    std::string first;         ///< "/dev/iommu"
    std::string first_option;  ///< the kernel option behind it, for messages
    bool process_iommufd;      ///< `first` is the process's iommufd (cdev)
    bool translates;           ///< false: devices see physical addresses (root only)
};
/// The nodes of mode `m`, from the mode table.
[[nodiscard]] ModeNodes mode_nodes(Mode m);
/// The device's own node in mode `m`: "/dev/vfio/devices/vfio3",
/// "/dev/vfio/12", "/dev/vfio/noiommu-0". ENODEV when the device lacks what
/// the mode needs (no cdev, no group).
[[nodiscard]] Result<std::string> mode_device_node(Mode m, const DeviceSupport& d);

/// Whether the device at `addr` is bound to vfio-pci or to a vfio-pci variant
/// driver (mlx5_vfio_pci, hisi_acc_vfio_pci, ...): the one answer to "does
/// VFIO own this device" for probe, scan, the bus and the inventory. A
/// variant driver is built on vfio-pci-core and registers a VFIO device like
/// vfio-pci does, so it counts when
///   - the driver's name is vfio-pci or ends in "vfio_pci" / "vfio-pci", or
///   - the kernel registered a VFIO device for it (/sys/bus/pci/devices/X/
///     vfio-dev/vfioN, with CONFIG_VFIO_DEVICE_CDEV) while a driver is bound.
/// A device with no driver, or another kernel driver, is not bound.
[[nodiscard]] bool bound_to_vfio_pci(const sysfs::Root& root, PciAddress addr);

/// Drivers that leave a group usable for VFIO besides vfio-pci and its
/// variants (they do no kernel DMA on the device, "driver_managed_dma" in
/// the kernel): none, pci-stub, pcieport.
[[nodiscard]] bool driver_keeps_group_viable(std::string_view driver);

/// Fails only when the device does not exist.
[[nodiscard]] Result<DeviceSupport> probe_device(const sysfs::Root& root,
                                                 const KernelSupport& kernel,
                                                 PciAddress addr);

/// The shell commands that bind `addr` to vfio-pci.
[[nodiscard]] std::string bind_hint(PciAddress addr);

}  // namespace vfiokit::vfio

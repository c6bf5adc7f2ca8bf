// The table of VFIO modes (private to lib/eal/vfio).
//
// Modes are data: one row per mode says everything that differs between
// modes outside the backend itself: its name (the one string used in
// options, log lines and test names), its kernel objects, the wire id used
// when sharing with other processes, whether and in which order the
// automatic choice takes it, its availability checks with their reasons,
// and its backend factories. The front end (vfio.cpp, mode.cpp, probe.cpp,
// share.cpp, share_codec.cpp) reads the row of the process's mode and never
// asks which mode it is in; the idea is the kernel VFIO selftests'
// iommu_modes[] (tools/testing/selftests/vfio/lib).
//
// Adding a mode: an enumerator in vfiokit/eal/vfio/probe.hpp, one backend
// file with its factories (backend.hpp), and one row in modes.cpp. The
// unit test modes_test.cpp checks that every row is complete.
//
// Thread-safety: the table is immutable; every function here may be called
// from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "backend.hpp"
#include "vfiokit/eal/vfio/probe.hpp"
#include "vfiokit/eal/vfio/types.hpp"

namespace vfiokit::vfio::detail {

// How a mode's containers travel to another process (share.cpp; the
// encoding in share.hpp has fields for both).
enum class ShareStyle {
    // A container fd with its IOMMU model, and the group fds (group-style).
    container_and_groups,
    // An IOAS id in the process's iommufd, which travels once (cdev).
    ioas_in_iommufd,
};

// A variant a test runs a mode in ("group-type1v2"): the suffix and the
// type1 setting it forces.
struct ModeFlavour {
    std::string_view suffix;  // "type1v2"
    Type1 type1;
};

// What probe_device() gathered about one device before judging the modes
// (everything in DeviceSupport but `modes` and the automatic choice), plus
// the kernel-wide facts and where sysfs is.
struct DeviceFacts {
    const sysfs::Root& root;
    const KernelSupport& kernel;
    const DeviceSupport& dev;
    std::string blockers;  // group-mates held by DMA-capable drivers, "" when none
};

using KernelCheck = Result<void> (*)(const KernelSupport&);
using DeviceCheck = ModeStatus (*)(const DeviceFacts&);
using BackendFactory = Result<std::unique_ptr<ContainerBackend>> (*)(const BackendConfig&);
using ModelCheck = bool (*)(Type1, std::uint32_t model);

struct ModeRow {
    Mode mode;
    // The mode's one name: --vfio-mode, VFIOKIT_VFIO_MODE, log lines,
    // inventory and test names. Lower case; words joined by dashes
    // ("cdev-noiommu"), so every variant label (mode_variants()) must stay
    // unique (modes_test.cpp).
    std::string_view name;
    // The kernel objects and nodes, one line (inventory, docs).
    std::string_view objects;
    // The nodes a process of this mode opens (mode_nodes(), vfiokit-broker):
    // the process-wide one (the iommufd, or the container), then per device
    // `device_node_prefix` + the cdev name (per_device_cdev) or the group
    // number; `first_node_option` is the kernel option behind the first.
    std::string_view first_node;
    std::string_view first_node_option;
    std::string_view device_node_prefix;
    bool per_device_cdev;
    // Its id in the shared-state encoding (share.hpp). Never reused.
    std::uint8_t wire_id;
    // Automatic choice: rows with a rank are tried lowest first; 0 means
    // only when forced.
    int auto_rank;
    // Why auto took it, when no higher-ranked mode was available.
    std::string_view auto_reason;
    // An IOMMU translates: DMA goes through mappings (false: physical
    // addresses). The automatic choice without a bound device takes a
    // translating mode only when an IOMMU is active, and the others only
    // when none is.
    bool translates;
    // Memory is mapped into the mode's containers: where an IOMMU
    // translates, and in cdev-noiommu (a mapping pins, and its IOVA is the
    // key of the physical address lookup). Only group no-IOMMU maps nothing.
    bool maps_memory;
    // The process opens /dev/iommu once and every container is an IOAS in
    // it (Vfio owns the fd; BackendConfig::iommufd).
    bool process_iommufd;
    ShareStyle share;
    // Test variants; empty: the mode runs once, under its own name.
    std::span<const ModeFlavour> flavours;

    // Kernel-wide facts a forced mode needs, checked before anything is
    // opened: fails with ENODEV naming the missing piece and a hint.
    KernelCheck check_kernel;
    // Whether this device can be used in the mode, and why not.
    DeviceCheck check_device;
    // A fresh container (BackendConfig: type1, the process's iommufd, or a
    // container fd handed over by a broker in `given`).
    BackendFactory make;
    // Another process's container (Vfio::import_shared): group-style,
    // `given` set and adopted; ioas_in_iommufd, `iommufd` and `ioas_id`.
    BackendFactory adopt;
    // Whether a shared container may carry this IOMMU model id (0 for none)
    // under this type1 setting (share_codec.cpp).
    ModelCheck model_fits;
};

// Every row, in the order the inventory lists them.
[[nodiscard]] std::span<const ModeRow> mode_rows();
// The row of `m`; every Mode has one (modes_test.cpp).
[[nodiscard]] const ModeRow& mode_row(Mode m);
// The rows the automatic choice may take, best first (auto_rank order).
[[nodiscard]] std::vector<const ModeRow*> automatic_rows();
// The row with this wire id, or nullptr.
[[nodiscard]] const ModeRow* mode_row_by_wire_id(std::uint8_t id);

}  // namespace vfiokit::vfio::detail

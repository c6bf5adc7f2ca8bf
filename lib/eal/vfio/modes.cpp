// The table of VFIO modes (modes.hpp): one row per mode, with the checks
// that decide where it is available. Nothing outside this file asks which
// mode it is in.
#include "modes.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>

#include "group_style.hpp"
#include "vfiokit/uapi/vfio.hpp"

namespace vfiokit::vfio {
namespace detail {

namespace {

// --- availability: what every mode's device check shares ----------------------

std::string group_text(const DeviceFacts& f) {
    return f.dev.iommu_group ? std::to_string(*f.dev.iommu_group) : "";
}

std::string describe_driver(const std::string& drv) {
    return drv.empty() ? "no driver" : "driver " + drv;
}

// Every mode: the device must be owned by vfio-pci and the rest of its group
// must leave it alone. Sets the reason and returns false otherwise.
bool usable_device(const DeviceFacts& f, ModeStatus& s) {
    if (!f.dev.bound) {
        s.reason = "device has " + describe_driver(f.dev.driver) + ", not vfio-pci";
        return false;
    }
    if (!f.blockers.empty()) {
        s.reason = "IOMMU group " + group_text(f) + " is not viable: " + f.blockers +
                   " (unbind it or bind it to vfio-pci too)";
        return false;
    }
    return true;
}

// The translated modes: an IOMMU group that an IOMMU stands behind.
bool translated_device(const DeviceFacts& f, ModeStatus& s) {
    if (!f.dev.iommu_group) {
        s.reason = "device has no IOMMU group: no IOMMU is active "
                   "(boot with intel_iommu=on or amd_iommu=on, or use noiommu mode)";
        return false;
    }
    if (f.dev.noiommu_group) {
        s.reason = "IOMMU group " + group_text(f) + " is a no-IOMMU group (no IOMMU translates "
                   "this device); use noiommu mode";
        return false;
    }
    return usable_device(f, s);
}

// Available when `node` exists; the reason is then the node used.
void needs_node(const DeviceFacts& f, ModeStatus& s, const std::string& node,
                const std::string& used, const std::string& missing) {
    s.available = f.root.exists(node);
    s.reason = s.available ? used : node + " " + missing;
}

Error missing(Mode m, const std::string& what, const std::string& hint) {
    return std::move(Error(ENODEV, "VFIO mode " + std::string(to_string(m)) + " unavailable: " +
                                       what)
                         .hint(hint));
}

// --- group -----------------------------------------------------------------------

Result<void> group_kernel(const KernelSupport& k) {
    if (!k.vfio_container)
        return fail(missing(Mode::group, "no /dev/vfio/vfio",
                            "build the kernel with CONFIG_VFIO_CONTAINER (or load vfio), or use "
                            "--vfio-mode=cdev"));
    return {};
}

ModeStatus group_device(const DeviceFacts& f) {
    ModeStatus s{Mode::group, false, {}};
    if (!f.kernel.vfio_container)
        s.reason = "no /dev/vfio/vfio: kernel built without CONFIG_VFIO_CONTAINER "
                   "(or vfio not loaded)";
    else if (translated_device(f, s)) {
        const std::string node = "/dev/vfio/" + group_text(f);
        needs_node(f, s, node, node, "missing although the device is bound");
    }
    return s;
}

bool type1_model_fits(Type1 t, std::uint32_t model) {
    for (const IommuModel& m : type1_models(t))
        if (static_cast<std::uint32_t>(m.id) == model)
            return true;
    return false;
}

constexpr ModeFlavour kType1Flavours[] = {{"type1v2", Type1::v2}, {"type1", Type1::v1}};

// --- compat ----------------------------------------------------------------------

Result<void> compat_kernel(const KernelSupport& k) {
    if (!k.iommufd)
        return fail(missing(Mode::compat, "no /dev/iommu",
                            "build the kernel with CONFIG_IOMMUFD, or use --vfio-mode=group"));
    return {};
}

ModeStatus compat_device(const DeviceFacts& f) {
    ModeStatus s{Mode::compat, false, {}};
    if (!f.kernel.iommufd)
        s.reason = "no /dev/iommu: kernel built without CONFIG_IOMMUFD";
    else if (translated_device(f, s)) {
        const std::string node = "/dev/vfio/" + group_text(f);
        needs_node(f, s, node, node + " on /dev/iommu", "missing although the device is bound");
    }
    return s;
}

// --- cdev ------------------------------------------------------------------------

// The kernel named the device's cdev for cdev no-IOMMU: "noiommu-vfioN"
// (vfio_main.c, vfio_device_set_noiommu_and_name, with CONFIG_IOMMUFD_NOIOMMU;
// without it a no-IOMMU device gets no cdev at all).
bool noiommu_cdev(const DeviceFacts& f) {
    return f.dev.vfio_dev && f.dev.vfio_dev->starts_with("noiommu-");
}

Result<void> cdev_kernel(const KernelSupport& k) {
    if (!k.iommufd)
        return fail(missing(Mode::cdev, "no /dev/iommu",
                            "build the kernel with CONFIG_IOMMUFD (and CONFIG_VFIO_DEVICE_CDEV), "
                            "or use --vfio-mode=group"));
    return {};
}

ModeStatus cdev_device(const DeviceFacts& f) {
    ModeStatus s{Mode::cdev, false, {}};
    if (!f.kernel.iommufd)
        s.reason = "no /dev/iommu: kernel built without CONFIG_IOMMUFD";
    else if (f.dev.noiommu_group)
        s.reason = noiommu_cdev(f)
                       ? "no IOMMU translates this device: its cdev /dev/vfio/devices/" +
                             *f.dev.vfio_dev + " belongs to cdev-noiommu mode; use cdev-noiommu "
                             "or noiommu mode"
                       : "no IOMMU translates this device, and no-IOMMU devices get no cdev "
                         "before Linux 7.3 (CONFIG_IOMMUFD_NOIOMMU); use noiommu mode";
    else if (translated_device(f, s)) {
        if (!f.dev.vfio_dev)
            s.reason = "no vfio-dev entry in /sys/bus/pci/devices/" + f.dev.addr.str();
        else {
            const std::string node = "/dev/vfio/devices/" + *f.dev.vfio_dev;
            needs_node(f, s, node, node, "missing: kernel built without CONFIG_VFIO_DEVICE_CDEV");
        }
    }
    return s;
}

bool no_model(Type1, std::uint32_t model) { return model == 0; }

// --- noiommu ---------------------------------------------------------------------

Result<void> noiommu_kernel(const KernelSupport& k) {
    if (!k.noiommu_built)
        return fail(missing(Mode::noiommu, "the kernel has no no-IOMMU support",
                            "build the kernel with CONFIG_VFIO_NOIOMMU"));
    if (!k.noiommu_enabled)
        return fail(missing(Mode::noiommu, "no-IOMMU mode is off",
                            "boot with vfio.enable_unsafe_noiommu_mode=1 or write 1 to "
                            "/sys/module/vfio/parameters/enable_unsafe_noiommu_mode"));
    if (!k.vfio_container)
        return fail(missing(Mode::noiommu, "no /dev/vfio/vfio",
                            "build the kernel with CONFIG_VFIO_CONTAINER"));
    if (::geteuid() != 0)
        return fail(missing(Mode::noiommu, "not root",
                            "no-IOMMU devices need CAP_SYS_RAWIO: run as root"));
    return {};
}

ModeStatus noiommu_device(const DeviceFacts& f) {
    ModeStatus s{Mode::noiommu, false, {}};
    const std::string g = group_text(f);
    if (!f.kernel.noiommu_built)
        s.reason = "kernel built without CONFIG_VFIO_NOIOMMU";
    else if (f.dev.iommu_group && !f.dev.noiommu_group)
        s.reason = "an IOMMU translates this device (group " + g +
                   "); no-IOMMU mode is only for devices without one";
    else if (!f.kernel.noiommu_enabled)
        s.reason = "no-IOMMU mode is off: boot with vfio.enable_unsafe_noiommu_mode=1 "
                   "or write 1 to /sys/module/vfio/parameters/"
                   "enable_unsafe_noiommu_mode, then rebind the device";
    else if (usable_device(f, s)) {
        if (!f.dev.iommu_group)
            s.reason = "device has no group although no-IOMMU mode is on; rebind it";
        else {
            const std::string node = "/dev/vfio/noiommu-" + g;
            needs_node(f, s, node, node + " (needs CAP_SYS_RAWIO)",
                       "missing although the device is bound");
        }
    }
    return s;
}

bool noiommu_model_fits(Type1, std::uint32_t model) {
    return model == static_cast<std::uint32_t>(kNoiommu.id);
}

// --- cdev no-IOMMU ---------------------------------------------------------------
// Linux 7.3 (CONFIG_IOMMUFD_NOIOMMU): a no-IOMMU device's cdev
// /dev/vfio/devices/noiommu-vfioN bound to an iommufd IOAS that does not
// translate; physical addresses from IOMMU_IOAS_NOIOMMU_GET_PA. Opening the
// cdev and the lookup need CAP_SYS_RAWIO (device_cdev.c, iommufd/ioas.c).

constexpr std::string_view kNoCdevBefore73 = "no-IOMMU devices get no cdev before Linux 7.3";
constexpr std::string_view kRawioWhy =
    "this process lacks CAP_SYS_RAWIO, which opening a no-IOMMU device's cdev and "
    "IOMMU_IOAS_NOIOMMU_GET_PA need";

Result<void> cdev_noiommu_kernel(const KernelSupport& k) {
    if (!k.iommufd)
        return fail(missing(Mode::cdev_noiommu, "no /dev/iommu",
                            "build the kernel with CONFIG_IOMMUFD (and CONFIG_VFIO_NOIOMMU, "
                            "CONFIG_VFIO_DEVICE_CDEV), or use --vfio-mode=noiommu"));
    if (!k.noiommu_built)
        return fail(missing(Mode::cdev_noiommu, "the kernel has no no-IOMMU support",
                            "build the kernel with CONFIG_VFIO_NOIOMMU, or use another mode"));
    if (!k.noiommu_enabled)
        return fail(missing(Mode::cdev_noiommu, "no-IOMMU mode is off",
                            "boot with vfio.enable_unsafe_noiommu_mode=1 or write 1 to "
                            "/sys/module/vfio/parameters/enable_unsafe_noiommu_mode, then "
                            "rebind the device"));
    if (!k.noiommu_cdev)
        return fail(missing(Mode::cdev_noiommu,
                            std::string(kNoCdevBefore73) + " (" + k.noiommu_cdev_why + ")",
                            "use --vfio-mode=noiommu, or Linux 7.3+ built with CONFIG_IOMMUFD, "
                            "CONFIG_VFIO_NOIOMMU and CONFIG_VFIO_DEVICE_CDEV "
                            "(CONFIG_IOMMUFD_NOIOMMU)"));
    if (!k.raw_io)
        return fail(missing(Mode::cdev_noiommu, std::string(kRawioWhy), "run as root"));
    return {};
}

ModeStatus cdev_noiommu_device(const DeviceFacts& f) {
    ModeStatus s{Mode::cdev_noiommu, false, {}};
    if (!f.kernel.iommufd)
        s.reason = "no /dev/iommu: kernel built without CONFIG_IOMMUFD";
    else if (!f.kernel.noiommu_built)
        s.reason = "kernel built without CONFIG_VFIO_NOIOMMU";
    else if (f.dev.iommu_group && !f.dev.noiommu_group)
        s.reason = "an IOMMU translates this device (group " + group_text(f) +
                   "); cdev no-IOMMU is only for devices without one";
    else if (!usable_device(f, s))
        return s;
    else if (!f.dev.iommu_group)
        s.reason = "device has no group: no-IOMMU mode is off (boot with "
                   "vfio.enable_unsafe_noiommu_mode=1, then rebind the device)";
    else if (!noiommu_cdev(f))
        s.reason = std::string(kNoCdevBefore73) + " (CONFIG_IOMMUFD_NOIOMMU); use noiommu mode";
    else {
        const std::string node = "/dev/vfio/devices/" + *f.dev.vfio_dev;
        needs_node(f, s, node, node + " on /dev/iommu (needs CAP_SYS_RAWIO)",
                   "missing although the device is bound");
        if (s.available && !f.kernel.raw_io) {
            s.available = false;
            s.reason = std::string(kRawioWhy) + " (" + node + "): run as root";
        }
    }
    return s;
}

// --- adoption of group-style containers ------------------------------------------

// A group-style factory used for adoption: the same backend, given the
// other process's container fd.
template <BackendFactory Make>
Result<std::unique_ptr<ContainerBackend>> adopt_given(const BackendConfig& c) {
    if (c.given == nullptr || !c.given->adopted)
        return fail(EINVAL, "adopt a container: no adopted container fd given");
    return Make(c);
}

// --- the table -------------------------------------------------------------------

// The inventory's order. auto_rank: cdev, else group, else cdev-noiommu,
// else noiommu; compat only when asked for.
constexpr ModeRow kRows[] = {
    {
        .mode = Mode::cdev,
        .name = "cdev",
        .objects = "/dev/vfio/devices/vfioN bound to an IOAS of the process's /dev/iommu",
        .first_node = "/dev/iommu",
        .first_node_option = "CONFIG_IOMMUFD",
        .device_node_prefix = "/dev/vfio/devices/",
        .per_device_cdev = true,
        .wire_id = 3,
        .auto_rank = 1,
        .auto_reason = "device cdev and /dev/iommu present",
        .translates = true,
        .maps_memory = true,
        .process_iommufd = true,
        .share = ShareStyle::ioas_in_iommufd,
        .flavours = {},
        .check_kernel = cdev_kernel,
        .check_device = cdev_device,
        .make = make_cdev_backend,
        .adopt = adopt_cdev_backend,
        .model_fits = no_model,
    },
    {
        .mode = Mode::group,
        .name = "group",
        .objects = "/dev/vfio/vfio container (type1v2 or type1) with /dev/vfio/<group>",
        .first_node = "/dev/vfio/vfio",
        .first_node_option = "CONFIG_VFIO_CONTAINER",
        .device_node_prefix = "/dev/vfio/",
        .per_device_cdev = false,
        .wire_id = 1,
        .auto_rank = 2,
        .auto_reason = "legacy group container present",
        .translates = true,
        .maps_memory = true,
        .process_iommufd = false,
        .share = ShareStyle::container_and_groups,
        .flavours = kType1Flavours,
        .check_kernel = group_kernel,
        .check_device = group_device,
        .make = make_group_backend,
        .adopt = adopt_given<make_group_backend>,
        .model_fits = type1_model_fits,
    },
    {
        .mode = Mode::compat,
        .name = "compat",
        .objects = "/dev/vfio/<group> in a /dev/iommu fd used as the container (type1 emulation)",
        .first_node = "/dev/iommu",
        .first_node_option = "CONFIG_IOMMUFD (and CONFIG_IOMMUFD_VFIO_CONTAINER)",
        .device_node_prefix = "/dev/vfio/",
        .per_device_cdev = false,
        .wire_id = 2,
        .auto_rank = 0,
        .auto_reason = "",
        .translates = true,
        .maps_memory = true,
        .process_iommufd = false,
        .share = ShareStyle::container_and_groups,
        .flavours = {},
        .check_kernel = compat_kernel,
        .check_device = compat_device,
        .make = make_compat_backend,
        .adopt = adopt_given<make_compat_backend>,
        .model_fits = type1_model_fits,
    },
    {
        .mode = Mode::noiommu,
        .name = "noiommu",
        .objects = "/dev/vfio/noiommu-<group> in a /dev/vfio/vfio container, no translation",
        .first_node = "/dev/vfio/vfio",
        .first_node_option = "CONFIG_VFIO_NOIOMMU",
        .device_node_prefix = "/dev/vfio/noiommu-",
        .per_device_cdev = false,
        .wire_id = 4,
        .auto_rank = 4,
        .auto_reason = "no IOMMU translates the device; unsafe no-IOMMU mode enabled",
        .translates = false,
        .maps_memory = false,
        .process_iommufd = false,
        .share = ShareStyle::container_and_groups,
        .flavours = {},
        .check_kernel = noiommu_kernel,
        .check_device = noiommu_device,
        .make = make_noiommu_backend,
        .adopt = adopt_given<make_noiommu_backend>,
        .model_fits = noiommu_model_fits,
    },
    {
        .mode = Mode::cdev_noiommu,
        .name = "cdev-noiommu",
        .objects = "/dev/vfio/devices/noiommu-vfioN bound to a no-translation IOAS of the "
                   "process's /dev/iommu; physical addresses from IOMMU_IOAS_NOIOMMU_GET_PA",
        .first_node = "/dev/iommu",
        .first_node_option = "CONFIG_IOMMUFD_NOIOMMU (CONFIG_IOMMUFD, CONFIG_VFIO_NOIOMMU and "
                             "CONFIG_VFIO_DEVICE_CDEV)",
        .device_node_prefix = "/dev/vfio/devices/",
        .per_device_cdev = true,
        .wire_id = 5,
        .auto_rank = 3,
        .auto_reason = "no IOMMU translates the device; its no-IOMMU cdev and /dev/iommu present "
                       "(Linux 7.3+), CAP_SYS_RAWIO held",
        .translates = false,
        .maps_memory = true,
        .process_iommufd = true,
        .share = ShareStyle::ioas_in_iommufd,
        .flavours = {},
        .check_kernel = cdev_noiommu_kernel,
        .check_device = cdev_noiommu_device,
        .make = make_cdev_noiommu_backend,
        .adopt = adopt_cdev_noiommu_backend,
        .model_fits = no_model,
    },
};

constexpr auto kModes = [] {
    std::array<Mode, std::size(kRows)> m{};
    for (std::size_t i = 0; i < m.size(); ++i)
        m[i] = kRows[i].mode;
    return m;
}();

}  // namespace

std::span<const ModeRow> mode_rows() { return kRows; }

const ModeRow& mode_row(Mode m) {
    for (const ModeRow& r : kRows)
        if (r.mode == m)
            return r;
    // Unreachable: every enumerator has a row (modes_test.cpp checks).
    return kRows[0];
}

std::vector<const ModeRow*> automatic_rows() {
    std::vector<const ModeRow*> ranked;
    for (const ModeRow& r : kRows)
        if (r.auto_rank > 0)
            ranked.push_back(&r);
    std::sort(ranked.begin(), ranked.end(),
              [](const ModeRow* a, const ModeRow* b) { return a->auto_rank < b->auto_rank; });
    return ranked;
}

const ModeRow* mode_row_by_wire_id(std::uint8_t id) {
    for (const ModeRow& r : kRows)
        if (r.wire_id == id)
            return &r;
    return nullptr;
}

}  // namespace detail

std::span<const Mode> all_modes() { return detail::kModes; }

std::string_view to_string(Mode m) { return detail::mode_row(m).name; }

std::optional<Mode> mode_from_string(std::string_view s) {
    for (const auto& r : detail::mode_rows())
        if (r.name == s)
            return r.mode;
    return std::nullopt;
}

ModeNodes mode_nodes(Mode m) {
    const auto& r = detail::mode_row(m);
    return {std::string(r.first_node), std::string(r.first_node_option), r.process_iommufd,
            r.translates};
}

Result<std::string> mode_device_node(Mode m, const DeviceSupport& d) {
    const auto& r = detail::mode_row(m);
    if (r.per_device_cdev) {
        if (!d.vfio_dev)
            return fail(Error(ENODEV, d.addr.str() + " has no VFIO device cdev")
                            .hint("bind it to vfio-pci on a kernel with CONFIG_VFIO_DEVICE_CDEV"));
        return std::string(r.device_node_prefix) + *d.vfio_dev;
    }
    if (!d.iommu_group)
        return fail(Error(ENODEV, d.addr.str() + " has no IOMMU group")
                        .hint("bind it to vfio-pci (with an IOMMU, or in no-IOMMU mode)"));
    return std::string(r.device_node_prefix) + std::to_string(*d.iommu_group);
}

std::vector<ModeVariant> mode_variants() {
    std::vector<ModeVariant> out;
    for (const auto& r : detail::mode_rows()) {
        if (r.flavours.empty())
            out.push_back({r.mode, Type1::automatic, std::string(r.name)});
        for (const auto& f : r.flavours)
            out.push_back({r.mode, f.type1, std::string(r.name) + "-" + std::string(f.suffix)});
    }
    return out;
}

}  // namespace vfiokit::vfio

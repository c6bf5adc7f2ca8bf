// VFIO mode names, options, and the choice of mode for a process.
#include <cerrno>
#include <cstdlib>

#include "vfiokit/eal/vfio/vfio.hpp"

#include "modes.hpp"

namespace vfiokit::vfio {

std::string_view to_string(Type1 t) {
    switch (t) {
    case Type1::automatic: return "auto";
    case Type1::v2: return "v2";
    case Type1::v1: return "v1";
    }
    return "?";
}

Result<std::optional<Mode>> parse_mode(std::string_view s) {
    if (s == "auto")
        return std::optional<Mode>{};
    if (auto m = mode_from_string(s))
        return std::optional<Mode>{*m};
    std::string names = "auto";
    for (Mode m : all_modes())
        names += ", " + std::string(to_string(m));
    return fail(Error(EINVAL, "VFIO mode '" + std::string(s) + "'").hint("use one of " + names));
}

Result<Type1> parse_type1(std::string_view s) {
    if (s == "auto")
        return Type1::automatic;
    if (s == "v2" || s == "type1v2")
        return Type1::v2;
    if (s == "v1" || s == "type1")
        return Type1::v1;
    return fail(Error(EINVAL, "type1 flavour '" + std::string(s) + "'").hint("use auto, v2 or v1"));
}

Result<void> apply_environment(Options& o) {
    if (const char* m = std::getenv("VFIOKIT_VFIO_MODE"); m && *m && !o.mode) {
        auto p = parse_mode(m);
        if (!p)
            return fail(std::move(p.error()).context("VFIOKIT_VFIO_MODE"));
        o.mode = *p;
    }
    if (const char* t = std::getenv("VFIOKIT_VFIO_TYPE1"); t && *t && o.type1 == Type1::automatic) {
        auto p = parse_type1(t);
        if (!p)
            return fail(std::move(p.error()).context("VFIOKIT_VFIO_TYPE1"));
        o.type1 = *p;
    }
    return {};
}

namespace {

// Devices bound to vfio-pci or a variant of it (bound_to_vfio_pci).
std::vector<PciAddress> vfio_pci_devices(const sysfs::Root& root) {
    std::vector<PciAddress> out;
    for (const auto& n : root.list("/sys/bus/pci/devices"))
        if (auto a = PciAddress::parse(n); a && bound_to_vfio_pci(root, *a))
            out.push_back(*a);
    return out;
}

Result<ModeChoice> choose_automatic(const sysfs::Root& root, const KernelSupport& k) {
    // Follow the devices already given to vfio-pci: the first mode in
    // preference order that one of them can use.
    std::vector<DeviceSupport> devs;
    for (auto a : vfio_pci_devices(root))
        if (auto d = probe_device(root, k, a))
            devs.push_back(std::move(*d));
    const auto ranked = detail::automatic_rows();
    for (const auto* row : ranked)
        for (const auto& d : devs)
            if (d.automatic == row->mode)
                return ModeChoice{row->mode, "auto: " + d.addr.str() +
                                                 " is bound to vfio-pci and offers " +
                                                 std::string(row->name) + " (" +
                                                 d.automatic_reason + ")"};
    // No usable device yet: decide from the kernel alone. A translating mode
    // needs an active IOMMU, the others its absence.
    const bool iommu_hw = !root.list("/sys/class/iommu").empty();
    std::string why;
    for (const auto* row : ranked) {
        auto ok = row->check_kernel(k);
        if (ok && row->translates == iommu_hw)
            return ModeChoice{row->mode, "auto: " + std::string(iommu_hw ? "an IOMMU is active"
                                                                         : "no IOMMU is active") +
                                             " and the kernel offers " + std::string(row->name)};
        why += (why.empty() ? "" : "; ") + std::string(row->name) + ": " +
               (ok ? std::string(iommu_hw ? "an IOMMU is active" : "no IOMMU is active")
                   : ok.error().message());
    }
    Error e(ENODEV, "choose a VFIO mode: none fits (" + why + ")");
    if (!k.vfio_container && !k.iommufd)
        e.hint("the kernel offers no VFIO: no /dev/vfio/vfio or /dev/iommu (CONFIG_VFIO, "
               "CONFIG_IOMMUFD; modprobe vfio-pci)");
    else if (!iommu_hw)
        e.hint("no IOMMU is active (boot with intel_iommu=on or amd_iommu=on) and no-IOMMU mode "
               "is off (vfio.enable_unsafe_noiommu_mode=1)");
    else
        e.hint("no VFIO container node is usable");
    return fail(std::move(e));
}

}  // namespace

Result<ModeChoice> choose_mode(const sysfs::Root& root, const Options& o) {
    const KernelSupport k = probe_kernel(root);
    if (o.mode) {
        if (auto ok = detail::mode_row(*o.mode).check_kernel(k); !ok)
            return fail(std::move(ok.error()));
        return ModeChoice{*o.mode, "forced (--vfio-mode / VFIOKIT_VFIO_MODE)"};
    }
    return choose_automatic(root, k);
}

}  // namespace vfiokit::vfio

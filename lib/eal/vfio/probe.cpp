#include "vfiokit/eal/vfio/probe.hpp"

#include <cerrno>

namespace vfiokit::vfio {

namespace {

std::string device_dir(PciAddress a) { return "/sys/bus/pci/devices/" + a.str(); }

std::string describe_driver(const std::string& drv) {
    return drv.empty() ? "no driver" : "driver " + drv;
}

}  // namespace

std::string_view to_string(Mode m) {
    switch (m) {
    case Mode::group: return "group";
    case Mode::compat: return "compat";
    case Mode::cdev: return "cdev";
    case Mode::noiommu: return "noiommu";
    }
    return "?";
}

std::optional<Mode> mode_from_string(std::string_view s) {
    for (Mode m : kAllModes)
        if (to_string(m) == s)
            return m;
    return std::nullopt;
}

KernelSupport probe_kernel(const sysfs::Root& root) {
    KernelSupport k;
    k.vfio_container = root.exists("/dev/vfio/vfio");
    k.iommufd = root.exists("/dev/iommu");
    const char* param = "/sys/module/vfio/parameters/enable_unsafe_noiommu_mode";
    k.noiommu_built = root.exists(param);
    if (auto v = root.read(param))
        k.noiommu_enabled = (*v == "Y" || *v == "1");
    k.vfio_pci = root.exists("/sys/bus/pci/drivers/vfio-pci");
    return k;
}

bool bound_to_vfio_pci(const sysfs::Root& root, PciAddress addr) {
    const std::string dir = device_dir(addr);
    const std::string driver = root.link_name(dir + "/driver").value_or("");
    if (driver.empty())
        return false;
    // vfio-pci itself, and the variant drivers' naming (mlx5_vfio_pci,
    // pds_vfio_pci, nvgrace_gpu_vfio_pci, ...: drivers/vfio/pci/*/main.c).
    if (driver == "vfio-pci" || driver.ends_with("vfio_pci") || driver.ends_with("vfio-pci"))
        return true;
    // Whatever its name, a driver that registered a VFIO device for it
    // (vfio_device_add creates vfio-dev/vfioN) hands it to user space.
    return !root.list(dir + "/vfio-dev").empty();
}

bool driver_keeps_group_viable(std::string_view driver) {
    // pci-stub and pcieport do no DMA on behalf of the device.
    return driver.empty() || driver == "pci-stub" || driver == "pcieport";
}

std::string bind_hint(PciAddress a) {
    const std::string d = device_dir(a);
    return "bind it to vfio-pci: echo vfio-pci > " + d + "/driver_override; "
           "[ -e " + d + "/driver ] && echo " + a.str() + " > " + d + "/driver/unbind; "
           "echo " + a.str() + " > /sys/bus/pci/drivers_probe";
}

const ModeStatus& DeviceSupport::status(Mode m) const {
    for (const auto& s : modes)
        if (s.mode == m)
            return s;
    return modes.front();  // unreachable: probe_device fills every mode
}

Result<DeviceSupport> probe_device(const sysfs::Root& root, const KernelSupport& k,
                                   PciAddress addr) {
    const std::string dir = device_dir(addr);
    if (!root.exists(dir))
        return fail(Error(ENODEV, "look up " + dir)
                        .context("device " + addr.str())
                        .hint("no such PCI device; list devices with vfiokit-info"));

    DeviceSupport d;
    d.addr = addr;
    d.driver = root.link_name(dir + "/driver").value_or("");
    if (auto g = root.link_name(dir + "/iommu_group")) {
        d.iommu_group = static_cast<unsigned>(std::stoul(*g));
        const std::string gdir = "/sys/kernel/iommu_groups/" + *g;
        d.noiommu_group = root.read(gdir + "/name").value_or("") == "vfio-noiommu";
        for (const auto& name : root.list(gdir + "/devices")) {
            auto ma = PciAddress::parse(name);
            if (!ma)
                continue;  // non-PCI member: not ours to judge
            GroupMember m{*ma, root.link_name(device_dir(*ma) + "/driver").value_or(""), false};
            m.blocks = !bound_to_vfio_pci(root, *ma) && !driver_keeps_group_viable(m.driver);
            d.group_members.push_back(std::move(m));
        }
    }
    if (auto v = root.list(dir + "/vfio-dev"); !v.empty())
        d.vfio_dev = v.front();

    d.bound = bound_to_vfio_pci(root, addr);
    const bool bound = d.bound;
    std::string blockers;
    for (const auto& m : d.group_members)
        if (m.blocks && m.addr != addr)
            blockers += (blockers.empty() ? "" : ", ") + m.addr.str() + " is bound to " + m.driver;
    d.group_viable = blockers.empty();
    const std::string group_str = d.iommu_group ? std::to_string(*d.iommu_group) : "";

    // Conditions every mode shares: the device must be owned by vfio-pci and
    // the rest of its group must leave it alone.
    auto common = [&](ModeStatus& s) {
        if (!bound) {
            s.reason = "device has " + describe_driver(d.driver) + ", not vfio-pci";
            return false;
        }
        if (!blockers.empty()) {
            s.reason = "IOMMU group " + group_str + " is not viable: " + blockers +
                       " (unbind it or bind it to vfio-pci too)";
            return false;
        }
        return true;
    };
    // Conditions of the translated modes (group, compat, cdev).
    auto translated = [&](ModeStatus& s) {
        if (!d.iommu_group) {
            s.reason = "device has no IOMMU group: no IOMMU is active "
                       "(boot with intel_iommu=on or amd_iommu=on, or use noiommu mode)";
            return false;
        }
        if (d.noiommu_group) {
            s.reason = "IOMMU group " + group_str + " is a no-IOMMU group (no IOMMU translates "
                       "this device); use noiommu mode";
            return false;
        }
        return common(s);
    };

    for (Mode m : kAllModes) {
        ModeStatus s{m, false, {}};
        switch (m) {
        case Mode::group:
            if (!k.vfio_container)
                s.reason = "no /dev/vfio/vfio: kernel built without CONFIG_VFIO_CONTAINER "
                           "(or vfio not loaded)";
            else if (translated(s)) {
                const std::string node = "/dev/vfio/" + group_str;
                s.available = root.exists(node);
                s.reason = s.available ? node : node + " missing although the device is bound";
            }
            break;
        case Mode::compat:
            if (!k.iommufd)
                s.reason = "no /dev/iommu: kernel built without CONFIG_IOMMUFD";
            else if (translated(s)) {
                const std::string node = "/dev/vfio/" + group_str;
                s.available = root.exists(node);
                s.reason = s.available ? node + " on /dev/iommu"
                                       : node + " missing although the device is bound";
            }
            break;
        case Mode::cdev:
            if (!k.iommufd)
                s.reason = "no /dev/iommu: kernel built without CONFIG_IOMMUFD";
            else if (d.noiommu_group)
                s.reason = "the kernel creates no device cdev for no-IOMMU devices "
                           "(Linux 6.12); use noiommu mode";
            else if (translated(s)) {
                if (!d.vfio_dev) {
                    s.reason = "no vfio-dev entry in " + dir;
                } else {
                    const std::string node = "/dev/vfio/devices/" + *d.vfio_dev;
                    s.available = root.exists(node);
                    s.reason = s.available ? node
                                           : node + " missing: kernel built without "
                                                    "CONFIG_VFIO_DEVICE_CDEV";
                }
            }
            break;
        case Mode::noiommu:
            if (!k.noiommu_built)
                s.reason = "kernel built without CONFIG_VFIO_NOIOMMU";
            else if (d.iommu_group && !d.noiommu_group)
                s.reason = "an IOMMU translates this device (group " + group_str +
                           "); no-IOMMU mode is only for devices without one";
            else if (!k.noiommu_enabled)
                s.reason = "no-IOMMU mode is off: boot with vfio.enable_unsafe_noiommu_mode=1 "
                           "or write 1 to /sys/module/vfio/parameters/"
                           "enable_unsafe_noiommu_mode, then rebind the device";
            else if (common(s)) {
                if (!d.iommu_group) {
                    s.reason = "device has no group although no-IOMMU mode is on; rebind it";
                } else {
                    const std::string node = "/dev/vfio/noiommu-" + group_str;
                    s.available = root.exists(node);
                    s.reason = s.available ? node + " (needs CAP_SYS_RAWIO)"
                                           : node + " missing although the device is bound";
                }
            }
            break;
        }
        d.modes.push_back(std::move(s));
    }

    // Automatic choice: cdev, else group, else noiommu (compat only on request).
    for (Mode m : {Mode::cdev, Mode::group, Mode::noiommu}) {
        if (d.status(m).available) {
            d.automatic = m;
            break;
        }
    }
    if (d.automatic == Mode::cdev)
        d.automatic_reason = "device cdev and /dev/iommu present";
    else if (d.automatic == Mode::group)
        d.automatic_reason = "cdev unavailable (" + d.status(Mode::cdev).reason +
                             "); legacy group container present";
    else if (d.automatic == Mode::noiommu)
        d.automatic_reason = "no IOMMU translates the device; unsafe no-IOMMU mode enabled";
    else
        d.automatic_reason = "no mode available";
    if (!bound)
        d.action = bind_hint(addr);
    else if (!blockers.empty())
        d.action = "give the group-mates to vfio-pci too (or unbind them): " + blockers;
    return d;
}

}  // namespace vfiokit::vfio

#include "vfiokit/eal/vfio/probe.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "modes.hpp"

namespace vfiokit::vfio {

namespace {

std::string device_dir(PciAddress a) { return "/sys/bus/pci/devices/" + a.str(); }

constexpr unsigned kCapSysRawio = 17;  // include/uapi/linux/capability.h

// Whether capability `cap` is in the process's effective set: the CapEff
// line of /proc/self/status, a hexadecimal mask (proc(5)).
bool has_capability(const sysfs::Root& root, unsigned cap) {
    auto status = root.read("/proc/self/status");
    if (!status)
        return false;
    const auto at = status->find("CapEff:");
    if (at == std::string::npos)
        return false;
    std::string_view v = std::string_view(*status).substr(at + 7);
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t'))
        v.remove_prefix(1);
    unsigned long long eff = 0;
    if (auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), eff, 16);
        ec != std::errc() || end == v.data() || cap >= 64)
        return false;
    return (eff >> cap) & 1;
}

// Linux 7.3 or later, from a release string ("7.3.4-amd64"); false when
// it cannot be read.
bool release_at_least_7_3(const std::string& release) {
    unsigned major = 0, minor = 0;
    if (std::sscanf(release.c_str(), "%u.%u", &major, &minor) != 2)
        return false;
    return major > 7 || (major == 7 && minor >= 3);
}

// KernelSupport::noiommu_cdev: the VFIO devices registered for PCI devices
// (vfio_main.c names a no-IOMMU device's "noiommu-vfioN" when it gets a
// cdev, vfio_device_set_noiommu_and_name; before 7.3 it is "vfioN" with no
// node under /dev/vfio/devices), else the release.
void noiommu_cdev_facts(const sysfs::Root& root, KernelSupport& k) {
    for (const auto& name : root.list("/sys/bus/pci/devices")) {
        const std::string dir = "/sys/bus/pci/devices/" + name;
        for (const auto& v : root.list(dir + "/vfio-dev")) {
            if (v.starts_with("noiommu-")) {
                k.noiommu_cdev = true;
                k.noiommu_cdev_why = name + " has the no-IOMMU cdev " + v;
                return;
            }
            const auto g = root.link_name(dir + "/iommu_group");
            if (g && root.read("/sys/kernel/iommu_groups/" + *g + "/name").value_or("") ==
                         "vfio-noiommu") {
                k.noiommu_cdev = false;
                k.noiommu_cdev_why = "no-IOMMU device " + name + " is VFIO device " + v +
                                     ", without a cdev";
                return;
            }
        }
    }
    k.noiommu_cdev = release_at_least_7_3(k.release);
    k.noiommu_cdev_why = "the kernel is " + (k.release.empty() ? std::string("of unknown release")
                                                               : "Linux " + k.release);
}

}  // namespace

KernelSupport probe_kernel(const sysfs::Root& root) {
    KernelSupport k;
    k.vfio_container = root.exists("/dev/vfio/vfio");
    k.iommufd = root.exists("/dev/iommu");
    const char* param = "/sys/module/vfio/parameters/enable_unsafe_noiommu_mode";
    k.noiommu_built = root.exists(param);
    if (auto v = root.read(param))
        k.noiommu_enabled = (*v == "Y" || *v == "1");
    k.vfio_pci = root.exists("/sys/bus/pci/drivers/vfio-pci");
    k.release = root.read("/proc/sys/kernel/osrelease").value_or("");
    k.raw_io = has_capability(root, kCapSysRawio);
    if (auto v = root.read("/sys/module/vfio_pci/parameters/enable_sriov"))
        k.vfio_pci_sriov = (*v == "Y" || *v == "1");
    noiommu_cdev_facts(root, k);
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

std::string_view to_string(VfToken t) {
    switch (t) {
    case VfToken::none: return "none";
    case VfToken::required: return "required";
    case VfToken::while_vfs_open: return "while_vfs_open";
    case VfToken::settable: return "settable";
    }
    return "none";
}

Sriov probe_sriov(const sysfs::Root& root, PciAddress addr) {
    const std::string dir = device_dir(addr);
    Sriov s;
    if (auto pf = root.link_name(dir + "/physfn")) {
        s.physfn = PciAddress::parse(*pf);
        if (s.physfn) {
            s.pf_driver = root.link_name(device_dir(*s.physfn) + "/driver").value_or("");
            // The VF knows its PF's token only when vfio-pci made it
            // (vfio_pci_vf_init finds the PF in vfio-pci's SR-IOV list);
            // a PF on vfio-pci cannot have VFs made by another driver.
            if (bound_to_vfio_pci(root, *s.physfn))
                s.token = VfToken::required;
        }
        return s;
    }
    auto total = root.read_uint(dir + "/sriov_totalvfs");
    if (!total)
        return s;
    s.pf = true;
    s.total_vfs = static_cast<unsigned>(*total);
    s.num_vfs = static_cast<unsigned>(root.read_uint(dir + "/sriov_numvfs").value_or(0));
    // virtfn0, virtfn1, ... in VF order (list() sorts by name: 10 < 2).
    std::vector<std::pair<unsigned long, PciAddress>> vfs;
    for (const auto& name : root.list(dir)) {
        if (!name.starts_with("virtfn") || name.size() == 6)
            continue;
        unsigned long n = 0;
        const char* first = name.data() + 6;
        const char* last = name.data() + name.size();
        if (auto [end, ec] = std::from_chars(first, last, n, 10); ec != std::errc() || end != last)
            continue;
        if (auto target = root.link_name(dir + "/" + name))
            if (auto a = PciAddress::parse(*target))
                vfs.emplace_back(n, *a);
    }
    std::sort(vfs.begin(), vfs.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
    for (const auto& [n, a] : vfs)
        s.vfs.push_back(a);
    if (bound_to_vfio_pci(root, addr))
        s.token = s.vfs.empty() && s.num_vfs == 0 ? VfToken::settable : VfToken::while_vfs_open;
    return s;
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
    if (auto g = root.link_number(dir + "/iommu_group")) {
        d.iommu_group = *g;
        const std::string gdir = "/sys/kernel/iommu_groups/" + std::to_string(*g);
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
    d.sriov = probe_sriov(root, addr);
    const bool bound = d.bound;
    std::string blockers;
    for (const auto& m : d.group_members)
        if (m.blocks && m.addr != addr)
            blockers += (blockers.empty() ? "" : ", ") + m.addr.str() + " is bound to " + m.driver;
    d.group_viable = blockers.empty();

    // Each mode judges the device by its row's check (modes.cpp).
    const detail::DeviceFacts facts{root, k, d, blockers};
    std::vector<ModeStatus> modes;
    for (const auto& row : detail::mode_rows())
        modes.push_back(row.check_device(facts));
    d.modes = std::move(modes);

    // Automatic choice: the available mode of lowest rank; the reason says
    // why each better-ranked mode was not taken.
    std::string passed;
    for (const auto* row : detail::automatic_rows()) {
        const ModeStatus& s = d.status(row->mode);
        if (s.available) {
            d.automatic = row->mode;
            d.automatic_reason = passed + std::string(row->auto_reason);
            break;
        }
        passed += std::string(row->name) + " unavailable (" + s.reason + "); ";
    }
    if (!d.automatic)
        d.automatic_reason = "no mode available";
    if (!bound)
        d.action = bind_hint(addr);
    else if (!blockers.empty())
        d.action = "give the group-mates to vfio-pci too (or unbind them): " + blockers;
    return d;
}

}  // namespace vfiokit::vfio

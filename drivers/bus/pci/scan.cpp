#include "vfiokit/bus/pci/scan.hpp"

#include <cerrno>

#include "vfiokit/eal/vfio/probe.hpp"

namespace vfiokit::pci {

namespace {
constexpr const char* kDevices = "/sys/bus/pci/devices";
}

Result<ScannedDevice> read_device(const sysfs::Root& root, PciAddress addr) {
    const std::string dir = std::string(kDevices) + "/" + addr.str();
    if (!root.exists(dir))
        return fail(Error(ENODEV, "look up " + dir).context("device " + addr.str()));

    ScannedDevice d;
    d.addr = addr;
    struct Field {
        const char* name;
        std::uint32_t mask;
        std::uint32_t* out;
    };
    std::uint32_t vendor = 0, device = 0, svendor = 0, sdevice = 0;
    const Field fields[] = {
        {"vendor", 0xffff, &vendor},
        {"device", 0xffff, &device},
        {"subsystem_vendor", 0xffff, &svendor},
        {"subsystem_device", 0xffff, &sdevice},
        {"class", 0xffffff, &d.ids.class_code},
    };
    for (const auto& f : fields) {
        auto v = root.read_uint(dir + "/" + f.name);
        if (!v)
            return fail(std::move(v.error()).context("device " + addr.str()));
        *f.out = static_cast<std::uint32_t>(*v) & f.mask;
    }
    d.ids.vendor = static_cast<std::uint16_t>(vendor);
    d.ids.device = static_cast<std::uint16_t>(device);
    d.ids.subsystem_vendor = static_cast<std::uint16_t>(svendor);
    d.ids.subsystem_device = static_cast<std::uint16_t>(sdevice);

    // numa_node is absent on kernels without NUMA; -1 then, as the kernel
    // itself reports for "unknown".
    d.numa_node = static_cast<int>(root.read_int(dir + "/numa_node").value_or(-1));
    if (auto g = root.link_number(dir + "/iommu_group"))
        d.iommu_group = *g;
    d.driver = root.link_name(dir + "/driver").value_or("");
    d.vfio_bound = vfio::bound_to_vfio_pci(root, addr);
    d.driver_override = root.read(dir + "/driver_override").value_or("");
    if (d.driver_override == "(null)")
        d.driver_override.clear();
    return d;
}

Result<std::vector<ScannedDevice>> scan(const sysfs::Root& root) {
    if (!root.exists(kDevices))
        return fail(Error(ENOENT, std::string("list ") + kDevices)
                        .hint("sysfs not mounted, or kernel without PCI support"));
    std::vector<ScannedDevice> out;
    for (const auto& name : root.list(kDevices)) {
        auto addr = PciAddress::parse(name);
        if (!addr)
            continue;
        auto d = read_device(root, *addr);
        if (!d)
            return fail(std::move(d.error()));
        out.push_back(std::move(*d));
    }
    return out;  // list() is sorted, and canonical names sort as addresses do
}

}  // namespace vfiokit::pci

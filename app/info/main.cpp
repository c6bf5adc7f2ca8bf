// vfiokit-info: inventory of PCI devices and the VFIO modes the running
// kernel offers each of them. Reads sysfs and /dev only; never opens a device.
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "vfiokit/bus/pci/scan.hpp"
#include "vfiokit/eal/vfio/probe.hpp"
#include "vfiokit/eal/vfio/vfio.hpp"

namespace {

using namespace vfiokit;

void usage(FILE* out) {
    std::fprintf(out,
                 "usage: vfiokit-info [--json] [--sysroot DIR] [--vfio-mode=MODE] [ADDRESS...]\n"
                 "  Lists PCI devices (or only ADDRESS...) with ids, class, NUMA node,\n"
                 "  IOMMU group and its members, driver, vfio cdev node, and which VFIO\n"
                 "  modes (cdev, group, compat, noiommu) the kernel offers each, with the\n"
                 "  reason when a mode is unavailable and the mode 'auto' would choose.\n"
                 "  --json          one JSON document instead of text\n"
                 "  --vfio-mode=M   show what a process forcing mode M would get\n"
                 "  --sysroot DIR   read DIR/sys and DIR/dev instead of /sys and /dev\n");
}

std::string hex(unsigned v, int width) {
    char b[16];
    std::snprintf(b, sizeof b, "%0*x", width, v);
    return b;
}

std::string json_str(std::string_view s) {
    std::string o = "\"";
    for (char c : s) {
        switch (c) {
        case '"': o += "\\\""; break;
        case '\\': o += "\\\\"; break;
        case '\n': o += "\\n"; break;
        case '\t': o += "\\t"; break;
        default:
            if (static_cast<unsigned char>(c) < 0x20)
                o += "\\u00" + hex(static_cast<unsigned char>(c), 2);
            else
                o += c;
        }
    }
    return o + "\"";
}

struct Entry {
    pci::ScannedDevice dev;
    vfio::DeviceSupport support;
};

std::string members_text(const Entry& e) {
    std::string s;
    for (const auto& m : e.support.group_members) {
        s += (s.empty() ? "" : ", ") + m.addr.str();
        if (m.addr != e.dev.addr)
            s += " (" + (m.driver.empty() ? std::string("no driver") : m.driver) + ")";
    }
    return s;
}

std::string choice_text(const vfiokit::Result<vfio::ModeChoice>& c) {
    if (!c)
        return "unavailable: " + c.error().message();
    return std::string(vfio::to_string(c->mode)) + " (" + c->reason + ")";
}

void print_text(const vfio::KernelSupport& k, const vfiokit::Result<vfio::ModeChoice>& choice,
                const std::vector<Entry>& entries) {
    auto yn = [](bool b) { return b ? "yes" : "no"; };
    std::printf("kernel: /dev/vfio/vfio %s, /dev/iommu %s, no-IOMMU mode %s, vfio-pci %s\n",
                yn(k.vfio_container), yn(k.iommufd),
                !k.noiommu_built ? "not built" : (k.noiommu_enabled ? "enabled" : "off"),
                yn(k.vfio_pci));
    std::printf("process mode: %s\n", choice_text(choice).c_str());
    std::printf("%zu PCI device(s)\n", entries.size());
    for (const auto& e : entries) {
        const auto& d = e.dev;
        const auto& s = e.support;
        std::printf("\n%s  %s:%s  class %s  numa %d  driver %s\n", d.addr.str().c_str(),
                    hex(d.ids.vendor, 4).c_str(), hex(d.ids.device, 4).c_str(),
                    hex(d.ids.class_code, 6).c_str(), d.numa_node,
                    d.driver.empty() ? "(none)" : d.driver.c_str());
        if (s.iommu_group)
            std::printf("  iommu group  %u%s: %s\n", *s.iommu_group,
                        s.noiommu_group ? " (vfio no-IOMMU)" : "", members_text(e).c_str());
        else
            std::printf("  iommu group  none\n");
        std::printf("  vfio cdev    %s\n",
                    s.vfio_dev ? ("/dev/vfio/devices/" + *s.vfio_dev).c_str() : "none");
        bool first = true;
        for (const auto& m : s.modes) {
            std::printf("  %-12s %-8s %s: %s\n", first ? "modes" : "", 
                        std::string(vfio::to_string(m.mode)).c_str(),
                        m.available ? "yes" : "no", m.reason.c_str());
            first = false;
        }
        std::printf("  auto         %s (%s)\n",
                    s.automatic ? std::string(vfio::to_string(*s.automatic)).c_str() : "none",
                    s.automatic_reason.c_str());
        if (!s.action.empty())
            std::printf("  to use       %s\n", s.action.c_str());
    }
}

void print_json(const vfio::KernelSupport& k, const vfiokit::Result<vfio::ModeChoice>& choice,
                const std::vector<Entry>& entries) {
    auto b = [](bool v) { return v ? "true" : "false"; };
    std::printf("{\"kernel\":{\"vfio_container\":%s,\"iommufd\":%s,\"noiommu_built\":%s,"
                "\"noiommu_enabled\":%s,\"vfio_pci\":%s},",
                b(k.vfio_container), b(k.iommufd), b(k.noiommu_built), b(k.noiommu_enabled),
                b(k.vfio_pci));
    if (choice)
        std::printf("\"process_mode\":{\"mode\":%s,\"reason\":%s},\"devices\":[",
                    json_str(vfio::to_string(choice->mode)).c_str(), json_str(choice->reason).c_str());
    else
        std::printf("\"process_mode\":{\"mode\":null,\"error\":%s},\"devices\":[",
                    json_str(choice.error().message()).c_str());
    for (std::size_t i = 0; i < entries.size(); ++i) {
        const auto& d = entries[i].dev;
        const auto& s = entries[i].support;
        std::string o = i ? "," : "";
        o += "{\"address\":" + json_str(d.addr.str()) + ",\"vendor\":" +
             json_str(hex(d.ids.vendor, 4)) + ",\"device\":" + json_str(hex(d.ids.device, 4)) +
             ",\"class\":" + json_str(hex(d.ids.class_code, 6)) +
             ",\"numa_node\":" + std::to_string(d.numa_node) +
             ",\"driver\":" + (d.driver.empty() ? "null" : json_str(d.driver)) +
             ",\"iommu_group\":" + (s.iommu_group ? std::to_string(*s.iommu_group) : "null") +
             ",\"noiommu_group\":" + b(s.noiommu_group) + ",\"group_members\":[";
        for (std::size_t j = 0; j < s.group_members.size(); ++j) {
            const auto& m = s.group_members[j];
            o += std::string(j ? "," : "") + "{\"address\":" + json_str(m.addr.str()) +
                 ",\"driver\":" + (m.driver.empty() ? "null" : json_str(m.driver)) +
                 ",\"blocks\":" + b(m.blocks) + "}";
        }
        o += "],\"vfio_cdev\":" +
             (s.vfio_dev ? json_str("/dev/vfio/devices/" + *s.vfio_dev) : std::string("null")) +
             ",\"modes\":{";
        for (std::size_t j = 0; j < s.modes.size(); ++j) {
            const auto& m = s.modes[j];
            o += std::string(j ? "," : "") + json_str(vfio::to_string(m.mode)) +
                 ":{\"available\":" + b(m.available) + ",\"reason\":" + json_str(m.reason) + "}";
        }
        o += "},\"auto\":" +
             (s.automatic ? json_str(vfio::to_string(*s.automatic)) : std::string("null")) +
             ",\"auto_reason\":" + json_str(s.automatic_reason) +
             ",\"action\":" + (s.action.empty() ? std::string("null") : json_str(s.action)) + "}";
        std::fputs(o.c_str(), stdout);
    }
    std::printf("]}\n");
}

}  // namespace

int main(int argc, char** argv) {
    bool json = false;
    std::string sysroot;
    vfio::Options vopts;
    std::vector<PciAddress> only;
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        if (a == "--json") {
            json = true;
        } else if (a == "--sysroot" && i + 1 < argc) {
            sysroot = argv[++i];
        } else if (a.starts_with("--vfio-mode=")) {
            auto m = vfio::parse_mode(a.substr(12));
            if (!m) {
                std::fprintf(stderr, "vfiokit-info: %s\n", m.error().message().c_str());
                return 2;
            }
            vopts.mode = *m;
        } else if (a == "-h" || a == "--help") {
            usage(stdout);
            return 0;
        } else if (auto addr = PciAddress::parse(a)) {
            only.push_back(*addr);
        } else {
            std::fprintf(stderr, "vfiokit-info: unknown argument '%s' (not an option or PCI address)\n",
                         argv[i]);
            usage(stderr);
            return 2;
        }
    }

    sysfs::Root root(sysroot);
    const auto kernel = vfio::probe_kernel(root);
    vopts.sysroot = sysroot;
    const auto choice = vfio::choose_mode(root, vopts);
    std::vector<pci::ScannedDevice> devices;
    if (only.empty()) {
        auto all = pci::scan(root);
        if (!all) {
            std::fprintf(stderr, "vfiokit-info: %s\n", all.error().message().c_str());
            return 1;
        }
        devices = std::move(*all);
    } else {
        for (auto addr : only) {
            auto d = pci::read_device(root, addr);
            if (!d) {
                std::fprintf(stderr, "vfiokit-info: %s\n", d.error().message().c_str());
                return 1;
            }
            devices.push_back(std::move(*d));
        }
    }

    std::vector<Entry> entries;
    for (auto& d : devices) {
        auto s = vfio::probe_device(root, kernel, d.addr);
        if (!s) {
            std::fprintf(stderr, "vfiokit-info: %s\n", s.error().message().c_str());
            return 1;
        }
        entries.push_back({std::move(d), std::move(*s)});
    }
    if (json)
        print_json(kernel, choice, entries);
    else
        print_text(kernel, choice, entries);
    return 0;
}

// vfiokit-info: inventory of PCI devices and the VFIO modes the running
// kernel offers each of them. Reads sysfs and /dev only and never opens a
// device, except with --regions, which opens each device bound to vfio-pci
// for a moment to list its regions and interrupts.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vfiokit/bus/pci/device.hpp"
#include "vfiokit/bus/pci/scan.hpp"
#include "vfiokit/eal/format.hpp"
#include "vfiokit/eal/vfio/probe.hpp"
#include "vfiokit/eal/vfio/vfio.hpp"

namespace {

using namespace vfiokit;

void usage(FILE* out) {
    std::fprintf(out,
                 "usage: vfiokit-info [--json] [--regions] [--sysroot DIR] [--vfio-mode=MODE] [ADDRESS...]\n"
                 "       vfiokit-info [--sysroot DIR] --modes ADDRESS\n"
                 "  Lists PCI devices (or only ADDRESS...) with ids, class, NUMA node,\n"
                 "  IOMMU group and its members, driver, vfio cdev node, SR-IOV relations\n"
                 "  (a PF's VFs, a VF's PF) and whether a VF token is needed, and which VFIO\n"
                 "  modes (cdev, group, compat, noiommu, cdev-noiommu) the kernel offers\n"
                 "  each, with the reason when a mode is unavailable and the mode 'auto'\n"
                 "  would choose.\n"
                 "  --json          one JSON document instead of text\n"
                 "  --regions       also open each device bound to vfio-pci (in the mode\n"
                 "                  'auto' picks, or --vfio-mode) and list its VFIO regions\n"
                 "                  and interrupt types; a device that cannot be opened\n"
                 "                  (busy, not bound) shows why\n"
                 "  --vfio-mode=M   show what a process forcing mode M would get\n"
                 "  --modes ADDRESS one line per mode variant (the names tests carry), for\n"
                 "                  scripts: 'mode LABEL MODE TYPE1 yes|no REASON', where\n"
                 "                  REASON is the node used, or why ADDRESS cannot use it\n"
                 "  --sysroot DIR   read DIR/sys and DIR/dev instead of /sys and /dev\n"
                 "  -h, --help      this text\n");
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
                o += "\\u00" + hex_digits(static_cast<unsigned char>(c), 2);
            else
                o += c;
        }
    }
    return o + "\"";
}

// What --regions learned by opening the device, or why it could not.
struct Regions {
    std::string error;  // non-empty: not opened, and why
    std::string mode;   // the VFIO mode it was opened in
    std::vector<pci::RegionInfo> regions;  // those that exist (size > 0)
    std::vector<pci::IrqInfo> irqs;        // the indexes the kernel answers for
};

struct Entry {
    pci::ScannedDevice dev;
    vfio::DeviceSupport support;
    std::optional<Regions> regions;  // with --regions
};

// Opens the device in a Vfio of its own, so that one device's failure (a
// group not viable, a device busy in another process) touches no other, and
// releases it again before the next device is looked at.
Regions probe_regions(const vfio::Options& o, const pci::ScannedDevice& d) {
    Regions r;
    if (!d.vfio_bound) {
        r.error = "not opened: bound to " + (d.driver.empty() ? std::string("no driver") : d.driver) +
                  ", not vfio-pci";
        return r;
    }
    auto v = vfio::Vfio::create(o);
    if (!v) {
        r.error = "not opened: " + v.error().message();
        return r;
    }
    auto dev = (*v)->assign_device((*v)->default_container(), d.addr.str());
    if (!dev) {
        r.error = "not opened: " + dev.error().message();
        return r;
    }
    r.mode = std::string(vfio::to_string((*v)->mode()));
    pci::PciDevice p(**dev);
    auto info = p.info();
    if (!info) {
        r.error = info.error().message();
        return r;
    }
    for (std::uint32_t i = 0; i < info->num_regions; ++i) {
        // The VGA index is refused unless the device decodes VGA ranges.
        auto ri = p.region_info(static_cast<pci::Region>(i));
        if (ri && ri->size != 0)
            r.regions.push_back(std::move(*ri));
    }
    for (std::uint32_t i = 0; i < info->num_irqs; ++i) {
        // An index the kernel refuses is not listed: ERR of a conventional
        // PCI device up to Linux 6.12 (7.3 offers ERR on every device).
        if (auto irq = p.irq_info(static_cast<pci::IrqType>(i)))
            r.irqs.push_back(*irq);
    }
    (void)(*v)->release_device(**dev);
    return r;
}

std::string human_size(std::uint64_t n) {
    if (n >= (1ULL << 30) && n % (1ULL << 30) == 0)
        return std::to_string(n >> 30) + " GiB";
    if (n >= (1ULL << 20) && n % (1ULL << 20) == 0)
        return std::to_string(n >> 20) + " MiB";
    if (n >= (1ULL << 10) && n % (1ULL << 10) == 0)
        return std::to_string(n >> 10) + " KiB";
    return std::to_string(n) + " B";
}

// "mmap, msix-mappable, sparse 0x0+0x1000" and the like.
std::string region_traits(const pci::RegionInfo& r) {
    std::string s;
    auto add = [&](const std::string& t) { s += (s.empty() ? "" : ", ") + t; };
    if (r.io_port)
        add("io-port");
    add(r.mappable ? "mmap" : "no mmap");
    if (r.msix_mappable)
        add("msix-mappable");
    if (!r.sparse.empty()) {
        std::string a = "sparse";
        for (const auto& area : r.sparse)
            a += " " + hex(area.offset) + "+" + hex(area.size);
        add(a);
    }
    if (r.type)
        add("type " + hex(*r.type) + " subtype " + hex(r.subtype.value_or(0)));
    return s;
}

void print_regions_text(const Regions& r) {
    if (!r.error.empty()) {
        std::string e = r.error;
        for (std::size_t at = 0; (at = e.find('\n', at)) != std::string::npos; at += 14)
            e.insert(at + 1, "             ");
        std::printf("  regions      %s\n", e.c_str());
        return;
    }
    std::printf("  regions      opened in %s mode\n", r.mode.c_str());
    for (const auto& g : r.regions)
        std::printf("    %-8s %-11s %-9s %c%c  %s\n", pci::to_string(g.index).c_str(),
                    hex(g.size).c_str(), human_size(g.size).c_str(), g.readable ? 'r' : '-',
                    g.writable ? 'w' : '-', region_traits(g).c_str());
    std::string irqs;
    for (const auto& i : r.irqs)
        irqs += (irqs.empty() ? "" : ", ") + pci::to_string(i.type) + " " + std::to_string(i.count);
    std::printf("  irqs         %s\n", irqs.empty() ? "none" : irqs.c_str());
}

std::string regions_json(const Regions& r) {
    auto b = [](bool v) { return v ? std::string("true") : std::string("false"); };
    if (!r.error.empty())
        return "{\"error\":" + json_str(r.error) + "}";
    std::string o = "{\"opened_in\":" + json_str(r.mode) + ",\"regions\":[";
    for (std::size_t i = 0; i < r.regions.size(); ++i) {
        const auto& g = r.regions[i];
        o += std::string(i ? "," : "") + "{\"index\":" +
             std::to_string(static_cast<std::uint32_t>(g.index)) + ",\"name\":" +
             json_str(pci::to_string(g.index)) + ",\"size\":" + std::to_string(g.size) +
             ",\"offset\":" + std::to_string(g.offset) + ",\"readable\":" + b(g.readable) +
             ",\"writable\":" + b(g.writable) + ",\"mappable\":" + b(g.mappable) +
             ",\"io_port\":" + b(g.io_port) + ",\"msix_mappable\":" + b(g.msix_mappable) +
             ",\"sparse\":[";
        for (std::size_t j = 0; j < g.sparse.size(); ++j)
            o += std::string(j ? "," : "") + "{\"offset\":" + std::to_string(g.sparse[j].offset) +
                 ",\"size\":" + std::to_string(g.sparse[j].size) + "}";
        o += "],\"type\":" + (g.type ? std::to_string(*g.type) : std::string("null")) +
             ",\"subtype\":" + (g.subtype ? std::to_string(*g.subtype) : std::string("null")) + "}";
    }
    o += "],\"irqs\":[";
    for (std::size_t i = 0; i < r.irqs.size(); ++i) {
        const auto& q = r.irqs[i];
        o += std::string(i ? "," : "") + "{\"type\":" + json_str(pci::to_string(q.type)) +
             ",\"count\":" + std::to_string(q.count) + ",\"eventfd\":" + b(q.eventfd) +
             ",\"maskable\":" + b(q.maskable) + ",\"automasked\":" + b(q.automasked) + "}";
    }
    return o + "]}";
}

std::string members_text(const Entry& e) {
    std::string s;
    for (const auto& m : e.support.group_members) {
        s += (s.empty() ? "" : ", ") + m.addr.str();
        if (m.addr != e.dev.addr)
            s += " (" + (m.driver.empty() ? std::string("no driver") : m.driver) + ")";
    }
    return s;
}

std::string addr_list(const std::vector<PciAddress>& as) {
    std::string s;
    for (PciAddress a : as)
        s += (s.empty() ? "" : ", ") + a.str();
    return s;
}

// The SR-IOV line: the PF's VFs or the VF's PF, and what vfio-pci's VF
// token rules ask of whoever opens the device (probe.hpp, VfToken). Empty
// for a device that is neither.
std::string sriov_text(const vfio::Sriov& s, const vfio::KernelSupport& k, bool bound) {
    std::string t;
    if (s.vf()) {
        t = "VF of PF " + s.physfn->str() + " (" +
            (s.pf_driver.empty() ? std::string("no driver") : s.pf_driver) + ")";
    } else if (s.pf) {
        t = "PF, " + std::to_string(s.num_vfs) + " of " + std::to_string(s.total_vfs) + " VFs";
        if (!s.vfs.empty())
            t += ": " + addr_list(s.vfs);
        if (bound && k.vfio_pci_sriov == false)
            t += "; vfio-pci makes no VFs (boot with vfio_pci.enable_sriov=1)";
    } else {
        return "";
    }
    switch (s.token) {
    case vfio::VfToken::none: t += "; VF token: none"; break;
    case vfio::VfToken::required:
        t += "; VF token: required (the PF's owner sets it; -a BDF,vf_token=UUID)";
        break;
    case vfio::VfToken::while_vfs_open:
        t += "; VF token: its VFs need it, and so does the PF while a VF is open";
        break;
    case vfio::VfToken::settable:
        t += "; VF token: none yet asked (a token given at open, or set_vf_token, sets it)";
        break;
    }
    return t;
}

std::string sriov_json(const vfio::Sriov& s) {
    if (!s.pf && !s.vf())
        return "null";
    std::string o = "{\"role\":" + json_str(s.pf ? "pf" : "vf");
    if (s.pf) {
        o += ",\"total_vfs\":" + std::to_string(s.total_vfs) +
             ",\"num_vfs\":" + std::to_string(s.num_vfs) + ",\"vfs\":[";
        for (std::size_t i = 0; i < s.vfs.size(); ++i)
            o += std::string(i ? "," : "") + json_str(s.vfs[i].str());
        o += "]";
    } else {
        o += ",\"pf\":" + json_str(s.physfn->str()) + ",\"pf_driver\":" +
             (s.pf_driver.empty() ? std::string("null") : json_str(s.pf_driver));
    }
    return o + ",\"vf_token\":" + json_str(vfio::to_string(s.token)) + "}";
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
    std::printf("no-IOMMU cdevs: %s (%s); this process has CAP_SYS_RAWIO: %s\n",
                yn(k.noiommu_cdev), k.noiommu_cdev_why.c_str(), yn(k.raw_io));
    std::printf("vfio-pci SR-IOV (enable_sriov): %s\n",
                !k.vfio_pci_sriov ? "unknown" : yn(*k.vfio_pci_sriov));
    std::printf("process mode: %s\n", choice_text(choice).c_str());
    std::printf("%zu PCI device(s)\n", entries.size());
    for (const auto& e : entries) {
        const auto& d = e.dev;
        const auto& s = e.support;
        std::printf("\n%s  %s:%s  class %s  numa %d  driver %s\n", d.addr.str().c_str(),
                    hex_digits(d.ids.vendor, 4).c_str(), hex_digits(d.ids.device, 4).c_str(),
                    hex_digits(d.ids.class_code, 6).c_str(), d.numa_node,
                    d.driver.empty() ? "(none)" : d.driver.c_str());
        if (s.iommu_group)
            std::printf("  iommu group  %u%s: %s\n", *s.iommu_group,
                        s.noiommu_group ? " (vfio no-IOMMU)" : "", members_text(e).c_str());
        else
            std::printf("  iommu group  none\n");
        std::printf("  vfio cdev    %s\n",
                    s.vfio_dev ? ("/dev/vfio/devices/" + *s.vfio_dev).c_str() : "none");
        if (const std::string sr = sriov_text(s.sriov, k, s.bound); !sr.empty())
            std::printf("  sr-iov       %s\n", sr.c_str());
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
        if (e.regions)
            print_regions_text(*e.regions);
    }
}

void print_json(const vfio::KernelSupport& k, const vfiokit::Result<vfio::ModeChoice>& choice,
                const std::vector<Entry>& entries) {
    auto b = [](bool v) { return v ? "true" : "false"; };
    std::printf("{\"kernel\":{\"vfio_container\":%s,\"iommufd\":%s,\"noiommu_built\":%s,"
                "\"noiommu_enabled\":%s,\"vfio_pci\":%s,\"noiommu_cdev\":%s,"
                "\"noiommu_cdev_why\":%s,\"release\":%s,\"vfio_pci_sriov\":%s},"
                "\"process\":{\"cap_sys_rawio\":%s},",
                b(k.vfio_container), b(k.iommufd), b(k.noiommu_built), b(k.noiommu_enabled),
                b(k.vfio_pci), b(k.noiommu_cdev), json_str(k.noiommu_cdev_why).c_str(),
                json_str(k.release).c_str(), !k.vfio_pci_sriov ? "null" : b(*k.vfio_pci_sriov),
                b(k.raw_io));
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
             json_str(hex_digits(d.ids.vendor, 4)) + ",\"device\":" + json_str(hex_digits(d.ids.device, 4)) +
             ",\"class\":" + json_str(hex_digits(d.ids.class_code, 6)) +
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
             ",\"sriov\":" + sriov_json(s.sriov) + ",\"modes\":{";
        for (std::size_t j = 0; j < s.modes.size(); ++j) {
            const auto& m = s.modes[j];
            o += std::string(j ? "," : "") + json_str(vfio::to_string(m.mode)) +
                 ":{\"available\":" + b(m.available) + ",\"reason\":" + json_str(m.reason) + "}";
        }
        o += "},\"auto\":" +
             (s.automatic ? json_str(vfio::to_string(*s.automatic)) : std::string("null")) +
             ",\"auto_reason\":" + json_str(s.automatic_reason) +
             ",\"action\":" + (s.action.empty() ? std::string("null") : json_str(s.action));
        if (entries[i].regions)
            o += ",\"vfio_regions\":" + regions_json(*entries[i].regions);
        o += "}";
        std::fputs(o.c_str(), stdout);
    }
    std::printf("]}\n");
}

// --modes: every variant of every mode (vfio::mode_variants(), the names
// lab steps carry), whether a process could use it for `addr`: the mode's
// kernel check (as if forced) and its check of the device.
int print_modes(const sysfs::Root& root, const std::string& sysroot, PciAddress addr) {
    auto s = vfio::probe_device(root, vfio::probe_kernel(root), addr);
    if (!s) {
        std::fprintf(stderr, "vfiokit-info: %s\n", s.error().message().c_str());
        return 1;
    }
    for (const auto& v : vfio::mode_variants()) {
        vfio::Options o;
        o.mode = v.mode;
        o.type1 = v.type1;
        o.sysroot = sysroot;
        const auto forced = vfio::choose_mode(root, o);
        const auto& st = s->status(v.mode);
        // The device's own reason is the more precise one where it has one.
        std::string reason = forced || !st.available ? st.reason : forced.error().message();
        for (char& c : reason)
            if (c == '\n')
                c = ' ';
        std::printf("mode %s %s %s %s %s\n", v.label.c_str(),
                    std::string(vfio::to_string(v.mode)).c_str(),
                    std::string(vfio::to_string(v.type1)).c_str(),
                    forced && st.available ? "yes" : "no", reason.c_str());
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    bool json = false;
    bool regions = false;
    bool modes = false;
    std::string sysroot;
    vfio::Options vopts;
    std::vector<PciAddress> only;
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        if (a == "--json") {
            json = true;
        } else if (a == "--regions") {
            regions = true;
        } else if (a == "--modes") {
            modes = true;
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
    if (modes) {
        if (only.size() != 1 || json || regions) {
            std::fprintf(stderr, "vfiokit-info: --modes takes one ADDRESS and no other output option\n");
            return 2;
        }
        return print_modes(root, sysroot, only.front());
    }
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
        std::optional<Regions> r;
        if (regions)
            r = probe_regions(vopts, d);
        entries.push_back({std::move(d), std::move(*s), std::move(r)});
    }
    if (json)
        print_json(kernel, choice, entries);
    else
        print_text(kernel, choice, entries);
    return 0;
}

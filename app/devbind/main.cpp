// vfiokit-devbind: DPDK's dpdk-devbind.py for vfiokit. Shows which driver
// holds each PCI device, its IOMMU group and the VFIO modes it can use (the
// library's own probe: what the EAL would decide), and moves devices between
// kernel drivers and vfio-pci through driver_override.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "vfiokit/bus/pci/scan.hpp"
#include "vfiokit/eal/format.hpp"
#include "vfiokit/eal/vfio/probe.hpp"

namespace {

using namespace vfiokit;

void usage(FILE* out) {
    std::fprintf(out,
                 "usage: vfiokit-devbind -s|--status [--status-dev net|dma|misc] [--sysroot DIR]\n"
                 "       vfiokit-devbind -b|--bind DRIVER [--force] [--with-group] ADDRESS...\n"
                 "       vfiokit-devbind -u|--unbind [--force] ADDRESS...\n"
                 "  -s, --status     list PCI devices by kind (network, crypto and DMA, other)\n"
                 "                   and driver: each with its ids, kernel interface, driver,\n"
                 "                   IOMMU group and its members, and the VFIO modes it can use\n"
                 "                   now (the modes vfiokit's EAL would find; 'auto' marks the\n"
                 "                   one it picks). *Active*: the interface has routes\n"
                 "  --status-dev K   only one kind: net, dma (crypto and DMA) or misc\n"
                 "  -b, --bind DRV   give each ADDRESS to driver DRV (vfio-pci, or a kernel\n"
                 "                   driver such as e1000 or igb) through driver_override;\n"
                 "                   ADDRESS may be short (00:04.0)\n"
                 "  -u, --unbind     take each ADDRESS from its driver, leaving it unbound\n"
                 "  --force          also take a network device whose interface has routes\n"
                 "                   (refused by default: it may be the connection you use)\n"
                 "  --with-group     with -b vfio-pci: move the device's IOMMU group-mates held\n"
                 "                   by kernel drivers to vfio-pci too (without it they are\n"
                 "                   named, and the group stays unusable for VFIO)\n"
                 "  --sysroot DIR    read DIR/sys and DIR/dev instead of /sys and /dev (--status)\n"
                 "  -h, --help       this text\n"
                 "Exit status: 0 when every device ended where asked, 1 otherwise, 2 on bad use.\n");
}

std::string dev_dir(PciAddress a) { return "/sys/bus/pci/devices/" + a.str(); }

std::string hex4(unsigned v) { return hex_digits(v, 4); }

enum class Kind { net, dma, misc, skip };

// DPDK's device kinds by PCI class (PCI Code and ID Assignment spec): 02
// network; 10 encryption, 0801 DMA controller; bridges (06) are never
// listed; everything else is "other".
Kind kind_of(std::uint32_t cls) {
    const unsigned base = cls >> 16, sub = (cls >> 8) & 0xff;
    if (base == 0x02)
        return Kind::net;
    if (base == 0x10 || (base == 0x08 && sub == 0x01))
        return Kind::dma;
    if (base == 0x06)
        return Kind::skip;
    return Kind::misc;
}

// The kernel network interfaces of a device (/sys/.../net/*).
std::vector<std::string> interfaces(const sysfs::Root& root, PciAddress a) {
    return root.list(dev_dir(a) + "/net");
}

// Routes through `ifname`: IPv4 from /proc/net/route (column 1), IPv6 from
// /proc/net/ipv6_route (last column). What dpdk-devbind calls *Active*.
unsigned routes_through(const std::string& ifname) {
    unsigned n = 0;
    {
        std::ifstream f("/proc/net/route");
        std::string line;
        std::getline(f, line);  // header
        while (std::getline(f, line)) {
            std::istringstream s(line);
            std::string name;
            s >> name;
            n += name == ifname;
        }
    }
    std::ifstream f6("/proc/net/ipv6_route");
    for (std::string line; std::getline(f6, line);) {
        const auto sp = line.find_last_of(' ');
        n += sp != std::string::npos && line.substr(sp + 1) == ifname;
    }
    return n;
}

struct Active {
    std::string ifname;
    unsigned routes = 0;
};
std::optional<Active> active_interface(const sysfs::Root& root, PciAddress a) {
    for (const auto& i : interfaces(root, a))
        if (unsigned r = routes_through(i); r > 0)
            return Active{i, r};
    return std::nullopt;
}

std::string modes_text(const vfio::DeviceSupport& s) {
    std::string out;
    for (const auto& m : s.modes)
        if (m.available)
            out += (out.empty() ? "" : ",") + std::string(vfio::to_string(m.mode)) +
                   (s.automatic == m.mode ? "(auto)" : "");
    return out.empty() ? "none" : out;
}

std::string line_for(const sysfs::Root& root, const pci::ScannedDevice& d,
                     const vfio::DeviceSupport* s) {
    std::string l = d.addr.str() + " '" + hex4(d.ids.vendor) + ":" + hex4(d.ids.device) +
                    " class " + hex_digits(d.ids.class_code >> 8, 4) + "'";
    for (const auto& i : interfaces(root, d.addr))
        l += " if=" + i;
    l += " drv=" + (d.driver.empty() ? std::string("none") : d.driver);
    if (!d.driver_override.empty() && d.driver_override != "(null)")
        l += " override=" + d.driver_override;
    if (!d.iommu_group) {
        l += " iommu_group=none";
    } else {
        l += " iommu_group=" + std::to_string(*d.iommu_group);
        if (s && s->group_members.size() > 1) {
            std::string mates;
            for (const auto& m : s->group_members)
                if (m.addr != d.addr)
                    mates += (mates.empty() ? "" : ",") + m.addr.str() + "(" +
                             (m.driver.empty() ? "none" : m.driver) + (m.blocks ? ",blocks" : "") +
                             ")";
            l += "[" + mates + "]";
        }
    }
    if (s) {
        if (s->bound)
            l += " vfio=" + modes_text(*s);
        else
            l += " vfio=bind-first";
        if (s->bound && !s->group_viable)
            l += " group-not-viable";
    }
    if (auto a = active_interface(root, d.addr))
        l += " *Active*";
    return l;
}

int status(const sysfs::Root& root, std::optional<Kind> only) {
    auto all = pci::scan(root);
    if (!all) {
        std::fprintf(stderr, "vfiokit-devbind: %s\n", all.error().message().c_str());
        return 1;
    }
    const auto kernel = vfio::probe_kernel(root);
    struct Section {
        Kind kind;
        const char* title;
    };
    const Section sections[] = {
        {Kind::net, "Network devices"},
        {Kind::dma, "Crypto and DMA devices"},
        {Kind::misc, "Other devices"},
    };
    for (const auto& sec : sections) {
        if (only && *only != sec.kind)
            continue;
        // DPDK's three lists per kind: owned by VFIO, by a kernel driver, by none.
        std::vector<std::string> vfio_lines, kernel_lines, none_lines;
        for (const auto& d : *all) {
            if (kind_of(d.ids.class_code) != sec.kind)
                continue;
            auto s = vfio::probe_device(root, kernel, d.addr);
            const std::string l = line_for(root, d, s ? &*s : nullptr);
            (d.vfio_bound ? vfio_lines : d.driver.empty() ? none_lines : kernel_lines).push_back(l);
        }
        auto print = [](const std::string& title, const std::vector<std::string>& lines) {
            std::printf("\n%s\n%s\n", title.c_str(), std::string(title.size(), '=').c_str());
            if (lines.empty())
                std::printf("<none>\n");
            for (const auto& l : lines)
                std::printf("%s\n", l.c_str());
        };
        print(std::string(sec.title) + " using vfio-pci", vfio_lines);
        print(std::string(sec.title) + " using a kernel driver", kernel_lines);
        print(std::string("Other ") + (sec.kind == Kind::misc ? "devices" : sec.title) +
                  " (no driver)",
              none_lines);
    }
    return 0;
}

// Writes `value` to a sysfs attribute; errno-style errors name the file.
Result<void> write_attr(const std::string& path, std::string_view value) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(Error(errno, "open " + path + " for writing"));
    const ssize_t n = ::write(fd, value.data(), value.size());
    const int e = errno;
    ::close(fd);
    if (n != static_cast<ssize_t>(value.size()))
        return fail(Error(n < 0 ? e : EIO, "write '" + std::string(value) + "' to " + path));
    return {};
}

std::string current_driver(const sysfs::Root& root, PciAddress a) {
    return root.link_name(dev_dir(a) + "/driver").value_or("");
}

// Takes the device from its driver, if it has one.
Result<void> unbind(const sysfs::Root& root, PciAddress a) {
    const std::string drv = current_driver(root, a);
    if (drv.empty())
        return {};
    return write_attr(dev_dir(a) + "/driver/unbind", a.str());
}

// driver_override, unbind, drivers_probe: the kernel's way to pick the
// driver of one device (Documentation/ABI/testing/sysfs-bus-pci).
Result<void> bind(const sysfs::Root& root, PciAddress a, const std::string& drv) {
    if (current_driver(root, a) == drv)
        return {};
    if (auto r = write_attr(dev_dir(a) + "/driver_override", drv); !r)
        return r;
    if (auto r = unbind(root, a); !r)
        return r;
    // drivers_probe fails (EINVAL/ENODEV) when no driver takes the device;
    // the check below says so with more to go on.
    (void)write_attr("/sys/bus/pci/drivers_probe", a.str());
    const std::string now = current_driver(root, a);
    // A kernel driver keeps no override: a later rescan or hotplug of the
    // device goes to its normal driver. vfio-pci keeps it, so that the
    // kernel does not take the device back behind the user's back (DPDK's
    // script clears it in both cases).
    if (drv != "vfio-pci")
        (void)write_attr(dev_dir(a) + "/driver_override", "\n");
    if (now != drv)
        return fail(Error(ENODEV, "device " + a.str() + ": driver " + drv + " did not take it (" +
                                      (now.empty() ? std::string("it has no driver now")
                                                   : "it is bound to " + now) +
                                      ")")
                        .hint("see dmesg for the driver's reason; check the driver supports "
                              "the device (" + drv + "'s id table)"));
    return {};
}

struct Args {
    enum class Cmd { none, status, bind, unbind } cmd = Cmd::none;
    std::string driver;
    bool force = false;
    bool with_group = false;
    std::optional<Kind> only;
    std::string sysroot;
    std::vector<PciAddress> devices;
};

int bad_use(const std::string& why) {
    std::fprintf(stderr, "vfiokit-devbind: %s (see --help)\n", why.c_str());
    return 2;
}

// Moves one device; prints what happened. False when it did not end where
// asked.
bool move(const sysfs::Root& root, const Args& a, PciAddress dev, std::set<PciAddress>& done) {
    if (done.count(dev))
        return true;
    done.insert(dev);
    const std::string before = current_driver(root, dev);
    const char* verb = a.cmd == Args::Cmd::bind ? "bind" : "unbind";
    if (auto act = active_interface(root, dev); act && !a.force && !before.empty()) {
        std::fprintf(stderr,
                     "vfiokit-devbind: %s %s: refused: its interface %s has %u active route(s) "
                     "(it may carry this machine's connection); give --force to take it from %s "
                     "anyway\n",
                     verb, dev.str().c_str(), act->ifname.c_str(), act->routes, before.c_str());
        return false;
    }
    if (a.cmd == Args::Cmd::unbind) {
        if (before.empty()) {
            std::printf("%s: has no driver\n", dev.str().c_str());
            return true;
        }
        if (auto r = unbind(root, dev); !r) {
            std::fprintf(stderr, "vfiokit-devbind: unbind %s: %s\n", dev.str().c_str(),
                         r.error().message().c_str());
            return false;
        }
        std::printf("%s: unbound from %s\n", dev.str().c_str(), before.c_str());
        return true;
    }
    if (before == a.driver) {
        std::printf("%s: already bound to %s\n", dev.str().c_str(), a.driver.c_str());
    } else if (auto r = bind(root, dev, a.driver); !r) {
        std::fprintf(stderr, "vfiokit-devbind: bind %s to %s: %s\n", dev.str().c_str(),
                     a.driver.c_str(), r.error().message().c_str());
        return false;
    } else {
        std::printf("%s: bound to %s (was %s)\n", dev.str().c_str(), a.driver.c_str(),
                    before.empty() ? "no driver" : before.c_str());
    }
    if (a.driver != "vfio-pci")
        return true;
    // What the EAL will find: the same probe it runs.
    auto s = vfio::probe_device(root, vfio::probe_kernel(root), dev);
    if (!s) {
        std::fprintf(stderr, "vfiokit-devbind: %s: %s\n", dev.str().c_str(),
                     s.error().message().c_str());
        return false;
    }
    bool ok = true;
    for (const auto& m : s->group_members) {
        if (m.addr == dev || !m.blocks)
            continue;
        if (a.with_group) {
            std::printf("%s: group-mate of %s (IOMMU group %u), on %s: moving it too\n",
                        m.addr.str().c_str(), dev.str().c_str(), s->iommu_group.value_or(0),
                        m.driver.c_str());
            ok = move(root, a, m.addr, done) && ok;
        } else {
            std::fprintf(stderr,
                         "vfiokit-devbind: warning: %s shares IOMMU group %u with %s and is "
                         "bound to %s, a driver that does DMA: VFIO cannot use the group until "
                         "it is unbound or on vfio-pci too (run again with --with-group to "
                         "move it)\n",
                         m.addr.str().c_str(), s->iommu_group.value_or(0), dev.str().c_str(),
                         m.driver.c_str());
        }
    }
    if (a.with_group)
        s = vfio::probe_device(root, vfio::probe_kernel(root), dev);
    if (s)
        std::printf("%s: VFIO modes: %s%s\n", dev.str().c_str(), modes_text(*s).c_str(),
                    s->automatic ? "" : (" (" + s->automatic_reason + ")").c_str());
    return ok;
}

}  // namespace

int main(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        auto value = [&](std::string_view opt) -> std::optional<std::string> {
            if (arg.starts_with(std::string(opt) + "="))
                return std::string(arg.substr(opt.size() + 1));
            if (arg == opt && i + 1 < argc)
                return std::string(argv[++i]);
            return std::nullopt;
        };
        if (arg == "-h" || arg == "--help") {
            usage(stdout);
            return 0;
        } else if (arg == "-s" || arg == "--status") {
            a.cmd = Args::Cmd::status;
        } else if (arg.starts_with("--status-dev")) {
            auto v = value("--status-dev");
            if (!v)
                return bad_use("--status-dev needs net, dma or misc");
            a.cmd = Args::Cmd::status;
            if (*v == "net")
                a.only = Kind::net;
            else if (*v == "dma" || *v == "crypto")
                a.only = Kind::dma;
            else if (*v == "misc")
                a.only = Kind::misc;
            else
                return bad_use("--status-dev '" + *v + "': give net, dma or misc");
        } else if (arg == "-b" || arg.starts_with("--bind")) {
            auto v = arg == "-b" ? (i + 1 < argc ? std::optional<std::string>(argv[++i])
                                                 : std::nullopt)
                                 : value("--bind");
            if (!v || v->empty())
                return bad_use("-b/--bind needs a driver name (vfio-pci, e1000, ...)");
            a.cmd = Args::Cmd::bind;
            a.driver = *v;
        } else if (arg == "-u" || arg == "--unbind") {
            a.cmd = Args::Cmd::unbind;
        } else if (arg == "--force") {
            a.force = true;
        } else if (arg == "--with-group") {
            a.with_group = true;
        } else if (arg.starts_with("--sysroot")) {
            auto v = value("--sysroot");
            if (!v)
                return bad_use("--sysroot needs a directory");
            a.sysroot = *v;
        } else if (!arg.empty() && arg[0] == '-') {
            return bad_use("unknown option " + std::string(arg));
        } else {
            // DPDK's script takes short addresses (00:04.0) too.
            std::string full(arg);
            if (std::count(full.begin(), full.end(), ':') == 1)
                full = "0000:" + full;
            auto p = PciAddress::parse(full);
            if (!p)
                return bad_use("'" + std::string(arg) + "' is not a PCI address");
            a.devices.push_back(*p);
        }
    }
    const sysfs::Root root(a.sysroot);
    switch (a.cmd) {
    case Args::Cmd::none:
        usage(stderr);
        return 2;
    case Args::Cmd::status:
        if (!a.devices.empty())
            return bad_use("--status takes no address");
        return status(root, a.only);
    case Args::Cmd::bind:
    case Args::Cmd::unbind:
        break;
    }
    if (a.devices.empty())
        return bad_use("give at least one PCI address");
    if (!a.sysroot.empty())
        return bad_use("--sysroot is for --status only: binding writes the running kernel's sysfs");
    if (a.with_group && (a.cmd != Args::Cmd::bind || a.driver != "vfio-pci"))
        return bad_use("--with-group goes with -b vfio-pci");
    if (a.cmd == Args::Cmd::bind && !root.exists("/sys/bus/pci/drivers/" + a.driver)) {
        std::fprintf(stderr,
                     "vfiokit-devbind: no driver '%s' in this kernel (/sys/bus/pci/drivers/%s "
                     "is missing): load it (modprobe %s) or check the name\n",
                     a.driver.c_str(), a.driver.c_str(), a.driver.c_str());
        return 1;
    }
    bool ok = true;
    std::set<PciAddress> done;
    for (const auto& d : a.devices) {
        if (!root.exists(dev_dir(d))) {
            std::fprintf(stderr, "vfiokit-devbind: %s: no such PCI device (see --status)\n",
                         d.str().c_str());
            ok = false;
            continue;
        }
        ok = move(root, a, d, done) && ok;
    }
    return ok ? 0 : 1;
}

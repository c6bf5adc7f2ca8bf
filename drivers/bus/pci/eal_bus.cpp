// The PCI bus as the EAL sees it (vfiokit/eal/bus.hpp): registered by a
// static object, so linking this library in makes Eal::init scan PCI and
// probe every registered PCI driver (registered_drivers()).
#include <algorithm>
#include <cerrno>
#include <optional>

#include "vfiokit/bus/pci/bus.hpp"
#include "vfiokit/eal/bus.hpp"

namespace vfiokit::pci {

namespace {

// One EAL's PCI bus: the pci::Bus (which owns the probed devices) and what
// it reported.
class ProbedPci final : public eal::ProbedBus {
public:
    ProbedPci(vfio::Vfio& v, sysfs::Root root) : bus(v, std::move(root)) {}
    [[nodiscard]] const std::vector<eal::DeviceReport>& report() const override { return report_; }
    [[nodiscard]] std::vector<eal::RemovalRequest> removal_requests() override {
        std::vector<eal::RemovalRequest> out;
        for (auto& r : bus.removal_requests())
            out.push_back({"pci", r.addr, std::move(r.driver), r.signals});
        return out;
    }
    [[nodiscard]] Result<void> remove(PciAddress a) override {
        if (!bus.find(a))
            return eal::ProbedBus::remove(a);
        // Gone from the report too, whether the release went well or not:
        // the device is no longer probed.
        std::erase_if(report_, [&](const eal::DeviceReport& r) { return r.addr == a; });
        return bus.remove(a);
    }
    [[nodiscard]] Result<eal::DeviceReport> probe(const eal::AllowedDevice& device,
                                                  vfio::Container* into,
                                                  bool bind_vfio) override {
        auto o = bus.probe(device, into, bind_vfio);
        if (!o)
            return fail(std::move(o.error()));
        eal::DeviceReport r{"pci", o->addr, o->driver, o->probed, true, o->reason};
        // The report keeps one entry per device: the newest outcome.
        std::erase_if(report_, [&](const eal::DeviceReport& x) { return x.addr == r.addr; });
        report_.push_back(r);
        return r;
    }
    [[nodiscard]] bool has(PciAddress a) const override {
        return std::any_of(bus.devices().begin(), bus.devices().end(),
                           [&](const BoundDevice& b) { return b.pci->address() == a; });
    }

    Bus bus;
    std::vector<eal::DeviceReport> report_;
};

// A secondary's PCI devices: the primary's, each with the instance its
// driver's secondary probe made. Nothing here releases a device (they are
// the primary's); the instance goes before its PciDevice.
class SecondaryPci final : public eal::ProbedBus {
public:
    struct Entry {
        std::unique_ptr<PciDevice> pci;
        std::unique_ptr<DriverInstance> instance;
    };
    explicit SecondaryPci(vfio::Vfio& v) : vfio(&v) {}
    ~SecondaryPci() override {
        while (!entries.empty()) {
            entries.back().instance.reset();
            entries.pop_back();
        }
    }
    [[nodiscard]] const std::vector<eal::DeviceReport>& report() const override { return report_; }
    // The driver's secondary instance, then the PciDevice, then this
    // process's copies of the device's fds (share.hpp: never the
    // primary's objects). The kernel's unplug waits for those copies too.
    [[nodiscard]] Result<void> remove(PciAddress a) override {
        auto it = std::find_if(entries.begin(), entries.end(),
                               [&](const Entry& e) { return e.pci->address() == a; });
        if (it == entries.end())
            return eal::ProbedBus::remove(a);
        vfio::Device* dev = vfio->find_device(a);
        it->instance.reset();
        entries.erase(it);
        std::erase_if(report_, [&](const eal::DeviceReport& r) { return r.addr == a; });
        if (dev != nullptr)
            if (auto r = vfio->release_device(*dev); !r)
                return fail(std::move(r.error()).context("remove device " + a.str() +
                                                         " (secondary)"));
        return {};
    }
    [[nodiscard]] bool has(PciAddress a) const override {
        return std::any_of(entries.begin(), entries.end(),
                           [&](const Entry& e) { return e.pci->address() == a; });
    }

    vfio::Vfio* vfio;
    std::vector<Entry> entries;
    std::vector<eal::DeviceReport> report_;
};

class EalPciBus final : public eal::Bus {
public:
    [[nodiscard]] std::string_view name() const override { return "pci"; }
    [[nodiscard]] Result<std::unique_ptr<eal::ProbedBus>> probe(const eal::BusContext& ctx) override;
    [[nodiscard]] Result<std::unique_ptr<eal::ProbedBus>> probe_secondary(
        const eal::BusContext& ctx) override;
};

Result<DeviceIds> read_ids(const PciDevice& d) {
    DeviceIds ids;
    auto v = d.config_read(0x00, 4);   // vendor, device
    auto s = d.config_read(0x2c, 4);   // subsystem vendor, subsystem
    if (!v)
        return fail(std::move(v.error()));
    if (!s)
        return fail(std::move(s.error()));
    ids.vendor = static_cast<std::uint16_t>(*v);
    ids.device = static_cast<std::uint16_t>(*v >> 16);
    ids.subsystem_vendor = static_cast<std::uint16_t>(*s);
    ids.subsystem_device = static_cast<std::uint16_t>(*s >> 16);
    return ids;
}

Result<std::unique_ptr<eal::ProbedBus>> EalPciBus::probe_secondary(const eal::BusContext& ctx) {
    auto p = std::make_unique<SecondaryPci>(ctx.vfio);
    const auto& opts = ctx.options;
    std::optional<Error> first;
    for (const auto& c : ctx.vfio.containers()) {
        for (const auto& dev : c->devices()) {
            const PciAddress a = dev->address();
            const eal::AllowedDevice* al = nullptr;
            for (const auto& x : opts.allow)
                if (x.addr == a)
                    al = &x;
            if (!opts.allow.empty() && al == nullptr)
                continue;
            if (std::any_of(opts.block.begin(), opts.block.end(),
                            [&](const PciAddress& b) { return b == a; }))
                continue;
            auto pci = std::make_unique<PciDevice>(*dev);
            eal::DeviceReport& out = p->report_.emplace_back();
            out.bus = "pci";
            out.addr = a;
            out.requested = al != nullptr;
            auto failed = [&](Error e) {
                out.reason = e.message();
                if (al != nullptr && !first)
                    first = std::move(e.context("-a " + a.str()));
            };
            auto ids = read_ids(*pci);
            if (!ids) {
                failed(std::move(ids.error()));
                continue;
            }
            Driver* drv = nullptr;
            // The first, as the primary's bus chose; vDPA drivers serve a
            // front end from the primary alone (no secondary support).
            for (Driver* d : registered_drivers())
                if (drv == nullptr && d->matches(*ids) && d->info().cls == DriverClass::net)
                    drv = d;
            if (drv == nullptr) {
                failed(Error(ENODEV, "no driver linked in matches the primary's device " + a.str()));
                continue;
            }
            out.driver = std::string(drv->name());
            auto args = DriverArgs::parse(drv->info(), a,
                                          al ? std::span<const eal::DeviceArg>(al->args)
                                             : std::span<const eal::DeviceArg>());
            if (!args) {
                failed(std::move(args.error()));
                continue;
            }
            auto inst = drv->probe_secondary_instance(*pci, *args);
            if (!inst) {
                failed(std::move(inst.error()).context("secondary probe by driver " + out.driver));
                continue;
            }
            out.probed = true;
            p->entries.push_back({std::move(pci), std::move(*inst)});
        }
    }
    // An -a device the primary does not have.
    for (const auto& al : opts.allow)
        if (!first && std::none_of(p->report_.begin(), p->report_.end(),
                                   [&](const eal::DeviceReport& r) { return r.addr == al.addr; }))
            first = Error(ENODEV, "the primary has not probed this device")
                        .hint("name a device from the primary's -a list")
                        .context("-a " + al.addr.str());
    if (first)
        return fail(std::move(*first));
    return std::unique_ptr<eal::ProbedBus>(std::move(p));
}

Result<std::unique_ptr<eal::ProbedBus>> EalPciBus::probe(const eal::BusContext& ctx) {
    // Two drivers of one name would make -a arguments and pmdinfo ambiguous.
    const auto drivers = registered_drivers();
    for (std::size_t i = 0; i < drivers.size(); ++i)
        for (std::size_t j = i + 1; j < drivers.size(); ++j)
            if (drivers[i]->name() == drivers[j]->name())
                return fail(Error(EEXIST, "PCI driver " + std::string(drivers[i]->name()) +
                                              " is registered twice")
                                .hint("link each driver into the program once"));

    auto p = std::make_unique<ProbedPci>(ctx.vfio, ctx.root);
    for (Driver* d : drivers)
        p->bus.register_driver(*d);
    for (const auto& al : ctx.options.allow)
        p->bus.allow(al);
    for (const auto& b : ctx.options.block)
        p->bus.block(b);

    auto outcomes = p->bus.probe_all();
    if (!outcomes)
        return fail(std::move(outcomes.error()));

    // The first failed -a device's own error, naming the others.
    std::optional<Error> first;
    std::string others;
    auto failed = [&](Error e, PciAddress a, const std::string& driver) {
        const std::string who = "-a " + a.str() + (driver.empty() ? "" : " (driver " + driver + ")");
        if (!first)
            first = std::move(e.context(who));
        else
            others += (others.empty() ? "" : ", ") + a.str();
    };
    for (const auto& o : *outcomes) {
        p->report_.push_back({"pci", o.addr, o.driver, o.probed, o.requested, o.reason});
        if (o.requested && !o.probed)
            failed(o.error.value_or(Error(ENODEV, o.reason)), o.addr, o.driver);
    }
    // An -a device the scan never saw does not exist.
    for (const auto& al : ctx.options.allow)
        if (std::none_of(outcomes->begin(), outcomes->end(),
                         [&](const ProbeOutcome& o) { return o.addr == al.addr; }) &&
            !p->bus.find(al.addr))
            failed(Error(ENODEV, "no such PCI device")
                       .hint("list the devices with vfiokit-info (or lspci -D)"),
                   al.addr, "");
    if (first) {
        // Destroying p removes what was probed: all or nothing for -a.
        if (!others.empty())
            first->context("also not probed: " + others);
        return fail(std::move(*first));
    }
    return std::unique_ptr<eal::ProbedBus>(std::move(p));
}

EalPciBus& pci_bus() {
    static EalPciBus b;
    return b;
}

const eal::BusRegistration kRegistration(pci_bus());

}  // namespace

}  // namespace vfiokit::pci

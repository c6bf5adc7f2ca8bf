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
        return bus.remove(a);
    }

    Bus bus;
    std::vector<eal::DeviceReport> report_;
};

class EalPciBus final : public eal::Bus {
public:
    [[nodiscard]] std::string_view name() const override { return "pci"; }
    [[nodiscard]] Result<std::unique_ptr<eal::ProbedBus>> probe(const eal::BusContext& ctx) override;
};

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

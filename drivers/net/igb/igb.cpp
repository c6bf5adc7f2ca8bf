#include "igb.hpp"

#include "igb_pmdinfo.hpp"
#include "igbvf_pmdinfo.hpp"
#include "port.hpp"
#include "vf.hpp"

#include <cerrno>

namespace vfiokit::igb {

Result<std::unique_ptr<ethdev::PortOps>> open_port(pci::PciDevice& dev) {
    auto p = IgbPort::open(dev);
    if (!p)
        return fail(std::move(p.error()));
    return std::unique_ptr<ethdev::PortOps>(std::move(*p));
}

namespace {

// Gives an opened port to ethdev and stamps the id it got into the port.
template <class Port>
Result<std::unique_ptr<IgbDevice>> attach_port(Result<std::unique_ptr<Port>> p, const char* name,
                                               const pci::PciDevice& dev) {
    if (!p)
        return fail(std::move(p.error()));
    Port* port = p->get();
    auto id = ethdev::attach(std::move(*p));
    if (!id)
        return fail(std::move(id.error()).context(std::string(name) + " " + dev.address().str()));
    port->set_port_id(*id);
    return std::make_unique<IgbDevice>(*id, port);
}

}  // namespace

IgbDriver::IgbDriver() : DriverFor(pmdinfo::net_e1000_igb) {}

Result<std::unique_ptr<IgbDevice>> IgbDriver::probe(pci::PciDevice& dev, const pci::DriverArgs&) {
    return attach_port(IgbPort::open(dev), kDriverName, dev);
}

Result<std::unique_ptr<IgbDevice>> IgbDriver::probe_secondary(pci::PciDevice& dev,
                                                             const pci::DriverArgs&) {
    const std::string who = std::string(kDriverName) + " " + dev.address().str() + " (secondary)";
    auto pp = ethdev::primary_port(dev.address().str());
    if (!pp)
        return fail(std::move(pp.error()).context(who));
    if (pp->info.driver_name != kDriverName || pp->driver_data == 0)
        return fail(Error(EPROTO, "the primary's port is driven by " + pp->info.driver_name +
                                      " without BAR0's address")
                        .context(who));
    auto bar = dev.map_bar(0, pp->driver_data);
    if (!bar)
        return fail(std::move(bar.error()).context(who + ": BAR0 where the primary has it"));
    if (!bar->mapped(0, 0x10000) ||
        reinterpret_cast<std::uintptr_t>(bar->pointer(0, 1)) != pp->driver_data)
        return fail(Error(ENODEV, "BAR0 is not mapped at the primary's address").context(who));
    auto keep = std::make_shared<pci::Bar>(std::move(*bar));
    auto ops = ethdev::attach_secondary(*pp, &rx_burst, &tx_burst, keep);
    if (!ops)
        return fail(std::move(ops.error()).context(who));
    return std::make_unique<IgbDevice>(pp->id, *ops);
}

IgbVfDriver::IgbVfDriver() : DriverFor(pmdinfo::net_e1000_igb_vf) {}

Result<std::unique_ptr<IgbDevice>> IgbVfDriver::probe(pci::PciDevice& dev, const pci::DriverArgs&) {
    return attach_port(IgbVfPort::open(dev), kVfDriverName, dev);
}

}  // namespace vfiokit::igb

#include "igb.hpp"

#include "igb_pmdinfo.hpp"
#include "igbvf_pmdinfo.hpp"
#include "port.hpp"
#include "vf.hpp"

namespace vfiokit::igb {

Result<std::unique_ptr<ethdev::PortOps>> open_port(pci::PciDevice& dev) {
    auto p = IgbPort::open(dev);
    if (!p)
        return fail(std::move(p.error()));
    return std::unique_ptr<ethdev::PortOps>(std::move(*p));
}

IgbDriver::IgbDriver() : DriverFor(pmdinfo::net_e1000_igb) {}

Result<std::unique_ptr<IgbDevice>> IgbDriver::probe(pci::PciDevice& dev, const pci::DriverArgs&) {
    auto p = IgbPort::open(dev);
    if (!p)
        return fail(std::move(p.error()));
    IgbPort* port = p->get();
    auto id = ethdev::attach(std::move(*p));
    if (!id)
        return fail(std::move(id.error()).context(std::string(kDriverName) + " " +
                                                  dev.address().str()));
    port->set_port_id(*id);
    return std::make_unique<IgbDevice>(*id, port);
}

IgbVfDriver::IgbVfDriver() : DriverFor(pmdinfo::net_e1000_igb_vf) {}

Result<std::unique_ptr<IgbDevice>> IgbVfDriver::probe(pci::PciDevice& dev, const pci::DriverArgs&) {
    auto p = IgbVfPort::open(dev);
    if (!p)
        return fail(std::move(p.error()));
    IgbVfPort* port = p->get();
    auto id = ethdev::attach(std::move(*p));
    if (!id)
        return fail(std::move(id.error()).context("net_e1000_igb_vf " + dev.address().str()));
    port->set_port_id(*id);
    return std::make_unique<IgbDevice>(*id, port);
}

}  // namespace vfiokit::igb

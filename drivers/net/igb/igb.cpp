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

IgbVfDriver::IgbVfDriver() : DriverFor(pmdinfo::net_e1000_igb_vf) {}

Result<std::unique_ptr<IgbDevice>> IgbVfDriver::probe(pci::PciDevice& dev, const pci::DriverArgs&) {
    return attach_port(IgbVfPort::open(dev), kVfDriverName, dev);
}

}  // namespace vfiokit::igb

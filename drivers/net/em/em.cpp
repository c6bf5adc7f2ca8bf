#include "em.hpp"

#include "em_pmdinfo.hpp"
#include "port.hpp"

#include <cerrno>

#include "vfiokit/eal/format.hpp"

namespace vfiokit::em {

Result<std::unique_ptr<EmDevice>> EmDevice::open(pci::PciDevice& dev) {
    const std::string who = "em " + dev.address().str();
    auto id = dev.device_id();
    if (!id)
        return fail(std::move(id.error()).context(who));
    const auto model = model_of(*id);
    if (!model)
        return fail(Error(ENODEV, "device id " + hex(*id) + " is not an 82540EM or 82574L")
                        .context(who));
    auto bar = dev.map_bar(regs::kRegBar);
    if (!bar)
        return fail(std::move(bar.error()).context(who));
    // The data path writes the tail registers through the mapping; the
    // region read/write fallback would cost a system call per burst.
    if (!bar->mapped(0, regs::kRegBytes))
        return fail(Error(ENODEV, "BAR0 registers are not mmap()able").context(who));
    if (auto r = dev.enable_memory_and_bus_master(); !r)
        return fail(std::move(r.error()).context(who));
    auto undo = [&](Error e) {
        (void)dev.disable_bus_master();
        return fail(std::move(e).context(who + " (" + std::string(model->name) + ")"));
    };
    if (auto r = reset(*bar); !r)
        return undo(std::move(r.error()));
    auto mac = read_mac(*bar, model->model);
    if (!mac)
        return undo(std::move(mac.error()));
    auto ops = std::make_unique<EmPort>(dev, std::move(*bar), *model, *mac);
    EmPort* raw = ops.get();
    auto port = ethdev::attach(std::move(ops));
    if (!port)  // ethdev destroyed the port, which took bus mastering away
        return fail(std::move(port.error()).context(who));
    raw->set_port_id(*port);
    return std::unique_ptr<EmDevice>(new EmDevice(raw, *port, *model, *mac));
}

EmDevice::~EmDevice() { ethdev::detach(ops_); }

EmDriver::EmDriver() : DriverFor(pmdinfo::net_e1000_em) {}

Result<std::unique_ptr<EmDevice>> EmDriver::probe(pci::PciDevice& dev, const pci::DriverArgs&) {
    return EmDevice::open(dev);
}

}  // namespace vfiokit::em

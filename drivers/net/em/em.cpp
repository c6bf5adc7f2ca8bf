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

Result<std::unique_ptr<EmDevice>> EmDevice::open_secondary(pci::PciDevice& dev) {
    const std::string who = "em " + dev.address().str() + " (secondary)";
    auto id = dev.device_id();
    if (!id)
        return fail(std::move(id.error()).context(who));
    const auto model = model_of(*id);
    if (!model)
        return fail(Error(ENODEV, "device id " + hex(*id) + " is not an 82540EM or 82574L")
                        .context(who));
    auto pp = ethdev::primary_port(dev.address().str());
    if (!pp)
        return fail(std::move(pp.error()).context(who));
    if (pp->info.driver_name != "net_e1000_em" || pp->driver_data == 0)
        return fail(Error(EPROTO, "the primary's port is driven by " + pp->info.driver_name +
                                      " without BAR0's address")
                        .context(who));
    auto bar = dev.map_bar(regs::kRegBar, pp->driver_data);
    if (!bar)
        return fail(std::move(bar.error()).context(who + ": BAR0 where the primary has it"));
    if (!bar->mapped(0, regs::kRegBytes) ||
        reinterpret_cast<std::uintptr_t>(bar->pointer(0, 1)) != pp->driver_data)
        return fail(Error(ENODEV, "BAR0 is not mapped at the primary's address " +
                                      hex(pp->driver_data))
                        .context(who));
    auto keep = std::make_shared<pci::Bar>(std::move(*bar));
    auto ops = ethdev::attach_secondary(*pp, rx_burst, tx_burst, keep);
    if (!ops)
        return fail(std::move(ops.error()).context(who));
    return std::unique_ptr<EmDevice>(new EmDevice(*ops, pp->id, *model, pp->mac));
}

EmDevice::~EmDevice() { ethdev::detach(ops_); }

EmDriver::EmDriver() : DriverFor(pmdinfo::net_e1000_em) {}

Result<std::unique_ptr<EmDevice>> EmDriver::probe(pci::PciDevice& dev, const pci::DriverArgs&) {
    return EmDevice::open(dev);
}

Result<std::unique_ptr<EmDevice>> EmDriver::probe_secondary(pci::PciDevice& dev,
                                                           const pci::DriverArgs&) {
    return EmDevice::open_secondary(dev);
}

}  // namespace vfiokit::em

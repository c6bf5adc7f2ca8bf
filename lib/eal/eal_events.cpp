// Eal's device events and probes after init (eal.hpp, device_event.hpp),
// and the cross-process part of a removal (hotplug.hpp).
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <iterator>
#include <mutex>

#include "eal_log.hpp"
#include "hotplug.hpp"
#include "vfiokit/eal/eal.hpp"

namespace vfiokit::eal {

bool Eal::holds(PciAddress a) const {
    return std::any_of(buses_.begin(), buses_.end(), [&](const auto& b) { return b->has(a); });
}

void Eal::note_removal_request(const RemovalRequest& r) {
    if (std::find(removal_reported_.begin(), removal_reported_.end(), r.addr) !=
        removal_reported_.end())
        return;
    removal_reported_.push_back(r.addr);
    eal_log.notice("device {} ({}, driver {}): the kernel requests its removal (hot-unplug or "
                   "unbind from vfio-pci); stop its ports and remove it (Eal::remove_device)",
                   r.addr.str(), r.bus, r.driver);
}

int Eal::add_device_event_callback(DeviceEventCallback cb) {
    std::lock_guard g(vfio_->control_lock());
    const int id = next_callback_++;
    callbacks_.emplace_back(id, std::move(cb));
    return id;
}

bool Eal::remove_device_event_callback(int id) {
    std::lock_guard g(vfio_->control_lock());
    return std::erase_if(callbacks_, [&](const auto& c) { return c.first == id; }) != 0;
}

Result<void> Eal::start_device_monitor() {
    std::lock_guard g(vfio_->control_lock());
    if (monitor_)
        return {};
    auto m = UeventMonitor::open();
    if (!m)
        return fail(std::move(m.error()).context("start the device monitor"));
    if (client_ && !subscription_) {
        auto s = hotplug::Subscription::subscribe(*client_);
        if (!s)
            return fail(std::move(s.error()).context("start the device monitor (secondary)"));
        subscription_ = std::make_unique<hotplug::Subscription>(std::move(*s));
    }
    monitor_ = std::move(*m);
    return {};
}

void Eal::stop_device_monitor() {
    std::lock_guard g(vfio_->control_lock());
    monitor_.reset();
}

Result<std::vector<DeviceEvent>> Eal::poll_device_events() {
    std::vector<DeviceEvent> out;
    std::optional<Error> problem;
    std::vector<std::pair<int, DeviceEventCallback>> callbacks;
    {
        std::lock_guard g(vfio_->control_lock());
        const auto now = std::chrono::steady_clock::now();
        // The kernel's requests for devices this process has.
        for (const auto& b : buses_)
            for (auto& r : b->removal_requests()) {
                note_removal_request(r);
                if (std::find(remove_delivered_.begin(), remove_delivered_.end(), r.addr) !=
                    remove_delivered_.end())
                    continue;
                remove_delivered_.push_back(r.addr);
                out.push_back({DeviceEventType::remove, r.bus, r.addr, r.driver, 0, 0, now});
            }
        // A secondary: the primary's removals of devices it holds.
        if (subscription_ && client_) {
            auto removing = subscription_->poll(*client_);
            if (!removing)
                problem = std::move(removing.error());
            else
                for (PciAddress a : *removing) {
                    // Held here (a driver's instance, or only the adopted
                    // fds, which a program may use directly): the
                    // application lets go with remove_device().
                    if (holds(a) || vfio_->find_device(a) != nullptr) {
                        if (std::find(remove_delivered_.begin(), remove_delivered_.end(), a) !=
                            remove_delivered_.end())
                            continue;
                        remove_delivered_.push_back(a);
                        std::string drv;
                        for (const auto& r : device_report())
                            if (r.addr == a && r.probed)
                                drv = r.driver;
                        out.push_back({DeviceEventType::remove, "pci", a, drv, 0, 0, now});
                        continue;
                    }
                    // Nothing of it here: the primary need not wait for us.
                    if (auto ok = subscription_->released(*client_, a); !ok)
                        problem = std::move(ok.error());
                }
        }
        // The kernel's uevents.
        if (monitor_) {
            auto u = monitor_->read_all();
            if (!u)
                problem = std::move(u.error());
            else
                for (const Uevent& ev : *u) {
                    auto e = pci_device_event(ev);
                    if (!e)
                        continue;
                    e->seen = now;
                    if (e->type == DeviceEventType::add)
                        if (auto drv = sysfs::Root(opts_.vfio.sysroot)
                                           .link_name("/sys/bus/pci/devices/" + e->addr.str() +
                                                      "/driver"))
                            e->driver = *drv;
                    out.push_back(std::move(*e));
                }
        }
        callbacks = callbacks_;
    }
    for (const DeviceEvent& e : out)
        for (const auto& [id, cb] : callbacks)
            cb(e);
    if (problem && out.empty())
        return fail(std::move(*problem).context("poll device events"));
    if (problem)
        eal_log.warning("poll device events: {}", problem->message());
    return out;
}

Result<DeviceReport> Eal::probe_device(std::string_view devargs, const ProbeOptions& o) {
    auto al = parse_allowed_device(devargs);
    if (!al)
        return fail(std::move(al.error()).context("probe device"));
    if (role_.type == ProcType::secondary)
        return fail(Error(ENOTSUP, "probe device " + al->addr.str() + " in a secondary process")
                        .hint("probe it in the primary; a secondary started after that adopts it"));
    std::lock_guard g(vfio_->control_lock());
    if (o.container != nullptr &&
        std::none_of(vfio_->containers().begin(), vfio_->containers().end(),
                     [&](const auto& c) { return c.get() == o.container; }))
        return fail(EINVAL, "probe device " + al->addr.str() + ": the container is not this EAL's");
    std::optional<Error> first;
    for (const auto& b : buses_) {
        auto r = b->probe(*al, o.container, o.bind_vfio);
        if (!r) {
            if (!first || first->err() == ENOTSUP)
                first = std::move(r.error());
            continue;
        }
        if (!r->probed)
            return fail(Error(ENODEV, r->reason)
                            .context("probe device " + al->addr.str() +
                                     (r->driver.empty() ? "" : " (driver " + r->driver + ")")));
        // A device probed again at an address is reported afresh.
        std::erase(removal_reported_, al->addr);
        std::erase(remove_delivered_, al->addr);
        return *r;
    }
    if (first)
        return fail(std::move(*first));
    return fail(Error(ENODEV, "probe device " + al->addr.str() + ": no bus is linked in")
                    .hint("link the PCI bus and the drivers (pci_dep, a driver's *_pmd_dep)"));
}

}  // namespace vfiokit::eal

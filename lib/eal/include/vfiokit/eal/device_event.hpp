/// \file
/// Device events (DPDK's rte_dev_event_callback_register, RTE_DEV_EVENT_ADD
/// and RTE_DEV_EVENT_REMOVE, rte_dev_event_monitor_start): what the
/// application learns when a device comes or goes.
///
/// \verbatim
///   remove  the kernel asks for a device this process has (vfio-pci's
///           request interrupt, VFIO_PCI_REQ_IRQ_INDEX: a hot-unplug or an
///           unbind). Stop its ports and give it back (Eal::remove_device);
///           the kernel waits until then, repeating its request every 10 s.
///   removed the kernel has removed a PCI device from the system (a "remove"
///           uevent): after a remove, it means the removal completed.
///   add     a PCI device appeared (an "add" uevent: a hotplug slot, a
///           rescan, a new VF). It is on whatever kernel driver took it;
///           Eal::probe_device() binds it to vfio-pci when asked to and
///           probes it with the registered driver.
/// \endverbatim
///
/// Where they come from: remove from the request eventfds the PCI bus sets
/// on every device it probes (always on); add and removed from the kernel's
/// uevents, read from a NETLINK_KOBJECT_UEVENT socket that
/// Eal::start_device_monitor() opens (as DPDK's monitor does; the kernel
/// broadcasts them whether or not a udev runs). Only messages from the
/// kernel itself (netlink port id 0) are taken.
///
/// How they reach the application: Eal::poll_device_events(), called from
/// the control loop, reads every source without blocking and returns the new
/// events in order, after calling the registered callbacks with each, on
/// the calling thread. Polling rather than a thread of the EAL's own (DPDK
/// calls back on its interrupt thread): a callback typically stops ports and
/// removes the device, which must not race the lcores' bursts; on the
/// thread that also starts and stops them it cannot, and the data path
/// never sees a lock or an event.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vfiokit/eal/error.hpp"
#include "vfiokit/eal/pci_address.hpp"
#include "vfiokit/eal/vfio/syscalls.hpp"

namespace vfiokit::eal {

/// What a device event says happened; the file's description gives each one's meaning.
enum class DeviceEventType { add, remove, removed };
/// "add", "remove", "removed".
[[nodiscard]] std::string_view to_string(DeviceEventType t);

/// One event about a device: what happened, on which bus and address.
struct DeviceEvent {
    DeviceEventType type = DeviceEventType::add;
    std::string bus;     ///< "pci"
    PciAddress addr;
    /// remove: the vfiokit driver that has the device. add: the kernel
    /// driver bound to it when the event was read (often none yet).
    std::string driver;
    std::uint16_t vendor = 0, device = 0;  ///< add: from the uevent (PCI_ID)
    std::chrono::steady_clock::time_point seen;  ///< when the EAL read it
};

/// One kernel uevent, as the netlink socket carries it:
/// "ACTION@DEVPATH\0KEY=VALUE\0KEY=VALUE\0...".
struct Uevent {
    std::string action;     ///< add, remove, bind, unbind, change, ...
    std::string devpath;
    std::string subsystem;  ///< pci, ...
    std::string driver;     ///< DRIVER= (bind events)
    std::string pci_slot;   ///< PCI_SLOT_NAME=
    std::string pci_id;     ///< PCI_ID= ("1234:11E8")
    std::uint64_t seqnum = 0;
};
/// nullopt when the bytes are not a kernel uevent (udev's "libudev" header,
/// no '@' header, no ACTION=, or a header that disagrees with ACTION=).
/// Bytes past the buffer are never read; keys without '=' are skipped.
[[nodiscard]] std::optional<Uevent> parse_uevent(std::span<const std::byte> msg);
/// A PCI uevent as a device event: add and remove (as removed) of a device
/// with a valid PCI_SLOT_NAME; nullopt for anything else.
[[nodiscard]] std::optional<DeviceEvent> pci_device_event(const Uevent& u);

/// The kernel's uevent broadcast (netlink group 1), non-blocking.
class UeventMonitor {
public:
    /// EPERM/EPROTONOSUPPORT naming the socket when the kernel refuses
    /// (CONFIG_NET off, a sandbox without netlink).
    [[nodiscard]] static Result<UeventMonitor> open();
    /// The messages waiting now; ENOBUFS (the kernel dropped messages: the
    /// receive buffer overflowed) is reported once as an error, after which
    /// reading goes on.
    [[nodiscard]] Result<std::vector<Uevent>> read_all();
    [[nodiscard]] int fd() const { return fd_.get(); }

private:
    explicit UeventMonitor(vfio::Fd fd) : fd_(std::move(fd)) {}
    vfio::Fd fd_;
};

}  // namespace vfiokit::eal

// The em poll-mode driver: Intel 82540EM (QEMU's e1000, 8086:100e) and
// 82574L (QEMU's e1000e, 8086:10d3), one rx and one tx queue of legacy
// descriptors, as DPDK's net_e1000_em drives them (doc/em.md).
//
//   // linked with em_pmd_dep: registered, so Eal::init probes em NICs
//   auto eal = Eal::init(argc, argv);            // app -a 0000:00:05.0
//   uint16_t port = *ethdev::find(addr);         // then the ethdev API
//
// Probe maps BAR0 through the device operations, enables bus mastering,
// resets the NIC, reads its Ethernet address from the EEPROM (EERD) and
// attaches an EmPort (port.hpp) to ethdev. Removing the device (the EAL's
// teardown, or a hot unplug) detaches the port.
//
// The driver's declaration (name, ids, 64-bit DMA mask) is em.pmd.json;
// the build turns it into pmdinfo::net_e1000_em and the PMD_INFO_STRING
// dpdk-pmdinfo.py reads.
//
// Ownership: an EmDevice keeps a reference to the PciDevice the bus made
// (which outlives it) and a plain pointer identifying its port's ops,
// which ethdev owns. Thread-safety: probe and remove run on the bus's
// thread; the port follows ethdev's rules.
#pragma once

#include <cstdint>
#include <memory>

#include "hw.hpp"
#include "vfiokit/bus/pci/device.hpp"
#include "vfiokit/bus/pci/driver.hpp"
#include "vfiokit/eal/error.hpp"
#include "vfiokit/ethdev/ethdev.hpp"

namespace vfiokit::em {

class EmDevice final {
public:
    // Probe: see the file comment. On failure nothing stays attached or
    // mapped and bus mastering is off again.
    [[nodiscard]] static Result<std::unique_ptr<EmDevice>> open(pci::PciDevice& dev);
    // The secondary's probe: the primary's started port of `dev`, its
    // BAR0 mapped at the primary's address (the queues' doorbells point
    // there), attached with this process's burst functions. The device is
    // not touched otherwise. Errors: primary_port's (ENODEV: no port in
    // the primary; EAGAIN: not started), EEXIST when the address is taken
    // here.
    [[nodiscard]] static Result<std::unique_ptr<EmDevice>> open_secondary(pci::PciDevice& dev);
    // Detaches the port (ethdev stops it and frees its queues), unless the
    // application closed it already.
    ~EmDevice();
    EmDevice(const EmDevice&) = delete;
    EmDevice& operator=(const EmDevice&) = delete;

    [[nodiscard]] std::uint16_t port_id() const { return port_; }
    [[nodiscard]] const ModelInfo& model() const { return model_; }
    // The address the EEPROM holds (the port's until macaddr_set).
    [[nodiscard]] const ethdev::MacAddr& permanent_mac() const { return mac_; }

private:
    EmDevice(const ethdev::PortOps* ops, std::uint16_t port, ModelInfo model, ethdev::MacAddr mac)
        : ops_(ops), port_(port), model_(model), mac_(mac) {}
    const ethdev::PortOps* ops_;
    std::uint16_t port_;
    ModelInfo model_;
    ethdev::MacAddr mac_;
};

class EmDriver final : public pci::DriverFor<EmDevice> {
public:
    EmDriver();
    [[nodiscard]] Result<std::unique_ptr<EmDevice>> probe(pci::PciDevice& dev,
                                                          const pci::DriverArgs& args) override;
    [[nodiscard]] Result<std::unique_ptr<EmDevice>> probe_secondary(
        pci::PciDevice& dev, const pci::DriverArgs& args) override;
};

// The registered em driver (register.cpp, in programs linked with
// em_pmd_dep): the one Eal::init probes em NICs with.
[[nodiscard]] EmDriver& driver();

}  // namespace vfiokit::em

// Poll-mode driver for the Intel 82576 (igb) physical function: QEMU's
// `igb` device (8086:10c9) in the lab, DPDK's net_e1000_igb.
//
//   // linked with igb_pmd_dep: registered, so Eal::init probes 82576 PFs
//   auto eal = eal::Eal::init(argc, argv);        // app -a 0000:00:04.0
//   auto port = ethdev::find(*PciAddress::parse("0000:00:04.0"));
//   ethdev::configure(*port, 4, 1, {.rx_offloads = offload::kRxRssHash,
//                                   .rss_hf = rss::kIpv4Udp});
//   ... rx_queue_setup x4, tx_queue_setup, start, rx_burst / tx_burst
//
// What it does (doc/igb.md has the register-level story):
// - probe: maps BAR0, resets the device (CTRL.RST), reads the MAC from
//   RAL0/RAH0 (the device loads it from the EEPROM at reset; EERD words
//   0-2 when RAH0 is not valid), and restarts PHY auto-negotiation;
// - up to 16 rx and 16 tx queues with advanced descriptors (one buffer per
//   packet, SRRCTL), RSS over IPv4/IPv6 with TCP/UDP ports (MRQC, RETA,
//   RSSRK) with the hash in Mbuf::rss_hash, CRC strip or keep, VLAN strip
//   (CTRL.VME, tag in Mbuf::vlan_tci) and insert (context descriptor + VLE),
//   rx IPv4/L4 checksum status, promiscuous and all-multicast, MTU (RLPML);
// - stats from the clear-on-read counters, accumulated; xstats with DPDK's
//   igb names;
// - rx interrupts: one MSI-X vector per rx queue (IVAR, EIMS, EIAC, GPIE).
//
// The driver's declaration (name, ids, 64-bit DMA) is igb.pmd.json.
//
// Ownership: the port (ethdev) owns the device state (IgbPort); the bus's
// driver instance (IgbDevice) only detaches it on remove. IgbPort keeps a
// reference to the PciDevice the bus made, which outlives it.
// Thread-safety: ethdev's rules (control calls from one thread; each queue
// polled by one thread).
#pragma once

#include <cstdint>
#include <memory>

#include "vfiokit/bus/pci/driver.hpp"
#include "vfiokit/eal/error.hpp"
#include "vfiokit/ethdev/ethdev.hpp"

namespace vfiokit::igb {

inline constexpr std::uint16_t kVendorIntel = 0x8086;
inline constexpr std::uint16_t kDevice82576 = 0x10c9;
inline constexpr std::uint16_t kDevice82576Vf = 0x10ca;
inline constexpr char kDriverName[] = "net_e1000_igb";
inline constexpr char kVfDriverName[] = "net_e1000_igb_vf";

// What the bus keeps per probed device: the port it attached.
class IgbDevice final {
public:
    IgbDevice(std::uint16_t port, const ethdev::PortOps* ops) : port_(port), ops_(ops) {}
    ~IgbDevice() { ethdev::detach(ops_); }
    IgbDevice(const IgbDevice&) = delete;
    IgbDevice& operator=(const IgbDevice&) = delete;
    // The ethdev port id given at probe (free again once the port is closed).
    [[nodiscard]] std::uint16_t port_id() const { return port_; }

private:
    std::uint16_t port_;
    const ethdev::PortOps* ops_;
};

// Makes the PortOps for an 82576 PF (reset, MAC, PHY started). Exposed for
// programs that run a pci::Bus of their own. Errors name the device.
[[nodiscard]] Result<std::unique_ptr<ethdev::PortOps>> open_port(pci::PciDevice& dev);

class IgbDriver final : public pci::DriverFor<IgbDevice> {
public:
    IgbDriver();
    [[nodiscard]] Result<std::unique_ptr<IgbDevice>> probe(pci::PciDevice& dev,
                                                           const pci::DriverArgs& args) override;
    // In a secondary: the primary's started port of `dev`, BAR0 mapped at
    // the primary's address (the queues' doorbells point there), attached
    // with this process's burst functions; the device is not touched.
    [[nodiscard]] Result<std::unique_ptr<IgbDevice>> probe_secondary(
        pci::PciDevice& dev, const pci::DriverArgs& args) override;
};

// The VF side (8086:10ca, net_e1000_igb_vf): two queue pairs, bring-up and
// MAC through the PF/VF mailbox; the PF's driver (the kernel's igb) owns
// filters, CRC and VLAN stripping (vf.hpp).
class IgbVfDriver final : public pci::DriverFor<IgbDevice> {
public:
    IgbVfDriver();
    [[nodiscard]] Result<std::unique_ptr<IgbDevice>> probe(pci::PciDevice& dev,
                                                           const pci::DriverArgs& args) override;
};

// The registered drivers (register.cpp, in programs linked with igb_pmd_dep).
[[nodiscard]] IgbDriver& driver();
[[nodiscard]] IgbVfDriver& vf_driver();

}  // namespace vfiokit::igb

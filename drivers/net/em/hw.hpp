// What differs between the two em models, and the register sequences the
// control path runs: reset, reading the Ethernet address, link setup.
//
// Thread-safety: none; the control path (one thread) owns the registers.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

#include "regs.hpp"
#include "vfiokit/bus/pci/bar.hpp"
#include "vfiokit/eal/error.hpp"
#include "vfiokit/ethdev/ethdev.hpp"

namespace vfiokit::em {

enum class Model { i82540em, i82574l };

struct ModelInfo {
    Model model;
    std::uint16_t device_id;
    std::string_view name;             // "82540EM"
    std::uint32_t max_rx_pktlen;       // largest frame (with CRC) it receives with RCTL.LPE
    std::uint32_t tipg_ipgt;           // TIPG.IPGT for copper (regs.hpp, Tipg)
};

// The model of a PCI device id; nullopt for ids the driver does not know.
[[nodiscard]] std::optional<ModelInfo> model_of(std::uint16_t device_id);

// Ethernet header, CRC and one VLAN tag: a frame's bytes beyond its MTU.
inline constexpr std::uint32_t kFrameOverhead = 14 + 4 + 4;
// Without RCTL.LPE the NIC takes frames up to 1522 bytes (VLAN-tagged
// 1518) [SDM 13.4, RCTL.LPE].
inline constexpr std::uint32_t kMaxStandardFrame = 1522;

// Masks every interrupt, stops receive and transmit, resets the MAC
// (CTRL.RST) and waits for it to finish [SDM 14.2 and 14.3; 82574 4.6].
// ETIMEDOUT if CTRL.RST does not clear.
[[nodiscard]] Result<void> reset(pci::Bar& bar);

// The Ethernet address from EEPROM words 0..2 through EERD. ETIMEDOUT if
// a word read does not finish; EINVAL if the address is not a unicast one.
[[nodiscard]] Result<ethdev::MacAddr> read_mac(pci::Bar& bar, Model model);

// RAL0/RAH0 := a, valid. `Io` as in register.hpp.
template <class Io>
void write_mac(Io& io, const ethdev::MacAddr& a) {
    const auto& b = a.bytes;
    // RAH0 invalid first and valid last: the filter never matches half an
    // address.
    regs::Rah0::zero().write(io);
    regs::Ral0::zero()
        .set_low(std::uint32_t{b[0]} | std::uint32_t{b[1]} << 8 | std::uint32_t{b[2]} << 16 |
                 std::uint32_t{b[3]} << 24)
        .write(io);
    regs::Rah0::zero().set_high(std::uint32_t{b[4]} | std::uint32_t{b[5]} << 8).set_av(1).write(io);
}

// CTRL.SLU with speed and duplex from auto-negotiation (no forcing); if
// the link is down, restarts the PHY's auto-negotiation (MDIC).
void link_setup(pci::Bar& bar);

// The link as STATUS reports it.
template <class Io>
[[nodiscard]] ethdev::Link link_status(Io& io) {
    const auto s = regs::Status::read(io);
    ethdev::Link l;
    l.up = s.lu() != 0;
    if (l.up) {
        l.speed_mbps = regs::speed_mbps(s.speed());
        l.full_duplex = s.fd() != 0;
        l.autoneg = true;  // copper: speed and duplex come from auto-negotiation
    }
    return l;
}

// Writes PHY register `reg` through MDIC. ETIMEDOUT if MDIC.READY never
// comes, EIO if the PHY reports an error.
[[nodiscard]] Result<void> phy_write(pci::Bar& bar, std::uint32_t reg, std::uint16_t value);

}  // namespace vfiokit::em

#include "hw.hpp"

#include <cerrno>
#include <string>
#include <thread>

namespace vfiokit::em {

namespace {

using Clock = std::chrono::steady_clock;

// Polls `done` every `step` until it holds or `timeout` passes.
template <class F>
bool poll_until(F done, std::chrono::microseconds timeout, std::chrono::microseconds step) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
        if (done())
            return true;
        if (Clock::now() >= deadline)
            return done();
        std::this_thread::sleep_for(step);
    }
}

template <class Eerd>
Result<std::uint16_t> eerd_read(pci::Bar& bar, std::uint32_t word) {
    Eerd::zero().set_addr(word).set_start(1).write(bar);
    Eerd r;
    // A word takes microseconds on hardware; QEMU answers at once.
    if (!poll_until([&] { return (r = Eerd::read(bar)).done() != 0; },
                    std::chrono::milliseconds(100), std::chrono::microseconds(10)))
        return fail(Error(ETIMEDOUT, "EERD read of EEPROM word " + std::to_string(word) + ": DONE never set")
                        .hint("the EEPROM did not answer; the NIC may be in a bad state "
                              "(reset the device: unbind and bind vfio-pci again)"));
    return static_cast<std::uint16_t>(r.data());
}

}  // namespace

std::optional<ModelInfo> model_of(std::uint16_t device_id) {
    // max_rx_pktlen: 16128 for the 82540EM and 9234 for the 82574L, the
    // jumbo limits Intel's drivers use for these parts. IPGT: regs::Tipg.
    switch (device_id) {
    case regs::kDevice82540em:
        return ModelInfo{Model::i82540em, device_id, "82540EM", 16128, 10};
    case regs::kDevice82574l:
        return ModelInfo{Model::i82574l, device_id, "82574L", 9234, 8};
    default:
        return std::nullopt;
    }
}

Result<void> reset(pci::Bar& bar) {
    // Quiesce first [SDM 14.2]: no interrupts, no new DMA; let what is in
    // flight land before the reset.
    regs::Imc::zero().set_causes(~0u).write(bar);
    regs::Rctl::zero().write(bar);
    regs::Tctl::zero().set_psp(1).write(bar);
    (void)regs::Status::read(bar);  // flushes the posted writes
    std::this_thread::sleep_for(std::chrono::milliseconds(10));

    regs::Ctrl::read(bar).set_rst(1).write(bar);
    // The 82540EM needs ~1 us, the 82574L reloads its EEPROM-loaded
    // settings after the reset [82574 4.6.1]; RST self-clears when done.
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (!poll_until([&] { return regs::Ctrl::read(bar).rst() == 0; }, std::chrono::milliseconds(200),
                    std::chrono::milliseconds(1)))
        return fail(Error(ETIMEDOUT, "device reset: CTRL.RST still set after 200 ms"));
    // A reset unmasks nothing, but clear any cause latched before it.
    regs::Imc::zero().set_causes(~0u).write(bar);
    (void)regs::Icr::read(bar);
    return {};
}

Result<ethdev::MacAddr> read_mac(pci::Bar& bar, Model model) {
    ethdev::MacAddr a;
    for (std::uint32_t w = 0; w < regs::kEepromMacWords; ++w) {
        auto v = model == Model::i82574l ? eerd_read<regs::Eerd82574>(bar, w)
                                         : eerd_read<regs::Eerd82540>(bar, w);
        if (!v)
            return fail(std::move(v.error()));
        a.bytes[2 * w] = static_cast<std::uint8_t>(*v & 0xff);
        a.bytes[2 * w + 1] = static_cast<std::uint8_t>(*v >> 8);
    }
    const bool zero = a == ethdev::MacAddr{};
    if (zero || (a.bytes[0] & 1))
        return fail(Error(EINVAL, "EEPROM Ethernet address " + a.str() + " is not a unicast address")
                        .hint("the EEPROM is blank or corrupt; set an address with macaddr_set"));
    return a;
}

Result<void> phy_write(pci::Bar& bar, std::uint32_t reg, std::uint16_t value) {
    regs::Mdic::zero()
        .set_data(value)
        .set_regadd(reg)
        .set_phyadd(regs::kPhyAddr)
        .set_op(regs::kMdicOpWrite)
        .write(bar);
    regs::Mdic r;
    if (!poll_until([&] { return (r = regs::Mdic::read(bar)).ready() != 0; },
                    std::chrono::milliseconds(100), std::chrono::microseconds(50)))
        return fail(Error(ETIMEDOUT, "MDIC write of PHY register " + std::to_string(reg) + ": READY never set"));
    if (r.error())
        return fail(Error(EIO, "MDIC write of PHY register " + std::to_string(reg) +
                                           ": the PHY reported an error"));
    return {};
}

void link_setup(pci::Bar& bar) {
    // Copper: the MAC takes speed and duplex from the PHY's
    // auto-negotiation; SLU lets it see the link [SDM 14.3, "Link Setup
    // Mechanisms"; 82574 4.6.5].
    regs::Ctrl::read(bar).set_slu(1).set_asde(1).set_frcspd(0).set_frcdplx(0).set_ilos(0).set_lrst(0).write(
        bar);
    if (regs::Status::read(bar).lu())
        return;
    // Down after the reset: start auto-negotiation again, as after a cable
    // change. Best effort: link() reports what comes of it.
    (void)phy_write(bar, regs::kPhyCtrl,
                    regs::kPhyCtrlAutonegEnable | regs::kPhyCtrlRestartAutoneg |
                        regs::kPhyCtrlFullDuplex | regs::kPhyCtrlSpeed1000);
}

}  // namespace vfiokit::em

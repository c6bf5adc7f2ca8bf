// IgbVfPort: ethdev's PortOps for an 82576 virtual function (8086:10ca),
// the VF side of SR-IOV (private to the driver).
//
// A VF owns two queue pairs and a mailbox; everything else (filters, CRC
// and VLAN stripping, link) belongs to the PF, whose driver (the kernel's
// igb in the lab) answers the VF's mailbox messages (datasheet 7.8.2.9).
// Bring-up: CTRL.RST (the PF sees a VF reset), then the VF_RESET message;
// the PF's reply carries the MAC address it gave the VF and enables the
// VF's queues in VFRE/VFTE. The rings, their start and the burst
// functions are the PF's (common.hpp, rxtx.hpp): only the queue
// registers' offsets differ (kVfQueues).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "common.hpp"
#include "regs.hpp"
#include "vfiokit/bus/pci/bar.hpp"
#include "vfiokit/bus/pci/device.hpp"
#include "vfiokit/ethdev/ethdev.hpp"

namespace vfiokit::igb {

namespace vfregs {

using pci::Register;

// VF CTRL (8.27.x): RST resets this VF only and tells the PF.
struct Ctrl : Register<Ctrl, std::uint32_t, 0x0000> {
    VFIOKIT_FIELD(26, 26, rst)
};
// The VF's view of STATUS: the PF's link.
struct Status : Register<Status, std::uint32_t, 0x0008> {
    VFIOKIT_FIELD(0, 0, fd)
    VFIOKIT_FIELD(1, 1, lu)
    VFIOKIT_FIELD(7, 6, speed)
};
// VF-to-PF mailbox control (8.27.x V2PMAILBOX). PFSTS, PFACK and RSTD
// clear when read.
struct V2pMailbox : Register<V2pMailbox, std::uint32_t, 0x0C40> {
    VFIOKIT_FIELD(0, 0, req)    // a message for the PF is in the buffer
    VFIOKIT_FIELD(1, 1, ack)    // the PF's message was read
    VFIOKIT_FIELD(2, 2, vfu)    // the VF holds the buffer
    VFIOKIT_FIELD(3, 3, pfu)    // the PF holds the buffer
    VFIOKIT_FIELD(4, 4, pfsts)  // the PF wrote a message
    VFIOKIT_FIELD(5, 5, pfack)  // the PF read the VF's message
    VFIOKIT_FIELD(6, 6, rsti)   // the PF is resetting
    VFIOKIT_FIELD(7, 7, rstd)   // the PF finished a reset
};
inline constexpr std::uint32_t kMailboxReadClear = 0xB0;  // PFSTS | PFACK | RSTD
// The mailbox buffer: 16 words.
inline constexpr std::uint32_t kMbmem = 0x0800;
inline constexpr unsigned kMbmemWords = 16;
// Queue n's registers sit at 0x2800 + 0x100 n (rx) and 0x3800 + 0x100 n
// (tx), in the PF's per-queue layout (the legacy alias addresses).
inline constexpr std::size_t kRxBase = 0x2800, kTxBase = 0x3800, kQueueStride = 0x100;
inline constexpr unsigned kQueues = 2;
// Statistics (8.27.x): free-running 32-bit counters, not cleared on read.
inline constexpr std::uint32_t kGprc = 0x0F10, kGptc = 0x0F14, kGorc = 0x0F18, kGotc = 0x0F34,
                               kMprc = 0x0F3C, kGprlbc = 0x0F40, kGptlbc = 0x0F44,
                               kGorlbc = 0x0F48, kGotlbc = 0x0F50;

// Mailbox messages (7.8.2.9.x): the type in 15:0, ACK/NACK/CTS from the PF.
inline constexpr std::uint32_t kMsgReset = 0x01, kMsgSetMac = 0x02, kMsgSetLpe = 0x05;
inline constexpr std::uint32_t kMsgAck = 0x80000000, kMsgNack = 0x40000000, kMsgCts = 0x20000000;

}  // namespace vfregs

// The VF's queue registers, as the vfregs constants above place them.
inline constexpr QueueLayout kVfQueues{vfregs::kRxBase, vfregs::kTxBase, vfregs::kQueueStride,
                                       vfregs::kQueues};

class IgbVfPort final : public PortBase {
public:
    [[nodiscard]] static Result<std::unique_ptr<IgbVfPort>> open(pci::PciDevice& dev);
    ~IgbVfPort() override;

    [[nodiscard]] ethdev::DevInfo info() const override;
    [[nodiscard]] Result<void> configure(std::uint16_t nb_rxq, std::uint16_t nb_txq,
                                         const ethdev::PortConf& conf) override;
    [[nodiscard]] Result<void> start() override;
    void stop() override;

    [[nodiscard]] Result<ethdev::Link> link(bool wait) override;
    [[nodiscard]] Result<void> promiscuous(bool on) override;
    [[nodiscard]] Result<void> allmulticast(bool on) override;
    [[nodiscard]] Result<void> set_mac(const ethdev::MacAddr& a) override;
    [[nodiscard]] Result<void> set_mtu(std::uint32_t mtu) override;

private:
    IgbVfPort(pci::PciDevice& dev, pci::Bar bar);
    [[nodiscard]] Result<void> reset();
    // Mailbox (7.8.2.9.2): a message to the PF, acknowledged; the PF's reply.
    [[nodiscard]] Result<void> mbx_write(std::span<const std::uint32_t> msg);
    [[nodiscard]] Result<void> mbx_read(std::span<std::uint32_t> msg);
    // Sends `msg` and reads the PF's answer into it; EPERM on a NACK.
    [[nodiscard]] Result<void> mbx_request(std::span<std::uint32_t> msg, const char* what);
    [[nodiscard]] bool mbx_bit(std::uint32_t mask);  // read-to-clear bits kept until tested
    [[nodiscard]] bool mbx_lock();
    // Free-running counters: hw_ holds the totals since the last reset.
    void accumulate_counters() override;
    void hw_stats(ethdev::Stats& s) const override;

    std::uint32_t mbx_sticky_ = 0;
    std::vector<std::uint32_t> last_;  // the counters' last raw values
};

}  // namespace vfiokit::igb

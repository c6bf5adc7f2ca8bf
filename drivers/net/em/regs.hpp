// Registers and legacy descriptors of the Intel 82540EM and 82574L, the two
// NICs the em driver runs (QEMU's e1000 and e1000e).
//
// Sources:
//  - [SDM] PCI/PCI-X Family of Gigabit Ethernet Controllers Software
//    Developer's Manual (8254x), rev. 4.0: chapter 3 (receive and transmit
//    descriptors), chapter 13 (register descriptions: CTRL, STATUS, EERD,
//    MDIC, ICR/IMS/IMC, RCTL, TCTL, TIPG, RDBAL..RDT, TDBAL..TDT, RXCSUM,
//    RAL/RAH, MTA, statistics), chapter 14 (initialization).
//  - [82574] Intel 82574 GbE Controller Family Datasheet: the legacy
//    descriptors (chapter 7) and the same register set (chapter 10), with
//    the differences marked below (EERD's layout, RXCSUM's extra bits).
// QEMU's hw/net/e1000.c, e1000e_core.c and e1000x_regs.h model the same
// bits; the lab runs on them, so where QEMU departs from a datasheet the
// comment says so.
//
// Every register is 32 bits wide and takes 32-bit accesses only.
// Thread-safety: values only (see vfiokit/bus/pci/register.hpp).
#pragma once

#include <cstddef>
#include <cstdint>

#include "vfiokit/bus/pci/register.hpp"

namespace vfiokit::em::regs {

using pci::Register;

// Device Control, 0x0000 [SDM 13.4, CTRL].
struct Ctrl : Register<Ctrl, std::uint32_t, 0x0000> {
    VFIOKIT_FIELD(0, 0, fd)          // full duplex (when forced)
    VFIOKIT_FIELD(3, 3, lrst)        // link reset
    VFIOKIT_FIELD(5, 5, asde)        // auto-speed detection enable
    VFIOKIT_FIELD(6, 6, slu)         // set link up: the MAC follows the PHY's link
    VFIOKIT_FIELD(7, 7, ilos)        // invert loss-of-signal
    VFIOKIT_FIELD(9, 8, speed)
    VFIOKIT_FIELD(11, 11, frcspd)    // force speed
    VFIOKIT_FIELD(12, 12, frcdplx)   // force duplex
    VFIOKIT_FIELD(26, 26, rst)       // device reset, self-clearing
    VFIOKIT_FIELD(27, 27, rfce)      // receive flow control
    VFIOKIT_FIELD(28, 28, tfce)      // transmit flow control
    VFIOKIT_FIELD(30, 30, vme)       // VLAN mode
    VFIOKIT_FIELD(31, 31, phy_rst)
};

// Device Status, 0x0008 [SDM 13.4, STATUS], read-only.
struct Status : Register<Status, std::uint32_t, 0x0008> {
    VFIOKIT_FIELD(0, 0, fd)          // full duplex
    VFIOKIT_FIELD(1, 1, lu)          // link up
    VFIOKIT_FIELD(4, 4, txoff)       // transmission paused (flow control)
    VFIOKIT_FIELD(7, 6, speed)       // 00: 10, 01: 100, 1x: 1000 Mb/s
};
// STATUS.SPEED in Mb/s.
[[nodiscard]] constexpr std::uint32_t speed_mbps(std::uint32_t field) {
    return field == 0 ? 10 : field == 1 ? 100 : 1000;
}

// EEPROM Read, 0x0014. Software writes the word address with START and
// polls DONE; DATA then holds the word. The two models place the fields
// differently: 82540EM [SDM 13.4, EERD] START 0, DONE 4, ADDR 15:8;
// 82574L [82574 10.2, EERD] START 0, DONE 1, ADDR 15:2. DATA is 31:16 on
// both. (Bit-banging EECD works too but takes seconds per word under
// emulation.)
struct Eerd82540 : Register<Eerd82540, std::uint32_t, 0x0014> {
    VFIOKIT_FIELD(0, 0, start)
    VFIOKIT_FIELD(4, 4, done)
    VFIOKIT_FIELD(15, 8, addr)
    VFIOKIT_FIELD(31, 16, data)
};
struct Eerd82574 : Register<Eerd82574, std::uint32_t, 0x0014> {
    VFIOKIT_FIELD(0, 0, start)
    VFIOKIT_FIELD(1, 1, done)
    VFIOKIT_FIELD(15, 2, addr)
    VFIOKIT_FIELD(31, 16, data)
};
// EEPROM words 0..2 hold the Ethernet address, low byte first [SDM 5.6, EEPROM address map].
inline constexpr unsigned kEepromMacWords = 3;

// MDI Control, 0x0020 [SDM 13.4, MDIC]: PHY register access.
struct Mdic : Register<Mdic, std::uint32_t, 0x0020> {
    VFIOKIT_FIELD(15, 0, data)
    VFIOKIT_FIELD(20, 16, regadd)
    VFIOKIT_FIELD(25, 21, phyadd)    // the internal PHY is address 1
    VFIOKIT_FIELD(27, 26, op)        // 01: write, 10: read
    VFIOKIT_FIELD(28, 28, ready)
    VFIOKIT_FIELD(30, 30, error)
};
inline constexpr std::uint32_t kMdicOpWrite = 1;
inline constexpr std::uint32_t kPhyAddr = 1;
// PHY Control (PHY register 0, IEEE 802.3 clause 22): restarting
// auto-negotiation brings a link up after a reset left it down.
inline constexpr std::uint32_t kPhyCtrl = 0;
inline constexpr std::uint32_t kPhyCtrlAutonegEnable = 1u << 12;
inline constexpr std::uint32_t kPhyCtrlRestartAutoneg = 1u << 9;
inline constexpr std::uint32_t kPhyCtrlFullDuplex = 1u << 8;
inline constexpr std::uint32_t kPhyCtrlSpeed1000 = 1u << 6;

// Interrupt Cause Read, Mask Set and Mask Clear [SDM 13.4, ICR/IMS/IMC;
// 82574 10.2.4]. Causes stay masked unless the application asked for rx
// queue or link-state interrupts. ICR clears on read with one interrupt
// line (INTx); with MSI-X the 82574L clears a cause when a 1 is written
// to it or when EIAC names it as its vector fires [82574 7.4.3].
struct Icr : Register<Icr, std::uint32_t, 0x00c0> {
    VFIOKIT_FIELD(31, 0, causes)
};
struct Ims : Register<Ims, std::uint32_t, 0x00d0> {
    VFIOKIT_FIELD(31, 0, causes)
};
struct Imc : Register<Imc, std::uint32_t, 0x00d8> {
    VFIOKIT_FIELD(31, 0, causes)
};
// The causes the driver uses, the same bits in ICR, IMS and IMC.
inline constexpr std::uint32_t kIntLsc = 1u << 2;     // link status change
inline constexpr std::uint32_t kIntRxt0 = 1u << 7;    // receiver timer: a frame written back
// 82574L with MSI-X only [82574 10.2.4.1]: rx queue 0 written back, and
// "other" (LSC and the rest of the non-queue causes, routed by IVAR.OTHER).
inline constexpr std::uint32_t kIntRxq0 = 1u << 20;
inline constexpr std::uint32_t kIntOther = 1u << 24;

// 82574L Extended Interrupt Auto Clear, 0x00dc [82574 10.2.4.7]: the ICR
// bits (RxQ0..Other, 24:20) cleared when their MSI-X vector fires.
struct Eiac : Register<Eiac, std::uint32_t, 0x00dc> {
    VFIOKIT_FIELD(24, 20, causes)
};
// 82574L Extended Interrupt Throttle, one per MSI-X vector at 0x00e8 +
// 4 n, n < 5 [82574 10.2.4.10]: the least interval between two messages
// of vector n in 256 ns units; 0 does not throttle.
inline constexpr std::uint32_t kEitr = 0x00e8;
inline constexpr unsigned kMsixVectors82574 = 5;

// 82574L Interrupt Vector Allocation, 0x00e4 [82574 10.2.4.9]: the MSI-X
// vector of each cause, with a valid bit. Tx causes stay invalid (unused).
struct Ivar : Register<Ivar, std::uint32_t, 0x00e4> {
    VFIOKIT_FIELD(2, 0, rxq0_vector)
    VFIOKIT_FIELD(3, 3, rxq0_valid)
    VFIOKIT_FIELD(18, 16, other_vector)
    VFIOKIT_FIELD(19, 19, other_valid)
};

// Receive Control, 0x0100 [SDM 13.4, RCTL].
struct Rctl : Register<Rctl, std::uint32_t, 0x0100> {
    VFIOKIT_FIELD(1, 1, en)
    VFIOKIT_FIELD(2, 2, sbp)         // store bad packets
    VFIOKIT_FIELD(3, 3, upe)         // unicast promiscuous
    VFIOKIT_FIELD(4, 4, mpe)         // multicast promiscuous
    VFIOKIT_FIELD(5, 5, lpe)         // long packets (above 1522 bytes)
    VFIOKIT_FIELD(7, 6, lbm)         // loopback mode, 00: none
    VFIOKIT_FIELD(9, 8, rdmts)       // descriptor minimum threshold
    VFIOKIT_FIELD(11, 10, dtyp)      // 82574: descriptor type, 00: legacy
    VFIOKIT_FIELD(13, 12, mo)        // multicast offset
    VFIOKIT_FIELD(15, 15, bam)       // accept broadcast
    VFIOKIT_FIELD(17, 16, bsize)     // buffer size, see rx_buffer_size()
    VFIOKIT_FIELD(18, 18, vfe)       // VLAN filter
    VFIOKIT_FIELD(22, 22, dpf)       // discard pause frames
    VFIOKIT_FIELD(23, 23, pmcf)      // pass MAC control frames
    VFIOKIT_FIELD(25, 25, bsex)      // buffer size extension (x16)
    VFIOKIT_FIELD(26, 26, secrc)     // strip the Ethernet CRC
};

// The receive buffer sizes RCTL can express [SDM 13.4, RCTL.BSIZE/BSEX]:
// BSEX=0: 00 2048, 01 1024, 10 512, 11 256; BSEX=1: 01 16384, 10 8192,
// 11 4096.
struct RxBufferSize {
    std::uint32_t bytes = 0;
    std::uint32_t bsize = 0;
    std::uint32_t bsex = 0;
};
// The largest size that fits in `room` bytes; bytes == 0 when none does.
[[nodiscard]] constexpr RxBufferSize rx_buffer_size(std::uint32_t room) {
    constexpr RxBufferSize sizes[] = {{16384, 1, 1}, {8192, 2, 1}, {4096, 3, 1}, {2048, 0, 0},
                                      {1024, 1, 0},  {512, 2, 0},  {256, 3, 0}};
    for (const RxBufferSize& s : sizes)
        if (s.bytes <= room)
            return s;
    return {};
}

// Transmit Control, 0x0400 [SDM 13.4, TCTL].
struct Tctl : Register<Tctl, std::uint32_t, 0x0400> {
    VFIOKIT_FIELD(1, 1, en)
    VFIOKIT_FIELD(3, 3, psp)         // pad short packets to 64 bytes
    VFIOKIT_FIELD(11, 4, ct)         // collision threshold
    VFIOKIT_FIELD(21, 12, cold)      // collision distance
    VFIOKIT_FIELD(22, 22, swxoff)
    VFIOKIT_FIELD(24, 24, rtlc)      // retransmit on late collision
};
// [SDM 13.4, TCTL]: CT 0x0f as IEEE 802.3 asks; COLD 0x40 in full duplex,
// 0x200 in half duplex (512 byte times).
inline constexpr std::uint32_t kTctlCt = 0x0f;
inline constexpr std::uint32_t kTctlColdFullDuplex = 0x40;
inline constexpr std::uint32_t kTctlColdHalfDuplex = 0x200;

// Transmit Inter-Packet Gap, 0x0410 [SDM 13.4, TIPG, Table 13-77;
// 82574 10.2, TIPG]: IPGT 10 for 82540EM copper (the manual's IEEE 802.3 value),
// 8 for the 82574; IPGR1 8 and IPGR2 6 on both.
struct Tipg : Register<Tipg, std::uint32_t, 0x0410> {
    VFIOKIT_FIELD(9, 0, ipgt)
    VFIOKIT_FIELD(19, 10, ipgr1)
    VFIOKIT_FIELD(29, 20, ipgr2)
};

// Receive descriptor ring [SDM 13.4, RDBAL..RADV]: base (128-byte aligned
// length, 16-byte aligned base), head, tail, delay timers.
struct Rdbal : Register<Rdbal, std::uint32_t, 0x2800> {
    VFIOKIT_FIELD(31, 0, addr)
};
struct Rdbah : Register<Rdbah, std::uint32_t, 0x2804> {
    VFIOKIT_FIELD(31, 0, addr)
};
struct Rdlen : Register<Rdlen, std::uint32_t, 0x2808> {
    VFIOKIT_FIELD(19, 0, bytes)      // bits 6:0 read as zero: a multiple of 128
};
struct Rdh : Register<Rdh, std::uint32_t, 0x2810> {
    VFIOKIT_FIELD(15, 0, index)
};
struct Rdt : Register<Rdt, std::uint32_t, 0x2818> {
    VFIOKIT_FIELD(15, 0, index)
};
struct Rdtr : Register<Rdtr, std::uint32_t, 0x2820> {
    VFIOKIT_FIELD(15, 0, delay)
};
struct Radv : Register<Radv, std::uint32_t, 0x282c> {
    VFIOKIT_FIELD(15, 0, delay)
};

// Transmit descriptor ring [SDM 13.4, TDBAL..TIDV].
struct Tdbal : Register<Tdbal, std::uint32_t, 0x3800> {
    VFIOKIT_FIELD(31, 0, addr)
};
struct Tdbah : Register<Tdbah, std::uint32_t, 0x3804> {
    VFIOKIT_FIELD(31, 0, addr)
};
struct Tdlen : Register<Tdlen, std::uint32_t, 0x3808> {
    VFIOKIT_FIELD(19, 0, bytes)
};
struct Tdh : Register<Tdh, std::uint32_t, 0x3810> {
    VFIOKIT_FIELD(15, 0, index)
};
struct Tdt : Register<Tdt, std::uint32_t, 0x3818> {
    VFIOKIT_FIELD(15, 0, index)
};
struct Tidv : Register<Tidv, std::uint32_t, 0x3820> {
    VFIOKIT_FIELD(15, 0, delay)
};

// Receive Checksum Control, 0x5000 [SDM 13.4 and 82574 10.2, RXCSUM]:
// IP and TCP/UDP checksum offload; the result lands in the descriptor's
// status and errors (IPCS/TCPCS, IPE/TCPE).
struct Rxcsum : Register<Rxcsum, std::uint32_t, 0x5000> {
    VFIOKIT_FIELD(7, 0, pcss)        // packet checksum start
    VFIOKIT_FIELD(8, 8, ipofl)       // IPv4 header checksum offload
    VFIOKIT_FIELD(9, 9, tuofl)       // TCP/UDP checksum offload
    VFIOKIT_FIELD(13, 13, pcsd)      // 82574: RSS hash instead of packet checksum
};

// Multicast Table Array, 128 words [SDM 13.4, MTA].
inline constexpr std::uint32_t kMta = 0x5200;
inline constexpr unsigned kMtaWords = 128;

// Receive Address 0 [SDM 13.4, RAL/RAH]: the station address the NIC accepts.
struct Ral0 : Register<Ral0, std::uint32_t, 0x5400> {
    VFIOKIT_FIELD(31, 0, low)        // address bytes 0..3, byte 0 lowest
};
struct Rah0 : Register<Rah0, std::uint32_t, 0x5404> {
    VFIOKIT_FIELD(15, 0, high)       // address bytes 4, 5
    VFIOKIT_FIELD(17, 16, as)        // 00: destination address
    VFIOKIT_FIELD(31, 31, av)        // address valid
};

// Device ids the driver knows (PCI config space), also in em.pmd.json.
inline constexpr std::uint16_t kVendorIntel = 0x8086;
inline constexpr std::uint16_t kDevice82540em = 0x100e;
inline constexpr std::uint16_t kDevice82574l = 0x10d3;

// BAR0 is 128 KiB of registers on both models [SDM 4.1; 82574 9.3, BARs].
inline constexpr unsigned kRegBar = 0;
inline constexpr std::uint64_t kRegBytes = 0x20000;

}  // namespace vfiokit::em::regs

namespace vfiokit::em {

// Legacy receive descriptor [SDM 3.2.3, Table 3-1; 82574 7.1, legacy
// format]. Software writes buffer_addr and zeroes the rest; the NIC writes
// length, checksum, status, errors and special back.
struct RxDesc {
    std::uint64_t buffer_addr;
    std::uint16_t length;
    std::uint16_t checksum;          // packet checksum (RXCSUM.PCSS onwards)
    std::uint8_t status;
    std::uint8_t errors;
    std::uint16_t special;           // VLAN tag when status.VP
};
static_assert(sizeof(RxDesc) == 16);
static_assert(offsetof(RxDesc, length) == 8);
static_assert(offsetof(RxDesc, checksum) == 10);
static_assert(offsetof(RxDesc, status) == 12);
static_assert(offsetof(RxDesc, errors) == 13);
static_assert(offsetof(RxDesc, special) == 14);

// Receive status and errors [SDM 3.2.3; 82574 7.1].
namespace rxd {
inline constexpr std::uint8_t kDd = 1u << 0;      // descriptor done
inline constexpr std::uint8_t kEop = 1u << 1;     // end of packet
inline constexpr std::uint8_t kIxsm = 1u << 2;    // ignore checksum indications
inline constexpr std::uint8_t kVp = 1u << 3;      // VLAN packet
inline constexpr std::uint8_t kUdpcs = 1u << 4;   // 82574: UDP checksum computed
inline constexpr std::uint8_t kTcpcs = 1u << 5;   // TCP (82574: or UDP) checksum computed
inline constexpr std::uint8_t kIpcs = 1u << 6;    // IPv4 header checksum computed
inline constexpr std::uint8_t kPif = 1u << 7;     // passed in-exact filter
inline constexpr std::uint8_t kErrCe = 1u << 0;   // CRC or alignment error
inline constexpr std::uint8_t kErrSe = 1u << 1;   // symbol error
inline constexpr std::uint8_t kErrSeq = 1u << 2;  // sequence error
inline constexpr std::uint8_t kErrCxe = 1u << 4;  // carrier extension error
inline constexpr std::uint8_t kErrTcpe = 1u << 5; // TCP/UDP checksum error
inline constexpr std::uint8_t kErrIpe = 1u << 6;  // IPv4 checksum error
inline constexpr std::uint8_t kErrRxe = 1u << 7;  // data error
// Errors that make the frame itself bad (the checksum ones do not).
inline constexpr std::uint8_t kErrFrame = kErrCe | kErrSe | kErrSeq | kErrCxe | kErrRxe;
}  // namespace rxd

// Legacy transmit descriptor [SDM 3.3.3, Table 3-8; 82574 7.2, legacy format].
struct TxDesc {
    std::uint64_t buffer_addr;
    std::uint16_t length;
    std::uint8_t cso;                // checksum offset (with cmd.IC)
    std::uint8_t cmd;
    std::uint8_t status;             // written back when cmd.RS
    std::uint8_t css;                // checksum start
    std::uint16_t special;           // VLAN tag (with cmd.VLE)
};
static_assert(sizeof(TxDesc) == 16);
static_assert(offsetof(TxDesc, length) == 8);
static_assert(offsetof(TxDesc, cso) == 10);
static_assert(offsetof(TxDesc, cmd) == 11);
static_assert(offsetof(TxDesc, status) == 12);
static_assert(offsetof(TxDesc, css) == 13);
static_assert(offsetof(TxDesc, special) == 14);

// Transmit command and status [SDM 3.3.3].
namespace txd {
inline constexpr std::uint8_t kCmdEop = 1u << 0;   // last descriptor of the packet
inline constexpr std::uint8_t kCmdIfcs = 1u << 1;  // insert the Ethernet CRC
inline constexpr std::uint8_t kCmdIc = 1u << 2;    // insert checksum at cso
inline constexpr std::uint8_t kCmdRs = 1u << 3;    // report status (write DD back)
inline constexpr std::uint8_t kCmdDext = 1u << 5;  // extended descriptor (0: legacy)
inline constexpr std::uint8_t kCmdVle = 1u << 6;   // insert the VLAN tag
inline constexpr std::uint8_t kCmdIde = 1u << 7;   // interrupt delay
inline constexpr std::uint8_t kStaDd = 1u << 0;    // descriptor done
}  // namespace txd

// Ring limits. RDLEN/TDLEN must be multiples of 128 bytes [SDM 13.4,
// RDLEN and TDLEN], so rings hold multiples of 8 descriptors; the index registers
// are 16 bits wide. 4096 is the largest ring Intel's drivers use on these
// parts; 32 keeps refill and reclaim batches meaningful.
inline constexpr std::uint16_t kRingAlignDesc = 128 / sizeof(RxDesc);
inline constexpr std::uint64_t kRingAlignBytes = 128;
inline constexpr std::uint16_t kMinDesc = 32;
inline constexpr std::uint16_t kMaxDesc = 4096;
static_assert(sizeof(RxDesc) == sizeof(TxDesc));

}  // namespace vfiokit::em

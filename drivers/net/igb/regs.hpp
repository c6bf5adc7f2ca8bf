// Registers and advanced descriptors of the Intel 82576 (igb), as typed
// values in the datasheet's words.
//
// Source: Intel 82576EB GbE Controller Datasheet (rev. 2.x), chapter 8
// ("Programming Interface") for registers and section 7.1.5 / 7.2.2 for the
// advanced receive and transmit descriptors; checked against what QEMU's igb
// model (hw/net/igb_core.c, igb_regs.h, e1000x_common.c) implements, since
// that model is the device the lab has. Where the model and the datasheet
// differ in a way the driver must respect, the register says so.
//
// Per-queue registers are declared at queue 0's offset and reached through
// Queue(bar, n), which adds the datasheet's 0x40 stride: Srrctl::read(
// Queue(bar, 3)) reads SRRCTL[3]. Register arrays (RAL/RAH, MTA, RETA,
// RSSRK, IVAR) use Indexed(bar, n, stride) the same way.
#pragma once

#include <cstddef>
#include <cstdint>

#include "vfiokit/bus/pci/bar.hpp"
#include "vfiokit/bus/pci/register.hpp"

namespace vfiokit::igb {

// An Io (pci::RegisterIo) that shifts every access by `delta` bytes: element
// n of a register array whose first element a register type names.
struct Indexed {
    pci::Bar* bar;
    std::size_t delta;
    Indexed(pci::Bar& b, std::size_t index, std::size_t stride) : bar(&b), delta(index * stride) {}
    template <class T>
    [[nodiscard]] T read(std::size_t off) const {
        return bar->read<T>(off + delta);
    }
    template <class T>
    void write(std::size_t off, T v) const {
        bar->write<T>(off + delta, v);
    }
};
// Rx/tx queue n's copy of a queue register (8.10 / 8.12: stride 0x40).
inline constexpr std::size_t kQueueStride = 0x40;
struct Queue : Indexed {
    Queue(pci::Bar& b, unsigned n) : Indexed(b, n, kQueueStride) {}
};

namespace regs {

using pci::Register;

// --- General (8.2)
// 8.2.1 Device Control.
struct Ctrl : Register<Ctrl, std::uint32_t, 0x0000> {
    VFIOKIT_FIELD(0, 0, fd)                 // full duplex
    VFIOKIT_FIELD(2, 2, gio_master_disable) // stop issuing master requests (before reset)
    VFIOKIT_FIELD(6, 6, slu)                // set link up
    VFIOKIT_FIELD(26, 26, rst)              // device reset, self-clearing
    VFIOKIT_FIELD(30, 30, vme)              // VLAN mode: strip tags on rx (7.4.4)
    VFIOKIT_FIELD(31, 31, phy_rst)
};
// 8.2.2 Device Status.
struct Status : Register<Status, std::uint32_t, 0x0008> {
    VFIOKIT_FIELD(0, 0, fd)
    VFIOKIT_FIELD(1, 1, lu)                 // link up
    VFIOKIT_FIELD(7, 6, speed)              // 00: 10, 01: 100, 1x: 1000 Mb/s
    VFIOKIT_FIELD(19, 19, gio_master_enable)
};
// 8.2.4 EEPROM Read: write start|addr, poll done, data in 31:16.
struct Eerd : Register<Eerd, std::uint32_t, 0x0014> {
    VFIOKIT_FIELD(0, 0, start)
    VFIOKIT_FIELD(1, 1, done)
    VFIOKIT_FIELD(15, 2, addr)
    VFIOKIT_FIELD(31, 16, data)
};
// 8.2.3 Extended Device Control.
struct CtrlExt : Register<CtrlExt, std::uint32_t, 0x0018> {
    VFIOKIT_FIELD(14, 14, pfrstd)    // PF reset done: VFs may use the mailbox (7.8.2.9.2)
    VFIOKIT_FIELD(26, 26, ext_vlan)  // double VLAN: the outer tag is not stripped
    VFIOKIT_FIELD(28, 28, drv_load)  // a driver owns the device (firmware hand-off)
};
// 8.2.5 MDI Control: PHY register access.
struct Mdic : Register<Mdic, std::uint32_t, 0x0020> {
    VFIOKIT_FIELD(15, 0, data)
    VFIOKIT_FIELD(20, 16, regadd)
    VFIOKIT_FIELD(25, 21, phyadd)
    VFIOKIT_FIELD(27, 26, op)        // 01 write, 10 read
    VFIOKIT_FIELD(28, 28, ready)
    VFIOKIT_FIELD(30, 30, error)
};
inline constexpr std::uint32_t kMdicWrite = 1, kMdicRead = 2;
// The 82576's internal PHY answers at MDIO address 1 (QEMU's model refuses
// any other: igb_set_mdic).
inline constexpr std::uint32_t kPhyAddr = 1;
// IEEE 802.3 clause 22 Basic Mode Control of the PHY (datasheet 8.24.x).
inline constexpr std::uint32_t kPhyBmcr = 0;
inline constexpr std::uint16_t kBmcrSpeed1000 = 1 << 6, kBmcrFullDuplex = 1 << 8,
                               kBmcrRestartAn = 1 << 9, kBmcrAutoNeg = 1 << 12;
// 8.2.7 VLAN Ether Type: inner (15:0) and outer (31:16) tag types.
struct Vet : Register<Vet, std::uint32_t, 0x0038> {
    VFIOKIT_FIELD(15, 0, vet)
    VFIOKIT_FIELD(31, 16, vet_ext)
};

// --- Interrupts (8.8)
struct Icr : Register<Icr, std::uint32_t, 0x00C0> {  // 8.8.1, read clears
    VFIOKIT_FIELD(2, 2, lsc)
};
struct Ims : Register<Ims, std::uint32_t, 0x00D0> {
    VFIOKIT_FIELD(2, 2, lsc)
};
struct Imc : Register<Imc, std::uint32_t, 0x00D8> {
    VFIOKIT_FIELD(31, 0, value)
};
// 8.8.10 General Purpose Interrupt Enable.
struct Gpie : Register<Gpie, std::uint32_t, 0x1514> {
    VFIOKIT_FIELD(0, 0, nsicr)       // ICR reads need not be interrupts to clear
    VFIOKIT_FIELD(4, 4, msix_mode)   // EICR bits are MSI-X vectors
    VFIOKIT_FIELD(30, 30, eiame)     // EIAM applies on MSI-X too
    VFIOKIT_FIELD(31, 31, pba)       // PBA support (MSI-X)
};
// 8.8.3-8.8.8 Extended interrupt cause/mask registers: one bit per MSI-X
// vector in MSI-X mode.
struct Eicr : Register<Eicr, std::uint32_t, 0x1580> { VFIOKIT_FIELD(31, 0, value) };
struct Eics : Register<Eics, std::uint32_t, 0x1520> { VFIOKIT_FIELD(31, 0, value) };
struct Eims : Register<Eims, std::uint32_t, 0x1524> { VFIOKIT_FIELD(31, 0, value) };
struct Eimc : Register<Eimc, std::uint32_t, 0x1528> { VFIOKIT_FIELD(31, 0, value) };
struct Eiac : Register<Eiac, std::uint32_t, 0x152C> { VFIOKIT_FIELD(31, 0, value) };
struct Eiam : Register<Eiam, std::uint32_t, 0x1530> { VFIOKIT_FIELD(31, 0, value) };
// 8.8.12 Interrupt Throttle, one per vector (stride 4): 0 = no throttling.
struct Eitr : Register<Eitr, std::uint32_t, 0x1680> {
    VFIOKIT_FIELD(14, 2, interval)
    VFIOKIT_FIELD(31, 31, cnt_ignr)
};
// 8.8.15 Interrupt Vector Allocation, IVAR[0..7] (stride 4): IVAR[n] holds
// rx queue n (7:0), tx queue n (15:8), rx queue n+8 (23:16), tx queue n+8
// (31:24); each entry is a vector (4:0) and a valid bit (7).
struct Ivar : Register<Ivar, std::uint32_t, 0x1700> {
    VFIOKIT_FIELD(4, 0, rx_vector)
    VFIOKIT_FIELD(7, 7, rx_valid)
    VFIOKIT_FIELD(12, 8, tx_vector)
    VFIOKIT_FIELD(15, 15, tx_valid)
    VFIOKIT_FIELD(20, 16, rx_hi_vector)
    VFIOKIT_FIELD(23, 23, rx_hi_valid)
    VFIOKIT_FIELD(28, 24, tx_hi_vector)
    VFIOKIT_FIELD(31, 31, tx_hi_valid)
};
// 8.8.16 IVAR_MISC: the TCP timer (7:0) and "other causes" (15:8), among
// them link status change.
struct IvarMisc : Register<IvarMisc, std::uint32_t, 0x1740> {
    VFIOKIT_FIELD(4, 0, timer_vector)
    VFIOKIT_FIELD(7, 7, timer_valid)
    VFIOKIT_FIELD(12, 8, other_vector)
    VFIOKIT_FIELD(15, 15, other_valid)
};

// --- Receive (8.10)
// 8.10.1 Receive Control.
struct Rctl : Register<Rctl, std::uint32_t, 0x0100> {
    VFIOKIT_FIELD(1, 1, en)
    VFIOKIT_FIELD(2, 2, sbp)      // store bad packets
    VFIOKIT_FIELD(3, 3, upe)      // unicast promiscuous
    VFIOKIT_FIELD(4, 4, mpe)      // multicast promiscuous
    VFIOKIT_FIELD(5, 5, lpe)      // long packets: up to RLPML
    VFIOKIT_FIELD(7, 6, lbm)      // loopback mode
    VFIOKIT_FIELD(13, 12, mo)     // multicast offset (MTA hashing)
    VFIOKIT_FIELD(15, 15, bam)    // accept broadcast
    VFIOKIT_FIELD(17, 16, bsize)  // legacy buffer size; SRRCTL.BSIZEPKT overrides
    VFIOKIT_FIELD(18, 18, vfe)    // VLAN filter (VFTA)
    VFIOKIT_FIELD(26, 26, secrc)  // strip the Ethernet CRC
};
// 8.10.5 Receive Checksum Control.
struct Rxcsum : Register<Rxcsum, std::uint32_t, 0x5000> {
    VFIOKIT_FIELD(8, 8, ipofld)   // IPv4 header checksum
    VFIOKIT_FIELD(9, 9, tuofld)   // TCP/UDP checksum
    VFIOKIT_FIELD(13, 13, pcsd)   // the descriptor carries the RSS hash, not the packet checksum
};
// 8.10.6 Receive Long Packet Maximum Length (with RCTL.LPE), CRC included.
struct Rlpml : Register<Rlpml, std::uint32_t, 0x5004> {
    VFIOKIT_FIELD(13, 0, len)
};
// 8.10.9-10 Receive Address Low/High, 16 pairs (stride 8).
struct Ral : Register<Ral, std::uint32_t, 0x5400> { VFIOKIT_FIELD(31, 0, addr) };
struct Rah : Register<Rah, std::uint32_t, 0x5404> {
    VFIOKIT_FIELD(15, 0, addr)
    VFIOKIT_FIELD(31, 31, av)     // address valid
};
inline constexpr std::size_t kRarStride = 8;
// 8.10.11 Multicast Table Array, 128 words.
struct Mta : Register<Mta, std::uint32_t, 0x5200> { VFIOKIT_FIELD(31, 0, value) };
inline constexpr unsigned kMtaWords = 128;
// 8.10.13 Multiple Receive Queues Command.
struct Mrqc : Register<Mrqc, std::uint32_t, 0x5818> {
    VFIOKIT_FIELD(2, 0, enable)           // 010b: RSS (QEMU: igb_rss_enabled)
    VFIOKIT_FIELD(16, 16, tcp_ipv4)
    VFIOKIT_FIELD(17, 17, ipv4)
    VFIOKIT_FIELD(18, 18, tcp_ipv6_ex)
    VFIOKIT_FIELD(19, 19, ipv6_ex)
    VFIOKIT_FIELD(20, 20, ipv6)
    VFIOKIT_FIELD(21, 21, tcp_ipv6)
    VFIOKIT_FIELD(22, 22, udp_ipv4)
    VFIOKIT_FIELD(23, 23, udp_ipv6)
    VFIOKIT_FIELD(24, 24, udp_ipv6_ex)
};
inline constexpr std::uint32_t kMrqcRss = 2;
// 8.10.14 Redirection Table: 32 words of 4 one-byte entries; hash bits 6:0
// pick the entry, whose low bits are the queue.
struct Reta : Register<Reta, std::uint32_t, 0x5C00> { VFIOKIT_FIELD(31, 0, entries) };
inline constexpr unsigned kRetaEntries = 128;
// 8.10.15 RSS Random Key: 10 words, key byte 4n+k in bits 8k+7:8k of word n.
struct Rssrk : Register<Rssrk, std::uint32_t, 0x5C80> { VFIOKIT_FIELD(31, 0, key) };
inline constexpr unsigned kRssKeyBytes = 40;

// Per-queue receive registers (8.10.x, queue n at + 0x40 * n).
struct Rdbal : Register<Rdbal, std::uint32_t, 0xC000> { VFIOKIT_FIELD(31, 0, addr) };  // 128-byte aligned
struct Rdbah : Register<Rdbah, std::uint32_t, 0xC004> { VFIOKIT_FIELD(31, 0, addr) };
struct Rdlen : Register<Rdlen, std::uint32_t, 0xC008> { VFIOKIT_FIELD(19, 0, bytes) };  // multiple of 128
// 8.10.x Split and Replication Receive Control.
struct Srrctl : Register<Srrctl, std::uint32_t, 0xC00C> {
    VFIOKIT_FIELD(6, 0, bsizepkt)         // packet buffer size, 1 KiB units
    VFIOKIT_FIELD(11, 8, bsizehdr)        // header buffer size, 64-byte units
    VFIOKIT_FIELD(24, 20, rdmts)
    VFIOKIT_FIELD(27, 25, desctype)       // 001b: advanced, one buffer
    VFIOKIT_FIELD(31, 31, drop_en)        // drop when no descriptor (count in RQDPC)
};
inline constexpr std::uint32_t kDescTypeAdvOneBuf = 1;
struct Rdh : Register<Rdh, std::uint32_t, 0xC010> { VFIOKIT_FIELD(15, 0, head) };
struct Rdt : Register<Rdt, std::uint32_t, 0xC018> { VFIOKIT_FIELD(15, 0, tail) };
// Receive Descriptor Control.
struct Rxdctl : Register<Rxdctl, std::uint32_t, 0xC028> {
    VFIOKIT_FIELD(4, 0, pthresh)
    VFIOKIT_FIELD(12, 8, hthresh)
    VFIOKIT_FIELD(20, 16, wthresh)
    VFIOKIT_FIELD(25, 25, enable)         // reads 1 once the queue runs (poll it)
    VFIOKIT_FIELD(26, 26, swflsh)
};
struct Rqdpc : Register<Rqdpc, std::uint32_t, 0xC030> { VFIOKIT_FIELD(11, 0, drops) };  // read clears

// --- Transmit (8.12)
struct Tctl : Register<Tctl, std::uint32_t, 0x0400> {
    VFIOKIT_FIELD(1, 1, en)
    VFIOKIT_FIELD(3, 3, psp)      // pad short packets to 64 bytes
    VFIOKIT_FIELD(11, 4, ct)      // collision threshold
    VFIOKIT_FIELD(21, 12, cold)   // collision distance
    VFIOKIT_FIELD(24, 24, rtlc)
};
struct Tdbal : Register<Tdbal, std::uint32_t, 0xE000> { VFIOKIT_FIELD(31, 0, addr) };
struct Tdbah : Register<Tdbah, std::uint32_t, 0xE004> { VFIOKIT_FIELD(31, 0, addr) };
struct Tdlen : Register<Tdlen, std::uint32_t, 0xE008> { VFIOKIT_FIELD(19, 0, bytes) };
struct Tdh : Register<Tdh, std::uint32_t, 0xE010> { VFIOKIT_FIELD(15, 0, head) };
struct Tdt : Register<Tdt, std::uint32_t, 0xE018> { VFIOKIT_FIELD(15, 0, tail) };
struct Txdctl : Register<Txdctl, std::uint32_t, 0xE028> {
    VFIOKIT_FIELD(4, 0, pthresh)
    VFIOKIT_FIELD(12, 8, hthresh)
    VFIOKIT_FIELD(20, 16, wthresh)
    VFIOKIT_FIELD(25, 25, enable)
    VFIOKIT_FIELD(26, 26, swflsh)
};

}  // namespace regs

// --- Statistics (8.19): offsets of the counters. Most clear on read (the
// driver accumulates them); the 64-bit octet counters are read low word
// first, the high read clears both.
namespace stat {
inline constexpr std::uint32_t kCrcerrs = 0x4000, kAlgnerrc = 0x4004, kSymerrs = 0x4008,
                               kRxerrc = 0x400C, kMpc = 0x4010, kScc = 0x4014, kEcol = 0x4018,
                               kMcc = 0x401C, kLatecol = 0x4020, kColc = 0x4028, kDc = 0x4030,
                               kTncrs = 0x4034, kCexterr = 0x403C, kRlec = 0x4040,
                               kXonrxc = 0x4048, kXontxc = 0x404C, kXoffrxc = 0x4050,
                               kXofftxc = 0x4054, kFcruc = 0x4058, kPrc64 = 0x405C,
                               kPrc127 = 0x4060, kPrc255 = 0x4064, kPrc511 = 0x4068,
                               kPrc1023 = 0x406C, kPrc1522 = 0x4070, kGprc = 0x4074,
                               kBprc = 0x4078, kMprc = 0x407C, kGptc = 0x4080, kGorcl = 0x4088,
                               kGotcl = 0x4090, kRnbc = 0x40A0, kRuc = 0x40A4, kRfc = 0x40A8,
                               kRoc = 0x40AC, kRjc = 0x40B0, kMgtprc = 0x40B4, kMgtpdc = 0x40B8,
                               kMgtptc = 0x40BC, kTorl = 0x40C0, kTotl = 0x40C8, kTpr = 0x40D0,
                               kTpt = 0x40D4, kPtc64 = 0x40D8, kPtc127 = 0x40DC,
                               kPtc255 = 0x40E0, kPtc511 = 0x40E4, kPtc1023 = 0x40E8,
                               kPtc1522 = 0x40EC, kMptc = 0x40F0, kBptc = 0x40F4,
                               kTsctc = 0x40F8, kTsctfc = 0x40FC, kIac = 0x4100,
                               kRpthc = 0x4104, kHgptc = 0x4118, kScvpc = 0x4228;
}  // namespace stat

// --- Advanced descriptors (7.1.5, 7.2.2). Little-endian, 16 bytes each.

// 7.1.5.1 Advanced receive descriptor, read format (what software writes).
struct AdvRxRead {
    std::uint64_t pkt_addr;  // packet buffer
    std::uint64_t hdr_addr;  // header buffer (split only); bit 0 overlays DD: write 0
};
// 7.1.5.2 Write-back format (what the device writes when done).
struct AdvRxWb {
    std::uint16_t pkt_info;      // 3:0 RSS type, 15:4 packet type
    std::uint16_t hdr_info;
    std::uint32_t rss;           // RSS hash (RXCSUM.PCSD) or IP id / checksum
    std::uint32_t status_error;  // extended status 19:0, errors 31:20
    std::uint16_t length;        // bytes in this descriptor's buffer
    std::uint16_t vlan;          // stripped tag (status VP)
};
union AdvRxDesc {
    AdvRxRead read;
    AdvRxWb wb;
};
static_assert(sizeof(AdvRxDesc) == 16);
static_assert(offsetof(AdvRxWb, rss) == 4);
static_assert(offsetof(AdvRxWb, status_error) == 8);
static_assert(offsetof(AdvRxWb, length) == 12);
static_assert(offsetof(AdvRxWb, vlan) == 14);
static_assert(offsetof(AdvRxRead, hdr_addr) == offsetof(AdvRxWb, status_error),
              "DD (status bit 0) overlays the header address: refill clears it");

namespace rxd {
inline constexpr std::uint32_t kDd = 1u << 0;      // descriptor done
inline constexpr std::uint32_t kEop = 1u << 1;     // end of packet
inline constexpr std::uint32_t kVp = 1u << 3;      // VLAN packet (tag in wb.vlan when stripped)
inline constexpr std::uint32_t kUdpcs = 1u << 4;
inline constexpr std::uint32_t kL4cs = 1u << 5;    // TCP/UDP checksum checked
inline constexpr std::uint32_t kIpcs = 1u << 6;    // IPv4 checksum checked
inline constexpr std::uint32_t kErrL4e = 1u << 29; // TCP/UDP checksum wrong
inline constexpr std::uint32_t kErrIpe = 1u << 30; // IPv4 checksum wrong
inline constexpr std::uint32_t kErrRxe = 1u << 31; // any other rx error
inline constexpr std::uint16_t kRssTypeMask = 0xF; // pkt_info 3:0, 0: no hash
}  // namespace rxd

// 7.2.2.3 Advanced transmit data descriptor, read format.
struct AdvTxRead {
    std::uint64_t buffer_addr;
    std::uint32_t cmd_type_len;   // 15:0 length, 23:20 DTYP, 31:24 DCMD
    std::uint32_t olinfo_status;  // 6:4 context index, 7 CC, 31:14 PAYLEN
};
// Write-back: DD in status bit 0 (with DCMD.RS set).
struct AdvTxWb {
    std::uint64_t rsvd;
    std::uint32_t nxtseq_seed;
    std::uint32_t status;
};
// 7.2.2.2 Advanced transmit context descriptor.
struct AdvTxContext {
    std::uint32_t vlan_macip_lens;  // 8:0 IPLEN, 15:9 MACLEN, 31:16 VLAN
    std::uint32_t seqnum_seed;
    std::uint32_t type_tucmd_mlhl;  // 23:20 DTYP (0010b), 29 DEXT
    std::uint32_t mss_l4len_idx;    // 6:4 IDX
};
union AdvTxDesc {
    AdvTxRead read;
    AdvTxWb wb;
    AdvTxContext ctx;
};
static_assert(sizeof(AdvTxDesc) == 16);
static_assert(offsetof(AdvTxRead, cmd_type_len) == 8);
static_assert(offsetof(AdvTxWb, status) == 12);
static_assert(offsetof(AdvTxContext, type_tucmd_mlhl) == offsetof(AdvTxRead, cmd_type_len),
              "DTYP sits in the same place in both descriptor kinds");

namespace txd {
inline constexpr std::uint32_t kDtypCtxt = 0x2u << 20;
inline constexpr std::uint32_t kDtypData = 0x3u << 20;
inline constexpr std::uint32_t kEop = 1u << 24;   // DCMD: end of packet
inline constexpr std::uint32_t kIfcs = 1u << 25;  // insert the Ethernet CRC
inline constexpr std::uint32_t kRs = 1u << 27;    // report status (write DD back)
inline constexpr std::uint32_t kDext = 1u << 29;  // advanced descriptor
inline constexpr std::uint32_t kVle = 1u << 30;   // insert the context's VLAN tag
inline constexpr std::uint32_t kCc = 1u << 7;     // olinfo: use the context at IDX
inline constexpr unsigned kPaylenShift = 14;
inline constexpr unsigned kVlanShift = 16;        // context vlan_macip_lens
inline constexpr unsigned kMaclenShift = 9;
inline constexpr std::uint32_t kStatusDd = 1u << 0;
inline constexpr std::uint32_t kMaxDataLen = 0xFFFF;
}  // namespace txd

// Ring limits (7.1.3.1, 7.2.3.1): length a multiple of 128 bytes (8
// descriptors), at most 4096 descriptors here as in the kernel's igb.
inline constexpr std::uint16_t kMinDesc = 32;
inline constexpr std::uint16_t kMaxDesc = 4096;
inline constexpr std::uint16_t kDescAlign = 8;
inline constexpr std::uint64_t kRingAlign = 128;
// 82576: 16 rx and 16 tx queues (7.1.1); QEMU's model has the same.
inline constexpr std::uint16_t kMaxQueues = 16;

}  // namespace vfiokit::igb

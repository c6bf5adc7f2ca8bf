// Host tests of the em driver's register fields, descriptor layouts, ring
// arithmetic and declaration; the NICs themselves are tested in the lab
// (tests/lab/net/em_test.cpp).
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include "em.hpp"
#include "em_pmdinfo.hpp"
#include "hw.hpp"
#include "regs.hpp"
#include "rxtx.hpp"
#include "stats.hpp"

namespace vfiokit::em {
namespace {

// A register file: remembers writes by offset, reads back what was written.
struct FakeIo {
    template <class T>
    T read(std::size_t off) {
        ++reads[off];
        return static_cast<T>(mem[off]);
    }
    template <class T>
    void write(std::size_t off, T v) {
        mem[off] = v;
    }
    std::map<std::size_t, std::uint64_t> mem;
    std::map<std::size_t, int> reads;
};

// Bit positions from the 8254x manual and the kernel's e1000_hw.h /
// QEMU's e1000_regs.h (E1000_RCTL_EN 0x2, _UPE 0x8, _MPE 0x10, _LPE 0x20,
// _BAM 0x8000, _BSEX 0x02000000, _SECRC 0x04000000).
TEST(EmRegisters, RctlBits) {
    EXPECT_EQ(regs::Rctl::zero().set_en(1).raw(), 0x2u);
    EXPECT_EQ(regs::Rctl::zero().set_upe(1).raw(), 0x8u);
    EXPECT_EQ(regs::Rctl::zero().set_mpe(1).raw(), 0x10u);
    EXPECT_EQ(regs::Rctl::zero().set_lpe(1).raw(), 0x20u);
    EXPECT_EQ(regs::Rctl::zero().set_bam(1).raw(), 0x8000u);
    EXPECT_EQ(regs::Rctl::zero().set_bsize(3).raw(), 0x30000u);
    EXPECT_EQ(regs::Rctl::zero().set_bsex(1).raw(), 0x02000000u);
    EXPECT_EQ(regs::Rctl::zero().set_secrc(1).raw(), 0x04000000u);
}

TEST(EmRegisters, CtrlStatusTctl) {
    EXPECT_EQ(regs::Ctrl::zero().set_slu(1).raw(), 0x40u);
    EXPECT_EQ(regs::Ctrl::zero().set_asde(1).raw(), 0x20u);
    EXPECT_EQ(regs::Ctrl::zero().set_rst(1).raw(), 0x04000000u);
    const auto st = regs::Status::from_raw(0x80083);  // QEMU e1000's reset value, in part
    EXPECT_EQ(st.fd(), 1u);
    EXPECT_EQ(st.lu(), 1u);
    EXPECT_EQ(regs::speed_mbps(st.speed()), 1000u);
    EXPECT_EQ(regs::speed_mbps(0), 10u);
    EXPECT_EQ(regs::speed_mbps(1), 100u);
    EXPECT_EQ(regs::speed_mbps(3), 1000u);
    // E1000_TCTL_EN 0x2, _PSP 0x8, CT at 4, COLD at 12.
    EXPECT_EQ(regs::Tctl::zero().set_en(1).set_psp(1).set_ct(0xf).set_cold(0x40).raw(),
              0x2u | 0x8u | (0xfu << 4) | (0x40u << 12));
    EXPECT_EQ(regs::Tipg::zero().set_ipgt(8).set_ipgr1(8).set_ipgr2(6).raw(), 0x00602008u);
}

// EERD differs between the models: DONE at bit 4 and the address at 8 on
// the 82540EM, DONE at bit 1 and the address at 2 on the 82574L.
TEST(EmRegisters, EerdLayoutPerModel) {
    EXPECT_EQ(regs::Eerd82540::zero().set_addr(2).set_start(1).raw(), (2u << 8) | 1u);
    EXPECT_EQ(regs::Eerd82574::zero().set_addr(2).set_start(1).raw(), (2u << 2) | 1u);
    EXPECT_EQ(regs::Eerd82540::from_raw(0x5634'0010).done(), 1u);
    EXPECT_EQ(regs::Eerd82540::from_raw(0x5634'0010).data(), 0x5634u);
    EXPECT_EQ(regs::Eerd82574::from_raw(0x5634'0002).done(), 1u);
    EXPECT_EQ(regs::Eerd82574::from_raw(0x5634'0010).done(), 0u);
}

TEST(EmRegisters, MdicAndRah) {
    EXPECT_EQ(regs::Mdic::zero().set_phyadd(1).set_regadd(0).set_op(regs::kMdicOpWrite).raw(),
              (1u << 21) | (1u << 26));
    EXPECT_EQ(regs::Mdic::from_raw(1u << 28).ready(), 1u);
    EXPECT_EQ(regs::Rah0::zero().set_av(1).raw(), 0x80000000u);
}

TEST(EmRegisters, WriteMacLowBytesFirstValidLast) {
    FakeIo io;
    io.mem[0x5404] = 0x80000000;  // an address was valid before
    write_mac(io, *ethdev::MacAddr::parse("52:54:00:12:34:56"));
    EXPECT_EQ(io.mem[0x5400], 0x12005452u);  // RAL0: bytes 0..3, byte 0 lowest
    EXPECT_EQ(io.mem[0x5404], 0x80005634u);  // RAH0: bytes 4, 5 and AV
}

TEST(EmRegisters, LinkFromStatus) {
    FakeIo io;
    io.mem[0x0008] = 0x80083;  // LU, FD, 1000 Mb/s
    auto l = link_status(io);
    EXPECT_TRUE(l.up);
    EXPECT_TRUE(l.full_duplex);
    EXPECT_EQ(l.speed_mbps, 1000u);
    io.mem[0x0008] = 0x80081;  // LU clear
    l = link_status(io);
    EXPECT_FALSE(l.up);
    EXPECT_EQ(l.speed_mbps, 0u);
}

TEST(EmRegisters, RxBufferSizes) {
    EXPECT_EQ(regs::rx_buffer_size(2048).bytes, 2048u);
    EXPECT_EQ(regs::rx_buffer_size(2048).bsize, 0u);
    EXPECT_EQ(regs::rx_buffer_size(2048).bsex, 0u);
    EXPECT_EQ(regs::rx_buffer_size(2047).bytes, 1024u);
    EXPECT_EQ(regs::rx_buffer_size(1024).bsize, 1u);
    EXPECT_EQ(regs::rx_buffer_size(300).bytes, 256u);
    EXPECT_EQ(regs::rx_buffer_size(300).bsize, 3u);
    EXPECT_EQ(regs::rx_buffer_size(255).bytes, 0u);
    EXPECT_EQ(regs::rx_buffer_size(9000).bytes, 8192u);
    EXPECT_EQ(regs::rx_buffer_size(9000).bsize, 2u);
    EXPECT_EQ(regs::rx_buffer_size(9000).bsex, 1u);
    EXPECT_EQ(regs::rx_buffer_size(70000).bytes, 16384u);
    EXPECT_EQ(regs::rx_buffer_size(4096).bsize, 3u);
}

TEST(EmDescriptors, LegacyBitsMatchTheManual) {
    // E1000_RXD_STAT_DD 0x01, _EOP 0x02, _IXSM 0x04, _TCPCS 0x20, _IPCS 0x40;
    // E1000_RXD_ERR_TCPE 0x20, _IPE 0x40; E1000_TXD_CMD_EOP 0x01 (in the
    // descriptor's cmd byte), _IFCS 0x02, _RS 0x08, _DEXT 0x20.
    EXPECT_EQ(rxd::kDd, 0x01);
    EXPECT_EQ(rxd::kEop, 0x02);
    EXPECT_EQ(rxd::kIxsm, 0x04);
    EXPECT_EQ(rxd::kTcpcs, 0x20);
    EXPECT_EQ(rxd::kIpcs, 0x40);
    EXPECT_EQ(rxd::kErrTcpe, 0x20);
    EXPECT_EQ(rxd::kErrIpe, 0x40);
    EXPECT_EQ(txd::kCmdEop, 0x01);
    EXPECT_EQ(txd::kCmdIfcs, 0x02);
    EXPECT_EQ(txd::kCmdRs, 0x08);
    EXPECT_EQ(txd::kCmdDext, 0x20);
    // The checksum errors do not make the frame bad.
    EXPECT_EQ(rxd::kErrFrame & (rxd::kErrTcpe | rxd::kErrIpe), 0);
    // The descriptor as the NIC writes it, byte by byte (little endian).
    RxDesc d{};
    auto* b = reinterpret_cast<std::uint8_t*>(&d);
    b[8] = 0x3c;   // length 60
    b[12] = 0x03;  // DD | EOP
    b[13] = 0x40;  // IPE
    EXPECT_EQ(d.length, 60);
    EXPECT_EQ(d.status, rxd::kDd | rxd::kEop);
    EXPECT_EQ(d.errors, rxd::kErrIpe);
}

TEST(EmRing, LimitsFitTheRegisters) {
    EXPECT_EQ(kRingAlignDesc, 8);
    EXPECT_EQ(kMinDesc % kRingAlignDesc, 0);
    EXPECT_EQ(kMaxDesc % kRingAlignDesc, 0);
    // RDLEN is 20 bits of bytes: the largest ring fits.
    EXPECT_LT(std::uint32_t{kMaxDesc} * sizeof(RxDesc), 1u << 20);
}

TEST(EmRing, IndexArithmeticWraps) {
    const std::uint16_t mask = 255;
    EXPECT_EQ(ring_add(255, 1, mask), 0);
    EXPECT_EQ(ring_add(250, 10, mask), 4);
    EXPECT_EQ(ring_sub(0, 1, mask), 255);
    EXPECT_EQ(ring_sub(4, 10, mask), 250);
    const std::uint16_t big = 4095;
    EXPECT_EQ(ring_sub(0, 1, big), 4095);
    EXPECT_EQ(batch_thresh(32, 256), 32);
    EXPECT_EQ(batch_thresh(0, 256), 64);
    EXPECT_EQ(batch_thresh(256, 256), 64);
    EXPECT_EQ(batch_thresh(1000, 32), 8);
}

TEST(EmModels, KnownIdsOnly) {
    const auto a = model_of(regs::kDevice82540em);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->model, Model::i82540em);
    EXPECT_EQ(a->max_rx_pktlen, 16128u);
    const auto b = model_of(regs::kDevice82574l);
    ASSERT_TRUE(b);
    EXPECT_EQ(b->model, Model::i82574l);
    EXPECT_EQ(b->max_rx_pktlen, 9234u);
    EXPECT_FALSE(model_of(0x10c9));  // an 82576: igb's
}

TEST(EmStats, RegistersAreDistinctAndInTheStatisticsBlock) {
    std::set<std::uint32_t> offsets;
    std::set<std::string_view> names;
    for (const StatReg& r : kStatRegs) {
        EXPECT_GE(r.offset, 0x4000u);
        EXPECT_LT(r.offset, 0x4100u);
        EXPECT_EQ(r.offset % 4, 0u);
        EXPECT_TRUE(offsets.insert(r.offset).second) << r.name;
        if (r.wide) {
            EXPECT_TRUE(offsets.insert(r.offset + 4).second) << r.name;
        }
        EXPECT_TRUE(names.insert(r.name).second) << r.name;
    }
}

TEST(EmStats, CollectAccumulatesAndReadsLowBeforeHigh) {
    FakeIo io;
    io.mem[0x4074] = 5;             // GPRC
    io.mem[0x4088] = 0xfffffff0;    // GORCL
    io.mem[0x408c] = 1;             // GORCH
    Counters c;
    c.collect(io);
    EXPECT_EQ(c[stat::kGprc], 5u);
    EXPECT_EQ(c[stat::kGorc], 0x1fffffff0ULL);
    io.mem[0x4074] = 3;
    c.collect(io);
    EXPECT_EQ(c[stat::kGprc], 8u);  // registers clear on read: totals add up
    EXPECT_EQ(io.reads[0x4088], 2);
    EXPECT_EQ(io.reads[0x408c], 2);
}

TEST(EmDeclaration, NameIdsAndMask) {
    EXPECT_EQ(pmdinfo::net_e1000_em.name, "net_e1000_em");
    EXPECT_EQ(pmdinfo::net_e1000_em.dma_mask, ~std::uint64_t{0});
    ASSERT_EQ(pmdinfo::net_e1000_em.ids.size(), 2u);
    EXPECT_EQ(pmdinfo::net_e1000_em.ids[0].device, regs::kDevice82540em);
    EXPECT_EQ(pmdinfo::net_e1000_em.ids[1].device, regs::kDevice82574l);
    EXPECT_EQ(driver().name(), "net_e1000_em");
}

}  // namespace
}  // namespace vfiokit::em

// Host unit tests of the igb driver's pure parts: register and descriptor
// encodings against the datasheet's bit positions, the RSS hash against
// Microsoft's published verification vectors, and the declaration the
// build generated. The device itself is tested in the lab
// (tests/lab/igb).
#include <gtest/gtest.h>

#include <array>
#include <cstddef>

#include "common.hpp"
#include "igb.hpp"
#include "regs.hpp"
#include "rss.hpp"
#include "vf.hpp"
#include "vfiokit/ethdev/ethdev.hpp"

namespace vfiokit::igb {
namespace {

TEST(IgbRegs, FieldsSitWhereTheDatasheetPutsThem) {
    EXPECT_EQ(regs::Ctrl::zero().set_rst(1).raw(), 1u << 26);
    EXPECT_EQ(regs::Ctrl::zero().set_vme(1).raw(), 1u << 30);
    EXPECT_EQ(regs::Ctrl::zero().set_slu(1).raw(), 1u << 6);
    EXPECT_EQ(regs::Rctl::zero().set_en(1).set_bam(1).set_secrc(1).raw(),
              (1u << 1) | (1u << 15) | (1u << 26));
    // SRRCTL: 2 KiB buffers, advanced one-buffer descriptors, drop enable.
    EXPECT_EQ(regs::Srrctl::zero().set_bsizepkt(2).set_desctype(regs::kDescTypeAdvOneBuf)
                  .set_drop_en(1).raw(),
              0x82000002u);
    EXPECT_EQ(regs::Rxdctl::zero().set_enable(1).raw(), 1u << 25);
    EXPECT_EQ(regs::Txdctl::zero().set_enable(1).raw(), 1u << 25);
    EXPECT_EQ(regs::Rxcsum::zero().set_pcsd(1).raw(), 1u << 13);
    // MDIC write of PHY register 0 at PHY address 1.
    EXPECT_EQ(regs::Mdic::zero().set_data(0x1340).set_regadd(0).set_phyadd(1)
                  .set_op(regs::kMdicWrite).raw(),
              0x1340u | (1u << 21) | (1u << 26));
    // IVAR: rx queue n in byte 0, tx queue n in byte 1, each with bit 7 valid.
    EXPECT_EQ(regs::Ivar::zero().set_rx_vector(3).set_rx_valid(1).raw(), 0x83u);
    EXPECT_EQ(regs::Ivar::zero().set_rx_hi_vector(9).set_rx_hi_valid(1).raw(), 0x890000u);
    EXPECT_EQ(regs::Mrqc::zero().set_enable(regs::kMrqcRss).raw(), 2u);
    // Per-queue registers repeat every 0x40 bytes from queue 0's.
    EXPECT_EQ(regs::Rdt::offset + kQueueStride * 3, 0xC0D8u);
    EXPECT_EQ(regs::Tdt::offset + kQueueStride * 15, 0xE3D8u);
}

// The tail registers rx_queue_setup/tx_queue_setup give the burst
// functions: the PF's at 0xC018/0xE018 + 0x40 n (8.10, 8.12), the VF's at
// 0x2818/0x3818 + 0x100 n (the VF's 8.27 alias addresses).
TEST(IgbQueueLayout, TailsSitWhereTheDatasheetPutsThem) {
    auto at = [](std::size_t off, std::size_t shift) { return static_cast<std::uint32_t>(off + shift); };
    EXPECT_EQ(at(regs::Rdt::offset, kPfQueues.rx_shift(0)), 0xC018u);
    EXPECT_EQ(at(regs::Rdt::offset, kPfQueues.rx_shift(3)), 0xC0D8u);
    EXPECT_EQ(at(regs::Tdt::offset, kPfQueues.tx_shift(15)), 0xE3D8u);
    EXPECT_EQ(at(regs::Rdt::offset, kVfQueues.rx_shift(0)), 0x2818u);
    EXPECT_EQ(at(regs::Rdt::offset, kVfQueues.rx_shift(1)), 0x2918u);
    EXPECT_EQ(at(regs::Tdt::offset, kVfQueues.tx_shift(1)), 0x3918u);
    EXPECT_EQ(at(regs::Rxdctl::offset, kVfQueues.rx_shift(1)), 0x2928u);
    EXPECT_EQ(kPfQueues.count, kMaxQueues);
    EXPECT_EQ(kVfQueues.count, 2u);
}

TEST(IgbDescriptors, LayoutIsTheDatasheets) {
    AdvRxDesc rx{};
    rx.read.hdr_addr = 1;  // overlays the write-back status: DD
    EXPECT_EQ(rx.wb.status_error & rxd::kDd, rxd::kDd);
    AdvTxDesc tx{};
    tx.ctx.type_tucmd_mlhl = txd::kDtypCtxt | txd::kDext;
    EXPECT_EQ(tx.read.cmd_type_len & (0xFu << 20), txd::kDtypCtxt);
    EXPECT_EQ(txd::kDtypData | txd::kDext | txd::kEop | txd::kRs | txd::kIfcs | txd::kVle,
              0x6B300000u);
}

// Microsoft's "Verifying the RSS Hash Calculation" table: destination
// address:port, source address:port, then the IPv4 and IPv4+TCP hashes
// with the default key.
struct Vector {
    std::array<std::uint8_t, 4> dst;
    std::uint16_t dport;
    std::array<std::uint8_t, 4> src;
    std::uint16_t sport;
    std::uint32_t ipv4;
    std::uint32_t ipv4_tcp;
};
constexpr Vector kVectors[] = {
    {{161, 142, 100, 80}, 1766, {66, 9, 149, 187}, 2794, 0x323e8fc2, 0x51ccc178},
    {{65, 69, 140, 83}, 4739, {199, 92, 111, 2}, 14230, 0xd718262a, 0xc626b0ea},
    {{12, 22, 207, 184}, 38024, {24, 19, 198, 95}, 12898, 0xd2d0a5de, 0x5c2b394a},
    {{209, 142, 163, 6}, 2217, {38, 27, 205, 30}, 48228, 0x82989176, 0xafc7327f},
    {{202, 188, 127, 2}, 1303, {153, 39, 163, 191}, 44251, 0x5d1809c5, 0x10e828a2},
};

std::uint32_t addr(const std::array<std::uint8_t, 4>& a) {
    return (std::uint32_t{a[0]} << 24) | (std::uint32_t{a[1]} << 16) | (std::uint32_t{a[2]} << 8) | a[3];
}

TEST(IgbRss, ToeplitzMatchesTheVerificationVectors) {
    for (const auto& v : kVectors) {
        EXPECT_EQ(rss_hash_ipv4(kDefaultRssKey, addr(v.src), addr(v.dst)), v.ipv4);
        EXPECT_EQ(rss_hash_ipv4_l4(kDefaultRssKey, addr(v.src), addr(v.dst), v.sport, v.dport),
                  v.ipv4_tcp);
    }
}

TEST(IgbRss, EthdevHashFunctionsBecomeMrqcFields) {
    namespace r = ethdev::rss;
    EXPECT_EQ(mrqc_fields(r::kIpv4Tcp), 1u << 16);
    EXPECT_EQ(mrqc_fields(r::kIpv4), 1u << 17);
    EXPECT_EQ(mrqc_fields(r::kIpv6), 1u << 20);
    EXPECT_EQ(mrqc_fields(r::kIpv6Tcp), 1u << 21);
    EXPECT_EQ(mrqc_fields(r::kIpv4Udp), 1u << 22);
    EXPECT_EQ(mrqc_fields(r::kIpv6Udp), 1u << 23);
    EXPECT_EQ(mrqc_fields(0), 0u);
}

TEST(IgbRss, RedirectionSpreadsEveryQueue) {
    for (unsigned n = 1; n <= kMaxQueues; ++n) {
        std::array<unsigned, kMaxQueues> hits{};
        for (unsigned i = 0; i < regs::kRetaEntries; ++i) {
            const unsigned q = reta_entry(i, n);
            ASSERT_LT(q, n);
            ++hits[q];
        }
        for (unsigned q = 0; q < n; ++q)
            EXPECT_GT(hits[q], 0u) << n << " queues: queue " << q << " gets no entry";
    }
    EXPECT_EQ(rss_queue(0x51ccc178, 4), (0x51ccc178u & 0x7f) % 4);
}

TEST(IgbDeclaration, NamesTheDriverAsDpdkDoes) {
    const auto& info = driver().info();
    EXPECT_EQ(info.name, "net_e1000_igb");
    ASSERT_EQ(info.ids.size(), 1u);
    EXPECT_EQ(info.ids[0].vendor, kVendorIntel);
    EXPECT_EQ(info.ids[0].device, kDevice82576);
    EXPECT_EQ(info.dma_mask, ~std::uint64_t{0});
    EXPECT_NE(info.pmd_info.find("\"net_e1000_igb\""), std::string_view::npos);
}

}  // namespace
}  // namespace vfiokit::igb

// Host tests of the edu driver's register layout and transfer checks; the
// device itself is tested in the lab (tests/lab/edu/edu_test.cpp).
#include "edu.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <map>

#include "edu_pmdinfo.hpp"

namespace vfiokit::edu {
namespace {

// A register file for the typed registers: remembers writes by offset.
struct FakeIo {
    template <class T>
    T read(std::size_t off) {
        return static_cast<T>(mem[off]);
    }
    template <class T>
    void write(std::size_t off, T v) {
        mem[off] = v;
        widths[off] = sizeof(T);
    }
    std::map<std::size_t, std::uint64_t> mem;
    std::map<std::size_t, std::size_t> widths;
};

TEST(EduRegisters, IdentificationFields) {
    const auto id = regs::Identification::from_raw(kIdentification);
    EXPECT_EQ(id.major(), 1u);
    EXPECT_EQ(id.minor(), 0u);
    EXPECT_EQ(id.magic(), 0xedu);
}

TEST(EduRegisters, DmaCommandBitsMatchEduC) {
    // EDU_DMA_RUN 0x1, EDU_DMA_DIR 0x2 (1: EDU_DMA_TO_PCI), EDU_DMA_IRQ 0x4.
    EXPECT_EQ(regs::DmaCommand::zero().set_start(1).raw(), 0x1u);
    EXPECT_EQ(regs::DmaCommand::zero().set_to_ram(1).raw(), 0x2u);
    EXPECT_EQ(regs::DmaCommand::zero().set_irq_on_done(1).raw(), 0x4u);
    EXPECT_EQ(regs::Status::zero().set_irq_on_factorial(1).raw(), 0x80u);
    EXPECT_EQ(regs::IrqStatus::from_raw(kIrqDma | kIrqFactorial).dma(), 1u);
}

TEST(EduRegisters, OffsetsAndWidths) {
    FakeIo io;
    regs::DmaSource::zero().set_address(0x123456789ULL).write(io);
    regs::DmaDestination::zero().set_address(0x40000).write(io);
    regs::DmaCount::zero().set_bytes(100).write(io);
    regs::DmaCommand::zero().set_start(1).write(io);
    regs::IrqRaise::zero().set_value(5).write(io);
    regs::IrqAck::zero().set_value(5).write(io);
    EXPECT_EQ(io.mem[0x80], 0x123456789ULL);
    EXPECT_EQ(io.widths[0x80], 8u);  // 64-bit address registers take 8-byte writes
    EXPECT_EQ(io.mem[0x88], 0x40000u);
    EXPECT_EQ(io.mem[0x90], 100u);
    EXPECT_EQ(io.widths[0x98], 4u);
    EXPECT_EQ(io.widths[0x60], 4u);  // below 0x80 only 4-byte accesses count
    EXPECT_EQ(io.widths[0x64], 4u);
}

TEST(EduTransfer, WholeBufferIsRefusedBecauseOfTheQemuBug) {
    auto r = check_transfer(0x100000, 0, 4096, kDefaultDmaMask);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().err(), EINVAL);
    EXPECT_NE(r.error().message().find("0x41000"), std::string::npos) << r.error().message();
    // Any transfer ending at the buffer's end, not just the whole buffer.
    EXPECT_FALSE(check_transfer(0x100000, 1, 4095, kDefaultDmaMask));
    EXPECT_FALSE(check_transfer(0x100000, 4095, 1, kDefaultDmaMask));
    // One byte short is fine.
    EXPECT_TRUE(check_transfer(0x100000, 0, kMaxTransfer, kDefaultDmaMask));
    EXPECT_TRUE(check_transfer(0x100000, 4094, 1, kDefaultDmaMask));
}

TEST(EduTransfer, EmptyOutsideAndAboveTheMask) {
    EXPECT_EQ(check_transfer(0x100000, 0, 0, kDefaultDmaMask).error().err(), EINVAL);
    EXPECT_EQ(check_transfer(0x100000, 4096, 1, kDefaultDmaMask).error().err(), EINVAL);
    EXPECT_EQ(check_transfer(0x100000, 4000, 200, kDefaultDmaMask).error().err(), EINVAL);
    EXPECT_EQ(check_transfer(0x100000, ~0ULL, 2, kDefaultDmaMask).error().err(), EINVAL);
    auto hi = check_transfer(kDefaultDmaMask - 10, 0, 64, kDefaultDmaMask);
    ASSERT_FALSE(hi);
    EXPECT_EQ(hi.error().err(), ERANGE);
    EXPECT_NE(hi.error().message().find("alloc_iova"), std::string::npos);
    EXPECT_TRUE(check_transfer(kDefaultDmaMask - 63, 0, 64, kDefaultDmaMask));
    EXPECT_EQ(check_transfer(~0ULL - 2, 0, 64, ~0ULL).error().err(), ERANGE);  // wraps
}

// The declaration (edu.pmd.json) reaches the runtime registry: the
// registered driver is edu, matches 1234:11e8 and nothing else of QEMU's
// vendor (std VGA 1234:1111), has the 28-bit mask and the dma_mask parameter.
TEST(EduDriverInfo, DeclarationReachesTheRegistry) {
    const auto regs = pci::registered_drivers();
    ASSERT_NE(std::find(regs.begin(), regs.end(), &driver()), regs.end());
    const pci::DriverInfo& info = driver().info();
    EXPECT_EQ(&info, &pmdinfo::edu);
    EXPECT_EQ(info.name, "edu");
    EXPECT_EQ(info.dma_mask, kDefaultDmaMask);
    EXPECT_TRUE(driver().matches({kVendor, kDevice, 0x1af4, 0x1100, 0x00ff00}));
    EXPECT_FALSE(driver().matches({kVendor, 0x1111, 0x1af4, 0x1100, 0x030000}));
    ASSERT_EQ(info.params.size(), 1u);
    EXPECT_EQ(info.params[0].name, "dma_mask");
    // The embedded string carries the same facts, in DPDK's format.
    // (Spelled in two pieces: the whole prefix in this binary's .rodata
    // would be one more string for dpdk-pmdinfo.py to read.)
    EXPECT_TRUE(info.pmd_info.starts_with(std::string("PMD_INFO") + "_STRING= {\"name\": \"edu\""));
    EXPECT_NE(info.pmd_info.find("[[4660, 4584, 65535, 65535]]"), std::string_view::npos);
    EXPECT_NE(info.pmd_info.find("\"params\": \"dma_mask=<mask>\""), std::string_view::npos);
}

// -a BDF,KEY=VALUE: a key the driver does not declare fails, naming the
// driver, the device, the key and what the driver accepts.
TEST(EduDriverInfo, ArgumentsAreCheckedAgainstTheParameters) {
    const PciAddress a = *PciAddress::parse("0000:00:03.0");
    std::vector<eal::DeviceArg> bad{{"speed", "9"}, {"dma_mask", "0xffff"}, {"mtu", "1"}};
    auto r = pci::DriverArgs::parse(driver().info(), a, bad);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().err(), EINVAL);
    const std::string m = r.error().message();
    for (const char* want : {"driver edu", "'speed', 'mtu'", "0000:00:03.0", "accepts: dma_mask=<mask>"})
        EXPECT_NE(m.find(want), std::string::npos) << want << " in: " << m;

    std::vector<eal::DeviceArg> good{{"dma_mask", "0xffffffff"}};
    auto ok = pci::DriverArgs::parse(driver().info(), a, good);
    ASSERT_TRUE(ok) << ok.error().message();
    auto mask = driver().dma_mask(*ok);
    ASSERT_TRUE(mask) << mask.error().message();
    EXPECT_EQ(*mask, 0xffffffffu);
    auto none = driver().dma_mask(pci::DriverArgs());
    ASSERT_TRUE(none);
    EXPECT_EQ(*none, kDefaultDmaMask);  // the declared 28 bits
    for (const char* v : {"lots", "0", ""}) {
        std::vector<eal::DeviceArg> nan{{"dma_mask", v}};
        auto p = pci::DriverArgs::parse(driver().info(), a, nan);
        ASSERT_TRUE(p);
        auto m2 = driver().dma_mask(*p);
        ASSERT_FALSE(m2) << v;
        EXPECT_NE(m2.error().message().find("dma_mask"), std::string::npos) << m2.error().message();
    }
}

}  // namespace
}  // namespace vfiokit::edu

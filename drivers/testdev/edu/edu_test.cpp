// Host tests of the edu driver's register layout and transfer checks; the
// device itself is tested in the lab (lab_test.cpp).
#include "edu.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <map>

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

}  // namespace
}  // namespace vfiokit::edu

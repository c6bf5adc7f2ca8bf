// Typed registers (register.hpp) over a fake device.
//
// Built twice more by meson with -DVFIOKIT_REGISTER_FIELD_HI=N -fsyntax-only:
// N = 7 must compile (a field 7:0 fills an 8-bit register), N = 8 must not
// (the field would stick out of it): the compile-time range check.
#if defined(VFIOKIT_REGISTER_FIELD_HI)

#include "vfiokit/bus/pci/register.hpp"

struct Probe : vfiokit::pci::Register<Probe, std::uint8_t, 0> {
    VFIOKIT_FIELD(VFIOKIT_REGISTER_FIELD_HI, 0, field);
};
int probe_field() { return Probe::zero().field(); }

#else

#include "vfiokit/bus/pci/register.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <vector>

namespace vfiokit::pci {
namespace {

// A register file in memory: what a driver test gives a register type
// instead of a BAR. Logs every access.
struct FakeIo {
    unsigned char bytes[256] = {};
    struct Access {
        bool write;
        std::size_t off;
        std::size_t width;
    };
    std::vector<Access> log;

    template <class T>
    T read(std::size_t off) {
        log.push_back({false, off, sizeof(T)});
        T v;
        std::memcpy(&v, bytes + off, sizeof v);
        return v;
    }
    template <class T>
    void write(std::size_t off, T v) {
        log.push_back({true, off, sizeof(T)});
        std::memcpy(bytes + off, &v, sizeof v);
    }
};

// edu's DMA command register (QEMU docs/specs/edu.rst): bit 0 start, bit 1
// direction, bit 2 raise an interrupt when done.
struct DmaCommand : Register<DmaCommand, std::uint32_t, 0x98> {
    VFIOKIT_FIELD(0, 0, start);
    VFIOKIT_FIELD(1, 1, to_ram);
    VFIOKIT_FIELD(2, 2, irq_on_done);
};

// Fields of every shape: a full-width one, a top one, a middle one.
struct Wide : Register<Wide, std::uint64_t, 0x10> {
    VFIOKIT_FIELD(63, 0, all);
    VFIOKIT_FIELD(63, 60, top);
    VFIOKIT_FIELD(35, 28, middle);
};

struct Small : Register<Small, std::uint16_t, 0x04> {
    VFIOKIT_FIELD(15, 15, high_bit);
    VFIOKIT_FIELD(7, 4, nibble);
};

static_assert(DmaCommand::offset == 0x98 && DmaCommand::bits == 32);
static_assert(Wide::zero().set_all(~0ULL).all() == ~0ULL);
static_assert(Wide::zero().set_top(0xf).raw() == 0xf000000000000000ULL);
// Fields are usable in constant expressions: register layouts can be
// checked at compile time against the datasheet.
static_assert(Small::zero().set_nibble(0xa).raw() == 0xa0);

TEST(Register, SetAndGetFields) {
    DmaCommand c;
    c.set_start(1).set_irq_on_done(1);
    EXPECT_EQ(c.raw(), 0x5u);
    EXPECT_EQ(c.start(), 1u);
    EXPECT_EQ(c.to_ram(), 0u);
    EXPECT_EQ(c.irq_on_done(), 1u);
    c.set_start(0);
    EXPECT_EQ(c.raw(), 0x4u);
}

TEST(Register, SettingAFieldPreservesEveryOtherBit) {
    auto w = Wide::from_raw(0x0123456789abcdefULL);
    w.set_middle(0x5a);
    EXPECT_EQ(w.middle(), 0x5au);
    // Only bits 35:28 changed.
    EXPECT_EQ(w.raw() & ~(0xffULL << 28), 0x0123456789abcdefULL & ~(0xffULL << 28));
    w.set_top(0x9);
    EXPECT_EQ(w.raw() >> 60, 0x9u);
    EXPECT_EQ(w.middle(), 0x5au);
    auto s = Small::from_raw(0xffff);
    s.set_nibble(0);
    EXPECT_EQ(s.raw(), 0xff0fu);
    s.set_high_bit(0);
    EXPECT_EQ(s.raw(), 0x7f0fu);
}

TEST(Register, ValuesWiderThanTheFieldAreCutToIt) {
    Small s;
    s.set_nibble(0x1f3);  // only the low 4 bits fit
    EXPECT_EQ(s.nibble(), 0x3u);
    EXPECT_EQ(s.raw(), 0x30u);  // bit 8 and up untouched
}

TEST(Register, FullWidthField) {
    Wide w;
    w.set_all(0xfedcba9876543210ULL);
    EXPECT_EQ(w.all(), 0xfedcba9876543210ULL);
    EXPECT_EQ(w.top(), 0xfu);
}

TEST(Register, ReadModifyWriteThroughTheIo) {
    FakeIo io;
    const std::uint32_t initial = 0xdead0002;  // to_ram set, reserved bits set
    std::memcpy(io.bytes + 0x98, &initial, 4);
    DmaCommand::read(io).set_start(1).write(io);
    std::uint32_t now;
    std::memcpy(&now, io.bytes + 0x98, 4);
    EXPECT_EQ(now, 0xdead0003u);  // reserved bits preserved on read-modify-write
    ASSERT_EQ(io.log.size(), 2u);
    EXPECT_FALSE(io.log[0].write);
    EXPECT_TRUE(io.log[1].write);
    EXPECT_EQ(io.log[1].off, 0x98u);
    EXPECT_EQ(io.log[1].width, 4u);  // one access of the register's width
}

TEST(Register, ZeroWritesWithoutReading) {
    FakeIo io;
    std::memset(io.bytes, 0xff, sizeof io.bytes);
    Small::zero().set_nibble(0x6).write(io);
    ASSERT_EQ(io.log.size(), 1u);
    EXPECT_TRUE(io.log[0].write);
    EXPECT_EQ(io.bytes[4], 0x60);
    EXPECT_EQ(io.bytes[5], 0x00);
    EXPECT_EQ(io.bytes[6], 0xff);  // the neighbour is not touched
}

}  // namespace
}  // namespace vfiokit::pci

#endif

#include "byte_codec.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace vfiokit::codec {
namespace {

TEST(ByteCodec, RoundTripLittleEndian) {
    Writer w;
    w.u8(0x12);
    w.u16(0x3456);
    w.u32(0);  // patched
    w.i32(-2);
    w.u64(0x0102030405060708ULL);
    w.str("edu");
    w.patch_u32(3, 0xa1b2c3d4);
    const std::vector<std::uint8_t> b = w.take();
    ASSERT_EQ(b.size(), 1u + 2 + 4 + 4 + 8 + 4 + 3);
    // Little-endian whatever the host: the bytes themselves.
    EXPECT_EQ(b[1], 0x56);
    EXPECT_EQ(b[2], 0x34);
    EXPECT_EQ(b[3], 0xd4);
    EXPECT_EQ(b[11], 0x08);
    Reader r(b);
    EXPECT_EQ(r.u8(), 0x12);
    EXPECT_EQ(r.u16(), 0x3456);
    EXPECT_EQ(r.u32(), 0xa1b2c3d4u);
    EXPECT_EQ(r.i32(), -2);
    EXPECT_EQ(r.u64(), 0x0102030405060708ULL);
    EXPECT_EQ(r.str(), "edu");
    EXPECT_TRUE(r.ok());
    EXPECT_TRUE(r.at_end());
}

TEST(ByteCodec, StringsAndRawBytes) {
    Writer inner;
    inner.u32(7);
    Writer w;
    w.raw(inner.take_string());
    w.str("");
    const std::string s = w.take_string();
    Reader r(std::string_view{s});
    EXPECT_EQ(r.u32(), 7u);
    EXPECT_EQ(r.str(), "");
    EXPECT_TRUE(r.ok() && r.at_end());
}

TEST(ByteCodec, TruncationIsRecordedOnceAndNamesTheField) {
    const std::vector<std::uint8_t> b = {1, 2, 3};
    Reader r(b);
    EXPECT_EQ(r.u16("the version"), 0x0201);
    EXPECT_EQ(r.u32("the length"), 0u);
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.error(), "truncated: 3 bytes end inside the length at byte 2 (4 needed, 1 left)");
    EXPECT_EQ(r.u8("later"), 0u);  // stays failed, first error kept
    EXPECT_NE(r.error().find("the length"), std::string::npos);
    EXPECT_EQ(r.left(), 0u);
}

TEST(ByteCodec, StringLongerThanItsInputFails) {
    Writer w;
    w.u32(100);
    w.raw("abc");
    const auto b = w.take();
    Reader r(b);
    EXPECT_EQ(r.str("the name"), "");
    EXPECT_FALSE(r.ok());
    EXPECT_NE(r.error().find("the name"), std::string::npos);
}

}  // namespace
}  // namespace vfiokit::codec

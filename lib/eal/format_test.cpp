#include "vfiokit/eal/format.hpp"

#include <gtest/gtest.h>

namespace vfiokit {
namespace {

TEST(Format, Hex) {
    EXPECT_EQ(hex(0), "0x0");
    EXPECT_EQ(hex(0x1f), "0x1f");
    EXPECT_EQ(hex(0xfee00000), "0xfee00000");
    EXPECT_EQ(hex(~0ULL), "0xffffffffffffffff");
}

TEST(Format, HexDigits) {
    EXPECT_EQ(hex_digits(0xff00, 6), "00ff00");
    EXPECT_EQ(hex_digits(0x11e8, 4), "11e8");
    EXPECT_EQ(hex_digits(0x12345, 4), "12345");  // never truncated
}

TEST(Format, Ranges) {
    EXPECT_EQ(range_text(0x1000, 0x2000), "[0x1000, 0x3000)");
    EXPECT_EQ(range_text(0, 0), "[0x0, 0x0)");
    EXPECT_EQ(inclusive_range_text(0, 0xfedfffff), "[0x0, 0xfedfffff]");
}

}  // namespace
}  // namespace vfiokit

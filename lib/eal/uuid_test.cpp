#include "vfiokit/eal/uuid.hpp"

#include <gtest/gtest.h>

namespace vfiokit {
namespace {

TEST(Uuid, ParsesInTextOrder) {
    auto u = parse_uuid("2ab74924-c335-45f4-9b16-8569e5b08258");
    ASSERT_TRUE(u) << u.error().message();
    const Uuid want = {0x2a, 0xb7, 0x49, 0x24, 0xc3, 0x35, 0x45, 0xf4,
                       0x9b, 0x16, 0x85, 0x69, 0xe5, 0xb0, 0x82, 0x58};
    EXPECT_EQ(*u, want);
    EXPECT_EQ(to_string(*u), "2ab74924-c335-45f4-9b16-8569e5b08258");
}

TEST(Uuid, EitherCase) {
    auto u = parse_uuid("2AB74924-C335-45F4-9B16-8569E5B08258");
    ASSERT_TRUE(u);
    EXPECT_EQ(to_string(*u), "2ab74924-c335-45f4-9b16-8569e5b08258");
}

TEST(Uuid, RejectsEverythingElse) {
    for (const char* bad : {"", "nope", "2ab74924c33545f49b168569e5b08258",
                            "{2ab74924-c335-45f4-9b16-8569e5b08258}",
                            "2ab74924-c335-45f4-9b16-8569e5b0825g",
                            "2ab74924-c335-45f4-9b16-8569e5b0825",
                            "2ab74924-c335-45f4-9b16-8569e5b082588",
                            "2ab74924-c335+45f4-9b16-8569e5b08258",
                            "2ab7492-4c335-45f4-9b16-8569e5b08258"}) {
        auto u = parse_uuid(bad);
        ASSERT_FALSE(u) << bad;
        EXPECT_EQ(u.error().err(), EINVAL);
        EXPECT_NE(u.error().message().find("xxxxxxxx-xxxx"), std::string::npos);
    }
}

}  // namespace
}  // namespace vfiokit

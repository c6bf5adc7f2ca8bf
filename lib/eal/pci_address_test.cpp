#include "vfiokit/eal/pci_address.hpp"

#include <gtest/gtest.h>

namespace vfiokit {
namespace {

TEST(PciAddress, ParsesFullAndShortForms) {
    auto a = PciAddress::parse("0000:01:1f.7");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->domain, 0u);
    EXPECT_EQ(a->bus, 1);
    EXPECT_EQ(a->dev, 0x1f);
    EXPECT_EQ(a->func, 7);
    EXPECT_EQ(a->str(), "0000:01:1f.7");

    auto b = PciAddress::parse("00:03.0");
    ASSERT_TRUE(b);
    EXPECT_EQ(b->str(), "0000:00:03.0");

    auto c = PciAddress::parse("10000:ff:00.1");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->str(), "10000:ff:00.1");
}

TEST(PciAddress, RejectsMalformed) {
    for (const char* s : {"", "0000:00:03", "0000:00:20.0", "0000:00:03.8", "00:03.0x",
                          "zz:00.0", "0000::03.0", "0000:00:03.0 ", "000:00:03.0.1"})
        EXPECT_FALSE(PciAddress::parse(s)) << s;
}

TEST(PciAddress, OrdersByDomainBusDeviceFunction) {
    EXPECT_LT(*PciAddress::parse("0000:00:1f.0"), *PciAddress::parse("0000:01:00.0"));
    EXPECT_LT(*PciAddress::parse("0000:00:03.0"), *PciAddress::parse("0000:00:03.1"));
}

}  // namespace
}  // namespace vfiokit

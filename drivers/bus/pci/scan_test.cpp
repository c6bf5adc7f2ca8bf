#include "vfiokit/bus/pci/scan.hpp"

#include <gtest/gtest.h>

#include "fake_sysfs.hpp"

namespace vfiokit::pci {
namespace {

TEST(Scan, ReadsIdsGroupDriverAndSortsByAddress) {
    testing::FakeSysfs fs;
    fs.pci_device("0000:01:02.0", "0x8086", "0x100e", "0x020000", 7, "e1000");
    fs.pci_device("0000:00:03.0", "0x1234", "0x11e8", "0x00ff00", 3, "vfio-pci");
    fs.file("/sys/bus/pci/devices/0000:00:03.0/numa_node", "1\n");
    fs.file("/sys/bus/pci/devices/0000:00:03.0/driver_override", "vfio-pci\n");
    auto all = scan(fs.root());
    ASSERT_TRUE(all) << all.error().message();
    ASSERT_EQ(all->size(), 2u);
    const auto& edu = (*all)[0];
    EXPECT_EQ(edu.addr.str(), "0000:00:03.0");
    EXPECT_EQ(edu.ids.vendor, 0x1234);
    EXPECT_EQ(edu.ids.device, 0x11e8);
    EXPECT_EQ(edu.ids.class_code, 0x00ff00u);
    EXPECT_EQ(edu.numa_node, 1);
    EXPECT_EQ(edu.iommu_group, 3u);
    EXPECT_EQ(edu.driver, "vfio-pci");
    EXPECT_EQ(edu.driver_override, "vfio-pci");
    const auto& nic = (*all)[1];
    EXPECT_EQ(nic.driver, "e1000");
    EXPECT_EQ(nic.numa_node, -1);
    EXPECT_TRUE(nic.driver_override.empty());
}

TEST(Scan, UnreadableIdsNameTheDevice) {
    testing::FakeSysfs fs;
    fs.pci_device("0000:00:03.0", "0x1234", "garbage", "0x00ff00", 3, "");
    auto all = scan(fs.root());
    ASSERT_FALSE(all);
    EXPECT_NE(all.error().message().find("0000:00:03.0"), std::string::npos);
    EXPECT_NE(all.error().message().find("device"), std::string::npos);
}

TEST(Scan, NoPciBus) {
    testing::FakeSysfs fs;
    auto all = scan(fs.root());
    ASSERT_FALSE(all);
    EXPECT_EQ(all.error().err(), ENOENT);
}

}  // namespace
}  // namespace vfiokit::pci

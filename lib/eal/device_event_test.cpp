#include "vfiokit/eal/device_event.hpp"

#include <gtest/gtest.h>

#include <string>

namespace vfiokit::eal {
namespace {

using namespace std::string_literals;

std::optional<Uevent> parse(const std::string& s) {
    return parse_uevent({reinterpret_cast<const std::byte*>(s.data()), s.size()});
}

// What Linux sends when pciehp adds an edu behind a root port
// (lib/kobject_uevent.c: header, then the environment, NUL-separated).
const std::string kAdd =
    "add@/devices/pci0000:00/0000:00:0d.0/0000:02:00.0\0ACTION=add\0"
    "DEVPATH=/devices/pci0000:00/0000:00:0d.0/0000:02:00.0\0SUBSYSTEM=pci\0"
    "PCI_CLASS=FF00\0PCI_ID=1234:11E8\0PCI_SUBSYS_ID=1AF4:1100\0"
    "PCI_SLOT_NAME=0000:02:00.0\0MODALIAS=pci:v00001234d000011E8sv00001AF4sd00001100bcFFsc00i00\0"
    "SEQNUM=1234\0"s;

TEST(Uevent, ParsesTheKernelsPciAdd) {
    auto u = parse(kAdd);
    ASSERT_TRUE(u);
    EXPECT_EQ(u->action, "add");
    EXPECT_EQ(u->subsystem, "pci");
    EXPECT_EQ(u->pci_slot, "0000:02:00.0");
    EXPECT_EQ(u->pci_id, "1234:11E8");
    EXPECT_EQ(u->seqnum, 1234u);
    auto e = pci_device_event(*u);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->type, DeviceEventType::add);
    EXPECT_EQ(e->bus, "pci");
    EXPECT_EQ(e->addr.str(), "0000:02:00.0");
    EXPECT_EQ(e->vendor, 0x1234);
    EXPECT_EQ(e->device, 0x11e8);
}

TEST(Uevent, RemoveBecomesRemovedAndOtherActionsNothing) {
    std::string rm = kAdd;
    rm.replace(0, 3, "remove");
    rm.replace(rm.find("ACTION=add"), 10, "ACTION=remove");
    auto u = parse(rm);
    ASSERT_TRUE(u);
    auto e = pci_device_event(*u);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->type, DeviceEventType::removed);
    auto bind = parse("bind@/devices/x\0ACTION=bind\0SUBSYSTEM=pci\0DRIVER=vfio-pci\0"
                      "PCI_SLOT_NAME=0000:02:00.0\0"s);
    ASSERT_TRUE(bind);
    EXPECT_EQ(bind->driver, "vfio-pci");
    EXPECT_FALSE(pci_device_event(*bind));
    auto net = parse("add@/devices/virtual/net/lo\0ACTION=add\0SUBSYSTEM=net\0"s);
    ASSERT_TRUE(net);
    EXPECT_FALSE(pci_device_event(*net));
    auto noslot = parse("add@/devices/x\0ACTION=add\0SUBSYSTEM=pci\0PCI_SLOT_NAME=junk\0"s);
    ASSERT_TRUE(noslot);
    EXPECT_FALSE(pci_device_event(*noslot));
}

TEST(Uevent, RefusesWhatIsNotAKernelUevent) {
    EXPECT_FALSE(parse(""));
    EXPECT_FALSE(parse("add@/devices/x"));                       // no NUL at all
    EXPECT_FALSE(parse("libudev\0\xfe\xed\xca\xfe"s));           // udev's header
    EXPECT_FALSE(parse("add@/devices/x\0SUBSYSTEM=pci\0"s));     // no ACTION
    EXPECT_FALSE(parse("add@/devices/x\0ACTION=remove\0"s));     // header disagrees
    EXPECT_FALSE(parse("@/devices/x\0ACTION=\0"s));
}

// Every prefix and every single-byte change of a real message: parsed or
// refused, never read past the end (ASan in the sanitizer builds).
TEST(Uevent, TruncatedAndFlippedBytesAreSafe) {
    for (std::size_t n = 0; n <= kAdd.size(); ++n)
        (void)parse(kAdd.substr(0, n));
    for (std::size_t i = 0; i < kAdd.size(); ++i)
        for (int bit = 0; bit < 8; ++bit) {
            std::string m = kAdd;
            m[i] = static_cast<char>(m[i] ^ (1 << bit));
            if (auto u = parse(m))
                (void)pci_device_event(*u);
        }
}

}  // namespace
}  // namespace vfiokit::eal

// The device released before the Bars, IrqSets and PciDevices taken from
// it: every later call fails with ENODEV naming the device, destructors
// issue nothing, and nothing reaches the device (a fake, whose log shows
// each call it received), while a Bar's mapping keeps working.
#include <sys/mman.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>

#include "fake_device.hpp"
#include "lab_env.hpp"
#include "vfiokit/bus/pci/device.hpp"

namespace vfiokit::pci {
namespace {

using testing::FakeDevice;
using testing::FakeDeviceLog;

constexpr std::uint64_t kPage = 4096;

struct Released : ::testing::Test {
    std::shared_ptr<FakeDeviceLog> log = std::make_shared<FakeDeviceLog>();
    std::shared_ptr<vfio::DeviceHandle> handle;

    void SetUp() override {
        auto dev = std::make_unique<FakeDevice>(log);
        dev->regions[0].bytes.assign(2 * kPage, 0);  // BAR0, memory (config says so)
        dev->regions[0].mappable = true;
        dev->regions[7].bytes.assign(256, 0);        // config space
        dev->irq_count = 4;
        handle = std::make_shared<vfio::DeviceHandle>(*PciAddress::parse("0000:00:03.0"),
                                                      std::move(dev));
    }
    // The calls the device received after it was destroyed: must be none.
    std::vector<std::string> after_release() const {
        auto it = std::find(log->calls.begin(), log->calls.end(), "destroyed");
        EXPECT_NE(it, log->calls.end()) << "the release did not destroy the device";
        return it == log->calls.end() ? log->calls : std::vector<std::string>(it + 1, log->calls.end());
    }
};

void expect_released(const Error& e) {
    EXPECT_EQ(e.err(), ENODEV) << e.message();
    EXPECT_NE(e.message().find("device 0000:00:03.0 was released"), std::string::npos)
        << e.message();
}

TEST_F(Released, BarSlowPathFailsCleanlyAndTheMappingStays) {
    // BAR0 with its first page mapped, the second reached by region access.
    auto m = handle->map_region(0, 0, kPage, PROT_READ | PROT_WRITE, nullptr);
    ASSERT_TRUE(m) << m.error().message();
    std::vector<Bar::Part> parts;
    parts.push_back({0, std::move(*m)});
    Bar bar(0, handle, 2 * kPage, false, std::move(parts));
    bar.write<std::uint32_t>(0x10, 0x1234);
    ASSERT_TRUE(bar.try_write<std::uint32_t>(kPage + 0x10, 0x5678));
    EXPECT_EQ(*bar.try_read<std::uint32_t>(kPage + 0x10), 0x5678u);

    handle->release();
    // The mapped part is the Bar's own: still there, still the fast path.
    EXPECT_EQ(bar.read<std::uint32_t>(0x10), 0x1234u);
    bar.write<std::uint32_t>(0x14, 7);
    EXPECT_EQ(bar.read<std::uint32_t>(0x14), 7u);
    auto r = bar.try_read<std::uint32_t>(kPage + 0x10);
    ASSERT_FALSE(r);
    expect_released(r.error());
    auto w = bar.try_write<std::uint32_t>(kPage + 0x10, 1);
    ASSERT_FALSE(w);
    expect_released(w.error());
    ::testing::internal::CaptureStderr();
    EXPECT_EQ(bar.read<std::uint32_t>(kPage), 0xffffffffu);  // master abort
    const std::string err = ::testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("was released"), std::string::npos) << err;
    EXPECT_TRUE(after_release().empty());
}

TEST_F(Released, IrqSetCallsFailAndItsDestructorIssuesNothing) {
    PciDevice pci(handle);
    const int before = vfiokit::testing::open_fds();
    {
        auto set = pci.enable_irqs(IrqType::msix, 4);
        ASSERT_TRUE(set) << set.error().message();
        ASSERT_TRUE(set->trigger(3));
        ASSERT_EQ(log->irq_requests.size(), 2u);
        EXPECT_EQ(log->irq_requests[0].count, 4u);

        handle->release();
        auto t = set->trigger(0);
        ASSERT_FALSE(t);
        expect_released(t.error());
        auto d = set->disable();
        ASSERT_FALSE(d);
        expect_released(d.error());
        // Moving it around must not reach the device either.
        IrqSet moved = std::move(*set);
        *set = std::move(moved);
    }
    EXPECT_EQ(vfiokit::testing::open_fds(), before);  // eventfds closed all the same
    EXPECT_TRUE(after_release().empty());
    EXPECT_EQ(log->irq_requests.size(), 2u);
}

TEST_F(Released, PciDeviceCallsFailCleanly) {
    PciDevice pci(handle);
    auto bar = pci.map_bar(0);  // before: works on the fake
    ASSERT_TRUE(bar) << bar.error().message();
    EXPECT_EQ(bar->parts().size(), 1u);

    handle->release();
    const int before = vfiokit::testing::open_fds();
    std::uint32_t v = 0;
    expect_released(pci.info().error());
    expect_released(pci.region_info(Region::bar0).error());
    expect_released(pci.config_read(0, 4).error());
    expect_released(pci.config_write(4, 2, 6).error());
    expect_released(pci.read_region(Region::bar0, 0, &v, 4).error());
    expect_released(pci.map_bar(0).error());
    expect_released(pci.irq_info(IrqType::msi).error());
    expect_released(pci.enable_irqs(IrqType::msi, 1).error());
    expect_released(pci.enable_memory_and_bus_master().error());
    expect_released(pci.reset().error());
    EXPECT_EQ(vfiokit::testing::open_fds(), before);  // enable_irqs's eventfd closed
    EXPECT_EQ(pci.address().str(), "0000:00:03.0");
    bar = Bar();  // unmaps; nothing to tell the device
    EXPECT_TRUE(after_release().empty());
}

}  // namespace
}  // namespace vfiokit::pci

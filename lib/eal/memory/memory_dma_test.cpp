// The EAL memory listener on the host, through the fake VFIO backend
// (vfio/fake_backend.hpp): what a segment's removal does when the kernel
// refuses the DMA unmap (the segment is quarantined, the error returned),
// and, without an IOMMU, that the devices stop mastering the bus before
// the memory goes. The lab repeats both on the real kernel
// (tests/lab/memory).
#include <gtest/gtest.h>

#include <cerrno>
#include <memory>
#include <string>

#include "../vfio/fake_backend.hpp"
#include "fake_sysfs.hpp"
#include "vfiokit/eal/memory.hpp"
#include "vfiokit/eal/memory_dma.hpp"

namespace vfiokit::eal {
namespace {

using vfio::fake::FakeBackend;
using vfio::fake::FakeIommu;

constexpr const char* kEdu = "0000:00:03.0";

class Listener : public ::testing::Test {
protected:
    void SetUp() override {
        fs.file("/dev/vfio/vfio");
        fs.file("/dev/iommu");
        fs.file("/sys/module/vfio/parameters/enable_unsafe_noiommu_mode", "N\n");
        fs.dir("/sys/bus/pci/drivers/vfio-pci");
        fs.pci_device(kEdu, "0x1234", "0x11e8", "0x00ff00", 3, "vfio-pci");
        fs.dir(std::string("/sys/bus/pci/devices/") + kEdu + "/vfio-dev/vfio0");
        fs.file("/dev/vfio/devices/vfio0");
        fs.file("/dev/vfio/3");
        k = std::make_shared<FakeIommu>();
        k->group_style = false;  // DMA ready at once
    }
    void start() {
        vfio = vfio::VfioTesting::make(fs.root(), vfio::Mode::cdev,
                                       std::make_unique<FakeBackend>(k, vfio::Mode::cdev));
        MemoryOptions o;
        o.no_huge = true;
        o.window = 64ULL << 20;
        auto m = Memory::create(o);
        ASSERT_TRUE(m) << m.error().message();
        mem = std::move(*m);
        listener = std::make_unique<ContainerDmaListener>(*mem, vfio->default_container());
        mem->set_listener(listener.get());
    }
    void TearDown() override {
        mem.reset();
        listener.reset();
    }
    testing::FakeSysfs fs;
    std::shared_ptr<FakeIommu> k;
    std::unique_ptr<vfio::Vfio> vfio;
    std::unique_ptr<Memory> mem;
    std::unique_ptr<ContainerDmaListener> listener;
};

TEST_F(Listener, AFailedUnmapIsReturnedAndTheSegmentQuarantined) {
    ASSERT_NO_FATAL_FAILURE(start());
    auto a = mem->add(8192);
    ASSERT_TRUE(a) << a.error().message();
    const std::uint64_t va = (*a)->va, len = (*a)->len, iova = *(*a)->iova;
    ASSERT_EQ(k->mapped.count(iova), 1u);
    k->fail_unmap_call = k->unmap_calls + 1;
    auto r = mem->remove(*a);
    ASSERT_FALSE(r) << "the kernel refused the unmap: remove must say so";
    EXPECT_EQ(r.error().err(), EIO);
    EXPECT_NE(r.error().message().find("quarantined"), std::string::npos) << r.error().message();
    // Still mapped in the (fake) IOMMU and in the container's table: its
    // IOVAs are not handed out again.
    EXPECT_EQ(k->mapped.count(iova), 1u);
    EXPECT_TRUE(vfio->default_container().lookup(iova));
    EXPECT_EQ(mem->quarantined().segments, 1u);
    EXPECT_EQ(mem->quarantined().bytes, len);
    EXPECT_TRUE(mem->segments().empty());
    EXPECT_FALSE(mem->virt2iova(reinterpret_cast<const void*>(va)));
    // The next segments get other addresses, virtual and IOVA.
    auto b = mem->add(8192);
    ASSERT_TRUE(b) << b.error().message();
    EXPECT_TRUE((*b)->va >= va + len || (*b)->va + (*b)->len <= va)
        << "a quarantined range was reused at " << (*b)->va;
    EXPECT_TRUE(*(*b)->iova >= iova + len || *(*b)->iova + (*b)->len <= iova);
    // A removal the kernel accepts still frees the range.
    ASSERT_TRUE(mem->remove(*b));
    EXPECT_EQ(mem->quarantined().segments, 1u);
}

TEST_F(Listener, WithoutAnIommuDevicesStopMasteringBeforeTheMemoryGoes) {
    k->noiommu = true;
    k->command = 0x0006;  // memory space and bus master enabled
    ASSERT_NO_FATAL_FAILURE(start());
    auto d = vfio->assign_device(vfio->default_container(), kEdu);
    ASSERT_TRUE(d) << d.error().message();
    auto a = mem->add(8192);
    ASSERT_TRUE(a) << a.error().message();
    EXPECT_EQ(*k->command, 0x0006) << "adding memory must not touch the device";
    const unsigned unmaps = k->unmap_calls;
    ASSERT_TRUE(mem->remove(*a));
    EXPECT_EQ(*k->command, 0x0002) << "Bus Master Enable still set after the memory went";
    EXPECT_EQ(k->unmap_calls, unmaps + 1);
    // Removing with bus mastering already off writes nothing.
    auto b = mem->add(8192);
    ASSERT_TRUE(b);
    const unsigned writes = k->command_writes;
    ASSERT_TRUE(mem->remove(*b));
    EXPECT_EQ(k->command_writes, writes);
}

TEST_F(Listener, WithoutAnIommuAFailedStopKeepsTheSegment) {
    k->noiommu = true;
    ASSERT_NO_FATAL_FAILURE(start());
    auto d = vfio->assign_device(vfio->default_container(), kEdu);
    ASSERT_TRUE(d) << d.error().message();
    auto a = mem->add(8192);
    ASSERT_TRUE(a);
    // No command register served: the config access fails.
    auto r = mem->remove(*a);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("Bus Master"), std::string::npos) << r.error().message();
    EXPECT_NE(r.error().message().find(kEdu), std::string::npos) << r.error().message();
    EXPECT_EQ(mem->quarantined().segments, 1u);
}

}  // namespace
}  // namespace vfiokit::eal

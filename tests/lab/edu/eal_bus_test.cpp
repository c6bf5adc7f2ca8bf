// The EAL owns the bus, in the lab guest, once per VFIO mode: a program
// linked with the registered edu driver calls Eal::init(argc, argv) with
// DPDK's -a/-b and the EAL scans PCI and probes edu on the devices they
// select. Part of edu_lab_test (devtools/lab/jobs/edu-*.sh run 'Lab/*'),
// test names carry the mode ("Lab/EalBus.AllowLimitsProbing/cdev").
//
// Expectations come from the guest's own sysfs (which edus exist and are
// bound to vfio-pci), not from the shape's device list.
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "edu.hpp"
#include "lab_env.hpp"
#include "vfiokit/bus/pci/scan.hpp"
#include "vfiokit/eal/eal.hpp"
#include "vfiokit/eal/format.hpp"

namespace vfiokit::edu {
namespace {

using testing::iommu_shape;
using testing::mode_label;
using testing::open_fds;

const PciAddress kEdu = *PciAddress::parse("0000:00:03.0");
// The noiommu shape creates its edu with dma_mask=0xffffffff.
std::uint64_t shape_dma_mask() { return iommu_shape() ? kDefaultDmaMask : 0xffffffffULL; }
constexpr const char* kToken = "2ab74924-c335-45f4-9b16-8569e5b08258";

// The edus the guest has on vfio-pci, from sysfs.
std::vector<PciAddress> bound_edus() {
    std::vector<PciAddress> out;
    auto devs = pci::scan(sysfs::Root());
    if (!devs)
        return out;
    for (const auto& d : *devs)
        if (d.ids.vendor == kVendor && d.ids.device == kDevice && d.vfio_bound)
            out.push_back(d.addr);
    return out;
}

Result<std::unique_ptr<eal::Eal>> init(std::vector<std::string> args) {
    args.insert(args.begin(), "eal_bus_lab_test");
    std::vector<const char*> argv;
    for (const auto& a : args)
        argv.push_back(a.c_str());
    return eal::Eal::init(static_cast<int>(argv.size()), argv.data());
}

class EalBus : public ::testing::TestWithParam<std::string> {};

// -a BDF,dma_mask=M: only that device is probed, and the argument reaches
// the driver (its EduDevice has mask M, not the declared 28 bits).
TEST_P(EalBus, AllowLimitsProbingAndPassesTheDriverArgument) {
    const auto edus = bound_edus();
    ASSERT_FALSE(edus.empty()) << "no edu on vfio-pci: did the job bind it?";
    ASSERT_NE(std::find(edus.begin(), edus.end(), kEdu), edus.end());
    auto e = init({"-a", kEdu.str() + ",dma_mask=" + hex(shape_dma_mask())});
    ASSERT_TRUE(e) << e.error().message();
    const auto report = (*e)->device_report();
    ASSERT_EQ(report.size(), 1u);
    EXPECT_EQ(report[0].addr, kEdu);
    EXPECT_TRUE(report[0].probed) << report[0].reason;
    EXPECT_TRUE(report[0].requested);
    EXPECT_EQ(report[0].driver, "edu");

    EduDevice* dev = driver().find(kEdu);
    ASSERT_NE(dev, nullptr);
    EXPECT_EQ(dev->dma_mask(), shape_dma_mask());
    EXPECT_EQ(dev->id(), kIdentification);  // live: BAR0 mapped, registers answer
    EXPECT_EQ(dev->liveness(0x1234abcd), ~0x1234abcdu);
    for (PciAddress other : edus)
        if (other != kEdu) {
            EXPECT_EQ(driver().find(other), nullptr) << other.str() << " probed despite -a";
        }
    EXPECT_EQ((*e)->vfio().default_container().devices().size(), 1u);
    std::printf("-a %s,dma_mask=%s (%s): probed only %s of %zu bound edus, driver mask %s\n",
                kEdu.str().c_str(), hex(shape_dma_mask()).c_str(), GetParam().c_str(),
                kEdu.str().c_str(), edus.size(), hex(dev->dma_mask()).c_str());
    e->reset();
    EXPECT_EQ(driver().instances(), 0u) << "the EAL's teardown left driver instances";
}

// Without -a every bound edu is probed, except -b's.
TEST_P(EalBus, BlockExcludesOneDevice) {
    const auto edus = bound_edus();
    ASSERT_NE(std::find(edus.begin(), edus.end(), kEdu), edus.end());
    auto e = init({"-b", kEdu.str()});
    ASSERT_TRUE(e) << e.error().message();
    EXPECT_EQ(driver().find(kEdu), nullptr);
    bool reported_blocked = false;
    for (const auto& r : (*e)->device_report()) {
        std::printf("-b %s (%s): %s %s %s\n", kEdu.str().c_str(), GetParam().c_str(),
                    r.addr.str().c_str(), r.probed ? "probed" : "not probed:", r.reason.c_str());
        if (r.addr == kEdu) {
            EXPECT_FALSE(r.probed);
            EXPECT_NE(r.reason.find("blocked (-b " + kEdu.str() + ")"), std::string::npos) << r.reason;
            reported_blocked = true;
        }
    }
    EXPECT_TRUE(reported_blocked);
    std::size_t probed = 0;
    for (PciAddress a : edus) {
        if (a == kEdu)
            continue;
        EXPECT_NE(driver().find(a), nullptr) << a.str() << " bound to vfio-pci but not probed";
        ++probed;
    }
    std::printf("-b %s (%s): %zu other bound edu(s) probed\n", kEdu.str().c_str(),
                GetParam().c_str(), probed);
    EXPECT_EQ(driver().instances(), edus.size() - 1);
    EXPECT_EQ((*e)->vfio().default_container().devices().size(), edus.size() - 1);
}

// -a BDF,speed=9: the driver does not declare it; Eal::init fails naming
// the driver, the key and what it accepts, and leaves nothing open.
TEST_P(EalBus, UnknownDriverArgumentFailsInit) {
    const int before = open_fds();
    auto e = init({"-a", kEdu.str() + ",speed=9"});
    ASSERT_FALSE(e);
    const std::string m = e.error().message();
    std::printf("-a %s,speed=9 (%s): %s\n", kEdu.str().c_str(), GetParam().c_str(), m.c_str());
    EXPECT_EQ(e.error().err(), EINVAL);
    for (const char* want : {"driver edu does not take 'speed'", "accepts: dma_mask=<mask>"})
        EXPECT_NE(m.find(want), std::string::npos) << want;
    EXPECT_NE(m.find(kEdu.str()), std::string::npos);
    EXPECT_EQ(open_fds(), before);
    EXPECT_EQ(driver().instances(), 0u);
}

// -a BDF,vf_token=UUID reaches the kernel. edu is neither an SR-IOV PF nor
// a VF: the group-style modes hand "BDF vf_token=UUID" to
// VFIO_GROUP_GET_DEVICE_FD and vfio-pci refuses it with EINVAL; cdev hands
// it to VFIO_DEVICE_BIND_IOMMUFD on kernels with the bind token flag
// (Linux 6.17+), refused the same way, and before 6.17 says it needs it.
// Either way the error names the device and the reason, and nothing stays
// open.
TEST_P(EalBus, VfTokenReachesTheKernel) {
    const int before = open_fds();
    auto e = init({"-a", kEdu.str() + ",vf_token=" + kToken});
    ASSERT_FALSE(e);
    const std::string m = e.error().message();
    std::printf("-a %s,vf_token=%s (%s): %s\n", kEdu.str().c_str(), kToken, GetParam().c_str(),
                m.c_str());
    EXPECT_NE(m.find(kEdu.str()), std::string::npos) << m;
    const bool cdev = mode_label() == "cdev" || mode_label() == "cdev_noiommu";
    if (cdev && !testing::kernel_version().at_least(6, 17)) {
        EXPECT_EQ(e.error().err(), EOPNOTSUPP) << m;
        EXPECT_NE(m.find("6.17"), std::string::npos) << m;
    } else {
        EXPECT_EQ(e.error().err(), EINVAL) << m;
        EXPECT_NE(m.find(cdev ? "VFIO_DEVICE_BIND_FLAG_TOKEN" : "VFIO_GROUP_GET_DEVICE_FD"),
                  std::string::npos)
            << m;
        EXPECT_NE(m.find("vf_token is only for SR-IOV PFs and VFs"), std::string::npos) << m;
    }
    EXPECT_EQ(m.find(kToken), std::string::npos) << "the token must stay out of messages";
    EXPECT_EQ(open_fds(), before);
    // The same device without a token is fine: the token was the reason.
    auto ok = init({"-a", kEdu.str()});
    ASSERT_TRUE(ok) << ok.error().message();
    EXPECT_NE(driver().find(kEdu), nullptr);
}

// A -a device that no linked-in driver matches, or that does not exist,
// fails Eal::init saying so.
TEST_P(EalBus, AllowedDeviceWithoutDriverOrAbsentFailsInit) {
    auto absent = init({"-a", "0000:00:1e.0"});
    ASSERT_FALSE(absent);
    EXPECT_NE(absent.error().message().find("0000:00:1e.0: no such PCI device"), std::string::npos)
        << absent.error().message();
    // Every shape has an e1000 (8086:100e); no e1000 driver is linked in.
    std::optional<PciAddress> nic;
    if (auto devs = pci::scan(sysfs::Root()))
        for (const auto& d : *devs)
            if (d.ids.vendor == 0x8086 && d.ids.device == 0x100e)
                nic = d.addr;
    ASSERT_TRUE(nic);
    auto e = init({"-a", nic->str()});
    ASSERT_FALSE(e);
    EXPECT_NE(e.error().message().find("no driver linked in matches 8086:100e"), std::string::npos)
        << e.error().message();
}

INSTANTIATE_TEST_SUITE_P(Lab, EalBus, ::testing::Values(mode_label()),
                         [](const auto& p) { return p.param; });

}  // namespace
}  // namespace vfiokit::edu

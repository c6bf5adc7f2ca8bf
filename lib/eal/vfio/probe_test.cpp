// Mode availability rules, on fake sysfs trees shaped like the lab's guests.
#include "vfiokit/eal/vfio/probe.hpp"

#include <gtest/gtest.h>

#include "fake_sysfs.hpp"

namespace vfiokit::vfio {
namespace {

using testing::FakeSysfs;

PciAddress A(const char* s) { return *PciAddress::parse(s); }

// The `iommu` shape: intel-iommu, iommufd, cdev, container, no-IOMMU built
// but off.
void iommu_kernel(FakeSysfs& fs) {
    fs.file("/dev/vfio/vfio");
    fs.file("/dev/iommu");
    fs.file("/sys/module/vfio/parameters/enable_unsafe_noiommu_mode", "N\n");
    fs.dir("/sys/bus/pci/drivers/vfio-pci");
}

void bound_cdev_device(FakeSysfs& fs, const std::string& bdf, int group, int vfio_index) {
    fs.pci_device(bdf, "0x1234", "0x11e8", "0x00ff00", group, "vfio-pci");
    const std::string n = "vfio" + std::to_string(vfio_index);
    fs.dir("/sys/bus/pci/devices/" + bdf + "/vfio-dev/" + n);
    fs.file("/dev/vfio/devices/" + n);
    fs.file("/dev/vfio/" + std::to_string(group));
}

TEST(Probe, KernelFacts) {
    FakeSysfs fs;
    iommu_kernel(fs);
    auto k = probe_kernel(fs.root());
    EXPECT_TRUE(k.vfio_container);
    EXPECT_TRUE(k.iommufd);
    EXPECT_TRUE(k.noiommu_built);
    EXPECT_FALSE(k.noiommu_enabled);
    EXPECT_TRUE(k.vfio_pci);

    FakeSysfs bare;
    auto none = probe_kernel(bare.root());
    EXPECT_FALSE(none.vfio_container || none.iommufd || none.noiommu_built || none.vfio_pci);
}

TEST(Probe, BoundDeviceOffersCdevGroupCompatAndAutoPicksCdev) {
    FakeSysfs fs;
    iommu_kernel(fs);
    bound_cdev_device(fs, "0000:00:03.0", 3, 0);
    auto d = probe_device(fs.root(), probe_kernel(fs.root()), A("0000:00:03.0"));
    ASSERT_TRUE(d) << d.error().message();
    EXPECT_EQ(d->iommu_group, 3u);
    EXPECT_EQ(d->vfio_dev, "vfio0");
    EXPECT_TRUE(d->status(Mode::cdev).available) << d->status(Mode::cdev).reason;
    EXPECT_EQ(d->status(Mode::cdev).reason, "/dev/vfio/devices/vfio0");
    EXPECT_TRUE(d->status(Mode::group).available);
    EXPECT_TRUE(d->status(Mode::compat).available);
    EXPECT_FALSE(d->status(Mode::noiommu).available);
    EXPECT_NE(d->status(Mode::noiommu).reason.find("an IOMMU translates"), std::string::npos);
    EXPECT_EQ(d->automatic, Mode::cdev);
    EXPECT_TRUE(d->action.empty());
}

TEST(Probe, WithoutIommufdAutoFallsBackToGroup) {
    FakeSysfs fs;
    iommu_kernel(fs);
    fs.remove("/dev/iommu");
    bound_cdev_device(fs, "0000:00:03.0", 3, 0);
    auto d = probe_device(fs.root(), probe_kernel(fs.root()), A("0000:00:03.0"));
    ASSERT_TRUE(d);
    EXPECT_FALSE(d->status(Mode::cdev).available);
    EXPECT_NE(d->status(Mode::cdev).reason.find("CONFIG_IOMMUFD"), std::string::npos);
    EXPECT_EQ(d->automatic, Mode::group);
    EXPECT_NE(d->automatic_reason.find("CONFIG_IOMMUFD"), std::string::npos);
}

TEST(Probe, UnboundDeviceSaysHowToBind) {
    FakeSysfs fs;
    iommu_kernel(fs);
    fs.pci_device("0000:00:05.0", "0x8086", "0x100e", "0x020000", 5, "e1000");
    auto d = probe_device(fs.root(), probe_kernel(fs.root()), A("0000:00:05.0"));
    ASSERT_TRUE(d);
    for (Mode m : all_modes())
        EXPECT_FALSE(d->status(m).available) << to_string(m);
    EXPECT_EQ(d->status(Mode::group).reason, "device has driver e1000, not vfio-pci");
    EXPECT_NE(d->action.find("echo vfio-pci > /sys/bus/pci/devices/0000:00:05.0/driver_override"),
              std::string::npos);
    EXPECT_NE(d->status(Mode::noiommu).reason.find("an IOMMU translates this device"),
              std::string::npos);
    EXPECT_FALSE(d->automatic);
}

TEST(Probe, SharedGroupNotViableNamesTheBlockingDevice) {
    FakeSysfs fs;
    iommu_kernel(fs);
    bound_cdev_device(fs, "0000:01:01.0", 7, 2);
    fs.pci_device("0000:01:02.0", "0x8086", "0x100e", "0x020000", 7, "e1000");
    fs.pci_device("0000:00:07.0", "0x1b36", "0x0001", "0x060400", 7, "");  // the bridge
    auto d = probe_device(fs.root(), probe_kernel(fs.root()), A("0000:01:01.0"));
    ASSERT_TRUE(d);
    ASSERT_EQ(d->group_members.size(), 3u);
    for (Mode m : {Mode::group, Mode::compat, Mode::cdev}) {
        EXPECT_FALSE(d->status(m).available);
        EXPECT_NE(d->status(m).reason.find("0000:01:02.0 is bound to e1000"), std::string::npos)
            << d->status(m).reason;
    }
    // Once the NIC is given to vfio-pci too, the group is viable; the bridge
    // without a driver never blocks.
    fs.link("/sys/bus/pci/devices/0000:01:02.0/driver", "../../../../bus/pci/drivers/vfio-pci");
    auto d2 = probe_device(fs.root(), probe_kernel(fs.root()), A("0000:01:01.0"));
    ASSERT_TRUE(d2);
    EXPECT_TRUE(d2->status(Mode::group).available) << d2->status(Mode::group).reason;
}

TEST(Probe, NoIommuGroup) {
    FakeSysfs fs;
    fs.file("/dev/vfio/vfio");
    fs.file("/dev/iommu");
    fs.file("/sys/module/vfio/parameters/enable_unsafe_noiommu_mode", "Y\n");
    fs.pci_device("0000:00:03.0", "0x1234", "0x11e8", "0x00ff00", 0, "vfio-pci");
    fs.file("/sys/kernel/iommu_groups/0/name", "vfio-noiommu\n");
    fs.dir("/sys/bus/pci/devices/0000:00:03.0/vfio-dev/vfio0");  // no /dev node in 6.12
    fs.file("/dev/vfio/noiommu-0");
    auto d = probe_device(fs.root(), probe_kernel(fs.root()), A("0000:00:03.0"));
    ASSERT_TRUE(d);
    EXPECT_TRUE(d->noiommu_group);
    EXPECT_TRUE(d->status(Mode::noiommu).available) << d->status(Mode::noiommu).reason;
    EXPECT_FALSE(d->status(Mode::group).available);
    EXPECT_NE(d->status(Mode::group).reason.find("no-IOMMU group"), std::string::npos);
    EXPECT_FALSE(d->status(Mode::cdev).available);
    EXPECT_NE(d->status(Mode::cdev).reason.find("no-IOMMU devices get no cdev before Linux 7.3"),
              std::string::npos)
        << d->status(Mode::cdev).reason;
    EXPECT_FALSE(d->status(Mode::cdev_noiommu).available);
    EXPECT_NE(d->status(Mode::cdev_noiommu).reason.find("no-IOMMU devices get no cdev before "
                                                        "Linux 7.3"),
              std::string::npos)
        << d->status(Mode::cdev_noiommu).reason;
    EXPECT_EQ(d->automatic, Mode::noiommu);
    EXPECT_NE(d->automatic_reason.find("cdev-noiommu unavailable (no-IOMMU devices get no cdev "
                                       "before Linux 7.3"),
              std::string::npos)
        << d->automatic_reason;
    // The kernel-wide fact, from the device's VFIO name.
    const auto k = probe_kernel(fs.root());
    EXPECT_FALSE(k.noiommu_cdev);
    EXPECT_EQ(k.noiommu_cdev_why, "no-IOMMU device 0000:00:03.0 is VFIO device vfio0, without a cdev");
}

// Linux 7.3 with CONFIG_IOMMUFD_NOIOMMU: the same device also gets a cdev,
// named noiommu-vfioN. cdev no-IOMMU is available to a process with
// CAP_SYS_RAWIO, and auto prefers it to the group interface; without the
// capability it is not, and the reason says so.
TEST(Probe, NoIommuGroupWithNoiommuCdev) {
    FakeSysfs fs;
    fs.file("/dev/vfio/vfio");
    fs.file("/dev/iommu");
    fs.file("/sys/module/vfio/parameters/enable_unsafe_noiommu_mode", "Y\n");
    fs.pci_device("0000:00:03.0", "0x1234", "0x11e8", "0x00ff00", 0, "vfio-pci");
    fs.file("/sys/kernel/iommu_groups/0/name", "vfio-noiommu\n");
    fs.dir("/sys/bus/pci/devices/0000:00:03.0/vfio-dev/noiommu-vfio0");
    fs.file("/dev/vfio/devices/noiommu-vfio0");
    fs.file("/dev/vfio/noiommu-0");
    fs.file("/proc/self/status", "Name:\tt\nCapEff:\t0000000000000000\n");
    auto d = probe_device(fs.root(), probe_kernel(fs.root()), A("0000:00:03.0"));
    ASSERT_TRUE(d);
    EXPECT_TRUE(d->status(Mode::noiommu).available) << d->status(Mode::noiommu).reason;
    const ModeStatus& cn = d->status(Mode::cdev_noiommu);
    EXPECT_FALSE(cn.available);
    EXPECT_NE(cn.reason.find("this process lacks CAP_SYS_RAWIO"), std::string::npos) << cn.reason;
    EXPECT_EQ(d->automatic, Mode::noiommu);
    EXPECT_FALSE(d->status(Mode::cdev).available);
    EXPECT_NE(d->status(Mode::cdev).reason.find("belongs to cdev-noiommu mode"), std::string::npos)
        << d->status(Mode::cdev).reason;

    // CAP_SYS_RAWIO is bit 17 of the effective set.
    fs.file("/proc/self/status", "Name:\tt\nCapEff:\t0000000000020000\n");
    const auto k = probe_kernel(fs.root());
    EXPECT_TRUE(k.raw_io);
    EXPECT_TRUE(k.noiommu_cdev);
    EXPECT_EQ(k.noiommu_cdev_why, "0000:00:03.0 has the no-IOMMU cdev noiommu-vfio0");
    d = probe_device(fs.root(), k, A("0000:00:03.0"));
    ASSERT_TRUE(d);
    EXPECT_TRUE(d->status(Mode::cdev_noiommu).available) << d->status(Mode::cdev_noiommu).reason;
    EXPECT_EQ(d->status(Mode::cdev_noiommu).reason,
              "/dev/vfio/devices/noiommu-vfio0 on /dev/iommu (needs CAP_SYS_RAWIO)");
    EXPECT_EQ(d->automatic, Mode::cdev_noiommu);
    EXPECT_NE(d->automatic_reason.find("no-IOMMU cdev"), std::string::npos) << d->automatic_reason;
    auto node = mode_device_node(Mode::cdev_noiommu, *d);
    ASSERT_TRUE(node) << node.error().message();
    EXPECT_EQ(*node, "/dev/vfio/devices/noiommu-vfio0");
    fs.file("/proc/self/status", "Name:\tt\nCapEff:\t000001fffffdffff\n");  // all but 17
    EXPECT_FALSE(probe_kernel(fs.root()).raw_io);
}

// Without a device that tells, the release does.
TEST(Probe, NoiommuCdevFromTheRelease) {
    for (const auto& [release, want] : std::vector<std::pair<std::string, bool>>{
             {"7.3.4-amd64", true}, {"7.10.0", true}, {"8.0.1", true}, {"7.2.9", false},
             {"6.12.57+deb13", false}, {"", false}, {"garbage", false}}) {
        FakeSysfs fs;
        fs.file("/proc/sys/kernel/osrelease", release + "\n");
        const auto k = probe_kernel(fs.root());
        EXPECT_EQ(k.noiommu_cdev, want) << release;
        EXPECT_NE(k.noiommu_cdev_why.find("the kernel is"), std::string::npos) << k.noiommu_cdev_why;
    }
}

TEST(Probe, NoIommuOffAndNotBuilt) {
    FakeSysfs fs;
    fs.file("/dev/vfio/vfio");
    fs.pci_device("0000:00:03.0", "0x1234", "0x11e8", "0x00ff00", -1, "vfio-pci");
    auto d = probe_device(fs.root(), probe_kernel(fs.root()), A("0000:00:03.0"));
    ASSERT_TRUE(d);
    EXPECT_NE(d->status(Mode::noiommu).reason.find("CONFIG_VFIO_NOIOMMU"), std::string::npos);
    EXPECT_NE(d->status(Mode::group).reason.find("no IOMMU group"), std::string::npos);
    EXPECT_FALSE(d->automatic);
}

TEST(Probe, MissingDeviceIsAnError) {
    FakeSysfs fs;
    auto d = probe_device(fs.root(), probe_kernel(fs.root()), A("0000:00:1f.0"));
    ASSERT_FALSE(d);
    EXPECT_EQ(d.error().err(), ENODEV);
    EXPECT_NE(d.error().message().find("0000:00:1f.0"), std::string::npos);
}

// One answer to "is this device VFIO's": vfio-pci, any vfio-pci variant
// driver (by name, or because it registered a VFIO device), never another
// kernel driver or no driver. probe_device's `bound` and the group-mate
// check follow it.
TEST(Probe, VfioPciAndItsVariantsCountAsBound) {
    FakeSysfs fs;
    iommu_kernel(fs);
    fs.pci_device("0000:00:03.0", "0x1234", "0x11e8", "0x00ff00", 3, "vfio-pci");
    fs.pci_device("0000:00:04.0", "0x15b3", "0x101e", "0x020000", 4, "mlx5_vfio_pci");
    fs.pci_device("0000:00:05.0", "0x1dd8", "0x1006", "0x020000", 5, "pds-vfio-pci");
    // A variant whose name says nothing, known by its VFIO device.
    fs.pci_device("0000:00:06.0", "0x10de", "0x2342", "0x030200", 6, "gpu_variant");
    fs.dir("/sys/bus/pci/devices/0000:00:06.0/vfio-dev/vfio2");
    fs.pci_device("0000:00:07.0", "0x8086", "0x100e", "0x020000", 7, "e1000");
    fs.pci_device("0000:00:08.0", "0x8086", "0x100e", "0x020000", 8, "");
    // Names that merely contain "vfio" are not variants of vfio-pci.
    fs.pci_device("0000:00:09.0", "0x8086", "0x100e", "0x020000", 9, "vfio_pci_helper");
    fs.pci_device("0000:00:0a.0", "0x8086", "0x100e", "0x020000", 10, "vfio-platform");
    const auto root = fs.root();
    for (const char* yes : {"0000:00:03.0", "0000:00:04.0", "0000:00:05.0", "0000:00:06.0"})
        EXPECT_TRUE(bound_to_vfio_pci(root, A(yes))) << yes;
    for (const char* no : {"0000:00:07.0", "0000:00:08.0", "0000:00:09.0", "0000:00:0a.0",
                           "0000:00:1f.0" /* absent */})
        EXPECT_FALSE(bound_to_vfio_pci(root, A(no))) << no;

    const auto k = probe_kernel(root);
    auto mlx = probe_device(root, k, A("0000:00:04.0"));
    ASSERT_TRUE(mlx);
    EXPECT_TRUE(mlx->bound);
    EXPECT_TRUE(mlx->action.empty()) << mlx->action;
    auto e1000 = probe_device(root, k, A("0000:00:07.0"));
    ASSERT_TRUE(e1000);
    EXPECT_FALSE(e1000->bound);

    // A group shared with a variant-bound device stays viable; one shared
    // with e1000 does not.
    fs.link("/sys/kernel/iommu_groups/3/devices/0000:00:04.0", "../../../../bus/pci/devices/0000:00:04.0");
    auto viable = probe_device(root, k, A("0000:00:03.0"));
    ASSERT_TRUE(viable);
    EXPECT_TRUE(viable->group_viable);
    fs.link("/sys/kernel/iommu_groups/3/devices/0000:00:07.0", "../../../../bus/pci/devices/0000:00:07.0");
    auto blocked = probe_device(root, k, A("0000:00:03.0"));
    ASSERT_TRUE(blocked);
    EXPECT_FALSE(blocked->group_viable);
}

TEST(Probe, ModeNamesRoundTrip) {
    for (Mode m : all_modes())
        EXPECT_EQ(mode_from_string(to_string(m)), m);
    EXPECT_FALSE(mode_from_string("auto"));
}

// SR-IOV as the modern shape shows it: an igb PF at 00:04.0 with two VFs
// (virtfn links; physfn back), and vfio-pci's VF token rules from it.
void sriov_pf(FakeSysfs& fs, const std::string& pf_driver, unsigned numvfs) {
    const std::string pf = "/sys/bus/pci/devices/0000:00:04.0";
    fs.pci_device("0000:00:04.0", "0x8086", "0x10c9", "0x020000", 4, pf_driver);
    fs.file(pf + "/sriov_totalvfs", "8\n");
    fs.file(pf + "/sriov_numvfs", std::to_string(numvfs) + "\n");
    const char* vfs[] = {"0000:00:14.0", "0000:00:14.2"};
    for (unsigned i = 0; i < numvfs; ++i) {
        fs.pci_device(vfs[i], "0x8086", "0x10ca", "0x020000", 20 + static_cast<int>(i),
                      "vfio-pci");
        fs.link(pf + "/virtfn" + std::to_string(i), std::string("../") + vfs[i]);
        fs.link(std::string("/sys/bus/pci/devices/") + vfs[i] + "/physfn", "../0000:00:04.0");
    }
}

TEST(Probe, SriovPfOnVfioPciWithVfs) {
    FakeSysfs fs;
    iommu_kernel(fs);
    fs.file("/sys/module/vfio_pci/parameters/enable_sriov", "Y\n");
    sriov_pf(fs, "vfio-pci", 2);
    EXPECT_EQ(probe_kernel(fs.root()).vfio_pci_sriov, true);
    auto pf = probe_device(fs.root(), probe_kernel(fs.root()), A("0000:00:04.0"));
    ASSERT_TRUE(pf) << pf.error().message();
    EXPECT_TRUE(pf->sriov.pf);
    EXPECT_FALSE(pf->sriov.vf());
    EXPECT_EQ(pf->sriov.total_vfs, 8u);
    EXPECT_EQ(pf->sriov.num_vfs, 2u);
    ASSERT_EQ(pf->sriov.vfs.size(), 2u);
    EXPECT_EQ(pf->sriov.vfs[0], A("0000:00:14.0"));
    EXPECT_EQ(pf->sriov.vfs[1], A("0000:00:14.2"));
    EXPECT_EQ(pf->sriov.token, VfToken::while_vfs_open);

    auto vf = probe_device(fs.root(), probe_kernel(fs.root()), A("0000:00:14.2"));
    ASSERT_TRUE(vf) << vf.error().message();
    EXPECT_FALSE(vf->sriov.pf);
    ASSERT_TRUE(vf->sriov.vf());
    EXPECT_EQ(*vf->sriov.physfn, A("0000:00:04.0"));
    EXPECT_EQ(vf->sriov.pf_driver, "vfio-pci");
    EXPECT_EQ(vf->sriov.token, VfToken::required);
    EXPECT_EQ(to_string(vf->sriov.token), "required");
}

TEST(Probe, SriovPfWithoutVfsSetsTheTokenAndAKernelDriverPfNeedsNone) {
    FakeSysfs fs;
    iommu_kernel(fs);
    sriov_pf(fs, "vfio-pci", 0);
    EXPECT_EQ(probe_sriov(fs.root(), A("0000:00:04.0")).token, VfToken::settable);
    EXPECT_FALSE(probe_kernel(fs.root()).vfio_pci_sriov.has_value());

    FakeSysfs igb;
    iommu_kernel(igb);
    sriov_pf(igb, "igb", 2);
    EXPECT_EQ(probe_sriov(igb.root(), A("0000:00:04.0")).token, VfToken::none);
    const Sriov vf = probe_sriov(igb.root(), A("0000:00:14.0"));
    EXPECT_TRUE(vf.vf());
    EXPECT_EQ(vf.pf_driver, "igb");
    EXPECT_EQ(vf.token, VfToken::none);

    // Neither PF nor VF.
    bound_cdev_device(fs, "0000:00:03.0", 3, 0);
    const Sriov edu = probe_sriov(fs.root(), A("0000:00:03.0"));
    EXPECT_FALSE(edu.pf || edu.vf());
    EXPECT_EQ(edu.token, VfToken::none);
}

}  // namespace
}  // namespace vfiokit::vfio

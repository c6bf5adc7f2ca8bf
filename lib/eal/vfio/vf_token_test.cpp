// vfio-pci's VF token refusals explained from sysfs (vf_token.hpp), on a
// fake tree shaped like the modern lab shape's igb: the errnos are the
// kernel's (vfio_pci_core.c vfio_pci_validate_vf_token), the lab proves
// them on the real VFs (tests/lab/vfio/vf_token_test.cpp).
#include "vf_token.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <string>

#include "fake_sysfs.hpp"

namespace vfiokit::vfio::detail {
namespace {

using testing::FakeSysfs;

void igb_with_vfs(FakeSysfs& fs, const std::string& pf_driver) {
    const std::string pf = "/sys/bus/pci/devices/0000:00:04.0";
    fs.pci_device("0000:00:04.0", "0x8086", "0x10c9", "0x020000", 4, pf_driver);
    fs.file(pf + "/sriov_totalvfs", "8\n");
    fs.file(pf + "/sriov_numvfs", "2\n");
    int n = 0;
    for (const char* vf : {"0000:00:14.0", "0000:00:14.2"}) {
        fs.pci_device(vf, "0x8086", "0x10ca", "0x020000", 20 + n, "vfio-pci");
        fs.link(pf + "/virtfn" + std::to_string(n++), std::string("../") + vf);
        fs.link(std::string("/sys/bus/pci/devices/") + vf + "/physfn", "../0000:00:04.0");
    }
    fs.pci_device("0000:00:03.0", "0x1234", "0x11e8", "0x00ff00", 3, "vfio-pci");
}

std::string explained(const FakeSysfs& fs, int err, const char* bdf, const char* token) {
    sysfs::Root root = fs.root();
    DeviceRequest req;
    req.addr = *PciAddress::parse(bdf);
    req.vf_token = token;
    req.root = &root;
    Error e(err, "ioctl VFIO_GROUP_GET_DEVICE_FD");
    return explain_vf_token(e, req) ? e.hint() : std::string("(not explained)");
}

constexpr const char* kToken = "2ab74924-c335-45f4-9b16-8569e5b08258";

TEST(VfTokenHint, VfWithoutAndWithAWrongToken) {
    FakeSysfs fs;
    igb_with_vfs(fs, "vfio-pci");
    const std::string missing = explained(fs, EACCES, "0000:00:14.2", "");
    EXPECT_NE(missing.find("VF 0000:00:14.2 belongs to PF 0000:00:04.0, which is bound to "
                           "vfio-pci"), std::string::npos) << missing;
    EXPECT_NE(missing.find("-a 0000:00:14.2,vf_token=<UUID>"), std::string::npos) << missing;
    const std::string wrong = explained(fs, EACCES, "0000:00:14.2", kToken);
    EXPECT_NE(wrong.find("does not match the one the owner of PF 0000:00:04.0 set"),
              std::string::npos) << wrong;
    EXPECT_EQ(wrong.find(kToken), std::string::npos) << "the token stays out of messages";
}

TEST(VfTokenHint, PfWhileAVfIsOpen) {
    FakeSysfs fs;
    igb_with_vfs(fs, "vfio-pci");
    const std::string missing = explained(fs, EACCES, "0000:00:04.0", "");
    EXPECT_NE(missing.find("a VF of PF 0000:00:04.0 (0000:00:14.0, 0000:00:14.2) is open"),
              std::string::npos) << missing;
    EXPECT_NE(missing.find("-a 0000:00:04.0,vf_token=<UUID>"), std::string::npos) << missing;
    EXPECT_NE(explained(fs, EACCES, "0000:00:04.0", kToken).find("does not match"),
              std::string::npos);
}

TEST(VfTokenHint, TokenNobodyWants) {
    FakeSysfs fs;
    igb_with_vfs(fs, "igb");
    const std::string vf = explained(fs, EINVAL, "0000:00:14.0", kToken);
    EXPECT_NE(vf.find("PF 0000:00:04.0 of VF 0000:00:14.0 is bound to igb"), std::string::npos)
        << vf;
    const std::string edu = explained(fs, EINVAL, "0000:00:03.0", kToken);
    EXPECT_NE(edu.find("vf_token is only for SR-IOV PFs and VFs bound to vfio-pci: 0000:00:03.0 "
                       "is neither"), std::string::npos) << edu;
    // Errnos the token does not explain are left to the caller.
    EXPECT_EQ(explained(fs, EINVAL, "0000:00:14.0", ""), "(not explained)");
    EXPECT_EQ(explained(fs, EACCES, "0000:00:03.0", ""), "(not explained)");
    EXPECT_EQ(explained(fs, EBUSY, "0000:00:14.0", kToken), "(not explained)");
}

}  // namespace
}  // namespace vfiokit::vfio::detail

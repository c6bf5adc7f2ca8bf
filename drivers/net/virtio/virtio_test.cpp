// Host tests of what the virtio-net PMD decides without a device: the
// features it asks for and insists on, the names it prints, and the
// layouts it shares with the device.
#include <gtest/gtest.h>

#include "virtio.hpp"
#include "virtio_net_pmdinfo.hpp"

namespace vfiokit::virtio::net {
namespace {

constexpr std::uint64_t f(unsigned bit) { return feature(bit); }

// What QEMU's virtio-net-pci offers on a hub port with iommu_platform=on
// (no vnet header on the peer, so no checksum or TSO bits).
constexpr std::uint64_t kQemuHub = f(kFMac) | f(kFMrgRxbuf) | f(kFStatus) | f(kFCtrlVq) |
                                   f(kFCtrlRx) | f(kFCtrlVlan) | f(20) | f(kFGuestAnnounce) |
                                   f(kFCtrlMacAddr) | f(kFRingIndirectDesc) | f(kFRingEventIdx) |
                                   f(kFVersion1) | f(kFAccessPlatform);

TEST(VirtioNetFeatures, AsksForWhatItUsesOfWhatIsOffered) {
    const std::uint64_t w = wanted_features(kQemuHub);
    EXPECT_EQ(w, f(kFMac) | f(kFMrgRxbuf) | f(kFStatus) | f(kFCtrlVq) | f(kFCtrlRx) |
                     f(kFCtrlMacAddr) | f(kFVersion1) | f(kFAccessPlatform))
        << feature_names(w);
    // Nothing the device did not offer, but for what it cannot do without.
    EXPECT_EQ(w & ~kQemuHub, 0u);
    EXPECT_EQ(wanted_features(0), f(kFVersion1));
    // GUEST_CSUM is taken at start, when the application asks for
    // checksum verdicts; ring features (indirect, event index) never.
    EXPECT_EQ(wanted_features(kQemuHub | f(kFGuestCsum)) & f(kFGuestCsum), 0u);
}

TEST(VirtioNetFeatures, ControlQueueFeaturesOnlyWithTheControlQueue) {
    const std::uint64_t offered = f(kFVersion1) | f(kFCtrlRx) | f(kFMq) | f(kFCtrlMacAddr);
    EXPECT_EQ(wanted_features(offered), f(kFVersion1));
    EXPECT_EQ(wanted_features(offered | f(kFCtrlVq)), offered | f(kFCtrlVq));
}

TEST(VirtioNetFeatures, AccessPlatformRequiredWhenOffered) {
    // Without it a device offering it would bypass the IOMMU (virtio 1.2,
    // section 6.1): the driver must not run it then.
    EXPECT_EQ(required_features(kQemuHub), f(kFVersion1) | f(kFAccessPlatform));
    // The no-IOMMU case: a device without iommu_platform does not offer it.
    EXPECT_EQ(required_features(kQemuHub & ~f(kFAccessPlatform)), f(kFVersion1));
}

TEST(VirtioNetFeatures, Names) {
    EXPECT_EQ(feature_names(f(kFMac) | f(kFStatus) | f(kFVersion1) | f(kFAccessPlatform) | f(50)),
              "MAC|STATUS|VERSION_1|ACCESS_PLATFORM|bit 50");
    EXPECT_EQ(feature_names(0), "none");
}

TEST(VirtioNetLayout, HeaderAndQueueIndexes) {
    EXPECT_EQ(kHdrLen, 12);
    EXPECT_EQ(rx_vq(0), 0);
    EXPECT_EQ(tx_vq(0), 1);
    EXPECT_EQ(rx_vq(3), 6);
    EXPECT_EQ(tx_vq(3), 7);
    EXPECT_EQ(ctrl_vq(1), 2);
    EXPECT_EQ(ctrl_vq(4), 8);
    EXPECT_EQ(std::string(pmdinfo::net_virtio.name), "net_virtio");
}

}  // namespace
}  // namespace vfiokit::virtio::net

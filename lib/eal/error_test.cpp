#include "vfiokit/eal/error.hpp"

#include <gtest/gtest.h>

#include <cerrno>

namespace vfiokit {
namespace {

TEST(Error, MessageCarriesContextOpErrnoAndHint) {
    Error e(EBUSY, "ioctl(VFIO_GROUP_SET_CONTAINER)");
    e.context("group 12").context("device 0000:00:03.0").hint("close the other user");
    EXPECT_EQ(e.err(), EBUSY);
    EXPECT_EQ(e.message(),
              "device 0000:00:03.0: group 12: ioctl(VFIO_GROUP_SET_CONTAINER): "
              "Device or resource busy (errno 16)\n  hint: close the other user");
}

TEST(Error, InnermostHintWins) {
    Error e(0, "check");
    e.hint("inner").hint("outer");
    EXPECT_EQ(e.hint(), "inner");
    EXPECT_EQ(e.message(), "check\n  hint: inner");
}

TEST(Error, ResultCarriesError) {
    auto f = []() -> Result<int> { return fail(ENOENT, "open /dev/iommu"); };
    auto r = f();
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().err(), ENOENT);
    EXPECT_EQ(r.error().op(), "open /dev/iommu");
}

}  // namespace
}  // namespace vfiokit

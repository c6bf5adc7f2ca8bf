// The shared-state encoding and the external-fds syntax, on the host: round
// trips, every truncation and every single-byte corruption of a valid
// encoding, and the malformed cases share.hpp promises to reject.
#include <fcntl.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>

#include "share_codec.hpp"
#include "vfiokit/eal/vfio/share.hpp"
#include "vfiokit/eal/vfio/vfio.hpp"
#include "vfiokit/uapi/vfio.hpp"

namespace vfiokit::vfio {
namespace {

using share::ContainerEntry;
using share::decode;
using share::encode;
using share::Snapshot;

PciAddress addr(const char* s) { return *PciAddress::parse(s); }

// A group-mode process: default container with two groups (one holding two
// devices), a custom container with one group, mappings in both.
Snapshot group_snapshot() {
    Snapshot s;
    s.mode = Mode::group;
    s.type1 = Type1::automatic;
    ContainerEntry d;
    d.is_default = true;
    d.model_set = true;
    d.iommu_model = uapi::kVfioType1v2Iommu;
    d.container_fd = 0;
    d.groups = {{12, 1}, {13, 2}};
    d.devices = {{addr("0000:00:03.0"), 12, 3}, {addr("0000:01:01.0"), 13, 4},
                 {addr("0000:01:02.0"), 13, 5}};
    d.mappings = {{0x100000, 0x7f0000000000, 0x2000}, {0x200000, 0x7f0000010000, 0x1000}};
    ContainerEntry c;
    c.model_set = true;
    c.iommu_model = uapi::kVfioType1v2Iommu;
    c.container_fd = 6;
    c.groups = {{14, 7}};
    c.devices = {{addr("0000:00:04.0"), 14, 8}};
    c.mappings = {{0x100000, 0x7f0000020000, 0x1000}};
    s.containers = {d, c};
    s.fd_count = 9;
    return s;
}

Snapshot cdev_snapshot() {
    Snapshot s;
    s.mode = Mode::cdev;
    s.iommufd = 0;
    ContainerEntry d;
    d.is_default = true;
    d.ioas_id = 2;
    d.devices = {{addr("0000:00:03.0"), 12, 1}};
    ContainerEntry c;
    c.ioas_id = 5;
    c.mappings = {{0x1000000, 0x5a0000000000, 0x4000}};
    s.containers = {d, c};
    s.fd_count = 2;
    return s;
}

std::vector<std::uint8_t> bytes_of(const Snapshot& s) {
    auto b = encode(s);
    EXPECT_TRUE(b) << b.error().message();
    return b ? *b : std::vector<std::uint8_t>{};
}

void expect_rejected(const Snapshot& s, const char* why_part) {
    auto b = encode(s);
    ASSERT_TRUE(b);
    auto d = decode(*b, s.fd_count);
    ASSERT_FALSE(d) << "accepted; expected: " << why_part;
    EXPECT_EQ(d.error().err(), EPROTO);
    EXPECT_NE(d.error().message().find(why_part), std::string::npos) << d.error().message();
}

TEST(ShareCodec, RoundTripsGroupAndCdev) {
    for (const Snapshot& s : {group_snapshot(), cdev_snapshot()}) {
        auto b = bytes_of(s);
        auto d = decode(b, s.fd_count);
        ASSERT_TRUE(d) << d.error().message();
        EXPECT_EQ(d->mode, s.mode);
        EXPECT_EQ(d->type1, s.type1);
        EXPECT_EQ(d->iommufd, s.iommufd);
        ASSERT_EQ(d->containers.size(), s.containers.size());
        for (std::size_t i = 0; i < s.containers.size(); ++i) {
            const auto& a = d->containers[i];
            const auto& e = s.containers[i];
            EXPECT_EQ(a.is_default, e.is_default);
            EXPECT_EQ(a.model_set, e.model_set);
            EXPECT_EQ(a.iommu_model, e.iommu_model);
            EXPECT_EQ(a.container_fd, e.container_fd);
            EXPECT_EQ(a.ioas_id, e.ioas_id);
            EXPECT_EQ(a.groups, e.groups);
            EXPECT_EQ(a.devices, e.devices);
            ASSERT_EQ(a.mappings.size(), e.mappings.size());
            for (std::size_t m = 0; m < e.mappings.size(); ++m) {
                EXPECT_EQ(a.mappings[m].iova, e.mappings[m].iova);
                EXPECT_EQ(a.mappings[m].vaddr, e.mappings[m].vaddr);
                EXPECT_EQ(a.mappings[m].len, e.mappings[m].len);
            }
        }
    }
}

// Every prefix is refused (never read past), and every single-byte change
// is either refused with EPROTO or decodes to something still valid (a
// changed IOVA, say): never a crash or an out-of-range fd index.
TEST(ShareCodec, EveryTruncationAndByteFlipIsHandled) {
    for (const Snapshot& s : {group_snapshot(), cdev_snapshot()}) {
        const auto b = bytes_of(s);
        for (std::size_t n = 0; n < b.size(); ++n) {
            auto d = decode(std::span(b.data(), n), s.fd_count);
            ASSERT_FALSE(d) << "prefix of " << n << " bytes accepted";
            EXPECT_EQ(d.error().err(), EPROTO);
        }
        unsigned refused = 0;
        for (std::size_t i = 0; i < b.size(); ++i) {
            for (std::uint8_t x : {std::uint8_t{0x01}, std::uint8_t{0x80}, std::uint8_t{0xff}}) {
                auto c = b;
                c[i] ^= x;
                auto d = decode(c, s.fd_count);
                if (!d) {
                    EXPECT_EQ(d.error().err(), EPROTO);
                    ++refused;
                    continue;
                }
                if (d->iommufd != share::kNoFd) {
                    EXPECT_LT(d->iommufd, s.fd_count);
                }
                for (const auto& ce : d->containers)
                    for (const auto& de : ce.devices)
                        EXPECT_LT(de.fd, s.fd_count);
            }
        }
        EXPECT_GT(refused, b.size());  // most corruptions are caught
        // One fd more or less than the header says.
        EXPECT_FALSE(decode(b, s.fd_count + 1));
        EXPECT_FALSE(decode(b, s.fd_count - 1));
        auto longer = b;
        longer.push_back(0);
        EXPECT_FALSE(decode(longer, s.fd_count));
    }
}

TEST(ShareCodec, HeaderProblemsAreNamed) {
    auto b = bytes_of(group_snapshot());
    auto v = b;
    v[4] = 2;  // version
    auto d = decode(v, 9);
    ASSERT_FALSE(d);
    EXPECT_NE(d.error().message().find("version 2, this build reads version 1"), std::string::npos)
        << d.error().message();
    auto m = b;
    m[0] = 'X';
    d = decode(m, 9);
    ASSERT_FALSE(d);
    EXPECT_NE(d.error().message().find("magic"), std::string::npos);
    d = decode(b, 8);
    ASSERT_FALSE(d);
    EXPECT_NE(d.error().message().find("9 fds, 8 arrived"), std::string::npos)
        << d.error().message();
}

TEST(ShareCodec, InconsistentStateIsRejected) {
    {
        auto s = group_snapshot();
        s.containers[1].devices[0].fd = 3;  // the default container's device's fd
        expect_rejected(s, "used twice");
    }
    {
        auto s = group_snapshot();
        s.containers[0].devices[0].fd = 9;
        expect_rejected(s, "out of range");
    }
    {
        auto s = group_snapshot();
        s.containers[1].devices[0].group = 99;
        expect_rejected(s, "not among the container's groups");
    }
    {
        auto s = group_snapshot();
        s.containers[1].groups[0].number = 12;
        expect_rejected(s, "listed twice");
    }
    {
        auto s = group_snapshot();
        s.containers[1].devices[0].addr = addr("0000:00:03.0");
        expect_rejected(s, "listed twice");
    }
    {
        auto s = group_snapshot();
        s.containers[0].mappings[1].iova = 0x101000;  // inside the first
        expect_rejected(s, "overlaps");
    }
    {
        auto s = group_snapshot();
        s.containers[0].mappings[0].len = 0x1800;
        expect_rejected(s, "not 4 KiB-aligned");
    }
    {
        auto s = group_snapshot();
        s.containers[0].mappings[0].iova = ~std::uint64_t{0} - 0xfff;
        expect_rejected(s, "wraps");
    }
    {
        auto s = group_snapshot();
        s.containers[0].iommu_model = uapi::kVfioNoiommuIommu;
        expect_rejected(s, "IOMMU model 8 in group mode");
    }
    {
        auto s = group_snapshot();
        s.type1 = Type1::v1;  // but the containers use type1v2
        expect_rejected(s, "IOMMU model 3");
    }
    {
        auto s = group_snapshot();
        std::swap(s.containers[0], s.containers[1]);
        expect_rejected(s, "not the default one");
    }
    {
        auto s = group_snapshot();
        s.containers[1].devices.clear();
        s.fd_count = 9;  // fd 8 now belongs to nothing
        expect_rejected(s, "a group without a device");
    }
    {
        auto s = group_snapshot();
        s.fd_count = 10;
        expect_rejected(s, "1 of the 10 fds belong to nothing");
    }
    {
        auto s = cdev_snapshot();
        s.containers[0].container_fd = 1;
        expect_rejected(s, "in cdev mode");
    }
    {
        auto s = cdev_snapshot();
        s.mode = Mode::group;
        expect_rejected(s, "an iommufd in group mode");
    }
    {
        auto s = cdev_snapshot();
        s.mode = Mode::noiommu;
        s.iommufd = share::kNoFd;
        s.containers[0].container_fd = 0;
        expect_rejected(s, "");
    }
}

// A count the bytes cannot hold is refused before anything is allocated.
TEST(ShareCodec, HugeCountsAreRefusedUpFront) {
    auto b = bytes_of(cdev_snapshot());
    // The second container's mapping count: header 24 + container 24 +
    // device 16 + 20 bytes into the second container.
    const std::size_t at = 24 + 24 + 16 + 20;
    std::uint32_t huge = 0xffffffffu;
    std::memcpy(&b[at], &huge, 4);
    auto d = decode(b, 2);
    ASSERT_FALSE(d);
    EXPECT_NE(d.error().message().find("mappings need"), std::string::npos) << d.error().message();
}

// So is a container count: the header's u16 at byte 18.
TEST(ShareCodec, HugeContainerCountIsRefusedUpFront) {
    auto b = bytes_of(cdev_snapshot());
    const std::uint16_t huge = 0xffff;
    std::memcpy(&b[18], &huge, 2);
    auto d = decode(b, 2);
    ASSERT_FALSE(d);
    EXPECT_NE(d.error().message().find("65535 containers need at least"), std::string::npos)
        << d.error().message();
}

TEST(ShareCodec, ImportRejectsGarbageBeforeTouchingAnyFd) {
    const std::uint8_t junk[] = {'V', 'F', 'K', 'S', 1, 0, 0, 0, 9, 9, 9, 9};
    auto v = Vfio::import_shared(junk, {});
    ASSERT_FALSE(v);
    EXPECT_EQ(v.error().err(), EPROTO);
    EXPECT_NE(v.error().message().find("import shared VFIO state"), std::string::npos);
}

TEST(ExternalFds, ParsesAndFormats) {
    auto x = parse_external_fds("iommufd=3,0000:00:03.0=4");
    ASSERT_TRUE(x) << x.error().message();
    EXPECT_EQ(x->mode, Mode::cdev);
    EXPECT_EQ(x->iommufd, 3);
    ASSERT_EQ(x->devices.size(), 1u);
    EXPECT_EQ(x->devices[0].first, addr("0000:00:03.0"));
    EXPECT_EQ(x->devices[0].second, 4);
    auto again = parse_external_fds(format_external_fds(*x));
    ASSERT_TRUE(again) << again.error().message();
    EXPECT_EQ(again->devices, x->devices);

    auto g = parse_external_fds("mode=compat,container=5,0000:01:01.0=6,0000:01:02.0=6");
    ASSERT_TRUE(g) << g.error().message();
    EXPECT_EQ(g->mode, Mode::compat);
    EXPECT_EQ(g->container, 5);
    EXPECT_EQ(g->devices.size(), 2u);
    EXPECT_EQ(parse_external_fds("container=5,0000:00:03.0=6")->mode, Mode::group);
}

// Fds 0-2 are refused before any fd is taken: a failed call closes what it
// took, and closing stdin or stdout would be the caller's loss.
TEST(ExternalFds, StandardStreamsAreNeverTaken) {
    for (const char* text : {"mode=group,container=1,0000:00:03.0=5", "iommufd=5,0000:00:03.0=2",
                             "iommufd=0,0000:00:03.0=5"}) {
        auto x = parse_external_fds(text);
        ASSERT_TRUE(x) << text << ": " << x.error().message();
        auto v = Vfio::from_external_fds(*x, Options{});
        ASSERT_FALSE(v) << text;
        EXPECT_EQ(v.error().err(), EBADF) << text;
        EXPECT_NE(v.error().message().find("standard streams"), std::string::npos)
            << v.error().message();
        for (int fd = 0; fd <= 2; ++fd)
            EXPECT_NE(::fcntl(fd, F_GETFD), -1) << "fd " << fd << " was closed by " << text;
    }
}

TEST(ExternalFds, BadTextIsRefused) {
    for (const char* bad : {"", "iommufd=3", "iommufd=x,0000:00:03.0=4", "iommufd=3,0000:00:03.0",
                            "iommufd=3,nonsense=4", "iommufd=3,iommufd=4,0000:00:03.0=5",
                            "mode=cdev,container=3,0000:00:03.0=4", "mode=fast,iommufd=3",
                            "container=3,iommufd=4,0000:00:03.0=5", "iommufd=-1,0000:00:03.0=4"}) {
        auto x = parse_external_fds(bad);
        ASSERT_FALSE(x) << bad;
        EXPECT_EQ(x.error().err(), EINVAL) << bad;
    }
}

// One device spelled two ways is still one device given twice (found by
// fuzz/external_fds.cpp: the text was accepted, and its own formatting then
// refused); the error quotes the whole value, not the part left unread.
TEST(ExternalFds, ADeviceSpelledTwoWaysIsGivenTwice) {
    const char* text = "mode=group,container=8,00:00:03.0=4,0:00:3.0=4,0000:00:00.0=5";
    auto x = parse_external_fds(text);
    ASSERT_FALSE(x);
    EXPECT_EQ(x.error().err(), EINVAL);
    EXPECT_NE(x.error().message().find("device 0000:00:03.0 given twice"), std::string::npos)
        << x.error().message();
    EXPECT_NE(x.error().message().find(text), std::string::npos) << x.error().message();
}

}  // namespace
}  // namespace vfiokit::vfio

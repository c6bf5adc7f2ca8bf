// The mode table (modes.hpp): every row complete and consistent, names
// round-trip, and the choice of mode reads its rows.
#include "modes.hpp"

#include <gtest/gtest.h>

#include <set>

#include "fake_sysfs.hpp"
#include "vfiokit/eal/vfio/vfio.hpp"
#include "vfiokit/uapi/vfio.hpp"

namespace vfiokit::vfio {
namespace {

using detail::ModeRow;
using testing::FakeSysfs;

TEST(Modes, EveryModeHasExactlyOneCompleteRow) {
    std::set<Mode> seen;
    std::set<std::string_view> names;
    std::set<std::uint8_t> wire_ids;
    std::set<int> ranks;
    for (const ModeRow& r : detail::mode_rows()) {
        SCOPED_TRACE(std::string(r.name));
        EXPECT_TRUE(seen.insert(r.mode).second) << "two rows for one mode";
        EXPECT_TRUE(names.insert(r.name).second) << "name used twice";
        EXPECT_TRUE(wire_ids.insert(r.wire_id).second) << "wire id used twice";
        EXPECT_NE(r.wire_id, 0) << "0 is no mode on the wire";
        // Glued into test names as <area>-<name>[-<flavour>]: lower-case
        // words joined by dashes (the labels' uniqueness is checked below).
        EXPECT_FALSE(r.name.empty());
        EXPECT_EQ(r.name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-"),
                  std::string_view::npos);
        EXPECT_FALSE(r.name.starts_with('-') || r.name.ends_with('-') ||
                     r.name.find("--") != std::string_view::npos);
        EXPECT_FALSE(r.objects.empty());
        EXPECT_NE(r.check_kernel, nullptr);
        EXPECT_NE(r.check_device, nullptr);
        EXPECT_NE(r.make, nullptr);
        EXPECT_NE(r.adopt, nullptr);
        EXPECT_NE(r.model_fits, nullptr);
        if (r.auto_rank > 0) {
            EXPECT_TRUE(ranks.insert(r.auto_rank).second) << "two modes share an automatic rank";
            EXPECT_FALSE(r.auto_reason.empty());
        }
        // A translating mode maps; of the others only cdev-noiommu (it pins).
        EXPECT_EQ(r.maps_memory, r.translates || r.mode == Mode::cdev_noiommu);
        // Containers in an iommufd are shared as IOAS ids with the iommufd.
        EXPECT_EQ(r.process_iommufd, r.share == detail::ShareStyle::ioas_in_iommufd);
        EXPECT_EQ(&detail::mode_row(r.mode), &r);
        EXPECT_EQ(detail::mode_row_by_wire_id(r.wire_id), &r);
    }
    // all_modes() is the table's order, and nothing else.
    ASSERT_EQ(all_modes().size(), detail::mode_rows().size());
    for (std::size_t i = 0; i < all_modes().size(); ++i)
        EXPECT_EQ(all_modes()[i], detail::mode_rows()[i].mode);
    EXPECT_EQ(detail::mode_row_by_wire_id(0), nullptr);
    EXPECT_FALSE(detail::automatic_rows().empty());
}

TEST(Modes, NamesRoundTripThroughEveryParser) {
    for (Mode m : all_modes()) {
        const std::string name(to_string(m));
        EXPECT_EQ(mode_from_string(name), m);
        auto p = parse_mode(name);
        ASSERT_TRUE(p) << name;
        EXPECT_EQ(*p, m);
        // The name a broker's environment uses is the same one.
        ExternalFds x;
        x.mode = m;
        (detail::mode_row(m).process_iommufd ? x.iommufd : x.container) = 3;
        x.devices.emplace_back(*PciAddress::parse("0000:00:03.0"), 4);
        auto back = parse_external_fds(format_external_fds(x));
        ASSERT_TRUE(back) << back.error().message();
        EXPECT_EQ(back->mode, m);
    }
    EXPECT_FALSE(mode_from_string("auto"));
    EXPECT_FALSE(mode_from_string("Cdev"));
    auto bad = parse_mode("fast");
    ASSERT_FALSE(bad);
    for (Mode m : all_modes())  // the hint lists every name
        EXPECT_NE(bad.error().message().find(to_string(m)), std::string::npos);
}

// The labels lab steps carry today: cdev, group-type1v2, group-type1,
// compat, noiommu, cdev-noiommu. Each names one variant.
TEST(Modes, VariantsAreTheTestNames) {
    std::vector<std::string> labels;
    for (const auto& v : mode_variants())
        labels.push_back(v.label);
    EXPECT_EQ(labels, (std::vector<std::string>{"cdev", "group-type1v2", "group-type1", "compat",
                                                "noiommu", "cdev-noiommu"}));
    EXPECT_EQ(std::set<std::string>(labels.begin(), labels.end()).size(), labels.size());
    for (const auto& v : mode_variants()) {
        EXPECT_EQ(v.label.substr(0, to_string(v.mode).size()), to_string(v.mode));
        const Type1 want = v.label == "group-type1"     ? Type1::v1
                           : v.label == "group-type1v2" ? Type1::v2
                                                        : Type1::automatic;
        EXPECT_EQ(v.type1, want) << v.label;
    }
}

// The IOMMU models a shared container may carry follow each row.
TEST(Modes, ModelsFitTheirMode) {
    const auto v2 = static_cast<std::uint32_t>(uapi::kVfioType1v2Iommu);
    const auto v1 = static_cast<std::uint32_t>(uapi::kVfioType1Iommu);
    const auto none = static_cast<std::uint32_t>(uapi::kVfioNoiommuIommu);
    const auto& group = detail::mode_row(Mode::group);
    EXPECT_TRUE(group.model_fits(Type1::automatic, v2));
    EXPECT_TRUE(group.model_fits(Type1::automatic, v1));
    EXPECT_FALSE(group.model_fits(Type1::v2, v1));
    EXPECT_FALSE(group.model_fits(Type1::v1, v2));
    EXPECT_FALSE(group.model_fits(Type1::automatic, none));
    EXPECT_TRUE(detail::mode_row(Mode::noiommu).model_fits(Type1::automatic, none));
    EXPECT_FALSE(detail::mode_row(Mode::noiommu).model_fits(Type1::automatic, v2));
    EXPECT_TRUE(detail::mode_row(Mode::cdev).model_fits(Type1::automatic, 0));
    EXPECT_FALSE(detail::mode_row(Mode::cdev).model_fits(Type1::automatic, v2));
}

// --- the choice of mode (mode.cpp), on fake sysfs trees ---------------------------

void iommu_kernel(FakeSysfs& fs) {
    fs.file("/dev/vfio/vfio");
    fs.file("/dev/iommu");
    fs.file("/sys/module/vfio/parameters/enable_unsafe_noiommu_mode", "N\n");
    fs.dir("/sys/bus/pci/drivers/vfio-pci");
    fs.dir("/sys/class/iommu/dmar0");
}

void bound_device(FakeSysfs& fs, const std::string& bdf, int group, bool cdev) {
    fs.pci_device(bdf, "0x1234", "0x11e8", "0x00ff00", group, "vfio-pci");
    fs.link("/sys/bus/pci/drivers/vfio-pci/" + bdf, "../../../../devices/pci0000:00/" + bdf);
    fs.file("/dev/vfio/" + std::to_string(group));
    if (cdev) {
        fs.dir("/sys/bus/pci/devices/" + bdf + "/vfio-dev/vfio0");
        fs.file("/dev/vfio/devices/vfio0");
    }
}

TEST(ModeChoice, AutoFollowsTheBoundDeviceByRank) {
    FakeSysfs fs;
    iommu_kernel(fs);
    bound_device(fs, "0000:00:03.0", 3, true);
    auto c = choose_mode(fs.root(), Options{});
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_EQ(c->mode, Mode::cdev);
    EXPECT_NE(c->reason.find("0000:00:03.0 is bound to vfio-pci and offers cdev"),
              std::string::npos)
        << c->reason;

    // Without the cdev node, the next rank: group, saying why not cdev.
    FakeSysfs g;
    iommu_kernel(g);
    bound_device(g, "0000:00:03.0", 3, false);
    c = choose_mode(g.root(), Options{});
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_EQ(c->mode, Mode::group);
    EXPECT_NE(c->reason.find("cdev unavailable (no vfio-dev entry"), std::string::npos)
        << c->reason;
}

TEST(ModeChoice, AutoWithoutDevicesReadsTheKernel) {
    FakeSysfs fs;
    iommu_kernel(fs);
    auto c = choose_mode(fs.root(), Options{});
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_EQ(c->mode, Mode::cdev);

    FakeSysfs legacy;  // an IOMMU, no /dev/iommu
    legacy.file("/dev/vfio/vfio");
    legacy.dir("/sys/class/iommu/dmar0");
    c = choose_mode(legacy.root(), Options{});
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_EQ(c->mode, Mode::group);

    FakeSysfs nothing;  // no IOMMU, no-IOMMU mode not built
    nothing.file("/dev/vfio/vfio");
    c = choose_mode(nothing.root(), Options{});
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().err(), ENODEV);
    // Each mode's reason, by name.
    for (const auto* row : detail::automatic_rows())
        EXPECT_NE(c.error().message().find(std::string(row->name) + ": "), std::string::npos)
            << c.error().message();
}

TEST(ModeChoice, ForcedModeNamesWhatTheKernelLacks) {
    FakeSysfs fs;  // /dev/vfio/vfio only
    fs.file("/dev/vfio/vfio");
    Options o;
    o.mode = Mode::cdev;
    auto c = choose_mode(fs.root(), o);
    ASSERT_FALSE(c);
    EXPECT_NE(c.error().message().find("VFIO mode cdev unavailable: no /dev/iommu"),
              std::string::npos)
        << c.error().message();
    o.mode = Mode::compat;
    EXPECT_FALSE(choose_mode(fs.root(), o));
    o.mode = Mode::noiommu;
    c = choose_mode(fs.root(), o);
    ASSERT_FALSE(c);
    EXPECT_NE(c.error().message().find("CONFIG_VFIO_NOIOMMU"), std::string::npos);
    o.mode = Mode::group;
    c = choose_mode(fs.root(), o);
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_EQ(c->mode, Mode::group);
    EXPECT_NE(c->reason.find("forced"), std::string::npos);
}

// The noiommu shape: no IOMMU, unsafe no-IOMMU mode on, the edu in a
// no-IOMMU group. `cdev`: the kernel has cdev no-IOMMU (Linux 7.3: the
// edu's VFIO device is noiommu-vfio0 with a node) or not (6.12: vfio0, no
// node). `rawio`: this process has CAP_SYS_RAWIO.
void noiommu_kernel(FakeSysfs& fs, bool cdev, bool rawio, bool bound = true) {
    fs.file("/dev/vfio/vfio");
    fs.file("/dev/iommu");
    fs.file("/sys/module/vfio/parameters/enable_unsafe_noiommu_mode", "Y\n");
    fs.dir("/sys/bus/pci/drivers/vfio-pci");
    fs.file("/proc/sys/kernel/osrelease", cdev ? "7.3.4-amd64\n" : "6.12.57\n");
    fs.file("/proc/self/status",
            std::string("Name:\tx\nCapEff:\t") + (rawio ? "000001ffffffffff" : "0000000000000000") +
                "\n");
    if (!bound)
        return;
    fs.pci_device("0000:00:03.0", "0x1234", "0x11e8", "0x00ff00", 0, "vfio-pci");
    fs.link("/sys/bus/pci/drivers/vfio-pci/0000:00:03.0", "../../../../devices/pci0000:00/0000:00:03.0");
    fs.file("/sys/kernel/iommu_groups/0/name", "vfio-noiommu\n");
    fs.file("/dev/vfio/noiommu-0");
    if (cdev) {
        fs.dir("/sys/bus/pci/devices/0000:00:03.0/vfio-dev/noiommu-vfio0");
        fs.file("/dev/vfio/devices/noiommu-vfio0");
    } else {
        fs.dir("/sys/bus/pci/devices/0000:00:03.0/vfio-dev/vfio0");
    }
}

// Auto prefers cdev no-IOMMU to the no-IOMMU group where the device has a
// no-IOMMU cdev and the process CAP_SYS_RAWIO, and says why when not.
TEST(ModeChoice, AutoPrefersCdevNoiommuToTheNoiommuGroup) {
    FakeSysfs fs;
    noiommu_kernel(fs, true, true);
    auto c = choose_mode(fs.root(), Options{});
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_EQ(c->mode, Mode::cdev_noiommu) << c->reason;
    EXPECT_NE(c->reason.find("offers cdev-noiommu"), std::string::npos) << c->reason;

    FakeSysfs no_rawio;
    noiommu_kernel(no_rawio, true, false);
    c = choose_mode(no_rawio.root(), Options{});
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_EQ(c->mode, Mode::noiommu);
    EXPECT_NE(c->reason.find("cdev-noiommu unavailable (this process lacks CAP_SYS_RAWIO"),
              std::string::npos)
        << c->reason;

    FakeSysfs old;
    noiommu_kernel(old, false, true);
    c = choose_mode(old.root(), Options{});
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_EQ(c->mode, Mode::noiommu);
    EXPECT_NE(c->reason.find("cdev-noiommu unavailable (no-IOMMU devices get no cdev before "
                             "Linux 7.3"),
              std::string::npos)
        << c->reason;
}

// Without a device on vfio-pci, the kernel's release decides.
TEST(ModeChoice, AutoWithoutDevicesTakesCdevNoiommuFromLinux73) {
    FakeSysfs fs;
    noiommu_kernel(fs, true, true, false);
    auto c = choose_mode(fs.root(), Options{});
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_EQ(c->mode, Mode::cdev_noiommu) << c->reason;
    FakeSysfs old;
    noiommu_kernel(old, false, true, false);
    c = choose_mode(old.root(), Options{});
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_EQ(c->mode, Mode::noiommu) << c->reason;
}

// Forced: what the kernel or the process lacks, by name.
TEST(ModeChoice, ForcedCdevNoiommuNamesWhatIsMissing) {
    Options o;
    o.mode = Mode::cdev_noiommu;
    FakeSysfs fs;
    noiommu_kernel(fs, true, true);
    auto c = choose_mode(fs.root(), o);
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_EQ(c->mode, Mode::cdev_noiommu);

    FakeSysfs old;
    noiommu_kernel(old, false, true);
    c = choose_mode(old.root(), o);
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().err(), ENODEV);
    EXPECT_NE(c.error().message().find("no-IOMMU devices get no cdev before Linux 7.3 "
                                       "(no-IOMMU device 0000:00:03.0 is VFIO device vfio0, "
                                       "without a cdev)"),
              std::string::npos)
        << c.error().message();
    EXPECT_NE(c.error().message().find("--vfio-mode=noiommu"), std::string::npos)
        << c.error().message();

    FakeSysfs no_rawio;
    noiommu_kernel(no_rawio, true, false);
    c = choose_mode(no_rawio.root(), o);
    ASSERT_FALSE(c);
    EXPECT_NE(c.error().message().find("CAP_SYS_RAWIO"), std::string::npos) << c.error().message();

    FakeSysfs off;
    noiommu_kernel(off, true, true);
    off.file("/sys/module/vfio/parameters/enable_unsafe_noiommu_mode", "N\n");
    c = choose_mode(off.root(), o);
    ASSERT_FALSE(c);
    EXPECT_NE(c.error().message().find("enable_unsafe_noiommu_mode"), std::string::npos)
        << c.error().message();
}

TEST(Modes, CdevNoiommuRankedBetweenGroupAndNoiommu) {
    std::vector<Mode> order;
    for (const auto* r : detail::automatic_rows())
        order.push_back(r->mode);
    EXPECT_EQ(order, (std::vector<Mode>{Mode::cdev, Mode::group, Mode::cdev_noiommu,
                                        Mode::noiommu}));
    const auto& row = detail::mode_row(Mode::cdev_noiommu);
    EXPECT_FALSE(row.translates);
    EXPECT_TRUE(row.process_iommufd);
    EXPECT_TRUE(row.model_fits(Type1::automatic, 0));
    // The factory needs the process's iommufd, like cdev's.
    auto b = row.make(BackendConfig{});
    ASSERT_FALSE(b);
    EXPECT_EQ(b.error().err(), EBADF);
}

}  // namespace
}  // namespace vfiokit::vfio

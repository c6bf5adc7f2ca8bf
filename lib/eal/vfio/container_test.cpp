// The container front end on the host, through a fake backend
// (fake_backend.hpp): replay of the table when a group-style backend
// becomes ready (and its undo when that fails), type1's DMA entry
// accounting, and the check that the kernel's unmapped byte counts match
// the table. The same paths run against the real kernel in the lab
// (tests/lab/vfio/core_test.cpp); here each fault can be placed exactly.
#include <gtest/gtest.h>

#include <cerrno>
#include <memory>
#include <string>

#include "fake_backend.hpp"
#include "fake_sysfs.hpp"
#include "lab_env.hpp"
#include "vfiokit/eal/vfio/vfio.hpp"

namespace vfiokit::vfio {
namespace {

using fake::FakeBackend;
using fake::FakeIommu;
using vfiokit::testing::FakeSysfs;

constexpr std::uint64_t K = 4096;
constexpr std::uint64_t kVa = 0x7f0000000000ULL;  // never touched: the fake maps nothing
constexpr const char* kEdu = "0000:00:03.0";

// The iommu shape's kernel with two devices on vfio-pci, each alone in its
// group (as probe_test.cpp builds it).
void shape(FakeSysfs& fs) {
    fs.file("/dev/vfio/vfio");
    fs.file("/dev/iommu");
    fs.file("/sys/module/vfio/parameters/enable_unsafe_noiommu_mode", "N\n");
    fs.dir("/sys/bus/pci/drivers/vfio-pci");
    int n = 0;
    for (const char* bdf : {"0000:00:03.0", "0000:00:04.0"}) {
        const int group = 3 + n;
        fs.pci_device(bdf, "0x1234", "0x11e8", "0x00ff00", group, "vfio-pci");
        fs.dir("/sys/bus/pci/devices/" + std::string(bdf) + "/vfio-dev/vfio" + std::to_string(n));
        fs.file("/dev/vfio/devices/vfio" + std::to_string(n));
        fs.file("/dev/vfio/" + std::to_string(group));
        ++n;
    }
}

class FrontEnd : public ::testing::Test {
protected:
    void SetUp() override {
        shape(fs);
        k = std::make_shared<FakeIommu>();
    }
    // Call after adjusting `k`: the Vfio is made around it.
    Container& start(Mode m = Mode::group) {
        vfio = VfioTesting::make(fs.root(), m, std::make_unique<FakeBackend>(k, m));
        return vfio->default_container();
    }
    Device* assign(const char* bdf = kEdu) {
        auto d = vfio->assign_device(vfio->default_container(), bdf);
        EXPECT_TRUE(d) << (d ? "" : d.error().message());
        return d ? *d : nullptr;
    }
    // Three 16 KiB mappings at 1, 2 and 3 MiB.
    void map_three(Container& c) {
        for (std::uint64_t i = 1; i <= 3; ++i)
            ASSERT_TRUE(c.map(kVa + i * 16 * K, i << 20, 16 * K));
    }
    FakeSysfs fs;
    std::shared_ptr<FakeIommu> k;
    std::unique_ptr<Vfio> vfio;
};

TEST_F(FrontEnd, MappingsBeforeTheFirstDeviceAreReplayedWhenItArrives) {
    Container& c = start();
    map_three(c);
    EXPECT_EQ(k->map_calls, 0u) << "nothing reaches a container without an IOMMU model";
    EXPECT_EQ(c.mapping_count(), 3u);
    Device* d = assign();
    ASSERT_NE(d, nullptr);
    ASSERT_EQ(k->mapped.size(), 3u);
    for (std::uint64_t i = 1; i <= 3; ++i) {
        ASSERT_TRUE(k->mapped.contains(i << 20)) << i;
        EXPECT_EQ(k->mapped[i << 20].vaddr, kVa + i * 16 * K);
        EXPECT_EQ(k->mapped[i << 20].len, 16 * K);
    }
    // Losing the last device drops the kernel's mappings; the table keeps
    // them, and the next device gets them again.
    ASSERT_TRUE(vfio->release_device(*d));
    EXPECT_TRUE(k->mapped.empty());
    EXPECT_EQ(c.mapping_count(), 3u);
    ASSERT_NE(assign(), nullptr);
    EXPECT_EQ(k->mapped.size(), 3u);
    EXPECT_EQ(k->map_calls, 6u);
}

TEST_F(FrontEnd, ASecondDeviceDoesNotReplayAgain) {
    Container& c = start();
    map_three(c);
    ASSERT_NE(assign("0000:00:03.0"), nullptr);
    ASSERT_NE(assign("0000:00:04.0"), nullptr);
    EXPECT_EQ(k->map_calls, 3u);
}

TEST_F(FrontEnd, AReadyBackendIsMappedAtOnce) {
    k->group_style = false;  // cdev: an IOAS takes mappings without devices
    Container& c = start(Mode::cdev);
    ASSERT_TRUE(c.map(kVa, 1 << 20, 16 * K));
    EXPECT_EQ(k->map_calls, 1u);
    EXPECT_TRUE(k->mapped.contains(1 << 20));
}

TEST_F(FrontEnd, FailedReplayUndoesWhatItMappedAndReleasesTheDevice) {
    Container& c = start();
    map_three(c);
    k->fail_map_call = 2;
    auto d = vfio->assign_device(c, kEdu);
    ASSERT_FALSE(d);
    EXPECT_EQ(d.error().err(), EIO);
    const std::string m = d.error().message();
    EXPECT_NE(m.find("replaying mapping [0x200000, 0x210000)"), std::string::npos) << m;
    EXPECT_NE(m.find(kEdu), std::string::npos) << m;
    EXPECT_TRUE(k->mapped.empty()) << "the first mapping was not undone";
    EXPECT_EQ(k->devices, 0u) << "the device was left attached";
    EXPECT_EQ(vfio->find_device(*PciAddress::parse(kEdu)), nullptr);
    EXPECT_EQ(c.mapping_count(), 3u) << "the table must survive a failed replay";
    // Nothing stuck: without the fault the same assignment replays all.
    k->fail_map_call = 0;
    ASSERT_NE(assign(), nullptr);
    EXPECT_EQ(k->mapped.size(), 3u);
}

TEST_F(FrontEnd, ReplayChecksEveryMappingAgainstTheKernelRanges) {
    k->ranges = {{0, 0xfedfffffULL}};  // no IOVA at or above 4 GiB
    Container& c = start();
    ASSERT_TRUE(c.map(kVa, 1 << 20, 16 * K));
    ASSERT_TRUE(c.map(kVa, 1ULL << 32, 16 * K));  // unknown ranges: accepted until replay
    auto d = vfio->assign_device(c, kEdu);
    ASSERT_FALSE(d);
    EXPECT_EQ(d.error().err(), ERANGE);
    const std::string m = d.error().message();
    EXPECT_NE(m.find("[0x100000000, 0x100010000)"), std::string::npos) << m;
    EXPECT_NE(m.find("[0x0, 0xfedfffff]"), std::string::npos) << m;
    EXPECT_TRUE(k->mapped.empty());
    EXPECT_EQ(k->devices, 0u);
}

TEST_F(FrontEnd, Type1EntryLimitIsCountedWithoutAskingTheKernelEachTime) {
    k->entry_limit = 4;
    Container& c = start();
    ASSERT_NE(assign(), nullptr);
    for (std::uint64_t i = 1; i <= 4; ++i)
        ASSERT_TRUE(c.map(kVa, i << 20, K)) << i;
    auto full = c.map(kVa, 5 << 20, K);
    ASSERT_FALSE(full);
    EXPECT_EQ(full.error().err(), ENOSPC);
    EXPECT_NE(full.error().message().find("dma_entry_limit"), std::string::npos)
        << full.error().message();
    EXPECT_EQ(k->map_calls, 4u) << "the front end knew the limit was reached";
    EXPECT_EQ(k->avail_calls, 1u) << "asked once, then counted";
    EXPECT_EQ(c.mapping_count(), 4u);
    // Unmapping gives the entries back.
    ASSERT_TRUE(c.unmap(1 << 20, 2 << 20));  // two whole mappings
    ASSERT_TRUE(c.map(kVa, 5 << 20, K));
    ASSERT_TRUE(c.map(kVa, 6 << 20, K));
    EXPECT_EQ(c.map(kVa, 7 << 20, K).error().err(), ENOSPC);
    EXPECT_EQ(k->avail_calls, 1u);
}

TEST_F(FrontEnd, ReplayCountsTheEntriesItUses) {
    k->entry_limit = 4;
    Container& c = start();
    map_three(c);
    ASSERT_NE(assign(), nullptr);
    ASSERT_TRUE(c.map(kVa, 8 << 20, K));
    auto full = c.map(kVa, 9 << 20, K);
    ASSERT_FALSE(full);
    EXPECT_EQ(full.error().err(), ENOSPC);
    EXPECT_EQ(k->map_calls, 4u);
}

TEST_F(FrontEnd, ReplayStopsAtTheEntryLimitAndUndoes) {
    k->entry_limit = 2;
    Container& c = start();
    map_three(c);
    auto d = vfio->assign_device(c, kEdu);
    ASSERT_FALSE(d);
    EXPECT_EQ(d.error().err(), ENOSPC) << d.error().message();
    EXPECT_TRUE(k->mapped.empty());
    EXPECT_EQ(k->devices, 0u);
    EXPECT_EQ(k->map_calls, 2u) << "the third mapping should be refused before the kernel";
}

TEST_F(FrontEnd, UnmapChecksTheKernelsByteCountAgainstTheTable) {
    Container& c = start();
    ASSERT_NE(assign(), nullptr);
    ASSERT_TRUE(c.map(kVa, 1 << 20, 16 * K));
    ASSERT_TRUE(c.map(kVa, (1 << 20) + 16 * K, 16 * K));
    // One request covering both whole mappings: one kernel call, 32 KiB.
    ASSERT_TRUE(c.unmap(1 << 20, 32 * K));
    EXPECT_EQ(k->unmap_calls, 1u);
    EXPECT_TRUE(k->mapped.empty());

    ASSERT_TRUE(c.map(kVa, 1 << 20, 16 * K));
    k->unmap_bytes_skew = K;  // the kernel claims a page more than the table holds
    auto un = c.unmap(1 << 20, 16 * K);
    ASSERT_FALSE(un);
    EXPECT_EQ(un.error().err(), EIO);
    EXPECT_NE(un.error().message().find("the kernel unmapped 0x11000 bytes, the table holds 0x10000"),
              std::string::npos)
        << un.error().message();

    k->unmap_bytes_skew = 0;
    ASSERT_TRUE(c.map(kVa, 4 << 20, 16 * K));
    k->unmap_bytes_skew = ~std::uint64_t{0};  // wraps: one byte fewer than the table holds
    auto all = c.unmap_all();
    ASSERT_FALSE(all);
    EXPECT_EQ(all.error().err(), EIO);
    EXPECT_NE(all.error().message().find("unmap all: the kernel unmapped"), std::string::npos)
        << all.error().message();
}

TEST_F(FrontEnd, UnmapsBeforeTheFirstDeviceNeverReachTheKernel) {
    Container& c = start();
    map_three(c);
    ASSERT_TRUE(c.unmap(2 << 20, 16 * K));
    ASSERT_TRUE(c.unmap_all());
    EXPECT_EQ(k->unmap_calls + k->unmap_all_calls + k->map_calls, 0u);
    EXPECT_EQ(c.mapping_count(), 0u);
    ASSERT_NE(assign(), nullptr);
    EXPECT_TRUE(k->mapped.empty());
}

// --- cdev no-IOMMU: mappings pin, the kernel reports physical addresses ------------

// The noiommu shape on Linux 7.3: no IOMMU, unsafe no-IOMMU mode on, the edu
// in a no-IOMMU group with its cdev noiommu-vfio0; this process has
// CAP_SYS_RAWIO (bit 17 of CapEff).
void noiommu_shape(FakeSysfs& fs) {
    fs.file("/dev/vfio/vfio");
    fs.file("/dev/iommu");
    fs.file("/sys/module/vfio/parameters/enable_unsafe_noiommu_mode", "Y\n");
    fs.dir("/sys/bus/pci/drivers/vfio-pci");
    fs.file("/proc/self/status", "Name:\tt\nCapEff:\t000001ffffffffff\n");
    fs.file("/proc/sys/kernel/osrelease", "7.3.4-amd64\n");
    fs.pci_device(kEdu, "0x1234", "0x11e8", "0x00ff00", 0, "vfio-pci");
    fs.file("/sys/kernel/iommu_groups/0/name", "vfio-noiommu\n");
    fs.dir(std::string("/sys/bus/pci/devices/") + kEdu + "/vfio-dev/noiommu-vfio0");
    fs.file("/dev/vfio/devices/noiommu-vfio0");
    fs.file("/dev/vfio/noiommu-0");
}

// An IovaUser that records what the container told it, and may refuse.
struct Recorder final : IovaUser {
    [[nodiscard]] Result<void> meet_dma_mask(Container&, std::uint64_t, std::string_view) override {
        return {};
    }
    [[nodiscard]] Result<void> physical_addresses(Container& c, bool known) override {
        if (!known) {
            ++forgot;
            return {};
        }
        ++told;
        if (refuse)
            return fail(EIO, "recorder refuses");
        auto p = c.physical_address(1 << 20);
        seen = p ? p->pa : 0;
        return {};
    }
    unsigned told = 0, forgot = 0;
    bool refuse = false;
    std::uint64_t seen = 0;
};

class NoiommuFrontEnd : public ::testing::Test {
protected:
    void SetUp() override {
        noiommu_shape(fs);
        k = std::make_shared<FakeIommu>();
        k->group_style = false;
        k->noiommu = true;
        k->ranges = {{0, ~0ULL}};  // a no-IOMMU IOAS reserves nothing
        vfio = VfioTesting::make(fs.root(), Mode::cdev_noiommu,
                                 std::make_unique<FakeBackend>(k, Mode::cdev_noiommu));
    }
    Container& c() { return vfio->default_container(); }
    FakeSysfs fs;
    std::shared_ptr<FakeIommu> k;
    std::unique_ptr<Vfio> vfio;
};

// Mapping works although nothing translates: it pins, and the IOVA is the
// key. The physical address is known only while a device is attached.
TEST_F(NoiommuFrontEnd, MapsWithoutTranslatingAndLooksUpOnceADeviceIsAttached) {
    EXPECT_FALSE(c().translates());
    EXPECT_TRUE(c().maps_memory());
    EXPECT_TRUE(c().reports_physical());
    ASSERT_TRUE(c().map(kVa, 1 << 20, 16 * K));
    EXPECT_EQ(k->map_calls, 1u);
    auto early = c().physical_address(1 << 20);
    ASSERT_FALSE(early);
    EXPECT_EQ(early.error().err(), EAGAIN) << early.error().message();

    auto d = vfio->assign_device(c(), kEdu);
    ASSERT_TRUE(d) << d.error().message();
    auto pa = c().physical_address((1 << 20) + 5);
    ASSERT_TRUE(pa) << pa.error().message();
    EXPECT_EQ(pa->pa, k->pa_base + 5);
    EXPECT_EQ(pa->len, K - 5) << "the fake answers one page at a time";
    // Not mapped there: the front end says so without asking the kernel.
    const unsigned calls = k->pa_calls;
    auto none = c().physical_address(8 << 20);
    ASSERT_FALSE(none);
    EXPECT_EQ(none.error().err(), ENOENT);
    EXPECT_EQ(k->pa_calls, calls);
    // The kernel's answers in pieces are put together where they continue
    // each other, and kept apart where the memory jumps.
    auto whole = c().physical_ranges(1 << 20, 16 * K);
    ASSERT_TRUE(whole) << whole.error().message();
    EXPECT_EQ(*whole, (std::vector<PhysicalRange>{{k->pa_base, 16 * K}}));
    k->pa_gap = 0x100000;
    auto pieces = c().physical_ranges(1 << 20, 2 * K);
    ASSERT_TRUE(pieces) << pieces.error().message();
    EXPECT_EQ(*pieces, (std::vector<PhysicalRange>{{k->pa_base, K},
                                                   {k->pa_base + K + 0x100000, K}}));
    // Unmap works as in the translated modes.
    ASSERT_TRUE(c().unmap(1 << 20, 16 * K));
    EXPECT_TRUE(k->mapped.empty());
}

// The first device tells the IovaUsers that physical addresses are known,
// the last release that they are not; a user that fails undoes the
// assignment.
TEST_F(NoiommuFrontEnd, TheFirstDeviceTellsTheIovaUsers) {
    Recorder r;
    c().add_iova_user(&r);
    ASSERT_TRUE(c().map(kVa, 1 << 20, 16 * K));
    r.refuse = true;
    auto bad = vfio->assign_device(c(), kEdu);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().err(), EIO);
    EXPECT_NE(bad.error().message().find(kEdu), std::string::npos) << bad.error().message();
    EXPECT_EQ(k->devices, 0u) << "the device stayed attached";
    EXPECT_EQ(vfio->find_device(*PciAddress::parse(kEdu)), nullptr);
    EXPECT_EQ(r.forgot, 1u) << "told to forget what it may have read";
    r.refuse = false;
    auto d = vfio->assign_device(c(), kEdu);
    ASSERT_TRUE(d) << d.error().message();
    EXPECT_EQ(r.told, 2u);
    EXPECT_EQ(r.seen, k->pa_base) << "asked while the device was attached";
    // Released: the kernel unpinned, users forget. Assigned again: the
    // kernel pinned anew, users are told.
    ASSERT_TRUE(vfio->release_device(**d));
    EXPECT_EQ(r.forgot, 2u);
    ASSERT_TRUE(vfio->assign_device(c(), kEdu));
    EXPECT_EQ(r.told, 3u);
    c().remove_iova_user(&r);
}

// The IOVA is only a key: the placement policy ignores the DMA mask, and a
// mask is checked against the physical addresses instead.
TEST_F(NoiommuFrontEnd, DmaMasksApplyToPhysicalAddressesNotKeys) {
    auto d = vfio->assign_device(c(), kEdu);
    ASSERT_TRUE(d) << d.error().message();
    ASSERT_TRUE(c().require_dma_mask(0xffffffffULL, "edu"));
    auto key = c().choose_iova(kVa, 16 * K);
    ASSERT_TRUE(key) << key.error().message();
    EXPECT_EQ(*key, kVa) << "IOVA = VA although VA is above the mask";
    ASSERT_TRUE(c().map(kVa, *key, 16 * K));
    // Its memory lies at pa_base (1 GiB): under a 32-bit mask, not under a
    // 28-bit one.
    EXPECT_TRUE(c().require_dma_mask(0xffffffffULL, "edu"));
    auto narrow = c().require_dma_mask(0x0fffffffULL, "edu");
    ASSERT_FALSE(narrow);
    EXPECT_EQ(narrow.error().err(), ERANGE);
    EXPECT_NE(narrow.error().message().find("physical"), std::string::npos)
        << narrow.error().message();
}

// ---------------------------------------------------------------------------
// Peer-to-peer: map_device_bar. The fake exports real fds (memfds), so what
// is left open can be counted; the same paths run on the real kernel in
// the lab (tests/lab/edu/p2p_test.cpp, tests/lab/vfio/core_test.cpp).

constexpr const char* kPeer = "0000:00:04.0";
constexpr std::uint64_t kBarIova = 0x100000;

class BarFrontEnd : public FrontEnd {
protected:
    // cdev: ready from the start, maps dma-bufs; the peer's BAR 2 is 1 MiB.
    Container& start_cdev() {
        k->group_style = false;
        k->dma_bufs = true;
        k->bar_sizes[2] = 1 << 20;
        k->bar_sizes[0] = 0;  // absent
        return start(Mode::cdev);
    }
};

TEST_F(BarFrontEnd, MappedTrackedAndItsDmaBufFdClosed) {
    Container& c = start_cdev();
    Device* peer = assign(kPeer);
    ASSERT_NE(peer, nullptr);
    const int fds = vfiokit::testing::open_fds();
    auto r = c.map_device_bar(*peer, 2, 4 * K, 16 * K, kBarIova);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(k->exports, 1u);
    EXPECT_EQ(k->dma_buf_map_calls, 1u);
    EXPECT_TRUE(k->dma_buf_fd_was_open) << "the backend got a closed fd";
    EXPECT_EQ(vfiokit::testing::open_fds(), fds) << "the dma-buf fd stayed open";
    ASSERT_EQ(k->mapped.size(), 1u);
    auto m = c.lookup(kBarIova + K);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->iova, kBarIova);
    EXPECT_EQ(m->len, 16 * K);
    EXPECT_EQ(m->vaddr, 0u) << "a BAR mapping has no user address";
    auto bars = c.bar_mappings();
    ASSERT_EQ(bars.size(), 1u);
    EXPECT_EQ(bars[0].iova, kBarIova);
    EXPECT_EQ(bars[0].len, 16 * K);
    EXPECT_EQ(bars[0].device.str(), kPeer);
    EXPECT_EQ(bars[0].bar, 2u);
    EXPECT_EQ(bars[0].offset, 4 * K);
    EXPECT_FALSE(bars[0].revoked);
    // It blocks its IOVAs like any mapping.
    auto over = c.map(kVa, kBarIova + 8 * K, K * 4);
    ASSERT_FALSE(over);
    EXPECT_EQ(over.error().err(), EEXIST);
    ASSERT_TRUE(c.unmap(kBarIova, 16 * K));
    EXPECT_TRUE(c.bar_mappings().empty());
    EXPECT_TRUE(k->mapped.empty());
    EXPECT_EQ(c.mapping_count(), 0u);
}

// Releasing or resetting the exporter revokes its dma-buf in the kernel:
// the mapping says so, keeps its IOVA, and unmap still removes it.
TEST_F(BarFrontEnd, ReleaseAndResetOfTheExporterShowAsRevoked) {
    Container& c = start_cdev();
    k->reset_works = true;
    Device* peer = assign(kPeer);
    ASSERT_NE(peer, nullptr);
    ASSERT_TRUE(c.map_device_bar(*peer, 2, 0, 16 * K, kBarIova));
    ASSERT_TRUE(peer->ops().reset());
    ASSERT_EQ(c.bar_mappings().size(), 1u);
    EXPECT_TRUE(c.bar_mappings()[0].revoked) << "reset revokes";
    ASSERT_TRUE(c.unmap(kBarIova, 16 * K));
    // Mapped again after the reset: live; then the exporter goes.
    ASSERT_TRUE(c.map_device_bar(*peer, 2, 0, 16 * K, kBarIova));
    EXPECT_FALSE(c.bar_mappings()[0].revoked);
    ASSERT_TRUE(vfio->release_device(*peer));
    ASSERT_EQ(c.bar_mappings().size(), 1u);
    EXPECT_TRUE(c.bar_mappings()[0].revoked) << "release revokes";
    EXPECT_TRUE(c.lookup(kBarIova)) << "the IOVA stays taken until unmapped";
    ASSERT_TRUE(c.unmap(kBarIova, 16 * K));
    EXPECT_TRUE(c.bar_mappings().empty());
    EXPECT_TRUE(k->mapped.empty());
}

TEST_F(BarFrontEnd, UnmapAllTakesBarMappingsToo) {
    Container& c = start_cdev();
    Device* peer = assign(kPeer);
    ASSERT_NE(peer, nullptr);
    ASSERT_TRUE(c.map(kVa, 1ULL << 30, 16 * K));
    ASSERT_TRUE(c.map_device_bar(*peer, 2, 0, 16 * K, kBarIova));
    ASSERT_TRUE(c.map_device_bar(*peer, 2, 16 * K, 16 * K, 2 * kBarIova));
    EXPECT_EQ(c.bar_mappings().size(), 2u);
    ASSERT_TRUE(c.unmap_all());
    EXPECT_TRUE(c.bar_mappings().empty());
    EXPECT_TRUE(k->mapped.empty());
}

// Group-style containers (and no-IOMMU) refuse before anything is
// exported, saying which mode can.
TEST_F(BarFrontEnd, RefusedOutsideCdevBeforeAnythingIsExported) {
    k->bar_sizes[2] = 1 << 20;
    Container& c = start(Mode::group);
    Device* peer = assign(kPeer);
    ASSERT_NE(peer, nullptr);
    const int fds = vfiokit::testing::open_fds();
    auto r = c.map_device_bar(*peer, 2, 0, 16 * K, kBarIova);
    ASSERT_FALSE(r);
    const std::string msg = r.error().message();
    EXPECT_EQ(r.error().err(), ENOTSUP) << msg;
    for (const char* want : {"not in group mode", "cdev", "6.19", kPeer})
        EXPECT_NE(msg.find(want), std::string::npos) << want << " in: " << msg;
    EXPECT_EQ(k->exports, 0u);
    EXPECT_EQ(vfiokit::testing::open_fds(), fds);
    EXPECT_EQ(c.mapping_count(), 0u);
}

TEST_F(BarFrontEnd, BadInputFailsBeforeExporting) {
    Container& c = start_cdev();
    Device* peer = assign(kPeer);
    ASSERT_NE(peer, nullptr);
    ASSERT_TRUE(c.map(kVa, 4 * kBarIova, 16 * K));
    struct Case {
        unsigned bar;
        std::uint64_t offset, len, iova;
        int err;
        const char* says;
    };
    const Case cases[] = {
        {6, 0, K, kBarIova, EINVAL, "BARs 0-5"},
        {2, 100, K, kBarIova, EINVAL, "multiples of the page size"},
        {2, 0, 0, kBarIova, EINVAL, "multiples of the page size"},
        {2, 0, K, kBarIova + 1, EINVAL, "multiples of the page size"},
        {2, 1 << 20, K, kBarIova, EINVAL, "beyond the BAR's 0x100000 bytes"},
        {2, 0, 2 << 20, kBarIova, EINVAL, "beyond the BAR's"},
        {0, 0, K, kBarIova, ENODEV, "no BAR 0"},
        {2, 0, 16 * K, 4 * kBarIova + 4 * K, EEXIST, ""},
    };
    for (const Case& t : cases) {
        auto r = c.map_device_bar(*peer, t.bar, t.offset, t.len, t.iova);
        ASSERT_FALSE(r) << "BAR " << t.bar << " offset " << t.offset;
        EXPECT_EQ(r.error().err(), t.err) << r.error().message();
        EXPECT_NE(r.error().message().find(t.says), std::string::npos) << r.error().message();
    }
    EXPECT_EQ(k->exports, 0u);
    EXPECT_EQ(c.mapping_count(), 1u);
}

// The kernel refuses the map: the exported dma-buf is closed, nothing kept.
TEST_F(BarFrontEnd, AFailedMapLeavesNothing) {
    Container& c = start_cdev();
    k->fail_dma_buf_map_call = 1;
    Device* peer = assign(kPeer);
    ASSERT_NE(peer, nullptr);
    const int fds = vfiokit::testing::open_fds();
    auto r = c.map_device_bar(*peer, 2, 0, 16 * K, kBarIova);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().err(), EIO);
    EXPECT_EQ(k->exports, 1u);
    EXPECT_EQ(vfiokit::testing::open_fds(), fds) << "the dma-buf fd leaked";
    EXPECT_EQ(c.mapping_count(), 0u);
    EXPECT_TRUE(c.bar_mappings().empty());
    // And the same IOVA maps afterwards.
    ASSERT_TRUE(c.map_device_bar(*peer, 2, 0, 16 * K, kBarIova));
}

TEST_F(BarFrontEnd, AnotherVfiosDeviceIsRefused) {
    Container& c = start_cdev();
    auto other = VfioTesting::make(fs.root(), Mode::cdev,
                                   std::make_unique<FakeBackend>(k, Mode::cdev));
    auto d = other->assign_device(other->default_container(), kPeer);
    ASSERT_TRUE(d) << d.error().message();
    auto r = c.map_device_bar(**d, 2, 0, 16 * K, kBarIova);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().err(), EINVAL);
    EXPECT_NE(r.error().message().find("another process's VFIO state"), std::string::npos)
        << r.error().message();
    EXPECT_EQ(k->exports, 0u);
}

}  // namespace
}  // namespace vfiokit::vfio

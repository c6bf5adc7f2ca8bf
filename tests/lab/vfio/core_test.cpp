// VFIO core tests on the real kernel, run in the lab guest once per mode.
//
//   VFIOKIT_VFIO_MODE=group VFIOKIT_VFIO_TYPE1=v2 VFIOKIT_LAB_SHAPE=iommu vfio_lab_test
//
// Test names carry the mode ("Core/Assign.ReleaseLeavesNothing/group_type1v2").
// The job binds the shape's devices to vfio-pci first, except the ones that
// must stay on their kernel driver (see devtools/lab/jobs/vfio-core-*.sh).
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "lab_env.hpp"
#include "vfiokit/eal/pagemap.hpp"
#include "vfiokit/eal/vfio/syscalls.hpp"
#include "vfiokit/eal/vfio/vfio.hpp"
#include "vfiokit/uapi/vfio.hpp"

namespace vfiokit::vfio {
namespace {

using testing::env;
using testing::iommu_shape;
using testing::mode_label;
using testing::open_fds;


// The shape's devices (see doc/lab.md).
constexpr const char* kEdu = "0000:00:03.0";
constexpr const char* kEdu2 = "0000:00:04.0";
constexpr const char* kBridgeEdu = "0000:01:01.0";
constexpr const char* kBridgeNic = "0000:01:02.0";
const char* kernel_driver_nic() { return iommu_shape() ? "0000:00:06.0" : "0000:00:04.0"; }

Options mode_options() {
    Options o;
    if (auto ok = apply_environment(o); !ok)
        ADD_FAILURE() << ok.error().message();
    return o;
}

// Page-aligned anonymous memory, populated so DMA pinning has pages.
struct Buffer {
    explicit Buffer(std::size_t n) : len(n) {
        p = ::mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
                   -1, 0);
        if (p == MAP_FAILED)
            std::abort();
    }
    ~Buffer() { ::munmap(p, len); }
    std::uint64_t va() const { return reinterpret_cast<std::uint64_t>(p); }
    void* p;
    std::size_t len;
};

constexpr std::uint64_t kMask28 = (1ULL << 28) - 1;  // edu's default DMA mask

// The guest's IOMMU address width as the hardware reports it: MGAW, bits
// 21:16 of the VT-d capability register, plus one (VT-d spec 11.4.2),
// which intel-iommu exposes in sysfs. QEMU's aw-bits sets it: 39 or 48.
// 0 when there is no intel-iommu to read.
unsigned iommu_address_width() {
    unsigned width = 0;
    for (int i = 0; i < 8; ++i) {
        FILE* f = std::fopen(("/sys/class/iommu/dmar" + std::to_string(i) + "/intel-iommu/cap").c_str(), "r");
        if (f == nullptr)
            continue;
        unsigned long long v = 0;
        if (std::fscanf(f, "%llx", &v) == 1)
            width = std::max(width, static_cast<unsigned>((v >> 16) & 0x3f) + 1);
        std::fclose(f);
    }
    return width;
}
constexpr std::uint64_t K = 4096;

class Core : public ::testing::TestWithParam<std::string> {
protected:
    void SetUp() override {
        auto v = Vfio::create(mode_options());
        ASSERT_TRUE(v) << v.error().message();
        vfio = std::move(*v);
    }
    Container& dc() { return vfio->default_container(); }
    Device* assign(Container& c, const char* bdf) {
        auto d = vfio->assign_device(c, bdf);
        EXPECT_TRUE(d) << (d ? "" : d.error().message());
        return d ? *d : nullptr;
    }
    std::unique_ptr<Vfio> vfio;
};

#define SKIP_UNLESS_TRANSLATED()                                                  \
    if (!dc().translates())                                                       \
        GTEST_SKIP() << "no-IOMMU mode: nothing translates (tested in NoIommu.*)"
// Mapping works where an IOMMU translates and in cdev no-IOMMU (where it
// pins); group no-IOMMU maps nothing.
#define SKIP_UNLESS_MAPPING()                                                     \
    if (!dc().maps_memory())                                                      \
        GTEST_SKIP() << "group no-IOMMU mode maps nothing (tested in "            \
                        "NoIommuRefusesWhatNeedsTranslation)"

// --- the mode, from the shape's own facts -------------------------------------

bool is_char_dev(const std::string& path) {
    struct stat st{};
    return ::stat(path.c_str(), &st) == 0 && S_ISCHR(st.st_mode);
}

std::vector<std::string> dir_entries(const std::string& path) {
    std::vector<std::string> out;
    if (DIR* d = ::opendir(path.c_str())) {
        while (dirent* e = ::readdir(d))
            if (e->d_name[0] != '.')
                out.emplace_back(e->d_name);
        ::closedir(d);
    }
    std::sort(out.begin(), out.end());
    return out;
}

std::string link_name(const std::string& path) {
    char b[PATH_MAX];
    const ssize_t n = ::readlink(path.c_str(), b, sizeof b - 1);
    if (n <= 0)
        return {};
    std::string t(b, static_cast<std::size_t>(n));
    return t.substr(t.rfind('/') + 1);
}

// Whether this process holds `node` open (a /proc/self/fd target).
bool holds(const std::string& node) {
    for (const auto& fd : dir_entries("/proc/self/fd")) {
        char b[PATH_MAX];
        const ssize_t n = ::readlink(("/proc/self/fd/" + fd).c_str(), b, sizeof b - 1);
        if (n > 0 && std::string(b, static_cast<std::size_t>(n)) == node)
            return true;
    }
    return false;
}

// The device's cdev as the kernel named it: "vfioN", or "noiommu-vfioN"
// for a no-IOMMU device on a kernel with cdev no-IOMMU (Linux 7.3,
// vfio_main.c); "" when it has none.
std::string cdev_name(const std::string& bdf) {
    const auto names = dir_entries("/sys/bus/pci/devices/" + bdf + "/vfio-dev");
    return names.empty() ? "" : names.front();
}

// Per mode, the devices on vfio-pci that the running kernel lets use it,
// read from /dev and sysfs directly (not through probe.cpp, which is under
// test): cdev needs the device's cdev (/dev/vfio/devices/vfioN) and
// /dev/iommu; group its group's node /dev/vfio/N; noiommu the no-IOMMU
// group node /dev/vfio/noiommu-N; cdev-noiommu the no-IOMMU cdev
// /dev/vfio/devices/noiommu-vfioN (with /dev/iommu; this test runs as root,
// so with CAP_SYS_RAWIO).
std::map<Mode, std::vector<std::string>> shape_offers() {
    std::map<Mode, std::vector<std::string>> out;
    for (const auto& bdf : dir_entries("/sys/bus/pci/drivers/vfio-pci")) {
        if (!PciAddress::parse(bdf))
            continue;
        const std::string dev = "/sys/bus/pci/devices/" + bdf;
        const std::string group = link_name(dev + "/iommu_group");
        if (const std::string n = cdev_name(bdf);
            !n.empty() && is_char_dev("/dev/vfio/devices/" + n) && is_char_dev("/dev/iommu"))
            out[n.starts_with("noiommu-") ? Mode::cdev_noiommu : Mode::cdev].push_back(bdf);
        if (!group.empty() && is_char_dev("/dev/vfio/" + group))
            out[Mode::group].push_back(bdf);
        if (!group.empty() && is_char_dev("/dev/vfio/noiommu-" + group))
            out[Mode::noiommu].push_back(bdf);
    }
    return out;
}

// The nodes a process in mode `m` holds for the device `bdf`.
std::vector<std::string> nodes_of(Mode m, const std::string& bdf) {
    const std::string dev = "/sys/bus/pci/devices/" + bdf;
    const std::string group = link_name(dev + "/iommu_group");
    const std::string cdev = cdev_name(bdf);
    switch (m) {
    case Mode::cdev:
    case Mode::cdev_noiommu:
        return {"/dev/iommu", "/dev/vfio/devices/" + (cdev.empty() ? "?" : cdev)};
    case Mode::group: return {"/dev/vfio/vfio", "/dev/vfio/" + group};
    case Mode::compat: return {"/dev/iommu", "/dev/vfio/" + group};
    case Mode::noiommu: return {"/dev/vfio/vfio", "/dev/vfio/noiommu-" + group};
    }
    return {};
}

// Forced: the mode asked for. Auto: the first mode in preference order
// (cdev, group, cdev-noiommu, noiommu) that a device on vfio-pci offers,
// by the shape's facts above; the reason names such a device. Either way
// the mode is real: an assigned edu is held through that mode's kernel
// nodes.
TEST_P(Core, ModeIsTheOneAskedFor) {
    const std::string want = env("VFIOKIT_VFIO_MODE", "auto");
    std::printf("mode %s: %s; %s\n", std::string(to_string(vfio->mode())).c_str(),
                vfio->mode_reason().c_str(), dc().describe().c_str());
    if (want != "auto") {
        EXPECT_EQ(to_string(vfio->mode()), want);
        EXPECT_NE(vfio->mode_reason().find("forced"), std::string::npos) << vfio->mode_reason();
    } else {
        const auto offers = shape_offers();
        std::optional<Mode> expect;
        for (Mode m : {Mode::cdev, Mode::group, Mode::cdev_noiommu, Mode::noiommu})
            if (!expect && offers.contains(m))
                expect = m;
        ASSERT_TRUE(expect) << "no device on vfio-pci offers any mode: the job binds the edu";
        std::printf("the shape offers %s first, for", std::string(to_string(*expect)).c_str());
        for (const auto& bdf : offers.at(*expect))
            std::printf(" %s", bdf.c_str());
        std::printf("\n");
        EXPECT_EQ(vfio->mode(), *expect) << vfio->mode_reason();
        const std::string& why = vfio->mode_reason();
        EXPECT_TRUE(why.starts_with("auto: ")) << why;
        EXPECT_NE(why.find("offers " + std::string(to_string(*expect))), std::string::npos) << why;
        bool names_one = false;
        for (const auto& bdf : offers.at(*expect))
            names_one = names_one || why.find(bdf) != std::string::npos;
        EXPECT_TRUE(names_one) << "the reason names no device that offers the mode: " << why;
    }
    Device* d = assign(dc(), kEdu);
    ASSERT_NE(d, nullptr);
    for (const auto& node : nodes_of(vfio->mode(), kEdu)) {
        EXPECT_TRUE(holds(node)) << "in " << to_string(vfio->mode()) << " mode the process holds "
                                 << node;
    }
    if (vfio->mode() != Mode::cdev && vfio->mode() != Mode::cdev_noiommu) {
        for (const auto& n : dir_entries(std::string("/sys/bus/pci/devices/") + kEdu + "/vfio-dev")) {
            EXPECT_FALSE(holds("/dev/vfio/devices/" + n)) << "the cdev is not used outside cdev";
        }
    }
    ASSERT_TRUE(vfio->release_device(*d));
}

TEST_P(Core, AssignAndReleaseLeaveNothing) {
    const int before = open_fds();
    Device* d = assign(dc(), kEdu);
    ASSERT_NE(d, nullptr);
    // The device answers device operations.
    auto info = d->ops().info();
    ASSERT_TRUE(info) << info.error().message();
    EXPECT_TRUE(info->pci);
    EXPECT_TRUE(info->flags & uapi::kVfioDeviceFlagsPci);
    EXPECT_GE(info->num_regions, 7u);
    auto handle = d->handle();
    ASSERT_TRUE(vfio->release_device(*d));
    EXPECT_EQ(open_fds(), before);
    // A handle kept past the release refuses, naming the device.
    EXPECT_FALSE(handle->alive());
    auto late = handle->info();
    ASSERT_FALSE(late);
    EXPECT_EQ(late.error().err(), ENODEV);
    EXPECT_NE(late.error().message().find(std::string(kEdu) + " was released"), std::string::npos)
        << late.error().message();
    // Released for real: the kernel lets us have it again.
    Device* again = assign(dc(), kEdu);
    ASSERT_NE(again, nullptr);
    ASSERT_TRUE(vfio->release_device(*again));
}

TEST_P(Core, AssignTwiceIsRefused) {
    ASSERT_NE(assign(dc(), kEdu), nullptr);
    auto again = vfio->assign_device(dc(), kEdu);
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().err(), EEXIST);
}

TEST_P(Core, SharedGroupBothDevicesInOneContainer) {
    if (!iommu_shape())
        GTEST_SKIP() << "the noiommu shape has no bridge";
    Device* a = assign(dc(), kBridgeEdu);
    Device* b = assign(dc(), kBridgeNic);
    ASSERT_TRUE(a && b);
    EXPECT_EQ(a->iommu_group(), b->iommu_group());
    // Each handle reaches its own device: vendor and device id from config
    // space (region 7 of vfio-pci), edu 1234:11e8 and e1000 8086:100e.
    std::uint32_t ida = 0, idb = 0;
    ASSERT_TRUE(a->ops().read_region(uapi::kVfioPciConfigRegionIndex, 0, &ida, 4));
    ASSERT_TRUE(b->ops().read_region(uapi::kVfioPciConfigRegionIndex, 0, &idb, 4));
    EXPECT_EQ(ida, 0x11e81234u);
    EXPECT_EQ(idb, 0x100e8086u);
    // The group stays attached while one member remains.
    auto ha = a->handle();
    ASSERT_TRUE(vfio->release_device(*a));
    EXPECT_FALSE(ha->alive());
    ASSERT_TRUE(b->ops().read_region(uapi::kVfioPciConfigRegionIndex, 0, &idb, 4));
    EXPECT_EQ(idb, 0x100e8086u);
    Buffer buf(16 * K);
    auto iova = dc().alloc_iova(buf.len, kMask28);
    ASSERT_TRUE(iova) << iova.error().message();
    ASSERT_TRUE(dc().map(buf.va(), *iova, buf.len));
    ASSERT_TRUE(dc().unmap(*iova, buf.len));
}

TEST_P(Core, SharedGroupSplitAcrossContainersIsRefused) {
    if (!iommu_shape())
        GTEST_SKIP() << "the noiommu shape has no bridge";
    ASSERT_NE(assign(dc(), kBridgeEdu), nullptr);
    auto c = vfio->create_container();
    ASSERT_TRUE(c) << c.error().message();
    auto d = vfio->assign_device(**c, kBridgeNic);
    ASSERT_FALSE(d);
    EXPECT_EQ(d.error().err(), EBUSY);
    EXPECT_NE(d.error().message().find("already in default container"), std::string::npos)
        << d.error().message();
}

TEST_P(Core, MapUnmapUnmapAll) {
    SKIP_UNLESS_MAPPING();
    ASSERT_NE(assign(dc(), kEdu), nullptr);
    Buffer buf(64 * K);
    auto iova = dc().alloc_iova(32 * K, kMask28);
    ASSERT_TRUE(iova) << iova.error().message();
    EXPECT_LE(*iova + 32 * K - 1, kMask28);
    ASSERT_TRUE(dc().map(buf.va(), *iova, 32 * K));
    auto m = dc().lookup(*iova + 5);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->vaddr, buf.va());
    // unmap checks the kernel's byte count against the table.
    auto un = dc().unmap(*iova, 32 * K);
    ASSERT_TRUE(un) << un.error().message();
    EXPECT_EQ(dc().mapping_count(), 0u);
    for (int i = 0; i < 4; ++i)
        ASSERT_TRUE(dc().map(buf.va() + i * 16 * K, *iova + i * 16 * K, 16 * K));
    auto all = dc().unmap_all();
    ASSERT_TRUE(all) << all.error().message();
    EXPECT_EQ(dc().mapping_count(), 0u);
    // Everything is gone from the kernel too: the same IOVAs map again.
    ASSERT_TRUE(dc().map(buf.va(), *iova, 64 * K));
}

TEST_P(Core, OverlapIsRefusedAndChangesNothing) {
    SKIP_UNLESS_MAPPING();
    ASSERT_NE(assign(dc(), kEdu), nullptr);
    Buffer buf(16 * K);
    auto iova = dc().alloc_iova(16 * K, kMask28);
    ASSERT_TRUE(iova);
    ASSERT_TRUE(dc().map(buf.va(), *iova, 8 * K));
    auto o = dc().map(buf.va(), *iova + 4 * K, 8 * K);
    ASSERT_FALSE(o);
    EXPECT_EQ(o.error().err(), EEXIST);
    EXPECT_EQ(dc().mapping_count(), 1u);
    ASSERT_TRUE(dc().map(buf.va() + 8 * K, *iova + 8 * K, 8 * K));  // adjacent is fine
}

TEST_P(Core, PartialUnmapIsRefusedOnEveryBackend) {
    SKIP_UNLESS_MAPPING();
    ASSERT_NE(assign(dc(), kEdu), nullptr);
    Buffer buf(16 * K);
    auto iova = dc().alloc_iova(16 * K, kMask28);
    ASSERT_TRUE(iova);
    ASSERT_TRUE(dc().map(buf.va(), *iova, 16 * K));
    auto p = dc().unmap(*iova, 4 * K);
    ASSERT_FALSE(p);
    EXPECT_EQ(p.error().err(), EINVAL);
    EXPECT_NE(p.error().message().find("cuts through mapping"), std::string::npos);
    auto q = dc().unmap(*iova + 16 * K, 4 * K);
    ASSERT_FALSE(q);
    EXPECT_EQ(q.error().err(), ENOENT);
    ASSERT_TRUE(dc().unmap(*iova, 16 * K));  // whole: fine, and the kernel agreed on bytes
}

TEST_P(Core, IovaOutsideTheKernelRangesIsRefused) {
    SKIP_UNLESS_TRANSLATED();
    ASSERT_NE(assign(dc(), kEdu), nullptr);
    auto ranges = dc().iova_ranges();
    ASSERT_TRUE(ranges) << ranges.error().message();
    for (const auto& r : *ranges)
        std::printf("iova range [0x%llx, 0x%llx]\n", static_cast<unsigned long long>(r.start),
                    static_cast<unsigned long long>(r.last));
    // The kernel's ranges end where the IOMMU's address width does (39 or
    // 48 bits on QEMU's intel-iommu, read from the hardware's capability
    // register); the MSI window is reserved.
    const unsigned width = iommu_address_width();
    ASSERT_GE(width, 39u) << "no intel-iommu capability register in sysfs";
    std::printf("iommu address width: %u bits\n", width);
    EXPECT_EQ(ranges->back().last, (1ULL << width) - 1);
    Buffer buf(4 * K);
    std::vector<std::uint64_t> bad_iovas = {std::uint64_t{1} << width, 0xfee00000};
    // A typical user address lies above a 39-bit IOMMU's range, not above
    // a 48-bit one's.
    if (buf.va() > ranges->back().last)
        bad_iovas.push_back(buf.va());
    for (std::uint64_t bad : bad_iovas) {
        auto r = dc().map(buf.va(), bad, 4 * K);
        ASSERT_FALSE(r) << std::hex << bad;
        EXPECT_EQ(r.error().err(), ERANGE) << r.error().message();
        EXPECT_NE(r.error().message().find("alloc_iova"), std::string::npos);
    }
    EXPECT_EQ(dc().mapping_count(), 0u);
}

TEST_P(Core, MapBeforeTheFirstDevice) {
    SKIP_UNLESS_TRANSLATED();
    auto c = vfio->create_container();
    ASSERT_TRUE(c) << c.error().message();
    Buffer buf(32 * K);
    auto iova = (*c)->alloc_iova(32 * K, kMask28);
    ASSERT_TRUE(iova) << iova.error().message();
    ASSERT_TRUE((*c)->map(buf.va(), *iova, 32 * K));
    Device* d = assign(**c, kEdu2);
    ASSERT_NE(d, nullptr);
    // The kernel has the mapping now: unmapping returns its byte count,
    // which the container checks against the table.
    auto un = (*c)->unmap(*iova, 32 * K);
    ASSERT_TRUE(un) << un.error().message();
    // And the container survives losing and regaining its only device.
    ASSERT_TRUE((*c)->map(buf.va(), *iova, 32 * K));
    ASSERT_TRUE(vfio->release_device(*d));
    ASSERT_NE(assign(**c, kEdu2), nullptr);
    ASSERT_TRUE((*c)->unmap(*iova, 32 * K));
    ASSERT_TRUE(vfio->destroy_container(**c));
}

TEST_P(Core, TenThousandSmallMappings) {
    SKIP_UNLESS_MAPPING();
    ASSERT_NE(assign(dc(), kEdu), nullptr);
    Buffer buf(4 * K);
    auto base = dc().alloc_iova(10000 * K, kMask28);
    ASSERT_TRUE(base) << base.error().message();
    auto t0 = std::chrono::steady_clock::now();
    for (std::uint64_t i = 0; i < 10000; ++i) {
        auto r = dc().map(buf.va() + (i % 4) * K, *base + i * K, K);
        ASSERT_TRUE(r) << i << ": " << r.error().message();
    }
    auto t1 = std::chrono::steady_clock::now();
    EXPECT_EQ(dc().mapping_count(), 10000u);
    EXPECT_EQ(dc().lookup(*base + 9999 * K + 1)->vaddr, buf.va() + 3 * K);
    auto all = dc().unmap_all();
    ASSERT_TRUE(all) << all.error().message();
    auto t2 = std::chrono::steady_clock::now();
    using ms = std::chrono::milliseconds;
    std::printf("10000 mappings (%s): map %lld ms, unmap_all %lld ms\n", mode_label().c_str(),
                static_cast<long long>(std::chrono::duration_cast<ms>(t1 - t0).count()),
                static_cast<long long>(std::chrono::duration_cast<ms>(t2 - t1).count()));
}

TEST_P(Core, DeviceOnAKernelDriverIsExplained) {
    auto d = vfio->assign_device(dc(), kernel_driver_nic());
    ASSERT_FALSE(d);
    EXPECT_EQ(d.error().err(), ENODEV);
    const std::string m = d.error().message();
    EXPECT_NE(m.find("driver e1000"), std::string::npos) << m;
    EXPECT_NE(m.find("driver_override"), std::string::npos) << m;
}

TEST_P(Core, NonexistentAndMalformedAddresses) {
    auto d = vfio->assign_device(dc(), "0000:00:1e.0");
    ASSERT_FALSE(d);
    EXPECT_EQ(d.error().err(), ENODEV);
    EXPECT_NE(d.error().message().find("0000:00:1e.0"), std::string::npos);
    for (const char* bad : {"zz:00.0", "0000:00:03.0 vf_token=nope", "0000:00:03.0 junk"}) {
        auto e = vfio->assign_device(dc(), bad);
        ASSERT_FALSE(e) << bad;
        EXPECT_EQ(e.error().err(), EINVAL) << bad;
    }
}

// VF tokens: group mode hands "BDF vf_token=UUID" to the kernel (which
// refuses it for a device without SR-IOV, like edu); so does cdev on a
// kernel with Linux 6.17's bind flag, and before 6.17 cdev says that it
// needs it. Nothing is left behind.
TEST_P(Core, VfTokenIsPassedOrExplained) {
    const int before = open_fds();
    auto d = vfio->assign_device(dc(), std::string(kEdu) + " vf_token=2ab74924-c335-45f4-9b16-8569e5b08258");
    ASSERT_FALSE(d);
    std::printf("vf_token (kernel %s): %s\n", testing::kernel_version().str().c_str(),
                d.error().message().c_str());
    if ((vfio->mode() == Mode::cdev || vfio->mode() == Mode::cdev_noiommu) &&
        !testing::kernel_version().at_least(6, 17)) {
        EXPECT_EQ(d.error().err(), EOPNOTSUPP);
        EXPECT_NE(d.error().message().find("needs Linux 6.17 or later"), std::string::npos);
        EXPECT_NE(d.error().message().find("this kernel is " + testing::kernel_version().str()),
                  std::string::npos);
    } else {
        EXPECT_EQ(d.error().err(), EINVAL);  // the kernel: no VF token on a non-SR-IOV device
    }
    EXPECT_EQ(open_fds(), before);
    ASSERT_NE(assign(dc(), kEdu), nullptr);
}

// Only an SR-IOV PF on vfio-pci has a VF token to set
// (vfio_pci_core_feature_token): on the edu the kernel answers ENOTTY, in
// every mode and on both pairs, and the message says why.
TEST_P(Core, SetVfTokenNeedsAPf) {
    Device* d = assign(dc(), kEdu);
    ASSERT_NE(d, nullptr);
    auto t = parse_uuid("2ab74924-c335-45f4-9b16-8569e5b08258");
    ASSERT_TRUE(t);
    auto r = d->set_vf_token(*t);
    ASSERT_FALSE(r);
    std::printf("set_vf_token on the edu (kernel %s): %s\n",
                testing::kernel_version().str().c_str(), r.error().message().c_str());
    EXPECT_EQ(r.error().err(), ENOTTY);
    EXPECT_NE(r.error().message().find("VFIO_DEVICE_FEATURE"), std::string::npos);
    EXPECT_NE(r.error().message().find("only an SR-IOV physical function bound to vfio-pci"),
              std::string::npos);
    EXPECT_NE(r.error().message().find(kEdu), std::string::npos);
    EXPECT_TRUE(vfio->release_device(*d));
}

// Fault injection on the real kernel: every ioctl and open of
// assign_device fails once, in turn; each time nothing is left behind and
// the next attempt succeeds.
TEST_P(Core, AssignRollsBackAfterEachFailingCall) {
    for (Call kind : {Call::open, Call::ioctl}) {
        FaultInjector counter;
        unsigned calls = 0;
        {
            ScopedSyscalls g(counter);
            Device* d = assign(dc(), kEdu);
            ASSERT_NE(d, nullptr);
            calls = counter.count(kind);
            ASSERT_TRUE(vfio->release_device(*d));
        }
        std::printf("assign_device issues %u %s call(s)\n", calls, std::string(to_string(kind)).c_str());
        ASSERT_GT(calls, 0u);
        for (unsigned n = 1; n <= calls; ++n) {
            const int before = open_fds();
            FaultInjector fi;
            {
                ScopedSyscalls g(fi);
                fi.fail_nth(kind, n, EIO);
                auto d = vfio->assign_device(dc(), kEdu);
                ASSERT_TRUE(fi.fired());
                ASSERT_FALSE(d) << to_string(kind) << " #" << n << " failed but assign succeeded";
                EXPECT_EQ(d.error().err(), EIO) << d.error().message();
            }
            EXPECT_EQ(open_fds(), before) << to_string(kind) << " #" << n << " leaked an fd";
            EXPECT_EQ(dc().devices().size(), 0u);
            Device* ok = assign(dc(), kEdu);
            ASSERT_NE(ok, nullptr) << "after failing " << to_string(kind) << " #" << n;
            if (dc().maps_memory()) {  // the IOMMU model came back with the group
                Buffer buf(4 * K);
                auto iova = dc().alloc_iova(4 * K, kMask28);
                ASSERT_TRUE(iova);
                ASSERT_TRUE(dc().map(buf.va(), *iova, 4 * K));
                ASSERT_TRUE(dc().unmap(*iova, 4 * K));
            }
            ASSERT_TRUE(vfio->release_device(*ok));
        }
    }
}

TEST_P(Core, MapRollsBackAfterEachFailingIoctl) {
    SKIP_UNLESS_MAPPING();
    ASSERT_NE(assign(dc(), kEdu), nullptr);
    Buffer buf(8 * K);
    auto iova = dc().alloc_iova(8 * K, kMask28);
    ASSERT_TRUE(iova);
    for (unsigned n = 1;; ++n) {
        FaultInjector fi;
        Result<void> r;
        {
            ScopedSyscalls g(fi);
            fi.fail_nth(Call::ioctl, n, EIO);
            r = dc().map(buf.va(), *iova, 8 * K);
        }
        if (!fi.fired()) {  // map issues fewer than n ioctls: all covered
            ASSERT_TRUE(r);
            std::printf("map issued %u ioctl(s); each failed once and rolled back\n", n - 1);
            ASSERT_TRUE(dc().unmap(*iova, 8 * K));
            break;
        }
        ASSERT_FALSE(r);
        EXPECT_EQ(dc().mapping_count(), 0u);
        // Nothing stayed mapped in the kernel: mapping the same IOVA works.
        ASSERT_TRUE(dc().map(buf.va(), *iova, 8 * K)) << "after failing ioctl #" << n;
        ASSERT_TRUE(dc().unmap(*iova, 8 * K));
        // Forget cached limits so the next round issues every ioctl again.
        Device* d = dc().devices().front().get();
        ASSERT_TRUE(vfio->release_device(*d));
        ASSERT_NE(assign(dc(), kEdu), nullptr);
    }
}

TEST_P(Core, NoIommuRefusesWhatNeedsTranslation) {
    if (dc().maps_memory())
        GTEST_SKIP() << "this mode maps: covered by the Map* tests";
    ASSERT_NE(assign(dc(), kEdu), nullptr);
    Buffer buf(4 * K);
    auto m = dc().map(buf.va(), 0x100000, 4 * K);
    ASSERT_FALSE(m);
    EXPECT_EQ(m.error().err(), ENOTSUP);
    EXPECT_NE(m.error().message().find("physical address"), std::string::npos);
    EXPECT_FALSE(dc().alloc_iova(4 * K, kMask28));
    EXPECT_FALSE(dc().iova_ranges());
}

// cdev no-IOMMU: a mapping pins memory, and the kernel reports where it
// lies (IOMMU_IOAS_NOIOMMU_GET_PA) while a device is attached. What it
// reports is checked, page by page, against /proc/self/pagemap for the same
// pages: a 2 MiB hugetlb page (one physical run) and 4 KiB anonymous pages
// (one run each, at most). Before the device, and after its release, the
// kernel has pinned nothing and the lookup says so (EAGAIN).
TEST_P(Core, CdevNoiommuPhysicalAddressesMatchPagemap) {
    if (!dc().reports_physical())
        GTEST_SKIP() << "only cdev no-IOMMU reports physical addresses";
    constexpr std::size_t kHuge = 2 << 20;
    constexpr std::uint64_t kPg = 4096;  // the CPU page, which pagemap describes
    const int fd = ::memfd_create("core-huge", MFD_HUGETLB | MFD_CLOEXEC);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    ASSERT_EQ(::ftruncate(fd, kHuge), 0) << std::strerror(errno);
    void* hp = ::mmap(nullptr, kHuge, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
    ::close(fd);
    ASSERT_NE(hp, MAP_FAILED) << std::strerror(errno);
    Buffer small(16 * K);
    const auto huge_va = reinterpret_cast<std::uint64_t>(hp);
    const std::uint64_t huge_key = 1ULL << 30, small_key = 2ULL << 30;
    ASSERT_TRUE(dc().map(huge_va, huge_key, kHuge));
    ASSERT_TRUE(dc().map(small.va(), small_key, 16 * K));
    auto early = dc().physical_address(huge_key);
    ASSERT_FALSE(early);
    EXPECT_EQ(early.error().err(), EAGAIN) << early.error().message();
    std::printf("before a device: %s\n", early.error().message().c_str());

    Device* d = assign(dc(), kEdu);
    ASSERT_NE(d, nullptr);
    // The hugepage: one physically contiguous run, every 4 KiB of it where
    // pagemap says.
    auto run = dc().physical_ranges(huge_key, kHuge);
    ASSERT_TRUE(run) << run.error().message();
    ASSERT_EQ(run->size(), 1u) << "a hugetlb page is physically contiguous";
    EXPECT_EQ(run->front().len, kHuge);
    EXPECT_EQ(run->front().pa % kHuge, 0u);
    unsigned checked = 0;
    for (std::uint64_t off = 0; off < kHuge; off += kPg) {
        auto pm = eal::virt_to_phys(static_cast<std::uint8_t*>(hp) + off);
        ASSERT_TRUE(pm) << pm.error().message();
        ASSERT_EQ(run->front().pa + off, *pm) << "offset " << off;
        ++checked;
    }
    auto mid = dc().physical_address(huge_key + 0x1234, 16);
    ASSERT_TRUE(mid) << mid.error().message();
    EXPECT_EQ(mid->pa, run->front().pa + 0x1234);
    EXPECT_EQ(mid->len, 16u) << "capped at the length asked for";
    // 4 KiB pages, each where pagemap says.
    for (std::uint64_t off = 0; off < 16 * K; off += kPg) {
        auto p = dc().physical_address(small_key + off, kPg);
        ASSERT_TRUE(p) << p.error().message();
        auto pm = eal::virt_to_phys(static_cast<std::uint8_t*>(small.p) + off);
        ASSERT_TRUE(pm) << pm.error().message();
        EXPECT_EQ(p->pa, *pm) << "page " << off / kPg;
        EXPECT_EQ(p->len, kPg);
        ++checked;
    }
    std::printf("IOMMU_IOAS_NOIOMMU_GET_PA = /proc/self/pagemap for %u pages (hugepage at "
                "physical 0x%llx)\n",
                checked, static_cast<unsigned long long>(run->front().pa));
    // Outside every mapping: the front end says so; the kernel agrees.
    EXPECT_EQ(dc().physical_address(3ULL << 30).error().err(), ENOENT);

    ASSERT_TRUE(vfio->release_device(*d));
    auto late = dc().physical_address(huge_key);
    ASSERT_FALSE(late);
    EXPECT_EQ(late.error().err(), EAGAIN) << "the last detach unpins";
    ASSERT_TRUE(dc().unmap_all());
    ::munmap(hp, kHuge);
}

// A device's BAR mapped for peer-to-peer DMA (map_device_bar): edu's BAR 0
// (1 MiB of registers: a memory BAR) into the default container. It works
// in cdev mode on a kernel with VFIO dma-bufs (Linux 6.19+; the lab's 7.3
// builds CONFIG_VFIO_PCI_DMABUF): mapped, tracked, its dma-buf fd not
// kept, and unmapped so that the kernel frees the IOVA (memory maps there
// again). Everywhere else ENOTSUP names what is needed: cdev mode (group,
// compat), Linux 6.19 (cdev on 6.12), an IOMMU (the no-IOMMU modes); and
// nothing is left open or mapped. DMA through such a mapping is the edu
// P2P test's (tests/lab/edu/p2p_test.cpp, modern shape).
TEST_P(Core, DeviceBarMapsWhereTheKernelAndModeCan) {
    Device* d = assign(dc(), kEdu);
    ASSERT_NE(d, nullptr);
    const int fds = open_fds();
    const auto kv = testing::kernel_version();
    const Mode m = dc().mode();
    const bool can = m == Mode::cdev && kv.at_least(6, 19);
    constexpr std::uint64_t iova = 0x40000000;  // inside every translated mode's ranges
    auto r = dc().map_device_bar(*d, 0, 0, 16 * K, iova);
    std::printf("map_device_bar %s on Linux %s: %s\n", GetParam().c_str(), kv.str().c_str(),
                r ? "mapped" : r.error().message().c_str());
    if (can) {
        ASSERT_TRUE(r) << r.error().message();
        EXPECT_EQ(open_fds(), fds) << "the dma-buf's fd was kept";
        const auto bars = dc().bar_mappings();
        ASSERT_EQ(bars.size(), 1u);
        EXPECT_EQ(bars[0].device.str(), kEdu);
        EXPECT_EQ(bars[0].bar, 0u);
        EXPECT_EQ(bars[0].len, 16 * K);
        EXPECT_FALSE(bars[0].revoked);
        auto look = dc().lookup(iova);
        ASSERT_TRUE(look);
        EXPECT_EQ(look->vaddr, 0u);
        ASSERT_TRUE(dc().unmap(iova, 16 * K));
        EXPECT_TRUE(dc().bar_mappings().empty());
        Buffer buf(16 * K);
        auto again = dc().map(buf.va(), iova, 16 * K);
        EXPECT_TRUE(again) << "the kernel kept the IOVA: "
                           << (again ? "" : again.error().message());
        if (again) {
            EXPECT_TRUE(dc().unmap(iova, 16 * K));
        }
        EXPECT_EQ(open_fds(), fds);
        return;
    }
    ASSERT_FALSE(r);
    const std::string msg = r.error().message();
    EXPECT_EQ(r.error().err(), ENOTSUP) << msg;
    const char* names = !dc().translates()      ? "physical address"
                        : m == Mode::cdev       ? "Linux 6.19"
                                                : "cdev mode";
    EXPECT_NE(msg.find(names), std::string::npos) << "want '" << names << "' in: " << msg;
    EXPECT_EQ(open_fds(), fds);
    EXPECT_EQ(dc().mapping_count(), 0u);
    EXPECT_TRUE(dc().bar_mappings().empty());
}

INSTANTIATE_TEST_SUITE_P(Lab, Core, ::testing::Values(mode_label()),
                         [](const auto& p) { return p.param; });

// Modes that this kernel/shape cannot give fail with the missing piece.
TEST(ForcedMode, UnavailableModeNamesTheMissingPiece) {
    Options o;
    if (iommu_shape()) {
        o.mode = Mode::noiommu;
        auto v = Vfio::create(o);
        ASSERT_FALSE(v);
        EXPECT_NE(v.error().message().find("no-IOMMU mode is off"), std::string::npos)
            << v.error().message();
        EXPECT_NE(v.error().message().find("enable_unsafe_noiommu_mode"), std::string::npos);
    } else {
        // cdev needs an IOMMU: forcing it fails at assignment, with the
        // kernel's reason. Linux 6.12 gives a no-IOMMU device no cdev; 7.3
        // (CONFIG_IOMMUFD_NOIOMMU) gives it one named noiommu-vfioN, which
        // is cdev-noiommu mode's.
        const std::string cdev = cdev_name(kEdu);
        const bool noiommu_cdev = cdev.starts_with("noiommu-");
        std::printf("edu's cdev: %s\n", cdev.empty() ? "none" : cdev.c_str());
        o.mode = Mode::cdev;
        auto v = Vfio::create(o);
        ASSERT_TRUE(v) << v.error().message();
        auto d = (*v)->assign_device((*v)->default_container(), kEdu);
        ASSERT_FALSE(d);
        EXPECT_NE(d.error().message().find(noiommu_cdev ? "belongs to cdev-noiommu mode"
                                                        : "no-IOMMU devices get no cdev before "
                                                          "Linux 7.3"),
                  std::string::npos)
            << d.error().message();
        o.mode = Mode::group;
        auto g = Vfio::create(o);
        ASSERT_TRUE(g);
        auto gd = (*g)->assign_device((*g)->default_container(), kEdu);
        ASSERT_FALSE(gd);
        EXPECT_NE(gd.error().message().find("no-IOMMU group"), std::string::npos)
            << gd.error().message();
        // cdev-noiommu: where the kernel gives no-IOMMU devices a cdev it
        // works (each_mode runs it); before 7.3, forcing it fails up front
        // with the reason.
        if (!noiommu_cdev) {
            o.mode = Mode::cdev_noiommu;
            auto cn = Vfio::create(o);
            ASSERT_FALSE(cn);
            EXPECT_EQ(cn.error().err(), ENODEV) << cn.error().message();
            EXPECT_NE(cn.error().message().find("no-IOMMU devices get no cdev before Linux 7.3"),
                      std::string::npos)
                << cn.error().message();
            std::printf("forced cdev-noiommu: %s\n", cn.error().message().c_str());
        }
    }
    if (iommu_shape()) {
        o.mode = Mode::cdev_noiommu;
        auto cn = Vfio::create(o);
        ASSERT_FALSE(cn);
        EXPECT_NE(cn.error().message().find("no-IOMMU mode is off"), std::string::npos)
            << cn.error().message();
    }
    auto bad = parse_mode("fast");
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message().find("auto, cdev, group, compat, noiommu, cdev-noiommu"),
              std::string::npos);
}

// cdev no-IOMMU needs CAP_SYS_RAWIO: a process without it (a child that
// dropped it) is not offered the mode, is refused it when forced, naming
// the capability, and the kernel itself refuses to open the device's cdev.
TEST(ForcedMode, CdevNoiommuNeedsRawio) {
    const std::string cdev = cdev_name(kEdu);
    if (iommu_shape() || !cdev.starts_with("noiommu-"))
        GTEST_SKIP() << "the kernel gives the edu no no-IOMMU cdev (" << testing::shape()
                     << " shape, Linux " << testing::kernel_version().str() << ")";
    EXPECT_EXIT(
        {
            testing::drop_capability(CAP_SYS_RAWIO);
            const sysfs::Root root;
            const auto k = probe_kernel(root);
            auto d = probe_device(root, k, *PciAddress::parse(kEdu));
            Options o;
            o.mode = Mode::cdev_noiommu;
            auto v = Vfio::create(o);
            const int fd = ::open(("/dev/vfio/devices/" + cdev).c_str(), O_RDWR);
            const int open_errno = errno;
            std::fprintf(stderr, "raw_io %d; %s; forced: %s; open: %s\n", k.raw_io,
                         d ? d->status(Mode::cdev_noiommu).reason.c_str() : "?",
                         v ? "created" : v.error().message().c_str(), std::strerror(open_errno));
            const bool ok = !k.raw_io && d && !d->status(Mode::cdev_noiommu).available &&
                            d->automatic == Mode::noiommu && !v &&
                            v.error().message().find("CAP_SYS_RAWIO") != std::string::npos &&
                            fd < 0 && open_errno == EPERM;
            std::_Exit(ok ? 0 : 1);
        },
        ::testing::ExitedWithCode(0), "forced: .*this process lacks CAP_SYS_RAWIO.*open: Operation not permitted");
}

// A device held in one mode is refused, clearly, in another (the kernel
// answers EBUSY).
TEST(OtherMode, DeviceOpenInGroupModeIsBusyForCdev) {
    if (!iommu_shape())
        GTEST_SKIP() << "needs an IOMMU (cdev)";
    Options g;
    g.mode = Mode::group;
    auto gv = Vfio::create(g);
    ASSERT_TRUE(gv) << gv.error().message();
    auto held = (*gv)->assign_device((*gv)->default_container(), kEdu);
    ASSERT_TRUE(held) << held.error().message();
    Options c;
    c.mode = Mode::cdev;
    auto cv = Vfio::create(c);
    ASSERT_TRUE(cv) << cv.error().message();
    auto d = (*cv)->assign_device((*cv)->default_container(), kEdu);
    ASSERT_FALSE(d);
    EXPECT_EQ(d.error().err(), EBUSY) << d.error().message();
    std::printf("cdev while group holds it: %s\n", d.error().message().c_str());
    // And the other way round.
    ASSERT_TRUE((*gv)->release_device(**held));
    auto cd = (*cv)->assign_device((*cv)->default_container(), kEdu);
    ASSERT_TRUE(cd) << cd.error().message();
    auto gd = (*gv)->assign_device((*gv)->default_container(), kEdu);
    ASSERT_FALSE(gd);
    EXPECT_EQ(gd.error().err(), EBUSY) << gd.error().message();
    std::printf("group while cdev holds it: %s\n", gd.error().message().c_str());
}

}  // namespace
}  // namespace vfiokit::vfio

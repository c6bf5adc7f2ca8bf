// EAL memory on the real kernel, in the lab guest, once per VFIO mode:
// hugepage segments mapped into the default container by themselves, DMA
// through QEMU's edu from heap memory, the ioctls a big region costs, and
// the errors for missing or exhausted hugepages, a low RLIMIT_MEMLOCK and
// PA mode without privilege.
//
//   VFIOKIT_VFIO_MODE=cdev VFIOKIT_LAB_SHAPE=iommu memory_lab_test
#include <fcntl.h>
#include <linux/capability.h>
#include <numaif.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <optional>
#include <string>

#include "edu.hpp"
#include "lab_env.hpp"
#include "vfiokit/bus/pci/bus.hpp"
#include "vfiokit/bus/pci/device.hpp"
#include "vfiokit/eal/eal.hpp"
#include "vfiokit/uapi/iommufd.hpp"
#include "vfiokit/uapi/vfio.hpp"
#include "vfiokit/eal/format.hpp"
#include "vfiokit/eal/pagemap.hpp"

namespace vfiokit::eal {
namespace {

using testing::env;
using testing::iommu_shape;
using testing::mode_label;
using testing::drop_capability;
using testing::open_fds;

constexpr const char* kEdu = "0000:00:03.0";

unsigned free_hugepages() {
    return static_cast<unsigned>(
        sysfs::Root().read_uint("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages").value_or(0));
}

// EAL options for this mode, and otherwise the defaults: the IOVA policy,
// not the test, puts memory where edu's 28-bit DMA mask reaches it.
Options options() {
    Options o;
    if (auto ok = vfio::apply_environment(o.vfio); !ok)
        ADD_FAILURE() << ok.error().message();
    return o;
}

// Whether cdev maps EAL memory by file on this kernel: IOMMU_IOAS_MAP_FILE
// is Linux 6.13+.
bool kernel_maps_files() { return testing::kernel_version().at_least(6, 13); }

// Map requests that mapped, on the mode's DMA path: cdev maps by address
// (IOMMU_IOAS_MAP) or, where the kernel has it, by file
// (IOMMU_IOAS_MAP_FILE; elsewhere its one attempt fails and is not a
// mapping); the group-style modes by VFIO_IOMMU_MAP_DMA.
unsigned map_requests(const vfio::FaultInjector& counter, vfio::Mode m) {
    if (m != vfio::Mode::cdev)
        return counter.count(vfio::Call::ioctl, uapi::kVfioIommuMapDma);
    return counter.count(vfio::Call::ioctl, uapi::kIommuIoasMap) +
           (kernel_maps_files() ? counter.count(vfio::Call::ioctl, uapi::kIommuIoasMapFile) : 0);
}

class Mem : public ::testing::TestWithParam<std::string> {};

TEST_P(Mem, MapIoctlsGrowWithRegionsNotPages) {
    if (testing::shape() == "numa")
        GTEST_SKIP() << "counted in the iommu shape";
    vfio::FaultInjector counter;
    if (mode_label() == "cdev_noiommu") {
        // cdev no-IOMMU maps (pins) too: one map by file per segment, and
        // the kernel's physical addresses come with the first device.
        vfio::ScopedSyscalls g(counter);
        Options o = options();
        o.memory_mb = 256;
        auto e = Eal::init(o);
        ASSERT_TRUE(e) << e.error().message();
        const unsigned by_file = counter.count(vfio::Call::ioctl, uapi::kIommuIoasMapFile);
        const unsigned by_addr = counter.count(vfio::Call::ioctl, uapi::kIommuIoasMap);
        const unsigned lookups_before = counter.count(vfio::Call::ioctl, uapi::kIommuIoasNoiommuGetPa);
        auto d = (*e)->vfio().assign_device((*e)->vfio().default_container(), kEdu);
        ASSERT_TRUE(d) << d.error().message();
        const unsigned lookups = counter.count(vfio::Call::ioctl, uapi::kIommuIoasNoiommuGetPa) -
                                 lookups_before;
        std::printf("map ioctls (cdev_noiommu): 256 MiB = %u by file, %u by address; %u "
                    "IOMMU_IOAS_NOIOMMU_GET_PA before the device (refused: nothing pinned), %u "
                    "at its assignment for %u hugepages\n",
                    by_file, by_addr, lookups_before, lookups, 256u / 2);
        EXPECT_EQ(by_file, 1u);
        EXPECT_EQ(by_addr, 0u);
        for (const auto& m : (*e)->vfio().default_container().mappings())
            EXPECT_TRUE(m.by_file) << "segment at IOVA " << hex(m.iova);
        EXPECT_EQ((*e)->vfio().default_container().mapping_count(), 1u);
        EXPECT_GE(lookups, 1u);
        EXPECT_LE(lookups, 128u) << "at most one lookup per hugepage";
        return;
    }
    if (!iommu_shape()) {
        // No-IOMMU: nothing is mapped at all; 256 MiB is what the shape holds.
        vfio::ScopedSyscalls g(counter);
        Options o = options();
        o.memory_mb = 256;
        auto e = Eal::init(o);
        ASSERT_TRUE(e) << e.error().message();
        const unsigned n = counter.count(vfio::Call::ioctl, uapi::kVfioIommuMapDma) +
                           counter.count(vfio::Call::ioctl, uapi::kIommuIoasMap);
        std::printf("map ioctls (noiommu): 256 MiB = %u (IOVA = PA, nothing to map)\n", n);
        EXPECT_EQ(n, 0u);
        return;
    }
    vfio::ScopedSyscalls g(counter);
    Options o = options();
    o.memory_mb = 256;
    auto e = Eal::init(o);
    ASSERT_TRUE(e) << e.error().message();
    const vfio::Mode mode = (*e)->vfio().mode();
    const unsigned maps_256 = map_requests(counter, mode);
    // Group-style containers map only once a device is assigned (replay).
    auto d = (*e)->vfio().assign_device((*e)->vfio().default_container(), kEdu);
    ASSERT_TRUE(d) << d.error().message();
    const unsigned after_assign = map_requests(counter, mode);
    auto before_1g = map_requests(counter, mode);
    ASSERT_TRUE((*e)->heap(-1).reserve(1ULL << 30));
    const unsigned maps_1g = map_requests(counter, mode) - before_1g;
    std::printf("map ioctls (%s): 256 MiB = %u (%u by the first device), 1 GiB = %u; "
                "%u hugepages of 2 MiB in all\n",
                mode_label().c_str(), maps_256, after_assign - maps_256, maps_1g,
                static_cast<unsigned>((256 + 1024) / 2));
    EXPECT_EQ(maps_256 + (after_assign - maps_256), 1u);
    EXPECT_EQ(maps_1g, 1u);
    // Map by file (IOMMU_IOAS_MAP_FILE, Linux 6.13+). On a kernel without
    // it cdev asks once, learns, and maps by address from then on; with it,
    // both memfd-backed regions are mapped by file. The other modes have no
    // such command and never ask.
    const unsigned file_tries = counter.count(vfio::Call::ioctl, uapi::kIommuIoasMapFile);
    const vfio::Container& dc = (*e)->vfio().default_container();
    const testing::KernelVersion k = testing::kernel_version();
    const bool cdev = mode == vfio::Mode::cdev;
    const bool by_file = cdev && kernel_maps_files();
    const unsigned by_addr_ioctls = counter.count(vfio::Call::ioctl, uapi::kIommuIoasMap);
    std::printf("map by file (%s, kernel %s): %u IOMMU_IOAS_MAP_FILE attempt(s), %u "
                "IOMMU_IOAS_MAP, %zu mapping(s) by file, %s\n",
                mode_label().c_str(), k.str().c_str(), file_tries, by_addr_ioctls, dc.file_maps(),
                dc.file_maps_unsupported() ? "fell back to mapping by address" : "supported");
    EXPECT_EQ(file_tries, by_file ? 2u : cdev ? 1u : 0u);
    if (cdev) {
        EXPECT_EQ(by_addr_ioctls, by_file ? 0u : 2u) << "no segment by address where by file works";
    }
    EXPECT_EQ(dc.file_maps_unsupported(), !by_file);
    EXPECT_EQ(dc.file_maps(), by_file ? 2u : 0u);
    EXPECT_EQ((*e)->vfio().default_container().mapping_count(), 2u);
    // Every segment (all are memfds) is in the table as the kernel took it.
    for (const auto& m : dc.mappings())
        EXPECT_EQ(m.by_file, by_file) << "segment at IOVA " << hex(m.iova);
}

struct EduOnEal {
    std::unique_ptr<Eal> eal;
    std::unique_ptr<pci::Bus> bus;
    edu::EduDriver driver{iommu_shape() ? edu::kDefaultDmaMask : 0xffffffffULL};
    edu::EduDevice* dev = nullptr;
};

// Probes the edu on x.eal's bus.
void probe_edu(EduOnEal& x) {
    x.bus = std::make_unique<pci::Bus>(x.eal->vfio());
    x.bus->register_driver(x.driver);
    x.bus->allow(*PciAddress::parse(kEdu));
    auto r = x.bus->probe_all();
    ASSERT_TRUE(r) << r.error().message();
    auto* b = x.bus->find(*PciAddress::parse(kEdu));
    ASSERT_NE(b, nullptr) << (r->empty() ? "" : r->front().reason);
    x.dev = x.driver.device(*b);
    ASSERT_NE(x.dev, nullptr);
}

void open_edu(EduOnEal& x, const Options& o) {
    auto e = Eal::init(o);
    ASSERT_TRUE(e) << e.error().message();
    x.eal = std::move(*e);
    ASSERT_NO_FATAL_FAILURE(probe_edu(x));
}

// Fill, DMA RAM -> edu -> RAM through IOVAs from virt2iova, compare.
void round_trip(EduOnEal& x, void* src, void* dst, std::size_t n) {
    auto* s = static_cast<unsigned char*>(src);
    for (std::size_t i = 0; i < n; ++i)
        s[i] = static_cast<unsigned char>(i * 7 + 3);
    std::memset(dst, 0, n);
    auto si = x.eal->virt2iova(src), di = x.eal->virt2iova(dst);
    ASSERT_TRUE(si && di);
    ASSERT_LE(*si + n - 1, x.dev->dma_mask()) << "IOVA beyond the edu's DMA mask";
    ASSERT_TRUE(x.dev->dma_to_device(*si, 0, n));
    ASSERT_TRUE(x.dev->dma_to_ram(*di, 0, n));
    ASSERT_EQ(std::memcmp(src, dst, n), 0);
}

TEST_P(Mem, HeapMemoryIsDmaAbleWithoutAnyCall) {
    EduOnEal x;
    Options o = options();
    o.memory_mb = 4;
    ASSERT_NO_FATAL_FAILURE(open_edu(x, o));
    Heap& h = x.eal->heap(-1);
    auto a = h.alloc(2048), b = h.alloc(2048);
    ASSERT_TRUE(a && b);
    ASSERT_NO_FATAL_FAILURE(round_trip(x, *a, *b, 2048));
    std::printf("heap DMA (%s, iova %s): 2048 bytes ok at iova 0x%llx\n", mode_label().c_str(),
                x.eal->iova_mode() == IovaMode::pa ? "pa" : "va",
                static_cast<unsigned long long>(*x.eal->virt2iova(*a)));
    ASSERT_TRUE(h.free(*a));
    ASSERT_TRUE(h.free(*b));
    // Memory added after init: a new segment, mapped by the listener.
    const std::size_t segs = h.segments();
    auto big = h.alloc(60ULL << 20);  // does not fit the 4 MiB start-up segment
    ASSERT_TRUE(big) << big.error().message();
    EXPECT_EQ(h.segments(), segs + 1);
    char* tail = static_cast<char*>(*big) + (60ULL << 20) - 4096;
    ASSERT_NO_FATAL_FAILURE(round_trip(x, *big, tail, 1000));
    std::printf("memory added after init (%s): DMA ok\n", mode_label().c_str());
    ASSERT_TRUE(h.free(*big));
}

// Every segment's IOVAs inside the ranges the kernel reports for the
// container (read here, not assumed: intel-iommu has 39 or 48 bits).
void expect_inside_kernel_ranges(Eal& e) {
    auto ranges = e.vfio().default_container().iova_ranges();
    ASSERT_TRUE(ranges) << ranges.error().message();
    for (const Segment* s : e.memory().segments()) {
        ASSERT_TRUE(s->iova);
        const std::uint64_t first = *s->iova, last = first + s->len - 1;
        bool inside = false;
        for (const auto& r : *ranges)
            inside = inside || (first >= r.start && last <= r.last);
        EXPECT_TRUE(inside) << "segment IOVAs [" << hex(first) << ", " << hex(last)
                            << "] outside the kernel's ranges, last ends at "
                            << hex(ranges->back().last);
    }
}

// The acceptance case: default EAL options (no --base-virtaddr), edu with
// its default 28-bit mask. Start-up memory gets IOVA = VA where that fits
// the kernel's ranges; probing the edu moves it under the mask.
TEST_P(Mem, DefaultOptionsMeetTheEduMask) {
    Options o = options();
    o.memory_mb = 4;
    auto e = Eal::init(o);
    ASSERT_TRUE(e) << e.error().message();
    EduOnEal x;
    x.eal = std::move(*e);
    auto a = x.eal->heap(-1).alloc(2048), b = x.eal->heap(-1).alloc(2048);
    ASSERT_TRUE(a && b);
    const auto va = reinterpret_cast<std::uint64_t>(*a);
    vfio::Container& dc = x.eal->vfio().default_container();
    auto before = x.eal->virt2iova(*a);
    if (dc.reports_physical()) {
        // cdev no-IOMMU: nothing is pinned before a device, so no address.
        EXPECT_FALSE(before) << "a physical address before the kernel pinned the memory";
        before = 0;
    }
    ASSERT_TRUE(before);
    if (iommu_shape()) {
        // cdev knows the ranges before a device; group-style containers
        // learn them with the first one, so compare after the probe.
        EXPECT_EQ(*before, va) << "IOVA = VA fits the kernel's ranges and no device asked for less";
        EXPECT_EQ(dc.dma_mask(), ~0ULL);
    }
    ASSERT_NO_FATAL_FAILURE(probe_edu(x));
    const auto after = x.eal->virt2iova(*a);
    ASSERT_TRUE(after);
    EXPECT_LE(*after + 2047, x.dev->dma_mask());
    if (iommu_shape()) {
        EXPECT_EQ(dc.dma_mask(), x.dev->dma_mask());
        ASSERT_NO_FATAL_FAILURE(expect_inside_kernel_ranges(*x.eal));
        // The mapping moved with the table: one mapping, at the new IOVAs.
        auto m = dc.lookup(*after);
        ASSERT_TRUE(m);
        EXPECT_EQ(m->vaddr + (*after - m->iova), va);
        if (*before != *after) {
            EXPECT_FALSE(dc.lookup(*before)) << "the old IOVAs stay mapped";
        }
        EXPECT_EQ(dc.mapping_count(), x.eal->memory().segments().size());
    } else if (dc.reports_physical()) {
        auto pm = virt_to_phys(*a);
        ASSERT_TRUE(pm) << pm.error().message();
        EXPECT_EQ(*after, *pm) << "the kernel's address and pagemap's differ";
    } else {
        EXPECT_EQ(*after, *before);  // physical addresses do not move
    }
    ASSERT_NO_FATAL_FAILURE(round_trip(x, *a, *b, 2048));
    // Memory added after the probe is placed under the mask from the start.
    auto big = x.eal->heap(-1).alloc(60ULL << 20);
    ASSERT_TRUE(big) << big.error().message();
    ASSERT_NO_FATAL_FAILURE(round_trip(x, *big, static_cast<char*>(*big) + (60ULL << 20) - 4096, 1000));
    if (iommu_shape()) {
        ASSERT_NO_FATAL_FAILURE(expect_inside_kernel_ranges(*x.eal));
    }
    std::printf("default options (%s, iova %s): start-up memory at va %s, iova %s before the "
                "edu probe, %s after (mask %s); DMA ok\n",
                mode_label().c_str(), x.eal->iova_mode() == IovaMode::pa ? "pa" : "va",
                hex(va).c_str(), hex(*before).c_str(), hex(*after).c_str(),
                hex(x.dev->dma_mask()).c_str());
}

// A device whose mask the memory cannot meet fails its probe, and the
// error names the mask and the range; nothing changes.
TEST_P(Mem, AMaskTheMemoryCannotMeetFailsTheProbe) {
    Options o = options();
    o.memory_mb = 8;  // cannot fit under 2 MiB, and lies above it physically
    auto e = Eal::init(o);
    ASSERT_TRUE(e) << e.error().message();
    constexpr std::uint64_t kNarrow = (2ULL << 20) - 1;
    edu::EduDriver narrow(kNarrow);
    pci::Bus bus((*e)->vfio());
    bus.register_driver(narrow);
    bus.allow(*PciAddress::parse(kEdu));
    const auto* seg = (*e)->memory().segments().front();
    const auto iova_before = (*e)->virt2iova(reinterpret_cast<const void*>(seg->va));
    const std::size_t maps = (*e)->vfio().default_container().mapping_count();
    auto r = bus.probe_all();
    ASSERT_TRUE(r) << r.error().message();
    ASSERT_EQ(r->size(), 1u);
    const pci::ProbeOutcome& out = r->front();
    std::printf("narrow mask (%s): %s\n", mode_label().c_str(), out.reason.c_str());
    EXPECT_FALSE(out.probed);
    EXPECT_NE(out.reason.find("DMA mask 0x1fffff"), std::string::npos) << out.reason;
    EXPECT_NE(out.reason.find("[0x"), std::string::npos) << "no range named: " << out.reason;
    EXPECT_EQ(bus.find(*PciAddress::parse(kEdu)), nullptr);
    EXPECT_EQ((*e)->virt2iova(reinterpret_cast<const void*>(seg->va)), iova_before);
    EXPECT_EQ((*e)->vfio().default_container().mapping_count(), maps);
    EXPECT_EQ((*e)->vfio().default_container().dma_mask(), ~0ULL) << "a refused mask stays";
}

TEST_P(Mem, ExhaustedHugepagesAreExplainedAndLeakNothing) {
    auto e = Eal::init(options());
    ASSERT_TRUE(e) << e.error().message();
    const int fds = open_fds();
    const unsigned free_before = free_hugepages();
    const std::size_t maps = (*e)->vfio().default_container().mapping_count();
    auto s = (*e)->memory().add((free_before + 8) * (2ULL << 20));
    ASSERT_FALSE(s);
    std::printf("exhausted: %s\n", s.error().message().c_str());
    EXPECT_EQ(s.error().err(), ENOMEM);
    EXPECT_NE(s.error().message().find("free of"), std::string::npos);
    EXPECT_EQ(open_fds(), fds);
    EXPECT_EQ(free_hugepages(), free_before);
    EXPECT_EQ((*e)->vfio().default_container().mapping_count(), maps);
}

TEST_P(Mem, AbsentHugepageSizeIsExplained) {
    Options o = options();
    o.memory.page_size = 1ULL << 30;
    auto e = Eal::init(o);
    ASSERT_FALSE(e);
    std::printf("absent: %s\n", e.error().message().c_str());
    EXPECT_NE(e.error().message().find("1024 MiB"), std::string::npos);
}

// --huge-dir: a tmpfs is refused by name before anything is created; a
// hugetlbfs of the page size backs the segments with files that are 0600
// and unlinked at once, so nothing is left in the directory, and the huge
// pages come back when the EAL goes.
TEST_P(Mem, HugeDirIsCheckedAndLeavesNoFiles) {
    const std::string tmp = "/tmp/vfiokit-lab-tmpfs", huge = "/tmp/vfiokit-lab-hugetlbfs";
    for (const auto& d : {tmp, huge}) {
        (void)::umount(d.c_str());
        ::mkdir(d.c_str(), 0700);
    }
    ASSERT_EQ(::mount("none", tmp.c_str(), "tmpfs", 0, nullptr), 0) << std::strerror(errno);
    ASSERT_EQ(::mount("none", huge.c_str(), "hugetlbfs", 0, "pagesize=2M"), 0) << std::strerror(errno);
    {
        Options o = options();
        o.memory.huge_dir = tmp;
        auto e = Eal::init(o);
        ASSERT_FALSE(e) << "a tmpfs --huge-dir was taken";
        std::printf("tmpfs --huge-dir: %s\n", e.error().message().c_str());
        EXPECT_EQ(e.error().err(), EINVAL);
        EXPECT_NE(e.error().message().find("is on tmpfs, not hugetlbfs"), std::string::npos);
    }
    const unsigned free_before = free_hugepages();
    {
        Options o = options();
        o.memory.huge_dir = huge;
        auto e = Eal::init(o);
        ASSERT_TRUE(e) << e.error().message();
        auto s = (*e)->memory().add(4ULL << 20);
        ASSERT_TRUE(s) << s.error().message();
        std::printf("hugetlbfs --huge-dir: segment backing '%s'\n", (*s)->backing.c_str());
        EXPECT_TRUE((*s)->backing.starts_with(huge + "/vfiokit-")) << (*s)->backing;
        EXPECT_TRUE((*s)->backing.ends_with(" (unlinked)")) << (*s)->backing;
        struct stat st {};
        ASSERT_EQ(::fstat((*s)->fd, &st), 0);
        EXPECT_EQ(st.st_mode & 07777, 0600u);
        EXPECT_EQ(st.st_nlink, 0u) << "the file still has a name";
        EXPECT_TRUE(sysfs::Root().list(huge).empty()) << "files left in " << huge;
        EXPECT_LT(free_hugepages(), free_before) << "the segment took no huge pages";
        auto* p = static_cast<volatile std::uint8_t*>(reinterpret_cast<void*>((*s)->va));
        p[0] = 0x5a;
        EXPECT_EQ(p[0], 0x5a);
    }
    EXPECT_EQ(free_hugepages(), free_before) << "huge pages not returned";
    for (const auto& d : {tmp, huge}) {
        EXPECT_EQ(::umount(d.c_str()), 0) << d << ": " << std::strerror(errno);
        ::rmdir(d.c_str());
    }
}

// Runs `body` in a child; its exit status is the test's verdict there.
int in_child(const std::function<int()>& body) {
    std::fflush(stdout);
    pid_t pid = fork();
    if (pid == 0)
        std::_Exit(body());
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

TEST_P(Mem, LowMemlockLimitIsExplained) {
    if (!iommu_shape() && mode_label() != "cdev_noiommu")
        GTEST_SKIP() << "group no-IOMMU mode pins nothing: RLIMIT_MEMLOCK does not apply";
    int rc = in_child([] {
        drop_capability(CAP_IPC_LOCK);  // root ignores RLIMIT_MEMLOCK otherwise
        rlimit rl{64 << 10, 64 << 10};
        setrlimit(RLIMIT_MEMLOCK, &rl);
        Options o = options();
        o.memory_mb = 16;
        auto e = Eal::init(o);
        if (e) {
            // Group-style containers pin at the first device's replay,
            // iommufd (cdev, cdev-noiommu) when the first device attaches.
            auto d = (*e)->vfio().assign_device((*e)->vfio().default_container(), kEdu);
            if (d)
                return 1;
            std::printf("memlock: %s\n", d.error().message().c_str());
            return d.error().message().find("RLIMIT_MEMLOCK") != std::string::npos ? 0 : 2;
        }
        std::printf("memlock: %s\n", e.error().message().c_str());
        return e.error().message().find("RLIMIT_MEMLOCK") != std::string::npos ? 0 : 3;
    });
    EXPECT_EQ(rc, 0) << "1: mapping 16 MiB succeeded under a 64 KiB limit; 2/3: message lacks "
                        "RLIMIT_MEMLOCK";
}

TEST_P(Mem, PaModeWithoutPrivilegeIsExplained) {
    if (iommu_shape())
        GTEST_SKIP() << "pa mode is the no-IOMMU shape's";
    if (mode_label() == "cdev_noiommu") {
        // The kernel reports physical addresses to CAP_SYS_RAWIO: pagemap,
        // which hides them without CAP_SYS_ADMIN, is not asked.
        int rc = in_child([] {
            drop_capability(CAP_SYS_ADMIN);
            Options o = options();
            o.memory_mb = 4;
            auto e = Eal::init(o);
            if (!e) {
                std::printf("cdev_noiommu without CAP_SYS_ADMIN: %s\n", e.error().message().c_str());
                return 1;
            }
            auto d = (*e)->vfio().assign_device((*e)->vfio().default_container(), kEdu);
            if (!d)
                return 2;
            const auto* seg = (*e)->memory().segments().front();
            const auto pa = (*e)->virt2iova(reinterpret_cast<const void*>(seg->va));
            std::printf("cdev_noiommu without CAP_SYS_ADMIN: physical address %s from the kernel\n",
                        pa ? hex(*pa).c_str() : "none");
            return pa ? 0 : 3;
        });
        EXPECT_EQ(rc, 0) << "1: EAL init failed; 2: assign failed; 3: no physical address";
        return;
    }
    int rc = in_child([] {
        drop_capability(CAP_SYS_ADMIN);  // /proc/self/pagemap then hides PFNs
        Options o = options();
        o.memory_mb = 4;
        auto e = Eal::init(o);
        if (e)
            return 1;
        std::printf("pa without privilege: %s\n", e.error().message().c_str());
        return e.error().message().find("CAP_SYS_ADMIN") != std::string::npos ? 0 : 2;
    });
    EXPECT_EQ(rc, 0);
}

// cdev no-IOMMU: EAL memory's physical addresses come from the kernel
// (IOMMU_IOAS_NOIOMMU_GET_PA), not from /proc/self/pagemap; both must name
// the same page for every page of every segment. Memory reserved before
// the first device has none until it is assigned, and none again once it
// is released (the kernel pinned it only in between).
TEST_P(Mem, CdevNoiommuPhysicalAddressesMatchPagemap) {
    if (mode_label() != "cdev_noiommu")
        GTEST_SKIP() << "only cdev no-IOMMU gets physical addresses from the kernel";
    Options o = options();
    o.memory_mb = 16;
    auto e = Eal::init(o);
    ASSERT_TRUE(e) << e.error().message();
    Memory& m = (*e)->memory();
    auto each_page = [&](const std::function<void(const std::uint8_t*)>& f) {
        for (const Segment* s : m.segments())
            for (std::uint64_t off = 0; off < s->len; off += s->page_size)
                f(reinterpret_cast<const std::uint8_t*>(s->va + off));
    };
    each_page([&](const std::uint8_t* p) { EXPECT_FALSE(m.virt2iova(p)) << "before a device"; });
    auto d = (*e)->vfio().assign_device((*e)->vfio().default_container(), kEdu);
    ASSERT_TRUE(d) << d.error().message();
    // Memory added with the device there gets its addresses at once.
    ASSERT_TRUE(m.add(4ULL << 20));
    unsigned pages = 0;
    each_page([&](const std::uint8_t* p) {
        const auto kernel = m.virt2iova(p + 100);
        const auto pm = virt_to_phys(p + 100);
        ASSERT_TRUE(kernel) << "no address for page " << static_cast<const void*>(p);
        ASSERT_TRUE(pm) << pm.error().message();
        EXPECT_EQ(*kernel, *pm) << "page " << static_cast<const void*>(p);
        ++pages;
    });
    std::printf("EAL memory (cdev_noiommu): %u hugepages, IOMMU_IOAS_NOIOMMU_GET_PA = "
                "/proc/self/pagemap for each\n",
                pages);
    EXPECT_EQ(pages, (16u + 4u) / 2);
    ASSERT_TRUE((*e)->vfio().release_device(**d));
    each_page([&](const std::uint8_t* p) { EXPECT_FALSE(m.virt2iova(p)) << "after the release"; });
}

// The node a page of ours lives on.
int node_of(const void* p) {
    int node = -1;
    if (get_mempolicy(&node, nullptr, 0, const_cast<void*>(p), MPOL_F_NODE | MPOL_F_ADDR) != 0)
        return -2;
    return node;
}

TEST_P(Mem, NumaPlacementFollowsTheDevice) {
    if (testing::shape() != "numa")
        GTEST_SKIP() << "needs the numa shape (two nodes)";
    constexpr const char* kFarEdu = "0000:41:00.0";  // behind the node-1 expander bridge
    auto dev_node = sysfs::Root().read_int(std::string("/sys/bus/pci/devices/") + kFarEdu + "/numa_node");
    ASSERT_TRUE(dev_node);
    ASSERT_EQ(*dev_node, 1);
    EduOnEal x;
    Options o = options();
    o.socket_mem_mb = {8, 8};  // start-up memory on both nodes
    auto e = Eal::init(o);
    ASSERT_TRUE(e) << e.error().message();
    x.eal = std::move(*e);
    x.bus = std::make_unique<pci::Bus>(x.eal->vfio());
    x.bus->register_driver(x.driver);
    x.bus->allow(*PciAddress::parse(kFarEdu));
    ASSERT_TRUE(x.bus->probe_all());
    auto* b = x.bus->find(*PciAddress::parse(kFarEdu));
    ASSERT_NE(b, nullptr);
    x.dev = x.driver.device(*b);
    // Memory for the device comes from the heap of the device's node.
    Heap& near = x.eal->heap(static_cast<int>(*dev_node));
    auto a = near.alloc(2048), c = near.alloc(2048);
    ASSERT_TRUE(a && c);
    EXPECT_EQ(node_of(*a), 1);
    EXPECT_EQ(node_of(*c), 1);
    auto far = x.eal->heap(0).alloc(2048);
    ASSERT_TRUE(far);
    EXPECT_EQ(node_of(*far), 0);
    ASSERT_NO_FATAL_FAILURE(round_trip(x, *a, *c, 2048));
    std::printf("numa (%s): device %s on node %lld, its buffers on node %d, DMA ok; node-0 heap "
                "on node %d\n",
                mode_label().c_str(), kFarEdu, static_cast<long long>(*dev_node), node_of(*a),
                node_of(*far));
    // A node the machine does not have is refused, naming the nodes there are.
    auto none = x.eal->memory().add(2 << 20, 5);
    ASSERT_FALSE(none);
    EXPECT_NE(none.error().message().find("nodes 0..1"), std::string::npos) << none.error().message();
}

// The kernel refuses the DMA unmap of a segment being removed (injected
// through the syscall seam on the real unmap ioctl): remove() says so, the
// segment is quarantined (still mapped for the device, its addresses never
// given out again), and the next segment lands elsewhere and does DMA.
TEST_P(Mem, AFailedUnmapQuarantinesTheSegment) {
    if (testing::shape() == "numa")
        GTEST_SKIP() << "checked in the iommu and noiommu shapes";
    const std::string mode = mode_label();
    if (mode == "noiommu")
        GTEST_SKIP() << "group no-IOMMU maps nothing, so nothing is unmapped";
    EduOnEal x;
    Options o = options();
    o.memory_mb = 4;
    ASSERT_NO_FATAL_FAILURE(open_edu(x, o));
    Memory& mem = x.eal->memory();
    vfio::Container& dc = x.eal->vfio().default_container();
    auto s = mem.add(2ULL << 20);
    ASSERT_TRUE(s) << s.error().message();
    const std::uint64_t va = (*s)->va, len = (*s)->len;
    const std::size_t mappings = dc.mapping_count();
    const unsigned long unmap = mode.starts_with("cdev") ? uapi::kIommuIoasUnmap
                                                         : uapi::kVfioIommuUnmapDma;
    vfio::FaultInjector fi;
    Result<void> r;
    {
        vfio::ScopedSyscalls g(fi);
        fi.fail_nth(vfio::Call::ioctl, 1, EIO, unmap);
        r = mem.remove(*s);
    }
    ASSERT_TRUE(fi.fired()) << "no unmap ioctl was issued for the segment";
    ASSERT_FALSE(r) << "the unmap failed but remove() succeeded";
    EXPECT_EQ(r.error().err(), EIO);
    std::printf("failed unmap (%s): %s\n", mode.c_str(), r.error().message().c_str());
    EXPECT_EQ(mem.quarantined().segments, 1u);
    EXPECT_EQ(mem.quarantined().bytes, len);
    EXPECT_EQ(dc.mapping_count(), mappings) << "the container forgot a mapping the kernel kept";
    EXPECT_FALSE(mem.virt2iova(reinterpret_cast<const void*>(va)));
    // The next segment gets another range, and the edu reaches it.
    auto t = mem.add(2ULL << 20);
    ASSERT_TRUE(t) << t.error().message();
    EXPECT_TRUE((*t)->va >= va + len || (*t)->va + (*t)->len <= va);
    if (!dc.translates()) {
        // No IOMMU: the removal stopped the edu's bus mastering before its
        // unmap failed; a driver starting the device again turns it back on.
        vfio::Device* d = x.eal->vfio().find_device(*PciAddress::parse(kEdu));
        ASSERT_NE(d, nullptr);
        ASSERT_TRUE(pci::PciDevice(*d).enable_memory_and_bus_master());
    }
    auto* p = reinterpret_cast<char*>((*t)->va);
    ASSERT_NO_FATAL_FAILURE(round_trip(x, p, p + 8192, 2048));
    ASSERT_TRUE(mem.remove(*t));
    EXPECT_EQ(mem.quarantined().segments, 1u);
}

// The PCI command register as the device holds it (sysfs reads the real
// config space, not VFIO's virtualized view).
std::optional<std::uint16_t> command_register(const char* bdf) {
    const std::string path = std::string("/sys/bus/pci/devices/") + bdf + "/config";
    vfio::Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    std::uint16_t cmd = 0;
    if (!fd || ::pread(fd.get(), &cmd, sizeof cmd, 4) != static_cast<ssize_t>(sizeof cmd))
        return std::nullopt;
    return cmd;
}

// Without an IOMMU nothing keeps a device off memory that went back to the
// kernel: the devices stop mastering the bus before a segment goes.
TEST_P(Mem, WithoutAnIommuReleasedMemoryStopsBusMastering) {
    if (iommu_shape() || testing::shape() == "numa")
        GTEST_SKIP() << "an IOMMU shape: the unmap keeps the device off released memory";
    EduOnEal x;
    Options o = options();
    o.memory_mb = 4;
    ASSERT_NO_FATAL_FAILURE(open_edu(x, o));
    auto a = x.eal->heap(-1).alloc(2048), b = x.eal->heap(-1).alloc(2048);
    ASSERT_TRUE(a && b);
    ASSERT_NO_FATAL_FAILURE(round_trip(x, *a, *b, 2048));  // the driver enabled DMA
    auto before = command_register(kEdu);
    ASSERT_TRUE(before);
    ASSERT_TRUE(*before & 0x4) << "the edu driver left Bus Master Enable off: command "
                               << hex(*before);
    Memory& mem = x.eal->memory();
    auto s = mem.add(2ULL << 20);
    ASSERT_TRUE(s) << s.error().message();
    EXPECT_EQ(command_register(kEdu).value_or(0), *before) << "adding memory touched the device";
    ASSERT_TRUE(mem.remove(*s));
    auto after = command_register(kEdu);
    ASSERT_TRUE(after);
    std::printf("release (%s): command register %s before, %s after the segment went\n",
                mode_label().c_str(), hex(*before).c_str(), hex(*after).c_str());
    EXPECT_EQ(*after & 0x4, 0) << "Bus Master Enable still set after the memory went back";
    EXPECT_EQ(*after & 0x2, *before & 0x2) << "memory space decoding changed too";
    EXPECT_EQ(mem.quarantined().segments, 0u);
}

INSTANTIATE_TEST_SUITE_P(Lab, Mem, ::testing::Values(mode_label()),
                         [](const auto& p) { return p.param; });

}  // namespace
}  // namespace vfiokit::eal

// The per-call cost of Container::map/unmap on the host: the real front end
// over the real cdev backend, with a fake kernel behind the syscall seam
// that answers the IOAS ioctls. Each map and each unmap must reach the
// kernel as exactly one ioctl, and unmap-all as one, however many mappings
// there are: no per-call range or capability queries. The same loop runs
// against the real kernel, timed, in vfiokit-bench-vfio (app/bench); this
// binary is also what `valgrind --tool=callgrind` profiles
// (doc/benchmarks.md).
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <string>

#include "backend.hpp"
#include "fake_backend.hpp"
#include "fake_sysfs.hpp"
#include "vfiokit/eal/vfio/vfio.hpp"
#include "vfiokit/uapi/iommufd.hpp"

namespace vfiokit::vfio {
namespace {

constexpr std::uint64_t K = 4096;
constexpr int kIommufd = 1000;  // never a real fd: the fake answers it
constexpr unsigned kMaps = 10000;

// iommufd as far as an IOAS without devices goes: ranges, map, unmap (by
// range and all), destroy. Anything else fails with ENOTTY.
class FakeIommufd final : public Syscalls {
public:
    std::map<unsigned long, unsigned> calls;
    std::map<std::uint64_t, std::uint64_t> mapped;  // iova -> length

    int open(const char*, int) override { return no(); }
    int close(int) override { return 0; }
    int ioctl(int fd, unsigned long req, void* arg) override {
        ++calls[req];
        if (fd != kIommufd)
            return no();
        if (req == uapi::kIommuIoasAlloc) {
            static_cast<uapi::iommu_ioas_alloc*>(arg)->out_ioas_id = 1;
            return 0;
        }
        if (req == uapi::kIommuDestroy)
            return 0;
        if (req == uapi::kIommuIoasIovaRanges) {
            auto* q = static_cast<uapi::iommu_ioas_iova_ranges*>(arg);
            if (q->num_iovas < 1) {
                q->num_iovas = 1;
                errno = EMSGSIZE;
                return -1;
            }
            q->num_iovas = 1;
            auto* r = reinterpret_cast<uapi::iommu_iova_range*>(q->allowed_iovas);
            r->start = 0;
            r->last = (1ULL << 39) - 1;
            q->out_iova_alignment = K;
            return 0;
        }
        if (req == uapi::kIommuIoasMap) {
            auto* m = static_cast<uapi::iommu_ioas_map*>(arg);
            if (!mapped.emplace(m->iova, m->length).second) {
                errno = EEXIST;
                return -1;
            }
            return 0;
        }
        if (req == uapi::kIommuIoasUnmap) {
            auto* u = static_cast<uapi::iommu_ioas_unmap*>(arg);
            std::uint64_t bytes = 0;
            if (u->iova == 0 && u->length == UINT64_MAX) {
                for (const auto& [iova, len] : mapped)
                    bytes += len;
                mapped.clear();
            } else {
                auto it = mapped.find(u->iova);
                if (it == mapped.end() || it->second != u->length) {
                    errno = ENOENT;
                    return -1;
                }
                bytes = it->second;
                mapped.erase(it);
            }
            u->length = bytes;
            return 0;
        }
        return no();
    }
    void* mmap(void*, std::size_t, int, int, int, off_t) override {
        errno = ENOTTY;
        return MAP_FAILED;
    }
    int munmap(void*, std::size_t) override { return no(); }
    int eventfd(unsigned, int) override { return no(); }
    ssize_t pread(int, void*, std::size_t, off_t) override { return no(); }
    ssize_t pwrite(int, const void*, std::size_t, off_t) override { return no(); }
    ssize_t readlink(const char*, char*, std::size_t) override { return no(); }

private:
    static int no() {
        errno = ENOTTY;
        return -1;
    }
};

// Where the tests map from and to.
constexpr std::uint64_t kVa = 0x7f0000000000ULL, kBase = 16ULL << 20;

// A cdev Vfio whose iommufd is the fake above, reached through the
// Syscalls the caller has installed; null (and a test failure) if the
// backend cannot be made.
std::unique_ptr<Vfio> fake_cdev(const vfiokit::testing::FakeSysfs& fs) {
    BackendConfig cfg;
    cfg.iommufd = kIommufd;
    auto b = make_cdev_backend(cfg);
    if (!b) {
        ADD_FAILURE() << b.error().message();
        return nullptr;
    }
    return VfioTesting::make(fs.root(), Mode::cdev, std::move(*b));
}

TEST(MapCost, EachMapAndUnmapIsOneIoctlAndUnmapAllIsOne) {
    FakeIommufd kernel;
    ScopedSyscalls guard(kernel);
    vfiokit::testing::FakeSysfs fs;
    auto vfio = fake_cdev(fs);
    ASSERT_TRUE(vfio);
    Container& c = vfio->default_container();

    kernel.calls.clear();
    for (unsigned i = 0; i < kMaps; ++i)
        ASSERT_TRUE(c.map(kVa + (i % 4) * K, kBase + i * K, K)) << i;
    for (unsigned i = 0; i < kMaps; ++i) {
        auto ok = c.unmap(kBase + i * K, K);
        ASSERT_TRUE(ok) << i << ": " << ok.error().message();
    }
    for (unsigned i = 0; i < kMaps; ++i)
        ASSERT_TRUE(c.map(kVa + (i % 4) * K, kBase + i * K, K)) << i;
    ASSERT_TRUE(c.unmap_all());
    EXPECT_EQ(c.mapping_count(), 0u);
    EXPECT_TRUE(kernel.mapped.empty());
    // 2 x kMaps maps, kMaps unmaps plus the unmap-all, and the IOVA ranges
    // once (cached by the container until a device comes or goes).
    EXPECT_EQ(kernel.calls[uapi::kIommuIoasMap], 2 * kMaps);
    EXPECT_EQ(kernel.calls[uapi::kIommuIoasUnmap], kMaps + 1);
    EXPECT_LE(kernel.calls[uapi::kIommuIoasIovaRanges], 2u);
    unsigned total = 0;
    for (const auto& [req, n] : kernel.calls)
        total += n;
    EXPECT_EQ(total, 3 * kMaps + 1 + kernel.calls[uapi::kIommuIoasIovaRanges]);

    // The front end's own checks still hold: overlap and cutting unmaps.
    ASSERT_TRUE(c.map(kVa, kBase, 2 * K));
    auto dup = c.map(kVa, kBase + K, K);
    ASSERT_FALSE(dup);
    EXPECT_EQ(dup.error().err(), EEXIST);
    auto cut = c.unmap(kBase, K);
    ASSERT_FALSE(cut);
    EXPECT_EQ(cut.error().err(), EINVAL);
    ASSERT_TRUE(c.unmap(kBase, 2 * K));
    vfio.reset();
}

// map() and unmap() take their inline path only for mappings above all
// others and unmaps at either end of the table; the rest goes the general
// way. Both must reach the kernel once per call, with the same table.
TEST(MapCost, MappingsOutOfOrderAreOneIoctlEachToo) {
    FakeIommufd kernel;
    ScopedSyscalls guard(kernel);
    vfiokit::testing::FakeSysfs fs;
    auto vfio = fake_cdev(fs);
    ASSERT_TRUE(vfio);
    Container& c = vfio->default_container();

    kernel.calls.clear();
    // Downwards (each below all others), then into the gaps left.
    for (unsigned i = 8; i-- > 0;)
        ASSERT_TRUE(c.map(kVa, kBase + 2 * i * K, K)) << i;
    for (unsigned i = 0; i < 8; ++i)
        ASSERT_TRUE(c.map(kVa, kBase + (2 * i + 1) * K, K)) << i;
    EXPECT_EQ(kernel.calls[uapi::kIommuIoasMap], 16u);
    EXPECT_EQ(c.mapping_count(), 16u);
    // From the middle outwards (the fake kernel unmaps one mapping a call).
    ASSERT_TRUE(c.unmap(kBase + 7 * K, K));
    ASSERT_TRUE(c.unmap(kBase + 8 * K, K));
    ASSERT_TRUE(c.unmap(kBase + 5 * K, K));
    EXPECT_EQ(kernel.calls[uapi::kIommuIoasUnmap], 3u);
    EXPECT_EQ(c.mapping_count(), 13u);
    EXPECT_FALSE(c.lookup(kBase + 5 * K));
    EXPECT_TRUE(c.lookup(kBase + 6 * K));
    EXPECT_FALSE(c.lookup(kBase + 7 * K));
    EXPECT_EQ(kernel.mapped.size(), 13u);
    ASSERT_TRUE(c.unmap_all());
    EXPECT_TRUE(kernel.mapped.empty());
    vfio.reset();
}

// A map or unmap ioctl that the inline path issues and the kernel fails
// comes back as the backend's error (the ioctl, the range, the hint),
// through the seam, so that fault injection reaches it; the table is
// left as it was.
TEST(MapCost, FailedIoctlsOnTheInlinePathAreTheBackendsErrors) {
    FakeIommufd kernel;
    FaultInjector faults(kernel);
    ScopedSyscalls guard(faults);
    vfiokit::testing::FakeSysfs fs;
    auto vfio = fake_cdev(fs);
    ASSERT_TRUE(vfio);
    Container& c = vfio->default_container();

    ASSERT_TRUE(c.map(kVa, kBase, K));  // the ranges are known from here on
    faults.fail_nth(Call::ioctl, 1, ENOMEM, uapi::kIommuIoasMap);
    auto m = c.map(kVa, kBase + K, K);
    ASSERT_FALSE(m);
    EXPECT_TRUE(faults.fired());
    EXPECT_EQ(m.error().err(), ENOMEM);
    EXPECT_NE(m.error().message().find("IOMMU_IOAS_MAP"), std::string::npos) << m.error().message();
    EXPECT_NE(m.error().message().find("RLIMIT_MEMLOCK"), std::string::npos) << m.error().message();
    EXPECT_EQ(c.mapping_count(), 1u);
    EXPECT_FALSE(c.lookup(kBase + K));

    faults.fail_nth(Call::ioctl, 1, ENOENT, uapi::kIommuIoasUnmap);
    auto u = c.unmap(kBase, K);
    ASSERT_FALSE(u);
    EXPECT_TRUE(faults.fired());
    EXPECT_EQ(u.error().err(), ENOENT);
    EXPECT_NE(u.error().message().find("IOMMU_IOAS_UNMAP"), std::string::npos) << u.error().message();
    EXPECT_EQ(c.mapping_count(), 1u);

    faults.reset();
    ASSERT_TRUE(c.map(kVa, kBase + K, K));
    ASSERT_TRUE(c.unmap(kBase, K));
    ASSERT_TRUE(c.unmap(kBase + K, K));
    EXPECT_EQ(c.mapping_count(), 0u);
    EXPECT_TRUE(kernel.mapped.empty());
    vfio.reset();
}

}  // namespace
}  // namespace vfiokit::vfio

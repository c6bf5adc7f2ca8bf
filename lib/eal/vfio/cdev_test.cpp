// The cdev backends over a fake iommufd behind the syscall seam: what cdev
// no-IOMMU asks the kernel for a physical address
// (IOMMU_IOAS_NOIOMMU_GET_PA), and how it reads the answers and the
// kernel's errnos (iommufd/ioas.c iommufd_ioas_noiommu_get_pa,
// io_pagetable.c iopt_get_phys). The real kernel answers in the lab
// (tests/lab/vfio/core_test.cpp, Core.CdevNoiommuPhysicalAddressesMatchPagemap).
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "backend.hpp"
#include "vfiokit/uapi/iommufd.hpp"

namespace vfiokit::vfio {
namespace {

// An iommufd (fd 40) with IOAS 7. GET_PA answers `phys` and `len` (capped
// at the length asked), or fails with `err`; every GET_PA is recorded.
class FakeIommufd : public Syscalls {
public:
    static constexpr int kFd = 40;
    int err = 0;
    std::uint64_t phys = 0x12340000, len = 4096;
    std::vector<uapi::iommu_ioas_noiommu_get_pa> asked;
    unsigned destroyed = 0;

    int open(const char*, int) override { return -1; }
    int close(int) override { return 0; }
    int ioctl(int fd, unsigned long req, void* arg) override {
        if (fd != kFd) {
            errno = EBADF;
            return -1;
        }
        if (req == uapi::kIommuIoasAlloc) {
            static_cast<uapi::iommu_ioas_alloc*>(arg)->out_ioas_id = 7;
            return 0;
        }
        if (req == uapi::kIommuDestroy) {
            ++destroyed;
            return 0;
        }
        if (req == uapi::kIommuIoasNoiommuGetPa) {
            auto* q = static_cast<uapi::iommu_ioas_noiommu_get_pa*>(arg);
            asked.push_back(*q);
            if (err != 0) {
                errno = err;
                return -1;
            }
            q->out_phys = phys;
            q->length = std::min(q->length, len);
            return 0;
        }
        errno = ENOTTY;
        return -1;
    }
    void* mmap(void*, std::size_t, int, int, int, off_t) override { return nullptr; }
    int munmap(void*, std::size_t) override { return 0; }
    int eventfd(unsigned, int) override { return -1; }
    ssize_t pread(int, void*, std::size_t, off_t) override { return -1; }
    ssize_t pwrite(int, const void*, std::size_t, off_t) override { return -1; }
    ssize_t readlink(const char*, char*, std::size_t) override { return -1; }
};

class CdevOnFake : public ::testing::Test {
protected:
    std::unique_ptr<ContainerBackend> make(bool noiommu) {
        BackendConfig c;
        c.iommufd = FakeIommufd::kFd;
        auto b = noiommu ? make_cdev_noiommu_backend(c) : make_cdev_backend(c);
        EXPECT_TRUE(b) << b.error().message();
        return b ? std::move(*b) : nullptr;
    }
    FakeIommufd k;
    ScopedSyscalls seam{k};
};

TEST_F(CdevOnFake, NoiommuContainerPinsWithoutTranslating) {
    auto b = make(true);
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(b->mode(), Mode::cdev_noiommu);
    EXPECT_FALSE(b->translates());
    EXPECT_TRUE(b->maps_memory());
    EXPECT_NE(b->describe().find("IOAS 7 without translation"), std::string::npos)
        << b->describe();
    auto cdev = make(false);
    ASSERT_NE(cdev, nullptr);
    EXPECT_TRUE(cdev->translates());
    auto refused = cdev->physical_address(0x100000, 4096);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().err(), ENOTSUP);
    EXPECT_TRUE(k.asked.empty()) << "cdev mode never asks the kernel";
}

TEST_F(CdevOnFake, AsksTheKernelWithTheIoasAndReadsItsAnswer) {
    auto b = make(true);
    ASSERT_NE(b, nullptr);
    auto p = b->physical_address(0x200080, 1 << 20);
    ASSERT_TRUE(p) << p.error().message();
    EXPECT_EQ(*p, (PhysicalRange{0x12340000, 4096}));
    ASSERT_EQ(k.asked.size(), 1u);
    const auto& q = k.asked.front();
    EXPECT_EQ(q.size, sizeof(uapi::iommu_ioas_noiommu_get_pa));
    EXPECT_EQ(q.flags, 0u);
    EXPECT_EQ(q.__reserved, 0u);
    EXPECT_EQ(q.ioas_id, 7u);
    EXPECT_EQ(q.iova, 0x200080u);
    EXPECT_EQ(q.length, 1u << 20);
    // Length 0 is refused before the kernel, which would say EINVAL.
    EXPECT_EQ(b->physical_address(0x200000, 0).error().err(), EINVAL);
    EXPECT_EQ(k.asked.size(), 1u);
    // A length the kernel cannot have meant (0, or more than asked).
    k.len = 0;
    auto zero = b->physical_address(0x200000, 4096);
    ASSERT_FALSE(zero);
    EXPECT_EQ(zero.error().err(), EIO);
}

TEST_F(CdevOnFake, KernelErrnosBecomeReasons) {
    auto b = make(true);
    ASSERT_NE(b, nullptr);
    struct Case {
        int kernel;
        int want;
        const char* says;
    };
    const Case cases[] = {
        // No no-IOMMU page table under the mapping: no device attached.
        {EOPNOTSUPP, EAGAIN, "only while a device is attached"},
        {EPERM, EPERM, "CAP_SYS_RAWIO"},
        {ENOENT, ENOENT, "nothing is mapped at this IOVA"},
        {ENOTTY, ENOTTY, "Linux 7.3+"},
    };
    for (const Case& c : cases) {
        k.err = c.kernel;
        auto r = b->physical_address(0x300000, 4096);
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().err(), c.want) << r.error().message();
        EXPECT_NE(r.error().message().find(c.says), std::string::npos) << r.error().message();
        EXPECT_NE(r.error().message().find("IOAS 7"), std::string::npos) << r.error().message();
        EXPECT_NE(r.error().message().find("0x300000"), std::string::npos) << r.error().message();
    }
}

}  // namespace
}  // namespace vfiokit::vfio

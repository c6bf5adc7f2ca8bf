// Capability chains of VFIO_DEVICE_GET_REGION_INFO and VFIO_IOMMU_GET_INFO
// (lib/eal/vfio/caps.hpp), read by the real readers (KernelDevice::
// region_info, query_iommu_info) from a fake kernel installed through the
// syscall seam. The kernel's answer is the input; it may lie about the
// size it needs, point the chain anywhere and grow between calls. Every
// lie must end in an error, never in a read outside the buffer or a loop.
//
// Input: one byte of choices, a 32-bit size the kernel claims (when the
// choice says so), then the reply: the info struct and its chain.
#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "caps.hpp"
#include "fuzz_util.hpp"
#include "group_style.hpp"
#include "kernel_device.hpp"
#include "vfiokit/eal/vfio/syscalls.hpp"
#include "vfiokit/uapi/vfio.hpp"

using namespace vfiokit;
using namespace vfiokit::vfio;

namespace {

constexpr int kFd = 42;

// Answers the two info ioctls as vfio-pci and type1 do (see caps.hpp),
// from the input: the whole reply when argsz has room for `need`, else
// argsz raised to `need` and cap_offset 0. With `grow`, each call needs 8
// bytes more than the last (a chain that never settles: EAGAIN).
class LyingKernel final : public Syscalls {
public:
    std::vector<std::uint8_t> reply;
    std::uint32_t need = 0;
    bool grow = false;
    unsigned calls = 0;
    std::uint32_t largest = 0;  // the largest buffer (argsz) the reader gave

    int open(const char*, int) override { return errno = ENOENT, -1; }
    int close(int) override { return 0; }
    int ioctl(int fd, unsigned long req, void* arg) override {
        ++calls;
        if (fd != kFd || (req != uapi::kVfioDeviceGetRegionInfo && req != uapi::kVfioIommuGetInfo))
            return errno = ENOTTY, -1;
        // Both structs start with argsz, flags; the offset of cap_offset differs.
        const std::size_t cap_at = req == uapi::kVfioDeviceGetRegionInfo
                                       ? offsetof(uapi::vfio_region_info, cap_offset)
                                       : offsetof(uapi::vfio_iommu_type1_info, cap_offset);
        const std::size_t head = req == uapi::kVfioDeviceGetRegionInfo
                                     ? sizeof(uapi::vfio_region_info)
                                     : sizeof(uapi::vfio_iommu_type1_info);
        std::uint32_t argsz;
        std::memcpy(&argsz, arg, sizeof argsz);
        largest = std::max(largest, argsz);
        std::vector<std::uint8_t> r = reply;
        r.resize(std::max(r.size(), head), 0);
        const std::uint32_t needed = need + (grow ? 8 * calls : 0);
        if (argsz < needed) {
            // Only the fixed part is written back, argsz raised, no chain.
            std::memcpy(r.data(), &needed, sizeof needed);
            std::memset(r.data() + cap_at, 0, sizeof(std::uint32_t));
            std::memcpy(arg, r.data(), std::min<std::size_t>(head, argsz));
            return 0;
        }
        std::memcpy(r.data(), &argsz, sizeof argsz);
        std::memcpy(arg, r.data(), std::min<std::size_t>(r.size(), argsz));
        return 0;
    }
    void* mmap(void*, std::size_t, int, int, int, off_t) override {
        return errno = ENODEV, MAP_FAILED;
    }
    int munmap(void*, std::size_t) override { return errno = EINVAL, -1; }
    int eventfd(unsigned, int) override { return errno = EMFILE, -1; }
    ssize_t pread(int, void*, std::size_t, off_t) override { return errno = EIO, -1; }
    ssize_t pwrite(int, const void*, std::size_t, off_t) override { return errno = EIO, -1; }
    ssize_t readlink(const char*, char*, std::size_t) override { return errno = ENOENT, -1; }
};

struct Dev final : vfio::detail::KernelDevice {
    [[nodiscard]] int fd() const override { return kFd; }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const bool quiet = fuzz::quiet_logs();
    (void)quiet;
    fuzz::Input in(data, size);
    const std::uint8_t choice = in.u8();
    LyingKernel k;
    k.grow = (choice & 2) != 0;
    std::uint32_t claimed = in.u16();
    claimed |= static_cast<std::uint32_t>(in.u16()) << 16;
    const auto rest = in.rest();
    k.reply.assign(rest.begin(), rest.end());
    k.need = (choice & 4) != 0 ? claimed : static_cast<std::uint32_t>(k.reply.size());
    ScopedSyscalls seam(k);

    if ((choice & 1) == 0) {
        Dev dev;
        auto r = dev.region_info(0);
        // Where the areas were read from is ASan's to check (InfoBuffer is
        // a heap allocation of the size the kernel asked for). Their number
        // is not bounded by the buffer: a chain may repeat the sparse-mmap
        // capability, each copy inside the buffer, and the reader keeps
        // the areas of every copy.
        if (!r)
            FUZZ_CHECK(!r.error().message().empty(), "a refusal without a reason");
    } else {
        auto r = vfio::detail::query_iommu_info(kFd, (choice & 8) == 0);
        if (r && r->ranges)
            FUZZ_CHECK(r->ranges->size() * sizeof(uapi::vfio_iova_range) <= k.largest,
                       "%zu IOVA ranges from a %u-byte buffer", r->ranges->size(), k.largest);
        else if (!r)
            FUZZ_CHECK(!r.error().message().empty(), "a refusal without a reason");
    }
    // The first call, and at most three more (caps.hpp).
    FUZZ_CHECK(k.calls <= 4, "%u ioctls for one info struct", k.calls);
    return 0;
}

#include "raw_baseline.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/memfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string_view>

#include "vfiokit/eal/vfio/syscalls.hpp"
#include "vfiokit/uapi/iommufd.hpp"
#include "vfiokit/uapi/vfio.hpp"

namespace vfiokit::bench {

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::uint64_t kHugepage = 2ULL << 20;

// Teardown order matters to the kernel: the device fd goes before the group
// (or the iommufd it is bound to), the group before the container, and the
// mapping before the memfd. Members are destroyed in reverse order.
struct Resources {
    vfio::Fd memfd;
    vfio::Mapping mem;
    vfio::Fd container;  // /dev/vfio/vfio or /dev/iommu
    vfio::Fd group;
    vfio::Fd device;
};

// Plain ioctl, counted; the error names the request.
Result<int> counted_ioctl(RawRun& r, int fd, unsigned long req, void* arg, std::string_view what) {
    ++r.ioctls;
    if (req == uapi::kVfioIommuMapDma || req == uapi::kIommuIoasMap)
        ++r.map_ioctls;
    int rc = ::ioctl(fd, req, arg);
    if (rc < 0)
        return fail(errno, std::string(what));
    return rc;
}

Result<vfio::Fd> open_path(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return fail(errno, "open " + path);
    return vfio::Fd(fd);
}

// The hugepage memory, populated (the same calls vfiokit's Memory makes).
Result<void> map_hugepages(Resources& res, std::uint64_t bytes, std::uint64_t va) {
    int fd = ::memfd_create("vfiokit-bench-raw", MFD_CLOEXEC | MFD_HUGETLB | MFD_HUGE_2MB);
    if (fd < 0)
        return fail(errno, "memfd_create(MFD_HUGETLB)");
    res.memfd = vfio::Fd(fd);
    if (::ftruncate(fd, static_cast<off_t>(bytes)) != 0)
        return fail(errno, "ftruncate");
    void* p = ::mmap(reinterpret_cast<void*>(va), bytes, PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_POPULATE | MAP_FIXED_NOREPLACE, fd, 0);
    if (p == MAP_FAILED)
        return fail(Error(errno, "mmap " + std::to_string(bytes >> 20) + " MiB of hugepages")
                        .hint("free 2 MiB hugepages: /sys/kernel/mm/hugepages/hugepages-2048kB"));
    res.mem = vfio::Mapping(p, bytes);
    return {};
}

Result<std::string> group_of(const std::string& bdf) {
    const std::string link = "/sys/bus/pci/devices/" + bdf + "/iommu_group";
    char buf[256];
    ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
    if (n < 0)
        return fail(Error(errno, "readlink " + link).hint("no IOMMU, or no such device"));
    std::string_view target(buf, static_cast<std::size_t>(n));
    return std::string(target.substr(target.rfind('/') + 1));
}

Result<std::string> cdev_of(const std::string& bdf) {
    const std::string dir = "/sys/bus/pci/devices/" + bdf + "/vfio-dev";
    DIR* d = ::opendir(dir.c_str());
    if (!d)
        return fail(Error(errno, "opendir " + dir).hint("bind the device to vfio-pci"));
    std::string name;
    while (dirent* e = ::readdir(d))
        if (std::string_view(e->d_name).starts_with("vfio"))
            name = e->d_name;
    ::closedir(d);
    if (name.empty())
        return fail(ENOENT, "no vfioN in " + dir);
    return name;
}

Result<void> group_sequence(Resources& res, RawRun& r, const std::string& bdf,
                            std::uint64_t bytes, std::uint64_t va) {
    auto group = group_of(bdf);
    if (!group)
        return fail(std::move(group.error()));
    auto c = open_path("/dev/vfio/vfio");
    if (!c)
        return fail(std::move(c.error()));
    res.container = std::move(*c);
    auto g = open_path("/dev/vfio/" + *group);
    if (!g)
        return fail(std::move(g.error()));
    res.group = std::move(*g);
    int cfd = res.container.get();
    if (auto ok = counted_ioctl(r, res.group.get(), uapi::kVfioGroupSetContainer, &cfd,
                                "VFIO_GROUP_SET_CONTAINER");
        !ok)
        return fail(std::move(ok.error()));
    // VFIO_SET_IOMMU takes the model id as the argument itself, not a pointer.
    if (auto ok = counted_ioctl(r, cfd, uapi::kVfioSetIommu,
                                reinterpret_cast<void*>(static_cast<std::uintptr_t>(uapi::kVfioType1v2Iommu)),
                                "VFIO_SET_IOMMU(type1v2)");
        !ok)
        return fail(std::move(ok.error()));
    uapi::vfio_iommu_type1_dma_map map{};
    map.argsz = sizeof map;
    map.flags = uapi::kVfioDmaMapFlagRead | uapi::kVfioDmaMapFlagWrite;
    map.vaddr = va;
    map.iova = va;
    map.size = bytes;
    if (auto ok = counted_ioctl(r, cfd, uapi::kVfioIommuMapDma, &map, "VFIO_IOMMU_MAP_DMA"); !ok)
        return fail(std::move(ok.error()));
    auto dev = counted_ioctl(r, res.group.get(), uapi::kVfioGroupGetDeviceFd,
                             const_cast<char*>(bdf.c_str()), "VFIO_GROUP_GET_DEVICE_FD");
    if (!dev)
        return fail(std::move(dev.error()));
    res.device = vfio::Fd(*dev);
    return {};
}

Result<void> cdev_sequence(Resources& res, RawRun& r, const std::string& bdf,
                           std::uint64_t bytes, std::uint64_t va) {
    auto i = open_path("/dev/iommu");
    if (!i)
        return fail(std::move(i.error()));
    res.container = std::move(*i);
    const int ifd = res.container.get();
    uapi::iommu_ioas_alloc alloc{};
    alloc.size = sizeof alloc;
    if (auto ok = counted_ioctl(r, ifd, uapi::kIommuIoasAlloc, &alloc, "IOMMU_IOAS_ALLOC"); !ok)
        return fail(std::move(ok.error()));
    uapi::iommu_ioas_map map{};
    map.size = sizeof map;
    map.flags = uapi::kIommuIoasMapFixedIova | uapi::kIommuIoasMapReadable |
                uapi::kIommuIoasMapWriteable;
    map.ioas_id = alloc.out_ioas_id;
    map.user_va = va;
    map.length = bytes;
    map.iova = va;
    if (auto ok = counted_ioctl(r, ifd, uapi::kIommuIoasMap, &map, "IOMMU_IOAS_MAP"); !ok)
        return fail(std::move(ok.error()));
    auto name = cdev_of(bdf);
    if (!name)
        return fail(std::move(name.error()));
    auto d = open_path("/dev/vfio/devices/" + *name);
    if (!d)
        return fail(std::move(d.error()));
    res.device = std::move(*d);
    uapi::vfio_device_bind_iommufd bind{};
    bind.argsz = sizeof bind;
    bind.iommufd = ifd;
    if (auto ok = counted_ioctl(r, res.device.get(), uapi::kVfioDeviceBindIommufd, &bind,
                                "VFIO_DEVICE_BIND_IOMMUFD");
        !ok)
        return fail(std::move(ok.error()));
    uapi::vfio_device_attach_iommufd_pt attach{};
    attach.argsz = sizeof attach;
    attach.pt_id = alloc.out_ioas_id;
    if (auto ok = counted_ioctl(r, res.device.get(), uapi::kVfioDeviceAttachIommufdPt, &attach,
                                "VFIO_DEVICE_ATTACH_IOMMUFD_PT");
        !ok)
        return fail(std::move(ok.error()));
    return {};
}

}  // namespace

Result<RawRun> run_raw(RawMode mode, const std::string& bdf, std::uint64_t bytes, std::uint64_t va) {
    bytes = (bytes + kHugepage - 1) / kHugepage * kHugepage;
    RawRun r;
    Resources res;
    const auto t0 = Clock::now();
    auto ok = map_hugepages(res, bytes, va);
    if (ok)
        ok = mode == RawMode::cdev ? cdev_sequence(res, r, bdf, bytes, va)
                                   : group_sequence(res, r, bdf, bytes, va);
    const auto t1 = Clock::now();
    if (!ok)
        return fail(std::move(ok.error().context(std::string("raw ") +
                                                 (mode == RawMode::cdev ? "cdev" : "group") +
                                                 " sequence for " + bdf)));
    r.ns = static_cast<std::uint64_t>(std::chrono::nanoseconds(t1 - t0).count());
    return r;
}

}  // namespace vfiokit::bench

#include "vfio_raw.hpp"

#include <fcntl.h>
#include <unistd.h>

#include "vfiokit/eal/sysfs.hpp"

namespace vfiokit::bench {

namespace {

Result<vfio::Fd> open_path(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return fail(errno, "open " + path);
    return vfio::Fd(fd);
}

Result<void> raw_ioctl(int fd, unsigned long req, void* arg, const char* what) {
    if (::ioctl(fd, req, arg) < 0)
        return fail(errno, std::string("ioctl ") + what);
    return {};
}

void* int_arg(int v) { return reinterpret_cast<void*>(static_cast<std::uintptr_t>(v)); }

}  // namespace

Result<RawSetup> raw_setup(const ModeCase& m, bool attach, const std::string& bdf) {
    RawSetup s;
    sysfs::Root root;
    const std::string dev = "/sys/bus/pci/devices/" + bdf;
    if (m.ioas) {
        auto i = open_path("/dev/iommu");
        if (!i)
            return fail(std::move(i.error()));
        s.container = std::move(*i);
        uapi::iommu_ioas_alloc a{};
        a.size = sizeof a;
        if (auto ok = raw_ioctl(s.container.get(), uapi::kIommuIoasAlloc, &a, "IOMMU_IOAS_ALLOC"); !ok)
            return fail(std::move(ok.error()));
        s.ioas = a.out_ioas_id;
        if (!attach)
            return s;
        const auto names = root.list(dev + "/vfio-dev");
        if (names.empty())
            return fail(Error(ENOENT, "no vfio-dev/vfioN under " + dev).hint("bind it to vfio-pci"));
        auto d = open_path("/dev/vfio/devices/" + names.front());
        if (!d)
            return fail(std::move(d.error()));
        s.device = std::move(*d);
        uapi::vfio_device_bind_iommufd b{};
        b.argsz = sizeof b;
        b.iommufd = s.container.get();
        if (auto ok = raw_ioctl(s.device.get(), uapi::kVfioDeviceBindIommufd, &b,
                                "VFIO_DEVICE_BIND_IOMMUFD");
            !ok)
            return fail(std::move(ok.error()));
        uapi::vfio_device_attach_iommufd_pt at{};
        at.argsz = sizeof at;
        at.pt_id = s.ioas;
        if (auto ok = raw_ioctl(s.device.get(), uapi::kVfioDeviceAttachIommufdPt, &at,
                                "VFIO_DEVICE_ATTACH_IOMMUFD_PT");
            !ok)
            return fail(std::move(ok.error()));
        return s;
    }
    const auto group = root.link_name(dev + "/iommu_group");
    if (!group)
        return fail(Error(ENOENT, "no IOMMU group for " + bdf).hint("boot with an IOMMU"));
    auto c = open_path(m.node);
    if (!c)
        return fail(std::move(c.error()));
    s.container = std::move(*c);
    auto g = open_path("/dev/vfio/" + *group);
    if (!g)
        return fail(std::move(g.error()));
    s.group = std::move(*g);
    int cfd = s.container.get();
    if (auto ok = raw_ioctl(s.group.get(), uapi::kVfioGroupSetContainer, &cfd,
                            "VFIO_GROUP_SET_CONTAINER");
        !ok)
        return fail(std::move(ok.error()));
    if (auto ok = raw_ioctl(cfd, uapi::kVfioSetIommu, int_arg(m.model), "VFIO_SET_IOMMU"); !ok)
        return fail(std::move(ok.error()));
    int d = ::ioctl(s.group.get(), uapi::kVfioGroupGetDeviceFd, bdf.c_str());
    if (d < 0)
        return fail(errno, "ioctl VFIO_GROUP_GET_DEVICE_FD " + bdf);
    s.device = vfio::Fd(d);
    return s;
}

}  // namespace vfiokit::bench

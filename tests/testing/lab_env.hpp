// What a lab test program needs to know about where it runs: the VFIO mode
// and lab shape the job chose (environment), a label for test names, and
// the process's open fd count (to prove nothing leaked), dropping a
// capability, and the program's own path (to exec itself as a secondary).
// Header-only; tests only.
#pragma once

#include <dirent.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace vfiokit::testing {

inline std::string env(const char* name, const char* fallback = "") {
    const char* v = std::getenv(name);
    return v && *v ? v : fallback;
}

// VFIOKIT_LAB_SHAPE: "iommu" (default), "noiommu" or "numa" (see doc/lab.md).
inline std::string shape() { return env("VFIOKIT_LAB_SHAPE", "iommu"); }
// Whether an IOMMU translates in this shape (every shape but noiommu).
inline bool iommu_shape() { return shape() != "noiommu"; }

// The mode under test as test names carry it: cdev, group_type1v2,
// group_type1, compat_type1v2, noiommu, cdev_noiommu, auto (gtest names
// take no dashes).
inline std::string mode_label() {
    std::string m = env("VFIOKIT_VFIO_MODE", "auto");
    if (m == "group" || m == "compat")
        m += "_type1" + std::string(env("VFIOKIT_VFIO_TYPE1", "auto") == "v1" ? "" : "v2");
    for (char& c : m)
        if (c == '-')
            c = '_';
    return m;
}

// The running kernel's version (uname's release, "7.3.4+deb13-amd64" ->
// {7, 3}), for expectations that follow what each kernel's source does.
// {0, 0} when the release cannot be read.
struct KernelVersion {
    int major = 0;
    int minor = 0;
    [[nodiscard]] bool at_least(int ma, int mi) const {
        return major > ma || (major == ma && minor >= mi);
    }
    [[nodiscard]] std::string str() const {
        return std::to_string(major) + "." + std::to_string(minor);
    }
};
inline KernelVersion kernel_version() {
    KernelVersion v;
    utsname u{};
    if (::uname(&u) != 0 || std::sscanf(u.release, "%d.%d", &v.major, &v.minor) != 2)
        return {};
    return v;
}

// This program's path (the /proc/self/exe link), for a test that runs
// itself again in another role; "" when the link cannot be read.
inline std::string self_exe() {
    char exe[4096];
    const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
    return n > 0 ? std::string(exe, static_cast<std::size_t>(n)) : std::string();
}

// Entries of /proc/self/fd, not counting the one used to read it.
inline int open_fds() {
    int n = 0;
    DIR* d = opendir("/proc/self/fd");
    if (d == nullptr)
        return -1;
    while (dirent* e = readdir(d))
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1;
}

// Drops capability `cap` (CAP_SYS_RAWIO, ...) from this process's
// effective and permitted sets: for a forked child, which then sees what a
// process without it sees. Exits the process (90, 91) if the kernel
// refuses.
inline void drop_capability(int cap) {
    __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    if (::syscall(SYS_capget, &hdr, data) != 0)
        std::_Exit(90);
    data[cap / 32].effective &= ~(1u << (cap % 32));
    data[cap / 32].permitted &= ~(1u << (cap % 32));
    if (::syscall(SYS_capset, &hdr, data) != 0)
        std::_Exit(91);
}

}  // namespace vfiokit::testing

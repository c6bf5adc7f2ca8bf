#include "huge_dir.hpp"
#include "../process.hpp"

#include <dirent.h>
#include <linux/magic.h>
#include <signal.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <string_view>
#include <cstdio>
#include <string>

namespace vfiokit::eal::detail {

namespace {

// statfs(2)'s f_type for the filesystems a user is likely to give by
// mistake, so the message can name what it found.
std::string fs_name(unsigned long type) {
    switch (type) {
    case TMPFS_MAGIC: return "tmpfs";
    case EXT4_SUPER_MAGIC: return "ext2/3/4";
    case XFS_SUPER_MAGIC: return "xfs";
    case BTRFS_SUPER_MAGIC: return "btrfs";
    case OVERLAYFS_SUPER_MAGIC: return "overlayfs";
    case NFS_SUPER_MAGIC: return "nfs";
    case RAMFS_MAGIC: return "ramfs";
    case SYSFS_MAGIC: return "sysfs";
    case PROC_SUPER_MAGIC: return "proc";
    default: break;
    }
    char hex[32];
    std::snprintf(hex, sizeof hex, "0x%lx", type);
    return std::string("a filesystem of type ") + hex;
}

std::string size_text(std::uint64_t n) {
    return n >= (1ULL << 20) ? std::to_string(n >> 20) + " MiB" : std::to_string(n >> 10) + " KiB";
}

// hugetlbfs's pagesize= mount option: "2M", "1G".
std::string mount_size(std::uint64_t n) {
    if (n >= (1ULL << 30) && n % (1ULL << 30) == 0)
        return std::to_string(n >> 30) + "G";
    if (n >= (1ULL << 20) && n % (1ULL << 20) == 0)
        return std::to_string(n >> 20) + "M";
    return std::to_string(n >> 10) + "K";
}

}  // namespace

Result<void> check_huge_dir(const std::string& dir, std::uint64_t page_size) {
    struct statfs st {};
    if (::statfs(dir.c_str(), &st) != 0)
        return fail(Error(errno, "--huge-dir " + dir).hint("give a hugetlbfs mount point"));
    const auto type = static_cast<unsigned long>(st.f_type);
    if (type != HUGETLBFS_MAGIC)
        return fail(Error(EINVAL, "--huge-dir " + dir + " is on " + fs_name(type) +
                                      ", not hugetlbfs")
                        .hint("mount one: mount -t hugetlbfs -o pagesize=" + mount_size(page_size) +
                              " none " + dir));
    if (static_cast<std::uint64_t>(st.f_bsize) != page_size)
        return fail(Error(EINVAL, "--huge-dir " + dir + " holds " +
                                      size_text(static_cast<std::uint64_t>(st.f_bsize)) +
                                      " pages, and memory uses " + size_text(page_size) + " pages")
                        .hint("mount a hugetlbfs with -o pagesize=" + mount_size(page_size) +
                              " (the size memory uses: the first hugepage size with pages "
                              "reserved) and give that"));
    return {};
}

unsigned remove_stale_files(const std::string& dir) {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr)
        return 0;
    unsigned removed = 0;
    while (const dirent* e = ::readdir(d)) {
        const std::string_view name = e->d_name;
        if (!name.starts_with("vfiokit-"))
            continue;
        const std::string_view rest = name.substr(8);
        long pid = 0;
        auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), pid);
        if (ec != std::errc() || end == rest.data() || *end != '-' || pid <= 0)
            continue;
        if (process_alive(static_cast<pid_t>(pid)))
            continue;
        if (::unlinkat(::dirfd(d), e->d_name, 0) == 0)
            ++removed;
    }
    ::closedir(d);
    return removed;
}

}  // namespace vfiokit::eal::detail

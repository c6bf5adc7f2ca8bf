#include "vfiokit/eal/format.hpp"
#include "vfiokit/eal/pagemap.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>

#include "vfiokit/eal/vfio/syscalls.hpp"

namespace vfiokit::eal {

namespace {

// Documentation/admin-guide/mm/pagemap.rst.
constexpr std::uint64_t kPresent = 1ULL << 63;
constexpr std::uint64_t kPfnMask = (1ULL << 55) - 1;

}  // namespace

Result<std::uint64_t> virt_to_phys(const void* va) {
    const auto addr = reinterpret_cast<std::uintptr_t>(va);
    const std::string what = "virtual address " + hex(addr);
    const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));

    auto fd = vfio::open_fd("/proc/self/pagemap", O_RDONLY);
    if (!fd) {
        Error e = std::move(fd.error());
        // 0400 and owned by the process; a process that changed its
        // credentials is non-dumpable and finds it root-owned.
        if (e.err() == EACCES || e.err() == EPERM)
            e.hint("physical addresses need root (CAP_SYS_ADMIN)");
        return fail(std::move(e).context(what));
    }
    std::uint64_t entry = 0;
    const auto off = static_cast<off_t>(addr / page * sizeof entry);
    const ssize_t n = vfio::sys().pread(fd->get(), &entry, sizeof entry, off);
    if (n < 0)
        return fail(Error(errno, "pread /proc/self/pagemap").context(what));
    if (n != static_cast<ssize_t>(sizeof entry))
        return fail(Error(EIO, "pread /proc/self/pagemap: short read").context(what));

    if ((entry & kPresent) == 0)
        return fail(Error(EFAULT, "page not present in /proc/self/pagemap")
                        .context(what)
                        .hint("touch the page first, and pin it for DMA (hugetlbfs or mlock)"));
    const std::uint64_t pfn = entry & kPfnMask;
    // pagemap.rst: "Starting from 4.2 the PFN field is zeroed if the user
    // does not have CAP_SYS_ADMIN"; page frame 0 is never user memory.
    if (pfn == 0)
        return fail(Error(EPERM, "physical addresses need root (CAP_SYS_ADMIN): "
                                 "/proc/self/pagemap hides PFNs")
                        .context(what));
    return pfn * page + addr % page;
}

}  // namespace vfiokit::eal

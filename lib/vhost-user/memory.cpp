#include "memory.hpp"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "vfiokit/eal/format.hpp"

namespace vfiokit::vhost_user {

namespace {

// Whether [start, start+len) passes 2^64; len > 0.
bool wraps(std::uint64_t start, std::uint64_t len) { return len - 1 > UINT64_MAX - start; }

// Whether two nonempty ranges that do not wrap share a byte.
bool overlap(std::uint64_t a, std::uint64_t alen, std::uint64_t b, std::uint64_t blen) {
    return a <= b + (blen - 1) && b <= a + (alen - 1);
}

std::string region_text(std::size_t i) { return "region " + std::to_string(i); }

Result<void> check(std::span<const MemoryRegionDesc> d) {
    for (std::size_t i = 0; i < d.size(); ++i) {
        const auto& r = d[i];
        if (r.size == 0)
            return fail(0, region_text(i) + ": size 0");
        if (wraps(r.guest_addr, r.size))
            return fail(0, region_text(i) + ": guest addresses " + hex(r.guest_addr) + " + " +
                               hex(r.size) + " wrap past 2^64");
        if (wraps(r.user_addr, r.size))
            return fail(0, region_text(i) + ": user addresses " + hex(r.user_addr) + " + " +
                               hex(r.size) + " wrap past 2^64");
        if (wraps(r.mmap_offset, r.size) || r.mmap_offset + r.size - 1 > INT64_MAX)
            return fail(0, region_text(i) + ": mmap offset " + hex(r.mmap_offset) + " + " +
                               hex(r.size) + " is past any file");
        for (std::size_t j = 0; j < i; ++j) {
            const auto& o = d[j];
            if (overlap(r.guest_addr, r.size, o.guest_addr, o.size))
                return fail(0, region_text(i) + " guest " + range_text(r.guest_addr, r.size) +
                                   " overlaps " + region_text(j) + " guest " +
                                   range_text(o.guest_addr, o.size));
            if (overlap(r.user_addr, r.size, o.user_addr, o.size))
                return fail(0, region_text(i) + " user " + range_text(r.user_addr, r.size) +
                                   " overlaps " + region_text(j) + " user " +
                                   range_text(o.user_addr, o.size));
        }
    }
    return {};
}

}  // namespace

Result<MemoryTable> MemoryTable::map(std::span<const MemoryRegionDesc> descs,
                                     std::vector<vfio::Fd> fds) {
    MemoryTable t;
    // Owned from the start: every error path below closes them.
    t.fds_ = std::move(fds);
    if (t.fds_.size() != descs.size())
        return fail(0, std::to_string(t.fds_.size()) + " fds for " +
                           std::to_string(descs.size()) + " regions");
    if (auto c = check(descs); !c)
        return fail(std::move(c.error()));
    for (std::size_t i = 0; i < descs.size(); ++i) {
        const auto& d = descs[i];
        const int fd = t.fds_[i].get();
        struct stat st{};
        if (::fstat(fd, &st) != 0)
            return fail(errno, region_text(i) + ": fstat");
        // A mapping past the end of a file, or of a file that shrinks,
        // raises SIGBUS on access; only regular files have a size to check.
        if (!S_ISREG(st.st_mode))
            return fail(0, region_text(i) + ": the fd is not a regular file (memfd, hugetlbfs "
                                            "or tmpfs)");
        if (static_cast<std::uint64_t>(st.st_size) < d.mmap_offset + d.size)
            return fail(0, region_text(i) + ": the file has " + hex(st.st_size) +
                               " bytes, the region needs " + hex(d.mmap_offset + d.size));
        // Map from an offset and length aligned to the file's block size:
        // hugetlbfs files only map in whole huge pages (st_blksize).
        const std::uint64_t blk =
            st.st_blksize > 0 ? static_cast<std::uint64_t>(st.st_blksize) : 4096;
        const std::uint64_t page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
        const std::uint64_t align = blk > page ? blk : page;
        const std::uint64_t off = d.mmap_offset & ~(align - 1);
        const std::uint64_t len = ((d.mmap_offset - off + d.size) + align - 1) & ~(align - 1);
        auto m = vfio::map_memory(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
                                  static_cast<off_t>(off), region_text(i));
        if (!m)
            return fail(std::move(m.error()));
        Region r;
        r.gpa = d.guest_addr;
        r.size = d.size;
        r.uva = d.user_addr;
        r.mmap_offset = d.mmap_offset;
        r.hva = static_cast<std::uint8_t*>(m->addr()) + (d.mmap_offset - off);
        r.fd = fd;
        t.maps_.push_back(std::move(*m));
        t.regions_.push_back(r);
    }
    return t;
}

std::optional<RingAddr> MemoryTable::translate_uva(std::uint64_t uva, std::uint64_t len) const {
    for (const auto& r : regions_) {
        if (uva >= r.uva && len <= r.size && uva - r.uva <= r.size - len) {
            const std::uint64_t off = uva - r.uva;
            return RingAddr{uva, r.gpa + off, static_cast<std::uint8_t*>(r.hva) + off};
        }
    }
    return std::nullopt;
}

void* gpa_to_hva(std::span<const Region> regions, std::uint64_t gpa, std::uint64_t len) {
    for (const auto& r : regions) {
        if (gpa >= r.gpa && len <= r.size && gpa - r.gpa <= r.size - len)
            return static_cast<std::uint8_t*>(r.hva) + (gpa - r.gpa);
    }
    return nullptr;
}

std::string_view to_string(StopReason r) {
    switch (r) {
    case StopReason::get_vring_base: return "get-vring-base";
    case StopReason::disabled: return "disabled";
    case StopReason::reconfigured: return "reconfigured";
    case StopReason::disconnect: return "disconnect";
    }
    return "?";
}

}  // namespace vfiokit::vhost_user

// The front end's memory table: each region checked, its fd mapped, and
// addresses translated. Private to lib/vhost-user.
//
// Ownership: a MemoryTable owns its regions' fds and mappings; both go when
// it is destroyed. Region::hva and Region::fd point into it.
// Errors: err 0 for a table that breaks a rule (the op names the region and
// the rule), the errno of fstat/mmap otherwise. A failed map() leaves
// nothing mapped and closes every fd it was given.
// Thread-safety: const methods may be called from any thread while no
// thread replaces the table.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "vfiokit/eal/error.hpp"
#include "vfiokit/eal/vfio/syscalls.hpp"
#include "vfiokit/vhost_user/device.hpp"
#include "vfiokit/vhost_user/protocol.hpp"

namespace vfiokit::vhost_user {

class MemoryTable {
public:
    // Checks, then maps, region i from fds[i]. Rules: nonzero size; no
    // wrap past 2^64 of guest address, user address or mmap offset plus
    // size; no two regions overlapping in guest or user addresses; each fd
    // a regular file (memfd, hugetlbfs, tmpfs) at least mmap offset + size
    // long, so that no access to the mapping can fault.
    [[nodiscard]] static Result<MemoryTable> map(std::span<const MemoryRegionDesc> descs,
                                                 std::vector<vfio::Fd> fds);

    [[nodiscard]] std::span<const Region> regions() const { return regions_; }

    // [uva, uva+len) in one region, in all three address spaces; nullopt
    // when no single region holds all of it.
    [[nodiscard]] std::optional<RingAddr> translate_uva(std::uint64_t uva,
                                                        std::uint64_t len) const;

private:
    std::vector<Region> regions_;
    // Member order: mappings go before the fds they were made from.
    std::vector<vfio::Fd> fds_;
    std::vector<vfio::Mapping> maps_;
};

}  // namespace vfiokit::vhost_user

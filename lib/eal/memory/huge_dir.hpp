// The check --huge-dir gets before anything is created in it: the directory
// must be a hugetlbfs mount whose page size is the one memory uses. On
// another filesystem (tmpfs, ext4) or with other pages, files there are not
// pinned huge pages: in --iova-mode=pa the device would be given physical
// addresses of pages the kernel may move.
#pragma once

#include <cstdint>
#include <string>

#include "vfiokit/eal/error.hpp"

namespace vfiokit::eal::detail {

// EINVAL naming the filesystem found, or the page size it has; the statfs
// errno when the directory cannot be read.
[[nodiscard]] Result<void> check_huge_dir(const std::string& dir, std::uint64_t page_size);

// Removes the files "vfiokit-PID-N" in `dir` whose process is gone (a crash
// between a segment's create and its unlink, or an older vfiokit that kept
// the names); their huge pages return to the pool. Returns how many.
unsigned remove_stale_files(const std::string& dir);

}  // namespace vfiokit::eal::detail

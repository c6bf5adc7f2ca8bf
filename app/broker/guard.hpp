// The broker's checks on whom it hands root-opened fds to, and on what it
// opened (doc/vfio.md "The broker's security model"). Separate from main.cpp
// so that the unit test (guard_test.cpp) runs them on the host.
#pragma once

#include <sys/types.h>

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "vfiokit/eal/error.hpp"
#include "vfiokit/eal/vfio/syscalls.hpp"

namespace vfiokit::broker {

// Connects to the SOCK_SEQPACKET socket at `path` for the user `expect_uid`
// (nullopt: root only), refusing unless
//   - `path`'s last component, looked at without following a symlink
//     (fstatat AT_SYMLINK_NOFOLLOW in its opened parent), is a socket owned
//     by root or `expect_uid`;
//   - the listener's SO_PEERCRED (the process that called listen()) has
//     uid 0 or `expect_uid`.
// The connect goes through the parent directory's fd, and a socket swapped
// in after the check is caught by the peer check: nothing is sent before
// both pass. EACCES/ENOTSOCK naming the path, the owner or the listener's
// pid and uid.
[[nodiscard]] Result<vfio::Fd> connect_receiver(const std::string& path,
                                                std::optional<uid_t> expect_uid);

// The sysfs "dev" file (MAJOR:MINOR) of the VFIO node `node` opened for the
// PCI device `bdf` (e.g. "0000:00:03.0") whose vfio-dev entry is `vfio_dev`
// ("vfio0", empty when it has none):
//   /dev/vfio/devices/*  <sysfs>/bus/pci/devices/<bdf>/vfio-dev/<vfio_dev>/dev
//   /dev/vfio/vfio       <sysfs>/class/misc/vfio/dev
//   /dev/vfio/<group>    <sysfs>/class/vfio/<group>/dev  (N or noiommu-N)
//   /dev/<name>          <sysfs>/class/misc/<name>/dev   (/dev/iommu)
[[nodiscard]] std::string sysfs_dev_file(const std::string& sysfs, const std::string& node,
                                         const std::string& bdf, const std::string& vfio_dev);

// Whether the opened `fd` is the character device that `dev_file` names
// (its st_rdev against the MAJOR:MINOR text). EXDEV naming `node` and both
// numbers when not: something other than the kernel's node sits at the path.
[[nodiscard]] Result<void> verify_node(int fd, const std::string& node,
                                       const std::string& dev_file);

// Exec mode, in the child before exec: moves `keep` to fds 3, 4, ... in
// order (keep[i] becomes 3 + i, without close-on-exec) and closes every
// other fd above 2 (close_range), so that nothing the broker inherited
// reaches the driver. Async-signal-safe apart from the error text.
[[nodiscard]] Result<void> keep_only_fds(std::span<const int> keep);

// Exec mode: the driver's whole environment, from the broker's `env`
// (NAME=VALUE strings): PATH and HOME fixed, TERM, LANG, LC_* and TZ passed
// on, VFIOKIT_* passed on (the VFIO mode and type1 flavour), except
// `external_fds_env`, which comes last as `external_fds_env`=`external_fds`.
// Anything else (LD_PRELOAD, LD_LIBRARY_PATH, ...) is dropped.
[[nodiscard]] std::vector<std::string> driver_environment(const std::vector<std::string>& env,
                                                          const std::string& external_fds_env,
                                                          const std::string& external_fds);

// Exec mode: the program `cmd` names, looked up (when it has no '/') in the
// broker's own `path_env` (the caller's PATH, before the driver's
// environment replaces it): the first regular, executable file. ENOENT
// naming the command and the PATH searched.
[[nodiscard]] Result<std::string> resolve_command(const std::string& cmd,
                                                  const std::string& path_env);

}  // namespace vfiokit::broker

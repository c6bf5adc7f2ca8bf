/// \file
/// Handing a running driver's VFIO state to a new process without stopping
/// its devices' DMA: the building block of a live upgrade (doc/handover.md).
///
/// The old process holds the iommufd, its IOASes and mappings, the bound and
/// attached device cdevs, and the memory its mappings point at, in files
/// (memfds). It gives all of it to a new process over a UNIX socket; the new
/// process maps the same files at the same addresses and has the kernel move
/// the pinned-page accounting to itself (IOMMU_IOAS_CHANGE_PROCESS); then the
/// old one lets go and exits. The kernel objects never go away, so the
/// devices keep their mappings and a DMA in flight lands.
///
/// \code
///   old:  auto r = vfio::hand_over(*vfio, sock, regions, [&] { driver.stop(); });
///         if (r) { vfio.reset(); _exit(0); }   // else: still in charge
///   new:  auto t = vfio::take_over(sock);      // t->vfio, t->memory
/// \endcode
///
/// Protocol (one SOCK_SEQPACKET socket, each step one message):
///   1. old -> new  OFFER: Vfio::export_shared() (the iommufd, each
///      container's IOAS id and mapping table, the device cdev fds) and the
///      file regions (address, length, fd, offset), fds by SCM_RIGHTS. The
///      old process keeps driving its devices meanwhile.
///   2. new: maps each file at its address (MAP_FIXED_NOREPLACE), imports
///      the state, calls IOMMU_IOAS_CHANGE_PROCESS. new -> old READY, or
///      REFUSED with the reason (then it undoes its own steps: munmap, close).
///   3. old: calls `quiesce` (its last device access), lets go of its
///      containers and devices (they will only be closed, not torn down),
///      old -> new RELEASED.
///   4. new: takes charge (its Vfio now owns the IOAS and devices, as if it
///      had made them) and returns; its caller's next access is the first.
/// A handover that fails before step 3 leaves the old process in charge,
/// with what it had: on REFUSED, an error, a timeout or the new process's
/// death, hand_over() calls IOMMU_IOAS_CHANGE_PROCESS itself (the new
/// process may have taken the accounting before failing; for the old
/// process it is a no-op otherwise) and returns the error. The fds it sent
/// were copies: they close with the new process. Once RELEASED is sent there
/// is no way back: a new process that dies after that takes the devices'
/// mappings with it (doc/handover.md, "Failure cases").
///
/// Requirements, checked before anything is sent (can_hand_over()): cdev
/// mode, every mapping of every container made by file (Container::map_file
/// on a kernel with IOMMU_IOAS_MAP_FILE, 6.13+), and a kernel with
/// IOMMU_IOAS_CHANGE_PROCESS (6.13+). Otherwise ENOTSUP naming the missing
/// piece. Group-style modes have no way to move pinned pages between
/// processes, and cdev no-IOMMU is not offered (its physical addresses are
/// the old process's knowledge, not the table's).
///
/// What is not handed over: interrupt eventfds (the new process sets its own
/// with VFIO_DEVICE_SET_IRQS; an interrupt raised in between is lost unless
/// the device's status register says it), BAR mmaps (the new process maps
/// the BARs again from the device fds), and anything above the VFIO layer
/// (driver state: the caller's own bytes, sent on the same socket before or
/// after). Every region must be a file mapping the new process can map at the
/// same address; the mapping table's vaddrs must lie inside the regions.
///
/// Thread-safety: both calls take the EAL lock of the Vfio they work on for
/// their whole length; the old process's other threads must not touch its
/// devices after `quiesce` returns.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "vfiokit/eal/error.hpp"
#include "vfiokit/eal/vfio/syscalls.hpp"
#include "vfiokit/eal/vfio/vfio.hpp"

namespace vfiokit::vfio {

/// Memory in a file, mapped at `va` in the old process: `len` bytes of `fd`
/// from `offset`. `fd` is borrowed (sent as a copy).
struct FileRegion {
    std::uint64_t va = 0;
    std::uint64_t len = 0;
    int fd = -1;
    std::uint64_t offset = 0;
};

/// What the old process measured (CLOCK_MONOTONIC, ns).
struct HandoverTimes {
    std::uint64_t offered_ns = 0;    ///< OFFER sent
    std::uint64_t ready_ns = 0;      ///< READY received
    std::uint64_t quiesced_ns = 0;   ///< quiesce returned: the last device access
    std::uint64_t released_ns = 0;   ///< RELEASED sent
};

/// ENOTSUP naming what is missing when `v` cannot be handed over now (see
/// the top). Asks the kernel: IOMMU_IOAS_CHANGE_PROCESS on the process's own
/// iommufd, which moves nothing (the pages are already the caller's) but
/// fails as it would in the new process if the kernel lacks it or a mapping
/// of the iommufd (a secondary's too) was made by address.
[[nodiscard]] Result<void> can_hand_over(Vfio& v);

/// The old process's side. On success `v` has let go: destroy it (which
/// only closes fds) and exit without touching the devices again. On failure
/// `v` is as it was and in charge (quiesce was not called, or, if the
/// failure came after it, the error says so). `timeout` bounds each wait
/// for the new process.
[[nodiscard]] Result<HandoverTimes> hand_over(
    Vfio& v, int sock, std::span<const FileRegion> memory, const std::function<void()>& quiesce,
    std::chrono::milliseconds timeout = std::chrono::milliseconds(10000));

/// The new process's side: what it took.
struct TakenOver {
    // Declared first so it goes last: the devices' DMA targets these pages
    // until the Vfio (its mappings) is gone.
    std::vector<Mapping> memory;   ///< the regions, at the old process's addresses
    std::vector<Fd> files;         ///< their fds, in the OFFER's order
    std::unique_ptr<Vfio> vfio;    ///< owns the iommufd, IOASes and devices
    std::uint64_t ready_ns = 0;    ///< CLOCK_MONOTONIC: READY sent
    std::uint64_t released_ns = 0; ///< RELEASED received
};
/// EPROTO for a malformed OFFER; the mmap's, import's or
/// IOMMU_IOAS_CHANGE_PROCESS's error otherwise (sent to the old process as
/// REFUSED); EPIPE when the old process went away before RELEASED. Nothing
/// taken is kept on failure.
[[nodiscard]] Result<TakenOver> take_over(
    int sock, std::chrono::milliseconds timeout = std::chrono::milliseconds(10000));

///@{
/// For tests of the failure cases: stop take_over() at a step, as if the
/// process died there (the socket is closed without a word; what it took is
/// undone as on any failure).
enum class TakeOverStop { none, after_offer, after_change_process };
[[nodiscard]] Result<TakenOver> take_over(int sock, std::chrono::milliseconds timeout,
                                          TakeOverStop stop);
///@}

}  // namespace vfiokit::vfio

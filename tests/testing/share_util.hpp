// Support for vfio_share_lab_test (tests/lab/vfio/share_test.cpp): the test's own
// bytes+fds transport over a socketpair, shared DMA memory at a fixed
// address, the secondary and unprivileged roles, and fds opened the way a
// broker would. Tests only.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "lab_env.hpp"
#include "vfiokit/eal/error.hpp"
#include "vfiokit/eal/vfio/vfio.hpp"

namespace vfiokit::vfio::share_lab {

using testing::iommu_shape;

// The shapes' devices (doc/lab.md).
inline constexpr const char* kEdu = "0000:00:03.0";
inline constexpr const char* kEdu2 = "0000:00:04.0";  // iommu shape only
inline constexpr std::size_t kPage = 4096;
inline constexpr std::uint32_t kLen = 4000;  // < 4095: edu's QEMU 7.2 bound (edu.hpp)
// Where both processes map the shared memfd: far from where the loader and
// the heap put things, 2 MiB-aligned for a hugetlb page.
inline constexpr std::uint64_t kMemVa = 0x5a0000000000ULL;

// edu's DMA mask in this shape (the noiommu shape creates it with 32 bits).
inline std::uint64_t shape_dma_mask() {
    return iommu_shape() ? (1ULL << 28) - 1 : 0xffffffffULL;
}

// A memfd mapped MAP_SHARED at kMemVa: 64 KiB, or one 2 MiB hugetlb page
// (no-IOMMU: pinned by nature, physically contiguous, IOVA = PA).
struct SharedMem {
    explicit SharedMem(bool hugetlb);
    // The secondary's view: the primary's memfd at the primary's address.
    SharedMem(int memfd, std::uint64_t len);
    ~SharedMem();
    SharedMem(const SharedMem&) = delete;
    SharedMem& operator=(const SharedMem&) = delete;
    [[nodiscard]] bool ok() const { return p != nullptr; }
    [[nodiscard]] std::uint64_t va() const { return reinterpret_cast<std::uint64_t>(p); }
    [[nodiscard]] std::uint8_t* at(std::size_t off) const {
        return static_cast<std::uint8_t*>(p) + off;
    }
    int fd = -1;
    void* p = nullptr;
    std::size_t len = 0;
};

// The test pattern: kLen bytes from a seed.
void fill(std::uint8_t* p, std::uint32_t seed);
[[nodiscard]] bool matches(const std::uint8_t* p, std::uint32_t seed);

// What the primary asks of a secondary. Page 0 of the memfd is the source
// and page 1 the destination of the primary's mapping (src_iova,
// dst_iova); pages 2-3 are the secondary's to map itself.
inline constexpr std::uint32_t kPrimaryMapped = 1;  // DMA through the primary's mapping
inline constexpr std::uint32_t kSecondaryMaps = 2;  // map pages 2-3 itself, DMA through them
inline constexpr std::uint32_t kIrq = 4;            // MSI raise -> eventfd
struct Task {
    std::uint32_t magic = 0x5441534b;
    std::uint32_t what = 0;
    std::uint32_t container = 0;  // index in Vfio::containers()
    std::uint32_t seed = 0;
    std::uint64_t mem_va = 0;
    std::uint64_t mem_len = 0;
    std::uint64_t src_iova = 0;
    std::uint64_t dst_iova = 0;
    std::uint64_t dma_mask = 0;
    // kSecondaryMaps: the IOVA the primary allocated for pages 2-3 (not
    // mapped); 0: the secondary allocates from its copy of the table.
    std::uint64_t own_iova = 0;
    char bdf[16] = {};
};
struct Reply {
    std::uint32_t ok = 0;
    std::uint64_t own_iova = 0;  // kSecondaryMaps: where it mapped pages 2-3
    char text[2048] = {};
};
[[nodiscard]] Task make_task(const SharedMem& mem, std::uint32_t container, std::uint32_t what);

// Starts a fresh image of this binary (--role=secondary), sends it the task,
// the state and the memfd over a socketpair, and returns its reply (ok only
// if it also exited with status 0).
[[nodiscard]] Reply spawn_secondary(const Task& t, const SharedState& state, int memfd);
int secondary_main(int argc, char** argv);
// What vfiokit-broker starts as uid 65534 (VFIOKIT_EXTERNAL_FDS set), in
// any mode the broker hands out to an unprivileged process (cdev, group,
// compat).
int unprivileged_main();

// dup() of each fd, as a receiver would hold them.
[[nodiscard]] std::vector<Fd> dup_all(const std::vector<int>& fds);
// kEdu's nodes opened the way a broker would for the mode in `o`.
[[nodiscard]] ExternalFds open_external(const Options& o);
// Listens on a unix socket, runs `vfiokit-broker --vfio-mode MODE --socket`,
// and turns what it sends into ExternalFds (owned by the caller).
[[nodiscard]] Result<ExternalFds> receive_from_broker(const char* bdf, Mode mode);

// The broker's socket mode against a receiver it must not trust, or must
// only with --expect-uid: a listener running as `listener_uid` (its socket
// file its own, or root's when `root_owned_file`: the listener's
// credentials must decide then), reached through a symlink when
// `via_symlink`. What the
// broker said and its exit status, and how many fds the listener got.
struct BrokerAttempt {
    int status = -1;      // the broker's exit status
    std::string output;   // its stdout and stderr
    int fds_received = -1;  // -1: the listener saw no connection
};
[[nodiscard]] BrokerAttempt broker_to_listener(const char* bdf, Mode mode, uid_t listener_uid,
                                               bool via_symlink, bool root_owned_file,
                                               const std::vector<std::string>& extra_args);

}  // namespace vfiokit::vfio::share_lab

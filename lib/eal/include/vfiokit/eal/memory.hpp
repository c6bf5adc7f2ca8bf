/// \file
/// EAL memory: hugepage-backed segments that devices can reach.
///
/// Memory reserves one virtual address window at start-up and places every
/// segment inside it, so virt2iova() is a table lookup: O(1), no search, for
/// the data path. Each segment is backed by a file (a memfd, with
/// MFD_HUGETLB unless `--no-huge`, or a file in `--huge-dir`) so that another
/// process can map the same memory. When a segment is added or removed the
/// listener is told first; the EAL's listener maps it into the default VFIO
/// container (one map per segment: contiguous in VA and IOVA), so memory is
/// DMA-able without any call from the user.
///
/// IOVA modes (`--iova-mode`):
///   va   an IOMMU translates (the default where there is one). Each segment
///        is IOVA-contiguous; where its IOVA lies is the default container's
///        IOVA policy (vfio.hpp): IOVA = VA when that fits the kernel's IOVA
///        ranges and the DMA masks of the devices using the container, an
///        IOVA allocated inside them otherwise. The listener decides
///        (MemoryListener::on_add) and may move a segment later, when a
///        device with a narrower mask arrives (set_iova).
///   pa   IOVA = physical address (no-IOMMU, where it is the only choice).
///        Group no-IOMMU: from /proc/self/pagemap; needs root; hugepages
///        stay where they are. cdev no-IOMMU: from the kernel that pins the
///        memory (the listener maps each segment into the container and asks
///        IOMMU_IOAS_NOIOMMU_GET_PA: MemoryListener::gives_physical()); the
///        kernel pins, and so knows the addresses, only once a device is
///        attached: until then, and again after the last device is
///        released, the segment's pages have no IOVA (virt2iova() gives
///        nullopt); the listener fills them in at the first assignment
///        (set_physical()).
///
/// Thread-safety: add(), remove(), set_iova() and segments() take the
/// control lock given to set_control_lock() (the EAL lock, Vfio's), so the
/// multi-process server can list segments while another thread grows the
/// heap. virt2iova() takes no lock and makes no syscall: it reads one
/// atomic table entry, so it may run on any thread at any time for memory
/// the caller holds (a segment being removed is the caller's bug). A
/// segment's IOVA seen by virt2iova during set_iova() is the old or the new
/// one, both mapped while the move lasts.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "vfiokit/eal/error.hpp"
#include "vfiokit/eal/recursive_lock.hpp"
#include "vfiokit/eal/sysfs.hpp"
#include "vfiokit/eal/vfio/syscalls.hpp"

namespace vfiokit::eal {

/// `--iova-mode`: what a segment's IOVA is. va: the IOVA policy's address
/// (IOVA = VA where it fits); pa: physical addresses (no IOMMU
/// translates); automatic: follows the VFIO mode.
enum class IovaMode { automatic, va, pa };
/// "va", "pa", or "auto" (DPDK's "dc" too); EINVAL naming the value otherwise.
[[nodiscard]] Result<IovaMode> parse_iova_mode(std::string_view s);

/// One hugepage size the kernel offers, and its pages.
struct HugepagePool {
    std::uint64_t page_size = 0;  ///< bytes
    unsigned total = 0;
    unsigned free = 0;
    std::string mount;            ///< a hugetlbfs mount for this size, or empty
};

/// The hugepage sizes the kernel offers (/sys/kernel/mm/hugepages) and their
/// hugetlbfs mounts (/proc/mounts, pagesize= option or the default size).
[[nodiscard]] std::vector<HugepagePool> discover_hugepages(const sysfs::Root& root);

#if defined(__SANITIZE_ADDRESS__)  // GCC
#define VFIOKIT_UNDER_ASAN 1
#elif defined(__has_feature)  // clang
#if __has_feature(address_sanitizer)
#define VFIOKIT_UNDER_ASAN 1
#endif
#endif

/// The default start of the EAL's memory window (`--base-virtaddr`): 64 GiB,
/// so that IOVA = VA fits the narrowest IOMMU the kernel offers on x86 (39
/// bits). A program built with AddressSanitizer has its shadow gap from
/// about 2 GiB to 2 TiB reserved, so there the default is 32 TiB, above
/// ASan's shadow; the IOVA policy still places memory under each device's
/// mask, so only the virtual addresses differ.
#ifdef VFIOKIT_UNDER_ASAN
inline constexpr std::uint64_t kDefaultBaseVirtaddr = 32ULL << 40;
#else
inline constexpr std::uint64_t kDefaultBaseVirtaddr = 64ULL << 30;
#endif

/// How the EAL reserves and backs its memory (the memory options).
struct MemoryOptions {
    bool no_huge = false;          ///< --no-huge: 4 KiB pages, with a warning
    std::string huge_dir;          ///< --huge-dir: back segments with files there
    std::uint64_t page_size = 0;   ///< 0: the default hugepage size
    IovaMode iova_mode = IovaMode::va;
    /// The VA window reserved at start-up; all segments live in it. The
    /// default base (kDefaultBaseVirtaddr, 64 GiB) makes IOVA = VA fit the
    /// narrowest IOMMU the kernel offers on x86 (39 bits); devices with
    /// narrower DMA masks get their memory placed under the mask by the
    /// IOVA policy, so the base (`--base-virtaddr`, DPDK's name) is only a
    /// choice of virtual address.
    std::uint64_t base_virtaddr = kDefaultBaseVirtaddr;
    std::uint64_t window = 16ULL << 30;
    std::string sysroot;           ///< for discovery in tests
};

/// A range of EAL memory backed by one file: where it is, its pages and IOVA.
struct Segment {
    std::uint64_t va = 0;
    std::uint64_t len = 0;
    std::uint64_t page_size = 0;
    int node = -1;        ///< NUMA node the pages were bound to (-1: not bound)
    /// IOVA of the first byte when the segment is IOVA-contiguous (va mode:
    /// the IOVA policy's choice, often but not always va); in pa mode each
    /// page has its own (virt2iova).
    std::optional<std::uint64_t> iova;
    std::string backing;  ///< "memfd:hugetlb", "memfd", or the file path
    int fd = -1;          ///< the backing file, shareable with other processes
};

/// Told about every segment before it becomes usable (add) and before it
/// goes away (remove). A failing on_add makes the add fail and roll back.
/// In va mode s.iova holds s.va on entry to on_add; the listener may set
/// another IOVA (where it mapped the segment). Called with the control lock
/// held.
class MemoryListener {
public:
    virtual ~MemoryListener() = default;
    [[nodiscard]] virtual Result<void> on_add(Segment& s) = 0;
    /// Before the segment's memory goes back. A failure means a device may
    /// still reach the memory (its DMA mapping could not be removed): the
    /// Memory then quarantines the segment (Memory::remove) rather than
    /// give its pages or addresses to anyone else.
    [[nodiscard]] virtual Result<void> on_remove(const Segment& s) = 0;
    /// pa mode: whether the physical addresses of the segments come from
    /// this listener (physical_pages(), Memory::set_physical()) rather than
    /// from /proc/self/pagemap. Asked before on_add.
    [[nodiscard]] virtual bool gives_physical() const { return false; }
    /// pa mode, when gives_physical(), right after a successful on_add: one
    /// physical address per page of `s`, or an empty vector while they are
    /// not known yet (the listener then calls Memory::set_physical() once
    /// they are). A failure makes the add fail (on_remove is called).
    [[nodiscard]] virtual Result<std::vector<std::uint64_t>> physical_pages(const Segment& s) {
        (void)s;
        return std::vector<std::uint64_t>{};
    }
};

/// Where a secondary's pa-mode memory reads its physical addresses
/// (Memory::attach): one per page of the segment, or none while they are
/// not known (the pages then have no IOVA). Empty function:
/// /proc/self/pagemap.
using PhysicalLookup = std::function<Result<std::vector<std::uint64_t>>(const Segment&)>;

/// The process's EAL memory: a reserved VA window, and the segments added to
/// it and removed, each announced to the MemoryListener%s.
class Memory {
public:
    [[nodiscard]] static Result<std::unique_ptr<Memory>> create(const MemoryOptions& o);
    /// A secondary process's view of a primary's memory (lib/eal/mp): the
    /// window [o.base_virtaddr, +o.window) with pages of o.page_size, and
    /// each segment mapped MAP_SHARED from its fd (fds[i] for segs[i], taken
    /// over) at the same virtual address. Every mmap is MAP_FIXED_NOREPLACE:
    /// nothing of this process is ever mapped over; an address in use fails
    /// with EEXIST "segment [va, va+len) is taken in this process" and
    /// nothing stays mapped. IOVAs: segs[i].iova (va mode), or each page's
    /// physical address read here (pa mode: the same hugepages as the
    /// primary's; from `physical` where given, the cdev no-IOMMU
    /// container's kernel). Such a Memory cannot add() (the primary owns the
    /// window) and never unlinks the primary's `--huge-dir` files.
    [[nodiscard]] static Result<std::unique_ptr<Memory>> attach(const MemoryOptions& o,
                                                                std::vector<Segment> segs,
                                                                std::vector<vfio::Fd> fds,
                                                                const PhysicalLookup& physical = {});
    ~Memory();
    Memory(const Memory&) = delete;
    Memory& operator=(const Memory&) = delete;

    /// Not owned; set before the first add(). It must outlive this Memory:
    /// the destructor tells it of every segment it removes.
    void set_listener(MemoryListener* l) { listener_ = l; }
    /// The EAL lock (Vfio::control_lock()); not owned; set before the
    /// Memory is shared between threads. Without one, callers serialize.
    void set_control_lock(RecursiveLock* l) { lock_ = l; }
    [[nodiscard]] RecursiveLock* control_lock() const { return lock_; }
    /// Holds the control lock until destroyed (holds nothing without one).
    [[nodiscard]] std::unique_lock<RecursiveLock> lock() const {
        return lock_ ? std::unique_lock(*lock_) : std::unique_lock<RecursiveLock>();
    }
    [[nodiscard]] IovaMode iova_mode() const { return opts_.iova_mode; }
    [[nodiscard]] std::uint64_t page_size() const { return page_size_; }

    /// A new segment of at least `len` bytes (rounded up to pages), populated.
    /// Errors say which limit was hit (hugepages free, RLIMIT_MEMLOCK via the
    /// listener, window full, root for pa mode); a failed add leaves nothing.
    /// `node`: NUMA node to place the pages on (-1: the caller's policy).
    [[nodiscard]] Result<const Segment*> add(std::uint64_t len, int node = -1);
    /// Gives the segment's memory back: the listener first (it unmaps the
    /// segment from the device's IOMMU), then the pages and the window
    /// range. When the listener fails (a DMA unmap the kernel refused), a
    /// device may still write the pages: the segment is quarantined, its
    /// error returned (and logged, as callers in destructors cannot report
    /// it). A quarantined segment keeps its pages, its file and its window
    /// range until the Memory goes, its IOVAs stay taken in the container,
    /// virt2iova() gives nullopt for it, and add() never reuses its range;
    /// it no longer appears in segments() (quarantined() counts it).
    [[nodiscard]] Result<void> remove(const Segment* s);
    /// Segments whose removal failed, kept apart (remove()).
    struct Quarantine {
        std::size_t segments = 0;
        std::uint64_t bytes = 0;
    };
    /// What remove() has quarantined so far.
    [[nodiscard]] Quarantine quarantined() const;

    /// The segment's memory now has its IOVAs from `iova` on (va mode: the
    /// listener mapped it there, and unmaps the old IOVAs after this).
    /// EINVAL in pa mode, for a segment not ours, or an unaligned IOVA.
    [[nodiscard]] Result<void> set_iova(const Segment* s, std::uint64_t iova);
    /// pa mode: the physical address of each page of the segment (one per
    /// page), from the listener that gives them (MemoryListener::
    /// gives_physical); none: they are not known any more (the pages have no
    /// IOVA until they are set again). EINVAL in va mode, for a segment not
    /// ours, a wrong count or an address not aligned to the page size.
    [[nodiscard]] Result<void> set_physical(const Segment* s, std::span<const std::uint64_t> pas);

    /// O(1), lock-free, no syscall. nullopt for addresses outside every
    /// segment.
    [[nodiscard]] std::optional<std::uint64_t> virt2iova(const void* va) const;
    [[nodiscard]] std::vector<const Segment*> segments() const;
    [[nodiscard]] std::uint64_t window_base() const { return base_; }
    [[nodiscard]] std::uint64_t window_size() const { return opts_.window; }
    [[nodiscard]] bool attached() const { return attached_; }

private:
    Memory() = default;
    MemoryOptions opts_;
    MemoryListener* listener_ = nullptr;
    bool attached_ = false;        // made by attach(): the segments are a primary's
    std::uint64_t page_size_ = 0;
    std::uint64_t base_ = 0;       // reserved window [base_, base_ + opts_.window)
    vfio::Mapping window_;         // PROT_NONE reservation
    RecursiveLock* lock_ = nullptr;
    // Per window page: its IOVA, ~0 = unused. Atomic (relaxed) so that
    // virt2iova reads while the control path writes other pages, or moves
    // a segment; fixed size for the Memory's life.
    std::unique_ptr<std::atomic<std::uint64_t>[]> page_iova_;
    std::size_t pages_ = 0;
    void init_pages(std::size_t n);
    // Relaxed: an entry is a self-contained value; the segment's mapping
    // is ordered before its use by whatever hands the memory to a thread.
    void set_page(std::size_t i, std::uint64_t v) { page_iova_[i].store(v, std::memory_order_relaxed); }
    [[nodiscard]] std::uint64_t page(std::size_t i) const {
        return page_iova_[i].load(std::memory_order_relaxed);
    }
    struct Owned {
        Segment seg;
        vfio::Fd fd;
    };
    std::vector<std::unique_ptr<Owned>> segs_;
    std::vector<std::unique_ptr<Owned>> quarantine_;  // remove() failed: never reused
};

}  // namespace vfiokit::eal

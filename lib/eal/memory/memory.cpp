#include <dirent.h>
#include <fcntl.h>
#include <linux/memfd.h>
#include <linux/mempolicy.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "huge_dir.hpp"
#include "vfiokit/eal/format.hpp"
#include "vfiokit/eal/memory.hpp"
#include "vfiokit/eal/pagemap.hpp"
#include "vfiokit/eal/log.hpp"

namespace vfiokit::eal {

namespace {

// Choices the memory set-up made that the caller did not ask for.
const log::Component kLog("memory");

constexpr std::uint64_t kUnused = ~0ULL;
// A page of a segment whose physical address is not known yet (pa mode,
// cdev no-IOMMU before the first device): taken, but without an IOVA.
constexpr std::uint64_t kPending = ~1ULL;
// A page of a quarantined segment (Memory::remove): taken for good, no IOVA.
constexpr std::uint64_t kQuarantined = ~2ULL;

std::string mib(std::uint64_t n) { return std::to_string(n >> 20) + " MiB"; }


}  // namespace

Result<std::unique_ptr<Memory>> Memory::create(const MemoryOptions& o) {
    std::unique_ptr<Memory> m(new Memory());
    m->opts_ = o;
    const sysfs::Root root(o.sysroot);
    if (o.no_huge) {
        m->page_size_ = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
        kLog.warning("--no-huge: memory uses 4 KiB pages: one IOTLB entry per 4 KiB instead of "
                     "per 2 MiB, and no physical contiguity");
        if (o.iova_mode == IovaMode::pa)
            return fail(Error(EINVAL, "memory: --iova-mode=pa with --no-huge")
                            .hint("physical addresses need hugepages (4 KiB pages can be "
                                  "moved by the kernel); drop --no-huge"));
    } else {
        const auto pools = discover_hugepages(root);
        if (pools.empty())
            return fail(Error(ENOENT, "memory: no hugepage sizes in /sys/kernel/mm/hugepages")
                            .hint("kernel built without CONFIG_HUGETLBFS; or run with --no-huge"));
        std::uint64_t want = o.page_size;
        if (want == 0) {
            // The default size: the first pool with pages, else the smallest.
            want = pools.front().page_size;
            for (const auto& p : pools)
                if (p.total > 0) {
                    want = p.page_size;
                    break;
                }
        }
        auto it = std::find_if(pools.begin(), pools.end(),
                               [&](const HugepagePool& p) { return p.page_size == want; });
        if (it == pools.end())
            return fail(Error(EINVAL, "memory: no " + mib(want) + " hugepages on this kernel"));
        if (it->total == 0)
            return fail(Error(ENOMEM, "memory: no " + mib(want) + " hugepages reserved")
                            .hint("reserve some: echo 256 > /sys/kernel/mm/hugepages/hugepages-" +
                                  std::to_string(want >> 10) +
                                  "kB/nr_hugepages (or hugepages=N on the kernel command line), "
                                  "or run with --no-huge"));
        m->page_size_ = want;
        if (!o.huge_dir.empty()) {
            if (auto ok = detail::check_huge_dir(o.huge_dir, want); !ok)
                return fail(std::move(ok.error()).context("memory"));
            if (const unsigned n = detail::remove_stale_files(o.huge_dir); n != 0)
                kLog.notice("removed {} hugepage file(s) of exited processes from {}", n,
                            o.huge_dir);
        }
    }
    if (o.no_huge && o.window == MemoryOptions{}.window)
        m->opts_.window = 2ULL << 30;  // keeps the 4 KiB page table at 4 MiB
    const std::uint64_t win = m->opts_.window;
    // Reserve with room to align the base to the page size.
    // Exactly at the requested base (MAP_FIXED_NOREPLACE: never over an
    // existing mapping), so IOVA = VA lands where the user planned.
    const std::uint64_t base = (o.base_virtaddr + m->page_size_ - 1) & ~(m->page_size_ - 1);
    auto res = vfio::map_memory(reinterpret_cast<void*>(base), win, PROT_NONE,
                                MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE,
                                -1, 0, "memory window");
    if (!res) {
        return fail(std::move(res.error())
                        .context("memory: reserve the window " + range_text(base, win))
                        .hint("the range is taken; choose another --base-virtaddr"));
    }
    m->window_ = std::move(*res);
    m->base_ = base;
    m->init_pages(win / m->page_size_);
    return m;
}

namespace {

// mmap exactly at `va` without replacing anything. Kernels before 4.17
// ignore MAP_FIXED_NOREPLACE and treat the address as a hint, so a mapping
// elsewhere counts as "taken" too.
Result<void> map_at(std::uint64_t va, std::uint64_t len, int prot, int flags, int fd,
                    const std::string& what) {
    void* want = reinterpret_cast<void*>(va);
    void* p = vfio::sys().mmap(want, len, prot, flags | MAP_FIXED_NOREPLACE, fd, 0);
    if (p != MAP_FAILED && p != want) {
        vfio::sys().munmap(p, len);
        errno = EEXIST;
        p = MAP_FAILED;
    }
    if (p == MAP_FAILED) {
        if (errno == EEXIST)
            return fail(Error(EEXIST, what + " " + range_text(va, len) + " is taken in this process")
                            .hint("start the secondary with the same --base-virtaddr or free that "
                                  "range (the primary's window must be free in the secondary)"));
        return fail(Error(errno, "mmap " + what + " " + range_text(va, len)));
    }
    return {};
}

// Gives [va, va+len) of the window back to a PROT_NONE reservation,
// dropping whatever was mapped there (a segment's pages go back to the
// kernel once its fd is closed too). MAP_FIXED over the range replaces it in
// one step; should that fail (ENOMEM: the process's map count), the range is
// unmapped (the pages go back all the same) and reserved again without
// replacing anything. False when it stays a hole: the caller must never
// reuse those addresses, since anything of the process may land there.
bool reserve_again(std::uint64_t va, std::uint64_t len) {
    void* want = reinterpret_cast<void*>(va);
    constexpr int kReserve = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
    if (vfio::sys().mmap(want, len, PROT_NONE, kReserve | MAP_FIXED, -1, 0) == want)
        return true;
    const int err = errno;
    if (vfio::sys().munmap(want, len) != 0) {
        kLog.warning("memory: give back {}: mmap: {}; munmap: {}: the pages stay mapped",
                     range_text(va, len), std::strerror(err), std::strerror(errno));
        return false;
    }
    void* p = vfio::sys().mmap(want, len, PROT_NONE, kReserve | MAP_FIXED_NOREPLACE, -1, 0);
    if (p == want)
        return true;
    if (p != MAP_FAILED)
        vfio::sys().munmap(p, len);
    kLog.warning("memory: {} could not be reserved again ({}): a hole in the window, never "
                 "reused",
                 range_text(va, len), std::strerror(err));
    return false;
}

}  // namespace

Result<std::unique_ptr<Memory>> Memory::attach(const MemoryOptions& o, std::vector<Segment> segs,
                                               std::vector<vfio::Fd> fds,
                                               const PhysicalLookup& physical) {
    const std::uint64_t pg = o.page_size, base = o.base_virtaddr, win = o.window;
    auto bad = [&](const std::string& why) {
        return fail(Error(EINVAL, "memory: attach: " + why));
    };
    if (pg < 4096 || (pg & (pg - 1)) != 0 || base % pg != 0 || win == 0 || win % pg != 0)
        return bad("window " + range_text(base, win) + " with pages of " + std::to_string(pg) +
                   " bytes is not page-aligned");
    if (segs.size() != fds.size())
        return bad(std::to_string(segs.size()) + " segments, " + std::to_string(fds.size()) + " fds");
    std::vector<std::size_t> order(segs.size());
    for (std::size_t i = 0; i < order.size(); ++i)
        order[i] = i;
    std::sort(order.begin(), order.end(), [&](auto a, auto b) { return segs[a].va < segs[b].va; });
    std::uint64_t end = base;
    for (auto i : order) {
        const Segment& s = segs[i];
        if (s.len == 0 || s.va % pg || s.len % pg || s.va < end || s.va + s.len > base + win)
            return bad("segment " + range_text(s.va, s.len) +
                       " is unaligned, overlaps another or lies outside the window " +
                       range_text(base, win));
        end = s.va + s.len;
    }

    std::unique_ptr<Memory> m(new Memory());
    m->opts_ = o;
    m->attached_ = true;
    m->page_size_ = pg;
    m->base_ = base;
    m->init_pages(win / pg);
    // Everything mapped so far, to undo on failure: segments, then the gaps.
    std::vector<std::pair<std::uint64_t, std::uint64_t>> mapped;
    auto undo = [&] {
        // Segments already taken over go without remove(): it would reserve
        // their ranges again, and this window is being given up, not kept.
        m->segs_.clear();
        for (auto [va, len] : mapped)
            vfio::sys().munmap(reinterpret_cast<void*>(va), len);
    };
    // Segments first, so that a taken address is reported as the segment
    // it hides. MAP_POPULATE: the pages exist already (the primary faulted
    // them in); this only fills our page tables, which pa mode needs for
    // pagemap and the data path likes.
    for (auto i : order) {
        const Segment& s = segs[i];
        if (auto ok = map_at(s.va, s.len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                             fds[i].get(), "segment");
            !ok) {
            undo();
            return fail(std::move(ok.error()).context("memory: attach"));
        }
        mapped.emplace_back(s.va, s.len);
    }
    // The rest of the window, reserved as in the primary, so that nothing
    // of ours lands where the primary may add a segment later.
    std::uint64_t cursor = base;
    auto reserve = [&](std::uint64_t to) -> Result<void> {
        if (to > cursor) {
            if (auto ok = map_at(cursor, to - cursor, PROT_NONE,
                                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1,
                                 "part of the memory window " + range_text(base, win) + ":");
                !ok)
                return ok;
            mapped.emplace_back(cursor, to - cursor);
        }
        return {};
    };
    for (auto i : order) {
        if (auto ok = reserve(segs[i].va); !ok) {
            undo();
            return fail(std::move(ok.error()).context("memory: attach"));
        }
        cursor = segs[i].va + segs[i].len;
    }
    if (auto ok = reserve(base + win); !ok) {
        undo();
        return fail(std::move(ok.error()).context("memory: attach"));
    }

    for (auto i : order) {
        Segment& s = segs[i];
        const std::size_t first = (s.va - base) / pg;
        std::vector<std::uint64_t> pas;
        if (o.iova_mode == IovaMode::pa && physical) {
            auto p = physical(s);
            if (p && p->empty())
                p = std::vector<std::uint64_t>(s.len / pg, kPending);  // not known yet
            if (p && p->size() != s.len / pg)
                p = fail(Error(EIO, "physical addresses of segment " + range_text(s.va, s.len) +
                                        ": " + std::to_string(p->size()) + " for " +
                                        std::to_string(s.len / pg) + " pages"));
            if (!p) {
                undo();
                return fail(std::move(p.error()).context("memory: attach: --iova-mode=pa"));
            }
            pas = std::move(*p);
        }
        for (std::size_t k = 0; k < s.len / pg; ++k) {
            if (o.iova_mode != IovaMode::pa) {
                m->set_page(first + k, s.iova.value_or(s.va) + k * pg);
                continue;
            }
            if (!pas.empty()) {
                m->set_page(first + k, pas[k]);
                continue;
            }
            auto pa = virt_to_phys(reinterpret_cast<const void*>(s.va + k * pg));
            if (!pa) {
                undo();
                return fail(std::move(pa.error()).context("memory: attach: --iova-mode=pa"));
            }
            m->set_page(first + k, *pa);
        }
        auto owned = std::make_unique<Owned>();
        owned->seg = std::move(s);
        owned->fd = std::move(fds[i]);
        owned->seg.fd = owned->fd.get();
        m->segs_.push_back(std::move(owned));
    }
    // One owner for the whole window: its munmap covers every piece.
    m->window_ = vfio::Mapping(reinterpret_cast<void*>(base), win);
    return m;
}

namespace {

// The highest NUMA node the kernel lists (a node<N> directory under
// /sys/devices/system/node), or -1 when it lists none. The two system
// calls and this directory are all the NUMA support memory needs: no
// libnuma, whose constructor reads /proc/self/status twice and scans
// the node and CPU directories in every process that links it.
int max_node() {
    DIR* d = ::opendir("/sys/devices/system/node");
    if (d == nullptr)
        return -1;
    int max = -1;
    while (const dirent* e = ::readdir(d)) {
        unsigned n = 0;
        char rest = 0;
        if (std::sscanf(e->d_name, "node%u%c", &n, &rest) == 1 && static_cast<int>(n) > max)
            max = static_cast<int>(n);
    }
    ::closedir(d);
    return max;
}

// Binds [p, p+len) to `node` (MPOL_BIND: fail rather than fall back to
// another node) and faults the pages in there.
Result<void> bind_to_node(void* p, std::uint64_t len, int node) {
    // The kernel's answer to "what is my policy?": ENOSYS without CONFIG_NUMA.
    if (::syscall(SYS_get_mempolicy, nullptr, nullptr, 0UL, nullptr, 0UL) != 0 && errno == ENOSYS)
        return fail(Error(ENOSYS, "place memory on NUMA node " + std::to_string(node))
                        .hint("the kernel has no NUMA support (CONFIG_NUMA)"));
    if (const int max = max_node(); node > max)
        return fail(Error(EINVAL, "place memory on NUMA node " + std::to_string(node))
                        .hint("this machine has nodes 0.." + std::to_string(std::max(max, 0))));
    unsigned long mask[16] = {};
    mask[node / 64] = 1UL << (node % 64);
    if (::syscall(SYS_mbind, p, len, static_cast<unsigned long>(MPOL_BIND), mask,
                  static_cast<unsigned long>(sizeof(mask) * 8),
                  static_cast<unsigned>(MPOL_MF_STRICT)) != 0)
        return fail(Error(errno, "mbind to NUMA node " + std::to_string(node)));
    if (::madvise(p, len, MADV_POPULATE_WRITE) != 0)
        return fail(Error(errno, "fault in memory on NUMA node " + std::to_string(node))
                        .hint("not enough free hugepages on that node: see "
                              "/sys/devices/system/node/node" + std::to_string(node) +
                              "/hugepages/"));
    return {};
}

}  // namespace

Memory::~Memory() {
    while (!segs_.empty())
        (void)remove(&segs_.back()->seg);
}

Result<const Segment*> Memory::add(std::uint64_t len, int node) {
    auto held = lock();
    if (attached_)
        return fail(Error(ENOTSUP, "memory: add a segment in a secondary process")
                        .hint("the primary owns the window: allocate in the primary"));
    const std::uint64_t pg = page_size_;
    len = (len + pg - 1) / pg * pg;
    if (len == 0)
        return fail(EINVAL, "memory: add 0 bytes");
    const std::size_t need = len / pg;

    // First fit in the window's page table.
    std::size_t first = 0, run = 0;
    for (std::size_t i = 0; i < pages_ && run < need; ++i) {
        if (page(i) == kUnused) {
            if (run++ == 0)
                first = i;
        } else {
            run = 0;
        }
    }
    if (run < need)
        return fail(Error(ENOSPC, "memory: add " + mib(len) + ": the " + mib(opts_.window) +
                                      " window is full")
                        .hint("remove segments or reserve a larger window"));

    auto owned = std::make_unique<Owned>();
    Segment& s = owned->seg;
    s.va = base_ + first * pg;
    s.len = len;
    s.page_size = pg;

    // Backing file: shareable with other processes by fd (memfd) or path.
    if (!opts_.huge_dir.empty() && !opts_.no_huge) {
        s.backing = opts_.huge_dir + "/vfiokit-" + std::to_string(::getpid()) + "-" +
                    std::to_string(s.va - base_);
        auto fd = vfio::open_fd(s.backing, O_RDWR | O_CREAT | O_EXCL);
        if (!fd)
            return fail(std::move(fd.error()).context("memory").hint("--huge-dir must be a writable hugetlbfs mount"));
        owned->fd = std::move(*fd);
        // The fd is all anyone needs (secondaries get it over the channel):
        // no name is left behind for another user to open, or to outlive a
        // crash and hold its huge pages.
        ::unlink(s.backing.c_str());
        s.backing += " (unlinked)";
    } else {
        unsigned flags = MFD_CLOEXEC;
        if (!opts_.no_huge)
            flags |= MFD_HUGETLB | (static_cast<unsigned>(std::countr_zero(pg)) << MFD_HUGE_SHIFT);
        int fd = vfio::sys().memfd_create("vfiokit-memory", flags);
        if (fd < 0)
            return fail(Error(errno, "memfd_create").context("memory: add " + mib(len)));
        owned->fd = vfio::Fd(fd);
        s.backing = opts_.no_huge ? "memfd" : "memfd:hugetlb";
    }
    s.fd = owned->fd.get();
    if (vfio::sys().ftruncate(s.fd, static_cast<off_t>(len)) != 0) {
        int err = errno;
        return fail(Error(err, "ftruncate").context("memory: add " + mib(len)));
    }
    // MAP_FIXED over our own PROT_NONE reservation. Hugetlb mappings reserve
    // their pages here, so a shortage shows now, not at first touch. With a
    // NUMA node, the policy must be set before the pages are faulted in, so
    // populate afterwards.
    void* p = vfio::sys().mmap(reinterpret_cast<void*>(s.va), len, PROT_READ | PROT_WRITE,
                               MAP_SHARED | MAP_FIXED | (node < 0 ? MAP_POPULATE : 0), s.fd, 0);
    if (p == MAP_FAILED) {
        Error e(errno, "mmap " + mib(len) + " of " + s.backing);
        // A failed MAP_FIXED may have taken our reservation with it.
        if (!reserve_again(s.va, len))
            for (std::size_t i = 0; i < need; ++i)
                set_page(first + i, kQuarantined);
        if (e.err() == ENOMEM && !opts_.no_huge) {
            const auto pools = discover_hugepages(sysfs::Root(opts_.sysroot));
            for (const auto& pool : pools)
                if (pool.page_size == pg)
                    e.hint("needs " + std::to_string(need) + " hugepages of " + mib(pg) + ", " +
                           std::to_string(pool.free) + " free of " + std::to_string(pool.total) +
                           ": reserve more in /sys/kernel/mm/hugepages/hugepages-" +
                           std::to_string(pg >> 10) + "kB/nr_hugepages");
        }
        return fail(std::move(e.context("memory")));
    }
    auto unmap_back = [&] {
        // Back to a reservation, not a hole: the window stays ours.
        if (!reserve_again(s.va, len))
            for (std::size_t i = 0; i < need; ++i)
                set_page(first + i, kQuarantined);
    };
    if (node >= 0) {
        if (auto ok = bind_to_node(reinterpret_cast<void*>(s.va), len, node); !ok) {
            unmap_back();
            return fail(std::move(ok.error()).context("memory: add " + mib(len)));
        }
        s.node = node;
    }

    // IOVAs: physical addresses, or where the listener (the container's
    // IOVA policy) maps the segment; IOVA = VA without a listener. The
    // table is filled only once the segment is mapped: nobody may use an
    // IOVA before the device can reach it.
    std::vector<std::uint64_t> pas;
    const bool listener_pas = opts_.iova_mode == IovaMode::pa && listener_ &&
                              listener_->gives_physical();
    if (opts_.iova_mode == IovaMode::pa && !listener_pas) {
        pas.reserve(need);
        for (std::size_t i = 0; i < need; ++i) {
            auto pa = virt_to_phys(reinterpret_cast<const void*>(s.va + i * pg));
            if (!pa) {
                unmap_back();
                return fail(std::move(pa.error()).context("memory: --iova-mode=pa"));
            }
            pas.push_back(*pa);
        }
    } else {
        s.iova = s.va;
    }
    if (listener_) {
        if (auto ok = listener_->on_add(s); !ok) {
            unmap_back();
            return fail(std::move(ok.error()).context("memory: add " + mib(len)));
        }
    }
    if (listener_pas) {
        auto given = listener_->physical_pages(s);
        if (given && !given->empty() && given->size() != need)
            given = fail(Error(EIO, "the listener gave " + std::to_string(given->size()) +
                                        " physical addresses for " + std::to_string(need) +
                                        " pages"));
        if (!given) {
            (void)listener_->on_remove(s);
            unmap_back();
            return fail(std::move(given.error()).context("memory: add " + mib(len) +
                                                         ": --iova-mode=pa"));
        }
        pas = std::move(*given);
        if (pas.empty())
            pas.assign(need, kPending);  // filled in by set_physical()
    }
    for (std::size_t i = 0; i < need; ++i)
        set_page(first + i, pas.empty() ? *s.iova + i * pg : pas[i]);
    segs_.push_back(std::move(owned));
    return &segs_.back()->seg;
}

Result<void> Memory::remove(const Segment* seg) {
    auto held = lock();
    auto it = std::find_if(segs_.begin(), segs_.end(), [&](const auto& o) { return &o->seg == seg; });
    if (it == segs_.end())
        return fail(EINVAL, "memory: remove a segment that is not ours");
    const Segment& s = (*it)->seg;
    const std::size_t first = (s.va - base_) / page_size_;
    if (listener_)
        if (auto ok = listener_->on_remove(s); !ok) {
            // A device may still reach these pages: nobody else gets them,
            // nor their addresses. The range stays mapped to the same file,
            // so the pages stay ours rather than going back to the kernel.
            for (std::size_t i = 0; i < s.len / page_size_; ++i)
                set_page(first + i, kQuarantined);
            Error e = std::move(ok.error())
                          .context("memory: remove segment " + range_text(s.va, s.len) +
                                   ": quarantined, its addresses are never reused");
            kLog.warning("{}", e.message());
            quarantine_.push_back(std::move(*it));
            segs_.erase(it);
            return fail(std::move(e));
        }
    // The pages go back either way; addresses that could not be reserved
    // again are never handed out (quarantined without pages).
    const std::uint64_t mark = reserve_again(s.va, s.len) ? kUnused : kQuarantined;
    for (std::size_t i = 0; i < s.len / page_size_; ++i)
        set_page(first + i, mark);
    segs_.erase(it);
    return {};
}

std::optional<std::uint64_t> Memory::virt2iova(const void* p) const {
    const auto va = reinterpret_cast<std::uint64_t>(p);
    if (va < base_)
        return std::nullopt;
    const std::uint64_t idx = (va - base_) / page_size_;
    if (idx >= pages_)
        return std::nullopt;
    const std::uint64_t iova = page(idx);
    if (iova == kUnused || iova == kPending || iova == kQuarantined)
        return std::nullopt;
    return iova + (va & (page_size_ - 1));
}

Result<void> Memory::set_iova(const Segment* seg, std::uint64_t iova) {
    auto held = lock();
    auto it = std::find_if(segs_.begin(), segs_.end(), [&](const auto& o) { return &o->seg == seg; });
    if (it == segs_.end() || opts_.iova_mode == IovaMode::pa || iova % page_size_ != 0)
        return fail(EINVAL, "memory: set the IOVA of a segment: not ours, pa mode or unaligned");
    Segment& s = (*it)->seg;
    const std::size_t first = (s.va - base_) / page_size_;
    for (std::size_t i = 0; i < s.len / page_size_; ++i)
        set_page(first + i, iova + i * page_size_);
    s.iova = iova;
    return {};
}

Result<void> Memory::set_physical(const Segment* seg, std::span<const std::uint64_t> pas) {
    auto held = lock();
    auto it = std::find_if(segs_.begin(), segs_.end(), [&](const auto& o) { return &o->seg == seg; });
    if (it == segs_.end() || opts_.iova_mode != IovaMode::pa)
        return fail(EINVAL, "memory: set physical addresses: not our segment, or not pa mode");
    const Segment& s = (*it)->seg;
    const std::size_t first = (s.va - base_) / page_size_;
    if (pas.empty()) {
        for (std::size_t i = 0; i < s.len / page_size_; ++i)
            set_page(first + i, kPending);
        return {};
    }
    if (pas.size() != s.len / page_size_)
        return fail(EINVAL, "memory: set physical addresses: " + std::to_string(pas.size()) +
                                " for " + std::to_string(s.len / page_size_) + " pages");
    for (auto pa : pas)
        if (pa % page_size_ != 0)
            return fail(EINVAL, "memory: set physical addresses: " + hex(pa) +
                                    " is not aligned to the page size " + hex(page_size_));
    for (std::size_t i = 0; i < pas.size(); ++i)
        set_page(first + i, pas[i]);
    return {};
}

void Memory::init_pages(std::size_t n) {
    pages_ = n;
    page_iova_ = std::make_unique<std::atomic<std::uint64_t>[]>(n);
    for (std::size_t i = 0; i < n; ++i)
        set_page(i, kUnused);
}

Memory::Quarantine Memory::quarantined() const {
    auto held = lock();
    Quarantine q;
    for (const auto& o : quarantine_) {
        ++q.segments;
        q.bytes += o->seg.len;
    }
    return q;
}

std::vector<const Segment*> Memory::segments() const {
    auto held = lock();
    std::vector<const Segment*> v;
    for (const auto& o : segs_)
        v.push_back(&o->seg);
    return v;
}

}  // namespace vfiokit::eal

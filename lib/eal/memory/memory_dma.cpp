#include <cerrno>
#include <cstdio>

#include "vfiokit/eal/memory_dma.hpp"
#include "vfiokit/eal/format.hpp"

namespace vfiokit::eal {

ContainerDmaListener::ContainerDmaListener(Memory& m, vfio::Container& c) : m_(m), c_(c) {
    c_.add_iova_user(this);
}

ContainerDmaListener::~ContainerDmaListener() { c_.remove_iova_user(this); }

Result<void> ContainerDmaListener::on_add(Segment& s) {
    if (c_.reports_physical()) {
        // cdev no-IOMMU: pinned by the mapping; the IOVA is only a key.
        auto key = c_.choose_iova(s.va, s.len, s.page_size);
        if (!key)
            return fail(std::move(key.error()).context("place memory segment " +
                                                       inclusive_range_text(s.va, s.va + s.len - 1)));
        if (auto ok = c_.map_file(s.va, s.fd, 0, *key, s.len); !ok)
            return ok;
        keys_[s.va] = *key;
        return {};
    }
    if (!c_.translates())
        return {};
    if (!s.iova)
        return fail(Error(EINVAL, "map memory segment: it has physical addresses only")
                        .hint("--iova-mode=pa is for no-IOMMU mode; use --iova-mode=va"));
    // Aligned to the segment's page size, so the IOMMU can use large pages.
    auto iova = c_.choose_iova(s.va, s.len, s.page_size);
    if (!iova)
        return fail(std::move(iova.error()).context("place memory segment " +
                                                    inclusive_range_text(s.va, s.va + s.len - 1)));
    // Segments are file-backed from offset 0: by fd where the kernel can.
    if (auto ok = c_.map_file(s.va, s.fd, 0, *iova, s.len); !ok)
        return ok;
    s.iova = *iova;
    return {};
}

Result<void> ContainerDmaListener::on_remove(const Segment& s) {
    const std::string seg = "memory segment " + inclusive_range_text(s.va, s.va + s.len - 1);
    if (!c_.translates() && !m_.attached()) {
        // No IOMMU: a device that still masters the bus could write these
        // pages after they go back to the kernel and belong to someone
        // else. Stop them all first; a failure keeps the segment.
        if (auto ok = c_.stop_bus_mastering(); !ok)
            return fail(std::move(ok.error()).context("release " + seg));
    }
    if (auto k = keys_.find(s.va); k != keys_.end()) {
        if (auto ok = c_.unmap(k->second, s.len); !ok)
            return fail(std::move(ok.error()).context("release " + seg));
        keys_.erase(k);
        return {};
    }
    if (c_.translates() && s.iova)
        if (auto ok = c_.unmap(*s.iova, s.len); !ok)
            return fail(std::move(ok.error()).context("release " + seg));
    return {};
}

Result<std::vector<std::uint64_t>> physical_pages(const vfio::Container& c, std::uint64_t iova,
                                                  std::uint64_t len, std::uint64_t page) {
    auto ranges = c.physical_ranges(iova, len);
    if (!ranges)
        return fail(std::move(ranges.error()));
    std::vector<std::uint64_t> pas;
    pas.reserve(len / page);
    for (const vfio::PhysicalRange& r : *ranges) {
        // A page is never split between two ranges: its bytes are
        // contiguous (a hugepage is one physical page).
        if (r.pa % page != 0 || r.len % page != 0)
            return fail(Error(EIO, "physical addresses of IOVA " + range_text(iova, len) + ": " +
                                       range_text(r.pa, r.len) + " is not made of whole " +
                                       hex(page) + "-byte pages"));
        for (std::uint64_t off = 0; off < r.len; off += page)
            pas.push_back(r.pa + off);
    }
    return pas;
}

Result<std::vector<std::uint64_t>> container_physical(const vfio::Container& c, const Segment& s) {
    for (const vfio::DmaMapping& m : c.mappings()) {
        if (m.vaddr != s.va)
            continue;
        if (m.len != s.len)
            break;
        auto pas = physical_pages(c, m.iova, s.len, s.page_size);
        if (!pas && pas.error().err() == EAGAIN)
            return std::vector<std::uint64_t>{};
        if (!pas)
            return fail(std::move(pas.error()).context("memory segment " + range_text(s.va, s.len)));
        return pas;
    }
    return fail(Error(EPROTO, "memory segment " + range_text(s.va, s.len) +
                                  ": the primary's container has no mapping of it")
                    .hint("the primary maps every segment into its cdev no-IOMMU container; its "
                          "table and its memory disagree"));
}

Result<std::vector<std::uint64_t>> ContainerDmaListener::ask_physical(const Segment& s) const {
    const auto k = keys_.find(s.va);
    if (k == keys_.end())
        return fail(EINVAL, "physical addresses of segment at vaddr " + hex(s.va) +
                                ": it is not mapped into the container");
    auto pas = eal::physical_pages(c_, k->second, s.len, s.page_size);
    if (!pas)
        return fail(std::move(pas.error()).context("memory segment " +
                                                   inclusive_range_text(s.va, s.va + s.len - 1)));
    return pas;
}

Result<std::vector<std::uint64_t>> ContainerDmaListener::physical_pages(const Segment& s) {
    auto pas = ask_physical(s);
    // No device yet: the kernel has not pinned anything. The first
    // assignment fills them in (physical_addresses).
    if (!pas && pas.error().err() == EAGAIN)
        return std::vector<std::uint64_t>{};
    return pas;
}

Result<void> ContainerDmaListener::physical_addresses(vfio::Container& c, bool known) {
    if (&c != &c_ || m_.iova_mode() != IovaMode::pa)
        return {};
    if (!known) {
        for (const Segment* s : m_.segments())
            (void)m_.set_physical(s, {});
        return {};
    }
    for (const Segment* s : m_.segments()) {
        auto pas = ask_physical(*s);
        if (!pas)
            return fail(std::move(pas.error()));
        if (auto ok = m_.set_physical(s, *pas); !ok)
            return ok;
    }
    return {};
}

Result<void> ContainerDmaListener::meet_dma_mask(vfio::Container& c, std::uint64_t mask,
                                                 std::string_view who) {
    if (&c != &c_)
        return {};
    const std::string what = std::string(who) + ": DMA mask " + hex(mask);
    for (const Segment* s : m_.segments()) {
        if (!c_.translates()) {
            // Physical addresses cannot move: check every page.
            for (std::uint64_t off = 0; off < s->len; off += s->page_size) {
                const auto pa = m_.virt2iova(reinterpret_cast<const void*>(s->va + off));
                if (pa && *pa + s->page_size - 1 > mask)
                    return fail(Error(ERANGE, what + " cannot reach memory at physical " +
                                                  inclusive_range_text(*pa, *pa + s->page_size - 1) +
                                                  " (segment at vaddr " + hex(s->va) + ")")
                                    .hint("without an IOMMU the device sees physical "
                                          "addresses: give the device a wider mask, or keep "
                                          "the machine's RAM below the mask (mem= on the "
                                          "kernel command line)"));
            }
            continue;
        }
        if (!s->iova || *s->iova + s->len - 1 <= mask)
            continue;
        const std::string seg = "memory segment " + inclusive_range_text(*s->iova, *s->iova + s->len - 1) +
                                " (vaddr " + hex(s->va) + ")";
        if (m_.attached())
            return fail(Error(ERANGE, what + " cannot reach " + seg)
                            .hint("the primary process places memory: probe the device there"));
        // New IOVAs under the mask first, then the switch, then the old
        // mapping goes: a thread translating meanwhile gets one of two
        // mapped IOVAs.
        auto iova = c_.alloc_iova(s->len, mask, s->page_size);
        if (!iova)
            return fail(Error(ERANGE, what + " cannot reach " + seg + ", and no " +
                                          hex(s->len) + " bytes of IOVA are free under the mask")
                            .hint("keep less memory (-m, --socket-mem) or give the device a "
                                  "wider mask"));
        const std::uint64_t old = *s->iova;
        if (auto ok = c_.map_file(s->va, s->fd, 0, *iova, s->len); !ok)
            return fail(std::move(ok.error()).context(what + ": move " + seg + " under the mask"));
        if (auto ok = m_.set_iova(s, *iova); !ok) {
            (void)c_.unmap(*iova, s->len);
            return fail(std::move(ok.error()).context(what));
        }
        if (auto ok = c_.unmap(old, s->len); !ok)
            return fail(std::move(ok.error()).context(what + ": unmap the old IOVAs of " + seg));
    }
    return {};
}

Result<IovaMode> resolve_iova_mode(IovaMode asked, const vfio::Container& c) {
    if (asked == IovaMode::automatic)
        return c.translates() ? IovaMode::va : IovaMode::pa;
    if (asked == IovaMode::va && !c.translates())
        return fail(Error(EINVAL, "--iova-mode=va in no-IOMMU mode")
                        .hint("without an IOMMU devices see physical addresses: use "
                              "--iova-mode=pa (or auto)"));
    return asked;
}

}  // namespace vfiokit::eal

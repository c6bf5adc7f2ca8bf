#include "remap.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <string>

#include "vfiokit/eal/format.hpp"

namespace vfiokit::vdpa {

namespace {

std::string region_text(std::size_t i) { return "region " + std::to_string(i); }

// [a, a+alen) and [b, b+blen) share a byte (neither wraps).
bool overlap(std::uint64_t a, std::uint64_t alen, std::uint64_t b, std::uint64_t blen) {
    return a < b + blen && b < a + alen;
}

// `p` cut to [from, to) (inside it): hva and offset follow.
Piece cut(const Piece& p, std::uint64_t from, std::uint64_t to) {
    Piece q = p;
    q.iova = from;
    q.len = to - from;
    q.hva = p.hva + (from - p.iova);
    q.offset = p.offset + (from - p.iova);
    return q;
}

// The parts of `p` outside every piece of `holes`.
std::vector<Piece> subtract(const Piece& p, std::span<const Piece> holes) {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> cuts;
    for (const auto& h : holes)
        if (overlap(p.iova, p.len, h.iova, h.len))
            cuts.emplace_back(std::max(p.iova, h.iova), std::min(p.iova + p.len, h.iova + h.len));
    std::sort(cuts.begin(), cuts.end());
    std::vector<Piece> out;
    std::uint64_t at = p.iova;
    for (const auto& [from, to] : cuts) {
        if (from > at)
            out.push_back(cut(p, at, from));
        at = std::max(at, to);
    }
    if (at < p.iova + p.len)
        out.push_back(cut(p, at, p.iova + p.len));
    return out;
}

// The parts of `p` inside some piece of `within`.
std::vector<Piece> intersect(const Piece& p, std::span<const Piece> within) {
    std::vector<Piece> out;
    for (const auto& w : within)
        if (overlap(p.iova, p.len, w.iova, w.len))
            out.push_back(cut(p, std::max(p.iova, w.iova), std::min(p.iova + p.len, w.iova + w.len)));
    std::sort(out.begin(), out.end(), [](const Piece& a, const Piece& b) { return a.iova < b.iova; });
    // Pieces of `within` do not overlap one another, so neither do these.
    return out;
}

// Whether the new table puts, at every byte of `c`, the same file offset.
bool still_holds(const Piece& c, std::span<const Piece> wanted) {
    for (const auto& w : wanted)
        if (c.iova >= w.iova && c.iova + c.len <= w.iova + w.len)
            return c.dev == w.dev && c.ino == w.ino && c.offset == w.offset + (c.iova - w.iova);
    return false;
}

}  // namespace

Result<std::vector<Piece>> pieces_for(std::span<const vhost_user::Region> regions,
                                      std::uint64_t page) {
    std::vector<Piece> out;
    for (std::size_t i = 0; i < regions.size(); ++i) {
        const auto& r = regions[i];
        const auto hva = reinterpret_cast<std::uint64_t>(r.hva);
        if (r.gpa % page != hva % page || r.gpa % page != r.mmap_offset % page)
            return fail(Error(EINVAL, region_text(i) + ": guest address " + hex(r.gpa) +
                                          ", mmap offset " + hex(r.mmap_offset) +
                                          " and its mapping here " + hex(hva) +
                                          " lie at different offsets in a " + hex(page) +
                                          "-byte page")
                            .hint("the IOMMU maps whole pages: the front end must place its "
                                  "regions at page-aligned guest addresses"));
        struct stat st{};
        if (::fstat(r.fd, &st) != 0)
            return fail(Error(errno, "fstat").context(region_text(i)));
        Piece p;
        const std::uint64_t head = r.gpa % page;
        p.iova = r.gpa - head;
        p.len = (head + r.size + page - 1) / page * page;
        p.hva = hva - head;
        p.dev = st.st_dev;
        p.ino = st.st_ino;
        p.offset = r.mmap_offset - head;
        p.fd = r.fd;
        for (std::size_t j = 0; j < out.size(); ++j)
            if (overlap(p.iova, p.len, out[j].iova, out[j].len))
                return fail(Error(EINVAL, region_text(i) + " " + range_text(r.gpa, r.size) +
                                              " shares an IOMMU page with " + region_text(j))
                                .hint("the IOMMU maps whole pages: regions must not share one"));
        out.push_back(p);
    }
    return out;
}

unsigned iova_bits(std::span<const vfio::IovaRange> ranges) {
    std::uint64_t top = 0;
    for (const auto& r : ranges)
        top = std::max(top, r.last);
    return static_cast<unsigned>(std::bit_width(top));
}

Result<void> check_fits(std::span<const Piece> pieces, std::span<const vfio::IovaRange> ranges) {
    std::uint64_t top = 0;
    for (const auto& r : ranges)
        top = std::max(top, r.last);
    const unsigned bits = iova_bits(ranges);
    for (const auto& p : pieces) {
        const std::uint64_t last = p.iova + p.len - 1;
        bool inside = false;
        for (const auto& r : ranges)
            inside = inside || (p.iova >= r.start && last <= r.last);
        if (inside)
            continue;
        if (last > top)
            return fail(Error(ERANGE, "the front end's memory at guest-physical " +
                                          range_text(p.iova, p.len) + " does not fit the IOMMU's " +
                                          std::to_string(bits) + "-bit IOVA space (last usable "
                                          "IOVA " + hex(top) + "): address " + hex(last) +
                                          " needs " + std::to_string(std::bit_width(last)) +
                                          " bits")
                            .hint("a vDPA device DMAs to the front end's guest-physical "
                                  "addresses, which DPDK's virtio_user sets to its own virtual "
                                  "addresses (up to 47 bits): give the IOMMU 48 address bits "
                                  "(QEMU: -device intel-iommu,aw-bits=48, the lab's modern "
                                  "shape)"));
        std::string holes;
        for (std::size_t i = 0; i + 1 < ranges.size(); ++i)
            holes += (holes.empty() ? "" : ", ") +
                     inclusive_range_text(ranges[i].last + 1, ranges[i + 1].start - 1);
        return fail(Error(ERANGE, "the front end's memory at guest-physical " +
                                      range_text(p.iova, p.len) +
                                      " covers IOVAs the IOMMU reserves (" + holes + ")")
                        .hint("the front end must keep its guest addresses out of the reserved "
                              "windows (the MSI window 0xfee00000-0xfeefffff on x86)"));
    }
    return {};
}

RemapPlan plan_remap(std::span<const Piece> current, std::span<const Piece> wanted) {
    RemapPlan plan;
    for (const auto& c : current)
        (still_holds(c, wanted) ? plan.keep : plan.unmap).push_back(c);
    for (const auto& w : wanted) {
        for (const auto& part : subtract(w, plan.keep)) {
            for (const auto& free : subtract(part, plan.unmap))
                plan.map_first.push_back(free);
            for (const auto& taken : intersect(part, plan.unmap))
                plan.map_after.push_back(taken);
        }
    }
    return plan;
}

}  // namespace vfiokit::vdpa

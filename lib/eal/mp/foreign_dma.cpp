// The primary's record of its secondaries' own DMA mappings (foreign_dma.hpp).
#include "foreign_dma.hpp"

#include <cerrno>

#include "../byte_codec.hpp"
#include "vfiokit/eal/format.hpp"

namespace vfiokit::eal::mp {

namespace {

std::string text(const DmaRange& r) {
    return "container #" + std::to_string(r.container) + " IOVA " + range_text(r.iova, r.len);
}

}  // namespace

std::string encode(const DmaRange& r) {
    codec::Writer w;
    w.u32(r.container);
    w.u32(0);
    w.u64(r.iova);
    w.u64(r.len);
    return w.take_string();
}

Result<DmaRange> decode_dma_range(std::string_view payload) {
    if (payload.size() != kDmaRangeBytes)
        return fail(Error(EBADMSG, "DMA range: " + std::to_string(payload.size()) +
                                       " bytes, expected " + std::to_string(kDmaRangeBytes)));
    codec::Reader rd(payload);
    DmaRange r;
    r.container = rd.u32("container");
    const std::uint32_t reserved = rd.u32("reserved");
    r.iova = rd.u64("iova");
    r.len = rd.u64("length");
    if (reserved != 0)
        return fail(Error(EBADMSG, "DMA range: reserved field is " + std::to_string(reserved)));
    if (r.len == 0 || r.iova + r.len < r.iova)
        return fail(Error(EBADMSG, "DMA range: " + text(r) + " is empty or wraps around"));
    return r;
}

bool ForeignDma::overlaps(std::uint32_t container, std::uint64_t iova, std::uint64_t len) const {
    // Ranges never overlap each other: the one starting last at or before
    // the end of [iova, iova+len) is the only one that can reach into it.
    auto it = ranges_.upper_bound(Key{container, iova + (len - 1)});
    if (it == ranges_.begin())
        return false;
    --it;
    return it->first.container == container && it->first.iova + (it->second.len - 1) >= iova;
}

Result<void> ForeignDma::announce(std::uint64_t conn, const DmaRange& r) {
    if (r.len == 0 || r.iova + r.len < r.iova)
        return fail(Error(EINVAL, "announce " + text(r) + ": empty or wrapping range"));
    if (overlaps(r.container, r.iova, r.len)) {
        auto it = ranges_.upper_bound(Key{r.container, r.iova + (r.len - 1)});
        --it;
        const bool mine = it->second.conn == conn;
        return fail(Error(EEXIST, "announce " + text(r) + ": overlaps " +
                                      range_text(it->first.iova, it->second.len) + ", " +
                                      (mine ? "already announced by this process"
                                            : "mapped by another secondary")));
    }
    std::size_t& n = per_conn_[conn];
    if (n >= kMaxPerConnection)
        return fail(Error(ENOSPC, "announce " + text(r) + ": this process has " +
                                      std::to_string(n) + " ranges recorded, the limit"));
    ranges_.emplace(Key{r.container, r.iova}, Entry{conn, r.len, false});
    ++n;
    return {};
}

Result<void> ForeignDma::confirm(std::uint64_t conn, const DmaRange& r) {
    auto it = ranges_.find(Key{r.container, r.iova});
    if (it == ranges_.end() || it->second.conn != conn || it->second.len != r.len)
        return fail(Error(ENOENT, "confirm " + text(r) + ": not announced by this process"));
    it->second.confirmed = true;
    return {};
}

std::size_t ForeignDma::release(std::uint64_t conn, const DmaRange& r) {
    if (r.len == 0 || r.iova + r.len < r.iova)
        return 0;
    std::size_t n = 0;
    const std::uint64_t last = r.iova + (r.len - 1);
    for (auto it = ranges_.lower_bound(Key{r.container, r.iova});
         it != ranges_.end() && it->first.container == r.container && it->first.iova <= last;) {
        const std::uint64_t e_last = it->first.iova + (it->second.len - 1);
        if (it->second.conn == conn && e_last <= last) {
            it = ranges_.erase(it);
            ++n;
        } else {
            ++it;
        }
    }
    if (n != 0) {
        auto pc = per_conn_.find(conn);
        pc->second -= n;
        if (pc->second == 0)
            per_conn_.erase(pc);
    }
    return n;
}

std::vector<ForeignRange> ForeignDma::take(std::uint64_t conn) {
    std::vector<ForeignRange> out;
    if (!per_conn_.contains(conn))
        return out;
    for (auto it = ranges_.begin(); it != ranges_.end();) {
        if (it->second.conn == conn) {
            out.push_back({{it->first.container, it->first.iova, it->second.len},
                           it->second.confirmed});
            it = ranges_.erase(it);
        } else {
            ++it;
        }
    }
    per_conn_.erase(conn);
    return out;
}

std::size_t ForeignDma::count(std::uint64_t conn) const {
    auto it = per_conn_.find(conn);
    return it == per_conn_.end() ? 0 : it->second;
}

std::size_t ForeignDma::total() const { return ranges_.size(); }

}  // namespace vfiokit::eal::mp

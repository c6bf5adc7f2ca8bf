#include "handover_codec.hpp"

#include <algorithm>
#include <cerrno>

#include "../byte_codec.hpp"
#include "vfiokit/eal/format.hpp"

namespace vfiokit::vfio::handover {

namespace {

constexpr std::uint32_t kMagic = 0x484b4656;  // "VFKH" as little-endian bytes
constexpr std::uint16_t kVersion = 1;
constexpr std::uint64_t kPage = 4096;

void header(codec::Writer& w, Kind k, std::uint32_t fds) {
    w.u32(kMagic);
    w.u16(kVersion);
    w.u16(static_cast<std::uint16_t>(k));
    w.u32(0);  // total length, patched
    w.u32(fds);
}

std::vector<std::uint8_t> finish(codec::Writer& w) {
    w.patch_u32(8, static_cast<std::uint32_t>(w.size()));
    return w.take();
}

Error bad(const std::string& what) {
    return Error(EPROTO, "handover message: " + what);
}

// The common header; the kind it names.
Result<Kind> read_header(codec::Reader& r, std::size_t size, std::size_t fd_count) {
    const std::uint32_t magic = r.u32("magic");
    const std::uint16_t version = r.u16("version");
    const std::uint16_t kind = r.u16("kind");
    const std::uint32_t total = r.u32("total length");
    const std::uint32_t fds = r.u32("fd count");
    if (!r.ok())
        return fail(bad(r.error()));
    if (magic != kMagic)
        return fail(bad("bad magic " + hex(magic) + " (not a vfiokit handover message)"));
    if (version != kVersion)
        return fail(bad("version " + std::to_string(version) + ", this process speaks " +
                        std::to_string(kVersion)));
    if (kind < 1 || kind > 4)
        return fail(bad("unknown kind " + std::to_string(kind)));
    if (total != size)
        return fail(bad("says " + std::to_string(total) + " bytes, " + std::to_string(size) +
                        " arrived"));
    if (fds != fd_count)
        return fail(bad("says " + std::to_string(fds) + " fds, " + std::to_string(fd_count) +
                        " arrived"));
    return static_cast<Kind>(kind);
}

}  // namespace

std::vector<std::uint8_t> encode_offer(const Offer& o) {
    codec::Writer w;
    header(w, Kind::offer, static_cast<std::uint32_t>(o.state_fds + o.regions.size()));
    w.u32(static_cast<std::uint32_t>(o.regions.size()));
    w.u32(static_cast<std::uint32_t>(o.state.size()));
    w.u32(o.sender);
    w.u32(0);
    for (std::size_t i = 0; i < o.regions.size(); ++i) {
        w.u64(o.regions[i].va);
        w.u64(o.regions[i].len);
        w.u64(o.regions[i].offset);
        w.u32(static_cast<std::uint32_t>(o.state_fds + i));
        w.u32(0);
    }
    w.bytes(o.state.data(), o.state.size());
    return finish(w);
}

Result<Offer> decode_offer(std::span<const std::uint8_t> bytes, std::size_t fd_count) {
    codec::Reader r(bytes);
    auto k = read_header(r, bytes.size(), fd_count);
    if (!k)
        return fail(std::move(k.error()));
    if (*k != Kind::offer)
        return fail(bad("expected an OFFER, got kind " + std::to_string(static_cast<int>(*k))));
    Offer o;
    const std::uint32_t regions = r.u32("region count");
    const std::uint32_t state_len = r.u32("state length");
    o.sender = r.u32("sender pid");
    const std::uint32_t reserved = r.u32("reserved");
    if (!r.ok())
        return fail(bad(r.error()));
    if (reserved != 0)
        return fail(bad("reserved field is not 0"));
    // Checked before anything is allocated from it.
    if (regions > r.left() / 32 || regions > fd_count)
        return fail(bad(std::to_string(regions) + " regions cannot fit the " +
                        std::to_string(r.left()) + " bytes and " + std::to_string(fd_count) +
                        " fds that arrived"));
    o.state_fds = static_cast<std::uint32_t>(fd_count - regions);
    for (std::uint32_t i = 0; i < regions; ++i) {
        Region g;
        g.va = r.u64("region address");
        g.len = r.u64("region length");
        g.offset = r.u64("region offset");
        const std::uint32_t fd = r.u32("region fd index");
        const std::uint32_t zero = r.u32("region reserved");
        if (!r.ok())
            return fail(bad(r.error()));
        const std::string name = "region " + std::to_string(i) + " " + hex(g.va) + "+" + hex(g.len);
        if (zero != 0)
            return fail(bad(name + ": reserved field is not 0"));
        if (fd != o.state_fds + i)
            return fail(bad(name + ": fd index " + std::to_string(fd) + ", expected " +
                            std::to_string(o.state_fds + i)));
        if (g.len == 0 || (g.va | g.len | g.offset) % kPage != 0)
            return fail(bad(name + ": empty or not 4 KiB aligned (offset " + hex(g.offset) + ")"));
        if (g.va + g.len < g.va || g.offset + g.len < g.offset)
            return fail(bad(name + ": wraps around"));
        o.regions.push_back(g);
    }
    auto sorted = o.regions;
    std::sort(sorted.begin(), sorted.end(),
              [](const Region& a, const Region& b) { return a.va < b.va; });
    for (std::size_t i = 1; i < sorted.size(); ++i)
        if (sorted[i - 1].va + sorted[i - 1].len > sorted[i].va)
            return fail(bad("regions at " + hex(sorted[i - 1].va) + " and " + hex(sorted[i].va) +
                            " overlap"));
    if (state_len != r.left())
        return fail(bad("state of " + std::to_string(state_len) + " bytes, " +
                        std::to_string(r.left()) + " left in the message"));
    o.state.assign(bytes.begin() + static_cast<std::ptrdiff_t>(r.pos()), bytes.end());
    return o;
}

std::vector<std::uint8_t> encode_note(const Note& n) {
    codec::Writer w;
    header(w, n.kind, 0);
    w.str(n.text.substr(0, kMaxText));
    return finish(w);
}

Result<Note> decode_note(std::span<const std::uint8_t> bytes, std::size_t fd_count) {
    codec::Reader r(bytes);
    auto k = read_header(r, bytes.size(), fd_count);
    if (!k)
        return fail(std::move(k.error()));
    if (*k == Kind::offer)
        return fail(bad("expected a reply, got an OFFER"));
    Note n;
    n.kind = *k;
    n.text = r.str("text");
    if (!r.ok())
        return fail(bad(r.error()));
    if (n.text.size() > kMaxText)
        return fail(bad("text of " + std::to_string(n.text.size()) + " bytes (at most " +
                        std::to_string(kMaxText) + ")"));
    if (!r.at_end())
        return fail(bad(std::to_string(r.left()) + " bytes after the text"));
    return n;
}

}  // namespace vfiokit::vfio::handover

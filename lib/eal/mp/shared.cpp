// The shared runtime: what a primary tells its secondaries ("eal.memory",
// "eal.info") and what a secondary does with it.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "../byte_codec.hpp"
#include "vfiokit/eal/format.hpp"
#include "vfiokit/eal/mp.hpp"

namespace vfiokit::eal::mp {

namespace {

constexpr std::uint32_t kMemoryVersion = 1;
constexpr std::uint32_t kInfoVersion = 1;
// Room in an "eal.info" reply for the VFIO side's description; the rest is
// for the segment list.
constexpr std::size_t kMaxVfioInfo = 16 * 1024;

std::string size_str(std::uint64_t n) {
    if (n >= (1ULL << 20) && n % (1ULL << 20) == 0)
        return std::to_string(n >> 20) + " MiB";
    return std::to_string(n >> 10) + " KiB";
}

// A segment as both replies carry it. `iova` is the first byte's IOVA in
// either mode (pa mode too, where Segment::iova is empty), so a secondary
// can check that it sees the same pages.
void put_segment(codec::Writer& w, const Segment& s, std::uint64_t iova) {
    w.u64(s.va);
    w.u64(s.len);
    w.u64(s.page_size);
    w.i32(s.node);
    w.u32(s.iova ? 1 : 0);
    w.u64(iova);
    w.str(s.backing);
}

Segment get_segment(codec::Reader& r, std::uint64_t& iova) {
    Segment s;
    s.va = r.u64();
    s.len = r.u64();
    s.page_size = r.u64();
    s.node = r.i32();
    const bool contiguous = r.u32() != 0;
    iova = r.u64();
    if (contiguous)
        s.iova = iova;
    s.backing = r.str();
    return s;
}

std::uint64_t first_iova(const Memory& m, const Segment& s) {
    return m.virt2iova(reinterpret_cast<const void*>(s.va)).value_or(0);
}

std::unique_lock<RecursiveLock> maybe_lock(RecursiveLock* m) {
    return m ? std::unique_lock<RecursiveLock>(*m) : std::unique_lock<RecursiveLock>();
}

Error bad_reply(const Client& c, std::string_view what) {
    return Error(EPROTO, "malformed '" + std::string(what) + "' reply from the primary (pid " +
                             std::to_string(c.primary_pid()) + ")");
}

// "eal.memory". Request: the index of the first segment wanted, as a u32
// (a reply holds at most kMaxFds segments and kMaxPayload bytes; the
// secondary asks again from where it stopped). Reply: version, IOVA mode,
// window, page size, segment count, first index, then the segments, each
// with its fd in order.
Result<Reply> memory_reply(const Memory& m, RecursiveLock* lock, const Request& q) {
    codec::Reader rq(q.payload);
    const std::uint32_t first = q.payload.empty() ? 0 : rq.u32();
    if (!rq.ok())
        return fail(EINVAL, "eal.memory: the payload is the first segment's index (u32)");
    auto g = maybe_lock(lock);
    const auto segs = m.segments();
    if (first > segs.size())
        return fail(EINVAL, "eal.memory: segment " + std::to_string(first) + " of " +
                                std::to_string(segs.size()));
    codec::Writer w;
    w.u32(kMemoryVersion);
    w.u32(m.iova_mode() == IovaMode::pa ? 2 : 1);
    w.u64(m.window_base());
    w.u64(m.window_size());
    w.u64(m.page_size());
    w.u32(static_cast<std::uint32_t>(segs.size()));
    w.u32(first);
    codec::Writer body;
    Reply r;
    for (std::size_t i = first; i < segs.size() && r.owned_fds.size() < kMaxFds; ++i) {
        codec::Writer one;
        put_segment(one, *segs[i], first_iova(m, *segs[i]));
        if (w.size() + 4 + body.size() + one.size() > kMaxPayload)
            break;
        // A copy of the fd, made under the lock: the segment may go (and
        // its fd number be reused) before the reply is sent.
        int fd = ::fcntl(segs[i]->fd, F_DUPFD_CLOEXEC, 0);
        if (fd < 0)
            return fail(Error(errno, "dup the fd of segment " + range_text(segs[i]->va, segs[i]->len))
                            .context("eal.memory"));
        r.owned_fds.emplace_back(fd);
        body.raw(one.take_string());
    }
    w.u32(static_cast<std::uint32_t>(r.owned_fds.size()));
    w.raw(body.take_string());
    r.payload = w.take_string();
    return r;
}

// "eal.info". Reply: version, pid, uid, prefix, VFIO mode and reason, IOVA
// mode, window, page size, the VFIO description, segment count, how many
// are listed, the listed segments.
Result<Reply> info_reply(const Server& s, const Memory& m, RecursiveLock* lock,
                         const RuntimeFacts& f) {
    std::string vfio = s.info();
    if (vfio.size() > kMaxVfioInfo)
        vfio.resize(kMaxVfioInfo);
    auto g = maybe_lock(lock);
    const auto segs = m.segments();
    codec::Writer w;
    w.u32(kInfoVersion);
    w.i32(::getpid());
    w.u32(::geteuid());
    w.str(f.prefix);
    w.str(f.vfio_mode);
    w.str(f.vfio_mode_reason);
    w.str(m.iova_mode() == IovaMode::pa ? "pa" : "va");
    w.u64(m.window_base());
    w.u64(m.window_size());
    w.u64(m.page_size());
    w.str(vfio);
    w.u32(static_cast<std::uint32_t>(segs.size()));
    codec::Writer body;
    std::uint32_t listed = 0;
    for (const Segment* seg : segs) {
        codec::Writer one;
        put_segment(one, *seg, first_iova(m, *seg));
        if (w.size() + 4 + body.size() + one.size() > kMaxPayload)
            break;
        body.raw(one.take_string());
        ++listed;
    }
    w.u32(listed);
    w.raw(body.take_string());
    return Reply{w.take_string(), {}, {}};
}

}  // namespace

void serve_runtime(Server& s, const Memory& m, RuntimeFacts facts, RecursiveLock* memory_lock) {
    // Both for users admitted with allow_uid() too: the memory is what a
    // secondary of another user is admitted for, the info is a summary.
    // The VFIO fds (kVfioRequest) are not: their handler keeps the default.
    s.handle(
        std::string(kMemoryRequest),
        [&m, memory_lock](const Request& q, const Peer&) { return memory_reply(m, memory_lock, q); },
        Policy{.other_uids = true});
    s.handle(
        std::string(kInfoRequest),
        [&s, &m, memory_lock, f = std::move(facts)](const Request&, const Peer&) {
            return info_reply(s, m, memory_lock, f);
        },
        Policy{.other_uids = true});
}

Result<std::unique_ptr<Memory>> attach_memory(Client& c, const PhysicalLookup& physical) {
    const std::string ctx = "mp: attach the memory of the primary (pid " +
                            std::to_string(c.primary_pid()) + ", prefix " + c.prefix() + ")";
    MemoryOptions o;
    std::vector<Segment> segs;
    std::vector<std::uint64_t> iovas;
    std::vector<vfio::Fd> fds;
    std::uint32_t total = 0;
    do {
        codec::Writer q;
        q.u32(static_cast<std::uint32_t>(segs.size()));
        auto resp = c.request(kMemoryRequest, q.take_string());
        if (!resp)
            return fail(std::move(resp.error()).context(ctx));
        codec::Reader r(resp->payload);
        const std::uint32_t version = r.u32();
        const std::uint32_t mode = r.u32();
        MemoryOptions page;
        page.iova_mode = mode == 2 ? IovaMode::pa : IovaMode::va;
        page.base_virtaddr = r.u64();
        page.window = r.u64();
        page.page_size = r.u64();
        total = r.u32();
        const std::uint32_t first = r.u32();
        const std::uint32_t count = r.u32();
        if (!r.ok() || version != kMemoryVersion || (mode != 1 && mode != 2) ||
            first != segs.size() || count != resp->fds.size() || first + count > total ||
            (count == 0 && first < total))
            return fail(bad_reply(c, kMemoryRequest).context(ctx));
        // Every page of the answer must describe the same window.
        if (!segs.empty() && (page.base_virtaddr != o.base_virtaddr || page.window != o.window ||
                              page.page_size != o.page_size))
            return fail(bad_reply(c, kMemoryRequest).context(ctx));
        o = page;
        for (std::uint32_t k = 0; k < count; ++k) {
            std::uint64_t iova = 0;
            segs.push_back(get_segment(r, iova));
            iovas.push_back(iova);
            fds.push_back(std::move(resp->fds[k]));
        }
        if (!r.ok() || !r.at_end())
            return fail(bad_reply(c, kMemoryRequest).context(ctx));
    } while (segs.size() < total);

    std::vector<std::pair<std::uint64_t, std::uint64_t>> expect;
    for (std::size_t i = 0; i < segs.size(); ++i)
        expect.emplace_back(segs[i].va, iovas[i]);
    auto m = Memory::attach(o, std::move(segs), std::move(fds), physical);
    if (!m)
        return fail(std::move(m.error()).context(ctx));
    // Same pages as the primary's? In pa mode this compares what our own
    // pagemap (or the kernel, through `physical`) says with what the
    // primary's said. A primary without an IOVA for a page yet (cdev
    // no-IOMMU before its first device) says 0: nothing to compare.
    for (auto [va, iova] : expect) {
        auto here = (*m)->virt2iova(reinterpret_cast<const void*>(va));
        if (iova == 0 && o.iova_mode == IovaMode::pa)
            continue;
        if (!here || *here != iova)
            return fail(Error(EIO, "segment at " + hex(va) + ": IOVA " + hex(here.value_or(0)) +
                                       " here, " + hex(iova) + " in the primary")
                            .context(ctx));
    }
    return m;
}

Result<PrimaryInfo> query_info(Client& c) {
    auto resp = c.request(kInfoRequest);
    if (!resp)
        return fail(std::move(resp.error()));
    codec::Reader r(resp->payload);
    PrimaryInfo i;
    const std::uint32_t version = r.u32();
    i.pid = r.i32();
    i.uid = r.u32();
    i.prefix = r.str();
    i.vfio_mode = r.str();
    i.vfio_mode_reason = r.str();
    i.iova_mode = r.str();
    i.window_base = r.u64();
    i.window_size = r.u64();
    i.page_size = r.u64();
    i.vfio = r.str();
    i.segments_total = r.u32();
    const std::uint32_t listed = r.u32();
    if (!r.ok() || version != kInfoVersion || listed > i.segments_total)
        return fail(bad_reply(c, kInfoRequest));
    for (std::uint32_t k = 0; k < listed && r.ok(); ++k) {
        std::uint64_t iova = 0;
        Segment s = get_segment(r, iova);
        i.segments.push_back({s.va, s.len, s.page_size, s.node, iova, s.iova.has_value(),
                              std::move(s.backing)});
    }
    if (!r.ok() || !r.at_end())
        return fail(bad_reply(c, kInfoRequest));
    return i;
}

std::string to_text(const PrimaryInfo& i) {
    std::uint64_t bytes = 0;
    for (const auto& s : i.segments)
        bytes += s.len;
    std::string t;
    t += "primary      pid " + std::to_string(i.pid) + ", uid " + std::to_string(i.uid) +
         ", prefix " + i.prefix + "\n";
    t += "vfio mode    " + i.vfio_mode + " (" + i.vfio_mode_reason + ")\n";
    t += "iova mode    " + i.iova_mode + "\n";
    t += "window       " + range_text(i.window_base, i.window_size) + ", " + size_str(i.window_size) +
         ", pages of " + size_str(i.page_size) + "\n";
    t += "segments     " + std::to_string(i.segments_total) + ", " + size_str(bytes) +
         (i.segments.size() < i.segments_total ? " listed" : "") + "\n";
    for (const auto& s : i.segments) {
        t += "  " + range_text(s.va, s.len) + "  " + size_str(s.len) + "  node " +
             (s.node < 0 ? std::string("any") : std::to_string(s.node)) + "  iova " +
             hex(s.iova) + (s.iova_contiguous ? "" : " (first page)") + "  " + s.backing + "\n";
    }
    if (i.segments.size() < i.segments_total)
        t += "  ... and " + std::to_string(i.segments_total - i.segments.size()) + " more\n";
    t += "vfio         " + (i.vfio.empty() ? std::string("(no description)") : i.vfio) + "\n";
    return t;
}

namespace {

std::string json_str(std::string_view s) {
    std::string o = "\"";
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            o += '\\';
            o += static_cast<char>(c);
        } else if (c < 0x20) {
            o += "\\u" + hex_digits(c, 4);
        } else {
            o += static_cast<char>(c);
        }
    }
    return o + "\"";
}

}  // namespace

std::string to_json(const PrimaryInfo& i) {
    std::string j = "{\n";
    j += "  \"format\": \"vfiokit-procinfo\",\n  \"version\": 1,\n";
    j += "  \"prefix\": " + json_str(i.prefix) + ",\n";
    j += "  \"primary\": {\"pid\": " + std::to_string(i.pid) +
         ", \"uid\": " + std::to_string(i.uid) + "},\n";
    j += "  \"vfio\": {\"mode\": " + json_str(i.vfio_mode) +
         ", \"mode_reason\": " + json_str(i.vfio_mode_reason) +
         ", \"description\": " + json_str(i.vfio) + "},\n";
    j += "  \"iova_mode\": " + json_str(i.iova_mode) + ",\n";
    j += "  \"memory\": {\n";
    j += "    \"window\": {\"base\": " + json_str(hex(i.window_base)) +
         ", \"size\": " + std::to_string(i.window_size) + "},\n";
    j += "    \"page_size\": " + std::to_string(i.page_size) + ",\n";
    j += "    \"segment_count\": " + std::to_string(i.segments_total) + ",\n";
    j += "    \"segments\": [";
    for (std::size_t k = 0; k < i.segments.size(); ++k) {
        const SegmentInfo& s = i.segments[k];
        j += k ? ",\n      " : "\n      ";
        j += "{\"va\": " + json_str(hex(s.va)) + ", \"len\": " + std::to_string(s.len) +
             ", \"page_size\": " + std::to_string(s.page_size) +
             ", \"node\": " + std::to_string(s.node) +
             ", \"iova\": " + json_str(hex(s.iova)) +
             ", \"iova_contiguous\": " + (s.iova_contiguous ? "true" : "false") +
             ", \"backing\": " + json_str(s.backing) + "}";
    }
    j += i.segments.empty() ? "]\n" : "\n    ]\n";
    j += "  }\n}\n";
    return j;
}

}  // namespace vfiokit::eal::mp

#include "caps.hpp"

#include <cerrno>
#include <string>

#include "vfiokit/uapi/vfio.hpp"

namespace vfiokit::vfio::detail {

namespace {

// argsz and flags open every VFIO info struct.
struct Head {
    std::uint32_t argsz;
    std::uint32_t flags;
};

}  // namespace

Error malformed(std::string_view what) {
    return Error(EPROTO, std::string(what) + ": malformed capability chain");
}

Result<InfoBuffer> read_info(std::uint32_t head_size, std::uint32_t caps_flag,
                             const std::function<Result<void>(void* buf)>& issue,
                             std::string_view what) {
    if (head_size < sizeof(Head) || head_size > kMaxInfoSize)
        return fail(EINVAL, std::string(what) + ": bad header size " + std::to_string(head_size));
    std::uint32_t size = head_size;
    for (int attempt = 0;; ++attempt) {
        InfoBuffer buf(size);
        Head h{size, 0};
        std::memcpy(buf.data(), &h, sizeof h);
        if (auto r = issue(buf.data()); !r)
            return fail(std::move(r.error()));
        (void)buf.read(0, h);
        // Done when nothing more is wanted, or the buffer holds it all.
        if (caps_flag == 0 || (h.flags & caps_flag) == 0 || h.argsz <= size)
            return buf;
        if (h.argsz > kMaxInfoSize)
            return fail(EPROTO, std::string(what) + ": argsz " + std::to_string(h.argsz) +
                                    " is beyond any capability chain (at most " +
                                    std::to_string(kMaxInfoSize) + " bytes)");
        if (attempt == 3)
            return fail(EAGAIN, std::string(what) + ": the capability chain keeps growing");
        size = h.argsz;
    }
}

Result<void> walk_caps(const InfoBuffer& buf, std::uint32_t head_size, std::uint32_t first,
                       const std::function<Result<void>(const Cap&)>& visit,
                       std::string_view what) {
    // Offsets only grow, so the walk ends after at most size/8 steps.
    for (std::uint32_t off = first; off != 0;) {
        uapi::vfio_info_cap_header h;
        if (off < head_size || !buf.read(off, h))
            return fail(malformed(what));
        if (auto r = visit(Cap{h.id, h.version, off}); !r)
            return r;
        if (h.next != 0 && h.next <= off)
            return fail(malformed(what));
        off = h.next;
    }
    return {};
}

}  // namespace vfiokit::vfio::detail

// VFIO info structs with capability chains, read and walked in one place
// (private to lib/eal/vfio).
//
// VFIO_IOMMU_GET_INFO, VFIO_DEVICE_GET_INFO and VFIO_DEVICE_GET_REGION_INFO
// share a protocol (include/uapi/linux/vfio.h, "capability chains"): the
// struct starts with argsz and flags; when the reply has more to say than
// argsz leaves room for, the ioctl still succeeds, raises argsz to the size
// needed and leaves cap_offset 0; asked again with that much room, it fills
// in a chain of vfio_info_cap_header records whose `next` (and the struct's
// cap_offset) are byte offsets from the start of the buffer, 0 ending it.
//
// Everything read here comes from the kernel (or another backend), but is
// still checked: a chain that points outside the buffer, into the fixed
// header, or backwards (a loop) fails with EPROTO instead of overrunning or
// spinning, and an argsz beyond kMaxInfoSize is refused before allocating.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <span>
#include <string_view>
#include <vector>

#include "vfiokit/eal/error.hpp"

namespace vfiokit::vfio::detail {

// Far above any real chain (a few hundred bytes), far below harm.
inline constexpr std::uint32_t kMaxInfoSize = 64 * 1024;

// The bytes of one info struct and its chain, 8-byte aligned (the
// structs hold u64 fields).
class InfoBuffer {
public:
    InfoBuffer() = default;
    explicit InfoBuffer(std::uint32_t size) : words_((size + 7) / 8, 0), size_(size) {}

    [[nodiscard]] void* data() { return words_.data(); }
    [[nodiscard]] std::uint32_t size() const { return size_; }
    [[nodiscard]] std::span<const std::uint8_t> bytes() const {
        return {reinterpret_cast<const std::uint8_t*>(words_.data()), size_};
    }
    // Whether [off, off + len) lies inside the buffer (no overflow).
    [[nodiscard]] bool fits(std::size_t off, std::size_t len) const {
        return off <= size_ && len <= size_ - off;
    }
    // Copies a T from `off`; false (and `out` untouched) when it does not fit.
    template <class T>
    [[nodiscard]] bool read(std::size_t off, T& out) const {
        if (!fits(off, sizeof(T)))
            return false;
        std::memcpy(&out, bytes().data() + off, sizeof(T));
        return true;
    }

private:
    std::vector<std::uint64_t> words_;
    std::uint32_t size_ = 0;
};

// Issues an info ioctl, growing the buffer as the kernel asks. `issue(buf)`
// sets the struct's inputs other than argsz (already set: to head_size,
// then to what the kernel asked for) and issues the ioctl. The buffer grows
// only when the reply's flags have `caps_flag` (0: never; only the fixed
// part is read), at most three times after the first call (the chain can grow between calls, as
// when a group joins a container): then EAGAIN. EPROTO when argsz asks for
// more than kMaxInfoSize. `what` names the ioctl in messages.
[[nodiscard]] Result<InfoBuffer> read_info(std::uint32_t head_size, std::uint32_t caps_flag,
                                           const std::function<Result<void>(void* buf)>& issue,
                                           std::string_view what);

struct Cap {
    std::uint16_t id = 0;
    std::uint16_t version = 0;
    std::uint32_t offset = 0;  // of its vfio_info_cap_header in the buffer
};

// Calls `visit` for each capability, starting at `first` (the struct's
// cap_offset; 0 = none). EPROTO "<what>: malformed capability chain" when
// a header does not lie wholly inside the buffer, starts inside the first
// `head_size` bytes, or its `next` does not move forward. A visit may fail
// (e.g. a capability too short for its own payload: use malformed()); the
// walk stops there with its error.
[[nodiscard]] Result<void> walk_caps(const InfoBuffer& buf, std::uint32_t head_size,
                                     std::uint32_t first,
                                     const std::function<Result<void>(const Cap&)>& visit,
                                     std::string_view what);

// The EPROTO error walk_caps gives, for visitors to use.
[[nodiscard]] Error malformed(std::string_view what);

}  // namespace vfiokit::vfio::detail

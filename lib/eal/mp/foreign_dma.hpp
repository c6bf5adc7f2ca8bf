// The primary's record of the DMA mappings its secondaries make in its
// containers (doc/multiprocess.md "A secondary's own mappings"), and the
// codec of the three requests that keep it. Private to lib/eal.
//
// A secondary that maps its own memory into a container it imported pins
// its pages in the primary's container: the kernel keeps them pinned until
// the range is unmapped or the container closes, and a SIGKILLed secondary
// unmaps nothing. So before the map ioctl the secondary announces the
// range ("vfio.dma.intent"), after it confirms ("vfio.dma.mapped") or
// takes it back, and after an unmap it says so ("vfio.dma.unmapped"). When
// its connection ends with ranges still recorded, the primary unmaps every
// one of them, announced or confirmed: a secondary that died between the
// ioctl and its confirmation leaves a range that may or may not be mapped,
// and an unmap of nothing is told apart (ENOENT, or 0 bytes) and counted as
// already gone.
//
// Ranges are per connection (mp::Peer::connection) and per container (its
// position in the primary's containers(), which is the order the secondary
// imported them in). An announced range may not overlap a range another
// connection holds in the same container: the cleanup of one secondary
// must never unmap another's mapping. Overlap with the primary's own
// mappings is the caller's check (it has the container's table).
//
// Not thread-safe: the EAL calls it on the server thread, under its lock.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "vfiokit/eal/error.hpp"

namespace vfiokit::eal::mp {

inline constexpr std::string_view kDmaIntentRequest = "vfio.dma.intent";
inline constexpr std::string_view kDmaMappedRequest = "vfio.dma.mapped";
inline constexpr std::string_view kDmaUnmappedRequest = "vfio.dma.unmapped";

// One range as the requests carry it: u32 container, u32 zero, u64 iova,
// u64 length (24 bytes, little-endian).
struct DmaRange {
    std::uint32_t container = 0;
    std::uint64_t iova = 0;
    std::uint64_t len = 0;
    bool operator==(const DmaRange&) const = default;
};
inline constexpr std::size_t kDmaRangeBytes = 24;

[[nodiscard]] std::string encode(const DmaRange& r);
// EBADMSG for a payload that is not exactly one range, a non-zero reserved
// field, an empty or wrapping range.
[[nodiscard]] Result<DmaRange> decode_dma_range(std::string_view payload);

// What is recorded of a range: announced only, or confirmed mapped.
struct ForeignRange {
    DmaRange range;
    bool confirmed = false;
};

class ForeignDma {
public:
    // At most this many ranges per connection (a peer cannot grow the
    // primary's memory without bound); one more is ENOSPC.
    static constexpr std::size_t kMaxPerConnection = 65536;

    // Records `r` as announced by `conn`. EEXIST when it overlaps a range of
    // another connection in the same container, or one of the same
    // connection's (the container refuses overlaps itself, so a second
    // announcement of a range is a confused peer).
    [[nodiscard]] Result<void> announce(std::uint64_t conn, const DmaRange& r);
    // Marks the announced range `r` of `conn` mapped. ENOENT when `conn`
    // announced no such range (exactly this container, IOVA and length).
    [[nodiscard]] Result<void> confirm(std::uint64_t conn, const DmaRange& r);
    // Forgets every range of `conn` in r.container that lies inside `r`
    // (an unmap of several mappings at once, or a map that failed); returns
    // how many. A range that only overlaps `r` stays.
    std::size_t release(std::uint64_t conn, const DmaRange& r);
    // Removes and returns every range of `conn` (its connection ended), in
    // container and IOVA order.
    [[nodiscard]] std::vector<ForeignRange> take(std::uint64_t conn);

    [[nodiscard]] std::size_t count(std::uint64_t conn) const;
    [[nodiscard]] std::size_t total() const;
    // Whether any connection's range in `container` overlaps [iova, iova+len).
    [[nodiscard]] bool overlaps(std::uint32_t container, std::uint64_t iova,
                                std::uint64_t len) const;

private:
    struct Key {
        std::uint32_t container;
        std::uint64_t iova;
        auto operator<=>(const Key&) const = default;
    };
    struct Entry {
        std::uint64_t conn;
        std::uint64_t len;
        bool confirmed;
    };
    // Every connection's ranges, by container and IOVA: ranges never
    // overlap, so the one before a point is the only one that can hold it.
    std::map<Key, Entry> ranges_;
    std::map<std::uint64_t, std::size_t> per_conn_;
};

}  // namespace vfiokit::eal::mp

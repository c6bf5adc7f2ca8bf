// Value types: MAC addresses and link status in DPDK's words; DMA memory
// for drivers' rings.
#include <cerrno>
#include <cstring>
#include <map>

#include "port_table.hpp"
#include "vfiokit/eal/eal.hpp"
#include "vfiokit/eal/strformat.hpp"

namespace vfiokit::ethdev {

std::string MacAddr::str() const {
    return strformat("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", bytes[0], bytes[1], bytes[2],
                       bytes[3], bytes[4], bytes[5]);
}

// "52:54:00:12:34:56" or "52-54-00-12-34-56"; hex digits in either case.
Result<MacAddr> MacAddr::parse(std::string_view s) {
    auto bad = [&] {
        return fail(Error(EINVAL, "MAC address '" + std::string(s) + "'")
                        .hint("write six hex bytes separated by ':', e.g. 02:00:00:00:00:01"));
    };
    if (s.size() != 17)
        return bad();
    MacAddr m;
    const char sep = s[2];
    if (sep != ':' && sep != '-')
        return bad();
    auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9')
            return c - '0';
        if (c >= 'a' && c <= 'f')
            return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
            return c - 'A' + 10;
        return -1;
    };
    for (int i = 0; i < 6; ++i) {
        const int hi = nibble(s[i * 3]), lo = nibble(s[i * 3 + 1]);
        if (hi < 0 || lo < 0 || (i < 5 && s[i * 3 + 2] != sep))
            return bad();
        m.bytes[i] = static_cast<std::uint8_t>(hi << 4 | lo);
    }
    return m;
}

// rte_eth_link_to_str's wording: "Link up at 1 Gbps FDX Autoneg",
// "Link down".
std::string Link::str() const {
    if (!up)
        return "Link down";
    std::string speed;
    if (speed_mbps == 0)
        speed = "Unknown";
    else if (speed_mbps < 1000)
        speed = strformat("{} Mbps", speed_mbps);
    else if (speed_mbps % 1000 == 0)
        speed = strformat("{} Gbps", speed_mbps / 1000);
    else
        speed = strformat("{}.{} Gbps", speed_mbps / 1000, speed_mbps % 1000 / 100);
    return strformat("Link up at {} {} {}", speed, full_duplex ? "FDX" : "HDX",
                       autoneg ? "Autoneg" : "Fixed");
}

namespace {
// Which heap each ring came from (DmaMemory has no room for it). The heap,
// not the EAL: drivers free their rings while the EAL is being destroyed
// (after current() is cleared, before the heaps go).
std::map<const void*, eal::Heap*>& dma_owners() {
    static auto* m = new std::map<const void*, eal::Heap*>();
    return *m;
}
}  // namespace

Result<DmaMemory> dma_alloc(std::uint64_t len, std::uint64_t align, int socket) {
    eal::Eal* e = eal::Eal::current();
    if (!e)
        return fail(Error(ENODEV, strformat("ethdev dma_alloc {} bytes: no EAL in this process",
                                            len))
                        .hint("call eal::Eal::init before probing drivers"));
    if (align < 64)
        align = 64;
    auto g = detail::lock();
    eal::Heap& heap = e->heap(socket);
    auto p = heap.alloc(len, align);
    if (!p)
        return fail(std::move(p.error()).context(strformat("ethdev dma_alloc {} bytes", len)));
    auto iova = e->virt2iova(*p);
    if (!iova) {
        (void)heap.free(*p);
        return fail(Error(EFAULT, strformat("ethdev dma_alloc {} bytes: heap memory at {} has "
                                            "no IOVA",
                                            len, *p)));
    }
    std::memset(*p, 0, len);
    dma_owners()[*p] = &heap;
    return DmaMemory{*p, *iova, len};
}

void dma_free(DmaMemory& m) {
    if (!m.va)
        return;
    auto g = detail::lock();
    if (auto it = dma_owners().find(m.va); it != dma_owners().end()) {
        (void)it->second->free(m.va);
        dma_owners().erase(it);
    }
    m = DmaMemory{};
}

}  // namespace vfiokit::ethdev

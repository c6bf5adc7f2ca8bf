#include "rss.hpp"

#include "regs.hpp"
#include "vfiokit/ethdev/ethdev.hpp"

namespace vfiokit::igb {

std::uint32_t toeplitz(std::span<const std::uint8_t> key, std::span<const std::uint8_t> input) {
    std::uint32_t hash = 0;
    // The 32-bit window of the key that lines up with the current input bit.
    std::uint32_t window = 0;
    for (unsigned i = 0; i < 4 && i < key.size(); ++i)
        window |= std::uint32_t{key[i]} << (24 - 8 * i);
    std::size_t next_key_bit = 32;
    for (std::uint8_t byte : input) {
        for (int bit = 7; bit >= 0; --bit) {
            if (byte & (1u << bit))
                hash ^= window;
            // Slide the window by one key bit (zeros past the key's end).
            std::uint32_t in = 0;
            if (next_key_bit / 8 < key.size())
                in = (key[next_key_bit / 8] >> (7 - next_key_bit % 8)) & 1u;
            window = (window << 1) | in;
            ++next_key_bit;
        }
    }
    return hash;
}

namespace {
void put32(std::uint8_t* p, std::uint32_t v) {
    p[0] = static_cast<std::uint8_t>(v >> 24);
    p[1] = static_cast<std::uint8_t>(v >> 16);
    p[2] = static_cast<std::uint8_t>(v >> 8);
    p[3] = static_cast<std::uint8_t>(v);
}
}  // namespace

std::uint32_t rss_hash_ipv4(std::span<const std::uint8_t> key, std::uint32_t src,
                            std::uint32_t dst) {
    std::array<std::uint8_t, 8> in{};
    put32(in.data(), src);
    put32(in.data() + 4, dst);
    return toeplitz(key, in);
}

std::uint32_t rss_hash_ipv4_l4(std::span<const std::uint8_t> key, std::uint32_t src,
                               std::uint32_t dst, std::uint16_t sport, std::uint16_t dport) {
    std::array<std::uint8_t, 12> in{};
    put32(in.data(), src);
    put32(in.data() + 4, dst);
    in[8] = static_cast<std::uint8_t>(sport >> 8);
    in[9] = static_cast<std::uint8_t>(sport);
    in[10] = static_cast<std::uint8_t>(dport >> 8);
    in[11] = static_cast<std::uint8_t>(dport);
    return toeplitz(key, in);
}

std::uint32_t mrqc_fields(std::uint64_t rss_hf) {
    namespace r = ethdev::rss;
    auto m = regs::Mrqc::zero();
    m.set_ipv4((rss_hf & r::kIpv4) != 0)
        .set_tcp_ipv4((rss_hf & r::kIpv4Tcp) != 0)
        .set_udp_ipv4((rss_hf & r::kIpv4Udp) != 0)
        .set_ipv6((rss_hf & r::kIpv6) != 0)
        .set_tcp_ipv6((rss_hf & r::kIpv6Tcp) != 0)
        .set_udp_ipv6((rss_hf & r::kIpv6Udp) != 0);
    return m.raw();
}

}  // namespace vfiokit::igb

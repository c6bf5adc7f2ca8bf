#include "packet.hpp"

#include <utility>

namespace vfiokit::testpmd::pkt {

std::uint16_t checksum(const std::uint8_t* p, std::size_t len) {
    std::uint32_t sum = 0;
    for (; len > 1; p += 2, len -= 2)
        sum += get16(p);
    if (len)
        sum += std::uint32_t{*p} << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<std::uint16_t>(~sum);
}

void build_udp(std::uint8_t* f, std::size_t len, const UdpFlow& flow, std::uint64_t seq) {
    set_eth(f, flow.dst_mac, flow.src_mac);
    put16(f + 12, kEtherIpv4);
    std::uint8_t* ip = f + kEthLen;
    const std::size_t ip_len = len - kEthLen;
    ip[0] = 0x45;  // version 4, 5 words of header
    ip[1] = 0;     // DSCP/ECN
    put16(ip + 2, static_cast<std::uint16_t>(ip_len));
    put16(ip + 4, static_cast<std::uint16_t>(seq));  // identification
    put16(ip + 6, 0);                                  // flags, fragment offset
    ip[8] = 64;                                        // TTL
    ip[9] = kProtoUdp;
    put16(ip + 10, 0);
    put32(ip + 12, flow.src_ip);
    put32(ip + 16, flow.dst_ip);
    put16(ip + 10, checksum(ip, kIpv4Len));
    std::uint8_t* udp = ip + kIpv4Len;
    put16(udp, flow.src_port);
    put16(udp + 2, flow.dst_port);
    put16(udp + 4, static_cast<std::uint16_t>(ip_len - kIpv4Len));
    put16(udp + 6, 0);  // no checksum (RFC 768: zero means none over IPv4)
    std::uint8_t* pay = udp + kUdpLen;
    put64(pay, seq);
    const std::size_t rest = len - kMinUdpFrame;
    for (std::size_t i = 0; i < rest; ++i)
        pay[kSeqLen + i] = static_cast<std::uint8_t>(seq + i);
}

bool check_udp_payload(const std::uint8_t* f, std::size_t len, std::uint64_t* seq) {
    if (len < kMinUdpFrame || ether_type(f) != kEtherIpv4)
        return false;
    const std::uint8_t* ip = f + kEthLen;
    if (ip[0] != 0x45 || ip[9] != kProtoUdp || get16(ip + 2) != len - kEthLen ||
        checksum(ip, kIpv4Len) != 0)
        return false;
    const std::uint8_t* udp = ip + kIpv4Len;
    if (get16(udp + 4) != len - kEthLen - kIpv4Len)
        return false;
    const std::uint8_t* pay = udp + kUdpLen;
    const std::uint64_t s = get64(pay);
    for (std::size_t i = 0; i < len - kMinUdpFrame; ++i)
        if (pay[kSeqLen + i] != static_cast<std::uint8_t>(s + i))
            return false;
    if (seq)
        *seq = s;
    return true;
}

namespace {

// ARP over Ethernet/IPv4 (RFC 826): htype 1, ptype 0x0800, hlen 6, plen 4.
bool arp_reply(std::uint8_t* f, std::size_t len, const ethdev::MacAddr& mac) {
    if (len < kEthLen + kArpLen)
        return false;
    std::uint8_t* a = f + kEthLen;
    if (get16(a) != 1 || get16(a + 2) != kEtherIpv4 || a[4] != 6 || a[5] != 4 ||
        get16(a + 6) != 1 /* request */)
        return false;
    std::uint8_t sha[6], spa[4], tpa[4];
    std::memcpy(sha, a + 8, 6);
    std::memcpy(spa, a + 14, 4);
    std::memcpy(tpa, a + 24, 4);
    put16(a + 6, 2);  // reply
    std::memcpy(a + 8, mac.bytes.data(), 6);  // we are whoever was asked for
    std::memcpy(a + 14, tpa, 4);
    std::memcpy(a + 18, sha, 6);
    std::memcpy(a + 24, spa, 4);
    ethdev::MacAddr to;
    std::memcpy(to.bytes.data(), sha, 6);
    set_eth(f, to, mac);
    return true;
}

bool icmp_reply(std::uint8_t* f, std::size_t len, const ethdev::MacAddr& mac) {
    if (len < kEthLen + kIpv4Len + kIcmpLen)
        return false;
    std::uint8_t* ip = f + kEthLen;
    if ((ip[0] >> 4) != 4 || ip[9] != kProtoIcmp)
        return false;
    const std::size_t ihl = std::size_t{ip[0] & 0xfu} * 4;
    const std::size_t ip_len = get16(ip + 2);
    if (ihl < kIpv4Len || ip_len < ihl + kIcmpLen || kEthLen + ip_len > len)
        return false;
    std::uint8_t* icmp = ip + ihl;
    if (icmp[0] != 8 /* echo request */ || icmp[1] != 0)
        return false;
    // Swap the addresses: the IPv4 header's sum does not change, but it is
    // computed again so a frame with a bad one gets a right one back.
    std::uint8_t tmp[4];
    std::memcpy(tmp, ip + 12, 4);
    std::memcpy(ip + 12, ip + 16, 4);
    std::memcpy(ip + 16, tmp, 4);
    put16(ip + 10, 0);
    put16(ip + 10, checksum(ip, ihl));
    icmp[0] = 0;  // echo reply
    put16(icmp + 2, 0);
    put16(icmp + 2, checksum(icmp, ip_len - ihl));
    set_eth(f, eth_src(f), mac);
    return true;
}

}  // namespace

bool make_reply(std::uint8_t* f, std::size_t len, const ethdev::MacAddr& mac) {
    if (len < kEthLen)
        return false;
    switch (ether_type(f)) {
    case kEtherArp: return arp_reply(f, len, mac);
    case kEtherIpv4: return icmp_reply(f, len, mac);
    default: return false;
    }
}

}  // namespace vfiokit::testpmd::pkt

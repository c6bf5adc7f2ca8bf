// The kernel-driven peer of the NIC lab tests (igb, virtio-net, mp): a NIC
// on the same QEMU hub left on the guest kernel's own driver, reached
// through sysfs (its name, MAC, counters) and an AF_PACKET socket (frames
// in and out, with the VLAN tag the kernel reports beside the frame). Plus
// the frames both sides exchange. Tests only; header-only.
#pragma once

#include <arpa/inet.h>
#include <dirent.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

namespace vfiokit::testing {

using Bytes = std::vector<std::uint8_t>;
using Mac = std::array<std::uint8_t, 6>;

inline std::optional<Mac> parse_mac(const std::string& s) {
    Mac m{};
    unsigned v[6];
    if (std::sscanf(s.c_str(), "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
        return std::nullopt;
    for (int i = 0; i < 6; ++i)
        m[i] = static_cast<std::uint8_t>(v[i]);
    return m;
}

inline std::string read_line(const std::string& path) {
    std::ifstream f(path);
    std::string s;
    std::getline(f, s);
    return s;
}

// The kernel netdev of PCI device `bdf` (its only entry in .../net), or "".
inline std::string netdev_of(const std::string& bdf) {
    std::string name;
    if (DIR* d = opendir(("/sys/bus/pci/devices/" + bdf + "/net").c_str())) {
        while (dirent* e = readdir(d))
            if (e->d_name[0] != '.')
                name = e->d_name;
        closedir(d);
    }
    return name;
}

// A counter of /sys/class/net/IF/statistics (rx_packets, rx_errors...).
inline std::uint64_t netdev_counter(const std::string& ifname, const std::string& counter) {
    return std::stoull("0" + read_line("/sys/class/net/" + ifname + "/statistics/" + counter));
}

// Ethernet + IPv4 + UDP, `payload` bytes of UDP data (a pattern from
// `seed`), optionally with an 802.1Q tag after the source address.
struct UdpFlow {
    Mac dst{}, src{};
    std::uint32_t saddr = 0, daddr = 0;  // host order
    std::uint16_t sport = 0, dport = 0;
};
inline Bytes udp_frame(const UdpFlow& f, std::size_t payload, std::uint8_t seed,
                       std::optional<std::uint16_t> vlan_tci = std::nullopt) {
    Bytes b;
    auto put8 = [&](unsigned v) { b.push_back(static_cast<std::uint8_t>(v)); };
    auto put16 = [&](unsigned v) { put8(v >> 8); put8(v); };
    auto put32 = [&](std::uint32_t v) { put16(v >> 16); put16(v & 0xffff); };
    b.insert(b.end(), f.dst.begin(), f.dst.end());
    b.insert(b.end(), f.src.begin(), f.src.end());
    if (vlan_tci) {
        put16(0x8100);
        put16(*vlan_tci);
    }
    put16(0x0800);
    const std::size_t ip = b.size();
    const unsigned ip_len = 20 + 8 + static_cast<unsigned>(payload);
    put8(0x45); put8(0); put16(ip_len); put16(0); put16(0x4000); put8(64); put8(17); put16(0);
    put32(f.saddr); put32(f.daddr);
    std::uint32_t sum = 0;
    for (std::size_t i = ip; i < ip + 20; i += 2)
        sum += (unsigned{b[i]} << 8) | b[i + 1];
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    const auto csum = static_cast<std::uint16_t>(~sum);
    b[ip + 10] = static_cast<std::uint8_t>(csum >> 8);
    b[ip + 11] = static_cast<std::uint8_t>(csum);
    put16(f.sport); put16(f.dport); put16(8 + static_cast<unsigned>(payload)); put16(0);  // no UDP checksum
    for (std::size_t i = 0; i < payload; ++i)
        put8(static_cast<unsigned>(seed + i));
    return b;
}

// A raw packet socket on one interface: sends whole frames, receives
// frames with the VLAN tag the kernel took out of them (auxdata).
class PacketSocket {
public:
    struct Frame {
        Bytes bytes;
        std::optional<std::uint16_t> vlan_tci;  // from PACKET_AUXDATA
    };

    // Opens and binds; fd() < 0 and error() says why on failure.
    explicit PacketSocket(const std::string& ifname) {
        fd_ = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
        if (fd_ < 0) {
            error_ = std::string("socket(AF_PACKET): ") + std::strerror(errno);
            return;
        }
        int on = 1;
        (void)::setsockopt(fd_, SOL_PACKET, PACKET_AUXDATA, &on, sizeof on);
        sockaddr_ll sll{};
        sll.sll_family = AF_PACKET;
        sll.sll_protocol = htons(ETH_P_ALL);
        sll.sll_ifindex = static_cast<int>(if_nametoindex(ifname.c_str()));
        if (sll.sll_ifindex == 0 ||
            ::bind(fd_, reinterpret_cast<sockaddr*>(&sll), sizeof sll) != 0) {
            error_ = "bind to " + ifname + ": " + std::strerror(errno);
            ::close(fd_);
            fd_ = -1;
        }
    }
    ~PacketSocket() {
        if (fd_ >= 0)
            ::close(fd_);
    }
    PacketSocket(const PacketSocket&) = delete;
    PacketSocket& operator=(const PacketSocket&) = delete;

    [[nodiscard]] int fd() const { return fd_; }
    [[nodiscard]] const std::string& error() const { return error_; }

    [[nodiscard]] bool send(const Bytes& b) const {
        return ::send(fd_, b.data(), b.size(), 0) == static_cast<ssize_t>(b.size());
    }
    // The next frame received (not one this host sent) within
    // `timeout_ms`, or nullopt.
    [[nodiscard]] std::optional<Frame> recv(int timeout_ms) const {
        for (;;) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, timeout_ms) != 1)
                return std::nullopt;
            sockaddr_ll from{};
            auto f = recv_one(from);
            if (f && from.sll_pkttype != PACKET_OUTGOING)
                return f;
        }
    }

private:
    [[nodiscard]] std::optional<Frame> recv_one(sockaddr_ll& from) const {
        Frame f;
        f.bytes.resize(2048);
        alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(tpacket_auxdata))];
        iovec iov{f.bytes.data(), f.bytes.size()};
        msghdr m{};
        m.msg_name = &from;
        m.msg_namelen = sizeof from;
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        m.msg_control = ctl;
        m.msg_controllen = sizeof ctl;
        const ssize_t n = ::recvmsg(fd_, &m, 0);
        if (n < 0)
            return std::nullopt;
        f.bytes.resize(static_cast<std::size_t>(n));
        for (cmsghdr* c = CMSG_FIRSTHDR(&m); c != nullptr; c = CMSG_NXTHDR(&m, c)) {
            if (c->cmsg_level != SOL_PACKET || c->cmsg_type != PACKET_AUXDATA)
                continue;
            tpacket_auxdata aux;
            std::memcpy(&aux, CMSG_DATA(c), sizeof aux);
            if (aux.tp_status & TP_STATUS_VLAN_VALID)
                f.vlan_tci = aux.tp_vlan_tci;
        }
        return f;
    }

    int fd_ = -1;
    std::string error_;
};

}  // namespace vfiokit::testing

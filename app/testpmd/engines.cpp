// The forwarding engines: one burst of one stream per call. Counters are
// the stream's own (one writer); frames a tx queue did not take are freed
// and counted as fwd_dropped, as DPDK's engines do without retry.
#include "packet.hpp"
#include "testpmd.hpp"

namespace vfiokit::testpmd {

namespace {

using mbuf::Mbuf;

// Sends n frames, freeing and counting those the queue did not take.
void transmit(Stream& s, Mbuf** pkts, std::uint16_t n) {
    if (n == 0)
        return;
    const std::uint16_t sent = ethdev::tx_burst(s.tx_port, s.tx_queue, pkts, n);
    s.tx_packets += sent;
    if (sent < n) {
        s.fwd_dropped += n - sent;
        for (std::uint16_t i = sent; i < n; ++i)
            pkts[i]->free();
    }
}

std::uint16_t receive(Stream& s, Mbuf** pkts) {
    const std::uint16_t n = ethdev::rx_burst(s.rx_port, s.rx_queue, pkts, s.ctx.burst);
    s.rx_packets += n;
    return n;
}

void io_fwd(Stream& s) {
    Mbuf* pkts[kMaxBurst];
    transmit(s, pkts, receive(s, pkts));
}

void mac_fwd(Stream& s) {
    Mbuf* pkts[kMaxBurst];
    const std::uint16_t n = receive(s, pkts);
    for (std::uint16_t i = 0; i < n; ++i)
        if (pkts[i]->data_len >= pkt::kEthLen)
            pkt::set_eth(pkts[i]->data(), s.ctx.tx_dst, s.ctx.tx_src);
    transmit(s, pkts, n);
}

void macswap_fwd(Stream& s) {
    Mbuf* pkts[kMaxBurst];
    const std::uint16_t n = receive(s, pkts);
    for (std::uint16_t i = 0; i < n; ++i) {
        std::uint8_t* f = pkts[i]->data();
        if (pkts[i]->data_len >= pkt::kEthLen)
            pkt::set_eth(f, pkt::eth_src(f), pkt::eth_dst(f));
    }
    transmit(s, pkts, n);
}

// Counts what arrives; frames that carry a txonly payload (UDP to port 9)
// are checked byte by byte, so a corrupting path shows up as rx_bad.
void rxonly_fwd(Stream& s) {
    Mbuf* pkts[kMaxBurst];
    const std::uint16_t n = receive(s, pkts);
    for (std::uint16_t i = 0; i < n; ++i) {
        Mbuf* m = pkts[i];
        const std::uint8_t* f = m->data();
        const std::size_t len = m->data_len;
        if (m->nb_segs == 1 && len >= pkt::kMinUdpFrame && pkt::ether_type(f) == pkt::kEtherIpv4 &&
            f[pkt::kEthLen + 9] == pkt::kProtoUdp &&
            pkt::get16(f + pkt::kEthLen + pkt::kIpv4Len + 2) == 9 &&
            !pkt::check_udp_payload(f, len, nullptr))
            ++s.rx_bad;
        m->free();
    }
}

// Builds up to a burst of UDP frames and sends them; flows > 0 spreads
// them over that many destination addresses (flowgen).
void generate(Stream& s, unsigned flows) {
    Mbuf* pkts[kMaxBurst];
    std::uint16_t n = s.ctx.burst;
    if (s.ctx.pool->alloc_bulk(pkts, n) != 0) {
        std::uint16_t got = 0;
        while (got < n && (pkts[got] = s.ctx.pool->alloc()) != nullptr)
            ++got;
        if (got < n)
            ++s.tx_nombuf;
        n = got;
    }
    pkt::UdpFlow flow;
    flow.src_mac = s.ctx.tx_src;
    flow.dst_mac = s.ctx.tx_dst;
    // DPDK's defaults: txonly 198.18.0.1 -> 198.18.0.2 (RFC 2544's
    // benchmarking range); flowgen 10.254.0.0 -> 10.253.0.0 + flow.
    flow.src_ip = flows ? 0x0afe0000u : 0xc6120001u;
    const std::uint32_t dst = flows ? 0x0afd0000u : 0xc6120002u;
    for (std::uint16_t i = 0; i < n; ++i) {
        Mbuf* m = pkts[i];
        std::uint8_t* f = m->append(s.ctx.txpkts);
        flow.dst_ip = flows ? dst + static_cast<std::uint32_t>(s.seq % flows) : dst;
        pkt::build_udp(f, s.ctx.txpkts, flow, s.seq++);
        m->port = s.tx_port;
    }
    transmit(s, pkts, n);
}

void txonly_fwd(Stream& s) { generate(s, 0); }

// DPDK's flowgen also drains what arrives.
void flowgen_fwd(Stream& s) {
    Mbuf* pkts[kMaxBurst];
    const std::uint16_t n = receive(s, pkts);
    for (std::uint16_t i = 0; i < n; ++i)
        pkts[i]->free();
    generate(s, 1024);
}

// Replies to ARP requests and ICMP echo requests (any address) on the port
// they came from; everything else is dropped, as DPDK's icmpecho does.
void icmpecho_fwd(Stream& s) {
    Mbuf* pkts[kMaxBurst];
    const std::uint16_t n = receive(s, pkts);
    std::uint16_t out = 0;
    for (std::uint16_t i = 0; i < n; ++i) {
        Mbuf* m = pkts[i];
        if (m->nb_segs == 1 && pkt::make_reply(m->data(), m->data_len, s.ctx.rx_mac))
            pkts[out++] = m;
        else
            m->free();
    }
    transmit(s, pkts, out);
}

}  // namespace

Engine engine_of(FwdMode m) {
    switch (m) {
    case FwdMode::io: return io_fwd;
    case FwdMode::mac: return mac_fwd;
    case FwdMode::macswap: return macswap_fwd;
    case FwdMode::txonly: return txonly_fwd;
    case FwdMode::rxonly: return rxonly_fwd;
    case FwdMode::icmpecho: return icmpecho_fwd;
    case FwdMode::flowgen: return flowgen_fwd;
    }
    return io_fwd;
}

void tx_first_burst(Stream& s) { generate(s, 0); }

}  // namespace vfiokit::testpmd

// What testpmd prints, in DPDK testpmd's layout, so that its users and the
// scripts that parse its output (devtools/lab/guest-lib.sh's
// dpdk_rx_packets) read ours the same way.
#include "testpmd.hpp"
#include "vfiokit/eal/strformat.hpp"

namespace vfiokit::testpmd {

namespace {

std::uint64_t per_sec(std::uint64_t diff, double secs) {
    return secs > 0 ? static_cast<std::uint64_t>(static_cast<double>(diff) / secs) : 0;
}

}  // namespace

void Testpmd::show_port_stats(std::uint16_t port) {
    if (port != kAll && !known(port))
        return;
    for (std::uint16_t p : ports_) {
        if (port != kAll && p != port)
            continue;
        auto st = ethdev::stats_get(p);
        if (!st) {
            out_ << st.error().message() << "\n";
            continue;
        }
        const ethdev::Stats& s = *st;
        const auto now = std::chrono::steady_clock::now();
        Shown& prev = shown_[p];
        std::uint64_t rx_pps = 0, tx_pps = 0, rx_bps = 0, tx_bps = 0;
        if (prev.valid) {
            const double secs = std::chrono::duration<double>(now - prev.t).count();
            rx_pps = per_sec(s.ipackets - prev.s.ipackets, secs);
            tx_pps = per_sec(s.opackets - prev.s.opackets, secs);
            rx_bps = per_sec((s.ibytes - prev.s.ibytes) * 8, secs);
            tx_bps = per_sec((s.obytes - prev.s.obytes) * 8, secs);
        }
        prev = {s, now, true};
        const std::string border(24, '#');
        out_ << strformat("\n  {} NIC statistics for port {:<2} {}\n", border, p, border);
        out_ << strformat("  RX-packets: {:<10} RX-missed: {:<10} RX-bytes:  {}\n", s.ipackets,
                            s.imissed, s.ibytes);
        out_ << strformat("  RX-errors: {}\n", s.ierrors);
        out_ << strformat("  RX-nombuf:  {:<10}\n", s.rx_nombuf);
        out_ << strformat("  TX-packets: {:<10} TX-errors: {:<10} TX-bytes:  {}\n", s.opackets,
                            s.oerrors, s.obytes);
        out_ << "\n  Throughput (since last show)\n";
        out_ << strformat("  Rx-pps: {:>12}          Rx-bps: {:>12}\n", rx_pps, rx_bps);
        out_ << strformat("  Tx-pps: {:>12}          Tx-bps: {:>12}\n", tx_pps, tx_bps);
        out_ << "  " << std::string(76, '#') << "\n";
    }
    out_ << std::flush;
}

void Testpmd::clear_port_stats(std::uint16_t port) {
    if (port != kAll && !known(port))
        return;
    for (std::uint16_t p : ports_) {
        if (port != kAll && p != port)
            continue;
        if (auto ok = ethdev::stats_reset(p); !ok)
            out_ << ok.error().message() << "\n";
        else
            out_ << strformat("\n  NIC statistics for port {} cleared\n", p);
        shown_[p].valid = false;
        // Forward statistics count from the new zero too.
        at_start_[p] = {};
    }
    out_ << std::flush;
}

void Testpmd::show_port_xstats(std::uint16_t port) {
    if (port != kAll && !known(port))
        return;
    for (std::uint16_t p : ports_) {
        if (port != kAll && p != port)
            continue;
        auto xs = ethdev::xstats_get(p);
        if (!xs) {
            out_ << xs.error().message() << "\n";
            continue;
        }
        out_ << strformat("###### NIC extended statistics for port {:<2}\n", p);
        for (const auto& x : *xs)
            out_ << strformat("{}: {}\n", x.name, x.value);
    }
    out_ << std::flush;
}

void Testpmd::show_port_info(std::uint16_t port) {
    if (port != kAll && !known(port))
        return;
    for (std::uint16_t p : ports_) {
        if (port != kAll && p != port)
            continue;
        auto di = ethdev::info(p);
        if (!di) {
            out_ << di.error().message() << "\n";
            continue;
        }
        auto mac = ethdev::macaddr_get(p);
        auto link = ethdev::link_get_nowait(p);
        const std::string stars(21, '*');
        out_ << strformat("\n{} Infos for port {:<2} {}\n", stars, p, stars);
        out_ << strformat("MAC address: {}\n", mac ? mac->str() : "unknown");
        out_ << strformat("Device name: {}\n", di->device_name);
        out_ << strformat("Driver name: {}\n", di->driver_name);
        if (link) {
            out_ << strformat("Link status: {}\n", link->up ? "up" : "down");
            // DPDK's words for a speed ("1 Gbps"), as in Link::str().
            const std::uint32_t mbps = link->speed_mbps;
            out_ << strformat("Link speed: {}\n",
                              mbps == 0           ? std::string("None")
                              : mbps < 1000       ? strformat("{} Mbps", mbps)
                              : mbps % 1000 == 0  ? strformat("{} Gbps", mbps / 1000)
                                                  : strformat("{}.{} Gbps", mbps / 1000,
                                                              mbps % 1000 / 100));
            out_ << strformat("Link duplex: {}\n",
                                link->full_duplex ? "full-duplex" : "half-duplex");
            out_ << strformat("Autoneg status: {}\n", link->autoneg ? "On" : "Off");
        } else {
            out_ << "Link status: " << link.error().message() << "\n";
        }
        out_ << strformat("Minimum MTU: {}\nMaximum MTU: {}\n", di->min_mtu, di->max_mtu);
        out_ << strformat("Max possible RX queues: {}\n", di->max_rx_queues);
        out_ << strformat("Current number of RX queues: {}\n", params_.rxq);
        out_ << strformat("Max possible number of RXDs per queue: {}\n", di->rx_desc.max);
        out_ << strformat("Min possible number of RXDs per queue: {}\n", di->rx_desc.min);
        out_ << strformat("RXDs number alignment: {}\n", di->rx_desc.align);
        out_ << strformat("Max possible TX queues: {}\n", di->max_tx_queues);
        out_ << strformat("Current number of TX queues: {}\n", params_.txq);
        out_ << strformat("Max possible number of TXDs per queue: {}\n", di->tx_desc.max);
        out_ << strformat("Min possible number of TXDs per queue: {}\n", di->tx_desc.min);
        out_ << strformat("TXDs number alignment: {}\n", di->tx_desc.align);
        out_ << strformat("Rx offload capabilities: {:#x}\n", di->rx_offload_capa);
        out_ << strformat("Tx offload capabilities: {:#x}\n", di->tx_offload_capa);
        out_ << strformat("Supported RSS offload flow types: {:#x}\n", di->rss_offload_capa);
        out_ << strformat("Rx queue interrupts: {}\nLink state interrupts: {}\n",
                            di->rxq_interrupt ? "yes" : "no", di->lsc_interrupt ? "yes" : "no");
    }
    out_ << std::flush;
}

// The block DPDK's testpmd prints at stop: per stream (when there are more
// streams than ports), per port since start, then the sum.
void Testpmd::print_fwd_stats() {
    struct Sum {
        std::uint64_t rx = 0, rx_dropped = 0, tx = 0, tx_dropped = 0, rx_nombuf = 0;
    };
    std::vector<Sum> per_port(ethdev::kMaxPorts);
    std::vector<std::uint64_t> bad(ethdev::kMaxPorts, 0);
    for (const Stream& s : streams_) {
        per_port[s.tx_port].tx_dropped += s.fwd_dropped;
        bad[s.rx_port] += s.rx_bad;
    }
    // Per stream when a port has several, and always with several
    // processes: the port statistics count every process's queues.
    if (streams_.size() > ports_.size() || params_.num_procs > 1)
        for (const Stream& s : streams_)
            out_ << strformat("\n  ------- Forward Stats for RX Port={:>2}/Queue={:>2} -> TX "
                                "Port={:>2}/Queue={:>2} -------\n"
                                "  RX-packets: {:<14} TX-packets: {:<14} TX-dropped: {:<14}\n",
                                s.rx_port, s.rx_queue, s.tx_port, s.tx_queue, s.rx_packets,
                                s.tx_packets, s.fwd_dropped);
    Sum total;
    const std::string border(22, '-');
    for (std::uint16_t p : ports_) {
        auto st = ethdev::stats_get(p);
        ethdev::Stats s = st ? *st : ethdev::Stats{};
        const ethdev::Stats& b = at_start_[p];
        Sum& t = per_port[p];
        t.rx = s.ipackets - b.ipackets;
        t.rx_dropped = s.imissed - b.imissed;
        t.tx = s.opackets - b.opackets;
        t.rx_nombuf = s.rx_nombuf - b.rx_nombuf;
        const std::uint64_t rx_err = s.ierrors - b.ierrors;
        out_ << strformat("\n  {} Forward statistics for port {:<2} {}\n", border, p, border);
        out_ << strformat("  RX-packets: {:<14} RX-dropped: {:<14} RX-total: {}\n", t.rx,
                            t.rx_dropped, t.rx + t.rx_dropped);
        if (rx_err > 0)
            out_ << strformat("  RX-error: {}\n", rx_err);
        if (t.rx_nombuf > 0)
            out_ << strformat("  RX-nombufs: {:<14}\n", t.rx_nombuf);
        if (bad[p] > 0)
            out_ << strformat("  RX-bad-payload: {}\n", bad[p]);
        out_ << strformat("  TX-packets: {:<14} TX-dropped: {:<14} TX-total: {}\n", t.tx,
                            t.tx_dropped, t.tx + t.tx_dropped);
        out_ << "  " << std::string(76, '-') << "\n";
        total.rx += t.rx;
        total.rx_dropped += t.rx_dropped;
        total.tx += t.tx;
        total.tx_dropped += t.tx_dropped;
        total.rx_nombuf += t.rx_nombuf;
    }
    const std::string plus(15, '+');
    out_ << strformat("\n  {} Accumulated forward statistics for all ports{}\n", plus, plus);
    out_ << strformat("  RX-packets: {:<14} RX-dropped: {:<14} RX-total: {}\n", total.rx,
                        total.rx_dropped, total.rx + total.rx_dropped);
    out_ << strformat("  TX-packets: {:<14} TX-dropped: {:<14} TX-total: {}\n", total.tx,
                        total.tx_dropped, total.tx + total.tx_dropped);
    if (total.rx_nombuf > 0)
        out_ << strformat("  RX-nombufs: {:<14}\n", total.rx_nombuf);
    out_ << "  " << std::string(76, '+') << "\n\n";
}

}  // namespace vfiokit::testpmd

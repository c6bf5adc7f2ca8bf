#include "params.hpp"

#include <cerrno>
#include <charconv>
#include <span>

#include "vfiokit/eal/strformat.hpp"

namespace vfiokit::testpmd {

std::string_view to_string(FwdMode m) {
    switch (m) {
    case FwdMode::io: return "io";
    case FwdMode::mac: return "mac";
    case FwdMode::macswap: return "macswap";
    case FwdMode::txonly: return "txonly";
    case FwdMode::rxonly: return "rxonly";
    case FwdMode::icmpecho: return "icmpecho";
    case FwdMode::flowgen: return "flowgen";
    }
    return "?";
}

std::optional<FwdMode> parse_fwd_mode(std::string_view s) {
    for (FwdMode m : kFwdModes)
        if (to_string(m) == s)
            return m;
    return std::nullopt;
}

std::string fwd_mode_names() {
    std::string out;
    for (FwdMode m : kFwdModes)
        out += (out.empty() ? "" : " ") + std::string(to_string(m));
    return out;
}

namespace {

Error bad_value(std::string_view opt, std::string_view v, std::string_view what) {
    return Error(EINVAL, strformat("--{}={}", opt, v)).hint(strformat("--{} takes {}", opt, what));
}

Result<unsigned> number(std::string_view opt, std::string_view v, unsigned lo, unsigned hi) {
    unsigned n = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (v.empty() || ec != std::errc() || end != v.data() + v.size() || n < lo || n > hi)
        return fail(bad_value(opt, v, strformat("a number in [{}, {}]", lo, hi)));
    return n;
}

struct Spec {
    std::string_view name;
    char short_name;
    std::string_view arg;  // empty: a flag
    std::string_view help;
    Result<void> (*parse)(std::string_view opt, std::string_view v, Params& p);
};

template <class T>
Result<void> set_num(std::string_view opt, std::string_view v, T& out, unsigned lo, unsigned hi) {
    auto n = number(opt, v, lo, hi);
    if (!n)
        return fail(std::move(n.error()));
    out = static_cast<T>(*n);
    return {};
}

const Spec kSpecs[] = {
    {"interactive", 'i', "", "run the interactive prompt (testpmd> )",
     [](std::string_view, std::string_view, Params& p) -> Result<void> {
         p.interactive = true;
         return {};
     }},
    {"auto-start", 'a', "", "start forwarding at once (with -i)",
     [](std::string_view, std::string_view, Params& p) -> Result<void> {
         p.auto_start = true;
         return {};
     }},
    {"tx-first", 0, "", "send a first burst on every port when forwarding starts",
     [](std::string_view, std::string_view, Params& p) -> Result<void> {
         p.tx_first = true;
         return {};
     }},
    {"forward-mode", 0, "MODE", "io (default), mac, macswap, txonly, rxonly, icmpecho, flowgen",
     [](std::string_view o, std::string_view v, Params& p) -> Result<void> {
         auto m = parse_fwd_mode(v);
         if (!m)
             return fail(bad_value(o, v, "one of: " + fwd_mode_names()));
         p.mode = *m;
         return {};
     }},
    {"nb-cores", 0, "N", "forwarding cores (workers of -l/-c/--lcores), default 1",
     [](std::string_view o, std::string_view v, Params& p) {
         return set_num(o, v, p.nb_cores, 1, 127);
     }},
    {"rxq", 0, "N", "rx queues per port, default 1",
     [](std::string_view o, std::string_view v, Params& p) {
         return set_num(o, v, p.rxq, 1, ethdev::kMaxQueues);
     }},
    {"txq", 0, "N", "tx queues per port, default 1",
     [](std::string_view o, std::string_view v, Params& p) {
         return set_num(o, v, p.txq, 1, ethdev::kMaxQueues);
     }},
    {"num-procs", 0, "N", "processes sharing the ports (multi-process), default 1",
     [](std::string_view o, std::string_view v, Params& p) {
         return set_num(o, v, p.num_procs, 1, ethdev::kMaxQueues);
     }},
    {"proc-id", 0, "K", "this process's index among --num-procs (0: the primary), default 0",
     [](std::string_view o, std::string_view v, Params& p) {
         return set_num(o, v, p.proc_id, 0, ethdev::kMaxQueues - 1);
     }},
    {"rxd", 0, "N", "rx ring size (a power of two within the NIC's limits), default 512",
     [](std::string_view o, std::string_view v, Params& p) {
         return set_num(o, v, p.rxd, 1, 32768);
     }},
    {"txd", 0, "N", "tx ring size (a power of two within the NIC's limits), default 512",
     [](std::string_view o, std::string_view v, Params& p) {
         return set_num(o, v, p.txd, 1, 32768);
     }},
    {"burst", 0, "N", "packets per burst, default 32, at most 512",
     [](std::string_view o, std::string_view v, Params& p) {
         return set_num(o, v, p.burst, 1, kMaxBurst);
     }},
    {"txpkts", 0, "LEN", "txonly/flowgen frame length in bytes (no CRC), default 64",
     [](std::string_view o, std::string_view v, Params& p) -> Result<void> {
         if (v.find(',') != std::string_view::npos)
             return fail(bad_value(o, v, "one length: multi-segment frames are not supported"));
         return set_num(o, v, p.txpkts, 50, 9018);
     }},
    {"stats-period", 0, "SECS", "print port stats every SECS seconds (non-interactive)",
     [](std::string_view o, std::string_view v, Params& p) {
         return set_num(o, v, p.stats_period, 1, 86400);
     }},
    {"eth-peer", 0, "N,MAC", "destination MAC for port N (mac, txonly, flowgen)",
     [](std::string_view o, std::string_view v, Params& p) -> Result<void> {
         const auto comma = v.find(',');
         if (comma == std::string_view::npos)
             return fail(bad_value(o, v, "PORT,MAC, e.g. 0,52:54:00:12:34:57"));
         auto port = number(o, v.substr(0, comma), 0, ethdev::kMaxPorts - 1);
         if (!port)
             return fail(std::move(port.error()));
         auto mac = ethdev::MacAddr::parse(v.substr(comma + 1));
         if (!mac)
             return fail(std::move(mac.error()).context("--eth-peer"));
         p.eth_peer[*port] = *mac;
         return {};
     }},
    {"total-num-mbufs", 0, "N", "mbufs in the pool (default: enough for every ring)",
     [](std::string_view o, std::string_view v, Params& p) {
         return set_num(o, v, p.total_num_mbufs, 2, 1u << 24);
     }},
    {"mbuf-size", 0, "N", "data room of each mbuf, headroom (128) included, default 2176",
     [](std::string_view o, std::string_view v, Params& p) {
         return set_num(o, v, p.mbuf_size, 256, 65535);
     }},
    {"mbcache", 0, "N", "per-lcore mbuf cache size, default 250",
     [](std::string_view o, std::string_view v, Params& p) {
         return set_num(o, v, p.mbcache, 0, 512);
     }},
    {"help", 'h', "", "print this help",
     [](std::string_view, std::string_view, Params& p) -> Result<void> {
         p.help = true;
         return {};
     }},
};

std::string option_list() {
    std::string s;
    for (const Spec& o : kSpecs)
        s += (s.empty() ? "--" : ", --") + std::string(o.name);
    return s;
}

}  // namespace

std::string params_usage() {
    std::string u = "testpmd options (after the EAL options and --):\n";
    for (const Spec& o : kSpecs) {
        std::string left = o.short_name ? strformat("  -{}, --{}", o.short_name, o.name)
                                        : strformat("      --{}", o.name);
        if (!o.arg.empty())
            left += "=" + std::string(o.arg);
        u += strformat("{:<32} {}\n", left, o.help);
    }
    return u;
}

Result<Params> parse_params(int argc, const char* const* argv) {
    Params p;
    for (int i = 0; i < argc; ++i) {
        std::string_view a = argv[i];
        const Spec* spec = nullptr;
        std::string_view value;
        bool has_value = false;
        if (a.starts_with("--")) {
            std::string_view name = a.substr(2);
            if (auto eq = name.find('='); eq != std::string_view::npos) {
                value = name.substr(eq + 1);
                name = name.substr(0, eq);
                has_value = true;
            }
            for (const Spec& o : kSpecs)
                if (o.name == name)
                    spec = &o;
        } else if (a.size() == 2 && a[0] == '-') {
            for (const Spec& o : kSpecs)
                if (o.short_name && o.short_name == a[1])
                    spec = &o;
        }
        if (!spec)
            return fail(Error(EINVAL, strformat("testpmd: unknown option '{}'", a))
                            .hint("testpmd's options: " + option_list() +
                                  " (EAL options go before --)"));
        if (spec->arg.empty()) {
            if (has_value)
                return fail(Error(EINVAL, strformat("--{} takes no value", spec->name)));
        } else if (!has_value) {
            if (i + 1 >= argc)
                return fail(Error(EINVAL, strformat("--{} needs a value", spec->name))
                                .hint(strformat("--{}={}", spec->name, spec->arg)));
            value = argv[++i];
        }
        if (auto ok = spec->parse(spec->name, value, p); !ok)
            return fail(std::move(ok.error()));
    }
    // Each stream owns one rx and one tx queue (no lock on the data path),
    // so the counts must match.
    if (p.rxq != p.txq)
        return fail(Error(EINVAL, strformat("--rxq={} and --txq={} differ", p.rxq, p.txq))
                        .hint("give both the same count: each forwarding stream owns one rx "
                              "and one tx queue"));
    if (p.proc_id >= p.num_procs)
        return fail(Error(EINVAL, strformat("--proc-id={} with --num-procs={}", p.proc_id,
                                            p.num_procs))
                        .hint("process ids go from 0 to --num-procs - 1"));
    if (p.rxq % p.num_procs != 0)
        return fail(Error(EINVAL, strformat("--rxq={} is not a multiple of --num-procs={}", p.rxq,
                                            p.num_procs))
                        .hint("every process forwards the same number of queues"));
    if (p.auto_start && !p.interactive)
        p.auto_start = false;  // without -i forwarding starts anyway
    return p;
}

}  // namespace vfiokit::testpmd

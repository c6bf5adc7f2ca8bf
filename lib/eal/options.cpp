#include "vfiokit/eal/options.hpp"

#include <algorithm>
#include <charconv>
#include <cerrno>
#include <string_view>

namespace vfiokit::eal {

namespace {

Error bad(std::string_view opt, std::string what) {
    Error e(EINVAL, "option " + std::string(opt) + ": " + std::move(what));
    e.hint("see --help for the EAL options");
    return e;
}

Result<std::uint64_t> parse_number(std::string_view opt, std::string_view text) {
    std::string_view v = text;
    std::uint64_t n = 0;
    int base = 10;
    if (v.starts_with("0x") || v.starts_with("0X")) {
        v.remove_prefix(2);
        base = 16;
    }
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n, base);
    if (ec == std::errc::result_out_of_range)
        return fail(bad(opt, "'" + std::string(text) + "' does not fit in 64 bits"));
    if (ec != std::errc() || p != v.data() + v.size() || v.empty())
        return fail(bad(opt, "'" + std::string(text) + "' is not a number"));
    return n;
}

// A prefix becomes a directory name under the runtime directory: no '/',
// no "." or "..", nothing a shell or a path would misread.
Result<void> check_file_prefix(std::string_view opt, std::string_view v) {
    if (v.empty() || v.size() > 64)
        return fail(bad(opt, "the prefix must have 1 to 64 characters"));
    if (v.front() == '.')
        return fail(bad(opt, "'" + std::string(v) + "' starts with '.'"));
    for (char c : v)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return fail(bad(opt, "'" + std::string(v) +
                                     "' has a character other than letters, digits, '.', '_', '-'"));
    return {};
}

Result<std::uint64_t> parse_mib(std::string_view opt, std::string_view v) {
    auto n = parse_number(opt, v);
    if (!n)
        return n;
    if (*n > kMaxMemoryMb)
        return fail(bad(opt, "'" + std::string(v) + "' MiB is more than the " +
                                 std::to_string(kMaxMemoryMb) +
                                 " MiB (128 TiB) a process can address"));
    return n;
}

// --- the table: one parser per option, storing into Options ---------------------

Result<void> opt_vfio_mode(std::string_view opt, std::string_view v, Options& o) {
    auto m = vfio::parse_mode(v);
    if (!m)
        return fail(std::move(m.error()).context("option " + std::string(opt)));
    o.vfio.mode = *m;
    return {};
}

Result<void> opt_vfio_type1(std::string_view opt, std::string_view v, Options& o) {
    auto t = vfio::parse_type1(v);
    if (!t)
        return fail(std::move(t.error()).context("option " + std::string(opt)));
    o.vfio.type1 = *t;
    return {};
}

Result<void> opt_allow(std::string_view opt, std::string_view v, Options& o) {
    auto d = parse_allowed_device(v);
    if (!d)
        return fail(std::move(d.error()).context("option " + std::string(opt)));
    for (const auto& al : o.allow)
        if (al.addr == d->addr)
            return fail(bad(opt, d->addr.str() + " is given twice; put all its arguments in one -a"));
    o.allow.push_back(std::move(*d));
    return {};
}

Result<void> opt_block(std::string_view opt, std::string_view v, Options& o) {
    auto a = PciAddress::parse(v);
    if (!a)
        return fail(bad(opt, "'" + std::string(v) + "' is not a PCI address"));
    o.block.push_back(*a);
    return {};
}

Result<void> opt_memory(std::string_view opt, std::string_view v, Options& o) {
    auto n = parse_mib(opt, v);
    if (!n)
        return fail(std::move(n.error()));
    o.memory_mb = *n;
    return {};
}

Result<void> opt_socket_mem(std::string_view opt, std::string_view v, Options& o) {
    o.socket_mem_mb.clear();
    if (v.empty())
        return fail(bad(opt, "give at least one node's MiB"));
    for (std::string_view rest = v;;) {
        auto comma = rest.find(',');
        auto n = parse_mib(opt, rest.substr(0, comma));
        if (!n)
            return fail(std::move(n.error()));
        o.socket_mem_mb.push_back(*n);
        if (comma == std::string_view::npos)
            return {};
        rest = rest.substr(comma + 1);
    }
}

Result<void> opt_no_huge(std::string_view, std::string_view, Options& o) {
    o.memory.no_huge = true;
    return {};
}

Result<void> opt_huge_dir(std::string_view opt, std::string_view v, Options& o) {
    if (v.empty())
        return fail(bad(opt, "give a directory"));
    o.memory.huge_dir = v;
    return {};
}

Result<void> opt_iova_mode(std::string_view opt, std::string_view v, Options& o) {
    auto m = parse_iova_mode(v);
    if (!m)
        return fail(std::move(m.error()).context("option " + std::string(opt)));
    o.memory.iova_mode = *m;
    return {};
}

Result<void> opt_base_virtaddr(std::string_view opt, std::string_view v, Options& o) {
    auto n = parse_number(opt, v);
    if (!n)
        return fail(std::move(n.error()));
    if (*n < kMinBaseVirtaddr)
        return fail(bad(opt, "'" + std::string(v) +
                                 "' is below 64 KiB, where the kernel never maps anything "
                                 "(vm.mmap_min_addr); give the window's start, e.g. 0x1000000"));
    o.memory.base_virtaddr = *n;
    return {};
}

Result<void> opt_proc_type(std::string_view opt, std::string_view v, Options& o) {
    auto t = parse_proc_type(v);
    if (!t)
        return fail(std::move(t.error()).context("option " + std::string(opt)));
    o.proc_type = *t;
    o.multi_process = true;
    return {};
}

Result<void> opt_file_prefix(std::string_view opt, std::string_view v, Options& o) {
    if (auto ok = check_file_prefix(opt, v); !ok)
        return ok;
    o.file_prefix = v;
    o.multi_process = true;
    return {};
}

// -l, -c and --lcores say the same thing three ways: one of them.
Result<void> set_lcores(std::string_view opt, Result<std::vector<LcoreCpus>> ls, Options& o) {
    if (!ls)
        return fail(std::move(ls.error()));
    if (!o.lcores.empty())
        return fail(bad(opt, "lcores are already given: use one of -l, -c, --lcores, once"));
    o.lcores = std::move(*ls);
    return {};
}

Result<void> opt_corelist(std::string_view opt, std::string_view v, Options& o) {
    return set_lcores(opt, parse_corelist(v), o);
}

Result<void> opt_coremask(std::string_view opt, std::string_view v, Options& o) {
    return set_lcores(opt, parse_coremask(v), o);
}

Result<void> opt_lcores(std::string_view opt, std::string_view v, Options& o) {
    return set_lcores(opt, parse_lcores(v), o);
}

Result<void> opt_main_lcore(std::string_view opt, std::string_view v, Options& o) {
    unsigned n = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n, 10);
    if (ec != std::errc() || p != v.data() + v.size() || v.empty())
        return fail(bad(opt, "'" + std::string(v) + "' is not an lcore id"));
    if (n >= kMaxLcores)
        return fail(bad(opt, "lcore " + std::string(v) + " is not below " +
                                 std::to_string(kMaxLcores)));
    o.main_lcore = n;
    return {};
}

Result<void> opt_telemetry(std::string_view, std::string_view, Options& o) {
    o.telemetry = true;
    return {};
}

Result<void> opt_no_telemetry(std::string_view, std::string_view, Options& o) {
    o.telemetry = false;
    return {};
}

Result<void> opt_log_level(std::string_view, std::string_view v, Options& o) {
    auto s = log::parse_level_spec(v);
    if (!s)
        return fail(std::move(s.error()));
    o.log_levels.push_back(std::move(*s));
    return {};
}

Result<void> opt_log_timestamp(std::string_view, std::string_view v, Options& o) {
    auto t = log::parse_timestamp(v);
    if (!t)
        return fail(std::move(t.error()));
    o.log_timestamp = *t;
    return {};
}

Result<void> opt_syslog(std::string_view, std::string_view v, Options& o) {
    auto f = log::parse_syslog_facility(v);
    if (!f)
        return fail(std::move(f.error()));
    o.syslog_facility = *f;
    return {};
}

// Every EAL option, once. Usage text, parsing and the header all come from
// here.
constexpr OptionSpec kOptions[] = {
    {"vfio-mode", 0, "auto|cdev|group|compat|noiommu|cdev-noiommu",
     "VFIO mode (default auto: cdev, else group, else cdev-noiommu, else noiommu; "
     "env VFIOKIT_VFIO_MODE; doc/vfio-modes.md)",
     opt_vfio_mode},
    {"vfio-type1", 0, "auto|v2|v1", "type1 flavour in group/compat mode (env VFIOKIT_VFIO_TYPE1)",
     opt_vfio_type1},
    {"allow", 'a', "ADDRESS[,vf_token=UUID][,KEY=VALUE...]",
     "probe only these devices (repeatable); KEY=VALUE pairs go to the device's driver, "
     "vf_token to VFIO",
     opt_allow},
    {"block", 'b', "ADDRESS", "never probe this device (repeatable)", opt_block},
    {"", 'm', "MIB", "memory to reserve at start-up (not with --socket-mem)", opt_memory},
    {"socket-mem", 0, "MIB[,MIB...]", "memory per NUMA node at start-up (not with -m)",
     opt_socket_mem},
    {"no-huge", 0, "", "4 KiB pages instead of hugepages", opt_no_huge},
    {"huge-dir", 0, "DIR", "back memory with files in this hugetlbfs mount", opt_huge_dir},
    {"iova-mode", 0, "va|pa|auto", "IOVA = VA, or physical addresses (default: from the mode)",
     opt_iova_mode},
    {"base-virtaddr", 0, "ADDR", "start of the memory window (decimal or 0x hex)",
     opt_base_virtaddr},
    {"", 'l', "CORELIST", "lcores on these CPUs, lcore N on CPU N: 0-3,6 (DPDK's -l)",
     opt_corelist},
    {"", 'c', "COREMASK", "lcores as a hex mask of CPUs: 0xf is lcores 0-3 (DPDK's -c)",
     opt_coremask},
    {"lcores", 0, "MAP",
     "lcore ids on CPU sets: '0@1,(2-3)@(4-5),6' (DPDK's --lcores; without @, CPU = id)",
     opt_lcores},
    {"main-lcore", 0, "ID", "the main lcore, the thread that calls Eal::init (default: the lowest)",
     opt_main_lcore},
    {"proc-type", 0, "primary|secondary|auto",
     "role among processes sharing a prefix (auto: secondary if a primary runs)", opt_proc_type},
    {"file-prefix", 0, "NAME",
     "runtime directory shared with secondaries (default vfiokit; letters, digits, . _ -)",
     opt_file_prefix},
    {"telemetry", 0, "", "serve DPDK's telemetry socket (the default; doc/telemetry.md)",
     opt_telemetry},
    {"no-telemetry", 0, "", "no telemetry socket", opt_no_telemetry},
    {"log-level", 0, "LEVEL|PATTERN:LEVEL",
     "log level of every component, or of those matching a shell PATTERN (pci.*:debug) or, "
     "as REGEX,LEVEL, a regex; repeatable, applied in order; LEVEL: emergency ... debug or 1-8",
     opt_log_level},
    {"log-timestamp", 0, "[=reltime|iso]", "prefix log lines with a timestamp (default reltime)",
     opt_log_timestamp},
    {"syslog", 0, "[=FACILITY]", "log to syslog (default facility daemon), and to a terminal stderr",
     opt_syslog},
};

const OptionSpec* find_option(std::string_view name) {
    for (const auto& o : kOptions) {
        if (name.starts_with("--") && !o.name.empty() && name.substr(2) == o.name)
            return &o;
        if (name.size() == 2 && name[0] == '-' && o.short_name != 0 && name[1] == o.short_name)
            return &o;
    }
    return nullptr;
}

}  // namespace

std::span<const OptionSpec> option_table() { return kOptions; }

std::string options_usage() {
    std::vector<std::pair<std::string, std::string_view>> rows;
    std::size_t width = 0;
    for (const auto& o : kOptions) {
        std::string left = o.short_name ? std::string("-") + o.short_name : std::string();
        if (!o.name.empty())
            left += (left.empty() ? "--" : ", --") + std::string(o.name);
        if (o.arg.starts_with('['))
            left += std::string(o.arg);
        else if (!o.arg.empty())
            left += (o.arg.find('|') != std::string_view::npos ? "=" : " ") + std::string(o.arg);
        width = std::max(width, left.size());
        rows.emplace_back(std::move(left), o.help);
    }
    std::string out = "EAL options:\n";
    for (const auto& [left, help] : rows)
        out += "  " + left + std::string(width - left.size() + 2, ' ') + std::string(help) + "\n";
    return out;
}

Result<AllowedDevice> parse_allowed_device(std::string_view v) {
    std::string_view addr = v.substr(0, v.find(','));
    auto a = PciAddress::parse(addr);
    if (!a)
        return fail(Error(EINVAL, "'" + std::string(addr) + "' is not a PCI address")
                        .hint("give ADDRESS[,vf_token=UUID][,KEY=VALUE...], e.g. "
                              "0000:00:03.0,dma_mask=0xffffffff"));
    AllowedDevice d{*a, {}, {}};
    std::string_view rest = addr.size() < v.size() ? v.substr(addr.size() + 1) : std::string_view{};
    while (addr.size() < v.size()) {
        const std::string_view kv = rest.substr(0, rest.find(','));
        const auto eq = kv.find('=');
        if (eq == std::string_view::npos || eq == 0)
            return fail(Error(EINVAL, "device argument '" + std::string(kv) + "' of " + a->str() +
                                          " is not KEY=VALUE"));
        const std::string key(kv.substr(0, eq));
        if (key == "vf_token" ? !d.vf_token.empty()
                              : std::any_of(d.args.begin(), d.args.end(),
                                            [&](const DeviceArg& x) { return x.key == key; }))
            return fail(Error(EINVAL, "device argument '" + key + "' of " + a->str() +
                                          " is given twice"));
        if (key == "vf_token")
            d.vf_token = kv.substr(eq + 1);  // checked (a UUID) by VFIO when assigning
        else
            d.args.push_back({key, std::string(kv.substr(eq + 1))});
        if (kv.size() == rest.size())
            break;
        rest = rest.substr(kv.size() + 1);
    }
    return d;
}

Result<ProcType> parse_proc_type(std::string_view s) {
    if (s == "primary")
        return ProcType::primary;
    if (s == "secondary")
        return ProcType::secondary;
    if (s == "auto")
        return ProcType::automatic;
    return fail(Error(EINVAL, "process type '" + std::string(s) + "'")
                    .hint("use one of primary, secondary, auto"));
}

std::string_view to_string(ProcType t) {
    switch (t) {
    case ProcType::primary:
        return "primary";
    case ProcType::secondary:
        return "secondary";
    case ProcType::automatic:
        return "auto";
    }
    return "?";
}

Result<int> parse_options(int argc, const char* const* argv, Options& out) {
    // The first application argument; argc when there is no "--".
    int first = argc;
    int dashes = -1;
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        if (a == "--") {
            dashes = i;
            first = i + 1;
            break;
        }
        // "--name=value", "--name value", "-x value", "-xvalue".
        std::string_view name = a, value;
        bool has_value = false;
        if (a.starts_with("--")) {
            if (auto eq = a.find('='); eq != std::string_view::npos) {
                name = a.substr(0, eq);
                value = a.substr(eq + 1);
                has_value = true;
            }
        } else if (a.size() > 2 && a[0] == '-') {
            name = a.substr(0, 2);
            value = a.substr(2);
            has_value = true;
        }
        const OptionSpec* spec = find_option(name);
        if (spec == nullptr)
            return fail(bad(a, "unknown EAL option"));
        if (spec->arg.empty()) {
            if (has_value)
                return fail(bad(name, "takes no value"));
        } else if (spec->arg.starts_with('[')) {
            // An optional value: only --name=value gives one.
            if (has_value && !a.starts_with("--"))
                return fail(bad(name, "takes its value as --" + std::string(spec->name) + "=..."));
        } else if (!has_value) {
            if (i + 1 >= argc)
                return fail(bad(name, "needs a value (" + std::string(spec->arg) + ")"));
            value = argv[++i];
        }
        if (auto ok = spec->parse(name, value, out); !ok)
            return fail(std::move(ok.error()));
    }
    if (out.memory_mb != 0 && !out.socket_mem_mb.empty())
        return fail(bad("-m/--socket-mem", "give one of them, not both"));
    for (const auto& al : out.allow)
        if (std::find(out.block.begin(), out.block.end(), al.addr) != out.block.end())
            return fail(bad("-a/-b", al.addr.str() + " is both allowed and blocked"));
    if (out.main_lcore && !out.lcores.empty() &&
        std::none_of(out.lcores.begin(), out.lcores.end(),
                     [&](const LcoreCpus& l) { return l.id == *out.main_lcore; })) {
        std::vector<unsigned> ids;
        for (const auto& l : out.lcores)
            ids.push_back(l.id);
        return fail(bad("--main-lcore", std::to_string(*out.main_lcore) +
                                            " is not among the lcores (" + format_id_list(ids) +
                                            ")"));
    }
    // The environment fills in what the command line left open.
    if (auto ok = vfio::apply_environment(out.vfio); !ok)
        return fail(std::move(ok.error()));
    out.eal_args.assign(argv, argv + (dashes >= 0 ? dashes : std::max(argc, 0)));
    out.app_args.assign(argv + first, argv + std::max(argc, first));
    return first;
}

}  // namespace vfiokit::eal

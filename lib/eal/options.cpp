#include "vfiokit/eal/options.hpp"

#include <algorithm>
#include <charconv>
#include <cerrno>
#include <string_view>

namespace vfiokit::eal {

std::string options_usage() {
    return "EAL options:\n"
           "  --vfio-mode=auto|cdev|group|compat|noiommu  VFIO mode (env VFIOKIT_VFIO_MODE)\n"
           "  --vfio-type1=auto|v2|v1                     type1 flavour in group/compat mode\n"
           "  -a, --allow ADDRESS[,vf_token=UUID]         use only these devices\n"
           "  -b, --block ADDRESS                         never use these devices\n"
           "  -m MIB                                      memory to reserve at start-up\n"
           "  --socket-mem MIB[,MIB...]                   memory per NUMA node at start-up\n"
           "  --no-huge                                   4 KiB pages instead of hugepages\n"
           "  --huge-dir DIR                              back memory with files in DIR\n"
           "  --iova-mode=va|pa|auto                      IOVA = VA, or physical addresses\n"
           "  --base-virtaddr ADDR                        start of the memory window\n"
           "  --proc-type=primary|secondary|auto          role among processes sharing a prefix\n"
           "  --file-prefix NAME                          runtime directory shared with secondaries\n";
}

namespace {

Error bad(std::string_view opt, std::string what) {
    Error e(EINVAL, "option " + std::string(opt) + ": " + std::move(what));
    e.hint("see --help for the EAL options");
    return e;
}

Result<AllowedDevice> parse_allow(std::string_view opt, std::string_view v) {
    std::string_view addr = v.substr(0, v.find(','));
    auto a = PciAddress::parse(addr);
    if (!a)
        return fail(bad(opt, "'" + std::string(addr) + "' is not a PCI address"));
    AllowedDevice d{*a, {}};
    if (addr.size() < v.size()) {
        std::string_view kv = v.substr(addr.size() + 1);
        constexpr std::string_view key = "vf_token=";
        if (!kv.starts_with(key))
            return fail(bad(opt, "unknown device argument '" + std::string(kv) + "'"));
        d.vf_token = kv.substr(key.size());
    }
    return d;
}

Result<std::uint64_t> parse_number(std::string_view opt, std::string_view v) {
    std::uint64_t n = 0;
    int base = 10;
    if (v.starts_with("0x") || v.starts_with("0X")) {
        v.remove_prefix(2);
        base = 16;
    }
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n, base);
    if (ec != std::errc() || p != v.data() + v.size() || v.empty())
        return fail(bad(opt, "'" + std::string(v) + "' is not a number"));
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

}  // namespace

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
    int i = 1;
    for (; i < argc; ++i) {
        std::string_view a = argv[i];
        if (a == "--")
            return i + 1;
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
        auto take_value = [&]() -> Result<std::string_view> {
            if (has_value)
                return value;
            if (i + 1 >= argc)
                return fail(bad(name, "needs a value"));
            return std::string_view(argv[++i]);
        };
        if (name == "--vfio-mode") {
            auto v = take_value();
            if (!v)
                return fail(std::move(v.error()));
            auto m = vfio::parse_mode(*v);
            if (!m)
                return fail(std::move(m.error()).context("option --vfio-mode"));
            out.vfio.mode = *m;
        } else if (name == "--vfio-type1") {
            auto v = take_value();
            if (!v)
                return fail(std::move(v.error()));
            auto t = vfio::parse_type1(*v);
            if (!t)
                return fail(std::move(t.error()).context("option --vfio-type1"));
            out.vfio.type1 = *t;
        } else if (name == "-a" || name == "--allow") {
            auto v = take_value();
            if (!v)
                return fail(std::move(v.error()));
            auto d = parse_allow(name, *v);
            if (!d)
                return fail(std::move(d.error()));
            out.allow.push_back(std::move(*d));
        } else if (name == "-b" || name == "--block") {
            auto v = take_value();
            if (!v)
                return fail(std::move(v.error()));
            auto addr = PciAddress::parse(*v);
            if (!addr)
                return fail(bad(name, "'" + std::string(*v) + "' is not a PCI address"));
            out.block.push_back(*addr);
        } else if (name == "--no-huge") {
            out.memory.no_huge = true;
        } else if (name == "--huge-dir") {
            auto v = take_value();
            if (!v)
                return fail(std::move(v.error()));
            out.memory.huge_dir = *v;
        } else if (name == "--iova-mode") {
            auto v = take_value();
            if (!v)
                return fail(std::move(v.error()));
            auto m = parse_iova_mode(*v);
            if (!m)
                return fail(std::move(m.error()).context("option --iova-mode"));
            out.memory.iova_mode = *m;
        } else if (name == "-m" || name == "--base-virtaddr") {
            auto v = take_value();
            if (!v)
                return fail(std::move(v.error()));
            auto n = parse_number(name, *v);
            if (!n)
                return fail(std::move(n.error()));
            if (name == "-m")
                out.memory_mb = *n;
            else
                out.memory.base_virtaddr = *n;
        } else if (name == "--socket-mem") {
            auto v = take_value();
            if (!v)
                return fail(std::move(v.error()));
            out.socket_mem_mb.clear();
            for (std::string_view rest = *v; !rest.empty();) {
                auto comma = rest.find(',');
                auto n = parse_number(name, rest.substr(0, comma));
                if (!n)
                    return fail(std::move(n.error()));
                out.socket_mem_mb.push_back(*n);
                rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
            }
        } else if (name == "--proc-type") {
            auto v = take_value();
            if (!v)
                return fail(std::move(v.error()));
            auto t = parse_proc_type(*v);
            if (!t)
                return fail(std::move(t.error()).context("option --proc-type"));
            out.proc_type = *t;
            out.multi_process = true;
        } else if (name == "--file-prefix") {
            auto v = take_value();
            if (!v)
                return fail(std::move(v.error()));
            if (auto ok = check_file_prefix(name, *v); !ok)
                return fail(std::move(ok.error()));
            out.file_prefix = *v;
            out.multi_process = true;
        } else {
            return fail(bad(a, "unknown EAL option"));
        }
    }
    if (out.memory_mb != 0 && !out.socket_mem_mb.empty())
        return fail(bad("-m/--socket-mem", "give one of them, not both"));
    for (const auto& al : out.allow)
        if (std::find(out.block.begin(), out.block.end(), al.addr) != out.block.end())
            return fail(bad("-a/-b", al.addr.str() + " is both allowed and blocked"));
    // The environment fills in what the command line left open.
    if (auto ok = vfio::apply_environment(out.vfio); !ok)
        return fail(std::move(ok.error()));
    return i;
}

}  // namespace vfiokit::eal

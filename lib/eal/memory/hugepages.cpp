#include <cerrno>
#include <charconv>
#include <fstream>
#include <sstream>

#include "vfiokit/eal/memory.hpp"

namespace vfiokit::eal {

Result<IovaMode> parse_iova_mode(std::string_view s) {
    if (s == "va")
        return IovaMode::va;
    if (s == "pa")
        return IovaMode::pa;
    if (s == "auto" || s == "dc")
        return IovaMode::automatic;
    return fail(Error(EINVAL, "IOVA mode '" + std::string(s) + "'").hint("use va, pa or auto"));
}

namespace {

std::uint64_t parse_size(std::string_view v) {
    // "2M", "1G", "2048k" (hugetlbfs pagesize= option).
    std::uint64_t n = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc())
        return 0;
    switch (p == v.data() + v.size() ? '\0' : *p) {
    case 'k': case 'K': return n << 10;
    case 'm': case 'M': return n << 20;
    case 'g': case 'G': return n << 30;
    default: return n;
    }
}

}  // namespace

std::vector<HugepagePool> discover_hugepages(const sysfs::Root& root) {
    std::vector<HugepagePool> pools;
    for (const auto& name : root.list("/sys/kernel/mm/hugepages")) {
        // "hugepages-2048kB"
        constexpr std::string_view prefix = "hugepages-";
        if (!name.starts_with(prefix))
            continue;
        HugepagePool p;
        p.page_size = parse_size(std::string_view(name).substr(prefix.size()));
        const std::string dir = "/sys/kernel/mm/hugepages/" + name;
        p.total = static_cast<unsigned>(root.read_uint(dir + "/nr_hugepages").value_or(0));
        p.free = static_cast<unsigned>(root.read_uint(dir + "/free_hugepages").value_or(0));
        if (p.page_size != 0)
            pools.push_back(p);
    }
    // Default hugepage size, for mounts without pagesize=.
    std::uint64_t def = 0;
    if (auto mi = root.read("/proc/meminfo")) {
        std::istringstream in(*mi);
        for (std::string line; std::getline(in, line);)
            if (line.starts_with("Hugepagesize:"))
                def = parse_size(line.substr(line.find_first_of("0123456789"))) << 10;
    }
    if (auto mounts = root.read("/proc/mounts")) {
        std::istringstream in(*mounts);
        for (std::string line; std::getline(in, line);) {
            std::istringstream f(line);
            std::string dev, dir, type, opts;
            f >> dev >> dir >> type >> opts;
            if (type != "hugetlbfs")
                continue;
            std::uint64_t size = def;
            if (auto at = opts.find("pagesize="); at != std::string::npos)
                size = parse_size(std::string_view(opts).substr(at + 9, opts.find(',', at) - at - 9));
            for (auto& p : pools)
                if (p.page_size == size && p.mount.empty())
                    p.mount = dir;
        }
    }
    return pools;
}

}  // namespace vfiokit::eal

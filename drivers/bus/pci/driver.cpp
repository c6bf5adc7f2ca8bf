#include "vfiokit/bus/pci/driver.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>

namespace vfiokit::pci {

namespace {

// Function-local: drivers register from static initializers in other
// translation units, in an order nobody controls.
std::vector<Driver*>& registry() {
    static std::vector<Driver*> r;
    return r;
}

std::string accepted(const DriverInfo& d) {
    if (d.params.empty())
        return "it takes no arguments";
    std::string s = "it accepts: ";
    for (std::size_t i = 0; i < d.params.size(); ++i) {
        const Param& p = d.params[i];
        s += (i ? "; " : "") + std::string(p.name) + "=" + std::string(p.arg) + " (" +
             std::string(p.help) + ")";
    }
    return s;
}

}  // namespace

Result<DriverArgs> DriverArgs::parse(const DriverInfo& driver, PciAddress addr,
                                     std::span<const eal::DeviceArg> args) {
    std::string unknown;
    for (const auto& a : args) {
        const bool known = std::any_of(driver.params.begin(), driver.params.end(),
                                       [&](const Param& p) { return p.name == a.key; });
        if (!known)
            unknown += (unknown.empty() ? "'" : ", '") + a.key + "'";
    }
    if (!unknown.empty())
        return fail(Error(EINVAL, "driver " + std::string(driver.name) + " does not take " +
                                      unknown + " (-a " + addr.str() + ",...)")
                        .hint(accepted(driver)));
    DriverArgs out;
    out.driver_ = driver.name;
    out.addr_ = addr;
    out.args_.assign(args.begin(), args.end());
    return out;
}

std::optional<std::string_view> DriverArgs::get(std::string_view key) const {
    for (const auto& a : args_)
        if (a.key == key)
            return std::string_view(a.value);
    return std::nullopt;
}

Result<std::optional<std::uint64_t>> DriverArgs::get_uint(std::string_view key) const {
    auto v = get(key);
    if (!v)
        return std::optional<std::uint64_t>{};
    std::string_view t = *v;
    int base = 10;
    if (t.starts_with("0x") || t.starts_with("0X")) {
        t.remove_prefix(2);
        base = 16;
    }
    std::uint64_t n = 0;
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), n, base);
    if (t.empty() || ec != std::errc() || p != t.data() + t.size())
        return fail(Error(EINVAL, "driver " + driver_ + " argument " + std::string(key) + "='" +
                                      std::string(*v) + "' of " + addr_.str() +
                                      " is not a number")
                        .hint("give it in decimal or as 0x hex"));
    return std::optional<std::uint64_t>(n);
}

bool Driver::matches(const DeviceIds& ids) const {
    return std::any_of(info_->ids.begin(), info_->ids.end(),
                       [&](const IdMatch& m) { return m.matches(ids); });
}

Result<std::uint64_t> Driver::dma_mask(const DriverArgs&) const { return info_->dma_mask; }

Result<std::unique_ptr<DriverInstance>> Driver::probe_secondary_instance(PciDevice& dev,
                                                                        const DriverArgs&) {
    return fail(Error(ENOTSUP, "driver " + std::string(name()) +
                                   " has no secondary-process support")
                    .context(dev.address().str()));
}

std::span<Driver* const> registered_drivers() { return registry(); }

void register_driver(Driver& d) {
    auto& r = registry();
    if (std::find(r.begin(), r.end(), &d) == r.end())
        r.push_back(&d);
}

}  // namespace vfiokit::pci

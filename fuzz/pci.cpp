// PCI addresses (PciAddress::parse) and device specs (-a
// BDF[,vf_token=UUID][,KEY=VALUE...], parse_allowed_device). An address
// that parses prints canonically and reads back as itself; a spec that
// parses has its address, and keys that are neither empty nor vf_token.
#include "fuzz_util.hpp"
#include "vfiokit/eal/options.hpp"
#include "vfiokit/eal/pci_address.hpp"

using namespace vfiokit;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const bool quiet = fuzz::quiet_logs();
    (void)quiet;
    fuzz::Input in(data, size);
    const std::string_view text = in.rest_text();

    if (auto a = PciAddress::parse(text)) {
        const std::string s = a->str();
        FUZZ_CHECK(s.size() >= 12, "\"%s\" is not dddd:bb:dd.f", s.c_str());
        FUZZ_CHECK(a->dev < 32 && a->func < 8, "device %u function %u accepted", a->dev, a->func);
        auto b = PciAddress::parse(s);
        FUZZ_CHECK(b && *b == *a, "\"%s\" does not read back", s.c_str());
    }

    auto d = eal::parse_allowed_device(text);
    if (!d) {
        FUZZ_CHECK(!d.error().message().empty(), "a refusal without a reason");
        return 0;
    }
    const std::string_view bdf = text.substr(0, text.find(','));
    auto a = PciAddress::parse(bdf);
    FUZZ_CHECK(a && *a == d->addr, "the spec's address differs from its first item");
    for (const auto& arg : d->args)
        FUZZ_CHECK(!arg.key.empty() && arg.key != "vf_token", "key \"%s\" given to the driver",
                   arg.key.c_str());
    return 0;
}

// Registers telemetry as an EAL service (vfiokit/eal/service.hpp): a
// program that links this file (telemetry_service_dep, kept whole) serves
// DPDK's telemetry socket from Eal::init on, unless --no-telemetry.
#include "vfiokit/eal/eal.hpp"
#include "vfiokit/eal/service.hpp"
#include "vfiokit/telemetry/telemetry.hpp"

namespace vfiokit::telemetry {

namespace {

struct Running final : eal::Service {
    std::unique_ptr<Telemetry> t;
};

Result<std::unique_ptr<eal::Service>> start(eal::Eal& e) {
    if (!e.options().telemetry)
        return std::unique_ptr<eal::Service>();
    auto t = Telemetry::start(e.options().file_prefix, parts_of(e));
    if (!t)
        return fail(std::move(t.error()).hint(
            "start without it with --no-telemetry, or give another --file-prefix"));
    auto r = std::make_unique<Running>();
    r->t = std::move(*t);
    return std::unique_ptr<eal::Service>(std::move(r));
}

[[maybe_unused]] const bool registered = (eal::register_service("telemetry", start), true);

}  // namespace

}  // namespace vfiokit::telemetry

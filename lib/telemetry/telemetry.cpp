// Telemetry::start: every command set on the socket of a file prefix.
#include "vfiokit/telemetry/telemetry.hpp"

namespace vfiokit::telemetry {

Result<std::unique_ptr<Telemetry>> Telemetry::start(const std::string& prefix, EalParts parts,
                                                    ServerOptions o) {
    std::unique_ptr<Telemetry> t(new Telemetry());
    t->commands_ = std::make_unique<Commands>();
    Commands& c = *t->commands_;
    for (auto ok : {add_eal_commands(c, parts), add_vfio_commands(c, parts),
                    add_ethdev_commands(c), add_mempool_commands(c)})
        if (!ok)
            return fail(std::move(ok.error()));
    auto s = Server::listen_in(dpdk_runtime_dir(prefix), c, std::move(o));
    if (!s)
        return fail(std::move(s.error()).context("telemetry for prefix " + prefix));
    t->server_ = std::move(*s);
    return t;
}

Telemetry::~Telemetry() { server_.reset(); }

}  // namespace vfiokit::telemetry

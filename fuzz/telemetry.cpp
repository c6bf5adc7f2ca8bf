// Telemetry commands (lib/telemetry): one request message, as a client
// writes it to the socket, through the command table with DPDK's
// built-ins and the ethdev and mempool commands (they need no EAL). Every
// request gets a reply, and every reply is JSON no longer than the table's
// limit.
#include <memory>

#include "fuzz_util.hpp"
#include "json_check.hpp"
#include "vfiokit/telemetry/telemetry.hpp"

using namespace vfiokit;

namespace {

const telemetry::Commands& commands() {
    static std::unique_ptr<telemetry::Commands> c = [] {
        auto t = std::make_unique<telemetry::Commands>();
        auto e = telemetry::add_ethdev_commands(*t);
        FUZZ_CHECK(e.has_value(), "add_ethdev_commands: %s", e.error().message().c_str());
        auto m = telemetry::add_mempool_commands(*t);
        FUZZ_CHECK(m.has_value(), "add_mempool_commands: %s", m.error().message().c_str());
        return t;
    }();
    return *c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const bool quiet = fuzz::quiet_logs();
    (void)quiet;
    fuzz::Input in(data, size);
    const std::string_view request = in.rest_text();
    const auto& c = commands();
    const std::string reply = c.reply(request);
    FUZZ_CHECK(!reply.empty(), "no reply");
    FUZZ_CHECK(reply.size() <= c.max_output(), "a %zu-byte reply, the limit is %zu", reply.size(),
               c.max_output());
    FUZZ_CHECK(telemetry::testing::valid_json(reply), "not JSON: %s", reply.c_str());
    (void)telemetry::parse_command(request);
    return 0;
}

// Telemetry requests and replies as bytes (telemetry.hpp, "Codec"): what
// the server reads from a socket is checked here before any command sees
// it, and every reply is built here.
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "vfiokit/eal/strformat.hpp"
#include "vfiokit/telemetry/telemetry.hpp"

#ifndef VFIOKIT_VERSION
#error "the build defines VFIOKIT_VERSION (meson project version)"
#endif

namespace vfiokit::telemetry {

std::string_view version_string() { return "vfiokit " VFIOKIT_VERSION; }

namespace {

bool printable(char c) { return c >= 0x20 && c <= 0x7e; }

Error malformed(std::string what) {
    return Error(EINVAL, "telemetry request: " + std::move(what))
        .hint("send '/' for the list of commands, '/help,/CMD' for one's parameters");
}

}  // namespace

Result<Command> parse_command(std::string_view msg) {
    if (msg.size() > kMaxRequest)
        return fail(malformed(strformat("{} bytes, longer than the {} a request may have",
                                        msg.size(), kMaxRequest)));
    if (msg.ends_with('\n'))
        msg.remove_suffix(1);
    if (msg.ends_with('\r'))
        msg.remove_suffix(1);
    if (msg.empty())
        return fail(malformed("empty"));
    const auto bad = std::find_if_not(msg.begin(), msg.end(), printable);
    if (bad != msg.end())
        return fail(malformed(strformat("byte {:#x} at offset {} is not printable ASCII",
                                        static_cast<unsigned>(static_cast<unsigned char>(*bad)),
                                        bad - msg.begin())));
    if (msg.front() != '/')
        return fail(malformed("a command starts with '/'"));
    Command c;
    const auto comma = msg.find(',');
    c.name = std::string(msg.substr(0, comma));
    if (comma != std::string_view::npos) {
        c.params = std::string(msg.substr(comma + 1));
        c.has_params = true;
    }
    if (c.name.size() > kMaxCommandLen)
        return fail(malformed(strformat("command name of {} characters, longer than {}",
                                        c.name.size(), kMaxCommandLen)));
    return c;
}

std::string hello_message(std::string_view version, pid_t pid, std::size_t max_output) {
    Json h = Json::object();
    h.set("version", version).set("pid", static_cast<std::int64_t>(pid));
    h.set("max_output_len", static_cast<std::uint64_t>(max_output));
    return h.dump();
}

std::string error_message(std::string_view name, std::string_view why) {
    std::string out = "{";
    if (!name.empty()) {
        append_json_string(out, name);
        out += ":null,";
    }
    out += "\"error\":";
    append_json_string(out, why);
    out += '}';
    return out;
}

std::string reply_message(std::string_view name, const Json& value, std::size_t max_output) {
    std::string out = "{";
    append_json_string(out, name);
    out += ':';
    value.dump_to(out);
    out += '}';
    if (out.size() > max_output)
        return error_message(name, strformat("the reply has {} bytes, more than the {} "
                                             "(max_output_len) a client reads",
                                             out.size(), max_output));
    return out;
}

}  // namespace vfiokit::telemetry

// The command table and DPDK's built-in commands ("/", "/info", "/help").
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <exception>

#include "vfiokit/eal/strformat.hpp"
#include "vfiokit/telemetry/telemetry.hpp"

namespace vfiokit::telemetry {

namespace {

bool valid_name(std::string_view n) {
    return n.size() >= 1 && n.size() <= kMaxCommandLen && n.front() == '/' &&
           std::all_of(n.begin(), n.end(), [](char c) { return c > 0x20 && c <= 0x7e && c != ','; });
}

}  // namespace

Commands::Commands(std::size_t max_output) : max_output_(max_output) {
    // As DPDK's telemetry_v2_init registers them (help texts in its words).
    (void)add("/", "Returns list of available commands, Takes no parameters",
              [this](std::string_view) -> Result<Json> {
                  // Called under mu_ (reply() holds it): read cmds_ directly.
                  Json a = Json::array();
                  for (const auto& [name, e] : cmds_)
                      a.push(name);
                  return a;
              });
    (void)add("/info", "Returns DPDK Telemetry information. Takes no parameters",
              [this](std::string_view) -> Result<Json> {
                  Json d = Json::object();
                  d.set("version", version_string()).set("pid", static_cast<std::int64_t>(::getpid()));
                  d.set("max_output_len", static_cast<std::uint64_t>(max_output_));
                  return d;
              });
    (void)add("/help", "Returns help text for a command. Parameters: string command",
              [this](std::string_view params) -> Result<Json> {
                  if (params.empty())
                      return fail(Error(EINVAL, "/help: which command?")
                                      .hint("give one: /help,/ethdev/stats"));
                  auto it = cmds_.find(params);
                  if (it == cmds_.end())
                      return fail(Error(ENOENT, "/help: no command '" + std::string(params) + "'")
                                      .hint("'/' lists the commands"));
                  Json d = Json::object();
                  d.set(std::string(params), it->second.help);
                  return d;
              });
}

Result<void> Commands::add(std::string name, std::string help, Handler h) {
    if (!valid_name(name))
        return fail(Error(EINVAL, "telemetry command name '" + name + "'")
                        .hint(strformat("a name starts with '/', has at most {} printable "
                                        "characters and no ',' or space",
                                        kMaxCommandLen)));
    if (!h)
        return fail(Error(EINVAL, "telemetry command " + name + ": no handler"));
    std::lock_guard g(mu_);
    if (cmds_.contains(name))
        return fail(Error(EEXIST, "telemetry command " + name + " is registered already"));
    cmds_.emplace(std::move(name), Entry{std::move(help), std::move(h)});
    return {};
}

std::vector<std::string> Commands::names() const {
    std::lock_guard g(mu_);
    std::vector<std::string> out;
    for (const auto& [name, e] : cmds_)
        out.push_back(name);
    return out;
}

std::string Commands::reply(std::string_view request) const {
    auto cmd = parse_command(request);
    if (!cmd)
        return error_message({}, cmd.error().message());
    std::lock_guard g(mu_);
    auto it = cmds_.find(cmd->name);
    if (it == cmds_.end())
        return error_message(cmd->name, "unknown command " + cmd->name +
                                            "; '/' lists the commands");
    try {
        auto r = it->second.fn(cmd->params);
        if (!r)
            return error_message(cmd->name, r.error().message());
        return reply_message(cmd->name, *r, max_output_);
    } catch (const std::exception& e) {
        return error_message(cmd->name, std::string("the command failed: ") + e.what());
    }
}

}  // namespace vfiokit::telemetry

#include "shell.hpp"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <sstream>
#include <utility>
#include <vector>

#include "vfiokit/eal/strformat.hpp"

namespace vfiokit::testpmd {

namespace {

std::vector<std::string> words(std::string_view line) {
    std::vector<std::string> w;
    std::istringstream in{std::string(line)};
    for (std::string s; in >> s;)
        w.push_back(s);
    return w;
}

// "all" or a port number; nullopt (with a message) otherwise.
std::optional<std::uint16_t> port_arg(const std::string& s, std::ostream& out) {
    if (s == "all")
        return Testpmd::kAll;
    unsigned v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || v >= ethdev::kMaxPorts) {
        out << strformat("Invalid port '{}': give a port number or all\n", s);
        return std::nullopt;
    }
    return static_cast<std::uint16_t>(v);
}

}  // namespace

std::string commands_help() {
    return "Commands:\n"
           "  start                      start forwarding\n"
           "  start tx_first             start, sending a first burst on every port\n"
           "  stop                       stop forwarding, print the forward statistics\n"
           "  show port stats all|N      NIC statistics and throughput since the last show\n"
           "  clear port stats all|N     reset NIC statistics\n"
           "  show port info all|N       MAC, link, driver, queues, offloads\n"
           "  show port xstats all|N     the driver's named counters\n"
           "  set fwd MODE               " +
           fwd_mode_names() +
           "\n"
           "  quit                       stop, close the ports and exit\n";
}

bool execute(Testpmd& tp, std::string_view line, std::ostream& out) {
    const auto w = words(line);
    auto is = [&](std::initializer_list<std::string_view> want) {
        if (w.size() != want.size())
            return false;
        std::size_t i = 0;
        for (std::string_view x : want) {
            if (x != "*" && w[i] != x)
                return false;
            ++i;
        }
        return true;
    };
    if (w.empty())
        return true;
    if (is({"quit"}) || is({"exit"}))
        return false;
    if (is({"help"})) {
        out << commands_help();
    } else if (is({"start"}) || is({"start", "tx_first"})) {
        if (auto ok = tp.start(w.size() == 2); !ok)
            out << ok.error().message() << "\n";
    } else if (is({"stop"})) {
        tp.stop();
    } else if (is({"show", "port", "stats", "*"})) {
        if (auto p = port_arg(w[3], out))
            tp.show_port_stats(*p);
    } else if (is({"clear", "port", "stats", "*"})) {
        if (auto p = port_arg(w[3], out))
            tp.clear_port_stats(*p);
    } else if (is({"show", "port", "info", "*"})) {
        if (auto p = port_arg(w[3], out))
            tp.show_port_info(*p);
    } else if (is({"show", "port", "xstats", "*"})) {
        if (auto p = port_arg(w[3], out))
            tp.show_port_xstats(*p);
    } else if (is({"set", "fwd", "*"})) {
        if (auto m = parse_fwd_mode(w[2])) {
            if (auto ok = tp.set_mode(*m); !ok)
                out << ok.error().message() << "\n";
        } else {
            out << strformat("Invalid forwarding mode '{}': one of {}\n", w[2],
                               fwd_mode_names());
        }
    } else {
        out << strformat("Command not found: '{}' (type help)\n", line);
    }
    out << std::flush;
    return true;
}

std::optional<std::string> LineReader::next() {
    for (;;) {
        if (auto nl = buf_.find('\n'); nl != std::string::npos) {
            std::string l = buf_.substr(0, nl);
            buf_.erase(0, nl + 1);
            return l;
        }
        if (eof_) {
            if (buf_.empty())
                return std::nullopt;
            return std::exchange(buf_, {});
        }
        pollfd fds[2] = {{fd_, POLLIN, 0}, {wake_, POLLIN, 0}};
        const int n = ::poll(fds, wake_ >= 0 ? 2 : 1, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            eof_ = true;
            continue;
        }
        if (wake_ >= 0 && (fds[1].revents & POLLIN)) {
            woken_ = true;
            return std::nullopt;
        }
        char chunk[512];
        const ssize_t r = ::read(fd_, chunk, sizeof chunk);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            eof_ = true;
        else
            buf_.append(chunk, static_cast<std::size_t>(r));
    }
}

}  // namespace vfiokit::testpmd

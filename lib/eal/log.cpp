#include "vfiokit/eal/log.hpp"

#include <fnmatch.h>
#include <regex.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace vfiokit::log {

namespace {

constexpr std::array<std::string_view, 8> kNames = {
    "emergency", "alert", "critical", "error", "warning", "notice", "info", "debug"};

Error bad_spec(std::string_view opt, std::string_view spec, std::string what) {
    Error e(EINVAL, std::string(opt) + " '" + std::string(spec) + "': " + std::move(what));
    e.hint("give LEVEL, PATTERN:LEVEL (shell pattern) or REGEX,LEVEL; LEVEL is one of "
           "emergency, alert, critical, error, warning, notice, info, debug or 1..8");
    return e;
}

bool matches(const LevelSpec& s, std::string_view name) {
    const std::string n(name);
    switch (s.match) {
    case LevelSpec::Match::all:
        return true;
    case LevelSpec::Match::glob:
        return ::fnmatch(s.pattern.c_str(), n.c_str(), 0) == 0;
    case LevelSpec::Match::regex: {
        regex_t re;
        if (::regcomp(&re, s.pattern.c_str(), REG_EXTENDED | REG_NOSUB) != 0)
            return false;  // checked by parse_level_spec; a spec built by hand may be bad
        const bool m = ::regexec(&re, n.c_str(), 0, nullptr, 0) == 0;
        ::regfree(&re);
        return m;
    }
    }
    return false;
}

// The components, the specs applied so far (in order) and where output goes.
struct Registry {
    std::mutex mu;
    std::vector<Component*> components;
    std::vector<LevelSpec> specs;
    Timestamp timestamp = Timestamp::none;
    std::chrono::steady_clock::time_point epoch = std::chrono::steady_clock::now();
    bool syslog = false;
    std::function<void(Level, std::string_view, std::string_view)> sink;
};

Registry& registry() {
    static Registry r;
    return r;
}

std::string stamp(Timestamp t, std::chrono::steady_clock::time_point epoch) {
    char buf[64];
    if (t == Timestamp::reltime) {
        const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::steady_clock::now() - epoch)
                            .count();
        std::snprintf(buf, sizeof buf, "[%5lld.%06lld] ", static_cast<long long>(us / 1000000),
                      static_cast<long long>(us % 1000000));
        return buf;
    }
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    tm local{};
    ::localtime_r(&ts.tv_sec, &local);
    const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &local);
    std::snprintf(buf + n, sizeof buf - n, ".%06ld ", ts.tv_nsec / 1000);
    return buf;
}

void write_all(int fd, const std::string& s) {
    for (std::size_t off = 0; off < s.size();) {
        const ssize_t n = ::write(fd, s.data() + off, s.size() - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;  // nowhere left to report it
        off += static_cast<std::size_t>(n);
    }
}

}  // namespace

std::string_view to_string(Level l) {
    const auto i = static_cast<std::size_t>(l);
    return i >= 1 && i <= kNames.size() ? kNames[i - 1] : "?";
}

Result<Level> parse_level(std::string_view s) {
    std::string low(s);
    std::transform(low.begin(), low.end(), low.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (low.size() == 1 && low[0] >= '1' && low[0] <= '8')
        return static_cast<Level>(low[0] - '0');
    for (std::size_t i = 0; i < kNames.size(); ++i)
        if (low == kNames[i])
            return static_cast<Level>(i + 1);
    // DPDK's and syslog's short forms.
    if (low == "emerg")
        return Level::emergency;
    if (low == "crit")
        return Level::critical;
    if (low == "err")
        return Level::error;
    if (low == "warn")
        return Level::warning;
    return fail(Error(EINVAL, "log level '" + std::string(s) + "' is not a level")
                    .hint("one of emergency, alert, critical, error, warning, notice, info, "
                          "debug, or 1..8"));
}

Component::Component(std::string_view name) : name_(name), level_(Level::info) {
    auto& r = registry();
    std::lock_guard g(r.mu);
    for (const auto& s : r.specs)
        if (matches(s, name_))
            level_.store(s.level, std::memory_order_relaxed);
    r.components.push_back(this);
}

Component::~Component() {
    auto& r = registry();
    std::lock_guard g(r.mu);
    std::erase(r.components, this);
}

void Component::write(Level l, std::string_view message) const {
    auto& r = registry();
    std::string line;
    bool to_syslog = false;
    std::function<void(Level, std::string_view, std::string_view)> sink;
    {
        std::lock_guard g(r.mu);
        if (r.timestamp != Timestamp::none)
            line = stamp(r.timestamp, r.epoch);
        to_syslog = r.syslog;
        sink = r.sink;
    }
    const std::size_t body = line.size();
    line += "vfiokit: ";
    line += name_;
    line += ": ";
    if (l <= Level::warning) {
        line += to_string(l);
        line += ": ";
    }
    line += message;
    if (sink) {
        sink(l, name_, line);
        return;
    }
    if (to_syslog) {
        // syslog adds its own time; the message starts after our stamp.
        ::syslog(static_cast<int>(l) - 1, "%s", line.c_str() + body);
        if (::isatty(STDERR_FILENO) != 1)
            return;
    }
    line += '\n';
    write_all(STDERR_FILENO, line);
}

namespace {

// What a pattern may ask of regcomp. glibc compiles each repetition by
// copying what it repeats, so stacked or nested repetitions multiply: 20
// '+' in a row took 200 MB and 24 more than 20 s (found by fuzzing). A
// component pattern needs few: at most kMaxRepeats repetition operators
// ('*', '+', '?', an interval), intervals up to kMaxInterval, outside
// bracket expressions and escapes. Empty when the pattern is within them.
constexpr unsigned kMaxRepeats = 8;
constexpr unsigned kMaxInterval = 64;
constexpr std::size_t kMaxPattern = 256;

std::string regex_too_costly(std::string_view p) {
    if (p.size() > kMaxPattern)
        return "the pattern is longer than " + std::to_string(kMaxPattern) + " characters";
    unsigned repeats = 0;
    for (std::size_t i = 0; i < p.size(); ++i) {
        const char c = p[i];
        if (c == '\\') {
            ++i;  // an escaped character is a literal
        } else if (c == '[') {
            // A bracket expression: ']' right after '[' or '[^' is a member.
            std::size_t j = i + 1;
            if (j < p.size() && p[j] == '^')
                ++j;
            if (j < p.size() && p[j] == ']')
                ++j;
            while (j < p.size() && p[j] != ']')
                ++j;
            i = j;
        } else if (c == '*' || c == '+' || c == '?' || c == '{') {
            if (++repeats > kMaxRepeats)
                return "more than " + std::to_string(kMaxRepeats) + " repetition operators";
            if (c == '{') {
                unsigned long n = 0;
                for (std::size_t j = i + 1; j < p.size() && p[j] != '}'; ++j)
                    if (p[j] >= '0' && p[j] <= '9') {
                        n = n * 10 + static_cast<unsigned>(p[j] - '0');
                        if (n > kMaxInterval)
                            return "an interval above {" + std::to_string(kMaxInterval) + "}";
                    } else {
                        n = 0;  // the ',' between the bounds
                    }
            }
        }
    }
    return {};
}

}  // namespace

Result<LevelSpec> parse_level_spec(std::string_view s) {
    constexpr std::string_view opt = "--log-level";
    LevelSpec spec;
    spec.text = std::string(s);
    std::string_view level = s;
    if (auto colon = s.rfind(':'); colon != std::string_view::npos) {
        spec.match = LevelSpec::Match::glob;
        spec.pattern = std::string(s.substr(0, colon));
        level = s.substr(colon + 1);
    } else if (auto comma = s.rfind(','); comma != std::string_view::npos) {
        spec.match = LevelSpec::Match::regex;
        spec.pattern = std::string(s.substr(0, comma));
        level = s.substr(comma + 1);
    }
    if (spec.match != LevelSpec::Match::all && spec.pattern.empty())
        return fail(bad_spec(opt, s, "the component pattern is empty"));
    auto l = parse_level(level);
    if (!l)
        return fail(bad_spec(opt, s, "'" + std::string(level) + "' is not a level"));
    spec.level = *l;
    if (spec.match == LevelSpec::Match::regex) {
        if (auto why = regex_too_costly(spec.pattern); !why.empty())
            return fail(bad_spec(opt, s, "'" + spec.pattern + "' asks too much of the regular " +
                                             "expression compiler: " + why));
        regex_t re;
        if (int rc = ::regcomp(&re, spec.pattern.c_str(), REG_EXTENDED | REG_NOSUB); rc != 0) {
            char why[128];
            ::regerror(rc, &re, why, sizeof why);
            return fail(bad_spec(opt, s, "'" + spec.pattern + "' is not a regular expression (" +
                                             why + ")"));
        }
        ::regfree(&re);
    }
    return spec;
}

void apply(const LevelSpec& spec) {
    auto& r = registry();
    std::lock_guard g(r.mu);
    r.specs.push_back(spec);
    for (Component* c : r.components)
        if (matches(spec, c->name()))
            c->set_level(spec.level);
}

void reset_levels() {
    auto& r = registry();
    std::lock_guard g(r.mu);
    r.specs.clear();
    for (Component* c : r.components)
        c->set_level(Level::info);
}

Result<Timestamp> parse_timestamp(std::string_view s) {
    if (s.empty() || s == "reltime")
        return Timestamp::reltime;
    if (s == "iso")
        return Timestamp::iso;
    if (s == "none")
        return Timestamp::none;
    return fail(Error(EINVAL, "--log-timestamp '" + std::string(s) + "' is not a format")
                    .hint("reltime (seconds since start, the default), iso, or none"));
}

void set_timestamp(Timestamp t) {
    auto& r = registry();
    std::lock_guard g(r.mu);
    r.timestamp = t;
    r.epoch = std::chrono::steady_clock::now();
}

Result<int> parse_syslog_facility(std::string_view s) {
    struct Name {
        std::string_view name;
        int facility;
    };
    static constexpr Name kFacilities[] = {
        {"auth", LOG_AUTH},     {"cron", LOG_CRON},     {"daemon", LOG_DAEMON},
        {"ftp", LOG_FTP},       {"kern", LOG_KERN},     {"lpr", LOG_LPR},
        {"mail", LOG_MAIL},     {"news", LOG_NEWS},     {"syslog", LOG_SYSLOG},
        {"user", LOG_USER},     {"uucp", LOG_UUCP},     {"local0", LOG_LOCAL0},
        {"local1", LOG_LOCAL1}, {"local2", LOG_LOCAL2}, {"local3", LOG_LOCAL3},
        {"local4", LOG_LOCAL4}, {"local5", LOG_LOCAL5}, {"local6", LOG_LOCAL6},
        {"local7", LOG_LOCAL7},
    };
    if (s.empty())
        return LOG_DAEMON;  // DPDK's default facility
    for (const auto& f : kFacilities)
        if (s == f.name)
            return f.facility;
    return fail(Error(EINVAL, "--syslog '" + std::string(s) + "' is not a syslog facility")
                    .hint("auth, cron, daemon (the default), ftp, kern, lpr, mail, news, syslog, "
                          "user, uucp, local0 ... local7"));
}

void use_syslog(int facility) {
    auto& r = registry();
    std::lock_guard g(r.mu);
    // ident NULL: the program's name (glibc's program_invocation_short_name).
    ::openlog(nullptr, LOG_PID | LOG_NDELAY, facility);
    r.syslog = true;
}

void use_stderr() {
    auto& r = registry();
    std::lock_guard g(r.mu);
    if (r.syslog)
        ::closelog();
    r.syslog = false;
}

std::vector<ComponentLevel> components() {
    auto& r = registry();
    std::vector<ComponentLevel> out;
    {
        std::lock_guard g(r.mu);
        for (const Component* c : r.components)
            out.push_back({std::string(c->name()), c->level()});
    }
    std::sort(out.begin(), out.end(),
              [](const ComponentLevel& a, const ComponentLevel& b) { return a.name < b.name; });
    return out;
}

void set_sink(std::function<void(Level, std::string_view, std::string_view)> sink) {
    auto& r = registry();
    std::lock_guard g(r.mu);
    r.sink = std::move(sink);
}

}  // namespace vfiokit::log

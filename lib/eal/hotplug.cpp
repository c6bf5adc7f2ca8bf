#include "hotplug.hpp"
#include "process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <string>

#include "vfiokit/eal/sysfs.hpp"

namespace vfiokit::eal::hotplug {

namespace {

// A secondary that exited (or is a zombie) is not waited for.
bool alive(pid_t pid) { return detail::process_alive(pid); }

}  // namespace

void Board::serve(mp::Server& s) {
    s.handle(std::string(kSubscribe),
             [this](const mp::Request& r, const mp::Peer& p) -> Result<mp::Reply> {
                 if (r.fds.size() != 1)
                     return fail(EINVAL, std::string(kSubscribe) + ": send one eventfd");
                 const int copy = ::fcntl(r.fds[0].get(), F_DUPFD_CLOEXEC, 0);
                 if (copy < 0)
                     return fail(errno, std::string(kSubscribe) + ": dup the eventfd");
                 std::lock_guard g(mu_);
                 // One doorbell per process: a re-subscription replaces it.
                 std::erase_if(subs_, [&](const Subscriber& x) { return x.pid == p.pid; });
                 subs_.push_back({p.pid, vfio::Fd(copy)});
                 return mp::Reply{};
             });
    s.handle(std::string(kRemoving), [this](const mp::Request&, const mp::Peer&) -> Result<mp::Reply> {
        std::lock_guard g(mu_);
        mp::Reply r;
        for (const auto& x : removing_)
            r.payload += x.addr.str() + "\n";
        return r;
    });
    s.handle(std::string(kReleased),
             [this](const mp::Request& r, const mp::Peer& p) -> Result<mp::Reply> {
                 auto a = PciAddress::parse(r.payload);
                 if (!a)
                     return fail(EINVAL, std::string(kReleased) + ": not a PCI address");
                 std::lock_guard g(mu_);
                 for (auto& x : removing_)
                     if (x.addr == *a && std::find(x.acked.begin(), x.acked.end(), p.pid) ==
                                             x.acked.end())
                         x.acked.push_back(p.pid);
                 cv_.notify_all();
                 return mp::Reply{};
             });
}

std::vector<pid_t> Board::ask_secondaries(PciAddress a, std::chrono::milliseconds wait) {
    std::unique_lock g(mu_);
    std::erase_if(subs_, [](const Subscriber& s) { return !alive(s.pid); });
    if (subs_.empty())
        return {};
    if (std::none_of(removing_.begin(), removing_.end(),
                     [&](const Removing& r) { return r.addr == a; }))
        removing_.push_back({a, {}});
    for (const auto& s : subs_) {
        const std::uint64_t one = 1;
        (void)!::write(s.doorbell.get(), &one, sizeof one);
    }
    auto missing = [&] {
        std::vector<pid_t> out;
        const Removing* r = nullptr;
        for (const auto& x : removing_)
            if (x.addr == a)
                r = &x;
        for (const auto& s : subs_)
            if (r != nullptr && std::find(r->acked.begin(), r->acked.end(), s.pid) == r->acked.end() &&
                alive(s.pid))
                out.push_back(s.pid);
        return out;
    };
    const auto until = std::chrono::steady_clock::now() + wait;
    // Woken by each acknowledgement; a secondary that exits meanwhile is
    // noticed at the next 100 ms tick.
    while (!missing().empty() && std::chrono::steady_clock::now() < until)
        cv_.wait_for(g, std::chrono::milliseconds(100));
    return missing();
}

void Board::done(PciAddress a) {
    std::lock_guard g(mu_);
    std::erase_if(removing_, [&](const Removing& r) { return r.addr == a; });
}

std::size_t Board::subscribers() const {
    std::lock_guard g(mu_);
    return subs_.size();
}

Result<Subscription> Subscription::subscribe(mp::Client& c) {
    const int e = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (e < 0)
        return fail(errno, "eventfd for device removals");
    vfio::Fd fd(e);
    const int fds[] = {fd.get()};
    if (auto r = c.request(kSubscribe, {}, fds); !r)
        return fail(std::move(r.error()).context("subscribe to the primary's device removals"));
    return Subscription(std::move(fd));
}

Result<std::vector<PciAddress>> Subscription::poll(mp::Client& c) {
    std::uint64_t n = 0;
    if (::read(doorbell_.get(), &n, sizeof n) != sizeof n) {
        if (errno == EAGAIN)
            return std::vector<PciAddress>{};
        return fail(errno, "read the device-removal doorbell");
    }
    auto r = c.request(kRemoving);
    if (!r)
        return fail(std::move(r.error()).context("ask the primary which devices it removes"));
    std::vector<PciAddress> out;
    std::string_view s = r->payload;
    while (!s.empty()) {
        const auto nl = s.find('\n');
        if (auto a = PciAddress::parse(s.substr(0, nl)))
            out.push_back(*a);
        if (nl == std::string_view::npos)
            break;
        s.remove_prefix(nl + 1);
    }
    return out;
}

Result<void> Subscription::released(mp::Client& c, PciAddress a) {
    if (auto r = c.request(kReleased, a.str()); !r)
        return fail(std::move(r.error()).context("tell the primary " + a.str() + " is released"));
    return {};
}

}  // namespace vfiokit::eal::hotplug

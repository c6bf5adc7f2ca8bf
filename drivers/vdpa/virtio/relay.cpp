#include "relay.hpp"

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace vfiokit::vdpa {

Result<void> Relay::start(std::vector<RelayRing> rings) {
    stop();
    const int w = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (w < 0)
        return fail(errno, "eventfd (kick relay wakeup)");
    wake_ = vfio::Fd(w);
    rings_ = std::move(rings);
    last_.clear();
    for (const auto& r : rings_)
        last_.push_back(static_cast<std::uint16_t>(*r.used_idx));
    stop_ = false;
    // Kicks written before the relay ran are in the eventfds too; one
    // notify per queue does no harm (the device finds nothing new).
    for (const auto& r : rings_)
        hw_->notify(r.queue);
    try {
        thread_ = std::thread([this] { run(); });
    } catch (const std::system_error& e) {
        wake_.reset();
        return fail(e.code().value(), "start the kick relay thread");
    }
    return {};
}

void Relay::stop() {
    if (!thread_.joinable())
        return;
    stop_ = true;
    const std::uint64_t one = 1;
    (void)!::write(wake_.get(), &one, sizeof one);
    thread_.join();
    sample();
    wake_.reset();
}

void Relay::sample() {
    for (std::size_t i = 0; i < rings_.size(); ++i) {
        const std::uint16_t now = *rings_[i].used_idx;
        rings_[i].used->fetch_add(static_cast<std::uint16_t>(now - last_[i]),
                                  std::memory_order_relaxed);
        last_[i] = now;
    }
}

void Relay::run() {
    // Named, so that its CPU time shows apart (/proc/PID/task/TID/stat).
    ::pthread_setname_np(::pthread_self(), "vdpa-relay");
    std::vector<pollfd> fds;
    std::vector<std::uint16_t> queue_of;
    fds.push_back({wake_.get(), POLLIN, 0});
    for (const auto& r : rings_) {
        if (r.kick_fd < 0)
            continue;
        fds.push_back({r.kick_fd, POLLIN, 0});
        queue_of.push_back(r.queue);
    }
    while (!stop_.load(std::memory_order_relaxed)) {
        const int n = ::poll(fds.data(), fds.size(), sample_ms_);
        wakeups_.fetch_add(1, std::memory_order_relaxed);
        if (n > 0) {
            for (std::size_t i = 1; i < fds.size(); ++i) {
                if (!(fds[i].revents & POLLIN))
                    continue;
                std::uint64_t v = 0;
                // The count does not matter: one doorbell covers every
                // kick since the last (the device reads the avail index).
                if (::read(fds[i].fd, &v, sizeof v) == sizeof v) {
                    hw_->notify(queue_of[i - 1]);
                    kicks_.fetch_add(1, std::memory_order_relaxed);
                }
            }
        }
        sample();
    }
}

}  // namespace vfiokit::vdpa

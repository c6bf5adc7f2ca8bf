// The secondaries' own DMA mappings in the primary's containers
// (doc/multiprocess.md "A secondary's own mappings"): the secondary reports
// each map and unmap over the channel, the primary records them per
// connection, and unmaps what is left when a connection ends.
#include <cerrno>
#include <chrono>
#include <thread>

#include "eal_log.hpp"
#include "mp/foreign_dma.hpp"
#include "process.hpp"
#include "vfiokit/eal/eal.hpp"
#include "vfiokit/eal/format.hpp"
#include "vfiokit/eal/recursive_lock.hpp"

namespace vfiokit::eal {

namespace {

// How long the primary waits for a secondary whose connection ended to be
// gone: a dying process closes its fds before it becomes a zombie.
constexpr auto kExitWait = std::chrono::milliseconds(1000);

}  // namespace

void Eal::serve_foreign_dma() {
    foreign_dma_ = std::make_unique<mp::ForeignDma>();
    RecursiveLock& lock = vfio_->control_lock();
    // The container a secondary names, by its position (the order it
    // imported them in).
    auto container = [this](const mp::DmaRange& r) -> Result<vfio::Container*> {
        const auto& cs = vfio_->containers();
        if (r.container >= cs.size())
            return fail(Error(ENOENT, "container #" + std::to_string(r.container) +
                                          ": the primary has " + std::to_string(cs.size())));
        vfio::Container* c = cs[r.container].get();
        if (!c->maps_memory())
            return fail(Error(ENOTSUP, c->describe() + " maps nothing"));
        return c;
    };
    // The three reports carry one range each: a handler gets it decoded,
    // and runs holding the VFIO control lock, as secondary_gone reads the
    // records under it.
    auto on_range = [this, held = &lock](std::string_view name, auto act) {
        server_->handle(std::string(name),
                        [held, act](const mp::Request& q,
                                    const mp::Peer& peer) -> Result<mp::Reply> {
                            auto r = mp::decode_dma_range(q.payload);
                            if (!r)
                                return fail(std::move(r.error()));
                            std::lock_guard g(*held);
                            if (auto ok = act(*r, peer); !ok)
                                return fail(std::move(ok.error()));
                            return mp::Reply{};
                        });
    };
    on_range(mp::kDmaIntentRequest,
             [this, container](const mp::DmaRange& r, const mp::Peer& peer) -> Result<void> {
                 auto c = container(r);
                 if (!c)
                     return fail(std::move(c.error()));
                 // Never record a range over the primary's own mappings:
                 // the cleanup would unmap them.
                 for (const auto& m : (*c)->mappings())
                     if (m.iova < r.iova + r.len && r.iova < m.iova + m.len)
                         return fail(Error(EEXIST, "IOVA " + range_text(r.iova, r.len) +
                                                       " overlaps the primary's mapping " +
                                                       range_text(m.iova, m.len)));
                 return foreign_dma_->announce(peer.connection, r);
             });
    on_range(mp::kDmaMappedRequest,
             [this](const mp::DmaRange& r, const mp::Peer& peer) -> Result<void> {
                 return foreign_dma_->confirm(peer.connection, r);
             });
    on_range(mp::kDmaUnmappedRequest,
             [this](const mp::DmaRange& r, const mp::Peer& peer) -> Result<void> {
                 (void)foreign_dma_->release(peer.connection, r);
                 return {};
             });
    server_->on_disconnect([this](const mp::Peer& peer) { secondary_gone(peer); });
}

void Eal::secondary_gone(const mp::Peer& peer) {
    RecursiveLock& lock = vfio_->control_lock();
    {
        std::lock_guard g(lock);
        if (foreign_dma_->count(peer.connection) == 0)
            return;  // a clean detach, or a peer that never mapped
    }
    // Its sockets close before the process is gone; wait for that, so its
    // last ioctl is over before the ranges are unmapped.
    const auto until = std::chrono::steady_clock::now() + kExitWait;
    bool running = detail::process_alive(peer.pid);
    while (running && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        running = detail::process_alive(peer.pid);
    }
    SecondaryExit x;
    x.pid = peer.pid;
    x.connection = peer.connection;
    x.still_running = running;
    std::string failures;
    {
        std::lock_guard g(lock);
        const auto left = foreign_dma_->take(peer.connection);
        x.ranges = left.size();
        const auto& cs = vfio_->containers();
        for (const auto& f : left) {
            Result<std::uint64_t> done = fail(ENOENT, "container gone");
            if (f.range.container < cs.size())
                done = cs[f.range.container]->unmap_foreign(f.range.iova, f.range.len);
            else
                done = fail(Error(ENOENT, "container #" + std::to_string(f.range.container) +
                                              " no longer exists"));
            if (done) {
                ++x.unmapped;
                x.bytes += *done;
            } else if (done.error().err() == ENOENT) {
                ++x.already_gone;
            } else {
                ++x.failed;
                failures += "\n  " + done.error().message();
            }
        }
    }
    eal_log.notice("secondary pid {}{} left {} own DMA mapping(s) in the primary's containers: "
                   "unmapped {} ({} bytes), {} already gone, {} failed{}",
                   peer.pid, running ? " (still running, but its channel closed)" : " exited",
                   x.ranges, x.unmapped, x.bytes, x.already_gone, x.failed, failures);
    std::vector<std::pair<int, SecondaryExitCallback>> cbs;
    {
        std::lock_guard g(secondary_exit_mu_);
        cbs = secondary_exit_callbacks_;
    }
    for (const auto& [id, cb] : cbs)
        cb(x);
}

Result<int> Eal::add_secondary_exit_callback(SecondaryExitCallback cb) {
    if (!server_)
        return fail(Error(ENOTSUP, "add a secondary-exit callback: this process serves no "
                                   "secondaries")
                        .hint("only a primary started with --proc-type or --file-prefix has "
                              "secondaries"));
    std::lock_guard g(secondary_exit_mu_);
    const int id = next_secondary_exit_callback_++;
    secondary_exit_callbacks_.emplace_back(id, std::move(cb));
    return id;
}

bool Eal::remove_secondary_exit_callback(int id) {
    std::lock_guard g(secondary_exit_mu_);
    return std::erase_if(secondary_exit_callbacks_,
                         [id](const auto& p) { return p.first == id; }) != 0;
}

void Eal::report_dma_to_primary() {
    vfio_->set_dma_reporter([this](const vfio::DmaReport& r) -> Result<void> {
        if (!client_)
            return fail(Error(ENOTCONN, "report a DMA mapping to the primary: not connected"));
        std::string_view name = r.kind == vfio::DmaReport::Kind::intent   ? mp::kDmaIntentRequest
                                : r.kind == vfio::DmaReport::Kind::mapped ? mp::kDmaMappedRequest
                                                                          : mp::kDmaUnmappedRequest;
        auto ok = client_->request(name, mp::encode(mp::DmaRange{r.container, r.iova, r.len}));
        if (!ok)
            return fail(std::move(ok.error()));
        return {};
    });
}

}  // namespace vfiokit::eal

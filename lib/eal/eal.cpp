#include "vfiokit/eal/eal.hpp"

#include <fcntl.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <iterator>
#include <mutex>

#include "eal_log.hpp"
#include "hotplug.hpp"
#include "mp/foreign_dma.hpp"

namespace vfiokit::eal {

const log::Component eal_log("eal");


Result<std::unique_ptr<Eal>> Eal::init(int argc, const char* const* argv, int* first_app_arg) {
    Options o;
    auto first = parse_options(argc, argv, o);
    if (!first)
        return fail(std::move(first.error()));
    if (first_app_arg)
        *first_app_arg = *first;
    return init(o);
}

Result<std::unique_ptr<Eal>> Eal::init(const Options& o) {
    // parse_options refuses these; Options built by hand get the same check
    // (MiB << 20 must not wrap).
    if (o.memory_mb > kMaxMemoryMb ||
        std::any_of(o.socket_mem_mb.begin(), o.socket_mem_mb.end(),
                    [](std::uint64_t mb) { return mb > kMaxMemoryMb; }))
        return fail(Error(EINVAL, "EAL init: -m/--socket-mem above " +
                                      std::to_string(kMaxMemoryMb) + " MiB (128 TiB)"));
    // Checked again when it becomes current; here so that a second init
    // fails for what it is, before its lcores collide with the first's.
    if (current() != nullptr)
        return fail(Error(EBUSY, "EAL init: this process already has an EAL")
                        .hint("destroy the first Eal before initialising another"));
    // Logging first, so that everything after reports as asked. Levels
    // and sinks are the process's (as DPDK's): set only when given.
    for (const auto& spec : o.log_levels)
        log::apply(spec);
    if (o.log_timestamp != log::Timestamp::none)
        log::set_timestamp(o.log_timestamp);
    if (o.syslog_facility)
        log::use_syslog(*o.syslog_facility);
    std::unique_ptr<Eal> e(new Eal());
    e->opts_ = o;
    auto lc = Lcores::start(o.lcores, o.main_lcore_id());
    if (!lc)
        return fail(std::move(lc.error()).context("EAL init"));
    e->lcores_ = std::move(*lc);
    std::optional<mp::RuntimeDir> dir;
    if (o.multi_process) {
        auto d = mp::open_runtime_dir(o.file_prefix);
        if (!d)
            return fail(std::move(d.error()).context("EAL init"));
        dir = std::move(*d);
        auto r = mp::claim_role(o.proc_type, *dir);
        if (!r)
            return fail(std::move(r.error()).context("EAL init"));
        e->role_ = std::move(*r);
        if (e->role_.type == ProcType::secondary) {
            if (auto ok = e->init_secondary(*dir); !ok)
                return fail(std::move(ok.error()).context("EAL init (secondary, prefix " +
                                                          o.file_prefix + ")"));
            if (auto ok = e->make_current(); !ok)
                return fail(std::move(ok.error()));
            // Drivers attach to the primary's devices (their ports' queues
            // are in the memory just mapped).
            const BusContext ctx{*e->vfio_, e->opts_, sysfs::Root(o.vfio.sysroot)};
            for (Bus* b : buses()) {
                auto p = b->probe_secondary(ctx);
                if (!p)
                    return fail(std::move(p.error()).context("EAL init (secondary, prefix " +
                                                              o.file_prefix + "): " +
                                                              std::string(b->name()) + " bus"));
                if (*p)
                    e->buses_.push_back(std::move(*p));
            }
            if (auto ok = e->start_services(); !ok)
                return fail(std::move(ok.error()));
            return e;
        }
    }
    auto v = vfio::Vfio::create(o.vfio);
    if (!v)
        return fail(std::move(v.error()).context("EAL init"));
    e->vfio_ = std::move(*v);
    vfio::Container& dc = e->vfio_->default_container();

    MemoryOptions mo = o.memory;
    auto iova = resolve_iova_mode(mo.iova_mode, dc);
    if (!iova)
        return fail(std::move(iova.error()).context("EAL init"));
    mo.iova_mode = *iova;
    auto m = Memory::create(mo);
    if (!m)
        return fail(std::move(m.error()).context("EAL init"));
    e->memory_ = std::move(*m);
    // One lock for the control path: VFIO's, also taken by memory growth
    // and by the server's handlers (serve()).
    e->memory_->set_control_lock(&e->vfio_->control_lock());
    e->listener_ = std::make_unique<ContainerDmaListener>(*e->memory_, dc);
    e->memory_->set_listener(e->listener_.get());

    if (o.memory_mb != 0)
        if (auto ok = e->heap(-1).reserve(o.memory_mb << 20); !ok)
            return fail(std::move(ok.error()).context("EAL init: -m " + std::to_string(o.memory_mb)));
    for (std::size_t node = 0; node < o.socket_mem_mb.size(); ++node) {
        if (o.socket_mem_mb[node] == 0)
            continue;
        if (auto ok = e->heap(static_cast<int>(node)).reserve(o.socket_mem_mb[node] << 20); !ok)
            return fail(std::move(ok.error()).context("EAL init: --socket-mem on node " +
                                                      std::to_string(node)));
    }
    if (!o.allow.empty() && buses().empty())
        return fail(Error(EINVAL, "EAL init: -a " + o.allow.front().addr.str() +
                                      ": no bus is linked into this program")
                        .hint("link the PCI bus and the drivers (pci_dep, a driver's *_pmd_dep)"));
    // Drivers probed below may allocate EAL memory through current().
    if (auto ok = e->make_current(); !ok)
        return fail(std::move(ok.error()));
    const BusContext ctx{*e->vfio_, e->opts_, sysfs::Root(o.vfio.sysroot)};
    for (Bus* b : buses()) {
        auto p = b->probe(ctx);
        if (!p)
            return fail(std::move(p.error()).context("EAL init: " + std::string(b->name()) + " bus"));
        e->buses_.push_back(std::move(*p));
    }
    if (dir)
        if (auto ok = e->serve(*dir); !ok)
            return fail(std::move(ok.error()).context("EAL init (primary, prefix " +
                                                      o.file_prefix + ")"));
    if (auto ok = e->start_services(); !ok)
        return fail(std::move(ok.error()));
    return e;
}

Result<void> Eal::start_services() {
    for (const ServiceEntry& s : services()) {
        auto r = s.start(*this);
        if (!r)
            return fail(std::move(r.error()).context("EAL init: service " + std::string(s.name)));
        if (*r)
            services_.push_back(std::move(*r));
    }
    return {};
}

Result<void> Eal::serve(const mp::RuntimeDir& dir) {
    auto s = mp::Server::listen(dir, *role_.lock);
    if (!s)
        return fail(std::move(s.error()));
    server_ = std::move(*s);
    board_ = std::make_unique<hotplug::Board>();
    board_->serve(*server_);
    RecursiveLock& lock = vfio_->control_lock();
    mp::serve_runtime(*server_, *memory_,
                      {opts_.file_prefix, std::string(vfio::to_string(vfio_->mode())),
                       vfio_->mode_reason()},
                      &lock);
    // The VFIO state, as bytes and fds. Under the EAL lock: no device is
    // assigned or released while it is read, and the fds are dup'ed before
    // the lock goes, so a release after it cannot close (and a reuse
    // cannot replace) an fd before the reply is sent.
    // The container and every device fd: to the primary's own uid only
    // (mp::Policy's default; an application may open it to allow_uid()
    // users with set_policy). In no-IOMMU mode a device fd is DMA to any
    // physical address, root's power: never to another uid, whatever the
    // policy says.
    server_->handle(std::string(mp::kVfioRequest),
                    [this, &lock](const mp::Request&, const mp::Peer& peer) -> Result<mp::Reply> {
                        if (!vfio::mode_nodes(vfio_->mode()).translates && peer.uid != ::geteuid())
                            return fail(
                                Error(EACCES, "request '" + std::string(mp::kVfioRequest) +
                                                  "' refused for pid " + std::to_string(peer.pid) +
                                                  " (uid " + std::to_string(peer.uid) + "): in " +
                                                  std::string(vfio::to_string(vfio_->mode())) +
                                                  " mode a device fd can DMA anywhere; only the "
                                                  "primary's own uid (" +
                                                  std::to_string(::geteuid()) + ") gets it"));
                        std::lock_guard g(lock);
                        auto st = vfio_->export_shared();
                        if (!st)
                            return fail(std::move(st.error()));
                        mp::Reply r;
                        r.payload.assign(st->bytes.begin(), st->bytes.end());
                        for (int fd : st->fds) {
                            const int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
                            if (copy < 0)
                                return fail(Error(errno, "dup a VFIO fd").context("eal.vfio"));
                            r.owned_fds.emplace_back(copy);
                        }
                        return r;
                    });
    server_->set_info_provider([this, &lock] {
        std::lock_guard g(lock);
        std::string d;
        for (const auto& c : vfio_->containers()) {
            d += (d.empty() ? "" : "\n") + c->describe();
            for (const auto& dev : c->devices())
                d += "\n  device " + dev->address().str();
        }
        return d;
    });
    serve_foreign_dma();
    return server_->start();
}

Result<void> Eal::init_secondary(const mp::RuntimeDir& dir) {
    auto c = mp::Client::connect(dir);
    if (!c)
        return fail(std::move(c.error()));
    client_ = std::move(*c);
    // From now on the primary's death is noticed when it happens, not at
    // the next request (add_primary_exit_callback).
    if (auto ok = client_->watch([this](const Error& e) { primary_exited(e); }); !ok)
        return fail(std::move(ok.error()).context("EAL init: watch the primary"));
    // The VFIO state first: in cdev no-IOMMU the physical addresses of the
    // primary's memory come from its container (the kernel pinned them).
    auto r = client_->request(mp::kVfioRequest);
    if (!r)
        return fail(std::move(r.error()));
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(r->payload.data());
    auto v = vfio::Vfio::import_shared({bytes, r->payload.size()}, std::move(r->fds));
    if (!v)
        return fail(std::move(v.error()));
    vfio_ = std::move(*v);
    report_dma_to_primary();
    PhysicalLookup physical;
    if (vfio::Container& dc = vfio_->default_container(); dc.reports_physical())
        physical = [&dc](const Segment& s) { return container_physical(dc, s); };
    auto m = mp::attach_memory(*client_, physical);
    if (!m)
        return fail(std::move(m.error()));
    memory_ = std::move(*m);
    return {};
}

namespace {
std::atomic<Eal*> g_current{nullptr};
}  // namespace

Eal* Eal::current() { return g_current.load(std::memory_order_acquire); }

Result<void> Eal::make_current() {
    Eal* none = nullptr;
    if (!g_current.compare_exchange_strong(none, this, std::memory_order_acq_rel))
        return fail(Error(EBUSY, "EAL init: this process already has an EAL")
                        .hint("destroy the first Eal before initialising another"));
    return {};
}

Eal::~Eal() {
    // Services read everything else (ports, memory, VFIO): they go first.
    while (!services_.empty())
        services_.pop_back();
    // Functions launched on workers may use this EAL: wait for them while
    // it is still whole.
    lcores_.reset();
    // Leaves current() first: nothing may reach this EAL while it goes.
    Eal* self = this;
    g_current.compare_exchange_strong(self, nullptr, std::memory_order_acq_rel);
    // The server's handlers read memory and VFIO state: stop it first.
    server_.reset();
    // A secondary unmaps what it mapped in the primary's containers while
    // it can still tell the primary so (a clean detach: nothing is left
    // for the primary to clean up when the connection closes).
    if (client_ && vfio_) {
        if (auto ok = vfio_->unmap_own(); !ok)
            eal_log.warning("{}", ok.error().message());
        vfio_->set_dma_reporter({});
    }
    client_.reset();
    // Newest bus first: drivers before the memory and devices they use.
    while (!buses_.empty())
        buses_.pop_back();
    heaps_.clear();
    memory_.reset();
    listener_.reset();
    vfio_.reset();
}

std::vector<DeviceReport> Eal::device_report() const {
    std::vector<DeviceReport> out;
    for (const auto& b : buses_)
        out.insert(out.end(), b->report().begin(), b->report().end());
    return out;
}

std::vector<RemovalRequest> Eal::removal_requests() {
    std::lock_guard g(vfio_->control_lock());
    std::vector<RemovalRequest> out;
    for (const auto& b : buses_) {
        auto r = b->removal_requests();
        out.insert(out.end(), std::make_move_iterator(r.begin()), std::make_move_iterator(r.end()));
    }
    for (const auto& r : out)
        note_removal_request(r);
    return out;
}

Result<void> Eal::remove_device(PciAddress a) {
    std::lock_guard g(vfio_->control_lock());
    // Secondaries that monitor events let go of their copies first
    // (hotplug.hpp): the kernel waits for every open of the device.
    if (board_ && holds(a))
        for (pid_t pid : board_->ask_secondaries(a))
            eal_log.warning("device {}: secondary process {} did not release it within {} ms; "
                            "the kernel waits until it does or exits",
                            a.str(), static_cast<int>(pid),
                            static_cast<long long>(hotplug::kSecondaryWait.count()));
    std::optional<Result<void>> done;
    for (const auto& b : buses_) {
        auto r = b->remove(a);
        if (!r && r.error().err() == ENODEV)
            continue;  // another bus's
        done = std::move(r);
        break;
    }
    // A secondary may hold a device no driver of its own took: its copies
    // of the primary's fds, which it gives back the same way.
    if (!done && client_)
        if (vfio::Device* d = vfio_->find_device(a))
            done = vfio_->release_device(*d);
    if (!done)
        return fail(Error(ENODEV, "remove device " + a.str() + ": no bus of this EAL probed it")
                        .hint("list the probed devices with Eal::device_report()"));
    if (!*done)
        return fail(std::move(done->error()).context("remove device " + a.str()));
    // Forget it: a device plugged in again at the address is reported
    // again.
    std::erase(removal_reported_, a);
    std::erase(remove_delivered_, a);
    if (board_)
        board_->done(a);
    if (subscription_ && client_)
        if (auto ok = subscription_->released(*client_, a); !ok)
            return fail(std::move(ok.error()).context("remove device " + a.str()));
    return {};
}

void Eal::primary_exited(const Error& e) {
    std::vector<std::pair<int, PrimaryExitCallback>> now;
    {
        std::lock_guard g(exit_mu_);
        primary_exit_ = e;
        now = exit_callbacks_;
    }
    eal_log.notice("{}", e.message());
    for (const auto& [id, cb] : now)
        cb(e);
}

Result<int> Eal::add_primary_exit_callback(PrimaryExitCallback cb) {
    if (!client_)
        return fail(Error(ENOTSUP, "add a primary-exit callback: this process is the primary")
                        .hint("only a secondary has a primary to watch"));
    std::unique_lock g(exit_mu_);
    const int id = next_exit_callback_++;
    exit_callbacks_.emplace_back(id, cb);
    if (primary_exit_) {
        const Error e = *primary_exit_;
        g.unlock();
        cb(e);  // it went before this registration
    }
    return id;
}

bool Eal::remove_primary_exit_callback(int id) {
    std::lock_guard g(exit_mu_);
    return std::erase_if(exit_callbacks_, [id](const auto& p) { return p.first == id; }) != 0;
}

bool Eal::primary_exited() const {
    std::lock_guard g(exit_mu_);
    return primary_exit_.has_value();
}

std::vector<const Heap*> Eal::heaps() const {
    auto held = memory_->lock();
    std::vector<const Heap*> out;
    for (const auto& [node, h] : heaps_)
        out.push_back(h.get());
    return out;
}

Heap& Eal::heap(int node) {
    auto held = memory_->lock();
    auto& h = heaps_[node];
    if (!h)
        h = std::make_unique<Heap>(*memory_, node);
    return *h;
}

}  // namespace vfiokit::eal

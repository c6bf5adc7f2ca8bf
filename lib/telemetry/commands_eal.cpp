// /eal/* and /heap/info: the process's command line, lcores and memory.
#include <algorithm>
#include <cerrno>

#include "params.hpp"
#include "vfiokit/eal/eal.hpp"
#include "vfiokit/eal/heap.hpp"
#include "vfiokit/eal/lcore.hpp"
#include "vfiokit/eal/memory.hpp"
#include "vfiokit/telemetry/telemetry.hpp"

namespace vfiokit::telemetry {

namespace {

Error missing(std::string_view cmd, std::string_view what) {
    return Error(ENODEV, std::string(cmd) + ": this process has no " + std::string(what))
        .hint("it runs without an EAL (Eal::init)");
}

std::string_view iova_mode_name(eal::IovaMode m) {
    switch (m) {
    case eal::IovaMode::va: return "va";
    case eal::IovaMode::pa: return "pa";
    case eal::IovaMode::automatic: return "auto";
    }
    return "?";
}

Json strings(const std::vector<std::string>& v) {
    Json a = Json::array();
    for (const auto& s : v)
        a.push(s);
    return a;
}

}  // namespace

EalParts parts_of(eal::Eal& e) {
    EalParts p;
    p.eal_args = e.options().eal_args;
    p.app_args = e.options().app_args;
    p.lcores = &e.lcores();
    p.memory = &e.memory();
    p.heaps = [&e] { return e.heaps(); };
    p.vfio = &e.vfio();
    p.lock = &e.vfio().control_lock();
    return p;
}

Result<void> add_eal_commands(Commands& c, EalParts parts) {
    auto shared = std::make_shared<EalParts>(std::move(parts));
    // DPDK's names and help texts where DPDK has the command.
    if (auto ok = c.add("/eal/params", "Returns EAL commandline parameters used. Takes no parameters",
                        [shared](std::string_view) -> Result<Json> {
                            return strings(shared->eal_args);
                        });
        !ok)
        return ok;
    if (auto ok = c.add("/eal/app_params",
                        "Returns app commandline parameters used. Takes no parameters",
                        [shared](std::string_view) -> Result<Json> {
                            return strings(shared->app_args);
                        });
        !ok)
        return ok;
    if (auto ok = c.add("/eal/lcore/list", "List of lcore ids. Takes no parameters",
                        [shared](std::string_view) -> Result<Json> {
                            if (!shared->lcores)
                                return fail(missing("/eal/lcore/list", "lcores"));
                            Json a = Json::array();
                            for (unsigned id : shared->lcores->all())
                                a.push(id);
                            return a;
                        });
        !ok)
        return ok;
    if (auto ok = c.add(
            "/eal/lcore/info", "Returns lcore info. Parameters: int lcore_id",
            [shared](std::string_view params) -> Result<Json> {
                const eal::Lcores* l = shared->lcores;
                if (!l)
                    return fail(missing("/eal/lcore/info", "lcores"));
                auto id = detail::number_param("/eal/lcore/info", "lcore id", params,
                                               eal::kMaxLcores);
                if (!id)
                    return fail(std::move(id.error()));
                const auto all = l->all();
                if (std::find(all.begin(), all.end(), *id) == all.end())
                    return fail(Error(ENODEV, "/eal/lcore/info: no lcore " + std::to_string(*id))
                                    .hint("/eal/lcore/list has the ids"));
                const unsigned lc = static_cast<unsigned>(*id);
                Json d = Json::object();
                d.set("lcore_id", lc);
                // DPDK's role of an EAL lcore; which one is the main is vfiokit's.
                d.set("role", "RTE").set("main", lc == l->main_lcore());
                Json cpus = Json::array();
                for (unsigned cpu : l->cpus(lc))
                    cpus.push(cpu);
                d.set("cpuset", std::move(cpus));
                if (lc != l->main_lcore()) {
                    const auto st = l->state(lc);
                    d.set("state", st == eal::LcoreState::wait      ? "wait"
                                   : st == eal::LcoreState::running ? "running"
                                                                    : "finished");
                }
                return d;
            });
        !ok)
        return ok;
    return c.add(
        "/heap/info",
        "Returns EAL memory: the window, its segments and the heaps. Takes no parameters",
        [shared](std::string_view) -> Result<Json> {
            const eal::Memory* m = shared->memory;
            if (!m)
                return fail(missing("/heap/info", "EAL memory"));
            std::unique_lock<RecursiveLock> g;
            if (shared->lock)
                g = std::unique_lock(*shared->lock);
            Json d = Json::object();
            d.set("iova_mode", iova_mode_name(m->iova_mode()));
            d.set("page_size", m->page_size());
            d.set("window_base", hex_json(m->window_base()));
            d.set("window_size", m->window_size());
            std::uint64_t total = 0;
            Json segs = Json::array();
            for (const eal::Segment* s : m->segments()) {
                total += s->len;
                Json j = Json::object();
                j.set("va", hex_json(s->va)).set("len", s->len).set("page_size", s->page_size);
                j.set("node", s->node);
                if (s->iova)
                    j.set("iova", hex_json(*s->iova));
                j.set("backing", s->backing);
                segs.push(std::move(j));
            }
            d.set("total_bytes", total);
            d.set("segments", std::move(segs));
            // Segments whose DMA unmap failed (Memory::remove): kept, never reused.
            const eal::Memory::Quarantine q = m->quarantined();
            d.set("quarantined_segments", static_cast<std::uint64_t>(q.segments));
            d.set("quarantined_bytes", q.bytes);
            Json heaps = Json::array();
            std::uint64_t in_use = 0;
            if (shared->heaps)
                for (const eal::Heap* h : shared->heaps()) {
                    in_use += h->bytes_in_use();
                    Json j = Json::object();
                    j.set("node", h->node()).set("segments", h->segments());
                    j.set("bytes_in_use", h->bytes_in_use());
                    heaps.push(std::move(j));
                }
            d.set("in_use_bytes", in_use);
            d.set("heaps", std::move(heaps));
            return d;
        });
}

}  // namespace vfiokit::telemetry

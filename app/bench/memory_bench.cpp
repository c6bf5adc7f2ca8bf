// vfiokit-bench-memory: what vfiokit's EAL costs to give a device DMA-mapped
// hugepage memory, next to the raw ioctl sequence for the same work
// (raw_baseline.cpp) and Debian's DPDK 22.11 EAL (vfiokit-bench-dpdk), plus
// heap, object pool, mbuf pool (mbuf_bench.cpp) and address translation
// speed against DPDK's. A
// program, not a test: it prints a report (doc/benchmarks.md) and fails only
// when something could not be run.
//
//   vfiokit-bench-memory [--rounds N] [--device BDF] [--mb N] [--dpdk PATH|none]
//                        [--heap-iters N] [--pool-bursts N] [--mbuf-bursts N]
//                        [--lookups N] [--reps N] [--seed N] [--attach 0|1]
//
// Each round runs, in this order: vfiokit group (type1v2), vfiokit cdev, raw
// group, raw cdev, DPDK, then the secondary attach test (vfiokit group,
// vfiokit cdev, DPDK: a primary and one secondary each); interleaving spreads the noise of a shared machine
// over all of them alike. One unreported warm-up round comes first. After
// every run the hugepages must be free again before the next one starts.
// Runs in the lab's iommu shape: devtools/bench-memory.sh.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dpdk_child.hpp"
#include "mbuf_bench.hpp"
#include "raw_baseline.hpp"
#include "report.hpp"
#include "vfiokit/eal/eal.hpp"
#include "vfiokit/uapi/iommufd.hpp"
#include "vfiokit/uapi/vfio.hpp"

namespace vfiokit::bench {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}

struct Config {
    unsigned rounds = 7;
    std::string device = "0000:00:03.0";
    std::uint64_t mb = 512;
    std::string dpdk;  // path, "none", or empty: next to this program
    std::uint64_t seed = 42;
    unsigned heap_iters = 400;
    unsigned pool_bursts = 4000;
    unsigned mbuf_bursts = 20000;
    unsigned lookups = 1000000;
    unsigned reps = 3;  // repetitions of each heap/pool/lookup test per round
    bool attach = true;  // the secondary attach test
};

// The workload shared with dpdk_eal_init.c: same generator, same constants.
constexpr unsigned kBatch = 256;
constexpr unsigned kBurst = 32;
constexpr std::size_t kPoolObjs = 4095;
constexpr std::uint64_t kPoolObjSize = 2048;
constexpr unsigned kPoolCache = 256;  // per-lcore cache of the pool tests, both sides
// The large heap test's sizes.
constexpr std::uint64_t kLargeLo = 4096, kLargeHi = 256 * 1024;
constexpr unsigned kAddrs = 4096;
// Where the raw baseline puts its memory: vfiokit's default window base, so
// IOVA = VA fits the 39-bit IOMMU of the lab for both.
constexpr std::uint64_t kRawVa = 64ULL << 30;

std::uint64_t splitmix64(std::uint64_t& s) {
    std::uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

volatile std::uint64_t g_sink;

// ---- hugepages ----------------------------------------------------------------

unsigned free_hugepages() {
    return static_cast<unsigned>(
        sysfs::Root().read_uint("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages").value_or(0));
}

// Teardown is synchronous in every case here, but a run must never start
// while the previous one still holds pages: wait (10 s at most) and say so.
Result<void> wait_hugepages_free(unsigned want, const char* after) {
    for (int i = 0; i < 1000; ++i) {
        if (free_hugepages() >= want)
            return {};
        ::usleep(10000);
    }
    return fail(Error(EBUSY, std::string("hugepages still in use after ") + after)
                    .hint(std::to_string(free_hugepages()) + " free, " + std::to_string(want) +
                          " expected"));
}

// ---- vfiokit --------------------------------------------------------------------

struct VfiokitRun {
    double init_ms = 0, assign_ms = 0;
    unsigned map_ioctls = 0, ioctls = 0;
};

struct HeapRun {
    double heap_pairs = 0, heap_large_pairs = 0;    // per second
    double pool_pairs = 0, pool_bulk_pairs = 0;
    MbufRun mbuf;
    double eal_v2i_ns = 0, mem_v2i_ns = 0, obj_v2i_ns = 0;
};

// kBatch allocations of lo..hi bytes, freed in a shuffled order, repeated.
Result<double> heap_pairs_per_s(eal::Heap& h, const Config& c, std::uint64_t lo, std::uint64_t hi) {
    std::uint64_t s = c.seed, sizes[kBatch];
    unsigned order[kBatch];
    void* ptr[kBatch];
    for (unsigned i = 0; i < kBatch; ++i) {
        sizes[i] = lo + splitmix64(s) % (hi - lo + 1);
        order[i] = i;
    }
    for (unsigned i = kBatch - 1; i > 0; --i)
        std::swap(order[i], order[splitmix64(s) % (i + 1)]);
    // One untimed batch first (DPDK's side does the same): the free lists
    // and the pages they touch are warm when timing starts.
    Clock::time_point start;
    for (unsigned it = 0; it <= c.heap_iters; ++it) {
        for (unsigned j = 0; j < kBatch; ++j) {
            auto p = h.alloc(sizes[j], 64);
            if (!p)
                return fail(std::move(p.error()).context("heap test"));
            ptr[j] = *p;
        }
        for (unsigned j = 0; j < kBatch; ++j)
            if (auto ok = h.free(ptr[order[j]]); !ok)
                return fail(std::move(ok.error()).context("heap test"));
        if (it == 0)
            start = Clock::now();
    }
    return kBatch * double(c.heap_iters) * 1e3 / ms_since(start, Clock::now());
}

// Bursts of kBurst gets then kBurst puts, one object at a time, or (`bulk`)
// one get_bulk and one put_bulk of kBurst; through the main lcore's cache.
Result<double> pool_pairs_per_s(eal::Heap& h, const Config& c, bool bulk) {
    auto pool = eal::ObjectPool::create(h, kPoolObjSize, kPoolObjs, 64, kPoolCache);
    if (!pool)
        return fail(std::move(pool.error()).context("pool test"));
    void* obj[kBurst];
    // One untimed burst first, as on DPDK's side: the cache is filled.
    if (pool->get_bulk(obj, kBurst) != 0)
        return fail(ENOMEM, "pool test: pool empty");
    pool->put_bulk(obj, kBurst);
    const auto t0 = Clock::now();
    if (bulk) {
        for (unsigned b = 0; b < c.pool_bursts; ++b) {
            if (pool->get_bulk(obj, kBurst) != 0)
                return fail(ENOMEM, "pool test: pool empty");
            pool->put_bulk(obj, kBurst);
        }
    } else {
        for (unsigned b = 0; b < c.pool_bursts; ++b) {
            for (unsigned j = 0; j < kBurst; ++j)
                if (!(obj[j] = pool->get()))
                    return fail(ENOMEM, "pool test: pool empty");
            for (unsigned j = 0; j < kBurst; ++j)
                pool->put(obj[j]);
        }
    }
    return kBurst * double(c.pool_bursts) * 1e3 / ms_since(t0, Clock::now());
}

// ns per call of `lookup` over `addrs`, cycled through c.lookups times.
template <class F>
double ns_per_lookup(const std::vector<const void*>& addrs, const Config& c, F lookup) {
    std::uint64_t acc = 0;
    const auto t0 = Clock::now();
    for (unsigned k = 0; k < c.lookups; ++k)
        acc += lookup(addrs[k % kAddrs]).value_or(0);
    const double ns = ms_since(t0, Clock::now()) * 1e6 / c.lookups;
    g_sink = acc;
    return ns;
}

// Each test c.reps times, keeping the best: noise on a shared machine only
// ever slows a run down.
Result<HeapRun> heap_tests(eal::Eal& e, const Config& c) {
    HeapRun r;
    eal::Heap& h = e.heap(-1);
    const eal::Memory& mem = e.memory();

    // Heap and pools first, then the lookups with their heap objects: the
    // order of DPDK's side, so neither heap test runs beside live objects.
    for (unsigned rep = 0; rep < c.reps; ++rep) {
        auto hp = heap_pairs_per_s(h, c, 64, 2048);
        if (!hp)
            return fail(std::move(hp.error()));
        r.heap_pairs = std::max(r.heap_pairs, *hp);
        auto hl = heap_pairs_per_s(h, c, kLargeLo, kLargeHi);
        if (!hl)
            return fail(std::move(hl.error()));
        r.heap_large_pairs = std::max(r.heap_large_pairs, *hl);
        auto pp = pool_pairs_per_s(h, c, false);
        if (!pp)
            return fail(std::move(pp.error()));
        r.pool_pairs = std::max(r.pool_pairs, *pp);
        auto pb = pool_pairs_per_s(h, c, true);
        if (!pb)
            return fail(std::move(pb.error()));
        r.pool_bulk_pairs = std::max(r.pool_bulk_pairs, *pb);
    }

    // Random addresses anywhere in EAL memory, and heap objects (what
    // DPDK's rte_malloc_virt2iova takes).
    const auto segs = mem.segments();
    std::vector<const void*> addr(kAddrs), objs(kAddrs);
    std::uint64_t s = c.seed + 1;
    for (auto& a : addr) {
        const eal::Segment* seg = segs[splitmix64(s) % segs.size()];
        a = reinterpret_cast<const void*>(seg->va + splitmix64(s) % seg->len);
    }
    for (auto& o : objs) {
        auto p = h.alloc(64 + splitmix64(s) % (2048 - 64 + 1), 64);
        if (!p)
            return fail(std::move(p.error()).context("translation test"));
        o = *p;
    }
    r.eal_v2i_ns = r.mem_v2i_ns = r.obj_v2i_ns = 1e300;
    for (unsigned rep = 0; rep < c.reps; ++rep) {
        r.eal_v2i_ns = std::min(r.eal_v2i_ns, ns_per_lookup(addr, c, [&](const void* a) {
            return e.virt2iova(a);
        }));
        r.mem_v2i_ns = std::min(r.mem_v2i_ns, ns_per_lookup(addr, c, [&](const void* a) {
            return mem.virt2iova(a);
        }));
        r.obj_v2i_ns = std::min(r.obj_v2i_ns, ns_per_lookup(objs, c, [&](const void* a) {
            return e.virt2iova(a);
        }));
    }
    for (const void* o : objs)
        (void)h.free(const_cast<void*>(o));
    // The main thread is lcore 0 (Eal::init): the pool's cache is used.
    auto mb = mbuf_tests(h, c.mbuf_bursts, c.reps);
    if (!mb)
        return fail(std::move(mb.error()));
    r.mbuf = *mb;
    return r;
}

// Eal::init with -m <mb> in `mode`, then the device into the default
// container: timed to "memory ready and mapped" (group mode maps at the
// device: the replay). With `heap`, runs the heap tests before teardown.
Result<VfiokitRun> run_vfiokit(vfio::Mode mode, const Config& c, HeapRun* heap) {
    eal::Options o;
    o.vfio.mode = mode;
    if (mode == vfio::Mode::group)
        o.vfio.type1 = vfio::Type1::v2;
    o.memory_mb = c.mb;
    VfiokitRun r;
    std::unique_ptr<eal::Eal> e;
    vfio::FaultInjector counter;  // forwards everything; counts
    {
        vfio::ScopedSyscalls guard(counter);
        const auto t0 = Clock::now();
        auto ok = eal::Eal::init(o);
        const auto t1 = Clock::now();
        if (!ok)
            return fail(std::move(ok.error()));
        e = std::move(*ok);
        auto d = e->vfio().assign_device(e->vfio().default_container(), c.device);
        const auto t2 = Clock::now();
        if (!d)
            return fail(std::move(d.error()));
        r.init_ms = ms_since(t0, t1);
        r.assign_ms = ms_since(t1, t2);
    }
    const unsigned long map_req =
        mode == vfio::Mode::cdev ? uapi::kIommuIoasMap : uapi::kVfioIommuMapDma;
    r.map_ioctls = counter.count(vfio::Call::ioctl, map_req);
    r.ioctls = counter.count(vfio::Call::ioctl);
    if (heap) {
        auto h = heap_tests(*e, c);
        if (!h)
            return fail(std::move(h.error()));
        *heap = *h;
    }
    e.reset();
    return r;
}

// ---- secondary attach -------------------------------------------------------------

// The runtime directory's prefix of the attach test, on both sides.
constexpr const char* kAttachPrefix = "benchmp";

std::uint64_t mono_ns() {
    timespec t{};
    ::clock_gettime(CLOCK_MONOTONIC, &t);  // one clock for every process
    return static_cast<std::uint64_t>(t.tv_sec) * 1000000000ULL +
           static_cast<std::uint64_t>(t.tv_nsec);
}

struct AttachRun {
    double attach_ms = 0;  // fork (in the primary) to Eal::init's return
    double main_ms = 0;    // of which from the secondary's main()
};

// The secondary's role: vfiokit-bench-memory --attach-child T0 [EAL args].
// Eal::init as a secondary maps the primary's memory at its addresses and
// imports its VFIO state (container and device fds): the first state in
// which it can DMA. Prints the times as vfiokit-bench-dpdk does (the same
// line, so run_dpdk reads both).
int attach_child(int argc, char** argv) {
    const std::uint64_t t_main = mono_ns();
    const std::uint64_t t0 = std::strtoull(argv[2], nullptr, 10);
    std::vector<const char*> eal_argv{argv[0]};
    for (int i = 3; i < argc; ++i)
        eal_argv.push_back(argv[i]);
    auto e = eal::Eal::init(static_cast<int>(eal_argv.size()), eal_argv.data());
    const std::uint64_t t1 = mono_ns();
    if (!e) {
        std::fprintf(stderr, "vfiokit-bench-memory (secondary): %s\n", e.error().message().c_str());
        return 1;
    }
    std::printf("@@DPDK-BENCH secondary_attach_ns=%llu secondary_init_ns=%llu\n",
                static_cast<unsigned long long>(t1 - t0),
                static_cast<unsigned long long>(t1 - t_main));
    std::fflush(stdout);
    return 0;
}

// A primary (Eal::init -m <mb>, --proc-type=primary, the device in its
// default container, as DPDK's primary does with rte_vfio_setup_device),
// then one secondary fork+exec'd from this program, timed from the fork.
Result<AttachRun> run_vfiokit_attach(vfio::Mode mode, const Config& c) {
    eal::Options o;
    o.vfio.mode = mode;
    if (mode == vfio::Mode::group)
        o.vfio.type1 = vfio::Type1::v2;
    o.memory_mb = c.mb;
    o.multi_process = true;
    o.proc_type = eal::ProcType::primary;
    o.file_prefix = kAttachPrefix;
    o.telemetry = false;
    auto e = eal::Eal::init(o);
    if (!e)
        return fail(std::move(e.error()).context("attach test, primary"));
    if (auto d = (*e)->vfio().assign_device((*e)->vfio().default_container(), c.device); !d)
        return fail(std::move(d.error()).context("attach test, primary"));
    char self[4096];
    const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return fail(errno, "readlink /proc/self/exe");
    const std::uint64_t t0 = mono_ns();
    auto r = run_dpdk({std::string(self, static_cast<std::size_t>(n)), "--attach-child",
                       std::to_string(t0), "--proc-type=secondary", "--file-prefix",
                       kAttachPrefix, "--no-telemetry"});
    if (!r)
        return fail(std::move(r.error()).context("attach test, secondary"));
    return AttachRun{r->number("secondary_attach_ns") / 1e6, r->number("secondary_init_ns") / 1e6};
}

// DPDK's primary (vfiokit-bench-dpdk --attach-bench 1: rte_eal_init,
// rte_vfio_setup_device) starts its own secondary the same way.
std::vector<std::string> dpdk_attach_argv(const std::string& prog, const Config& c) {
    return {prog, "-m", std::to_string(c.mb), "--iova-mode=va",
            std::string("--file-prefix=") + kAttachPrefix, "-a", c.device, "--no-telemetry", "--",
            "--device", c.device, "--attach-bench", "1"};
}

// ---- the rounds ----------------------------------------------------------------

struct Results {
    Row group{"init+map+device, group", "ms", Better::lower, 1, {}, {}, {}};
    Row group_init{"  of which EAL init", "ms", Better::lower, 1, {}, {}, {}};
    Row group_dev{"  of which device", "ms", Better::lower, 1, {}, {}, {}};
    Row cdev{"init+map+device, cdev", "ms", Better::lower, 1, {}, {}, {}};
    Row cdev_init{"  of which EAL init", "ms", Better::lower, 1, {}, {}, {}};
    Row cdev_dev{"  of which device", "ms", Better::lower, 1, {}, {}, {}};
    Row group_maps{"map ioctls, group", "count", Better::none, 0, {}, {}, {}};
    Row group_ioctls{"all ioctls, group", "count", Better::none, 0, {}, {}, {}};
    Row cdev_maps{"map ioctls, cdev", "count", Better::none, 0, {}, {}, {}};
    Row cdev_ioctls{"all ioctls, cdev", "count", Better::none, 0, {}, {}, {}};
    Row heap{"heap alloc+free 64..2048 B", "k pairs/s", Better::higher, 0, {}, {}, {}};
    Row heap_large{"heap alloc+free 4..256 KiB", "k pairs/s", Better::higher, 0, {}, {}, {}};
    Row pool{"pool get+put, cached", "k pairs/s", Better::higher, 0, {}, {}, {}};
    Row pool_bulk{"pool get+put bulk 32, cached", "k pairs/s", Better::higher, 0, {}, {}, {}};
    Row pool_nocache{"pool get+put vs DPDK no cache", "k pairs/s", Better::higher, 0, {}, {}, {}};
    Row mbuf{"mbuf alloc+free, single", "k pairs/s", Better::higher, 0, {}, {}, {}};
    Row mbuf_bulk{"mbuf alloc+free, bulk 32", "k pairs/s", Better::higher, 0, {}, {}, {}};
    Row eal_v2i{"Eal::virt2iova, random addr", "ns", Better::lower, 1, {}, {}, {}};
    Row mem_v2i{"Memory::virt2iova, random", "ns", Better::lower, 1, {}, {}, {}};
    Row memseg{"  vs DPDK rte_mem_virt2memseg", "ns", Better::lower, 1, {}, {}, {}};
    Row obj_v2i{"virt2iova of heap objects", "ns", Better::lower, 1, {}, {}, {}};
    Row attach_group{"secondary attach, group", "ms", Better::lower, 1, {}, {}, {}};
    Row attach_group_main{"  of which from main()", "ms", Better::lower, 1, {}, {}, {}};
    Row attach_cdev{"secondary attach, cdev", "ms", Better::lower, 1, {}, {}, {}};
    Row attach_cdev_main{"  of which from main()", "ms", Better::lower, 1, {}, {}, {}};
    std::string dpdk_version, dpdk_log;
    unsigned dpdk_lcores = 0;
    bool dpdk_failed = false;
};

void record_vfiokit(Row& total, Row& init, Row& dev, Row& maps, Row& ioctls, const VfiokitRun& r) {
    total.vfiokit.add(r.init_ms + r.assign_ms);
    init.vfiokit.add(r.init_ms);
    dev.vfiokit.add(r.assign_ms);
    maps.vfiokit.add(r.map_ioctls);
    ioctls.vfiokit.add(r.ioctls);
}

std::vector<std::string> dpdk_argv(const std::string& prog, const Config& c) {
    return {prog, "-m", std::to_string(c.mb), "--iova-mode=va", "--file-prefix=bench",
            // Hugepage files unlinked once mapped: the pages go back to the
            // kernel when the process exits, as vfiokit's memfds do.
            "--huge-unlink", "-a", c.device, "--no-telemetry", "--",
            "--device", c.device, "--seed", std::to_string(c.seed),
            "--heap-iters", std::to_string(c.heap_iters),
            "--pool-bursts", std::to_string(c.pool_bursts),
            "--mbuf-bursts", std::to_string(c.mbuf_bursts),
            "--lookups", std::to_string(c.lookups), "--reps", std::to_string(c.reps)};
}

// One round; `res` null for the warm-up. Fails on a vfiokit or raw failure;
// a DPDK failure is recorded and DPDK is left out from then on.
Result<void> run_round(const Config& c, const std::string& dpdk, unsigned baseline,
                       Results* res, unsigned n) {
    HeapRun heap;
    auto g = run_vfiokit(vfio::Mode::group, c, &heap);
    if (!g)
        return fail(std::move(g.error()).context("vfiokit, group mode"));
    if (auto ok = wait_hugepages_free(baseline, "vfiokit group"); !ok)
        return ok;
    auto cd = run_vfiokit(vfio::Mode::cdev, c, nullptr);
    if (!cd)
        return fail(std::move(cd.error()).context("vfiokit, cdev mode"));
    if (auto ok = wait_hugepages_free(baseline, "vfiokit cdev"); !ok)
        return ok;
    auto rg = run_raw(RawMode::group_type1v2, c.device, c.mb << 20, kRawVa);
    if (!rg)
        return fail(std::move(rg.error()));
    if (auto ok = wait_hugepages_free(baseline, "raw group"); !ok)
        return ok;
    auto rc = run_raw(RawMode::cdev, c.device, c.mb << 20, kRawVa);
    if (!rc)
        return fail(std::move(rc.error()));
    if (auto ok = wait_hugepages_free(baseline, "raw cdev"); !ok)
        return ok;
    std::optional<DpdkRun> d;
    if (!dpdk.empty() && !(res && res->dpdk_failed)) {
        auto r = run_dpdk(dpdk_argv(dpdk, c));
        if (r)
            d = std::move(*r);
        else {
            std::printf("DPDK failed in %s %u: %s\n", res ? "round" : "warm-up", n,
                        r.error().message().c_str());
            if (res)
                res->dpdk_failed = true;
        }
        if (auto ok = wait_hugepages_free(baseline, "DPDK"); !ok)
            return ok;
    }

    // Secondary attach: vfiokit group, vfiokit cdev, DPDK; each a primary
    // with the device and -m <mb>, and one secondary exec'd from it.
    std::optional<AttachRun> ag, ac, ad;
    if (c.attach) {
        auto a = run_vfiokit_attach(vfio::Mode::group, c);
        if (!a)
            return fail(std::move(a.error()).context("vfiokit, group mode"));
        ag = *a;
        if (auto ok = wait_hugepages_free(baseline, "vfiokit attach, group"); !ok)
            return ok;
        a = run_vfiokit_attach(vfio::Mode::cdev, c);
        if (!a)
            return fail(std::move(a.error()).context("vfiokit, cdev mode"));
        ac = *a;
        if (auto ok = wait_hugepages_free(baseline, "vfiokit attach, cdev"); !ok)
            return ok;
        if (!dpdk.empty() && !(res && res->dpdk_failed)) {
            auto r = run_dpdk(dpdk_attach_argv(dpdk, c));
            if (r)
                ad = AttachRun{r->number("secondary_attach_ns") / 1e6,
                               r->number("secondary_init_ns") / 1e6};
            else {
                std::printf("DPDK attach failed in %s %u: %s\n", res ? "round" : "warm-up", n,
                            r.error().message().c_str());
                if (res)
                    res->dpdk_failed = true;
            }
            if (auto ok = wait_hugepages_free(baseline, "DPDK attach"); !ok)
                return ok;
        }
        std::printf("%s %u: secondary attach: vfiokit group %.1f ms, cdev %.1f ms", res ? "round" : "warm-up",
                    n, ag->attach_ms, ac->attach_ms);
        if (ad)
            std::printf("; DPDK %.1f ms", ad->attach_ms);
        std::printf("\n");
    }

    std::printf("%s %u: vfiokit group %.1f ms, cdev %.1f ms; raw group %.1f ms, cdev %.1f ms",
                res ? "round" : "warm-up", n, g->init_ms + g->assign_ms,
                cd->init_ms + cd->assign_ms, double(rg->ns) / 1e6, double(rc->ns) / 1e6);
    if (d)
        std::printf("; DPDK %.1f ms", d->number("init_ns") / 1e6);
    std::printf("\n");
    std::fflush(stdout);
    if (!res)
        return {};

    Results& R = *res;
    record_vfiokit(R.group, R.group_init, R.group_dev, R.group_maps, R.group_ioctls, *g);
    record_vfiokit(R.cdev, R.cdev_init, R.cdev_dev, R.cdev_maps, R.cdev_ioctls, *cd);
    R.group.raw.add(double(rg->ns) / 1e6);
    R.group_maps.raw.add(rg->map_ioctls);
    R.group_ioctls.raw.add(rg->ioctls);
    R.cdev.raw.add(double(rc->ns) / 1e6);
    R.cdev_maps.raw.add(rc->map_ioctls);
    R.cdev_ioctls.raw.add(rc->ioctls);
    R.heap.vfiokit.add(heap.heap_pairs / 1e3);
    R.heap_large.vfiokit.add(heap.heap_large_pairs / 1e3);
    R.pool.vfiokit.add(heap.pool_pairs / 1e3);
    R.pool_bulk.vfiokit.add(heap.pool_bulk_pairs / 1e3);
    R.pool_nocache.vfiokit.add(heap.pool_pairs / 1e3);
    R.mbuf.vfiokit.add(heap.mbuf.single_pairs / 1e3);
    R.mbuf_bulk.vfiokit.add(heap.mbuf.bulk_pairs / 1e3);
    R.eal_v2i.vfiokit.add(heap.eal_v2i_ns);
    R.mem_v2i.vfiokit.add(heap.mem_v2i_ns);
    R.memseg.vfiokit.add(heap.mem_v2i_ns);
    R.obj_v2i.vfiokit.add(heap.obj_v2i_ns);
    // DPDK's key in the @@DPDK-BENCH line, and the divisor to the row's unit.
    const struct {
        Row* row;
        const char* key;
        double scale;
    } dpdk_cols[] = {
        {&R.group, "init_ns", 1e6},
        {&R.group_init, "eal_init_ns", 1e6},
        {&R.group_dev, "setup_ns", 1e6},
        {&R.group_maps, "map_ioctls", 1},
        {&R.group_ioctls, "ioctls", 1},
        {&R.heap, "malloc_pairs_per_s", 1e3},
        {&R.heap_large, "malloc_large_pairs_per_s", 1e3},
        {&R.pool, "mempool_pairs_per_s", 1e3},
        {&R.pool_bulk, "mempool_bulk_pairs_per_s", 1e3},
        {&R.pool_nocache, "mempool_nocache_pairs_per_s", 1e3},
        {&R.mbuf, "mbuf_pairs_per_s", 1e3},
        {&R.mbuf_bulk, "mbuf_bulk_pairs_per_s", 1e3},
        {&R.eal_v2i, "virt2iova_ns", 1},
        {&R.mem_v2i, "virt2iova_ns", 1},
        {&R.memseg, "virt2memseg_ns", 1},
        {&R.obj_v2i, "malloc_virt2iova_ns", 1},
    };
    if (c.attach) {
        R.attach_group.vfiokit.add(ag->attach_ms);
        R.attach_group_main.vfiokit.add(ag->main_ms);
        R.attach_cdev.vfiokit.add(ac->attach_ms);
        R.attach_cdev_main.vfiokit.add(ac->main_ms);
        for (Row* row : {&R.attach_group, &R.attach_cdev})
            ad ? row->dpdk.add(ad->attach_ms) : row->dpdk.add_missing();
        for (Row* row : {&R.attach_group_main, &R.attach_cdev_main})
            ad ? row->dpdk.add(ad->main_ms) : row->dpdk.add_missing();
    }
    for (const auto& col : dpdk_cols) {
        if (d)
            col.row->dpdk.add(d->number(col.key) / col.scale);
        else
            col.row->dpdk.add_missing();  // keeps the rounds aligned for paired ratios
    }
    if (d && R.dpdk_log.empty()) {
        R.dpdk_log = d->log;
        R.dpdk_version = d->values["version"];
        R.dpdk_lcores = static_cast<unsigned>(d->number("lcores"));
    }
    return {};
}

void print_report(const Config& c, const Results& R, const std::string& dpdk) {
    std::printf("\n==== vfiokit EAL memory benchmark: %u MiB of 2 MiB hugepages, device %s ====\n",
                static_cast<unsigned>(c.mb), c.device.c_str());
    std::printf("%u interleaved rounds (after 1 warm-up). Value cells: median [min, max] of the rounds.\n"
                "Ratio cells: median [min, max] of the per-round ratios (each round's two runs\n"
                "ran seconds apart: pairing cancels slow drift in machine load).\n"
                "Times: lower is better; vfiokit/other < 1 means vfiokit is faster.\n"
                "Throughput: higher is better; vfiokit/other > 1 means vfiokit is faster.\n"
                "Noisy machine (QEMU TCG, 2 vCPUs): a ratio whose range spans 1 is not a\n"
                "difference.\n\n",
                c.rounds);
    print_table({R.group, R.group_init, R.group_dev, R.cdev, R.cdev_init, R.cdev_dev,
                 R.group_maps, R.group_ioctls, R.cdev_maps, R.cdev_ioctls, R.heap, R.heap_large,
                 R.pool, R.pool_bulk, R.pool_nocache, R.mbuf, R.mbuf_bulk, R.eal_v2i, R.mem_v2i, R.memseg, R.obj_v2i,
                 R.attach_group, R.attach_group_main, R.attach_cdev, R.attach_cdev_main});
    std::printf(
        "\nWhat ran:\n"
        "  vfiokit  Eal::init(-m %u, --vfio-mode=group --vfio-type1=v2 | cdev) +\n"
        "           assign_device(default container, %s); \"EAL init\" maps in cdev mode,\n"
        "           \"device\" maps in group mode (the replay at the first device)\n"
        "  raw      memfd/ftruncate/mmap(MAP_POPULATE) + the minimal ioctls by hand\n"
        "           (app/bench/raw_baseline.hpp); group uses type1v2\n"
        "  DPDK     %s: rte_eal_init(-m %u --iova-mode=va, %u lcores) +\n"
        "           rte_vfio_setup_device (group mode, type1 v1: 22.11 has no cdev);\n"
        "           its process start-up is not timed; ioctls counted by interposing\n"
        "           ioctl() in vfiokit-bench-dpdk\n"
        "  heap, pool and lookups: best of %u runs per round each; each heap and pool\n"
        "           test starts with one untimed batch or burst (both sides)\n"
        "  heap     %u x (%u allocs of 64..2048 B, then %u frees in shuffled order), and\n"
        "           the same with 4..256 KiB: Heap::alloc/free vs rte_malloc/rte_free\n"
        "  pool     %u x (%u get, %u put) of %u-byte objects, and as many bursts of one\n"
        "           get_bulk and one put_bulk of 32, on the main lcore: ObjectPool vs\n"
        "           rte_mempool, both with a %u-object per-lcore cache; DPDK without\n"
        "           cache for reference\n"
        "  mbuf     %u x (%u alloc, %u free) and %u x (alloc_bulk, free_bulk of %u) on\n"
        "           the main lcore, pool of %u with a %u-mbuf cache: MbufPool vs\n"
        "           rte_pktmbuf_alloc/free and rte_pktmbuf_alloc_bulk/free_bulk\n"
        "  lookups  %u per test over %u random addresses in EAL memory:\n"
        "           Eal::virt2iova and Memory::virt2iova vs rte_mem_virt2iova (IOVA-as-VA:\n"
        "           no lookup at all, a cast) and rte_mem_virt2memseg+offset (a lookup);\n"
        "           heap objects: Eal::virt2iova vs rte_malloc_virt2iova\n"
        "  attach   a primary (-m %u, --file-prefix=%s, the device in its default\n"
        "           container) fork+execs one --proc-type=secondary of the same program;\n"
        "           timed from the fork to the secondary's EAL init returning (memory\n"
        "           attached, VFIO container shared); \"from main()\" leaves out exec\n"
        "           and the dynamic loader. vfiokit group and cdev primaries vs DPDK's\n"
        "           (rte_vfio_setup_device, group mode; without --huge-unlink)\n",
        static_cast<unsigned>(c.mb), c.device.c_str(),
        dpdk.empty() ? "not run (vfiokit-bench-dpdk not built)"
                     : ("DPDK " + R.dpdk_version).c_str(),
        static_cast<unsigned>(c.mb), R.dpdk_lcores, c.reps, c.heap_iters, kBatch, kBatch, c.pool_bursts,
        kBurst, kBurst, static_cast<unsigned>(kPoolObjSize), kPoolCache, c.mbuf_bursts, kMbufBurst, kMbufBurst,
        c.mbuf_bursts, kMbufBurst, kMbufPoolSize, kMbufCache, c.lookups, kAddrs,
        static_cast<unsigned>(c.mb), kAttachPrefix);
    if (!R.dpdk_log.empty()) {
        std::printf("\nDPDK's EAL log (first round):\n");
        std::size_t pos = 0;
        while (pos < R.dpdk_log.size()) {
            std::size_t nl = R.dpdk_log.find('\n', pos);
            if (nl == std::string::npos)
                nl = R.dpdk_log.size();
            std::printf("  | %s\n", R.dpdk_log.substr(pos, nl - pos).c_str());
            pos = nl + 1;
        }
    }
}

bool parse_args(int argc, char** argv, Config& c) {
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "-h" || a == "--help") {
            std::printf("usage: vfiokit-bench-memory [--rounds N] [--device BDF] [--mb N]\n"
                        "         [--dpdk PATH|none] [--heap-iters N] [--pool-bursts N]\n"
                        "         [--mbuf-bursts N] [--lookups N] [--reps N] [--seed N]\n"
                        "         [--attach 0|1]\n"
                        "  --rounds N        measured rounds, after one warm-up (default 7)\n"
                        "  --device BDF      the device on vfio-pci to map memory for\n"
                        "                    (default 0000:00:03.0)\n"
                        "  --mb N            MiB of hugepage memory to map (default 512)\n"
                        "  --dpdk PATH|none  DPDK's side (vfiokit-bench-dpdk), or none to skip\n"
                        "                    it (default: the one next to this program)\n"
                        "  --heap-iters N    heap test: batches of 256 allocations and frees\n"
                        "                    (default 400)\n"
                        "  --pool-bursts N   object pool test: bursts of 32 gets and puts\n"
                        "                    (default 4000)\n"
                        "  --mbuf-bursts N   mbuf pool test: bursts of 32 allocs and frees\n"
                        "                    (default 20000)\n"
                        "  --lookups N       address translation test: lookups (default 1000000)\n"
                        "  --reps N          repetitions of each of those tests per round\n"
                        "                    (default 3)\n"
                        "  --seed N          seed of the allocation sizes and orders (default 42)\n"
                        "  --attach 0|1      the secondary attach test (default 1)\n"
                        "  --attach-child T0 EAL-ARGS...  (first argument only) the attach\n"
                        "                    test's secondary, started by this program\n"
                        "  -h, --help        this text\n");
            std::exit(0);
        }
        if (i + 1 >= argc) {
            std::fprintf(stderr, "vfiokit-bench-memory: %s needs a value\n", a.c_str());
            return false;
        }
        const char* v = argv[++i];
        const auto num = [&] { return std::strtoull(v, nullptr, 0); };
        if (a == "--rounds")
            c.rounds = static_cast<unsigned>(num());
        else if (a == "--device")
            c.device = v;
        else if (a == "--mb")
            c.mb = num();
        else if (a == "--dpdk")
            c.dpdk = v;
        else if (a == "--heap-iters")
            c.heap_iters = static_cast<unsigned>(num());
        else if (a == "--pool-bursts")
            c.pool_bursts = static_cast<unsigned>(num());
        else if (a == "--mbuf-bursts")
            c.mbuf_bursts = static_cast<unsigned>(num());
        else if (a == "--lookups")
            c.lookups = static_cast<unsigned>(num());
        else if (a == "--seed")
            c.seed = num();
        else if (a == "--reps")
            c.reps = static_cast<unsigned>(num());
        else if (a == "--attach")
            c.attach = num() != 0;
        else {
            std::fprintf(stderr, "vfiokit-bench-memory: unknown option %s (see --help)\n",
                         a.c_str());
            return false;
        }
    }
    if (c.rounds == 0 || c.mb == 0 || c.heap_iters == 0 || c.pool_bursts == 0 || c.mbuf_bursts == 0 || c.lookups == 0 ||
        c.reps == 0) {
        std::fprintf(stderr, "vfiokit-bench-memory: counts must be positive\n");
        return false;
    }
    return true;
}

}  // namespace
}  // namespace vfiokit::bench

int main(int argc, char** argv) {
    using namespace vfiokit::bench;
    if (argc >= 3 && std::string(argv[1]) == "--attach-child")
        return attach_child(argc, argv);
    Config c;
    if (!parse_args(argc, argv, c))
        return 2;
    const std::string dpdk = find_dpdk_program(c.dpdk);
    const unsigned baseline = free_hugepages();
    std::printf("vfiokit-bench-memory: %u rounds, %u free hugepages, DPDK: %s\n", c.rounds,
                baseline, dpdk.empty() ? "not available" : dpdk.c_str());
    Results res;
    for (unsigned n = 0; n <= c.rounds; ++n) {
        if (auto ok = run_round(c, dpdk, baseline, n == 0 ? nullptr : &res, n); !ok) {
            std::printf("vfiokit-bench-memory: %s\n", ok.error().message().c_str());
            return 1;
        }
    }
    print_report(c, res, dpdk);
    return res.dpdk_failed ? 1 : 0;
}

// The pool: argument checks, the named registry, all-or-nothing bulk
// gets, per-lcore caches (refill and flush), conservation under a
// multi-lcore stress on real lcore threads, destroy refusing while mbufs
// are out, and the layout rule for memory that is contiguous per page.
#include <sched.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <thread>
#include <vector>

#include "layout.hpp"
#include "test_env.hpp"
#include "vfiokit/eal/lcore.hpp"
#include "vfiokit/mbuf/mbuf.hpp"

namespace vfiokit::mbuf {
namespace {

using testing::Env;
using testing::PoolGuard;

void expect_einval(Result<MbufPool*> r, const std::string& want) {
    ASSERT_FALSE(r) << want;
    EXPECT_EQ(r.error().err(), EINVAL) << r.error().message();
    EXPECT_NE(r.error().message().find(want), std::string::npos) << r.error().message();
}

TEST(MbufPool, CreateNamesTheBadArgument) {
    Env env;
    ASSERT_TRUE(env.heap);
    eal::Heap& h = *env.heap;
    expect_einval(MbufPool::create(h, "", 8, 0, 0, 256), "name must have 1 to 31 characters");
    expect_einval(MbufPool::create(h, std::string(32, 'x'), 8, 0, 0, 256), "(it has 32)");
    expect_einval(MbufPool::create(h, "p", 0, 0, 0, 256), "'p': n = 0");
    expect_einval(MbufPool::create(h, "p", 2000, 513, 0, 256), "cache_size = 513: above kMaxCacheSize");
    expect_einval(MbufPool::create(h, "p", 100, 67, 0, 256), "cache_size = 67: above n / 1.5 (n = 100)");
    expect_einval(MbufPool::create(h, "p", 100, 0, 4, 256), "priv_size = 4: must be a multiple of 8");
    expect_einval(MbufPool::create(h, "p", 100, 0, 0, 0), "data_room = 0");
    EXPECT_EQ(h.bytes_in_use(), 0u);  // nothing was allocated for them
    PoolGuard ok(MbufPool::create(h, "p", 100, 66, 0, 256));  // 66 * 1.5 = 99 <= 100
    ASSERT_TRUE(ok);
    auto dup = MbufPool::create(h, "p", 10, 0, 0, 256);
    ASSERT_FALSE(dup);
    EXPECT_EQ(dup.error().err(), EEXIST);
    EXPECT_NE(dup.error().message().find("mbuf pool 'p': the name is in use"), std::string::npos);
}

TEST(MbufPool, CreateByNameNeedsAnEal) {
    auto r = MbufPool::create("noeal", 8, 0, 0, 256);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().err(), ENODEV);
    EXPECT_NE(r.error().message().find("no EAL is up"), std::string::npos);
}

TEST(MbufPool, RegistryLookupAndAccessors) {
    Env env;
    ASSERT_TRUE(env.heap);
    PoolGuard p(MbufPool::create(*env.heap, "rx-socket-0", 1000, 32, 8, 1024));
    ASSERT_TRUE(p);
    EXPECT_EQ(MbufPool::lookup("rx-socket-0"), p.p);
    EXPECT_EQ(MbufPool::lookup("rx-socket-1"), nullptr);
    EXPECT_EQ(p->name(), "rx-socket-0");
    EXPECT_EQ(p->size(), 1000u);
    EXPECT_EQ(p->cache_size(), 32u);
    EXPECT_EQ(p->priv_size(), 8);
    EXPECT_EQ(p->data_room(), 1024);
    EXPECT_EQ(p->avail_count(), 1000u);
    EXPECT_EQ(&p->heap(), env.heap.get());
}

// Every mbuf of the pool: inside its allocation, owned, with the IOVA EAL
// memory gives its buffer; none overlaps another.
TEST(MbufPool, EveryMbufHasItsBufferAndIova) {
    Env env;
    ASSERT_TRUE(env.heap);
    PoolGuard p(MbufPool::create(*env.heap, "all", 3000, 0, 24, kDefaultDataRoom));
    ASSERT_TRUE(p);
    std::vector<Mbuf*> ms(3000);
    ASSERT_EQ(p->alloc_bulk(ms.data(), 3000), 0);
    EXPECT_EQ(p->alloc(), nullptr);
    std::sort(ms.begin(), ms.end());
    for (std::size_t i = 0; i < ms.size(); ++i) {
        Mbuf* m = ms[i];
        ASSERT_TRUE(p->owns(m));
        EXPECT_EQ(m->buf_iova, *env.mem->virt2iova(m->buf_addr)) << i;
        EXPECT_EQ(reinterpret_cast<std::uintptr_t>(m) % 64, 0u);
        if (i > 0) {
            EXPECT_GE(reinterpret_cast<std::uint8_t*>(m),
                      ms[i - 1]->buf_addr + ms[i - 1]->buf_len);
        }
    }
    EXPECT_FALSE(p->owns(reinterpret_cast<Mbuf*>(reinterpret_cast<std::uint8_t*>(ms[5]) + 64)));
    Mbuf outside;
    EXPECT_FALSE(p->owns(&outside));
    p->put_bulk(ms.data(), 3000);
    EXPECT_EQ(p->avail_count(), 3000u);
}

// alloc_bulk gives all or none, from the ring (a thread that is not an
// lcore) and through an lcore's cache alike.
TEST(MbufPool, BulkIsAllOrNothing) {
    Env env;
    ASSERT_TRUE(env.heap);
    PoolGuard p(MbufPool::create(*env.heap, "bulk", 64, 0, 0, 256));
    ASSERT_TRUE(p);
    Mbuf* ms[64];
    ASSERT_EQ(p->alloc_bulk(ms, 60), 0);
    EXPECT_EQ(p->alloc_bulk(ms + 60, 8), -ENOENT);
    EXPECT_EQ(p->avail_count(), 4u);  // nothing taken by the failed call
    ASSERT_EQ(p->alloc_bulk(ms + 60, 4), 0);
    EXPECT_EQ(p->alloc(), nullptr);
    EXPECT_EQ(p->alloc_bulk(ms, 0), 0);
    p->put_bulk(ms, 64);
    EXPECT_EQ(p->avail_count(), 64u);

    auto lc = eal::Lcores::start({}, 0);
    ASSERT_TRUE(lc) << lc.error().message();
    PoolGuard c(MbufPool::create(*env.heap, "bulk-cached", 96, 64, 0, 256));
    ASSERT_TRUE(c);
    Mbuf* cs[96];
    ASSERT_EQ(c->alloc_bulk(cs, 64), 0);
    ASSERT_EQ(c->alloc_bulk(cs + 64, 30), 0);
    EXPECT_EQ(c->alloc_bulk(cs + 94, 3), -ENOENT);
    EXPECT_EQ(c->avail_count(), 2u);
    c->put_bulk(cs, 94);
    EXPECT_EQ(c->avail_count(), 96u);
}

// How many mbufs the shared ring holds: what a thread that is not an lcore
// can take (it never sees a cache). Puts them back.
unsigned in_ring(MbufPool& p) {
    unsigned n = 0;
    std::thread t([&] {
        std::vector<Mbuf*> got;
        while (Mbuf* m = p.alloc())
            got.push_back(m);
        n = static_cast<unsigned>(got.size());
        p.put_bulk(got.data(), n);
    });
    t.join();
    return n;
}

// An lcore's cache refills cache_size + what is missing from the ring, and
// flushes down to cache_size once it reaches 1.5 x cache_size.
TEST(MbufPool, CacheRefillsAndFlushesInBulk) {
    Env env;
    ASSERT_TRUE(env.heap);
    auto lc = eal::Lcores::start({}, 0);
    ASSERT_TRUE(lc) << lc.error().message();
    PoolGuard p(MbufPool::create(*env.heap, "cache", 1024, 64, 0, 256));
    ASSERT_TRUE(p);
    std::vector<Mbuf*> ms;
    Mbuf* first = p->alloc();
    ASSERT_NE(first, nullptr);
    EXPECT_EQ(in_ring(*p.p), 1024u - 65);  // one refill of 64 + 1
    ms.push_back(first);
    for (int i = 1; i < 200; ++i) {
        ms.push_back(p->alloc());
        ASSERT_NE(ms.back(), nullptr);
    }
    EXPECT_EQ(in_ring(*p.p), 1024u - 4 * 65);  // 4 refills; 60 left in the cache
    EXPECT_EQ(p->avail_count(), 1024u - 200);
    for (Mbuf* m : ms)
        m->free();
    // 60 + 200 = 260 through the cache: six flushes of 32 (at 96, down to
    // 64) leave 68 in it.
    EXPECT_EQ(in_ring(*p.p), 1024u - 260 + 6 * 32);
    EXPECT_EQ(p->avail_count(), 1024u);
    // Another thread that is not an lcore cannot empty this lcore's cache:
    // the pool looks empty to it with 68 mbufs still here.
    std::vector<Mbuf*> rest(1024);
    std::thread t([&] { EXPECT_EQ(p->alloc_bulk(rest.data(), 1024 - 67), -ENOENT); });
    t.join();
    // A bulk larger than the cache goes to the ring alone (as DPDK's).
    EXPECT_EQ(p->alloc_bulk(rest.data(), 1024), -ENOENT);
    ASSERT_EQ(p->alloc_bulk(rest.data(), 956), 0);
    for (unsigned i = 956; i < 1024; ++i) {
        rest[i] = p->alloc();  // the cache's 68
        ASSERT_NE(rest[i], nullptr) << i;
    }
    EXPECT_EQ(p->alloc(), nullptr);
    EXPECT_EQ(p->avail_count(), 0u);
    p->put_bulk(rest.data(), 1024);
}

// Destroy refuses while mbufs are out, naming how many, and leaves the
// pool usable; once they are back it goes and the name is free again.
TEST(MbufPool, DestroyIsBusyWhileMbufsAreOut) {
    Env env;
    ASSERT_TRUE(env.heap);
    const std::uint64_t before = env.heap->bytes_in_use();
    auto r = MbufPool::create(*env.heap, "busy", 100, 0, 0, 256);
    ASSERT_TRUE(r) << r.error().message();
    MbufPool* p = *r;
    Mbuf* a = p->alloc();
    Mbuf* b = p->alloc();
    Mbuf* c = p->alloc();
    ASSERT_TRUE(a && b && c);
    auto busy = MbufPool::destroy(p);
    ASSERT_FALSE(busy);
    EXPECT_EQ(busy.error().err(), EBUSY);
    EXPECT_NE(busy.error().message().find("mbuf pool 'busy': 3 of 100 mbufs are still out"),
              std::string::npos)
        << busy.error().message();
    EXPECT_EQ(MbufPool::lookup("busy"), p);
    Mbuf* d = p->alloc();  // still usable
    ASSERT_NE(d, nullptr);
    a->free();
    b->free();
    c->free();
    d->free();
    ASSERT_TRUE(MbufPool::destroy(p));
    EXPECT_EQ(MbufPool::lookup("busy"), nullptr);
    EXPECT_EQ(env.heap->bytes_in_use(), before);
    auto dead = MbufPool::destroy(p);
    EXPECT_FALSE(dead);
    EXPECT_FALSE(MbufPool::destroy(nullptr));
    PoolGuard again(MbufPool::create(*env.heap, "busy", 10, 0, 0, 256));
    EXPECT_TRUE(again);
}

// Many lcores at once, each a real pinned lcore thread: lcore 1 allocates
// and hands its mbufs to lcore 2, which frees them (into its own cache);
// lcore 3 allocates and frees in bulk; the main lcore frees chains. No
// mbuf is ever held twice, and all come back.
TEST(MbufPool, ConservationUnderMultiLcoreStress) {
    Env env;
    ASSERT_TRUE(env.heap);
    cpu_set_t set;
    CPU_ZERO(&set);
    ASSERT_EQ(::sched_getaffinity(0, sizeof(set), &set), 0);
    std::vector<unsigned> cpus;
    for (unsigned c = 0; c < CPU_SETSIZE; ++c)
        if (CPU_ISSET(c, &set))
            cpus.push_back(c);
    std::vector<eal::LcoreCpus> layout;
    for (unsigned i = 0; i < 4; ++i)
        layout.push_back({i, {cpus[i % cpus.size()]}});
    auto lc = eal::Lcores::start(layout, 0);
    ASSERT_TRUE(lc) << lc.error().message();

    constexpr unsigned kN = 4096;
    PoolGuard p(MbufPool::create(*env.heap, "stress", kN, 128, 0, 256));
    ASSERT_TRUE(p);
    // Index of each mbuf, for the "held once" flags.
    std::vector<Mbuf*> all(kN);
    ASSERT_EQ(p->alloc_bulk(all.data(), kN), 0);
    std::sort(all.begin(), all.end());
    p->put_bulk(all.data(), kN);
    std::vector<std::atomic<std::uint8_t>> held(kN);
    std::atomic<unsigned> twice{0};
    const auto index = [&](Mbuf* m) {
        return static_cast<std::size_t>(std::lower_bound(all.begin(), all.end(), m) - all.begin());
    };
    const auto take = [&](Mbuf* m) {
        if (held[index(m)].exchange(1) != 0)
            ++twice;
    };
    const auto give = [&](Mbuf* m) {
        if (held[index(m)].exchange(0) != 1)
            ++twice;
    };

    constexpr unsigned kHandoffs = 60000;
    // Single producer, single consumer hand-off queue between lcores 1 and 2.
    constexpr unsigned kQ = 1024;
    std::vector<Mbuf*> q(kQ);
    std::atomic<unsigned> q_head{0}, q_tail{0};
    std::atomic<bool> stop{false};

    ASSERT_TRUE((*lc)->launch(1, [&] {
        for (unsigned i = 0; i < kHandoffs;) {
            Mbuf* m = p->alloc();
            if (m == nullptr) {
                std::this_thread::yield();
                continue;
            }
            take(m);
            while (q_head.load(std::memory_order_relaxed) - q_tail.load(std::memory_order_acquire) ==
                   kQ)
                std::this_thread::yield();
            const unsigned h = q_head.load(std::memory_order_relaxed);
            q[h % kQ] = m;
            q_head.store(h + 1, std::memory_order_release);
            ++i;
        }
        return 0;
    }));
    ASSERT_TRUE((*lc)->launch(2, [&] {
        for (unsigned i = 0; i < kHandoffs; ++i) {
            while (q_head.load(std::memory_order_acquire) == q_tail.load(std::memory_order_relaxed))
                std::this_thread::yield();
            const unsigned t = q_tail.load(std::memory_order_relaxed);
            Mbuf* m = q[t % kQ];
            q_tail.store(t + 1, std::memory_order_release);
            give(m);
            m->free();
        }
        return 0;
    }));
    std::atomic<unsigned> bulk_rounds{0};
    ASSERT_TRUE((*lc)->launch(3, [&] {
        Mbuf* ms[32];
        while (!stop.load(std::memory_order_relaxed)) {
            if (p->alloc_bulk(ms, 32) != 0) {
                std::this_thread::yield();
                continue;
            }
            for (Mbuf* m : ms)
                take(m);
            for (Mbuf* m : ms)
                give(m);
            free_bulk(ms, 32);
            ++bulk_rounds;
        }
        return 0;
    }));
    // The main lcore: three-segment chains, freed whole.
    unsigned chains = 0;
    while ((*lc)->state(1) == eal::LcoreState::running ||
           (*lc)->state(2) == eal::LcoreState::running || chains < 1000) {
        Mbuf* s[3];
        if (p->alloc_bulk(s, 3) != 0) {
            std::this_thread::yield();
            continue;
        }
        for (Mbuf* m : s)
            take(m);
        // No ASSERT here: returning early would leave lcore 3 running.
        if (!s[0]->chain(s[1]) || !s[0]->chain(s[2]))
            ++twice;
        for (Mbuf* m : s)
            give(m);
        s[0]->free();
        ++chains;
    }
    EXPECT_EQ(*(*lc)->wait(1), 0);
    EXPECT_EQ(*(*lc)->wait(2), 0);
    stop = true;
    EXPECT_EQ(*(*lc)->wait(3), 0);
    EXPECT_EQ(twice.load(), 0u) << "an mbuf was handed out while held";
    EXPECT_GT(bulk_rounds.load(), 0u);
    EXPECT_EQ(p->avail_count(), kN) << "mbufs lost or duplicated";
    // And they really are all there: each lcore takes what it can reach
    // (its cache, and the ring while it lasts); together, every mbuf once.
    std::vector<Mbuf*> got[4];
    const auto drain = [&](unsigned id) {
        while (Mbuf* m = p->alloc())
            got[id].push_back(m);
        return 0;
    };
    for (unsigned id : (*lc)->workers()) {
        ASSERT_TRUE((*lc)->launch(id, [&, id] { return drain(id); }));
        ASSERT_TRUE((*lc)->wait(id));
    }
    drain(0);
    std::vector<Mbuf*> back;
    for (const auto& g : got)
        back.insert(back.end(), g.begin(), g.end());
    EXPECT_EQ(back.size(), kN);
    std::sort(back.begin(), back.end());
    EXPECT_EQ(std::adjacent_find(back.begin(), back.end()), back.end());
    EXPECT_EQ(p->avail_count(), 0u);
    p->put_bulk(back.data(), static_cast<unsigned>(back.size()));
}

// Memory contiguous only per page (pa mode): no object crosses a page.
TEST(MbufLayout, ObjectsStayInsidePagesWhenAsked) {
    for (std::uint64_t page : {std::uint64_t{4096}, std::uint64_t{2} << 20}) {
        detail::PoolLayout l;
        const std::uint64_t obj = sizeof(Mbuf) + kDefaultDataRoom;  // 2304
        ASSERT_TRUE(detail::compute_layout(l, 256, 192, 8, 5000, 256, 128, obj, page));
        EXPECT_EQ(l.align, page);
        EXPECT_EQ(l.objs_off % page, 0u);
        EXPECT_EQ(l.per_page, page / 2304);
        for (unsigned i = 0; i < 5000; ++i) {
            const std::uint64_t a = l.objs_off + l.obj_offset(i);
            EXPECT_EQ(a / page, (a + obj - 1) / page) << "object " << i << " crosses a page";
            EXPECT_LE(a + obj, l.bytes);
            if (i > 0) {
                EXPECT_GE(a, l.objs_off + l.obj_offset(i - 1) + obj);
            }
        }
    }
    detail::PoolLayout packed;
    ASSERT_TRUE(detail::compute_layout(packed, 256, 192, 8, 100, 0, 128, 2304, 0));
    EXPECT_EQ(packed.obj_offset(3), 3u * 2304);
    EXPECT_EQ(packed.cache_stride, 0u);
    EXPECT_EQ(packed.ring_size, 128u);
    detail::PoolLayout big;
    EXPECT_FALSE(detail::compute_layout(big, 256, 192, 8, 10, 0, 128, 5000, 4096));
}

}  // namespace
}  // namespace vfiokit::mbuf

// Mbuf operations: data room arithmetic, chains, reference counts, and
// that every free path brings every segment back to its pool.
#include <gtest/gtest.h>

#include <cstring>

#include "test_env.hpp"
#include "vfiokit/mbuf/mbuf.hpp"

namespace vfiokit::mbuf {
namespace {

using testing::Env;
using testing::PoolGuard;

TEST(Mbuf, FreshMbufIsResetWithItsIovaAndHeadroom) {
    Env env;
    ASSERT_TRUE(env.heap);
    PoolGuard p(MbufPool::create(*env.heap, "fresh", 16, 0, 16, kDefaultDataRoom));
    ASSERT_TRUE(p);
    Mbuf* m = p->alloc();
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(m->pool, p.p);
    EXPECT_EQ(m->refcnt, 1);
    EXPECT_EQ(m->nb_segs, 1);
    EXPECT_EQ(m->next, nullptr);
    EXPECT_EQ(m->port, 0xffff);
    EXPECT_EQ(m->data_off, kHeadroom);
    EXPECT_EQ(m->headroom(), kHeadroom);
    EXPECT_EQ(m->data_len, 0);
    EXPECT_EQ(m->pkt_len, 0u);
    EXPECT_EQ(m->buf_len, kDefaultDataRoom);
    EXPECT_EQ(m->priv_size, 16);
    EXPECT_EQ(m->tailroom(), kDefaultDataRoom - kHeadroom);
    // The buffer follows the header and the private area.
    EXPECT_EQ(m->buf_addr, reinterpret_cast<std::uint8_t*>(m) + sizeof(Mbuf) + 16);
    // O(1) IOVA, as EAL memory translates it.
    EXPECT_EQ(m->buf_iova, *env.mem->virt2iova(m->buf_addr));
    EXPECT_EQ(m->iova(), *env.mem->virt2iova(m->data()));
    m->free();
}

TEST(Mbuf, AppendPrependAdjTrimAndReset) {
    Env env;
    ASSERT_TRUE(env.heap);
    PoolGuard p(MbufPool::create(*env.heap, "ops", 8, 0, 0, 512));
    ASSERT_TRUE(p);
    Mbuf* m = p->alloc();
    ASSERT_NE(m, nullptr);
    std::uint8_t* d = m->append(60);
    ASSERT_EQ(d, m->data());
    std::memset(d, 0xab, 60);
    EXPECT_EQ(m->data_len, 60);
    EXPECT_EQ(m->pkt_len, 60u);
    EXPECT_EQ(m->tailroom(), 512 - kHeadroom - 60);
    // Too big for the tailroom: nothing changes.
    EXPECT_EQ(m->append(512), nullptr);
    EXPECT_EQ(m->data_len, 60);

    std::uint8_t* h = m->prepend(14);
    ASSERT_EQ(h, m->data());
    EXPECT_EQ(m->data_off, kHeadroom - 14);
    EXPECT_EQ(m->data_len, 74);
    EXPECT_EQ(m->pkt_len, 74u);
    EXPECT_EQ(m->iova(), m->buf_iova + kHeadroom - 14);
    EXPECT_EQ(m->prepend(kHeadroom), nullptr);  // 114 bytes of headroom left
    EXPECT_EQ(m->data_off, kHeadroom - 14);

    EXPECT_TRUE(m->adj(14));
    EXPECT_EQ(m->data_off, kHeadroom);
    EXPECT_EQ(m->data_len, 60);
    EXPECT_EQ(m->data()[0], 0xab);
    EXPECT_FALSE(m->adj(61));
    EXPECT_TRUE(m->trim(10));
    EXPECT_EQ(m->data_len, 50);
    EXPECT_EQ(m->pkt_len, 50u);
    EXPECT_FALSE(m->trim(51));
    EXPECT_EQ(m->data_len, 50);

    m->port = 3;
    m->ol_flags = ol::kRxVlan | ol::kTxIpCksum;
    m->vlan_tci = 7;
    m->l2_len = 14;
    m->reset();
    EXPECT_EQ(m->data_off, kHeadroom);
    EXPECT_EQ(m->data_len, 0);
    EXPECT_EQ(m->pkt_len, 0u);
    EXPECT_EQ(m->port, 0xffff);
    EXPECT_EQ(m->ol_flags, 0u);
    EXPECT_EQ(m->vlan_tci, 0);
    EXPECT_EQ(m->l2_len, 0);
    m->free();
    EXPECT_EQ(p->in_use_count(), 0u);
}

// A data room smaller than the default headroom: all of it is headroom.
TEST(Mbuf, SmallDataRoomIsAllHeadroom) {
    Env env;
    ASSERT_TRUE(env.heap);
    PoolGuard p(MbufPool::create(*env.heap, "small", 4, 0, 0, 64));
    ASSERT_TRUE(p);
    Mbuf* m = p->alloc();
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(m->data_off, 64);
    EXPECT_EQ(m->tailroom(), 0);
    EXPECT_EQ(m->append(1), nullptr);
    EXPECT_NE(m->prepend(64), nullptr);
    m->free();
}

TEST(Mbuf, ChainSumsLengthsAndFreeReturnsEverySegment) {
    Env env;
    ASSERT_TRUE(env.heap);
    PoolGuard p(MbufPool::create(*env.heap, "chain", 8, 0, 0, 512));
    ASSERT_TRUE(p);
    Mbuf* a = p->alloc();
    Mbuf* b = p->alloc();
    Mbuf* c = p->alloc();
    ASSERT_TRUE(a && b && c);
    ASSERT_TRUE(a->append(10));
    ASSERT_TRUE(b->append(20));
    ASSERT_TRUE(c->append(30));
    ASSERT_TRUE(b->chain(c));  // b: 2 segments, 50 bytes
    EXPECT_EQ(b->nb_segs, 2);
    EXPECT_EQ(b->pkt_len, 50u);
    ASSERT_TRUE(a->chain(b));
    EXPECT_EQ(a->nb_segs, 3);
    EXPECT_EQ(a->pkt_len, 60u);
    EXPECT_EQ(a->last_seg(), c);
    // b is a middle segment now: it holds only its own length.
    EXPECT_EQ(b->pkt_len, 20u);
    EXPECT_EQ(b->nb_segs, 1);
    // append and trim act on the last segment, pkt_len on the first.
    ASSERT_TRUE(a->append(5));
    EXPECT_EQ(c->data_len, 35);
    EXPECT_EQ(a->pkt_len, 65u);
    EXPECT_TRUE(a->trim(35));
    EXPECT_EQ(c->data_len, 0);
    EXPECT_EQ(a->pkt_len, 30u);
    EXPECT_FALSE(a->trim(1));  // the last segment is empty
    EXPECT_EQ(p->in_use_count(), 3u);
    // free_seg frees one and hands back the rest.
    EXPECT_EQ(a->free_seg(), b);
    EXPECT_EQ(p->in_use_count(), 2u);
    b->free();
    EXPECT_EQ(p->in_use_count(), 0u);
}

TEST(Mbuf, ChainRefusesToOverflowNbSegs) {
    Env env;
    ASSERT_TRUE(env.heap);
    PoolGuard p(MbufPool::create(*env.heap, "overflow", 4, 0, 0, 256));
    ASSERT_TRUE(p);
    Mbuf* a = p->alloc();
    Mbuf* b = p->alloc();
    ASSERT_TRUE(a && b);
    a->nb_segs = 0xffff;  // as if it had that many
    EXPECT_FALSE(a->chain(b));
    EXPECT_EQ(a->next, nullptr);
    EXPECT_EQ(a->nb_segs, 0xffff);
    a->nb_segs = 1;
    a->free();
    b->free();
}

TEST(Mbuf, RefcntKeepsASharedBufferUntilTheLastFree) {
    Env env;
    ASSERT_TRUE(env.heap);
    PoolGuard p(MbufPool::create(*env.heap, "refcnt", 8, 0, 0, 256));
    ASSERT_TRUE(p);
    Mbuf* m = p->alloc();
    ASSERT_NE(m, nullptr);
    m->refcnt_add(2);
    EXPECT_EQ(m->refcnt, 3);
    m->free();
    m->free();
    EXPECT_EQ(m->refcnt, 1);
    EXPECT_EQ(p->in_use_count(), 1u);
    m->free();
    EXPECT_EQ(p->in_use_count(), 0u);
    // Allocated again, it starts with one reference.
    Mbuf* again = p->alloc();
    ASSERT_NE(again, nullptr);
    EXPECT_EQ(again->refcnt, 1);
    again->refcnt_add(1);
    again->refcnt_add(-1);
    EXPECT_EQ(again->refcnt, 1);
    again->free();
}

// One segment in two packets (the same payload after two headers): each
// free drops one reference of it; it goes back with the second.
TEST(Mbuf, SharedSegmentInTwoChains) {
    Env env;
    ASSERT_TRUE(env.heap);
    PoolGuard p(MbufPool::create(*env.heap, "shared", 8, 0, 0, 256));
    ASSERT_TRUE(p);
    Mbuf* h1 = p->alloc();
    Mbuf* h2 = p->alloc();
    Mbuf* payload = p->alloc();
    ASSERT_TRUE(h1 && h2 && payload);
    ASSERT_TRUE(payload->append(100));
    ASSERT_TRUE(h1->append(14));
    ASSERT_TRUE(h2->append(14));
    ASSERT_TRUE(h1->chain(payload));
    payload->refcnt_add(1);
    h2->next = payload;  // chain() would rewrite payload's totals again
    h2->nb_segs = 2;
    h2->pkt_len += payload->data_len;
    EXPECT_EQ(h2->pkt_len, 114u);
    h1->free();
    EXPECT_EQ(p->in_use_count(), 2u);  // h2 and the payload
    EXPECT_EQ(payload->refcnt, 1);
    h2->free();
    EXPECT_EQ(p->in_use_count(), 0u);
}

TEST(Mbuf, FreeBulkFreesChainsAcrossPools) {
    Env env;
    ASSERT_TRUE(env.heap);
    PoolGuard p(MbufPool::create(*env.heap, "bulk-a", 200, 0, 0, 256));
    PoolGuard q(MbufPool::create(*env.heap, "bulk-b", 200, 0, 0, 256));
    ASSERT_TRUE(p && q);
    Mbuf* pkts[150];
    for (unsigned i = 0; i < 150; ++i) {
        pkts[i] = (i % 3 ? p.p : q.p)->alloc();
        ASSERT_NE(pkts[i], nullptr);
        if (i % 5 == 0) {  // some two-segment packets, the tail from the other pool
            Mbuf* t = (i % 3 ? q.p : p.p)->alloc();
            ASSERT_NE(t, nullptr);
            ASSERT_TRUE(pkts[i]->chain(t));
        }
    }
    pkts[7]->refcnt_add(1);  // one packet stays alive through the bulk free
    free_bulk(pkts, 150);
    EXPECT_EQ(p->in_use_count() + q->in_use_count(), 1u);
    pkts[7]->free();
    EXPECT_EQ(p->in_use_count(), 0u);
    EXPECT_EQ(q->in_use_count(), 0u);
}

}  // namespace
}  // namespace vfiokit::mbuf

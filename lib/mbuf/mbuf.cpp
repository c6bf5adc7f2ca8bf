#include "vfiokit/mbuf/mbuf.hpp"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <mutex>
#include <new>

#include "layout.hpp"
#include "vfiokit/eal/eal.hpp"
#include "vfiokit/eal/format.hpp"
#include "vfiokit/eal/mp.hpp"

namespace vfiokit::mbuf {

namespace {

constexpr std::uint64_t kMagic = 0x4c4f4f5046424d56ULL;  // "VMBFPOOL"

// The pools of this process by name. Separate from the EAL lock: taken
// around create/destroy/lookup/name only, never on the packet path.
struct Registry {
    std::mutex mu;
    std::map<std::string, MbufPool*, std::less<>> by_name;
};
Registry& registry() {
    static Registry r;
    return r;
}

std::string pool_label(std::string_view name) { return "mbuf pool '" + std::string(name) + "'"; }

Error bad_arg(std::string_view name, const std::string& what) {
    return Error(EINVAL, pool_label(name) + ": " + what);
}

// Whether [va, va+len) is IOVA-contiguous: every page boundary inside it
// has the IOVA its offset predicts. EFAULT naming the place otherwise.
Result<std::uint64_t> contiguous_iova(const eal::Memory& mem, const std::uint8_t* va,
                                      std::uint64_t len) {
    const auto first = mem.virt2iova(va);
    if (!first)
        return fail(Error(EFAULT, "buffer at " + hex(reinterpret_cast<std::uintptr_t>(va)) +
                                      " has no IOVA: not EAL memory"));
    const std::uint64_t pg = mem.page_size();
    const auto a = reinterpret_cast<std::uintptr_t>(va);
    for (std::uint64_t p = (a / pg + 1) * pg; p < a + len; p += pg) {
        const auto io = mem.virt2iova(reinterpret_cast<const void*>(p));
        if (!io || *io != *first + (p - a))
            return fail(Error(EFAULT, "buffer [" + hex(a) + ", " + hex(a + len) +
                                          ") is not IOVA-contiguous: page " + hex(p) + " has IOVA " +
                                          (io ? hex(*io) : std::string("none")) + ", not " +
                                          hex(*first + (p - a))));
    }
    return *first;
}

// A secondary asks its primary for a pool by name: the reply is the pool's
// address, the same in both processes.
constexpr std::string_view kLookupRequest = "mbuf.lookup";

// The primary answers lookups from its secondaries (registered again with
// each pool; the server keeps one handler per name).
void serve_lookups() {
    eal::Eal* e = eal::Eal::current();
    if (e == nullptr || e->server() == nullptr)
        return;
    e->server()->handle(std::string(kLookupRequest),
                        [](const eal::mp::Request& r, const eal::mp::Peer&)
                            -> Result<eal::mp::Reply> {
                            MbufPool* p = MbufPool::lookup(r.payload);
                            if (p == nullptr)
                                return fail(Error(ENOENT, pool_label(r.payload) +
                                                              ": no such pool in the primary"));
                            eal::mp::Reply rep;
                            rep.payload = std::to_string(reinterpret_cast<std::uintptr_t>(p));
                            return rep;
                        });
}

}  // namespace

Result<MbufPool*> MbufPool::create(eal::Heap& heap, std::string_view name, unsigned n,
                                   unsigned cache_size, std::uint16_t priv_size,
                                   std::uint16_t data_room) {
    if (name.empty() || name.size() > kNameMax)
        return fail(bad_arg(name, "name must have 1 to " + std::to_string(kNameMax) +
                                      " characters (it has " + std::to_string(name.size()) + ")"));
    if (n == 0 || n > (1u << 31))
        return fail(bad_arg(name, "n = " + std::to_string(n) + ": must be 1 to 2^31 mbufs"));
    if (cache_size > kMaxCacheSize)
        return fail(bad_arg(name, "cache_size = " + std::to_string(cache_size) +
                                      ": above kMaxCacheSize (" + std::to_string(kMaxCacheSize) +
                                      ")"));
    // DPDK's rule: a cache may not hold more than n / 1.5, or a few lcores'
    // caches could hold the whole pool while another lcore finds it empty.
    if (std::uint64_t{cache_size} * 3 > std::uint64_t{n} * 2)
        return fail(bad_arg(name, "cache_size = " + std::to_string(cache_size) +
                                      ": above n / 1.5 (n = " + std::to_string(n) + ")")
                        .hint("make the pool bigger or the cache smaller"));
    if (priv_size % 8 != 0)
        return fail(bad_arg(name, "priv_size = " + std::to_string(priv_size) +
                                      ": must be a multiple of 8 (the data buffer's alignment)"));
    if (data_room == 0)
        return fail(bad_arg(name, "data_room = 0: an mbuf needs a buffer"));

    eal::Memory& mem = heap.memory();
    // pa mode: only a page is IOVA-contiguous. va mode with huge pages too:
    // the IOVA range is contiguous, but an emulated NIC behind an IOMMU may
    // map a buffer for DMA in one piece and drop it when two huge pages are
    // apart in its own memory (QEMU's e1000e and igb models do:
    // net_tx_pkt_add_raw_fragment_pci), so no buffer crosses a huge page.
    // With 4 KiB pages (--no-huge) that would waste a third of each page:
    // there objects are packed, and drivers split at page boundaries. In va
    // mode the unit is 2 MiB even on 1 GiB pages (every huge page boundary
    // is a 2 MiB one; aligning a pool to 1 GiB would waste up to a page).
    constexpr std::uint64_t k2M = 2u << 20;
    const bool pa = mem.iova_mode() == eal::IovaMode::pa;
    const bool per_page = pa || mem.page_size() >= k2M;
    const std::uint64_t unit = pa ? mem.page_size() : std::min(mem.page_size(), k2M);
    detail::PoolLayout l;
    const std::uint64_t obj_bytes = sizeof(Mbuf) + std::uint64_t{priv_size} + data_room;
    if (!detail::compute_layout(l, sizeof(MbufPool), sizeof(eal::detail::PtrRing<Mbuf>), sizeof(Mbuf*), n,
                                cache_size, eal::kMaxLcores, obj_bytes,
                                per_page ? unit : 0))
        return fail(bad_arg(name, "an mbuf of " + std::to_string(obj_bytes) +
                                      " bytes (header, priv_size, data_room) does not fit in a "
                                      "page of " + std::to_string(unit) +
                                      " bytes, the IOVA-contiguous unit in pa mode"));

    auto& reg = registry();
    std::unique_lock g(reg.mu);
    if (reg.by_name.find(name) != reg.by_name.end())
        return fail(Error(EEXIST, pool_label(name) + ": the name is in use")
                        .hint("destroy the other pool or choose another name"));
    auto block = heap.alloc(l.bytes, l.align);
    if (!block)
        return fail(std::move(block.error())
                        .context(pool_label(name) + " (" + std::to_string(n) + " mbufs of " +
                                 std::to_string(obj_bytes) + " bytes, " +
                                 std::to_string(l.bytes) + " bytes in all)"));
    auto* base = static_cast<std::byte*>(*block);

    auto* p = new (base) MbufPool();
    auto* ring = new (base + l.ring_off) eal::detail::PtrRing<Mbuf>(l.ring_size);
    p->core_ = eal::detail::PoolCore<Mbuf>(ring, base + l.caches_off, cache_size);
    p->n_ = n;
    p->data_room_ = data_room;
    p->priv_size_ = priv_size;
    p->obj_stride_ = l.obj_stride;
    p->page_ = l.page;
    p->per_page_ = l.per_page;
    p->objs_lo_ = base + l.objs_off;
    p->objs_hi_ = base + l.bytes;
    p->heap_ = &heap;
    p->block_ = *block;
    p->owner_pid_ = static_cast<std::int32_t>(::getpid());
    name.copy(p->name_, kNameMax);

    for (unsigned i = 0; i < n; ++i) {
        auto* m = new (p->objs_lo_ + l.obj_offset(i)) Mbuf();
        m->buf_addr = reinterpret_cast<std::uint8_t*>(m) + sizeof(Mbuf) + priv_size;
        m->buf_len = data_room;
        m->priv_size = priv_size;
        m->pool = p;
        auto iova = contiguous_iova(mem, m->buf_addr, data_room);
        if (!iova) {
            (void)heap.free(*block);
            return fail(std::move(iova.error())
                            .context(pool_label(name) + ": mbuf " + std::to_string(i)));
        }
        m->buf_iova = *iova;
        m->reset();
        Mbuf* one = m;
        ring->enqueue(&one, 1, true);  // the ring holds n: cannot fail
    }
    p->magic_ = kMagic;
    reg.by_name.emplace(std::string(name), p);
    // Not under the registry's lock: the server may be running a lookup
    // handler, which takes it.
    g.unlock();
    serve_lookups();
    return p;
}

Result<MbufPool*> MbufPool::create(std::string_view name, unsigned n, unsigned cache_size,
                                   std::uint16_t priv_size, std::uint16_t data_room, int socket) {
    eal::Eal* e = eal::Eal::current();
    if (e == nullptr)
        return fail(Error(ENODEV, pool_label(name) + ": no EAL is up in this process")
                        .hint("call Eal::init first, or pass a heap"));
    return create(e->heap(socket), name, n, cache_size, priv_size, data_room);
}

MbufPool* MbufPool::lookup(std::string_view name) {
    auto& reg = registry();
    {
        std::lock_guard g(reg.mu);
        if (auto it = reg.by_name.find(name); it != reg.by_name.end())
            return it->second;
    }
    // A secondary: the primary's pools, by address. Checked before use:
    // the pool must lie in memory this process mapped from the primary,
    // and carry the pool's mark and the name asked for.
    eal::Eal* e = eal::Eal::current();
    if (e == nullptr || e->primary() == nullptr || name.empty() || name.size() > kNameMax)
        return nullptr;
    auto r = e->primary()->request(kLookupRequest, name);
    if (!r)
        return nullptr;
    std::uintptr_t a = 0;
    const std::string& t = r->payload;
    if (auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), a);
        ec != std::errc() || end != t.data() + t.size() || a % alignof(MbufPool) != 0)
        return nullptr;
    auto* p = reinterpret_cast<MbufPool*>(a);
    if (!e->virt2iova(p) || !e->virt2iova(reinterpret_cast<std::byte*>(p) + sizeof(MbufPool) - 1))
        return nullptr;
    if (p->magic_ != kMagic || std::string_view(p->name_) != name)
        return nullptr;
    std::lock_guard g(reg.mu);
    return reg.by_name.emplace(std::string(name), p).first->second;
}

Result<void> MbufPool::destroy(MbufPool* p) {
    if (p == nullptr)
        return fail(Error(EINVAL, "mbuf pool destroy: no pool (nullptr)"));
    auto& reg = registry();
    std::lock_guard g(reg.mu);
    if (p->magic_ != kMagic)
        return fail(Error(EINVAL, "mbuf pool destroy: not a live pool"));
    const std::string label = pool_label(p->name_);
    if (p->owner_pid_ != static_cast<std::int32_t>(::getpid()))
        return fail(Error(EPERM, label + ": destroy in the process that created it (pid " +
                                     std::to_string(p->owner_pid_) + ")"));
    if (const unsigned out = p->in_use_count(); out != 0)
        return fail(Error(EBUSY, label + ": " + std::to_string(out) + " of " +
                                     std::to_string(p->n_) + " mbufs are still out")
                        .hint("free them (stop and release the queues holding them) first"));
    if (auto it = reg.by_name.find(std::string_view(p->name_));
        it != reg.by_name.end() && it->second == p)
        reg.by_name.erase(it);
    eal::Heap* heap = p->heap_;
    void* block = p->block_;
    p->magic_ = 0;
    p->~MbufPool();
    if (auto ok = heap->free(block); !ok)
        return fail(std::move(ok.error()).context(label));
    return {};
}

const std::string& MbufPool::name() const {
    auto& reg = registry();
    std::lock_guard g(reg.mu);
    for (const auto& [k, v] : reg.by_name)
        if (v == this)
            return k;
    // A pool this process did not create (a secondary's view of a
    // primary's): known here from now on.
    return reg.by_name.emplace(std::string(name_), const_cast<MbufPool*>(this)).first->first;
}

unsigned MbufPool::avail_count() const {
    const unsigned n = core_.ring_count() + core_.cache_count();
    return n > n_ ? n_ : n;
}

unsigned MbufPool::common_count() const { return std::min(core_.ring_count(), n_); }

unsigned MbufPool::cache_count() const { return std::min(core_.cache_count(), n_); }

std::vector<std::string> MbufPool::names() {
    auto& reg = registry();
    std::lock_guard g(reg.mu);
    std::vector<std::string> out;
    for (const auto& [name, p] : reg.by_name)
        out.push_back(name);
    return out;
}

bool MbufPool::owns(const Mbuf* m) const {
    const auto* b = reinterpret_cast<const std::byte*>(m);
    if (b < objs_lo_ || b >= objs_hi_)
        return false;
    const auto off = static_cast<std::uint64_t>(b - objs_lo_);
    if (page_ == 0)
        return off % obj_stride_ == 0 && off / obj_stride_ < n_;
    const std::uint64_t in_page = off % page_;
    const std::uint64_t i = off / page_ * per_page_ + in_page / obj_stride_;
    return in_page % obj_stride_ == 0 && in_page / obj_stride_ < per_page_ && i < n_;
}

}  // namespace vfiokit::mbuf

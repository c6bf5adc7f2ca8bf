#include "vfiokit/eal/heap.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>
#include <utility>

namespace vfiokit::eal {

namespace {

constexpr std::uint64_t kGrain = 64;  // every block's size and address: a multiple

// The class of a block of `units` 64-byte units (insertion: the class
// whose range holds the size).
struct Class {
    unsigned fl, sl;
};
template <unsigned SlBits>
Class class_of(std::uint64_t units) {
    constexpr std::uint64_t sl_count = 1u << SlBits;
    if (units < sl_count)
        return {0, static_cast<unsigned>(units)};
    const unsigned f = 63u - static_cast<unsigned>(__builtin_clzll(units));
    return {f - SlBits + 1, static_cast<unsigned>((units >> (f - SlBits)) & (sl_count - 1))};
}

std::string heap_label(int node) {
    return "heap" + (node >= 0 ? " on node " + std::to_string(node) : "");
}

}  // namespace

Heap::Heap(Memory& mem, int node, std::uint64_t chunk) : mem_(&mem), node_(node), chunk_(chunk) {
    const std::uint64_t pg = mem.page_size();
    chunk_ = (chunk_ + pg - 1) / pg * pg;
}

Heap::~Heap() {
    auto held = mem_->lock();
    for (const Segment* s : segs_)
        (void)mem_->remove(s);
}

// ---- block descriptors and the address table -------------------------------------

Heap::Block* Heap::new_block() {
    if (spare_ == nullptr) {
        constexpr std::size_t kSlab = 256;
        slabs_.push_back(std::make_unique<Block[]>(kSlab));
        Block* slab = slabs_.back().get();
        for (std::size_t i = 0; i < kSlab; ++i) {
            slab[i].next_free = spare_;
            spare_ = &slab[i];
        }
    }
    Block* b = spare_;
    spare_ = b->next_free;
    *b = Block{};
    return b;
}

void Heap::release_block(Block* b) {
    b->next_free = spare_;
    spare_ = b;
}

// Fibonacci hashing of the 64-byte unit: consecutive blocks spread out.
std::size_t Heap::table_slot(std::uint64_t addr) const {
    return static_cast<std::size_t>(((addr / kGrain) * 0x9e3779b97f4a7c15ULL) >> table_shift_);
}

void Heap::table_insert(Block* b) {
    // At most half full, so probe runs stay short.
    if ((table_used_ + 1) * 2 > table_.size()) {
        std::vector<Block*> old(table_.empty() ? 1024 : table_.size() * 2, nullptr);
        old.swap(table_);
        table_shift_ = 64u - static_cast<unsigned>(__builtin_ctzll(table_.size()));
        for (Block* e : old)
            if (e != nullptr) {
                std::size_t i = table_slot(e->addr);
                while (table_[i] != nullptr)
                    i = (i + 1) & (table_.size() - 1);
                table_[i] = e;
            }
    }
    const std::size_t mask = table_.size() - 1;
    std::size_t i = table_slot(b->addr);
    while (table_[i] != nullptr)
        i = (i + 1) & mask;
    table_[i] = b;
    ++table_used_;
}

Heap::Block* Heap::table_take(std::uint64_t addr) {
    if (table_.empty())
        return nullptr;
    const std::size_t mask = table_.size() - 1;
    std::size_t i = table_slot(addr);
    for (; table_[i] != nullptr; i = (i + 1) & mask)
        if (table_[i]->addr == addr)
            break;
    Block* b = table_[i];
    if (b == nullptr)
        return nullptr;
    // Linear probing's deletion: move later entries of the run back into
    // the hole when their home slot is not between the hole and them.
    for (std::size_t j = i;;) {
        j = (j + 1) & mask;
        if (table_[j] == nullptr)
            break;
        const std::size_t home = table_slot(table_[j]->addr);
        const bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            table_[i] = table_[j];
            i = j;
        }
    }
    table_[i] = nullptr;
    --table_used_;
    return b;
}

// ---- the class lists ----------------------------------------------------------------

void Heap::insert_free(Block* b) {
    const Class c = class_of<kSlBits>(b->size / kGrain);
    b->free = true;
    b->prev_free = nullptr;
    b->next_free = heads_[c.fl][c.sl];
    if (b->next_free != nullptr)
        b->next_free->prev_free = b;
    heads_[c.fl][c.sl] = b;
    sl_map_[c.fl] |= 1u << c.sl;
    fl_map_ |= std::uint64_t{1} << c.fl;
}

void Heap::remove_free(Block* b) {
    const Class c = class_of<kSlBits>(b->size / kGrain);
    if (b->prev_free != nullptr)
        b->prev_free->next_free = b->next_free;
    else
        heads_[c.fl][c.sl] = b->next_free;
    if (b->next_free != nullptr)
        b->next_free->prev_free = b->prev_free;
    if (heads_[c.fl][c.sl] == nullptr) {
        sl_map_[c.fl] &= ~(1u << c.sl);
        if (sl_map_[c.fl] == 0)
            fl_map_ &= ~(std::uint64_t{1} << c.fl);
    }
    b->free = false;
}

// A free block of at least `size` bytes, or nullptr. First the smallest
// class whose every block fits (the size rounded up to the next class
// boundary): two find-first-set operations. Failing that, a few blocks of
// the size's own class, which may hold one that fits.
Heap::Block* Heap::find_free(std::uint64_t size) {
    const std::uint64_t units = size / kGrain;
    std::uint64_t up = units;
    if (units >= kSl)
        up += (std::uint64_t{1} << (63u - static_cast<unsigned>(__builtin_clzll(units)) - kSlBits)) - 1;
    const Class c = class_of<kSlBits>(up);
    if (c.fl < kFl) {
        std::uint32_t sl = sl_map_[c.fl] & (~0u << c.sl);
        unsigned fl = c.fl;
        if (sl == 0) {
            const std::uint64_t fls = c.fl + 1 < 64 ? fl_map_ & (~std::uint64_t{0} << (c.fl + 1)) : 0;
            if (fls != 0) {
                fl = static_cast<unsigned>(__builtin_ctzll(fls));
                sl = sl_map_[fl];
            }
        }
        if (sl != 0)
            return heads_[fl][__builtin_ctz(sl)];
    }
    const Class own = class_of<kSlBits>(units);
    Block* b = heads_[own.fl][own.sl];
    for (unsigned i = 0; b != nullptr && i < kNearFitProbes; ++i, b = b->next_free)
        if (b->size >= size)
            return b;
    return nullptr;
}

// ---- alloc, free, grow --------------------------------------------------------------

Result<Heap::Block*> Heap::grow(std::uint64_t at_least, bool exact) {
    auto held = mem_->lock();
    auto s = mem_->add(exact ? at_least : std::max(chunk_, at_least), node_);
    if (!s)
        return fail(std::move(s.error()).context(heap_label(node_)));
    segs_.reserve(segs_.size() + 1);
    seg_first_.reserve(seg_first_.size() + 1);
    Block* b = new_block();
    b->addr = (*s)->va;
    b->size = (*s)->len / kGrain * kGrain;
    segs_.push_back(*s);
    seg_first_.push_back(b);
    insert_free(b);
    return b;
}

Result<void> Heap::reserve(std::uint64_t bytes) {
    auto grown = grow(bytes, true);
    if (!grown)
        return fail(std::move(grown.error()));
    return {};
}

Result<void*> Heap::alloc(std::uint64_t size, std::uint64_t align) {
    auto held = mem_->lock();
    if (align < kGrain)
        align = kGrain;
    if (size == 0 || (align & (align - 1)) != 0)
        return fail(EINVAL, "heap alloc: size must be non-zero and alignment a power of two");
    // Checked before rounding up, which would wrap near 2^64 (SIZE_MAX
    // became a 0-byte block).
    if (size > chunk_ || align > chunk_)
        return fail(Error(EINVAL, "heap alloc of " + std::to_string(size) + " bytes, aligned to " +
                                      std::to_string(align) + ": larger than a segment (" +
                                      std::to_string(chunk_) + " bytes)")
                        .hint("create the heap with a larger chunk"));
    size = (size + kGrain - 1) / kGrain * kGrain;
    if (size > chunk_)
        return fail(Error(EINVAL, "heap alloc of " + std::to_string(size) + " bytes: larger than a "
                                      "segment (" + std::to_string(chunk_) + " bytes)")
                        .hint("create the heap with a larger chunk"));
    // Blocks start on 64 bytes: a block of size + align - 64 holds an
    // aligned start with `size` bytes after it.
    const std::uint64_t need = size + align - kGrain;
    Block* b = find_free(need);
    if (b == nullptr) {
        auto grown = grow(size + align);
        if (!grown)
            return fail(std::move(grown.error()));
        b = *grown;  // the new segment's one block: it fits by construction
    }
    remove_free(b);
    // Neighbours of a free block are used (free ones merge at once), so
    // the pieces split off below need no merging.
    const std::uint64_t at = (b->addr + align - 1) & ~(align - 1);
    if (at > b->addr) {
        Block* front = new_block();
        front->addr = b->addr;
        front->size = at - b->addr;
        front->prev_phys = b->prev_phys;
        front->next_phys = b;
        if (front->prev_phys != nullptr)
            front->prev_phys->next_phys = front;
        else
            for (Block*& first : seg_first_)
                if (first == b) {
                    first = front;
                    break;
                }
        b->prev_phys = front;
        b->addr = at;
        b->size -= front->size;
        insert_free(front);
    }
    if (b->size > size) {
        Block* tail = new_block();
        tail->addr = b->addr + size;
        tail->size = b->size - size;
        tail->prev_phys = b;
        tail->next_phys = b->next_phys;
        if (tail->next_phys != nullptr)
            tail->next_phys->prev_phys = tail;
        b->next_phys = tail;
        b->size = size;
        insert_free(tail);
    }
    table_insert(b);
    in_use_ += size;
    return reinterpret_cast<void*>(b->addr);
}

Result<void> Heap::free(void* p) {
    auto held = mem_->lock();
    if (p == nullptr)
        return {};
    Block* b = table_take(reinterpret_cast<std::uint64_t>(p));
    if (b == nullptr)
        return fail(EINVAL, "heap free: pointer was not allocated by this heap (or freed already)");
    in_use_ -= b->size;
    // Merge with free neighbours; neighbours are in the same segment only
    // (two segments may be adjacent in VA but are separate DMA mappings).
    if (Block* n = b->next_phys; n != nullptr && n->free) {
        remove_free(n);
        b->size += n->size;
        b->next_phys = n->next_phys;
        if (b->next_phys != nullptr)
            b->next_phys->prev_phys = b;
        release_block(n);
    }
    if (Block* pv = b->prev_phys; pv != nullptr && pv->free) {
        remove_free(pv);
        pv->size += b->size;
        pv->next_phys = b->next_phys;
        if (pv->next_phys != nullptr)
            pv->next_phys->prev_phys = pv;
        release_block(b);
        b = pv;
    }
    insert_free(b);
    return {};
}

Heap::Stats Heap::stats() const {
    auto held = mem_->lock();
    Stats st;
    for (const Block* first : seg_first_)
        for (const Block* b = first; b != nullptr; b = b->next_phys) {
            if (b->free) {
                st.free_bytes += b->size;
                st.free_blocks++;
                st.largest_free = std::max(st.largest_free, b->size);
            } else {
                st.used_blocks++;
            }
        }
    return st;
}

Result<void> Heap::check() const {
    auto held = mem_->lock();
    const auto broken = [](const std::string& what) {
        return fail(Error(EPROTO, "heap invariant broken: " + what));
    };
    std::size_t free_seen = 0, used_seen = 0;
    std::uint64_t used_bytes = 0;
    for (std::size_t i = 0; i < segs_.size(); ++i) {
        const Segment* s = segs_[i];
        std::uint64_t at = s->va;
        const Block* prev = nullptr;
        for (const Block* b = seg_first_[i]; b != nullptr; prev = b, b = b->next_phys) {
            if (b->addr != at || b->size == 0 || b->size % kGrain != 0)
                return broken("segment " + std::to_string(i) + ": block at " +
                              std::to_string(b->addr) + " does not follow its neighbour");
            if (b->prev_phys != prev)
                return broken("a block's previous neighbour link is wrong");
            if (b->free && prev != nullptr && prev->free)
                return broken("two free neighbours were not merged");
            at += b->size;
            if (b->free) {
                ++free_seen;
                const Class c = class_of<kSlBits>(b->size / kGrain);
                const Block* e = heads_[c.fl][c.sl];
                while (e != nullptr && e != b)
                    e = e->next_free;
                if (e == nullptr)
                    return broken("a free block of " + std::to_string(b->size) +
                                  " bytes is not in its class list");
            } else {
                ++used_seen;
                used_bytes += b->size;
                const std::size_t mask = table_.size() - 1;
                std::size_t k = table_.empty() ? 0 : table_slot(b->addr);
                while (!table_.empty() && table_[k] != nullptr && table_[k] != b)
                    k = (k + 1) & mask;
                if (table_.empty() || table_[k] != b)
                    return broken("a used block is not in the address table");
            }
        }
        if (at != s->va + s->len / kGrain * kGrain)
            return broken("segment " + std::to_string(i) + "'s blocks do not cover it");
    }
    std::size_t listed = 0;
    for (unsigned f = 0; f < kFl; ++f) {
        if (((fl_map_ >> f) & 1) != (sl_map_[f] != 0))
            return broken("first-level bitmap bit " + std::to_string(f) + " is wrong");
        for (unsigned sl = 0; sl < kSl; ++sl) {
            if (((sl_map_[f] >> sl) & 1) != (heads_[f][sl] != nullptr))
                return broken("second-level bitmap bit " + std::to_string(sl) + " of class " +
                              std::to_string(f) + " is wrong");
            for (const Block* e = heads_[f][sl]; e != nullptr; e = e->next_free) {
                const Class c = class_of<kSlBits>(e->size / kGrain);
                if (!e->free || c.fl != f || c.sl != sl)
                    return broken("a class list holds a block of another class");
                ++listed;
            }
        }
    }
    if (listed != free_seen)
        return broken(std::to_string(listed) + " blocks listed free, " +
                      std::to_string(free_seen) + " free in the segments");
    if (table_used_ != used_seen)
        return broken(std::to_string(table_used_) + " blocks in the address table, " +
                      std::to_string(used_seen) + " used in the segments");
    if (used_bytes != in_use_)
        return broken("bytes_in_use() is " + std::to_string(in_use_) + ", the used blocks hold " +
                      std::to_string(used_bytes));
    return {};
}

// --- ObjectPool -------------------------------------------------------------------

Result<ObjectPool> ObjectPool::create(Heap& heap, std::uint64_t obj_size, std::size_t count,
                                      std::uint64_t align, unsigned cache_size) {
    if (obj_size == 0 || count == 0)
        return fail(EINVAL, "object pool: object size and count must be non-zero");
    if (align < 64)
        align = 64;
    const std::string what = "object pool of " + std::to_string(count) + " x " +
                             std::to_string(obj_size) + " bytes";
    if ((align & (align - 1)) != 0)
        return fail(EINVAL, what + ": alignment " + std::to_string(align) +
                                " is not a power of two");
    std::uint64_t stride = 0, total = 0;
    if (__builtin_add_overflow(obj_size, align - 1, &stride) ||
        __builtin_mul_overflow(stride / align * align, static_cast<std::uint64_t>(count), &total))
        return fail(EOVERFLOW, what + ": the size does not fit in 64 bits");
    stride = stride / align * align;
    if (count > (std::size_t{1} << 31))
        return fail(EINVAL, what + ": at most 2^31 objects");
    if (cache_size > kMaxCacheSize)
        return fail(EINVAL, what + ": cache_size " + std::to_string(cache_size) +
                                " is above kMaxCacheSize (" + std::to_string(kMaxCacheSize) + ")");
    // DPDK's rule: a few lcores' caches must not be able to hold the whole
    // pool while another lcore finds it empty.
    if (std::uint64_t{cache_size} * 3 > std::uint64_t{count} * 2)
        return fail(Error(EINVAL, what + ": cache_size " + std::to_string(cache_size) +
                                      " is above count / 1.5")
                        .hint("make the pool bigger or the cache smaller"));
    auto base = heap.alloc(total, align);
    if (!base)
        return fail(std::move(base.error()).context(what));
    return ObjectPool(heap, *base, stride, count, cache_size);
}

void ObjectPool::FreeAligned::operator()(std::byte* p) const {
    ::operator delete(p, std::align_val_t{64});
}

ObjectPool::ObjectPool(Heap& h, void* base, std::uint64_t stride, std::size_t count,
                       unsigned cache_size)
    : heap_(&h), base_(base), stride_(stride), count_(count) {
    using Ring = detail::PtrRing<void>;
    const auto n = static_cast<std::uint32_t>(count);
    const std::uint32_t slots = Ring::slots_for(n);
    const std::size_t caches_off = (Ring::bytes(slots) + 63) / 64 * 64;
    const std::size_t bytes =
        caches_off + std::size_t{detail::cache_stride(cache_size, sizeof(void*))} * kMaxLcores;
    store_.reset(static_cast<std::byte*>(::operator new(bytes, std::align_val_t{64})));
    auto* ring = new (store_.get()) Ring(slots);
    core_ = detail::PoolCore<void>(ring, store_.get() + caches_off, cache_size);
    // In address order, so get() hands out the lowest address first.
    for (std::size_t i = 0; i < count; ++i) {
        void* o = static_cast<char*>(base) + i * stride;
        ring->enqueue(&o, 1, true);
    }
#ifndef NDEBUG
    checks_ = true;
    in_pool_.assign(count, 1);
#endif
}

ObjectPool::ObjectPool(ObjectPool&& o) noexcept
    : core_(o.core_), checks_(o.checks_), heap_(o.heap_), base_(std::exchange(o.base_, nullptr)),
      stride_(o.stride_), count_(o.count_), store_(std::move(o.store_)),
      in_pool_(std::move(o.in_pool_)) {}

ObjectPool::~ObjectPool() {
    if (base_)
        (void)heap_->free(base_);
}

// Index of an object by its offset: a shift when the stride is a power of
// two (the common case), so the debug checks cost no division there.
std::size_t ObjectPool::index_of(const void* obj) const {
    const auto off = static_cast<std::uint64_t>(static_cast<const char*>(obj) -
                                                static_cast<const char*>(base_));
    return static_cast<std::size_t>((stride_ & (stride_ - 1)) == 0
                                        ? off >> __builtin_ctzll(stride_)
                                        : off / stride_);
}

void ObjectPool::note_get(void* const* objs, unsigned n) {
    for (unsigned i = 0; i < n; ++i) {
        const std::size_t idx = index_of(objs[i]);
        std::atomic_ref<std::uint8_t>(in_pool_[idx]).store(0, std::memory_order_relaxed);
    }
}

void ObjectPool::note_put(void* const* objs, unsigned n) {
    for (unsigned i = 0; i < n; ++i) {
        void* obj = objs[i];
        if (!owns(obj)) {
            std::fprintf(stderr, "vfiokit: object pool %p: put of %p, which is not one of its %zu "
                                 "objects\n", base_, obj, count_);
            std::abort();
        }
        const std::size_t idx = index_of(obj);
        // One lcore's double put is caught for sure; two lcores putting
        // the same object at once may both pass (a best-effort check, as
        // DPDK's cookies are).
        std::atomic_ref<std::uint8_t> flag(in_pool_[idx]);
        if (flag.load(std::memory_order_relaxed) != 0) {
            std::fprintf(stderr, "vfiokit: object pool %p: double put of object %zu (%p)\n", base_,
                         idx, obj);
            std::abort();
        }
        flag.store(1, std::memory_order_relaxed);
    }
}

bool ObjectPool::owns(const void* obj) const {
    const auto a = reinterpret_cast<std::uintptr_t>(obj);
    const auto b = reinterpret_cast<std::uintptr_t>(base_);
    if (a < b || a >= b + stride_ * count_)
        return false;
    return (stride_ & (stride_ - 1)) == 0 ? ((a - b) & (stride_ - 1)) == 0 : (a - b) % stride_ == 0;
}

}  // namespace vfiokit::eal

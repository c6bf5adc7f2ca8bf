#include "vfiokit/eal/heap.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace vfiokit::eal {

Heap::Heap(Memory& mem, int node, std::uint64_t chunk) : mem_(&mem), node_(node), chunk_(chunk) {
    const std::uint64_t pg = mem.page_size();
    chunk_ = (chunk_ + pg - 1) / pg * pg;
}

Heap::~Heap() {
    auto held = mem_->lock();
    for (const Segment* s : segs_)
        (void)mem_->remove(s);
}

Result<void> Heap::grow(std::uint64_t at_least, bool exact) {
    auto held = mem_->lock();
    auto s = mem_->add(exact ? at_least : std::max(chunk_, at_least), node_);
    if (!s)
        return fail(std::move(s.error())
                        .context("heap" + (node_ >= 0 ? " on node " + std::to_string(node_) : "")));
    segs_.push_back(*s);
    free_.emplace((*s)->va, (*s)->len);
    seg_end_.emplace((*s)->va, (*s)->va + (*s)->len);
    return {};
}

Result<void*> Heap::alloc(std::uint64_t size, std::uint64_t align) {
    auto held = mem_->lock();
    if (align < 64)
        align = 64;
    if (size == 0 || (align & (align - 1)) != 0)
        return fail(EINVAL, "heap alloc: size must be non-zero and alignment a power of two");
    // Checked before rounding up, which would wrap near 2^64 (SIZE_MAX
    // became a 0-byte block).
    if (size > chunk_ || align > chunk_)
        return fail(Error(EINVAL, "heap alloc of " + std::to_string(size) + " bytes, aligned to " +
                                      std::to_string(align) + ": larger than a segment (" +
                                      std::to_string(chunk_) + " bytes)")
                        .hint("create the heap with a larger chunk"));
    size = (size + 63) / 64 * 64;
    if (size > chunk_)
        return fail(Error(EINVAL, "heap alloc of " + std::to_string(size) + " bytes: larger than a "
                                      "segment (" + std::to_string(chunk_) + " bytes)")
                        .hint("create the heap with a larger chunk"));
    for (int attempt = 0; attempt < 2; ++attempt) {
        for (auto it = free_.begin(); it != free_.end(); ++it) {
            const std::uint64_t start = it->first, len = it->second;
            const std::uint64_t at = (start + align - 1) & ~(align - 1);
            if (at + size > start + len)
                continue;
            // Split: [start, at) stays free, [at, at+size) used, the tail free.
            free_.erase(it);
            if (at > start)
                free_.emplace(start, at - start);
            if (at + size < start + len)
                free_.emplace(at + size, start + len - at - size);
            used_.emplace(at, size);
            in_use_ += size;
            return reinterpret_cast<void*>(at);
        }
        if (attempt == 0)
            if (auto ok = grow(size + align); !ok)
                return fail(std::move(ok.error()));
    }
    return fail(ENOMEM, "heap alloc: no fit after growing");  // unreachable by construction
}

Result<void> Heap::free(void* p) {
    auto held = mem_->lock();
    if (p == nullptr)
        return {};
    const auto a = reinterpret_cast<std::uint64_t>(p);
    auto u = used_.find(a);
    if (u == used_.end())
        return fail(EINVAL, "heap free: pointer was not allocated by this heap");
    std::uint64_t start = a, len = u->second;
    in_use_ -= len;
    used_.erase(u);
    // The segment holding it: merges never cross segment boundaries (two
    // segments may be adjacent in VA but are separate DMA mappings).
    auto seg = std::prev(seg_end_.upper_bound(a));
    const std::uint64_t seg_lo = seg->first, seg_hi = seg->second;
    auto next = free_.lower_bound(start);
    if (next != free_.end() && next->first == start + len && next->first < seg_hi) {
        len += next->second;
        next = free_.erase(next);
    }
    if (next != free_.begin()) {
        auto prev = std::prev(next);
        if (prev->first + prev->second == start && prev->first >= seg_lo) {
            start = prev->first;
            len += prev->second;
            free_.erase(prev);
        }
    }
    free_.emplace(start, len);
    return {};
}

// --- ObjectPool -------------------------------------------------------------------

Result<ObjectPool> ObjectPool::create(Heap& heap, std::uint64_t obj_size, std::size_t count,
                                      std::uint64_t align) {
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
    auto base = heap.alloc(total, align);
    if (!base)
        return fail(std::move(base.error()).context(what));
    return ObjectPool(heap, *base, stride, count);
}

ObjectPool::ObjectPool(Heap& h, void* base, std::uint64_t stride, std::size_t count)
    : heap_(&h), base_(base), stride_(stride), count_(count) {
    free_.reserve(count);
#ifndef NDEBUG
    in_pool_.assign(count, 1);
#endif
    // Reverse, so get() hands out the lowest address first.
    for (std::size_t i = count; i-- > 0;)
        free_.push_back(static_cast<char*>(base) + i * stride);
}

ObjectPool::ObjectPool(ObjectPool&& o) noexcept
    : heap_(o.heap_), base_(std::exchange(o.base_, nullptr)), stride_(o.stride_), count_(o.count_),
      free_(std::move(o.free_)), in_pool_(std::move(o.in_pool_)) {}

ObjectPool::~ObjectPool() {
    if (base_)
        (void)heap_->free(base_);
}

void* ObjectPool::get() {
    if (free_.empty())
        return nullptr;
    void* p = free_.back();
    free_.pop_back();
#ifndef NDEBUG
    in_pool_[(static_cast<char*>(p) - static_cast<char*>(base_)) / stride_] = 0;
#endif
    return p;
}

void ObjectPool::put(void* obj) {
#ifndef NDEBUG
    if (!owns(obj)) {
        std::fprintf(stderr, "vfiokit: object pool %p: put of %p, which is not one of its %zu "
                             "objects\n", base_, obj, count_);
        std::abort();
    }
    const auto idx =
        static_cast<std::size_t>((static_cast<char*>(obj) - static_cast<char*>(base_)) / stride_);
    if (in_pool_[idx]) {
        std::fprintf(stderr, "vfiokit: object pool %p: double put of object %zu (%p)\n", base_,
                     idx, obj);
        std::abort();
    }
    in_pool_[idx] = 1;
#endif
    free_.push_back(obj);
}

bool ObjectPool::owns(const void* obj) const {
    const auto a = reinterpret_cast<std::uintptr_t>(obj);
    const auto b = reinterpret_cast<std::uintptr_t>(base_);
    return a >= b && a < b + stride_ * count_ && (a - b) % stride_ == 0;
}

}  // namespace vfiokit::eal

// What the mbuf unit tests share: EAL memory of 4 KiB pages (no
// hugepages, no VFIO: IOVA = VA), a heap on it, and a pool that is
// destroyed at scope exit. Tests only.
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "vfiokit/eal/heap.hpp"
#include "vfiokit/mbuf/mbuf.hpp"

namespace vfiokit::mbuf::testing {

struct Env {
    std::unique_ptr<eal::Memory> mem;
    std::unique_ptr<eal::Heap> heap;
    Env() {
        eal::MemoryOptions o;
        o.no_huge = true;
        o.window = 512ULL << 20;
        auto m = eal::Memory::create(o);
        if (!m) {
            ADD_FAILURE() << m.error().message();
            return;
        }
        mem = std::move(*m);
        heap = std::make_unique<eal::Heap>(*mem, -1, 64ULL << 20);
    }
};

// Destroys the pool when it goes; a test that left mbufs out fails here.
struct PoolGuard {
    MbufPool* p = nullptr;
    explicit PoolGuard(Result<MbufPool*> r) {
        if (r)
            p = *r;
        else
            ADD_FAILURE() << r.error().message();
    }
    ~PoolGuard() {
        if (p)
            if (auto ok = MbufPool::destroy(p); !ok)
                ADD_FAILURE() << ok.error().message();
    }
    PoolGuard(const PoolGuard&) = delete;
    PoolGuard& operator=(const PoolGuard&) = delete;
    MbufPool* operator->() const { return p; }
    explicit operator bool() const { return p != nullptr; }
};

}  // namespace vfiokit::mbuf::testing

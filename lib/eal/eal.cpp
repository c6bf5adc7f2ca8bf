#include "vfiokit/eal/eal.hpp"

namespace vfiokit::eal {

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
    std::unique_ptr<Eal> e(new Eal());
    e->opts_ = o;
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
    e->listener_ = std::make_unique<ContainerDmaListener>(dc);
    e->memory_ = std::move(*m);
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
    return e;
}

Eal::~Eal() {
    heaps_.clear();
    memory_.reset();
    listener_.reset();
    vfio_.reset();
}

Heap& Eal::heap(int node) {
    auto& h = heaps_[node];
    if (!h)
        h = std::make_unique<Heap>(*memory_, node);
    return *h;
}

}  // namespace vfiokit::eal

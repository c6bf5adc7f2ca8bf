// The environment abstraction layer of one process: options, VFIO, memory.
//
//   int first_app_arg;
//   auto eal = vfiokit::eal::Eal::init(argc, argv, &first_app_arg);
//   if (!eal) { fprintf(stderr, "%s\n", eal.error().message().c_str()); return 1; }
//   void* buf = *(*eal)->heap().alloc(4096);          // DMA-able, mapped
//   uint64_t iova = *(*eal)->virt2iova(buf);
//
// init() picks the VFIO mode and opens the default container, reserves the
// memory window, connects memory events to the default container (every
// segment is mapped for DMA as it is added, unmapped before it goes), and
// reserves the start-up memory (-m or --socket-mem). The IOVA mode follows
// the VFIO mode unless forced: va where an IOMMU translates, pa without one.
// A failure at any step undoes the earlier ones.
#pragma once

#include <map>
#include <memory>
#include <optional>

#include "vfiokit/eal/error.hpp"
#include "vfiokit/eal/heap.hpp"
#include "vfiokit/eal/memory.hpp"
#include "vfiokit/eal/memory_dma.hpp"
#include "vfiokit/eal/options.hpp"
#include "vfiokit/eal/vfio/vfio.hpp"

namespace vfiokit::eal {

class Eal {
public:
    [[nodiscard]] static Result<std::unique_ptr<Eal>> init(int argc, const char* const* argv,
                                                           int* first_app_arg = nullptr);
    [[nodiscard]] static Result<std::unique_ptr<Eal>> init(const Options& o);
    ~Eal();
    Eal(const Eal&) = delete;
    Eal& operator=(const Eal&) = delete;

    [[nodiscard]] const Options& options() const { return opts_; }
    [[nodiscard]] vfio::Vfio& vfio() const { return *vfio_; }
    [[nodiscard]] Memory& memory() const { return *memory_; }
    [[nodiscard]] IovaMode iova_mode() const { return memory_->iova_mode(); }
    // The heap of a NUMA node (-1: no placement), created on first use.
    [[nodiscard]] Heap& heap(int node = -1);
    [[nodiscard]] std::optional<std::uint64_t> virt2iova(const void* p) const {
        return memory_->virt2iova(p);
    }

private:
    Eal() = default;
    Options opts_;
    // Teardown runs bottom-up: heaps give their segments back, memory
    // unmaps them through the listener, then VFIO closes the container.
    std::unique_ptr<vfio::Vfio> vfio_;
    std::unique_ptr<ContainerDmaListener> listener_;
    std::unique_ptr<Memory> memory_;
    std::map<int, std::unique_ptr<Heap>> heaps_;
};

}  // namespace vfiokit::eal

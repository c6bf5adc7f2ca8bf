// edu-dma: a minimal DMA program on vfiokit, on QEMU's edu test device.
// Built against an installed vfiokit with pkg-config only (Makefile);
// doc/install.md.
//
//   edu-dma-shared -a 0000:00:03.0            # the edu, bound to vfio-pci
//   edu-dma-shared --drivers                  # the drivers linked in, no EAL
//
// Eal::init takes the VFIO mode (automatic, or --vfio-mode/VFIOKIT_VFIO_MODE)
// and probes the edu with the driver the library registered. The program
// then allocates DMA memory from the EAL heap (mapped for DMA as it is
// allocated), fills it with a pattern, has the device copy it into its
// buffer (RAM -> device) and back into a second, zeroed allocation
// (device -> RAM), and compares. Exit 0 only when every byte came back.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string_view>

#include "vfiokit/bus/pci/driver.hpp"
#include "vfiokit/eal/eal.hpp"
#include "vfiokit/eal/vfio/probe.hpp"
#include "vfiokit/testdev/edu.hpp"

namespace {

using namespace vfiokit;

// The largest transfer the device takes (edu.hpp, kMaxTransfer).
constexpr std::uint64_t kLen = edu::kMaxTransfer;

// The registered drivers, one a line: what `make static` must keep too.
int list_drivers() {
    for (const pci::Driver* d : pci::registered_drivers())
        std::printf("%.*s\n", static_cast<int>(d->name().size()), d->name().data());
    return 0;
}

int run(int argc, char** argv) {
    if (argc == 2 && std::string_view(argv[1]) == "--drivers")
        return list_drivers();
    auto eal = eal::Eal::init(argc, argv);
    if (!eal) {
        std::fprintf(stderr, "edu-dma: EAL: %s\n", eal.error().message().c_str());
        return 1;
    }
    const auto report = (*eal)->device_report();
    edu::EduDevice* dev = nullptr;
    PciAddress addr;
    for (const auto& r : report)
        if (r.probed && r.driver == "edu" && (dev = edu::driver().find(r.addr)) != nullptr) {
            addr = r.addr;
            break;
        }
    if (dev == nullptr) {
        std::fprintf(stderr, "edu-dma: no edu probed: give one bound to vfio-pci with -a BDF\n");
        return 1;
    }
    eal::Heap& heap = (*eal)->heap();
    auto src = heap.alloc(kLen, 4096);
    auto dst = heap.alloc(kLen, 4096);
    if (!src || !dst) {
        std::fprintf(stderr, "edu-dma: DMA memory: %s\n",
                     (!src ? src.error() : dst.error()).message().c_str());
        return 1;
    }
    auto* out = static_cast<std::uint8_t*>(*src);
    auto* back = static_cast<std::uint8_t*>(*dst);
    for (std::uint64_t i = 0; i < kLen; ++i)
        out[i] = static_cast<std::uint8_t>(i * 7 + 3);
    std::memset(back, 0, kLen);
    const auto src_iova = (*eal)->virt2iova(out);
    const auto dst_iova = (*eal)->virt2iova(back);
    int rc = 1;
    if (!src_iova || !dst_iova) {
        std::fprintf(stderr, "edu-dma: no IOVA for the heap's memory\n");
    } else if (auto r = dev->dma_to_device(*src_iova, 0, kLen); !r) {
        std::fprintf(stderr, "edu-dma: RAM -> device: %s\n", r.error().message().c_str());
    } else if (auto b = dev->dma_to_ram(*dst_iova, 0, kLen); !b) {
        std::fprintf(stderr, "edu-dma: device -> RAM: %s\n", b.error().message().c_str());
    } else {
        std::uint64_t diff = 0;
        for (std::uint64_t i = 0; i < kLen; ++i)
            diff += out[i] != back[i];
        std::printf("edu-dma: %s, VFIO mode %.*s: %llu bytes from IOVA 0x%llx to the device "
                    "and back to IOVA 0x%llx, %llu differ\n",
                    addr.str().c_str(),
                    static_cast<int>(vfio::to_string((*eal)->vfio().mode()).size()),
                    vfio::to_string((*eal)->vfio().mode()).data(),
                    static_cast<unsigned long long>(kLen),
                    static_cast<unsigned long long>(*src_iova),
                    static_cast<unsigned long long>(*dst_iova),
                    static_cast<unsigned long long>(diff));
        rc = diff == 0 ? 0 : 1;
    }
    (void)heap.free(out);
    (void)heap.free(back);
    return rc;
}

}  // namespace

int main(int argc, char** argv) { return run(argc, argv); }

// The doorbell write, three ways, over a fake BAR (a memfd mapped like a
// NIC's register BAR): each is a function of its own that writes a ring's
// tail register once, called `--writes` times, so that callgrind's
// instruction count of each function per call is the cost of one write
// (devtools/bench-doorbell.sh runs it and prints those counts):
//
//   raw          a volatile 32-bit store into the mapping, what a C driver
//                does with a pointer it keeps (DPDK's rte_write32 after
//                rte_io_wmb, which is a compiler barrier on x86)
//   bar-write    Tdt::zero().set_index(i).write(bar): the typed register
//                through Bar::write, which checks that the offset lies in
//                the mapped part
//   doorbell     the same value through an ethdev::Doorbell (a pointer into
//                the mapped BAR, valid in secondaries too): what the em and
//                igb burst functions keep
//
// Without valgrind it also prints the time per write, which on a real CPU
// is the store's cost into ordinary memory, not a device's.
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "vfiokit/bus/pci/bar.hpp"
#include "vfiokit/bus/pci/register.hpp"
#include "vfiokit/ethdev/ethdev.hpp"

namespace {

using vfiokit::pci::Bar;
using vfiokit::pci::Register;

// The 82540EM's transmit descriptor tail (TDT) [SDM 13.4.39]: the register
// the em driver writes once per transmit burst.
struct Tdt : Register<Tdt, std::uint32_t, 0x3818> {
    VFIOKIT_FIELD(15, 0, index)
};
constexpr std::uint64_t kBarSize = 128 * 1024;  // the 82540EM's BAR0

// What each burst function holds: a pointer to its queue's state, from
// which the write starts (as a C driver keeps the tail register's address
// in its queue and writes the 16-bit ring index there).
struct RawQueue {
    volatile std::uint32_t* tdt;
};

// noipa: each stays a real function of its own (no inlining, no cloning
// for the constant arguments), so its instructions are counted alone.
[[gnu::noipa]] void write_raw(const RawQueue* q, std::uint16_t tail) {
    *q->tdt = tail;
}

[[gnu::noipa]] void write_bar(Bar* bar, std::uint16_t tail) {
    Tdt::zero().set_index(tail).write(*bar);
}

[[gnu::noipa]] void write_doorbell(const vfiokit::ethdev::Doorbell* d, std::uint16_t tail) {
    d->ring(Tdt::zero().set_index(tail).raw());
}

template <class F>
double ns_per_write(unsigned long n, F f) {
    const auto t0 = std::chrono::steady_clock::now();
    for (unsigned long i = 0; i < n; ++i)
        f(static_cast<std::uint16_t>(i));
    const auto t1 = std::chrono::steady_clock::now();
    return std::chrono::duration<double, std::nano>(t1 - t0).count() / static_cast<double>(n);
}

}  // namespace

int main(int argc, char** argv) {
    unsigned long writes = 1000000;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--writes") == 0 && i + 1 < argc) {
            writes = std::strtoul(argv[++i], nullptr, 10);
        } else if (std::strcmp(argv[i], "-h") == 0 || std::strcmp(argv[i], "--help") == 0) {
            std::printf("usage: %s [--writes N]\n"
                        "  --writes N   tail-register writes each way: raw, bar-write,\n"
                        "               doorbell (default 1000000)\n"
                        "  -h, --help   this text\n",
                        argv[0]);
            return 0;
        } else {
            std::fprintf(stderr, "usage: %s [--writes N]\n", argv[0]);
            return 2;
        }
    }
    const int fd = ::memfd_create("vfiokit-fake-bar", MFD_CLOEXEC);
    if (fd < 0 || ::ftruncate(fd, kBarSize) != 0) {
        std::perror("memfd for the fake BAR");
        return 1;
    }
    auto map = vfiokit::vfio::map_memory(nullptr, kBarSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0,
                                         "fake BAR");
    ::close(fd);
    if (!map) {
        std::fprintf(stderr, "%s\n", map.error().message().c_str());
        return 1;
    }
    const RawQueue raw{static_cast<volatile std::uint32_t*>(
        static_cast<volatile void*>(static_cast<std::uint8_t*>(map->addr()) + Tdt::offset))};
    std::vector<Bar::Part> parts;
    parts.push_back({0, std::move(*map)});
    // No device operations: every access here is inside the mapping.
    Bar bar(0, nullptr, kBarSize, false, std::move(parts));

    const double t_raw = ns_per_write(writes, [&](std::uint16_t v) { write_raw(&raw, v); });
    const double t_bar = ns_per_write(writes, [&](std::uint16_t v) { write_bar(&bar, v); });
    const vfiokit::ethdev::Doorbell door{raw.tdt};
    const double t_door = ns_per_write(writes, [&](std::uint16_t v) { write_doorbell(&door, v); });
    // The last value each wrote is in the "register": all three reached it.
    const std::uint32_t want = static_cast<std::uint16_t>(writes - 1);
    if (writes > 0 && (*raw.tdt != want || bar.read<std::uint32_t>(Tdt::offset) != want)) {
        std::fprintf(stderr, "the fake BAR holds %u, not %u\n", *raw.tdt, want);
        return 1;
    }
    std::printf("writes per variant: %lu\n", writes);
    std::printf("%-10s %8.2f ns/write\n%-10s %8.2f ns/write\n%-10s %8.2f ns/write\n", "raw", t_raw,
                "bar-write", t_bar, "doorbell", t_door);
    return 0;
}

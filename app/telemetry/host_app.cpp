// telemetry_host_app: a vfiokit process on a host without VFIO, for the
// unit suite's tests of the telemetry clients (DPDK's dpdk-telemetry.py
// and vfiokit-telemetry) against real state: EAL options parsed as
// Eal::init parses them, lcores, EAL memory of 4 KiB pages, an mbuf pool
// mb_pool_0, and two net_ring ports wired back to back that carry --tx N
// frames of 64 bytes from port 0 to port 1 before it starts serving. It
// serves everything Eal::init's telemetry serves but /vfio/* (which say
// that this process has no VFIO).
//
//   RUNTIME_DIRECTORY=/tmp/x telemetry_host_app -l 0 --file-prefix p -- --tx 100
//
// Prints "ready <socket>" and what it moved, then serves until stdin
// closes. Exit status 0, or 1 with the reason on stderr.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "ring.hpp"
#include "vfiokit/eal/heap.hpp"
#include "vfiokit/eal/lcore.hpp"
#include "vfiokit/eal/memory.hpp"
#include "vfiokit/eal/options.hpp"
#include "vfiokit/ethdev/ethdev.hpp"
#include "vfiokit/mbuf/mbuf.hpp"
#include "vfiokit/telemetry/telemetry.hpp"

namespace {

using namespace vfiokit;

int die(const std::string& what, const Error& e) {
    std::fprintf(stderr, "telemetry_host_app: %s: %s\n", what.c_str(), e.message().c_str());
    return 1;
}

int run(int argc, char** argv) {
    eal::Options o;
    auto first = eal::parse_options(argc, argv, o);
    if (!first)
        return die("options", first.error());
    unsigned tx = 100;
    for (int i = *first; i < argc; ++i)
        if (std::string_view(argv[i]) == "--tx" && i + 1 < argc)
            tx = static_cast<unsigned>(std::strtoul(argv[++i], nullptr, 10));
    auto lcores = eal::Lcores::start(o.lcores, o.main_lcore_id());
    if (!lcores)
        return die("lcores", lcores.error());
    eal::MemoryOptions mo;
    mo.no_huge = true;
    mo.window = 512ULL << 20;
    auto mem = eal::Memory::create(mo);
    if (!mem)
        return die("memory", mem.error());
    auto heap = std::make_unique<eal::Heap>(**mem, -1, 32ULL << 20);
    auto pool = mbuf::MbufPool::create(*heap, "mb_pool_0", 2048, 32, 0, mbuf::kDefaultDataRoom);
    if (!pool)
        return die("mbuf pool", pool.error());
    auto pair = net::ring::attach_pair();
    if (!pair)
        return die("net_ring ports", pair.error());
    for (std::uint16_t port : {pair->a, pair->b}) {
        if (auto ok = ethdev::configure(port, 1, 1, {}); !ok)
            return die("configure", ok.error());
        if (auto ok = ethdev::rx_queue_setup(port, 0, 512, -1, {}, **pool); !ok)
            return die("rx queue", ok.error());
        if (auto ok = ethdev::tx_queue_setup(port, 0, 512, -1, {}); !ok)
            return die("tx queue", ok.error());
        if (auto ok = ethdev::start(port); !ok)
            return die("start", ok.error());
    }
    // Frames 0 -> 1, in bursts the ring takes whole.
    unsigned sent = 0, got = 0;
    while (sent < tx) {
        mbuf::Mbuf* m[32];
        const unsigned n = std::min(32u, tx - sent);
        for (unsigned k = 0; k < n; ++k) {
            m[k] = (*pool)->alloc();
            if (m[k] == nullptr)
                return die("alloc", Error(ENOMEM, "mb_pool_0 is empty"));
            std::memset(m[k]->append(64), 0xab, 64);
        }
        sent += ethdev::tx_burst(pair->a, 0, m, static_cast<std::uint16_t>(n));
        mbuf::Mbuf* r[32];
        for (std::uint16_t k; (k = ethdev::rx_burst(pair->b, 0, r, 32)) > 0; got += k)
            for (std::uint16_t j = 0; j < k; ++j)
                r[j]->free();
    }
    telemetry::EalParts parts;
    parts.eal_args = o.eal_args;
    parts.app_args = o.app_args;
    parts.lcores = lcores->get();
    parts.memory = mem->get();
    parts.heaps = [h = heap.get()] { return std::vector<const eal::Heap*>{h}; };
    auto tel = telemetry::Telemetry::start(o.file_prefix, std::move(parts));
    if (!tel)
        return die("telemetry", tel.error());
    std::cout << "ready " << (*tel)->server().path() << "\n"
              << "port " << pair->a << " sent " << sent << " frames of 64 bytes to port "
              << pair->b << ", which received " << got << "\n"
              << std::flush;
    // Serve until the test closes stdin.
    for (char c; ::read(STDIN_FILENO, &c, 1) > 0;)
        ;
    tel->reset();
    for (std::uint16_t port : {pair->a, pair->b})
        (void)ethdev::close(port);
    net::ring::detach_pair(*pair);
    if (auto ok = mbuf::MbufPool::destroy(*pool); !ok)
        return die("mbuf pool", ok.error());
    return 0;
}

}  // namespace

int main(int argc, char** argv) { return run(argc, argv); }

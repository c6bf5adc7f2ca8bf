// A secondary process drives the primary's devices: DMA through QEMU's edu,
// from memory the primary allocated, through the default container and a
// custom one, in every VFIO mode. The primary checks the bytes.
//
//   VFIOKIT_VFIO_MODE=cdev VFIOKIT_LAB_SHAPE=iommu mp_device_lab_test
//
// The same binary, exec'd as "--secondary PREFIX DEVICE SRC DST LEN T0 BAR0",
// is the secondary (a fresh process image, as a real secondary would be).
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>

#include "edu.hpp"
#include "lab_env.hpp"
#include "vfiokit/bus/pci/device.hpp"
#include "vfiokit/eal/eal.hpp"
#include "vfiokit/eal/mp.hpp"

namespace vfiokit::eal {
namespace {

using testing::iommu_shape;
using testing::mode_label;

std::uint64_t now_ms() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::steady_clock::now().time_since_epoch())
                                          .count());
}

std::uint64_t edu_mask() { return iommu_shape() ? edu::kDefaultDmaMask : 0xffffffffULL; }

// EAL options shared by both roles: the mode from the environment, the
// default memory window (the IOVA policy meets the edu's mask, below).
Options options(const std::string& prefix, ProcType role) {
    Options o;
    o.vfio.mode = std::nullopt;
    if (auto ok = vfio::apply_environment(o.vfio); !ok)
        ADD_FAILURE() << ok.error().message();
    o.memory_mb = 8;
    o.multi_process = true;
    o.file_prefix = prefix;
    o.proc_type = role;
    return o;
}

// The secondary: attach, find the device among the primary's, DMA src ->
// device -> dst. Exit codes say where it failed.
int secondary_main(char** argv) {
    const std::string prefix = argv[2];
    auto addr = PciAddress::parse(argv[3]);
    const auto src = std::strtoull(argv[4], nullptr, 0);
    const auto dst = std::strtoull(argv[5], nullptr, 0);
    const auto len = std::strtoull(argv[6], nullptr, 0);
    const std::uint64_t t0 = std::strtoull(argv[7], nullptr, 0);
    const std::uint64_t bar0_at = std::strtoull(argv[8], nullptr, 0);
    auto e = Eal::init(options(prefix, ProcType::secondary));
    if (!e) {
        std::fprintf(stderr, "secondary: %s\n", e.error().message().c_str());
        return 10;
    }
    const std::uint64_t attached = now_ms();
    vfio::Device* d = (*e)->vfio().find_device(*addr);
    if (d == nullptr)
        return 11;
    pci::PciDevice pd(*d);
    // BAR0 where the primary has it, when it said where.
    if (bar0_at != 0) {
        auto bar = pd.map_bar(0, bar0_at);
        if (!bar) {
            std::fprintf(stderr, "secondary: %s\n", bar.error().message().c_str());
            return 16;
        }
        if (reinterpret_cast<std::uint64_t>(bar->parts().front().map.addr()) != bar0_at)
            return 17;
        bar->write<std::uint32_t>(0x04, 0x5a5a1234);  // edu liveness: reads back inverted
        if (bar->read<std::uint32_t>(0x04) != ~0x5a5a1234u)
            return 18;
        std::printf("secondary mapped %s BAR0 at the primary's address 0x%" PRIx64
                    "; liveness ok\n", addr->str().c_str(), bar0_at);
    }
    auto edu = edu::EduDevice::open(pd, edu_mask());
    if (!edu) {
        std::fprintf(stderr, "secondary: %s\n", edu.error().message().c_str());
        return 12;
    }
    auto si = (*e)->virt2iova(reinterpret_cast<void*>(src));
    auto di = (*e)->virt2iova(reinterpret_cast<void*>(dst));
    if (!si || !di)
        return 13;
    if (auto ok = (*edu)->dma_to_device(*si, 0, len); !ok) {
        std::fprintf(stderr, "secondary: %s\n", ok.error().message().c_str());
        return 14;
    }
    if (auto ok = (*edu)->dma_to_ram(*di, 0, len); !ok) {
        std::fprintf(stderr, "secondary: %s\n", ok.error().message().c_str());
        return 15;
    }
    const std::uint64_t done = now_ms();
    std::printf("secondary attach time (%s, %s): %" PRIu64 " ms to attached, %" PRIu64
                " ms to first DMA done\n",
                mode_label().c_str(), addr->str().c_str(), attached - t0, done - t0);
    std::fflush(stdout);
    return 0;
}

// Runs the secondary and returns its exit status.
int run_secondary(const std::string& prefix, const char* dev, const void* src, const void* dst,
                  std::size_t len, std::uint64_t bar0_at = 0) {
    const std::string exe = testing::self_exe();
    if (exe.empty())
        return 100;
    const std::string s = std::to_string(reinterpret_cast<std::uintptr_t>(src));
    const std::string d = std::to_string(reinterpret_cast<std::uintptr_t>(dst));
    const std::string l = std::to_string(len), t = std::to_string(now_ms());
    const std::string b = std::to_string(bar0_at);
    std::fflush(stdout);
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::execl(exe.c_str(), exe.c_str(), "--secondary", prefix.c_str(), dev, s.c_str(), d.c_str(), l.c_str(),
                t.c_str(), b.c_str(), static_cast<char*>(nullptr));
        std::_Exit(101);
    }
    int st = 0;
    ::waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

class MpDevice : public ::testing::TestWithParam<std::string> {};

TEST_P(MpDevice, SecondaryDmasThroughThePrimarysDevices) {
    const std::string prefix = "devtest-" + mode_label();
    auto e = Eal::init(options(prefix, ProcType::primary));
    ASSERT_TRUE(e) << e.error().message();
    ASSERT_EQ((*e)->proc_type(), ProcType::primary);
    vfio::Vfio& v = (*e)->vfio();
    ASSERT_TRUE(v.assign_device(v.default_container(), "0000:00:03.0"));
    // What the edu driver's probe does: the primary's memory goes under the
    // edu's mask before any secondary attaches (secondaries take the
    // IOVAs they are given at attach time).
    ASSERT_TRUE(v.default_container().require_dma_mask(edu_mask(), "edu 0000:00:03.0"));
    Heap& h = (*e)->heap();
    constexpr std::size_t kLen = 2048;
    auto src = h.alloc(kLen), dst = h.alloc(kLen);
    ASSERT_TRUE(src && dst);
    auto fill = [&](unsigned seed) {
        for (std::size_t i = 0; i < kLen; ++i)
            static_cast<unsigned char*>(*src)[i] = static_cast<unsigned char>(i * 13 + seed);
        std::memset(*dst, 0, kLen);
    };
    // The primary maps BAR0; the secondary maps it at the same address.
    vfio::Device* d0 = v.find_device(*PciAddress::parse("0000:00:03.0"));
    ASSERT_NE(d0, nullptr);
    pci::PciDevice pd0(*d0);
    auto bar0 = pd0.map_bar(0);
    ASSERT_TRUE(bar0) << bar0.error().message();
    const auto bar0_at = reinterpret_cast<std::uint64_t>(bar0->parts().front().map.addr());
    fill(5);
    ASSERT_EQ(run_secondary(prefix, "0000:00:03.0", *src, *dst, kLen, bar0_at), 0);
    EXPECT_EQ(std::memcmp(*src, *dst, kLen), 0) << "the secondary's DMA did not land";
    std::printf("secondary DMA (%s, default container): %zu bytes verified by the primary\n",
                mode_label().c_str(), kLen);

    // A custom container, with its own device and the heap memory mapped in.
    if (!iommu_shape())
        return;  // the noiommu shape has one edu; no translation to set up anyway
    auto c = v.create_container();
    ASSERT_TRUE(c) << c.error().message();
    ASSERT_TRUE(v.assign_device(**c, "0000:00:04.0"));
    for (const Segment* s : (*e)->memory().segments())
        ASSERT_TRUE((*c)->map(s->va, *s->iova, s->len));
    fill(9);
    ASSERT_EQ(run_secondary(prefix, "0000:00:04.0", *src, *dst, kLen), 0);
    EXPECT_EQ(std::memcmp(*src, *dst, kLen), 0);
    std::printf("secondary DMA (%s, custom container): %zu bytes verified by the primary\n",
                mode_label().c_str(), kLen);
    // The primary's channel survived both secondaries.
    ASSERT_NE((*e)->server(), nullptr);
    EXPECT_GE((*e)->server()->stats().accepted, 2u);
}

// A user admitted with allow_uid gets the primary's info and memory but not
// its container and device fds (eal.vfio keeps the default Policy); opened
// to other uids by set_policy, it gets them with an IOMMU, and in
// no-IOMMU modes still not: there a device fd is DMA anywhere.
TEST_P(MpDevice, OtherUidsGetNoDeviceFdsUnlessAllowed) {
    const std::string prefix = "uidtest-" + mode_label();
    auto e = Eal::init(options(prefix, ProcType::primary));
    ASSERT_TRUE(e) << e.error().message();
    vfio::Vfio& v = (*e)->vfio();
    ASSERT_TRUE(v.assign_device(v.default_container(), "0000:00:03.0"));
    mp::Server* srv = (*e)->server();
    ASSERT_NE(srv, nullptr);
    srv->allow_uid(65534);
    auto base = mp::default_runtime_base();
    ASSERT_TRUE(base);
    const mp::RuntimeDir dir{prefix, *base + "/" + prefix, nullptr};
    // Open the way for uid 65534 (the directory is the first barrier).
    ASSERT_EQ(::chmod(base->c_str(), 0711), 0);
    ASSERT_EQ(::chmod(dir.path.c_str(), 0711), 0);
    ASSERT_EQ(::chmod(dir.socket_path().c_str(), 0666), 0);
    // As nobody: 0 eal.vfio served, 1 refused naming the request and uid,
    // other: unexpected.
    auto as_nobody = [&](const char* must_say) {
        std::fflush(stdout);
        const pid_t pid = ::fork();
        if (pid == 0) {
            if (::setgid(65534) != 0 || ::setuid(65534) != 0)
                std::_Exit(10);
            auto c = mp::Client::connect(dir);
            if (!c) {
                std::printf("nobody: %s\n", c.error().message().c_str());
                std::_Exit(11);
            }
            auto info = (*c)->request(mp::kInfoRequest);
            if (!info)
                std::_Exit(12);
            auto r = (*c)->request(mp::kVfioRequest);
            if (r) {
                std::printf("nobody: eal.vfio served: %zu fds\n", r->fds.size());
                std::_Exit(r->fds.size() >= 2 ? 0 : 13);
            }
            const std::string m = r.error().message();
            std::printf("nobody: %s\n", m.c_str());
            std::fflush(stdout);
            std::_Exit(r.error().err() == EACCES && m.find("uid 65534") != m.npos &&
                               m.find("'eal.vfio'") != m.npos && m.find(must_say) != m.npos
                           ? 1
                           : 14);
        }
        int st = 0;
        ::waitpid(pid, &st, 0);
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    };
    EXPECT_EQ(as_nobody("own uid only"), 1) << "an allow_uid peer got the device fds";
    srv->set_policy(mp::kVfioRequest, mp::Policy{.other_uids = true});
    if (vfio::mode_nodes(v.mode()).translates)
        EXPECT_EQ(as_nobody(""), 0) << "the policy opened eal.vfio to other uids";
    else
        EXPECT_EQ(as_nobody("can DMA anywhere"), 1)
            << "no-IOMMU device fds went to another uid";
    EXPECT_GE(srv->stats().refused_policy, 1u);
    ASSERT_EQ(::chmod(dir.path.c_str(), 0700), 0);
    ASSERT_EQ(::chmod(base->c_str(), 0700), 0);
}

INSTANTIATE_TEST_SUITE_P(Lab, MpDevice, ::testing::Values(mode_label()),
                         [](const auto& p) { return p.param; });

}  // namespace
}  // namespace vfiokit::eal

int main(int argc, char** argv) {
    if (argc == 9 && std::string_view(argv[1]) == "--secondary")
        return vfiokit::eal::secondary_main(argv);
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}

// Mbuf pools on real DMA, in the lab guest, once per VFIO mode: a program
// linked with the registered edu driver calls Eal::init (-a the edu,
// --lcores 0@first,1@last CPU), creates a pool by name from EAL memory,
// and QEMU's edu copies bytes into and out of mbuf data at m->iova(), for
// mbufs spread over the whole pool (first, last, and across the pool's
// pages), on the main lcore and on a worker lcore. If an mbuf's IOVA were
// wrong in any mode (a stale segment IOVA, a buffer straddling two
// hugepages with unrelated physical addresses in pa mode, data_off left
// out), the bytes would not match.
//
//   VFIOKIT_VFIO_MODE=cdev VFIOKIT_LAB_SHAPE=iommu mbuf_lab_test
//
// Test names carry the mode ("Lab/MbufDma.SpreadOverThePool/cdev"). The
// same binary, exec'd as "--secondary PREFIX FD", is a secondary process
// that finds the primary's pool by name and takes mbufs from it.
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "edu.hpp"
#include "lab_env.hpp"
#include "vfiokit/eal/eal.hpp"
#include "vfiokit/eal/format.hpp"
#include "vfiokit/mbuf/mbuf.hpp"

namespace vfiokit::mbuf {
namespace {

using testing::iommu_shape;
using testing::mode_label;

const PciAddress kEdu = *PciAddress::parse("0000:00:03.0");
// The noiommu shape creates its edu with dma_mask=0xffffffff.
std::uint64_t shape_dma_mask() { return iommu_shape() ? edu::kDefaultDmaMask : 0xffffffffULL; }

constexpr unsigned kMbufs = 2047;  // about 4.5 MiB: more than two 2 MiB pages
constexpr unsigned kCache = 64;
constexpr std::uint16_t kLen = 2048;  // the default data room's tailroom

// The first and the last CPU this process may use (the guest has two).
std::pair<unsigned, unsigned> cpu_range() {
    cpu_set_t set;
    CPU_ZERO(&set);
    std::pair<unsigned, unsigned> r{~0u, 0};
    if (::sched_getaffinity(0, sizeof(set), &set) != 0)
        return r;
    for (unsigned c = 0; c < CPU_SETSIZE; ++c)
        if (CPU_ISSET(c, &set)) {
            r.first = std::min(r.first, c);
            r.second = c;
        }
    return r;
}

// Lcores 0 and 1 on the first and the last CPU (DPDK's --lcores).
Result<std::unique_ptr<eal::Eal>> init() {
    const auto [lo, hi] = cpu_range();
    const std::string lcores = "--lcores=0@" + std::to_string(lo) + ",1@" + std::to_string(hi);
    const std::string allow = kEdu.str() + ",dma_mask=" + hex(shape_dma_mask());
    const char* argv[] = {"mbuf_lab_test", lcores.c_str(), "-a", allow.c_str()};
    return eal::Eal::init(4, argv);
}

void fill(Mbuf* m, std::uint8_t seed) {
    for (std::uint16_t i = 0; i < m->data_len; ++i)
        m->data()[i] = static_cast<std::uint8_t>(seed + i * 7 + (i >> 8));
}

// RAM (src's data) -> edu buffer -> RAM (dst's data), through the IOVAs
// the mbufs carry; dst's data is overwritten with a poison first.
void round_trip(edu::EduDevice& dev, Mbuf* src, Mbuf* dst, std::uint8_t seed) {
    ASSERT_EQ(src->data_len, dst->data_len);
    const std::uint16_t len = src->data_len;
    fill(src, seed);
    std::memset(dst->data(), 0x5a, len);
    ASSERT_LE(src->iova() + len - 1, dev.dma_mask()) << "mbuf IOVA beyond the edu's mask";
    ASSERT_LE(dst->iova() + len - 1, dev.dma_mask());
    auto to = dev.dma_to_device(src->iova(), 0, len);
    ASSERT_TRUE(to) << to.error().message();
    auto back = dev.dma_to_ram(dst->iova(), 0, len);
    ASSERT_TRUE(back) << back.error().message();
    ASSERT_EQ(std::memcmp(src->data(), dst->data(), len), 0)
        << "DMA through mbuf IOVAs " << hex(src->iova()) << " -> " << hex(dst->iova())
        << " did not copy the bytes";
}

class MbufDma : public ::testing::TestWithParam<std::string> {};

TEST_P(MbufDma, SpreadOverThePool) {
    auto e = init();
    ASSERT_TRUE(e) << e.error().message();
    eal::Eal& eal = **e;
    edu::EduDevice* dev = edu::driver().find(kEdu);
    ASSERT_NE(dev, nullptr);
    ASSERT_EQ(eal::lcore_id(), 0u);
    ASSERT_EQ(eal.lcores().all(), (std::vector<unsigned>{0, 1}));

    auto created = MbufPool::create("lab_rx", kMbufs, kCache, 0, kDefaultDataRoom);
    ASSERT_TRUE(created) << created.error().message();
    MbufPool* pool = *created;
    EXPECT_EQ(MbufPool::lookup("lab_rx"), pool);

    // Every mbuf: its IOVA is what EAL memory says, under the mask, and in
    // pa mode its buffer stays inside one page (the only contiguous unit).
    std::vector<Mbuf*> all(kMbufs);
    ASSERT_EQ(pool->alloc_bulk(all.data(), kMbufs), 0);
    std::sort(all.begin(), all.end());
    const std::uint64_t pg = eal.memory().page_size();
    const bool pa = eal.iova_mode() == eal::IovaMode::pa;
    std::uint64_t pages_spanned = 0, last_page = ~0ULL;
    for (Mbuf* m : all) {
        ASSERT_EQ(m->buf_iova, *eal.virt2iova(m->buf_addr));
        ASSERT_LE(m->buf_iova + m->buf_len - 1, shape_dma_mask());
        const auto a = reinterpret_cast<std::uint64_t>(m);
        if (pa) {
            ASSERT_EQ(a / pg, (a + sizeof(Mbuf) + m->buf_len - 1) / pg)
                << "mbuf at " << hex(a) << " crosses a " << pg << "-byte page in pa mode";
        }
        if (a / pg != last_page)
            ++pages_spanned;
        last_page = a / pg;
    }
    EXPECT_GE(pages_spanned, 3u) << "the pool should span several pages";

    // Spread: the first and last mbufs, and every 97th between (prime: it
    // lands at different offsets within pages), each DMAed into by the
    // device from its neighbour's data.
    std::vector<Mbuf*> picks;
    for (unsigned i = 0; i < kMbufs; i += 97)
        picks.push_back(all[i]);
    picks.push_back(all.back());
    unsigned done = 0;
    for (std::size_t k = 0; k + 1 < picks.size(); ++k) {
        Mbuf* src = picks[k];
        Mbuf* dst = picks[k + 1];
        src->reset();  // dst of the previous pair
        dst->reset();
        ASSERT_NE(src->append(kLen), nullptr);
        ASSERT_NE(dst->append(kLen), nullptr);
        ASSERT_NO_FATAL_FAILURE(round_trip(*dev, src, dst, static_cast<std::uint8_t>(k)));
        ++done;
    }
    pool->put_bulk(all.data(), kMbufs);
    // data_off counts: a prepended header moves iova() with it.
    Mbuf* a = pool->alloc();
    Mbuf* b = pool->alloc();
    ASSERT_TRUE(a && b);
    ASSERT_NE(a->append(1000), nullptr);
    ASSERT_NE(a->prepend(14), nullptr);
    ASSERT_NE(b->append(1014), nullptr);
    EXPECT_EQ(a->iova(), a->buf_iova + kHeadroom - 14);
    ASSERT_NO_FATAL_FAILURE(round_trip(*dev, a, b, 0x33));
    a->free();
    b->free();
    std::printf("%s: pool of %u mbufs over %llu pages of %llu KiB (%s mode), %u mbufs DMAed "
                "through m->iova() (%s .. %s)\n",
                GetParam().c_str(), kMbufs, static_cast<unsigned long long>(pages_spanned),
                static_cast<unsigned long long>(pg >> 10), pa ? "pa" : "va", done + 1,
                hex(picks.front()->iova()).c_str(), hex(picks.back()->iova()).c_str());
    EXPECT_EQ(pool->in_use_count(), 0u);
    ASSERT_TRUE(MbufPool::destroy(pool));
}

// An mbuf allocated on worker lcore 1 (its cache) is DMAed into there and
// freed on the main lcore; conservation holds across the two caches.
TEST_P(MbufDma, AllocOnAWorkerFreeOnMain) {
    auto e = init();
    ASSERT_TRUE(e) << e.error().message();
    eal::Eal& eal = **e;
    edu::EduDevice* dev = edu::driver().find(kEdu);
    ASSERT_NE(dev, nullptr);
    auto created = MbufPool::create("lab_lcores", 512, 32, 0, kDefaultDataRoom);
    ASSERT_TRUE(created) << created.error().message();
    MbufPool* pool = *created;

    Mbuf* src = pool->alloc();
    ASSERT_NE(src, nullptr);
    ASSERT_NE(src->append(kLen), nullptr);
    fill(src, 0x42);
    ASSERT_TRUE(dev->dma_to_device(src->iova(), 0, kLen));
    constexpr unsigned kBatch = 8;
    Mbuf* got[kBatch] = {};
    unsigned worker_id = 0;
    std::string failure;
    // The edu is driven by one thread at a time: the main one waits.
    ASSERT_TRUE(eal.lcores().launch(1, [&] {
        worker_id = eal::lcore_id();
        if (pool->alloc_bulk(got, kBatch) != 0) {
            failure = "alloc_bulk on lcore 1 failed";
            return 1;
        }
        for (Mbuf* m : got) {
            if (m->append(kLen) == nullptr) {
                failure = "append";
                return 1;
            }
            if (auto ok = dev->dma_to_ram(m->iova(), 0, kLen); !ok) {
                failure = ok.error().message();
                return 1;
            }
        }
        return 0;
    }));
    auto rc = eal.lcores().wait(1);
    ASSERT_TRUE(rc);
    ASSERT_EQ(*rc, 0) << failure;
    EXPECT_EQ(worker_id, 1u);
    EXPECT_EQ(pool->in_use_count(), kBatch + 1);
    for (Mbuf* m : got) {
        EXPECT_EQ(std::memcmp(m->data(), src->data(), kLen), 0)
            << "worker's mbuf at IOVA " << hex(m->iova());
        m->free();  // into the main lcore's cache
    }
    src->free();
    EXPECT_EQ(pool->in_use_count(), 0u);
    ASSERT_TRUE(MbufPool::destroy(pool));
    std::printf("%s: %u mbufs allocated and DMAed into on lcore 1, freed on lcore 0\n",
                GetParam().c_str(), kBatch);
}

// -l naming a CPU the guest does not let the process use fails Eal::init
// naming the lcore and the CPU, and leaves nothing behind: no fd, no
// driver instance, no lcore id on this thread.
TEST_P(MbufDma, LcoreOnAForbiddenCpuFailsInit) {
    const unsigned off = cpu_range().second + 1;  // no CPU above the last allowed one
    ASSERT_LT(off, eal::kMaxLcores);
    const int before = testing::open_fds();
    const std::string allow = kEdu.str() + ",dma_mask=" + hex(shape_dma_mask());
    const std::string list = "0," + std::to_string(off);
    const char* argv[] = {"mbuf_lab_test", "-l", list.c_str(), "-a", allow.c_str()};
    auto e = eal::Eal::init(5, argv);
    ASSERT_FALSE(e);
    const std::string m = e.error().message();
    std::printf("%s: -l %s: %s\n", GetParam().c_str(), list.c_str(), m.c_str());
    EXPECT_EQ(e.error().err(), EINVAL);
    EXPECT_NE(m.find("lcore " + std::to_string(off) + ": CPU " + std::to_string(off) +
                     " is not one this process may run on"),
              std::string::npos)
        << m;
    EXPECT_EQ(testing::open_fds(), before);
    EXPECT_EQ(edu::driver().instances(), 0u);
    EXPECT_EQ(eal::lcore_id(), eal::kLcoreIdAny);
    EXPECT_EQ(eal::Eal::current(), nullptr);
}

constexpr unsigned kMpMbufs = 300;
constexpr unsigned kHeld = 5;

// The secondary: attach (on lcore 1: the primary's main lcore is 0, and
// caches are per lcore id), find the pool, take kHeld mbufs, write into
// them, report their addresses on `fd` and exit holding them. Exit codes
// say where it failed.
int secondary_main(const char* prefix, int fd) {
    const unsigned cpu = cpu_range().first;
    const std::string fp = std::string("--file-prefix=") + prefix;
    const std::string lc = "--lcores=1@" + std::to_string(cpu);
    const char* argv[] = {"mbuf_lab_test", "--proc-type=secondary", fp.c_str(), lc.c_str()};
    auto e = eal::Eal::init(4, argv);
    if (!e) {
        std::fprintf(stderr, "secondary: %s\n", e.error().message().c_str());
        return 10;
    }
    if (eal::lcore_id() != 1)
        return 11;
    MbufPool* p = MbufPool::lookup("lab_mp");
    if (p == nullptr)
        return 12;
    if (p->name() != "lab_mp" || p->size() != kMpMbufs || p->cache_size() != 32)
        return 13;
    if (MbufPool::lookup("lab_none") != nullptr)
        return 14;
    std::string out;
    for (unsigned i = 0; i < kHeld; ++i) {
        Mbuf* m = p->alloc();
        if (m == nullptr || m->append(kLen) == nullptr)
            return 15;
        fill(m, static_cast<std::uint8_t>(0x70 + i));
        m->port = 7;
        out += std::to_string(reinterpret_cast<std::uintptr_t>(m)) + "\n";
    }
    // Churn through this lcore's cache and the shared ring.
    for (int k = 0; k < 1000; ++k) {
        Mbuf* b[16];
        if (p->alloc_bulk(b, 16) != 0)
            return 16;
        free_bulk(b, 16);
    }
    auto d = MbufPool::destroy(p);
    if (d || d.error().err() != EPERM)
        return 17;  // only the creator may destroy it
    if (::write(fd, out.data(), out.size()) != static_cast<ssize_t>(out.size()))
        return 18;
    ::close(fd);
    return 0;
}

// A secondary finds the primary's pool by name and takes mbufs from it on
// its own lcore; the primary sees them out, reads what the secondary
// wrote, DMAs from them, and takes them back.
TEST_P(MbufDma, SecondaryUsesThePrimarysPool) {
    const std::string prefix = "mbuf-" + GetParam();
    const std::string allow = kEdu.str() + ",dma_mask=" + hex(shape_dma_mask());
    const char* argv[] = {"mbuf_lab_test", "--proc-type=primary", "--file-prefix",
                          prefix.c_str(), "-a", allow.c_str()};
    auto e = eal::Eal::init(6, argv);
    ASSERT_TRUE(e) << e.error().message();
    edu::EduDevice* dev = edu::driver().find(kEdu);
    ASSERT_NE(dev, nullptr);
    auto created = MbufPool::create("lab_mp", kMpMbufs, 32, 0, kDefaultDataRoom);
    ASSERT_TRUE(created) << created.error().message();
    MbufPool* pool = *created;

    const std::string exe = testing::self_exe();
    ASSERT_FALSE(exe.empty()) << "cannot read /proc/self/exe";
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    const std::string wfd = std::to_string(fds[1]);
    std::fflush(stdout);
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::close(fds[0]);
        ::execl(exe.c_str(), exe.c_str(), "--secondary", prefix.c_str(), wfd.c_str(), static_cast<char*>(nullptr));
        std::_Exit(101);
    }
    ::close(fds[1]);
    std::string got;
    char buf[512];
    for (ssize_t r; (r = ::read(fds[0], buf, sizeof buf)) > 0;)
        got.append(buf, static_cast<std::size_t>(r));
    ::close(fds[0]);
    int st = 0;
    ::waitpid(pid, &st, 0);
    ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0)
        << "secondary exit " << (WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));

    std::vector<Mbuf*> held;
    for (std::size_t pos = 0; pos < got.size();) {
        const std::size_t nl = got.find('\n', pos);
        held.push_back(reinterpret_cast<Mbuf*>(std::stoull(got.substr(pos, nl - pos))));
        pos = nl + 1;
    }
    ASSERT_EQ(held.size(), kHeld);
    EXPECT_EQ(pool->in_use_count(), kHeld) << "the secondary's mbufs are out of the pool";
    Mbuf* ref = pool->alloc();
    Mbuf* dst = pool->alloc();
    ASSERT_TRUE(ref && dst);
    ASSERT_NE(ref->append(kLen), nullptr);
    ASSERT_NE(dst->append(kLen), nullptr);
    for (unsigned i = 0; i < kHeld; ++i) {
        Mbuf* m = held[i];
        ASSERT_TRUE(pool->owns(m));
        EXPECT_EQ(m->port, 7);
        ASSERT_EQ(m->data_len, kLen);
        fill(ref, static_cast<std::uint8_t>(0x70 + i));
        EXPECT_EQ(std::memcmp(m->data(), ref->data(), kLen), 0) << "mbuf " << i;
        // Through the device: the IOVA the primary gave it reaches those bytes.
        std::memset(dst->data(), 0, kLen);
        ASSERT_TRUE(dev->dma_to_device(m->iova(), 0, kLen));
        ASSERT_TRUE(dev->dma_to_ram(dst->iova(), 0, kLen));
        EXPECT_EQ(std::memcmp(m->data(), dst->data(), kLen), 0) << "mbuf " << i;
        m->free();
    }
    ref->free();
    dst->free();
    EXPECT_EQ(pool->in_use_count(), 0u);
    ASSERT_TRUE(MbufPool::destroy(pool));
    std::printf("%s: a secondary on lcore 1 found pool lab_mp and took %u mbufs; the primary "
                "read and DMAed them and took them back\n",
                GetParam().c_str(), kHeld);
}

INSTANTIATE_TEST_SUITE_P(Lab, MbufDma, ::testing::Values(mode_label()),
                         [](const auto& p) { return p.param; });

}  // namespace
}  // namespace vfiokit::mbuf

int main(int argc, char** argv) {
    if (argc == 4 && std::string_view(argv[1]) == "--secondary")
        return vfiokit::mbuf::secondary_main(argv[2], std::atoi(argv[3]));
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}

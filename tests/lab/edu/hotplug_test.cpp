// Hotplug of an edu, once per VFIO mode, with the host's QMP device_add and
// device_del (devtools/lab/jobs/hotplug-iommu.sh, hotplug-noiommu.sh):
//
//   VFIOKIT_HOTPLUG_EDU=0000:02:00.0   where the added edu appears
//   VFIOKIT_HOTPLUG_KEEP=0000:00:03.0  an edu on vfio-pci the primary
//                                      probes at init (-a) and keeps: it
//                                      must work after the removal
//   VFIOKIT_HOTPLUG_DIR=/tmp/hp        the test creates "add" when the job
//                                      should device_add it, "del" when it
//                                      should device_del it
//   edu_hotplug_lab_test --gtest_filter='Hotplug/*'
//
// The primary (multi-process, its own prefix) starts the device monitor and
// sees the edu arrive as an add event, probes it with the registered edu
// driver (binding it to vfio-pci: edu has no kernel driver), into a
// container of its own where an IOMMU translates, and runs a DMA round
// trip. A secondary attaches, maps the edu's BAR0 and keeps it (its copies
// of the device's fds block the unplug until it lets go). When the host
// removes the edu, the primary sees the remove event (the kernel's
// request), and its callback calls remove_device(): the secondary, which
// monitors too, lets go first, then the primary. The removed event (the
// kernel's uevent) ends it. Each step's time is printed on one clock
// (CLOCK_MONOTONIC, the guest's /proc/uptime) for the job's timeline.
//
// The same binary, exec'd as "--secondary PREFIX EDU DIR", is the secondary.
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "edu.hpp"
#include "lab_env.hpp"
#include "vfiokit/bus/pci/device.hpp"
#include "vfiokit/eal/eal.hpp"
#include "vfiokit/eal/format.hpp"

namespace vfiokit::eal {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::env;
using testing::iommu_shape;
using testing::mode_label;
using testing::open_fds;
namespace fs = std::filesystem;

std::uint64_t edu_mask() { return iommu_shape() ? edu::kDefaultDmaMask : 0xffffffffULL; }

// Seconds on CLOCK_MONOTONIC (the clock of the guest's /proc/uptime, too:
// the lab guest never suspends).
double secs(Clock::time_point t) {
    return std::chrono::duration<double>(t.time_since_epoch()).count();
}

void mark(const std::string& dir, const char* name) {
    std::ofstream(dir + "/" + name) << secs(Clock::now()) << "\n";
}

Options options(const std::string& prefix, ProcType role, std::optional<PciAddress> keep = {}) {
    Options o;
    if (keep)
        o.allow.push_back({*keep, {}, {{"dma_mask", hex(edu_mask())}}});
    o.vfio.mode = std::nullopt;
    if (auto ok = vfio::apply_environment(o.vfio); !ok)
        ADD_FAILURE() << ok.error().message();
    o.memory_mb = 8;
    o.multi_process = true;
    o.file_prefix = prefix;
    o.proc_type = role;
    return o;
}

// Device fds of any mode in this process: group mode's is an anonymous
// inode, cdev mode's a node under /dev/vfio/devices.
int device_fds() {
    int n = 0;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/proc/self/fd", ec)) {
        std::error_code ec2;
        const std::string t = fs::read_symlink(e.path(), ec2).string();
        n += t.find("[vfio-device]") != std::string::npos ||
             t.find("/dev/vfio/devices/") != std::string::npos;
    }
    return n;
}

// The secondary: attach, hold the edu (BAR0 mapped, liveness answered),
// monitor, and on the remove event let go of it. Exit codes say where it
// failed.
int secondary_main(char** argv) {
    const std::string prefix = argv[2];
    const auto addr = PciAddress::parse(argv[3]);
    const std::string dir = argv[4];
    if (!addr)
        return 9;
    auto e = Eal::init(options(prefix, ProcType::secondary));
    if (!e) {
        std::fprintf(stderr, "secondary: %s\n", e.error().message().c_str());
        return 10;
    }
    vfio::Device* d = (*e)->vfio().find_device(*addr);
    if (d == nullptr)
        return 11;
    auto pd = std::make_unique<pci::PciDevice>(*d);
    auto edu = edu::EduDevice::open(*pd, edu_mask());
    if (!edu) {
        std::fprintf(stderr, "secondary: %s\n", edu.error().message().c_str());
        return 12;
    }
    if ((*edu)->liveness(0x0badcafe) != ~0x0badcafeu)
        return 13;
    if (auto ok = (*e)->start_device_monitor(); !ok) {
        std::fprintf(stderr, "secondary: %s\n", ok.error().message().c_str());
        return 14;
    }
    std::printf("secondary %d holds %s (BAR0 mapped, liveness ok), monitoring\n",
                static_cast<int>(::getpid()), addr->str().c_str());
    std::fflush(stdout);
    mark(dir, "secondary-ready");
    for (const auto until = Clock::now() + 90s; Clock::now() < until;) {
        auto evs = (*e)->poll_device_events();
        if (!evs) {
            std::fprintf(stderr, "secondary: %s\n", evs.error().message().c_str());
            return 15;
        }
        for (const DeviceEvent& ev : *evs) {
            if (ev.type != DeviceEventType::remove || ev.addr != *addr)
                continue;
            // What uses the device goes first, then the EAL's copies.
            edu->reset();
            pd.reset();
            if (auto ok = (*e)->remove_device(*addr); !ok) {
                std::fprintf(stderr, "secondary: %s\n", ok.error().message().c_str());
                return 16;
            }
            std::printf("hotplug-timeline secondary-remove-seen %.3f\n", secs(ev.seen));
            std::printf("hotplug-timeline secondary-released %.3f\n", secs(Clock::now()));
            std::fflush(stdout);
            return (*e)->vfio().find_device(*addr) == nullptr ? 0 : 17;
        }
        std::this_thread::sleep_for(2ms);
    }
    return 18;  // no remove event
}

pid_t start_secondary(const std::string& prefix, PciAddress a, const std::string& dir) {
    const std::string exe = testing::self_exe();
    if (exe.empty())
        return -1;
    const std::string as = a.str();
    std::fflush(stdout);
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::execl(exe.c_str(), exe.c_str(), "--secondary", prefix.c_str(), as.c_str(), dir.c_str(),
                static_cast<char*>(nullptr));
        std::_Exit(101);
    }
    return pid;
}

// One DMA round trip through the edu: src -> device buffer -> dst.
void round_trip(edu::EduDevice& dev, std::uint8_t* src, std::uint64_t src_iova, std::uint8_t* dst,
                std::uint64_t dst_iova) {
    constexpr std::uint32_t kLen = 4000;  // < 4095: QEMU 7.2's edu bound (edu.hpp)
    for (std::uint32_t i = 0; i < kLen; ++i)
        src[i] = static_cast<std::uint8_t>(i * 7 + 3);
    std::memset(dst, 0, kLen);
    ASSERT_TRUE(dev.dma_to_device(src_iova, 0, kLen));
    ASSERT_TRUE(dev.dma_to_ram(dst_iova, 0, kLen));
    EXPECT_EQ(std::memcmp(src, dst, kLen), 0) << "the DMA round trip lost bytes";
    std::printf("DMA round trip through %s: %u bytes verified\n",
                dev.pci().address().str().c_str(), kLen);
}

class Hotplug : public ::testing::TestWithParam<std::string> {};

TEST_P(Hotplug, AddedEduIsProbedAndItsRemovalCompletes) {
    const auto edu_addr = PciAddress::parse(env("VFIOKIT_HOTPLUG_EDU"));
    const auto keep = PciAddress::parse(env("VFIOKIT_HOTPLUG_KEEP"));
    const std::string dir = env("VFIOKIT_HOTPLUG_DIR");
    ASSERT_TRUE(edu_addr && keep && !dir.empty())
        << "the job sets VFIOKIT_HOTPLUG_EDU, VFIOKIT_HOTPLUG_KEEP and VFIOKIT_HOTPLUG_DIR";
    const PciAddress a = *edu_addr;
    ASSERT_FALSE(fs::exists("/sys/bus/pci/devices/" + a.str())) << a.str() << " is there already";
    const int fds_at_start = open_fds();
    const std::string prefix = "hotplug-" + mode_label();
    auto e = Eal::init(options(prefix, ProcType::primary, keep));
    ASSERT_TRUE(e) << e.error().message();
    Eal& eal = **e;
    ASSERT_NE(edu::driver().find(*keep), nullptr) << keep->str() << " not probed at init";

    std::vector<DeviceEvent> seen;
    std::optional<Clock::time_point> released;
    std::optional<Error> remove_error;
    // The application's callback: on the kernel's request for the edu,
    // give it back at once (nothing else uses it here).
    const int cb = eal.add_device_event_callback([&](const DeviceEvent& ev) {
        seen.push_back(ev);
        if (ev.type == DeviceEventType::remove && ev.addr == a) {
            EXPECT_EQ(ev.driver, "edu");
            if (auto r = eal.remove_device(a); !r)
                remove_error = r.error();
            released = Clock::now();
        }
    });
    ASSERT_GT(cb, 0);
    ASSERT_TRUE(eal.start_device_monitor());
    auto wait_event = [&](DeviceEventType t, std::chrono::seconds limit) -> std::optional<DeviceEvent> {
        for (const auto until = Clock::now() + limit; Clock::now() < until;) {
            auto evs = eal.poll_device_events();
            if (!evs) {
                ADD_FAILURE() << evs.error().message();
                return std::nullopt;
            }
            for (const auto& ev : *evs)
                if (ev.type == t && ev.addr == a)
                    return ev;
            std::this_thread::sleep_for(2ms);
        }
        return std::nullopt;
    };

    // Add: the host plugs an edu in; the kernel's uevent says so.
    mark(dir, "add");
    auto add = wait_event(DeviceEventType::add, 60s);
    ASSERT_TRUE(add) << "no add event for " << a.str() << " within 60 s";
    EXPECT_EQ(add->vendor, edu::kVendor);
    EXPECT_EQ(add->device, edu::kDevice);
    EXPECT_EQ(add->bus, "pci");
    std::printf("add event for %s (%04x:%04x, kernel driver '%s')\n", a.str().c_str(),
                add->vendor, add->device, add->driver.c_str());

    // Probe: into a container of its own where an IOMMU translates.
    vfio::Container* custom = nullptr;
    if (eal.vfio().default_container().translates()) {
        auto c = eal.vfio().create_container();
        ASSERT_TRUE(c) << c.error().message();
        custom = *c;
    }
    // Without bind_vfio the EAL leaves the device where it is, and says so.
    auto unbound = eal.probe_device(a.str());
    ASSERT_FALSE(unbound);
    EXPECT_NE(unbound.error().message().find("vfio-pci"), std::string::npos)
        << unbound.error().message();
    auto rep = eal.probe_device(a.str() + ",dma_mask=" + hex(edu_mask()),
                                {.container = custom, .bind_vfio = true});
    ASSERT_TRUE(rep) << rep.error().message();
    EXPECT_TRUE(rep->probed);
    EXPECT_EQ(rep->driver, "edu");
    auto again = eal.probe_device(a.str());
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().err(), EEXIST);
    vfio::Device* vd = eal.vfio().find_device(a);
    ASSERT_NE(vd, nullptr);
    EXPECT_EQ(&vd->container(), custom ? custom : &eal.vfio().default_container());
    edu::EduDevice* dev = edu::driver().find(a);
    ASSERT_NE(dev, nullptr);
    EXPECT_EQ(dev->id(), edu::kIdentification);

    // DMA: in the custom container through memory mapped there; else EAL
    // memory through the default container (physical addresses here).
    void* mem = nullptr;
    std::uint64_t mem_iova = 0;
    if (custom != nullptr) {
        mem = ::mmap(nullptr, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        ASSERT_NE(mem, MAP_FAILED);
        auto iova = custom->alloc_iova(8192, edu_mask());
        ASSERT_TRUE(iova) << iova.error().message();
        ASSERT_TRUE(custom->map(reinterpret_cast<std::uint64_t>(mem), *iova, 8192));
        mem_iova = *iova;
        std::printf("custom container: 8 KiB mapped at IOVA 0x%llx\n",
                    static_cast<unsigned long long>(mem_iova));
    } else {
        auto p = eal.heap().alloc(8192, 4096);
        ASSERT_TRUE(p) << p.error().message();
        mem = *p;
        auto iova = eal.virt2iova(mem);
        ASSERT_TRUE(iova);
        mem_iova = *iova;
        std::printf("default container (no translation): IOVA 0x%llx is the physical address\n",
                    static_cast<unsigned long long>(mem_iova));
    }
    auto* bytes = static_cast<std::uint8_t*>(mem);
    std::uint64_t dst_iova = mem_iova + 4096;  // one mapping in the custom container
    if (custom == nullptr) {
        auto i2 = eal.virt2iova(bytes + 4096);  // physical: each page's own
        ASSERT_TRUE(i2);
        dst_iova = *i2;
    }
    round_trip(*dev, bytes, mem_iova, bytes + 4096, dst_iova);

    // A secondary attaches and holds the device.
    const pid_t sec = start_secondary(prefix, a, dir);
    ASSERT_GT(sec, 0);
    for (const auto until = Clock::now() + 30s;
         !fs::exists(dir + "/secondary-ready") && Clock::now() < until;)
        std::this_thread::sleep_for(10ms);
    ASSERT_TRUE(fs::exists(dir + "/secondary-ready")) << "the secondary did not start";

    // Remove: the host unplugs it.
    const auto del_asked = Clock::now();
    mark(dir, "del");
    auto req = wait_event(DeviceEventType::remove, 60s);
    ASSERT_TRUE(req) << "no remove event (the kernel's request) for " << a.str() << " within 60 s";
    ASSERT_TRUE(released) << "the callback did not run";
    EXPECT_FALSE(remove_error) << remove_error->message();
    auto gone = wait_event(DeviceEventType::removed, 30s);
    EXPECT_TRUE(gone) << "no removed event (uevent) for " << a.str() << " within 30 s";
    int st = 0;
    ASSERT_EQ(::waitpid(sec, &st, 0), sec);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "secondary exit status " << st;

    std::printf("hotplug-timeline del-asked %.3f\n", secs(del_asked));
    std::printf("hotplug-timeline remove-seen %.3f\n", secs(req->seen));
    std::printf("hotplug-timeline released %.3f\n", secs(*released));
    if (gone)
        std::printf("hotplug-timeline removed-uevent %.3f\n", secs(gone->seen));
    std::printf("removal of %s: request seen %.0f ms after the test asked for the unplug, "
                "released %.0f ms after the request\n",
                a.str().c_str(), 1000 * (secs(req->seen) - secs(del_asked)),
                1000 * (secs(*released) - secs(req->seen)));

    // Nothing of the device is left.
    EXPECT_EQ(eal.vfio().find_device(a), nullptr);
    EXPECT_EQ(edu::driver().find(a), nullptr);
    EXPECT_TRUE(eal.removal_requests().empty());
    for (const auto& r : eal.device_report())
        EXPECT_NE(r.addr, a) << "the removed device is still reported";
    // The device kept from init still works.
    edu::EduDevice* kept = edu::driver().find(*keep);
    ASSERT_NE(kept, nullptr);
    EXPECT_EQ(device_fds(), 1) << "only the kept edu's device fd";
    {
        auto p = eal.heap().alloc(8192, 4096);
        ASSERT_TRUE(p) << p.error().message();
        auto iova = eal.virt2iova(*p);
        ASSERT_TRUE(iova);
        auto* b = static_cast<std::uint8_t*>(*p);
        // Each page's own IOVA: physical addresses need not be contiguous.
        auto iova2 = eal.virt2iova(b + 4096);
        ASSERT_TRUE(iova2);
        round_trip(*kept, b, *iova, b + 4096, *iova2);
        ASSERT_TRUE(eal.heap().free(*p));
    }
    if (custom != nullptr) {
        EXPECT_TRUE(custom->devices().empty());
        ASSERT_TRUE(eal.vfio().destroy_container(*custom));
        ::munmap(mem, 8192);
    } else {
        ASSERT_TRUE(eal.heap().free(mem));
    }
    EXPECT_TRUE(eal.remove_device_event_callback(cb));
    EXPECT_FALSE(eal.remove_device_event_callback(cb));
    e->reset();
    EXPECT_EQ(open_fds(), fds_at_start);
}

INSTANTIATE_TEST_SUITE_P(Hotplug, Hotplug, ::testing::Values(mode_label()),
                         [](const auto& p) { return p.param; });

}  // namespace
}  // namespace vfiokit::eal

int main(int argc, char** argv) {
    if (argc == 5 && std::string_view(argv[1]) == "--secondary")
        return vfiokit::eal::secondary_main(argv);
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}

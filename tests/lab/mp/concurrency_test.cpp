// The EAL's concurrency model on the real kernel, under ThreadSanitizer: the
// control path is serialized by the EAL lock (Vfio::control_lock()), the
// data path (virt2iova) takes no lock, and neither races.
//
//   VFIOKIT_VFIO_MODE=cdev VFIOKIT_LAB_SHAPE=iommu concurrency_tsan_lab_test
//
// The primary runs, at the same time: a thread growing and shrinking memory
// (segments added and removed, heap allocations), a thread assigning and
// releasing a device in a container of its own (created, mapped, destroyed)
// and re-declaring the edu's DMA mask, a thread translating a heap address
// on the data path, and the multi-process server thread answering
// secondaries. The secondaries (this binary, exec'd with "--secondary
// PREFIX N") attach again and again: "eal.memory", "eal.vfio" (fds), and
// query "eal.info".
//
// The binary and the EAL it links are built with -fsanitize=thread; TSan
// stops the process at its first report with exit status 66 (see
// __tsan_default_options), which fails the step. "--race-canary" races on
// purpose: the job expects 66 from it, proving that TSan is active and that
// a report fails the run.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "lab_env.hpp"
#include "vfiokit/eal/eal.hpp"

// Read by the TSan runtime at start-up (sanitizer_common's weak hook).
extern "C" const char* __tsan_default_options();
extern "C" const char* __tsan_default_options() {
    return "halt_on_error=1:exitcode=66:second_deadlock_stack=1";
}

namespace vfiokit::eal {
namespace {

using testing::iommu_shape;
using testing::mode_label;

constexpr const char* kEdu = "0000:00:03.0";    // stays in the default container
constexpr const char* kChurn = "0000:00:04.0";  // assigned and released (iommu shape)
// The shapes' edu masks: QEMU's default 28 bits; the noiommu shape makes
// its edu 32-bit (its DMA goes to physical addresses, doc/lab.md).
const std::uint64_t kEduMask = iommu_shape() ? (1ULL << 28) - 1 : 0xffffffffULL;
constexpr int kRounds = 12;
constexpr int kSecondaries = 2;
constexpr int kAttaches = 4;

Options options(const std::string& prefix, ProcType role) {
    Options o;
    if (auto ok = vfio::apply_environment(o.vfio); !ok)
        std::fprintf(stderr, "environment: %s\n", ok.error().message().c_str());
    o.memory_mb = 4;
    o.multi_process = true;
    o.file_prefix = prefix;
    o.proc_type = role;
    return o;
}

std::atomic<int> failures{0};

void failed(const char* who, const std::string& what) {
    ++failures;
    std::printf("FAIL %s: %s\n", who, what.c_str());
    std::fflush(stdout);
}

// A secondary: attach (memory and VFIO), check what it got, query, detach;
// kAttaches times. The primary may release a device between sending its
// state and our import: then the import sees a group in no container or
// an IOAS that is gone (EPROTO, ENOENT) and the secondary attaches again,
// as an application would.
int secondary_main(const std::string& prefix, int index) {
    int done = 0, retries = 0;
    while (done < kAttaches) {
        auto e = Eal::init(options(prefix, ProcType::secondary));
        if (!e) {
            const int err = e.error().err();
            if ((err == EPROTO || err == ENOENT) && retries < 50) {
                ++retries;
                continue;
            }
            std::printf("secondary %d: attach: %s\n", index, e.error().message().c_str());
            return 10;
        }
        if ((*e)->vfio().find_device(*PciAddress::parse(kEdu)) == nullptr)
            return 11;
        const auto segs = (*e)->memory().segments();
        if (segs.empty())
            return 12;
        for (const Segment* s : segs)
            if (!(*e)->virt2iova(reinterpret_cast<const void*>(s->va)))
                return 13;
        auto info = mp::query_info(*(*e)->primary());
        if (!info) {
            std::printf("secondary %d: eal.info: %s\n", index, info.error().message().c_str());
            return 14;
        }
        if (info->vfio.find(kEdu) == std::string::npos)
            return 15;
        ++done;
    }
    std::printf("secondary %d: %d attaches (%d again after a concurrent release)\n", index, done,
                retries);
    return 0;
}

pid_t spawn_secondary(const std::string& prefix, int index) {
    const std::string exe = testing::self_exe();
    if (exe.empty())
        return -1;
    std::fflush(stdout);
    const pid_t pid = ::fork();
    if (pid == 0) {
        const std::string i = std::to_string(index);
        ::execl(exe.c_str(), exe.c_str(), "--secondary", prefix.c_str(), i.c_str(), static_cast<char*>(nullptr));
        std::_Exit(101);
    }
    return pid;
}

int primary_main() {
    const std::string prefix = "tsan-" + mode_label();
    auto init = Eal::init(options(prefix, ProcType::primary));
    if (!init) {
        std::printf("primary: %s\n", init.error().message().c_str());
        return 10;
    }
    Eal& e = **init;
    vfio::Vfio& v = e.vfio();
    auto d = v.assign_device(v.default_container(), kEdu);
    if (!d) {
        std::printf("primary: assign %s: %s\n", kEdu, d.error().message().c_str());
        return 11;
    }
    // What the edu driver's probe does (moves memory under the mask).
    if (auto ok = v.default_container().require_dma_mask(kEduMask, "edu"); !ok) {
        std::printf("primary: %s\n", ok.error().message().c_str());
        return 12;
    }
    auto held = e.heap().alloc(4096);
    if (!held)
        return 13;

    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    // Data path: lock-free translation while segments come and go and
    // memory moves under masks.
    std::uint64_t translations = 0;
    threads.emplace_back([&] {
        while (!stop.load()) {
            if (!e.virt2iova(*held))
                failed("virt2iova", "lost the IOVA of a live allocation");
            ++translations;
        }
    });
    // Control path: memory growth.
    threads.emplace_back([&] {
        for (int i = 0; i < kRounds; ++i) {
            auto s = e.memory().add(4ULL << 20);
            if (!s) {
                failed("memory.add", s.error().message());
                continue;
            }
            auto p = e.heap().alloc(1ULL << 20);
            if (!p)
                failed("heap.alloc", p.error().message());
            else if (auto ok = e.heap().free(*p); !ok)
                failed("heap.free", ok.error().message());
            if (auto ok = e.memory().remove(*s); !ok)
                failed("memory.remove", ok.error().message());
        }
    });
    // Control path: assign and release, map and unmap, in a container of
    // its own (the iommu shape has a second edu); the mask again. A
    // secondary that imported the device keeps its file open until it
    // detaches, and the kernel refuses a second open meanwhile (group:
    // EBUSY, vfio_group_fops_open; cdev: EINVAL, vfio_df_open; compat:
    // EPERM, the group's DMA ownership is still claimed by the old open):
    // those rounds count as "held by a secondary", not as failures.
    std::atomic<int> cycles{0}, held_elsewhere{0};
    auto churn = [&] {
        if (auto ok = v.default_container().require_dma_mask(kEduMask, "edu"); !ok)
            failed("require_dma_mask", ok.error().message());
        if (!iommu_shape()) {
            (void)v.default_container().describe();
            ++cycles;
            return;
        }
        auto c = v.create_container();
        if (!c) {
            failed("create_container", c.error().message());
            return;
        }
        auto dev = v.assign_device(**c, kChurn);
        const int held_errno[] = {EBUSY, EINVAL, EPERM};
        if (!dev && std::find(std::begin(held_errno), std::end(held_errno),
                              dev.error().err()) != std::end(held_errno))
            ++held_elsewhere;
        else if (!dev)
            failed("assign", dev.error().message());
        auto iova = (*c)->alloc_iova(2ULL << 20, kEduMask);
        const Segment* seg = e.memory().segments().front();  // the -m segment stays
        if (!iova) {
            failed("alloc_iova", iova.error().message());
        } else if (auto ok = (*c)->map(seg->va, *iova, 2ULL << 20); !ok) {
            failed("map", ok.error().message());
        } else if (auto un = (*c)->unmap(*iova, 2ULL << 20); !un) {
            failed("unmap", un.error().message());
        }
        if (dev) {
            if (auto ok = v.release_device(**dev); !ok)
                failed("release", ok.error().message());
            else
                ++cycles;
        }
        if (auto ok = v.destroy_container(**c); !ok)
            failed("destroy_container", ok.error().message());
    };
    threads.emplace_back([&] {
        for (int i = 0; i < kRounds; ++i)
            churn();
    });

    std::vector<pid_t> kids;
    for (int i = 0; i < kSecondaries; ++i)
        kids.push_back(spawn_secondary(prefix, i));
    int worst = 0;
    for (pid_t k : kids) {
        int st = 0;
        if (k < 0 || ::waitpid(k, &st, 0) != k) {
            failed("secondary", "could not start or wait");
            continue;
        }
        const int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (rc != 0) {
            failed("secondary", "exit status " + std::to_string(rc) +
                                    (rc == 66 ? " (ThreadSanitizer report)" : ""));
            worst = rc;
        }
    }
    // Let the control threads finish their rounds, then stop the reader.
    for (std::size_t i = 1; i < threads.size(); ++i)
        threads[i].join();
    stop = true;
    threads[0].join();
    // With every secondary gone, a full cycle must work: nothing of theirs
    // or of the concurrent rounds is left holding the device.
    const int before = cycles.load();
    churn();
    if (cycles.load() != before + 1)
        failed("final cycle", "assign/release of " + std::string(kChurn) +
                                  " after the secondaries left did not complete");
    const auto accepted = e.server()->stats().accepted;
    std::printf("concurrency (%s): %d rounds of memory growth; %d assign/release cycles done, "
                "%d refused while a secondary held the device; %d secondaries x %d attaches "
                "(%llu connections); %llu lock-free translations; %d failure(s)\n",
                mode_label().c_str(), kRounds, cycles.load(), held_elsewhere.load(),
                kSecondaries, kAttaches, static_cast<unsigned long long>(accepted),
                static_cast<unsigned long long>(translations), failures.load());
    if (worst == 66)
        return 66;
    return failures.load() == 0 ? 0 : 1;
}

// Two threads write one int without a lock: TSan must report it.
int race_canary() {
    static int shared = 0;
    std::thread a([] {
        for (int i = 0; i < 100000; ++i)
            shared = shared + 1;
    });
    std::thread b([] {
        for (int i = 0; i < 100000; ++i)
            shared = shared + 1;
    });
    a.join();
    b.join();
    std::printf("race canary: no report (shared = %d)\n", shared);
    return 0;
}

}  // namespace
}  // namespace vfiokit::eal

int main(int argc, char** argv) {
    if (argc == 4 && std::string_view(argv[1]) == "--secondary")
        return vfiokit::eal::secondary_main(argv[2], std::atoi(argv[3]));
    if (argc == 2 && std::string_view(argv[1]) == "--race-canary")
        return vfiokit::eal::race_canary();
    return vfiokit::eal::primary_main();
}

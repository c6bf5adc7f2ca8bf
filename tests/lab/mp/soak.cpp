// A soak of multi-process on the real kernel (devtools/soak.sh runs it in
// the lab; not part of CI). For a set time a primary cycles through:
//   - N secondaries (fork+exec of this binary) attaching at once, each
//     mapping a buffer of its own into the primary's default container
//     and unmapping it, then exiting; every 4th cycle one of them is
//     SIGKILLed while its mapping stands, and the primary's cleanup must
//     unmap it (Eal::add_secondary_exit_callback);
//   - heap growth and frees: a heap with 4 MiB segments grows by three
//     segments, frees everything and gives its segments back;
//   - the edu released and assigned again.
// It prints the process's fds, /proc/self/maps lines, the container's
// mappings, HugePages_Free, Mlocked and its VmLck/VmPin at the start, after
// the first (warm-up) cycle and at the end, and fails when the end differs
// from the warm-up figures (the first cycle may set up what lives as long
// as the process: the log, the server thread's buffers).
//
//   mp_soak_lab --seconds 300 [--secondaries 4] [--bdf 0000:00:03.0]
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "lab_env.hpp"
#include "vfiokit/eal/eal.hpp"
#include "vfiokit/eal/heap.hpp"
#include "vfiokit/eal/vfio/vfio.hpp"

namespace vfiokit::eal {
namespace {

constexpr const char* kPrefix = "soak";
constexpr std::uint64_t kBuf = 64 * 1024;  // each secondary's own buffer

Options options(ProcType role) {
    Options o;
    o.vfio.mode = std::nullopt;
    if (auto ok = vfio::apply_environment(o.vfio); !ok)
        std::fprintf(stderr, "soak: %s\n", ok.error().message().c_str());
    o.memory_mb = 8;
    o.multi_process = true;
    o.file_prefix = kPrefix;
    o.proc_type = role;
    return o;
}

std::size_t count_dir(const char* path) {
    std::size_t n = 0;
    if (DIR* d = ::opendir(path)) {
        while (const dirent* e = ::readdir(d))
            if (e->d_name[0] != '.')
                ++n;
        ::closedir(d);
    }
    return n - 1;  // the fd opendir itself holds
}

std::size_t count_lines(const char* path) {
    std::ifstream f(path);
    std::string l;
    std::size_t n = 0;
    while (std::getline(f, l))
        ++n;
    return n;
}

// The number after `key` in a "Key:   N kB" file (/proc/meminfo, status).
long long field(const std::string& path, std::string_view key) {
    std::ifstream f(path);
    std::string l;
    while (std::getline(f, l))
        if (l.rfind(key, 0) == 0)
            return std::atoll(l.c_str() + key.size());
    return -1;
}

struct Figures {
    std::size_t fds = 0, maps = 0, mappings = 0;
    long long huge_free = 0, mlocked_kb = 0, vm_lck_kb = 0, vm_pin_kb = 0;
    bool operator==(const Figures&) const = default;
};

Figures measure(vfio::Container& c) {
    Figures f;
    f.fds = count_dir("/proc/self/fd");
    f.maps = count_lines("/proc/self/maps");
    f.mappings = c.mapping_count();
    f.huge_free = field("/proc/meminfo", "HugePages_Free:");
    f.mlocked_kb = field("/proc/meminfo", "Mlocked:");
    f.vm_lck_kb = field("/proc/self/status", "VmLck:");
    f.vm_pin_kb = field("/proc/self/status", "VmPin:");
    return f;
}

void print(const char* when, const Figures& f) {
    std::printf("soak: %-8s fds %zu, maps lines %zu, container mappings %zu, HugePages_Free %lld, "
                "Mlocked %lld kB, VmLck %lld kB, VmPin %lld kB\n",
                when, f.fds, f.maps, f.mappings, f.huge_free, f.mlocked_kb, f.vm_lck_kb,
                f.vm_pin_kb);
    std::fflush(stdout);
}

// A secondary: attaches, maps its own buffer at IOVA and unmaps it (or,
// with `hold`, says "holding" and waits to be killed), then exits.
int secondary_main(std::uint64_t iova, bool hold) {
    auto e = Eal::init(options(ProcType::secondary));
    if (!e)
        return std::fprintf(stderr, "soak secondary: %s\n", e.error().message().c_str()), 20;
    void* p = ::mmap(nullptr, kBuf, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
                     -1, 0);
    if (p == MAP_FAILED)
        return 21;
    vfio::Container& c = (*e)->vfio().default_container();
    if (auto ok = c.map(reinterpret_cast<std::uintptr_t>(p), iova, kBuf); !ok)
        return std::fprintf(stderr, "soak secondary: %s\n", ok.error().message().c_str()), 22;
    if (hold) {
        std::printf("holding\n");
        std::fflush(stdout);
        for (;;)
            ::pause();
    }
    if (auto ok = c.unmap(iova, kBuf); !ok)
        return std::fprintf(stderr, "soak secondary: %s\n", ok.error().message().c_str()), 23;
    return 0;
}

struct Child {
    pid_t pid = -1;
    int out = -1;  // its stdout, read end
};

Child spawn(std::uint64_t iova, bool hold) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0)
        return {};
    const std::string exe = testing::self_exe(), iv = std::to_string(iova);
    std::fflush(stdout);
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(p[1], 1);
        const char* argv[] = {exe.c_str(), "--secondary", iv.c_str(), hold ? "hold" : "go", nullptr};
        ::execv(exe.c_str(), const_cast<char* const*>(argv));
        std::_Exit(101);
    }
    ::close(p[1]);
    return {pid, p[0]};
}

int wait_child(pid_t p) {
    int st = 0;
    if (::waitpid(p, &st, 0) != p)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

bool read_word(int fd, std::string_view word) {
    std::string all;
    char b[128];
    for (ssize_t n; all.find(word) == std::string::npos && (n = ::read(fd, b, sizeof b)) > 0;)
        all.append(b, static_cast<std::size_t>(n));
    return all.find(word) != std::string::npos;
}

int primary_main(int seconds, unsigned secondaries, const std::string& bdf) {
    auto e = Eal::init(options(ProcType::primary));
    if (!e)
        return std::fprintf(stderr, "soak: %s\n", e.error().message().c_str()), 10;
    vfio::Vfio& v = (*e)->vfio();
    vfio::Container& c = v.default_container();
    auto assign = [&]() -> bool {
        auto d = v.assign_device(c, bdf);
        if (!d)
            std::fprintf(stderr, "soak: %s\n", d.error().message().c_str());
        return static_cast<bool>(d);
    };
    if (!assign())
        return 11;
    std::mutex mu;
    std::size_t cleanups = 0, cleaned_ranges = 0, cleanup_failures = 0;
    if (auto cb = (*e)->add_secondary_exit_callback([&](const Eal::SecondaryExit& x) {
            std::lock_guard g(mu);
            ++cleanups;
            cleaned_ranges += x.unmapped;
            cleanup_failures += x.failed + (x.unmapped == 1 ? 0 : 1);
        });
        !cb)
        return std::fprintf(stderr, "soak: %s\n", cb.error().message().c_str()), 12;
    auto base = c.alloc_iova(secondaries * kBuf, 0xfffffff, kBuf);
    if (!base)
        return std::fprintf(stderr, "soak: %s\n", base.error().message().c_str()), 13;

    const Figures start = measure(c);
    print("start", start);
    Figures warm;
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    unsigned cycles = 0, spawned = 0, killed = 0, failures = 0;
    while (cycles == 0 || std::chrono::steady_clock::now() < end) {
        // Secondaries, all attached at once.
        const bool kill_one = cycles % 4 == 3;
        std::vector<Child> kids;
        for (unsigned i = 0; i < secondaries; ++i)
            kids.push_back(spawn(*base + i * kBuf, kill_one && i == 0));
        spawned += secondaries;
        std::size_t cleanups_before;
        {
            std::lock_guard g(mu);
            cleanups_before = cleanups;
        }
        for (unsigned i = 0; i < kids.size(); ++i) {
            if (kill_one && i == 0) {
                if (!read_word(kids[i].out, "holding")) {
                    std::fprintf(stderr, "soak: cycle %u: the holding secondary did not map\n", cycles);
                    ++failures;
                }
                ::kill(kids[i].pid, SIGKILL);
                ++killed;
            }
            const int rc = wait_child(kids[i].pid);
            ::close(kids[i].out);
            if (rc != (kill_one && i == 0 ? 128 + SIGKILL : 0)) {
                std::fprintf(stderr, "soak: cycle %u: secondary %u ended with %d\n", cycles, i, rc);
                ++failures;
            }
        }
        if (kill_one) {
            const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
            for (;;) {
                {
                    std::lock_guard g(mu);
                    if (cleanups > cleanups_before)
                        break;
                }
                if (std::chrono::steady_clock::now() > until) {
                    std::fprintf(stderr, "soak: cycle %u: no cleanup after the kill\n", cycles);
                    ++failures;
                    break;
                }
                std::this_thread::sleep_for(std::chrono::milliseconds(5));
            }
        }
        // Heap growth and frees: three 4 MiB segments added, then given back.
        {
            Heap h((*e)->memory(), -1, 4ULL << 20);
            std::vector<void*> blocks;
            for (int i = 0; i < 3; ++i) {
                auto p = h.alloc(3ULL << 20);
                if (!p) {
                    std::fprintf(stderr, "soak: cycle %u: %s\n", cycles, p.error().message().c_str());
                    ++failures;
                    break;
                }
                std::memset(*p, i, 3ULL << 20);
                blocks.push_back(*p);
            }
            for (void* p : blocks)
                if (!h.free(p))
                    ++failures;
        }
        // The device released and assigned again.
        if (vfio::Device* d = v.find_device(*PciAddress::parse(bdf)); d == nullptr) {
            ++failures;
        } else {
            if (auto ok = v.release_device(*d); !ok) {
                std::fprintf(stderr, "soak: %s\n", ok.error().message().c_str());
                ++failures;
            }
            if (!assign())
                ++failures;
        }
        if (++cycles == 1) {
            warm = measure(c);
            print("warm-up", warm);
        }
        if (failures > 10)
            break;
    }
    const Figures last = measure(c);
    print("end", last);
    {
        std::lock_guard g(mu);
        std::printf("soak: %u cycles in %d s: %u secondaries, %u SIGKILLed, %zu cleanups "
                    "(%zu ranges unmapped, %zu bad), %u failures\n",
                    cycles, seconds, spawned, killed, cleanups, cleaned_ranges, cleanup_failures,
                    failures);
        failures += static_cast<unsigned>(cleanup_failures);
        if (cleanups != killed) {
            std::printf("soak: FAIL: %u kills but %zu cleanups\n", killed, cleanups);
            ++failures;
        }
    }
    if (!(last == warm)) {
        std::printf("soak: FAIL: the figures at the end differ from those after the warm-up\n");
        ++failures;
    }
    std::fflush(stdout);
    return failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace vfiokit::eal

int main(int argc, char** argv) {
    using namespace std::string_view_literals;
    if (argc == 4 && argv[1] == "--secondary"sv)
        return vfiokit::eal::secondary_main(std::strtoull(argv[2], nullptr, 0),
                                            argv[3] == "hold"sv);
    int seconds = 60;
    unsigned secondaries = 4;
    std::string bdf = "0000:00:03.0";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (argv[i] == "--seconds"sv)
            seconds = std::atoi(argv[i + 1]);
        else if (argv[i] == "--secondaries"sv)
            secondaries = static_cast<unsigned>(std::atoi(argv[i + 1]));
        else if (argv[i] == "--bdf"sv)
            bdf = argv[i + 1];
        else
            return std::fprintf(stderr, "usage: %s [--seconds S] [--secondaries N] [--bdf BDF]\n",
                                argv[0]),
                   2;
    }
    if (seconds <= 0 || secondaries == 0 || secondaries > 64)
        return std::fprintf(stderr, "soak: --seconds > 0, --secondaries 1..64\n"), 2;
    return vfiokit::eal::primary_main(seconds, secondaries, bdf);
}

// vfiokit-bench-vfio: what Container::map and unmap cost over the ioctl they
// wrap, in every translated VFIO mode, with a device attached to the
// container and with none (group-style modes: the table alone, see the
// report's note); and which ioctls Eal::init plus the first device
// issue per mode. A program, not a test: it prints a report
// (doc/benchmarks.md) and fails only when something could not be run.
//
//   vfiokit-bench-vfio [--rounds N] [--maps N] [--device BDF] [--device2 BDF] [--mb N]
//
// The workload, the same on both sides: N maps of 4 KiB at consecutive
// IOVAs from 16 MiB, reusing 4 buffer pages (page i % 4); then N unmaps of
// one mapping each; then the N maps again and one unmap-all. "raw" is a
// plain loop of the ioctls (IOMMU_IOAS_MAP/UNMAP on an IOAS, or
// VFIO_IOMMU_MAP_DMA/UNMAP_DMA on a container) with no checks but the
// return code; "vfiokit" is Container::map/unmap/unmap_all on a Vfio in that
// mode. Set-up and teardown are not timed. Each round runs every mode and
// both sides, raw first in even rounds and vfiokit first in odd ones, so
// that a shared machine's noise falls on both alike; one unreported warm-up
// round comes first. Runs in the lab's iommu shape: devtools/bench-vfio.sh.
//
// The same rounds also time the front end alone (device attached): both
// sides once more with the map and unmap ioctls served by a seam that does
// not enter the kernel ("null"), and once with that seam making one cheap
// real syscall (getppid) per call instead ("null+syscall", which shows
// what entering the kernel does to the front end's own cost under
// emulation). Those rows report the difference per call in microseconds.
// The paired rows run both sides at once, each on a device of its own,
// interleaved in blocks of calls (paired_run below): the ratio least
// disturbed by a shared host's noise. Last, the parts of the front end's per-call path timed one by one in the
// same process (the EAL lock, the table, a call and return), in
// nanoseconds per operation.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "report.hpp"
#include "vfio_raw.hpp"
#include "vfiokit/eal/eal.hpp"
#include "vfiokit/eal/recursive_lock.hpp"
#include "vfiokit/eal/sysfs.hpp"
#include "vfiokit/eal/vfio/dma_table.hpp"
#include "vfiokit/eal/vfio/vfio.hpp"
#include "vfiokit/uapi/iommufd.hpp"
#include "vfiokit/uapi/vfio.hpp"

namespace vfiokit::bench {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}

struct Config {
    unsigned rounds = 5;
    unsigned maps = 10000;
    std::string device = "0000:00:03.0";
    std::string device2 = "0000:00:04.0";  // the paired rows' second device
    std::uint64_t mb = 64;  // EAL memory for the ioctl count
};

const ModeCase kModes[] = {
    {"cdev", vfio::Mode::cdev, vfio::Type1::automatic, true, nullptr, 0},
    {"compat type1v2", vfio::Mode::compat, vfio::Type1::v2, false, "/dev/iommu",
     uapi::kVfioType1v2Iommu},
    {"group type1v2", vfio::Mode::group, vfio::Type1::v2, false, "/dev/vfio/vfio",
     uapi::kVfioType1v2Iommu},
    {"group type1", vfio::Mode::group, vfio::Type1::v1, false, "/dev/vfio/vfio",
     uapi::kVfioType1Iommu},
};

// The ms of one pass of each operation.
struct Times {
    double map = 0, unmap = 0, unmap_all = 0;
};

// ---- the null kernel ------------------------------------------------------------

// Every call but ioctl straight to the kernel; the seams below differ in
// their ioctl only.
class KernelButIoctl : public vfio::Syscalls {
public:
    int open(const char* p, int f) override { return k_.open(p, f); }
    int close(int fd) override { return k_.close(fd); }
    void* mmap(void* a, std::size_t l, int p, int f, int fd, off_t o) override {
        return k_.mmap(a, l, p, f, fd, o);
    }
    int munmap(void* a, std::size_t l) override { return k_.munmap(a, l); }
    int eventfd(unsigned v, int f) override { return k_.eventfd(v, f); }
    ssize_t pread(int fd, void* b, std::size_t l, off_t o) override { return k_.pread(fd, b, l, o); }
    ssize_t pwrite(int fd, const void* b, std::size_t l, off_t o) override {
        return k_.pwrite(fd, b, l, o);
    }
    ssize_t readlink(const char* p, char* b, std::size_t l) override { return k_.readlink(p, b, l); }

protected:
    vfio::Syscalls& k_ = vfio::real_syscalls();
};

// What serves the map and unmap ioctls in the front-end rows: a byte count
// in place of the kernel (so the unmaps' written-back byte counts agree
// with the table), optionally with one getppid per call. Every other call
// goes to the kernel.
class NullDma final : public KernelButIoctl {
public:
    explicit NullDma(bool syscall) : syscall_(syscall) {}
    int ioctl(int fd, unsigned long r, void* a) override {
        if (r == uapi::kIommuIoasMap) {
            bytes_ += static_cast<uapi::iommu_ioas_map*>(a)->length;
        } else if (r == uapi::kIommuIoasUnmap) {
            auto* u = static_cast<uapi::iommu_ioas_unmap*>(a);
            if (u->iova == 0 && u->length == UINT64_MAX)
                u->length = std::exchange(bytes_, 0);
            else
                bytes_ -= u->length;
        } else if (r == uapi::kVfioIommuMapDma) {
            bytes_ += static_cast<uapi::vfio_iommu_type1_dma_map*>(a)->size;
        } else if (r == uapi::kVfioIommuUnmapDma) {
            auto* u = static_cast<uapi::vfio_iommu_type1_dma_unmap*>(a);
            if ((u->flags & uapi::kVfioDmaUnmapFlagAll) != 0)
                u->size = std::exchange(bytes_, 0);
            else
                bytes_ -= u->size;
        } else {
            return k_.ioctl(fd, r, a);
        }
        if (syscall_)
            (void)::syscall(SYS_getppid);
        return 0;
    }

private:
    bool syscall_;
    std::uint64_t bytes_ = 0;
};

// The three timed phases, the same for the raw loop and vfiokit's calls:
// `maps` maps then one unmap each; the maps again then one unmap-all.
template <class MapOne, class UnmapOne, class UnmapAll>
Result<Times> time_phases(unsigned maps, MapOne map_one, UnmapOne unmap_one, UnmapAll unmap_all) {
    const auto map_each = [&]() -> Result<void> {
        for (unsigned i = 0; i < maps; ++i)
            if (auto ok = map_one(i); !ok)
                return fail(std::move(ok.error()));
        return {};
    };
    Times t;
    auto t0 = Clock::now();
    if (auto ok = map_each(); !ok)
        return fail(std::move(ok.error()));
    auto t1 = Clock::now();
    t.map = ms_since(t0, t1);
    for (unsigned i = 0; i < maps; ++i)
        if (auto ok = unmap_one(i); !ok)
            return fail(std::move(ok.error()));
    t.unmap = ms_since(t1, Clock::now());
    if (auto ok = map_each(); !ok)
        return fail(std::move(ok.error()));
    t0 = Clock::now();
    if (auto ok = unmap_all(); !ok)
        return fail(std::move(ok.error()));
    t.unmap_all = ms_since(t0, Clock::now());
    return t;
}

// ---- raw (vfio_raw.hpp) --------------------------------------------------------

Result<Times> raw_run(const ModeCase& m, bool attach, const Config& c, const char* buf,
                      vfio::Syscalls* via = nullptr) {
    auto s = raw_setup(m, attach, c.device);
    if (!s)
        return fail(std::move(s.error()).context(std::string("raw ") + m.label));
    const RawOps r{m, std::move(*s), via};
    return time_phases(
        c.maps, [&](unsigned i) { return r.map_one(buf, i); },
        [&](unsigned i) { return r.unmap_one(i); }, [&] { return r.unmap_all(); });
}

// ---- vfiokit --------------------------------------------------------------------

// With `via`, the timed calls reach it (the null kernel) through the seam
// instead of the kernel; set-up and teardown still go to the kernel.
Result<Times> vfiokit_run(const ModeCase& m, bool attach, const Config& c, const char* buf,
                          vfio::Syscalls* via = nullptr) {
    vfio::Options o;
    o.mode = m.mode;
    o.type1 = m.type1;
    auto v = vfio::Vfio::create(o);
    if (!v)
        return fail(std::move(v.error()).context(std::string("vfiokit ") + m.label));
    vfio::Container& ct = (*v)->default_container();
    if (attach)
        if (auto d = (*v)->assign_device(ct, c.device); !d)
            return fail(std::move(d.error()).context(std::string("vfiokit ") + m.label));
    std::optional<vfio::ScopedSyscalls> seam;
    if (via != nullptr)
        seam.emplace(*via);
    auto t = time_phases(
        c.maps,
        [&](unsigned i) { return ct.map(buf_page(buf, i), kIovaBase + i * kPage, kPage); },
        [&](unsigned i) { return ct.unmap(kIovaBase + i * kPage, kPage); },
        [&] { return ct.unmap_all(); });
    seam.reset();
    if (!t)
        return t;
    if (ct.mapping_count() != 0)
        return fail(EIO, std::string("vfiokit ") + m.label + ": mappings left after unmap_all");
    return t;
}

// ---- paired blocks ---------------------------------------------------------------

// Both sides live at once, each with an edu of its own (raw on one,
// vfiokit on the other, swapped every round), their calls interleaved in
// blocks: block b of raw's maps, then block b of vfiokit's (the other way
// round in every other block), likewise for the unmaps; then both map
// everything again and each unmaps all in one call. Noise slower than a
// block (most of a shared host's) falls on both halves of a pair alike,
// and each pair gives one ratio; the sides see the same number of
// mappings in their containers at every block.
constexpr unsigned kBlock = 250;

struct Paired {
    std::vector<double> map, unmap;  // vfiokit/raw per block
    double unmap_all = 0;            // vfiokit/raw of the one call
};

Result<Paired> paired_run(const ModeCase& m, bool attach, const Config& c, const char* buf,
                          bool swap) {
    const std::string& raw_dev = swap ? c.device2 : c.device;
    const std::string& vk_dev = swap ? c.device : c.device2;
    const std::string what = std::string("paired ") + m.label;
    auto s = raw_setup(m, attach, raw_dev);
    if (!s)
        return fail(std::move(s.error()).context(what + ", raw on " + raw_dev));
    const RawOps r{m, std::move(*s), nullptr};
    vfio::Options o;
    o.mode = m.mode;
    o.type1 = m.type1;
    auto v = vfio::Vfio::create(o);
    if (!v)
        return fail(std::move(v.error()).context(what));
    vfio::Container& ct = (*v)->default_container();
    if (attach)
        if (auto d = (*v)->assign_device(ct, vk_dev); !d)
            return fail(std::move(d.error()).context(what + ", vfiokit on " + vk_dev));

    const auto block = [](auto op, unsigned from, unsigned to, double& ms) -> Result<void> {
        const auto t0 = Clock::now();
        for (unsigned i = from; i < to; ++i)
            if (auto ok = op(i); !ok)
                return fail(std::move(ok.error()));
        ms = ms_since(t0, Clock::now());
        return {};
    };
    const auto pass = [&](auto raw_op, auto vk_op, std::vector<double>& ratios) -> Result<void> {
        for (unsigned from = 0, b = 0; from < c.maps; from += kBlock, ++b) {
            const unsigned to = std::min(c.maps, from + kBlock);
            double raw_ms = 0, vk_ms = 0;
            for (int k = 0; k < 2; ++k) {
                auto ok = (k == 0) == (b % 2 == 0) ? block(raw_op, from, to, raw_ms)
                                                   : block(vk_op, from, to, vk_ms);
                if (!ok)
                    return fail(std::move(ok.error()).context(what));
            }
            if (raw_ms > 0)
                ratios.push_back(vk_ms / raw_ms);
        }
        return {};
    };
    const auto raw_map = [&](unsigned i) { return r.map_one(buf, i); };
    const auto vk_map = [&](unsigned i) {
        return ct.map(buf_page(buf, i), kIovaBase + i * kPage, kPage);
    };
    Paired out;
    if (auto ok = pass(raw_map, vk_map, out.map); !ok)
        return fail(std::move(ok.error()));
    if (auto ok = pass([&](unsigned i) { return r.unmap_one(i); },
                       [&](unsigned i) { return ct.unmap(kIovaBase + i * kPage, kPage); },
                       out.unmap);
        !ok)
        return fail(std::move(ok.error()));
    std::vector<double> unused;
    if (auto ok = pass(raw_map, vk_map, unused); !ok)
        return fail(std::move(ok.error()));
    double t[2] = {};
    for (int k = 0; k < 2; ++k) {
        const bool raw_turn = (k == 0) != swap;
        const auto t0 = Clock::now();
        auto ok = raw_turn ? r.unmap_all() : ct.unmap_all();
        if (!ok)
            return fail(std::move(ok.error()).context(what));
        t[raw_turn ? 0 : 1] = ms_since(t0, Clock::now());
    }
    out.unmap_all = t[0] > 0 ? t[1] / t[0] : 0;
    if (ct.mapping_count() != 0)
        return fail(EIO, what + ": mappings left after unmap_all");
    return out;
}

// ---- ioctls at EAL init and the first device ------------------------------------

const char* ioctl_name(unsigned long r) {
    static const struct {
        unsigned long req;
        const char* name;
    } names[] = {
        {uapi::kIommuDestroy, "IOMMU_DESTROY"},
        {uapi::kIommuIoasAlloc, "IOMMU_IOAS_ALLOC"},
        {uapi::kIommuIoasIovaRanges, "IOMMU_IOAS_IOVA_RANGES"},
        {uapi::kIommuIoasAllowIovas, "IOMMU_IOAS_ALLOW_IOVAS"},
        {uapi::kIommuIoasMap, "IOMMU_IOAS_MAP"},
        {uapi::kIommuIoasMapFile, "IOMMU_IOAS_MAP_FILE"},
        {uapi::kIommuIoasCopy, "IOMMU_IOAS_COPY"},
        {uapi::kIommuIoasUnmap, "IOMMU_IOAS_UNMAP"},
        {uapi::kIommuIoasNoiommuGetPa, "IOMMU_IOAS_NOIOMMU_GET_PA"},
        {uapi::kIommuOption, "IOMMU_OPTION"},
        {uapi::kIommuVfioIoas, "IOMMU_VFIO_IOAS"},
        {uapi::kIommuGetHwInfo, "IOMMU_GET_HW_INFO"},
        {uapi::kVfioGetApiVersion, "VFIO_GET_API_VERSION"},
        {uapi::kVfioCheckExtension, "VFIO_CHECK_EXTENSION"},
        {uapi::kVfioSetIommu, "VFIO_SET_IOMMU"},
        {uapi::kVfioGroupGetStatus, "VFIO_GROUP_GET_STATUS"},
        {uapi::kVfioGroupSetContainer, "VFIO_GROUP_SET_CONTAINER"},
        {uapi::kVfioGroupUnsetContainer, "VFIO_GROUP_UNSET_CONTAINER"},
        {uapi::kVfioGroupGetDeviceFd, "VFIO_GROUP_GET_DEVICE_FD"},
        {uapi::kVfioDeviceGetInfo, "VFIO_DEVICE_GET_INFO"},
        {uapi::kVfioDeviceGetRegionInfo, "VFIO_DEVICE_GET_REGION_INFO"},
        {uapi::kVfioDeviceGetIrqInfo, "VFIO_DEVICE_GET_IRQ_INFO"},
        {uapi::kVfioDeviceSetIrqs, "VFIO_DEVICE_SET_IRQS"},
        {uapi::kVfioDeviceReset, "VFIO_DEVICE_RESET"},
        {uapi::kVfioDeviceFeature, "VFIO_DEVICE_FEATURE"},
        {uapi::kVfioDeviceBindIommufd, "VFIO_DEVICE_BIND_IOMMUFD"},
        {uapi::kVfioDeviceAttachIommufdPt, "VFIO_DEVICE_ATTACH_IOMMUFD_PT"},
        {uapi::kVfioDeviceDetachIommufdPt, "VFIO_DEVICE_DETACH_IOMMUFD_PT"},
        {uapi::kVfioIommuGetInfo, "VFIO_IOMMU_GET_INFO"},
        {uapi::kVfioIommuMapDma, "VFIO_IOMMU_MAP_DMA"},
        {uapi::kVfioIommuUnmapDma, "VFIO_IOMMU_UNMAP_DMA"},
    };
    for (const auto& n : names)
        if (n.req == r)
            return n.name;
    return "?";
}

// Forwards to the kernel and notes each ioctl's request, in order.
class IoctlLog final : public KernelButIoctl {
public:
    std::vector<unsigned long> ioctls;
    int ioctl(int fd, unsigned long r, void* a) override {
        ioctls.push_back(r);
        return k_.ioctl(fd, r, a);
    }
};

// Eal::init(-m mb) in the mode, then the device into the default container:
// the ioctls issued, in order.
Result<std::vector<unsigned long>> init_ioctls(const ModeCase& m, const Config& c) {
    eal::Options o;
    o.vfio.mode = m.mode;
    o.vfio.type1 = m.type1;
    o.memory_mb = c.mb;
    IoctlLog log;
    std::unique_ptr<eal::Eal> e;
    {
        vfio::ScopedSyscalls guard(log);
        auto ok = eal::Eal::init(o);
        if (!ok)
            return fail(std::move(ok.error()).context(m.label));
        e = std::move(*ok);
        auto d = e->vfio().assign_device(e->vfio().default_container(), c.device);
        if (!d)
            return fail(std::move(d.error()).context(m.label));
    }
    return log.ioctls;
}

// ---- the front end's parts ------------------------------------------------------

// This process's minor page faults so far (first touches of memory).
long minor_faults() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    return u.ru_minflt;
}

// Out of line on purpose: what one call and its return cost.
[[gnu::noinline]] std::uint64_t add_one(std::uint64_t v) {
    asm volatile("" : "+r"(v));
    return v + 1;
}

// ns per operation of each part of map's and unmap's per-call path, one
// round: `n` times each, timed as a whole.
std::vector<double> time_parts(unsigned n) {
    std::vector<double> ns;
    const auto per_op = [n](Clock::time_point a, Clock::time_point b) {
        return std::chrono::duration<double, std::nano>(b - a).count() / n;
    };
    RecursiveLock lock;
    auto t0 = Clock::now();
    for (unsigned i = 0; i < n; ++i) {
        lock.lock();
        asm volatile("" ::: "memory");
        lock.unlock();
    }
    ns.push_back(per_op(t0, Clock::now()));
    vfio::DmaTable table;
    const long faults = minor_faults();
    t0 = Clock::now();
    for (unsigned i = 0; i < n; ++i) {
        const std::uint64_t iova = kIovaBase + std::uint64_t{i} * kPage;
        if (table.above_all(iova))
            table.append({iova, iova, kPage, false});
    }
    ns.push_back(per_op(t0, Clock::now()));
    const long append_faults = minor_faults() - faults;
    t0 = Clock::now();
    for (unsigned i = 0; i < n; ++i) {
        vfio::DmaTable::Extent x;
        if (table.one_at_either_end(kIovaBase + std::uint64_t{i} * kPage, kPage, x))
            table.erase(x);
    }
    ns.push_back(per_op(t0, Clock::now()));
    std::uint64_t v = 0;
    t0 = Clock::now();
    for (unsigned i = 0; i < n; ++i)
        v = add_one(v);
    ns.push_back(per_op(t0, Clock::now()));
    if (v != n || table.size() != 0)
        ns.clear();  // cannot be: the loops did not run as written
    else
        ns.push_back(static_cast<double>(append_faults));
    return ns;
}

const char* const kParts[] = {
    "EAL lock: lock + unlock",
    "table: overlap check + append",
    "table: whole-mapping check + erase",
    "one call and return",
    "page faults of the appends (count)",
};

// ---- report ---------------------------------------------------------------------

// What serves the timed calls of a cell.
enum class Kernel { real, null, null_syscall };

struct Cell {
    const ModeCase* mode;
    bool attach;
    Kernel kernel;
    Samples raw[3], vfiokit[3];  // map, unmap, unmap_all
};

const char* device_label(const Cell& c) {
    switch (c.kernel) {
    case Kernel::real: return c.attach ? "edu" : "none";
    case Kernel::null: return "edu, null";
    case Kernel::null_syscall: return "edu, null+syscall";
    }
    return "?";
}

std::string fmt(double v, int decimals) {
    char b[64];
    std::snprintf(b, sizeof b, "%.*f", decimals, v);
    return b;
}

std::string spread(const std::vector<double>& v, int decimals) {
    if (v.empty())
        return "-";
    const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
    return fmt(median(v), decimals) + " [" + fmt(*lo, decimals) + ", " + fmt(*hi, decimals) + "]";
}

// The paired rows of one mode, every measured round together.
struct PairedCell {
    const ModeCase* mode;
    bool attach;
    std::vector<double> map, unmap, unmap_all;
};

// "median [min, max], middle half [q1, q3], N pairs" of per-pair ratios.
std::string pair_spread(std::vector<double> v) {
    if (v.empty())
        return "-";
    std::sort(v.begin(), v.end());
    const auto q = [&](double f) { return v[static_cast<std::size_t>(f * (v.size() - 1) + 0.5)]; };
    return fmt(median(v), 3) + " [" + fmt(v.front(), 2) + ", " + fmt(v.back(), 2) +
           "], middle half [" + fmt(q(0.25), 3) + ", " + fmt(q(0.75), 3) + "], " +
           std::to_string(v.size()) + " pairs";
}

void print_report(const Config& c, const std::vector<Cell>& cells,
                  const std::vector<PairedCell>& paired,
                  const std::vector<std::vector<double>>& parts) {
    std::printf("\n==== vfiokit VFIO map/unmap benchmark: %u maps of 4 KiB, device %s ====\n",
                c.maps, c.device.c_str());
    std::printf("%u interleaved rounds (after 1 warm-up). Cells: median [min, max] of the rounds.\n"
                "Ratio: vfiokit/raw per round (both ran in the same round), median [min, max];\n"
                "1.00 means no overhead. Noisy machine (QEMU TCG): a range spanning 1 is not a\n"
                "difference.\n\n",
                c.rounds);
    static const char* ops[] = {"map", "unmap each", "unmap all"};
    std::vector<std::vector<std::string>> rows;
    rows.push_back({"mode", "device", "operation", "raw ms", "vfiokit ms", "vfiokit/raw"});
    for (const Cell& cell : cells)
        for (int op = 0; op < 3; ++op) {
            // The kernel's rows: the paired ratio. The null kernel's: what
            // the front end adds per call, in microseconds (unmap all is one
            // call).
            const bool real = cell.kernel == Kernel::real;
            const double calls = op == 2 ? 1.0 : c.maps;
            std::vector<double> q;
            for (std::size_t i = 0; i < cell.raw[op].rounds(); ++i)
                if (auto a = cell.vfiokit[op].at(i), b = cell.raw[op].at(i); a && b && *b > 0)
                    q.push_back(real ? *a / *b : (*a - *b) * 1000.0 / calls);
            rows.push_back({op == 0 ? cell.mode->label : "", op == 0 ? device_label(cell) : "",
                            ops[op], spread(cell.raw[op].values(), 1),
                            spread(cell.vfiokit[op].values(), 1),
                            real || q.empty() ? spread(q, 2) : "+" + spread(q, 2) + " us"});
        }
    std::size_t w[6] = {};
    for (const auto& r : rows)
        for (std::size_t i = 0; i < 6; ++i)
            w[i] = std::max(w[i], r[i].size());
    for (std::size_t n = 0; n < rows.size(); ++n) {
        std::string line;
        for (std::size_t i = 0; i < 6; ++i) {
            const std::string pad(w[i] - rows[n][i].size(), ' ');
            line += (i < 3 ? rows[n][i] + pad : pad + rows[n][i]) + (i < 5 ? "  " : "");
        }
        std::printf("%s\n", line.c_str());
        if (n == 0)
            std::printf("%s\n", std::string(line.size(), '-').c_str());
    }
    std::printf("\nNo device: cdev maps into an IOAS no device is attached to, on both sides.\n"
                "Group-style modes (compat, group type1v2, group type1) have no IOMMU model\n"
                "until a group joins the container, and vfiokit joins the group with its first\n"
                "device: until then Container::map and unmap only update the table (no ioctl;\n"
                "the table is replayed at the first device), so there is no raw loop (\"-\") and\n"
                "the vfiokit column is the table's own cost.\n"
                "\n"
                "\"edu, null\": the edu attached, but the timed map and unmap ioctls go to a seam\n"
                "that counts bytes instead of entering the kernel, on both sides (raw: a loop of\n"
                "calls to that seam). The last column is then vfiokit's extra time per call, in\n"
                "microseconds, median [min, max] of the rounds: the front end's own cost.\n"
                "\"edu, null+syscall\": the same with one getppid syscall per call on both\n"
                "sides: the front end's cost when each call also enters the kernel.\n");
    std::printf("\nPaired blocks (raw on %s and vfiokit on %s, swapped every round, or no\n"
                "device on either side; both containers live at once, the calls interleaved in\n"
                "blocks of %u, which side goes first alternating): vfiokit/raw of each block\n"
                "pair, over all measured rounds; unmap all: one pair a round.\n",
                c.device.c_str(), c.device2.c_str(), kBlock);
    for (const PairedCell& pc : paired) {
        std::printf("  %-15s %-5s map         %s\n", pc.mode->label, pc.attach ? "edu" : "none",
                    pair_spread(pc.map).c_str());
        std::printf("  %-21s unmap each  %s\n", "", pair_spread(pc.unmap).c_str());
        std::printf("  %-21s unmap all   %s\n", "", pair_spread(pc.unmap_all).c_str());
    }
    std::printf("\nThe per-call path's parts, each timed alone (%u times a round), ns per\n"
                "operation, median [min, max] of the rounds:\n",
                c.maps);
    for (std::size_t i = 0; i < std::size(kParts); ++i) {
        std::vector<double> v;
        for (const auto& round : parts)
            if (i < round.size())
                v.push_back(round[i]);
        std::printf("  %-36s %s\n", kParts[i], spread(v, 0).c_str());
    }
}

bool parse_args(int argc, char** argv, Config& c) {
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "-h" || a == "--help") {
            std::printf("usage: vfiokit-bench-vfio [--rounds N] [--maps N] [--device BDF]\n"
                        "                          [--device2 BDF] [--mb N]\n"
                        "  --rounds N    measured rounds, after one warm-up (default 5)\n"
                        "  --maps N      4 KiB maps per pass (default 10000)\n"
                        "  --device BDF  the device on vfio-pci to attach (default 0000:00:03.0)\n"
                        "  --device2 BDF a second device on vfio-pci, in a group of its own,\n"
                        "                for the paired rows (default 0000:00:04.0)\n"
                        "  --mb N        EAL memory (MiB of hugepages) for the ioctl count\n"
                        "                (default 64)\n"
                        "  -h, --help    this text\n");
            std::exit(0);
        }
        if (i + 1 >= argc) {
            std::fprintf(stderr, "vfiokit-bench-vfio: %s needs a value\n", a.c_str());
            return false;
        }
        const char* v = argv[++i];
        const auto num = [&] { return std::strtoull(v, nullptr, 0); };
        if (a == "--rounds")
            c.rounds = static_cast<unsigned>(num());
        else if (a == "--maps")
            c.maps = static_cast<unsigned>(num());
        else if (a == "--device")
            c.device = v;
        else if (a == "--device2")
            c.device2 = v;
        else if (a == "--mb")
            c.mb = num();
        else {
            std::fprintf(stderr, "vfiokit-bench-vfio: unknown option %s (see --help)\n", a.c_str());
            return false;
        }
    }
    if (c.rounds == 0 || c.maps == 0 || c.mb == 0) {
        std::fprintf(stderr, "vfiokit-bench-vfio: counts must be positive\n");
        return false;
    }
    return true;
}

int run(const Config& c) {
    // The 4 buffer pages every map reuses, touched so the kernel pins
    // present pages.
    void* p = ::mmap(nullptr, kBufPages * kPage, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED) {
        std::perror("vfiokit-bench-vfio: mmap");
        return 1;
    }
    const char* buf = static_cast<const char*>(p);

    std::printf("vfiokit-bench-vfio: ioctls of Eal::init(-m %u) + assign_device(%s), per mode\n",
                static_cast<unsigned>(c.mb), c.device.c_str());
    for (const ModeCase& m : kModes) {
        auto log = init_ioctls(m, c);
        if (!log) {
            std::printf("vfiokit-bench-vfio: %s\n", log.error().message().c_str());
            return 1;
        }
        std::printf("  %-15s %2zu:", m.label, log->size());
        for (unsigned long r : *log)
            std::printf(" %s", ioctl_name(r));
        std::printf("\n");
    }
    std::fflush(stdout);

    NullDma null(false), null_syscall(true);
    std::vector<std::vector<double>> parts;
    std::vector<Cell> cells;
    for (const ModeCase& m : kModes)
        for (bool attach : {true, false})
            cells.push_back({&m, attach, Kernel::real, {}, {}});
    for (const ModeCase& m : kModes)
        for (Kernel k : {Kernel::null, Kernel::null_syscall})
            cells.push_back({&m, true, k, {}, {}});
    std::vector<PairedCell> paired;
    for (const ModeCase& m : kModes)
        for (bool attach : {true, false})
            if (attach || m.ioas)  // group-style without a device: no raw (above)
                paired.push_back({&m, attach, {}, {}, {}});
    for (unsigned n = 0; n <= c.rounds; ++n) {
        for (PairedCell& pc : paired) {
            auto one = paired_run(*pc.mode, pc.attach, c, buf, n % 2 == 1);
            if (!one) {
                std::printf("vfiokit-bench-vfio: %s\n", one.error().message().c_str());
                return 1;
            }
            std::printf("%s %u: %-15s %-4s paired blocks: vfiokit/raw map %.3f, unmap each %.3f, "
                        "unmap all %.3f (medians of the round)\n",
                        n ? "round" : "warm-up", n, pc.mode->label, pc.attach ? "edu" : "none",
                        median(one->map),
                        median(one->unmap), one->unmap_all);
            std::fflush(stdout);
            if (n == 0)
                continue;
            pc.map.insert(pc.map.end(), one->map.begin(), one->map.end());
            pc.unmap.insert(pc.unmap.end(), one->unmap.begin(), one->unmap.end());
            pc.unmap_all.push_back(one->unmap_all);
        }
        if (n > 0) {
            auto one = time_parts(c.maps);
            if (one.empty()) {
                std::printf("vfiokit-bench-vfio: the parts' loops did not run as written\n");
                return 1;
            }
            parts.push_back(std::move(one));
        }
        for (Cell& cell : cells) {
            // Group-style without a device: vfiokit only records (see the
            // report's note); there is no raw loop to run.
            const bool has_raw = cell.attach || cell.mode->ioas;
            vfio::Syscalls* via = cell.kernel == Kernel::null           ? &null
                                  : cell.kernel == Kernel::null_syscall ? &null_syscall
                                                                        : nullptr;
            Result<Times> raw = Times{}, vk = Times{};
            for (int side = 0; side < 2; ++side) {
                if ((side == 0) == (n % 2 == 0)) {
                    if (has_raw)
                        raw = raw_run(*cell.mode, cell.attach, c, buf, via);
                } else {
                    vk = vfiokit_run(*cell.mode, cell.attach, c, buf, via);
                }
            }
            for (auto* r : {&raw, &vk})
                if (!*r) {
                    std::printf("vfiokit-bench-vfio: %s\n", r->error().message().c_str());
                    return 1;
                }
            const std::string raw_ms = has_raw ? fmt(raw->map, 1) + "/" + fmt(raw->unmap, 1) + "/" +
                                                     fmt(raw->unmap_all, 1) + " ms"
                                               : std::string("-");
            std::printf("%s %u: %-15s %-17s raw %s, vfiokit %.1f/%.1f/%.1f ms\n",
                        n ? "round" : "warm-up", n, cell.mode->label, device_label(cell),
                        raw_ms.c_str(), vk->map, vk->unmap, vk->unmap_all);
            std::fflush(stdout);
            if (n == 0)
                continue;
            const double rv[3] = {raw->map, raw->unmap, raw->unmap_all};
            const double vv[3] = {vk->map, vk->unmap, vk->unmap_all};
            for (int op = 0; op < 3; ++op) {
                if (has_raw)
                    cell.raw[op].add(rv[op]);
                cell.vfiokit[op].add(vv[op]);
            }
        }
    }
    print_report(c, cells, paired, parts);
    ::munmap(p, kBufPages * kPage);
    return 0;
}

}  // namespace
}  // namespace vfiokit::bench

int main(int argc, char** argv) {
    vfiokit::bench::Config c;
    if (!vfiokit::bench::parse_args(argc, argv, c))
        return 2;
    return vfiokit::bench::run(c);
}

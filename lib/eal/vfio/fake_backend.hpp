// A fake ContainerBackend for host unit tests of the front end
// (container.cpp, vfio.cpp): a map of what "the kernel" has mapped, the
// group-style rule that a container has no IOMMU model (and drops its
// mappings) without a device, type1's DMA entry limit, IOVA ranges, and
// faults to inject. It checks nothing the front end is responsible for; it
// records and answers, so a test can see exactly what the front end asked.
//
// A test helper, not a replacement for the lab tests: every backend is
// tested against the real kernel there. Header-only; tests only.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backend.hpp"
#include "vfiokit/eal/vfio/vfio.hpp"

namespace vfiokit::vfio {

namespace fake {

// What the fake kernel holds and how it misbehaves. Shared by the test and
// the backend (and outlives both).
struct FakeIommu {
    // Group-style (group, compat): no IOMMU model until the first device
    // attaches; the kernel drops every mapping when the last one leaves.
    // Otherwise (cdev) DMA is ready from the start.
    bool group_style = true;
    std::vector<IovaRange> ranges = {{0, (1ULL << 39) - 1}};
    std::optional<std::uint32_t> entry_limit;  // type1's dma_entry_limit; nullopt: none

    std::map<std::uint64_t, DmaMapping> mapped;  // by IOVA
    unsigned devices = 0;

    unsigned map_calls = 0, unmap_calls = 0, unmap_all_calls = 0, ranges_calls = 0,
             avail_calls = 0;
    unsigned fail_map_call = 0;         // map call number (1-based) that fails with EIO; 0: none
    std::uint64_t unmap_bytes_skew = 0;  // added to the byte counts unmap reports
    unsigned fail_unmap_call = 0;       // unmap call number (1-based) that fails with EIO; 0: none
    // The PCI command register (config offset 4) of every device, when set:
    // config reads and writes of those 2 bytes are served, counted.
    std::optional<std::uint16_t> command;
    unsigned command_writes = 0;

    // cdev no-IOMMU: nothing translates, mappings only pin, and the
    // physical address of a mapped byte is known while a device is
    // attached. Mapping i's memory lies at pa_base + i * pa_stride; the
    // fake answers a lookup `pa_step` bytes at a time at most (the kernel
    // answers in pieces too), and the memory jumps by `pa_gap` bytes every
    // pa_step bytes (0: contiguous).
    bool noiommu = false;
    std::uint64_t pa_base = 0x40000000ULL, pa_stride = 0x10000000ULL;
    std::uint64_t pa_step = 4096, pa_gap = 0;
    unsigned pa_calls = 0;
    std::map<std::uint64_t, std::uint64_t> pa_of_mapping;  // by IOVA: where its memory lies

    // Peer-to-peer (map_device_bar): whether the container maps dma-bufs
    // (cdev's does); the size of each BAR its devices report (others:
    // region info refused); devices' exports and the maps of their
    // dma-bufs; and faults. An export gives a real fd (a memfd), so a test
    // can count what is left open.
    bool dma_bufs = false;
    std::map<std::uint32_t, std::uint64_t> bar_sizes;
    bool reset_works = false;
    unsigned exports = 0, dma_buf_map_calls = 0;
    unsigned fail_dma_buf_map_call = 0;  // map_dma_buf call number that fails with EIO
    bool dma_buf_fd_was_open = false;    // at the last map_dma_buf

    [[nodiscard]] bool ready() const { return !group_style || devices > 0; }
};

class FakeDevice final : public BackendDevice {
public:
    explicit FakeDevice(std::shared_ptr<FakeIommu> k) : k_(std::move(k)) { ++k_->devices; }
    ~FakeDevice() override {
        if (--k_->devices == 0 && k_->group_style)
            k_->mapped.clear();  // the container lost its IOMMU model
    }
    [[nodiscard]] int fd() const override { return -1; }

    // The front end's DMA logic is what these tests are about: the device
    // operations are refused, as a backend without them would.
    [[nodiscard]] Result<DeviceInfo> info() override { return fail(no("info")); }
    [[nodiscard]] Result<RegionInfo> region_info(std::uint32_t index) override {
        auto it = k_->bar_sizes.find(index);
        if (it == k_->bar_sizes.end())
            return fail(no("region info"));
        RegionInfo r;
        r.index = index;
        r.size = it->second;
        r.readable = r.writable = r.mappable = r.size != 0;
        return r;
    }
    [[nodiscard]] Result<void> read_region(std::uint32_t index, std::uint64_t offset, void* buf,
                                           std::size_t len) override {
        if (!is_command(index, offset, len))
            return fail(no("region read"));
        std::memcpy(buf, &*k_->command, len);
        return {};
    }
    [[nodiscard]] Result<void> write_region(std::uint32_t index, std::uint64_t offset,
                                            const void* buf, std::size_t len) override {
        if (!is_command(index, offset, len))
            return fail(no("region write"));
        std::memcpy(&*k_->command, buf, len);
        ++k_->command_writes;
        return {};
    }
    [[nodiscard]] Result<Mapping> map_region(std::uint32_t, std::uint64_t, std::uint64_t, int,
                                             void*) override {
        return fail(no("region mmap"));
    }
    [[nodiscard]] Result<IrqInfo> irq_info(std::uint32_t) override { return fail(no("IRQ info")); }
    [[nodiscard]] bool is_command(std::uint32_t index, std::uint64_t offset, std::size_t len) const {
        return k_->command && index == 7 && offset == 4 && len == 2;  // VFIO_PCI_CONFIG_REGION_INDEX
    }
    [[nodiscard]] Result<void> set_irqs(const IrqRequest&) override { return fail(no("set IRQs")); }
    [[nodiscard]] Result<void> reset() override {
        if (!k_->reset_works)
            return fail(no("reset"));
        return {};
    }
    [[nodiscard]] Result<void> feature(std::uint32_t, FeatureOp, std::span<std::uint8_t>) override {
        return fail(no("device feature"));
    }
    [[nodiscard]] Result<Fd> export_dma_buf(std::uint32_t, std::uint64_t, std::uint64_t) override {
        ++k_->exports;
        const int fd = ::memfd_create("fake-dma-buf", MFD_CLOEXEC);
        if (fd < 0)
            return fail(errno, "fake export: memfd_create");
        return Fd(fd);
    }

private:
    static Error no(std::string_view what) { return not_supported(what, "the fake backend"); }
    std::shared_ptr<FakeIommu> k_;
};

class FakeBackend final : public ContainerBackend {
public:
    explicit FakeBackend(std::shared_ptr<FakeIommu> k, Mode m = Mode::group)
        : k_(std::move(k)), mode_(m) {}

    [[nodiscard]] Mode mode() const override { return mode_; }
    [[nodiscard]] std::string describe() const override { return "fake backend"; }
    [[nodiscard]] Result<std::unique_ptr<BackendDevice>> attach(const DeviceRequest&) override {
        return std::make_unique<FakeDevice>(k_);
    }
    [[nodiscard]] bool dma_ready() const override { return k_->ready(); }
    [[nodiscard]] bool translates() const override { return !k_->noiommu; }
    [[nodiscard]] bool maps_memory() const override { return true; }
    [[nodiscard]] Result<PhysicalRange> physical_address(std::uint64_t iova,
                                                         std::uint64_t max_len) override {
        ++k_->pa_calls;
        if (!k_->noiommu)
            return fail(ENOTSUP, "fake: translates");
        if (k_->devices == 0)
            return fail(EAGAIN, "fake: no device attached, nothing pinned");
        for (const auto& [at, m] : k_->mapped) {
            if (iova < at || iova >= m.end())
                continue;
            const std::uint64_t off = iova - at;
            const std::uint64_t step_left = k_->pa_step - off % k_->pa_step;
            const std::uint64_t len = std::min({max_len, step_left, m.end() - iova});
            return PhysicalRange{k_->pa_of_mapping[at] + off + off / k_->pa_step * k_->pa_gap, len};
        }
        return fail(ENOENT, "fake: nothing mapped there");
    }

    [[nodiscard]] Result<void> map(std::uint64_t vaddr, std::uint64_t iova,
                                   std::uint64_t len) override {
        ++k_->map_calls;
        if (!k_->ready())
            return fail(ENODEV, "fake map: no IOMMU model");
        if (k_->map_calls == k_->fail_map_call)
            return fail(EIO, "fake map");
        if (k_->entry_limit && k_->mapped.size() >= *k_->entry_limit)
            return fail(ENOSPC, "fake map: dma_entry_limit");
        for (const auto& [at, m] : k_->mapped)
            if (iova < m.end() && at < iova + len)
                return fail(EEXIST, "fake map: overlap");
        k_->pa_of_mapping[iova] = k_->pa_base + k_->pa_stride * k_->mapped.size();
        k_->mapped[iova] = DmaMapping{iova, vaddr, len};
        return {};
    }
    [[nodiscard]] Result<void> maps_dma_bufs() const override {
        if (!k_->dma_bufs)
            return fail(dma_bufs_unsupported());
        return {};
    }
    [[nodiscard]] Result<void> map_dma_buf(int fd, std::uint64_t iova, std::uint64_t len) override {
        ++k_->dma_buf_map_calls;
        k_->dma_buf_fd_was_open = ::fcntl(fd, F_GETFD) != -1;
        if (k_->dma_buf_map_calls == k_->fail_dma_buf_map_call)
            return fail(EIO, "fake map_dma_buf");
        for (const auto& [at, m] : k_->mapped)
            if (iova < m.end() && at < iova + len)
                return fail(EEXIST, "fake map_dma_buf: overlap");
        k_->mapped[iova] = DmaMapping{iova, 0, len};
        return {};
    }
    [[nodiscard]] Result<std::uint64_t> unmap(std::uint64_t iova, std::uint64_t len) override {
        ++k_->unmap_calls;
        if (k_->unmap_calls == k_->fail_unmap_call)
            return fail(EIO, "fake unmap");
        std::uint64_t bytes = 0;
        for (auto it = k_->mapped.begin(); it != k_->mapped.end();) {
            if (it->first >= iova && it->second.end() <= iova + len) {
                bytes += it->second.len;
                it = k_->mapped.erase(it);
            } else {
                ++it;
            }
        }
        return bytes + k_->unmap_bytes_skew;
    }
    [[nodiscard]] Result<std::uint64_t> unmap_all() override {
        ++k_->unmap_all_calls;
        std::uint64_t bytes = 0;
        for (const auto& [at, m] : k_->mapped)
            bytes += m.len;
        k_->mapped.clear();
        return bytes + k_->unmap_bytes_skew;
    }
    [[nodiscard]] Result<std::vector<IovaRange>> iova_ranges() override {
        ++k_->ranges_calls;
        return k_->ranges;
    }
    [[nodiscard]] Result<std::optional<std::uint32_t>> dma_entries_avail() override {
        ++k_->avail_calls;
        if (!k_->entry_limit)
            return std::optional<std::uint32_t>{};
        return std::optional<std::uint32_t>{*k_->entry_limit -
                                            static_cast<std::uint32_t>(k_->mapped.size())};
    }
    [[nodiscard]] SharedContainer share() const override { return {}; }
    [[nodiscard]] Result<std::unique_ptr<BackendDevice>> adopt_device(const DeviceRequest&, Fd,
                                                                      Fd) override {
        return fail(ENOTSUP, "fake backend: adopt");
    }

private:
    std::shared_ptr<FakeIommu> k_;
    Mode mode_;
};

}  // namespace fake

// A Vfio in mode `m` whose default container is `b`, reading device facts
// from `root` (a vfiokit::testing::FakeSysfs tree).
struct VfioTesting {
    static std::unique_ptr<Vfio> make(const sysfs::Root& root, Mode m,
                                      std::unique_ptr<ContainerBackend> b) {
        std::unique_ptr<Vfio> v(new Vfio());
        v->options_.mode = m;
        v->root_ = root;
        v->mode_ = m;
        v->mode_reason_ = "forced (fake backend)";
        v->containers_.push_back(
            std::unique_ptr<Container>(new Container(v.get(), std::move(b), true)));
        return v;
    }
};

}  // namespace vfiokit::vfio

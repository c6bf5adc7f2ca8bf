// Container front end: the mode-independent DMA semantics (vfio.hpp).
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <mutex>
#include <optional>

#include "backend.hpp"
#include "dma_path.hpp"
#include "vfiokit/eal/format.hpp"
#include "vfiokit/eal/vfio/vfio.hpp"
#include "vfiokit/uapi/vfio.hpp"

namespace vfiokit::vfio {

namespace {

std::string ranges_text(const std::vector<IovaRange>& rs) {
    std::string s;
    for (const auto& r : rs)
        s += (s.empty() ? "" : ", ") + inclusive_range_text(r.start, r.last);
    return s.empty() ? "none" : s;
}

// Group no-IOMMU refuses what needs mappings, with one message.
Error untranslated(std::string op) {
    Error e(ENOTSUP, std::move(op));
    e.hint("no-IOMMU mode has no DMA translation and maps nothing: the device sees physical "
           "addresses, so give it the memory's physical address (IOVA = PA, from "
           "/proc/self/pagemap of pinned memory) instead of mapping; or use cdev-noiommu mode "
           "(Linux 7.3+), where mapping pins memory and the kernel reports its physical "
           "addresses");
    return e;
}

// Group-style containers do not know their ranges before the first group;
// the allocator then assumes the x86 layout below the MSI window, and the
// replay at the first assignment checks the real ranges.
const std::vector<IovaRange> kAssumedRanges = {{0, 0xfedfffffULL}, {0xfef00000ULL, ~0ULL}};
// IOVAs below this are never handed out, so 0 is never a valid DMA address.
constexpr std::uint64_t kAllocFloor = 1ULL << 20;

// The path of a backend without one: map() and unmap() always ask the
// backend. Never written (only a path with a protocol is).
DmaPath g_no_path;

[[gnu::cold, gnu::noinline]] std::string map_text(std::uint64_t vaddr, std::uint64_t iova,
                                                  std::uint64_t len) {
    return "map " + range_text(iova, len) + " from vaddr " + hex(vaddr);
}

// unmap()'s words and errors, out of line: unmap is a per-call path.
[[gnu::cold, gnu::noinline]] std::string unmap_text(std::uint64_t iova, std::uint64_t len) {
    return "unmap " + range_text(iova, len);
}

[[gnu::cold, gnu::noinline]] std::string bytes_differ(std::uint64_t kernel, std::uint64_t table) {
    return "the kernel unmapped " + hex(kernel) + " bytes, the table holds " + hex(table);
}

[[gnu::cold, gnu::noinline]] Error unmapped_differs(std::uint64_t iova, std::uint64_t len,
                                                    std::uint64_t kernel, std::uint64_t table,
                                                    const std::string& container) {
    return Error(EIO, unmap_text(iova, len) + ": " + bytes_differ(kernel, table)).context(container);
}

[[gnu::cold, gnu::noinline]] Error not_ours(std::uint64_t iova, std::uint64_t len,
                                            const DmaMapping& theirs) {
    return Error(EPERM, unmap_text(iova, len) + ": mapping " + range_text(theirs.iova, theirs.len) +
                            " belongs to the process this container was imported from")
        .hint("ask that process to unmap it; a process unmaps only what it mapped");
}

// check_limits()'s errors, out of line: the checks are on every map, the
// messages rare.
[[gnu::cold, gnu::noinline]] Error outside_ranges(std::uint64_t iova, std::uint64_t len,
                                                  const std::vector<IovaRange>& ranges) {
    return Error(ERANGE, "map " + range_text(iova, len) +
                             ": IOVA outside the ranges the kernel accepts (" + ranges_text(ranges) +
                             ")")
        .hint("take IOVAs from alloc_iova(); IOVA == VA fails for typical user addresses on "
              "IOMMUs with fewer address bits (39 on QEMU's intel-iommu)");
}

[[gnu::cold, gnu::noinline]] Error entry_limit(std::uint64_t iova, std::uint64_t len,
                                               std::size_t mappings) {
    return Error(ENOSPC, "map " + range_text(iova, len) + ": type1 DMA entry limit reached (" +
                             std::to_string(mappings) + " mappings in this container)")
        .hint("raise the vfio_iommu_type1.dma_entry_limit module parameter, or map larger "
              "contiguous regions");
}

}  // namespace

Container::Container(Vfio* v, std::unique_ptr<ContainerBackend> b, bool is_default)
    : vfio_(v), default_(is_default), backend_(std::move(b)) {
    path_ = backend_->dma_path();
    if (path_ == nullptr)
        path_ = &g_no_path;
}

// Devices first (their destructors release them from the backend's
// container), then the backend (container fd / IOAS); the kernel drops the
// remaining mappings with the container. An imported container outlives
// this process in its owner, so what this process mapped is unmapped here:
// it would keep this process's pages pinned (type1 and iommufd hold the
// mapper's mm, vfio_iommu_type1.c vfio_dma_do_map, iommufd/pages.c).
Container::~Container() {
    std::lock_guard g(vfio_->control_lock());
    if (imported_)
        (void)unmap_own();
    devices_.clear();
}

void Container::let_go() {
    std::lock_guard g(vfio_->control_lock());
    imported_ = true;
    inherited_.clear();
    for (const auto& m : table_.all())
        inherited_.insert(m.iova);
    backend_->set_owner(false);
    for (const auto& d : devices_)
        d->backend_->set_owner(false);
}

void Container::take_charge() {
    std::lock_guard g(vfio_->control_lock());
    imported_ = false;
    inherited_.clear();
    auto all = table_.all();
    table_.clear();
    for (auto m : all) {
        m.by_file = true;  // IOMMU_IOAS_CHANGE_PROCESS took them: all by file
        table_.insert(m);
    }
    backend_->set_owner(true);
    for (const auto& d : devices_)
        d->backend_->set_owner(true);
}

Mode Container::mode() const { return backend_->mode(); }

std::optional<DmaMapping> Container::lookup(std::uint64_t iova) const {
    std::lock_guard g(vfio_->control_lock());
    return table_.lookup(iova);
}

std::size_t Container::mapping_count() const {
    std::lock_guard g(vfio_->control_lock());
    return table_.size();
}

std::vector<DmaMapping> Container::mappings() const {
    std::lock_guard g(vfio_->control_lock());
    return table_.all();
}
bool Container::translates() const { return backend_->translates(); }
bool Container::maps_memory() const { return backend_->maps_memory(); }
bool Container::reports_physical() const {
    return backend_->maps_memory() && !backend_->translates();
}

Result<PhysicalRange> Container::physical_address(std::uint64_t iova, std::uint64_t max_len) const {
    std::lock_guard g(vfio_->control_lock());
    const std::string what = "physical address of IOVA " + hex(iova);
    if (!reports_physical())
        return fail(Error(ENOTSUP, what)
                        .context(name())
                        .hint(translates() ? "an IOMMU translates: devices use IOVAs, not "
                                             "physical addresses"
                                           : "group no-IOMMU mode maps nothing: read physical "
                                             "addresses from /proc/self/pagemap (virt_to_phys)"));
    const auto m = table_.lookup(iova);
    if (!m)
        return fail(Error(ENOENT, what + ": not mapped in this container")
                        .context(name())
                        .hint("map the memory first; its IOVA is the key the lookup goes by"));
    auto r = backend_->physical_address(iova, std::min(max_len, m->end() - iova));
    if (!r)
        return fail(std::move(r.error()).context(name()));
    return *r;
}

Result<std::vector<PhysicalRange>> Container::physical_ranges(std::uint64_t iova,
                                                              std::uint64_t len) const {
    std::lock_guard g(vfio_->control_lock());
    std::vector<PhysicalRange> out;
    for (std::uint64_t done = 0; done < len;) {
        auto r = physical_address(iova + done, len - done);
        if (!r)
            return fail(std::move(r.error()));
        // Adjacent answers that continue each other are one range.
        if (!out.empty() && out.back().pa + out.back().len == r->pa)
            out.back().len += r->len;
        else
            out.push_back(*r);
        done += r->len;
    }
    return out;
}

std::string Container::name() const {
    return std::string(default_ ? "default container" : "container " + std::to_string(id_)) + " (" +
           std::string(to_string(mode())) + ")";
}

std::string Container::describe() const {
    std::lock_guard g(vfio_->control_lock());
    return name() + ": " + backend_->describe() + ", " + std::to_string(devices_.size()) +
           " device(s), " + std::to_string(table_.size()) + " mapping(s)" +
           (imported_ ? ", imported" : "");
}

void Container::forget_limits() {
    ranges_.reset();
    entries_avail_.reset();
}

Result<std::vector<IovaRange>> Container::iova_ranges() {
    std::lock_guard g(vfio_->control_lock());
    if (!maps_memory())
        return fail(untranslated("IOVA ranges").context(name()));
    if (!backend_->dma_ready())
        return fail(Error(EAGAIN, "IOVA ranges")
                        .context(name())
                        .hint("the kernel reports the ranges of a group container once a "
                              "device is assigned to it"));
    if (!ranges_) {
        auto r = backend_->iova_ranges();
        if (!r)
            return fail(std::move(r.error()).context(name()));
        ranges_ = std::move(*r);
    }
    return *ranges_;
}

// Per map call: from the ranges and entry count the container holds (asked
// of the kernel once, until a device comes or goes), with no copy and no
// error to build. False when they are not known yet or say no:
// check_limits() then asks the kernel or builds the error. Inlined into
// map(): a call and return cost more than the check under emulation.
[[gnu::always_inline]] inline bool Container::within_known_limits(std::uint64_t iova,
                                                                 std::uint64_t len) const {
    if (!ranges_ || !entries_avail_ || *entries_avail_ == 0)
        return false;
    for (const auto& r : *ranges_)
        if (iova >= r.start && iova + len - 1 <= r.last)
            return true;
    return false;
}

Result<void> Container::check_limits(std::uint64_t iova, std::uint64_t len) {
    if (!ranges_)
        if (auto r = iova_ranges(); !r)
            return fail(std::move(r.error()));
    const std::vector<IovaRange>& ranges = *ranges_;
    bool inside = false;
    for (const auto& r : ranges)
        inside = inside || (iova >= r.start && iova + len - 1 <= r.last);
    if (!inside)
        return fail(outside_ranges(iova, len, ranges));
    if (!entries_avail_) {
        auto avail = backend_->dma_entries_avail();
        if (!avail)
            return fail(std::move(avail.error()).context(name()));
        entries_avail_ = avail->value_or(~0u);
    }
    if (*entries_avail_ == 0)
        return fail(entry_limit(iova, len, table_.size()));
    return {};
}

// The per-call path (doc/benchmarks.md): where the backend has a DmaPath
// and the mapping is the usual one (aligned, above every other mapping,
// inside the ranges and entry count the container already holds, in a
// container of this process's own), the checks, the ioctl and the table
// insert are done here inline, with no virtual call and no Result between
// layers; a group container without an IOMMU model only records it, as
// map_impl() would. Anything else, and every error but the kernel's, goes
// through map_impl(), which makes the same checks and builds the errors.
Result<void> Container::map(std::uint64_t vaddr, std::uint64_t iova, std::uint64_t len) {
    using P = DmaPath::Protocol;
    std::lock_guard g(vfio_->control_lock());
    DmaPath& p = *path_;
    if (p.protocol != P::none && !imported_ && len != 0 &&
        ((vaddr | iova | len) & p.page_mask) == 0 && iova + len > iova && vaddr + len > vaddr &&
        table_.above_all(iova)) [[likely]] {
        if (p.protocol == P::record) {
            table_.append({iova, vaddr, len, false});
            return {};
        }
        if (within_known_limits(iova, len)) [[likely]] {
            if (const int err = dma_path_map(p, vaddr, iova, len); err != 0) [[unlikely]]
                return fail(map_failed(err, vaddr, iova, len));
            if (*entries_avail_ != ~0u)
                --*entries_avail_;
            table_.append({iova, vaddr, len, false});
            return {};
        }
    }
    return map_impl(vaddr, iova, len, nullptr);
}

[[gnu::cold]] Error Container::map_failed(int err, std::uint64_t vaddr, std::uint64_t iova,
                                          std::uint64_t len) const {
    return backend_->map_error(err, vaddr, iova, len)
        .context(map_text(vaddr, iova, len))
        .context(name());
}

Result<void> Container::map_file(std::uint64_t vaddr, int fd, std::uint64_t offset,
                                 std::uint64_t iova, std::uint64_t len) {
    std::lock_guard g(vfio_->control_lock());
    const FileRef f{fd, offset};
    return map_impl(vaddr, iova, len, &f);
}

Result<void> Container::map_impl(std::uint64_t vaddr, std::uint64_t iova, std::uint64_t len,
                                 const FileRef* file) {
    // The request in words, for errors: built only when one is returned,
    // out of line (map is a per-call path; formatting would cost more than
    // the checks).
    const auto what = [&] { return map_text(vaddr, iova, len); };
    if (!maps_memory())
        return fail(untranslated(what()).context(name()));
    const std::uint64_t pg = backend_->page_size();
    if (len == 0 || ((vaddr | iova | len) & (pg - 1)) != 0)  // pg: a power of two
        return fail(Error(EINVAL, what() + ": address and length must be non-zero multiples of the "
                                         "IOMMU page size " + hex(pg))
                        .context(name()));
    if (iova + len < iova || vaddr + len < vaddr)
        return fail(Error(EINVAL, what() + ": range wraps around").context(name()));
    if (auto free = table_.check_free(iova, len); !free)
        return fail(std::move(free.error()).context(name()));
    if (imported_ && !backend_->dma_ready())
        return fail(Error(EAGAIN, what() + ": the imported container has no IOMMU model yet")
                        .context(name())
                        .hint("map once the exporting process has assigned a device to it (it "
                              "replays only its own table)"));
    bool by_file = false;
    if (backend_->dma_ready()) {
        if (!within_known_limits(iova, len))
            if (auto ok = check_limits(iova, len); !ok)
                return fail(std::move(ok.error()).context(name()));
        // Imported: the owner hears of the range before the kernel pins
        // anything, so that it can unmap it should this process die
        // between the ioctl and its confirmation.
        const bool report = imported_ && vfio_->dma_reporter_;
        if (report)
            if (auto ok = vfio_->dma_reporter_({DmaReport::Kind::intent, import_index_, iova, len});
                !ok)
                return fail(std::move(ok.error())
                                .context(what() + ": announce the mapping to the container's owner")
                                .context(name()));
        // Without a file, the plain map() is the per-call path: one call.
        auto mapped = file == nullptr ? backend_->map(vaddr, iova, len)
                                      : map_kernel(vaddr, iova, len, file, by_file);
        if (report)
            (void)vfio_->dma_reporter_({mapped ? DmaReport::Kind::mapped : DmaReport::Kind::unmapped,
                                        import_index_, iova, len});
        if (!mapped)
            return fail(std::move(mapped.error()).context(what()).context(name()));
        if (entries_avail_ && *entries_avail_ != ~0u)
            --*entries_avail_;
    }
    // Not ready (group container without a group yet): recorded, and mapped
    // by replay() when the first device is assigned.
    // by_file: mapped by the kernel from the file; a mapping recorded
    // before the backend was ready is replayed by address (group-style
    // backends have no map by file).
    table_.insert({iova, vaddr, len, by_file});
    return {};
}

Result<void> Container::map_kernel(std::uint64_t vaddr, std::uint64_t iova, std::uint64_t len,
                                   const FileRef* file, bool& by_file) {
    // By file where the kernel can (the pages are pinned from the file, no
    // user address involved); by address otherwise, or when the backend
    // says it cannot.
    if (file != nullptr && !file_maps_unsupported_) {
        auto ok = backend_->map_file(file->fd, file->offset, iova, len);
        if (ok) {
            ++file_maps_;
            by_file = true;
            return ok;
        }
        if (ok.error().err() != ENOTSUP)
            return ok;
        file_maps_unsupported_ = true;
    }
    return backend_->map(vaddr, iova, len);
}

Result<void> Container::map_device_bar(Device& exporter, unsigned bar, std::uint64_t offset,
                                       std::uint64_t len, std::uint64_t iova) {
    std::lock_guard g(vfio_->control_lock());
    const std::string what = "map BAR " + std::to_string(bar) + " of " + exporter.address().str() +
                             " (offset " + hex(offset) + ") at " + range_text(iova, len);
    auto bad = [&](int err, const std::string& why) {
        return fail(Error(err, what + ": " + why).context(name()));
    };
    // The mode first: where it cannot, nothing is exported.
    if (auto ok = backend_->maps_dma_bufs(); !ok)
        return fail(std::move(ok.error()).context(what).context(name()));
    if (exporter.container().vfio_ != vfio_)
        return bad(EINVAL, "the device belongs to another process's VFIO state");
    const std::shared_ptr<DeviceHandle> handle = exporter.handle();
    if (bar > 5)
        return bad(EINVAL, "a PCI device has BARs 0-5");
    const std::uint64_t pg = backend_->page_size();
    if (len == 0 || (offset | iova | len) % pg != 0)
        return bad(EINVAL, "offset, IOVA and length must be non-zero multiples of the page size " +
                               hex(pg));
    if (iova + len < iova || offset + len < offset)
        return bad(EINVAL, "range wraps around");
    auto info = handle->region_info(bar);
    if (!info)
        return fail(std::move(info.error()).context(what).context(name()));
    if (info->size == 0)
        return bad(ENODEV, "the device has no BAR " + std::to_string(bar));
    if (offset + len > info->size)
        return bad(EINVAL, "beyond the BAR's " + hex(info->size) + " bytes");
    if (auto free = table_.check_free(iova, len); !free)
        return fail(std::move(free.error()).context(name()));
    if (auto ok = check_limits(iova, len); !ok)
        return fail(std::move(ok.error()).context(name()));
    // The dma-buf's fd is only needed until the IOAS holds the dma-buf:
    // closed on every return below.
    auto buf = handle->export_dma_buf(bar, offset, len);
    if (!buf)
        return fail(std::move(buf.error()).context(what).context(name()));
    if (auto ok = backend_->map_dma_buf(buf->get(), iova, len); !ok)
        return fail(std::move(ok.error()).context(what).context(name()));
    table_.insert({iova, 0, len});
    bars_[iova] = PeerBar{exporter.address(), bar, offset, handle, handle->resets()};
    return {};
}

std::vector<BarMapping> Container::bar_mappings() const {
    std::lock_guard g(vfio_->control_lock());
    std::vector<BarMapping> out;
    for (const auto& [iova, b] : bars_) {
        const auto m = table_.lookup(iova);
        const bool revoked = !b.exporter->alive() || b.exporter->resets() != b.resets;
        out.push_back({iova, m ? m->len : 0, b.device, b.bar, b.offset, revoked});
    }
    return out;
}

// The per-call path, as map()'s: a range that is exactly the first or the
// last mapping of a container of this process's own, with no peer BAR in
// it, is unmapped and erased here inline (recorded mappings of a group
// container without an IOMMU model: only erased); anything else goes
// through unmap_impl(). Only imported containers have inherited mappings.
Result<void> Container::unmap(std::uint64_t iova, std::uint64_t len) {
    using P = DmaPath::Protocol;
    std::lock_guard g(vfio_->control_lock());
    DmaPath& p = *path_;
    DmaTable::Extent x;
    if (p.protocol != P::none && !imported_ && inherited_.empty() && bars_.empty() &&
        table_.one_at_either_end(iova, len, x)) [[likely]] {
        if (p.protocol != P::record) {
            std::uint64_t done = 0;
            if (const int err = dma_path_unmap(p, iova, len, done); err != 0) [[unlikely]]
                return fail(unmap_failed(err, iova, len));
            if (done != x.bytes) [[unlikely]]
                return fail(unmapped_differs(iova, len, done, x.bytes, name()));
            if (entries_avail_ && *entries_avail_ != ~0u)
                ++*entries_avail_;
        }
        table_.erase(x);
        return {};
    }
    return unmap_impl(iova, len);
}

[[gnu::cold]] Error Container::unmap_failed(int err, std::uint64_t iova, std::uint64_t len) const {
    return backend_->unmap_error(err, iova, len).context(name());
}

Result<void> Container::unmap_impl(std::uint64_t iova, std::uint64_t len) {
    if (!maps_memory())
        return fail(untranslated(unmap_text(iova, len)).context(name()));
    if (len == 0 || iova + len < iova)
        return fail(Error(EINVAL, unmap_text(iova, len) + ": bad length").context(name()));
    // From the table alone: how many whole mappings the range holds and
    // their bytes (errors for a range that cuts one or holds none), with no
    // copy of them on this per-call path.
    auto whole = table_.whole_extent(iova, len);
    if (!whole)
        return fail(std::move(whole.error()).context(name()));
    if (!inherited_.empty()) {
        std::optional<DmaMapping> theirs;
        table_.for_each_in(iova, len, [&](const DmaMapping& m) {
            if (!theirs && inherited(m.iova))
                theirs = m;
        });
        if (theirs)
            return fail(not_ours(iova, len, *theirs).context(name()));
    }
    if (backend_->dma_ready()) {
        auto done = backend_->unmap(iova, len);
        if (!done)
            return fail(std::move(done.error()).context(name()));
        // Only after the kernel let go: until then the owner must still
        // clean the range up should this process die.
        if (imported_ && vfio_->dma_reporter_)
            (void)vfio_->dma_reporter_({DmaReport::Kind::unmapped, import_index_, iova, len});
        if (*done != whole->bytes)
            return fail(Error(EIO, unmap_text(iova, len) + ": " + bytes_differ(*done, whole->bytes))
                            .context(name()));
        if (entries_avail_ && *entries_avail_ != ~0u)
            *entries_avail_ += static_cast<std::uint32_t>(whole->count);
    }
    if (!bars_.empty())
        table_.for_each_in(iova, len, [&](const DmaMapping& m) { bars_.erase(m.iova); });
    table_.erase(*whole);  // where whole_extent() found them: no second search
    return {};
}

Result<std::uint64_t> Container::unmap_foreign(std::uint64_t iova, std::uint64_t len) {
    std::lock_guard g(vfio_->control_lock());
    const auto what = [&] {
        return "unmap " + range_text(iova, len) + " mapped by another process";
    };
    if (!maps_memory())
        return fail(untranslated(what()).context(name()));
    if (len == 0 || iova + len < iova)
        return fail(Error(EINVAL, what() + ": bad length").context(name()));
    if (!backend_->dma_ready())
        return fail(Error(EAGAIN, what() + ": the container has no IOMMU model yet, so nothing "
                                           "can be mapped in it")
                        .context(name()));
    std::optional<DmaMapping> mine;
    table_.for_each_in(iova, len, [&](const DmaMapping& m) {
        if (!mine)
            mine = m;
    });
    if (!mine)
        if (auto before = table_.lookup(iova))  // a mapping of ours reaching into the range
            mine = before;
    if (!mine)
        if (auto after = table_.lookup(iova + len - 1))
            mine = after;
    if (mine)
        return fail(Error(EPERM, what() + ": overlaps this process's own mapping " +
                                     range_text(mine->iova, mine->len))
                        .context(name()));
    auto done = backend_->unmap(iova, len);
    if (!done)
        return fail(std::move(done.error()).context(what()).context(name()));
    if (*done == 0)  // type1 answers an unmap of nothing with 0 bytes
        return fail(Error(ENOENT, what() + ": nothing is mapped there").context(name()));
    entries_avail_.reset();  // the kernel's count changed behind the table
    return *done;
}

Result<void> Container::stop_bus_mastering() {
    std::lock_guard g(vfio_->control_lock());
    constexpr std::uint64_t kCommand = 0x04;  // PCI Local Bus spec 6.2.2
    constexpr std::uint16_t kBusMaster = 1U << 2;
    Result<void> first;
    for (const auto& d : devices_) {
        DeviceHandle& ops = d->ops();
        std::uint16_t cmd = 0;
        auto ok = ops.read_region(uapi::kVfioPciConfigRegionIndex, kCommand, &cmd, sizeof cmd);
        if (ok && (cmd & kBusMaster) != 0) {
            cmd = static_cast<std::uint16_t>(cmd & ~kBusMaster);
            ok = ops.write_region(uapi::kVfioPciConfigRegionIndex, kCommand, &cmd, sizeof cmd);
        }
        if (!ok && first)
            first = fail(std::move(ok.error())
                             .context("device " + d->address().str() + ": clear Bus Master Enable")
                             .context(name()));
    }
    return first;
}

Result<void> Container::unmap_all() {
    std::lock_guard g(vfio_->control_lock());
    if (!maps_memory())
        return fail(untranslated("unmap all").context(name()));
    if (imported_)  // the kernel's unmap-all would take the owner's too
        return unmap_own();
    if (backend_->dma_ready() && table_.size() != 0) {
        auto done = backend_->unmap_all();
        if (!done)
            return fail(std::move(done.error()).context(name()));
        if (*done != table_.bytes())
            return fail(Error(EIO, "unmap all: " + bytes_differ(*done, table_.bytes()))
                            .context(name()));
        entries_avail_.reset();
    }
    table_.clear();
    bars_.clear();
    return {};
}

Result<std::vector<IovaRange>> Container::placement_ranges() {
    if (!backend_->dma_ready())
        return kAssumedRanges;
    return iova_ranges();
}

Result<std::uint64_t> Container::alloc_iova(std::uint64_t len, std::uint64_t dma_mask,
                                            std::uint64_t align) {
    std::lock_guard g(vfio_->control_lock());
    if (!maps_memory())
        return fail(untranslated("allocate IOVA").context(name()));
    const std::uint64_t pg = backend_->page_size();
    len = (len + pg - 1) / pg * pg;
    align = std::max(align, pg);
    auto ranges = placement_ranges();
    if (!ranges)
        return fail(std::move(ranges.error()));
    auto iova = table_.find_free(*ranges, len, align, dma_mask, kAllocFloor);
    if (!iova)
        return fail(std::move(iova.error()).context(name()));
    return *iova;
}

Result<void> Container::unmap_own() {
    if (!maps_memory())
        return {};
    for (const auto& m : table_.all())
        if (!inherited(m.iova))
            if (auto ok = unmap(m.iova, m.len); !ok)
                return fail(std::move(ok.error()).context("unmap the mappings this process made"));
    return {};
}

Result<void> Container::replay() {
    std::vector<DmaMapping> done;
    auto undo = [&] {
        for (const auto& m : done)
            (void)backend_->unmap(m.iova, m.len);
        entries_avail_.reset();
    };
    for (const auto& m : table_.all()) {
        if (auto ok = check_limits(m.iova, m.len); !ok) {
            undo();
            return fail(std::move(ok.error()).context("replaying mappings made before the first device"));
        }
        if (auto ok = backend_->map(m.vaddr, m.iova, m.len); !ok) {
            undo();
            return fail(std::move(ok.error())
                            .context("replaying mapping " + range_text(m.iova, m.len) +
                                     " made before the first device"));
        }
        if (entries_avail_ && *entries_avail_ != ~0u)
            --*entries_avail_;
        done.push_back(m);
    }
    return {};
}


// ---------------------------------------------------------------------------
// IOVA policy

Result<std::uint64_t> Container::choose_iova(std::uint64_t vaddr, std::uint64_t len,
                                             std::uint64_t align) {
    std::lock_guard g(vfio_->control_lock());
    if (!maps_memory())
        return fail(untranslated("choose an IOVA").context(name()));
    // cdev no-IOMMU: the IOVA is only the key of the physical address
    // lookup; a device never sees it, so its mask does not apply.
    const std::uint64_t mask = translates() ? dma_mask_ : ~0ULL;
    const std::uint64_t pg = backend_->page_size();
    len = (len + pg - 1) / pg * pg;
    if (len == 0 || vaddr + len < vaddr)
        return fail(Error(EINVAL, "choose an IOVA for " + range_text(vaddr, len)).context(name()));
    auto ranges = placement_ranges();
    if (!ranges)
        return fail(std::move(ranges.error()));
    const std::uint64_t last = vaddr + len - 1;
    const bool in_range = std::any_of(ranges->begin(), ranges->end(), [&](const IovaRange& r) {
        return vaddr >= r.start && last <= r.last;
    });
    // IOVA = VA: the cheapest translation to reason about, and what a
    // secondary process or a debugger expects.
    if (vaddr % pg == 0 && vaddr >= kAllocFloor && last <= mask && in_range &&
        table_.check_free(vaddr, len))
        return vaddr;
    return alloc_iova(len, mask, align);
}

std::uint64_t Container::dma_mask() const {
    std::lock_guard g(vfio_->control_lock());
    return dma_mask_;
}

void Container::add_iova_user(IovaUser* u) {
    std::lock_guard g(vfio_->control_lock());
    if (std::find(iova_users_.begin(), iova_users_.end(), u) == iova_users_.end())
        iova_users_.push_back(u);
}

void Container::remove_iova_user(IovaUser* u) {
    std::lock_guard g(vfio_->control_lock());
    std::erase(iova_users_, u);
}

Result<void> Container::require_dma_mask(std::uint64_t mask, std::string_view who) {
    std::lock_guard g(vfio_->control_lock());
    const std::string what = std::string(who) + ": DMA mask " + hex(mask);
    // Below the floor alloc_iova never hands out anything: such a mask
    // could never be met by this container.
    if (mask < kAllocFloor * 2 - 1)
        return fail(Error(EINVAL, what + ": too narrow (the container hands out IOVAs from " +
                                      hex(kAllocFloor) + ")")
                        .context(name()));
    for (IovaUser* u : iova_users_)
        if (auto ok = u->meet_dma_mask(*this, mask, who); !ok)
            return fail(std::move(ok.error()).context(name()));
    for (const auto& m : table_.all()) {
        if (translates()) {
            if (m.iova + m.len - 1 > mask)
                return fail(Error(ERANGE, what + " cannot reach mapping " +
                                              range_text(m.iova, m.len) + " (vaddr " +
                                              hex(m.vaddr) + ")")
                                .context(name())
                                .hint("map memory for this device at IOVAs from alloc_iova(len, " +
                                      hex(mask) + "), or put the device in a container of its "
                                      "own"));
            continue;
        }
        if (!reports_physical())
            break;
        // cdev no-IOMMU: the device is given physical addresses. Known only
        // while a device is attached; without one there is nothing to check
        // yet (the next assignment comes back here through the bus).
        auto phys = physical_ranges(m.iova, m.len);
        if (!phys && phys.error().err() == EAGAIN)
            break;
        if (!phys)
            return fail(std::move(phys.error()).context(what));
        for (const PhysicalRange& p : *phys)
            if (p.pa + p.len - 1 > mask)
                return fail(Error(ERANGE, what + " cannot reach mapping " +
                                              range_text(m.iova, m.len) + " (vaddr " +
                                              hex(m.vaddr) + "): its memory lies at physical " +
                                              range_text(p.pa, p.len))
                                .context(name())
                                .hint("without an IOMMU the device sees physical addresses: give "
                                      "the device a wider mask, or keep the machine's RAM below "
                                      "the mask (mem= on the kernel command line)"));
    }
    dma_mask_ = std::min(dma_mask_, mask);
    return {};
}

}  // namespace vfiokit::vfio

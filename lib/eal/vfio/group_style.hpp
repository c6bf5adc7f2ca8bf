// The machinery the group-style backends share (private to lib/eal/vfio).
//
// group, compat and noiommu all speak the group protocol: a container fd
// (/dev/vfio/vfio, or /dev/iommu for compat), group fds /dev/vfio/<N> (or
// /dev/vfio/noiommu-<N>) attached to it with VFIO_GROUP_SET_CONTAINER, an
// IOMMU model chosen with VFIO_SET_IOMMU once the first group is in, and
// device fds from VFIO_GROUP_GET_DEVICE_FD. They differ only in the nodes,
// the model, what the container accepts after SET_IOMMU and what happens when
// the last group leaves; GroupStyleBackend holds the common part, and each
// backend file (group.cpp, compat.cpp, noiommu.cpp) a small subclass.
// group_style.cpp implements the group protocol, type1.cpp the type1 DMA
// ioctls on the container fd (group and compat).
//
// Groups are shared inside one container: a second device of an open group
// reuses it (the kernel allows one open of a group node at a time,
// group.c vfio_group_fops_open). Each device holds the group; the group
// leaves the container when its last device is released.
//
// Lifetime: every BackendDevice must be destroyed before its backend (the
// front end guarantees it); a group refers back to its backend.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "backend.hpp"
#include "dma_path.hpp"
#include "vfiokit/uapi/vfio.hpp"

namespace vfiokit::vfio::detail {

// An IOMMU model of the container: the VFIO_SET_IOMMU / CHECK_EXTENSION id
// and the kernel's name for it ("type1v2").
struct IommuModel {
    int id = 0;
    std::string_view name;
};

inline constexpr IommuModel kType1v2{uapi::kVfioType1v2Iommu, "type1v2"};
inline constexpr IommuModel kType1{uapi::kVfioType1Iommu, "type1"};
inline constexpr IommuModel kNoiommu{uapi::kVfioNoiommuIommu, "no-IOMMU"};

// CHECK_EXTENSION and SET_IOMMU take their argument by value, not by pointer.
inline void* int_arg(int v) { return reinterpret_cast<void*>(static_cast<std::uintptr_t>(v)); }

// The models to try, best first, for a type1 setting.
[[nodiscard]] std::span<const IommuModel> type1_models(Type1 t);

// The fixed facts of one group-style flavour.
struct GroupStyleTraits {
    Mode mode = Mode::group;
    std::string container_path;    // "/dev/vfio/vfio" or "/dev/iommu"
    std::string container_option;  // kernel option behind the node, for messages
    std::string group_prefix;      // "/dev/vfio/" or "/dev/vfio/noiommu-"
    // The group node of the other kind (no-IOMMU vs translated), and what to
    // say when it is the one that exists: the device is fine, the mode wrong.
    std::string other_group_prefix;
    std::string other_group_hint;
    std::string no_group_hint;      // the device has no IOMMU group at all
    std::string device_eperm_hint;  // VFIO_GROUP_GET_DEVICE_FD failed with EPERM; "" for none
    std::string model_hint;        // what to do when no wanted IOMMU model is offered
};

// Opens the container node (or takes `given`'s fd) and checks the API
// version and that one of `wanted` (tried in order) is offered
// (VFIO_CHECK_EXTENSION); an adopted container must use one of `wanted`.
// Errors name the node, the kernel option or the permission that is missing.
struct OpenedContainer {
    Fd fd;
    IommuModel model;
    bool adopted = false;    // another process's container (GivenContainer)
    bool model_set = false;  // adopted: its model is set already
};
[[nodiscard]] Result<OpenedContainer> open_container(const GroupStyleTraits& t,
                                                     std::span<const IommuModel> wanted,
                                                     GivenContainer* given = nullptr);

// VFIO_IOMMU_GET_INFO, parsed.
struct IommuInfo {
    std::uint64_t iova_pgsizes = 0;                 // 0 when the kernel gave none
    std::optional<std::vector<IovaRange>> ranges;   // IOVA-range capability
    std::optional<std::uint32_t> dma_avail;         // DMA-avail capability
};
// With `caps` false only the fixed part is read. One ioctl either way, unless
// the capability chain is longer than the first buffer (kInfoGuess bytes).
[[nodiscard]] Result<IommuInfo> query_iommu_info(int container_fd, bool caps);

class GroupStyleBackend : public ContainerBackend {
public:
    ~GroupStyleBackend() override;
    GroupStyleBackend(const GroupStyleBackend&) = delete;
    GroupStyleBackend& operator=(const GroupStyleBackend&) = delete;

    [[nodiscard]] Mode mode() const override { return traits_.mode; }
    [[nodiscard]] Result<std::unique_ptr<BackendDevice>> attach(const DeviceRequest& req) override;
    [[nodiscard]] bool dma_ready() const override { return model_set_; }
    [[nodiscard]] bool translates() const override { return true; }

    // The type1 protocol on the container fd (group and compat; type1.cpp).
    [[nodiscard]] Result<void> map(std::uint64_t vaddr, std::uint64_t iova,
                                   std::uint64_t len) override;
    [[nodiscard]] Result<std::uint64_t> unmap(std::uint64_t iova, std::uint64_t len) override;
    [[nodiscard]] Result<std::uint64_t> unmap_all() override;
    [[nodiscard]] DmaPath* dma_path() override { return &path_; }
    [[nodiscard]] Error map_error(int err, std::uint64_t vaddr, std::uint64_t iova,
                                  std::uint64_t len) const override;
    [[nodiscard]] Error unmap_error(int err, std::uint64_t iova, std::uint64_t len) const override;
    [[nodiscard]] Result<std::vector<IovaRange>> iova_ranges() override;
    [[nodiscard]] Result<std::optional<std::uint32_t>> dma_entries_avail() override;
    // Cached: read at every attach and after every release, the only times
    // it changes (vfio_iommu_type1.c vfio_update_pgsize_bitmap,
    // vfio_compat.c iommufd_get_pagesizes), so that the accessor, which
    // cannot fail, issues no ioctl.
    [[nodiscard]] std::uint64_t page_size() const override { return page_size_; }

    [[nodiscard]] SharedContainer share() const override;
    [[nodiscard]] Result<std::unique_ptr<BackendDevice>> adopt_device(const DeviceRequest& req,
                                                                      Fd device,
                                                                      Fd group) override;

    class Group;  // one group of this container; defined in group_style.cpp
    // Called by a device of this container once its fd is closed.
    void device_left();

protected:
    GroupStyleBackend(GroupStyleTraits t, OpenedContainer c);

    [[nodiscard]] int container_fd() const { return container_.get(); }
    [[nodiscard]] const IommuModel& model() const { return model_; }
    [[nodiscard]] const GroupStyleTraits& traits() const { return traits_; }

    // Called when the container's last group has left after the IOMMU model
    // was set; the kernel has then dropped the model (container.c
    // vfio_group_detach_container). Must not fail loudly: it runs in
    // destructors.
    virtual void last_group_left() {}
    // Called right after VFIO_SET_IOMMU on the first group; a failure undoes
    // the attach like any other.
    [[nodiscard]] virtual Result<void> model_was_set() { return {}; }
    // Adds the flavour's advice to a failed VFIO_IOMMU_MAP_DMA.
    virtual void explain_map_error(Error& e) const;
    // Fails iova_ranges()/dma_entries_avail() before the model is set.
    [[nodiscard]] Result<void> require_ready(std::string_view what) const;

private:
    friend class Group;
    static constexpr std::uint64_t kDefaultPageSize = 4096;

    [[nodiscard]] Result<std::shared_ptr<Group>> open_group(const DeviceRequest& req, unsigned n);
    void group_left(unsigned n);
    [[nodiscard]] Result<void> refresh_page_size();
    // Brings path_ in line with model_set_ and page_size_: called wherever
    // either changes.
    void sync_path();

    GroupStyleTraits traits_;
    // Every group (and device) is gone before the backend dies (front end's
    // rule), so closing the container last frees it with nothing attached.
    Fd container_;
    IommuModel model_;
    bool model_set_ = false;  // VFIO_SET_IOMMU done and a group still in
    // Whether the model has VFIO_UNMAP_ALL (VFIO_CHECK_EXTENSION): asked at
    // the first unmap_all under a model, not at every one; forgotten with
    // the model.
    std::optional<bool> unmap_all_ext_;
    // The last VFIO_IOMMU_GET_INFO (refresh_page_size(), at every attach
    // and release): iova_ranges() and dma_entries_avail() answer from it
    // rather than asking again. The ranges only change when a domain comes
    // or goes, which refreshes it; the DMA-avail count changes with every
    // map and unmap, which mark it stale (path_.avail_stale, set by the
    // front end's inline ioctls too).
    std::optional<IommuInfo> info_;
    // type1 MAP_DMA/UNMAP_DMA on container_ while the model is set,
    // recorded by the front end before; no protocol for no-IOMMU.
    DmaPath path_;
    // Another process's container (import_shared): its model and groups are
    // that process's; groups here are only closed, the model never touched.
    bool adopted_ = false;
    std::uint64_t page_size_ = kDefaultPageSize;
    // Group number -> the open group. Weak: the devices own their group; a
    // group erases itself here when its last device goes.
    std::map<unsigned, std::weak_ptr<Group>> groups_;
};

}  // namespace vfiokit::vfio::detail

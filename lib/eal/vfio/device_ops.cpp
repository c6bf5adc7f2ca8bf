// DeviceHandle: the release-aware front of a device's operations.
#include "vfiokit/eal/vfio/device_ops.hpp"

#include <cerrno>
#include <mutex>
#include <utility>

#include "vfiokit/uapi/vfio.hpp"

namespace vfiokit::vfio {

Error not_supported(std::string_view what, std::string_view where) {
    return Error(ENOTSUP, std::string(what) + ": not supported in " + std::string(where));
}

DeviceHandle::DeviceHandle(PciAddress addr, std::unique_ptr<DeviceOps> ops)
    : addr_(addr), ops_(std::move(ops)) {}

DeviceHandle::~DeviceHandle() { release(); }

bool DeviceHandle::alive() const {
    std::shared_lock lock(mu_);
    return ops_ != nullptr;
}

void DeviceHandle::release() {
    // Destroyed under the exclusive lock: a call that got the shared lock
    // before finishes on the live device first, and every later call sees
    // null and fails without touching a (possibly reused) fd number.
    std::unique_lock lock(mu_);
    ops_.reset();
}

Error DeviceHandle::released(std::string_view what) const {
    Error e(ENODEV, "device " + addr_.str() + " was released");
    e.context(what);
    e.hint("release the device only after its Bars and IrqSets are gone; take it again with "
           "assign_device() to use it");
    return e;
}

// Each call: shared lock, then either the backend or the ENODEV error.
#define VFIOKIT_FORWARD(what, call)              \
    std::shared_lock lock(mu_);                  \
    if (!ops_)                                   \
        return std::unexpected(released(what));  \
    return ops_->call

Result<DeviceInfo> DeviceHandle::info() { VFIOKIT_FORWARD("device info", info()); }

Result<RegionInfo> DeviceHandle::region_info(std::uint32_t index) {
    VFIOKIT_FORWARD("region info", region_info(index));
}

Result<void> DeviceHandle::read_region(std::uint32_t index, std::uint64_t offset, void* buf,
                                       std::size_t len) {
    VFIOKIT_FORWARD("region read", read_region(index, offset, buf, len));
}

Result<void> DeviceHandle::write_region(std::uint32_t index, std::uint64_t offset, const void* buf,
                                        std::size_t len) {
    VFIOKIT_FORWARD("region write", write_region(index, offset, buf, len));
}

Result<Mapping> DeviceHandle::map_region(std::uint32_t index, std::uint64_t offset,
                                         std::uint64_t len, int prot, void* at) {
    VFIOKIT_FORWARD("region mmap", map_region(index, offset, len, prot, at));
}

Result<IrqInfo> DeviceHandle::irq_info(std::uint32_t index) {
    VFIOKIT_FORWARD("IRQ info", irq_info(index));
}

Result<void> DeviceHandle::set_irqs(const IrqRequest& r) { VFIOKIT_FORWARD("set IRQs", set_irqs(r)); }

Result<void> DeviceHandle::reset() {
    std::shared_lock lock(mu_);
    if (!ops_)
        return std::unexpected(released("reset"));
    auto r = ops_->reset();
    if (r)
        ++resets_;
    return r;
}

Result<void> DeviceHandle::feature(std::uint32_t feature, FeatureOp op,
                                   std::span<std::uint8_t> payload) {
    VFIOKIT_FORWARD("device feature", feature(feature, op, payload));
}

Result<void> DeviceHandle::ioeventfd(std::uint32_t index, std::uint64_t offset, unsigned size,
                                     std::uint64_t data, int fd) {
    VFIOKIT_FORWARD("ioeventfd", ioeventfd(index, offset, size, data, fd));
}

Result<Fd> DeviceHandle::export_dma_buf(std::uint32_t index, std::uint64_t offset,
                                        std::uint64_t len) {
    VFIOKIT_FORWARD("export a dma-buf", export_dma_buf(index, offset, len));
}

#undef VFIOKIT_FORWARD

Result<void> DeviceOps::ioeventfd(std::uint32_t, std::uint64_t, unsigned, std::uint64_t, int) {
    return fail(not_supported("ioeventfd", "this backend"));
}

Result<Fd> DeviceOps::export_dma_buf(std::uint32_t, std::uint64_t, std::uint64_t) {
    return fail(not_supported("dma-buf export", "this backend"));
}

Result<void> DeviceHandle::set_vf_token(const Uuid& token) {
    Uuid bytes = token;  // the payload buffer is writable (GET shares it)
    auto r = feature(uapi::kVfioDeviceFeaturePciVfToken, FeatureOp::set, bytes);
    if (r)
        return {};
    Error e = std::move(r.error());
    // vfio_pci_core.c vfio_pci_core_feature_token: only a PF has a token.
    if (e.err() == ENOTTY)
        e.hint(addr_.str() + " has no VF token: only an SR-IOV physical function bound to "
                             "vfio-pci has one");
    return fail(std::move(e.context("set the VF token of " + addr_.str())));
}

}  // namespace vfiokit::vfio

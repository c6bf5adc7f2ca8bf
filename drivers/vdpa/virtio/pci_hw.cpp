#include "pci_hw.hpp"

#include <cerrno>
#include <vector>

#include "vfiokit/bus/pci/irq.hpp"

namespace vfiokit::vdpa {

namespace {

constexpr auto kMsix = static_cast<std::uint32_t>(pci::IrqType::msix);

}  // namespace

PciHw::~PciHw() { (void)stop(); }

Result<void> PciHw::start(std::uint64_t features, std::span<const QueueSetup> queues) {
    std::vector<int> fds;
    for (const auto& q : queues) {
        if (q.index >= fds.size())
            fds.resize(q.index + 1u, -1);
        fds[q.index] = q.call_fd;
    }
    if (fds.size() > msix_)
        return fail(Error(EINVAL, std::to_string(fds.size()) + " queues, but the device has " +
                                      std::to_string(msix_) + " MSI-X vectors"));
    // Vector i signals queue i's call eventfd: the device's interrupt
    // reaches the front end without this process.
    vfio::IrqRequest req;
    req.index = kMsix;
    req.action = vfio::IrqAction::trigger;
    req.start = 0;
    req.count = static_cast<std::uint32_t>(fds.size());
    req.eventfds = fds;
    if (auto r = dev_->set_irqs(req); !r)
        return fail(std::move(r.error()).context("MSI-X vectors for the front end's call eventfds"));
    irqs_on_ = true;
    auto undo = [&](Error e) {
        (void)stop();
        return fail(std::move(e));
    };
    const std::uint64_t required = virtio::feature(virtio::kFVersion1) |
                                   virtio::feature(virtio::kFAccessPlatform);
    auto got = t_.negotiate(features, required);
    if (!got)
        return undo(std::move(got.error()));
    if (*got != features)
        return undo(Error(ENOTSUP, "the device took features " + virtio::feature_names(*got) +
                                       " of " + virtio::feature_names(features)));
    if (auto r = t_.set_config_vector(virtio::kNoVector); !r)
        return undo(std::move(r.error()));
    for (const auto& q : queues) {
        const std::uint16_t vector = q.call_fd >= 0 ? q.index : virtio::kNoVector;
        if (auto r = t_.setup_queue(q.index, q.size, q.addrs, vector); !r)
            return undo(std::move(r.error()));
    }
    t_.driver_ok();
    if (const std::uint8_t s = t_.status(); s & (virtio::status::kNeedsReset | virtio::status::kFailed))
        return undo(Error(EIO, "the device status reads " + std::to_string(s) +
                                   " after DRIVER_OK (NEEDS_RESET or FAILED)"));
    return {};
}

Result<void> PciHw::irqs_off() {
    if (!irqs_on_)
        return {};
    irqs_on_ = false;
    vfio::IrqRequest req;
    req.index = kMsix;
    req.action = vfio::IrqAction::trigger;
    req.count = 0;  // with no payload: disable the index
    return dev_->set_irqs(req);
}

Result<void> PciHw::attach_kick(std::uint16_t q, int fd) {
    // One registration per queue: the previous one goes first.
    for (auto it = kicks_.begin(); it != kicks_.end(); ++it) {
        if (it->q != q)
            continue;
        (void)dev_->ioeventfd(t_.window(virtio::CapType::notify).bar, it->offset, 2, q, -1);
        kicks_.erase(it);
        break;
    }
    if (fd < 0)
        return {};
    auto off = t_.notify_offset(q);
    if (!off)
        return fail(Error(EINVAL, "queue " + std::to_string(q) + " is not set up"));
    // The notify store the relay would make (virtio 1.2, 4.1.5.2: the
    // queue's index, 16 bits, at its notify address), made by the kernel.
    // It holds its own reference to the eventfd.
    if (auto r = dev_->ioeventfd(t_.window(virtio::CapType::notify).bar, *off, 2, q, fd); !r)
        return fail(std::move(r.error()));
    kicks_.push_back({q, *off});
    return {};
}

void PciHw::detach_kicks() {
    const unsigned bar = t_.window(virtio::CapType::notify).bar;
    for (const auto& k : kicks_)
        (void)dev_->ioeventfd(bar, k.offset, 2, k.q, -1);
    kicks_.clear();
}

Result<void> PciHw::stop() {
    detach_kicks();
    auto r = t_.reset();
    // The kernel lets go of the front end's eventfds.
    auto i = irqs_off();
    if (!r)
        return r;
    return i;
}

Result<void> PciHw::set_call(std::uint16_t q, int fd) {
    const int fds[1] = {fd};
    vfio::IrqRequest req;
    req.index = kMsix;
    req.action = vfio::IrqAction::trigger;
    req.start = q;
    req.count = 1;
    req.eventfds = fds;
    return dev_->set_irqs(req);
}

}  // namespace vfiokit::vdpa

// Interrupts of a vfio-pci device: VFIO_DEVICE_GET_IRQ_INFO, SET_IRQS with
// eventfds, and the eventfds' read side (vfio_pci_intrs.c).
#include "vfiokit/bus/pci/irq.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <new>

#include "vfiokit/bus/pci/device.hpp"
#include "vfiokit/uapi/vfio.hpp"

namespace vfiokit::pci {

namespace {

constexpr std::string_view kSetIrqs = "VFIO_DEVICE_SET_IRQS";

// A SET_IRQS without payload: DATA_NONE plus one action on [start, start+count).
Result<void> set_irqs_none(int device_fd, IrqType t, std::uint32_t action, std::uint32_t start,
                           std::uint32_t count) {
    uapi::vfio_irq_set s{};
    s.argsz = sizeof s;
    s.flags = uapi::kVfioIrqSetDataNone | action;
    s.index = static_cast<std::uint32_t>(t);
    s.start = start;
    s.count = count;
    if (auto r = vfio::do_ioctl(device_fd, uapi::kVfioDeviceSetIrqs, &s, kSetIrqs); !r)
        return fail(std::move(r.error()));
    return {};
}

}  // namespace

std::string to_string(IrqType t) {
    switch (t) {
    case IrqType::intx: return "INTx";
    case IrqType::msi: return "MSI";
    case IrqType::msix: return "MSI-X";
    case IrqType::err: return "ERR";
    case IrqType::req: return "REQ";
    }
    return "IRQ index " + std::to_string(static_cast<std::uint32_t>(t));
}

// --- EventFd ------------------------------------------------------------------
// poll() and read() of an eventfd are the data path: plain syscalls.

Result<std::uint64_t> EventFd::wait(std::chrono::milliseconds timeout) const {
    using clock = std::chrono::steady_clock;
    const auto deadline = clock::now() + timeout;
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
        pollfd p{fd_.get(), POLLIN, 0};
        const int n = ::poll(&p, 1, static_cast<int>(std::clamp<std::int64_t>(left.count(), 0, INT_MAX)));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail(errno, "poll eventfd " + std::to_string(fd_.get()));
        if (n == 0)
            return fail(ETIMEDOUT, "wait for eventfd " + std::to_string(fd_.get()) + " (" +
                                       std::to_string(timeout.count()) + " ms)");
        std::uint64_t count = 0;
        const ssize_t r = ::read(fd_.get(), &count, sizeof count);
        if (r == sizeof count)
            return count;
        // Someone else consumed it between poll and read (shared fd): wait on.
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        return fail(r < 0 ? errno : EIO, "read eventfd " + std::to_string(fd_.get()));
    }
}

Result<std::uint64_t> EventFd::poll() const {
    auto r = wait(std::chrono::milliseconds(0));
    if (!r && r.error().err() == ETIMEDOUT)
        return 0;
    return r;
}

// --- IrqSet -------------------------------------------------------------------

IrqSet::IrqSet(int device_fd, IrqType t, std::vector<EventFd> fds)
    : device_fd_(device_fd), type_(t), enabled_(!fds.empty()), fds_(std::move(fds)) {}

IrqSet::IrqSet(IrqSet&& o) noexcept
    : device_fd_(std::exchange(o.device_fd_, -1)),
      type_(o.type_),
      enabled_(std::exchange(o.enabled_, false)),
      fds_(std::move(o.fds_)) {}

IrqSet& IrqSet::operator=(IrqSet&& o) noexcept {
    if (this != &o) {
        if (enabled_)
            (void)disable();
        device_fd_ = std::exchange(o.device_fd_, -1);
        type_ = o.type_;
        enabled_ = std::exchange(o.enabled_, false);
        fds_ = std::move(o.fds_);  // closes ours after the kernel let go of them
    }
    return *this;
}

IrqSet::~IrqSet() {
    // Disable first: the kernel holds references to the eventfds, and a
    // device interrupt between the close and the disable would signal an
    // eventfd nobody reads (harmless, but the kernel also keeps the vectors
    // allocated until told).
    if (enabled_)
        (void)disable();
}

Result<void> IrqSet::unmask() const {
    // Only INTx is masked on delivery (VFIO_IRQ_INFO_AUTOMASKED); vfio-pci
    // has no mask/unmask for MSI or MSI-X (vfio_pci_set_irqs_ioctl).
    if (type_ != IrqType::intx)
        return fail(ENOTSUP, "unmask " + to_string(type_) + ": only INTx is masked by the kernel");
    if (!enabled_)
        return fail(EINVAL, "unmask INTx: the IrqSet is disabled");
    if (auto r = set_irqs_none(device_fd_, type_, uapi::kVfioIrqSetActionUnmask, 0, 1); !r)
        return fail(std::move(r.error().context("unmask INTx")));
    return {};
}

Result<void> IrqSet::trigger(std::size_t i) const {
    const std::string what = "trigger " + to_string(type_) + " vector " + std::to_string(i);
    if (i >= fds_.size())
        return fail(EINVAL, what + ": the set has " + std::to_string(fds_.size()) + " vector(s)");
    if (!enabled_)
        return fail(EINVAL, what + ": the IrqSet is disabled");
    // DATA_NONE | ACTION_TRIGGER makes the kernel signal the vector's
    // eventfd itself: the loopback of vfio_pci_set_msi_trigger and
    // vfio_pci_set_intx_trigger.
    if (auto r = set_irqs_none(device_fd_, type_, uapi::kVfioIrqSetActionTrigger,
                               static_cast<std::uint32_t>(i), 1);
        !r)
        return fail(std::move(r.error().context(what)));
    return {};
}

Result<void> IrqSet::disable() {
    if (!enabled_)
        return {};
    // DATA_NONE | ACTION_TRIGGER with count 0 disables the whole index
    // (vfio_pci_set_msi_trigger / vfio_pci_set_intx_trigger).
    if (auto r = set_irqs_none(device_fd_, type_, uapi::kVfioIrqSetActionTrigger, 0, 0); !r)
        return fail(std::move(r.error().context("disable " + to_string(type_))));
    enabled_ = false;
    return {};
}

// --- PciDevice: IRQ ioctls ------------------------------------------------------

Result<IrqInfo> PciDevice::irq_info(IrqType t) const {
    uapi::vfio_irq_info i{};
    i.argsz = sizeof i;
    i.index = static_cast<std::uint32_t>(t);
    if (auto r = vfio::do_ioctl(dev_->fd(), uapi::kVfioDeviceGetIrqInfo, &i, "VFIO_DEVICE_GET_IRQ_INFO"); !r) {
        // vfio-pci refuses the ERR index of a conventional PCI device.
        return fail(std::move(r.error().context(address().str() + " " + to_string(t))));
    }
    IrqInfo info;
    info.type = t;
    info.count = i.count;
    info.eventfd = (i.flags & uapi::kVfioIrqInfoEventfd) != 0;
    info.maskable = (i.flags & uapi::kVfioIrqInfoMaskable) != 0;
    info.automasked = (i.flags & uapi::kVfioIrqInfoAutomasked) != 0;
    return info;
}

Result<IrqSet> PciDevice::enable_irqs(IrqType t, unsigned count) const {
    const std::string who = address().str() + " " + to_string(t);
    if (count == 0)
        return fail(Error(EINVAL, "enable_irqs: count 0 (use IrqSet::disable to turn vectors off)")
                        .context(who));
    if (t == IrqType::intx && count != 1)
        return fail(Error(EINVAL, "enable_irqs: INTx has exactly one vector").context(who));

    std::vector<EventFd> fds;  // closed on every failure path below
    fds.reserve(count);
    for (unsigned i = 0; i < count; ++i) {
        // Non-blocking, so EventFd::poll can read without waiting.
        const int fd = vfio::sys().eventfd(0, EFD_NONBLOCK);
        if (fd < 0)
            return fail(Error(errno, "eventfd").context(who + " vector " + std::to_string(i)));
        fds.emplace_back(vfio::Fd(fd));
    }

    // vfio_irq_set with a trailer of `count` int32 eventfds.
    const std::size_t bytes = uapi::size_with_trailer<uapi::vfio_irq_set, std::int32_t>(count);
    std::vector<std::uint32_t> buf((bytes + 3) / 4);
    auto* set = new (buf.data()) uapi::vfio_irq_set{};
    set->argsz = static_cast<std::uint32_t>(bytes);
    set->flags = uapi::kVfioIrqSetDataEventfd | uapi::kVfioIrqSetActionTrigger;
    set->index = static_cast<std::uint32_t>(t);
    set->start = 0;
    set->count = count;
    std::int32_t* data = uapi::trailer_of<std::int32_t>(set);
    for (unsigned i = 0; i < count; ++i)
        data[i] = fds[i].fd();

    if (auto r = vfio::do_ioctl(dev_->fd(), uapi::kVfioDeviceSetIrqs, set, kSetIrqs); !r) {
        Error e = std::move(r.error());
        e.context(who + ": enable " + std::to_string(count) + " vector(s)");
        if (e.err() == EINVAL) {
            // The kernel's EINVAL covers two mistakes; tell them apart.
            auto i = irq_info(t);
            if (i && count > i->count)
                e.hint("the device offers " + std::to_string(i->count) + " " + to_string(t) +
                       " vector(s)");
            else
                e.hint("another interrupt type is enabled on this device: destroy or disable "
                       "its IrqSet first (vfio-pci enables one type at a time)");
        }
        return fail(std::move(e));
    }
    return IrqSet(dev_->fd(), t, std::move(fds));
}

}  // namespace vfiokit::pci

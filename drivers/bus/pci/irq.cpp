// Interrupts of a VFIO PCI device: IRQ info, set_irqs with eventfds
// (device_ops.hpp; vfio_pci_intrs.c behind the kernel backends), and the
// eventfds' read side.
#include "vfiokit/bus/pci/irq.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>

#include "vfiokit/bus/pci/device.hpp"

namespace vfiokit::pci {

namespace {

// A set_irqs without payload: one action on [start, start+count).
Result<void> set_irqs_none(vfio::DeviceOps* dev, IrqType t, vfio::IrqAction action,
                           std::uint32_t start, std::uint32_t count) {
    if (dev == nullptr)
        return fail(EBADF, "set IRQs: the IrqSet has no device");
    vfio::IrqRequest r;
    r.index = static_cast<std::uint32_t>(t);
    r.action = action;
    r.start = start;
    r.count = count;
    return dev->set_irqs(r);
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

IrqSet::IrqSet(std::shared_ptr<vfio::DeviceOps> device, IrqType t, std::vector<EventFd> fds)
    : dev_(std::move(device)), type_(t), enabled_(!fds.empty()), fds_(std::move(fds)) {}

IrqSet::IrqSet(IrqSet&& o) noexcept
    : dev_(std::move(o.dev_)),
      type_(o.type_),
      enabled_(std::exchange(o.enabled_, false)),
      fds_(std::move(o.fds_)) {}

IrqSet& IrqSet::operator=(IrqSet&& o) noexcept {
    if (this != &o) {
        if (enabled_)
            (void)disable();
        dev_ = std::move(o.dev_);
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
    // allocated until told). After the device's release this reaches
    // nothing: the handle refuses (ENODEV).
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
    if (auto r = set_irqs_none(dev_.get(), type_, vfio::IrqAction::unmask, 0, 1); !r)
        return fail(std::move(r.error().context("unmask INTx")));
    return {};
}

Result<void> IrqSet::trigger(std::size_t i) const {
    const std::string what = "trigger " + to_string(type_) + " vector " + std::to_string(i);
    if (i >= fds_.size())
        return fail(EINVAL, what + ": the set has " + std::to_string(fds_.size()) + " vector(s)");
    if (!enabled_)
        return fail(EINVAL, what + ": the IrqSet is disabled");
    // A trigger without payload makes the kernel signal the vector's
    // eventfd itself: the loopback of vfio_pci_set_msi_trigger and
    // vfio_pci_set_intx_trigger.
    if (auto r = set_irqs_none(dev_.get(), type_, vfio::IrqAction::trigger,
                               static_cast<std::uint32_t>(i), 1);
        !r)
        return fail(std::move(r.error().context(what)));
    return {};
}

Result<void> IrqSet::disable() {
    if (!enabled_)
        return {};
    // A trigger without payload and with count 0 disables the whole index
    // (vfio_pci_set_msi_trigger / vfio_pci_set_intx_trigger).
    if (auto r = set_irqs_none(dev_.get(), type_, vfio::IrqAction::trigger, 0, 0); !r)
        return fail(std::move(r.error().context("disable " + to_string(type_))));
    enabled_ = false;
    return {};
}

// --- PciDevice: IRQ ioctls ------------------------------------------------------

Result<IrqInfo> PciDevice::irq_info(IrqType t) const {
    auto i = dev_->irq_info(static_cast<std::uint32_t>(t));
    if (!i) {
        // E.g. the ERR index of a conventional PCI device, which vfio-pci
        // refuses up to some kernel (6.12) and offers from another (7.3).
        return fail(std::move(i.error().context(address().str() + " " + to_string(t))));
    }
    IrqInfo info;
    info.type = t;
    info.count = i->count;
    info.eventfd = i->eventfd;
    info.maskable = i->maskable;
    info.automasked = i->automasked;
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

    std::vector<int> numbers;
    numbers.reserve(count);
    for (const EventFd& e : fds)
        numbers.push_back(e.fd());
    vfio::IrqRequest req;
    req.index = static_cast<std::uint32_t>(t);
    req.action = vfio::IrqAction::trigger;
    req.count = count;
    req.eventfds = numbers;
    if (auto r = dev_->set_irqs(req); !r) {
        Error e = std::move(r.error());
        e.context(who + ": enable " + std::to_string(count) + " vector(s)");
        if (e.err() == EINVAL) {
            // The kernel's EINVAL covers two mistakes; tell them apart.
            auto i = irq_info(t);
            if (!i)
                e.hint("the device offers no " + to_string(t) + " interrupt (the kernel refuses "
                       "its IRQ info: " + i.error().message() + ")");
            else if (count > i->count)
                e.hint("the device offers " + std::to_string(i->count) + " " + to_string(t) +
                       " vector(s)");
            else
                e.hint("another interrupt type is enabled on this device: destroy or disable "
                       "its IrqSet first (vfio-pci enables one type at a time)");
        }
        return fail(std::move(e));
    }
    return IrqSet(dev_, t, std::move(fds));
}

}  // namespace vfiokit::pci

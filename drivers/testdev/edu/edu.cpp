#include "edu.hpp"

#include "edu_pmdinfo.hpp"

#include <cerrno>
#include <cstdio>
#include <string>
#include <thread>
#include "vfiokit/eal/format.hpp"

namespace vfiokit::edu {

namespace {

using Clock = std::chrono::steady_clock;

// Polls `done` until it holds or `timeout` passes. The edu engines finish
// on QEMU's timers and threads, so there is nothing to do but look again;
// a short sleep keeps a TCG guest's vCPU free for the device's work.
template <class F>
bool poll_until(F done, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
        if (done())
            return true;
        if (Clock::now() >= deadline)
            return done();
        std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
}

}  // namespace

Result<void> check_transfer(std::uint64_t iova, std::uint64_t buf_off, std::uint64_t len,
                            std::uint64_t dma_mask) {
    const std::string what = "edu DMA of " + std::to_string(len) + " bytes at buffer offset " +
                             std::to_string(buf_off);
    if (len == 0)
        return fail(Error(EINVAL, what).hint("QEMU 7.2's edu aborts the guest on an empty "
                                                 "transfer too (edu_check_range: end > start)"));
    if (buf_off >= kBufferSize || len > kBufferSize - buf_off)
        return fail(Error(EINVAL, what + ": outside the device buffer")
                        .hint("the buffer is 4096 bytes at device address 0x40000"));
    // QEMU 7.2's edu_check_range demands end < 0x41000 and aborts the
    // guest otherwise; see "KNOWN QEMU BUG" in edu.hpp.
    if (buf_off + len == kBufferSize)
        return fail(Error(EINVAL, what + ": ends at the buffer's end (0x41000)")
                        .hint("QEMU 7.2's edu aborts the whole guest on a transfer ending at "
                              "0x41000 (edu_check_range off-by-one, fixed in QEMU 8.2.1/9.0); "
                              "end at buffer offset 4095 at most"));
    if (iova + len < iova || iova + len - 1 > dma_mask)
        return fail(Error(ERANGE, what + ": RAM range [" + hex(iova) + ", " +
                                      hex(iova + len - 1) + "] above the DMA mask " +
                                      hex(dma_mask))
                        .hint("edu masks RAM addresses with its dma_mask (edu_clamp_addr) and "
                              "would DMA elsewhere: allocate IOVAs under the mask "
                              "(Container::alloc_iova)"));
    return {};
}

Result<std::unique_ptr<EduDevice>> EduDevice::open(pci::PciDevice& dev, std::uint64_t dma_mask) {
    const std::string who = "edu " + dev.address().str();
    auto bar = dev.map_bar(kBar);
    if (!bar)
        return fail(std::move(bar.error()).context(who));
    if (!bar->mapped(0, 0xa0))
        return fail(Error(ENODEV, "BAR0 registers are not mmap()able").context(who));
    if (auto r = dev.enable_memory_and_bus_master(); !r)
        return fail(std::move(r.error()).context(who));
    std::unique_ptr<EduDevice> e(new EduDevice(dev, std::move(*bar), dma_mask));
    if (const std::uint32_t id = e->id(); id != kIdentification)
        return fail(Error(ENODEV, "identification register reads " + hex(id) + ", expected " +
                                      hex(kIdentification))
                        .context(who)
                        .hint("not an edu device, or a version this driver does not know"));
    return e;
}

EduDevice::~EduDevice() {
    // Stop the device from writing into memory that is about to go away:
    // let a running transfer finish (in no-IOMMU mode nothing else would
    // stop it), then take bus mastering away. Not when another process
    // drives it now (let_go).
    if (!owner_)
        return;
    if (dma_busy())
        (void)poll_until([&] { return !dma_busy(); }, kDmaTimeout);
    (void)dev_->disable_bus_master();
}

std::uint32_t EduDevice::id() { return regs::Identification::read(bar_).raw(); }

std::uint32_t EduDevice::liveness(std::uint32_t v) {
    regs::Liveness::zero().set_value(v).write(bar_);
    return regs::Liveness::read(bar_).value();
}

Result<std::uint32_t> EduDevice::factorial(std::uint32_t n, std::chrono::milliseconds timeout) {
    // A write while computing is ignored (edu_mmio_write): wait for idle.
    auto idle = [&] { return regs::Status::read(bar_).computing() == 0; };
    if (!poll_until(idle, timeout))
        return fail(Error(ETIMEDOUT, "edu factorial: unit still busy")
                        .context("edu " + dev_->address().str()));
    regs::Factorial::zero().set_value(n).write(bar_);
    if (!poll_until(idle, timeout))
        return fail(Error(ETIMEDOUT, "edu factorial of " + std::to_string(n))
                        .context("edu " + dev_->address().str()));
    return regs::Factorial::read(bar_).value();
}

bool EduDevice::dma_busy() { return regs::DmaCommand::read(bar_).start() != 0; }

Result<void> EduDevice::start_dma(Direction dir, std::uint64_t iova, std::uint64_t buf_off,
                                  std::uint64_t len, bool irq_when_done) {
    const std::string who = "edu " + dev_->address().str();
    if (auto ok = check_transfer(iova, buf_off, len, mask_); !ok)
        return fail(std::move(ok.error()).context(who));
    // edu ignores address and count writes while a transfer runs (dma_rw):
    // programming now would silently reuse the old transfer's values.
    if (dma_busy())
        return fail(Error(EBUSY, "edu DMA: a transfer is still running").context(who));
    const std::uint64_t dev_addr = kBufferAddress + buf_off;
    const bool to_ram = dir == Direction::to_ram;
    regs::DmaSource::zero().set_address(to_ram ? dev_addr : iova).write(bar_);
    regs::DmaDestination::zero().set_address(to_ram ? iova : dev_addr).write(bar_);
    regs::DmaCount::zero().set_bytes(len).write(bar_);
    // The RAM side must be written before the device reads it; Bar::write
    // orders earlier memory writes before the doorbell (bar.hpp).
    regs::DmaCommand::zero().set_start(1).set_to_ram(to_ram).set_irq_on_done(irq_when_done).write(bar_);
    return {};
}

Result<void> EduDevice::wait_dma(std::chrono::milliseconds timeout) {
    if (!poll_until([&] { return !dma_busy(); }, timeout))
        return fail(Error(ETIMEDOUT, "edu DMA: start bit still set after " +
                                         std::to_string(timeout.count()) + " ms")
                        .context("edu " + dev_->address().str())
                        .hint("the transfer runs on a 100 ms QEMU timer; a stalled or very "
                              "loaded guest takes longer"));
    return {};
}

Result<void> EduDevice::dma_to_device(std::uint64_t iova, std::uint64_t buf_off, std::uint64_t len,
                                      std::chrono::milliseconds timeout) {
    if (auto r = start_dma(Direction::to_device, iova, buf_off, len); !r)
        return r;
    return wait_dma(timeout);
}

Result<void> EduDevice::dma_to_ram(std::uint64_t iova, std::uint64_t buf_off, std::uint64_t len,
                                   std::chrono::milliseconds timeout) {
    if (auto r = start_dma(Direction::to_ram, iova, buf_off, len); !r)
        return r;
    return wait_dma(timeout);
}

void EduDevice::raise_irq(std::uint32_t value) { regs::IrqRaise::zero().set_value(value).write(bar_); }

std::uint32_t EduDevice::irq_status() { return regs::IrqStatus::read(bar_).value(); }

void EduDevice::ack_irq(std::uint32_t value) { regs::IrqAck::zero().set_value(value).write(bar_); }

Result<void> EduDevice::reinit() {
    if (auto r = dev_->enable_memory_and_bus_master(); !r)
        return fail(std::move(r.error()).context("edu " + dev_->address().str()));
    ack_irq(~0U);
    return {};
}

EduDriver::EduDriver(std::uint64_t dma_mask) : DriverFor(pmdinfo::edu), mask_(dma_mask) {}

Result<std::uint64_t> EduDriver::dma_mask(const pci::DriverArgs& args) const {
    auto m = args.get_uint("dma_mask");
    if (!m)
        return fail(std::move(m.error()));
    if (*m && **m == 0)
        return fail(Error(EINVAL, "driver edu argument dma_mask=0: no address fits under it")
                        .hint("give the mask the device was created with, e.g. 0xfffffff"));
    return m->value_or(mask_);
}

Result<std::unique_ptr<EduDevice>> EduDriver::probe(pci::PciDevice& dev, const pci::DriverArgs& args) {
    auto mask = dma_mask(args);
    if (!mask)
        return fail(std::move(mask.error()));
    return EduDevice::open(dev, *mask);
}

}  // namespace vfiokit::edu

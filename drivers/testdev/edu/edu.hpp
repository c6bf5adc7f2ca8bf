// Driver for QEMU's "edu" educational PCI device (1234:11e8): a DMA engine
// with a 4 KiB buffer, a factorial unit and an interrupt raise/ack pair,
// delivered as MSI or INTx. The lab uses it to prove DMA and interrupts
// through VFIO in every mode.
//
// Sources for every register below: QEMU docs/specs/edu.rst ("MMIO area
// spec", "DMA controller") and hw/misc/edu.c (edu_mmio_read/edu_mmio_write,
// edu_dma_timer, edu_check_range), as of QEMU 7.2, the lab's QEMU.
//
//   // linked with edu_pmd_dep: registered, so Eal::init probes edus
//   auto eal = Eal::init(argc, argv);   // app -a 0000:00:03.0,dma_mask=0xffffffff
//   edu::EduDevice* e = edu::driver().find(addr);
//   e->dma_to_device(iova, 0, 100);     // RAM at iova -> device buffer
//
// The driver's declaration (name, ids, 28-bit DMA mask, the dma_mask=
// parameter) is edu.pmd.json; the build turns it into pmdinfo::edu and the
// PMD_INFO_STRING that dpdk-pmdinfo.py finds in any binary linking edu.
//
// KNOWN QEMU BUG (QEMU before 8.2.1/9.0, fixed by upstream commit
// 2c5107e1b455 "edu: fix DMA range upper bound check"; the lab's Debian
// QEMU 7.2.22 still has it: a 4096-byte transfer there kills QEMU with
// SIGABRT, checked in the lab):
// edu_check_range(addr, size1, start, size2) in 7.2 returns (accepts) only
// when `within(addr, start, end2) && end1 > addr && within(end1, start, end2)`
// with within(a, s, e) = `s <= a && a < e`, that is
//     start <= addr < end2  &&  end1 > addr  &&  start <= end1 < end2
// with end1 = addr + size1 (the transfer's exclusive end) and
// end2 = 0x40000 + 4096 = 0x41000. A transfer whose device-side range ends
// exactly at the end of the buffer (end1 == 0x41000, e.g. 4096 bytes at
// offset 0) fails the strict `end1 < end2`, and edu calls hw_error(), which
// aborts QEMU: the whole guest dies. This driver therefore refuses any
// transfer that reaches the buffer's last byte: the largest usable transfer
// is 4095 bytes (kMaxTransfer), and buf_off + len must be < 4096.
//
// The DMA mask is a QEMU property (-device edu,dma_mask=...), 28 bits by
// default; the device does not report it. edu masks every RAM-side address
// with it (edu_clamp_addr) and would silently DMA elsewhere, so the driver
// refuses RAM ranges above the mask it was given. Probe declares the mask
// to the device's container (Container::require_dma_mask): EAL memory is
// moved under it, and a mapping that cannot be fails the probe, naming the
// mask and the range.
//
// Ownership: an EduDevice keeps a reference to the PciDevice the bus made
// and owns its BAR0 mapping; the bus destroys it before the PciDevice.
// Thread-safety: none; one thread drives one device.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "vfiokit/bus/pci/bar.hpp"
#include "vfiokit/bus/pci/bus.hpp"
#include "vfiokit/bus/pci/device.hpp"
#include "vfiokit/bus/pci/driver.hpp"
#include "vfiokit/bus/pci/register.hpp"
#include "vfiokit/eal/error.hpp"

namespace vfiokit::edu {

inline constexpr std::uint16_t kVendor = 0x1234;  // PCI_VENDOR_ID_QEMU
inline constexpr std::uint16_t kDevice = 0x11e8;
inline constexpr unsigned kBar = 0;                    // "PCI Region 0: I/O memory, 1 MB"
inline constexpr std::uint64_t kBarSize = 1 << 20;
inline constexpr std::uint32_t kIdentification = 0x010000ed;  // version 1.0
inline constexpr std::uint64_t kBufferAddress = 0x40000;      // DMA_START
inline constexpr std::uint64_t kBufferSize = 4096;            // DMA_SIZE
// See "KNOWN QEMU BUG" above: a transfer may not reach 0x41000.
inline constexpr std::uint64_t kMaxTransfer = kBufferSize - 1;
inline constexpr std::uint64_t kDefaultDmaMask = (1ULL << 28) - 1;
// Interrupt status bits the device raises itself (FACT_IRQ, DMA_IRQ).
inline constexpr std::uint32_t kIrqFactorial = 0x001;
inline constexpr std::uint32_t kIrqDma = 0x100;
// edu_dma_timer runs 100 ms of QEMU_CLOCK_VIRTUAL after the start; under
// TCG that is about 100 ms of wall time, slower on a loaded host.
inline constexpr std::chrono::milliseconds kDmaTimeout{2000};

// Registers of BAR0. Offsets below 0x80 take 4-byte accesses only, 0x80 and
// up 4 or 8 bytes (edu_mmio_read/write ignore other sizes).
namespace regs {

// 0x00 RO: 0xRRrr00ed, RR major and rr minor version.
struct Identification : pci::Register<Identification, std::uint32_t, 0x00> {
    VFIOKIT_FIELD(31, 24, major)
    VFIOKIT_FIELD(23, 16, minor)
    VFIOKIT_FIELD(15, 0, magic)  // 0x00ed
};
// 0x04 RW: reads back the bitwise inverse of the last value written.
struct Liveness : pci::Register<Liveness, std::uint32_t, 0x04> {
    VFIOKIT_FIELD(31, 0, value)
};
// 0x08 RW: write n, and n! replaces it once Status.computing clears.
// Written while computing, it is ignored.
struct Factorial : pci::Register<Factorial, std::uint32_t, 0x08> {
    VFIOKIT_FIELD(31, 0, value)
};
// 0x20 RW.
struct Status : pci::Register<Status, std::uint32_t, 0x20> {
    VFIOKIT_FIELD(0, 0, computing)         // RO: factorial in progress
    VFIOKIT_FIELD(7, 7, irq_on_factorial)  // raise kIrqFactorial when done
};
// 0x24 RO: the OR of every value raised and not acknowledged yet.
struct IrqStatus : pci::Register<IrqStatus, std::uint32_t, 0x24> {
    VFIOKIT_FIELD(31, 0, value)
    VFIOKIT_FIELD(0, 0, factorial)
    VFIOKIT_FIELD(8, 8, dma)
};
// 0x60 WO: ORs the value into IrqStatus and raises the interrupt.
struct IrqRaise : pci::Register<IrqRaise, std::uint32_t, 0x60> {
    VFIOKIT_FIELD(31, 0, value)
};
// 0x64 WO: clears the value's bits from IrqStatus; INTx drops once it is 0.
struct IrqAck : pci::Register<IrqAck, std::uint32_t, 0x64> {
    VFIOKIT_FIELD(31, 0, value)
};
// 0x80, 0x88, 0x90 RW: writes are ignored while a transfer runs.
struct DmaSource : pci::Register<DmaSource, std::uint64_t, 0x80> {
    VFIOKIT_FIELD(63, 0, address)
};
struct DmaDestination : pci::Register<DmaDestination, std::uint64_t, 0x88> {
    VFIOKIT_FIELD(63, 0, address)
};
struct DmaCount : pci::Register<DmaCount, std::uint64_t, 0x90> {
    VFIOKIT_FIELD(63, 0, bytes)
};
// 0x98 RW: a write without `start` is ignored; `start` reads 1 until the
// transfer is done.
struct DmaCommand : pci::Register<DmaCommand, std::uint32_t, 0x98> {
    VFIOKIT_FIELD(0, 0, start)
    VFIOKIT_FIELD(1, 1, to_ram)       // 0: RAM -> device buffer, 1: buffer -> RAM
    VFIOKIT_FIELD(2, 2, irq_on_done)  // raise kIrqDma when done
};

}  // namespace regs

enum class Direction { to_device, to_ram };

// Checks a transfer against the device buffer (and the QEMU bug above) and
// the RAM side against the DMA mask, without touching a device. EINVAL for
// an empty or out-of-buffer transfer, ERANGE for RAM above the mask.
[[nodiscard]] Result<void> check_transfer(std::uint64_t iova, std::uint64_t buf_off,
                                          std::uint64_t len, std::uint64_t dma_mask);

class EduDevice final {
public:
    // Maps BAR0, enables memory decoding and bus mastering, and checks the
    // identification register. `dev` must outlive the EduDevice.
    [[nodiscard]] static Result<std::unique_ptr<EduDevice>> open(pci::PciDevice& dev,
                                                                std::uint64_t dma_mask);
    ~EduDevice();
    EduDevice(const EduDevice&) = delete;
    EduDevice& operator=(const EduDevice&) = delete;

    [[nodiscard]] pci::PciDevice& pci() const { return *dev_; }
    [[nodiscard]] std::uint64_t dma_mask() const { return mask_; }

    [[nodiscard]] std::uint32_t id();
    // Writes v to the liveness register and returns what it reads back (~v).
    [[nodiscard]] std::uint32_t liveness(std::uint32_t v);
    // n! modulo 2^32, polling Status.computing; ETIMEDOUT after `timeout`.
    [[nodiscard]] Result<std::uint32_t> factorial(
        std::uint32_t n, std::chrono::milliseconds timeout = std::chrono::milliseconds(1000));

    // Blocking transfers: start, then wait for the start bit to clear.
    // `iova` is the RAM side (an IOVA mapped in the device's container, or a
    // physical address in no-IOMMU mode); buf_off the offset in the device
    // buffer. EBUSY when a transfer is already running; ETIMEDOUT when it
    // does not finish in time (the device may still complete it later).
    [[nodiscard]] Result<void> dma_to_device(std::uint64_t iova, std::uint64_t buf_off,
                                             std::uint64_t len,
                                             std::chrono::milliseconds timeout = kDmaTimeout);
    [[nodiscard]] Result<void> dma_to_ram(std::uint64_t iova, std::uint64_t buf_off,
                                          std::uint64_t len,
                                          std::chrono::milliseconds timeout = kDmaTimeout);
    // The same in two halves, to run transfers on several devices at once
    // or to take the DMA-done interrupt (kIrqDma) instead of polling.
    [[nodiscard]] Result<void> start_dma(Direction dir, std::uint64_t iova, std::uint64_t buf_off,
                                         std::uint64_t len, bool irq_when_done = false);
    [[nodiscard]] bool dma_busy();
    [[nodiscard]] Result<void> wait_dma(std::chrono::milliseconds timeout = kDmaTimeout);

    void raise_irq(std::uint32_t value);
    [[nodiscard]] std::uint32_t irq_status();
    void ack_irq(std::uint32_t value);

    // After a VFIO reset of the device (PciDevice::reset): enables memory
    // and bus mastering again and acknowledges every pending interrupt.
    [[nodiscard]] Result<void> reinit();

    // The device now belongs to another process (vfio::hand_over): the
    // destructor leaves it as it is (a transfer may run on, bus mastering
    // stays on) instead of waiting for the transfer and stopping it.
    void let_go() { owner_ = false; }

private:
    EduDevice(pci::PciDevice& dev, pci::Bar bar, std::uint64_t dma_mask)
        : dev_(&dev), bar_(std::move(bar)), mask_(dma_mask) {}
    pci::PciDevice* dev_;
    pci::Bar bar_;
    std::uint64_t mask_;
    bool owner_ = true;
};

class EduDriver final : public pci::DriverFor<EduDevice> {
public:
    // `dma_mask`: what edus probed without a dma_mask= argument were created
    // with (QEMU's dma_mask property; the declared default is 28 bits).
    explicit EduDriver(std::uint64_t dma_mask = kDefaultDmaMask);

    // dma_mask= when given (not 0), else the constructor's.
    [[nodiscard]] Result<std::uint64_t> dma_mask(const pci::DriverArgs& args) const override;
    [[nodiscard]] Result<std::unique_ptr<EduDevice>> probe(pci::PciDevice& dev,
                                                           const pci::DriverArgs& args) override;

    // The EduDevice this driver made for a bound device; nullptr when `b`
    // belongs to another driver.
    [[nodiscard]] EduDevice* device(const pci::BoundDevice& b) const { return instance(b); }

private:
    std::uint64_t mask_;
};

// The registered edu driver (register.cpp, in programs linked with
// edu_pmd_dep): the one Eal::init probes edus with.
[[nodiscard]] EduDriver& driver();

}  // namespace vfiokit::edu

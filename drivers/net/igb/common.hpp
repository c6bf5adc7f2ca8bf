// What the 82576 PF (IgbPort, port.hpp) and VF (IgbVfPort, vf.hpp) ports
// share (private to the driver): the rings and their setup, start and
// teardown in the datasheet's order (4.5.9, 4.5.10), the queue counters,
// the link from STATUS, the DevInfo both fill alike, and the frame sizes.
// A VF's queue registers are the PF's per-queue block at other addresses
// (QueueLayout); everything else a port does differently stays in its own
// class.
//
// The per-packet path is not here: both ports hand ethdev the same free
// functions rx_burst/tx_burst (rxtx.hpp), which see only the queue.
//
// Ownership: PortBase owns the BAR0 mapping and the queues (rings, their
// DMA memory and the mbufs in them); the derived destructor calls
// stop_and_release() before it quiets the device, and the BAR goes last. `dev` outlives
// the port (igb.hpp).
// Thread-safety: ethdev's rules (control calls from one thread; each queue
// polled by one thread).
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "regs.hpp"
#include "rxtx.hpp"
#include "vfiokit/bus/pci/bar.hpp"
#include "vfiokit/bus/pci/device.hpp"
#include "vfiokit/ethdev/ethdev.hpp"

namespace vfiokit::igb {

inline constexpr std::uint32_t kEtherHdr = 14, kVlanTag = 4, kCrc = 4;
// RLPML is 14 bits wide (8.10.6); the VF's limit is the PF's.
inline constexpr std::uint32_t kMaxRxPktLen = 0x3FFF;

// What SRRCTL.BSIZEPKT can describe of a pool's buffers: the bytes after
// the headroom, in whole KiB (the device writes at the mbuf's data offset).
[[nodiscard]] std::uint32_t rx_buffer_bytes(const mbuf::MbufPool& p);

// BAR0 of `dev` mapped, mmap()ed over its first `bytes`, with memory
// decoding and bus mastering on. Errors name the device as `name` and its
// address; ENODEV when the registers are not mmap()able.
[[nodiscard]] Result<pci::Bar> map_bar0(pci::PciDevice& dev, const char* name, std::size_t bytes);

// Calls `done` every `step` until it holds or `limit` has passed; true once
// it held (checked once more at the limit).
template <class F>
bool poll_until(F done, std::chrono::milliseconds limit, std::chrono::microseconds step) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
        if (done())
            return true;
        if (std::chrono::steady_clock::now() >= deadline)
            return done();
        std::this_thread::sleep_for(step);
    }
}

// Where one function's queue registers sit. The register types name the
// PF's queue 0 (regs::Rdbal ... regs::Txdctl); rx queue n's block starts
// at rx + stride n and tx queue n's at tx + stride n, in the same layout.
struct QueueLayout {
    std::size_t rx, tx, stride;
    std::uint16_t count;  // queue pairs

    // What to add to a per-queue register's offset for queue n's copy,
    // modulo 2^64 (so a block below the PF's, the VF's, works).
    [[nodiscard]] constexpr std::size_t rx_shift(unsigned n) const {
        return rx - regs::Rdbal::offset + stride * n;
    }
    [[nodiscard]] constexpr std::size_t tx_shift(unsigned n) const {
        return tx - regs::Tdbal::offset + stride * n;
    }
    // The Io for queue n's copies of the per-queue registers.
    [[nodiscard]] Indexed rx_io(pci::Bar& bar, unsigned n) const { return shifted(bar, rx_shift(n)); }
    [[nodiscard]] Indexed tx_io(pci::Bar& bar, unsigned n) const { return shifted(bar, tx_shift(n)); }

private:
    static Indexed shifted(pci::Bar& bar, std::size_t delta) {
        Indexed io(bar, 0, 0);
        io.delta = delta;
        return io;
    }
};
// The PF's 16 queues (8.10, 8.12: stride 0x40).
inline constexpr QueueLayout kPfQueues{regs::Rdbal::offset, regs::Tdbal::offset, kQueueStride,
                                       kMaxQueues};

// One hardware counter as DPDK names it in xstats.
struct HwCounter {
    const char* name;  // null: read for stats() only, not an xstat
    std::uint32_t offset;
    bool wide;  // 64-bit: low word at offset, high at offset + 4
};

// How often a port polls a register while it waits: `fast` below a
// second, `slow` for waits of a second and more.
struct PollSteps {
    std::chrono::microseconds fast, slow;
};

class PortBase : public ethdev::PortOps {
public:
    PortBase(const PortBase&) = delete;
    PortBase& operator=(const PortBase&) = delete;

    // The fields both ports fill alike; the derived info() adds the rest.
    [[nodiscard]] ethdev::DevInfo info() const override;
    [[nodiscard]] Result<void*> rx_queue_setup(std::uint16_t q, std::uint16_t nb_desc, int socket,
                                               const ethdev::RxConf& conf,
                                               mbuf::MbufPool& pool) override;
    [[nodiscard]] Result<void*> tx_queue_setup(std::uint16_t q, std::uint16_t nb_desc, int socket,
                                               const ethdev::TxConf& conf) override;
    void rx_queue_release(std::uint16_t q) override;
    void tx_queue_release(std::uint16_t q) override;
    [[nodiscard]] ethdev::RxBurst rx_burst_fn() const override { return &rx_burst; }
    [[nodiscard]] ethdev::TxBurst tx_burst_fn() const override { return &tx_burst; }
    [[nodiscard]] ethdev::MacAddr mac() const override { return mac_; }
    // accumulate_counters(), then hw_stats() and the queues' own counts.
    [[nodiscard]] Result<ethdev::Stats> stats() override;
    [[nodiscard]] Result<void> stats_reset() override;
    // The named counters, in their table's order.
    [[nodiscard]] Result<std::vector<ethdev::Xstat>> xstats() override;

    // The id ethdev::attach gave this port (stamped into received mbufs).
    void set_port_id(std::uint16_t id) { port_id_ = id; }

protected:
    // `name`: the driver's name (static storage); `counters`: the table
    // accumulate_counters() adds to hw_ in the same order.
    PortBase(pci::PciDevice& dev, pci::Bar bar, const char* name, QueueLayout layout,
             std::span<const HwCounter> counters, PollSteps steps);
    ~PortBase() override = default;

    // Adds what the counters in `counters_` counted since the last call to hw_.
    virtual void accumulate_counters() = 0;
    // The port-wide fields of `s` from hw_ (after accumulate_counters()).
    virtual void hw_stats(ethdev::Stats& s) const = 0;

    [[nodiscard]] std::string who() const;
    template <class F>
    bool poll(F done, std::chrono::milliseconds limit) {
        return poll_until(done, limit, limit >= std::chrono::seconds(1) ? steps_.slow : steps_.fast);
    }
    // EINVAL if a set-up rx queue's buffers cannot hold a frame of `mtu`.
    [[nodiscard]] Result<void> check_buffers(std::uint32_t mtu) const;
    // Starts rx queues 0 .. nb_rxq_ - 1 (tx: nb_txq_), each in the
    // datasheet's order, the rx queues' offload fields from conf_; on an
    // error the queues started so far keep running (the caller disables
    // them).
    [[nodiscard]] Result<void> start_rx_queues();
    [[nodiscard]] Result<void> start_tx_queues();
    // Clears RXDCTL/TXDCTL.ENABLE of every set-up queue and waits for it.
    void disable_rings();
    // Stops the port if it runs (the derived stop()) and frees every queue:
    // the derived destructor's first step, so no ring goes while in use.
    void stop_and_release();
    // STATUS as it reads (the VF's copy shows the PF's link), after
    // waiting up to 9 s for LU when `wait`.
    template <class Status>
    [[nodiscard]] ethdev::Link read_link(bool wait);

    pci::PciDevice* dev_;
    pci::Bar bar_;
    const char* name_;
    QueueLayout layout_;
    std::span<const HwCounter> counters_;
    PollSteps steps_;
    ethdev::MacAddr mac_;
    std::uint16_t port_id_ = 0;
    std::uint16_t nb_rxq_ = 0, nb_txq_ = 0;
    ethdev::PortConf conf_;
    std::uint32_t mtu_ = 1500;
    bool started_ = false;
    std::array<std::unique_ptr<RxQueue>, kMaxQueues> rxq_;
    std::array<std::unique_ptr<TxQueue>, kMaxQueues> txq_;
    std::vector<std::uint64_t> hw_;  // totals of counters_, same order

private:
    [[nodiscard]] Result<void> start_rx_queue(RxQueue& q);
    [[nodiscard]] Result<void> start_tx_queue(TxQueue& q);
};

template <class Status>
ethdev::Link PortBase::read_link(bool wait) {
    if (wait)
        (void)poll([&] { return Status::read(bar_).lu() != 0; }, std::chrono::milliseconds(9000));
    const auto s = Status::read(bar_);
    ethdev::Link l;
    l.up = s.lu() != 0;
    if (l.up) {
        l.speed_mbps = s.speed() == 0 ? 10 : s.speed() == 1 ? 100 : 1000;
        l.full_duplex = s.fd() != 0;
        l.autoneg = true;
    }
    return l;
}

}  // namespace vfiokit::igb

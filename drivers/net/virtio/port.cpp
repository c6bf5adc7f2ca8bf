#include "port.hpp"
#include "vfiokit/eal/log.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

namespace vfiokit::virtio::net {

namespace {

// Events of the virtio-net ports.
const log::Component kLog("net.virtio");

namespace off = ethdev::offload;
constexpr std::uint64_t kRxCksum = off::kRxUdpCksum | off::kRxTcpCksum;
constexpr std::uint16_t kMinDesc = 16;
constexpr std::uint16_t kCtrlDesc = 16;

// Features that need the control queue (section 5.1.3.1).
constexpr std::uint64_t kNeedCtrlVq = feature(kFCtrlRx) | feature(kFCtrlMacAddr) | feature(kFMq);

}  // namespace

std::uint64_t required_features(std::uint64_t offered) {
    return feature(kFVersion1) | (offered & feature(kFAccessPlatform));
}

std::uint64_t wanted_features(std::uint64_t offered) {
    std::uint64_t w = required_features(offered) | feature(kFMac) | feature(kFStatus) |
                      feature(kFMrgRxbuf) | feature(kFCtrlVq) | feature(kFCtrlRx) |
                      feature(kFCtrlMacAddr) | feature(kFMq) | feature(kFMtu) |
                      feature(kFSpeedDuplex);
    w &= offered | required_features(offered);
    if (!(w & feature(kFCtrlVq)))
        w &= ~kNeedCtrlVq;
    return w;
}

// --- the control queue

Result<std::unique_ptr<CtrlQueue>> CtrlQueue::create(std::uint16_t num, int socket) {
    const std::uint64_t ring = (split_layout(num).total + 63) & ~std::uint64_t{63};
    auto mem = DmaBlock::alloc(ring + kCmdBytes, socket);
    if (!mem)
        return fail(std::move(mem.error()).context("control queue"));
    auto q = std::make_unique<CtrlQueue>();
    q->ring_ = Vring::at(mem->va(), mem->iova(), num);
    q->buf_ = mem->va() + ring;
    q->buf_iova_ = mem->iova() + ring;
    q->mem_ = std::move(*mem);
    return q;
}

void CtrlQueue::reset(Kick kick) {
    std::memset(static_cast<void*>(ring_.desc), 0, split_layout(ring_.num).total);
    ring_.set_interrupts(false);
    kick_ = kick;
    avail_idx_ = 0;
    last_used_ = 0;
}

Result<void> CtrlQueue::command(std::uint8_t cls, std::uint8_t cmd,
                                std::span<const std::uint8_t> data) {
    const std::string what = "control command " + std::to_string(cls) + "." + std::to_string(cmd);
    if (data.size() > kCmdBytes - 8)
        return fail(Error(EINVAL, what + ": " + std::to_string(data.size()) + " bytes of data"));
    constexpr std::uint32_t kAck = kCmdBytes - 1;
    buf_[0] = cls;
    buf_[1] = cmd;
    std::memcpy(buf_ + 2, data.data(), data.size());
    buf_[kAck] = 0xff;  // neither kOk nor kErr until the device writes it
    // Three descriptors: header, data (device-readable), ack (writable).
    Desc* d = ring_.desc;
    d[0] = {.addr = buf_iova_, .len = 2, .flags = kDescNext, .next = 1};
    d[1] = {.addr = buf_iova_ + 2, .len = static_cast<std::uint32_t>(data.size()),
            .flags = kDescNext, .next = 2};
    d[2] = {.addr = buf_iova_ + kAck, .len = 1, .flags = kDescWrite, .next = 0};
    if (data.empty())
        d[0].next = 2;
    *avail_entry(ring_.avail, static_cast<std::uint16_t>(avail_idx_ & ring_.mask)) = 0;
    ++avail_idx_;
    ring_.publish(avail_idx_);
    kick_.ring();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (ring_.used_idx() == last_used_) {
        if (std::chrono::steady_clock::now() >= deadline)
            return fail(Error(ETIMEDOUT, what + ": the device did not answer within 1 s"));
        std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
    ++last_used_;
    const std::uint8_t ack = std::atomic_ref<std::uint8_t>(buf_[kAck]).load(std::memory_order_acquire);
    if (ack != ctrl::kOk)
        return fail(Error(EIO, what + ": the device answered " + std::to_string(ack) +
                                   (ack == ctrl::kErr ? " (VIRTIO_NET_ERR)" : "")));
    return {};
}

// --- the port

VirtioPort::VirtioPort(pci::PciDevice& dev, PciTransport transport, DeviceConfig cfg)
    : dev_(&dev), cfg_(cfg), features_(cfg.features), mac_(cfg.mac), t_(std::move(transport)) {
    if (auto i = dev.irq_info(pci::IrqType::msix); i && i->eventfd)
        msix_vectors_ = i->count;
    mtu_ = std::min<std::uint32_t>(1500, cfg_.mtu);
}

VirtioPort::~VirtioPort() {
    stop();
    (void)dev_->disable_bus_master();
}

std::string VirtioPort::who() const {
    return "virtio-net " + dev_->address().str() + " (port " + std::to_string(port_id_) + ")";
}

std::uint16_t VirtioPort::pairs() const {
    return std::max(nb_rxq_, nb_txq_);
}

ethdev::DevInfo VirtioPort::info() const {
    ethdev::DevInfo i;
    i.driver_name = "net_virtio";
    i.device_name = dev_->address().str();
    const std::uint16_t q = (cfg_.features & feature(kFMq))
                                ? std::min<std::uint16_t>(cfg_.max_pairs, ethdev::kMaxQueues)
                                : 1;
    i.max_rx_queues = q;
    i.max_tx_queues = q;
    i.rx_desc = {std::min(kMinDesc, cfg_.rx_max), cfg_.rx_max, 1};
    i.tx_desc = {std::min(kMinDesc, cfg_.tx_max), cfg_.tx_max, 1};
    i.rx_offload_capa = (cfg_.offered & feature(kFGuestCsum)) ? kRxCksum : 0;
    i.tx_offload_capa = off::kTxMultiSegs;
    i.min_mtu = 68;
    i.max_mtu = (cfg_.features & feature(kFMtu)) ? cfg_.mtu : 1500;
    i.max_rx_pktlen = i.max_mtu + 14;
    // Vector 0 for the configuration, one per rx queue after it.
    i.rxq_interrupt = msix_vectors_ >= 2;
    i.lsc_interrupt = msix_vectors_ >= 1 && (cfg_.features & feature(kFStatus));
    return i;
}

Result<void> VirtioPort::check_frame_room(const mbuf::MbufPool& pool) const {
    // With MRG_RXBUF a frame spans as many buffers as it needs; without,
    // the device must find it room in one (else it fails the device).
    if (cfg_.features & feature(kFMrgRxbuf))
        return {};
    const std::uint32_t room = pool.data_room() > mbuf::kHeadroom ? pool.data_room() - mbuf::kHeadroom : 0;
    if (room < max_frame())
        return fail(Error(EINVAL, who() + ": pool '" + pool.name() + "' buffers hold " +
                                      std::to_string(room) + " bytes after the headroom; a frame "
                                      "of MTU " + std::to_string(mtu_) + " needs " +
                                      std::to_string(max_frame()))
                        .hint("without VIRTIO_NET_F_MRG_RXBUF a frame must fit one buffer: use "
                              "a larger data room or a smaller MTU"));
    return {};
}

Result<void> VirtioPort::configure(std::uint16_t nb_rxq, std::uint16_t nb_txq,
                                   const ethdev::PortConf& conf) {
    if (conf.rss_hf)
        return fail(Error(ENOTSUP, who() + ": configure: RSS")
                        .hint("the virtio-net PMD does not program RSS: configure with rss_hf = 0"));
    if (conf.rxq_interrupt && msix_vectors_ < 1u + nb_rxq)
        return fail(Error(EINVAL, who() + ": configure: rx interrupts for " +
                                      std::to_string(nb_rxq) + " queues need " +
                                      std::to_string(1 + nb_rxq) + " MSI-X vectors; the device has " +
                                      std::to_string(msix_vectors_))
                        .hint("fewer rx queues, or more vectors (QEMU: virtio-net-pci,vectors=N)"));
    if (conf.mtu) {
        if (auto r = set_mtu(conf.mtu); !r)
            return r;
    }
    conf_ = conf;
    if (!conf.mtu)
        conf_.mtu = mtu_;
    rxq_.clear();
    txq_.clear();
    rxq_.resize(nb_rxq);
    txq_.resize(nb_txq);
    nb_rxq_ = nb_rxq;
    nb_txq_ = nb_txq;
    return {};
}

Result<void*> VirtioPort::rx_queue_setup(std::uint16_t q, std::uint16_t nb_desc, int socket,
                                         const ethdev::RxConf& conf, mbuf::MbufPool& pool) {
    rxq_[q].reset();
    if (auto r = check_frame_room(pool); !r)
        return fail(std::move(r.error()));
    auto rq = RxQueue::create(nb_desc, socket, conf, pool);
    if (!rq)
        return fail(std::move(rq.error()).context(who() + " rx queue " + std::to_string(q)));
    rxq_[q] = std::move(*rq);
    rxq_[q]->port = port_id_;
    return static_cast<void*>(rxq_[q].get());
}

Result<void*> VirtioPort::tx_queue_setup(std::uint16_t q, std::uint16_t nb_desc, int socket,
                                         const ethdev::TxConf& conf) {
    txq_[q].reset();
    auto tq = TxQueue::create(nb_desc, socket, conf);
    if (!tq)
        return fail(std::move(tq.error()).context(who() + " tx queue " + std::to_string(q)));
    txq_[q] = std::move(*tq);
    return static_cast<void*>(txq_[q].get());
}

void VirtioPort::rx_queue_release(std::uint16_t q) {
    if (started_)
        stop();
    if (q < rxq_.size())
        rxq_[q].reset();
}

void VirtioPort::tx_queue_release(std::uint16_t q) {
    if (started_)
        stop();
    if (q < txq_.size())
        txq_[q].reset();
}

Result<void> VirtioPort::start() {
    for (std::uint16_t q = 0; q < nb_rxq_; ++q)
        if (!rxq_[q])
            return fail(Error(EINVAL, who() + ": start: rx queue " + std::to_string(q) +
                                          " is not set up")
                            .hint("call rx_queue_setup first"));
    for (std::uint16_t q = 0; q < nb_txq_; ++q)
        if (!txq_[q])
            return fail(Error(EINVAL, who() + ": start: tx queue " + std::to_string(q) +
                                          " is not set up")
                            .hint("call tx_queue_setup first"));
    if (auto r = start_device(); !r) {
        stop();
        return fail(std::move(r.error()).context(who() + ": start"));
    }
    started_ = true;
    return {};
}

Result<void> VirtioPort::start_device() {
    if (auto r = dev_->enable_memory_and_bus_master(); !r)
        return r;
    const std::uint64_t offered = t_.device_features();
    std::uint64_t want = wanted_features(offered);
    // Partial checksums only when the application takes checksum verdicts
    // (DPDK's virtio asks the same way): a frame the device hands over
    // with NEEDS_CSUM has no complete checksum until the driver finishes it.
    if ((conf_.rx_offloads & kRxCksum) && (offered & feature(kFGuestCsum)))
        want |= feature(kFGuestCsum);
    auto got = t_.negotiate(want, required_features(offered));
    if (!got)
        return fail(std::move(got.error()));
    features_ = *got;

    const bool rx_intr = conf_.rxq_interrupt && nb_rxq_ > 0;
    const bool lsc = conf_.lsc_interrupt;
    irqs_.reset();
    if (rx_intr || lsc) {
        auto set = dev_->enable_irqs(pci::IrqType::msix, 1u + (rx_intr ? nb_rxq_ : 0u));
        if (!set)
            return fail(std::move(set.error()).context("interrupts"));
        irqs_.emplace(std::move(*set));
    }
    if (auto r = t_.set_config_vector(lsc ? kConfigVector : kNoVector); !r)
        return r;
    for (std::uint16_t p = 0; p < pairs(); ++p) {
        if (p < nb_rxq_) {
            RxQueue& q = *rxq_[p];
            if (auto r = q.reset(); !r)
                return fail(std::move(r.error()).context("rx queue " + std::to_string(p)));
            const std::uint16_t vq = rx_vq(p);
            const std::uint16_t vec = rx_intr ? static_cast<std::uint16_t>(1 + p) : kNoVector;
            if (auto r = t_.setup_queue(vq, q.nb_desc, q.ring.addrs, vec); !r)
                return r;
            q.kick = {t_.notify_addr(vq), vq};
            q.mrg = has(kFMrgRxbuf);
            q.cksum = has(kFGuestCsum) && (conf_.rx_offloads & kRxCksum);
            q.port = port_id_;
        }
        if (p < nb_txq_) {
            TxQueue& q = *txq_[p];
            q.reset();
            const std::uint16_t vq = tx_vq(p);
            if (auto r = t_.setup_queue(vq, q.nb_desc, q.ring.addrs, kNoVector); !r)
                return r;
            q.kick = {t_.notify_addr(vq), vq};
        }
    }
    if (has(kFCtrlVq)) {
        const std::uint16_t vq = ctrl_vq(has(kFMq) ? cfg_.max_pairs : 1);
        const std::uint16_t num = std::min(kCtrlDesc, t_.queue_max_size(vq));
        if (num == 0 || (num & (num - 1)) != 0)
            return fail(Error(EPROTO, "control queue " + std::to_string(vq) + " has size " +
                                          std::to_string(num)));
        if (!ctrl_ || ctrl_->ring().num != num) {
            auto c = CtrlQueue::create(num, -1);
            if (!c)
                return fail(std::move(c.error()));
            ctrl_ = std::move(*c);
        }
        if (auto r = t_.setup_queue(vq, num, ctrl_->ring().addrs, kNoVector); !r)
            return r;
        ctrl_->reset({t_.notify_addr(vq), vq});
    }
    t_.driver_ok();
    if (t_.status() & status::kNeedsReset)
        return fail(Error(EIO, "the device set DEVICE_NEEDS_RESET after DRIVER_OK"));
    if (has(kFMq)) {
        const std::uint16_t n = pairs();
        const std::uint8_t le[2] = {static_cast<std::uint8_t>(n), static_cast<std::uint8_t>(n >> 8)};
        if (auto r = ctrl_->command(ctrl::kClassMq, ctrl::kMqVqPairsSet, le); !r)
            return fail(std::move(r.error()).context("set " + std::to_string(n) + " queue pairs"));
    }
    if (auto r = apply_rx_mode(); !r)
        return r;
    if (mac_ != cfg_.mac && has(kFCtrlMacAddr)) {
        if (auto r = ctrl_->command(ctrl::kClassMac, ctrl::kMacAddrSet, mac_.bytes); !r)
            return fail(std::move(r.error()).context("set MAC " + mac_.str()));
    }
    return {};
}

Result<void> VirtioPort::apply_rx_mode() {
    if (!has(kFCtrlRx))
        return {};
    const std::uint8_t p = promisc_ ? 1 : 0, a = allmulti_ ? 1 : 0;
    if (auto r = ctrl_->command(ctrl::kClassRx, ctrl::kRxPromisc, {&p, 1}); !r)
        return fail(std::move(r.error()).context(promisc_ ? "promiscuous on" : "promiscuous off"));
    if (auto r = ctrl_->command(ctrl::kClassRx, ctrl::kRxAllmulti, {&a, 1}); !r)
        return fail(std::move(r.error()).context(allmulti_ ? "all-multicast on" : "all-multicast off"));
    return {};
}

void VirtioPort::stop() {
    // The reset stops the device's use of every ring at once (section
    // 2.4); one that does not finish loses bus mastering instead, so that
    // it cannot reach rings about to be freed.
    if (auto r = t_.reset(); !r) {
        kLog.warning("{}: stop: {}; bus mastering turned off", who(), r.error().message());
        (void)dev_->disable_bus_master();
    }
    irqs_.reset();
    for (auto& q : txq_)
        if (q)
            q->reset();
    started_ = false;
}

Result<ethdev::Link> VirtioPort::link(bool wait) {
    auto read = [&]() -> Result<ethdev::Link> {
        ethdev::Link l;
        l.up = true;
        l.full_duplex = true;
        if (cfg_.features & feature(kFStatus)) {
            std::uint8_t s[2] = {};
            if (auto r = t_.read_device_config(config::kStatus, s); !r)
                return fail(std::move(r.error()));
            l.up = ((s[0] | s[1] << 8) & kStatusLinkUp) != 0;
        }
        if (cfg_.features & feature(kFSpeedDuplex)) {
            std::uint8_t b[5] = {};
            if (auto r = t_.read_device_config(config::kSpeed, b); !r)
                return fail(std::move(r.error()));
            const std::uint32_t speed = b[0] | b[1] << 8 | b[2] << 16 | std::uint32_t{b[3]} << 24;
            l.speed_mbps = speed == kSpeedUnknown ? 0 : speed;
            l.full_duplex = b[4] != 0;
        }
        if (!l.up)
            l.speed_mbps = 0;
        return l;
    };
    auto l = read();
    for (int i = 0; wait && l && !l->up && i < 90; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        l = read();
    }
    if (!l)
        return fail(std::move(l.error()).context(who() + ": link"));
    return l;
}

Result<void> VirtioPort::promiscuous(bool on) {
    if (!has(kFCtrlRx)) {
        if (on)
            return {};  // without receive-mode control the device filters nothing
        return fail(Error(ENOTSUP, who() + ": promiscuous off: the device offers no receive-mode "
                                           "control (VIRTIO_NET_F_CTRL_RX) and receives every frame"));
    }
    const bool was = promisc_;
    promisc_ = on;
    if (started_) {
        const std::uint8_t v = on ? 1 : 0;
        if (auto r = ctrl_->command(ctrl::kClassRx, ctrl::kRxPromisc, {&v, 1}); !r) {
            promisc_ = was;
            return fail(std::move(r.error()).context(who() + ": promiscuous"));
        }
    }
    return {};
}

Result<void> VirtioPort::allmulticast(bool on) {
    if (!has(kFCtrlRx)) {
        if (on)
            return {};
        return fail(Error(ENOTSUP, who() + ": all-multicast off: the device offers no "
                                           "receive-mode control (VIRTIO_NET_F_CTRL_RX)"));
    }
    const bool was = allmulti_;
    allmulti_ = on;
    if (started_) {
        const std::uint8_t v = on ? 1 : 0;
        if (auto r = ctrl_->command(ctrl::kClassRx, ctrl::kRxAllmulti, {&v, 1}); !r) {
            allmulti_ = was;
            return fail(std::move(r.error()).context(who() + ": all-multicast"));
        }
    }
    return {};
}

Result<void> VirtioPort::set_mac(const ethdev::MacAddr& a) {
    if (a.bytes[0] & 1)
        return fail(Error(EINVAL, who() + ": set MAC " + a.str() + ": a multicast address")
                        .hint("a port's address is unicast: the first byte's lowest bit is 0"));
    if (a == mac_)
        return {};
    if (!has(kFCtrlMacAddr))
        return fail(Error(ENOTSUP, who() + ": set MAC " + a.str() + ": the device offers no "
                                           "MAC_ADDR_SET (VIRTIO_NET_F_CTRL_MAC_ADDR); its address "
                                           "stays " + mac_.str()));
    if (started_) {
        if (auto r = ctrl_->command(ctrl::kClassMac, ctrl::kMacAddrSet, a.bytes); !r)
            return fail(std::move(r.error()).context(who() + ": set MAC " + a.str()));
    }
    mac_ = a;
    return {};
}

Result<void> VirtioPort::set_mtu(std::uint32_t mtu) {
    const std::uint32_t was = mtu_;
    mtu_ = mtu;
    for (const auto& q : rxq_)
        if (q) {
            if (auto r = check_frame_room(*q->pool); !r) {
                mtu_ = was;
                return r;
            }
        }
    return {};
}

Result<ethdev::Stats> VirtioPort::stats() {
    ethdev::Stats s;
    for (std::size_t q = 0; q < rxq_.size(); ++q) {
        if (!rxq_[q])
            continue;
        const RxQueue& r = *rxq_[q];
        s.ipackets += r.packets.get();
        s.ibytes += r.bytes.get();
        s.ierrors += r.errors.get();
        s.rx_nombuf += r.nombuf.get();
        if (q < ethdev::kMaxQueues) {
            s.q_ipackets[q] = r.packets.get();
            s.q_ibytes[q] = r.bytes.get();
        }
    }
    for (std::size_t q = 0; q < txq_.size(); ++q) {
        if (!txq_[q])
            continue;
        const TxQueue& t = *txq_[q];
        s.opackets += t.packets.get();
        s.obytes += t.bytes.get();
        s.oerrors += t.errors.get();
        if (q < ethdev::kMaxQueues) {
            s.q_opackets[q] = t.packets.get();
            s.q_obytes[q] = t.bytes.get();
        }
    }
    return s;
}

Result<void> VirtioPort::stats_reset() {
    for (auto& q : rxq_)
        if (q) {
            q->packets.reset();
            q->bytes.reset();
            q->errors.reset();
            q->nombuf.reset();
            q->kicks.reset();
        }
    for (auto& q : txq_)
        if (q) {
            q->packets.reset();
            q->bytes.reset();
            q->errors.reset();
            q->kicks.reset();
        }
    return {};
}

// DPDK's virtio names where it has them (rx_qN_good_packets...); the
// kicks are this driver's ("notifications" the device asked for).
Result<std::vector<ethdev::Xstat>> VirtioPort::xstats() {
    auto s = stats();
    std::vector<ethdev::Xstat> out = {
        {"rx_good_packets", s->ipackets},
        {"tx_good_packets", s->opackets},
        {"rx_good_bytes", s->ibytes},
        {"tx_good_bytes", s->obytes},
        {"rx_errors", s->ierrors},
        {"tx_errors", s->oerrors},
        {"rx_mbuf_allocation_errors", s->rx_nombuf},
    };
    for (std::size_t q = 0; q < rxq_.size(); ++q) {
        if (!rxq_[q])
            continue;
        const std::string p = "rx_q" + std::to_string(q) + "_";
        out.push_back({p + "good_packets", rxq_[q]->packets.get()});
        out.push_back({p + "good_bytes", rxq_[q]->bytes.get()});
        out.push_back({p + "errors", rxq_[q]->errors.get()});
        out.push_back({p + "kicks", rxq_[q]->kicks.get()});
    }
    for (std::size_t q = 0; q < txq_.size(); ++q) {
        if (!txq_[q])
            continue;
        const std::string p = "tx_q" + std::to_string(q) + "_";
        out.push_back({p + "good_packets", txq_[q]->packets.get()});
        out.push_back({p + "good_bytes", txq_[q]->bytes.get()});
        out.push_back({p + "errors", txq_[q]->errors.get()});
        out.push_back({p + "kicks", txq_[q]->kicks.get()});
    }
    return out;
}

Result<void> VirtioPort::check_intr(bool configured, const char* what) const {
    if (!configured || !irqs_)
        return fail(Error(EINVAL, who() + ": " + what + ": not armed")
                        .hint("configure with the interrupt and start the port first; the "
                              "eventfds exist from start to stop"));
    return {};
}

Result<int> VirtioPort::rx_intr_fd(std::uint16_t q) {
    if (auto r = check_intr(conf_.rxq_interrupt, "rx interrupt"); !r)
        return fail(std::move(r.error()));
    return irqs_->vector(1u + q).fd();
}

// The device signals a queue's vector when it adds used entries while
// the driver has interrupts on for it (avail->flags, section 2.7.7). A
// frame that arrived while they were off signals nothing: arming checks
// for one and signals the eventfd itself, so the waiter wakes for it.
Result<void> VirtioPort::rx_intr_enable(std::uint16_t q) {
    if (auto r = check_intr(conf_.rxq_interrupt, "rx interrupt"); !r)
        return r;
    RxQueue& rq = *rxq_[q];
    rq.ring.set_interrupts(true);
    if (rq.ring.used_idx() != rq.last_used)
        return irqs_->trigger(1u + q);
    return {};
}

Result<void> VirtioPort::rx_intr_disable(std::uint16_t q) {
    if (auto r = check_intr(conf_.rxq_interrupt, "rx interrupt"); !r)
        return r;
    rxq_[q]->ring.set_interrupts(false);
    return {};
}

// Configuration changes (link status) on vector 0; MSI-X needs no cause
// cleared, and link() reads the status afresh.
Result<int> VirtioPort::lsc_fd() {
    if (auto r = check_intr(conf_.lsc_interrupt, "link-state interrupt"); !r)
        return fail(std::move(r.error()));
    return irqs_->vector(kConfigVector).fd();
}

}  // namespace vfiokit::virtio::net

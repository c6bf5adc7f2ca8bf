#include "virtio.hpp"

#include <bit>
#include <cerrno>
#include <random>
#include <string>

#include "vfiokit/eal/format.hpp"
#include "virtio_net_pmdinfo.hpp"

namespace vfiokit::virtio::net {

std::string feature_names(std::uint64_t features) {
    static constexpr struct {
        unsigned bit;
        const char* name;
    } kNames[] = {
        {kFCsum, "CSUM"}, {kFGuestCsum, "GUEST_CSUM"}, {2, "CTRL_GUEST_OFFLOADS"},
        {kFMtu, "MTU"}, {kFMac, "MAC"}, {7, "GUEST_TSO4"}, {8, "GUEST_TSO6"},
        {9, "GUEST_ECN"}, {10, "GUEST_UFO"}, {11, "HOST_TSO4"}, {12, "HOST_TSO6"},
        {13, "HOST_ECN"}, {14, "HOST_UFO"}, {kFMrgRxbuf, "MRG_RXBUF"}, {kFStatus, "STATUS"},
        {kFCtrlVq, "CTRL_VQ"}, {kFCtrlRx, "CTRL_RX"}, {kFCtrlVlan, "CTRL_VLAN"},
        {20, "CTRL_RX_EXTRA"}, {kFGuestAnnounce, "GUEST_ANNOUNCE"}, {kFMq, "MQ"},
        {kFCtrlMacAddr, "CTRL_MAC_ADDR"}, {57, "HASH_REPORT"}, {60, "RSS"}, {61, "RSC_EXT"},
        {62, "STANDBY"}, {kFSpeedDuplex, "SPEED_DUPLEX"},
    };
    std::uint64_t rest = features;
    std::string out;
    for (const auto& n : kNames) {
        if (!(features & feature(n.bit)))
            continue;
        out += out.empty() ? "" : "|";
        out += n.name;
        rest &= ~feature(n.bit);
    }
    if (rest)
        out += (out.empty() ? "" : "|") + virtio::feature_names(rest);
    return out.empty() ? "none" : out;
}

namespace {

std::uint16_t le16(const std::uint8_t* b) { return static_cast<std::uint16_t>(b[0] | b[1] << 8); }

Error legacy_only(const std::string& what) {
    return Error(ENODEV, what + ": a transitional virtio-net in legacy mode (virtio 0.9.5); this "
                                "driver speaks virtio 1.x only")
        .hint("make the device modern: QEMU's -device virtio-net-pci,disable-legacy=on "
              "(1af4:1041), or at least disable-modern=off");
}

}  // namespace

Result<std::unique_ptr<VirtioDevice>> VirtioDevice::open(pci::PciDevice& dev) {
    const std::string who = "virtio-net " + dev.address().str();
    auto id = dev.device_id();
    if (!id)
        return fail(std::move(id.error()).context(who));
    if (*id != kDeviceModernNet && *id != kDeviceTransitionalNet)
        return fail(Error(ENODEV, "device id " + hex(*id) + " is not a virtio-net (1af4:1041, "
                                  "or a transitional 1af4:1000)")
                        .context(who));
    auto t = PciTransport::open(dev);
    if (!t) {
        if (*id == kDeviceTransitionalNet && t.error().err() == ENODEV)
            return fail(legacy_only(t.error().op()).context(who));
        return fail(std::move(t.error()));
    }
    auto undo = [&](Error e) {
        (void)t->reset();
        (void)dev.disable_bus_master();
        return fail(std::move(e).context(who));
    };
    DeviceConfig cfg;
    cfg.offered = t->device_features();
    if (!(cfg.offered & feature(kFVersion1)))
        return undo(legacy_only("the device does not offer VERSION_1 (it offers " +
                                feature_names(cfg.offered) + ")"));
    auto got = t->negotiate(wanted_features(cfg.offered), required_features(cfg.offered));
    if (!got)
        return undo(std::move(got.error()));
    cfg.features = *got;
    auto has = [&](unsigned bit) { return (cfg.features & feature(bit)) != 0; };
    std::uint8_t c[12] = {};
    if (auto r = t->read_device_config(0, c); !r)
        return undo(std::move(r.error()));
    if (has(kFMac)) {
        std::copy(c + config::kMac, c + config::kMac + 6, cfg.mac.bytes.begin());
        cfg.mac_from_device = true;
    } else {
        // No address of its own: a random locally administered unicast
        // one, as DPDK's virtio and Linux's virtio_net make.
        std::random_device rd;
        for (auto& b : cfg.mac.bytes)
            b = static_cast<std::uint8_t>(rd());
        cfg.mac.bytes[0] = static_cast<std::uint8_t>((cfg.mac.bytes[0] & 0xfe) | 0x02);
    }
    if (has(kFMq)) {
        const std::uint16_t n = le16(c + config::kMaxVirtqueuePairs);
        // Section 5.1.4.1: 1 to 0x8000.
        if (n < 1 || n > 0x8000)
            return undo(Error(EPROTO, "max_virtqueue_pairs is " + std::to_string(n)));
        cfg.max_pairs = n;
    }
    if (has(kFMtu))
        cfg.mtu = le16(c + config::kMtu);
    cfg.rx_max = std::bit_floor(t->queue_max_size(rx_vq(0)));
    cfg.tx_max = std::bit_floor(t->queue_max_size(tx_vq(0)));
    if (cfg.rx_max == 0 || cfg.tx_max == 0)
        return undo(Error(EPROTO, "receiveq1 or transmitq1 does not exist (queue sizes " +
                                      std::to_string(cfg.rx_max) + " and " +
                                      std::to_string(cfg.tx_max) + ")"));
    // Idle until the port starts.
    if (auto r = t->reset(); !r)
        return undo(std::move(r.error()));
    auto ops = std::make_unique<VirtioPort>(dev, std::move(*t), cfg);
    VirtioPort* raw = ops.get();
    auto port = ethdev::attach(std::move(ops));
    if (!port)  // ethdev destroyed the port, which reset the device
        return fail(std::move(port.error()).context(who));
    raw->set_port_id(*port);
    return std::unique_ptr<VirtioDevice>(new VirtioDevice(raw, *port, cfg));
}

VirtioDevice::~VirtioDevice() { ethdev::detach(port_ops_); }

VirtioDriver::VirtioDriver() : DriverFor(pmdinfo::net_virtio) {}

Result<std::unique_ptr<VirtioDevice>> VirtioDriver::probe(pci::PciDevice& dev,
                                                          const pci::DriverArgs&) {
    return VirtioDevice::open(dev);
}

}  // namespace vfiokit::virtio::net

#include "vfiokit/common/virtio/pci.hpp"

#include <atomic>
#include <cerrno>
#include <thread>

#include "vfiokit/eal/format.hpp"

namespace vfiokit::virtio {

namespace {

constexpr std::uint8_t kCapVendor = 0x09;

// struct virtio_pci_cap (section 4.1.4): cap_vndr, cap_next, cap_len,
// cfg_type, bar, id, padding[2], offset (le32), length (le32); the notify
// capability adds notify_off_multiplier (le32) at 16.
constexpr std::uint32_t kCapLen = 2, kCapType = 3, kCapBar = 4, kCapOffset = 8, kCapLength = 12,
                        kCapNotifyMultiplier = 16;
constexpr std::uint32_t kCapMinLen = 16, kNotifyCapMinLen = 20;

// struct virtio_pci_common_cfg (section 4.1.4.3).
namespace common {
constexpr std::uint32_t kDeviceFeatureSelect = 0x00;
constexpr std::uint32_t kDeviceFeature = 0x04;
constexpr std::uint32_t kDriverFeatureSelect = 0x08;
constexpr std::uint32_t kDriverFeature = 0x0c;
constexpr std::uint32_t kConfigMsixVector = 0x10;
constexpr std::uint32_t kNumQueues = 0x12;
constexpr std::uint32_t kDeviceStatus = 0x14;
constexpr std::uint32_t kConfigGeneration = 0x15;
constexpr std::uint32_t kQueueSelect = 0x16;
constexpr std::uint32_t kQueueSize = 0x18;
constexpr std::uint32_t kQueueMsixVector = 0x1a;
constexpr std::uint32_t kQueueEnable = 0x1c;
constexpr std::uint32_t kQueueNotifyOff = 0x1e;
constexpr std::uint32_t kQueueDesc = 0x20;
constexpr std::uint32_t kQueueDriver = 0x28;
constexpr std::uint32_t kQueueDevice = 0x30;
constexpr std::uint32_t kSize = 0x38;  // through queue_device; later fields are optional
}  // namespace common

const char* cap_name(CapType t) {
    switch (t) {
    case CapType::common: return "common configuration";
    case CapType::notify: return "notifications";
    case CapType::isr: return "ISR status";
    case CapType::device: return "device configuration";
    case CapType::pci_cfg: return "PCI configuration access";
    }
    return "?";
}

}  // namespace

std::string feature_names(std::uint64_t features) {
    static constexpr struct {
        unsigned bit;
        const char* name;
    } kNames[] = {
        {kFRingIndirectDesc, "RING_INDIRECT_DESC"}, {kFRingEventIdx, "RING_EVENT_IDX"},
        {kFVersion1, "VERSION_1"}, {kFAccessPlatform, "ACCESS_PLATFORM"},
        {kFRingPacked, "RING_PACKED"}, {kFInOrder, "IN_ORDER"},
        {kFOrderPlatform, "ORDER_PLATFORM"}, {kFSrIov, "SR_IOV"},
        {kFNotificationData, "NOTIFICATION_DATA"}, {kFRingReset, "RING_RESET"},
    };
    std::string out;
    for (unsigned bit = 0; bit < 64; ++bit) {
        if (!(features & feature(bit)))
            continue;
        if (!out.empty())
            out += '|';
        const char* name = nullptr;
        for (const auto& n : kNames)
            if (n.bit == bit)
                name = n.name;
        out += name ? std::string(name) : "bit " + std::to_string(bit);
    }
    return out.empty() ? "none" : out;
}

Result<PciTransport> PciTransport::open(pci::PciDevice& dev) {
    const std::string who = "virtio " + dev.address().str();
    auto caps = dev.capabilities();
    if (!caps)
        return fail(std::move(caps.error().context(who)));

    PciTransport t;
    t.addr_ = dev.address();
    auto cfg = [&](std::uint32_t off, unsigned width) { return dev.config_read(off, width); };
    for (const auto& c : *caps) {
        if (c.id != kCapVendor)
            continue;
        auto len = cfg(c.offset + kCapLen, 1);
        auto type = cfg(c.offset + kCapType, 1);
        auto bar = cfg(c.offset + kCapBar, 1);
        auto off = cfg(c.offset + kCapOffset, 4);
        auto length = cfg(c.offset + kCapLength, 4);
        for (auto* r : {&len, &type, &bar, &off, &length})
            if (!*r)
                return fail(std::move(r->error().context(who + " capability at " + hex(c.offset))));
        Window* w = nullptr;
        switch (static_cast<CapType>(*type)) {
        case CapType::common: w = &t.common_; break;
        case CapType::notify: w = &t.notify_; break;
        case CapType::isr: w = &t.isr_; break;
        case CapType::device: w = &t.device_; break;
        default: continue;  // PCI access, shared memory, vendor: not used
        }
        // The specification lets a device offer one kind several times,
        // the preferred first: keep the first.
        if (w->length != 0)
            continue;
        if (*len < kCapMinLen || *bar > 5)
            return fail(Error(EPROTO, "capability at " + hex(c.offset) + " (" +
                                          cap_name(static_cast<CapType>(*type)) + ") has length " +
                                          std::to_string(*len) + " and BAR " + std::to_string(*bar))
                            .context(who));
        if (static_cast<CapType>(*type) == CapType::notify) {
            if (*len < kNotifyCapMinLen)
                return fail(Error(EPROTO, "notify capability at " + hex(c.offset) +
                                              " is too short (" + std::to_string(*len) + " bytes)")
                                .context(who));
            auto mult = cfg(c.offset + kCapNotifyMultiplier, 4);
            if (!mult)
                return fail(std::move(mult.error().context(who)));
            t.notify_multiplier_ = *mult;
        }
        *w = Window{static_cast<unsigned>(*bar), *off, *length};
    }
    for (auto [w, kind] : {std::pair{&t.common_, CapType::common},
                           std::pair{&t.notify_, CapType::notify},
                           std::pair{&t.isr_, CapType::isr}})
        if (w->length == 0)
            return fail(Error(ENODEV, std::string("no ") + cap_name(kind) + " capability: not a "
                                          "modern (virtio 1.x) PCI device")
                            .context(who)
                            .hint("a transitional device in legacy mode has none; QEMU's "
                                  "virtio-net-pci offers them unless disable-modern=on "
                                  "(disable-legacy=on makes it modern-only)"));
    if (t.common_.length < common::kSize)
        return fail(Error(EPROTO, "common configuration window is " +
                                      std::to_string(t.common_.length) + " bytes, expected " +
                                      std::to_string(common::kSize) + " at least")
                        .context(who));

    t.bars_.resize(6);
    for (const Window* w : {&t.common_, &t.notify_, &t.isr_, &t.device_}) {
        if (w->length == 0)
            continue;
        auto& slot = t.bars_[w->bar];
        if (!slot) {
            auto b = dev.map_bar(w->bar);
            if (!b)
                return fail(std::move(b.error().context(who)));
            slot.emplace(std::move(*b));
        }
        if (std::uint64_t{w->offset} + w->length > slot->size())
            return fail(Error(ENODEV, "window " + hex(w->offset) + "+" + hex(w->length) +
                                          " lies outside BAR" + std::to_string(w->bar) + " (" +
                                          hex(slot->size()) + " bytes)")
                            .context(who));
    }
    // The notify window is written by pointer on the data path: it must be
    // in a mapped part of its BAR.
    if (!t.bars_[t.notify_.bar]->mapped(t.notify_.offset, t.notify_.length))
        return fail(Error(ENODEV, "the notify window (BAR" + std::to_string(t.notify_.bar) + " " +
                                      hex(t.notify_.offset) + ") cannot be mmap()ed")
                        .context(who));
    if (auto r = dev.enable_memory_and_bus_master(); !r)
        return fail(std::move(r.error().context(who)));
    return t;
}

const Window& PciTransport::window(CapType t) const {
    switch (t) {
    case CapType::common: return common_;
    case CapType::notify: return notify_;
    case CapType::isr: return isr_;
    default: return device_;
    }
}

const pci::Bar& PciTransport::bar_of(CapType t) const { return *bars_[window(t).bar]; }

std::string PciTransport::who() const { return "virtio " + addr_.str(); }

template <class T>
T PciTransport::common_read(std::uint32_t off) const {
    return bars_[common_.bar]->read<T>(common_.offset + off);
}

template <class T>
void PciTransport::common_write(std::uint32_t off, T v) const {
    // Bar::write is not const (it may map a register on the slow path);
    // the transport owns its Bars.
    const_cast<pci::Bar&>(*bars_[common_.bar]).write<T>(common_.offset + off, v);
}

std::uint8_t PciTransport::status() const { return common_read<std::uint8_t>(common::kDeviceStatus); }

void PciTransport::add_status(std::uint8_t bits) {
    common_write<std::uint8_t>(common::kDeviceStatus, static_cast<std::uint8_t>(status() | bits));
}

Result<void> PciTransport::reset(std::chrono::milliseconds timeout) {
    common_write<std::uint8_t>(common::kDeviceStatus, 0);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        const std::uint8_t s = status();
        if (s == 0)
            break;
        if (std::chrono::steady_clock::now() >= deadline)
            return fail(Error(ETIMEDOUT, "reset: device status still reads " + hex(s) + " after " +
                                             std::to_string(timeout.count()) + " ms")
                            .context(who()));
        std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    negotiated_ = 0;
    notify_addrs_.clear();
    return {};
}

std::uint64_t PciTransport::device_features() const {
    common_write<std::uint32_t>(common::kDeviceFeatureSelect, 0);
    const std::uint64_t lo = common_read<std::uint32_t>(common::kDeviceFeature);
    common_write<std::uint32_t>(common::kDeviceFeatureSelect, 1);
    const std::uint64_t hi = common_read<std::uint32_t>(common::kDeviceFeature);
    return lo | hi << 32;
}

Result<std::uint64_t> PciTransport::negotiate(std::uint64_t wanted, std::uint64_t required) {
    if (auto r = reset(); !r)
        return fail(std::move(r.error()));
    add_status(status::kAcknowledge);
    add_status(status::kDriver);
    const std::uint64_t offered = device_features();
    if (const std::uint64_t missing = required & ~offered; missing) {
        add_status(status::kFailed);
        return fail(Error(ENOTSUP, "the device does not offer " + feature_names(missing) +
                                       " (it offers " + feature_names(offered) + ")")
                        .context(who()));
    }
    const std::uint64_t chosen = (wanted | required) & offered;
    common_write<std::uint32_t>(common::kDriverFeatureSelect, 0);
    common_write<std::uint32_t>(common::kDriverFeature, static_cast<std::uint32_t>(chosen));
    common_write<std::uint32_t>(common::kDriverFeatureSelect, 1);
    common_write<std::uint32_t>(common::kDriverFeature, static_cast<std::uint32_t>(chosen >> 32));
    add_status(status::kFeaturesOk);
    if (!(status() & status::kFeaturesOk)) {
        add_status(status::kFailed);
        return fail(Error(ENOTSUP, "the device refused the features " + feature_names(chosen) +
                                       " (FEATURES_OK did not stick)")
                        .context(who()));
    }
    negotiated_ = chosen;
    return chosen;
}

std::uint16_t PciTransport::num_queues() const {
    return common_read<std::uint16_t>(common::kNumQueues);
}

std::uint16_t PciTransport::queue_max_size(std::uint16_t q) const {
    common_write<std::uint16_t>(common::kQueueSelect, q);
    return common_read<std::uint16_t>(common::kQueueSize);
}

Result<void> PciTransport::setup_queue(std::uint16_t q, std::uint16_t size, const QueueAddrs& a,
                                       std::uint16_t vector) {
    const std::string what = "queue " + std::to_string(q);
    if (q >= num_queues())
        return fail(Error(EINVAL, what + ": the device has " + std::to_string(num_queues()) +
                                      " queues")
                        .context(who()));
    const std::uint16_t max = queue_max_size(q);  // also selects q
    if (size == 0 || (size & (size - 1)) != 0 || size > max)
        return fail(Error(EINVAL, what + ": size " + std::to_string(size) +
                                      " is not a power of two up to " + std::to_string(max))
                        .context(who()));
    if (a.desc % 16 != 0 || a.driver % 2 != 0 || a.device % 4 != 0)
        return fail(Error(EINVAL, what + ": rings at " + hex(a.desc) + ", " + hex(a.driver) + ", " +
                                      hex(a.device) + " are not 16-, 2- and 4-byte aligned")
                        .context(who()));
    common_write<std::uint16_t>(common::kQueueSize, size);
    // 64-bit fields as two 32-bit halves (section 4.1.3.1 allows it, and
    // QEMU's common window takes accesses of 4 bytes at most).
    for (auto [off, v] : {std::pair{common::kQueueDesc, a.desc},
                          std::pair{common::kQueueDriver, a.driver},
                          std::pair{common::kQueueDevice, a.device}}) {
        common_write<std::uint32_t>(off, static_cast<std::uint32_t>(v));
        common_write<std::uint32_t>(off + 4, static_cast<std::uint32_t>(v >> 32));
    }
    common_write<std::uint16_t>(common::kQueueMsixVector, vector);
    if (common_read<std::uint16_t>(common::kQueueMsixVector) != vector)
        return fail(Error(EIO, what + ": the device refused MSI-X vector " +
                                   std::to_string(vector))
                        .context(who())
                        .hint("enable MSI-X with at least that many vectors before setting up "
                              "the queue"));
    const std::uint16_t notify_off = common_read<std::uint16_t>(common::kQueueNotifyOff);
    const std::uint64_t at = std::uint64_t{notify_off} * notify_multiplier_;
    if (at + 2 > notify_.length)
        return fail(Error(EPROTO, what + ": notify offset " + hex(at) +
                                      " lies outside the notify window (" +
                                      std::to_string(notify_.length) + " bytes)")
                        .context(who()));
    common_write<std::uint16_t>(common::kQueueEnable, 1);
    if (notify_addrs_.size() <= q)
        notify_addrs_.resize(q + 1u, nullptr);
    notify_addrs_[q] = reinterpret_cast<volatile std::uint16_t*>(
        bars_[notify_.bar]->pointer(notify_.offset + at, 2));
    return {};
}

bool PciTransport::queue_enabled(std::uint16_t q) const {
    common_write<std::uint16_t>(common::kQueueSelect, q);
    return common_read<std::uint16_t>(common::kQueueEnable) == 1;
}

Result<void> PciTransport::set_config_vector(std::uint16_t vector) {
    common_write<std::uint16_t>(common::kConfigMsixVector, vector);
    if (common_read<std::uint16_t>(common::kConfigMsixVector) != vector)
        return fail(Error(EIO, "the device refused MSI-X vector " + std::to_string(vector) +
                                   " for configuration changes")
                        .context(who()));
    return {};
}

std::optional<std::uint64_t> PciTransport::notify_offset(std::uint16_t q) const {
    if (q >= notify_addrs_.size() || notify_addrs_[q] == nullptr)
        return std::nullopt;
    const auto* base = bars_[notify_.bar]->pointer(notify_.offset, notify_.length);
    return notify_.offset + static_cast<std::uint64_t>(
        reinterpret_cast<const volatile std::uint8_t*>(notify_addrs_[q]) - base);
}

void PciTransport::notify(std::uint16_t q) const {
    std::atomic_thread_fence(std::memory_order_release);
    *notify_addrs_[q] = q;
}

std::uint8_t PciTransport::isr() const { return bars_[isr_.bar]->read<std::uint8_t>(isr_.offset); }

Result<void> PciTransport::read_device_config(std::uint32_t offset,
                                              std::span<std::uint8_t> out) const {
    if (device_.length == 0)
        return fail(Error(ENODEV, "the device has no device configuration capability")
                        .context(who()));
    if (std::uint64_t{offset} + out.size() > device_.length)
        return fail(Error(ERANGE, "device configuration " + hex(offset) + "+" +
                                      std::to_string(out.size()) + " lies outside its " +
                                      std::to_string(device_.length) + " bytes")
                        .context(who()));
    const auto& bar = *bars_[device_.bar];
    for (int attempt = 0; attempt < 100; ++attempt) {
        const auto gen = common_read<std::uint8_t>(common::kConfigGeneration);
        for (std::size_t i = 0; i < out.size(); ++i)
            out[i] = bar.read<std::uint8_t>(device_.offset + offset + i);
        if (common_read<std::uint8_t>(common::kConfigGeneration) == gen)
            return {};
    }
    return fail(Error(EAGAIN, "device configuration kept changing while read (config_generation)")
                    .context(who()));
}

Result<void> PciTransport::write_device_config(std::uint32_t offset,
                                               std::span<const std::uint8_t> in) {
    if (device_.length == 0)
        return fail(Error(ENODEV, "the device has no device configuration capability")
                        .context(who()));
    if (std::uint64_t{offset} + in.size() > device_.length)
        return fail(Error(ERANGE, "device configuration " + hex(offset) + "+" +
                                      std::to_string(in.size()) + " lies outside its " +
                                      std::to_string(device_.length) + " bytes")
                        .context(who()));
    auto& bar = *bars_[device_.bar];
    for (std::size_t i = 0; i < in.size(); ++i)
        bar.write<std::uint8_t>(device_.offset + offset + i, in[i]);
    return {};
}

}  // namespace vfiokit::virtio

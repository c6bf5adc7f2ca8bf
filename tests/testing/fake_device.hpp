// A device served from memory, through the device operations interface
// (device_ops.hpp), for host unit tests of the layers above the backends:
// DeviceHandle, and the PCI bus's PciDevice, Bar and IrqSet. Header-only;
// tests only.
//
// Regions are byte arrays (region_bytes); map_region hands out anonymous
// memory; every call is recorded in a log the test keeps (the device itself
// is destroyed by its DeviceHandle's release), so a test can check that
// nothing reached the device after the release.
#pragma once

#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "vfiokit/eal/vfio/device_ops.hpp"

namespace vfiokit::testing {

struct FakeDeviceLog {
    // Every call that reached the device, by name ("set_irqs", ...), and
    // "destroyed" when the device was. Calls may come from several threads
    // (a handle lets them in together): read the log once they are done.
    std::vector<std::string> calls;
    std::vector<vfio::IrqRequest> irq_requests;  // without the eventfds span
    std::mutex mu;
    void note(std::string what) {
        std::lock_guard lock(mu);
        calls.push_back(std::move(what));
    }
};

class FakeDevice : public vfio::DeviceOps {
public:
    struct Region {
        std::vector<std::uint8_t> bytes;
        bool mappable = false;
    };
    explicit FakeDevice(std::shared_ptr<FakeDeviceLog> log) : log_(std::move(log)) {}
    ~FakeDevice() override { log_->note("destroyed"); }
    FakeDevice(const FakeDevice&) = delete;
    FakeDevice& operator=(const FakeDevice&) = delete;

    std::map<std::uint32_t, Region> regions;
    std::uint32_t irq_count = 1;

    Result<vfio::DeviceInfo> info() override {
        log_->note("info");
        return vfio::DeviceInfo{0x3, 9, 5, true, true};
    }
    Result<vfio::RegionInfo> region_info(std::uint32_t index) override {
        log_->note("region_info");
        vfio::RegionInfo r;
        r.index = index;
        if (auto it = regions.find(index); it != regions.end()) {
            r.size = it->second.bytes.size();
            r.readable = r.writable = true;
            r.mappable = it->second.mappable;
        }
        return r;
    }
    Result<void> read_region(std::uint32_t index, std::uint64_t off, void* buf,
                             std::size_t len) override {
        log_->note("read_region");
        auto* r = find(index, off, len);
        if (r == nullptr)
            return fail(EINVAL, "fake read_region");
        std::memcpy(buf, r->bytes.data() + off, len);
        return {};
    }
    Result<void> write_region(std::uint32_t index, std::uint64_t off, const void* buf,
                              std::size_t len) override {
        log_->note("write_region");
        auto* r = find(index, off, len);
        if (r == nullptr)
            return fail(EINVAL, "fake write_region");
        std::memcpy(r->bytes.data() + off, buf, len);
        return {};
    }
    // Anonymous memory standing in for the BAR (not the region's bytes).
    Result<vfio::Mapping> map_region(std::uint32_t, std::uint64_t, std::uint64_t len, int prot,
                                     void* at) override {
        log_->note("map_region");
        return vfio::map_memory(at, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0, "fake BAR");
    }
    Result<vfio::IrqInfo> irq_info(std::uint32_t index) override {
        log_->note("irq_info");
        vfio::IrqInfo i;
        i.index = index;
        i.count = irq_count;
        i.eventfd = true;
        return i;
    }
    Result<void> set_irqs(const vfio::IrqRequest& r) override {
        log_->note("set_irqs");
        vfio::IrqRequest kept = r;
        kept.eventfds = {};
        std::lock_guard lock(log_->mu);
        log_->irq_requests.push_back(kept);
        return {};
    }
    Result<void> reset() override {
        log_->note("reset");
        return {};
    }
    Result<void> feature(std::uint32_t, vfio::FeatureOp, std::span<std::uint8_t>) override {
        log_->note("feature");
        return fail(vfio::not_supported("device feature", "the fake device"));
    }

private:
    std::shared_ptr<FakeDeviceLog> log_;

    Region* find(std::uint32_t index, std::uint64_t off, std::size_t len) {
        auto it = regions.find(index);
        if (it == regions.end() || off > it->second.bytes.size() ||
            len > it->second.bytes.size() - off)
            return nullptr;
        return &it->second;
    }
};

}  // namespace vfiokit::testing

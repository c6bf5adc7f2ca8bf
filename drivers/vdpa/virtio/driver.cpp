// The vdpa_virtio driver: probe checks and the instance.
#include <cerrno>
#include <cstdio>

#include "engine.hpp"
#include "pci_hw.hpp"
#include "vdpa_virtio_pmdinfo.hpp"
#include "vfiokit/eal/format.hpp"
#include "vfiokit/vdpa/virtio.hpp"

namespace vfiokit::vdpa {

namespace {

constexpr unsigned kNetMac = 5;  // VIRTIO_NET_F_MAC: config bytes 0-5

class Driver final : public pci::DriverFor<VirtioVdpa> {
public:
    Driver() : DriverFor(pmdinfo::vdpa_virtio) {}
    Result<std::unique_ptr<VirtioVdpa>> probe(pci::PciDevice& dev, const pci::DriverArgs&) override {
        return VirtioVdpa::probe(dev);
    }
};

const pci::DriverRegistration kRegistration(vdpa_virtio_driver());

}  // namespace

pci::DriverFor<VirtioVdpa>& vdpa_virtio_driver() {
    static Driver d;
    return d;
}

Result<std::unique_ptr<VirtioVdpa>> VirtioVdpa::probe(pci::PciDevice& dev) {
    const std::string who = "vdpa_virtio " + dev.address().str();
    vfio::Container* c = dev.container();
    if (c == nullptr)
        return fail(Error(EINVAL, "the device has no container to map the front end's memory in")
                        .context(who));
    if (!c->translates())
        return fail(Error(EINVAL, "vDPA needs translation: no-IOMMU mode cannot map the front "
                                  "end's guest-physical addresses")
                        .context(who)
                        .hint("the device must reach another process's memory at that process's "
                              "addresses, which only an IOMMU can arrange: run with an IOMMU "
                              "(intel_iommu=on) in cdev, group or compat mode"));
    auto t = virtio::PciTransport::open(dev);
    if (!t)
        return fail(std::move(t.error()).context(who));
    const std::uint64_t f = t->device_features();
    const std::uint64_t need = virtio::feature(virtio::kFVersion1) |
                               virtio::feature(virtio::kFAccessPlatform);
    if ((f & need) != need)
        return fail(Error(ENOTSUP, "the device does not offer " +
                                       virtio::feature_names(need & ~f) + " (it offers " +
                                       virtio::feature_names(f) + ")")
                        .context(who)
                        .hint("without ACCESS_PLATFORM the device bypasses the IOMMU and could "
                              "not reach the front end's memory: create it with "
                              "iommu_platform=on (QEMU: virtio-net-pci,disable-legacy=on,"
                              "iommu_platform=on)"));
    constexpr unsigned kVrings = 2;  // one queue pair: see doc/vdpa.md
    if (t->num_queues() < kVrings || t->queue_max_size(0) == 0 || t->queue_max_size(1) == 0)
        return fail(Error(ENODEV, "the device has " + std::to_string(t->num_queues()) +
                                      " queues; a queue pair needs 2")
                        .context(who));
    auto msix = dev.irq_info(pci::IrqType::msix);
    if (!msix)
        return fail(std::move(msix.error()).context(who));
    if (msix->count < kVrings || !msix->eventfd)
        return fail(Error(ENODEV, "the device has " + std::to_string(msix->count) +
                                      " MSI-X vectors; its 2 queues need one each")
                        .context(who));
    std::string mac = "(no MAC)";
    if (f & virtio::feature(kNetMac)) {
        std::uint8_t m[6] = {};
        if (t->read_device_config(0, m)) {
            char b[18];
            std::snprintf(b, sizeof b, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3],
                          m[4], m[5]);
            mac = b;
        }
    }
    if (auto r = t->reset(); !r)
        return fail(std::move(r.error()).context(who));
    auto ranges = c->iova_ranges();
    if (!ranges)
        return fail(std::move(ranges.error()).context(who));
    const std::uint16_t qsize = t->queue_max_size(0);

    std::unique_ptr<VirtioVdpa> v(new VirtioVdpa());
    v->addr_ = dev.address();
    v->describe_ = dev.address().str() + ": virtio-net " + mac + ", " + std::to_string(kVrings) +
                   " queues of " + std::to_string(qsize) + ", " + c->describe() + ", IOVA " +
                   std::to_string(iova_bits(*ranges)) + " bits";
    v->hw_ = std::make_unique<PciHw>(std::move(*t), dev.handle(), msix->count);
    v->dma_ = std::make_unique<ContainerDma>(*c);
    v->engine_ = std::make_unique<Engine>(*v->hw_, *v->dma_, dev.address().str(), kVrings);
    return v;
}

VirtioVdpa::~VirtioVdpa() = default;

vhost_user::Device& VirtioVdpa::device() { return *engine_; }
vhost_user::Config VirtioVdpa::config() const { return engine_->config(); }
EngineStats VirtioVdpa::stats() const { return engine_->stats(); }

}  // namespace vfiokit::vdpa

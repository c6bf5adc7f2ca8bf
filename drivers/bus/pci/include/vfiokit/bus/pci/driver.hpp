/// \file
/// PCI drivers: what a driver declares, the arguments a device gives it, the
/// typed driver base, and the registry the EAL probes from.
///
/// A driver's declaration (name, PCI ids, DMA mask, parameters) is written
/// once, in a JSON file next to the driver (drivers/testdev/edu/edu.pmd.json).
/// At build time buildtools/pmdinfogen.py turns it into a DriverInfo object
/// and, in the same object file, a "PMD_INFO_STRING= {json}" string in
/// .rodata in DPDK's format, so DPDK's dpdk-pmdinfo.py lists the drivers a
/// binary contains. The driver passes that DriverInfo to its base class:
///
/// \code
///   class MyDriver final : public pci::DriverFor<MyDevice> {
///   public:
///       MyDriver() : DriverFor(pmdinfo::my_driver) {}   // generated
///       Result<std::unique_ptr<MyDevice>> probe(pci::PciDevice& dev,
///                                               const pci::DriverArgs& args) override;
///   };
///   MyDriver& my_driver() { static MyDriver d; return d; }
///   const pci::DriverRegistration reg(my_driver());  // linking it in registers it
/// \endcode
///
/// and finds its instances without a cast: my_driver().find(addr).
///
/// Thread-safety: registration runs during static initialization; the
/// registry is read-only afterwards. A driver's instance index is changed by
/// probe and remove, which the bus runs on one thread (the control path).
#pragma once

#include <cerrno>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vfiokit/bus/pci/device.hpp"
#include "vfiokit/bus/pci/scan.hpp"
#include "vfiokit/eal/error.hpp"
#include "vfiokit/eal/options.hpp"
#include "vfiokit/eal/pci_address.hpp"

namespace vfiokit::pci {

class Driver;

inline constexpr std::uint16_t kAnyId = 0xffff;  ///< matches any value (DPDK's RTE_PCI_ANY_ID)

/// DPDK's rte_pci_id: vendor, device, subsystem vendor and device; kAnyId
/// matches anything.
struct IdMatch {
    std::uint16_t vendor = kAnyId;
    std::uint16_t device = kAnyId;
    std::uint16_t subsystem_vendor = kAnyId;
    std::uint16_t subsystem_device = kAnyId;
    [[nodiscard]] constexpr bool matches(const DeviceIds& ids) const {
        auto eq = [](std::uint16_t want, std::uint16_t have) { return want == kAnyId || want == have; };
        return eq(vendor, ids.vendor) && eq(device, ids.device) &&
               eq(subsystem_vendor, ids.subsystem_vendor) && eq(subsystem_device, ids.subsystem_device);
    }
};

/// A parameter a driver accepts as -a BDF,name=value.
struct Param {
    std::string_view name;
    std::string_view arg;   ///< what the value is: "<mask>"
    std::string_view help;
};

/// What kind of driver, for the bus: how it picks a driver and where it
/// assigns the device.
///   net:  the default. Matched on its PCI ids; the device goes to the
///         default container, beside EAL memory.
///   vdpa: a vDPA driver (DPDK's ifcvf, sfc): the device DMAs to another
///         process's memory (a vhost-user front end's), at that process's
///         addresses. Matched only for a device given -a BDF,vdpa=1 (DPDK's
///         devarg for ifcvf), so a program linking a PMD and a vDPA driver
///         for the same ids gives the device to the PMD unless asked; and
///         assigned to a container of its own, created for it by the bus
///         and destroyed when it is removed, so the front end's addresses
///         never meet EAL memory's IOVAs or another device's.
enum class DriverClass { net, vdpa };

/// A driver's declaration. Generated from its .pmd.json (static storage,
/// constant-initialized, so usable from other static initializers).
struct DriverInfo {
    std::string_view name;
    std::span<const IdMatch> ids;
    std::uint64_t dma_mask;          ///< the widest DMA address the device can emit
    std::span<const Param> params;
    std::string_view pmd_info;       ///< the embedded "PMD_INFO_STRING= {...}"
    DriverClass cls = DriverClass::net;
};

/// The -a arguments of one device, checked against a driver's parameters.
class DriverArgs {
public:
    DriverArgs() = default;
    /// EINVAL naming the driver, the device, the unknown keys and the keys
    /// the driver accepts (with their help) when a key is not a parameter.
    [[nodiscard]] static Result<DriverArgs> parse(const DriverInfo& driver, PciAddress addr,
                                                  std::span<const eal::DeviceArg> args);

    [[nodiscard]] std::optional<std::string_view> get(std::string_view key) const;
    /// The value as a number (decimal or 0x hex); nullopt when not given;
    /// EINVAL naming driver, device and key when it is not a number.
    [[nodiscard]] Result<std::optional<std::uint64_t>> get_uint(std::string_view key) const;
    [[nodiscard]] bool empty() const { return args_.empty(); }

private:
    std::string driver_;
    PciAddress addr_;
    std::vector<eal::DeviceArg> args_;
};

/// Type-erased owner of what a driver keeps per device; destroying it is
/// "remove". Drivers derive from `DriverFor<Instance>`, not from this.
class DriverInstance {
public:
    virtual ~DriverInstance() = default;
};

/// A device the bus probed: its driver, VFIO device, PciDevice and the
/// driver's instance.
struct BoundDevice {
    Driver* driver = nullptr;
    vfio::Device* vfio_device = nullptr;
    /// The container the bus made for this device (DriverClass::vdpa), to be
    /// destroyed after the device's release; nullptr: the default container.
    vfio::Container* own_container = nullptr;
    std::unique_ptr<PciDevice> pci;
    std::unique_ptr<DriverInstance> instance;  ///< destroyed before the device is released
    std::uint64_t dma_mask = ~std::uint64_t{0};  ///< what the driver said this device needs
    /// The device request interrupt (vfio-pci's REQ index): the kernel
    /// signals it when it wants the device back (hot-unplug, unbind) and
    /// waits for the device fd to close. Empty when the device offers none.
    std::optional<IrqSet> request;
    /// Signals seen on `request` so far (sticky: the device stays "requested"
    /// until removed).
    std::uint64_t request_signals = 0;
};

/// What the bus sees of a driver.
class Driver {
public:
    explicit Driver(const DriverInfo& info) : info_(&info) {}
    virtual ~Driver() = default;
    Driver(const Driver&) = delete;
    Driver& operator=(const Driver&) = delete;

    [[nodiscard]] const DriverInfo& info() const { return *info_; }
    [[nodiscard]] std::string_view name() const { return info_->name; }
    [[nodiscard]] bool matches(const DeviceIds& ids) const;
    /// The DMA mask this device needs: the declared one unless the driver
    /// learns better from its arguments (edu's dma_mask=).
    [[nodiscard]] virtual Result<std::uint64_t> dma_mask(const DriverArgs& args) const;
    /// Called with the device assigned and its PciDevice ready; `dev`
    /// outlives the instance.
    [[nodiscard]] virtual Result<std::unique_ptr<DriverInstance>> probe_instance(
        PciDevice& dev, const DriverArgs& args) = 0;
    /// In a secondary process: attach to what the primary's instance set up
    /// for `dev` (the primary's device, its fds received over the channel;
    /// the device is not reset or reprogrammed). ENOTSUP by default: the
    /// driver has no secondary support, and the device is left out.
    [[nodiscard]] virtual Result<std::unique_ptr<DriverInstance>> probe_secondary_instance(
        PciDevice& dev, const DriverArgs& args);

private:
    const DriverInfo* info_;
};

/// A driver whose per-device state is an `Instance`. The bus owns the
/// instances; the driver indexes them by device so that find() and
/// instance() give them back typed.
template <class Instance>
class DriverFor : public Driver {
public:
    using Driver::Driver;

    [[nodiscard]] virtual Result<std::unique_ptr<Instance>> probe(PciDevice& dev,
                                                                 const DriverArgs& args) = 0;
    /// The secondary's probe (Driver::probe_secondary_instance); ENOTSUP
    /// unless the driver supports secondaries.
    [[nodiscard]] virtual Result<std::unique_ptr<Instance>> probe_secondary(PciDevice& dev,
                                                                           const DriverArgs&) {
        return fail(Error(ENOTSUP, "driver " + std::string(name()) + " has no secondary-process "
                                   "support")
                        .context(dev.address().str()));
    }

    /// This driver's instance for a device the bus bound; nullptr when the
    /// device belongs to another driver.
    [[nodiscard]] Instance* instance(const BoundDevice& b) const;
    /// The instance for the device at `a` (any bus of this process).
    [[nodiscard]] Instance* find(PciAddress a) const {
        for (const auto& [dev, entry] : *index_)
            if (entry.addr == a)
                return entry.typed;
        return nullptr;
    }
    [[nodiscard]] std::size_t instances() const { return index_->size(); }

private:
    struct Entry {
        PciAddress addr;
        Instance* typed;
    };
    using Index = std::map<const PciDevice*, Entry>;
    // Owns the instance and keeps the index up to date for its lifetime.
    // It shares the index rather than pointing at the driver, so a bus
    // that outlives the driver object still removes cleanly.
    class Holder final : public DriverInstance {
    public:
        Holder(std::shared_ptr<Index> index, const PciDevice* dev, PciAddress a,
               std::unique_ptr<Instance> i)
            : index_(std::move(index)), dev_(dev), instance_(std::move(i)) {
            (*index_)[dev_] = Entry{a, instance_.get()};
        }
        ~Holder() override {
            instance_.reset();  // the driver's remove, while the index still names it
            index_->erase(dev_);
        }
        Holder(const Holder&) = delete;
        Holder& operator=(const Holder&) = delete;

    private:
        std::shared_ptr<Index> index_;
        const PciDevice* dev_;
        std::unique_ptr<Instance> instance_;
    };

    Result<std::unique_ptr<DriverInstance>> probe_instance(PciDevice& dev,
                                                           const DriverArgs& args) final;
    Result<std::unique_ptr<DriverInstance>> probe_secondary_instance(
        PciDevice& dev, const DriverArgs& args) final;

    std::shared_ptr<Index> index_ = std::make_shared<Index>();
};

/// The drivers linked into this program, in registration order.
[[nodiscard]] std::span<Driver* const> registered_drivers();
/// Registers `d` (not owned; a static object of its library). A second
/// driver with the same name is a link error in spirit: the EAL's probe
/// fails naming both.
void register_driver(Driver& d);

/// `const pci::DriverRegistration reg(my_driver());` in the driver library.
struct DriverRegistration {
    explicit DriverRegistration(Driver& d) { register_driver(d); }
};

template <class Instance>
Instance* DriverFor<Instance>::instance(const BoundDevice& b) const {
    if (b.driver != this || !b.pci)
        return nullptr;
    auto it = index_->find(b.pci.get());
    return it == index_->end() ? nullptr : it->second.typed;
}

template <class Instance>
Result<std::unique_ptr<DriverInstance>> DriverFor<Instance>::probe_instance(
    PciDevice& dev, const DriverArgs& args) {
    auto i = probe(dev, args);
    if (!i)
        return fail(std::move(i.error()));
    return std::unique_ptr<DriverInstance>(
        std::make_unique<Holder>(index_, &dev, dev.address(), std::move(*i)));
}

template <class Instance>
Result<std::unique_ptr<DriverInstance>> DriverFor<Instance>::probe_secondary_instance(
    PciDevice& dev, const DriverArgs& args) {
    auto i = probe_secondary(dev, args);
    if (!i)
        return fail(std::move(i.error()));
    return std::unique_ptr<DriverInstance>(
        std::make_unique<Holder>(index_, &dev, dev.address(), std::move(*i)));
}

}  // namespace vfiokit::pci

// Host tests of the PCI bus: id matching, allow/block lists and the report
// for devices that cannot be probed, on a fake sysfs. The container the bus
// assigns to is a fake too (a /dev/null fd that answers the two ioctls of
// opening a group container); assigning for real is tested in the lab
// (tests/lab/edu/edu_test.cpp).
#include "vfiokit/bus/pci/bus.hpp"

#include <fcntl.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>

#include "fake_sysfs.hpp"
#include "vfiokit/uapi/vfio.hpp"

namespace vfiokit::pci {
namespace {

TEST(IdMatch, ExactAndWildcards) {
    const DeviceIds edu{0x1234, 0x11e8, 0, 0, 0x00ff00};
    EXPECT_TRUE((IdMatch{0x1234, 0x11e8}.matches(edu)));
    EXPECT_TRUE((IdMatch{0x1234, kAnyId}.matches(edu)));
    EXPECT_TRUE((IdMatch{}.matches(edu)));
    EXPECT_FALSE((IdMatch{0x1234, 0x11e9}.matches(edu)));
    EXPECT_FALSE((IdMatch{0x8086, kAnyId}.matches(edu)));
}

// Forwards to the kernel, except /dev/vfio/vfio: a /dev/null fd that says
// "VFIO API 0, every IOMMU model present", which is all a group container
// needs before its first device.
class FakeContainerNode final : public vfio::Syscalls {
public:
    int open(const char* path, int flags) override {
        if (std::strcmp(path, "/dev/vfio/vfio") == 0)
            return container_ = real().open("/dev/null", O_RDWR);
        return real().open(path, flags);
    }
    int close(int fd) override { return real().close(fd); }
    int ioctl(int fd, unsigned long request, void* arg) override {
        if (fd == container_ && request == uapi::kVfioGetApiVersion)
            return uapi::kVfioApiVersion;
        if (fd == container_ && request == uapi::kVfioCheckExtension)
            return 1;
        return real().ioctl(fd, request, arg);
    }
    void* mmap(void* a, std::size_t l, int p, int f, int fd, off_t o) override {
        return real().mmap(a, l, p, f, fd, o);
    }
    int munmap(void* a, std::size_t l) override { return real().munmap(a, l); }
    int eventfd(unsigned v, int f) override { return real().eventfd(v, f); }
    ssize_t pread(int fd, void* b, std::size_t l, off_t o) override { return real().pread(fd, b, l, o); }
    ssize_t pwrite(int fd, const void* b, std::size_t l, off_t o) override {
        return real().pwrite(fd, b, l, o);
    }
    ssize_t readlink(const char* p, char* b, std::size_t l) override { return real().readlink(p, b, l); }

private:
    static vfio::Syscalls& real() { return vfio::real_syscalls(); }
    int container_ = -1;
};

struct Nothing {};

class CountingDriver final : public DriverFor<Nothing> {
public:
    explicit CountingDriver(const DriverInfo& info) : DriverFor(info) {}
    [[nodiscard]] Result<std::unique_ptr<Nothing>> probe(PciDevice&, const DriverArgs&) override {
        ++probes;
        return std::make_unique<Nothing>();
    }
    int probes = 0;
};

constexpr IdMatch kEduIds[] = {{0x1234, 0x11e8}};
constexpr IdMatch kNicIds[] = {{0x8086, 0x100e}};
constexpr Param kEduParams[] = {{"dma_mask", "<mask>", "the device's DMA mask"}};
constexpr DriverInfo kEduInfo{"edu", kEduIds, 0xfffffff, kEduParams, {}};
constexpr DriverInfo kNicInfo{"e1000", kNicIds, ~0ULL, {}, {}};

class BusTest : public ::testing::Test {
protected:
    void SetUp() override {
        fs.file("/dev/vfio/vfio");
        fs.dir("/sys/bus/pci/drivers/vfio-pci");
        fs.pci_device("0000:00:03.0", "0x1234", "0x11e8", "0x00ff00", 3, "vfio-pci");
        fs.pci_device("0000:00:04.0", "0x1234", "0x11e8", "0x00ff00", 4, "");
        fs.pci_device("0000:00:05.0", "0x8086", "0x100e", "0x020000", 5, "e1000");
        fs.pci_device("0000:00:06.0", "0x8086", "0x10d3", "0x020000", 6, "e1000e");
        fs.pci_device("0000:00:07.0", "0x1234", "0x11e8", "0x00ff00", 7, "vfio-pci");
        vfio::Options o;
        o.mode = vfio::Mode::group;
        o.sysroot = fs.root().path("");
        auto v = vfio::Vfio::create(o);
        ASSERT_TRUE(v) << v.error().message();
        vfio_ = std::move(*v);
    }

    testing::FakeSysfs fs;
    FakeContainerNode node;
    vfio::ScopedSyscalls guard{node};
    CountingDriver edu{kEduInfo};
    CountingDriver nic{kNicInfo};
    std::unique_ptr<vfio::Vfio> vfio_;
};

const ProbeOutcome* outcome(const std::vector<ProbeOutcome>& r, const char* a) {
    for (const auto& o : r)
        if (o.addr == *PciAddress::parse(a))
            return &o;
    return nullptr;
}

TEST_F(BusTest, ReportsWhyEachMatchingDeviceWasNotProbed) {
    Bus bus(*vfio_, fs.root());
    bus.register_driver(edu);
    bus.register_driver(nic);
    bus.block(*PciAddress::parse("0000:00:07.0"));
    auto r = bus.probe_all();
    ASSERT_TRUE(r) << r.error().message();
    // 00:06.0 (e1000e) matches no driver: not in the report.
    ASSERT_EQ(r->size(), 4u);
    EXPECT_EQ(outcome(*r, "0000:00:06.0"), nullptr);

    const ProbeOutcome* unbound = outcome(*r, "0000:00:04.0");
    ASSERT_NE(unbound, nullptr);
    EXPECT_FALSE(unbound->probed);
    EXPECT_EQ(unbound->driver, "edu");
    EXPECT_NE(unbound->reason.find("not bound to any driver"), std::string::npos) << unbound->reason;
    EXPECT_NE(unbound->reason.find("driver_override"), std::string::npos) << unbound->reason;

    const ProbeOutcome* kernel = outcome(*r, "0000:00:05.0");
    ASSERT_NE(kernel, nullptr);
    EXPECT_EQ(kernel->driver, "e1000");
    EXPECT_NE(kernel->reason.find("kernel driver e1000"), std::string::npos) << kernel->reason;
    EXPECT_NE(kernel->reason.find("echo 0000:00:05.0 > /sys/bus/pci/drivers_probe"),
              std::string::npos)
        << kernel->reason;

    const ProbeOutcome* blocked = outcome(*r, "0000:00:07.0");
    ASSERT_NE(blocked, nullptr);
    EXPECT_NE(blocked->reason.find("blocked"), std::string::npos);

    // Bound to vfio-pci, but the fake kernel has no group node: the
    // assignment error is the reason, and the driver never saw the device.
    const ProbeOutcome* failed = outcome(*r, "0000:00:03.0");
    ASSERT_NE(failed, nullptr);
    EXPECT_FALSE(failed->probed);
    EXPECT_NE(failed->reason.find("0000:00:03.0"), std::string::npos) << failed->reason;
    std::printf("assign failure reported as: %s\n", failed->reason.c_str());

    EXPECT_EQ(edu.probes, 0);
    EXPECT_EQ(nic.probes, 0);
    EXPECT_TRUE(bus.devices().empty());
    EXPECT_EQ(vfio_->default_container().devices().size(), 0u);
}

TEST_F(BusTest, AllowListLimitsTheScan) {
    Bus bus(*vfio_, fs.root());
    bus.register_driver(edu);
    bus.register_driver(nic);
    bus.allow(*PciAddress::parse("0000:00:05.0"));
    auto r = bus.probe_all();
    ASSERT_TRUE(r) << r.error().message();
    ASSERT_EQ(r->size(), 1u);
    EXPECT_EQ((*r)[0].addr.str(), "0000:00:05.0");
}

// -a carries driver arguments: a key the driver does not declare is the
// device's reason, naming driver and accepted keys, before anything is
// opened; a -a device no driver matches is reported, not skipped.
TEST_F(BusTest, AllowedDeviceArgumentsAreCheckedBeforeAnythingIsOpened) {
    Bus bus(*vfio_, fs.root());
    bus.register_driver(edu);
    bus.register_driver(nic);
    auto a = eal::parse_allowed_device("0000:00:03.0,dma_mask=0xffffffff,speed=9");
    ASSERT_TRUE(a);
    bus.allow(*a);
    bus.allow(*PciAddress::parse("0000:00:06.0"));
    auto r = bus.probe_all();
    ASSERT_TRUE(r) << r.error().message();
    ASSERT_EQ(r->size(), 2u);
    const ProbeOutcome* bad = outcome(*r, "0000:00:03.0");
    ASSERT_NE(bad, nullptr);
    EXPECT_TRUE(bad->requested);
    EXPECT_FALSE(bad->probed);
    EXPECT_EQ(bad->err, EINVAL);
    for (const char* want : {"driver edu does not take 'speed'", "accepts: dma_mask=<mask>"})
        EXPECT_NE(bad->reason.find(want), std::string::npos) << bad->reason;
    const ProbeOutcome* none = outcome(*r, "0000:00:06.0");
    ASSERT_NE(none, nullptr);
    EXPECT_TRUE(none->driver.empty());
    EXPECT_NE(none->reason.find("no driver linked in matches 8086:10d3"), std::string::npos)
        << none->reason;
    EXPECT_EQ(edu.probes, 0);
    EXPECT_EQ(vfio_->default_container().devices().size(), 0u);
}

// A vfio-pci variant driver's device is VFIO's like vfio-pci's: the bus
// goes on to assign it (which the fake kernel refuses), instead of saying
// "bound to kernel driver".
TEST_F(BusTest, VariantDriverDevicesAreAssignedLikeVfioPci) {
    fs.pci_device("0000:00:09.0", "0x1234", "0x11e8", "0x00ff00", 9, "mlx5_vfio_pci");
    Bus bus(*vfio_, fs.root());
    bus.register_driver(edu);
    bus.allow(*PciAddress::parse("0000:00:09.0"));
    auto r = bus.probe_all();
    ASSERT_TRUE(r) << r.error().message();
    ASSERT_EQ(r->size(), 1u);
    EXPECT_EQ((*r)[0].reason.find("kernel driver"), std::string::npos) << (*r)[0].reason;
    EXPECT_NE((*r)[0].reason.find("0000:00:09.0"), std::string::npos) << (*r)[0].reason;
}

// A vDPA driver (DriverClass::vdpa) for the same ids as a PMD: without
// vdpa=1 the PMD gets the device; with it the vDPA driver does, in a
// container the bus makes for the device, which goes again when the
// assignment fails (the fake kernel refuses it); vdpa=2 is refused.
TEST_F(BusTest, VdpaArgumentPicksTheVdpaDriverAndItsOwnContainer) {
    constexpr DriverInfo kVdpaInfo{"vdpa_edu", kEduIds, ~0ULL, {}, {}, DriverClass::vdpa};
    CountingDriver vdpa{kVdpaInfo};
    for (const char* arg : {"", ",vdpa=0", ",vdpa=1", ",vdpa=2"}) {
        SCOPED_TRACE(arg);
        Bus bus(*vfio_, fs.root());
        bus.register_driver(vdpa);  // first: the class, not the order, decides
        bus.register_driver(edu);
        auto a = eal::parse_allowed_device(std::string("0000:00:03.0") + arg);
        ASSERT_TRUE(a);
        bus.allow(*a);
        auto r = bus.probe_all();
        ASSERT_TRUE(r) << r.error().message();
        ASSERT_EQ(r->size(), 1u);
        const ProbeOutcome& o = (*r)[0];
        EXPECT_FALSE(o.probed);
        if (std::string(arg) == ",vdpa=2") {
            EXPECT_EQ(o.err, EINVAL);
            EXPECT_NE(o.reason.find("give vdpa=1"), std::string::npos) << o.reason;
            continue;
        }
        EXPECT_EQ(o.driver, std::string(arg) == ",vdpa=1" ? "vdpa_edu" : "edu");
        // The assignment failed (no group node): no argument error, and
        // only the default container is left.
        EXPECT_NE(o.reason.find("0000:00:03.0"), std::string::npos) << o.reason;
        EXPECT_EQ(o.reason.find("does not take"), std::string::npos) << o.reason;
        EXPECT_EQ(vfio_->containers().size(), 1u);
    }
    // Without -a a vDPA driver matches nothing: 00:03.0 and 00:07.0 go to edu.
    Bus bus(*vfio_, fs.root());
    bus.register_driver(vdpa);
    auto r = bus.probe_all();
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->empty());
    EXPECT_EQ(vdpa.probes, 0);
}

// Bus::probe, one device after probe_all (a hot-added one): the same
// outcomes, and the errors of a device that is not there or already probed.
TEST_F(BusTest, ProbeOneDeviceAfterInit) {
    Bus bus(*vfio_, fs.root());
    bus.register_driver(edu);
    auto missing = bus.probe({*PciAddress::parse("0000:00:1f.0"), {}, {}});
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().message().find("probe 0000:00:1f.0"), std::string::npos)
        << missing.error().message();
    auto unbound = bus.probe({*PciAddress::parse("0000:00:04.0"), {}, {}});
    ASSERT_TRUE(unbound) << unbound.error().message();
    EXPECT_FALSE(unbound->probed);
    EXPECT_TRUE(unbound->requested);
    EXPECT_EQ(unbound->driver, "edu");
    EXPECT_NE(unbound->reason.find("not bound to any driver"), std::string::npos)
        << unbound->reason;
    EXPECT_EQ(edu.probes, 0);
}

// bind_vfio goes the kernel's way (driver_override, unbind, drivers_probe)
// and says which file the kernel refused, or where the device ended up.
TEST_F(BusTest, BindToVfioPciSaysWhatFailed) {
    Bus bus(*vfio_, fs.root());
    bus.register_driver(nic);
    const auto nic_addr = *PciAddress::parse("0000:00:05.0");
    // No unbind file in the fake driver directory: the write fails.
    auto r = bus.probe({nic_addr, {}, {}}, nullptr, true);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("unbind from e1000"), std::string::npos)
        << r.error().message();
    EXPECT_NE(r.error().message().find("driver_override"), std::string::npos)
        << "the hint says how to bind by hand: " << r.error().message();
    EXPECT_EQ(*fs.root().read("/sys/bus/pci/devices/0000:00:05.0/driver_override"), "vfio-pci");
    // Every write taken, but no kernel to move the device: it is still on
    // e1000 after the retries (2 s), and the error says so.
    fs.file("/sys/bus/pci/drivers/e1000/unbind", "");
    fs.file("/sys/bus/pci/drivers_probe", "");
    r = bus.probe({nic_addr, {}, {}}, nullptr, true);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("on driver e1000 after drivers_probe"), std::string::npos)
        << r.error().message();
    EXPECT_EQ(*fs.root().read("/sys/bus/pci/drivers/e1000/unbind"), "0000:00:05.0");
    EXPECT_EQ(*fs.root().read("/sys/bus/pci/drivers_probe"), "0000:00:05.0");
    EXPECT_EQ(nic.probes, 0);
}

TEST_F(BusTest, NoDriversNoReport) {
    Bus bus(*vfio_, fs.root());
    auto r = bus.probe_all();
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->empty());
    auto rm = bus.remove(*PciAddress::parse("0000:00:03.0"));
    ASSERT_FALSE(rm);
    EXPECT_EQ(rm.error().err(), ENODEV);
}

TEST_F(BusTest, NoPciBusFailsTheScan) {
    fs.remove("/sys/bus/pci/devices");
    Bus bus(*vfio_, fs.root());
    bus.register_driver(edu);
    auto r = bus.probe_all();
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("PCI bus scan"), std::string::npos);
}

}  // namespace
}  // namespace vfiokit::pci

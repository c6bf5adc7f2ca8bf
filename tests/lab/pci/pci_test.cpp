// PCI device layer on the real kernel, run in the lab guest once per mode.
//
//   VFIOKIT_VFIO_MODE=cdev VFIOKIT_LAB_SHAPE=iommu pci_lab_test
//
// Test names carry the mode ("Lab/Pci.MsixEachVectorFiresAlone/cdev"). The
// job binds edu and e1000e to vfio-pci first (devtools/lab/jobs/pci-*.sh).
// Device-triggered interrupts and DMA through edu are tested by the edu
// driver (drivers/testdev/edu); here the kernel's loopback triggers them.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <string>

#include "vfiokit/bus/pci/device.hpp"
#include "vfiokit/bus/pci/register.hpp"
#include "lab_env.hpp"
#include "vfiokit/eal/vfio/syscalls.hpp"
#include "vfiokit/eal/vfio/vfio.hpp"
#include "vfiokit/uapi/vfio.hpp"

namespace vfiokit::pci {
namespace {

using namespace std::chrono_literals;

using testing::env;
using testing::iommu_shape;
using testing::mode_label;
using testing::open_fds;

// The shape's devices (doc/lab.md).
constexpr const char* kEdu = "0000:00:03.0";
const char* e1000e() { return iommu_shape() ? "0000:00:08.0" : "0000:00:05.0"; }

unsigned long sysfs_hex(const std::string& bdf, const char* file) {
    std::ifstream f("/sys/bus/pci/devices/" + bdf + "/" + file);
    std::string s;
    f >> s;
    return std::stoul(s, nullptr, 16);
}

vfio::Options mode_options() {
    vfio::Options o;
    if (auto ok = vfio::apply_environment(o); !ok)
        ADD_FAILURE() << ok.error().message();
    return o;
}

std::string region_line(const RegionInfo& r) {
    char b[160];
    std::snprintf(b, sizeof b, "%-7s size 0x%-8llx off 0x%-11llx %c%c %s%s%s", to_string(r.index).c_str(),
                  static_cast<unsigned long long>(r.size), static_cast<unsigned long long>(r.offset),
                  r.readable ? 'r' : '-', r.writable ? 'w' : '-', r.mappable ? "mmap" : "no-mmap",
                  r.io_port ? " io-port" : "", r.msix_mappable ? " msix-mappable" : "");
    std::string s = b;
    for (const auto& a : r.sparse) {
        std::snprintf(b, sizeof b, " sparse[0x%llx+0x%llx]", static_cast<unsigned long long>(a.offset),
                      static_cast<unsigned long long>(a.size));
        s += b;
    }
    return s;
}

// edu (QEMU docs/specs/edu.rst): identification and liveness registers.
constexpr std::uint64_t kEduId = 0x00;
constexpr std::uint64_t kEduLiveness = 0x04;
constexpr std::uint32_t kEduIdValue = 0x010000ed;
// e1000e (Intel 82574 datasheet, 10.2.2): Device Status, and the I/O BAR's
// IOADDR/IODATA window onto the registers (10.2.1).
constexpr std::uint64_t kE1000Status = 0x0008;
constexpr std::uint64_t kIoAddr = 0x0, kIoData = 0x4;

// MSI-X capability (PCI 3.0, 6.8.2): message control and table offset/BIR.
struct MsixControl : Register<MsixControl, std::uint16_t, 2> {
    VFIOKIT_FIELD(10, 0, table_size);  // N - 1
};
struct MsixTable : Register<MsixTable, std::uint32_t, 4> {
    VFIOKIT_FIELD(2, 0, bir);
    VFIOKIT_FIELD(31, 3, offset_qwords);
};

struct MsixCap {
    unsigned vectors, bar;
    std::uint64_t table_offset;
};

// Walks the capability list (PCI 3.0, 6.7) to the MSI-X capability.
std::optional<MsixCap> find_msix(const PciDevice& d) {
    auto status = d.config_read(0x06, 2);
    if (!status || (*status & 0x10) == 0)  // Capabilities List bit
        return std::nullopt;
    auto ptr = d.config_read(0x34, 1);
    for (unsigned hops = 0; ptr && (*ptr & ~3u) != 0 && hops < 48; ++hops) {
        const std::uint32_t at = *ptr & ~3u;
        auto id = d.config_read(at, 1);
        if (id && *id == 0x11) {
            auto ctl = MsixControl::from_raw(static_cast<std::uint16_t>(*d.config_read(at + 2, 2)));
            auto tbl = MsixTable::from_raw(*d.config_read(at + 4, 4));
            return MsixCap{ctl.table_size() + 1u, tbl.bir(), std::uint64_t{tbl.offset_qwords()} * 8};
        }
        ptr = d.config_read(at + 1, 1);
    }
    return std::nullopt;
}

class Pci : public ::testing::TestWithParam<std::string> {
protected:
    void SetUp() override {
        auto v = vfio::Vfio::create(mode_options());
        ASSERT_TRUE(v) << v.error().message();
        vfio = std::move(*v);
    }
    // A PciDevice for `bdf`, assigned to the default container (once).
    std::unique_ptr<PciDevice> open(const char* bdf) {
        if (vfio::Device* had = vfio->find_device(*PciAddress::parse(bdf)))
            return std::make_unique<PciDevice>(*had);
        auto d = vfio->assign_device(vfio->default_container(), bdf);
        EXPECT_TRUE(d) << (d ? "" : d.error().message());
        return d ? std::make_unique<PciDevice>(**d) : nullptr;
    }
    std::unique_ptr<vfio::Vfio> vfio;
};

TEST_P(Pci, ConfigSpaceMatchesSysfs) {
    for (const char* bdf : {kEdu, e1000e()}) {
        SCOPED_TRACE(bdf);
        auto d = open(bdf);
        ASSERT_TRUE(d);
        auto ven = d->vendor_id();
        auto dev = d->device_id();
        auto cls = d->class_code();
        ASSERT_TRUE(ven && dev && cls);
        std::printf("%s: %04x:%04x class %06x\n", bdf, *ven, *dev, *cls);
        EXPECT_EQ(*ven, sysfs_hex(bdf, "vendor"));
        EXPECT_EQ(*dev, sysfs_hex(bdf, "device"));
        EXPECT_EQ(*cls, sysfs_hex(bdf, "class"));
    }
}

TEST_P(Pci, RegionInfoOfEveryBarAndConfig) {
    for (const char* bdf : {kEdu, e1000e()}) {
        SCOPED_TRACE(bdf);
        auto d = open(bdf);
        ASSERT_TRUE(d);
        auto info = d->info();
        ASSERT_TRUE(info) << info.error().message();
        std::printf("%s: flags 0x%x, %u regions, %u irqs, reset %s\n", bdf, info->flags,
                    info->num_regions, info->num_irqs, info->can_reset ? "yes" : "no");
        EXPECT_TRUE(info->pci);
        EXPECT_TRUE(info->flags & uapi::kVfioDeviceFlagsPci);
        EXPECT_GE(info->num_regions, uapi::kVfioPciNumRegions);
        for (auto r : {Region::bar0, Region::bar1, Region::bar2, Region::bar3, Region::bar4,
                       Region::bar5, Region::rom, Region::config}) {
            auto ri = d->region_info(r);
            ASSERT_TRUE(ri) << ri.error().message();
            std::printf("  %s\n", region_line(*ri).c_str());
            EXPECT_EQ(ri->index, r);
        }
        // No VGA on either device: the kernel refuses the index.
        auto vga = d->region_info(Region::vga);
        ASSERT_FALSE(vga);
        EXPECT_EQ(vga.error().err(), EINVAL);
        auto cfg = d->region_info(Region::config);
        EXPECT_TRUE(cfg->readable && cfg->writable);
        EXPECT_FALSE(cfg->mappable);
    }
    auto edu = open(kEdu);
    auto b0 = edu->region_info(Region::bar0);
    EXPECT_EQ(b0->size, 1u << 20);
    EXPECT_TRUE(b0->mappable && b0->readable && b0->writable);
    EXPECT_FALSE(b0->io_port);
    EXPECT_TRUE(b0->sparse.empty());
    EXPECT_EQ(edu->region_info(Region::bar1)->size, 0u);
    EXPECT_EQ(edu->region_info(Region::config)->size, 256u);  // conventional PCI
    auto nic = open(e1000e());
    // PCI Express, but the lab kernel has no MMCONFIG: the kernel reaches
    // only the first 256 bytes, and so does vfio (pdev->cfg_size, which is
    // also the size of sysfs's config file).
    struct stat st{};
    ASSERT_EQ(::stat(("/sys/bus/pci/devices/" + std::string(e1000e()) + "/config").c_str(), &st), 0);
    EXPECT_EQ(nic->region_info(Region::config)->size, static_cast<std::uint64_t>(st.st_size));
    // The I/O BAR is told by config space, and is never mappable.
    bool saw_io = false;
    for (unsigned n = 0; n < 6; ++n) {
        auto ri = nic->region_info(bar_region(n));
        if (ri->size && ri->io_port) {
            saw_io = true;
            EXPECT_FALSE(ri->mappable);
        }
    }
    EXPECT_TRUE(saw_io);
}

TEST_P(Pci, EduLivenessThroughTheMappingAndThroughPread) {
    auto d = open(kEdu);
    ASSERT_TRUE(d);
    ASSERT_TRUE(d->enable_memory_and_bus_master());
    auto bar = d->map_bar(0);
    ASSERT_TRUE(bar) << bar.error().message();
    ASSERT_EQ(bar->parts().size(), 1u);
    EXPECT_TRUE(bar->mapped(0, 1u << 20));
    auto region = d->region_info(Region::bar0);
    // The same BAR with nothing mapped: every access goes through pread/pwrite.
    Bar slow(0, d->handle(), region->size, false, {});
    EXPECT_FALSE(slow.mapped(kEduId));

    EXPECT_EQ(bar->read<std::uint32_t>(kEduId), kEduIdValue);
    auto id = slow.try_read<std::uint32_t>(kEduId);
    ASSERT_TRUE(id) << id.error().message();
    EXPECT_EQ(*id, kEduIdValue);
    std::uint32_t via_region = 0;
    ASSERT_TRUE(d->read_region(Region::bar0, kEduId, &via_region, 4));
    EXPECT_EQ(via_region, kEduIdValue);

    for (std::uint32_t v : {0u, 0x12345678u, 0xffffffffu, 0xa5a5a5a5u}) {
        bar->write<std::uint32_t>(kEduLiveness, v);  // through the mapping
        EXPECT_EQ(bar->read<std::uint32_t>(kEduLiveness), ~v);
        auto s = slow.try_read<std::uint32_t>(kEduLiveness);
        ASSERT_TRUE(s) << s.error().message();
        EXPECT_EQ(*s, ~v);
        ASSERT_TRUE(slow.try_write<std::uint32_t>(kEduLiveness, v ^ 0xf0f0f0f0u));  // through pwrite
        EXPECT_EQ(bar->read<std::uint32_t>(kEduLiveness), ~(v ^ 0xf0f0f0f0u));
        EXPECT_EQ(*slow.try_read<std::uint32_t>(kEduLiveness), ~(v ^ 0xf0f0f0f0u));
    }
    std::printf("edu id 0x%08x, liveness ok through mmap and pread/pwrite\n", *id);
    // Out of range: EINVAL, and the unchecked read acts like a master abort.
    auto out = bar->try_read<std::uint32_t>(1u << 20);
    ASSERT_FALSE(out);
    EXPECT_EQ(out.error().err(), EINVAL);
    EXPECT_NE(out.error().message().find(std::string(kEdu) + " BAR0 offset 0x100000"), std::string::npos)
        << out.error().message();
    EXPECT_EQ(bar->read<std::uint32_t>(1u << 20), 0xffffffffu);
}

TEST_P(Pci, E1000eBarsAndTheMsixTable) {
    auto d = open(e1000e());
    ASSERT_TRUE(d);
    ASSERT_TRUE(d->enable_memory_and_bus_master());
    auto msix = find_msix(*d);
    ASSERT_TRUE(msix) << "e1000e has an MSI-X capability";
    std::printf("MSI-X capability: %u vectors, table in BAR%u at 0x%llx\n", msix->vectors, msix->bar,
                static_cast<unsigned long long>(msix->table_offset));
    auto irq = d->irq_info(IrqType::msix);
    ASSERT_TRUE(irq);
    EXPECT_EQ(irq->count, msix->vectors);

    // Registers through the mapping and through the I/O BAR's window.
    auto bar0 = d->map_bar(0);
    ASSERT_TRUE(bar0) << bar0.error().message();
    EXPECT_TRUE(bar0->mapped(kE1000Status, 4));
    const std::uint32_t status = bar0->read<std::uint32_t>(kE1000Status);
    std::printf("STATUS 0x%08x (through the mapping)\n", status);
    EXPECT_NE(status, 0xffffffffu);
    for (unsigned n = 0; n < 6; ++n) {
        auto ri = d->region_info(bar_region(n));
        if (!ri->size || !ri->io_port)
            continue;
        auto io = d->map_bar(n);
        ASSERT_TRUE(io) << io.error().message();
        EXPECT_TRUE(io->io_port());
        EXPECT_TRUE(io->parts().empty());
        ASSERT_TRUE(io->try_write<std::uint32_t>(kIoAddr, kE1000Status));
        auto via_io = io->try_read<std::uint32_t>(kIoData);
        ASSERT_TRUE(via_io) << via_io.error().message();
        std::printf("STATUS 0x%08x (through I/O BAR%u)\n", *via_io, n);
        EXPECT_EQ(*via_io, status);
    }

    // The MSI-X table's BAR: Linux 6.12 lets it be mapped whole and says so
    // (MSIX_MAPPABLE); a kernel that keeps the table out lists sparse areas.
    auto ri = d->region_info(bar_region(msix->bar));
    ASSERT_TRUE(ri);
    std::printf("MSI-X BAR: %s\n", region_line(*ri).c_str());
    auto tbar = d->map_bar(msix->bar);
    ASSERT_TRUE(tbar) << tbar.error().message();
    const std::uint64_t ctl0 = msix->table_offset + 12;  // vector 0's Vector Control
    if (ri->msix_mappable) {
        EXPECT_TRUE(ri->sparse.empty());
        EXPECT_TRUE(tbar->mapped(msix->table_offset, 16ull * msix->vectors));
    } else {
        EXPECT_FALSE(tbar->mapped(msix->table_offset, 16ull * msix->vectors));
    }
    // pread/pwrite never reach the table: the kernel reads it as all-ones
    // and drops writes (vfio_pci_rdwr.c: the x_start/x_end hole).
    Bar slow(msix->bar, d->handle(), ri->size, false, {});
    auto hidden = slow.try_read<std::uint32_t>(ctl0);
    ASSERT_TRUE(hidden) << hidden.error().message();
    EXPECT_EQ(*hidden, 0xffffffffu);
    if (tbar->mapped(ctl0, 4)) {
        const std::uint32_t mapped = tbar->read<std::uint32_t>(ctl0);
        std::printf("vector 0 control: 0x%x through the mapping, 0x%x through pread\n", mapped, *hidden);
        EXPECT_LE(mapped, 1u);  // only the Mask bit is defined
    }
}

TEST_P(Pci, IrqInfoOfEduAndE1000e) {
    struct Want {
        const char* bdf;
        IrqType type;
        std::uint32_t count;
    };
    // edu: INTx and one MSI vector, no MSI-X, conventional PCI (its ERR
    // depends on the kernel: below).
    // e1000e: INTx, MSI, five MSI-X vectors, and ERR (PCI Express).
    auto edu = open(kEdu);
    auto nic = open(e1000e());
    ASSERT_TRUE(edu && nic);
    for (Want w : {Want{kEdu, IrqType::intx, 1}, Want{kEdu, IrqType::msi, 1}, Want{kEdu, IrqType::msix, 0},
                   Want{kEdu, IrqType::req, 1}, Want{e1000e(), IrqType::intx, 1},
                   Want{e1000e(), IrqType::msi, 1}, Want{e1000e(), IrqType::msix, 5},
                   Want{e1000e(), IrqType::err, 1}, Want{e1000e(), IrqType::req, 1}}) {
        SCOPED_TRACE(std::string(w.bdf) + " " + to_string(w.type));
        const PciDevice& d = std::string(w.bdf) == kEdu ? *edu : *nic;
        auto i = d.irq_info(w.type);
        ASSERT_TRUE(i) << i.error().message();
        std::printf("%s %-5s count %u%s%s%s\n", w.bdf, to_string(w.type).c_str(), i->count,
                    i->eventfd ? " eventfd" : "", i->maskable ? " maskable" : "",
                    i->automasked ? " automasked" : "");
        EXPECT_EQ(i->count, w.count);
        EXPECT_TRUE(i->eventfd);
        EXPECT_EQ(i->maskable, w.type == IrqType::intx);
        EXPECT_EQ(i->automasked, w.type == IrqType::intx);
    }
    // ERR on a conventional PCI device (edu), as each kernel's
    // drivers/vfio/pci/vfio_pci_core.c answers it: Linux 6.12 offers ERR
    // only where pci_is_pcie() (vfio_pci_ioctl_get_irq_info) and refuses
    // the index otherwise with EINVAL; Linux 7.3 offers it on every device,
    // one vector (vfio_pci_get_irq_count), signalled only from AER error
    // handling, which a conventional device never reaches. Kernels between
    // the two read here may answer either way, but consistently: an
    // offered ERR takes an eventfd, a refused one takes none.
    const testing::KernelVersion k = testing::kernel_version();
    auto err = edu->irq_info(IrqType::err);
    std::printf("kernel %s: %s ERR %s\n", k.str().c_str(), kEdu,
                err ? ("count " + std::to_string(err->count)).c_str()
                    : err.error().message().c_str());
    ASSERT_TRUE(k.at_least(3, 0)) << "cannot read the kernel version (uname)";
    const bool offered = k.at_least(7, 3) ? true : k.at_least(6, 13) ? bool(err) : false;
    if (offered) {
        ASSERT_TRUE(err) << "kernel " << k.str() << " offers ERR on every device: "
                         << err.error().message();
        EXPECT_EQ(err->count, 1u);
        EXPECT_TRUE(err->eventfd);
        EXPECT_FALSE(err->maskable);
        auto set = edu->enable_irqs(IrqType::err, 1);
        ASSERT_TRUE(set) << set.error().message();
        EXPECT_EQ(set->size(), 1u);
        ASSERT_TRUE(set->disable());
    } else {
        ASSERT_FALSE(err) << "kernel " << k.str()
                          << " offers ERR only on PCI Express devices, edu is not one";
        EXPECT_EQ(err.error().err(), EINVAL);
        auto set = edu->enable_irqs(IrqType::err, 1);
        ASSERT_FALSE(set);
        EXPECT_EQ(set.error().err(), EINVAL) << set.error().message();
    }
}

// Exactly vector i's eventfd has fired; the others have not.
void expect_only(const IrqSet& s, std::size_t i) {
    auto got = s.vector(i).wait(2s);
    ASSERT_TRUE(got) << "vector " << i << ": " << got.error().message();
    EXPECT_EQ(*got, 1u);
    for (std::size_t j = 0; j < s.size(); ++j) {
        auto other = s.vector(j).poll();
        ASSERT_TRUE(other);
        EXPECT_EQ(*other, 0u) << "vector " << j << " fired with " << i;
    }
}

TEST_P(Pci, MsixEachVectorFiresAlone) {
    auto d = open(e1000e());
    ASSERT_TRUE(d);
    const unsigned n = d->irq_info(IrqType::msix)->count;
    const int before = open_fds();
    {
        auto set = d->enable_irqs(IrqType::msix, n);
        ASSERT_TRUE(set) << set.error().message();
        EXPECT_EQ(open_fds(), before + static_cast<int>(n));
        ASSERT_EQ(set->size(), n);
        for (std::size_t i = 0; i < n; ++i) {
            ASSERT_TRUE(set->trigger(i));
            expect_only(*set, i);
        }
        std::printf("MSI-X: %u vectors enabled, trigger(i) fired exactly eventfd i\n", n);
        EXPECT_FALSE(set->trigger(n));
        ASSERT_TRUE(set->disable());
        EXPECT_FALSE(set->trigger(0));
        ASSERT_TRUE(set->disable());  // idempotent
    }
    EXPECT_EQ(open_fds(), before);
    // Re-enable after disable; the destructor then disables for us.
    {
        auto again = d->enable_irqs(IrqType::msix, n);
        ASSERT_TRUE(again) << again.error().message();
        ASSERT_TRUE(again->trigger(n - 1));
        expect_only(*again, n - 1);
    }
    EXPECT_EQ(open_fds(), before);
    // The kernel can take the index again: the destructor disabled it.
    auto fewer = d->enable_irqs(IrqType::msi, 1);
    ASSERT_TRUE(fewer) << fewer.error().message();
    auto too_many = d->enable_irqs(IrqType::msix, n + 1);
    ASSERT_FALSE(too_many);
    EXPECT_EQ(too_many.error().err(), EINVAL);
    std::printf("too many: %s\n", too_many.error().message().c_str());
    EXPECT_EQ(open_fds(), before + 1);
}

TEST_P(Pci, MsiOnEdu) {
    auto d = open(kEdu);
    ASSERT_TRUE(d);
    auto set = d->enable_irqs(IrqType::msi, 1);
    ASSERT_TRUE(set) << set.error().message();
    ASSERT_TRUE(set->trigger(0));
    expect_only(*set, 0);
    // MSI is edge-triggered: nothing to unmask.
    auto u = set->unmask();
    ASSERT_FALSE(u);
    EXPECT_EQ(u.error().err(), ENOTSUP);
}

TEST_P(Pci, IntxOnEduAndOneTypeAtATime) {
    auto d = open(kEdu);
    ASSERT_TRUE(d);
    auto set = d->enable_irqs(IrqType::intx);
    ASSERT_TRUE(set) << set.error().message();
    ASSERT_TRUE(set->trigger(0));
    expect_only(*set, 0);
    ASSERT_TRUE(set->unmask());
    ASSERT_TRUE(set->trigger(0));
    expect_only(*set, 0);
    // vfio-pci enables one interrupt type at a time.
    auto msi = d->enable_irqs(IrqType::msi, 1);
    ASSERT_FALSE(msi);
    EXPECT_EQ(msi.error().err(), EINVAL);
    EXPECT_NE(msi.error().message().find("another interrupt type is enabled"), std::string::npos)
        << msi.error().message();
    ASSERT_TRUE(set->disable());
    auto msi2 = d->enable_irqs(IrqType::msi, 1);
    ASSERT_TRUE(msi2) << msi2.error().message();
    // The old set was disabled: its destructor must not disable the new one.
    set = IrqSet();
    ASSERT_TRUE(msi2->trigger(0));
    expect_only(*msi2, 0);
    *msi2 = IrqSet();
    auto intx = d->enable_irqs(IrqType::intx);
    ASSERT_TRUE(intx) << intx.error().message();
    ASSERT_TRUE(intx->trigger(0));
    expect_only(*intx, 0);
    EXPECT_FALSE(d->enable_irqs(IrqType::intx, 2));
}

TEST_P(Pci, CommandRegister) {
    auto d = open(kEdu);
    ASSERT_TRUE(d);
    ASSERT_TRUE(d->enable_memory_and_bus_master());
    auto cmd = d->config_read(0x04, 2);
    ASSERT_TRUE(cmd);
    EXPECT_EQ(*cmd & 0x6, 0x6u);
    ASSERT_TRUE(d->disable_bus_master());
    cmd = d->config_read(0x04, 2);
    EXPECT_EQ(*cmd & 0x6, 0x2u);  // memory space stays on
    ASSERT_TRUE(d->enable_memory_and_bus_master());
    EXPECT_EQ(*d->config_read(0x04, 2) & 0x6, 0x6u);
}

// The kernel's reset methods for a device (sysfs reset_method, Linux
// 5.15+: "flr", "pm", "bus", ...); the file exists only for a device that
// has one (drivers/pci/pci-sysfs.c, pci_dev_reset_method_attr_is_visible).
std::string reset_methods(const std::string& bdf) {
    std::ifstream f("/sys/bus/pci/devices/" + bdf + "/reset_method");
    std::string s;
    std::getline(f, s);
    return s;
}

// Each device's VFIO reset flag agrees with the methods the kernel lists,
// and reset() does what the flag says: the e1000e (it has a method) resets
// and answers afterwards; the edu (none: no FLR or PM capability, and the
// root bus has no bridge to reset) gets ENOTSUP without reaching the
// kernel. The shape must offer both kinds, or the test fails.
TEST_P(Pci, Reset) {
    for (const char* bdf : {kEdu, e1000e()}) {
        SCOPED_TRACE(bdf);
        auto d = open(bdf);
        ASSERT_TRUE(d);
        auto info = d->info();
        ASSERT_TRUE(info) << info.error().message();
        const std::string methods = reset_methods(bdf);
        std::printf("%s: reset_method '%s', VFIO_DEVICE_FLAGS_RESET %s\n", bdf, methods.c_str(),
                    info->can_reset ? "set" : "clear");
        EXPECT_EQ(info->can_reset, !methods.empty())
            << "vfio-pci's reset flag disagrees with the kernel's reset methods";
    }
    auto edu = open(kEdu);
    ASSERT_TRUE(edu);
    ASSERT_FALSE(edu->info()->can_reset) << "the shape's edu was expected to have no reset method";
    auto nic = open(e1000e());
    ASSERT_TRUE(nic);
    ASSERT_TRUE(nic->info()->can_reset) << "the shape's e1000e was expected to have a reset method";

    // No method: refused, with the reason.
    {
        auto r = edu->reset();
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().err(), ENOTSUP) << r.error().message();
        EXPECT_NE(r.error().message().find("no reset method"), std::string::npos)
            << r.error().message();
        std::printf("%s: reset(): %s\n", kEdu, r.error().message().c_str());
    }
    // The edu answers through a mapping made before the refused reset.
    auto bar = edu->map_bar(0);
    ASSERT_TRUE(bar);
    bar->write<std::uint32_t>(kEduLiveness, 0x4321);
    EXPECT_EQ(bar->read<std::uint32_t>(kEduLiveness), ~0x4321u);

    // A method: the reset succeeds, and the device answers afterwards
    // through a BAR mapping made before it (vfio-pci zaps BAR mappings
    // around a reset and faults them back in, vfio_pci_core.c
    // vfio_pci_zap_and_down_write_memory_lock).
    auto regs = nic->map_bar(0);
    ASSERT_TRUE(regs);
    ASSERT_TRUE(nic->enable_memory_and_bus_master());
    const std::uint32_t before = regs->read<std::uint32_t>(kE1000Status);
    auto r = nic->reset();
    ASSERT_TRUE(r) << r.error().message();
    // The kernel restores config space (command register included) after
    // the function reset (pci_try_reset_function saves and restores it).
    EXPECT_EQ(*nic->config_read(0x04, 2) & 0x2, 0x2u);
    const std::uint32_t after = regs->read<std::uint32_t>(kE1000Status);
    std::printf("e1000e STATUS 0x%08x before reset, 0x%08x after\n", before, after);
    EXPECT_NE(after, 0xffffffffu);
    EXPECT_EQ(*nic->vendor_id(), 0x8086);
}

TEST_P(Pci, BadArgumentsAreRefused) {
    auto d = open(kEdu);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->config_read(0x100, 4).error().err(), EINVAL);  // past edu's 256 bytes
    EXPECT_EQ(d->config_read(0x0, 3).error().err(), EINVAL);
    EXPECT_EQ(d->config_read(0x2, 4).error().err(), EINVAL);
    EXPECT_EQ(d->config_write(0x4, 1, 0x100).error().err(), EINVAL);
    EXPECT_EQ(d->map_bar(1).error().err(), ENODEV);  // edu has BAR0 only
    EXPECT_EQ(d->map_bar(6).error().err(), EINVAL);
    std::uint32_t v;
    EXPECT_EQ(d->read_region(Region::bar0, (1u << 20) - 2, &v, 4).error().err(), EINVAL);
    EXPECT_EQ(d->read_region(Region::rom, 0, &v, 4).error().err(), ENODEV);  // no ROM in the lab
    EXPECT_EQ(d->enable_irqs(IrqType::msi, 0).error().err(), EINVAL);
}

// Fault injection on the real kernel: every call of a kind that map_bar or
// enable_irqs issues fails once, in turn; each time nothing is left behind
// (fds, mappings) and the next attempt works.
TEST_P(Pci, MapBarRollsBackAfterEachFailingCall) {
    auto nic = open(e1000e());
    auto edu = open(kEdu);
    ASSERT_TRUE(nic && edu);
    const unsigned msix_bar = find_msix(*nic)->bar;
    struct Target {
        PciDevice* dev;
        unsigned bar;
    };
    for (Target t : {Target{edu.get(), 0}, Target{nic.get(), msix_bar}}) {
        // The kernel backends learn a region's place in the device fd once
        // (the first region access); warm that up, so that every run below
        // issues the same calls as the counting run.
        ASSERT_TRUE(t.dev->map_bar(t.bar));
        for (vfio::Call kind : {vfio::Call::ioctl, vfio::Call::mmap, vfio::Call::pread}) {
            const std::string what = t.dev->address().str() + " BAR" + std::to_string(t.bar) + " " +
                                     std::string(vfio::to_string(kind));
            unsigned calls = 0;
            {
                vfio::FaultInjector counter;
                vfio::ScopedSyscalls g(counter);
                PciDevice fresh(t.dev->handle());  // nothing cached
                ASSERT_TRUE(fresh.map_bar(t.bar));
                calls = counter.count(kind);
            }
            std::printf("map_bar(%s) issues %u %s call(s)\n", what.c_str(), calls,
                        std::string(vfio::to_string(kind)).c_str());
            ASSERT_GT(calls, 0u) << what;
            for (unsigned n = 1; n <= calls; ++n) {
                const int before = open_fds();
                vfio::FaultInjector fi;
                {
                    vfio::ScopedSyscalls g(fi);
                    fi.fail_nth(kind, n, EIO);
                    PciDevice fresh(t.dev->handle());
                    auto b = fresh.map_bar(t.bar);
                    ASSERT_TRUE(fi.fired());
                    ASSERT_FALSE(b) << what << " #" << n << " failed but map_bar succeeded";
                    EXPECT_EQ(b.error().err(), EIO) << b.error().message();
                }
                EXPECT_EQ(open_fds(), before) << what << " #" << n;
                // Every mmap that succeeded was unmapped again.
                const unsigned mapped = fi.count(vfio::Call::mmap) - (kind == vfio::Call::mmap ? 1 : 0);
                EXPECT_EQ(fi.count(vfio::Call::munmap), mapped) << what << " #" << n;
                auto ok = t.dev->map_bar(t.bar);
                ASSERT_TRUE(ok) << "after failing " << what << " #" << n << ": " << ok.error().message();
            }
        }
    }
}

TEST_P(Pci, EnableIrqsRollsBackAfterEachFailingCall) {
    auto d = open(e1000e());
    ASSERT_TRUE(d);
    const unsigned n = d->irq_info(IrqType::msix)->count;
    for (vfio::Call kind : {vfio::Call::eventfd, vfio::Call::ioctl}) {
        unsigned calls = 0;
        {
            vfio::FaultInjector counter;
            vfio::ScopedSyscalls g(counter);
            auto s = d->enable_irqs(IrqType::msix, n);
            ASSERT_TRUE(s) << s.error().message();
            calls = counter.count(kind);  // before the destructor's disable
        }
        std::printf("enable_irqs(MSI-X, %u) issues %u %s call(s)\n", n, calls,
                    std::string(vfio::to_string(kind)).c_str());
        for (unsigned i = 1; i <= calls; ++i) {
            const int before = open_fds();
            {
                vfio::FaultInjector fi;
                vfio::ScopedSyscalls g(fi);
                fi.fail_nth(kind, i, EIO);
                auto s = d->enable_irqs(IrqType::msix, n);
                ASSERT_TRUE(fi.fired());
                ASSERT_FALSE(s);
                EXPECT_EQ(s.error().err(), EIO) << s.error().message();
            }
            EXPECT_EQ(open_fds(), before) << to_string(kind) << " #" << i << " leaked an fd";
            auto ok = d->enable_irqs(IrqType::msix, n);
            ASSERT_TRUE(ok) << "after failing " << to_string(kind) << " #" << i << ": "
                            << ok.error().message();
            ASSERT_TRUE(ok->trigger(i % n));
            expect_only(*ok, i % n);
        }
    }
}

// The highest fd number open in this process.
int highest_fd() {
    int top = -1;
    if (DIR* d = ::opendir("/proc/self/fd")) {
        while (dirent* e = ::readdir(d))
            if (e->d_name[0] != '.')
                top = std::max(top, std::atoi(e->d_name));
        ::closedir(d);
    }
    return top;
}

void expect_released(const Error& e, const char* what) {
    EXPECT_EQ(e.err(), ENODEV) << what << ": " << e.message();
    EXPECT_NE(e.message().find(std::string("device ") + kEdu + " was released"), std::string::npos)
        << what << ": " << e.message();
}

// The device released while a Bar and an IrqSet taken from it are alive:
// their calls fail with ENODEV naming the device, their destructors issue
// nothing, and nothing at all reaches the kernel through a device fd
// number, although every number the release freed now names another file.
// The Bar's mapping stays usable until the Bar goes; then the kernel
// closes the device for good and it can be taken again.
TEST_P(Pci, ReleaseFirstFailsCleanly) {
    auto d = open(kEdu);
    ASSERT_TRUE(d);
    ASSERT_TRUE(d->enable_memory_and_bus_master());
    auto bar = d->map_bar(0);
    ASSERT_TRUE(bar) << bar.error().message();
    auto region = d->region_info(Region::bar0);
    ASSERT_TRUE(region);
    Bar slow(0, d->handle(), region->size, false, {});  // region access only
    ASSERT_TRUE(slow.try_read<std::uint32_t>(kEduId));
    auto irqs = d->enable_irqs(IrqType::msi, 1);
    ASSERT_TRUE(irqs) << irqs.error().message();
    ASSERT_TRUE(irqs->trigger(0));
    expect_only(*irqs, 0);

    const int top = highest_fd();
    vfio::Device* vdev = vfio->find_device(*PciAddress::parse(kEdu));
    ASSERT_NE(vdev, nullptr);
    ASSERT_TRUE(vfio->release_device(*vdev));
    // Fill every free number up to the highest one in use before the
    // release: the device fd's among them (the kernel hands out the lowest
    // free number).
    std::vector<vfio::Fd> reused;
    for (;;) {
        vfio::Fd f(::open("/dev/null", O_RDWR | O_CLOEXEC));
        ASSERT_TRUE(f.valid());
        if (f.get() > top)
            break;
        reused.push_back(std::move(f));
    }
    std::printf("release first: %zu freed fd number(s) now name /dev/null\n", reused.size());
    EXPECT_GE(reused.size(), 1u);

    {
        vfio::FaultInjector seen;  // forwards everything, counts
        vfio::ScopedSyscalls g(seen);
        auto r = slow.try_read<std::uint32_t>(kEduId);
        ASSERT_FALSE(r);
        expect_released(r.error(), "Bar region read");
        std::printf("Bar after release: %s\n", r.error().message().c_str());
        auto w = slow.try_write<std::uint32_t>(kEduLiveness, 1);
        ASSERT_FALSE(w);
        expect_released(w.error(), "Bar region write");
        auto t = irqs->trigger(0);
        ASSERT_FALSE(t);
        expect_released(t.error(), "IrqSet trigger");
        std::printf("IrqSet after release: %s\n", t.error().message().c_str());
        auto off = irqs->disable();
        ASSERT_FALSE(off);
        expect_released(off.error(), "IrqSet disable");
        expect_released(d->config_read(0, 2).error(), "config read");
        expect_released(d->irq_info(IrqType::msi).error(), "IRQ info");
        expect_released(d->reset().error(), "reset");
        expect_released(d->map_bar(0).error(), "map_bar");
        // The mapped BAR is the Bar's own: still the device's registers.
        EXPECT_EQ(bar->read<std::uint32_t>(kEduId), kEduIdValue);
        *irqs = IrqSet();   // the destructor's disable is refused, not issued
        slow = Bar();
        d.reset();
        EXPECT_EQ(seen.count(vfio::Call::ioctl), 0u);
        EXPECT_EQ(seen.count(vfio::Call::pread), 0u);
        EXPECT_EQ(seen.count(vfio::Call::pwrite), 0u);
        EXPECT_EQ(seen.count(vfio::Call::mmap), 0u);
    }
    reused.clear();
    *bar = Bar();  // the last reference: the kernel closes the device now
    // Taken again: the kernel let go of it, interrupts included.
    auto again = open(kEdu);
    ASSERT_TRUE(again);
    auto msi = again->enable_irqs(IrqType::msi, 1);
    ASSERT_TRUE(msi) << msi.error().message();
    ASSERT_TRUE(msi->trigger(0));
    expect_only(*msi, 0);
}

INSTANTIATE_TEST_SUITE_P(Lab, Pci, ::testing::Values(mode_label()),
                         [](const auto& p) { return p.param; });

}  // namespace
}  // namespace vfiokit::pci

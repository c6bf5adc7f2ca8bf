// VFIO state shared with other processes, on the real kernel, once per mode:
//
//   VFIOKIT_VFIO_MODE=cdev VFIOKIT_LAB_SHAPE=iommu vfio_share_lab_test
//
// The primary (this gtest process) assigns edu, exports, and sends the
// bytes and fds, with a memfd of DMA memory, over a socketpair
// (SCM_RIGHTS) to a fresh image of this binary started with
// --role=secondary. The secondary imports, drives edu through the imported
// device fd (BAR0, MSI, DMA) and exits; the primary checks the bytes the
// device wrote and that its own device still works. The real transport is
// lib/eal/mp's; the sender/receiver here is the test's own.
//
// --role=unprivileged is what vfiokit-broker starts as uid 65534
// (devtools/lab/jobs/vfio-share-iommu.sh, once per mode the broker hands to
// an unprivileged process: cdev, group, compat): it proves it cannot open
// the nodes itself and drives edu with the fds it inherited.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "edu.hpp"
#include "lab_env.hpp"
#include "share_util.hpp"
#include "vfiokit/bus/pci/device.hpp"
#include "vfiokit/eal/pagemap.hpp"
#include "vfiokit/eal/vfio/vfio.hpp"

namespace vfiokit::vfio {
namespace {

using namespace share_lab;
using testing::mode_label;
using testing::open_fds;

Options mode_options() {
    Options o;
    if (auto ok = apply_environment(o); !ok)
        ADD_FAILURE() << ok.error().message();
    return o;
}

class Share : public ::testing::TestWithParam<std::string> {
protected:
    void SetUp() override {
        auto v = Vfio::create(mode_options());
        ASSERT_TRUE(v) << v.error().message();
        vfio = std::move(*v);
    }
    Device* assign(Container& c, const char* bdf) {
        auto d = vfio->assign_device(c, bdf);
        EXPECT_TRUE(d) << (d ? "" : d.error().message());
        return d ? *d : nullptr;
    }
    // The memfd's pages 0 (src) and 1 (dst), for the device: mapped into
    // `c` at an IOVA under edu's mask, or their physical addresses.
    void primary_dma(Container& c, SharedMem& mem, Task& t) {
        if (c.translates()) {
            auto iova = c.alloc_iova(2 * kPage, shape_dma_mask());
            ASSERT_TRUE(iova) << iova.error().message();
            ASSERT_TRUE(c.map(mem.va(), *iova, 2 * kPage));
            t.src_iova = *iova;
        } else {
            auto pa = eal::virt_to_phys(mem.p);
            ASSERT_TRUE(pa) << pa.error().message();
            t.src_iova = *pa;  // one hugetlb page: physically contiguous
        }
        t.dst_iova = t.src_iova + kPage;
    }
    // Runs the secondary on `t` with this process's state; its reply.
    Reply run_secondary(const Task& t, const SharedMem& mem) {
        auto state = vfio->export_shared();
        EXPECT_TRUE(state) << state.error().message();
        if (!state)
            return {};
        std::printf("export (%s): %zu bytes, %zu fds\n", mode_label().c_str(),
                    state->bytes.size(), state->fds.size());
        return spawn_secondary(t, *state, mem.fd);
    }
    std::unique_ptr<Vfio> vfio;
};

// The primary's own round trip through `d` after the secondary is gone:
// its release closed only its copies.
void primary_still_drives(Device& d, Container& c, SharedMem& mem) {
    pci::PciDevice pd(d);
    auto e = edu::EduDevice::open(pd, shape_dma_mask());
    ASSERT_TRUE(e) << e.error().message();
    EXPECT_EQ((*e)->liveness(0x0f0f1234u), ~0x0f0f1234u);
    Task t;
    if (c.translates()) {
        auto iova = c.alloc_iova(2 * kPage, shape_dma_mask());
        ASSERT_TRUE(iova) << iova.error().message();
        ASSERT_TRUE(c.map(mem.va() + 4 * kPage, *iova, 2 * kPage));
        t.src_iova = *iova;
    } else {
        t.src_iova = *eal::virt_to_phys(mem.p) + 4 * kPage;
    }
    fill(mem.at(4 * kPage), 77);
    std::memset(mem.at(5 * kPage), 0x5a, kPage);
    ASSERT_TRUE((*e)->dma_to_device(t.src_iova, 0, kLen));
    ASSERT_TRUE((*e)->dma_to_ram(t.src_iova + kPage, 0, kLen));
    EXPECT_TRUE(matches(mem.at(5 * kPage), 77)) << "primary's own DMA after the secondary";
    std::printf("primary %s: its own DMA through %s still works\n", mode_label().c_str(),
                d.address().str().c_str());
}

TEST_P(Share, SecondaryDmaThroughPrimaryMappings) {
    Device* d = assign(vfio->default_container(), kEdu);
    ASSERT_NE(d, nullptr);
    SharedMem mem(!iommu_shape());
    ASSERT_TRUE(mem.ok());
    Task t = make_task(mem, 0, kPrimaryMapped | kIrq);
    primary_dma(vfio->default_container(), mem, t);
    std::memset(mem.at(kPage), 0x5a, kPage);
    const int before = open_fds();
    Reply r = run_secondary(t, mem);
    ASSERT_TRUE(r.ok) << r.text;
    std::printf("secondary: %s\n", r.text);
    EXPECT_EQ(open_fds(), before) << "export or sending leaked an fd";
    // The bytes the device wrote at the secondary's command, seen here.
    EXPECT_TRUE(matches(mem.at(kPage), t.seed)) << "DMA from the secondary did not arrive";
    EXPECT_EQ(mem.at(kPage)[kLen], 0x5a) << "DMA wrote past its range";
    std::printf("primary %s: %u bytes DMAed by the secondary through the primary's mapping "
                "verified\n", mode_label().c_str(), kLen);
    primary_still_drives(*d, vfio->default_container(), mem);
}

TEST_P(Share, SecondaryMapsItsOwnMemory) {
    if (!iommu_shape())
        GTEST_SKIP() << "no-IOMMU: nothing to map";
    Device* d = assign(vfio->default_container(), kEdu);
    ASSERT_NE(d, nullptr);
    SharedMem mem(false);
    ASSERT_TRUE(mem.ok());
    Task t = make_task(mem, 0, kPrimaryMapped | kSecondaryMaps);
    primary_dma(vfio->default_container(), mem, t);
    // Allocated here, mapped there (the custom-container test lets the
    // secondary allocate from its copy of the table instead).
    auto own = vfio->default_container().alloc_iova(2 * kPage, shape_dma_mask());
    ASSERT_TRUE(own) << own.error().message();
    t.own_iova = *own;
    std::memset(mem.at(3 * kPage), 0x5a, kPage);
    Reply r = run_secondary(t, mem);
    ASSERT_TRUE(r.ok) << r.text;
    std::printf("secondary: %s\n", r.text);
    EXPECT_TRUE(matches(mem.at(3 * kPage), t.seed + 1))
        << "DMA through the secondary's own mapping did not arrive";
    // The secondary left its mapping for its Vfio's destruction to remove:
    // the kernel has that IOVA free again (EEXIST otherwise).
    ASSERT_EQ(r.own_iova, t.own_iova);
    auto again = vfio->default_container().map(mem.va() + 4 * kPage, r.own_iova, 2 * kPage);
    ASSERT_TRUE(again) << "the secondary's mapping survived it: " << again.error().message();
    ASSERT_TRUE(vfio->default_container().unmap(r.own_iova, 2 * kPage));
    std::printf("primary %s: the secondary's own mapping at 0x%llx was gone after it exited\n",
                mode_label().c_str(), static_cast<unsigned long long>(r.own_iova));
}

TEST_P(Share, CustomContainerIsSharedToo) {
    auto c = vfio->create_container();
    ASSERT_TRUE(c) << c.error().message();
    ASSERT_NE(assign(**c, kEdu), nullptr);
    if (iommu_shape()) {  // and the other edu in the default container
        ASSERT_NE(assign(vfio->default_container(), kEdu2), nullptr);
    }
    SharedMem mem(!iommu_shape());
    ASSERT_TRUE(mem.ok());
    const bool translated = (*c)->translates();
    Task t = make_task(mem, 1, kPrimaryMapped | (translated ? kSecondaryMaps : 0u));
    primary_dma(**c, mem, t);
    std::memset(mem.at(kPage), 0x5a, kPage);
    std::memset(mem.at(3 * kPage), 0x5a, kPage);
    Reply r = run_secondary(t, mem);
    ASSERT_TRUE(r.ok) << r.text;
    std::printf("secondary: %s\n", r.text);
    EXPECT_TRUE(matches(mem.at(kPage), t.seed)) << "DMA through the custom container";
    if (translated) {
        EXPECT_TRUE(matches(mem.at(3 * kPage), t.seed + 1));
    }
    std::printf("primary %s: DMA by the secondary through %s verified\n", mode_label().c_str(),
                (*c)->describe().c_str());
    primary_still_drives(*(*c)->devices().front(), **c, mem);
}

// The rules of share.hpp, with an import in this same process (dups of the
// fds): the imported side cannot assign or unmap the exporter's mappings,
// unmap_all and destruction remove only its own, and releasing an imported
// device leaves the exporter's attached.
TEST_P(Share, OwnershipRules) {
    Container& dc = vfio->default_container();
    Device* d = assign(dc, kEdu);
    ASSERT_NE(d, nullptr);
    SharedMem mem(!iommu_shape());
    ASSERT_TRUE(mem.ok());
    Task t = make_task(mem, 0, 0);
    primary_dma(dc, mem, t);
    auto state = vfio->export_shared();
    ASSERT_TRUE(state) << state.error().message();
    auto imp = Vfio::import_shared(state->bytes, dup_all(state->fds));
    ASSERT_TRUE(imp) << imp.error().message();
    Container& ic = (*imp)->default_container();
    EXPECT_TRUE(ic.imported());
    EXPECT_EQ((*imp)->mode(), vfio->mode());
    ASSERT_EQ(ic.devices().size(), 1u);
    Device& id = *ic.devices().front();
    EXPECT_EQ(id.address().str(), kEdu);
    // The imported device is reached through its own handle (a copy of
    // the exporter's fd), which answers as the same device.
    EXPECT_NE(id.handle(), d->handle());
    auto iinfo = id.ops().info();
    ASSERT_TRUE(iinfo) << iinfo.error().message();
    EXPECT_TRUE(iinfo->pci);
    auto again = (*imp)->assign_device(ic, kEdu2);
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().err(), EPERM) << again.error().message();
    std::uint64_t own_iova = 0;
    if (ic.translates()) {
        EXPECT_EQ(ic.mapping_count(), dc.mapping_count());
        EXPECT_TRUE(ic.inherited(t.src_iova));
        auto un = ic.unmap(t.src_iova, 2 * kPage);
        ASSERT_FALSE(un);
        EXPECT_EQ(un.error().err(), EPERM) << un.error().message();
        auto own = ic.alloc_iova(2 * kPage, shape_dma_mask());
        ASSERT_TRUE(own) << own.error().message();
        ASSERT_TRUE(ic.map(mem.va() + 2 * kPage, *own, 2 * kPage));
        ASSERT_TRUE(ic.unmap_all());  // only its own
        EXPECT_EQ(ic.mapping_count(), 1u);
        ASSERT_TRUE(ic.map(mem.va() + 2 * kPage, *own, 2 * kPage));  // left for destruction
        own_iova = *own;
    }
    // Releasing and destroying on the imported side close its copies only.
    ASSERT_TRUE((*imp)->release_device(id));
    imp->reset();
    pci::PciDevice pd(*d);
    auto e = edu::EduDevice::open(pd, shape_dma_mask());
    ASSERT_TRUE(e) << e.error().message();
    fill(mem.at(0), 9);
    std::memset(mem.at(kPage), 0x5a, kPage);
    ASSERT_TRUE((*e)->dma_to_device(t.src_iova, 0, kLen));
    ASSERT_TRUE((*e)->dma_to_ram(t.dst_iova, 0, kLen));
    EXPECT_TRUE(matches(mem.at(kPage), 9)) << "the exporter's device or mapping went away";
    if (own_iova != 0) {  // the imported side's mapping went with it
        auto m = dc.map(mem.va() + 2 * kPage, own_iova, 2 * kPage);
        ASSERT_TRUE(m) << "the imported side's mapping survived it: " << m.error().message();
        ASSERT_TRUE(dc.unmap(own_iova, 2 * kPage));
    }
    std::printf("ownership %s: imported side released its device and unmapped its own mapping; "
                "the exporter's DMA still works\n", mode_label().c_str());
}

// What share.hpp says about a primary that releases a device a secondary
// still uses, checked (with an import in this process): cdev detaches it
// for every holder; compat's backend empties the IOAS with its last group;
// legacy type1 keeps the group in the container (UNSET_CONTAINER is EBUSY
// while the other device fd is open), so the secondary's DMA still works.
// Once the secondary is gone the primary can assign the device again.
TEST_P(Share, PrimaryReleaseUnderASecondary) {
    Container& dc = vfio->default_container();
    if (!dc.translates())
        GTEST_SKIP() << "no-IOMMU: the device reaches physical memory whatever the containers";
    Device* d = assign(dc, kEdu);
    ASSERT_NE(d, nullptr);
    SharedMem mem(false);
    ASSERT_TRUE(mem.ok());
    Task t = make_task(mem, 0, 0);
    primary_dma(dc, mem, t);
    auto state = vfio->export_shared();
    ASSERT_TRUE(state) << state.error().message();
    auto imp = Vfio::import_shared(state->bytes, dup_all(state->fds));
    ASSERT_TRUE(imp) << imp.error().message();
    {
        pci::PciDevice pd(*(*imp)->default_container().devices().front());
        auto e = edu::EduDevice::open(pd, shape_dma_mask());
        ASSERT_TRUE(e) << e.error().message();
        ASSERT_TRUE(vfio->release_device(*d));
        fill(mem.at(0), 5);
        std::memset(mem.at(kPage), 0x5a, kPage);
        ASSERT_TRUE((*e)->dma_to_device(t.src_iova, 0, kLen));
        ASSERT_TRUE((*e)->dma_to_ram(t.dst_iova, 0, kLen));  // completes even when blocked
        const bool arrived = matches(mem.at(kPage), 5);
        std::printf("primary released its device (%s): the secondary's DMA %s\n",
                    mode_label().c_str(), arrived ? "still arrives" : "no longer arrives");
        EXPECT_EQ(arrived, vfio->mode() == Mode::group);
    }
    imp->reset();
    ASSERT_NE(assign(dc, kEdu), nullptr) << "the device did not come back to the primary";
}

// Malformed bytes and wrong fds fail with EPROTO and leave no fd open.
TEST_P(Share, BadStateAndWrongFdsAreRejected) {
    ASSERT_NE(assign(vfio->default_container(), kEdu), nullptr);
    auto state = vfio->export_shared();
    ASSERT_TRUE(state) << state.error().message();
    const int before = open_fds();
    for (std::size_t n = 0; n < state->bytes.size(); n += 7) {
        auto v = Vfio::import_shared(std::span(state->bytes.data(), n), dup_all(state->fds));
        ASSERT_FALSE(v) << n;
        EXPECT_EQ(v.error().err(), EPROTO);
    }
    // The fds in another order: each is checked for what the bytes say it is.
    ASSERT_GE(state->fds.size(), 2u);
    auto swapped = state->fds;
    std::swap(swapped.front(), swapped.back());
    auto v = Vfio::import_shared(state->bytes, dup_all(swapped));
    ASSERT_FALSE(v);
    EXPECT_EQ(v.error().err(), EPROTO) << v.error().message();
    std::printf("wrong fds (%s): %s\n", mode_label().c_str(), v.error().message().c_str());
    EXPECT_EQ(open_fds(), before);
}

// from_external_fds with nodes this (root) process opened, as a broker
// would: the receiver sets up the container itself.
TEST_P(Share, FromExternalFds) {
    vfio.reset();  // the edu's group or cdev must be free
    ExternalFds x = open_external(mode_options());
    ASSERT_GE(x.devices.size(), 1u);
    auto v = Vfio::from_external_fds(x, mode_options());
    ASSERT_TRUE(v) << v.error().message();
    std::printf("external fds (%s): %s\n", mode_label().c_str(),
                (*v)->default_container().describe().c_str());
    Device* d = (*v)->find_device(*PciAddress::parse(kEdu));
    ASSERT_NE(d, nullptr);
    SharedMem mem(!iommu_shape());
    ASSERT_TRUE(mem.ok());
    primary_still_drives(*d, (*v)->default_container(), mem);
    // Owned for real: once destroyed, the device can be assigned again.
    v->reset();
    auto again = Vfio::create(mode_options());
    ASSERT_TRUE(again);
    auto a = (*again)->assign_device((*again)->default_container(), kEdu);
    ASSERT_TRUE(a) << a.error().message();
}

// The broker's socket mode, in this run's mode: it sends the device's nodes
// (cdev: /dev/iommu and the device cdev; group style: the container node
// and the group) to a running process (this one), which binds and attaches
// them (sets the container and IOMMU model) itself.
TEST_P(Share, BrokerSendsFdsOverASocket) {
    const Mode mode = vfio->mode();
    vfio.reset();
    auto x = receive_from_broker(kEdu, mode);
    ASSERT_TRUE(x) << x.error().message();
    EXPECT_EQ(x->mode, mode);
    auto v = Vfio::from_external_fds(*x, mode_options());
    ASSERT_TRUE(v) << v.error().message();
    EXPECT_EQ((*v)->mode(), mode);
    std::printf("from the broker (%s): %s\n", mode_label().c_str(),
                (*v)->default_container().describe().c_str());
    Device* d = (*v)->find_device(*PciAddress::parse(kEdu));
    ASSERT_NE(d, nullptr);
    SharedMem mem(!iommu_shape());
    ASSERT_TRUE(mem.ok());
    primary_still_drives(*d, (*v)->default_container(), mem);
}

// Root-opened fds go only to whom the broker is told to trust, checked
// before anything is sent: a listener of another uid (its socket file its
// own, or chowned to root so that only SO_PEERCRED tells), a symlink to
// root's own listener; and, with --expect-uid, that user.
TEST_P(Share, BrokerSendsOnlyToTheExpectedReceiver) {
    const Mode mode = vfio->mode();
    vfio.reset();
    auto own_file = broker_to_listener(kEdu, mode, 65534, false, false, {});
    EXPECT_EQ(own_file.status, 1) << own_file.output;
    EXPECT_LE(own_file.fds_received, 0);
    EXPECT_NE(own_file.output.find("belongs to uid 65534"), std::string::npos) << own_file.output;
    auto root_file = broker_to_listener(kEdu, mode, 65534, false, true, {});
    EXPECT_EQ(root_file.status, 1) << root_file.output;
    EXPECT_LE(root_file.fds_received, 0);
    EXPECT_NE(root_file.output.find("running as uid 65534"), std::string::npos)
        << root_file.output;
    auto link = broker_to_listener(kEdu, mode, 0, true, false, {});
    EXPECT_EQ(link.status, 1) << link.output;
    EXPECT_LE(link.fds_received, 0);
    EXPECT_NE(link.output.find("is a symlink"), std::string::npos) << link.output;
    auto other = broker_to_listener(kEdu, mode, 65534, false, false, {"--expect-uid", "1000"});
    EXPECT_EQ(other.status, 1) << other.output;
    EXPECT_LE(other.fds_received, 0);
    auto expected = broker_to_listener(kEdu, mode, 65534, false, false, {"--expect-uid", "65534"});
    EXPECT_EQ(expected.status, 0) << expected.output;
    EXPECT_GE(expected.fds_received, 2) << "the container or iommufd and the device's node";
}

INSTANTIATE_TEST_SUITE_P(Lab, Share, ::testing::Values(mode_label()),
                         [](const auto& p) { return p.param; });

}  // namespace
}  // namespace vfiokit::vfio

int main(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a.starts_with("--role=secondary"))
            return vfiokit::vfio::share_lab::secondary_main(argc, argv);
        if (a.starts_with("--role=unprivileged"))
            return vfiokit::vfio::share_lab::unprivileged_main();
    }
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}

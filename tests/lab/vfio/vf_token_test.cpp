// VF tokens on real virtual functions, once per VFIO mode: QEMU 11.1's
// igb (82576) PF at 0000:00:04.0 on vfio-pci, with VFs that vfio-pci made
// (vfio_pci.enable_sriov=1; devtools/lab/jobs/vftoken-modern.sh makes them
// before and removes them after). The expectations are vfio-pci's rules
// (drivers/vfio/pci/vfio_pci_core.c vfio_pci_core_match_token_uuid in 7.3):
//   - a VF opens only with the token its PF's owner set: EACCES without it
//     or with another; the PF's owner may change it at any time;
//   - the PF opens only with that token while one of its VFs is open;
//   - the kernel keeps the token when the PF's owner closes the PF.
// The owner is vfiokit in this process (Device::set_vf_token, and the EAL's
// -a PF,vf_token=UUID) and in another process (this binary started again
// with --pf-owner, holding the PF while this one opens the VFs).
//
//   VFIOKIT_VFIO_MODE=cdev vf_token_lab_test
//
// Test names carry the mode ("Lab/VfToken.OwnerInAnotherProcess/cdev").
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "lab_env.hpp"
#include "vfiokit/bus/pci/device.hpp"
#include "vfiokit/bus/pci/driver.hpp"
#include "vfiokit/eal/eal.hpp"
#include "vfiokit/eal/uuid.hpp"
#include "vfiokit/eal/vfio/probe.hpp"
#include "vfiokit/eal/vfio/syscalls.hpp"
#include "vfiokit/eal/vfio/vfio.hpp"
#include "vfiokit/uapi/vfio.hpp"

namespace vfiokit::vfio {
namespace {

using testing::mode_label;
using testing::open_fds;
using vfiokit::to_string;  // Uuid

constexpr const char* kPf = "0000:00:04.0";
constexpr std::uint16_t kIntel = 0x8086;
constexpr std::uint16_t kVfId = 0x10ca;  // 82576 VF
constexpr std::uint16_t kPfId = 0x10c9;  // 82576
constexpr std::uint32_t kConfigRegion = 7;  // VFIO_PCI_CONFIG_REGION_INDEX

Options mode_options() {
    Options o;
    if (auto ok = apply_environment(o); !ok)
        ADD_FAILURE() << ok.error().message();
    return o;
}

// A token no earlier step can have set: the kernel's random UUID.
Uuid fresh_token() {
    char buf[64] = {};
    FILE* f = std::fopen("/proc/sys/kernel/random/uuid", "r");
    if (f == nullptr || std::fgets(buf, sizeof buf, f) == nullptr)
        std::abort();
    std::fclose(f);
    std::string s(buf);
    while (!s.empty() && (s.back() == '\n'))
        s.pop_back();
    auto u = parse_uuid(s);
    if (!u)
        std::abort();
    return *u;
}

std::string with_token(const std::string& bdf, const Uuid& t) {
    return bdf + " vf_token=" + to_string(t);
}

// The PF's VFs, from sysfs (the job made them).
std::vector<std::string> vfs() {
    std::vector<std::string> out;
    for (PciAddress a : probe_sriov(sysfs::Root(), *PciAddress::parse(kPf)).vfs)
        out.push_back(a.str());
    return out;
}

// Vendor and device id from the device's config space, through VFIO.
std::uint32_t config_ids(const Device& d) {
    std::uint32_t v = 0;
    if (auto r = d.ops().read_region(kConfigRegion, 0, &v, sizeof v); !r) {
        ADD_FAILURE() << d.address().str() << " config read: " << r.error().message();
        return 0;
    }
    return v;
}

// Something real done with an opened VF: its ids from config space, and a
// register of its BAR 0 (the 82576 VF's STATUS, offset 0x8: BAR 0
// decodes, so the read is not the all-ones of nothing there). Its value
// is the emulated VF's state: seen as 0x800c8481 right after the VF was
// opened, and as 0 once the PF had been closed and opened again (vfio-pci
// resets the PF then) while the VF stayed open.
void use_vf(const Device& d) {
    EXPECT_EQ(config_ids(d), (std::uint32_t{kVfId} << 16) | kIntel) << d.address().str();
    std::uint32_t status = ~0u;
    auto r = d.ops().read_region(0, 0x8, &status, sizeof status);
    ASSERT_TRUE(r) << d.address().str() << " BAR 0 read: " << r.error().message();
    EXPECT_NE(status, ~0u) << d.address().str() << " BAR 0 STATUS reads all ones";
    std::printf("VF %s (%s): ids %08x, BAR 0 STATUS %08x\n", d.address().str().c_str(),
                mode_label().c_str(), config_ids(d), status);
}

// An open that vfio-pci refuses: EACCES, a message naming the device and
// each of `want`, and never the token itself.
void expect_refused(Vfio& v, const std::string& spec, const std::vector<std::string>& want,
                    const std::string& token_text = "") {
    const int before = open_fds();
    auto d = v.assign_device(v.default_container(), spec);
    ASSERT_FALSE(d) << spec << " opened";
    const std::string m = d.error().message();
    std::printf("refused (%s): %s\n", mode_label().c_str(), m.c_str());
    EXPECT_EQ(d.error().err(), EACCES) << m;
    EXPECT_NE(m.find(spec.substr(0, 12)), std::string::npos) << m;
    for (const auto& w : want)
        EXPECT_NE(m.find(w), std::string::npos) << "'" << w << "' missing from: " << m;
    if (!token_text.empty()) {
        EXPECT_EQ(m.find(token_text), std::string::npos) << "the token must stay out of messages";
    }
    EXPECT_EQ(open_fds(), before) << "a refused open left fds behind";
}

class VfToken : public ::testing::TestWithParam<std::string> {
protected:
    void SetUp() override {
        vf_ = vfs();
        ASSERT_GE(vf_.size(), 2u) << "the job makes two VFs of " << kPf << " first";
        before_ = open_fds();
        auto v = Vfio::create(mode_options());
        ASSERT_TRUE(v) << v.error().message();
        vfio_ = std::move(*v);
    }
    void TearDown() override {
        vfio_.reset();
        if (before_ >= 0) {
            EXPECT_EQ(open_fds(), before_) << "fds left open";
        }
    }
    Device* assign(const std::string& spec) {
        auto d = vfio_->assign_device(vfio_->default_container(), spec);
        EXPECT_TRUE(d) << spec.substr(0, 12) << ": " << d.error().message();
        return d ? *d : nullptr;
    }

    std::vector<std::string> vf_;
    std::unique_ptr<Vfio> vfio_;
    int before_ = 0;
};

// vfiokit in this process owns the PF and sets the token; a VF opens with
// it and is used; a wrong and a missing token are refused, naming the PF;
// the owner changes the token while a VF is open, and the next VF needs
// the new one.
TEST_P(VfToken, OwnerInThisProcess) {
    Device* pf = assign(kPf);
    ASSERT_NE(pf, nullptr);
    EXPECT_EQ(config_ids(*pf), (std::uint32_t{kPfId} << 16) | kIntel);
    const Uuid t = fresh_token();
    ASSERT_TRUE(pf->set_vf_token(t));

    Device* vf0 = assign(with_token(vf_[0], t));
    ASSERT_NE(vf0, nullptr);
    use_vf(*vf0);

    const Uuid wrong = fresh_token();
    expect_refused(*vfio_, with_token(vf_[1], wrong), {"does not match", "PF " + std::string(kPf)},
                   to_string(wrong));
    expect_refused(*vfio_, vf_[1],
                   {"belongs to PF " + std::string(kPf), "-a " + vf_[1] + ",vf_token=<UUID>"});

    // A new token while VF 0 is open: VF 0 keeps working, VF 1 needs it.
    const Uuid t2 = fresh_token();
    ASSERT_TRUE(pf->set_vf_token(t2));
    expect_refused(*vfio_, with_token(vf_[1], t), {"does not match"}, to_string(t));
    Device* vf1 = assign(with_token(vf_[1], t2));
    ASSERT_NE(vf1, nullptr);
    use_vf(*vf1);
    use_vf(*vf0);
    for (Device* d : {vf1, vf0, pf})
        ASSERT_TRUE(vfio_->release_device(*d));
}

// While a VF is open the PF itself opens only with the token (and a
// token given at that open is checked, not set); on a device that is not
// a PF, set_vf_token fails saying so.
TEST_P(VfToken, PfNeedsTheTokenWhileAVfIsOpen) {
    Device* pf = assign(kPf);
    ASSERT_NE(pf, nullptr);
    const Uuid t = fresh_token();
    ASSERT_TRUE(pf->set_vf_token(t));
    Device* vf0 = assign(with_token(vf_[0], t));
    ASSERT_NE(vf0, nullptr);
    ASSERT_TRUE(vfio_->release_device(*pf));

    expect_refused(*vfio_, kPf, {"a VF of PF " + std::string(kPf), vf_[0], "vf_token=<UUID>"});
    const Uuid wrong = fresh_token();
    expect_refused(*vfio_, with_token(kPf, wrong), {"does not match", "open VFs"},
                   to_string(wrong));
    pf = assign(with_token(kPf, t));
    ASSERT_NE(pf, nullptr);
    use_vf(*vf0);

    auto not_pf = vf0->set_vf_token(t);
    ASSERT_FALSE(not_pf);
    std::printf("set_vf_token on a VF (%s): %s\n", mode_label().c_str(),
                not_pf.error().message().c_str());
    EXPECT_EQ(not_pf.error().err(), ENOTTY);
    EXPECT_NE(not_pf.error().message().find("only an SR-IOV physical function"), std::string::npos);
    for (Device* d : {vf0, pf})
        ASSERT_TRUE(vfio_->release_device(*d));
}

// assign_device("PF vf_token=T") opens the PF with T (no VF is open: the
// open sets it) and then sets T through the PF's feature: exactly one
// VFIO_DEVICE_FEATURE more than a plain assignment, and a VF opens with T.
// When that set fails (injected), the assignment fails naming it and
// leaves nothing open.
TEST_P(VfToken, PfAssignedWithATokenSetsIt) {
    FaultInjector plain;
    {
        ScopedSyscalls g(plain);
        Device* pf = assign(kPf);
        ASSERT_NE(pf, nullptr);
        ASSERT_TRUE(vfio_->release_device(*pf));
    }
    const unsigned features = plain.count(Call::ioctl, uapi::kVfioDeviceFeature);
    const Uuid t = fresh_token();
    {
        const int before = open_fds();
        FaultInjector fi;
        ScopedSyscalls g(fi);
        fi.fail_nth(Call::ioctl, features + 1, EIO, uapi::kVfioDeviceFeature);
        auto d = vfio_->assign_device(vfio_->default_container(), with_token(kPf, t));
        ASSERT_FALSE(d);
        EXPECT_TRUE(fi.fired());
        const std::string m = d.error().message();
        std::printf("set fails (%s): %s\n", mode_label().c_str(), m.c_str());
        EXPECT_EQ(d.error().err(), EIO) << m;
        EXPECT_NE(m.find("set the VF token of " + std::string(kPf)), std::string::npos) << m;
        EXPECT_EQ(open_fds(), before) << "a failed set left fds behind";
    }
    FaultInjector counter;
    Device* pf = nullptr;
    {
        ScopedSyscalls g(counter);
        pf = assign(with_token(kPf, t));
    }
    ASSERT_NE(pf, nullptr);
    EXPECT_EQ(counter.count(Call::ioctl, uapi::kVfioDeviceFeature), features + 1);
    std::printf("PF assigned with a token (%s): %u VFIO_DEVICE_FEATURE ioctl(s), %u without\n",
                mode_label().c_str(), counter.count(Call::ioctl, uapi::kVfioDeviceFeature),
                features);
    Device* vf0 = assign(with_token(vf_[0], t));
    ASSERT_NE(vf0, nullptr);
    use_vf(*vf0);
    for (Device* d : {vf0, pf})
        ASSERT_TRUE(vfio_->release_device(*d));
}

// --- the owner in another process --------------------------------------------

// This binary started with --pf-owner TOKEN: opens the PF in the mode of
// the environment, sets TOKEN, says "ready" on stdout and holds the PF
// until stdin closes.
int pf_owner_main(const char* token_text) {
    auto t = parse_uuid(token_text);
    auto v = Vfio::create(mode_options());
    if (!t || !v) {
        std::printf("error: %s\n", !t ? t.error().message().c_str() : v.error().message().c_str());
        return 1;
    }
    auto pf = (*v)->assign_device((*v)->default_container(), kPf);
    if (!pf) {
        std::printf("error: %s\n", pf.error().message().c_str());
        return 1;
    }
    if (auto ok = (*pf)->set_vf_token(*t); !ok) {
        std::printf("error: %s\n", ok.error().message().c_str());
        return 1;
    }
    std::printf("ready %d\n", static_cast<int>(::getpid()));
    std::fflush(stdout);
    char c;
    while (::read(0, &c, 1) > 0) {
    }
    return (*v)->release_device(**pf) ? 0 : 1;
}

// The owner process: started, and its first line read (within 30 s).
struct Owner {
    pid_t pid = -1;
    int to = -1;    // its stdin
    int from = -1;  // its stdout
    std::string line;

    bool start(const Uuid& t) {
        int in[2], out[2];
        if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0)
            return false;
        const std::string token = to_string(t);
        pid = ::fork();
        if (pid == 0) {
            ::dup2(in[0], 0);
            ::dup2(out[1], 1);
            ::execl("/proc/self/exe", "vf_token_lab_test", "--pf-owner", token.c_str(), nullptr);
            ::_exit(127);
        }
        ::close(in[0]);
        ::close(out[1]);
        to = in[1];
        from = out[0];
        if (pid < 0)
            return false;
        pollfd p{from, POLLIN, 0};
        char c;
        while (::poll(&p, 1, 30000) == 1 && ::read(from, &c, 1) == 1 && c != '\n')
            line += c;
        return line.starts_with("ready");
    }
    // Closes its stdin and waits: its exit status (-1 if it died otherwise).
    int stop() {
        if (to >= 0)
            ::close(to);
        to = -1;
        int st = 0;
        if (pid > 0 && ::waitpid(pid, &st, 0) != pid)
            st = -1;
        pid = -1;
        if (from >= 0)
            ::close(from);
        from = -1;
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    }
    ~Owner() {
        if (pid > 0)
            ::kill(pid, SIGKILL);
        stop();
    }
};

// Another process (vfiokit, this binary as --pf-owner) holds the PF and
// set the token: this process opens and uses a VF with it, and is refused
// without it; after the owner closed the PF and exited, the kernel still
// holds its token.
TEST_P(VfToken, OwnerInAnotherProcess) {
    const Uuid t = fresh_token();
    {
        Owner owner;
        ASSERT_TRUE(owner.start(t)) << "the PF owner did not get ready: " << owner.line;
        std::printf("PF owner (%s): %s\n", mode_label().c_str(), owner.line.c_str());
        Device* vf0 = assign(with_token(vf_[0], t));
        ASSERT_NE(vf0, nullptr);
        use_vf(*vf0);
        const Uuid wrong = fresh_token();
        expect_refused(*vfio_, with_token(vf_[1], wrong), {"does not match"}, to_string(wrong));
        expect_refused(*vfio_, vf_[1], {"belongs to PF " + std::string(kPf)});
        ASSERT_TRUE(vfio_->release_device(*vf0));
        EXPECT_EQ(owner.stop(), 0) << "the PF owner failed to release the PF";
    }
    Device* vf1 = assign(with_token(vf_[1], t));
    ASSERT_NE(vf1, nullptr);
    use_vf(*vf1);
    ASSERT_TRUE(vfio_->release_device(*vf1));
}

// --- the EAL -------------------------------------------------------------------

// A driver for the 82576 PF and VF that only reads their ids: lets the
// EAL probe both, and shows each opened device answering.
struct Ids {
    std::uint16_t device = 0;
};
constexpr pci::IdMatch kIgbIds[] = {{kIntel, kPfId}, {kIntel, kVfId}};
constexpr pci::DriverInfo kIdsInfo{"vf_token_ids", kIgbIds, ~0ULL, {}, {}};
class IdsDriver final : public pci::DriverFor<Ids> {
public:
    IdsDriver() : DriverFor(kIdsInfo) {}
    [[nodiscard]] Result<std::unique_ptr<Ids>> probe(pci::PciDevice& dev,
                                                     const pci::DriverArgs&) override {
        auto id = dev.device_id();
        if (!id)
            return fail(std::move(id.error()));
        return std::make_unique<Ids>(Ids{*id});
    }
};
IdsDriver& ids_driver() {
    static IdsDriver d;
    return d;
}
const pci::DriverRegistration kRegistration(ids_driver());

Result<std::unique_ptr<eal::Eal>> eal_init(std::vector<std::string> args) {
    args.insert(args.begin(), "vf_token_lab_test");
    std::vector<const char*> argv;
    for (const auto& a : args)
        argv.push_back(a.c_str());
    return eal::Eal::init(static_cast<int>(argv.size()), argv.data());
}

// -a PF,vf_token=T opens the PF and sets T (no VF is open, so vfio-pci
// takes it at the open; vfiokit sets it with the PF's feature after);
// -a VF,vf_token=T opens the VF with it. Then a second EAL without the
// token is refused, naming the PF and the option.
TEST_P(VfToken, EalAllowGivesTheToken) {
    vfio_.reset();  // the EAL has a Vfio of its own
    before_ = -1;   // and keeps files of its own (runtime directory, memory)
    const Uuid t = fresh_token();
    const std::string tt = to_string(t);
    {
        auto e = eal_init({"-a", std::string(kPf) + ",vf_token=" + tt, "-a", vf_[0] + ",vf_token=" + tt});
        ASSERT_TRUE(e) << e.error().message();
        for (const auto& r : (*e)->device_report())
            std::printf("EAL (%s): %s %s %s\n", mode_label().c_str(), r.addr.str().c_str(),
                        r.probed ? "probed by" : "not probed:",
                        r.probed ? r.driver.c_str() : r.reason.c_str());
        Ids* pf = ids_driver().find(*PciAddress::parse(kPf));
        Ids* vf = ids_driver().find(*PciAddress::parse(vf_[0]));
        ASSERT_NE(pf, nullptr);
        ASSERT_NE(vf, nullptr);
        EXPECT_EQ(pf->device, kPfId);
        EXPECT_EQ(vf->device, kVfId);
    }
    EXPECT_EQ(ids_driver().instances(), 0u);

    // The token outlives that EAL: VF 1 opens with it, not without it.
    auto refused = eal_init({"-a", vf_[1]});
    ASSERT_FALSE(refused);
    const std::string m = refused.error().message();
    std::printf("EAL -a %s (%s): %s\n", vf_[1].c_str(), mode_label().c_str(), m.c_str());
    EXPECT_EQ(refused.error().err(), EACCES) << m;
    for (const std::string& w : {"belongs to PF " + std::string(kPf), "-a " + vf_[1] + ",vf_token="})
        EXPECT_NE(m.find(w), std::string::npos) << "'" << w << "' missing from: " << m;
    auto ok = eal_init({"-a", vf_[1] + ",vf_token=" + tt});
    ASSERT_TRUE(ok) << ok.error().message();
    ASSERT_NE(ids_driver().find(*PciAddress::parse(vf_[1])), nullptr);
}

INSTANTIATE_TEST_SUITE_P(Lab, VfToken, ::testing::Values(mode_label()),
                         [](const auto& p) { return p.param; });

}  // namespace
}  // namespace vfiokit::vfio

int main(int argc, char** argv) {
    if (argc == 3 && std::strcmp(argv[1], "--pf-owner") == 0)
        return vfiokit::vfio::pf_owner_main(argv[2]);
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}

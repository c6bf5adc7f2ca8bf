// VF token refusals explained (vf_token.hpp).
#include "vf_token.hpp"

#include <cerrno>
#include <string>

#include "vfiokit/eal/vfio/probe.hpp"

namespace vfiokit::vfio::detail {

namespace {

std::string give_token(PciAddress a) {
    return "give the token: -a " + a.str() + ",vf_token=<UUID> (assign_device: \"" + a.str() +
           " vf_token=<UUID>\")";
}

std::string list(const std::vector<PciAddress>& vfs) {
    std::string s;
    for (PciAddress v : vfs)
        s += (s.empty() ? "" : ", ") + v.str();
    return s.empty() ? std::string("none listed") : s;
}

}  // namespace

bool explain_vf_token(Error& e, const DeviceRequest& req) {
    if (req.root == nullptr)
        return false;
    const bool token = !req.vf_token.empty();
    const Sriov s = probe_sriov(*req.root, req.addr);
    const std::string a = req.addr.str();
    if (e.err() == EACCES) {
        if (s.vf()) {
            const std::string pf = s.physfn->str();
            if (token)
                e.hint("the VF token does not match the one the owner of PF " + pf +
                       " set (the PF's owner sets it, and may change it, with "
                       "VFIO_DEVICE_FEATURE_PCI_VF_TOKEN: Device::set_vf_token)");
            else
                e.hint("VF " + a + " belongs to PF " + pf + ", which is bound to vfio-pci: "
                       "vfio-pci opens the VF only with the VF token the PF's owner set; " +
                       give_token(req.addr));
            return true;
        }
        if (s.pf) {
            if (token)
                e.hint("the VF token does not match the one the open VFs of PF " + a + " (" +
                       list(s.vfs) + ") were opened with");
            else
                e.hint("a VF of PF " + a + " (" + list(s.vfs) + ") is open, and while one is, "
                       "vfio-pci opens the PF only with their VF token; " + give_token(req.addr));
            return true;
        }
        return false;
    }
    if (e.err() == EINVAL && token) {
        if (s.vf() && s.token == VfToken::none) {
            e.hint("vf_token is only for SR-IOV PFs and VFs bound to vfio-pci, and for a VF "
                   "only while its PF is: PF " + s.physfn->str() + " of VF " + a +
                   " is bound to " +
                   (s.pf_driver.empty() ? std::string("no driver") : s.pf_driver) +
                   ", so drop vf_token");
            return true;
        }
        if (!s.vf() && !s.pf) {
            e.hint("vf_token is only for SR-IOV PFs and VFs bound to vfio-pci: " + a +
                   " is neither, so drop vf_token");
            return true;
        }
    }
    return false;
}

std::string cdev_token_unsupported_hint(const DeviceRequest& req) {
    std::string release;
    if (req.root != nullptr)
        release = req.root->read("/proc/sys/kernel/osrelease").value_or("");
    return "a VF token in cdev mode needs Linux 6.17 or later (VFIO_DEVICE_BIND_FLAG_TOKEN)" +
           (release.empty() ? std::string() : "; this kernel is " + release) +
           ": use group mode (--vfio-mode=group), which passes the token in the device name; "
           "a PF's owner can open the PF without one and set it with Device::set_vf_token";
}

}  // namespace vfiokit::vfio::detail

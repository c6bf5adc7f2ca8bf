// Why vfio-pci refused to open a device for its VF token (private to
// lib/eal/vfio): the rules of drivers/vfio/pci/vfio_pci_core.c
// (vfio_pci_validate_vf_token; vfio_pci_core_match_token_uuid since Linux
// 6.17; probe.hpp, VfToken), applied to the device's SR-IOV facts in
// sysfs so the message names the PF and the option to give.
// Every mode reaches the same check: group-style modes through
// VFIO_GROUP_GET_DEVICE_FD "BDF vf_token=UUID", cdev through
// VFIO_DEVICE_BIND_IOMMUFD with VFIO_DEVICE_BIND_FLAG_TOKEN (Linux 6.17+).
#pragma once

#include "backend.hpp"

namespace vfiokit::vfio::detail {

// Sets the hint of `e`, a refusal to open req.addr (EACCES, or EINVAL
// with a token given), when the token explains it: which PF, whether the
// token was missing or wrong, what to give. False (and `e` untouched) when
// the device's SR-IOV facts do not explain the errno.
bool explain_vf_token(Error& e, const DeviceRequest& req);

// The hint for a token on a cdev bind that the kernel does not take (no
// VFIO_DEVICE_BIND_FLAG_TOKEN: before Linux 6.17), naming this kernel.
[[nodiscard]] std::string cdev_token_unsupported_hint(const DeviceRequest& req);

}  // namespace vfiokit::vfio::detail

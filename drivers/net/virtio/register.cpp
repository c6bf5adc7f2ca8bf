// Registers the virtio-net driver: a program linked with virtio_pmd_dep
// has Eal::init probe virtio-net devices (pci::registered_drivers()). Kept
// apart from virtio.cpp so that a program can use the driver classes with
// a pci::Bus of its own.
#include "virtio.hpp"

namespace vfiokit::virtio::net {

VirtioDriver& driver() {
    static VirtioDriver d;
    return d;
}

namespace {
const pci::DriverRegistration kRegistration(driver());
}  // namespace

}  // namespace vfiokit::virtio::net

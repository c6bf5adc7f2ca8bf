// Registers the igb drivers: a program linked with igb_pmd_dep has Eal::init
// probe 82576 PFs and VFs (pci::registered_drivers()). Kept apart from the driver
// so a program can use it with a pci::Bus of its own (igb_dep).
#include "igb.hpp"

namespace vfiokit::igb {

IgbDriver& driver() {
    static IgbDriver d;
    return d;
}

IgbVfDriver& vf_driver() {
    static IgbVfDriver d;
    return d;
}

namespace {
const pci::DriverRegistration kRegistration(driver());
const pci::DriverRegistration kVfRegistration(vf_driver());
}  // namespace

}  // namespace vfiokit::igb

// Registers the igb driver: a program linked with igb_pmd_dep has Eal::init
// probe 82576 PFs (pci::registered_drivers()). Kept apart from the driver
// so a program can use it with a pci::Bus of its own (igb_dep).
#include "igb.hpp"

namespace vfiokit::igb {

IgbDriver& driver() {
    static IgbDriver d;
    return d;
}

namespace {
const pci::DriverRegistration kRegistration(driver());
}  // namespace

}  // namespace vfiokit::igb

// Registers the em driver: a program linked with em_pmd_dep has Eal::init
// probe em NICs (pci::registered_drivers()). Kept apart from em.cpp so
// that a program can use the driver classes with a pci::Bus of its own.
#include "em.hpp"

namespace vfiokit::em {

EmDriver& driver() {
    static EmDriver d;
    return d;
}

namespace {
const pci::DriverRegistration kRegistration(driver());
}  // namespace

}  // namespace vfiokit::em

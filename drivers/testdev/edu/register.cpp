// Registers the edu driver: a program linked with edu_pmd_dep has Eal::init
// probe edus (pci::registered_drivers()). Kept apart from edu.cpp so that a
// program can use the driver classes with a pci::Bus of its own without
// Eal::init taking the devices first (edu_dep).
#include "edu.hpp"

namespace vfiokit::edu {

EduDriver& driver() {
    static EduDriver d;
    return d;
}

namespace {
const pci::DriverRegistration kRegistration(driver());
}  // namespace

}  // namespace vfiokit::edu

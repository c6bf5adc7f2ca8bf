// pmdinfo_match: which registered driver the EAL's probe would give a
// device of the given ids, from the C++ registry itself
// (pci::registered_drivers(), first match, as Bus::probe_all picks). The
// pmdinfo test holds vfiokit-pmdinfo's answers, read from a binary's
// embedded strings, against this, so that the tool and the EAL never
// disagree.
//
//   pmdinfo_match VENDOR:DEVICE[:SUBVENDOR:SUBDEVICE]...   (hex)
//
// One line per argument: "IDS NAME" or "IDS none". Subsystem ids not given
// are taken as QEMU's (1af4:1100), the lab's devices' subsystem.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "vfiokit/bus/pci/driver.hpp"

int main(int argc, char** argv) {
    using namespace vfiokit;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        pci::DeviceIds ids;
        unsigned v = 0, d = 0, sv = 0x1af4, sd = 0x1100;
        const int n = std::sscanf(a.c_str(), "%4x:%4x:%4x:%4x", &v, &d, &sv, &sd);
        if (n != 2 && n != 4) {
            std::fprintf(stderr, "pmdinfo_match: '%s' is not VENDOR:DEVICE[:SUBVENDOR:SUBDEVICE]\n",
                         a.c_str());
            return 2;
        }
        ids.vendor = static_cast<std::uint16_t>(v);
        ids.device = static_cast<std::uint16_t>(d);
        ids.subsystem_vendor = static_cast<std::uint16_t>(sv);
        ids.subsystem_device = static_cast<std::uint16_t>(sd);
        std::string name = "none";
        for (pci::Driver* drv : pci::registered_drivers())
            if (drv->matches(ids)) {
                name = drv->name();
                break;
            }
        std::printf("%s %s\n", a.c_str(), name.c_str());
    }
    return 0;
}

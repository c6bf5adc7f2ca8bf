// The EAL's own log component (vfiokit/eal/log.hpp), shared by the files
// of class Eal: removal requests, secondaries that keep a removed device,
// device-event sources that failed.
#pragma once

#include "vfiokit/eal/log.hpp"

namespace vfiokit::eal {
extern const log::Component eal_log;
}  // namespace vfiokit::eal

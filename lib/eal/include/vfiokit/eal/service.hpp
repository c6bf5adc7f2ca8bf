/// \file
/// Services: parts of a program that every EAL process runs once its EAL is
/// up, without the application starting them (DPDK's EAL starts telemetry
/// this way). A library registers its service when the program links it
/// (a static registration object, kept whole by the linker as the drivers'
/// registration is); Eal::init starts every registered service at its end,
/// in primaries, secondaries and single processes alike, and the Eal stops
/// them first when it goes, before its lcores, devices and memory.
///
/// \code
///   namespace {
///   Result<std::unique_ptr<eal::Service>> start_mine(eal::Eal& e) { ... }
///   const bool registered = (eal::register_service("mine", start_mine), true);
///   }
/// \endcode
///
/// A service that fails to start fails Eal::init with its error (context
/// "EAL init: service NAME"); one that has nothing to do returns nullptr.
///
/// Thread-safety: register_service() runs during static initialization;
/// services() is read by Eal::init.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "vfiokit/eal/error.hpp"

namespace vfiokit::eal {

class Eal;

/// What a running service is to the EAL: something to destroy.
class Service {
public:
    virtual ~Service() = default;
};

/// Starts a service for `e`: the service, nullptr when it has nothing to do,
/// or the error that fails Eal::init.
using ServiceStart = Result<std::unique_ptr<Service>> (*)(Eal& e);

/// A registered service: its name and how to start it.
struct ServiceEntry {
    std::string_view name;
    ServiceStart start;
};

/// Registers a service under `name`; call it during static initialization
/// (see the file's description).
void register_service(std::string_view name, ServiceStart start);
/// In registration order.
[[nodiscard]] const std::vector<ServiceEntry>& services();

}  // namespace vfiokit::eal

#include "vfiokit/eal/service.hpp"

namespace vfiokit::eal {

namespace {

std::vector<ServiceEntry>& registry() {
    static std::vector<ServiceEntry> r;
    return r;
}

}  // namespace

void register_service(std::string_view name, ServiceStart start) {
    registry().push_back({name, start});
}

const std::vector<ServiceEntry>& services() { return registry(); }

}  // namespace vfiokit::eal

// /vfio/*: the process's VFIO mode, containers, devices and DMA mappings
// (vfiokit's own commands; DPDK has none). Read under the EAL lock.
#include <cerrno>
#include <mutex>

#include "params.hpp"
#include "vfiokit/eal/pci_address.hpp"
#include "vfiokit/eal/vfio/vfio.hpp"
#include "vfiokit/telemetry/telemetry.hpp"

namespace vfiokit::telemetry {

namespace {

struct Held {
    vfio::Vfio& v;
    std::unique_lock<RecursiveLock> g;
};

Result<Held> hold(const EalParts& p, std::string_view cmd) {
    if (p.vfio == nullptr)
        return fail(Error(ENODEV, std::string(cmd) + ": this process has no VFIO")
                        .hint("it runs without an EAL (Eal::init)"));
    return Held{*p.vfio, std::unique_lock(p.vfio->control_lock())};
}

Json container_json(std::size_t index, const vfio::Container& c) {
    Json j = Json::object();
    j.set("id", index).set("default", c.is_default());
    j.set("mode", vfio::to_string(c.mode())).set("translates", c.translates());
    j.set("imported", c.imported());
    j.set("mappings", c.mapping_count());
    if (c.dma_mask() != ~0ULL)
        j.set("dma_mask", hex_json(c.dma_mask()));
    Json devs = Json::array();
    for (const auto& d : c.devices())
        devs.push(d->address().str());
    j.set("devices", std::move(devs));
    j.set("description", c.describe());
    return j;
}

}  // namespace

Result<void> add_vfio_commands(Commands& c, EalParts parts) {
    auto shared = std::make_shared<EalParts>(std::move(parts));
    if (auto ok = c.add("/vfio/mode",
                        "Returns the VFIO mode in use and why it was chosen. Takes no parameters",
                        [shared](std::string_view) -> Result<Json> {
                            auto h = hold(*shared, "/vfio/mode");
                            if (!h)
                                return fail(std::move(h.error()));
                            Json d = Json::object();
                            d.set("mode", vfio::to_string(h->v.mode()));
                            d.set("reason", h->v.mode_reason());
                            d.set("type1", vfio::to_string(h->v.type1()));
                            d.set("containers", h->v.containers().size());
                            return d;
                        });
        !ok)
        return ok;
    if (auto ok = c.add("/vfio/containers",
                        "Returns the VFIO containers (IO address spaces). Takes no parameters",
                        [shared](std::string_view) -> Result<Json> {
                            auto h = hold(*shared, "/vfio/containers");
                            if (!h)
                                return fail(std::move(h.error()));
                            Json a = Json::array();
                            const auto& cs = h->v.containers();
                            for (std::size_t i = 0; i < cs.size(); ++i)
                                a.push(container_json(i, *cs[i]));
                            return a;
                        });
        !ok)
        return ok;
    if (auto ok = c.add("/vfio/devices",
                        "Returns the devices assigned to VFIO containers. Takes no parameters",
                        [shared](std::string_view) -> Result<Json> {
                            auto h = hold(*shared, "/vfio/devices");
                            if (!h)
                                return fail(std::move(h.error()));
                            Json a = Json::array();
                            const auto& cs = h->v.containers();
                            for (std::size_t i = 0; i < cs.size(); ++i)
                                for (const auto& d : cs[i]->devices()) {
                                    Json j = Json::object();
                                    j.set("address", d->address().str()).set("container", i);
                                    if (auto g = d->iommu_group())
                                        j.set("iommu_group", *g);
                                    a.push(std::move(j));
                                }
                            return a;
                        });
        !ok)
        return ok;
    return c.add(
        "/vfio/mappings",
        "Returns a container's DMA mappings. Parameters: int container id (/vfio/containers)",
        [shared](std::string_view params) -> Result<Json> {
            auto h = hold(*shared, "/vfio/mappings");
            if (!h)
                return fail(std::move(h.error()));
            const auto& cs = h->v.containers();
            auto id = detail::number_param("/vfio/mappings", "container id", params, ~0ULL);
            if (!id)
                return fail(std::move(id.error()));
            if (*id >= cs.size())
                return fail(Error(ENODEV, "/vfio/mappings: no container " + std::to_string(*id))
                                .hint("there are " + std::to_string(cs.size()) +
                                      " (ids from 0): /vfio/containers lists them"));
            const vfio::Container& ct = *cs[*id];
            Json a = Json::array();
            for (const auto& m : ct.mappings()) {
                Json j = Json::object();
                j.set("iova", hex_json(m.iova)).set("vaddr", hex_json(m.vaddr)).set("len", m.len);
                if (ct.imported())
                    j.set("inherited", ct.inherited(m.iova));
                a.push(std::move(j));
            }
            return a;
        });
}

}  // namespace vfiokit::telemetry

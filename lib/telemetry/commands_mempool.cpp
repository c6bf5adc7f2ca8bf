// /mempool/*: this process's mbuf pools, in the shapes of DPDK's mempool
// telemetry (lib/mempool/rte_mempool.c) where the meaning is the same.
#include <algorithm>
#include <cerrno>

#include "vfiokit/mbuf/mbuf.hpp"
#include "vfiokit/telemetry/telemetry.hpp"

namespace vfiokit::telemetry {

Result<void> add_mempool_commands(Commands& c) {
    if (auto ok = c.add("/mempool/list", "Returns list of available mempool. Takes no parameters",
                        [](std::string_view) -> Result<Json> {
                            Json a = Json::array();
                            for (const auto& n : mbuf::MbufPool::names())
                                a.push(n);
                            return a;
                        });
        !ok)
        return ok;
    return c.add(
        "/mempool/info", "Returns mempool info. Parameters: pool_name",
        [](std::string_view name) -> Result<Json> {
            if (name.empty())
                return fail(Error(EINVAL, "/mempool/info: which pool?")
                                .hint("give its name: /mempool/info,mb_pool_0 (/mempool/list)"));
            // Only pools this process created: lookup() would ask a
            // secondary's primary, which /mempool/list does not list.
            const auto names = mbuf::MbufPool::names();
            mbuf::MbufPool* p = std::find(names.begin(), names.end(), name) != names.end()
                                    ? mbuf::MbufPool::lookup(name)
                                    : nullptr;
            if (p == nullptr)
                return fail(Error(ENOENT, "/mempool/info: no pool '" +
                                              std::string(name.substr(0, 64)) + "'")
                                .hint("/mempool/list has the names"));
            Json d = Json::object();
            d.set("name", p->name()).set("size", p->size()).set("cache_size", p->cache_size());
            d.set("elt_size", p->element_size()).set("private_data_size", p->priv_size());
            d.set("populated_size", p->size());
            d.set("total_cache_count", p->cache_count());
            d.set("common_pool_count", p->common_count());
            // vfiokit's: the mbufs' data room (buf_len) and how many are out.
            d.set("data_room_size", p->data_room()).set("in_use_count", p->in_use_count());
            return d;
        });
}

}  // namespace vfiokit::telemetry

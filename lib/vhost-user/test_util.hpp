// Test helpers for lib/vhost-user: a raw front end that writes any bytes
// and fds to a socket (well formed or not), a Device that records what the
// session told it, and the process counts that prove nothing leaked.
// Tests only; not thread-safe unless a member says so.
#pragma once

#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "lab_env.hpp"
#include "vfiokit/eal/mp.hpp"
#include "vfiokit/vhost_user/device.hpp"
#include "vfiokit/vhost_user/protocol.hpp"

namespace vfiokit::vhost_user::test {

// Mappings in this process whose name contains `name` (a memfd's name
// shows as "/memfd:NAME (deleted)").
inline int mappings_named(const std::string& name) {
    std::ifstream in("/proc/self/maps");
    int n = 0;
    for (std::string line; std::getline(in, line);)
        n += line.find(name) != std::string::npos;
    return n;
}

inline int open_fds() { return vfiokit::testing::open_fds(); }

template <class T>
std::vector<std::uint8_t> bytes_of(const T& v) {
    std::vector<std::uint8_t> b(sizeof v);
    std::memcpy(b.data(), &v, sizeof v);
    return b;
}

// Sends a header declaring `declared` payload bytes (default: the payload's
// size), then `payload`, with `fds` on the first byte. `cut`: send only the
// first `cut` bytes of header+payload.
inline bool send_raw(int sock, std::uint32_t request, std::uint32_t flags,
                     const std::vector<std::uint8_t>& payload, const std::vector<int>& fds = {},
                     std::optional<std::uint32_t> declared = {},
                     std::optional<std::size_t> cut = {}) {
    Header h{request, flags, declared ? *declared : static_cast<std::uint32_t>(payload.size())};
    std::vector<std::uint8_t> all(sizeof h);
    std::memcpy(all.data(), &h, sizeof h);
    all.insert(all.end(), payload.begin(), payload.end());
    if (cut)
        all.resize(*cut);
    iovec iov{all.data(), all.size()};
    auto n = vfiokit::eal::mp::send_with_fds(sock, std::span<const iovec>(&iov, 1), fds);
    return n && *n == all.size();
}

inline bool send_msg(int sock, Request r, const std::vector<std::uint8_t>& payload = {},
                     const std::vector<int>& fds = {}, bool need_reply = false) {
    return send_raw(sock, static_cast<std::uint32_t>(r),
                    kVersion | (need_reply ? kFlagNeedReply : 0), payload, fds);
}

struct Reply {
    Header hdr{};
    std::vector<std::uint8_t> payload;
    std::uint64_t u64() const {
        std::uint64_t v = 0;
        std::memcpy(&v, payload.data(), std::min(payload.size(), sizeof v));
        return v;
    }
};

// Reads one reply; nullopt on EOF or error.
inline std::optional<Reply> read_reply(int sock) {
    Reply r;
    if (::recv(sock, &r.hdr, sizeof r.hdr, MSG_WAITALL) != sizeof r.hdr)
        return std::nullopt;
    r.payload.resize(r.hdr.size);
    if (r.hdr.size > 0 &&
        ::recv(sock, r.payload.data(), r.hdr.size, MSG_WAITALL) != static_cast<ssize_t>(r.hdr.size))
        return std::nullopt;
    return r;
}

inline std::vector<std::uint8_t> vring_state(std::uint32_t index, std::uint32_t num) {
    return bytes_of(VringState{index, num});
}
inline std::vector<std::uint8_t> u64_bytes(std::uint64_t v) { return bytes_of(v); }

inline std::vector<std::uint8_t> mem_table(const std::vector<MemoryRegionDesc>& regions,
                                           std::optional<std::uint32_t> count = {}) {
    MemoryHeader h{count ? *count : static_cast<std::uint32_t>(regions.size()), 0};
    auto b = bytes_of(h);
    for (const auto& r : regions) {
        auto rb = bytes_of(r);
        b.insert(b.end(), rb.begin(), rb.end());
    }
    return b;
}

// Records every call; thread-safe (the testpmd test reads it from the
// test thread while the server thread writes).
class RecordingDevice : public Device {
public:
    Result<void> features_set(std::uint64_t f) override {
        std::lock_guard l(mu);
        features = f;
        events.push_back("features");
        return {};
    }
    Result<void> memory_set(std::span<const Region> r) override {
        std::lock_guard l(mu);
        regions.assign(r.begin(), r.end());
        events.push_back("memory " + std::to_string(r.size()));
        return {};
    }
    Result<void> vring_ready(const VringInfo& v) override {
        std::lock_guard l(mu);
        ready.push_back(v);
        events.push_back("ready " + std::to_string(v.index));
        return {};
    }
    std::uint16_t vring_stopped(unsigned index, StopReason why, std::uint16_t base) override {
        std::lock_guard l(mu);
        events.push_back("stopped " + std::to_string(index) + " " + std::string(to_string(why)));
        return stop_index ? *stop_index : base;
    }
    void disconnected(std::string_view why) override {
        std::lock_guard l(mu);
        events.push_back("disconnected");
        last_why = why;
        ++disconnects;
    }

    std::mutex mu;
    std::uint64_t features = 0;
    std::vector<Region> regions;
    std::vector<VringInfo> ready;
    std::vector<std::string> events;
    std::optional<std::uint16_t> stop_index;
    std::string last_why;
    int disconnects = 0;
};

}  // namespace vfiokit::vhost_user::test

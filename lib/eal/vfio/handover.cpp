// The handover of a process's VFIO state to another (handover.hpp; the
// protocol and its failure cases are in doc/handover.md).
#include "vfiokit/eal/vfio/handover.hpp"

#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <utility>

#include "backend.hpp"
#include "handover_codec.hpp"
#include "vfiokit/eal/format.hpp"
#include "vfiokit/eal/mp.hpp"

namespace vfiokit::vfio {

namespace hc = handover;

struct HandoverAccess {
    static Result<void> change_process(Vfio& v) {
        return v.default_container().backend_->change_process();
    }
    static void let_go(Vfio& v) {
        for (const auto& c : v.containers_)
            c->let_go();
    }
    static void take_charge(Vfio& v, std::uint32_t from) {
        for (const auto& c : v.containers_)
            c->take_charge();
        v.mode_reason_ = "taken over from process " + std::to_string(from) + " (vfio::take_over)";
    }
};

namespace {

constexpr std::size_t kMaxMessage = 1 << 20;
constexpr std::size_t kMaxFds = 253;  // SCM_MAX_FD

std::uint64_t now_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ULL +
           static_cast<std::uint64_t>(ts.tv_nsec);
}

// One message per step, so the socket must keep message boundaries.
Result<void> check_socket(int sock) {
    int type = 0;
    socklen_t len = sizeof type;
    if (::getsockopt(sock, SOL_SOCKET, SO_TYPE, &type, &len) != 0)
        return fail(errno, "getsockopt SO_TYPE of the handover socket " + std::to_string(sock));
    if (type != SOCK_SEQPACKET)
        return fail(Error(EINVAL, "the handover socket " + std::to_string(sock) +
                                      " is not SOCK_SEQPACKET")
                        .hint("use socketpair(AF_UNIX, SOCK_SEQPACKET, ...) or a "
                              "SOCK_SEQPACKET UNIX socket"));
    return {};
}

Result<void> send(int sock, const std::vector<std::uint8_t>& bytes, std::span<const int> fds) {
    const iovec iov{const_cast<std::uint8_t*>(bytes.data()), bytes.size()};
    auto n = eal::mp::send_with_fds(sock, std::span(&iov, 1), fds, MSG_NOSIGNAL);
    if (!n)
        return fail(std::move(n.error()).context("handover"));
    if (*n != bytes.size())
        return fail(EIO, "handover: short send");
    return {};
}

struct Message {
    std::vector<std::uint8_t> bytes;
    std::vector<Fd> fds;
};

// One message, waiting at most `timeout`. EPIPE when the peer closed.
Result<Message> receive(int sock, std::chrono::milliseconds timeout, const char* waiting_for) {
    pollfd p{sock, POLLIN, 0};
    int r = 0;
    do
        r = ::poll(&p, 1, static_cast<int>(timeout.count()));
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return fail(errno, std::string("poll the handover socket for ") + waiting_for);
    if (r == 0)
        return fail(ETIMEDOUT, std::string("handover: no ") + waiting_for + " within " +
                                   std::to_string(timeout.count()) + " ms");
    Message m;
    m.bytes.resize(kMaxMessage);
    auto got = eal::mp::receive_with_fds(sock, std::as_writable_bytes(std::span(m.bytes)), kMaxFds);
    if (!got)
        return fail(std::move(got.error()).context(std::string("handover: ") + waiting_for));
    if (got->bytes == 0)
        return fail(EPIPE, std::string("handover: the other process closed the socket before ") +
                               waiting_for);
    if ((got->msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0)
        return fail(EPROTO, std::string("handover: ") + waiting_for + " truncated");
    m.bytes.resize(got->bytes);
    m.fds = std::move(got->fds);
    return m;
}

Result<hc::Note> receive_note(int sock, std::chrono::milliseconds timeout, const char* waiting_for) {
    auto m = receive(sock, timeout, waiting_for);
    if (!m)
        return fail(std::move(m.error()));
    return hc::decode_note(m->bytes, m->fds.size());
}

Result<void> send_note(int sock, hc::Kind k, std::string text = {}) {
    return send(sock, hc::encode_note({k, std::move(text)}), {});
}

// Every mapping's vaddr range inside one region: the table must mean the
// same memory in the new process.
Result<void> check_regions(Vfio& v, std::span<const FileRegion> memory) {
    for (const auto& g : memory)
        if (g.fd < 0)
            return fail(EBADF, "handover: region " + hex(g.va) + "+" + hex(g.len) + " has no fd");
    for (const auto& c : v.containers())
        for (const auto& m : c->mappings()) {
            bool inside = false;
            for (const auto& g : memory)
                inside = inside || (m.vaddr >= g.va && m.vaddr + m.len <= g.va + g.len);
            if (!inside)
                return fail(Error(EINVAL, "handover: mapping " + range_text(m.iova, m.len) +
                                              " of " + c->describe() + " points at vaddr " +
                                              hex(m.vaddr) + ", in no region given")
                                .hint("give every file region the mappings use, so the new "
                                      "process maps the same memory at the same address"));
        }
    return {};
}

// The old process takes the accounting back after a failure: the new one
// may have taken it before failing. A no-op when it never moved.
Error reclaimed(Vfio& v, Error e) {
    if (auto ok = HandoverAccess::change_process(v); !ok)
        e.context("(taking the pinned-page accounting back failed too: " + ok.error().message() +
                  ")");
    return e;
}

}  // namespace

Result<void> can_hand_over(Vfio& v) {
    std::lock_guard g(v.control_lock());
    const std::string what = "hand over VFIO state";
    if (v.mode() != Mode::cdev)
        return fail(Error(ENOTSUP, what + ": not in " + std::string(to_string(v.mode())) + " mode")
                        .hint("a handover moves an iommufd with its IOASes and pinned memory "
                              "to another process: it needs cdev mode (--vfio-mode=cdev) and "
                              "a kernel with IOMMU_IOAS_MAP_FILE and IOMMU_IOAS_CHANGE_PROCESS "
                              "(Linux 6.13+)"));
    for (const auto& c : v.containers())
        for (const auto& m : c->mappings())
            if (!m.by_file)
                return fail(
                    Error(ENOTSUP, what + ": mapping " + range_text(m.iova, m.len) + " of " +
                                       c->describe() + " was made by address")
                        .hint(c->file_maps_unsupported()
                                  ? "this kernel cannot map by file (IOMMU_IOAS_MAP_FILE, "
                                    "Linux 6.13+), and only memory mapped by file can change "
                                    "process (IOMMU_IOAS_CHANGE_PROCESS)"
                                  : "only memory mapped by file (Container::map_file) can change "
                                    "process (IOMMU_IOAS_CHANGE_PROCESS): map it from its memfd"));
    if (auto ok = HandoverAccess::change_process(v); !ok)
        return fail(std::move(ok.error()).context(what));
    return {};
}

Result<HandoverTimes> hand_over(Vfio& v, int sock, std::span<const FileRegion> memory,
                                const std::function<void()>& quiesce,
                                std::chrono::milliseconds timeout) {
    std::lock_guard g(v.control_lock());
    if (auto ok = check_socket(sock); !ok)
        return fail(std::move(ok.error()));
    if (auto ok = can_hand_over(v); !ok)
        return fail(std::move(ok.error()));
    if (auto ok = check_regions(v, memory); !ok)
        return fail(std::move(ok.error()));
    auto state = v.export_shared();
    if (!state)
        return fail(std::move(state.error()).context("hand over VFIO state"));
    hc::Offer o;
    o.state = std::move(state->bytes);
    o.state_fds = static_cast<std::uint32_t>(state->fds.size());
    o.sender = static_cast<std::uint32_t>(::getpid());
    std::vector<int> fds = state->fds;
    for (const auto& r : memory) {
        o.regions.push_back({r.va, r.len, r.offset});
        fds.push_back(r.fd);
    }
    if (fds.size() > kMaxFds)
        return fail(E2BIG, "hand over VFIO state: " + std::to_string(fds.size()) +
                               " fds, one message carries at most " + std::to_string(kMaxFds));
    HandoverTimes t;
    // Nothing has changed yet: a failure to send is only an error.
    if (auto ok = send(sock, hc::encode_offer(o), fds); !ok)
        return fail(std::move(ok.error()).context("send the OFFER"));
    t.offered_ns = now_ns();

    auto note = receive_note(sock, timeout, "READY");
    if (!note)
        return fail(reclaimed(v, std::move(note.error()).hint("this process is still in charge")));
    if (note->kind != hc::Kind::ready) {
        // The new process's own error, hint included, on one line.
        std::string why = note->kind == hc::Kind::refused
                              ? note->text
                              : "it sent kind " + std::to_string(static_cast<int>(note->kind));
        for (auto at = why.find("\n  hint: "); at != std::string::npos; at = why.find("\n  hint: "))
            why.replace(at, 9, " (hint: ");
        if (why.find(" (hint: ") != std::string::npos)
            why += ")";
        return fail(reclaimed(v, Error(ECANCELED, "handover refused by the new process: " + why)
                                     .hint("this process is still in charge")));
    }
    t.ready_ns = now_ns();
    if (quiesce)
        quiesce();
    t.quiesced_ns = now_ns();
    if (auto ok = send_note(sock, hc::Kind::released); !ok)
        return fail(reclaimed(v, std::move(ok.error())
                                     .context("send RELEASED")
                                     .hint("the devices were quiesced but this process is still "
                                           "in charge: restart its driver")));
    t.released_ns = now_ns();
    HandoverAccess::let_go(v);
    return t;
}

Result<TakenOver> take_over(int sock, std::chrono::milliseconds timeout) {
    return take_over(sock, timeout, TakeOverStop::none);
}

Result<TakenOver> take_over(int sock, std::chrono::milliseconds timeout, TakeOverStop stop) {
    if (auto ok = check_socket(sock); !ok)
        return fail(std::move(ok.error()));
    auto m = receive(sock, timeout, "OFFER");
    if (!m)
        return fail(std::move(m.error()));
    auto offer = hc::decode_offer(m->bytes, m->fds.size());
    if (!offer)
        return fail(std::move(offer.error()));
    // Stopped as if this process died: the old one sees the socket close.
    auto die = [&](const char* where) {
        ::shutdown(sock, SHUT_RDWR);
        return fail(ECANCELED, std::string("take over: stopped ") + where + " (test)");
    };
    if (stop == TakeOverStop::after_offer)
        return die("after the OFFER");
    // Any failure from here is told to the old process, which stays in charge.
    auto refuse = [&](Error e) {
        (void)send_note(sock, hc::Kind::refused, e.message());
        return fail(std::move(e));
    };

    TakenOver t;
    std::vector<Fd> state_fds;
    for (std::size_t i = 0; i < m->fds.size(); ++i)
        (i < offer->state_fds ? state_fds : t.files).push_back(std::move(m->fds[i]));
    for (std::size_t i = 0; i < offer->regions.size(); ++i) {
        const auto& g = offer->regions[i];
        void* want = reinterpret_cast<void*>(g.va);
        auto map = map_memory(want, g.len, PROT_READ | PROT_WRITE,
                              MAP_SHARED | MAP_FIXED_NOREPLACE, t.files[i].get(),
                              static_cast<off_t>(g.offset), "handover region at " + hex(g.va));
        if (!map)
            return refuse(std::move(map.error().hint(
                "the new process must keep the old one's memory addresses free: something "
                "of its own (its loader, heap or a library) is there")));
        if (map->addr() != want)  // kernels before 4.17 take the flag as a hint
            return refuse(Error(EEXIST, "mmap handover region at " + hex(g.va) +
                                            ": the kernel placed it elsewhere"));
        t.memory.push_back(std::move(*map));
    }
    auto v = Vfio::import_shared(offer->state, std::move(state_fds));
    if (!v)
        return refuse(std::move(v.error()));
    if (auto ok = HandoverAccess::change_process(**v); !ok)
        return refuse(std::move(ok.error()).context("take over from process " +
                                                     std::to_string(offer->sender)));
    if (stop == TakeOverStop::after_change_process)
        return die("after IOMMU_IOAS_CHANGE_PROCESS");
    if (auto ok = send_note(sock, hc::Kind::ready); !ok)
        return fail(std::move(ok.error()).context("send READY"));
    t.ready_ns = now_ns();
    auto released = receive_note(sock, timeout, "RELEASED");
    if (!released)
        return fail(std::move(released.error()).hint("the old process is still in charge"));
    if (released->kind != hc::Kind::released)
        return fail(EPROTO, "take over: expected RELEASED, got kind " +
                                std::to_string(static_cast<int>(released->kind)));
    t.released_ns = now_ns();
    HandoverAccess::take_charge(**v, offer->sender);
    t.vfio = std::move(*v);
    return t;
}

}  // namespace vfiokit::vfio

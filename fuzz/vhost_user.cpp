// vhost-user messages (lib/vhost-user): a Session, the back end of one
// connection, fed the input as a stream of messages with fds (eventfds,
// a memfd as guest memory). Whatever the front end sends, the session
// ends with nothing left of it: no fd, no mapping.
//
// Input: records of [control byte][request byte][16-bit length][payload].
// Control bits 0-2: fds to attach, the first a 1 MiB memfd with bit 4;
// bit 3: NEED_REPLY; bit 5: the header declares a 16-bit size of its own
// (read next) instead of the payload's; bit 7: the bytes go out raw, with
// no header.
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "fuzz_util.hpp"
#include "test_util.hpp"
#include "vfiokit/eal/mp.hpp"
#include "vfiokit/vhost_user/session.hpp"

using namespace vfiokit;
using namespace vfiokit::vhost_user;

namespace {

constexpr const char* kMemName = "vhost-user-fuzz";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const bool quiet = fuzz::quiet_logs();
    (void)quiet;
    const int before = fuzz::open_fds();
    int sv[2];
    FUZZ_CHECK(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
    vfio::Fd front(sv[0]);
    {
        test::RecordingDevice dev;
        Session s(vfio::Fd(sv[1]), dev, Config{});
        fuzz::Input in(data, size);
        while (in.left() > 0) {
            const std::uint8_t ctl = in.u8();
            const std::uint8_t request = in.u8();
            const std::uint16_t len = in.u16();
            const std::uint16_t declared = (ctl & 0x20) != 0 ? in.u16() : len;
            const auto payload = in.bytes(len);
            std::vector<std::uint8_t> b;
            if ((ctl & 0x80) == 0) {
                Header h{request, kVersion | ((ctl & 8) != 0 ? kFlagNeedReply : 0u), declared};
                b.resize(sizeof h);
                std::memcpy(b.data(), &h, sizeof h);
            }
            b.insert(b.end(), payload.begin(), payload.end());
            if (b.empty())
                continue;
            std::vector<vfio::Fd> fds;
            std::vector<int> raw;
            for (int i = 0; i < (ctl & 7); ++i) {
                int fd = (ctl & 0x10) != 0 && i == 0 ? ::memfd_create(kMemName, MFD_CLOEXEC)
                                                     : ::eventfd(0, EFD_CLOEXEC);
                if ((ctl & 0x10) != 0 && i == 0)
                    FUZZ_CHECK(::ftruncate(fd, 1 << 20) == 0, "ftruncate");
                fds.emplace_back(fd);
                raw.push_back(fd);
            }
            iovec iov{b.data(), b.size()};
            // A full socket buffer or a session that hung up ends the input.
            if (!eal::mp::send_with_fds(front.get(), {&iov, 1}, raw, MSG_DONTWAIT))
                break;
        }
        // The end of the stream makes a partial message fail at once.
        ::shutdown(front.get(), SHUT_WR);
        for (int polls = 0; polls < 10000 && s.connected(); ++polls)
            (void)s.poll(1000);
        FUZZ_CHECK(!s.connected(), "the session outlived its front end");
    }
    front.reset();
    FUZZ_CHECK(test::mappings_named(kMemName) == 0, "guest memory still mapped");
    const int after = fuzz::open_fds();
    FUZZ_CHECK(after == before, "%d fds open before, %d after", before, after);
    return 0;
}

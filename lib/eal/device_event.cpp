#include "vfiokit/eal/device_event.hpp"

#include <linux/netlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace vfiokit::eal {

std::string_view to_string(DeviceEventType t) {
    switch (t) {
    case DeviceEventType::add: return "add";
    case DeviceEventType::remove: return "remove";
    case DeviceEventType::removed: return "removed";
    }
    return "?";
}

std::optional<Uevent> parse_uevent(std::span<const std::byte> msg) {
    const std::string_view all(reinterpret_cast<const char*>(msg.data()), msg.size());
    // The header is the first NUL-terminated string.
    const std::size_t end = all.find('\0');
    if (end == std::string_view::npos)
        return std::nullopt;
    const std::string_view header = all.substr(0, end);
    const std::size_t at = header.find('@');
    // udev re-broadcasts on another group with a binary "libudev" header;
    // it has no '@' and is refused here too.
    if (at == std::string_view::npos || at == 0)
        return std::nullopt;
    Uevent u;
    std::size_t pos = end + 1;
    while (pos < all.size()) {
        std::size_t stop = all.find('\0', pos);
        if (stop == std::string_view::npos)
            stop = all.size();
        const std::string_view kv = all.substr(pos, stop - pos);
        pos = stop + 1;
        const std::size_t eq = kv.find('=');
        if (eq == std::string_view::npos)
            continue;
        const std::string_view k = kv.substr(0, eq), v = kv.substr(eq + 1);
        if (k == "ACTION")
            u.action = v;
        else if (k == "DEVPATH")
            u.devpath = v;
        else if (k == "SUBSYSTEM")
            u.subsystem = v;
        else if (k == "DRIVER")
            u.driver = v;
        else if (k == "PCI_SLOT_NAME")
            u.pci_slot = v;
        else if (k == "PCI_ID")
            u.pci_id = v;
        else if (k == "SEQNUM")
            std::from_chars(v.data(), v.data() + v.size(), u.seqnum);
    }
    if (u.action.empty() || header.substr(0, at) != u.action)
        return std::nullopt;
    if (u.devpath.empty())
        u.devpath = header.substr(at + 1);
    return u;
}

std::optional<DeviceEvent> pci_device_event(const Uevent& u) {
    if (u.subsystem != "pci")
        return std::nullopt;
    DeviceEvent e;
    if (u.action == "add")
        e.type = DeviceEventType::add;
    else if (u.action == "remove")
        e.type = DeviceEventType::removed;
    else
        return std::nullopt;
    auto a = PciAddress::parse(u.pci_slot);
    if (!a)
        return std::nullopt;
    e.bus = "pci";
    e.addr = *a;
    e.driver = u.driver;
    // PCI_ID=VVVV:DDDD (hex, upper case).
    if (u.pci_id.size() == 9 && u.pci_id[4] == ':') {
        const char* s = u.pci_id.data();
        std::from_chars(s, s + 4, e.vendor, 16);
        std::from_chars(s + 5, s + 9, e.device, 16);
    }
    return e;
}

Result<UeventMonitor> UeventMonitor::open() {
    const int s = ::socket(AF_NETLINK, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                           NETLINK_KOBJECT_UEVENT);
    if (s < 0)
        return fail(Error(errno, "socket(AF_NETLINK, NETLINK_KOBJECT_UEVENT)")
                        .hint("the device monitor needs netlink (CONFIG_NET)"));
    vfio::Fd fd(s);
    // Group 1: the kernel's own broadcast (lib/kobject_uevent.c); udev's
    // re-broadcast is group 2. Port id 0: the kernel picks ours.
    sockaddr_nl sa{};
    sa.nl_family = AF_NETLINK;
    sa.nl_groups = 1;
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0)
        return fail(Error(errno, "bind uevent socket to the kernel's group"));
    // A burst of uevents (a rescan, many VFs) should not overflow the
    // default receive buffer between two polls.
    const int size = 1 << 20;
    (void)::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    return UeventMonitor(std::move(fd));
}

Result<std::vector<Uevent>> UeventMonitor::read_all() {
    std::vector<Uevent> out;
    std::byte buf[8192];
    for (;;) {
        sockaddr_nl from{};
        iovec iov{buf, sizeof buf};
        msghdr m{};
        m.msg_name = &from;
        m.msg_namelen = sizeof from;
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        const ssize_t n = ::recvmsg(fd_.get(), &m, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return out;
            if (errno == ENOBUFS && out.empty())
                return fail(Error(ENOBUFS, "read uevents: the kernel dropped some (buffer full)")
                                .hint("poll device events more often"));
            if (errno == ENOBUFS)
                return out;
            return fail(Error(errno, "read uevents"));
        }
        // Only the kernel (port id 0) speaks for devices; a truncated
        // message is not trusted either.
        if (from.nl_pid != 0 || (m.msg_flags & MSG_TRUNC) != 0)
            continue;
        if (auto u = parse_uevent({buf, static_cast<std::size_t>(n)}))
            out.push_back(std::move(*u));
    }
}

}  // namespace vfiokit::eal

// vfiokit-telemetry: a client of DPDK's v2 telemetry protocol, for places
// without Python (most lab guests): what DPDK's dpdk-telemetry.py does,
// with its options, non-interactively. It reads a vfiokit process or a
// DPDK one alike (doc/telemetry.md).
//
//   vfiokit-telemetry -f PREFIX /ethdev/stats,0 /ethdev/link_status,0
//   echo /ethdev/list | vfiokit-telemetry -f PREFIX
#include <glob.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "vfiokit/eal/vfio/syscalls.hpp"
#include "vfiokit/telemetry/telemetry.hpp"

namespace {

using vfiokit::telemetry::dpdk_runtime_dir;
using vfiokit::telemetry::kSocketName;

int usage(const char* argv0, FILE* to) {
    std::fprintf(
        to,
        "usage: %s [-f PREFIX] [-i N] [--path SOCKET] [--timeout MS] [--hello] [COMMAND...]\n"
        "       %s -l\n"
        "Sends telemetry commands to a running vfiokit or DPDK process over its\n"
        "telemetry socket (DPDK's v2 protocol) and prints each reply, one JSON\n"
        "document a line. Commands come from the arguments, else from stdin, one a\n"
        "line (lines not starting with '/' are skipped, as dpdk-telemetry.py does).\n"
        "  -f, --file-prefix PREFIX  the process's --file-prefix (default vfiokit;\n"
        "                            DPDK's processes default to rte)\n"
        "  -i, --instance N          the N-th process of that prefix (socket\n"
        "                            dpdk_telemetry.v2:N; default 0)\n"
        "  -l, --list                list the prefixes that have telemetry sockets\n"
        "  --path SOCKET             connect to this socket instead\n"
        "  --timeout MS              how long to wait for each reply (default 5000)\n"
        "  --hello                   print the server's hello first\n"
        "  -h, --help                this text\n"
        "The socket is <runtime dir>/dpdk/PREFIX/dpdk_telemetry.v2, the runtime dir\n"
        "being $RUNTIME_DIRECTORY, else /var/run for root, else $XDG_RUNTIME_DIR,\n"
        "else /tmp (DPDK's rules). Commands: '/' lists them, '/help,CMD' explains one.\n"
        "Exit status: 0 every reply read and none reported an error; 1 no connection or\n"
        "a reply missing; 2 usage; 3 a reply carried an error.\n",
        argv0, argv0);
    return to == stdout ? 0 : 2;
}

int list_prefixes() {
    const std::string base = dpdk_runtime_dir("");
    glob_t g{};
    const std::string pattern = base + "*/" + std::string(kSocketName) + "*";
    std::set<std::string> prefixes;
    if (::glob(pattern.c_str(), 0, nullptr, &g) == 0)
        for (std::size_t i = 0; i < g.gl_pathc; ++i) {
            std::string p = g.gl_pathv[i];
            p = p.substr(base.size());
            prefixes.insert(p.substr(0, p.find('/')) + "  (" + std::string(g.gl_pathv[i]) + ")");
        }
    ::globfree(&g);
    if (prefixes.empty()) {
        std::cout << "no telemetry sockets under " << base << "\n";
        return 1;
    }
    for (const auto& p : prefixes)
        std::cout << p << "\n";
    return 0;
}

// The next message, or "" on EOF / timeout (with why in `err`).
std::string receive(int fd, int timeout_ms, std::string& err) {
    pollfd p{fd, POLLIN, 0};
    const int r = ::poll(&p, 1, timeout_ms);
    if (r <= 0) {
        err = r == 0 ? "no reply within " + std::to_string(timeout_ms) + " ms" : "poll failed";
        return {};
    }
    std::string buf(vfiokit::telemetry::kMaxOutput + 1, '\0');
    const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n <= 0) {
        err = "the process closed the connection";
        return {};
    }
    buf.resize(static_cast<std::size_t>(n));
    return buf;
}

bool is_error(std::string_view reply) {
    return reply.starts_with("{\"error\"") || reply.find("\":null,\"error\":\"") != std::string::npos;
}

}  // namespace

int main(int argc, char** argv) {
    std::string prefix = "vfiokit", path;
    unsigned instance = 0;
    int timeout_ms = 5000;
    bool hello = false;
    std::vector<std::string> commands;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
        const char* v = nullptr;
        if (a == "-h" || a == "--help")
            return usage(argv[0], stdout);
        if (a == "-l" || a == "--list")
            return list_prefixes();
        if (a == "--hello") {
            hello = true;
        } else if ((a == "-f" || a == "--file-prefix") && (v = value())) {
            prefix = v;
        } else if ((a == "-i" || a == "--instance") && (v = value())) {
            instance = static_cast<unsigned>(std::strtoul(v, nullptr, 10));
        } else if (a == "--path" && (v = value())) {
            path = v;
        } else if (a == "--timeout" && (v = value())) {
            timeout_ms = std::atoi(v);
            if (timeout_ms <= 0)
                return usage(argv[0], stderr);
        } else if (a.starts_with("/")) {
            commands.emplace_back(a);
        } else {
            std::fprintf(stderr, "%s: unknown or incomplete option '%s'\n", argv[0], argv[i]);
            return usage(argv[0], stderr);
        }
    }
    if (path.empty()) {
        path = dpdk_runtime_dir(prefix) + "/" + std::string(kSocketName);
        if (instance > 0)
            path += ":" + std::to_string(instance);
    }
    vfiokit::vfio::Fd s(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (!s || path.size() >= sizeof addr.sun_path) {
        std::fprintf(stderr, "vfiokit-telemetry: cannot make a socket for %s\n", path.c_str());
        return 1;
    }
    path.copy(addr.sun_path, sizeof addr.sun_path - 1);
    if (::connect(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        std::fprintf(stderr,
                     "vfiokit-telemetry: cannot connect to %s: %s\n"
                     "  hint: is a process with --file-prefix %s running with telemetry? "
                     "(-l lists the prefixes)\n",
                     path.c_str(), std::strerror(errno), prefix.c_str());
        return 1;
    }
    std::string err;
    const std::string h = receive(s.get(), timeout_ms, err);
    if (h.empty()) {
        std::fprintf(stderr, "vfiokit-telemetry: %s: no hello: %s\n", path.c_str(), err.c_str());
        return 1;
    }
    if (is_error(h)) {  // refused: too many clients, another uid
        std::fprintf(stderr, "vfiokit-telemetry: %s refused the connection: %s\n", path.c_str(),
                     h.c_str());
        return 1;
    }
    if (hello)
        std::cout << h << "\n";
    bool from_stdin = commands.empty();
    int rc = 0;
    for (std::size_t k = 0;; ++k) {
        std::string cmd;
        if (!from_stdin) {
            if (k >= commands.size())
                break;
            cmd = commands[k];
        } else {
            if (!std::getline(std::cin, cmd))
                break;
            while (!cmd.empty() && (cmd.back() == ' ' || cmd.back() == '\r'))
                cmd.pop_back();
            if (cmd == "quit")
                break;
            if (!cmd.starts_with("/"))
                continue;
        }
        if (::send(s.get(), cmd.data(), cmd.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(cmd.size())) {
            std::fprintf(stderr, "vfiokit-telemetry: sending '%s': %s\n", cmd.c_str(),
                         std::strerror(errno));
            return 1;
        }
        const std::string r = receive(s.get(), timeout_ms, err);
        if (r.empty()) {
            std::fprintf(stderr, "vfiokit-telemetry: '%s': %s\n", cmd.c_str(), err.c_str());
            return 1;
        }
        std::cout << r << "\n" << std::flush;
        if (is_error(r))
            rc = 3;
    }
    return rc;
}

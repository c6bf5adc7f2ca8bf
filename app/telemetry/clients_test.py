#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""DPDK's telemetry client and vfiokit's, against a vfiokit process.

    clients_test.py HOST_APP VFIOKIT_TELEMETRY --dpdk-telemetry DPDK_TELEMETRY_PY
                    --dpdk-testpmd DPDK_TESTPMD

Starts HOST_APP (telemetry_host_app: two net_ring ports that moved 100
frames, an mbuf pool, lcores, EAL memory) with its socket in a private
runtime directory (RUNTIME_DIRECTORY, which DPDK's client honours as
DPDK's EAL does). Then Debian's dpdk-telemetry.py, unchanged, connects
with -f PREFIX and is given every command on stdin, as a user pipes them;
each reply is checked against what the app did and says. vfiokit-telemetry
is given the same commands and must read the same values. A second app
with the same prefix is instance 1 (dpdk-telemetry.py -i 1), and -l lists
the prefix. The session is printed, as dpdk-telemetry.py printed it.

Then DPDK's own server: Debian's dpdk-testpmd (no huge pages, no PCI, a
net_null port) serves its telemetry; vfiokit-telemetry must read it as
dpdk-telemetry.py does, and every key vfiokit's replies share with DPDK's
(/ethdev/info, /ethdev/stats, /ethdev/link_status, /mempool/info, the
hello) must hold the same JSON type there, and vfiokit may add only the
keys doc/telemetry.md names as its own.
"""

import argparse
import json
import os
import select
import subprocess
import sys
import tempfile
import time

FRAMES = 100
PREFIX = "vfiokit-clients-test"

COMMANDS = [
    "/", "/info", "/help,/ethdev/stats", "/eal/params", "/eal/app_params", "/eal/lcore/list",
    "/eal/lcore/info,0", "/heap/info", "/ethdev/list", "/ethdev/info,0", "/ethdev/stats,0",
    "/ethdev/stats,1", "/ethdev/xstats,1", "/ethdev/xstats,1,hide_zero=true",
    "/ethdev/link_status,0", "/mempool/list", "/mempool/info,mb_pool_0", "/vfio/mode",
    "/vfio/containers", "/vfio/devices", "/vfio/mappings,0", "/ethdev/stats,7", "/nope",
]
# Keys vfiokit adds to DPDK's replies (doc/telemetry.md).
VFIOKIT_KEYS = {
    "/ethdev/info": {"driver_name", "port_state", "max_rx_queues", "max_tx_queues", "min_mtu",
                     "max_mtu"},
    # common_pool_count and total_cache_count: DPDK 22.11 has no such keys;
    # later DPDK versions report them under these names.
    "/mempool/info": {"data_room_size", "in_use_count", "common_pool_count",
                      "total_cache_count"},
}
SHAPE_COMMANDS = ["/info", "/ethdev/info,0", "/ethdev/stats,0", "/ethdev/link_status,0",
                  "/mempool/info,mb_pool_0", "/eal/lcore/list", "/ethdev/list"]
DPDK_PREFIX = "vfiokit-clients-test-dpdk"

EVERY_COMMAND = {
    "/", "/info", "/help", "/eal/params", "/eal/app_params", "/eal/lcore/list",
    "/eal/lcore/info", "/heap/info", "/ethdev/list", "/ethdev/info", "/ethdev/stats",
    "/ethdev/xstats", "/ethdev/link_status", "/mempool/list", "/mempool/info", "/vfio/mode",
    "/vfio/containers", "/vfio/devices", "/vfio/mappings",
}

failures = []


def check(what, ok, got=None):
    print(("ok   " if ok else "FAIL ") + what + ("" if ok or got is None else f": got {got!r}"))
    if not ok:
        failures.append(what)


def start_app(app, env, argv):
    p = subprocess.Popen([app] + argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env, text=True)
    ready = p.stdout.readline().split()
    moved = p.stdout.readline().strip()
    if len(ready) != 2 or ready[0] != "ready":
        p.kill()
        sys.exit(f"{app} did not start: {p.stderr.read().strip()}")
    return p, ready[1], moved


def stop_app(p):
    p.stdin.close()
    rc = p.wait(timeout=30)
    if rc != 0:
        failures.append(f"app exited {rc}: {p.stderr.read().strip()}")


def run_dpdk_client(tool, env, extra, commands, prefix=PREFIX):
    r = subprocess.run([tool, "-f", prefix] + extra, input="\n".join(commands) + "\n",
                       capture_output=True, text=True, env=env, timeout=60)
    if r.returncode != 0:
        failures.append(f"{tool} exited {r.returncode}: {r.stderr.strip()}")
    return r.stdout.splitlines()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host_app")
    ap.add_argument("vfiokit_telemetry")
    ap.add_argument("--dpdk-telemetry")
    ap.add_argument("--dpdk-testpmd")
    args = ap.parse_args()
    if not args.dpdk_telemetry or not args.dpdk_testpmd:
        sys.exit("no --dpdk-telemetry or --dpdk-testpmd: Debian's dpdk-telemetry.py (package "
                 "dpdk) or dpdk-testpmd (dpdk-dev) is missing; run devtools/bootstrap.sh")
    with tempfile.TemporaryDirectory(prefix="vfiokit-telemetry-") as run:
        env = dict(os.environ, RUNTIME_DIRECTORY=run)
        argv = ["-l", "0", "--file-prefix", PREFIX, "--", "--tx", str(FRAMES)]
        app, sock, moved = start_app(args.host_app, env, argv)
        try:
            check(f"the socket is DPDK's path for the prefix ({sock})",
                  sock == os.path.join(run, "dpdk", PREFIX, "dpdk_telemetry.v2"))
            check(f"the app moved {FRAMES} frames ({moved})",
                  moved == f"port 0 sent {FRAMES} frames of 64 bytes to port 1, which received {FRAMES}")
            lines = run_dpdk_client(args.dpdk_telemetry, env, [], COMMANDS)
            print("---- dpdk-telemetry.py -f " + PREFIX + " (commands on stdin)")
            for cmd, line in zip(COMMANDS, lines):
                print(f"--> {cmd}\n{line}")
            print("----")
            check(f"dpdk-telemetry.py printed one reply per command ({len(lines)} of {len(COMMANDS)})",
                  len(lines) == len(COMMANDS))
            replies = {}
            for cmd, line in zip(COMMANDS, lines):
                try:
                    replies[cmd] = json.loads(line)
                except ValueError:
                    check(f"{cmd}: a JSON reply", False, line)
            verify(replies, app.pid)

            ours = subprocess.run([args.vfiokit_telemetry, "-f", PREFIX] + COMMANDS,
                                  capture_output=True, text=True, env=env, timeout=60)
            check("vfiokit-telemetry exits 3 (replies with errors were among them)",
                  ours.returncode == 3, ours.returncode)
            mine = [json.loads(x) for x in ours.stdout.splitlines()]
            same = [c for c, m in zip(COMMANDS, mine) if replies.get(c) != m]
            check("vfiokit-telemetry read the same replies as dpdk-telemetry.py", not same, same)

            # A second process of the prefix is instance 1, as in DPDK.
            app2, sock2, _ = start_app(args.host_app, env, argv)
            try:
                check("the second process's socket is dpdk_telemetry.v2:1", sock2 == sock + ":1", sock2)
                info = run_dpdk_client(args.dpdk_telemetry, env, ["-i", "1"], ["/info"])
                pid = json.loads(info[0])["/info"]["pid"] if info else None
                check(f"dpdk-telemetry.py -i 1 reaches it (pid {app2.pid})", pid == app2.pid, pid)
                listed = subprocess.run([args.dpdk_telemetry, "-l"], capture_output=True,
                                        text=True, env=env, timeout=60).stdout
                check(f"dpdk-telemetry.py -l lists {PREFIX}", PREFIX in listed.split(), listed)
            finally:
                stop_app(app2)
        finally:
            stop_app(app)
        check("the socket is gone once the app exits", not os.path.exists(sock))
        against_dpdk(args, env, run, replies)
    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr)
        return 1
    return 0


def against_dpdk(args, env, run, ours):
    """vfiokit-telemetry against DPDK's server, and vfiokit's shapes against DPDK's."""
    # Two lcores on CPU 0: testpmd wants a forwarding lcore besides the main
    # one, and this host may have a single CPU.
    cmd = [args.dpdk_testpmd, "--lcores", "0@0,1@0", "--no-huge", "-m", "256", "--no-pci",
           "--vdev", "net_null0", "--file-prefix", DPDK_PREFIX, "--", "-i",
           "--total-num-mbufs=2048"]
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, env=env, text=True)
    sock = os.path.join(run, "dpdk", DPDK_PREFIX, "dpdk_telemetry.v2")
    try:
        # Its socket is up from rte_eal_init on; its pool and port once the
        # prompt shows.
        seen, deadline = "", time.monotonic() + 60
        while "testpmd> " not in seen and time.monotonic() < deadline and p.poll() is None:
            if select.select([p.stdout], [], [], 1)[0]:
                seen += os.read(p.stdout.fileno(), 4096).decode(errors="replace")
        if "testpmd> " not in seen or not os.path.exists(sock):
            p.kill()
            check("dpdk-testpmd started and serves its telemetry socket", False, seen[-2000:])
            return
        theirs_lines = run_dpdk_client(args.dpdk_telemetry, env, [], SHAPE_COMMANDS,
                                       prefix=DPDK_PREFIX)
        theirs = {c: json.loads(l) for c, l in zip(SHAPE_COMMANDS, theirs_lines)}
        mine = subprocess.run([args.vfiokit_telemetry, "-f", DPDK_PREFIX, "--hello"]
                              + SHAPE_COMMANDS, capture_output=True, text=True, env=env,
                              timeout=60)
        lines = mine.stdout.splitlines()
        hello = json.loads(lines[0]) if lines else {}
        check("vfiokit-telemetry reads DPDK's hello (version, pid, max_output_len)",
              set(hello) == {"version", "pid", "max_output_len"}
              and str(hello.get("version")).startswith("DPDK ") and hello.get("pid") == p.pid,
              hello)
        got = {c: json.loads(l) for c, l in zip(SHAPE_COMMANDS, lines[1:])}
        check("vfiokit-telemetry reads DPDK's testpmd as dpdk-telemetry.py does",
              mine.returncode == 0 and got == theirs, (mine.returncode, got, theirs))
        print("---- dpdk-telemetry.py -f " + DPDK_PREFIX + " (DPDK's testpmd, net_null0)")
        for c in SHAPE_COMMANDS:
            print(f"--> {c}\n{json.dumps(theirs.get(c))}")
        print("----")
        hello_ours = ours.get("/info", {}).get("/info", {})
        check("the hello's keys and types are DPDK's",
              {k: type(v) for k, v in hello_ours.items()} == {k: type(v) for k, v in hello.items()},
              hello_ours)
        for c in SHAPE_COMMANDS[1:]:
            name = c.split(",")[0]
            o, t = ours.get(c, {}).get(name), theirs.get(c, {}).get(name)
            if t is None:
                print(f"(DPDK 22.11 has no {name}: nothing to compare)")
                continue
            if isinstance(o, dict) and isinstance(t, dict):
                extra = set(o) - set(t) - VFIOKIT_KEYS.get(name, set())
                differ = [k for k in set(o) & set(t) if type(o[k]) is not type(t[k])]
                check(f"{name}: vfiokit's keys are DPDK's (or its own), with DPDK's types",
                      not extra and not differ, {"not DPDK's": sorted(extra),
                                                 "other type": sorted(differ)})
            else:
                check(f"{name}: the same kind of value as DPDK's",
                      type(o) is type(t) and (not isinstance(o, list) or
                                              {type(x) for x in o} <= {type(x) for x in t}),
                      (o, t))
    finally:
        if p.poll() is None:
            p.stdin.write("quit\n")
            p.stdin.close()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


def verify(r, pid):
    def val(cmd):
        return r.get(cmd, {}).get(cmd.split(",")[0])

    cmds = val("/")
    check("/ lists every command", isinstance(cmds, list) and set(cmds) == EVERY_COMMAND, cmds)
    info = val("/info")
    check("/info: version, pid, max_output_len",
          info == {"version": info.get("version") if isinstance(info, dict) else None,
                   "pid": pid, "max_output_len": 65536}
          and str(info.get("version")).startswith("vfiokit "), info)
    check("/help,/ethdev/stats", val("/help,/ethdev/stats") ==
          {"/ethdev/stats": "Returns the common stats for a port. Parameters: int port_id"})
    params = val("/eal/params")
    check("/eal/params: argv[0] and the EAL options",
          isinstance(params, list) and params[1:] == ["-l", "0", "--file-prefix", PREFIX], params)
    check("/eal/app_params", val("/eal/app_params") == ["--tx", str(FRAMES)])
    check("/eal/lcore/list", val("/eal/lcore/list") == [0], val("/eal/lcore/list"))
    li = val("/eal/lcore/info,0") or {}
    check("/eal/lcore/info,0 on CPU 0", li.get("cpuset") == [0] and li.get("main") is True, li)
    heap = val("/heap/info") or {}
    check("/heap/info: 4 KiB pages, a heap in use",
          heap.get("page_size") == 4096 and heap.get("heaps", [{}])[0].get("bytes_in_use", 0) > 0,
          heap)
    check("/ethdev/list", val("/ethdev/list") == [0, 1])
    inf = val("/ethdev/info,0") or {}
    check("/ethdev/info,0", inf.get("driver_name") == "net_ring" and inf.get("port_id") == 0
          and inf.get("dev_started") == 1 and inf.get("nb_rx_queues") == 1, inf)
    s0, s1 = val("/ethdev/stats,0") or {}, val("/ethdev/stats,1") or {}
    check(f"/ethdev/stats,0: opackets {FRAMES}, obytes {64 * FRAMES}",
          s0.get("opackets") == FRAMES and s0.get("obytes") == 64 * FRAMES
          and s0.get("ipackets") == 0, s0)
    check(f"/ethdev/stats,1: ipackets {FRAMES}, ibytes {64 * FRAMES}",
          s1.get("ipackets") == FRAMES and s1.get("ibytes") == 64 * FRAMES
          and s1.get("q_ipackets", [None])[0] == FRAMES and len(s1.get("q_ipackets")) == 16, s1)
    x = val("/ethdev/xstats,1") or {}
    check("/ethdev/xstats,1: rx_good_packets", x.get("rx_good_packets") == FRAMES, x)
    xz = val("/ethdev/xstats,1,hide_zero=true") or {}
    check("/ethdev/xstats,1,hide_zero=true: no zeros",
          xz and all(v != 0 for v in xz.values()) and set(xz) < set(x), xz)
    check("/ethdev/link_status,0", val("/ethdev/link_status,0") ==
          {"status": "UP", "speed": 10000, "duplex": "full-duplex"})
    check("/mempool/list", val("/mempool/list") == ["mb_pool_0"])
    mp = val("/mempool/info,mb_pool_0") or {}
    check("/mempool/info,mb_pool_0: size, cache, counts that add up",
          mp.get("size") == 2048 and mp.get("cache_size") == 32
          and mp.get("common_pool_count", 0) + mp.get("total_cache_count", 0)
          + mp.get("in_use_count", 0) == 2048, mp)
    for cmd in ("/vfio/mode", "/vfio/containers", "/vfio/devices", "/vfio/mappings,0"):
        rep = r.get(cmd, {})
        check(f"{cmd}: null with the reason (no VFIO on this host)",
              rep.get(cmd.split(",")[0], 1) is None and "no VFIO" in rep.get("error", ""), rep)
    bad = r.get("/ethdev/stats,7", {})
    check("/ethdev/stats,7: null, no such port",
          bad.get("/ethdev/stats", 1) is None and "no such port" in bad.get("error", ""), bad)
    check("/nope: null, as DPDK answers an unknown command", r.get("/nope", {}).get("/nope", 1) is None)


if __name__ == "__main__":
    sys.exit(main())

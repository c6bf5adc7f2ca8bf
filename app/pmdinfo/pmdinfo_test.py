#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""vfiokit-pmdinfo against DPDK's dpdk-pmdinfo.py and the EAL's registry.

    pmdinfo_test.py --tool VFIOKIT_PMDINFO --dpdk DPDK_PMDINFO --binary TESTPMD
                    --match PMDINFO_MATCH --cxx CXX DECL.pmd.json...

- Debian's dpdk-pmdinfo.py lists every declared driver in the binary, and
  vfiokit-pmdinfo --json prints the same document (the same drivers, the
  same fields); the human form names each with its ids.
- --pci for the ids of the lab's devices names the driver the C++
  registry's own match picks (pmdinfo_match, linked with the same
  drivers), or none when it picks none (exit 3).
- --pci with an address reads a sysfs tree: the ids, and the kernel
  driver it would have to leave for vfio-pci.
- A driver in a shared library is found through the executable's
  DT_NEEDED and RUNPATH (vfiokit-pmdinfo), where dpdk-pmdinfo.py follows
  only librte_* libraries and finds it only when given the library.
- Bad input: not an ELF file (exit 1), a malformed --pci (exit 2).
"""

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile

# The lab's device models and their PCI ids (QEMU's; doc/lab.md).
LAB_DEVICES = {
    "e1000": "8086:100e", "e1000e": "8086:10d3", "igb": "8086:10c9", "igbvf": "8086:10ca",
    "edu": "1234:11e8", "virtio-net-pci (modern)": "1af4:1041", "ivshmem-plain": "1af4:1110",
}

failures = []


def check(what, ok, got=None):
    print(("ok   " if ok else "FAIL ") + what + ("" if ok or got is None else f": got {got!r}"))
    if not ok:
        failures.append(what)


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)


def by_name(docs):
    return sorted(docs, key=lambda d: d["name"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    ap.add_argument("--dpdk")
    ap.add_argument("--binary", required=True)
    ap.add_argument("--match", required=True)
    ap.add_argument("--cxx", required=True)
    ap.add_argument("decls", nargs="+")
    a = ap.parse_args()
    if not a.dpdk:
        sys.exit("no --dpdk: Debian's dpdk-pmdinfo.py (package dpdk) is missing; "
                 "run devtools/bootstrap.sh")
    declared = {}
    for p in a.decls:
        with open(p) as f:
            d = json.load(f)
        declared[d["name"]] = d

    # DPDK's reader and ours, on the same binary.
    dpdk = run([a.dpdk, a.binary])
    check(f"dpdk-pmdinfo.py {os.path.basename(a.binary)} exits 0", dpdk.returncode == 0,
          dpdk.stderr)
    theirs = json.loads(dpdk.stdout or "[]")
    names = {d["name"] for d in theirs}
    print(f"dpdk-pmdinfo.py lists: {sorted(names)}")
    check(f"dpdk-pmdinfo.py lists every declared driver {sorted(declared)}",
          set(declared) <= names, sorted(names))
    for name, d in declared.items():
        got = next((x for x in theirs if x["name"] == name), {})
        want = [{k: f"{int(e[k], 16):04x}" for k in ("vendor", "device") if k in e}
                for e in d["pci_ids"]]
        check(f"{name}: its PCI ids {want}", got.get("pci_ids") == want, got.get("pci_ids"))
    ours = run([a.tool, "--json", a.binary])
    check("vfiokit-pmdinfo --json exits 0", ours.returncode == 0, ours.stderr)
    mine = json.loads(ours.stdout or "[]")
    check("vfiokit-pmdinfo --json is dpdk-pmdinfo.py's document", by_name(mine) == by_name(theirs),
          mine)
    text = run([a.tool, a.binary])
    print(text.stdout, end="")
    for name, d in declared.items():
        ids = [f"{int(e['vendor'], 16):04x}:{int(e['device'], 16):04x}" for e in d["pci_ids"]]
        line = next((l for l in text.stdout.splitlines() if l.split()[:1] == [name]), None)
        check(f"human form: a line for {name}", line is not None)
        check(f"human form: {name}'s ids {ids}", all(i in text.stdout for i in ids))

    # --pci on the lab's devices, against the registry's own match.
    reg = run([a.match] + list(LAB_DEVICES.values()))
    expect = dict(l.split() for l in reg.stdout.splitlines())
    check("pmdinfo_match answered for every device", set(expect) == set(LAB_DEVICES.values()),
          reg.stdout + reg.stderr)
    for model, ids in LAB_DEVICES.items():
        r = run([a.tool, "--json", "--pci", ids, a.binary])
        doc = json.loads(r.stdout) if r.stdout else {}
        takers = [t["name"] for t in doc.get("drivers", [])]
        want = expect.get(ids)
        if want == "none":
            check(f"--pci {ids} ({model}): no driver, exit 3, as the registry says",
                  takers == [] and r.returncode == 3, (takers, r.returncode))
        else:
            check(f"--pci {ids} ({model}): {want}, as the registry says",
                  takers == [want] and r.returncode == 0, (takers, r.returncode))

    with tempfile.TemporaryDirectory(prefix="vfiokit-pmdinfo-") as tmp:
        # A fake sysfs: an e1000 on the kernel's driver, an e1000e on vfio-pci.
        for bdf, ids, drv in (("0000:00:05.0", ("0x8086", "0x100e", "0x1af4", "0x1100"), "e1000"),
                              ("0000:00:08.0", ("0x8086", "0x10d3", "0x1af4", "0x1100"),
                               "vfio-pci")):
            d = os.path.join(tmp, "sys/bus/pci/devices", bdf)
            os.makedirs(d)
            for name, v in zip(("vendor", "device", "subsystem_vendor", "subsystem_device"), ids):
                with open(os.path.join(d, name), "w") as f:
                    f.write(v + "\n")
            os.makedirs(os.path.join(tmp, "sys/bus/pci/drivers", drv), exist_ok=True)
            os.symlink(f"../../../bus/pci/drivers/{drv}", os.path.join(d, "driver"))
        em = expect.get("8086:100e")
        r = run([a.tool, "--sysroot", tmp, "--pci", "00:05.0", a.binary])
        print(r.stdout, end="")
        check(f"--pci 00:05.0 (sysfs): {em} would take it", f"{em} would take it" in r.stdout,
              r.stdout)
        check("--pci 00:05.0: says to bind it to vfio-pci, away from e1000",
              "must be bound to vfio-pci first" in r.stdout and "from e1000" in r.stdout, r.stdout)
        r = run([a.tool, "--sysroot", tmp, "--pci", "0000:00:08.0", a.binary])
        print(r.stdout, end="")
        check("--pci 0000:00:08.0 (on vfio-pci): no binding advice",
              "would take it" in r.stdout and "must be bound" not in r.stdout, r.stdout)
        r = run([a.tool, "--sysroot", tmp, "--pci", "0000:00:09.0", a.binary])
        check("--pci of a missing device: exit 1, says so",
              r.returncode == 1 and "no such PCI device" in r.stderr, r.stderr)

        # A driver in a shared library, found through DT_NEEDED + RUNPATH.
        info = {"name": "net_libtest", "params": "", "kmod": "vfio-pci",
                "pci_ids": [[0x1234, 0x5678, 0xffff, 0xffff]]}
        src = os.path.join(tmp, "lib.cpp")
        with open(src, "w") as f:
            f.write('extern const char pmd_info_libtest[];\n'
                    '[[gnu::used]] const char pmd_info_libtest[] = "\\0PMD_INFO_STRING= ' +
                    json.dumps(info).replace('"', '\\"') + '";\n'
                    'int libtest_answer() { return 42; }\n')
        with open(os.path.join(tmp, "main.cpp"), "w") as f:
            f.write("int libtest_answer();\nint main() { return libtest_answer() == 42 ? 0 : 1; }\n")
        lib = os.path.join(tmp, "libvfiokit_libtest.so")
        exe = os.path.join(tmp, "uses_lib")
        b1 = run(shlex.split(a.cxx) + ["-shared", "-fPIC", "-o", lib, src])
        b2 = run(shlex.split(a.cxx) + ["-o", exe, os.path.join(tmp, "main.cpp"), "-L" + tmp,
                  "-lvfiokit_libtest", "-Wl,--enable-new-dtags,-rpath,$ORIGIN"])
        check("built a library with a driver and a program that loads it",
              b1.returncode == 0 and b2.returncode == 0 and run([exe]).returncode == 0,
              b1.stderr + b2.stderr)
        r = run([a.tool, "--json", exe])
        got = json.loads(r.stdout or "[]")
        check("vfiokit-pmdinfo finds the library's driver through the program",
              [d["name"] for d in got] == ["net_libtest"], got)
        r = run([a.tool, "--json", "--no-libs", exe])
        check("... and not with --no-libs", json.loads(r.stdout or "[1]") == [], r.stdout)
        d = run([a.dpdk, lib])
        check("dpdk-pmdinfo.py reads the library itself the same",
              json.loads(d.stdout or "[]") == json.loads(run([a.tool, "--json", lib]).stdout
                                                         or "[1]"), d.stdout)

        notelf = os.path.join(tmp, "not-elf")
        with open(notelf, "w") as f:
            f.write("hello\n")
        r = run([a.tool, notelf])
        check("not an ELF file: exit 1, says so", r.returncode == 1 and "not an ELF file" in r.stderr,
              (r.returncode, r.stderr))
    r = run([a.tool, "--pci", "nonsense", a.binary])
    check("--pci nonsense: usage error (exit 2)", r.returncode == 2, (r.returncode, r.stderr))
    r = run([a.tool, "--help"])
    check("--help describes --pci and --json", r.returncode == 0 and "--pci" in r.stdout
          and "--json" in r.stdout and "--no-libs" in r.stdout)
    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Checks that DPDK's dpdk-pmdinfo.py finds each driver in a built binary.

    pmdinfo_check.py DPDK_PMDINFO BINARY DECL.pmd.json...

Runs DPDK's own reader (the peer, not our generator) on BINARY and compares
what it lists with each declaration: name, PCI ids (as dpdk-pmdinfo.py
prints them: hex strings, wildcards dropped), params and kmod. Fails with a
diff-like message on any difference, or when a driver is missing.
"""

import json
import subprocess
import sys

ID_FIELDS = ("vendor", "device", "subsystem_vendor", "subsystem_device")


def expected(decl):
    ids = []
    for entry in decl["pci_ids"]:
        ids.append({k: f"{int(entry[k], 0):04x}" for k in ID_FIELDS if k in entry})
    return {
        "name": decl["name"],
        "pci_ids": ids,
        "params": " ".join(f"{p['name']}={p['arg']}" for p in decl.get("params", [])),
        "kmod": "vfio-pci",
        "dma_mask": f"0x{(1 << decl['dma_mask_bits']) - 1:x}",
    }


def main(argv):
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    tool, binary, decls = argv[1], argv[2], argv[3:]
    run = subprocess.run([tool, binary], capture_output=True, text=True, check=False)
    if run.returncode != 0:
        print(f"{tool} {binary} failed ({run.returncode}): {run.stderr.strip()}", file=sys.stderr)
        return 1
    found = {d["name"]: d for d in json.loads(run.stdout)}
    print(f"{tool} lists in {binary}: {sorted(found)}")
    bad = 0
    for path in decls:
        with open(path, encoding="utf-8") as f:
            want = expected(json.load(f))
        got = found.get(want["name"])
        if got is None:
            print(f"FAIL {want['name']}: not in the binary", file=sys.stderr)
            bad += 1
            continue
        for key, value in want.items():
            if got.get(key) != value:
                print(f"FAIL {want['name']}.{key}: binary has {got.get(key)!r}, "
                      f"{path} says {value!r}", file=sys.stderr)
                bad += 1
        if not bad:
            print(f"ok {want['name']}: {json.dumps(got)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

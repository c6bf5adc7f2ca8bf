#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Turns a PCI driver's declaration (DRIVER.pmd.json) into C++.

    pmdinfogen.py DECL.json OUT.cpp OUT.hpp

The declaration is the one place a driver's name, PCI ids, DMA mask and
parameters are written:

    {
      "name": "edu",                          # [a-z0-9_]+, also the C++ name
      "pci_ids": [{"vendor": "0x1234", "device": "0x11e8"}],
                                              # optional "subsystem_vendor",
                                              # "subsystem_device"; absent = any
      "dma_mask_bits": 28,                    # 1..64
      "params": [{"name": "dma_mask", "arg": "<mask>", "help": "..."}],
      "class": "vdpa"                         # optional: "net" (the default)
                                              # or "vdpa" (see driver.hpp)
    }

OUT.hpp declares `vfiokit::pmdinfo::NAME`, a pci::DriverInfo; OUT.cpp
defines it (constant-initialized) and, in the same object, the string

    PMD_INFO_STRING= {"name": ..., "params": ..., "kmod": ..., "pci_ids": [[v, d, sv, sd], ...]}

in .rodata, the format DPDK's dpdk-pmdinfo.py reads: "pci_ids" holds
[vendor, device, subsystem_vendor, subsystem_device] with 0xffff for any,
"params" is DPDK's "key=<arg> key=<arg>" string, "kmod" the kernel module
the device must be bound to. vfiokit adds "dma_mask" (hex). Whatever links
the driver carries the string, since the driver's DriverInfo lives next to it.
"""

import json
import re
import sys

ANY = 0xFFFF
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
ID_FIELDS = ("vendor", "device", "subsystem_vendor", "subsystem_device")
# Keys of -a BDF,KEY=VALUE that are not the driver's.
RESERVED_PARAMS = {"vf_token": "VFIO's (the VF token)", "vdpa": "the PCI bus's (driver class)"}
# Driver classes (pci::DriverClass): "vdpa" drivers are probed only for
# devices given -a BDF,vdpa=1, each in a container of its own.
CLASSES = {"net": "net", "vdpa": "vdpa"}


class DeclarationError(Exception):
    pass


def parse_id(where, value):
    if isinstance(value, str):
        try:
            value = int(value, 16 if value.lower().startswith("0x") else 10)
        except ValueError:
            raise DeclarationError(f"{where}: {value!r} is not a number") from None
    if not isinstance(value, int) or not 0 <= value < ANY:
        raise DeclarationError(f"{where}: {value!r} is not a 16-bit id (0xffff means any: omit it)")
    return value


def ascii_text(where, value):
    if not isinstance(value, str) or not value or not value.isascii() or not value.isprintable():
        raise DeclarationError(f"{where}: must be non-empty printable ASCII")
    return value


def load(path):
    with open(path, encoding="utf-8") as f:
        try:
            d = json.load(f)
        except json.JSONDecodeError as e:
            raise DeclarationError(f"not JSON: {e}") from None
    unknown = set(d) - {"name", "pci_ids", "dma_mask_bits", "params", "class"}
    if unknown:
        raise DeclarationError(f"unknown keys {sorted(unknown)}")
    name = d.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise DeclarationError(f"name {name!r}: use [a-z][a-z0-9_]*")
    ids = []
    for i, entry in enumerate(d.get("pci_ids") or []):
        if not isinstance(entry, dict) or "vendor" not in entry:
            raise DeclarationError(f"pci_ids[{i}]: needs at least a vendor")
        extra = set(entry) - set(ID_FIELDS)
        if extra:
            raise DeclarationError(f"pci_ids[{i}]: unknown keys {sorted(extra)}")
        ids.append([parse_id(f"pci_ids[{i}].{k}", entry[k]) if k in entry else ANY for k in ID_FIELDS])
    if not ids:
        raise DeclarationError("pci_ids: a PCI driver matches at least one id")
    bits = d.get("dma_mask_bits")
    if not isinstance(bits, int) or isinstance(bits, bool) or not 1 <= bits <= 64:
        raise DeclarationError(f"dma_mask_bits {bits!r}: give 1..64")
    params = []
    for i, p in enumerate(d.get("params") or []):
        if not isinstance(p, dict) or set(p) != {"name", "arg", "help"}:
            raise DeclarationError(f"params[{i}]: give exactly name, arg and help")
        pname = p["name"]
        if not isinstance(pname, str) or not NAME_RE.match(pname):
            raise DeclarationError(f"params[{i}].name {pname!r}: use [a-z][a-z0-9_]*")
        if pname in RESERVED_PARAMS:
            raise DeclarationError(f"params[{i}].name {pname!r} is {RESERVED_PARAMS[pname]}, "
                                   "not a driver's")
        if any(q["name"] == pname for q in params):
            raise DeclarationError(f"params[{i}].name {pname!r} is declared twice")
        params.append({"name": pname, "arg": ascii_text(f"params[{i}].arg", p["arg"]),
                       "help": ascii_text(f"params[{i}].help", p["help"])})
    cls = d.get("class", "net")
    if cls not in CLASSES:
        raise DeclarationError(f"class {cls!r}: give one of {sorted(CLASSES)}")
    return {"name": name, "ids": ids, "mask": (1 << bits) - 1, "params": params, "class": cls}


def pmd_info_json(decl):
    info = {
        "name": decl["name"],
        "params": " ".join(f"{p['name']}={p['arg']}" for p in decl["params"]),
        "kmod": "vfio-pci",
        "dma_mask": f"0x{decl['mask']:x}",
        "pci_ids": decl["ids"],
    }
    return json.dumps(info, separators=(", ", ": "))


def c_string(s):
    out = ['"']
    for ch in s:
        if ch in '\\"':
            out.append("\\" + ch)
        elif ch == "?":
            out.append("\\?")  # no trigraphs
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            raise DeclarationError(f"character {ch!r} cannot be embedded")
    out.append('"')
    return "".join(out)


def generate(decl, source, header_name):
    name = decl["name"]
    hpp = f"""// Generated by buildtools/pmdinfogen.py from {source}: do not edit.
#pragma once

#include "vfiokit/bus/pci/driver.hpp"

namespace vfiokit::pmdinfo {{

extern const pci::DriverInfo {name};

}}  // namespace vfiokit::pmdinfo
"""
    ids = ",\n    ".join("{" + ", ".join(f"0x{v:04x}" for v in i) + "}" for i in decl["ids"])
    if decl["params"]:
        params = ",\n    ".join(
            "{" + ", ".join(c_string(p[k]) for k in ("name", "arg", "help")) + "}" for p in decl["params"])
        params_def = f"constexpr pci::Param kParams[] = {{\n    {params},\n}};"
        params_span = "kParams"
    else:
        params_def = ""
        params_span = "{}"
    cpp = f"""// Generated by buildtools/pmdinfogen.py from {source}: do not edit.
#include "{header_name}"

namespace vfiokit::pmdinfo {{

namespace {{

constexpr pci::IdMatch kIds[] = {{
    {ids},
}};
{params_def}

}}  // namespace

// In .rodata, where DPDK's dpdk-pmdinfo.py looks for it; `used` keeps it
// although nothing in the program reads it but info().pmd_info. The reader
// takes a run of printable bytes between NULs, so a leading NUL keeps the
// tail of whatever the linker put before it from being read as part of it.
extern const char pmd_info_{name}[];
[[gnu::used]] const char pmd_info_{name}[] =
    "\\0" {c_string("PMD_INFO_STRING= " + pmd_info_json(decl))};

constinit const pci::DriverInfo {name}{{
    {c_string(name)},
    kIds,
    0x{decl['mask']:x}ULL,
    {params_span},
    std::string_view(pmd_info_{name} + 1, sizeof pmd_info_{name} - 2),
    pci::DriverClass::{CLASSES[decl['class']]},
}};

}}  // namespace vfiokit::pmdinfo
"""
    return cpp, hpp


def main(argv):
    if len(argv) != 4:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    src, out_cpp, out_hpp = argv[1:]
    try:
        decl = load(src)
        cpp, hpp = generate(decl, src.rsplit("/", 1)[-1], out_hpp.rsplit("/", 1)[-1])
    except (DeclarationError, OSError) as e:
        print(f"pmdinfogen: {src}: {e}", file=sys.stderr)
        return 1
    with open(out_cpp, "w", encoding="ascii") as f:
        f.write(cpp)
    with open(out_hpp, "w", encoding="ascii") as f:
        f.write(hpp)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

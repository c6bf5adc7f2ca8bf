#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""List the poll-mode drivers a vfiokit (or DPDK) binary carries, and which
of them would take a PCI device.

Reads the "PMD_INFO_STRING= {json}" strings in the .rodata of each ELF
file given and of every shared library it loads (DT_NEEDED, followed as
the dynamic loader resolves them: RPATH, LD_LIBRARY_PATH, RUNPATH,
ld.so.conf, the default directories; nothing is executed), the format
buildtools/pmdinfogen.py writes and DPDK's dpdk-pmdinfo.py reads.

  vfiokit-pmdinfo build/app/vfiokit-testpmd
  vfiokit-pmdinfo --json build/app/vfiokit-testpmd        # dpdk-pmdinfo.py's document
  vfiokit-pmdinfo --pci 0000:00:05.0 vfiokit-testpmd      # ids from sysfs
  vfiokit-pmdinfo --pci 8086:100e vfiokit-testpmd         # ids given

--pci answers "which driver would take this device": the drivers whose PCI
id table matches it (vendor, device, subsystem vendor and device; 0xffff
in a table is any), as the EAL's probe matches them, and, for a device
named by its address, whether it is bound to the kernel module the driver
needs (vfio-pci). Exit status: 0; 1 an error (file not ELF, device not
found); 2 usage; 3 --pci found no driver for the device.
"""

import argparse
import glob
import json
import os
import re
import sys

try:
    from elftools.common.exceptions import ELFError
    from elftools.elf.dynamic import DynamicSection
    from elftools.elf.elffile import ELFFile
except ImportError:
    sys.exit("vfiokit-pmdinfo: needs pyelftools: apt-get install python3-pyelftools")

PCI_FIELDS = ("vendor", "device", "subsystem_vendor", "subsystem_device")
ANY = 0xFFFF
# A string dpdk-pmdinfo.py accepts: printable ASCII between NULs.
PMD_RE = re.compile(rb"PMD_INFO_STRING= ([\x09-\x0d\x20-\x7e]*)\x00")
DEFAULT_DIRS = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64",
                "/lib", "/usr/lib")


class Failure(Exception):
    """An error for the user: the message says what and why."""


# --- ELF --------------------------------------------------------------------

def pmd_strings(path):
    """The decoded PMD_INFO_STRING objects of .rodata, in file order."""
    with open(path, "rb") as f:
        try:
            elf = ELFFile(f)
        except ELFError as e:
            raise Failure(f"{path}: not an ELF file ({e})") from None
        sec = elf.get_section_by_name(".rodata")
        if sec is None:
            return []
        out = []
        for m in PMD_RE.finditer(sec.data()):
            try:
                out.append(json.loads(m.group(1)))
            except ValueError as e:
                raise Failure(f"{path}: a PMD_INFO_STRING that is not JSON ({e})") from None
        return out


def dynamic_info(path):
    """(needed, rpath, runpath) of an ELF file."""
    with open(path, "rb") as f:
        try:
            elf = ELFFile(f)
        except ELFError as e:
            raise Failure(f"{path}: not an ELF file ({e})") from None
        needed, rpath, runpath = [], [], []
        for sec in elf.iter_sections():
            if not isinstance(sec, DynamicSection):
                continue
            for tag in sec.iter_tags():
                if tag.entry.d_tag == "DT_NEEDED":
                    needed.append(tag.needed)
                elif tag.entry.d_tag == "DT_RPATH":
                    rpath += tag.rpath.split(":")
                elif tag.entry.d_tag == "DT_RUNPATH":
                    runpath += tag.runpath.split(":")
        origin = os.path.dirname(os.path.abspath(path))

        def expand(dirs):
            return [d.replace("$ORIGIN", origin).replace("${ORIGIN}", origin) for d in dirs if d]

        return needed, expand(rpath), expand(runpath)


def conf_dirs(conf="/etc/ld.so.conf", depth=0):
    """The directories of ld.so.conf, includes followed."""
    dirs = []
    if depth > 8 or not os.path.isfile(conf):
        return dirs
    with open(conf, errors="replace") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line.startswith("include "):
                for inc in sorted(glob.glob(line.split(None, 1)[1])):
                    dirs += conf_dirs(inc, depth + 1)
            elif line:
                dirs.append(line)
    return dirs


def loaded_libraries(path):
    """Every shared library `path` loads, resolved without running it."""
    seen, order = set(), []
    system = conf_dirs() + list(DEFAULT_DIRS)
    env = [d for d in os.environ.get("LD_LIBRARY_PATH", "").split(":") if d]
    todo = [(path, [])]
    while todo:
        obj, inherited_rpath = todo.pop(0)
        needed, rpath, runpath = dynamic_info(obj)
        # DT_RPATH applies when there is no DT_RUNPATH, and to what the
        # object's dependencies load too.
        rp = [] if runpath else rpath + inherited_rpath
        for name in needed:
            if name in seen:
                continue
            seen.add(name)
            for d in rp + env + runpath + system:
                cand = os.path.join(d, name)
                if os.path.isfile(cand):
                    real = os.path.realpath(cand)
                    order.append(real)
                    todo.append((real, rp))
                    break
            # Not found: the loader would fail too; nothing to read.
    return order


# --- drivers ----------------------------------------------------------------

def scrubbed(info):
    """The info as dpdk-pmdinfo.py prints it: ids as hex strings, wildcards
    dropped, an empty id list removed."""
    out = dict(info)
    ids = []
    for entry in out.pop("pci_ids", []):
        pci = {k: f"{v:04x}" for k, v in zip(PCI_FIELDS, entry) if v != ANY}
        if pci:
            ids.append(pci)
    if ids:
        out["pci_ids"] = ids
    return out


def collect(files, follow_libs):
    """[(source file, raw info)], every driver of every file read."""
    found = []
    paths = []
    for f in files:
        if not os.path.isfile(f):
            raise Failure(f"{f}: no such file")
        paths.append(os.path.realpath(f))
        if follow_libs:
            paths += loaded_libraries(f)
    done = set()
    for p in paths:
        if p in done:
            continue
        done.add(p)
        found += [(p, info) for info in pmd_strings(p)]
    return found


def id_text(entry):
    v, d, sv, sd = entry
    s = f"{v:04x}:{d:04x}" if d != ANY else f"{v:04x}:any"
    if sv != ANY or sd != ANY:
        s += " subsystem " + (f"{sv:04x}" if sv != ANY else "any") + ":" + \
            (f"{sd:04x}" if sd != ANY else "any")
    return s


def human(found, files):
    lines = []
    if not found:
        return "no drivers (no PMD_INFO_STRING) in " + ", ".join(files) + "\n"
    width = max(len(i["name"]) for _, i in found)
    by_source = {}
    for src, info in found:
        by_source.setdefault(src, []).append(info)
    for src, infos in by_source.items():
        lines.append(f"{src}: {len(infos)} driver(s)")
        for i in sorted(infos, key=lambda x: x["name"]):
            extra = f"  DMA mask {i['dma_mask']}" if "dma_mask" in i else ""
            lines.append(f"  {i['name']:<{width}}  kmod {i.get('kmod') or '-'}{extra}")
            lines.append(f"  {'':<{width}}  PCI ids: " +
                         ", ".join(id_text(e) for e in i.get("pci_ids", [])) or "none")
            lines.append(f"  {'':<{width}}  params: {i.get('params') or '(none)'}")
    return "\n".join(lines) + "\n"


# --- --pci ------------------------------------------------------------------

BDF_RE = re.compile(r"^(?:([0-9a-fA-F]{4}):)?([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])$")
IDS_RE = re.compile(r"^([0-9a-fA-F]{4}):([0-9a-fA-F]{4})(?::([0-9a-fA-F]{4}):([0-9a-fA-F]{4}))?$")


def device_from_sysfs(bdf, sysroot):
    m = BDF_RE.match(bdf)
    addr = f"{(m.group(1) or '0000').lower()}:{m.group(2).lower()}:{m.group(3).lower()}.{m.group(4)}"
    d = os.path.join(sysroot, "sys/bus/pci/devices", addr)
    if not os.path.isdir(d):
        raise Failure(f"{addr}: no such PCI device ({d} does not exist)")

    def read_id(name):
        with open(os.path.join(d, name)) as f:
            return int(f.read().strip(), 16)

    ids = [read_id(n) for n in PCI_FIELDS]
    drv = os.path.join(d, "driver")
    driver = os.path.basename(os.readlink(drv)) if os.path.islink(drv) else None
    return {"address": addr, "ids": ids, "driver": driver}


def device_from_ids(text):
    m = IDS_RE.match(text)
    ids = [int(g, 16) if g else None for g in m.groups()]
    return {"address": None, "ids": ids, "driver": None}


def matches(entry, ids):
    """True / False, or None when the device's subsystem ids are unknown
    and the entry names one."""
    for want, have in zip(entry, ids):
        if want == ANY:
            continue
        if have is None:
            return None
        if want != have:
            return False
    return True


def which_driver(found, dev):
    takers, maybe = [], []
    for src, info in found:
        for entry in info.get("pci_ids", []):
            r = matches(entry, dev["ids"])
            if r:
                takers.append((src, info, entry))
                break
            if r is None:
                maybe.append((src, info, entry))
    return takers, maybe


def pci_report(found, dev, as_json):
    takers, maybe = which_driver(found, dev)
    ids = dev["ids"]
    ids_text = f"{ids[0]:04x}:{ids[1]:04x}" + (
        f" subsystem {ids[2]:04x}:{ids[3]:04x}" if ids[2] is not None else "")
    name = dev["address"] or ids_text
    if as_json:
        doc = {"device": dev["address"], "ids": {k: (f"{v:04x}" if v is not None else None)
                                                 for k, v in zip(PCI_FIELDS, ids)},
               "kernel_driver": dev["driver"],
               "drivers": [{"name": i["name"], "kmod": i.get("kmod"), "file": s,
                            "bound_to_kmod": (dev["driver"] == i.get("kmod"))
                            if dev["address"] else None} for s, i, _ in takers],
               "needs_subsystem": [{"name": i["name"], "entry": id_text(e)} for s, i, e in maybe]}
        return json.dumps(doc, indent=2) + "\n", bool(takers)
    out = [f"{name} ({ids_text}), bound to {dev['driver'] or 'no driver'}" if dev["address"]
           else ids_text]
    if not takers:
        out.append("  no driver in these files takes it")
    for src, info, entry in takers:
        out.append(f"  {info['name']} would take it (id {id_text(entry)}; {src})")
        kmod = info.get("kmod")
        if dev["address"] and kmod and dev["driver"] != kmod:
            out.append(f"    the device must be bound to {kmod} first: "
                       f"echo {kmod} > /sys/bus/pci/devices/{dev['address']}/driver_override; "
                       f"echo {dev['address']} > /sys/bus/pci/drivers_probe "
                       f"(after unbinding it from {dev['driver']})" if dev["driver"] else
                       f"    the device must be bound to {kmod} first")
    if len(takers) > 1:
        out.append("  more than one driver matches: the EAL's probe gives it to the first "
                   "registered, which the files do not say")
    for src, info, entry in maybe:
        out.append(f"  {info['name']} would take it if its subsystem is {id_text(entry)} "
                   "(give VENDOR:DEVICE:SUBVENDOR:SUBDEVICE, or the device's address)")
    return "\n".join(out) + "\n", bool(takers)


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="vfiokit-pmdinfo", description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("elf_files", metavar="ELF_FILE", nargs="+",
                    help="an executable or shared library (vfiokit-testpmd, libvfiokit_*.so)")
    ap.add_argument("--json", action="store_true",
                    help="print JSON: dpdk-pmdinfo.py's list of drivers (or, with --pci, the "
                         "matching drivers)")
    ap.add_argument("--pci", metavar="DEVICE",
                    help="which driver would take DEVICE: a PCI address (0000:00:05.0 or "
                         "00:05.0; ids read from sysfs) or ids VENDOR:DEVICE[:SUBVENDOR:SUBDEVICE]"
                         " in hex")
    ap.add_argument("--sysroot", default="/", metavar="DIR",
                    help="read DIR/sys instead of /sys (tests)")
    ap.add_argument("--no-libs", action="store_true",
                    help="read only the files given, not the shared libraries they load")
    args = ap.parse_args(argv)
    if args.pci and not (BDF_RE.match(args.pci) or IDS_RE.match(args.pci)):
        ap.error(f"--pci {args.pci}: give a PCI address (0000:00:05.0) or ids (8086:100e)")
    return args


def main(argv):
    args = parse_args(argv)
    try:
        found = collect(args.elf_files, not args.no_libs)
        if args.pci:
            dev = device_from_sysfs(args.pci, args.sysroot) if BDF_RE.match(args.pci) \
                else device_from_ids(args.pci)
            text, any_taker = pci_report(found, dev, args.json)
            sys.stdout.write(text)
            return 0 if any_taker else 3
        if args.json:
            sys.stdout.write(json.dumps([scrubbed(i) for _, i in found], indent=2) + "\n")
        else:
            sys.stdout.write(human(found, args.elf_files))
    except (Failure, OSError) as e:
        print(f"vfiokit-pmdinfo: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

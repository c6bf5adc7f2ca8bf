"""DPDK peers for the lab guest: a DPDK's testpmd with everything it loads.

A bundle is one DPDK version, taken from the system that packages it:
22.11 from this host (Debian 12's `dpdk`), 24.11 from the Debian 13 root
(build-root.sh). Each goes into the initramfs under its own prefix,
/opt/dpdk-VERSION/:

  bin/dpdk-testpmd   the packaged binary
  lib/               every shared object it and its plugins need, found by
                     walking DT_NEEDED inside that system (its own loader
                     and libc included), named by the names asked for
  pmds/              only the PMD plugins the lab's devices need
  VERSION            the package's full version

and /usr/bin/dpdk-testpmd-VERSION runs it through its own loader with only
lib/ on the search path, and its plugins with -d. So a newer DPDK built
against a newer glibc runs beside the host's, and neither loads the other's
libraries. Only the plugins named below go in: EAL loads whatever a plugin
directory holds, and the whole directory is tens of megabytes.
"""

import glob
import os
import struct

MULTIARCH = "x86_64-linux-gnu"

# What each version needs from its system: where it comes from ("host" is
# /, "root" the Debian 13 root) and its plugin directory (the ABI version).
BUNDLES = {
    "22.11": {"system": "host", "pmds": f"usr/lib/{MULTIARCH}/dpdk/pmds-23.0"},
    "24.11": {"system": "root", "pmds": f"usr/lib/{MULTIARCH}/dpdk/pmds-25.0"},
}

# PMD plugins for the lab's devices: the PCI bus, the default mempool
# driver, e1000/e1000e/igb (net_e1000: em and igb) and virtio-net.
PLUGINS = ("librte_bus_pci", "librte_mempool_ring", "librte_net_e1000", "librte_net_virtio")
# Taken when the system has them: the vhost-user PMD, DPDK's software relay
# that the vDPA benchmark compares with (Debian 12 ships it with dpdk; the
# Debian 13 root installs only the PLUGINS' packages).
OPTIONAL_PLUGINS = ("librte_net_vhost",)

# The loader's default directories after those of ld.so.conf (x86_64).
DEFAULT_DIRS = (f"/lib/{MULTIARCH}", f"/usr/lib/{MULTIARCH}", "/lib64", "/usr/lib64", "/lib",
                "/usr/lib")


class BundleError(Exception):
    """A bundle cannot be made; the message says what is missing and why."""


# --- ELF: just enough to follow DT_NEEDED ----------------------------------

PT_LOAD, PT_DYNAMIC, PT_INTERP = 1, 2, 3
DT_NULL, DT_NEEDED, DT_STRTAB, DT_SONAME, DT_RPATH, DT_RUNPATH = 0, 1, 5, 14, 15, 29
EM_X86_64 = 62


def elf_info(path):
    """(interp, needed, search, soname) of a 64-bit little-endian x86-64
    ELF file: its PT_INTERP (or None), DT_NEEDED names, RUNPATH (else
    RPATH) entries and DT_SONAME (or None). None when the file is not such an ELF (another architecture's
    library of the same name is skipped, as the loader skips it)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return None
    if struct.unpack_from("<H", data, 18)[0] != EM_X86_64:
        return None
    phoff, = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    loads, dynamic, interp = [], None, None
    for i in range(phnum):
        p_type, _, p_offset, p_vaddr, _, p_filesz = struct.unpack_from(
            "<IIQQQQ", data, phoff + i * phentsize)
        if p_type == PT_LOAD:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == PT_DYNAMIC:
            dynamic = (p_offset, p_filesz)
        elif p_type == PT_INTERP:
            interp = data[p_offset:p_offset + p_filesz].rstrip(b"\0").decode()
    if dynamic is None:
        return interp, [], [], None

    def file_offset(vaddr):
        for start, off, size in loads:
            if start <= vaddr < start + size:
                return vaddr - start + off
        raise BundleError(f"{path}: address {vaddr:#x} outside its segments")

    entries = []
    for off in range(dynamic[0], dynamic[0] + dynamic[1], 16):
        tag, val = struct.unpack_from("<qQ", data, off)
        if tag == DT_NULL:
            break
        entries.append((tag, val))
    strtab = file_offset(next(v for t, v in entries if t == DT_STRTAB))

    def string(i):
        return data[strtab + i:data.index(b"\0", strtab + i)].decode()

    needed = [string(v) for t, v in entries if t == DT_NEEDED]
    runpath = [string(v) for t, v in entries if t == DT_RUNPATH]
    rpath = [string(v) for t, v in entries if t == DT_RPATH]
    search = [d for p in (runpath or rpath) for d in p.split(":") if d]
    soname = next((string(v) for t, v in entries if t == DT_SONAME), None)
    return interp, needed, search, soname


# --- a system seen from outside: paths inside `sysroot` -------------------

def resolve(sysroot, path):
    """The host path of `path` inside sysroot with every symlink followed
    inside it (an absolute link target means sysroot's /, not the host's)."""
    parts = [p for p in path.split("/") if p]
    done = ""
    for _ in range(64):
        if not parts:
            return sysroot.rstrip("/") + (done or "/")
        part = parts.pop(0)
        if part == "..":
            done = os.path.dirname(done)
            continue
        if part == ".":
            continue
        here = done + "/" + part
        host = sysroot.rstrip("/") + here
        if os.path.islink(host):
            target = os.readlink(host)
            parts = [p for p in target.split("/") if p] + parts
            if target.startswith("/"):
                done = ""
        else:
            done = here
    raise BundleError(f"{path}: too many symlinks inside {sysroot}")


def conf_dirs(sysroot, conf="/etc/ld.so.conf", depth=0):
    """Directories of the system's ld.so.conf, includes followed."""
    dirs = []
    path = resolve(sysroot, conf)
    if depth > 8 or not os.path.isfile(path):
        return dirs
    for line in open(path, errors="replace"):
        line = line.split("#", 1)[0].strip()
        if line.startswith("include "):
            pattern = line.split(None, 1)[1]
            if not pattern.startswith("/"):
                pattern = os.path.join(os.path.dirname(conf), pattern)
            host_pattern = resolve(sysroot, os.path.dirname(pattern)) + "/" + \
                os.path.basename(pattern)
            for inc in sorted(glob.glob(host_pattern)):
                dirs += conf_dirs(sysroot, os.path.join(os.path.dirname(pattern),
                                                        os.path.basename(inc)), depth + 1)
        elif line.startswith("/"):
            dirs.append(line)
    return dirs


def closure(sysroot, files):
    """Every shared object `files` (paths inside sysroot) load, as
    {name asked for: host path}, and the loader (PT_INTERP) of the first
    file as (its path inside sysroot, host path). Searched as the loader
    does: RUNPATH/RPATH ($ORIGIN too), ld.so.conf, the default dirs."""
    dirs = conf_dirs(sysroot) + list(DEFAULT_DIRS)
    found, loader = {}, None
    todo = [(f, resolve(sysroot, f)) for f in files]
    seen = set()
    while todo:
        inner, host = todo.pop()
        if host in seen:
            continue
        seen.add(host)
        info = elf_info(host)
        if info is None:
            raise BundleError(f"{inner} in {sysroot} is not an x86-64 ELF file")
        interp, needed, search, _ = info
        if interp and loader is None:
            loader = (interp, resolve(sysroot, interp))
        origin = os.path.dirname(inner)
        here = [d.replace("$ORIGIN", origin).replace("${ORIGIN}", origin) for d in search]
        for name in needed:
            if name in found:
                continue
            for d in here + dirs:
                cand = resolve(sysroot, os.path.join(d, name))
                if os.path.isfile(cand) and elf_info(cand) is not None:
                    found[name] = cand
                    todo.append((os.path.join(d, name), cand))
                    break
            else:
                raise BundleError(f"{inner}: {name} not found in {sysroot}")
    if loader is None:
        raise BundleError(f"{files[0]} has no ELF interpreter")
    return found, loader


def package_version(sysroot, package):
    """The installed version of `package` in the system's dpkg status, or None."""
    status = resolve(sysroot, "/var/lib/dpkg/status")
    if not os.path.isfile(status):
        return None
    for stanza in open(status, errors="replace").read().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines()
                      if ": " in line and not line.startswith(" "))
        if fields.get("Package") == package and "installed" in fields.get("Status", "").split():
            return fields.get("Version")
    return None


# --- the bundle --------------------------------------------------------------

WRAPPER = """#!/bin/sh
# DPDK {version}'s testpmd (Debian dpdk {full}) with its own loader and
# libraries; only the lab's PMD plugins are loaded (-d).
p={prefix}
exec $p/lib/{loader} --library-path $p/lib $p/bin/dpdk-testpmd -d $p/pmds "$@"
"""


def add_dpdk(cpio, version, root_dir):
    """Put DPDK `version` (a BUNDLES key) into `cpio` (lab.py's Cpio);
    `root_dir()` gives the Debian 13 root when that version lives there.
    Returns (files, bytes) added. Raises BundleError saying what is missing."""
    if version not in BUNDLES:
        raise BundleError(f"no DPDK bundle {version} (known: {', '.join(sorted(BUNDLES))})")
    spec = BUNDLES[version]
    sysroot = "/" if spec["system"] == "host" else root_dir()
    where = "this host" if sysroot == "/" else f"the Debian 13 root {sysroot}"
    full = package_version(sysroot, "dpdk")
    if full is None or not full.startswith(version + "."):
        raise BundleError(f"DPDK {version}: {where} has dpdk {full or 'not installed'}"
                          + (" (devtools/bootstrap.sh installs it)" if sysroot == "/" else
                             " (rebuild it: devtools/lab/build-root.sh)"))
    testpmd = "/usr/bin/dpdk-testpmd"
    if not os.path.isfile(resolve(sysroot, testpmd)):
        raise BundleError(f"DPDK {version}: {where} has no {testpmd}")
    plugins = {}
    for name in PLUGINS + OPTIONAL_PLUGINS:
        hits = sorted(glob.glob(os.path.join(resolve(sysroot, "/" + spec["pmds"]), name + ".so.*")))
        if not hits and name in OPTIONAL_PLUGINS:
            continue
        if not hits:
            raise BundleError(f"DPDK {version}: plugin {name} missing from /{spec['pmds']} in {where}")
        plugins[name] = "/" + spec["pmds"] + "/" + os.path.basename(hits[0])
    libs, (interp, interp_host) = closure(sysroot, [testpmd] + list(plugins.values()))

    prefix = f"/opt/dpdk-{version}"
    loader = os.path.basename(interp)
    files = {f"{prefix}/bin/dpdk-testpmd": resolve(sysroot, testpmd),
             f"{prefix}/lib/{loader}": interp_host}  # libc names the loader too
    files.update((f"{prefix}/lib/{name}", host) for name, host in libs.items())
    # A plugin another library also links (bus_pci) must be one file, or
    # dlopen loads it twice and EAL aborts on the second registration: the
    # plugins are in lib/ under their sonames, and pmds/ links to them.
    for name, p in plugins.items():
        host = resolve(sysroot, p)
        soname = elf_info(host)[3] or os.path.basename(p)
        files[f"{prefix}/lib/{soname}"] = host
        cpio.symlink(f"{prefix}/pmds/{name}.so", f"../lib/{soname}")
    for dest, host in sorted(files.items()):
        cpio.host_file(dest, host)
    cpio.file(f"{prefix}/VERSION", (full + "\n").encode())
    cpio.file(f"usr/bin/dpdk-testpmd-{version}",
              WRAPPER.format(version=version, full=full, prefix=prefix, loader=loader).encode(),
              0o755)
    # EAL keeps its runtime files under /var/run/dpdk (as root).
    cpio.symlink("var/run", "/run")
    # EAL refuses a plugin directory with a world-writable ancestor, and the
    # initramfs root is 0777 unless the archive has a "." entry.
    cpio.dir(".")
    return len(files) + len(plugins) + 2, sum(os.path.getsize(h) for h in files.values())

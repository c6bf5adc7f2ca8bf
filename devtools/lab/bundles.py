"""Peers for the lab guest: a DPDK's testpmd with everything it loads, and
Python with DPDK's telemetry client (add_python, below).

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
import json
import os
import socket
import struct
import subprocess
import tempfile
import threading

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


# --- Python and DPDK's telemetry client ---------------------------------------
#
# Debian's dpdk-telemetry.py, unchanged, needs a Python in the guest. The
# host's own interpreter goes in (Debian 12's python3.11: the stdlib is not
# in libpython, the binary carries it statically) with only the stdlib
# modules the script imports: found by running it here, three ways (its
# help, its list of prefixes, and a session with a stand-in server), and
# reading sys.modules. Each .py module goes in as its compiled file from
# __pycache__, in the module's own place (a sourceless module): the
# initramfs keeps no mtimes (the lab kernel has no
# INITRAMFS_PRESERVE_MTIME), so a .py beside its .pyc would not have the
# mtime the .pyc records, and would be compiled again under emulation at
# every start.
# os.pyc is the landmark by which the interpreter finds its stdlib (os
# itself is frozen in), lib-dynload the one for extension modules.

PYTHON = "/usr/bin/python3"
TELEMETRY_CLIENT = "/usr/bin/dpdk-telemetry.py"
TELEMETRY_PREFIX = "bundle"

# Runs in the interpreter being bundled, with -B -S -E -s (it writes no
# .pyc of its own: a module without one is an error below): the script
# runs as __main__ with the given arguments, then what sys.modules holds is
# written as JSON. site runs first as in the guest, but without site-packages: the
# guest has none, so no .pth file of this host adds to the list. exec, not
# runpy, so that the collector imports nothing the script does not.
COLLECT = r"""
import sys
out, script, *args = sys.argv[1:]
import site
site.ENABLE_USER_SITE = False
site.getsitepackages = lambda prefixes=None: []
site.main()
sys.argv = [script] + args
try:
    exec(compile(open(script).read(), script, "exec"), {"__name__": "__main__", "__file__": script})
except SystemExit as e:
    if e.code not in (0, None):
        raise
finally:
    origins = {n: getattr(getattr(m, "__spec__", None), "origin", None)
               for n, m in list(sys.modules.items())}
import json, sysconfig
with open(out, "w") as f:
    json.dump({"modules": origins, "stdlib": sysconfig.get_path("stdlib"),
               "platstdlib": sysconfig.get_path("platstdlib"),
               "cache_tag": sys.implementation.cache_tag,
               "executable": sys.executable,
               "version": "%d.%d" % sys.version_info[:2]}, f)
"""


def serve_telemetry(path, ready):
    """A stand-in for a DPDK process's telemetry socket at `path`: the
    hello, then a reply {command: [...]} per request, until the client
    goes. One client; `ready` is set once the socket listens."""
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    srv.bind(path)
    srv.listen(1)
    srv.settimeout(30)
    ready.set()
    try:
        conn, _ = srv.accept()
    except OSError:
        srv.close()
        return
    with conn, srv:
        conn.settimeout(30)
        conn.send(json.dumps({"version": "stand-in", "pid": os.getpid(),
                              "max_output_len": 16384}).encode())
        while True:
            try:
                req = conn.recv(1024).decode()
            except OSError:
                return
            if not req:
                return
            conn.send(json.dumps({req.split(",")[0]: ["/", "/info"]}).encode())


def collect_imports(python, script, runs):
    """What `script` imports under `python`: (the interpreter's facts,
    {module name: origin}) over every run in `runs`, each (arguments,
    stdin text, serve, expect): serve says whether a stand-in telemetry
    server listens for the script's -f TELEMETRY_PREFIX (in a private
    runtime directory, RUNTIME_DIRECTORY, which DPDK's client honours), and
    expect is text the run must print (proof it took the path meant). A
    run that fails or prints something else raises BundleError with its
    output."""
    facts, modules = None, {}
    with tempfile.TemporaryDirectory(prefix="vfiokit-pycollect-") as tmp:
        sockdir = os.path.join(tmp, "dpdk", TELEMETRY_PREFIX)
        os.makedirs(sockdir)
        env = {"PATH": "/usr/bin:/bin", "RUNTIME_DIRECTORY": tmp}
        for i, (args, stdin, serve, expect) in enumerate(runs):
            out = os.path.join(tmp, f"run{i}.json")
            server = None
            if serve:
                ready = threading.Event()
                server = threading.Thread(target=serve_telemetry, daemon=True, args=(
                    os.path.join(sockdir, "dpdk_telemetry.v2"), ready))
                server.start()
                ready.wait(10)
            res = subprocess.run([python, "-B", "-S", "-E", "-s", "-c", COLLECT, out, script]
                                 + args, input=stdin, capture_output=True, text=True, env=env,
                                 timeout=120)
            if server:
                server.join(30)
                os.unlink(os.path.join(sockdir, "dpdk_telemetry.v2"))
            if res.returncode != 0 or not os.path.exists(out) or expect not in res.stdout:
                raise BundleError(f"{python} {script} {' '.join(args)} failed (exit "
                                  f"{res.returncode}, expected {expect!r} in its output): "
                                  f"{(res.stderr + res.stdout).strip()[-800:]}")
            with open(out) as f:
                run = json.load(f)
            facts = facts or run
            modules.update(run["modules"])
    return facts, modules


def python_layout(facts, modules):
    """{guest path: host path} for the stdlib part of `modules` (from
    collect_imports), and the extension modules among them (their host
    paths, for the DT_NEEDED walk). Modules outside the stdlib (a host's
    site-packages), built in or frozen are left out; a .py module without
    its compiled file is an error."""
    dirs = tuple(d.rstrip("/") + "/" for d in {facts["stdlib"], facts["platstdlib"]})
    tag = facts["cache_tag"]

    def compiled(py):
        pyc = os.path.join(os.path.dirname(py), "__pycache__",
                           os.path.basename(py)[:-3] + f".{tag}.pyc")
        if not os.path.isfile(pyc):
            raise BundleError(f"{py} has no compiled {pyc} (Debian's python3 package compiles "
                              f"its stdlib at install: reinstall it, or run py3compile)")
        return pyc

    files, extensions = {}, []
    for name, origin in sorted(modules.items()):
        if not origin or not origin.startswith(dirs):
            continue
        if origin.endswith(".py"):
            files[origin[:-3] + ".pyc"] = compiled(origin)
        else:
            files[origin] = origin
            if origin.endswith(".so"):
                extensions.append(origin)
    landmark = os.path.join(facts["stdlib"], "os.py")
    files[landmark[:-3] + ".pyc"] = compiled(landmark)
    return files, extensions


def add_python(cpio, python=PYTHON, script=TELEMETRY_CLIENT):
    """Put the host's Python and DPDK's telemetry client (Debian 12's
    dpdk-telemetry.py) into `cpio`, with only the stdlib modules the client
    imports. Returns (files, bytes) added. Raises BundleError saying what
    to install."""
    if not os.access(python, os.X_OK):
        raise BundleError(f"{python} missing: Debian's python3 goes into the guest for "
                          "dpdk-telemetry.py (devtools/bootstrap.sh installs it: "
                          "apt-get install python3)")
    if not os.path.isfile(script):
        raise BundleError(f"{script} missing: Debian's dpdk-dev package ships it "
                          "(devtools/bootstrap.sh installs it: apt-get install dpdk-dev)")
    facts, modules = collect_imports(python, script, [
        (["-h"], "", False, "usage:"),
        (["-l"], "", False, "No DPDK apps with telemetry enabled"),
        (["-f", TELEMETRY_PREFIX], "/\n/info\n", True, '{"/info": ["/", "/info"]}'),
    ])
    files, extensions = python_layout(facts, modules)
    exe = os.path.realpath(python)  # /usr/bin/python3 -> python3.11
    libs, (interp, interp_host) = closure("/", [exe] + extensions)
    files[exe] = exe
    files[script] = script
    files[interp] = interp_host
    # Where the loader looks without an ld.so.cache (the guest has none);
    # the loader itself, which libc names too, is found loaded.
    files.update((f"/lib/{MULTIARCH}/{name}", host) for name, host in libs.items()
                 if name != os.path.basename(interp))
    for dest, host in sorted(files.items()):
        cpio.host_file(dest, host)
    if os.path.realpath(python) != python:
        cpio.symlink(python, os.path.basename(exe))
    cpio.dir(os.path.join(facts["platstdlib"], "lib-dynload"))
    return len(files), sum(os.path.getsize(h) for h in files.values())

#!/usr/bin/env python3
"""Boot a lab machine shape in QEMU, run a job in the guest, report results.

The guest is the project's own kernel (build-kernel.sh) with an initramfs made
here on every run: busybox, the project's binaries with the shared libraries
they need, the guest init and helpers, and the job script. The job's output
comes back on a second serial port between markers; the kernel console is
kept apart and shown when something goes wrong.

Exit status: 0 when the job ran at least one step, every step passed and the
guest finished; 1 when a step failed or never ended, a gtest step ran no
test, a helper reported an error outside the steps (a failed vfio_bind), the
job ran no step, or the guest panicked or timed out; 2 on bad usage or a
host-side problem (missing kernel, QEMU, busybox). Output outside any step
is shown, never counted as a pass. A boot that prints nothing at all is
killed and booted once more (watchdog.py), which the report always says;
a second such boot fails the run.
"""

import argparse
import hashlib
import io
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import time

import actions
import bundles
import watchdog

HERE = os.path.dirname(os.path.abspath(__file__))
MARK = "@@VFIOKIT:"

# Lab pairs: a kernel (build-kernel.sh VERSION) and the QEMU that boots it.
# "host" is Debian 12's QEMU 7.2; "root" is QEMU 11.1 from the Debian 13 root
# (build-root.sh), run chrooted in a private mount namespace. A shape that
# needs a newer QEMU's devices names the QEMUs it runs on. "cmdline" is added
# to every shape's kernel command line on that pair.
#
# pcie_ports=native on 6.12: that kernel is built without PCI_MMCONFIG (which
# only the 7.3 kernel needs, for igb's SR-IOV capability), and without
# extended config space Linux does not ask the firmware (_OSC) for native
# PCIe hotplug, so pciehp claims no slot. The option makes Linux use the
# root ports' hotplug registers, which sit in ordinary config space, anyway.
PAIRS = {
    "6.12": {"kernel": "6.12", "qemu": "host", "cmdline": "pcie_ports=native"},
    "7.3": {"kernel": "7.3", "qemu": "root", "cmdline": ""},
}

# Machine shapes. Device addresses are fixed so jobs can name them.
COMMON = ["-M", "q35", "-accel", "tcg", "-cpu", "max", "-smp", "2",
          "-nodefaults", "-vga", "none", "-display", "none", "-no-reboot"]
# no_timer_check: under software emulation on a loaded host the kernel's
# IO-APIC timer check can time out and panic the boot ("timer doesn't work
# through Interrupt-remapped IO-APIC"); the timer is fine, the check is not.
BASE_CMDLINE = "console=ttyS0 panic=-1 quiet no_timer_check hugepagesz=2M"


def nic(addr, hub, port, bus=None, model="e1000"):
    bus_opt = f",bus={bus}" if bus else ""
    return ["-netdev", f"hubport,id=hp{port},hubid={hub}",
            "-device", f"{model},netdev=hp{port},addr={addr}{bus_opt},romfile="]


SHAPES = {
    # intel-iommu; two edu; two e1000 on hub 0; a bridge with an edu and an
    # e1000 behind it, which share one IOMMU group; an e1000e (MSI-X) on
    # hub 0; an e1000e and an e1000 on hub 1.
    # The IOMMU's address width is explicit (QEMU 7.2 defaults to 39 bits,
    # 11.1 to 48), so the shape is the same on both pairs.
    "iommu": {
        "qemu": (["-device", "intel-iommu,intremap=on,aw-bits=39"] +
                 ["-device", "edu,addr=03.0", "-device", "edu,addr=04.0"] +
                 nic("05.0", 0, 0) + nic("06.0", 0, 1) +
                 ["-device", "pci-bridge,id=br0,chassis_nr=1,addr=07.0",
                  "-device", "edu,bus=br0,addr=01.0"] +
                 nic("02.0", 0, 2, bus="br0") +
                 nic("08.0", 0, 3, model="e1000e") +
                 # Hub 1, apart from hub 0 so that forwarding between the
                 # hubs makes no loop: an e1000e for a vfiokit port and an
                 # e1000 that stays on the kernel's driver as its peer.
                 nic("0a.0", 1, 4, model="e1000e") + nic("0b.0", 1, 5) +
                 # A modern-only virtio-net behind the 39-bit IOMMU on hub 1:
                 # the virtio-net PMD on both pairs, and the vDPA driver's
                 # refusal of a width too narrow for user addresses.
                 ["-netdev", "hubport,id=hp6,hubid=1",
                  "-device", "virtio-net-pci,netdev=hp6,addr=0c.0,disable-legacy=on,"
                             "iommu_platform=on,romfile="] +
                 # An empty PCIe root port with native hotplug (pciehp, not
                 # QEMU's ACPI hotplug) on a free slot, where the host adds
                 # and removes an edu (id hotedu; jobs/hotplug-iommu.sh).
                 # Its bus (02) comes after the bridge's: no address above
                 # changes.
                 ["-device", "pcie-root-port,id=rp1,chassis=2,slot=1,addr=0d.0",
                  "-global", "ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off"]),
        "cmdline": "intel_iommu=on iommu=nopt",
        # 1.25 GiB of hugepages: the memory tests map 256 MiB and 1 GiB.
        "memory": "3G",
        "hugepages": 704,
    },
    # No IOMMU; unsafe no-IOMMU mode enabled; one edu; an e1000 and an
    # e1000e on hub 0, an e1000e and an e1000 on hub 1. The edu DMAs to physical addresses here, and a 2 GiB guest
    # has RAM above edu's default 28-bit mask: widen it to 32 bits.
    "noiommu": {
        "qemu": (["-device", "edu,addr=03.0,dma_mask=0xffffffff"] + nic("04.0", 0, 0) +
                 nic("05.0", 0, 1, model="e1000e") +
                 # Hub 1: a port and its kernel peer, apart from hub 0.
                 nic("06.0", 1, 2, model="e1000e") + nic("07.0", 1, 3) +
                 # A modern-only virtio-net on hub 0 (the cloud-VM case:
                 # virtio-net on vfio-pci no-IOMMU); without an IOMMU it
                 # DMAs to physical addresses.
                 ["-netdev", "hubport,id=hp4,hubid=0",
                  "-device", "virtio-net-pci,netdev=hp4,addr=08.0,disable-legacy=on,romfile="] +
                 # An empty hotplug root port (pciehp), where the host adds
                 # and removes an edu (jobs/edu-noiommu.sh).
                 ["-device", "pcie-root-port,id=rp1,chassis=2,slot=1,addr=09.0",
                  "-global", "ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off"]),
        "cmdline": "vfio.enable_unsafe_noiommu_mode=1",
        # 2 GiB keeps all RAM below 4 GiB (q35), inside edu's 32-bit mask.
        "memory": "2G",
        "hugepages": 256,
    },
    # Two NUMA nodes (1.5 GiB each); an edu on node 0's root bus and one
    # behind a PCIe expander bridge on node 1, so devices report node 1. The
    # IOMMU is 48 bits wide here (iommu's is 39), on both pairs.
    "numa": {
        "qemu": (["-device", "intel-iommu,intremap=on,aw-bits=48",
                  "-object", "memory-backend-ram,id=m0,size=1536M",
                  "-object", "memory-backend-ram,id=m1,size=1536M",
                  "-numa", "node,nodeid=0,cpus=0,memdev=m0",
                  "-numa", "node,nodeid=1,cpus=1,memdev=m1",
                  "-device", "edu,addr=03.0",
                  "-device", "pxb-pcie,id=pxb1,bus_nr=64,numa_node=1,bus=pcie.0,addr=09.0",
                  "-device", "pcie-root-port,id=rp1,bus=pxb1,chassis=3,addr=00.0",
                  "-device", "edu,bus=rp1"]),
        "cmdline": "intel_iommu=on iommu=nopt",
        "memory": "3G",
        "hugepages": 512,
    },
    # Devices only QEMU 11.1 has, for the modern pair: a 48-bit IOMMU; an igb
    # PF (82576) whose SR-IOV VFs the guest can create (vfio-pci with
    # enable_sriov; VFs at 00:14.0, 00:14.2, ...) and an e1000e beside it on
    # hub 0; an edu; a modern-only virtio-net-pci behind the IOMMU; an
    # ivshmem-plain whose BAR 2 is memory (a peer-to-peer DMA target); three
    # PCIe root ports with hotplug, one holding an edu (id hotedu) the host
    # can remove, one empty for devices it adds (see the action channel),
    # one holding an e1000e on hub 1 (id hotnic) for unplug while
    # forwarding.
    "modern": {
        "qemu": (["-device", "intel-iommu,intremap=on,aw-bits=48",
                  "-device", "edu,addr=03.0"] +
                 nic("04.0", 0, 0, model="igb") + nic("05.0", 0, 1, model="e1000e") +
                 ["-netdev", "hubport,id=hp2,hubid=0",
                  "-device", "virtio-net-pci,netdev=hp2,addr=06.0,disable-legacy=on,"
                             "iommu_platform=on,romfile=",
                  "-object", "memory-backend-memfd,id=shm0,size=1M,share=on",
                  "-device", "ivshmem-plain,memdev=shm0,addr=07.0",
                  "-device", "pcie-root-port,id=rp1,chassis=1,slot=1,addr=08.0",
                  "-device", "edu,id=hotedu,bus=rp1",
                  "-device", "pcie-root-port,id=rp2,chassis=2,slot=2,addr=09.0",
                  # Native PCIe hotplug (pciehp) rather than QEMU's default
                  # ACPI hotplug for root ports.
                  "-global", "ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off"] +
                 # Hub 1: an e1000 for a vfiokit port and an e1000 peer on
                 # the kernel's driver, apart from hub 0.
                 nic("0a.0", 1, 3) + nic("0b.0", 1, 4) +
                 # And a third hotplug root port holding an e1000e (id
                 # hotnic) on hub 1, which the host unplugs while vfiokit
                 # forwards on it and plugs back (device_add with the same
                 # netdev hp5, which outlives its NIC).
                 ["-device", "pcie-root-port,id=rp3,chassis=3,slot=3,addr=0c.0",
                  "-netdev", "hubport,id=hp5,hubid=1",
                  "-device", "e1000e,id=hotnic,netdev=hp5,bus=rp3,romfile="]),
        # One 1 GiB huge page too, for the kernel selftests' 1 GiB hugetlb
        # mappings (hugepagesz= takes the hugepages= after it; 3 GiB of RAM
        # is too little for the kernel to find a free 1 GiB page).
        "cmdline": "intel_iommu=on iommu=nopt vfio_pci.enable_sriov=1 hugepagesz=1G hugepages=1",
        "memory": "4G",
        "hugepages": 512,
        "qemus": ("root",),
    },
}


def die(msg):
    print(f"lab: {msg}", file=sys.stderr)
    sys.exit(2)


# --- initramfs (newc cpio, written directly) --------------------------------

class Cpio:
    def __init__(self):
        self.entries = {}  # path -> (mode, data)

    def dir(self, path):
        parts = path.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            self.entries.setdefault("/".join(parts[:i]), (stat.S_IFDIR | 0o755, b""))

    def file(self, path, data, mode=0o644):
        path = path.strip("/")
        self.dir(os.path.dirname(path)) if "/" in path else None
        self.entries[path] = (stat.S_IFREG | mode, data)

    def symlink(self, path, target):
        path = path.strip("/")
        self.dir(os.path.dirname(path)) if "/" in path else None
        self.entries[path] = (stat.S_IFLNK | 0o777, target.encode())

    def host_file(self, path, host_path):
        st = os.stat(host_path)
        with open(host_path, "rb") as f:
            self.file(path, f.read(), stat.S_IMODE(st.st_mode) | 0o444)

    def write(self, f):
        """Writes the archive to the binary file f, entry by entry: the
        initramfs is tens of MB, and one buffer for all of it costs a
        copy of every byte on a host the guests keep busy."""
        ino = 1
        pos = 0
        for path in sorted(self.entries) + ["TRAILER!!!"]:
            mode, data = self.entries.get(path, (0, b""))
            name = path.encode() + b"\0"
            hdr = ("070701" + "".join(f"{v:08x}" for v in (
                ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name), 0))).encode() + name
            hdr += b"\0" * (-(pos + len(hdr)) % 4)
            f.write(hdr)
            f.write(data)
            pos += len(hdr) + len(data)
            if pos % 4:
                f.write(b"\0" * (-pos % 4))
                pos += -pos % 4
            ino += 1

    def bytes(self):
        buf = io.BytesIO()
        self.write(buf)
        return buf.getvalue()


def shared_libs(binary):
    """Absolute paths of the shared objects `binary` loads (ldd), incl. the
    loader. ldd's answer is kept beside the stripped copy (strip_cache_dir)
    while the binary's size and mtime stay: every lab test asks it of the
    same binaries, and it runs the loader each time."""
    st = os.stat(binary)
    real = os.path.realpath(binary)
    key = f"{real} {st.st_size} {st.st_mtime_ns}\n"
    cache = os.path.join(strip_cache_dir(), hashlib.sha1(real.encode()).hexdigest()[:16] + ".ldd")
    try:
        with open(cache) as f:
            lines = f.read().splitlines(keepends=True)
        if lines and lines[0] == key and all(os.path.exists(p.strip()) for p in lines[1:]):
            return [p.strip() for p in lines[1:]]
    except OSError:
        pass
    libs = ldd_libs(binary)
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    tmp = f"{cache}.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(key + "".join(p + "\n" for p in libs))
    os.replace(tmp, cache)
    return libs


def ldd_libs(binary):
    res = subprocess.run(["ldd", binary], capture_output=True, text=True)
    if res.returncode != 0:
        if "not a dynamic executable" in res.stdout + res.stderr:
            return []
        die(f"ldd {binary} failed: {res.stderr.strip()}")
    libs = []
    for line in res.stdout.splitlines():
        m = re.search(r"=>\s*(/\S+)", line) or re.match(r"\s*(/\S+)", line)
        if m:
            libs.append(m.group(1))
        elif "not found" in line:
            die(f"{binary}: shared library {line.strip()}")
    return libs


def strip_cache_dir():
    base = os.environ.get("VFIOKIT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "vfiokit")
    return os.path.join(base, "stripped")


def without_debug_info(binary):
    """The binary's bytes without DWARF (strip --strip-debug): the test
    binaries are ~40 MB of mostly debug info each, and every byte of the
    initramfs is copied and unpacked under software emulation at boot.
    Symbols stay, so sanitizer and crash reports still name functions.
    Every lab test packs the same binaries, so the stripped copy is kept
    (one per binary path, replaced when the binary's size or mtime moves)."""
    st = os.stat(binary)
    real = os.path.realpath(binary)
    key = f"{real} {st.st_size} {st.st_mtime_ns}"
    cache = os.path.join(strip_cache_dir(), hashlib.sha1(real.encode()).hexdigest()[:16])
    try:
        with open(cache + ".key") as f:
            if f.read() == key:
                with open(cache, "rb") as b:
                    return b.read()
    except OSError:
        pass
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    tmp = f"{cache}.{os.getpid()}"
    res = subprocess.run(["strip", "--strip-debug", "-o", tmp, binary], capture_output=True,
                         text=True)
    if res.returncode != 0:
        die(f"strip {binary} failed: {res.stderr.strip()}")
    with open(tmp, "rb") as f:
        data = f.read()
    # Concurrent lab tests may strip the same binary: each renames its own
    # complete copy into place, the key last.
    os.replace(tmp, cache)
    with open(tmp + ".key", "w") as f:
        f.write(key)
    os.replace(tmp + ".key", cache + ".key")
    return data


def named_binaries(binaries, texts, contents=None):
    """The binaries a job can call: those whose file name appears as a word
    in the job or the guest libraries it sources, and those a packed binary
    names in its own bytes (a test that runs vfiokit-procinfo), until none
    is added. Every other one would only be copied and unpacked under
    emulation for nothing; a job calling one left out fails with 'not
    found', never silently. contents(b) gives a binary's bytes."""
    words = set(re.findall(r"[\w.+-]+", "\n".join(texts)))
    packed = [b for b in binaries if os.path.basename(b) in words]
    todo = list(packed)
    while contents and todo:
        data = contents(todo.pop())
        for b in binaries:
            name = os.path.basename(b).encode()
            if b not in packed and name in data and re.search(
                    rb"(?<![\w.-])" + re.escape(name) + rb"(?![\w.-])", data):
                packed.append(b)
                todo.append(b)
    return [b for b in binaries if b in packed]


def env_file(assignments):
    """The text of /lab/env, which the guest's /init sources before the job:
    one `export NAME=VALUE` per NAME=VALUE given (--env), the value quoted
    for sh, so every process the job starts inherits it (UBSAN_OPTIONS for
    a sanitizer build's binaries)."""
    lines = []
    for a in assignments:
        name, eq, value = a.partition("=")
        if not eq or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            die(f"--env {a!r}: expected NAME=VALUE")
        lines.append(f"export {name}={shlex.quote(value)}\n")
    return "".join(lines)


def job_runner(names):
    """/lab/job.sh of a guest that runs several jobs (/lab/job-N.sh, in
    order): lab_job in guest-lib.sh runs each in a subshell between
    JOB and JOBEND markers and puts the machine back as it booted before
    the next (devices on their boot drivers, no process, file or address
    left behind)."""
    lines = ["# Several jobs in one guest (lab.py --job ... --job ...).", "lab_boot_state"]
    lines += [f"lab_job {shlex.quote(n)} /lab/job-{i + 1}.sh" + (" last" if i == len(names) - 1 else "")
              for i, n in enumerate(names)]
    return "\n".join(lines) + "\n"


def build_initramfs(binaries, job, extra_files, dpdk=(), python=False, env=(), out=None):
    """The initramfs's bytes, or None when written to the binary file
    `out`."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    if not os.path.exists(busybox):
        die("busybox missing: run devtools/bootstrap.sh (apt-get install busybox-static)")
    c = Cpio()
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "dev", "proc", "sys", "tmp", "run",
              "etc", "lab", "opt/vfiokit/bin", "root"):
        c.dir(d)
    c.host_file("bin/busybox", busybox)
    applets = subprocess.run([busybox, "--list-full"], capture_output=True, text=True).stdout
    for a in applets.split():
        if a != "bin/busybox":
            c.symlink(a, "/bin/busybox")
    c.file("init", open(os.path.join(HERE, "guest-init.sh"), "rb").read(), 0o755)
    c.file("lab/lib.sh", open(os.path.join(HERE, "guest-lib.sh"), "rb").read())
    c.file("lab/net.sh", open(os.path.join(HERE, "guest-net.sh"), "rb").read())
    if isinstance(job, str):
        c.file("lab/job.sh", job.encode())
    else:
        # [(name, text), ...]: several jobs, one after the other.
        for i, (_, text) in enumerate(job):
            c.file(f"lab/job-{i + 1}.sh", text.encode())
        c.file("lab/job.sh", job_runner([n for n, _ in job]).encode())
    c.file("lab/env", env_file(env).encode())
    c.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n")
    c.file("etc/group", b"root:x:0:\nnogroup:x:65534:\n")
    for dest, src in extra_files:
        c.host_file(dest, src)
    libs = set()
    for b in binaries:
        if not os.path.isfile(b):
            die(f"binary {b} not found (build the project first: meson compile -C build)")
        c.file("opt/vfiokit/bin/" + os.path.basename(b), without_debug_info(b), 0o755)
        libs.update(shared_libs(b))
    for lib in sorted(libs):
        c.host_file(lib, os.path.realpath(lib))
    for version in dpdk:
        try:
            bundles.add_dpdk(c, version, root_dir)
        except bundles.BundleError as e:
            die(str(e))
    if python:
        try:
            bundles.add_python(c)
        except bundles.BundleError as e:
            die(str(e))
    if out is None:
        return c.bytes()
    c.write(out)
    return None


# --- running the guest -------------------------------------------------------

def root_dir():
    """The Debian 13 root holding QEMU 11.1 (built once per machine)."""
    res = subprocess.run([os.path.join(HERE, "build-root.sh")], stdout=subprocess.PIPE, text=True)
    if res.returncode != 0:
        die("lab root build failed (see above)")
    return res.stdout.strip().splitlines()[-1]


# Runs QEMU inside the root: a private mount namespace (nothing stays
# mounted when QEMU exits) with /proc, /dev and the host directories QEMU
# reads and writes (kernel, initramfs, serial files, sockets) bound at the
# same paths (the mount points stay behind as empty directories; lab.py
# removes the per-run one). QEMU is named by absolute path inside the root,
# so that no PATH lookup can pick a wrapper or the host's QEMU.
IN_ROOT = r"""
root=$1; n=$2; shift 2
mount -t proc proc "$root/proc" && mount --rbind /dev "$root/dev" || exit 125
while [ "$n" -gt 0 ]; do
    mkdir -p "$root$1" && mount --bind "$1" "$root$1" || exit 125
    shift; n=$((n - 1))
done
exec chroot "$root" /usr/bin/qemu-system-x86_64 "$@"
"""


def qemu_command(qemu, dirs, root):
    """The argv prefix that runs this pair's QEMU with `dirs` visible to it."""
    if qemu == "host":
        if not shutil.which("qemu-system-x86_64"):
            die("qemu-system-x86_64 missing: run devtools/bootstrap.sh")
        return ["qemu-system-x86_64"]
    if not os.access(os.path.join(root, "usr/bin/qemu-system-x86_64"), os.X_OK):
        die(f"{root} has no QEMU: rebuild it (devtools/lab/build-root.sh)")
    return (["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", IN_ROOT, "sh",
             root, str(len(dirs))] + list(dirs))


def run_guest(cmd, tmp, timeout, silent_after, retrying):
    """Runs QEMU (`cmd`, its serial files and sockets in `tmp`) until it
    ends or `timeout` s pass, serving the action channel. A boot that
    prints nothing at all for `silent_after` s is stuck, not slow
    (watchdog.py): it is killed and booted once more, after retrying(report)
    was called. Returns (proc, channel, outcome, first output s, the
    reports of the silent boots)."""
    files = [os.path.join(tmp, f) for f in ("console.txt", "results.txt")]
    qemu_txt = os.path.join(tmp, "qemu.txt")
    sockets = [f"{tmp}/actions.sock", f"{tmp}/qmp.sock"]
    silences = []
    for attempt in range(2):
        for p in files + [qemu_txt] + sockets:
            if os.path.exists(p):
                os.unlink(p)
        with open(qemu_txt, "w") as qlog:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=qlog, stderr=qlog)
            # The channel waits for QEMU's socket no longer than the watchdog
            # waits for output, so that it is gone before a retry's QEMU
            # makes the socket again.
            channel = actions.Channel(*sockets, connect_seconds=min(60, silent_after or 60))
            channel.start()
            outcome, first = watchdog.watch(proc, files, timeout, silent_after)
            if outcome == "silent":
                with open(qemu_txt, errors="replace") as f:
                    silences.append(watchdog.silence_report(silent_after, proc, sockets, f.read()))
            if outcome != "exited":
                proc.kill()
                proc.wait()
            # It ends when QEMU goes, or at its connect deadline.
            channel.join(5 if outcome != "silent" else None)
        if outcome != "silent" or attempt == 1:
            return proc, channel, outcome, first, silences
        retrying(silences[-1])


def kernel_dir(version):
    res = subprocess.run([os.path.join(HERE, "build-kernel.sh"), version], stdout=subprocess.PIPE,
                         text=True)
    if res.returncode != 0:
        die("lab kernel build failed (see above)")
    return res.stdout.strip().splitlines()[-1]


class Step:
    """One framed step of a job: its name, exit status (None until its END
    marker arrives), its output lines, and why the host failed it although
    the guest said it passed (a gtest run of zero tests)."""

    def __init__(self, name):
        self.name = name
        self.rc = None
        self.seconds = None  # guest time the step took, when the guest said
        self.lines = []
        self.host_failure = None
        self.job = None  # the job (of several in one guest) that ran it

    @property
    def passed(self):
        return self.rc == 0 and self.host_failure is None

    def status(self):
        if self.rc is None:
            return "INCOMPLETE (no END marker)"
        if self.rc != 0:
            return f"FAIL (exit {self.rc})"
        if self.host_failure:
            return f"FAIL ({self.host_failure})"
        return "PASS"


class Results:
    """What the guest reported: steps, output outside any step, errors the
    job's helpers raised outside steps (@@VFIOKIT:ERROR, e.g. a failed
    vfio_bind), and whether the guest booted and finished the job."""

    def __init__(self):
        self.steps = []
        self.skipped = []  # (name, reason): steps this shape cannot run
        self.outside = []
        self.errors = []
        self.booted = False
        self.release = None  # uname -r of the guest kernel
        self.done = False
        # Several jobs in one guest (lab.py --job A --job B): each job's
        # name, in order, with its guest time once its JOBEND came
        # (None until then), and the errors raised while it ran.
        self.jobs = []
        self.job_seconds = {}
        self.job_errors = {}
        self.job_skips = {}


def parse_results(text):
    r, cur, job = Results(), None, None
    for line in text.splitlines():
        if line.startswith(MARK + "JOB "):
            # The next job of several in one guest; a step still open stays
            # INCOMPLETE.
            job = line[len(MARK) + 4:].strip()
            r.jobs.append(job)
            r.job_seconds[job] = None
            r.job_errors.setdefault(job, [])
            cur = None
        elif line.startswith(MARK + "JOBEND "):
            parts = line[len(MARK) + 7:].split()
            if job is not None and parts and parts[0] == job:
                r.job_seconds[job] = int(parts[1]) / 100 if len(parts) > 1 and parts[1].isdigit() else 0
            else:
                r.errors.append(f"end of job '{parts[0] if parts else ''}' that was not running")
            job = cur = None
        elif line.startswith(MARK + "BOOTED"):
            r.booted = True
            r.release = line[len(MARK) + 6:].strip() or None
        elif line.startswith(MARK + "BEGIN "):
            # A BEGIN inside an open step leaves that step without its END:
            # it stays INCOMPLETE and fails.
            cur = Step(line[len(MARK) + 6:].strip())
            cur.job = job
            r.steps.append(cur)
        elif line.startswith(MARK + "END "):
            parts = line[len(MARK) + 4:].split()
            if cur is not None and parts and parts[0] == cur.name:
                try:
                    cur.rc = int(parts[1]) if len(parts) > 1 else -1
                except ValueError:
                    cur.rc = -1
                if len(parts) > 2 and parts[2].isdigit():
                    cur.seconds = int(parts[2]) / 100
            else:
                r.errors.append(f"END of step '{parts[0] if parts else ''}' that was not open")
            cur = None
        elif line.startswith(MARK + "SKIP "):
            # A step the guest could not run here, with its reason.
            name, _, reason = line[len(MARK) + 5:].strip().partition(" ")
            r.skipped.append((name, reason or "no reason given"))
            if job:
                r.job_skips[job] = r.job_skips.get(job, 0) + 1
        elif line.startswith(MARK + "ERROR "):
            err = line[len(MARK) + 6:].strip()
            r.errors.append(f"{job}: {err}" if job else err)
            if job:
                r.job_errors[job].append(err)
        elif line.startswith(MARK + "DONE"):
            r.done = True  # a step still open stays INCOMPLETE
            cur = None
        elif cur is not None:
            cur.lines.append(line)
        else:
            r.outside.append(line)
    for s in r.steps:
        if s.rc == 0:
            s.host_failure = gtest_ran_nothing(s.lines)
    return r


GTEST_RUNNING = re.compile(r"\[==========\] Running (\d+) tests?")
GTEST_PASSED = re.compile(r"\[  PASSED  \] (\d+) tests?")
GTEST_SKIPPED = re.compile(r"\[  SKIPPED \] (\d+) tests?")
GTEST_FAILED = re.compile(r"\s*(\d+) FAILED TESTS?")


def gtest_ran_nothing(lines):
    """Why a step that ran gtest proved nothing, or None. A filter that
    matches no test makes gtest exit 0 with "Running 0 tests"; a run whose
    every test skipped passes the same way. Either fails the step."""
    running = passed = skipped = failed = 0
    seen = False
    for line in lines:
        if m := GTEST_RUNNING.match(line):
            seen = True
            running += int(m.group(1))
        elif m := GTEST_PASSED.match(line):
            passed += int(m.group(1))
        elif m := GTEST_SKIPPED.match(line):
            skipped += int(m.group(1))
        elif m := GTEST_FAILED.match(line):
            failed += int(m.group(1))
    if not seen:
        return None
    if running == 0:
        return "gtest ran 0 tests: the filter matches none"
    if passed == 0 and failed == 0:
        return f"gtest passed 0 tests ({skipped} skipped)"
    return None


def step_counts(lines, seconds=None):
    """'15 passed, 1 skipped' from gtest summaries or ok/not ok checks in a
    step, and the step's guest time when known ('15 passed, 12.3 s')."""
    passed = skipped = failed = known = 0
    for line in lines:
        if m := GTEST_PASSED.match(line):
            passed += int(m.group(1))
        if m := GTEST_SKIPPED.match(line):
            skipped += int(m.group(1))
        if m := GTEST_FAILED.match(line):
            failed += int(m.group(1))
        if line.startswith("ok - "):
            passed += 1
        elif line.startswith("not ok - "):
            failed += 1
        elif line.startswith("skip - "):
            skipped += 1
        elif line.startswith("known - "):
            known += 1  # a kernel test listed as wrong for an emulated device
    parts = [f"{n} {w}" for n, w in ((passed, "passed"), (failed, "failed"), (skipped, "skipped"),
                                     (known, "known wrong for emulation")) if n]
    if seconds is not None:
        parts.append(f"{seconds:.1f} s")
    return f" ({', '.join(parts)})" if parts else ""


def judge(r, shape, quiet=False, timed_out=False, timeout=0, panicked=False, qemu_problem=None,
          silent=None, jobs=()):
    """The report lines for parsed results, and the problems that fail the
    run (empty: it passed). `silent` is the watchdog's problem text when
    the guest printed nothing at all (the last boot was silent). `jobs`
    names the jobs of a guest that runs several (lab.py --job A --job B):
    each gets its own verdict line, and one that never started fails."""
    out = []
    for s in r.steps:
        if not quiet or not s.passed:
            out.extend(s.lines)
        out.append(f"lab[{shape}] {s.name}: {s.status()}{step_counts(s.lines, s.seconds)}")
    for name, reason in r.skipped:
        out.append(f"lab[{shape}] {name}: SKIPPED ({reason})")
    if r.outside:
        # Not a step: reported, never counted as a pass.
        out.append(f"lab[{shape}] output outside any step ({len(r.outside)} line(s)):")
        out.extend("  | " + line for line in r.outside)
    problems = []
    if qemu_problem:
        problems.append(qemu_problem)
    if timed_out:
        problems.append(f"guest timed out after {timeout:.0f} s")
    if panicked:
        problems.append("guest kernel panicked")
    if silent:
        problems.append(silent)
    if not r.booted and not timed_out and not panicked and not silent:
        problems.append("guest never reached the job (init failed?)")
    elif r.booted and not r.done and not timed_out and not panicked:
        problems.append("guest stopped before the job finished")
    problems.extend(f"job error: {e}" for e in r.errors)
    failed = [s for s in r.steps if not s.passed]
    if failed:
        problems.append(f"{len(failed)} step(s) failed: " + ", ".join(s.name for s in failed))
    if not r.steps:
        problems.append("the job ran no steps")
    # Several jobs in one guest: a line per job, so that the one that
    # failed is named as if it had had a guest of its own.
    bad_jobs = []
    for job in r.jobs:
        steps = [s for s in r.steps if s.job == job]
        why = [f"job error: {e}" for e in r.job_errors.get(job, [])]
        bad = [s.name for s in steps if not s.passed]
        if bad:
            why.append(f"{len(bad)} step(s) failed: " + ", ".join(bad))
        if not steps:
            why.append("the job ran no steps")
        secs = r.job_seconds.get(job)
        if secs is None:
            why.append("the job never finished")
        if why:
            bad_jobs.append(job)
            out.append(f"lab[{shape}] {job}: FAILED: " + "; ".join(why))
        else:
            out.append(f"lab[{shape}] {job}: {len(steps)} step(s) passed, "
                       f"{r.job_skips.get(job, 0)} skipped (job {secs:.1f} s in the guest)")
    for job in jobs:
        if len(jobs) > 1 and job not in r.jobs:
            bad_jobs.append(job)
            out.append(f"lab[{shape}] {job}: FAILED: never started (an earlier job in this guest "
                       "did not finish)")
    if bad_jobs:
        problems.append("job(s) failed: " + ", ".join(bad_jobs))
    return out, problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", required=True, choices=sorted(SHAPES))
    ap.add_argument("--job", required=True, action="append",
                    help="job script (busybox sh) run in the guest; given more than once, the "
                    "jobs run one after the other in the same guest, each reported on its own")
    ap.add_argument("--bin", action="append", default=[], help="binary to put in the guest PATH")
    ap.add_argument("--dpdk", action="append", default=[], choices=sorted(bundles.BUNDLES),
                    help="put this DPDK's testpmd into the guest (bundles.py)")
    ap.add_argument("--python", action="store_true",
                    help="put the host's python3 and DPDK's dpdk-telemetry.py into the guest, with "
                    "only the stdlib modules that script imports (bundles.py)")
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                    help="export this to the job and every program it runs")
    ap.add_argument("--timeout", type=float, default=240, help="seconds before the guest is killed")
    ap.add_argument("--silent-timeout", type=float, default=120,
                    help="seconds without a byte on either serial port before a boot counts as "
                    "stuck: QEMU is killed and the guest booted once more (0: never)")
    ap.add_argument("--name", action="append", default=[],
                    help="name for the report (default: job file name); once per --job")
    ap.add_argument("--quiet", action="store_true", help="print only the summary and failures")
    ap.add_argument("--pair", default="6.12", choices=sorted(PAIRS),
                    help="lab pair: kernel and QEMU (6.12: QEMU 7.2; 7.3: QEMU 11.1)")
    ap.add_argument("--kselftests", action="store_true",
                    help="put the kernel's VFIO selftests (build-selftests.sh VERSION) in the guest")
    ap.add_argument("--kernel", help="boot this lab kernel version instead of the pair's "
                    "(build-kernel.sh VERSION) on the pair's QEMU")
    args = ap.parse_args()

    if args.name and len(args.name) != len(args.job):
        die("give --name once per --job, or not at all")
    names = args.name or [os.path.splitext(os.path.basename(j))[0] for j in args.job]
    if len(set(names)) != len(names):
        die(f"job names must differ: {' '.join(names)}")
    name = "+".join(names)
    # Jobs sharing a guest may each ask for the same DPDK.
    args.dpdk = list(dict.fromkeys(args.dpdk))
    shape = SHAPES[args.shape]
    pair = PAIRS[args.pair]
    if pair["qemu"] not in shape.get("qemus", ("host", "root")):
        die(f"shape {args.shape} needs devices pair {args.pair}'s QEMU lacks; "
            f"pairs with them: {', '.join(p for p, v in PAIRS.items() if v['qemu'] in shape['qemus'])}")
    version = args.kernel or pair["kernel"]
    # Results name the pair (lab[7.3/iommu]); another kernel on a pair's
    # QEMU is named by both.
    label = f"{args.pair}/{args.shape}" if version == pair["kernel"] else \
        f"{version}@{args.pair}/{args.shape}"
    h0 = time.monotonic()
    kdir = kernel_dir(version)
    root = root_dir() if pair["qemu"] == "root" else None
    if args.kselftests:
        res = subprocess.run([os.path.join(HERE, "build-selftests.sh"), version],
                             stdout=subprocess.PIPE, text=True)
        if res.returncode != 0:
            die("kernel selftests build failed (see above)")
        sdir = res.stdout.strip().splitlines()[-1]
        with open(os.path.join(sdir, "programs")) as f:
            args.bin += [os.path.join(sdir, p) for p in f.read().split()]
    texts = [open(j).read() for j in args.job]
    job = texts[0] if len(texts) == 1 else list(zip(names, texts))
    packed = named_binaries(args.bin, texts + [open(os.path.join(HERE, f)).read()
                                               for f in ("guest-lib.sh", "guest-net.sh")],
                            without_debug_info)
    # The options that kernel was asked for (its version's fragment), which
    # the guest self-test checks against /proc/config.gz.
    fragment = os.path.join(kdir, "fragment")
    if not os.path.exists(fragment):
        fragment = os.path.join(HERE, "kernel.config")
    extra = [("lab/kernel.config", fragment)]

    with tempfile.TemporaryDirectory(prefix="vfiokit-lab-") as tmp:
        t0 = time.monotonic()
        # Host time before the initramfs: the kernel, root and selftest
        # cache checks and choosing the binaries.
        host_prep = t0 - h0
        initrd = os.path.join(tmp, "initrd.cpio")
        with open(initrd, "wb") as f:
            build_initramfs(packed, job, extra, args.dpdk, args.python, args.env, out=f)
        initrd_mb = os.path.getsize(initrd) / (1 << 20)
        results = os.path.join(tmp, "results.txt")
        console = os.path.join(tmp, "console.txt")
        cmd = (qemu_command(pair["qemu"], [tmp, kdir], root) + COMMON +
               ["-kernel", os.path.join(kdir, "bzImage"), "-initrd", initrd,
                "-m", shape["memory"],
               "-append", f"{BASE_CMDLINE} hugepages={shape['hugepages']} {shape['cmdline']} {pair['cmdline']}".rstrip(),
                "-serial", f"file:{console}", "-serial", f"file:{results}",
                # ttyS2 and QMP: the host action channel (actions.py).
                "-serial", f"unix:{tmp}/actions.sock,server=on,wait=off",
                "-qmp", f"unix:{tmp}/qmp.sock,server=on,wait=off"] +
               shape["qemu"])
        t1 = time.monotonic()
        read = lambda p: open(p, errors="replace").read() if os.path.exists(p) else ""
        qemu_txt = os.path.join(tmp, "qemu.txt")
        proc, channel, outcome, first, silences = run_guest(
            cmd, tmp, args.timeout, args.silent_timeout,
            lambda s: print(f"lab[{label}] {name}: retried after silent boot: {s}", flush=True))
        timed_out = outcome == "timeout"
        t2 = time.monotonic()
        if root:
            try:
                os.rmdir(root + tmp)
            except OSError:
                pass  # an empty directory left in the cached root
        out, cons, qemu_out = read(results), read(console), read(qemu_txt)

    r = parse_results(out)
    qemu_problem = None
    if proc.returncode not in (0, None) and outcome == "exited":
        qemu_problem = f"qemu exited with {proc.returncode}: {qemu_out.strip()[-500:]}"
    silent = None
    if outcome == "silent":
        silent = (f"guest printed nothing for {args.silent_timeout:.0f} s"
                  + (" (twice: retried after silent boot)" if len(silences) > 1 else "")
                  + f": {silences[-1]}; QEMU command: {shlex.join(cmd)}")
    lines, problems = judge(r, label, quiet=args.quiet, timed_out=timed_out,
                            timeout=args.timeout, panicked="Kernel panic" in cons,
                            qemu_problem=qemu_problem, silent=silent, jobs=names)
    lines.extend(f"lab[{label}] {a}" for a in channel.log)
    if channel.problem:
        problems.append(channel.problem)
    # The guest must run the kernel this pair names, not a stale cache entry.
    if r.release and not r.release.startswith(version + "."):
        problems.append(f"guest booted Linux {r.release}, not {version}")
    if problems and silences and outcome != "silent":
        # The failure was the second boot's: the first was silent.
        problems.append(f"retried after silent boot: {silences[0]}")
    print("\n".join(lines))
    if problems:
        print("---- guest console (last 60 lines) ----")
        print("\n".join(cons.splitlines()[-60:]))
        print(f"lab[{label}] {name}: FAILED: " + "; ".join(problems))
        return 1
    n = len(r.steps)
    retried = f", retried after silent boot: {silences[0]}" if silences else ""
    print(f"lab[{label}] {name}: {n} step(s) passed, {len(r.skipped)} skipped "
          f"(Linux {r.release}, host checks {host_prep:.1f} s, initramfs {initrd_mb:.1f} MB in "
          f"{t1 - t0:.1f} s with {len(packed)} "
          f"of {len(args.bin)} binaries, first output at {first or 0:.1f} s, guest {t2 - t1:.1f} s"
          f"{retried})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

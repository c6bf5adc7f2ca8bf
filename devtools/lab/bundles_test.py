#!/usr/bin/env python3
"""Host tests of bundles.py: path resolution inside a system root, the ELF
reader and the DT_NEEDED walk (checked against ldd on this host's own
binaries), and what a bundle puts into the initramfs."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bundles  # noqa: E402


def ldd_names(path):
    """Names ldd resolves for `path` (name => path lines), and the loader."""
    out = subprocess.run(["ldd", path], capture_output=True, text=True, check=True).stdout
    names = set()
    for line in out.split("\n"):
        parts = line.split()
        if len(parts) >= 3 and parts[1] == "=>":
            names.add(parts[0])
        elif parts and parts[0].startswith("/"):
            names.add(os.path.basename(parts[0]))
    return names


class FakeCpio:
    def __init__(self):
        self.entries = {}

    def dir(self, path):
        self.entries[path] = ("dir", None)

    def file(self, path, data, mode=0o644):
        self.entries[path.strip("/")] = ("file", data)

    def symlink(self, path, target):
        self.entries[path.strip("/")] = ("link", target)

    def host_file(self, path, host_path):
        self.entries[path.strip("/")] = ("host", host_path)


class Resolve(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="bundles-test-")
        os.makedirs(f"{self.root}/usr/lib/x")
        open(f"{self.root}/usr/lib/x/libz.so.1.3", "w").close()
        os.symlink("usr/lib", f"{self.root}/lib")
        os.symlink("libz.so.1.3", f"{self.root}/usr/lib/x/libz.so.1")
        # Absolute targets mean the root's /, never the host's.
        os.symlink("/usr/lib/x/libz.so.1", f"{self.root}/usr/lib/x/abs")

    def tearDown(self):
        shutil.rmtree(self.root)

    def test_relative_and_absolute_links_stay_inside(self):
        want = f"{self.root}/usr/lib/x/libz.so.1.3"
        self.assertEqual(bundles.resolve(self.root, "/lib/x/libz.so.1"), want)
        self.assertEqual(bundles.resolve(self.root, "/lib/x/abs"), want)
        self.assertEqual(bundles.resolve(self.root, "/usr/lib/../lib/x/abs"), want)

    def test_link_loop_is_an_error(self):
        os.symlink("loop", f"{self.root}/loop")
        with self.assertRaises(bundles.BundleError):
            bundles.resolve(self.root, "/loop")

    def test_ld_so_conf_includes(self):
        os.makedirs(f"{self.root}/etc/ld.so.conf.d")
        with open(f"{self.root}/etc/ld.so.conf", "w") as f:
            f.write("# comment\ninclude /etc/ld.so.conf.d/*.conf\n/opt/a\n")
        with open(f"{self.root}/etc/ld.so.conf.d/x.conf", "w") as f:
            f.write("/usr/lib/x\n")
        self.assertEqual(bundles.conf_dirs(self.root), ["/usr/lib/x", "/opt/a"])


class Elf(unittest.TestCase):
    def test_reads_interp_and_needed_of_a_host_binary(self):
        sh = os.path.realpath(shutil.which("python3"))
        interp, needed, _, soname = bundles.elf_info(sh)
        self.assertTrue(interp and interp.startswith("/"))
        self.assertIn("libc.so.6", needed)
        self.assertIsNone(soname)

    def test_not_elf(self):
        self.assertIsNone(bundles.elf_info(os.path.abspath(__file__)))

    def test_closure_matches_ldd(self):
        # The walk must find what the loader finds, on this host's own files.
        for prog in ("python3", "dpdk-testpmd"):
            path = shutil.which(prog)
            if path is None:
                continue
            with self.subTest(prog=prog):
                found, (interp, host) = bundles.closure("/", [path])
                self.assertEqual(set(found) | {os.path.basename(interp)}, ldd_names(path))
                self.assertTrue(os.path.isfile(host))

    def test_missing_library_names_it(self):
        root = tempfile.mkdtemp(prefix="bundles-test-")
        try:
            os.makedirs(f"{root}/usr/bin")
            shutil.copy(os.path.realpath(shutil.which("python3")), f"{root}/usr/bin/p")
            with self.assertRaisesRegex(bundles.BundleError, r"/usr/bin/p: \S+ not found in "):
                bundles.closure(root, ["/usr/bin/p"])
        finally:
            shutil.rmtree(root)


class Bundle(unittest.TestCase):
    @unittest.skipUnless(os.path.isfile("/usr/bin/dpdk-testpmd"),
                         "Debian 12's dpdk is not installed (devtools/bootstrap.sh)")
    def test_host_bundle_layout(self):
        c = FakeCpio()
        files, size = bundles.add_dpdk(c, "22.11", lambda: self.fail("needs no root"))
        p = "opt/dpdk-22.11"
        self.assertEqual(c.entries[f"{p}/bin/dpdk-testpmd"], ("host", "/usr/bin/dpdk-testpmd"))
        self.assertIn(f"{p}/lib/ld-linux-x86-64.so.2", c.entries)
        self.assertIn(f"{p}/lib/libc.so.6", c.entries)
        # Only the lab's plugins, each a link to the one copy in lib/.
        pmds = sorted(k for k in c.entries if k.startswith(f"{p}/pmds/"))
        # Debian 12's dpdk has the optional vhost PMD too.
        self.assertEqual(pmds, sorted(f"{p}/pmds/{n}.so"
                                      for n in bundles.PLUGINS + bundles.OPTIONAL_PLUGINS))
        for k in pmds:
            kind, target = c.entries[k]
            self.assertEqual(kind, "link")
            self.assertIn(f"{p}/lib/{os.path.basename(target)}", c.entries)
        wrapper = c.entries["usr/bin/dpdk-testpmd-22.11"][1].decode()
        self.assertIn(f"p=/{p}\n", wrapper)
        self.assertIn("--library-path $p/lib $p/bin/dpdk-testpmd -d $p/pmds", wrapper)
        self.assertTrue(c.entries[f"{p}/VERSION"][1].startswith(b"22.11."))
        self.assertGreater(size, 1 << 20)
        self.assertGreater(files, len(bundles.PLUGINS))

    def test_wrong_version_in_system_is_refused(self):
        root = tempfile.mkdtemp(prefix="bundles-test-")
        try:
            os.makedirs(f"{root}/var/lib/dpkg")
            with open(f"{root}/var/lib/dpkg/status", "w") as f:
                f.write("Package: dpdk\nStatus: install ok installed\nVersion: 25.11.1-1\n\n")
            with self.assertRaisesRegex(bundles.BundleError, "has dpdk 25.11.1-1"):
                bundles.add_dpdk(FakeCpio(), "24.11", lambda: root)
        finally:
            shutil.rmtree(root)

    def test_unknown_version(self):
        with self.assertRaisesRegex(bundles.BundleError, "known: 22.11, 24.11"):
            bundles.add_dpdk(FakeCpio(), "21.11", lambda: "/")


if __name__ == "__main__":
    unittest.main(verbosity=2)

#!/usr/bin/env python3
"""Host tests of bundles.py: path resolution inside a system root, the ELF
reader and the DT_NEEDED walk (checked against ldd on this host's own
binaries), what a bundle puts into the initramfs, and the Python bundle:
the modules a script's runs import, their layout, and the host's bundle
run alone in a chroot as the guest runs it."""

import os
import shutil
import subprocess
import sys
import tempfile
import threading
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
        self.entries[path.strip("/")] = ("dir", None)

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


CHROOT = shutil.which("chroot") or "/usr/sbin/chroot"
HOST_PYTHON = os.path.isfile(bundles.PYTHON) and os.path.isfile(bundles.TELEMETRY_CLIENT)


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


@unittest.skipUnless(os.access(bundles.PYTHON, os.X_OK),
                     f"no {bundles.PYTHON} (devtools/bootstrap.sh installs python3)")
class PythonImports(unittest.TestCase):
    """collect_imports on small scripts: what each run imports, and only that."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="bundles-test-")
        self.script = os.path.join(self.tmp, "s.py")
        write(self.script, "import sys, json\n"
                           "if sys.argv[1:] == ['-g']:\n"
                           "    import glob\n"
                           "print('ran', sys.argv[1:])\n")

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def collect(self, *runs):
        return bundles.collect_imports(bundles.PYTHON, self.script, list(runs))

    def test_what_the_runs_import(self):
        facts, mods = self.collect(([], "", False, "ran []"))
        self.assertIn("json.decoder", mods)
        self.assertIn("encodings.utf_8", mods, "startup imports count too")
        self.assertNotIn("glob", mods, "imported only by another run")
        self.assertNotIn("runpy", mods, "the collector imports nothing itself")
        self.assertEqual(facts["executable"], bundles.PYTHON)
        _, mods = self.collect(([], "", False, "ran []"), (["-g"], "", False, "ran ['-g']"))
        self.assertIn("glob", mods)
        self.assertNotIn("email", mods)

    def test_no_site_packages_of_this_host(self):
        # The guest has none, so a .pth file here must add nothing.
        facts, mods = self.collect(([], "", False, "ran"))
        stdlib = (facts["stdlib"], facts["platstdlib"])
        for name, origin in mods.items():
            if origin and origin.startswith("/"):
                self.assertTrue(origin.startswith(stdlib), (name, origin))

    def test_a_script_that_fails_is_an_error(self):
        write(self.script, "import no_such_module_here\n")
        with self.assertRaisesRegex(bundles.BundleError, "No module named 'no_such_module_here'"):
            self.collect(([], "", False, ""))

    def test_a_run_that_took_another_path_is_an_error(self):
        with self.assertRaisesRegex(bundles.BundleError, "expected 'usage:'"):
            self.collect(([], "", False, "usage:"))

    def test_a_session_with_the_stand_in_server(self):
        write(self.script, "import os, socket, sys\n"
                           "s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)\n"
                           "s.connect(os.path.join(os.environ['RUNTIME_DIRECTORY'], 'dpdk', "
                           "sys.argv[2], 'dpdk_telemetry.v2'))\n"
                           "print(s.recv(1024).decode()); s.send(b'/x,1'); "
                           "print(s.recv(1024).decode())\n")
        _, mods = self.collect((["-f", bundles.TELEMETRY_PREFIX], "", True, '{"/x": ["/", '))
        self.assertIn("socket", mods)


class PythonLayout(unittest.TestCase):
    """python_layout on a made-up stdlib: compiled files in the modules'
    places, the landmark, extension modules, and nothing from elsewhere."""

    def setUp(self):
        self.lib = tempfile.mkdtemp(prefix="bundles-test-")
        for f in ("__pycache__/os.cpython-311.pyc", "__pycache__/a.cpython-311.pyc",
                  "pkg/__pycache__/__init__.cpython-311.pyc", "a.py", "pkg/__init__.py",
                  "lib-dynload/_x.cpython-311-x86_64-linux-gnu.so", "os.py"):
            write(os.path.join(self.lib, f), "")
        self.facts = {"stdlib": self.lib, "platstdlib": self.lib, "cache_tag": "cpython-311"}

    def tearDown(self):
        shutil.rmtree(self.lib)

    def test_layout(self):
        so = f"{self.lib}/lib-dynload/_x.cpython-311-x86_64-linux-gnu.so"
        files, ext = bundles.python_layout(self.facts, {
            "a": f"{self.lib}/a.py", "pkg": f"{self.lib}/pkg/__init__.py", "_x": so,
            "sys": "built-in", "os": "frozen", "__main__": None,
            "mine": "/elsewhere/site-packages/mine.py"})
        self.assertEqual(files, {
            f"{self.lib}/a.pyc": f"{self.lib}/__pycache__/a.cpython-311.pyc",
            f"{self.lib}/pkg/__init__.pyc": f"{self.lib}/pkg/__pycache__/__init__.cpython-311.pyc",
            f"{self.lib}/os.pyc": f"{self.lib}/__pycache__/os.cpython-311.pyc",
            so: so})
        self.assertEqual(ext, [so])

    def test_a_host_without_python_or_the_client_says_what_to_install(self):
        with self.assertRaisesRegex(bundles.BundleError, "apt-get install python3"):
            bundles.add_python(FakeCpio(), python="/nonexistent/python3")
        with self.assertRaisesRegex(bundles.BundleError, "apt-get install dpdk-dev"):
            bundles.add_python(FakeCpio(), script="/nonexistent/dpdk-telemetry.py")

    def test_a_module_without_its_compiled_file_is_an_error(self):
        write(f"{self.lib}/b.py", "")
        with self.assertRaisesRegex(bundles.BundleError, r"b\.py has no compiled .*py3compile"):
            bundles.python_layout(self.facts, {"b": f"{self.lib}/b.py"})


@unittest.skipUnless(HOST_PYTHON, f"no {bundles.PYTHON} or {bundles.TELEMETRY_CLIENT} "
                     "(devtools/bootstrap.sh installs python3 and dpdk-dev)")
class PythonBundle(unittest.TestCase):
    """The host's bundle, unpacked into a directory and run there alone
    (chroot), as the guest runs it: its stdlib found, and DPDK's client
    through a session with the stand-in server."""

    @classmethod
    def setUpClass(cls):
        cls.cpio = FakeCpio()
        cls.files, cls.size = bundles.add_python(cls.cpio)
        cls.root = tempfile.mkdtemp(prefix="bundles-test-root-")
        for path, (kind, what) in cls.cpio.entries.items():
            dest = os.path.join(cls.root, path.strip("/"))
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            if kind == "dir":
                os.makedirs(dest, exist_ok=True)
            elif kind == "link":
                os.symlink(what, dest)
            elif kind == "host":
                shutil.copy(what, dest)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root)

    def test_contents(self):
        e = self.cpio.entries
        self.assertEqual(e["usr/bin/python3"], ("link", "python3.11"))
        self.assertIn("usr/bin/dpdk-telemetry.py", e)
        self.assertIn("usr/lib/python3.11/os.pyc", e, "the stdlib landmark")
        self.assertIn("usr/lib/python3.11/json/decoder.pyc", e)
        self.assertIn("usr/lib/python3.11/lib-dynload", e)
        self.assertTrue(any(p.startswith("usr/lib/python3.11/lib-dynload/readline.") for p in e))
        self.assertIn("lib/x86_64-linux-gnu/libreadline.so.8", e, "an extension's library")
        self.assertIn("lib64/ld-linux-x86-64.so.2", e)
        # Compiled files only (no .py to compile again under emulation),
        # and only what the client imports.
        self.assertEqual([p for p in e if p.endswith(".py")], ["usr/bin/dpdk-telemetry.py"])
        self.assertNotIn("usr/lib/python3.11/email/__init__.pyc", e)
        self.assertLess(self.size, 16 << 20)
        self.assertEqual(self.files, len([k for k, v in e.items() if v[0] == "host"]))

    def chroot(self, argv, **kw):
        return subprocess.run([CHROOT, self.root] + argv, capture_output=True, text=True,
                              env={"PATH": "/usr/bin:/bin"}, timeout=60, **kw)

    @unittest.skipUnless(os.geteuid() == 0, "chroot needs root")
    def test_it_finds_its_stdlib_alone(self):
        r = self.chroot(["/usr/bin/python3", "-c", "import sys; print(sys.path)"])
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertEqual(r.stdout, "['', '/usr/lib/python311.zip', '/usr/lib/python3.11', "
                                   "'/usr/lib/python3.11/lib-dynload']\n")
        # A module left out is really absent: nothing leaks from the host.
        r = self.chroot(["/usr/bin/python3", "-c", "import email"])
        self.assertIn("No module named 'email'", r.stderr)

    @unittest.skipUnless(os.geteuid() == 0, "chroot needs root")
    def test_dpdk_telemetry_session_alone(self):
        sockdir = os.path.join(self.root, "run/dpdk/t")
        os.makedirs(sockdir, exist_ok=True)
        ready = threading.Event()
        server = threading.Thread(target=bundles.serve_telemetry, daemon=True,
                                  args=(os.path.join(sockdir, "dpdk_telemetry.v2"), ready))
        server.start()
        ready.wait(10)
        r = subprocess.run([CHROOT, self.root, "/usr/bin/python3", "/usr/bin/dpdk-telemetry.py",
                            "-f", "t"], input="/info\n/ethdev/stats,0\n", capture_output=True,
                           text=True, env={"PATH": "/usr/bin:/bin", "RUNTIME_DIRECTORY": "/run"},
                           timeout=60)
        server.join(30)
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertEqual(r.stdout, '{"/info": ["/", "/info"]}\n'
                                   '{"/ethdev/stats": ["/", "/info"]}\n')
        r = self.chroot(["/usr/bin/python3", "/usr/bin/dpdk-telemetry.py", "-l"])
        self.assertEqual((r.returncode, r.stderr), (0, ""))


if __name__ == "__main__":
    unittest.main(verbosity=2)

#!/usr/bin/env python3
"""Host tests of guest-net.sh's testpmd log readers (busybox sh, as in the
guest): the prompt and command echoes that land inside buffered statistics
are cut out, and the forward and NIC statistics are read per stop and port."""

import os
import shutil
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
BUSYBOX = shutil.which("busybox") or "/bin/busybox"

# What a testpmd log looks like when stdout is a file: the prompt and the
# echo of each command (ending CR LF) are written at once, the statistics
# when stdio's buffer fills, so the first can land inside the second.
RAW = (
    "testpmd> Done\n"
    "set fwd rxonly\r\n"
    "testpmd> start\r\n"
    "testpmd> stop\r\n"
    "  ---------------------- Forward statistics for port 0  ----------------------\n"
    "  RX-packets: 10testpmd> start tx_first\r\n"
    "00           RX-dropped: 0             RX-total: 1000\n"
    "  TX-packets: 0              TX-dropped: 0             TX-total: 0\n"
    "  ---------------------- Forward statistics for port 1  -------testpmd> stop\r\n"
    "---------------\n"
    "  RX-packets: 999            RX-dropped: 1             RX-total: 1000\n"
    "  TX-packets: 0              TX-dropped: 0             TX-total: 0\n"
    "  +++++++++++++++ Accumulated forward statistics for all ports+++++++++++++++\n"
    "  RX-packets: 1999           RX-dropped: 1             RX-total: 2000\n"
    "  ---------------------- Forward statistics for port 0  ----------------------\n"
    "  RX-packets: 0              RX-dropped: 0             RX-total: 0\n"
    "  TX-packets: 32             TX-dropped: 0             TX-total: 32\n"
    "  +++++++++++++++ Accumulated forward statistics for all ports+++++++++++++++\n"
    "testpmd> show port stats all\r\n"
    "  ######################## NIC statistics for port 0  ########################\n"
    "  RX-packets: 1000       RX-missed: 0          RX-bytes:  60000\n"
    "  RX-errors: 0\n"
    "  TX-packets: 32         TX-errors: 0          TX-bytes:  2048\n"
    "  ############################################################################\n"
    "  ######################## NIC statistics for port 1  ########################\n"
    "  RX-packets: 999        RX-missed: 3          RX-bytes:  60000\n"
    "  RX-errors: 2\n"
    "  TX-packets: 32         TX-errors: 0          TX-bytes:  2048\n"
    "  ############################################################################\n"
    "testpmd> quit\r\n")
CMDS = "set fwd rxonly\nstart\nstop\nstart tx_first\nstop\nshow port stats all\nquit\n"


class TestpmdLog(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="guest-net-test-")
        with open(os.path.join(self.tmp, "raw"), "w", newline="") as f:
            f.write(RAW)
        with open(os.path.join(self.tmp, "cmds"), "w") as f:
            f.write(CMDS)
        self.clean = self.sh("tp_clean raw cmds")
        with open(os.path.join(self.tmp, "log"), "w") as f:
            f.write(self.clean)

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def sh(self, script):
        res = subprocess.run(
            [BUSYBOX, "sh", "-c", f'. "{HERE}/guest-lib.sh"; . "{HERE}/guest-net.sh"; {script}'],
            cwd=self.tmp, capture_output=True, text=True, check=True)
        return res.stdout

    def test_prompts_and_echoes_are_cut_out(self):
        self.assertNotIn("testpmd>", self.clean)
        self.assertNotIn("\r", self.clean)
        self.assertNotIn("start tx_first", self.clean)
        self.assertIn("  RX-packets: 1000           RX-dropped: 0", self.clean)
        self.assertIn("Forward statistics for port 1  ----------------------\n", self.clean)

    def test_forward_statistics_per_stop_and_port(self):
        self.assertEqual(self.sh("tp_fwd log 1 0 RX-packets").strip(), "1000")
        self.assertEqual(self.sh("tp_fwd log 1 1 RX-packets").strip(), "999")
        self.assertEqual(self.sh("tp_fwd log 1 1 RX-dropped").strip(), "1")
        self.assertEqual(self.sh("tp_fwd log 2 0 TX-packets").strip(), "32")
        # A port or stop that is not there reads as nothing, never as 0.
        self.assertEqual(self.sh("tp_fwd log 2 1 TX-packets").strip(), "")
        self.assertEqual(self.sh("tp_fwd log 3 0 RX-packets").strip(), "")

    def test_nic_statistics_of_the_last_show(self):
        self.assertEqual(self.sh("tp_nic log 0 RX-missed").strip(), "0")
        self.assertEqual(self.sh("tp_nic log 1 RX-missed").strip(), "3")
        self.assertEqual(self.sh("tp_nic log 1 RX-errors").strip(), "2")
        self.assertEqual(self.sh("tp_nic log 2 RX-errors").strip(), "")


class VdpaHelpers(unittest.TestCase):
    """vfiokit-vdpa's statistics lines and its threads' CPU time, as the
    vDPA jobs read them."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="guest-net-test-")

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def sh(self, script, env=None):
        res = subprocess.run(
            [BUSYBOX, "sh", "-c", f'. "{HERE}/guest-lib.sh"; . "{HERE}/guest-net.sh"; {script}'],
            cwd=self.tmp, capture_output=True, text=True, check=True, env=env)
        return res.stdout

    def test_the_last_statistics_line_is_read(self):
        with open(os.path.join(self.tmp, "vdpa.log"), "w") as f:
            f.write("vdpa stats (SIGUSR1) 0000:00:06.0 /tmp/vdpa-0: rx_used 600 tx_used 128 "
                    "kicks 0 front_ends 1 ended 0 mapped_bytes 134217728 running yes\n"
                    "vdpa 0000:00:06.0: front end gone: peer closed\n"
                    "vdpa stats (exit) 0000:00:06.0 /tmp/vdpa-0: rx_used 600 tx_used 256 "
                    "kicks 0 front_ends 2 ended 2 mapped_bytes 0 running no\n")
        read = lambda f: self.sh(f"VD_LOG=vdpa.log; vd_stat {f}").strip()
        self.assertEqual(read("tx_used"), "256")
        self.assertEqual(read("front_ends"), "2")
        self.assertEqual(read("mapped_bytes"), "0")
        self.assertEqual(read("no_such_field"), "")

    def test_threads_are_named_with_their_ticks(self):
        out = self.sh(f"VD_PID={os.getpid()}; vd_threads").split()
        # "NAME TICKS" pairs, one per thread of this process.
        self.assertEqual(len(out) % 2, 0, out)
        self.assertGreaterEqual(len(out) // 2, len(os.listdir(f"/proc/{os.getpid()}/task")))
        self.assertTrue(all(t.isdigit() for t in out[1::2]), out)


if __name__ == "__main__":
    unittest.main()

#!/usr/bin/env python3
"""Host tests of lab.py's result parsing and judgement.

    python3 lab_test.py [GTEST_BINARY]

With a gtest binary (the unit suite passes eal_unit_test), the zero-test
check is also proven on real gtest output: the binary is run with a filter
that matches nothing, and its output, framed as a guest step, must fail.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import actions  # noqa: E402
import lab  # noqa: E402
import watchdog  # noqa: E402

GTEST_BINARY = None
M = lab.MARK


def framed(*lines, booted=True, done=True):
    out = [M + "BOOTED 6.12"] if booted else []
    out += list(lines)
    if done:
        out.append(M + "DONE")
    return "\n".join(out) + "\n"


def step(name, rc, *body):
    return [M + "BEGIN " + name, *body, M + f"END {name} {rc}"]


GTEST_OK = ["[==========] Running 2 tests from 1 test suite.",
            "[  PASSED  ] 2 tests."]


def verdict(text):
    return lab.judge(lab.parse_results(text), "iommu")


class Packing(unittest.TestCase):
    def test_only_binaries_the_job_names_are_packed(self):
        bins = ["t/vfio_lab_test", "t/mp_lab_test", "app/vfiokit-info", "t/mp_device_lab_test"]
        texts = ["each_mode mp 0000:00:03.0 mp_device_lab_test --gtest_filter='Lab/*'",
                 "vfiokit-info --modes \"$dev\""]
        self.assertEqual(lab.named_binaries(bins, texts), ["app/vfiokit-info", "t/mp_device_lab_test"])

    def test_a_binary_that_names_another_pulls_it_in(self):
        bins = ["t/mp_lab_test", "app/vfiokit-procinfo", "app/vfiokit-broker"]
        data = {"t/mp_lab_test": b"\0vfiokit-procinfo --file-prefix \0",
                "app/vfiokit-procinfo": b"usage: vfiokit-procinfo-x\0",
                "app/vfiokit-broker": b""}
        self.assertEqual(lab.named_binaries(bins, ["each_mode mp X mp_lab_test"], data.get),
                         ["t/mp_lab_test", "app/vfiokit-procinfo"])

    def test_a_longer_name_does_not_pull_in_its_prefix(self):
        self.assertEqual(lab.named_binaries(["t/igb_lab_test"], ["igbvf_lab_test"]), [])


class Env(unittest.TestCase):
    def test_values_reach_sh_unchanged(self):
        text = lab.env_file(["UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1",
                             "ODD=it's $HOME `x` \\ end", "EMPTY="])
        out = subprocess.run(["sh", "-c", text + 'printf "%s|%s|%s" "$UBSAN_OPTIONS" "$ODD" "$EMPTY"'],
                             capture_output=True, text=True, check=True).stdout
        self.assertEqual(out, "halt_on_error=1:print_stacktrace=1|it's $HOME `x` \\ end|")

    def test_no_env_is_an_empty_file(self):
        self.assertEqual(lab.env_file([]), "")

    def test_a_bad_name_is_refused(self):
        for bad in ["NOEQUALS", "1X=y", "A-B=c", "=v"]:
            with self.assertRaises(SystemExit, msg=bad):
                lab.env_file([bad])


class Parse(unittest.TestCase):
    def test_passing_steps_pass(self):
        lines, problems = verdict(framed(*step("a", 0, "ok - one"), *step("b", 0, *GTEST_OK)))
        self.assertEqual(problems, [])
        self.assertIn("lab[iommu] a: PASS (1 passed)", lines)
        self.assertIn("lab[iommu] b: PASS (2 passed)", lines)

    def test_step_time_is_reported_with_the_counts(self):
        text = framed(M + "BEGIN a", "ok - one", M + "END a 0 1234", M + "BEGIN b", M + "END b 0 7")
        lines, problems = verdict(text)
        self.assertEqual(problems, [])
        self.assertIn("lab[iommu] a: PASS (1 passed, 12.3 s)", lines)
        self.assertIn("lab[iommu] b: PASS (0.1 s)", lines)

    def test_failing_step_fails(self):
        _, problems = verdict(framed(*step("a", 0), *step("b", 3, "not ok - x")))
        self.assertTrue(any("1 step(s) failed: b" in p for p in problems), problems)

    def test_output_outside_steps_is_reported_not_passed(self):
        r = lab.parse_results(framed("vfio_bind: something", *step("a", 0, "ok - x")))
        self.assertEqual([s.name for s in r.steps], ["a"])
        self.assertEqual(r.outside, ["vfio_bind: something"])
        lines, problems = lab.judge(r, "iommu")
        self.assertEqual(problems, [])
        self.assertIn("  | vfio_bind: something", lines)

    def test_only_output_outside_steps_fails(self):
        _, problems = verdict(framed("some output", "more output"))
        self.assertIn("the job ran no steps", problems)

    def test_no_steps_fails(self):
        _, problems = verdict(framed())
        self.assertIn("the job ran no steps", problems)

    def test_unterminated_step_fails(self):
        r = lab.parse_results(framed(M + "BEGIN a", "ok - x"))
        self.assertIsNone(r.steps[0].rc)
        _, problems = lab.judge(r, "iommu")
        self.assertTrue(any("step(s) failed: a" in p for p in problems), problems)

    def test_step_cut_by_the_next_begin_fails(self):
        _, problems = verdict(framed(M + "BEGIN a", *step("b", 0)))
        self.assertTrue(any("step(s) failed: a" in p for p in problems), problems)

    def test_end_of_another_step_fails(self):
        _, problems = verdict(framed(M + "BEGIN a", M + "END b 0"))
        self.assertTrue(any("was not open" in p for p in problems), problems)
        self.assertTrue(any("step(s) failed: a" in p for p in problems), problems)

    def test_helper_error_outside_steps_fails(self):
        _, problems = verdict(framed(M + "ERROR vfio_bind 0000:00:03.0: bound to 'e1000'",
                                     *step("a", 0)))
        self.assertIn("job error: vfio_bind 0000:00:03.0: bound to 'e1000'", problems)

    def test_guest_that_never_finished_fails(self):
        _, problems = verdict(framed(*step("a", 0), done=False))
        self.assertIn("guest stopped before the job finished", problems)
        _, problems = verdict(framed(booted=False, done=False))
        self.assertIn("guest never reached the job (init failed?)", problems)


class SeveralJobs(unittest.TestCase):
    """lab.py --job A --job B: one guest, a verdict line per job."""

    def job(self, name, *lines, end=True):
        return [M + "JOB " + name, *lines] + ([M + f"JOBEND {name} 1234"] if end else [])

    def test_each_job_gets_its_line(self):
        text = framed(*self.job("pci-iommu", *step("pci-cdev", 0, "ok - x")),
                      *self.job("edu-iommu", *step("edu-cdev", 0, *GTEST_OK), M + "SKIP edu-noiommu no"))
        lines, problems = lab.judge(lab.parse_results(text), "6.12/iommu",
                                    jobs=["pci-iommu", "edu-iommu"])
        self.assertEqual(problems, [])
        self.assertIn("lab[6.12/iommu] pci-cdev: PASS (1 passed)", lines)
        self.assertIn("lab[6.12/iommu] pci-iommu: 1 step(s) passed, 0 skipped (job 12.3 s in the guest)",
                      lines)
        self.assertIn("lab[6.12/iommu] edu-iommu: 1 step(s) passed, 1 skipped (job 12.3 s in the guest)",
                      lines)

    def test_the_failing_job_is_named(self):
        text = framed(*self.job("pci-iommu", *step("pci-cdev", 0)),
                      *self.job("edu-iommu", *step("edu-cdev", 1, "not ok - y")))
        lines, problems = lab.judge(lab.parse_results(text), "iommu", jobs=["pci-iommu", "edu-iommu"])
        self.assertIn("lab[iommu] edu-iommu: FAILED: 1 step(s) failed: edu-cdev", lines)
        self.assertIn("job(s) failed: edu-iommu", problems)
        self.assertFalse(any(line.startswith("lab[iommu] pci-iommu: FAILED") for line in lines))

    def test_an_error_fails_its_own_job(self):
        text = framed(*self.job("a", *step("s1", 0), M + "ERROR after the job: 0000:00:03.0 is gone"),
                      *self.job("b", *step("s2", 0)))
        lines, problems = lab.judge(lab.parse_results(text), "iommu", jobs=["a", "b"])
        self.assertIn("lab[iommu] a: FAILED: job error: after the job: 0000:00:03.0 is gone", lines)
        self.assertIn("job(s) failed: a", problems)

    def test_a_job_that_never_ends_fails_and_the_next_never_started(self):
        text = framed(*self.job("a", M + "BEGIN s1", "ok - x", end=False), done=False)
        lines, problems = lab.judge(lab.parse_results(text), "iommu", jobs=["a", "b"], timed_out=True,
                                    timeout=600)
        self.assertIn("lab[iommu] a: FAILED: 1 step(s) failed: s1; the job never finished", lines)
        self.assertTrue(any(line.startswith("lab[iommu] b: FAILED: never started") for line in lines))
        self.assertIn("job(s) failed: a, b", problems)

    def test_a_job_without_steps_fails(self):
        text = framed(*self.job("a", *step("s1", 0)), *self.job("b"))
        lines, problems = lab.judge(lab.parse_results(text), "iommu", jobs=["a", "b"])
        self.assertIn("lab[iommu] b: FAILED: the job ran no steps", lines)

    def test_the_runner_restores_between_jobs_only(self):
        runner = lab.job_runner(["a", "b c"])
        self.assertEqual(runner.splitlines()[1:],
                         ["lab_boot_state", "lab_job a /lab/job-1.sh", "lab_job 'b c' /lab/job-2.sh last"])


class ZeroTests(unittest.TestCase):
    def test_filter_matching_nothing_fails(self):
        text = framed(*step("a", 0, "[==========] Running 0 tests from 0 test suites.",
                            "[==========] 0 tests from 0 test suites ran. (0 ms total)",
                            "[  PASSED  ] 0 tests."))
        lines, problems = verdict(text)
        self.assertTrue(any("step(s) failed: a" in p for p in problems), problems)
        self.assertTrue(any("gtest ran 0 tests" in l for l in lines), lines)

    def test_every_test_skipped_fails(self):
        text = framed(*step("a", 0, "[==========] Running 2 tests from 1 test suite.",
                            "[  PASSED  ] 0 tests.", "[  SKIPPED ] 2 tests, listed below:"))
        _, problems = verdict(text)
        self.assertTrue(any("step(s) failed: a" in p for p in problems), problems)

    def test_some_skipped_passes(self):
        text = framed(*step("a", 0, "[==========] Running 3 tests from 1 test suite.",
                            "[  PASSED  ] 2 tests.", "[  SKIPPED ] 1 test, listed below:"))
        _, problems = verdict(text)
        self.assertEqual(problems, [])

    def test_steps_without_gtest_are_not_judged_by_it(self):
        _, problems = verdict(framed(*step("a", 0, "plain output")))
        self.assertEqual(problems, [])

    def test_real_gtest_with_an_empty_filter_fails(self):
        # Asked here, not in a skipUnless decorator: that is read when the
        # class is defined, before __main__ takes the binary from argv,
        # so the test was always skipped.
        binary = os.environ.get("LAB_TEST_GTEST_BINARY")
        if not binary:
            self.skipTest("no gtest binary given (the meson unit suite gives one)")
        env = dict(os.environ, GTEST_COLOR="no")
        empty = subprocess.run([binary, "--gtest_filter=NoSuchSuite.NoSuchTest"],
                               capture_output=True, text=True, env=env)
        self.assertEqual(empty.returncode, 0, "gtest itself passes an empty filter")
        lines, problems = verdict(framed(*step("empty", 0, *empty.stdout.splitlines())))
        self.assertTrue(any("step(s) failed: empty" in p for p in problems), (problems, lines))
        # The same binary with a filter that matches passes.
        some = subprocess.run([binary, "--gtest_filter=*"], capture_output=True, text=True,
                              env=env)
        self.assertEqual(some.returncode, 0, some.stdout[-2000:])
        _, problems = verdict(framed(*step("some", 0, *some.stdout.splitlines())))
        self.assertEqual(problems, [])


class FakeQmp:
    """Stands in for QEMU's QMP in the action channel's host tests."""

    def __init__(self, error=None, deleted=True):
        self.calls, self.error, self.deleted = [], error, deleted

    def execute(self, command, arguments):
        self.calls.append((command, arguments))
        if self.error:
            raise RuntimeError(self.error)
        return {}

    def wait_event(self, name, match, seconds):
        return {"event": name} if self.deleted and match({"device": "d1"}) else None


class Actions(unittest.TestCase):
    def test_request_lines(self):
        self.assertEqual(actions.parse_request('ACTION set_link {"name": "hp1", "up": false}'),
                         ("set_link", {"name": "hp1", "up": False}))
        for bad in ("RESULT ok {}", "ACTION set_link up"):
            with self.assertRaises(ValueError):
                actions.parse_request(bad)

    def test_only_the_lab_verbs_reach_qmp(self):
        q = FakeQmp()
        status, why = actions.perform(q, "quit", {})
        self.assertEqual(status, "error")
        self.assertIn("not one the lab allows", why)
        self.assertEqual(q.calls, [])
        self.assertEqual(actions.perform(q, "set_link", ["x"])[0], "error")

    def test_qmp_errors_come_back(self):
        status, why = actions.perform(FakeQmp(error="DeviceNotFound: no d9"), "device_del",
                                      {"id": "d9"})
        self.assertEqual((status, why), ("error", "DeviceNotFound: no d9"))

    def test_device_del_waits_for_the_guest(self):
        status, result = actions.perform(FakeQmp(), "device_del", {"id": "d1"})
        self.assertEqual(status, "ok")
        # The host's measure of the unplug, for the guest's timeline.
        self.assertEqual(list(result), ["deleted_after_s"])
        self.assertGreaterEqual(result["deleted_after_s"], 0)
        status, why = actions.perform(FakeQmp(deleted=False), "device_del", {"id": "d1"})
        self.assertEqual(status, "error")
        self.assertIn("did not release it", why)


class Watchdog(unittest.TestCase):
    """The silent-guest watchdog on real processes standing in for QEMU:
    what they write to the serial files decides the outcome."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="lab-watchdog-")
        self.console = os.path.join(self.tmp, "console.txt")
        self.results = os.path.join(self.tmp, "results.txt")
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(self.tmp)

    def starts(self):
        with open(os.path.join(self.tmp, "starts")) as f:
            return f.read().split()

    def start(self, script):
        p = subprocess.Popen(["sh", "-c", script, "sh", self.tmp])
        self.procs.append(p)
        return p

    def watch(self, proc, timeout=30, silent_after=0.6):
        return watchdog.watch(proc, [self.console, self.results], timeout, silent_after,
                              poll=0.05)

    def test_a_silent_guest_is_caught_early(self):
        p = self.start("exec sleep 30")
        t0 = time.monotonic()
        self.assertEqual(self.watch(p), ("silent", None))
        self.assertLess(time.monotonic() - t0, 10, "long before the timeout")
        self.assertIsNone(p.poll(), "left running for the caller to kill")
        report = watchdog.silence_report(0.6, p, [f"{self.tmp}/qmp.sock"], "")
        self.assertIn(f"sleep (pid {p.pid}, state S", report)
        self.assertIn("QEMU's sockets made: none; QEMU's own output: none", report)

    def test_empty_files_are_silence(self):
        # QEMU creates the serial files at once; only a byte counts.
        p = self.start(': > "$1/console.txt"; : > "$1/results.txt"; exec sleep 30')
        self.assertEqual(self.watch(p)[0], "silent")

    def test_output_on_either_port_is_a_boot(self):
        for port in ("console", "results"):
            with self.subTest(port=port):
                p = self.start(f'sleep 0.2; echo x > "$1/{port}.txt"; exec sleep 30')
                outcome, first = self.watch(p, timeout=1.5)
                self.assertEqual(outcome, "timeout")
                self.assertTrue(0.1 < first < 1.5, first)
                os.unlink(os.path.join(self.tmp, f"{port}.txt"))

    def test_a_guest_that_ends_has_its_output_noted(self):
        p = self.start('echo "@@VFIOKIT:BOOTED 6.12" > "$1/results.txt"')
        outcome, first = self.watch(p)
        self.assertEqual(outcome, "exited")
        self.assertIsNotNone(first)

    def test_zero_turns_the_watchdog_off(self):
        p = self.start("exec sleep 30")
        self.assertEqual(self.watch(p, timeout=0.5, silent_after=0), ("timeout", None))

    def test_run_guest_retries_a_silent_boot_once_and_says_so(self):
        # A "QEMU" that is silent on its first start and boots on its second.
        script = ('n=$(cat "$1/starts" 2>/dev/null || echo 0); echo $((n + 1)) > "$1/starts"; '
                  '[ "$n" -eq 0 ] && exec sleep 30; echo "@@VFIOKIT:BOOTED 6.12" > "$1/results.txt"')
        said = []
        proc, _, outcome, first, silences = lab.run_guest(
            ["sh", "-c", script, "sh", self.tmp], self.tmp, 30, 0.6, said.append)
        self.assertEqual((outcome, proc.returncode), ("exited", 0))
        self.assertEqual(self.starts(), ["2"], "booted twice")
        self.assertEqual(len(silences), 1)
        self.assertEqual(said, silences)
        self.assertIn("no byte on the guest console (ttyS0) or the results port (ttyS1)", said[0])

    def test_run_guest_gives_up_after_two_silent_boots(self):
        said = []
        _, _, outcome, _, silences = lab.run_guest(
            ["sh", "-c", 'echo $$ >> "$1/starts"; exec sleep 30', "sh", self.tmp], self.tmp, 30,
            0.6, said.append)
        self.assertEqual(outcome, "silent")
        self.assertEqual(len(silences), 2)
        self.assertEqual(len(said), 1, "one retry, announced")
        self.assertEqual(len(self.starts()), 2)

    def test_a_silent_boot_fails_the_run_with_the_watchdogs_words(self):
        lines, problems = lab.judge(lab.parse_results(""), "iommu", silent="guest printed nothing")
        self.assertIn("guest printed nothing", problems)
        self.assertFalse(any("never reached the job" in p for p in problems), problems)
        self.assertIn("the job ran no steps", problems)


if __name__ == "__main__":
    if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
        os.environ["LAB_TEST_GTEST_BINARY"] = sys.argv.pop(1)
    unittest.main(verbosity=2)

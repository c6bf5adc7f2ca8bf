"""The guest's watchdog: waits for QEMU to end, kills it at the timeout,
and catches a guest that stays silent from the start.

A lab guest prints its first line within seconds: with `quiet` the kernel
console (ttyS0) may stay empty, but the guest's /init writes
@@VFIOKIT:BOOTED to the results port (ttyS1) as soon as it runs (about
3 to 10 s into a boot under software emulation, with other guests beside
it). A guest that has written nothing on either port long after that is
not slow but stuck (once, a 7.3 guest ran out its whole 600 s timeout with
an empty console): watch() reports it as silent at `silent_after`
seconds, so lab.py can kill it, say what it saw, and boot once more.
"""

import os
import time


def first_output(paths):
    """Whether any of `paths` (the serial port files) has a byte yet."""
    for p in paths:
        try:
            if os.path.getsize(p) > 0:
                return True
        except OSError:
            pass  # QEMU has not created it yet
    return False


def watch(proc, outputs, timeout, silent_after, poll=0.5, clock=time.monotonic,
          sleep=time.sleep):
    """Waits for `proc` (a Popen) to end. Returns (outcome, first):
    outcome "exited" (proc ended by itself), "timeout" (still running after
    `timeout` s) or "silent" (none of the files `outputs` had a byte after
    `silent_after` s); first is when output first appeared, in seconds
    from the start (None if never). proc is left running on "timeout" and
    "silent": the caller kills it."""
    t0 = clock()
    first = None
    while True:
        now = clock() - t0
        if first is None and first_output(outputs):
            first = now
        if proc.poll() is not None:
            return "exited", first
        if first is None and silent_after and now >= silent_after:
            return "silent", None
        if now >= timeout:
            return "timeout", first
        sleep(poll)


def process_state(pid):
    """'qemu-system-x86 (pid 12, state S, 3.2 s CPU)' from /proc, or why
    not: what the process under watch was doing (on the 7.3 pair the same
    pid goes from unshare through sh and chroot to QEMU, so the name says
    how far the start got)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError as e:
        return f"pid {pid}: {e.strerror}"
    comm = text[text.index("(") + 1:text.rindex(")")]
    fields = text[text.rindex(")") + 2:].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    return f"{comm} (pid {pid}, state {fields[0]}, {cpu:.1f} s CPU)"


def silence_report(seconds, proc, sockets, qemu_output):
    """What a silent guest showed, in one line."""
    made = [os.path.basename(s) for s in sockets if os.path.exists(s)]
    out = qemu_output.strip().replace("\n", " | ")[-300:]
    return (f"no byte on the guest console (ttyS0) or the results port (ttyS1) after "
            f"{seconds:.0f} s; the process: {process_state(proc.pid)}; QEMU's sockets made: "
            f"{', '.join(made) or 'none'}; QEMU's own output: {out or 'none'}")

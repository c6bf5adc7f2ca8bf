"""The host-side action channel: a guest job asks the host to act on QEMU.

The guest writes one request per line on its third serial port (ttyS2,
`host_action` in guest-lib.sh), and reads one reply line back:

    ACTION <verb> <json arguments>      guest -> host
    RESULT ok <json result>             host -> guest
    RESULT error <why>                  host -> guest

The verbs are QMP commands the lab allows: device_del (the reply waits for
QEMU's DEVICE_DELETED event, i.e. for the guest to let go of the device),
device_add and set_link. Everything the channel did is kept in `log` for
the report.
"""

import json
import os
import socket
import threading
import time

VERBS = ("device_del", "device_add", "set_link")
# How long device_del waits for the guest to release the device (pciehp
# waits 5 s after the attention button before it powers the slot off).
UNPLUG_SECONDS = 60


def connect_unix(path, deadline):
    """A socket connected to `path`, retrying until QEMU has created it."""
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except OSError:
            s.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class Qmp:
    """A minimal QMP client: commands one at a time, events kept aside."""

    def __init__(self, path, deadline):
        self.sock = connect_unix(path, deadline)
        self.file = self.sock.makefile("rwb", buffering=0)
        self.events = []
        greeting = self._read()
        if "QMP" not in greeting:
            raise RuntimeError(f"not a QMP greeting: {greeting}")
        self.execute("qmp_capabilities", {})

    def _read(self):
        line = self.file.readline()
        if not line:
            raise RuntimeError("QMP connection closed")
        return json.loads(line)

    def execute(self, command, arguments):
        """QMP's return value, or raises RuntimeError with QMP's error text."""
        self.file.write(json.dumps({"execute": command, "arguments": arguments}).encode() + b"\n")
        while True:
            msg = self._read()
            if "event" in msg:
                self.events.append(msg)
            elif "return" in msg:
                return msg["return"]
            elif "error" in msg:
                raise RuntimeError(f"{msg['error'].get('class')}: {msg['error'].get('desc')}")

    def wait_event(self, name, match, seconds):
        """The first event `name` whose data satisfies `match`, or None."""
        deadline = time.monotonic() + seconds
        while True:
            for i, ev in enumerate(self.events):
                if ev["event"] == name and match(ev.get("data", {})):
                    return self.events.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                msg = self._read()
            except (socket.timeout, TimeoutError):
                return None
            finally:
                self.sock.settimeout(None)
            if "event" in msg:
                self.events.append(msg)


def perform(qmp, verb, args):
    """('ok', result) or ('error', why) for one request."""
    if verb not in VERBS:
        return "error", f"verb '{verb}' is not one the lab allows ({', '.join(VERBS)})"
    if not isinstance(args, dict):
        return "error", "arguments must be a JSON object"
    t0 = time.monotonic()
    try:
        result = qmp.execute(verb, args)
    except RuntimeError as e:
        return "error", str(e)
    if verb == "device_del":
        dev = args.get("id")
        ev = qmp.wait_event("DEVICE_DELETED", lambda d: d.get("device") == dev, UNPLUG_SECONDS)
        if ev is None:
            return "error", f"no DEVICE_DELETED for {dev} within {UNPLUG_SECONDS} s " \
                            "(the guest did not release it)"
        # The unplug's length on the host's clock, for the guest's
        # timeline: from the command to the event.
        return "ok", {"deleted_after_s": round(time.monotonic() - t0, 3)}
    return "ok", result


def parse_request(line):
    """(verb, args) of an ACTION line, or raises ValueError."""
    if not line.startswith("ACTION "):
        raise ValueError(f"not an ACTION line: {line!r}")
    verb, _, rest = line[7:].strip().partition(" ")
    try:
        args = json.loads(rest) if rest.strip() else {}
    except json.JSONDecodeError as e:
        raise ValueError(f"arguments are not JSON ({e})") from None
    return verb, args


class Channel(threading.Thread):
    """Serves the guest's requests until QEMU goes away."""

    def __init__(self, channel_path, qmp_path, connect_seconds=60):
        super().__init__(daemon=True)
        self.channel_path, self.qmp_path = channel_path, qmp_path
        self.connect_seconds = connect_seconds
        self.log = []  # lines for the report
        self.problem = None  # why the channel failed, if it did

    def run(self):
        deadline = time.monotonic() + self.connect_seconds
        try:
            chan = connect_unix(self.channel_path, deadline).makefile("rwb", buffering=0)
        except OSError:
            return  # QEMU never came up: the run fails for that reason
        qmp = None
        try:
            for raw in chan:
                line = raw.decode(errors="replace").strip()
                if not line:
                    continue
                try:
                    verb, args = parse_request(line)
                    qmp = qmp or Qmp(self.qmp_path, deadline)
                    status, detail = perform(qmp, verb, args)
                except (ValueError, RuntimeError, OSError) as e:
                    status, detail = "error", str(e)
                text = json.dumps(detail) if status == "ok" else detail
                self.log.append(f"host action {line[7:]}: {status} {text}")
                chan.write(f"RESULT {status} {text}\n".encode())
        except OSError as e:
            self.problem = f"action channel broke: {e}"

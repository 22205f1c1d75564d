"""Benchmark a .tflite on an Android phone through the demo app's benchmark mode.

The sequence (see android_demo/README.md): check adb and a device, check the
app, push the model (and, with ``check``, golden inputs) readable by the app,
wake the screen, clear logcat, start BenchmarkActivity afresh (``am start -S``)
with intent extras, wait for its "EDGEPIPE_BENCH_DONE" log line while checking
that the app's process is alive, pull the JSON it wrote (and the golden
outputs). ``run`` is injectable so the sequence is tested against scripted adb
transcripts written to this protocol.
"""
import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from edgepipe.base.errors import EdgePipeError

PACKAGE = "dev.edgepipe.demo"
ACTIVITY = f"{PACKAGE}/.BenchmarkActivity"
DEVICE_MODEL = "/data/local/tmp/edgepipe_model.tflite"
DEVICE_GOLDEN = "/data/local/tmp/edgepipe_golden"
FILES = f"/sdcard/Android/data/{PACKAGE}/files"
RESULT = f"{FILES}/bench.json"
GOLDEN_OUT = f"{FILES}/golden_out"
DELEGATES = ("xnnpack", "cpu", "gpu")
TAG = "EdgepipeBench"


def _subprocess_run(args):
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise EdgePipeError(f"`{' '.join(args)}` failed: {(proc.stderr or proc.stdout).strip()[:200]}")
    return proc.stdout


class Adb:
    def __init__(self, serial=None, run=None):
        if run is None:
            if shutil.which("adb") is None:
                raise EdgePipeError("adb not found: install Android platform-tools and put adb on PATH")
            run = _subprocess_run
        self.serial, self._run = serial, run

    def __call__(self, *args) -> str:
        prefix = ["adb", "-s", self.serial] if self.serial else ["adb"]
        return self._run([*prefix, *args])


def attached_devices(adb: Adb) -> list[str]:
    lines = adb("devices").splitlines()[1:]
    return [ln.split()[0] for ln in lines if ln.strip() and ln.split()[-1] == "device"]


def pick_device(adb: Adb, serial=None) -> str:
    devices = attached_devices(adb)
    if not devices:
        raise EdgePipeError("no Android device attached (`adb devices` lists none); connect a phone with "
                            "USB debugging on, or run without --device for host numbers")
    if serial:
        if serial not in devices:
            raise EdgePipeError(f"device {serial} not attached; attached: {', '.join(devices)}")
        return serial
    if len(devices) > 1:
        raise EdgePipeError(f"{len(devices)} devices attached ({', '.join(devices)}); choose one with --serial")
    return devices[0]


def bench_android(model, threads=4, delegate="xnnpack", warmup=10, runs=50, serial=None, apk=None,
                  run=None, timeout_s=600, poll_s=1.0, golden=None) -> dict:
    """One benchmark on the device; returns the app's JSON result. ``golden``: input
    tensors (numpy arrays in the model's input dtype) the app also runs; their raw
    outputs come back as ``result["golden_outputs"]`` (per input, per output: bytes)."""
    model = Path(model)
    if not model.is_file() or model.suffix != ".tflite":
        raise EdgePipeError(f"{model}: on-device benchmark needs an existing .tflite file")
    if delegate not in DELEGATES:
        raise EdgePipeError(f"unknown delegate '{delegate}'; valid: {', '.join(DELEGATES)}")
    serial = pick_device(Adb(None, run), serial)
    adb = Adb(serial, run)
    if PACKAGE not in adb("shell", "pm", "list", "packages", PACKAGE):
        if not apk:
            raise EdgePipeError(f"the demo app ({PACKAGE}) is not installed on {serial}; build android_demo "
                                f"and pass --apk app-debug.apk")
        adb("install", "-r", str(apk))
    _push_readable(adb, model, DEVICE_MODEL)
    extras = ["--es", "golden", DEVICE_GOLDEN] if golden else []
    with tempfile.TemporaryDirectory() as tmp:
        if golden:
            _push_golden(adb, golden, Path(tmp))
        adb("shell", "input", "keyevent", "KEYCODE_WAKEUP")  # a sleeping phone throttles and may not start us
        adb("shell", "wm", "dismiss-keyguard", "||", "true")  # Android 8+; harmless where it does not exist
        adb("logcat", "-c")
        adb("shell", "am", "start", "-S", "-W", "-n", ACTIVITY, "--es", "model", DEVICE_MODEL, "--ei", "threads",
            str(threads), "--es", "delegate", delegate, "--ei", "warmup", str(warmup), "--ei", "runs", str(runs),
            "--es", "out", "bench.json", *extras)
        _wait_for_done(adb, timeout_s, poll_s)
        local = Path(tmp) / "bench.json"
        adb("pull", RESULT, str(local))
        result = json.loads(local.read_text())
        if golden:
            result["golden_outputs"] = _pull_golden(adb, result.pop("golden_outputs", None), len(golden), Path(tmp))
    return result | {"serial": serial}


def _push_readable(adb, local, remote):
    """adb push keeps the host file's mode (0600 from a umask 077 shell): the app, another
    user, could not read it."""
    adb("push", str(local), remote)
    adb("shell", "chmod", "644", remote)


def golden_name(i: int) -> str:
    return f"golden_{i:03d}.bin"


def _push_golden(adb, golden, tmp: Path):
    adb("shell", "rm", "-rf", DEVICE_GOLDEN, "&&", "mkdir", "-p", DEVICE_GOLDEN, "&&", "chmod", "755", DEVICE_GOLDEN)
    for i, x in enumerate(golden):
        path = tmp / golden_name(i)
        path.write_bytes(x.astype(x.dtype.newbyteorder("<")).tobytes())
        _push_readable(adb, path, f"{DEVICE_GOLDEN}/{golden_name(i)}")


def _pull_golden(adb, names, count: int, tmp: Path) -> list[list[bytes]]:
    """The app lists, per golden input, the output files it wrote, in output order."""
    if not isinstance(names, list) or len(names) != count:
        raise EdgePipeError("the app on the phone returned no golden outputs: install the current "
                            "android_demo build (--apk app-debug.apk)")
    outs = []
    for files in names:
        per_input = []
        for name in files:
            if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
                raise EdgePipeError(f"the app named a golden output {name!r}: not a plain file name")
            local = tmp / f"out_{name}"
            adb("pull", f"{GOLDEN_OUT}/{name}", str(local))
            per_input.append(local.read_bytes())
        outs.append(per_input)
    return outs


def _wait_for_done(adb, timeout_s, poll_s):
    deadline = time.monotonic() + timeout_s
    while True:
        if _finished(adb):
            return
        if not adb("shell", "pidof", PACKAGE, "||", "true").strip():
            if _finished(adb):  # it logged and then went away between the two looks
                return
            raise EdgePipeError("the demo app's process died during the benchmark" + _crash_line(adb)
                                + " (full log: adb logcat -d -b crash)")
        if time.monotonic() > deadline:
            raise EdgePipeError(f"benchmark did not finish on the device within {timeout_s} s")
        time.sleep(poll_s)


def _finished(adb) -> bool:
    log = adb("logcat", "-d", "-s", TAG)
    if "EDGEPIPE_BENCH_FAILED" in log:
        raise EdgePipeError("benchmark failed on the device: " + log.split("EDGEPIPE_BENCH_FAILED", 1)[1]
                            .strip().splitlines()[0])
    return "EDGEPIPE_BENCH_DONE" in log


def _crash_line(adb) -> str:
    """The crash's exception line, when the crash buffer has one."""
    log = adb("logcat", "-d", "-b", "crash")
    for line in log.splitlines():
        if "Exception" in line or "Error" in line:
            return ": " + line.split(": ", 1)[-1].strip()[:200]
    return ""

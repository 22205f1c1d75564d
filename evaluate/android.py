"""Benchmark a .tflite on an Android phone through the demo app's benchmark mode.

The sequence (see android_demo/README.md): check adb and a device, check the
app, push the model, clear logcat, start BenchmarkActivity with intent extras,
wait for its "EDGEPIPE_BENCH_DONE" log line, pull the JSON it wrote. ``run`` is
injectable so the sequence is tested against a recording of adb's answers.
"""
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from edgepipe.base.errors import EdgePipeError

PACKAGE = "dev.edgepipe.demo"
ACTIVITY = f"{PACKAGE}/.BenchmarkActivity"
DEVICE_MODEL = "/data/local/tmp/edgepipe_model.tflite"
RESULT = f"/sdcard/Android/data/{PACKAGE}/files/bench.json"
DELEGATES = ("xnnpack", "cpu", "gpu")


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
                  run=None, timeout_s=600, poll_s=1.0) -> dict:
    """One benchmark on the device; returns the app's JSON result."""
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
    adb("push", str(model), DEVICE_MODEL)
    adb("logcat", "-c")
    adb("shell", "am", "start", "-W", "-n", ACTIVITY, "--es", "model", DEVICE_MODEL, "--ei", "threads",
        str(threads), "--es", "delegate", delegate, "--ei", "warmup", str(warmup), "--ei", "runs", str(runs),
        "--es", "out", "bench.json")
    _wait_for_done(adb, timeout_s, poll_s)
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "bench.json"
        adb("pull", RESULT, str(local))
        result = json.loads(local.read_text())
    return result | {"serial": serial}


def _wait_for_done(adb, timeout_s, poll_s):
    deadline = time.monotonic() + timeout_s
    while True:
        log = adb("logcat", "-d", "-s", "EdgepipeBench")
        if "EDGEPIPE_BENCH_FAILED" in log:
            raise EdgePipeError("benchmark failed on the device: " + log.split("EDGEPIPE_BENCH_FAILED", 1)[1]
                                .strip().splitlines()[0])
        if "EDGEPIPE_BENCH_DONE" in log:
            return
        if time.monotonic() > deadline:
            raise EdgePipeError(f"benchmark did not finish on the device within {timeout_s} s")
        time.sleep(poll_s)

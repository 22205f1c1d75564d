"""The adb driver, against a recording of what adb returned in a real session's
sequence (recorded answers, not a live device)."""
import json

import pytest

from edgepipe.evaluate.android import bench_android
from edgepipe.base.errors import EdgePipeError

RECORDED_RESULT = {"model": "edgepipe_model.tflite", "model_sha256": "00" * 32, "runtime": "litert-android",
                   "runtime_version": "1.0.1", "device": "Google Pixel 7", "os": "Android 14 (API 34)",
                   "cpu": "arm64-v8a", "threads": 4, "batch": 1, "options": {"delegate": "xnnpack"}, "warmup": 10,
                   "init_ms": 41.2, "first_ms": 18.9, "count": 50, "mean_ms": 9.8, "std_ms": 0.4, "min_ms": 9.1,
                   "p50_ms": 9.7, "p90_ms": 10.3, "p99_ms": 11.0, "max_ms": 11.2}


class RecordedAdb:
    """Replays adb's answers and records the command sequence."""

    def __init__(self, devices="List of devices attached\n1A2B3C4D\tdevice\n\n", installed=True):
        self.calls, self.devices, self.installed, self.polls = [], devices, installed, 0

    def __call__(self, args):
        self.calls.append(args)
        cmd = args[3:] if args[1] == "-s" else args[1:]
        if cmd == ["devices"]:
            return self.devices
        if cmd[:3] == ["shell", "pm", "list"]:
            return "package:dev.edgepipe.demo\n" if self.installed else ""
        if cmd[:2] == ["logcat", "-d"]:
            self.polls += 1
            return "" if self.polls < 2 else "I EdgepipeBench: EDGEPIPE_BENCH_DONE /sdcard/.../bench.json\n"
        if cmd[0] == "pull":
            with open(cmd[2], "w") as f:
                json.dump(RECORDED_RESULT, f)
        return ""


@pytest.fixture
def model(tmp_path):
    p = tmp_path / "m.tflite"
    p.write_bytes(b"TFL3")
    return p


def test_recorded_adb_session_runs_the_documented_sequence(model):
    adb = RecordedAdb()
    result = bench_android(model, threads=4, delegate="xnnpack", warmup=10, runs=50, run=adb, poll_s=0)
    verbs = [c[3] if c[1] == "-s" else c[1] for c in adb.calls]
    assert verbs == ["devices", "shell", "push", "logcat", "shell", "logcat", "logcat", "pull"]
    start = adb.calls[4]
    assert start[:3] == ["adb", "-s", "1A2B3C4D"] and "dev.edgepipe.demo/.BenchmarkActivity" in start
    assert start[start.index("threads") + 1] == "4" and start[start.index("runs") + 1] == "50"
    assert result["p50_ms"] == 9.7 and result["serial"] == "1A2B3C4D"


def test_recorded_device_result_fits_the_host_schema():
    from edgepipe.evaluate.bench_schema import validate
    (r,) = validate([RECORDED_RESULT])
    assert r.runtime == "litert-android" and r.threads == 4


def test_recorded_adb_session_without_a_device_says_so(model):
    with pytest.raises(EdgePipeError, match="no Android device attached"):
        bench_android(model, run=RecordedAdb(devices="List of devices attached\n\n"))


def test_recorded_adb_session_with_app_missing_asks_for_the_apk(model):
    with pytest.raises(EdgePipeError, match="not installed"):
        bench_android(model, run=RecordedAdb(installed=False), poll_s=0)


def test_recorded_adb_session_installs_a_given_apk(model, tmp_path):
    adb = RecordedAdb(installed=False)
    bench_android(model, apk=tmp_path / "app-debug.apk", run=adb, poll_s=0)
    assert any(c[3] == "install" for c in adb.calls if c[1] == "-s")


def test_two_devices_need_a_serial(model):
    two = "List of devices attached\nAAA\tdevice\nBBB\tdevice\n"
    with pytest.raises(EdgePipeError, match="--serial"):
        bench_android(model, run=RecordedAdb(devices=two))


def test_missing_adb_binary_is_a_clear_error(model, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(EdgePipeError, match="adb not found"):
        bench_android(model)

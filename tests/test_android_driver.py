"""The adb driver against scripted adb transcripts: synthetic replies written to
the driver's protocol (android_demo/README.md, BenchmarkActivity), not recorded
from a device. They pin the command sequence, the dead-process and wake/stop
handling, and `bench --device android --check`'s comparison with the host."""
import json

import numpy as np
import pytest

from edgepipe.base.errors import EdgePipeError
from edgepipe.evaluate import android
from edgepipe.evaluate.android import bench_android

SCRIPTED_RESULT = {"model": "edgepipe_model.tflite", "model_sha256": "00" * 32, "runtime": "litert-android",
                   "runtime_version": "1.0.1", "device": "Scripted Phone", "os": "Android 14 (API 34)",
                   "cpu": "arm64-v8a", "threads": 4, "batch": 1, "options": {"delegate": "xnnpack"}, "warmup": 10,
                   "init_ms": 41.2, "first_ms": 18.9, "count": 50, "mean_ms": 9.8, "std_ms": 0.4, "min_ms": 9.1,
                   "p50_ms": 9.7, "p90_ms": 10.3, "p99_ms": 11.0, "max_ms": 11.2}


class ScriptedAdb:
    """Answers each adb command as the protocol says a phone would, and keeps the
    command sequence. ``dies``: the app's process is gone at the first look;
    ``golden``: per golden input, the output bytes the app returns."""

    def __init__(self, devices="List of devices attached\n1A2B3C4D\tdevice\n\n", installed=True, dies=False,
                 golden=None):
        self.calls, self.devices, self.installed, self.dies, self.golden = [], devices, installed, dies, golden
        self.polls = 0

    def __call__(self, args):
        self.calls.append(args)
        cmd = args[3:] if args[1] == "-s" else args[1:]
        if cmd == ["devices"]:
            return self.devices
        if cmd[:3] == ["shell", "pm", "list"]:
            return "package:dev.edgepipe.demo\n" if self.installed else ""
        if cmd[:2] == ["shell", "pidof"]:
            return "" if self.dies else "12345\n"
        if cmd[:4] == ["logcat", "-d", "-b", "crash"]:
            return ("--------- beginning of crash\nE AndroidRuntime: FATAL EXCEPTION: edgepipe-bench\n"
                    "E AndroidRuntime: java.lang.OutOfMemoryError: Failed to allocate 268435456 bytes\n")
        if cmd[:2] == ["logcat", "-d"]:
            self.polls += 1
            done = self.polls >= 2 and not self.dies
            return "I EdgepipeBench: EDGEPIPE_BENCH_DONE /sdcard/.../bench.json\n" if done else ""
        if cmd[0] == "pull":
            self._pull(cmd[1], cmd[2])
        return ""

    def _pull(self, remote, local):
        if remote.endswith("bench.json"):
            names = [[f"golden_{i:03d}.bin.out0"] for i in range(len(self.golden))] if self.golden else None
            with open(local, "w") as f:
                json.dump(SCRIPTED_RESULT | ({"golden_outputs": names} if names else {}), f)
        else:
            i = int(remote.rsplit("golden_", 1)[1][:3])
            with open(local, "wb") as f:
                f.write(self.golden[i])

    def verbs(self):
        return [" ".join((c[3:] if c[1] == "-s" else c[1:])[:3]) for c in self.calls]


@pytest.fixture
def model(tmp_path):
    p = tmp_path / "m.tflite"
    p.write_bytes(b"TFL3")
    return p


def test_scripted_session_runs_the_documented_sequence(model):
    adb = ScriptedAdb()
    result = bench_android(model, threads=4, delegate="xnnpack", warmup=10, runs=50, run=adb, poll_s=0)
    assert adb.verbs() == ["devices", "shell pm list", "push " + str(model) + " /data/local/tmp/edgepipe_model.tflite",
                           "shell chmod 644", "shell input keyevent", "shell wm dismiss-keyguard", "logcat -c",
                           "shell am start", "logcat -d -s", "shell pidof dev.edgepipe.demo", "logcat -d -s",
                           "pull /sdcard/Android/data/dev.edgepipe.demo/files/bench.json " + adb.calls[-1][-1]]
    start = adb.calls[7]
    assert start[:3] == ["adb", "-s", "1A2B3C4D"] and "dev.edgepipe.demo/.BenchmarkActivity" in start
    assert start[start.index("start") + 1:start.index("start") + 3] == ["-S", "-W"]  # a fresh process
    assert start[start.index("threads") + 1] == "4" and start[start.index("runs") + 1] == "50"
    assert "golden" not in start
    assert result["p50_ms"] == 9.7 and result["serial"] == "1A2B3C4D"


def test_scripted_wake_and_stop_come_before_the_start(model):
    adb = ScriptedAdb()
    bench_android(model, run=adb, poll_s=0)
    verbs = adb.verbs()
    wake, start = verbs.index("shell input keyevent"), verbs.index("shell am start")
    assert adb.calls[wake][-1] == "KEYCODE_WAKEUP" and wake < verbs.index("logcat -c") < start
    assert verbs.index("shell chmod 644") == verbs.index("push " + str(model) + " /data/local/tmp/edgepipe_model.tflite") + 1


def test_scripted_dead_process_fails_fast_with_the_crash(model):
    adb = ScriptedAdb(dies=True)
    with pytest.raises(EdgePipeError, match="process died.*OutOfMemoryError") as e:
        bench_android(model, run=adb, poll_s=0, timeout_s=600)
    assert "\n" not in str(e.value)
    assert sum(v == "shell pidof dev.edgepipe.demo" for v in adb.verbs()) == 1  # the first look, not 600 s


def test_scripted_device_result_fits_the_host_schema():
    from edgepipe.evaluate.bench_schema import validate
    (r,) = validate([SCRIPTED_RESULT])
    assert r.runtime == "litert-android" and r.threads == 4 and r.parity is None


def test_scripted_session_without_a_device_says_so(model):
    with pytest.raises(EdgePipeError, match="no Android device attached"):
        bench_android(model, run=ScriptedAdb(devices="List of devices attached\n\n"))


def test_scripted_session_with_app_missing_asks_for_the_apk(model):
    with pytest.raises(EdgePipeError, match="not installed"):
        bench_android(model, run=ScriptedAdb(installed=False), poll_s=0)


def test_scripted_session_installs_a_given_apk(model, tmp_path):
    adb = ScriptedAdb(installed=False)
    bench_android(model, apk=tmp_path / "app-debug.apk", run=adb, poll_s=0)
    assert any(c[3] == "install" for c in adb.calls if c[1] == "-s")


def test_two_devices_need_a_serial(model):
    two = "List of devices attached\nAAA\tdevice\nBBB\tdevice\n"
    with pytest.raises(EdgePipeError, match="--serial"):
        bench_android(model, run=ScriptedAdb(devices=two))


def test_missing_adb_binary_is_a_clear_error(model, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(EdgePipeError, match="adb not found"):
        bench_android(model)


@pytest.fixture(scope="module")
def edge_tflite(tmp_path_factory):
    """A 32x32 float 'edge detector' (one conv, sigmoid): small enough to convert in seconds."""
    from edgepipe.base.backend import keras, tf
    x = keras.Input((32, 32, 3), batch_size=1, name="image")
    y = keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid", name="edges",
                            kernel_initializer=keras.initializers.RandomNormal(0, 2, seed=0))(x)
    path = tmp_path_factory.mktemp("check") / "edges.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(keras.Model(x, y)).convert())
    return path


def _check_on_phone(model, monkeypatch, capsys, perturb=0.0):
    """`edgepipe bench --device android --check` with a scripted phone that returns the
    host's own outputs (plus ``perturb``) as raw float32 bytes."""
    from edgepipe.cli.main import main
    from edgepipe.evaluate.android_check import golden_inputs, host_outputs
    outs = host_outputs(model, golden_inputs(model))
    adb = ScriptedAdb(golden=[(o[0] + np.float32(perturb)).astype("<f4").tobytes() for o in outs])
    monkeypatch.setattr(android.shutil, "which", lambda name: "/usr/bin/adb")
    monkeypatch.setattr(android, "_subprocess_run", adb)
    monkeypatch.setattr(android.time, "sleep", lambda s: None)
    code = main(["bench", str(model), "--device", "android", "--check", "--json"])
    (result,) = json.loads(capsys.readouterr().out)
    return code, result, adb


def test_scripted_parity_check_passes_on_the_hosts_own_outputs(edge_tflite, monkeypatch, capsys):
    code, result, adb = _check_on_phone(edge_tflite, monkeypatch, capsys)
    start = next(c for c in adb.calls if "start" in c)
    assert start[start.index("golden") + 1] == android.DEVICE_GOLDEN
    pushed = [c for c in adb.calls if "push" in c and "golden" in c[-1]]
    assert len(pushed) == 4 and all(c[c.index("push") + 1].endswith(".bin") for c in pushed)
    p = result["parity"]
    assert code == 0 and p["pass"] and p["gate_variant"] == "float32" and p["golden_inputs"] == 4
    (edges,) = p["outputs"].values()
    assert edges["max_abs"] == 0 and edges["edge_f_vs_host"] == 1.0 and edges["quads_agree"] == 1.0


def test_scripted_parity_check_gates_a_drifting_phone(edge_tflite, monkeypatch, capsys):
    code, result, _ = _check_on_phone(edge_tflite, monkeypatch, capsys, perturb=0.01)
    (edges,) = result["parity"]["outputs"].values()
    assert code == 1 and not result["parity"]["pass"]
    assert abs(edges["max_abs"] - 0.01) < 1e-3 and edges["gate"].startswith("max_abs")


def test_check_needs_the_phone(tmp_path):
    from edgepipe.cli.main import main
    assert main(["bench", str(tmp_path / "m.tflite"), "--check"]) == 2


def test_parity_lines_say_which_gate_failed():
    from rich.console import Console

    from edgepipe.cli.bench import print_parity
    console = Console(record=True, width=300)
    out = {"max_abs": 0.01, "psnr_db": 38.0, "gate": "max_abs 0.01 <= 0.0001", "pass": False,
           "edge_f_vs_host": 0.99, "quads_agree": 1.0, "corner_err_max_pct": 0.2}
    result = {"model": "m.tflite", "threads": 4,
              "parity": {"pass": False, "golden_inputs": 4, "gate_variant": "float32", "outputs": {"edges": out}}}
    assert print_parity([result], console) is False
    text = console.export_text()
    assert "edges" in text and "max_abs 0.01 <= 0.0001 FAIL" in text and "corners within 0.20%" in text


def test_the_parity_check_finds_quads_with_the_golden_pixels_as_the_app_does(edge_tflite, monkeypatch):
    """The app's finder reads the input image (the paper score, printed bands); the check's
    finder gets the same pixels the golden inputs were normalised from."""
    from edgepipe.evaluate import android_check
    from edgepipe.mobile_models import docquad
    inputs = android_check.golden_inputs(edge_tflite)
    pixels = android_check.golden_pixels(edge_tflite)
    assert pixels.dtype == np.uint8 and pixels.shape == (len(inputs), 32, 32, 3)
    assert np.allclose(pixels / np.float32(255), np.concatenate(inputs), atol=1e-6)  # no card: pixel / 255
    seen, real = [], docquad.find_quad
    monkeypatch.setattr(docquad, "find_quad", lambda m, *a, image=None, **k: seen.append(image) or real(m, *a, image=image, **k))
    outs = android_check.host_outputs(edge_tflite, inputs)
    android_check.compare(edge_tflite, outs, outs, "cpu")
    assert len(seen) == 2 * len(inputs) and all(s is not None and s.shape == (32, 32, 3) for s in seen)

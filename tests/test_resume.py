"""Runs that resume: finished stages are skipped, a changed stage re-runs with
what follows it, --force re-runs all, and a killed run completes on re-run."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from edgepipe.cli.main import main
from tests.conftest import TINY

ROOT = Path(__file__).resolve().parent.parent


def _recipe(tmp_path, data, name="r.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data))
    return p


def _report(out):
    return json.loads((out / "report.json").read_text())


def _skipped(out):
    return {k for k, v in _report(out)["stages"].items() if v["skipped"]}


def _comparable(report):
    return [{k: a[k] for k in ("format", "variant", "status", "size_bytes", "parity", "task")}
            for a in report["artifacts"]]


# Core ML conversion is the slow export, and resuming does not depend on which formats a run writes
FAST = TINY | {"export": TINY["export"] | {"variants": ["tflite_float32", "onnx_float32"]}}


def test_rerun_skips_finished_stages_and_changed_config_reruns_only_downstream(tmp_path, tiny_run, capsys):
    out = tmp_path / "run"
    shutil.copytree(tiny_run, out)  # trained on TINY, which FAST changes only downstream of training
    recipe = _recipe(tmp_path, FAST)
    assert main(["run", "--recipe", str(recipe), "--out", str(out)]) == 0
    first = _report(out)
    assert _skipped(out) == {"train"}
    assert main(["run", "--recipe", str(recipe), "--out", str(out)]) == 0
    assert _skipped(out) == {"train", "export", "verify", "bench"}
    assert _comparable(_report(out)) == _comparable(first)
    _a_copy_is_judged_by_its_own_files(tmp_path, out, recipe)
    changed = json.loads(json.dumps(FAST))
    changed["bench"]["runs"] = 4
    assert main(["run", "--recipe", str(_recipe(tmp_path, changed, "r2.yaml")), "--out", str(out)]) == 0
    assert _skipped(out) == {"train", "export", "verify"}
    capsys.readouterr()
    assert main(["run", "--recipe", str(_recipe(tmp_path, changed, "r2.yaml")), "--out", str(out), "--force"]) == 0
    assert _skipped(out) == set()
    log = capsys.readouterr().out
    assert "resuming training" not in log  # --force trains again: it did 0 steps from the last checkpoint
    state = json.loads((out / "checkpoints" / "state.json").read_text())
    assert state["steps_done"] == sum(p["steps"] for p in FAST["profiles"]["quick"]["phases"])


def _a_copy_is_judged_by_its_own_files(tmp_path, out, recipe):
    """A copy of a run with a broken and a missing export: the manifest recorded paths as typed
    (``run/x.tflite``), so the copy's stages were 'up to date' by the original's files, and the
    report and its gates vouched for exports the copy did not have. Run here from another folder."""
    copy = tmp_path / "elsewhere" / "copy"
    shutil.copytree(out, copy)
    (copy / "hed_mobilenet_v2.tflite").write_bytes(b"truncated")  # not what edgepipe wrote: yours now
    (copy / "hed_mobilenet_v2.onnx").unlink()
    cwd = os.getcwd()
    os.chdir(copy.parent)
    try:  # the export stage is not up to date there: it runs, and refuses to replace what is not its own
        assert main(["run", "--recipe", str(recipe), "--out", "copy"]) == 2
    finally:
        os.chdir(cwd)
    assert (copy / "hed_mobilenet_v2.tflite").read_bytes() == b"truncated"
    assert not (copy / "report.json").exists() and not (copy / "model_card.json").exists(), \
        "the last report and card outlived the stage that changes what they describe"
    assert json.loads((copy / "manifest.json").read_text())["stages"]["export"] == \
        json.loads((out / "manifest.json").read_text())["stages"]["export"]  # nothing recorded as done


def test_killed_run_completes_on_rerun(tmp_path):
    out = tmp_path / "run"
    recipe = _recipe(tmp_path, FAST | {"export": FAST["export"] | {"variants": ["tflite_float32", "tflite_int8",
                                                                               "onnx_float32"]}})
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "edgepipe.cli.main", "run", "--recipe", str(recipe), "--out", str(out)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    manifest = out / "manifest.json"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if manifest.exists() and "train" in json.loads(manifest.read_text() or "{}").get("stages", {}):
            break  # training finished; the export stage is under way
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "report.json").exists()
    assert main(["run", "--recipe", str(recipe), "--out", str(out)]) == 0
    assert "train" in _skipped(out)
    assert not [p.name for p in out.iterdir() if p.name.startswith(".edgepipe-tmp-")], "temp files left behind"
    report = _report(out)
    assert {(a["format"], a["status"]) for a in report["artifacts"]} >= {("tflite", "ok"), ("onnx", "ok")}

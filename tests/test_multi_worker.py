"""distribute: multi_worker for real: two worker processes on localhost through
TF_CONFIG (MultiWorkerMirroredStrategy) train to the loss of one process; only the
chief writes checkpoints, state.json, logs and the model; a killed worker's run
resumes from the chief's checkpoint."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from edgepipe.train import workers

ROOT = Path(__file__).resolve().parent.parent
RECIPE = {"name": "mw", "model": {"name": "tiny_cnn", "input_size": 32}, "data": {"kind": "digits"},
          "profiles": {"quick": {"phases": [{"size": 32, "steps": 16, "pool": 1}], "batch_size": 16,
                                 "steps_per_epoch": 4, "learning_rate": 0.01, "bn_momentum": 0.9,
                                 "restore_best": False, "distribute": "multi_worker"}}}


def _ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _workers(tmp: Path, out: Path, *extra) -> list[subprocess.Popen]:
    """Both workers of a two-worker cluster, sharing ``out`` (one machine, or a shared filesystem)."""
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _ports(2)]}
    procs = []
    for i in range(2):
        log = open(tmp / f"worker{i}-{time.monotonic_ns()}.log", "w+")
        env = os.environ | {"PYTHONPATH": str(ROOT), "TMPDIR": str(tmp / "tmp"),
                            "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})}
        proc = subprocess.Popen([sys.executable, "-m", "edgepipe.cli.main", "train", "--recipe", str(tmp / "r.yaml"),
                                 "--out", str(out), *extra], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        proc.output = lambda log=log: (log.seek(0), log.read())[1]
        procs.append(proc)
    return procs


def _state(out: Path):
    path = out / "checkpoints" / "state.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _one_worker(tmp: Path) -> subprocess.Popen:
    """The same recipe in one process with two replicas (MirroredStrategy on two logical
    CPUs), beside the workers: per-replica batches and BatchNorm statistics as in the
    two-worker run, so the losses agree to float precision (one replica of batch 16
    normalises differently, and ends a few percent away)."""
    recipe = json.loads(json.dumps(RECIPE))
    recipe["profiles"]["quick"].update(distribute="mirrored", cpu_replicas=2)
    (tmp / "one.yaml").write_text(yaml.safe_dump(recipe))
    return subprocess.Popen([sys.executable, "-m", "edgepipe.cli.main", "train", "--recipe", str(tmp / "one.yaml"),
                             "--out", str(tmp / "one")], cwd=ROOT, env=os.environ | {"PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_two_workers_train_like_one_write_once_and_resume_after_a_kill(tmp_path):
    (tmp_path / "tmp").mkdir()
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(RECIPE))
    out = tmp_path / "run"
    one = _one_worker(tmp_path)
    chief, other = _workers(tmp_path, out)
    deadline = time.time() + 900  # a safety net only: the loop ends when the chief exits
    while time.time() < deadline and (_state(out) or {}).get("epochs_done", 0) < 2 and chief.poll() is None:
        time.sleep(0.05)
    other.send_signal(signal.SIGKILL)  # a worker dies mid-run...
    chief.send_signal(signal.SIGKILL)  # ...and the job is restarted, as a cluster manager would
    chief.wait(), other.wait()
    at_kill = _state(out)
    assert at_kill and 2 <= at_kill["epochs_done"] < 4, chief.output()[-3000:]
    assert at_kill["writer"] == "worker:0"

    procs = _workers(tmp_path, out, "--resume")
    codes = [p.wait(timeout=300) for p in procs]
    assert codes == [0, 0], procs[0].output()[-2000:] + procs[1].output()[-2000:]
    for p in procs:
        assert f"resuming training after epoch {at_kill['epochs_done']}" in p.output()
    assert "worker:1: trained; the chief writes tiny_cnn.keras" in " ".join(procs[1].output().split())
    state = _state(out)
    assert state["steps_done"] == 16 and state["epochs_done"] == 4 and state["writer"] == "worker:0"
    assert (out / "tiny_cnn.keras").is_file() and (out / "history.json").is_file()
    events = [f.name for f in (out / "logs").rglob("events.out.tfevents.*")]
    assert events and all(f".{procs[0].pid}." in name or f".{chief.pid}." in name for name in events), events
    assert len(list((tmp_path / "tmp").glob("edgepipe-worker1-*"))) == 1  # only the killed worker's is left
    assert one.wait(timeout=300) == 0
    np.testing.assert_allclose(state["history"]["loss"], _state(tmp_path / "one")["history"]["loss"], rtol=1e-4)


def test_roles_from_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert workers.is_chief() and workers.describe() == "chief:0"
    cluster = {"worker": ["a:1", "b:2"]}
    for index, chief in ((0, True), (1, False)):
        monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}))
        assert workers.is_chief() is chief
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster | {"chief": ["c:3"]},
                                                "task": {"type": "worker", "index": 0}}))
    assert not workers.is_chief()
    with workers.write_dir(Path("/nonexistent/run")) as tmp:
        assert tmp.is_dir() and tmp.name.startswith("edgepipe-worker0-")
    assert not tmp.exists()

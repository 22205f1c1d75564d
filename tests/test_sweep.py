"""edgepipe sweep on local Ray (2 CPUs, started once for this file): a 4-run grid
with one task killed mid-run, a rerun that finishes it and redoes nothing, latency
timed with no training beside it, retries that end, and the sweep file's errors."""
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import yaml

from edgepipe.cli.main import main
from edgepipe.pipeline.sweep import load_sweep

RECIPE = {"name": "tiny", "model": {"name": "tiny_cnn", "input_size": 32}, "data": {"kind": "digits"},
          "profiles": {"quick": {"phases": [{"size": 32, "steps": 12, "pool": 1}], "batch_size": 16,
                                 "steps_per_epoch": 12, "val_size": 0, "learning_rate": 0.01,
                                 "bn_momentum": 0.9}},
          "export": {"variants": ["tflite_float32"], "calibration_samples": 8},
          "bench": {"warmup": 1, "runs": 3}}
SWEEP = {"name": "tiny", "base": RECIPE, "grid": {"train.learning_rate": [0.01, 0.03], "train.seed": [0, 1]}}
VICTIM = "learning_rate=0.03,seed=0"


@pytest.fixture(scope="module")
def ray_local():
    import ray
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _write(tmp_path, sweep, name="sweep.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(sweep))
    return path


def _pid_with_title(title: str) -> int | None:
    """The Ray worker whose process title is ``ray::<task name>``."""
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "cmdline").read_bytes().startswith(f"ray::{title}".encode()):
                return int(proc.name)
        except OSError:
            continue
    return None


def _kill_after_training(run_dir: Path, record: dict, sweep_done: threading.Event):
    """SIGKILL the run's build task once its train stage is in the manifest (mid-run).
    Watches until the sweep ends, not for a fixed time: on a loaded machine the
    victim's build may queue for CPUs for minutes."""
    while not sweep_done.is_set():
        manifest = run_dir / "manifest.json"
        stages = json.loads(manifest.read_text())["stages"] if manifest.is_file() else {}
        pid = _pid_with_title(f"build:{run_dir.name}")
        if "train" in stages and pid:
            os.kill(pid, signal.SIGKILL)
            record.update(pid=pid, stages=sorted(stages))
            return
        time.sleep(0.05)


def _manifests(out: Path) -> dict:
    return {d.name: (d / "manifest.json").read_bytes() for d in out.iterdir() if (d / "manifest.json").is_file()}


def test_killed_task_is_reported_and_a_rerun_finishes_it_redoing_nothing(tmp_path, ray_local, capsys):
    path, out = _write(tmp_path, SWEEP), tmp_path / "out"
    killed, sweep_done = {}, threading.Event()
    killer = threading.Thread(target=_kill_after_training, args=(out / VICTIM, killed, sweep_done))
    killer.start()
    try:
        code = main(["sweep", str(path), "--out", str(out), "--retries", "0", "--max-latency-ms", "1000"])
    finally:
        sweep_done.set()
        killer.join()
    assert killed and "verify" not in killed["stages"], "the kill landed mid-run"
    assert code == 1 and f"run failed: {VICTIM}: build failed after 1 attempt(s)" in capsys.readouterr().err
    first = json.loads((out / "sweep.json").read_text())
    assert first["runs"] == 4 and first["failed_runs"] == [VICTIM]
    assert {r["run"] for r in first["rows"] if r["status"] == "ok"} == set(_manifests(out)) - {VICTIM}
    before = _manifests(out)
    victim_train = json.loads(before[VICTIM])["stages"]["train"]

    assert main(["sweep", str(path), "--out", str(out), "--max-latency-ms", "1000"]) == 0
    second = json.loads((out / "sweep.json").read_text())
    assert second["failed_runs"] == [] and second["failed_gates"] == []
    after = _manifests(out)
    assert len(after) == 4 and all(after[name] == before[name] for name in before if name != VICTIM)
    assert json.loads(after[VICTIM])["stages"]["train"] == victim_train  # trained once, before the kill
    ran = {r["run"]: r["ran"] for r in second["rows"]}
    assert ran.pop(VICTIM) == ["export", "verify", "bench"] and all(v == [] for v in ran.values())
    _check_report(out, first)


def _check_report(out: Path, first: dict):
    """Every run x export has a row; the best fits its budget; no bench overlapped a build."""
    report = json.loads((out / "sweep.json").read_text())
    rows = [r for r in report["rows"] if r["format"] == "tflite"]
    assert len(rows) == 4 and all(r["gate"] == "pass" and r["p50_ms"] and r["size_kb"] for r in rows)
    best = report["best"]
    assert best["p50_ms"] <= 1000 and best["metric"] == max(r["metric"] for r in rows)
    assert any(r["pareto"] for r in rows)
    tasks = [r["tasks"] for r in first["rows"] if r["tasks"].get("bench")]
    benches = [t["bench"]["interval"] for t in tasks]
    builds = [t["build"]["interval"] for t in tasks]
    assert benches and all(b1 <= a0 or a1 <= b0 for a0, a1 in benches for b0, b1 in builds)
    page = (out / "sweep.html").read_text()
    assert "id='pareto'" in page and "id='best'" in page and page.count("<tr") == len(report["rows"]) + 1


def test_retries_end_and_user_errors_are_not_retried(tmp_path, ray_local):
    from edgepipe.pipeline.sweep_exec import Job, Step, execute

    def flaky(marker: str, mode: str):  # nested: Ray ships it by value
        if mode == "user-error":
            return {"status": "error", "error": "bad recipe"}
        if mode == "die" or not Path(marker).exists():
            if marker:
                Path(marker).touch()
            os._exit(1)
        return {"status": "ok"}
    task = ray_local.remote(flaky).options(num_cpus=1, max_retries=0)
    marker = tmp_path / "tried"
    jobs = [Job("flaky", [Step("a", lambda: task.remote(str(marker), "die-once"))]),
            Job("dead", [Step("a", lambda: task.remote("", "die"))]),
            Job("user", [Step("a", lambda: task.remote("", "user-error"))])]
    events = []
    execute(jobs, retries=1, on_event=lambda job, text: events.append((job.name, text)), poll_s=0.2)
    flaky, dead, user = jobs
    assert flaky.done and flaky.error is None and flaky.results["a"] == {"status": "ok"} and len(flaky.retried) == 1
    assert dead.error.startswith("a failed after 2 attempt(s)") and len(dead.retried) == 2
    assert user.error == "a: bad recipe" and user.retried == []
    sleeper = ray_local.remote(lambda: time.sleep(120)).options(num_cpus=1, max_retries=0)
    slow = Job("slow", [Step("a", lambda: sleeper.remote())])
    t0 = time.time()
    execute([slow], retries=0, timeout_s=3, poll_s=0.2)
    assert slow.error == "a failed after 1 attempt(s): cancelled after the timeout" and time.time() - t0 < 60


def test_sweep_file_errors_are_one_line(tmp_path, capsys, ray_local):
    bad_key = dict(SWEEP, grid={"model.nmae": ["x"]})
    assert main(["sweep", str(_write(tmp_path, bad_key)), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("edgepipe: error: sweep file") and "run nmae=x: model.nmae:" in err and "\n" not in err
    assert main(["sweep", str(_write(tmp_path, dict(SWEEP, retry=2))), "--out", str(tmp_path / "o")]) == 2
    assert "retry: Extra inputs are not permitted" in capsys.readouterr().err
    assert main(["sweep", str(_write(tmp_path, dict(SWEEP, grid={"train.seed": []})))]) == 2
    assert "grid key train.seed has no values" in capsys.readouterr().err
    _, specs = load_sweep(_write(tmp_path, dict(SWEEP, runs=[{"model.input_size": 48}])))
    assert [s.name for s in specs][-2:] == ["learning_rate=0.03,seed=1", "input_size=48"]
    assert specs[1].recipe.train.seed == 1 and specs[-1].recipe.model.input_size == 48
    # every run its own folder, even where a run the user named takes the name a repeat would get
    _, specs = load_sweep(_write(tmp_path, {"base": RECIPE, "runs": [
        {"data.val_size": 3}, {"train.val_size": 3}, {"name": "val_size=3-2"}, {"train.val_size": 3}]}))
    assert [s.name for s in specs] == ["val_size=3", "val_size=3-3", "val_size=3-2", "val_size=3-4"]
    assert not (tmp_path / "o").exists()  # refused before any output
    assert main(["sweep", str(_write(tmp_path, SWEEP)), "--out", str(tmp_path / "a"), "--address", "127.0.0.1:1"]) == 2
    assert "cannot join the Ray cluster at 127.0.0.1:1: Connection refused" in capsys.readouterr().err
    too_big = _write(tmp_path, dict(SWEEP, bench_cpus=64))
    assert main(["sweep", str(too_big), "--out", str(tmp_path / "b")]) == 2  # Ray (2 CPUs) is up: refused at once
    assert "bench_cpus 64 is more than the largest Ray node has (2 CPUs)" in capsys.readouterr().err
    _, example = load_sweep(Path(__file__).resolve().parent.parent / "recipes/sweeps/digits_backbones.yaml")
    assert len(example) == 8 and example[-1].name == "shufflenet_v2,options=scale1.0,input_size=64"


def test_help_and_sweep_file_errors_load_neither_tensorflow_nor_ray(tmp_path):
    import subprocess
    import sys
    bad = _write(tmp_path, dict(SWEEP, grid={"model.input_size": [30]}))
    probe = ("import sys\nfrom edgepipe.cli.main import build_parser, main\nbuild_parser()\n"
             f"assert main(['sweep', {str(bad)!r}, '--out', {str(tmp_path / 'o')!r}]) == 2\n"
             "assert not {'tensorflow', 'ray'} & set(sys.modules), sorted({'tensorflow', 'ray'} & set(sys.modules))\n")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "run input_size=30: model.input_size: Input should be greater than or equal to 32" in proc.stderr


def test_a_sweep_too_large_to_expand_is_refused_before_expanding(tmp_path, capsys):
    # before: 10^10 combinations went into a list (and a recipe validation each) until memory ran out
    grid = {f"train.{k}": list(range(1, 11)) for k in ("seed", "steps_per_epoch", "early_stopping_patience",
                                                       "step_every_epochs")}
    grid |= {f"bench.{k}": list(range(1, 11)) for k in ("runs", "warmup")} | {"data.val_seed": list(range(3, 13))}
    assert main(["sweep", str(_write(tmp_path, dict(SWEEP, grid=grid))), "--out", str(tmp_path / "o")]) == 2
    assert "expands to 10,000,000 runs; at most 10,000" in capsys.readouterr().err
    # a YAML alias bomb: 10^8 strings once walked (naming the run did), a few hundred bytes on disk
    bomb = "".join(f"    x{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]\n" for i in range(1, 9))
    path = tmp_path / "bomb.yaml"
    path.write_text(f"base: {{}}\nruns:\n  - bundle.description: &a0 [lol, lol]\n{bomb}  - {{name: *a8}}\n")
    assert main(["sweep", str(path), "--out", str(tmp_path / "o")]) == 2
    assert "has over 10,000 items (YAML aliases?)" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_a_base_recipe_path_may_start_with_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(RECIPE))
    (tmp_path / "sub").mkdir()
    _, specs = load_sweep(_write(tmp_path / "sub", dict(SWEEP, base="~/base.yaml")))
    assert len(specs) == 4 and specs[0].recipe.model.name == "tiny_cnn"


def test_a_relative_data_path_is_beside_the_file_that_names_it(tmp_path, monkeypatch):
    """A base recipe's data.path is read beside the recipe, an override's beside the sweep file,
    whatever the working folder (tasks may also run elsewhere, so both end up absolute)."""
    (tmp_path / "recipes" / "photos").mkdir(parents=True)
    (tmp_path / "sweeps" / "more").mkdir(parents=True)
    folder_recipe = dict(RECIPE, data={"kind": "image_folder", "path": "photos"})
    (tmp_path / "recipes" / "base.yaml").write_text(yaml.safe_dump(folder_recipe))
    sweep = {"name": "rel", "base": "../recipes/base.yaml", "runs": [{}, {"data.path": "more"}]}
    monkeypatch.chdir(tmp_path / "recipes" / "photos")  # a working folder that is neither
    _, specs = load_sweep(_write(tmp_path / "sweeps", sweep))
    assert [s.recipe.data.path for s in specs] == [str(tmp_path / "recipes" / "photos"),
                                                   str(tmp_path / "sweeps" / "more")]
    assert specs[0].raw["data"]["path"] == specs[0].recipe.data.path


def test_a_base_recipe_a_sweep_wrote_is_its_input_and_never_rewritten(tmp_path, capsys):
    """A sweep whose base is a run's recipe.yaml in its own --out rewrote that file (the
    input became an output); and a run named like the sweep's report took its path."""
    from edgepipe.base.atomic import ensure_writable_dir
    from edgepipe.pipeline.sweep_exec import write_recipes
    first = _write(tmp_path, {"base": RECIPE, "runs": [{"train.seed": 5}]}, "first.yaml")
    _, specs = load_sweep(first)
    write_recipes(specs, ensure_writable_dir(tmp_path / "o"))  # as the first sweep's command does
    base = tmp_path / "o" / "seed=5" / "recipe.yaml"
    before = base.read_bytes()
    second = _write(tmp_path, {"base": "o/seed=5/recipe.yaml", "runs": [{"train.seed": 5}]}, "second.yaml")
    assert main(["sweep", str(second), "--out", str(tmp_path / "o"), "--num-cpus", "1"]) == 2
    assert "recipe.yaml" in capsys.readouterr().err
    assert base.read_bytes() == before
    _, specs = load_sweep(_write(tmp_path, {"base": RECIPE, "runs": [{"name": "sweep.json"}, {"name": "sweep.html"}]}))
    assert [s.name for s in specs] == ["sweep.json-2", "sweep.html-2"]

"""Wall time of an 8-run sweep on Ray against the same runs one after another.

    .venv/bin/python benchmarks/sweep.py [--work /tmp/edgepipe-sweep-bench] [--num-cpus N] [--sequential-first]

A grid of tiny classifiers (tiny_cnn on digits, 32x32: two learning rates x two
seeds x two export sets) runs once as ``edgepipe sweep`` (Ray started here, builds
side by side, every latency measurement holding all CPUs), and each run's recipe
(the same expansion) runs as ``edgepipe run`` in turn, each in a fresh folder,
before or after (``--sequential-first``). Both start from nothing. Prints both wall times, their ratio and each mode's per-run
results, and writes ``WORK/sweep_benchmark.json``. On a shared machine, run it
when it is quiet: both modes share its CPUs with whatever else runs.
"""
import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
EDGEPIPE = [sys.executable, "-m", "edgepipe.cli.main"]
RECIPE = {"name": "tiny", "model": {"name": "tiny_cnn", "input_size": 32}, "data": {"kind": "digits"},
          "profiles": {"quick": {"phases": [{"size": 32, "steps": 60, "pool": 1}], "batch_size": 16,
                                 "steps_per_epoch": 30, "learning_rate": 0.01, "bn_momentum": 0.9}},
          "export": {"variants": ["tflite_float32"], "calibration_samples": 32},
          "bench": {"warmup": 3, "runs": 20}}
SWEEP = {"name": "benchmark", "base": RECIPE,
         "grid": {"train.learning_rate": [0.01, 0.03], "train.seed": [0, 1],
                  "export.variants": [["tflite_float32"], ["tflite_float32", "tflite_int8"]]}}


def _timed(cmd: list[str], log: Path) -> tuple[float, int]:
    t0 = time.time()
    with open(log, "w") as f:
        code = subprocess.run(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT).returncode
    return time.time() - t0, code


def _sequential(work: Path) -> dict:
    """Each run's recipe through ``edgepipe run``, one after another, each in a fresh folder."""
    from edgepipe.pipeline.sweep import load_sweep
    _, specs = load_sweep(work / "sweep.yaml")
    (work / "recipes").mkdir(exist_ok=True)
    sequential = {}
    for spec in specs:
        recipe = work / "recipes" / f"{spec.name}.yaml"
        recipe.write_text(yaml.safe_dump(spec.raw, sort_keys=False))
        s, c = _timed(EDGEPIPE + ["run", "--recipe", str(recipe), "--out", str(work / "seq" / spec.name)],
                      work / f"seq-{spec.name}.log")
        sequential[spec.name] = {"seconds": round(s, 1), "exit": c}
        print(f"edgepipe run {spec.name}: {s:.1f} s (exit {c})", flush=True)
    return sequential


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="/tmp/edgepipe-sweep-bench", help="scratch folder (emptied first)")
    ap.add_argument("--num-cpus", type=int, help="CPUs of the local Ray (default: all)")
    ap.add_argument("--sequential-first", action="store_true", help="time the runs one after another first "
                    "(on a machine whose load drifts, run both orders)")
    args = ap.parse_args()
    work = Path(args.work)
    if work.exists():
        if not (work / "sweep.yaml").is_file():
            sys.exit(f"{work} exists and is not this benchmark's folder; choose another --work")
        shutil.rmtree(work)
    work.mkdir(parents=True)
    (work / "sweep.yaml").write_text(yaml.safe_dump(SWEEP, sort_keys=False))
    extra = ["--num-cpus", str(args.num_cpus)] if args.num_cpus else []
    sweep_cmd = EDGEPIPE + ["sweep", str(work / "sweep.yaml"), "--out", str(work / "sweep"), *extra]
    if args.sequential_first:
        sequential = _sequential(work)
    sweep_s, code = _timed(sweep_cmd, work / "sweep.log")
    print(f"edgepipe sweep: {sweep_s:.1f} s (exit {code})", flush=True)
    if not args.sequential_first:
        sequential = _sequential(work)
    seq_s = sum(r["seconds"] for r in sequential.values())
    runs = list(sequential)
    result = {"runs": len(runs), "sweep_s": round(sweep_s, 1), "sweep_exit": code, "sequential_s": round(seq_s, 1),
              "speedup": round(seq_s / sweep_s, 2), "sequential": sequential,
              "cpus": args.num_cpus or "all", "order": "sequential first" if args.sequential_first else "sweep first",
              "sweep_report": str(work / "sweep" / "sweep.html")}
    (work / "sweep_benchmark.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"{len(runs)} runs ({result['order']}): sweep {sweep_s:.1f} s, one after another {seq_s:.1f} s "
          f"({seq_s / sweep_s:.2f}x); {work / 'sweep_benchmark.json'}")


if __name__ == "__main__":
    main()

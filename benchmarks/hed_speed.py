"""A faster HED, chosen by measurement (issue #18): one Pareto table of corner
accuracy on the real-image phone set against one-thread TFLite latency and size.

    .venv/bin/python benchmarks/hed_speed.py [--budget 0.5] [--points s2,s2_w75] [--out runs/hed-speed]
    .venv/bin/python benchmarks/hed_speed.py --points "" --phone-seeds 777,778 \
        --run default=runs/default --run default=runs/def1 --run fast=runs/fast0 --run fast=runs/fast1
        # trained runs; a name given twice is one point trained with two seeds

Each point is the default recipe with ``model.options`` / ``model.input_size``
changed and every training phase's steps times ``--budget`` (all points get the
same budget, so the ranking is fair; the chosen point is then trained on the full
recipe). Each point is an ordinary ``edgepipe run`` in its own folder, so a rerun
skips what finished. Accuracy: every corner within 2% of the diagonal on the
phone-like photos from evaluation-only sources (``train/phoneshots.py``),
through ``edgepipe scan``'s path. Latency: all points' float and int8 TFLite
timed interleaved in one process, batch 1, one thread (ratios are what to quote).
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edgepipe.base import atomic  # noqa: E402
from edgepipe.evaluate.latency import measure_host  # noqa: E402
from edgepipe.evaluate.runners import open_runner  # noqa: E402
from edgepipe.evaluate.taskmetrics import error_summary, worst_corner_error  # noqa: E402
from edgepipe.mobile_models import scan as scanning  # noqa: E402
from edgepipe.pipeline.recipe import DEFAULT_RECIPE, Recipe  # noqa: E402
from edgepipe.pipeline.run import run as run_pipeline  # noqa: E402
from edgepipe.train.phoneshots import phone_shot  # noqa: E402

# name -> (model.options, input size): the dimensions issue #18 names
POINTS = {
    "base": ({}, 256),
    "s2": ({"stem_stride": 2}, 256),
    "s2_w75": ({"stem_stride": 2, "width": 0.75}, 256),
    "s2_e4": ({"stem_stride": 2, "expansion": 4}, 256),
    "s2_s4": ({"stem_stride": 2, "sides": 4}, 256),
    "s2_224": ({"stem_stride": 2}, 224),
    "s2_288": ({"stem_stride": 2}, 288),
    "s2_320": ({"stem_stride": 2}, 320),
    "i160": ({}, 160),
    "i176": ({}, 176),
    "i192": ({}, 192),
    "e3": ({"expansion": 3}, 256),
    "e2": ({"expansion": 2}, 256),
    "s4_e4": ({"sides": 4, "expansion": 4}, 256),
    "s2_full": ({"stem_stride": 2, "full_side": 1}, 256),
    "w50": ({"width": 0.5}, 256),
    "w75": ({"width": 0.75}, 256),
    "w75_e4": ({"width": 0.75, "expansion": 4}, 256),
}
FORMATS = ("tflite_float32", "tflite_int8")


def point_recipe(options: dict, size: int, budget: float) -> Recipe:
    """The default recipe at this point, its training steps times ``budget``."""
    raw = yaml.safe_load(DEFAULT_RECIPE.read_text())
    raw["model"] |= {"options": options, "input_size": size}
    train = raw["profiles"][raw["profile"]]
    for phase in train["phases"]:
        phase["steps"] = max(1, round(phase["steps"] * budget))
    train["phases"][-1]["size"] = size  # the last phase trains at the deployed size
    raw["export"]["variants"] = list(FORMATS)
    raw["bench"] = {"threads": 1, "warmup": 2, "runs": 5}  # timed below, all points interleaved
    return Recipe.model_validate(raw)


def phone_errors(files: dict, seeds: list[int], count: int) -> dict:
    """Every model's worst-corner error on every phone shot of every set; each shot is made once."""
    runners = {k: open_runner(p) for k, p in files.items()}
    errs = {k: [] for k in files}
    for seed in seeds:
        for i in range(count):
            shot = phone_shot(seed, i)
            h, w = shot.image.shape[:2]
            for k, r in runners.items():
                errs[k].append(worst_corner_error(scanning.scan(shot.image, r).corners, shot.corners, w, h))
            print(f"\rphone set {seed}: {i + 1}/{count}", end="", flush=True)
    print()
    return errs


def trained_runs(args) -> list[tuple[str, dict, Path]]:
    """(point name, report, folder) for every point trained here and every --run; a name
    given several times is one point trained with several seeds."""
    runs = []
    for name in filter(None, args.points.split(",")):
        folder = args.out / f"{name}-b{args.budget:g}"
        runs.append((name, run_pipeline(point_recipe(*POINTS[name], args.budget), folder), folder))
    for named in args.run:
        name, _, folder = named.partition("=")
        runs.append((name, json.loads((Path(folder) / "report.json").read_text()), Path(folder)))
    return runs


def tflite_files(runs) -> tuple[dict, dict]:
    """``{key: file}`` and ``{key: (point, precision, description)}`` for every run's TFLite exports."""
    files, meta = {}, {}
    for i, (name, report, folder) in enumerate(runs):
        config = report["recipe"]["config"]
        train = config["profiles"][config["profile"]]
        for a in report["artifacts"]:
            if a["format"] == "tflite" and a["variant"] in ("float32", "int8"):
                key = f"{name}#{i}:{a['variant']}"
                files[key] = str(folder / Path(a["path"]).name)  # the folder may have moved since
                meta[key] = (name, a["variant"], {
                    "options": config["model"].get("options") or {}, "input": config["model"]["input_size"],
                    "steps": "+".join(f"{p['steps']}@{p['size']}" for p in train["phases"]),
                    "size_bytes": Path(files[key]).stat().st_size})
    return files, meta


def point_rows(files, meta, errs, timing) -> list[dict]:
    """One row per point and precision: accuracy over all its training seeds' runs
    (mean, and the lowest and highest run), latency the median of its runs."""
    groups = {}
    for key in files:
        name, precision, desc = meta[key]
        groups.setdefault((name, precision), (desc, []))[1].append(key)
    rows = []
    for (name, precision), (desc, keys) in groups.items():
        per_run = [error_summary(errs[k]) for k in keys]
        share = [s["under_2pct"] for s in per_run]
        pooled = error_summary([e for k in keys for e in errs[k]])
        rows.append({"point": name, "precision": precision, **desc, "runs": len(keys),
                     "p50_ms": float(np.median([timing[k]["p50_ms"] for k in keys])),
                     "under_2pct_runs": share, "under_2pct_min": min(share), "under_2pct_max": max(share)}
                    | pooled)
    return rows


def print_table(rows, seeds, count):
    print(f"phone sets {seeds}, {count} photos each; accuracy pooled over each point's training seeds "
          "(lowest-highest run in brackets); latency batch 1, one thread, interleaved")
    print("| point | options | input | training steps | precision | runs | size KB | p50 ms | within 2% "
          "| within 5% | found | p90 % |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: (r["precision"], r["p50_ms"])):
        print(f"| {r['point']} | {r['options'] or '-'} | {r['input']} | {r['steps']} | {r['precision']} "
              f"| {r['runs']} | {r['size_bytes'] / 1e3:.0f} | {r['p50_ms']:.2f} | {r['under_2pct']:.1%} "
              f"({r['under_2pct_min']:.1%}-{r['under_2pct_max']:.1%}) | {r['under_5pct']:.1%} "
              f"| {r['found']:.1%} | {r['p90_pct']:.1f} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", default=",".join(POINTS), help=f"comma-separated, from {', '.join(POINTS)}")
    ap.add_argument("--budget", type=float, default=0.5, help="share of the default recipe's training steps")
    ap.add_argument("--out", type=Path, default=Path("runs/hed-speed"))
    ap.add_argument("--phone", type=int, default=140, help="photos per phone set")
    ap.add_argument("--phone-seeds", default="777", help="comma-separated phone sets, e.g. 777,778")
    ap.add_argument("--runs", type=int, default=50, help="timed runs per model")
    ap.add_argument("--run", action="append", default=[], metavar="NAME=DIR",
                    help="also score a finished run folder (its report.json names its exports and recipe); "
                         "repeat a NAME for the same point trained with other seeds")
    args = ap.parse_args()
    seeds = [int(s) for s in args.phone_seeds.split(",")]
    files, meta = tflite_files(trained_runs(args))
    errs = phone_errors(files, seeds, args.phone)
    timing = measure_host(files, threads=1, warmup=5, runs=args.runs)
    rows = point_rows(files, meta, errs, timing)
    print_table(rows, seeds, args.phone)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic.write_text(args.out / "pareto.json", json.dumps(rows, indent=1, default=float))


if __name__ == "__main__":
    main()

"""A faster HED, chosen by measurement (issue #18): one Pareto table of corner
accuracy on the real-image phone set against one-thread TFLite latency and size.

    .venv/bin/python benchmarks/hed_speed.py [--budget 0.5] [--points s2,s2_w75] [--out runs/hed-speed]
    .venv/bin/python benchmarks/hed_speed.py --points "" --run base=runs/default --run s2=runs/s2   # trained runs

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

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

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
    "s2_320": ({"stem_stride": 2}, 320),
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


def phone_scores(files: dict, seed: int, count: int) -> dict:
    """Scan every phone shot with every model; the shot is made once."""
    runners = {k: open_runner(p) for k, p in files.items()}
    errs = {k: [] for k in files}
    for i in range(count):
        shot = phone_shot(seed, i)
        h, w = shot.image.shape[:2]
        for k, r in runners.items():
            result = scanning.scan(shot.image, r)
            errs[k].append(worst_corner_error(result.corners, shot.corners, w, h))
        print(f"\rphone set {i + 1}/{count}", end="", flush=True)
    print()
    return {k: error_summary(e) for k, e in errs.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", default=",".join(POINTS), help=f"comma-separated, from {', '.join(POINTS)}")
    ap.add_argument("--budget", type=float, default=0.5, help="share of the default recipe's training steps")
    ap.add_argument("--out", type=Path, default=Path("runs/hed-speed"))
    ap.add_argument("--phone", type=int, default=140)
    ap.add_argument("--phone-seed", type=int, default=777)
    ap.add_argument("--runs", type=int, default=50, help="timed runs per model")
    ap.add_argument("--run", action="append", default=[], metavar="NAME=DIR",
                    help="also score a finished run folder (its report.json names its exports and recipe)")
    args = ap.parse_args()
    reports = {}
    for name in filter(None, args.points.split(",")):
        folder = args.out / f"{name}-b{args.budget:g}"
        reports[name] = (run_pipeline(point_recipe(*POINTS[name], args.budget), folder), folder)
    for named in args.run:
        name, _, folder = named.partition("=")
        reports[name] = (json.loads((Path(folder) / "report.json").read_text()), Path(folder))
    files, rows = {}, {}
    for name, (report, folder) in reports.items():
        model = report["recipe"]["config"]["model"]
        phases = report["recipe"]["config"]["profiles"][report["recipe"]["config"]["profile"]]["phases"]
        for a in report["artifacts"]:
            if a["format"] == "tflite" and a["variant"] in ("float32", "int8"):
                key = f"{name}:{a['variant']}"
                files[key] = str(folder / Path(a["path"]).name)  # the folder may have moved since
                rows[key] = {"point": name, "options": model.get("options") or {}, "input": model["input_size"],
                             "steps": "+".join(f"{p['steps']}@{p['size']}" for p in phases),
                             "precision": a["variant"], "size_bytes": Path(files[key]).stat().st_size}
    scores = phone_scores(files, args.phone_seed, args.phone)
    timing = measure_host(files, threads=1, warmup=5, runs=args.runs)
    rows = [rows[k] | {"p50_ms": timing[k]["p50_ms"]} | scores[k] for k in files]
    print(f"phone set seed {args.phone_seed}, {args.phone} photos; latency batch 1, one thread, interleaved")
    print("| point | options | input | training steps | precision | size KB | p50 ms | within 2% | within 5% "
          "| found | p90 % |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: (r["precision"], r["p50_ms"])):
        print(f"| {r['point']} | {r['options'] or '-'} | {r['input']} | {r['steps']} | {r['precision']} "
              f"| {r['size_bytes'] / 1e3:.0f} | {r['p50_ms']:.2f} | {r['under_2pct']:.1%} | {r['under_5pct']:.1%} "
              f"| {r['found']:.1%} | {r['p90_pct']:.1f} |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pareto.json").write_text(json.dumps(rows, indent=1, default=float))


if __name__ == "__main__":
    main()

"""Compression against issue #5's targets on digits classifiers: full-int8 PTQ
and QAT top-1 drop, 50% magnitude pruning + int8 drop, the gzip size of a
75%-sparse int8 model against the float model's, 50% channel pruning (one-thread
TFLite float latency against the unpruned model's, timed interleaved in one
worker) and pruning-preserving QAT against pruning + PTQ. With ``--hed``, the
document detector too (issue #18, ``benchmarks/hed_compression.py``): PTQ, QAT,
50% and 2:4 pruning, PQAT and channel pruning, each with edge F-score, corners
within 2%, size and latency against the unpruned float export.

    .venv/bin/python benchmarks/compression.py [--recipes recipes/digits_mobilenet_v2.yaml,...] [--prune-steps 300]
        [--parts ptq,prune,qat,channel,pqat] [--seeds 3]
        [--hed] [--hed-model runs/default/hed_mobilenet_v2.keras] [--hed-size 256] [--hed-train-steps 1000]
        [--hed-steps 200] [--hed-parts ptq,qat,prune,2:4,pqat,channel]
    .venv/bin/python benchmarks/compression.py --recipes "" --hed --quick   # HED only, a few minutes
    .venv/bin/python benchmarks/compression.py --recipes "" --hed --quick --hed-model runs/default/hed_mobilenet_v2.keras \
        --hed-size 256 --hed-val 64 --hed-train-steps 40   # the default run's HED, 40 fine-tuning steps per stage

--quick trains its 128 px HED for 300 steps only: the code paths run, but that
HED finds no page yet (edge F and corner rates 0). For task metrics that mean
something, pass a trained model (``--hed-model``); ``--hed-train-steps`` then
only sizes the fine-tuning pool (steps x batch / 2 generated documents).

Each recipe is trained (or reused from runs/<recipe name>, via `edgepipe run`),
then pruned and fine-tuned here. Accuracy is top-1 on digits' test split through
the TFLite interpreter. Absolute numbers hold for this seed and data only.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # hed_compression

from edgepipe.convert import tflite  # noqa: E402
from edgepipe.convert.fold import fold_batchnorm  # noqa: E402
from edgepipe.evaluate.runners import open_runner  # noqa: E402
from edgepipe.base.backend import keras  # noqa: E402
from edgepipe.base.modelio import load_keras  # noqa: E402
from edgepipe.pipeline.recipe import load_recipe  # noqa: E402
from edgepipe.quantize import prune  # noqa: E402
from edgepipe.train.data import classes  # noqa: E402


def top1(path, x, y) -> float:
    return float(np.mean(next(iter(open_runner(path).predict(x).values())).argmax(-1) == y))


def trained(recipe_path: str) -> tuple:
    recipe = load_recipe(recipe_path)
    run = Path("runs") / recipe.name
    if not (run / "report.json").is_file():
        from edgepipe.pipeline.run import run as run_pipeline
        run_pipeline(recipe, run)
    return recipe, load_keras(run / f"{recipe.model.name}.keras")


def export_pair(model, calib, stem: Path) -> dict:
    folded = fold_batchnorm(model)
    paths = {m: tflite.write(folded, stem.with_name(stem.name + s), m, calib if m == "int8" else None)
             for m, s in (("float32", ".tflite"), ("int8", ".int8.tflite"))}
    return {m: {"path": p, **prune.file_sizes(p)} for m, p in paths.items()}


def pruned(model, x, y, sparsity, steps, seed=0, depthwise=False):
    loss = keras.losses.SparseCategoricalCrossentropy()
    wrapped = prune.wrap(model, sparsity, steps, depthwise=depthwise)
    prune.fine_tune(wrapped, x, y, loss, steps, learning_rate=3e-4, seed=seed)
    return prune.strip(wrapped)


def qat(model, x, y, steps):
    """Quantization-aware fine-tuning, then int8 conversion from the learnt ranges."""
    from edgepipe.quantize.stages import classifier_loss, quantization_aware
    from edgepipe.train.finetune import array_tuner
    return quantization_aware(model, steps, 1e-4, False, array_tuner(x, y, classifier_loss(model)))


def channel_pruned(model, x, y, xt, yt, ratio, steps, out: Path) -> dict:
    """Channel-prune, fine-tune, and time both float exports at one thread in one
    fresh worker, runs interleaved (A B A B) so host load hits both alike."""
    from edgepipe.evaluate.latency import measure_host
    from edgepipe.mobile_models.profile import profile_model
    from edgepipe.quantize import channel_prune
    slim, rows = channel_prune.prune_channels(model, ratio)
    untuned = float(np.mean(slim.predict(xt, verbose=0).argmax(-1) == yt))
    channel_prune.fine_tune(slim, x, y, keras.losses.SparseCategoricalCrossentropy(), steps, learning_rate=1e-3)
    paths = {"unpruned": out / "dense.tflite",
             "pruned": tflite.write(fold_batchnorm(slim), out / f"channel{int(ratio * 100)}.tflite")}
    lat = measure_host({k: str(v) for k, v in paths.items()}, threads=1, warmup=20, runs=300)
    return {"ratio": ratio, "top1_before_finetune": untuned, "float_top1": top1(paths["pruned"], xt, yt),
            "macs": [profile_model(m)["macs"] for m in (model, slim)], "params": [model.count_params(),
                                                                                  slim.count_params()],
            "latency_p50_ms": [lat[k]["p50_ms"] for k in ("unpruned", "pruned")],
            "latency_ratio": lat["pruned"]["p50_ms"] / lat["unpruned"]["p50_ms"],
            "channels": [(r["layer"], r["before"], r["after"]) for r in rows]}


def pqat_int8(pruned_model, x, y, steps, calib, path: Path, seed=0):
    """Pruning-preserving QAT of a stripped pruned model, then int8 from the learnt ranges."""
    from edgepipe.quantize.stages import classifier_loss, quantization_aware
    from edgepipe.train.finetune import array_tuner
    tune = array_tuner(x, y, classifier_loss(pruned_model))
    return tflite.write(quantization_aware(pruned_model, steps, 1e-4, True, tune, seed=seed), path,
                        "int8", calib)


def ptq_vs_pqat(model, x, y, xt, yt, steps, calib, out: Path, seeds: int, first=None) -> dict:
    """50% pruning, then PTQ int8 against PQAT int8, over ``seeds`` fine-tuning
    orders: on 271 test images one image is 0.37 point, so one run cannot rank them."""
    runs = []
    for seed in range(seeds):
        sparse = first if seed == 0 and first is not None else pruned(model, x, y, 0.5, steps, seed)
        ptq = tflite.write(fold_batchnorm(sparse), out / f"pruned50.s{seed}.int8.tflite", "int8", calib)
        pqat = pqat_int8(sparse, x, y, steps, calib, out / f"pruned50.s{seed}.pqat.int8.tflite", seed)
        runs.append({"seed": seed, "ptq_int8_top1": top1(ptq, xt, yt), "pqat_int8_top1": top1(pqat, xt, yt)})
    return {"runs": runs, **{f"mean_{k}": float(np.mean([r[k] for r in runs]))
                             for k in ("ptq_int8_top1", "pqat_int8_top1")}}


PARTS = ("ptq", "prune", "qat", "channel", "pqat")
PRUNED = (("pruned50", 0.5, False), ("pruned75", 0.75, False), ("pruned75_depthwise", 0.75, True))


def bench(recipe_path: str, prune_steps: int, parts=PARTS, seeds: int = 3) -> dict:
    recipe, model = trained(recipe_path)
    size, out = recipe.model.input_size, Path("runs") / "bench-compression" / recipe.name
    out.mkdir(parents=True, exist_ok=True)
    x, y, _ = classes(recipe.data, "train", size)
    xt, yt, _ = classes(recipe.data, "test", size)
    calib = x[:200]
    row = {"model": recipe.model.name, "options": recipe.model.options}
    base = export_pair(model, calib, out / "dense")
    row["float_top1"], row["int8_top1"] = top1(base["float32"]["path"], xt, yt), top1(base["int8"]["path"], xt, yt)
    row["dense_sizes"] = {m: {k: v for k, v in d.items() if k != "path"} for m, d in base.items()}
    sparse = {}
    # the 75% model once with depthwise kernels dense (tfmot's default) and once pruned too
    for key, sparsity, depthwise in PRUNED if "prune" in parts else ():
        sparse[key] = pruned(model, x, y, sparsity, prune_steps, depthwise=depthwise)
        p = export_pair(sparse[key], calib, out / key)
        row[key] = {
            "sparsity_with_depthwise": prune.overall_sparsity(prune.sparsity_table(sparse[key], depthwise=True)),
            "float_top1": top1(p["float32"]["path"], xt, yt), "int8_top1": top1(p["int8"]["path"], xt, yt),
            "int8_gzip_vs_float_gzip": p["int8"]["gzip_bytes"] / base["float32"]["gzip_bytes"],
            "sizes": {m: {k: v for k, v in d.items() if k != "path"} for m, d in p.items()}}
    if "qat" in parts:
        q = tflite.write(qat(model, x, y, prune_steps), out / "qat.int8.tflite", "int8", calib)
        row["qat_int8_top1"] = top1(q, xt, yt)
    if "pqat" in parts:
        row["pqat_vs_ptq"] = ptq_vs_pqat(model, x, y, xt, yt, prune_steps, calib, out, seeds, sparse.get("pruned50"))
    if "channel" in parts:
        row["channel50"] = channel_pruned(model, x, y, xt, yt, 0.5, prune_steps, out)
    return row


def _pct(row, *keys):
    for k in keys:
        row = row.get(k) if isinstance(row, dict) else None
    return f"{row:.2%}" if isinstance(row, float) else "-"


# options --quick shortens; an option given on the command line wins over both
FULL = {"prune_steps": 300, "seeds": 3, "hed_size": 256, "hed_train_steps": 1000, "hed_steps": 200, "hed_batch": 16,
        "hed_val": 64, "hed_latency_runs": 100}
QUICK = {"prune_steps": 60, "seeds": 1, "hed_size": 128, "hed_train_steps": 300, "hed_steps": 40, "hed_batch": 8,
         "hed_val": 32, "hed_latency_runs": 30}


def _hed_args(ap):
    from hed_compression import HED_PARTS
    ap.add_argument("--hed", action="store_true", help="the document detector too (HED)")
    ap.add_argument("--hed-recipe", help="recipe for HED's data, loss and verify settings (default: the packaged one)")
    ap.add_argument("--hed-model", help="a trained HED (.keras, edges output) at --hed-size; default: train here")
    ap.add_argument("--hed-size", type=int, help="HED input side")
    ap.add_argument("--hed-train-steps", type=int, help="HED training steps (without --hed-model)")
    ap.add_argument("--hed-steps", type=int, help="HED fine-tuning steps per compression stage")
    ap.add_argument("--hed-batch", type=int)
    ap.add_argument("--hed-val", type=int, help="held-out documents scored")
    ap.add_argument("--hed-latency-runs", type=int)
    ap.add_argument("--hed-parts", default=",".join(HED_PARTS), help=f"subset of {', '.join(HED_PARTS)}")
    ap.add_argument("--quick", action="store_true", help="small and short (with no --hed-model, a HED too "
                    "short-trained to find pages): " + ", ".join(
        f"--{k.replace('_', '-')} {v} (else {FULL[k]})" for k, v in QUICK.items()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipes", default="recipes/digits_mobilenet_v2.yaml,recipes/digits_shufflenet_v2.yaml")
    ap.add_argument("--prune-steps", type=int)
    ap.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {', '.join(PARTS)}")
    ap.add_argument("--seeds", type=int, help="fine-tuning orders for 50%% pruning + PTQ against PQAT")
    _hed_args(ap)
    args = ap.parse_args()
    for k, v in (QUICK if args.quick else FULL).items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    parts = args.parts.split(",")
    if set(parts) - set(PARTS):
        ap.error(f"unknown part(s) {', '.join(sorted(set(parts) - set(PARTS)))}; valid: {', '.join(PARTS)}")
    rows = [bench(r, args.prune_steps, parts, args.seeds) for r in args.recipes.split(",") if r]
    hed = None
    if args.hed:
        from hed_compression import bench_hed
        from edgepipe.pipeline.report import wide_console
        hed = bench_hed(args, wide_console())
    _print_classifiers(rows)
    if hed:
        from hed_compression import print_hed
        print_hed(hed)
    print(json.dumps({"classifiers": rows, "hed": hed}, default=str))


def _print_classifiers(rows):
    if not rows:
        return
    print(f"{'model':14} {'float':>7} {'int8':>7} {'QAT int8':>9} {'50%+int8':>9} {'50%+PQAT':>9} "
          f"{'75% int8 gzip/float gzip (top-1)':>33} {'same, depthwise pruned too':>27}")
    for r in rows:
        gz = [(r[k]["int8_gzip_vs_float_gzip"], r[k]["int8_top1"]) if k in r else None
              for k in ("pruned75", "pruned75_depthwise")]
        gz = [f"{g:.1%} ({t:.2%})" if g else "-" for g, t in (x or (None, None) for x in gz)]
        print(f"{r['model']:14} {_pct(r, 'float_top1'):>7} {_pct(r, 'int8_top1'):>7} {_pct(r, 'qat_int8_top1'):>9} "
              f"{_pct(r, 'pruned50', 'int8_top1'):>9} {_pct(r, 'pqat_vs_ptq', 'mean_pqat_int8_top1'):>9} "
              f"{gz[0]:>33} {gz[1]:>27}")
    for r in rows:
        c = r.get("pqat_vs_ptq")
        if c:
            print(f"{r['model']}, 50% pruned, {len(c['runs'])} fine-tuning orders: PTQ int8 "
                  + ", ".join(f"{x['ptq_int8_top1']:.2%}" for x in c["runs"]) + f" (mean {c['mean_ptq_int8_top1']:.2%})"
                  + "; PQAT int8 " + ", ".join(f"{x['pqat_int8_top1']:.2%}" for x in c["runs"])
                  + f" (mean {c['mean_pqat_int8_top1']:.2%})")
    for r in rows:
        c = r.get("channel50")
        if c:
            print(f"{r['model']}, 50% channel-pruned: MACs {c['macs'][0]:,} -> {c['macs'][1]:,}; float TFLite "
                  f"1 thread p50 {c['latency_p50_ms'][0]:.3f} -> {c['latency_p50_ms'][1]:.3f} ms "
                  f"({c['latency_ratio']:.2f}x); top-1 {r['float_top1']:.2%} -> {c['top1_before_finetune']:.2%} "
                  f"pruned -> {c['float_top1']:.2%} fine-tuned")
    print("targets: int8 PTQ drop <= 0.5 point; QAT <= 0.3; 50% pruning + int8 drop <= 1 point; "
          "75%-sparse int8 gzip <= 15% of the float gzip; 50% channel pruning <= 0.6x float latency; "
          "50% pruning + PQAT int8 above 50% pruning + PTQ int8 (mean over the seeds)")


if __name__ == "__main__":
    main()

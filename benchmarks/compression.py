"""Compression against issue #5's targets on digits classifiers: full-int8 PTQ
and QAT top-1 drop, 50% magnitude pruning + int8 drop, and the gzip size of a
75%-sparse int8 model against the float model's.

    .venv/bin/python benchmarks/compression.py [--recipes recipes/digits_mobilenet_v2.yaml,...] [--prune-steps 300]

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

from convert import tflite  # noqa: E402
from convert.fold import fold_batchnorm  # noqa: E402
from evaluate.runners import open_runner  # noqa: E402
from mobile_models.backend import keras  # noqa: E402
from pipeline.modelio import load_keras  # noqa: E402
from pipeline.recipe import load_recipe  # noqa: E402
from quantize import prune  # noqa: E402
from train.data import classes  # noqa: E402


def top1(path, x, y) -> float:
    return float(np.mean(next(iter(open_runner(path).predict(x).values())).argmax(-1) == y))


def trained(recipe_path: str) -> tuple:
    recipe = load_recipe(recipe_path)
    run = Path("runs") / recipe.name
    if not (run / "report.json").is_file():
        from pipeline.run import run as run_pipeline
        run_pipeline(recipe, run)
    return recipe, load_keras(run / f"{recipe.model.name}.keras")


def export_pair(model, calib, stem: Path) -> dict:
    folded = fold_batchnorm(model)
    paths = {m: tflite.write(folded, stem.with_name(stem.name + s), m, calib if m == "int8" else None)
             for m, s in (("float32", ".tflite"), ("int8", ".int8.tflite"))}
    return {m: {"path": p, **prune.file_sizes(p)} for m, p in paths.items()}


def pruned(model, x, y, sparsity, steps):
    loss = keras.losses.SparseCategoricalCrossentropy()
    wrapped = prune.wrap(model, sparsity, steps)
    prune.fine_tune(wrapped, x, y, loss, steps, learning_rate=3e-4)
    return prune.strip(wrapped)


def qat(model, x, y, steps):
    """Quantization-aware fine-tuning, then int8 conversion from the learnt ranges."""
    from mobile_models.backend import tf
    from quantize.qat import qat_model
    q = qat_model(model)
    q.compile(keras.optimizers.Adam(1e-4), keras.losses.SparseCategoricalCrossentropy())
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=0).batch(32).repeat()
    q.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
    return q


def bench(recipe_path: str, prune_steps: int) -> dict:
    recipe, model = trained(recipe_path)
    size, out = recipe.model.input_size, Path("runs") / "bench-compression" / recipe.name
    out.mkdir(parents=True, exist_ok=True)
    x, y, _ = classes(recipe.data, "train", size)
    xt, yt, _ = classes(recipe.data, "test", size)
    calib = x[:200]
    row = {"model": recipe.model.name, "options": recipe.model.options}
    base = export_pair(model, calib, out / "dense")
    row["float_top1"], row["int8_top1"] = top1(base["float32"]["path"], xt, yt), top1(base["int8"]["path"], xt, yt)
    for sparsity in (0.5, 0.75):
        p = export_pair(pruned(model, x, y, sparsity, prune_steps), calib, out / f"pruned{int(sparsity * 100)}")
        row[f"pruned{int(sparsity * 100)}"] = {
            "float_top1": top1(p["float32"]["path"], xt, yt), "int8_top1": top1(p["int8"]["path"], xt, yt),
            "int8_gzip_vs_float_gzip": p["int8"]["gzip_bytes"] / base["float32"]["gzip_bytes"],
            "sizes": {m: {k: v for k, v in d.items() if k != "path"} for m, d in p.items()}}
    row["dense_sizes"] = {m: {k: v for k, v in d.items() if k != "path"} for m, d in base.items()}
    q = tflite.write(qat(model, x, y, prune_steps), out / "qat.int8.tflite", "int8", calib)
    row["qat_int8_top1"] = top1(q, xt, yt)
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipes", default="recipes/digits_mobilenet_v2.yaml,recipes/digits_shufflenet_v2.yaml")
    ap.add_argument("--prune-steps", type=int, default=300)
    args = ap.parse_args()
    rows = [bench(r, args.prune_steps) for r in args.recipes.split(",")]
    print(f"{'model':14} {'float':>7} {'int8':>7} {'drop':>6} {'QAT int8':>9} {'drop':>6} {'50%+int8':>9} {'drop':>6} "
          f"{'75% int8 gzip/float gzip':>25}")
    for r in rows:
        p50, p75, f = r["pruned50"], r["pruned75"], r["float_top1"]
        print(f"{r['model']:14} {f:7.2%} {r['int8_top1']:7.2%} {100 * (f - r['int8_top1']):5.2f}p "
              f"{r['qat_int8_top1']:9.2%} {100 * (f - r['qat_int8_top1']):5.2f}p {p50['int8_top1']:9.2%} "
              f"{100 * (f - p50['int8_top1']):5.2f}p {p75['int8_gzip_vs_float_gzip']:25.1%}")
    print("targets: int8 PTQ drop <= 0.5 point; QAT <= 0.3; 50% pruning + int8 drop <= 1 point; "
          "75%-sparse int8 gzip <= 15% of the float gzip")
    print("not measured here: PQAT and channel pruning (not implemented yet)")
    print(json.dumps(rows, default=str))


if __name__ == "__main__":
    main()

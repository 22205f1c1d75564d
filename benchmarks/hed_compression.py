"""The document detector's part of ``benchmarks/compression.py`` (issue #18): one
HED, trained here (or ``--hed-model``), then PTQ int8, QAT int8, 50% magnitude
pruning, 2:4 pruning, PQAT int8 on the 50%-pruned model and 50% channel pruning
(float and int8), each fine-tuned with HED's loss and document stream
(``train.hedtune``). Every export is scored on the recipe's held-out documents
(edge F-score, corners within 2% and 5% of the diagonal), sized (bytes, gzip),
and timed at one thread in one fresh worker, all artifacts interleaved, as a
ratio to the unpruned float export. Everything in one run; absolute numbers
hold for this seed, data and host only.
"""
from pathlib import Path

from edgepipe.convert import tflite
from edgepipe.convert.fold import export_graph
from edgepipe.convert.upsample import transposed_to_subpixel
from edgepipe.evaluate.runners import open_runner
from edgepipe.mobile_models.profile import profile_model
from edgepipe.pipeline.recipe import PruneCfg, load_recipe
from edgepipe.pipeline.tasks import EdgeTask
from edgepipe.quantize import prune
from edgepipe.quantize.stages import prune_and_fine_tune, quantization_aware

HED_PARTS = ("ptq", "qat", "prune", "2:4", "pqat", "channel")


def hed_recipe(path: str | None, size: int, train_steps: int, batch: int, val_size: int):
    """The recipe's data, loss and verify settings, shortened: one phase of
    ``train_steps`` at the deployed ``size``."""
    recipe = load_recipe(path)
    train = recipe.train.model_dump() | {
        "phases": [{"size": size, "steps": train_steps, "pool": max(64, min(4000, train_steps * batch // 2))}],
        "batch_size": batch, "steps_per_epoch": max(1, train_steps // 4), "val_size": min(16, val_size)}
    raw = recipe.model_dump() | {"name": f"bench-hed-{size}", "profile": "bench", "profiles": {"bench": train}}
    raw["model"]["input_size"] = size
    raw["data"]["val_size"] = val_size
    raw["export"]["calibration_samples"] = min(raw["export"]["calibration_samples"], 128)
    return type(recipe).model_validate(raw)


def trained_hed(recipe, out: Path, model_path: str | None, console):
    from edgepipe.base.modelio import load_keras
    task = EdgeTask(recipe)
    if model_path:
        model = load_keras(model_path)
        if tuple(model.input_shape[1:3]) != (recipe.model.input_size,) * 2:
            raise SystemExit(f"{model_path} takes {model.input_shape[1:3]} images; pass --hed-size "
                             f"{model.input_shape[1]}")
        return task, model
    return task, task.train(out, console, resume=False)[0]


def _score(task, path, x, truth) -> dict:
    got = next(iter(open_runner(path).predict(x).values()))
    return task.score(got.reshape(len(x), *got.shape[-3:]), truth)


def compressed_models(task, model, parts, steps: int, batch: int, lr: float) -> dict:
    """name -> (Keras model the float export comes from, model the int8 export comes from or None for PTQ)."""
    tune = task.tuner(model)
    models = {"dense": (model, None)}
    cfg = PruneCfg(sparsity=0.5, steps=steps, batch_size=batch, learning_rate=lr)
    if "qat" in parts:
        models["dense QAT"] = (model, quantization_aware(transposed_to_subpixel(model), steps, 1e-4, False, tune,
                                                         batch))
    if "prune" in parts or "pqat" in parts:
        sparse = prune_and_fine_tune(model, cfg, tune)[0]
        models["50% sparse"] = (sparse, None)
        if "pqat" in parts:
            models["50% sparse PQAT"] = (sparse, quantization_aware(transposed_to_subpixel(sparse), steps, 1e-4,
                                                                    True, tune, batch))
    if "2:4" in parts:
        models["2:4 sparse"] = (prune_and_fine_tune(model, cfg.model_copy(update={"structure": "2:4"}), tune)[0],
                                None)
    if "channel" in parts:
        models["50% channels"] = (prune_and_fine_tune(model, cfg.model_copy(update={"structure": "channel"}),
                                                      tune)[0], None)
    return models


def export_all(task, models: dict, calib, out: Path) -> dict:
    """'name precision' -> path, macs, sizes; float exports from the export graph, int8 from PTQ or QAT."""
    rows = {}
    for name, (keras_model, qat) in models.items():
        stem = out / name.replace(" ", "_").replace("%", "pct").replace(":", "of")
        graph = export_graph(keras_model)
        macs = profile_model(keras_model)["macs"]
        wanted = [("int8", qat)] if qat is not None else [("float32", None), ("int8", None)]
        for precision, source in wanted:
            path = tflite.write(graph if source is None else source, Path(f"{stem}.{precision}.tflite"),
                                precision, calib if precision == "int8" else None)
            rows[f"{name} {precision}"] = {"path": str(path), "macs": macs, **prune.file_sizes(path)}
    return rows


def bench_hed(args, console) -> dict:
    from edgepipe.evaluate.latency import measure_host
    parts = [p for p in args.hed_parts.split(",") if p]
    recipe = hed_recipe(args.hed_recipe, args.hed_size, args.hed_train_steps, args.hed_batch, args.hed_val)
    out = Path("runs") / "bench-compression" / recipe.name
    out.mkdir(parents=True, exist_ok=True)
    task, model = trained_hed(recipe, out, args.hed_model, console)
    models = compressed_models(task, model, parts, args.hed_steps, args.hed_batch, 1e-3)
    rows = export_all(task, models, task.calibration(), out)
    x, truth = task.heldout()
    for r in rows.values():
        r["task"] = _score(task, r["path"], x, truth)
    lat = measure_host({k: r["path"] for k, r in rows.items()}, threads=1, warmup=5, runs=args.hed_latency_runs)
    base = lat["dense float32"]["p50_ms"]
    for k, r in rows.items():
        r["p50_ms"] = lat[k]["p50_ms"]
        r["latency_vs_dense_float"] = lat[k]["p50_ms"] / base
    return {"model": recipe.model.name, "size": recipe.model.input_size, "train_steps": args.hed_train_steps,
            "fine_tune_steps": args.hed_steps, "heldout": len(x), "rows": rows}


def print_hed(result: dict):
    rows = result["rows"]
    dense = rows["dense float32"]
    print(f"\nHED ({result['model']} at {result['size']}px, {result['train_steps']} training steps, "
          f"{result['fine_tune_steps']} fine-tuning steps per stage, {result['heldout']} held-out documents)")
    print(f"{'export':28} {'edge F':>7} {'<2%':>6} {'<5%':>6} {'found':>6} {'MACs M':>7} {'KB':>7} "
          f"{'gzip KB':>8} {'gzip/dense':>10} {'p50 ms':>7} {'latency':>8}")
    for name, r in rows.items():
        t = r["task"]
        print(f"{name:28} {t['f_score']:7.3f} {t['under_2pct']:6.1%} {t['under_5pct']:6.1%} "
              f"{t['detection_rate']:6.1%} {r['macs'] / 1e6:7.1f} {r['bytes'] / 1e3:7.1f} {r['gzip_bytes'] / 1e3:8.1f} "
              f"{r['gzip_bytes'] / dense['gzip_bytes']:10.1%} {r['p50_ms']:7.2f} {r['latency_vs_dense_float']:7.2f}x")
    print("latency: one thread, batch 1, all exports interleaved in one worker; ratio to the unpruned float export")

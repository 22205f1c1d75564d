"""``edgepipe prune`` on the document detector (HED, one 1-channel edge map out):
magnitude (unstructured, 2:4) or channel pruning, optionally QAT/PQAT, all
fine-tuned with HED's own loss and document stream from ``--recipe`` (default:
the packaged recipe). The unpruned and the pruned model are exported as the
pipeline exports them (BN folded, sub-pixel upsamplers, fuse pyramid), float32
and int8, and each export is scored on the recipe's held-out documents (edge
F-score, corners within 2% and 5%), checked against its Keras model with the
recipe's release gate, sized and timed on one thread, interleaved."""
from pathlib import Path

from rich.table import Table

from edgepipe.base.errors import EdgePipeError


def is_edge_model(model) -> bool:
    return len(model.outputs) == 1 and len(model.output_shape) == 4 and model.output_shape[-1] == 1


def edge_task(recipe_path, model):
    """The pipeline's edge task for ``recipe_path``'s data, loss and verify settings at the model's size."""
    from edgepipe.pipeline.recipe import load_recipe
    from edgepipe.pipeline.tasks import EdgeTask
    recipe = load_recipe(recipe_path)
    if recipe.data.kind not in ("synthetic_documents", "document_folder"):
        raise EdgePipeError(f"the recipe's data.kind is {recipe.data.kind}; HED fine-tunes on document data")
    h, w = model.input_shape[1:3]
    if h is None or h != w or h % 16:
        raise EdgePipeError(f"HED pruning needs a square input whose side is a multiple of 16, got {h}x{w}")
    return EdgeTask(recipe.model_copy(update={"model": recipe.model.model_copy(update={"input_size": h})}))


def cmd_prune_hed(args, model, out: Path, console) -> int:
    from edgepipe.base.modelio import save_keras
    from edgepipe.convert.upsample import transposed_to_subpixel
    from edgepipe.pipeline.recipe import PruneCfg
    from edgepipe.quantize.stages import prune_and_fine_tune, quantization_aware
    if args.data_folder:
        raise EdgePipeError("--data-folder is a classifier's image folder; HED takes its documents from --recipe "
                            "(data.kind document_folder)")
    task = edge_task(args.recipe, model)
    cfg = PruneCfg(sparsity=args.sparsity, structure=args.structure, schedule=args.schedule,
                   depthwise=args.depthwise, steps=args.steps, batch_size=args.batch_size,
                   learning_rate=args.learning_rate)
    tune = task.tuner(model)
    with console.status(f"pruning HED {cfg.sparsity:.0%} ({cfg.structure}), {cfg.steps} fine-tuning steps"):
        pruned, rows = prune_and_fine_tune(model, cfg, tune)
    save_keras(pruned, out)
    console.print(_rows_table(rows, cfg.structure, out.name))
    from edgepipe.mobile_models.profile import profile_model
    before, after = profile_model(model), profile_model(pruned)
    console.print(f"MACs: {before['macs']:,} -> {after['macs']:,} ({after['macs'] / before['macs']:.1%}); "
                  f"params: {before['params']:,} -> {after['params']:,}")
    qat = None
    if args.qat_steps:
        keep_zeros = cfg.structure != "channel"
        with console.status(f"{'PQAT' if keep_zeros else 'QAT'}: {args.qat_steps} quantization-aware steps"):
            qat = quantization_aware(transposed_to_subpixel(pruned), args.qat_steps, args.qat_learning_rate,
                                     keep_zeros, tune, args.batch_size)
    calib = task.calibration()
    results = _export_and_score(task, {"unpruned": (model, None), "pruned": (pruned, qat)}, calib, out)
    _latency_into(results, args.latency_runs)
    console.print(_results_table(results, "QAT" if qat is not None else "PTQ"))
    failed = [f"{k}: {r['gate']['rule']}" for k, r in results.items() if k.startswith("pruned")
              and not r["gate"]["pass"]]
    for f in failed:
        console.print(f"gate failed: {f}", style="red")
    return 1 if failed else 0


def _rows_table(rows, structure: str, name: str):
    if structure == "channel":
        t = Table(title=f"channels per pruned conv of {name} (lowest L1 norm removed)")
        cols = ("layer", "before", "after", "consumer")
    else:
        t = Table(title=f"per-layer sparsity of {name}")
        cols = ("layer", "type", "weights", "zeros", "sparsity")
    for col in cols:
        t.add_column(col)
    for r in rows:
        t.add_row(*[f"{r[c]:.1%}" if c == "sparsity" else str(r[c]) for c in cols])
    return t


def _export_and_score(task, models: dict, calib, out: Path) -> dict:
    """name/precision -> sizes, task metrics and gate of each export, against its Keras model."""
    from edgepipe.convert import tflite
    from edgepipe.convert.fold import export_graph
    from edgepipe.evaluate.parity import parity
    from edgepipe.evaluate.runners import KerasRunner, open_runner
    from edgepipe.pipeline.run import release_gate
    from edgepipe.quantize.prune import file_sizes
    x, truth = task.heldout()
    results = {}
    for name, (model, qat) in models.items():
        ref = next(iter(KerasRunner(model).predict(x).values()))
        stem = out.with_name(out.stem + (".unpruned" if name == "unpruned" else ""))
        graph = export_graph(model)
        for precision, suffix, source in (("float32", ".tflite", graph), ("int8", ".int8.tflite", graph if qat is None else qat)):
            path = tflite.write(source, stem.with_name(stem.name + suffix), precision,
                                calib if precision == "int8" else None)
            got = next(iter(open_runner(path).predict(x).values())).reshape(ref.shape)
            metrics = task.score(got, truth) | parity(ref, got)
            metrics["f_score_drop"] = task.score(ref, truth)["f_score"] - metrics["f_score"]
            results[f"{name} {precision}"] = {"path": str(path), **file_sizes(path), "task": metrics,
                                              "gate": release_gate(precision, metrics, False, task.recipe.verify)}
    return results


def _latency_into(results: dict, runs: int):
    """p50 ms of every export at one thread, runs interleaved so host load hits all alike."""
    import numpy as np

    from edgepipe.evaluate.latency import interleaved
    from edgepipe.evaluate.runners import open_runner
    runners = {k: open_runner(r["path"], threads=1) for k, r in results.items()}
    shape = next(iter(runners.values())).inputs[0].shape[1:]
    batch = np.random.default_rng(0).random((1, *shape), np.float32)
    for k, s in interleaved(runners, batch, warmup=max(1, runs // 10), runs=runs).items():
        results[k]["p50_ms"] = s["p50_ms"]


def _results_table(results: dict, int8_kind: str):
    base = results["unpruned float32"]
    t = Table(title=f"HED before and after pruning (held-out documents; pruned int8 from {int8_kind}; "
                    "latency 1 thread, interleaved)")
    for col in ("export", "MB", "gzip MB", "edge F", "corner <2%", "corner <5%", "p50 ms", "vs unpruned float",
                "gate"):
        t.add_column(col, justify="left" if col in ("export", "gate") else "right")
    for name, r in results.items():
        m = r["task"]
        t.add_row(name, f"{r['bytes'] / 1e6:.3f}", f"{r['gzip_bytes'] / 1e6:.3f}", f"{m['f_score']:.3f}",
                  f"{m['under_2pct']:.1%}", f"{m['under_5pct']:.1%}", f"{r['p50_ms']:.2f}",
                  f"{r['p50_ms'] / base['p50_ms']:.2f}x", ("pass " if r["gate"]["pass"] else "FAIL ")
                  + r["gate"]["rule"])
    return t

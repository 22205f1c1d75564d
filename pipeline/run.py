"""The default pipeline: train -> fold BN -> export -> verify -> bench -> report."""
import hashlib
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import track

from convert.formats import VARIANTS, export
from convert.fold import count_batchnorm, fold_batchnorm
from evaluate.parity import parity
from evaluate.runners import KerasRunner, NotRunnable, open_runner
from evaluate.taskmetrics import task_metrics
from pipeline import modelio
from pipeline.atomic import ensure_writable_dir
from pipeline.cards import bundle_meta, model_card
from pipeline.errors import EdgePipeError
from pipeline.report import artifact_entry, print_table, wide_console, write_json

def recipe_hash(recipe) -> str:
    return hashlib.sha256(recipe.model_dump_json().encode()).hexdigest()[:16]


def train_key(recipe) -> str:
    """What the training checkpoints belong to: a resume continues only the same training."""
    cfg = [c.model_dump() for c in (recipe.model, recipe.data, recipe.train)]
    return hashlib.sha256(repr(cfg).encode()).hexdigest()[:16]


def stage_train(recipe, out: Path, console, resume: bool = True):
    """Train (continuing from ``out/checkpoints`` when they belong to this recipe),
    then save the fixed-size inference model as ``out/NAME.keras``."""
    import mobile_models
    from mobile_models.hed import inference_model
    from train.fit import train_hed
    from train.loop import load_state

    name, size = recipe.model.name, recipe.model.input_size
    ckpt = out / "checkpoints"
    key = train_key(recipe)
    if resume and (ckpt / "state.json").is_file():
        try:
            state = load_state(ckpt, key, True)
            console.log(f"resuming training after epoch {state.epochs_done} (step {state.steps_done})")
        except EdgePipeError:
            console.log("checkpoints belong to another recipe: training from scratch")
            resume = False
    trainable, state = train_hed(lambda: mobile_models.build(name, input_shape=(None, None, 3)), recipe.train,
                                 recipe.data.train_seed, ckpt, key=key, resume=resume,
                                 val_seed=recipe.data.val_seed + 1, log_dir=out / "logs",
                                 verbose=1 if console.is_terminal else 2)
    strategy = trainable.distribute_strategy
    console.log(f"trained {state.steps_done} steps on {strategy.num_replicas_in_sync} replica(s) "
                f"({type(strategy).__name__})")
    if state.stopped_early:
        console.log(f"early stopping after epoch {state.epochs_done}")
    fixed = mobile_models.build(name, input_shape=(size, size, 3))
    fixed.set_weights(trainable.get_weights())
    model = inference_model(fixed, recipe.model.output)
    modelio.save_keras(model, out / f"{name}.keras")
    return model, state.history


def stage_export(recipe, model, out: Path, console) -> list[dict]:
    from train.datasets import representative_images

    folded = fold_batchnorm(model)
    console.log(f"folded BatchNorm: {count_batchnorm(model)} -> {count_batchnorm(folded)} BN layers")
    size = recipe.model.input_size
    calib = representative_images(recipe.data.train_seed, recipe.export.calibration_samples, size)
    meta = bundle_meta(recipe, model, recipe_hash(recipe))
    results = []
    for vname in track(recipe.export.variants, description="exporting", console=console):
        v = VARIANTS[vname]
        path = out / f"{recipe.model.name}{v.suffix}"
        try:
            export(v, folded, path, calib if v.precision in ("int8", "int16x8") else None, meta)
            results.append({"variant": v, "path": path, "status": "ok", "reason": ""})
        except EdgePipeError:
            raise
        except Exception as e:  # a converter failure is reported, not fatal to the run
            results.append({"variant": v, "path": None, "status": "failed", "reason": str(e).splitlines()[0][:200]})
    return results


def _match(ref_names, got: dict) -> dict:
    if set(ref_names) <= set(got):
        return {n: got[n] for n in ref_names}
    if len(got) == len(ref_names):
        return dict(zip(ref_names, got.values()))
    raise EdgePipeError(f"export outputs {list(got)} do not match the original's {ref_names}")


def stage_verify(recipe, model, exports, val, out: Path, console) -> list[dict]:
    images, edges, corners = val
    x = images.astype(np.float32) / 255.0
    cfg = recipe.verify
    keras_runner = KerasRunner(model)
    ref = keras_runner.predict(x)["edges"]
    entries = [artifact_entry("keras", "float32", out / recipe_artifact(recipe, ".keras"),
                              task=task_metrics(ref, edges, corners, cfg.edge_threshold, cfg.edge_tolerance_px))]
    for e in track(exports, description="verifying", console=console):
        v = e["variant"]
        if e["status"] != "ok":
            entries.append(artifact_entry(v.format, v.precision, None, e["status"], e["reason"]))
            continue
        try:
            got = _match(["edges"], open_runner(e["path"]).predict(x))["edges"]
        except NotRunnable as why:
            entries.append(artifact_entry(v.format, v.precision, e["path"], "not_run", f"converted; {why}"))
            continue
        entry = artifact_entry(v.format, v.precision, e["path"], parity=parity(ref, got),
                               task=task_metrics(got, edges, corners, cfg.edge_threshold, cfg.edge_tolerance_px))
        entry["gate"] = release_gate(v.precision, entry["parity"])
        if v.precision == "int8":
            entry["layers"] = _int8_layer_errors(recipe, model)
        entries.append(entry)
    return entries


def release_gate(precision: str, metrics: dict) -> dict:
    """The default gate for a dense-output export (see evaluate.gates)."""
    from evaluate.gates import default_gate
    gate = default_gate(precision, classifier=False)
    value = metrics[gate.metric]
    return {"rule": gate.describe(value), "pass": bool(gate.holds(value))}


def _int8_layer_errors(recipe, model) -> list[dict]:
    from quantize.debug import layer_errors
    from train.datasets import representative_images
    calib = representative_images(recipe.data.train_seed, recipe.export.calibration_samples, recipe.model.input_size)
    return layer_errors(fold_batchnorm(model), calib, debug_samples=min(8, len(calib)))


def recipe_artifact(recipe, suffix):
    return f"{recipe.model.name}{suffix}"


def stage_bench(recipe, entries, macs: int, out: Path, console):
    """Time every runnable artifact in a fresh process (one thread, batch 1)."""
    from evaluate.latency import measure_host
    models = {f"{e['format']}/{e['variant']}": str(Path(e["path"]).resolve()) for e in entries
              if e["status"] == "ok" and e["path"]}
    try:
        with console.status(f"timing latency ({recipe.bench.threads} thread, interleaved)"):
            stats = measure_host(models, recipe.bench.threads, recipe.bench.warmup, recipe.bench.runs,
                                 [recipe.model.input_size] * 2 + [3], macs={k: macs for k in models})
    except EdgePipeError as e:
        console.log(f"[yellow]latency stage failed: {e}")
        return
    for e in entries:
        e["latency"] = stats.get(f"{e['format']}/{e['variant']}", {})


def _export_records(exports):
    return [{"variant": e["variant"].name, "path": e["path"] and str(e["path"]), "status": e["status"],
             "reason": e["reason"]} for e in exports]


def _export_objects(records):
    return [r | {"variant": VARIANTS[r["variant"]], "path": r["path"] and Path(r["path"])} for r in records]


def run(recipe, out_dir, console: Console | None = None, force: bool = False) -> dict:
    """Run the recipe's stages, skipping those whose inputs and config are unchanged."""
    from pipeline.manifest import Manifest, stage_key
    console = console or wide_console()
    out = ensure_writable_dir(out_dir)
    from pipeline.atomic import remove_stale_temps
    for name in remove_stale_temps(out):
        console.log(f"removed {name}, left by an interrupted run")
    manifest = Manifest(out, force)
    t_start, timings, skipped = time.time(), {}, set()

    def stage(name, config, inputs, fn):
        """Run ``fn() -> (result, outputs)`` unless the manifest says it is done."""
        key = stage_key(config, inputs)
        console.rule(f"[bold]{name}")
        done = manifest.finished(name, key)
        if done:
            console.log(f"{name}: up to date (finished {done['finished']}), skipped")
            timings[name] = 0.0
            skipped.add(name)
            return done["result"]
        t0 = time.time()
        result, outputs = fn()
        timings[name] = round(time.time() - t0, 1)
        manifest.record(name, key, outputs, result, timings[name])
        console.log(f"{name} done in {timings[name]} s")
        return result

    keras_path = out / recipe_artifact(recipe, ".keras")
    models = {}

    def do_train():
        models["model"], history = stage_train(recipe, out, console)
        return {"loss": history["loss"], "val_loss": history["val_loss"]}, [keras_path]

    def model():
        if "model" not in models:
            models["model"] = modelio.load_keras(keras_path)
        return models["model"]

    train_cfg = [recipe.model, recipe.data, recipe.train]
    history = stage("train", [c.model_dump() for c in train_cfg], {}, do_train)

    def do_export():
        exports = _export_records(stage_export(recipe, model(), out, console))
        return exports, [r["path"] for r in exports]

    exports = _export_objects(stage("export", [recipe.export.model_dump(), recipe.bundle.model_dump()],
                                    manifest.output_hashes("train"), do_export))

    def do_verify():
        from train.datasets import document_arrays
        val = document_arrays(recipe.data.val_seed, recipe.data.val_size, recipe.model.input_size)
        return stage_verify(recipe, model(), exports, val, out, console), []

    upstream = manifest.output_hashes("train") | manifest.output_hashes("export")
    entries = stage("verify", [recipe.verify.model_dump(), recipe.data.model_dump()], upstream, do_verify)

    def do_bench():
        from mobile_models.profile import profile_model
        macs = profile_model(model())["macs"]
        stage_bench(recipe, entries, macs, out, console)
        return {"macs": macs, "latency": {f"{e['format']}/{e['variant']}": e["latency"] for e in entries}}, []

    bench = stage("bench", recipe.bench.model_dump(), upstream, do_bench)
    for e in entries:
        e["latency"] = bench["latency"].get(f"{e['format']}/{e['variant']}", {})
    report = {"recipe": {"name": recipe.name, "hash": recipe_hash(recipe), "profile": recipe.profile,
                         "config": recipe.model_dump()},
              "artifacts": entries, "train": {"final_loss": history["loss"][-1], "loss": history["loss"]},
              "stages": {k: {"seconds": v, "skipped": k in skipped} for k, v in timings.items()},
              "timings_s": timings | {"total": round(time.time() - t_start, 1)}}
    card = model_card(recipe, model(), entries, recipe_hash(recipe)) | {"macs": bench["macs"]}
    write_json(out / "model_card.json", card)
    write_json(out / "report.json", report)
    print_table(report, console)
    from pipeline.html_report import render
    with console.status("rendering report.html"):
        render(report, out)
    console.log(f"wrote {out / 'report.json'}, report.html and model_card.json in {report['timings_s']['total']} s")
    return report

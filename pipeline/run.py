"""The default pipeline: train -> fold BN -> export -> verify -> bench -> report."""
import hashlib
import time
from pathlib import Path

from rich.console import Console
from rich.progress import track

from edgepipe.convert.formats import VARIANTS, export
from edgepipe.convert.fold import count_batchnorm, export_graph
from edgepipe.evaluate.parity import parity
from edgepipe.evaluate.runners import KerasRunner, NotRunnable, open_runner
from edgepipe.base import interrupts, modelio
from edgepipe.base.atomic import ensure_writable_dir
from edgepipe.pipeline.cards import model_card
from edgepipe.base.errors import EdgePipeError, first_line
from edgepipe.pipeline.report import artifact_entry, print_table, wide_console, write_json
from edgepipe.pipeline.tasks import check_out_outside_data, data_inputs

def recipe_hash(recipe) -> str:
    return hashlib.sha256(recipe.model_dump_json().encode()).hexdigest()[:16]


def stage_export(recipe, task, model, out: Path, console) -> list[dict]:
    folded = export_graph(model)
    pyramid = any(layer.name == "fuse_up1" for layer in folded.layers)
    console.log(f"folded BatchNorm: {count_batchnorm(model)} -> {count_batchnorm(folded)} BN layers; "
                f"transposed convs as sub-pixel convs: {_count(model, 'Conv2DTranspose')} -> "
                f"{_count(folded, 'Conv2DTranspose')}"
                + ("; HED fuse as a pyramid of sums and 2x depth-to-space" if pyramid else ""))
    calib = task.calibration()
    variants = [VARIANTS[name] for name in recipe.export.variants]
    if len(calib) < recipe.export.calibration_samples and any(v.needs_calibration for v in variants):
        console.print(f"note: export.calibration_samples asks for {recipe.export.calibration_samples} images; the "
                      f"training data holds {len(calib)}, and calibration uses those", markup=False)
    meta = _with_calibration(task.meta(model, recipe_hash(recipe)), len(calib))
    qat = [v for v in variants if v.format == "tflite" and v.precision == "int8"]  # tfmot's QAT graph is TFLite's
    int8_source = _qat_model(recipe, task, model, console) if qat else None
    results = []
    for v in track(variants, description="exporting", console=console):
        path = out / f"{recipe.model.name}{v.suffix}"
        source = int8_source if v in qat and int8_source is not None else folded
        try:
            export(v, source, path, calib if v.needs_calibration else None, meta)
            results.append({"variant": v, "path": path, "status": "ok", "reason": ""})
        except EdgePipeError:
            interrupts.check()
            raise
        except Exception as e:  # a converter failure is reported, not fatal to the run
            interrupts.check()  # ...unless it was Ctrl-C that the converter swallowed
            results.append({"variant": v, "path": None, "status": "failed",
                            "reason": first_line(e)})
        interrupts.check()
    return results


def _count(model, kind: str) -> int:
    return sum(type(layer).__name__ == kind for layer in model.layers)


def _qat_model(recipe, task, model, console):
    """With ``quantize.qat_steps``, the int8 variants come from quantization-aware
    fine-tuning (PQAT after magnitude pruning: the zeros stay zeros). HED's
    transposed convs become sub-pixel convs first, as in every other export."""
    q = recipe.quantize
    if not q.qat_steps:
        return None
    from edgepipe.convert.upsample import transposed_to_subpixel
    from edgepipe.quantize.stages import quantization_aware
    keep_zeros = bool(recipe.prune and recipe.prune.structure != "channel")
    with console.status(f"{'PQAT' if keep_zeros else 'QAT'}: {q.qat_steps} quantization-aware steps"):
        return quantization_aware(transposed_to_subpixel(model), q.qat_steps, q.qat_learning_rate, keep_zeros,
                                  task.tuner(model), q.qat_batch_size)


def stage_prune(recipe, task, model, path: Path, console) -> dict:
    """Prune and fine-tune the trained model; the exports are made from this one."""
    from edgepipe.mobile_models.profile import profile_model
    from edgepipe.quantize.stages import prune_and_fine_tune
    cfg = recipe.prune
    with console.status(f"pruning {cfg.sparsity:.0%} ({cfg.structure}), {cfg.steps} fine-tuning steps"):
        pruned, rows = prune_and_fine_tune(model, cfg, task.tuner(model))
    modelio.save_keras(pruned, path)
    xv, truth = task.heldout()
    scores = {name: _score_outputs(task, KerasRunner(m).predict(xv), truth)
              for name, m in (("trained", model), ("pruned", pruned))}
    console.log(f"pruned: MACs {profile_model(model)['macs']:,} -> {profile_model(pruned)['macs']:,}; "
                f"{task.accuracy_label} {scores['trained'][task.accuracy_key]:.2%} -> "
                f"{scores['pruned'][task.accuracy_key]:.2%}")
    return {"table": rows, "scores": scores, "macs": [profile_model(m)["macs"] for m in (model, pruned)]}


def _score_outputs(task, outputs: dict, truth) -> dict:
    """The task's score of a model's outputs: its own output (or the first), the rest as ``others``."""
    main = task.output if task.output in outputs else next(iter(outputs))
    return task.score(outputs[main], truth, others=outputs)


def _match(ref_names, got: dict) -> dict:
    if set(ref_names) <= set(got):
        return {n: got[n] for n in ref_names}
    if len(got) == len(ref_names):
        return dict(zip(ref_names, got.values()))
    raise EdgePipeError(f"export outputs {list(got)} do not match the original's {ref_names}")


REFERENCE_NOTE = {"reference-interpreter": "numerics from the numpy reference interpreter (evaluate.milref); "
                                          "Core ML itself, and its latency, need macOS"}


def stage_verify(recipe, task, model, exports, keras_path: Path, console) -> list[dict]:
    """Every export against the Keras original (``keras_path``: trained, or pruned) on held-out data."""
    x, truth = task.heldout()
    ref_outputs = KerasRunner(model).predict(x)
    out_name = task.output or next(iter(ref_outputs))
    ref = ref_outputs[out_name]
    entries = [artifact_entry("keras", "float32", keras_path, task=task.score(ref, truth, others=ref_outputs))]
    for e in track(exports, description="verifying", console=console):
        v = e["variant"]
        if e["status"] != "ok":
            entries.append(artifact_entry(v.format, v.label, None, e["status"], e["reason"]))
            continue
        try:
            runner = open_runner(e["path"])
            got_outputs = _match(list(ref_outputs), runner.predict(x))
        except NotRunnable as why:
            entries.append(artifact_entry(v.format, v.label, e["path"], "not_run", f"converted; {why}"))
            continue
        got = got_outputs[out_name]
        entry = artifact_entry(v.format, v.label, e["path"], parity=parity(ref, got),
                               task=task.score(got, truth, ref, got_outputs),
                               reason=REFERENCE_NOTE.get(runner.engine, ""))
        entry["engine"] = runner.engine
        _add_task_deltas(entry["task"], entries[0]["task"])
        entry["gate"] = release_gate(v.precision, entry["parity"] | entry["task"], task.name == "classify",
                                     recipe.verify)
        if v.format == "tflite":
            from edgepipe.evaluate.gpucompat import gpu_report
            entry["gpu_delegate"] = gpu_report(e["path"])
            if v.precision == "int8" and not any(x.get("layers") for x in entries):  # once per run
                entry["layers"] = _int8_layer_errors(task, model)
        entries.append(entry)
    return entries


def _add_task_deltas(metrics: dict, original: dict):
    """Each task metric's change against the Keras original (edge F-score, corner rates, top-1)."""
    for key, value in list(metrics.items()):
        if isinstance(original.get(key), float) and isinstance(value, float) and key != "agreement" \
                and "threshold" not in key:
            metrics[f"{key}_delta"] = value - original[key]
    if "f_score" in metrics and "f_score" in original:
        metrics["f_score_drop"] = original["f_score"] - metrics["f_score"]


def release_gate(precision: str, metrics: dict, classifier: bool, cfg) -> dict:
    """The recipe's release gate for the export (see evaluate.gates): classifiers'
    quantized gate is top-1 agreement, the edge detector's its F-score drop."""
    from edgepipe.evaluate.gates import default_gate, verdict
    gate = default_gate(precision, classifier, cfg.gate_atol, cfg.gate_psnr_db, cfg.gate_agreement,
                        task_drop=cfg.gate_task_drop if "f_score_drop" in metrics else None)
    held = verdict(gate, metrics["agreement" if gate.metric == "top1_agreement" else gate.metric],
                   metrics.get("psnr_db"), metrics.get("follows_input"))
    return {"rule": held["gate"], "pass": held["pass"]}


def _int8_layer_errors(task, model) -> list[dict]:
    from edgepipe.quantize.debug import layer_errors
    calib = task.calibration()
    return layer_errors(export_graph(model), calib, debug_samples=min(8, len(calib)))


def recipe_artifact(recipe, suffix):
    return f"{recipe.model.name}{suffix}"


def stage_bench(recipe, entries, macs: int, terms: list, out: Path, console) -> bool:
    """Time every runnable artifact in a fresh process (one thread, batch 1); False when
    the timing process failed (killed, out of memory), so the stage is not recorded done."""
    from edgepipe.evaluate.latency import measure_host
    models = {f"{e['format']}/{e['variant']}": str(Path(e["path"]).resolve()) for e in entries
              if e["status"] == "ok" and e["path"] and e.get("engine") not in REFERENCE_NOTE}
    try:
        with console.status(f"timing latency ({recipe.bench.threads} thread, interleaved)"):
            stats = measure_host(models, recipe.bench.threads, recipe.bench.warmup, recipe.bench.runs,
                                 [recipe.model.input_size] * 2 + [3], macs={k: macs for k in models},
                                 layer_costs={k: terms for k in models})
    except EdgePipeError as e:
        console.log(f"latency stage failed: {e}", style="yellow")
        stats = {}
    for e in entries:
        e["latency"] = stats.get(f"{e['format']}/{e['variant']}", {})
    return bool(stats) or not models


def _export_records(exports):
    return [{"variant": e["variant"].name, "path": e["path"] and str(e["path"]), "status": e["status"],
             "reason": e["reason"]} for e in exports]


def _export_objects(records, out: Path):
    from edgepipe.pipeline.manifest import in_run
    return [r | {"variant": VARIANTS[r["variant"]], "path": in_run(out, r["path"])} for r in records]


class _Run:
    """One run folder: its manifest, stage timings and the model, loaded once."""

    def __init__(self, recipe, out: Path, console, force: bool):
        from edgepipe.base.atomic import remove_stale_temps
        from edgepipe.pipeline.manifest import Manifest
        from edgepipe.pipeline.tasks import task_for
        self.recipe, self.out, self.console = recipe, out, console
        self.task = task_for(recipe)
        for name in remove_stale_temps(out):
            console.log(f"removed {name}, left by an interrupted run")
        self.manifest = Manifest(out, force)
        self.timings, self.skipped, self._model = {}, set(), None
        self.keras_path = out / recipe_artifact(recipe, ".keras")
        self.model_path = self.keras_path  # what the exports are made from: trained, or pruned
        self.data_files = data_inputs(recipe)  # the user's folder as the run found it

    def check_data_unchanged(self):
        """A folder that changes mid-run (a sync tool adding photos) would be split again by
        a later stage, and photos the model trained on scored as held out."""
        if data_inputs(self.recipe) != self.data_files:
            raise EdgePipeError(f"data folder {self.recipe.data.path} changed during this run (photos added, "
                                "removed or edited); nothing more is recorded: run again when it is settled")

    def stage(self, name, config, inputs, fn, complete=lambda result: True, reads_data=True):
        """Run ``fn() -> (result, outputs)`` unless the manifest says it is done.
        A stage whose result is not ``complete`` (a failed export) is not recorded,
        so the next run tries it again."""
        from edgepipe.pipeline.manifest import stage_key
        key = stage_key(config, inputs)
        self.console.rule(name, style="bold")
        done = self.manifest.finished(name, key)
        if done:
            self.console.log(f"{name}: up to date (finished {done['finished']} in {done['seconds']} s), skipped")
            self.timings[name] = done["seconds"]  # what the stage took when it ran; 'skipped' says it did not now
            self.skipped.add(name)
            return done["result"]
        t0 = time.time()
        if reads_data:
            self.check_data_unchanged()
        self.drop_old_reports()
        result, outputs = fn()
        self.timings[name] = round(time.time() - t0, 1)
        interrupts.check()  # a Ctrl-C some library swallowed: not done
        if reads_data:
            self.check_data_unchanged()
        if complete(result):
            self.manifest.record(name, key, outputs, result, self.timings[name])
            self.console.log(f"{name} done in {self.timings[name]} s")
        else:
            self.manifest.forget(name)
            self.console.log(f"{name} finished with failures in {self.timings[name]} s; the next run retries it")
        return result

    def drop_old_reports(self):
        """A stage that runs again changes what the last report and card describe: they go
        before it starts, so an interrupted run leaves no card that vouches for new files."""
        from edgepipe.base.atomic import made_by_edgepipe
        for name in REPORT_FILES:
            path = self.out / name
            if path.is_file() and not path.is_symlink() and made_by_edgepipe(path):  # a user's edit stays
                path.unlink()

    def model(self):
        if self._model is None:
            self._model = modelio.load_keras(self.model_path)
        return self._model

    def use_model(self, path: Path):
        self.model_path, self._model = path, None

    def upstream(self, *stages) -> dict:
        return {k: v for s in stages for k, v in self.manifest.output_hashes(s).items()}


REPORT_FILES = ("model_card.json", "report.json", "report.html")  # written last, by _write_reports


def run(recipe, out_dir, console: Console | None = None, force: bool = False, through: str = "report") -> dict:
    """Run the recipe's stages, skipping those whose inputs and config are unchanged.
    ``through="verify"`` stops before the latency stage (a sweep times latency in a
    task of its own) and returns only ``{"stages": ...}``, unless the latency is
    already measured: then it goes on (nothing to time) and returns the report."""
    from edgepipe.base.atomic import exclusive
    check_out_outside_data(recipe, out_dir)
    with interrupts.watch(), exclusive(ensure_writable_dir(out_dir)):
        return _run(recipe, out_dir, console or wide_console(), force, through)


def train_as_worker(recipe, out_dir, console) -> None:
    """A non-chief worker of ``distribute: multi_worker``: train beside the chief
    (or skip, as the chief will, when its manifest says training is done) and write
    nothing; the chief alone exports, verifies, times and reports."""
    from edgepipe.pipeline.manifest import Manifest, stage_key
    from edgepipe.pipeline.tasks import task_for
    from edgepipe.train.workers import describe
    key = stage_key([c.model_dump() for c in (recipe.model, recipe.data, recipe.train)], data_inputs(recipe))
    if Manifest(Path(out_dir)).finished("train", key):
        console.log(f"{describe()}: training is up to date in the chief's manifest; nothing to do")
        return
    task_for(recipe).train(Path(out_dir), console)
    console.log(f"{describe()}: training done; the chief exports, verifies, times and reports")


def gate_failures(report: dict) -> list[str]:
    """Every export that failed to convert or failed its release gate, named."""
    failures = []
    for e in report["artifacts"]:
        name = f"{e['format']}/{e['variant']}"
        if e["status"] == "failed":
            failures.append(f"{name}: export failed ({e['reason']})")
        elif e.get("gate") and not e["gate"]["pass"]:
            failures.append(f"{name}: gate failed ({e['gate']['rule']})")
    return failures


def _bench_done(r, model_stage: str) -> bool:
    from edgepipe.pipeline.manifest import stage_key
    key = stage_key(r.recipe.bench.model_dump(), r.upstream(model_stage, "export"))
    return bool(r.manifest.finished("bench", key))


def stage_summary(r) -> dict:
    return {k: {"seconds": v, "skipped": k in r.skipped} for k, v in r.timings.items()}


def _run(recipe, out_dir, console, force: bool, through: str = "report") -> dict:
    r = _Run(recipe, ensure_writable_dir(out_dir), console, force)
    t_start = time.time()

    def do_train():
        r._model, history = r.task.train(r.out, console, resume=not force)  # --force trains from scratch
        if recipe.train.distribute == "multi_worker":
            r._model = None  # the chief goes on alone: load the saved model, not the cluster's mirrored one
        return {"loss": history["loss"], "val_loss": history["val_loss"]}, [r.keras_path]

    history = r.stage("train", [c.model_dump() for c in (recipe.model, recipe.data, recipe.train)],
                      r.data_files, do_train)
    model_stage, pruning = "train", None
    if recipe.prune:
        pruned_path = r.out / recipe_artifact(recipe, ".pruned.keras")
        pruning = r.stage("prune", recipe.prune.model_dump(), r.upstream("train"),
                          lambda: (stage_prune(recipe, r.task, r.model(), pruned_path, console), [pruned_path]))
        r.use_model(pruned_path)
        model_stage = "prune"

    def do_export():
        exports = _export_records(stage_export(recipe, r.task, r.model(), r.out, console))
        return exports, [x["path"] for x in exports]

    exports = _export_objects(r.stage("export", [c.model_dump() for c in (recipe.export, recipe.quantize,
                                                                             recipe.bundle)],
                                      r.upstream(model_stage), do_export,
                                      complete=lambda records: all(x["status"] == "ok" for x in records)),
                              r.out)
    entries = r.stage("verify", [recipe.verify.model_dump(), recipe.data.model_dump()],
                      r.upstream(model_stage, "export"),
                      lambda: (stage_verify(recipe, r.task, r.model(), exports, r.model_path, console), []))
    from edgepipe.pipeline.manifest import in_run
    for e in entries:
        e["path"] = e["path"] and str(in_run(r.out, e["path"]))
    if through == "verify" and not _bench_done(r, model_stage):
        return {"stages": stage_summary(r)}  # a full report when the latency is already measured

    def do_bench():
        from edgepipe.convert.fold import roofline_graph
        from edgepipe.mobile_models.profile import profile_model, roofline_terms
        macs = profile_model(r.model())["macs"]
        terms = roofline_terms(profile_model(roofline_graph(export_graph(r.model()))))
        timed = stage_bench(recipe, entries, macs, terms, r.out, console)
        return {"macs": macs, "latency": {f"{e['format']}/{e['variant']}": e["latency"] for e in entries},
                "timed": timed}, []

    bench = r.stage("bench", recipe.bench.model_dump(), r.upstream(model_stage, "export"), do_bench,
                    complete=lambda result: result.get("timed", True), reads_data=False)
    for e in entries:
        e["latency"] = bench["latency"].get(f"{e['format']}/{e['variant']}", {})
    return _write_reports(r, history, entries, bench, t_start, pruning)


def _write_reports(r, history, entries, bench, t_start, pruning=None) -> dict:
    recipe, task, out, console = r.recipe, r.task, r.out, r.console
    report = {"recipe": {"name": recipe.name, "hash": recipe_hash(recipe), "profile": recipe.profile,
                         "config": recipe.model_dump()},
              "task": {"name": task.name, "columns": task.columns, "accuracy_key": task.accuracy_key,
                       "accuracy_label": task.accuracy_label},
              "artifacts": entries,
              "train": {"final_loss": history["loss"][-1], "loss": history["loss"],
                        "val_loss": history.get("val_loss", [])},
              "stages": stage_summary(r),
              "timings_s": r.timings | {"total": round(time.time() - t_start, 1)}}  # total: this invocation
    if pruning:
        report["prune"] = pruning
    meta = _with_calibration(task.meta(r.model(), recipe_hash(recipe)), _calibration_count(task, recipe))
    write_json(out / "model_card.json", model_card(meta, entries) | {"macs": bench["macs"]})
    write_json(out / "report.json", report)
    print_table(report, console)
    from edgepipe.pipeline.html_report import render
    with console.status("rendering report.html"):
        render(report, out)
    console.log(f"wrote {out / 'report.json'}, report.html and model_card.json in {report['timings_s']['total']} s")
    return report


def _with_calibration(meta: dict, count: int) -> dict:
    """The card, saying how many images int8 calibrated on (a small folder holds fewer than asked)."""
    return meta | {"training": meta.get("training", {}) | {"calibration_samples": int(count)}}


def _calibration_count(task, recipe) -> int:
    if recipe.data.kind == "synthetic_documents":  # generated: exactly as many as asked
        return recipe.export.calibration_samples
    return len(task.calibration())

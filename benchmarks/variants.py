"""Every export variant of the format table for a trained model: size, parity against
the Keras original, task metric, release gate and one-thread latency, measured now.

    .venv/bin/python benchmarks/variants.py --model runs/default/hed_mobilenet_v2.keras \
        --out /tmp/variants_hed
    .venv/bin/python benchmarks/variants.py --model DIGITS/mobilenet_v2.keras \
        --recipe recipes/digits_mobilenet_v2.yaml --out /tmp/variants_digits

It runs the pipeline's own export, verify and bench stages (pipeline/run.py) with
``export.variants`` set to every row of ``convert.formats.VARIANTS``, on the
recipe's held-out data, so the figures are what ``edgepipe run`` would report.
Core ML rows are computed by the numpy reference interpreter: numerics, and no
latency on Linux (Core ML timing needs macOS). Writes only into ``--out``.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _row(e, task, keras_task) -> str:
    key = task.accuracy_key
    size = f"{e['size_bytes'] / 1e6:.3f}" if e.get("size_bytes") else "-"
    p = e.get("parity", {})
    parity = f"{p['psnr_db']:.1f} dB / {p['max_abs']:.2g}" if p.get("psnr_db") is not None else "-"
    metric = e.get("task", {}).get(key)
    delta = f" ({metric - keras_task:+.3f})" if metric is not None and e["format"] != "keras" else ""
    lat = e.get("latency", {}).get("p50_ms")
    latency = f"{lat:.2f}" if lat else ("n/a: Core ML timing needs macOS" if e["format"] == "coreml" else "-")
    gate = e.get("gate")
    gate = ("pass" if gate["pass"] else "FAIL") + f" ({gate['rule']})" if gate else \
        e.get("status", "") + (f": {e['reason'][:90]}" if e.get("reason") and e["status"] == "failed" else "")
    gpu = e.get("gpu_delegate")
    gpu = "-" if not gpu else "yes" if gpu["compatible"] else "no: " + ", ".join(u["op"] for u in gpu["unsupported"])
    name = f"{e['format']} {e['variant']}"
    value = f"{metric:.3f}{delta}" if metric is not None else "-"
    return f"| {name} | {size} | {parity} | {value} | {latency} | {gate} | {gpu} |"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="the trained .keras original")
    ap.add_argument("--recipe", help="its recipe (default: the packaged default, HED)")
    ap.add_argument("--out", required=True, help="a new or edgepipe-made folder for the exports")
    ap.add_argument("--variants", help="comma-separated names (default: every row of the table)")
    ap.add_argument("--runs", type=int, default=30, help="timed runs per export (interleaved)")
    ap.add_argument("--val-size", type=int, help="held-out images (generated documents; default: the recipe's)")
    args = ap.parse_args(argv)
    from edgepipe.base.atomic import ensure_writable_dir
    from edgepipe.base.modelio import load_keras
    from edgepipe.convert.fold import export_graph, roofline_graph
    from edgepipe.convert.formats import VARIANTS
    from edgepipe.mobile_models.profile import profile_model, roofline_terms
    from edgepipe.pipeline.recipe import load_recipe
    from edgepipe.pipeline.report import wide_console
    from edgepipe.pipeline.run import stage_bench, stage_export, stage_verify
    from edgepipe.pipeline.tasks import task_for
    console = wide_console()
    names = args.variants.split(",") if args.variants else list(VARIANTS)
    recipe = load_recipe(args.recipe)
    if args.val_size:
        recipe = recipe.model_copy(update={"data": recipe.data.model_copy(update={"val_size": args.val_size})})
    recipe = recipe.model_copy(update={"export": recipe.export.model_copy(update={"variants": names}),
                                       "bench": recipe.bench.model_copy(update={"runs": args.runs, "threads": 1})})
    out = ensure_writable_dir(args.out)
    task, model = task_for(recipe), load_keras(args.model)
    exports = stage_export(recipe, task, model, out, console)
    entries = stage_verify(recipe, task, model, exports, Path(args.model), console)
    macs = profile_model(model)["macs"]
    stage_bench(recipe, entries, macs, roofline_terms(profile_model(roofline_graph(export_graph(model)))), out,
                console)
    keras_task = entries[0]["task"].get(task.accuracy_key)
    print(f"\n{recipe.name}: {Path(args.model).name}, {task.accuracy_label} on the held-out set; "
          f"parity = PSNR / max abs against Keras; latency = p50 ms, batch 1, one thread, this host")
    print("| variant | MB | parity | " + task.accuracy_label + " (vs Keras) | p50 ms | gate | GPU delegate |")
    print("|---|---|---|---|---|---|---|")
    for e in entries:
        print(_row(e, task, keras_task))
    return 0 if all(e.get("gate", {"pass": True})["pass"] for e in entries[1:]) else 1


if __name__ == "__main__":
    sys.exit(main())

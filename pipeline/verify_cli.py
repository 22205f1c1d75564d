"""``edgepipe convert`` and ``edgepipe verify`` for any Keras model, ours or a user's."""
import json
from pathlib import Path

import numpy as np
from rich.table import Table

from pipeline.errors import EdgePipeError

FORMAT_SUFFIX = {"tflite": ".tflite", "onnx": ".onnx", "coreml": ".mlpackage"}


def sample_inputs(shape, data=None, count=32) -> np.ndarray:
    """``--data`` (.npy, NHWC in [0, 1]) or generated documents at the model's size:
    realistic pixels, not uniform noise, so activations have real ranges."""
    h, w, c = shape
    if data:
        path = Path(data)
        if path.suffix != ".npy" or not path.is_file():
            raise EdgePipeError(f"--data must be an existing .npy file of images, got {data}")
        x = np.load(path, allow_pickle=False).astype(np.float32)
        if x.ndim != 4 or tuple(x.shape[1:]) != (h, w, c):
            raise EdgePipeError(f"--data has shape {x.shape}, the model expects (N, {h}, {w}, {c})")
        if not np.isfinite(x).all():
            raise EdgePipeError(f"--data {data} contains NaN or Inf")
        return x
    if c != 3 or h is None or w is None:
        raise EdgePipeError(f"model input {shape} needs --data (generated data is HxWx3 only)")
    from train.docgen import generate
    side = max(h, w)
    imgs = [generate(424242, i, side).image[:h, :w] for i in range(count)]
    return np.stack(imgs).astype(np.float32) / 255.0


def cmd_convert(args):
    from convert.fold import export_graph
    from convert.formats import Variant, export
    from pipeline.modelio import load_keras
    model = load_keras(args.model, trust=args.trust_model)
    out = Path(args.out)
    if not out.parent.exists():
        raise EdgePipeError(f"output folder {out.parent} does not exist")
    precision = args.mode if args.format == "tflite" else ("fp16" if args.format == "coreml" else "float32")
    meta = _bundle_meta(args, model, out)
    calib = None
    if precision in ("int8", "int16x8"):
        calib = sample_inputs(model.input_shape[1:], args.data, count=args.calibration_samples)
    variant = Variant(f"{args.format}_{precision}", args.format, precision, FORMAT_SUFFIX[args.format], "")
    export(variant, export_graph(model), out, calib, meta)
    card = out.with_name(out.name + ".model_card.json")
    from pipeline.cards import converted_card
    from pipeline.report import write_json
    write_json(card, converted_card(meta, args.format, precision, out))
    print(f"wrote {out} ({args.format}, {precision}) and {card.name}")
    return 0


def read_labels(path) -> list[str]:
    """A labels file: one class name per line, in output order."""
    p = Path(path)
    if not p.is_file():
        raise EdgePipeError(f"labels file {path} does not exist")
    try:
        labels = [line.strip() for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError:
        raise EdgePipeError(f"labels file {path} is not UTF-8 text") from None
    if not labels:
        raise EdgePipeError(f"labels file {path} is empty")
    return labels


def _bundle_meta(args, model, out: Path) -> dict:
    from pipeline.cards import classifier_meta, generic_meta
    bundle = {"author": args.author, "license": args.license, "version": args.model_version,
              "description": args.description}
    name = out.name.split(".")[0]
    if None in model.input_shape[1:]:
        raise EdgePipeError(f"convert needs a fixed input size, the model has {model.input_shape}")
    if args.labels:
        return classifier_meta(model, read_labels(args.labels), name, bundle)
    return generic_meta(model, name, bundle)


def _export_variant(runner, path: Path) -> str:
    if runner.runtime == "litert":
        dtype = runner.inputs[0].dtype
        if dtype in ("int8", "uint8"):
            return "int8"
        if dtype == "int16":
            return "int16x8"
        from evaluate.opprofile import tflite_op_histogram
        return "float16" if "DEQUANTIZE" in tflite_op_histogram(path) else "float32"
    if runner.runtime == "coreml":
        from evaluate.milref.program import program_precision
        return program_precision(path)
    return "float32"


def cmd_verify(args):
    from evaluate.gates import check_output, default_gate
    from evaluate.runners import KerasRunner, NotRunnable, open_runner
    from pipeline.modelio import load_keras
    model = load_keras(args.model, trust=args.trust_model)
    x = sample_inputs(model.input_shape[1:], args.data)
    try:
        runner = open_runner(args.export)
    except NotRunnable as why:
        return _report(args, [{"output": "*", "pass": False, "gate": f"not_run: {why}"}], "coreml", "none")
    if runner.runtime == "coreml":  # an ImageType input carries 8-bit pixels; compare like with like
        from evaluate.runners import image_pixels
        x = image_pixels(x) / np.float32(255)
    ref = KerasRunner(model).predict(x)
    variant = _export_variant(runner, Path(args.export))
    got = runner.predict(x)
    got = got if set(ref) <= set(got) else dict(zip(ref, got.values()))
    rows = []
    for name, r in ref.items():
        if name not in got:
            raise EdgePipeError(f"export {args.export} has no output matching '{name}' (has {list(got)})")
        gate = default_gate(variant, r.ndim == 2, args.atol, args.psnr, args.agreement)
        rows.append({"output": name} | check_output(r, got[name], gate) | _accuracy(args, r, got[name], len(x)))
    failed = not all(r["pass"] for r in rows)
    drill = _drill_down(model, args.export, x, variant) if failed and not args.no_drill_down else None
    return _report(args, rows, variant, runner.engine, drill)


def _accuracy(args, ref, got, count) -> dict:
    """With ``--truth``, top-1 accuracy of the original and the export on labelled data."""
    if not args.truth:
        return {}
    path = Path(args.truth)
    if path.suffix != ".npy" or not path.is_file():
        raise EdgePipeError(f"--truth must be an existing .npy file of class ids, got {args.truth}")
    y = np.load(path, allow_pickle=False)
    if y.shape != (count,) or not np.issubdtype(y.dtype, np.integer):
        raise EdgePipeError(f"--truth {args.truth} must hold {count} integer class ids, has {y.dtype} {y.shape}")
    if ref.ndim != 2:
        raise EdgePipeError("--truth needs a classifier output (batch, classes)")
    original, export = (float(np.mean(a.reshape(ref.shape).argmax(-1) == y)) for a in (ref, got))
    return {"top1_original": original, "top1": export, "top1_delta": export - original}


def _drill_down(model, export, x, variant) -> dict:
    from evaluate.drilldown import drill_down
    return drill_down(model, export, x, variant)


def _report(args, rows, variant, engine, drill=None):
    ok = all(r["pass"] for r in rows)
    if args.json:
        print(json.dumps({"export": args.export, "variant": variant, "engine": engine, "pass": ok,
                          "outputs": rows, "drilldown": drill}))
        return 0 if ok else 1
    note = " by the numpy reference interpreter" if engine == "reference-interpreter" else ""
    t = Table(title=f"verify {Path(args.export).name} ({variant}{note}) against {Path(args.model).name}")
    for col in ("output", "max abs", "mean abs", "PSNR dB", "SQNR dB", "cosine", "outside tol", "top-1 agree",
                "top-1 export (original)", "gate", "result"):
        t.add_column(col)
    fmt = lambda r, k, f: format(r[k], f) if k in r else "-"  # noqa: E731
    for r in rows:
        top1 = f"{r['top1']:.1%} ({r['top1_original']:.1%})" if "top1" in r else "-"
        t.add_row(r["output"], fmt(r, "max_abs", ".2e"), fmt(r, "mean_abs", ".2e"), fmt(r, "psnr_db", ".1f"),
                  fmt(r, "sqnr_db", ".1f"), fmt(r, "cosine", ".6f"), fmt(r, "outside_tol_frac", ".2%"),
                  fmt(r, "top1_agreement", ".1%"), top1, r["gate"],
                  "pass" if r["pass"] else f"FAIL (by {abs(r.get('margin', 0)):.3g})")
    from pipeline.report import wide_console
    console = wide_console()
    console.print(t)
    if drill:
        _print_drill_down(console, drill)
    return 0 if ok else 1


def _print_drill_down(console, drill):
    if not drill["available"]:
        console.print(f"drill-down: {drill['why']}", markup=False)
        return
    first = drill["first"]
    if first is None:
        console.print(f"drill-down: no layer's error exceeds round-off ({len(drill['layers'])} layers compared)")
        return
    console.print(f"first divergence at layer '{first['layer']}': relative error {first['relative_error']:.3g} "
                  f"({first['kind']}, {first['jump']:.3g}x the worst before it, {first['before']:.2g}; "
                  f"{len(drill['layers'])} layers compared on one input)", markup=False)


def add_parsers(sub):
    c = sub.add_parser("convert", help="convert a Keras model (.keras/.h5/SavedModel) to tflite, onnx or coreml")
    c.add_argument("--model", required=True)
    c.add_argument("--format", required=True, choices=sorted(FORMAT_SUFFIX))
    c.add_argument("--mode", default="float32", choices=["float32", "dynamic", "float16", "int8", "int16x8"],
                   help="TFLite quantization mode (default float32)")
    c.add_argument("--data", help=".npy (N,H,W,C) calibration images in [0,1] (default: generated documents)")
    c.add_argument("--calibration-samples", type=int, default=200)
    c.add_argument("--out", required=True)
    c.add_argument("--labels", help="text file, one class name per line: makes a TFLite/Core ML classifier bundle")
    c.add_argument("--author", default="", help="bundle metadata: author")
    c.add_argument("--license", default="", help="bundle metadata: licence")
    c.add_argument("--model-version", default="", help="bundle metadata: model version")
    c.add_argument("--description", default="", help="bundle metadata: one-line description")
    c.add_argument("--trust-model", action="store_true", help="load Lambda layers / custom code (unsafe)")
    c.set_defaults(func=cmd_convert)
    v = sub.add_parser("verify", help="check an export against its original; exit 1 when a gate fails")
    v.add_argument("--model", required=True, help="the original .keras/.h5/SavedModel")
    v.add_argument("--export", required=True, help=".tflite, .onnx or .mlpackage")
    v.add_argument("--data", help=".npy (N,H,W,C) inputs in [0,1] (default: generated documents)")
    v.add_argument("--truth", help=".npy of integer class ids for --data: adds top-1 accuracy of both models")
    v.add_argument("--atol", type=float, default=1e-4, help="float32 gate: max abs error")
    v.add_argument("--psnr", type=float, default=40.0, help="fp16 gate: minimum PSNR in dB")
    v.add_argument("--agreement", type=float, default=0.98, help="int8 gate for classifiers: top-1 agreement")
    v.add_argument("--json", action="store_true")
    v.add_argument("--no-drill-down", action="store_true",
                   help="when a gate fails, skip comparing intermediate tensors layer by layer")
    v.add_argument("--trust-model", action="store_true", help="load Lambda layers / custom code (unsafe)")
    v.set_defaults(func=cmd_verify)

"""``edgepipe verify``: an export against its original, for any Keras model, ours or a
user's, or a SavedModel's serving signature; inputs and outputs matched by name, a
free batch checked at 1 and at 3."""
import json
import sys
from pathlib import Path

import numpy as np
from rich.table import Table

from edgepipe.base.errors import EdgePipeError
from edgepipe.cli.args import add_trust, float_range, fraction, positive
from edgepipe.cli.inputs import add_input_spec_args, load_npy, sample_feeds
from edgepipe.evaluate.gates import RTOL

def _export_variant(runner, path: Path) -> tuple[str, dict | None]:
    """The precision the export really computes in, read from the file (not guessed
    from its op mix), and for TFLite the dtypes of its input and output."""
    if runner.runtime == "litert":
        from edgepipe.evaluate.quantinfo import tflite_quantization
        found = tflite_quantization(path)
        return found["precision"], found["io"]
    if runner.runtime == "coreml":
        from edgepipe.evaluate.milref.program import program_precision
        return program_precision(path), None
    if runner.runtime == "onnxruntime":
        from edgepipe.evaluate.quantinfo import onnx_precision
        return onnx_precision(path), None
    return "float32", None


def _not_the_model_itself(model, export):
    """The model checked against itself (or a byte-for-byte copy) passes and proves nothing."""
    m, e = Path(model), Path(export)
    if not (m.is_file() and e.is_file()):
        return
    if m.resolve() == e.resolve() or (m.stat().st_size == e.stat().st_size and m.read_bytes() == e.read_bytes()):
        raise EdgePipeError(f"--export {e.name} is the model itself, not an export of it: give the .tflite, .onnx "
                            "or .mlpackage that convert wrote")


def cmd_verify(args):
    from edgepipe.base.modelio import load_model
    from edgepipe.evaluate.gates import check_output, default_gate, float_atol, gated_as_classifier
    from edgepipe.evaluate.outputs import output_kinds
    from edgepipe.evaluate.runners import NotRunnable, open_runner, reference_runner
    if args.truth and not args.data:  # else the ids would be scored against inputs verify generates
        raise EdgePipeError("--truth labels the inputs in --data; pass --data with the inputs these class ids "
                            "belong to")
    _not_the_model_itself(args.model, args.export)
    model = load_model(args.model, trust=args.trust_model)
    try:
        runner = open_runner(args.export)
    except NotRunnable as why:
        return _report(args, [{"output": "*", "pass": False, "gate": f"not_run: {why}"}], "coreml", "none")
    if runner.state_note:
        print(runner.state_note, file=sys.stderr)
    original = reference_runner(model)
    names = _input_names(original, runner, args.export)
    x, fed, feed_note = _inputs(args, model, runner, names, _input_dtypes(original, runner, names))
    ref = original.predict({names[k]: v for k, v in x.items()})
    variant, io = _export_variant(runner, Path(args.export))
    rows = []
    kinds = output_kinds(model, args.model)
    scored = [n for n, r in ref.items() if gated_as_classifier(r, kind=kinds.get(n))]  # what --truth labels
    truth = _truth(args, {n: ref[n] for n in scored}, len(next(iter(ref.values()))))
    scored = [n for n in scored if truth is None or truth.max() < ref[n].shape[1]]
    free = runner.dynamic_batch and runner.runtime in ("litert", "onnxruntime")  # an export with a free batch
    for batch in (1, 3) if free else (None,):  # ... is checked at batch 1 and at batch 3
        runner.batch_size = batch or 1
        got = _matched(ref, runner.predict(fed), args.export)
        for name, r in ref.items():
            psnr = {} if args.psnr is None else {"psnr_fp16": args.psnr, "psnr_int": args.psnr}
            peak = _finite_peak(r)
            atol = float_atol(peak) if args.atol is None else args.atol
            gate = default_gate(variant, gated_as_classifier(r, args.psnr, args.agreement, kinds.get(name)), atol,
                                agreement=0.98 if args.agreement is None else args.agreement, **psnr,
                                rtol=args.rtol, peak=peak, named=_named_limits(args))
            rows.append({"output": name} | ({"batch": batch} if batch else {}) | check_output(r, got[name], gate)
                        | (_accuracy(truth, r, got[name]) if name in scored and truth is not None else {}))
    failed = not all(r["pass"] for r in rows)
    drill = _drill_down(model, args.export, x, fed, variant) if failed and not args.no_drill_down else None
    extra = {"io": io} | _constant_outputs(rows, ref, len(next(iter(x.values()))), args.allow_constant_outputs)
    if runner.runtime == "litert":
        from edgepipe.evaluate.gpucompat import gpu_report
        extra["gpu_delegate"] = gpu_report(args.export)
    code = _report(args, rows, variant, runner.engine, drill, extra)
    if feed_note:  # after the report: an error is one line, with no note before it
        print(feed_note, file=sys.stderr)
    return code


def _input_names(original, runner, export) -> dict:
    """{export input name: the original's}: by name, or the one input of each."""
    ours, theirs = [i.name for i in runner.inputs], [i.name for i in original.inputs]
    if set(ours) == set(theirs):
        return {n: n for n in ours}
    if len(ours) == len(theirs) == 1:
        return {ours[0]: theirs[0]}
    raise EdgePipeError(f"export {export} takes inputs {', '.join(ours)}, the original {', '.join(theirs)}: "
                        f"is the export from this model?")


def _named_limits(args) -> frozenset:
    """The gate limits the user set: a lossy export's looser defaults never override them."""
    return frozenset(k for k in ("psnr", "agreement") if getattr(args, k) is not None)


def _finite_peak(values) -> float:
    """The output's largest finite magnitude: an inf in the original must not make the gate inf."""
    finite = np.abs(np.asarray(values, np.float64)[np.isfinite(values)])
    return float(finite.max()) if finite.size else 0.0


def _input_dtypes(original, runner, names) -> dict:
    """{export input name: dtype name}: the original's, else the export's."""
    theirs = {i.name: i.dtype for i in original.inputs}
    return {i.name: theirs.get(names[i.name]) or i.dtype for i in runner.inputs}


def _id_limit(model) -> int:
    """How many token ids a generated integer input may hold: the smallest Embedding's
    vocabulary in the model (an id past it is an error in one runtime, garbage in
    another), else 2."""
    from edgepipe.base.keras3_files import all_layers
    dims = [layer.input_dim for layer in all_layers(getattr(model, "keras_model", None) or model)
            if type(layer).__name__ == "Embedding" and isinstance(getattr(layer, "input_dim", None), int)]
    return max(2, min(dims)) if dims else 2


def _inputs(args, model, runner, names, dtypes) -> tuple[dict, dict, str | None]:
    """(what the original takes, what the export is fed, a note), by export input name: image
    inputs are mapped through the input spec the bundle states; Core ML's ImageType
    takes 8-bit pixels, so both sides see those."""
    from edgepipe.convert.graphio import image_names, model_inputs
    from edgepipe.convert.inputspec import DEFAULT, bundle_specs, from_model
    from edgepipe.evaluate.runners import image_pixels
    ports = model_inputs(model)
    own = {p.name: p.shape for p in ports}
    shapes = {n: _filled(s, own.get(names[n])) for n, s in runner.input_shapes().items()}
    _same_sizes(shapes, own, names, args.export)
    stated = bundle_specs(args.export)  # what the bundle tells an app to feed each image input
    # a bundle that states a spec describes its 1-channel input as a grayscale image too
    flags = bool(args.input_range or args.mean or args.std or args.bgr)  # the user says it takes pixels
    images = image_names(shapes, grayscale=bool(stated) or flags or any(p.is_image for p in ports))
    unit = sample_feeds(shapes, args.data, images=images, dtypes=dtypes, id_limit=_id_limit(model))  # images in [0, 1]
    if runner.runtime == "coreml":
        unit = {n: image_pixels(v) / np.float32(255) if n in images else v for n, v in unit.items()}
    index = {p.name: i for i, p in enumerate(ports)}

    contradicted = []  # the original's own specs where the bundle only assumed pixel / 255

    def spec_of(name):  # the bundle's word for this input, else (one image, other names) its only one, else the model's
        own_spec = from_model(model, index.get(names[name], 0))
        said = stated.get(names[name]) or (next(iter(stated.values())) if len(stated) == 1 else None)
        if said and said.source == "default" and own_spec and not _same_spec(said, own_spec):
            contradicted.append(own_spec)  # the bundle only assumed pixel / 255; the original's layers say
            return own_spec
        return said or own_spec or DEFAULT
    given = _user_specs(args, model, ports, stated, names)
    specs = {n: given.get(names[n]) or spec_of(n) for n in images}
    x = {n: specs[n].from_unit(v) if n in images else v for n, v in unit.items()}
    pixels_in = {i.name for i in runner.inputs if i.dtype == "image"} if runner.runtime == "coreml" else set()
    fed = {n: unit[n] if n in pixels_in else v for n, v in x.items()}  # an ImageType maps pixels itself
    return x, fed, _contradicted_note(contradicted[0]) if contradicted else _assumed_feed_note(model, runner, specs)


def _contradicted_note(own) -> str:
    """The bundle assumed pixel / 255 (its converter could not read the model, a SavedModel),
    but the original's own layers say otherwise: an app following the bundle feeds the wrong range."""
    lo, hi = own.value_range()[:2]
    return (f"note: the export's bundle only assumed pixel / 255, but {own.note or 'the original says otherwise'} "
            f"(pixels 0..255 onto [{lo:g}, {hi:g}]); verify fed "
            "what the original takes, and an app following this bundle would not: convert from the original "
            f"(.keras) so the bundle says it, or pass --input-range when converting")


def _user_specs(args, model, ports, stated: dict, names: dict) -> dict:
    """{original input name: spec} from --input-range/--mean/--std/--bgr, for an export
    whose bundle does not say (a plain converter's file of a raw-pixel model); a bundle
    that says otherwise wins, in one line."""
    from edgepipe.cli.inputs import input_spec
    if not (args.input_range or args.mean or args.std or args.bgr):
        return {}
    _, ported = input_spec(args, model, ports)
    given = {p.name: p.pixel_spec for p in ported if p.pixel_spec is not None}
    for name, spec in given.items():
        said = stated.get(name) or (next(iter(stated.values())) if len(stated) == 1 else None)
        if said and not _same_spec(said, spec):
            lo, hi = said.value_range()[:2]
            raise EdgePipeError(f"the export's bundle says its input maps pixels 0..255 onto [{lo:g}, {hi:g}] "
                                f"({said.color_order}); "
                                "--input-range/--mean/--std/--bgr say otherwise: drop them, verify feeds what "
                                "the bundle states")
    return given


def _same_spec(a, b) -> bool:
    """Two specs map pixels alike: one value stands for every channel (a card writes three)."""
    channels = max(len(a.mean), len(a.std), len(b.mean), len(b.std))
    return a.color_order == b.color_order and all(
        np.allclose(x, y, rtol=1e-6, atol=1e-9) for x, y in zip(a.per_channel(channels), b.per_channel(channels)))


def _assumed_feed_note(model, runner, specs: dict) -> str | None:
    """A note when verify fed pixel / 255 because neither the export's bundle nor the model
    says how pixels map to an image input: a raw-pixel model's export, fed [0, 1], fails
    for no fault of its own."""
    from edgepipe.cli.inputs import _edgepipe_network
    assumed = [n for n, spec in specs.items() if spec.source == "default"]
    if not assumed or _edgepipe_network(model):
        return None
    span = _int_input_span(runner)
    hint = (f" The export's {span[0]} input spans [{span[1]:.3g}, {span[2]:.3g}], which looks like raw pixels."
            if span and span[2] - span[1] > 25 else "")
    return (f"note: neither the export's bundle nor the model says how pixels map to its input, so verify fed "
            f"pixel / 255.{hint} Pass --input-range 0,255 if the model takes raw pixels (-1,1 for "
            "keras.applications' MobileNets).")


def _int_input_span(runner):
    """(dtype, lo, hi): the real values an integer first input can hold, from its quantization."""
    quantized = runner.input_quantization() if hasattr(runner, "input_quantization") else None
    if not quantized:
        return None
    dtype, scale, zero = quantized
    lo, hi = (-128, 127) if dtype == "int8" else (0, 255) if dtype == "uint8" else (None, None)
    return None if lo is None else (dtype, (lo - zero) * scale, (hi - zero) * scale)


def _same_sizes(shapes: dict, own: dict, names: dict, export):
    """Refuse, before any input is made, an export whose input holds another number of
    values per item than the original's fixed one (a stray file declaring 100000x100000
    would otherwise be fed 30 GB)."""
    for name, shape in shapes.items():
        theirs = own.get(names[name])
        if not theirs or None in theirs[1:] or None in shape[1:] or not shape[1:]:
            continue
        if int(np.prod(shape[1:], dtype=np.float64)) != int(np.prod(theirs[1:], dtype=np.float64)):
            raise EdgePipeError(f"export {export} takes input {name} of shape {'x'.join(map(str, shape[1:]))} per item, "
                                f"the original {'x'.join(map(str, theirs[1:]))}: is the export from this model?")


def _filled(shape, own) -> tuple:
    """The export's shape, free dimensions other than the batch taken from the original
    where it fixes them; the original's where the runtime does not say (Core ML's predict)."""
    if own is None or not shape:
        return shape or own or ()
    if len(own) != len(shape):
        return shape
    return (shape[0], *(s if s is not None else o for s, o in zip(shape[1:], own[1:])))


def _matched(ref: dict, got: dict, export) -> dict:
    """The export's outputs under the original's names (by name, else in order), each
    with as many values as the original's."""
    matched = _by_name(ref, got, export)
    for name, value in ref.items():
        if np.size(matched[name]) != np.size(value):
            raise EdgePipeError(f"export {export} gives output {name} of shape {_shape(matched[name])}, the "
                                f"original {_shape(value)}: is the export from this model?")
    return matched


def _shape(value) -> str:
    return "x".join(str(d) for d in np.shape(value)) or "scalar"


def _by_name(ref: dict, got: dict, export) -> dict:
    if set(ref) <= set(got):
        return got
    from edgepipe.convert.coreml import feature_name
    if all(feature_name(n) in got for n in ref):  # Core ML's names for outputs like "tf.math.argmax"
        return {n: got[feature_name(n)] for n in ref}
    if len(ref) == len(got):
        return dict(zip(ref, got.values()))
    raise EdgePipeError(f"export {export} has outputs {', '.join(got)}, the original {', '.join(ref)}")


def _constant_outputs(rows, ref, count, allow) -> dict:
    """Fail outputs of the original that do not vary across the inputs (see
    evaluate.parity.CONSTANT_SPREAD): an untrained zero head gives every input the
    same answer, and any export of the right shape matches it. One input shows no
    variation either way, so the check needs two."""
    from edgepipe.evaluate.parity import is_constant, output_spread
    flat = []
    for row in rows:
        r = ref[row["output"]]
        row["spread"] = output_spread(r) if count > 1 else None
        if is_constant(r):
            flat.append(row["output"])
            row["constant"], row["gate_pass"] = True, row["pass"]
            row["pass"] = row["pass"] and allow
    if not flat:
        return {"constant_outputs": [], "reason": None}
    why = f"the original's outputs do not vary across the {count} inputs: parity on constant outputs proves nothing"
    which = f" (constant: {', '.join(flat)})"
    if allow:
        return {"constant_outputs": flat, "reason": None,
                "note": f"{why}; accepted by --allow-constant-outputs{which}"}
    return {"constant_outputs": flat, "reason": f"{why}; pass --allow-constant-outputs to accept{which}"}


def _truth(args, classifiers: dict, count: int):
    """``--truth``'s class ids, checked against the classifier outputs (a detector's box
    is no classifier; of several heads, those whose classes the ids fit are scored)."""
    if not args.truth:
        return _folder_truth(args.data, classifiers, count)
    if not classifiers:
        raise EdgePipeError("--truth scores single-label classifiers: an output of shape (batch, classes), 2 or "
                            "more classes, as logits or softmax; this model has none (a (batch, 1) binary head or "
                            "a sigmoid multi-label head is compared by PSNR, not top-1)")
    y = load_npy(args.truth, "--truth")
    if y.shape != (count,) or not np.issubdtype(y.dtype, np.integer):
        raise EdgePipeError(f"--truth {args.truth} must hold {count} integer class ids, has {y.dtype} {y.shape}")
    most = max(r.shape[1] for r in classifiers.values())
    outside = y[(y < 0) | (y >= most)]
    if outside.size:  # 1-based labels or another label set would score 0% and pass unnoticed
        raise EdgePipeError(f"--truth {args.truth} holds class ids outside 0..{most - 1} (the model's {most} "
                            f"classes): {', '.join(map(str, np.unique(outside)[:5]))}")
    return y


def _folder_truth(data, classifiers: dict, count: int):
    """Class ids from ``--data``'s class folders (sorted names, as Keras numbers them), where
    the model has a classifier with as many classes; else None."""
    from edgepipe.train.folders import folder_classes, photo_files
    if not data or not Path(data).is_dir() or not classifiers:
        return None
    files = photo_files(data)
    classes = folder_classes(Path(data), files)
    if not classes or len(files) != count:
        return None
    if all(r.shape[1] != len(classes) for r in classifiers.values()):
        print(f"note: --data has {len(classes)} class folders and the model {_listed_counts(classifiers)} "
              "classes: no top-1 accuracy", file=sys.stderr)
        return None
    print(f"note: top-1 against --data's class folders, numbered in sorted order as Keras' "
          f"image_dataset_from_directory does: {', '.join(f'{i}={c}' for i, c in enumerate(classes[:10]))}"
          f"{', ...' if len(classes) > 10 else ''}", file=sys.stderr)
    return np.array([classes.index(p.relative_to(data).parts[0]) for p in files])


def _listed_counts(classifiers: dict) -> str:
    return " or ".join(sorted({str(r.shape[1]) for r in classifiers.values()}))


def _accuracy(y, ref, got) -> dict:
    """Top-1 accuracy of the original and the export on labelled data."""
    original, export = (float(np.mean(a.reshape(ref.shape).argmax(-1) == y)) for a in (ref, got))
    return {"top1_original": original, "top1": export, "top1_delta": export - original}


def _drill_down(model, export, x: dict, fed: dict, variant) -> dict:
    """``x``: what the original was fed; ``fed``: what the export was (a Core ML ImageType's 8-bit pixels / 255)."""
    from edgepipe.evaluate.drilldown import drill_down
    if len(x) != 1:
        return {"available": False, "why": f"drill-down compares the layers of a one-input original; this one has "
                                           f"{len(x)} inputs"}
    if not hasattr(model, "layers"):
        kind = "a Keras 3 file" if getattr(model, "keras_model", None) is not None else "a SavedModel signature"
        return {"available": False, "why": f"drill-down reads a tf_keras model's layers; the original is {kind}"}
    return drill_down(model, export, next(iter(x.values())), variant, next(iter(fed.values())))


def _report(args, rows, variant, engine, drill=None, extra=None):
    """``extra``: the export's I/O dtypes and what the constant-output check found."""
    ok, extra = all(r["pass"] for r in rows), extra or {}
    if args.json:
        from edgepipe.pipeline.report import jsonable
        print(json.dumps(jsonable({"export": args.export, "variant": variant, "engine": engine, "pass": ok,
                                   "outputs": rows, "drilldown": drill} | extra)))
        return 0 if ok else 1
    note = " by the numpy reference interpreter" if engine == "reference-interpreter" else ""
    io = extra.get("io")
    io = f", {io['input']} in, {io['output']} out" if io else ""
    t = Table(title=f"verify {Path(args.export).name} ({variant}{io}{note}) against {Path(args.model).name}")
    for col in ("output", "max abs", "mean abs", "PSNR dB", "SQNR dB", "cosine", "outside tol", "top-1 agree",
                "top-1 export (original)", "gate", "result"):
        t.add_column(col)
    fmt = lambda r, k, f: format(r[k], f) if k in r else "-"  # noqa: E731
    for r in rows:
        top1 = f"{r['top1']:.1%} ({r['top1_original']:.1%})" if "top1" in r else "-"
        label = r["output"] + (f" (batch {r['batch']})" if r.get("batch") else "")
        t.add_row(label, fmt(r, "max_abs", ".2e"), fmt(r, "mean_abs", ".2e"), fmt(r, "psnr_db", ".1f"),
                  fmt(r, "sqnr_db", ".1f"), fmt(r, "cosine", ".6f"), fmt(r, "outside_tol_frac", ".2%"),
                  fmt(r, "top1_agreement", ".1%"), top1, r["gate"], _result(r))
    from edgepipe.pipeline.report import wide_console
    console = wide_console()
    console.print(t)
    if extra.get("reason"):
        console.print(f"FAIL: {extra['reason']}", markup=False, soft_wrap=True)
    if extra.get("note"):
        console.print(f"note: {extra['note']}", markup=False, soft_wrap=True)
    if extra.get("gpu_delegate"):
        from edgepipe.evaluate.gpucompat import describe
        console.print(describe(extra["gpu_delegate"]), markup=False, soft_wrap=True)
    if drill:
        _print_drill_down(console, drill)
    return 0 if ok else 1


def _result(row) -> str:
    if row["pass"]:
        return "pass"
    if not row.get("gate_pass"):
        return f"FAIL (by {abs(row.get('margin', 0)):.3g})"
    return "FAIL (constant)"


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


def add_parser(sub):
    v = sub.add_parser("verify", help="check an export against its original; exit 1 when a gate fails")
    v.add_argument("--model", required=True, help="the original .keras/.h5/SavedModel")
    v.add_argument("--export", required=True, help=".tflite, .onnx or .mlpackage")
    v.add_argument("--data", help=".npy (N,H,W,C) images in [0,1], a folder of photos (any depth, read upright, resized to the "
                                  "input; class folders also score top-1), or for a model with several inputs an .npz "
                                  "with one array per input name (images in [0,1], other inputs as the model "
                                  "takes them; default: generated documents and uniform [0,1) tensors)")
    v.add_argument("--truth", help=".npy of integer class ids for --data: adds top-1 accuracy of both models "
                   "(a --data folder of class folders labels itself, numbered in sorted order as Keras does)")
    v.add_argument("--atol", type=positive, help="float32 gate: max abs error <= ATOL + RTOL x the output's peak "
                   "magnitude (default 1e-4, or 1%% of the peak for an output whose peak is under 0.01)")
    v.add_argument("--rtol", type=float_range(0.0), default=RTOL, help=f"float32 gate, relative part (default {RTOL:g}; "
                   "0 gates on ATOL alone)")
    v.add_argument("--psnr", type=positive, help="gate for dense outputs of lossy exports: minimum PSNR in dB "
                   "(default 40 for fp16, 30 for int8 and dynamic-range)")
    v.add_argument("--agreement", type=fraction, help="int8 gate for classifiers: top-1 agreement (default 0.98; "
                   "a --psnr named alone gates classifiers on PSNR instead)")
    v.add_argument("--allow-constant-outputs", action="store_true",
                   help="accept an original whose outputs do not vary across the inputs (parity then proves little)")
    v.add_argument("--json", action="store_true")
    v.add_argument("--no-drill-down", action="store_true",
                   help="when a gate fails, skip comparing intermediate tensors layer by layer")
    add_trust(v)
    add_input_spec_args(v)
    v.set_defaults(func=cmd_verify)

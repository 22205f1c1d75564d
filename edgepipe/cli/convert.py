"""``edgepipe convert``: any Keras model (.keras/.h5/SavedModel), or a SavedModel's
serving signature, to TFLite, ONNX or Core ML, with the bundle metadata an app reads."""
import argparse
from pathlib import Path

from edgepipe.base.errors import EdgePipeError
from edgepipe.base.safety import has_control
from edgepipe.cli.args import add_trust, check_suffix, int_range
from edgepipe.cli.inputs import (add_input_spec_args, add_shape_args, calibration_feeds, given_shapes, input_spec,
                                 sample_inputs, say_assumed_range, say_kept_state)
from edgepipe.convert.formats import VARIANTS, export_formats, find, format_of, precisions


def pick_variant(args):
    """The table's variant for ``--variant``, or ``--format`` with ``--precision`` (default:
    the format's first); a combination the table lacks is a one-line error."""
    if args.variant:
        v = VARIANTS[args.variant]
        for flag, given, own in (("--format", args.format, v.format), ("--precision", args.precision, v.precision)):
            if given and given != own:
                raise EdgePipeError(f"--variant {v.name} is {v.format} {v.precision}; {flag} {given} contradicts it")
        return v
    fmt = args.format or (format_of(args.out) if args.out else None)  # "--out m.tflite" names its format
    if fmt not in export_formats():
        raise EdgePipeError(f"give --format ({', '.join(export_formats())}) or --variant NAME, or an --out ending "
                            "in .tflite, .onnx or .mlpackage")
    try:
        return find(fmt, args.precision)
    except KeyError:
        raise EdgePipeError(f"{fmt} has no precision {args.precision}; valid: "
                            f"{', '.join(precisions(fmt))} (or --variant: see `edgepipe convert -h`)") from None


def cmd_convert(args):
    from edgepipe.base.atomic import check_target
    from edgepipe.base.modelio import load_model
    from edgepipe.convert import graphio
    from edgepipe.convert.formats import FORMATS, export
    variant = pick_variant(args)
    if args.dynamic_batch and variant.format == "coreml":
        raise EdgePipeError("Core ML exports take a batch of 1; --dynamic-batch is for tflite and onnx")
    check_suffix(args.out, variant.format)
    inputs = [args.model, args.data, args.labels]
    out = check_target(args.out, FORMATS[variant.format].folder, inputs=inputs)
    card = out.with_name(out.name + ".model_card.json")
    check_target(card, inputs=inputs)
    model = load_model(args.model, trust=args.trust_model)
    ports = graphio.export_inputs(model, given_shapes(args), args.dynamic_batch)
    precision = variant.precision
    spec, ports = input_spec(args, model, ports)
    meta = with_io_dtype(_bundle_meta(args, model, out, spec, ports), variant)
    if variant.format == "coreml":
        from edgepipe.convert.coreml import with_feature_names
        meta = with_feature_names(meta)
    calib = None
    if variant.needs_calibration and len(ports) > 1:
        if variant.format != "tflite":
            raise EdgePipeError(f"{variant.name} calibration feeds one input; the model has {len(ports)} "
                                f"({', '.join(p.name for p in ports)}): tflite_int8 calibrates several")
        calib = calibration_feeds(ports, args.data, args.calibration_samples, spec)
    elif variant.needs_calibration:
        calib = sample_inputs(ports[0].shape[1:], args.data, count=args.calibration_samples, spec=spec,
                              image=ports[0].is_image)
    from edgepipe.base.atomic import staged_path
    from edgepipe.base.interrupts import converter_errors
    from edgepipe.pipeline.cards import converted_card
    from edgepipe.pipeline.report import write_json
    write_card = lambda: write_json(card, converted_card(meta, variant.format, variant.label, out))  # noqa: E731
    with staged_path(out, FORMATS[variant.format].folder, along=write_card) as staged:  # file and card together
        with converter_errors(f"converting {args.model} to {variant.format} ({precision})"):
            export(variant, _export_graph(model), staged, calib, meta, ports)
    print(f"wrote {out} ({variant.name}: {variant.format}, {variant.label}"
          f"{', dynamic batch' if args.dynamic_batch else ''}) and {card.name}")
    say_assumed_range(spec, model, ports)
    say_kept_state(out, variant.format)
    return 0


INTEGER_INPUT = {"int8": "int8", "int16x8": "int16"}  # TFLite precision -> what its integer-I/O file takes


def with_io_dtype(meta: dict, variant) -> dict:
    """The card of an integer-I/O TFLite file says the input dtype the file takes
    (int8, uint8 or int16; scale and zero point in its quantization block), not the
    float its model took. Float, float16 and dynamic-range files keep float input."""
    io = INTEGER_INPUT.get(variant.precision) if variant.format == "tflite" and variant.integer_io else None
    if io:
        io = "uint8" if variant.io == "uint8" else io
        meta["inputs"] = [e | {"dtype": io} if e.get("dtype") == "float32" else e for e in meta.get("inputs", [])]
    return meta


def _export_graph(model):
    """The Keras graph rewrites (convert.fold); a serving signature is exported as it is."""
    from edgepipe.convert import graphio
    from edgepipe.convert.fold import export_graph
    return model if graphio.is_serving(model) else export_graph(model)


def _bundle_text(what: str):
    """An argparse type: bundle metadata an app and a terminal show, printable only (as a recipe's)."""
    def parse(text: str) -> str:
        if has_control(text):
            raise argparse.ArgumentTypeError(f"{what} holds a control character (an escape code, a tab or a "
                                             "newline); use printable text")
        return text
    parse.__name__ = what
    return parse


def read_labels(path) -> list[str]:
    """A labels file: one class name per line, in output order."""
    p = Path(path)
    if not p.is_file():
        raise EdgePipeError(f"labels file {path} " + ("is not a regular file" if p.exists() else "does not exist"))
    try:
        labels = [line.strip() for line in p.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
    except UnicodeDecodeError:
        raise EdgePipeError(f"labels file {path} is not UTF-8 text") from None
    if not labels:
        raise EdgePipeError(f"labels file {path} is empty")
    odd = next((name for name in labels if has_control(name)), None)
    if odd is not None:  # the names reach the card, the metadata, Core ML and the terminal
        raise EdgePipeError(f"labels file {path} has a control character (an escape code or a tab) in "
                            f"{odd!r}; use printable class names")
    from collections import Counter
    repeated = sorted(name for name, n in Counter(labels).items() if n > 1)
    if repeated:  # Core ML's label -> score dictionary and an app's lookup would merge those classes
        raise EdgePipeError(f"labels file {path} names {', '.join(repeated[:5])} more than once; each class "
                            "needs its own name")
    return labels


def _bundle_meta(args, model, out: Path, spec, ports) -> dict:
    from edgepipe.convert.graphio import output_ports
    from edgepipe.pipeline.cards import classifier_meta, generic_meta
    bundle = {"author": args.author, "license": args.license, "version": args.model_version,
              "description": args.description}
    name = out.name.split(".")[0]
    outputs = output_ports(model, ports)
    if args.labels:
        return classifier_meta(model, read_labels(args.labels), name, bundle, spec, ports, outputs)
    return generic_meta(model, name, bundle, spec, ports, outputs)


def add_parser(sub):
    c = sub.add_parser("convert", help="convert a Keras model (.keras/.h5/SavedModel) or a SavedModel's serving "
                                       "signature to tflite, onnx or coreml")
    c.add_argument("--model", required=True)
    c.add_argument("--format", choices=export_formats(), help="with --precision; or give --variant (default: what --out ends in)")
    c.add_argument("--precision", "--mode", dest="precision", choices=precisions(),
                   help="the format's precision (default: its first): " + "; ".join(
                       f"{f}: {', '.join(precisions(f))}" for f in export_formats()))
    c.add_argument("--variant", choices=list(VARIANTS), metavar="NAME",
                   help="a variant of the format table (docs/recipe.md): " + ", ".join(VARIANTS))
    c.add_argument("--data", help=".npy (N,H,W,C) calibration images (RGB or grayscale) in [0,1] or uint8 "
                                  "pixels, or a folder of photos (any depth, read upright, resized to the input), mapped through the input spec (default: generated documents); an input "
                                  "that is no image takes the values the model takes")
    c.add_argument("--calibration-samples", type=int_range(1, 100_000), default=200)
    c.add_argument("--out", required=True)
    c.add_argument("--labels", help="text file, one class name per line: makes a TFLite/Core ML classifier bundle")
    c.add_argument("--author", default="", type=_bundle_text("author"), help="bundle metadata: author")
    c.add_argument("--license", default="", type=_bundle_text("licence"), help="bundle metadata: licence")
    c.add_argument("--model-version", default="", type=_bundle_text("model version"), help="bundle metadata: model version")
    c.add_argument("--description", default="", type=_bundle_text("description"), help="bundle metadata: one-line description")
    add_input_spec_args(c)
    add_shape_args(c)
    add_trust(c)
    c.set_defaults(func=cmd_convert)

"""``edgepipe quantize``: every post-training quantization mode by name, a
per-layer int8 error table, and selective float fallback until a gate holds."""
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from rich.table import Table

from edgepipe.base.errors import EdgePipeError
from edgepipe.cli.args import add_trust, check_suffix, fraction, int_range, positive
from edgepipe.cli.inputs import add_input_spec_args
from edgepipe.convert.formats import find, precisions


AGREEMENT, PSNR = 0.98, 30.0  # the gates --auto-fallback and --keep-float hold when the user names none


def _gate_for(model, x: np.ndarray, args):
    """(check, gate, rules): check(tflite bytes) -> (passes, value), top-1 agreement for
    classifiers, PSNR otherwise; ``rules["last"]``: the rule as the last check met it (it
    names a floor the value alone does not show, as verify's does)."""
    from edgepipe.evaluate.gates import check_output, default_gate, gated_as_classifier
    from edgepipe.evaluate.outputs import output_kinds
    from edgepipe.evaluate.runners import KerasRunner, open_runner
    outputs = KerasRunner(model).predict(x)
    name, ref = next(iter(outputs.items()))
    kind = output_kinds(model, args.model).get(name)  # a box head is no classifier
    classifier = gated_as_classifier(ref, args.psnr, args.agreement, kind)
    gate = default_gate("int8", classifier, agreement=AGREEMENT if args.agreement is None else args.agreement,
                        psnr_int=PSNR if args.psnr is None else args.psnr)
    if args.agreement is not None and not classifier:  # else the option the user named is dropped unsaid
        print(f"note: --agreement gates class scores; output {name} {tuple(ref.shape[1:])} holds none, so its "
              f"gate is {gate.metric} >= {gate.threshold:g} (--psnr sets it)", file=sys.stderr)

    rules = {}

    def check(blob: bytes):
        fd, tmp = tempfile.mkstemp(suffix=".tflite")
        try:
            os.write(fd, blob)
            os.close(fd)
            got = next(iter(open_runner(tmp).predict(x).values()))
        finally:
            os.unlink(tmp)
        result = check_output(ref, got, gate)
        rules["last"] = result["gate"]
        return result["pass"], result[gate.metric]
    return check, gate, rules


def _checked_gate(model, x, args, out, console) -> dict:
    """The gate the user named, on the file written: the card and the exit code say whether it held."""
    check, gate, rules = _gate_for(model, x, args)
    passed, value = check(out.read_bytes())
    console.print(f"gate {rules['last']}: {'pass' if passed else 'not met'}", style=None if passed else "yellow")
    return {"gate": {"metric": gate.metric, "passed": bool(passed), "value": float(value), "rule": rules["last"]}}


def _print_layers(layers, console, worst: int = 12):
    t = Table(title=f"int8 error per layer (worst {min(worst, len(layers))} of {len(layers)}; "
                    "RMSE in quantization steps, rounding alone ~0.29)")
    for col in ("layer", "op", "RMSE/step", "max abs err"):
        t.add_column(col, justify="left" if col in ("layer", "op") else "right")
    for r in sorted(layers, key=lambda r: -r["rmse_per_scale"])[:worst]:
        t.add_row(r["layer"], r["op"], f"{r['rmse_per_scale']:.2f}", f"{r['max_abs_error']:.3g}")
    console.print(t)


def _already_quantized(model) -> bool:
    """A QAT model carries tfmot's Quantize* wrappers; quantizing it again would double-round."""
    return any("Quantize" in type(layer).__name__ for layer in model.layers)


def cmd_quantize(args):
    from edgepipe.cli.convert import with_io_dtype
    from edgepipe.convert import graphio, tflite
    from edgepipe.convert.fold import export_graph
    from edgepipe.base import atomic
    from edgepipe.pipeline.cards import converted_card, generic_meta
    from edgepipe.base.modelio import load_keras
    from edgepipe.pipeline.report import wide_console, write_json
    from edgepipe.cli.inputs import input_spec, sample_inputs, say_assumed_range, say_kept_state
    console = wide_console()
    check_suffix(args.out, "tflite")
    out = atomic.check_target(args.out, inputs=[args.model, args.data])
    card = atomic.check_target(out.with_name(out.name + ".model_card.json"), inputs=[args.model, args.data])
    model = load_keras(args.model, trust=args.trust_model)
    if _already_quantized(model):
        raise EdgePipeError(f"{args.model} went through quantization-aware training already; export it with "
                            "`edgepipe convert --mode int8` instead of quantizing it a second time")
    if len(model.inputs) != 1:
        names = ", ".join(t.name.split(":")[0] for t in model.inputs)
        raise EdgePipeError(f"edgepipe quantize takes a model with one input; {args.model} has {len(model.inputs)} "
                            f"({names}): `edgepipe convert --model {args.model} --variant tflite_dynamic` (or "
                            f"tflite_float16) quantizes its weights, and `edgepipe convert --model {args.model} "
                            "--variant tflite_int8 --data INPUTS.npz` (one array per input name) calibrates full int8")
    if args.uint8_io and args.mode != "int8":
        raise EdgePipeError("--uint8-io applies to --mode int8 only")
    io = "uint8" if args.uint8_io else "float" if args.float_io and args.mode == "int8" else "native"
    variant = find("tflite", args.mode, io=io)  # the table's row: label, calibration need
    # the card describes what the file takes, as convert's does; convert is the command that fixes free sizes
    ports = graphio.export_inputs(model, fix=f"`edgepipe convert --mode {args.mode} --input-shape`")
    if variant.needs_calibration:  # before --debug's or --auto-fallback's passes, which convert on their own
        tflite.refuse_float_ids(model, args.mode)
    spec, ports = input_spec(args, model, ports)
    folded = export_graph(model)
    meta = with_io_dtype(generic_meta(model, out.name.split(".")[0], spec=spec, ports=ports,
                                      outputs=graphio.output_ports(model, ports)), variant)
    asked = args.agreement is not None or args.psnr is not None  # a gate the user named is checked in every mode
    needs_data = variant.needs_calibration or asked
    x = (sample_inputs(ports[0].shape[1:], args.data, count=args.calibration_samples, spec=spec,
                        image=ports[0].is_image)
         if needs_data else None)
    keep = [k for k in (args.keep_float or "").split(",") if k]
    if args.mode != "int8" and (keep or args.auto_fallback or args.debug):
        raise EdgePipeError("--debug, --keep-float and --auto-fallback apply to --mode int8 only")
    if args.uint8_io and (keep or args.auto_fallback):
        raise EdgePipeError("--keep-float and --auto-fallback keep int8 or float I/O; drop --uint8-io")
    extra = {}
    if args.mode == "int8" and (keep or args.auto_fallback):
        from edgepipe.quantize.fallback import selective_fallback
        check, gate, rules = _gate_for(folded, x, args)
        from edgepipe.convert.grouped import merge_groups  # the graph the TFLite writer converts
        result = selective_fallback(merge_groups(folded), x, check, keep=keep, int8_io=not args.float_io,
                                    max_float_layers=args.max_float_layers if args.auto_fallback else 0)
        for s in result["steps"]:
            console.print(f"float layers {s['float_layers'] or '[]'}: {gate.metric} {s['value']:.4g} "
                          f"({'pass' if s['passed'] else 'fail'}), {s['size_bytes']:,} bytes")
        if args.debug:
            _print_layers(result["layers"], console)
        from edgepipe.convert.tflite_metadata import attach
        card.unlink(missing_ok=True)  # edgepipe's own (check_target): never beside the next file
        atomic.write_bytes(out, attach(result["model"], meta))
        extra = {"float_layers": result["float_layers"],
                 "gate": {"metric": gate.metric, "passed": result["passed"], "value": result["steps"][-1]["value"],
                          "rule": rules["last"]}}  # the last step's check
        if not result["passed"]:
            console.print(f"gate {rules['last']} not met with "
                          f"{len(result['float_layers'])} float layer(s)", style="yellow")
    else:
        if args.debug:
            from edgepipe.quantize.debug import layer_errors
            _print_layers(layer_errors(folded, x), console)
        from edgepipe.base.interrupts import converter_errors
        card.unlink(missing_ok=True)  # edgepipe's own (check_target): an interrupt leaves no old card by a new file
        with converter_errors(f"quantizing {args.model} ({args.mode})"):
            tflite.write(folded, out, args.mode, x if variant.needs_calibration else None, int8_io=not args.float_io,
                         meta=meta, io_dtype="uint8" if variant.io == "uint8" else None)
        if asked:
            extra = _checked_gate(folded, x, args, out, console)
    held = extra.get("gate")  # the artifact states it in the run card's form too: rule and pass
    write_json(card, converted_card(meta, "tflite", variant.label, out,
                                    gate=held and {"rule": held["rule"], "pass": held["passed"]}) | extra)
    console.print(f"wrote {out} ({variant.name}: {variant.label}) and {card.name}")
    say_assumed_range(spec, model, ports)
    say_kept_state(out, "tflite")
    return 1 if extra and not extra["gate"]["passed"] else 0  # a missed gate is a failed gate


def add_parser(sub):
    q = sub.add_parser("quantize", help="post-training quantization to TFLite, with per-layer error and "
                                        "selective float fallback")
    q.add_argument("--model", required=True, help="the original .keras/.h5/SavedModel")
    q.add_argument("--mode", required=True, choices=[m for m in precisions("tflite") if m != "float32"])
    q.add_argument("--data", help=".npy (N,H,W,C) images (RGB or grayscale) in [0,1] or uint8 pixels, or a folder of photos "
                                  "(any depth, read upright, resized to the input), for calibration "
                                  "and the gate, mapped through the input spec (default: generated documents); "
                                  "an input that is no image takes the values the model takes")
    q.add_argument("--calibration-samples", type=int_range(1, 100_000), default=200)
    io = q.add_mutually_exclusive_group()
    io.add_argument("--float-io", action="store_true", help="int8 kernels but float32 input/output")
    io.add_argument("--uint8-io", action="store_true", help="int8 kernels with uint8 input/output "
                    "(MediaPipe Tasks, TFLite Task Library): the tflite_uint8 variant")
    q.add_argument("--debug", action="store_true", help="print the worst layers' int8 error")
    q.add_argument("--keep-float", help="comma-separated layer names to keep in float (int8 mode)")
    q.add_argument("--auto-fallback", action="store_true",
                   help="keep the worst layers in float, one by one, until the gate holds")
    q.add_argument("--max-float-layers", type=int_range(0, 10_000), default=8)
    q.add_argument("--agreement", type=fraction, help="gate for classifiers: top-1 agreement against the "
                   "original on --data (default 0.98 with --auto-fallback/--keep-float); exit 1 when missed")
    q.add_argument("--psnr", type=positive, help="gate for dense outputs: PSNR in dB against the original "
                   "(default 30 with --auto-fallback/--keep-float); exit 1 when missed")
    q.add_argument("--out", required=True)
    add_input_spec_args(q)
    add_trust(q)
    q.set_defaults(func=cmd_quantize)

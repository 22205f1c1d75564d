"""``edgepipe scan PHOTO --model FILE [-o OUT.png] [--json]``."""
import json
import sys
from pathlib import Path

from edgepipe.base.errors import EdgePipeError
from edgepipe.base.safety import one_line
from edgepipe.cli.args import add_trust

NOT_FOUND = 1  # like grep: ran fine, found nothing (2 stays for usage errors)


def read_photo(path):
    from edgepipe.base.photos import MIN_PHOTO_SIDE, read_rgb
    return read_rgb(path, min_side=MIN_PHOTO_SIDE)


def cmd_scan(args):
    from edgepipe.evaluate.runners import NotRunnable, fixed_dims, open_runner, shape_text
    from edgepipe.mobile_models.scan import scan
    from edgepipe.base import atomic
    import cv2
    if not args.photo.strip():
        raise EdgePipeError("no photo given: the photo path is empty")
    if args.output is not None and not args.output.strip():
        raise EdgePipeError("-o is empty; give the rectified page's file name (.png, .jpg)")
    if args.output:
        if Path(args.output).suffix.lower() not in (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"):
            raise EdgePipeError(f"-o {args.output}: the rectified page is an image: use .png, .jpg, .bmp, .tif "
                                "or .webp")
        atomic.check_target(args.output, inputs=[args.photo, args.model])
    photo = read_photo(args.photo)
    try:
        runner = open_runner(args.model, trust=args.trust_model)
    except NotRunnable as why:
        raise EdgePipeError(f"{args.model}: {why}") from None
    if runner.runtime == "coreml":  # its reference interpreter knows neither an NHWC input nor output shapes
        raise EdgePipeError(f"{args.model}: scan runs the TFLite or ONNX export of an edge model (the Core ML one "
                            "is for the iOS app; `edgepipe verify` checks it)")
    edge_maps = [o for o in runner.outputs if len(o.shape) == 4 and o.shape[-1] == 1]
    if len(runner.inputs[0].shape) != 4 or runner.inputs[0].shape[-1] != 3 or not edge_maps:
        raise EdgePipeError(f"{args.model}: expected an HED edge model (NHWC RGB input, (N, H, W, 1) edge map "
                            f"output); it has inputs {', '.join(shape_text(t.shape) for t in runner.inputs)}, "
                            f"outputs {', '.join(shape_text(t.shape) for t in runner.outputs)}")
    if None in fixed_dims(runner.inputs[0].shape[1:3]):
        raise EdgePipeError(f"{args.model}: its input size is free {shape_text(runner.inputs[0].shape)}; scan "
                            "needs a fixed size: export it at one (from Keras: `edgepipe convert --input-shape "
                            "1x256x256x3`)")
    result = scan(photo, runner, spec=pixel_spec(args.model, runner))
    if result.page is not None and args.output:
        ok, buf = cv2.imencode(Path(args.output).suffix or ".png", cv2.cvtColor(result.page, cv2.COLOR_RGB2BGR))
        if not ok:
            raise EdgePipeError(f"cannot encode {args.output}; use .png or .jpg")
        atomic.write_bytes(Path(args.output), buf.tobytes())
    if args.json:
        corners = None if result.corners is None else [[round(float(x), 2), round(float(y), 2)]
                                                       for x, y in result.corners]
        print(json.dumps({"corners": corners} | ({} if corners else {"reason": result.reason})))
    elif result.corners is None:
        print(f"no document found ({result.reason})" + (f"; {args.output} not written" if args.output else ""))
    else:
        print("corners (TL, TR, BR, BL):", ", ".join(f"({x:.1f}, {y:.1f})" for x, y in result.corners))
        if args.output:
            print(f"wrote {args.output}")
    return 0 if result.corners is not None else NOT_FOUND


def pixel_spec(path, runner):
    """What the model takes for pixels: its own layers' word (a Keras model or SavedModel),
    else its bundle's (the card an export carries), else 0..255 for an input that holds
    raw integers, else (an 8-bit quantized input) the pixels its bytes hold, else pixel / 255."""
    from edgepipe.convert.inputspec import DEFAULT, bundle_spec, from_input_quantization, from_model, raw_pixels
    if runner.runtime in ("keras", "savedmodel"):
        return from_model(runner.model) or DEFAULT
    if spec := bundle_spec(path):
        return spec
    if runner.raw_integer_input():
        return raw_pixels(note="an integer input")
    quantized = runner.input_quantization()
    if quantized and (spec := from_input_quantization(*quantized)):
        return spec
    # a converter folds a leading Rescaling into the first conv's weights: the file cannot say
    print(f"note: {one_line(str(path), 80)} carries no model card, so scan feeds it pixel / 255, in [0, 1]; a model "
          "that takes raw pixels or [-1, 1] finds nothing in that: export it with `edgepipe convert`, which "
          "writes the range its Keras model takes into the file", file=sys.stderr)
    return DEFAULT


def add_parser(sub):
    s = sub.add_parser("scan", help="find the document in a photo and write the rectified page",
                       description="Exit status: 0 page found, 1 no page found (nothing written), 2 error.")
    s.add_argument("photo")
    s.add_argument("--model", required=True, help="HED export: .tflite, .onnx or .keras")
    s.add_argument("-o", "--output", help="rectified page image (.png/.jpg)")
    s.add_argument("--json", action="store_true", help='print {"corners": [[x, y] x4]} or {"corners": null, "reason": why}')
    add_trust(s)
    s.set_defaults(func=cmd_scan)

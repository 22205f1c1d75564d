"""model_card.json: what an app developer needs to feed and read the model."""
import json
import time
from pathlib import Path

import numpy as np

from edgepipe.convert.inputspec import GRAYSCALE, InputSpec, spec_for
from edgepipe.mobile_models.docquad import PAGE, QuadParams
from edgepipe.evaluate.outputs import activation
from edgepipe.base.errors import EdgePipeError


def _quant_params(path, names: dict) -> dict:
    """Input/output scale, zero point and dtype of an int8 TFLite file, each entry named as
    an app finds the tensor, in the order the card lists ``names`` ({"inputs": [...],
    "outputs": [...]}): TFLite's own order can differ (a two-output head's box before its
    classes), and an app pairing them by position would dequantize one with the other's."""
    from ai_edge_litert.interpreter import Interpreter
    from edgepipe.evaluate.runners import tflite_io_names
    interp = Interpreter(model_path=str(path))
    in_names, out_names = tflite_io_names(interp, path)
    ins = dict(zip(in_names, interp.get_input_details()))
    outs = dict(zip(out_names, interp.get_output_details()))

    def q(name, d):
        scale, zero = d["quantization"]
        dtype = np.dtype(d["dtype"]).name
        if not scale:  # TFLite's "not quantized" (uint8 pixels the model takes): x / 0 would feed garbage
            return {"name": name, "scale": 1.0, "zero_point": 0, "dtype": dtype, "quantized": False}
        return {"name": name, "scale": float(scale), "zero_point": int(zero), "dtype": dtype}
    inputs = [q(n, d) for n, d in _in_card_order(ins, names.get("inputs", []))]
    return {"input": inputs[0], "inputs": inputs,
            "outputs": [q(n, d) for n, d in _in_card_order(outs, names.get("outputs", []))]}


def _in_card_order(details: dict, names: list) -> list:
    """``details``' items in the order of ``names`` (those it has), then the rest in the file's order."""
    listed = [n for n in names if n in details]
    return [(n, details[n]) for n in listed] + [(n, d) for n, d in details.items() if n not in listed]


def image_input(model, spec: InputSpec | None = None, port=None) -> dict:
    """The model's image input (``port``, a ``convert.graphio.Port``: the export's;
    default the model's single input at batch 1): pixels mapped by ``spec`` (default:
    what the model itself says, else pixel / 255). ``scale``/``bias`` are numbers when
    every channel shares them, lists otherwise; ``mean``/``std`` are per channel. A
    free batch is -1."""
    spec = spec or spec_for(model)
    name, (_, h, w, c) = (port.name, port.shape) if port else (model.input_names[0], model.input_shape)
    batch = -1 if port and port.dynamic_batch else 1
    scale, bias = spec.scale_bias(c)
    mean, std = spec.per_channel(c)
    lo, hi = spec.value_range(c)
    num = lambda v: float(v) + 0.0  # noqa: E731 - no "-0.0" in the card
    one = (lambda v: num(v[0])) if spec.uniform else (lambda v: [num(x) for x in v])  # noqa: E731
    formula = ("x = pixel * scale + bias" if spec.uniform
               else "x = pixel * scale[c] + bias[c] = (pixel - mean[c]) / std[c]")
    values = "raw pixels [0, 255]" if (lo, hi) == (0.0, 255.0) else f"pixels scaled to [{lo:g}, {hi:g}]"
    # what the export takes: a model whose input is uint8 keeps it in every format (pixels 0..255)
    dtype = port.dtype if port and port.dtype in ("uint8", "float64") else "float32"  # float16 ports are fed float32
    color = GRAYSCALE if c == 1 else spec.color_order
    return {"name": name, "shape": [batch, h, w, c], "dtype": dtype, "layout": "NHWC",
            "color_order": color, "range": [num(lo), num(hi)],
            "normalization": {"scale": one(scale), "bias": one(bias), "formula": formula,
                              "mean": [num(m) for m in mean], "std": [num(s) for s in std],
                              "source": spec.source},
            "description": f"{'grayscale (luma)' if c == 1 else spec.color_order} image resized to {w}x{h}, {values}"
                           + (f"; {spec.note}" if spec.note else "")}


def tensor_input(port, spec: InputSpec | None = None) -> dict:
    """An input that is not an image (a feature vector, a mask): fed as the model takes it.
    ``spec``: what the model's own leading layers say of its values (a Rescaling(1/255)
    before a Flatten takes 0..255), stated as the range to feed."""
    shape = [-1 if d is None else d for d in port.shape]
    entry = {"name": port.name, "kind": "tensor", "shape": shape, "dtype": port.dtype,
             "description": f"tensor of shape {shape}, fed as the model takes it"}
    if spec is not None and spec.source == "model" and len(shape) >= 3:  # spatial, not a feature vector
        lo, hi = spec.own_range()
        entry["range"] = [float(lo) + 0.0, float(hi) + 0.0]
        entry["description"] += f"; values in [{lo:g}, {hi:g}] ({spec.note})"
    return entry


def _inputs(model, spec, ports) -> list[dict]:
    if ports is None:
        return [image_input(model, spec)]
    own = spec if len(ports) == 1 else None  # the model's own layers describe its single input
    return [image_input(model, p.pixel_spec or spec, p) if p.is_image else tensor_input(p, own) for p in ports]


def classifier_meta(model, labels: list[str], name: str, bundle: dict | None = None,
                    spec: InputSpec | None = None, ports=None, outputs=None) -> dict:
    """Model card for an image classifier; ``bundle`` holds author, license, version, description;
    ``spec`` how to feed it (default: what the model says, else pixel / 255); ``ports``,
    ``outputs``: the export's inputs and outputs (``convert.graphio``; default the model's)."""
    shapes = _shapes(model, outputs)
    if len(shapes) != 1 or len(shapes[0]) != 2:
        raise EdgePipeError(f"labels need a classifier with one (batch, classes) output; {name} has "
                            f"{shapes if outputs else model.output_shape}")
    classes = shapes[0][-1]
    if classes == 1:  # a one-class Core ML classifier would answer the one label, whatever the photo
        raise EdgePipeError(f"{name} has one output unit: a binary score (a sigmoid or a logit), not one score per "
                            "class, so labels cannot name its classes; drop --labels (the app reads the score as "
                            "the second class's), or give the model a 2-unit softmax head")
    if len(labels) != classes:
        raise EdgePipeError(f"{len(labels)} label{'s' if len(labels) != 1 else ''} given, the model has {classes} "
                            "classes")
    head = activation(model, 0)
    meaning = "class probabilities" if head == "softmax" else "class scores (logits; argmax = class)"
    return {"name": name, "task": "image classification", **_bundle_fields(bundle),
            "inputs": _inputs(model, spec, ports),
            "outputs": [{"name": model.output_names[0], "shape": list(shapes[0]), "activation": head,
                         "meaning": f"{meaning}, in labels order"}],
            "labels": list(labels)}


def generic_meta(model, name: str, bundle: dict | None = None, spec: InputSpec | None = None,
                 ports=None, outputs=None) -> dict:
    """Model card for any model without labels (``ports``, ``outputs`` as in ``classifier_meta``)."""
    outputs = [{"name": n, "shape": list(shape), "activation": activation(model, i), "meaning": n}
               for i, (n, shape) in enumerate(zip(model.output_names, _shapes(model, outputs)))]
    return {"name": name, "task": "", **_bundle_fields(bundle), "inputs": _inputs(model, spec, ports),
            "outputs": outputs, "labels": []}


def _shapes(model, outputs=None) -> list[tuple]:
    """Output shapes as the card states them: the export's (a free batch is -1), else
    the model's at batch 1."""
    if outputs:
        return [tuple(-1 if d is None else d for d in o.shape) for o in outputs]
    shapes = model.output_shape if isinstance(model.output_shape, list) else [model.output_shape]
    return [(1, *s[1:]) for s in shapes]


def _bundle_fields(bundle: dict | None) -> dict:
    """The bundle's own fields, and what wrote it (for the app and its people: what edgepipe
    may replace is decided by ``base.atomic``'s record of what it wrote, not by this field)."""
    from edgepipe import __version__
    bundle = bundle or {}
    return {"generator": f"edgepipe {__version__}"} | {k: bundle.get(k, "") for k in
                                                        ("description", "author", "license", "version")}


def _letterboxed(image: dict) -> dict:
    """The document detector's input as it trained and ``scan`` feeds it: the photo scaled to
    fit with its aspect kept, centred, in bands of ``PAD_VALUE``; a squashed photo is not."""
    from edgepipe.mobile_models.scan import PAD_VALUE
    _, h, w, _ = image["shape"]
    old = f"image resized to {w}x{h}"
    new = (f"photo letterboxed into {w}x{h} (scaled to fit with its aspect kept, area interpolation, "
           f"centred between bands of pixel value {PAD_VALUE})")
    return image | {"description": image["description"].replace(old, new),
                    "resize": {"method": "letterbox", "pad_value": PAD_VALUE, "interpolation": "area"}}


def bundle_meta(recipe, model, recipe_hash) -> dict:
    """What every artifact of a run carries: how to feed the model and read it."""
    size = recipe.model.input_size
    return {
        "name": recipe.model.name, **_bundle_fields(recipe.bundle.model_dump()),
        "task": "document edge detection (HED) + quad finding",
        "inputs": [_letterboxed(image_input(model))],
        "outputs": [{"name": "edges", "shape": [1, size, size, 1], "activation": "sigmoid",
                     "meaning": "probability that the pixel lies on the document border"}]
                   + ([{"name": PAGE, "shape": [1, size, size, 1], "activation": "sigmoid",
                        "meaning": "probability that the pixel lies on the document (the quad finder "
                                   "prefers quads whose sides separate page from background)"}]
                      if PAGE in model.output_names else []),
        "labels": [],
        "postprocessing": {"quad_finder": QuadParams().__dict__,
                           "corners_order": ["top-left", "top-right", "bottom-right", "bottom-left"]},
        "training": {"data": recipe.data.model_dump(), "profile": recipe.profile, "recipe_hash": recipe_hash},
    }


def _artifact(fmt, variant, path, size, status, verify=None, bench=None, gpu=None, names=None) -> dict:
    item = {"format": fmt, "variant": variant, "file": path and str(path).split("/")[-1], "size_bytes": size,
            "status": status, "verify": verify or {},
            "bench": {k: v for k, v in (bench or {}).items() if k != "samples_ms"}}
    if fmt == "tflite" and variant.startswith("int8") and "float-io" not in variant and status == "ok":
        item["quantization"] = _quant_params(path, names or {})  # int8 or uint8 I/O: what an app (de)quantizes with
    if gpu:
        item["gpu_delegate"] = gpu
    return item


def _created() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def model_card(meta: dict, entries) -> dict:
    """``meta`` (what the bundle carries) plus every artifact's verify and bench results."""
    artifacts = [_artifact(e["format"], e["variant"], e["path"], e["size_bytes"], e["status"],
                           _verified(e), e["latency"], e.get("gpu_delegate"), _io_names(meta)) for e in entries]
    return meta | {"created": _created(), "artifacts": artifacts}


def _verified(entry: dict) -> dict:
    """An artifact's checks as its card states them: parity, task metrics and, where one
    was held, the release gate (an app team reads whether the file passed, not only how close it came)."""
    gate = {"gate": entry["gate"]} if entry.get("gate") else {}
    return {"parity": entry["parity"], "task": entry["task"]} | gate


def converted_card(meta: dict, fmt: str, variant: str, path, gate: dict | None = None) -> dict:
    """The card beside one artifact written by ``edgepipe convert`` or ``quantize``; ``gate``:
    the one held on it (``{"rule", "pass", ...}``), stated in the artifact's verify."""
    from edgepipe.pipeline.report import artifact_entry
    size = artifact_entry(fmt, variant, path)["size_bytes"]
    gpu = None
    if fmt == "tflite":
        from edgepipe.evaluate.gpucompat import gpu_report
        gpu = gpu_report(path)
    return meta | {"created": _created(),
                   "artifacts": [_artifact(fmt, variant, path, size, "ok", verify={"gate": gate} if gate else None,
                                           gpu=gpu, names=_io_names(meta))]}


def _io_names(meta: dict) -> dict:
    return {k: [entry.get("name") for entry in meta.get(k, [])] for k in ("inputs", "outputs")}


def run_card_of(path) -> dict | None:
    """The ``model_card.json`` of the run folder ``path`` sits in, when that card lists the
    file among its artifacts (a user's own model dropped into a run folder is not the run's)."""
    path = Path(path)
    try:
        card = json.loads((path.parent / "model_card.json").read_text())
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(card, dict) or not isinstance(card.get("artifacts"), list):
        return None
    listed = [a.get("file") for a in card["artifacts"] if isinstance(a, dict)]
    return card if path.name in listed else None

"""Where does an export start to differ from its original?

When a verify gate fails, the intermediate tensors of the export are matched
to the Keras layers they come from and compared with the layers' outputs:
TFLite's through ``experimental_preserve_all_tensors`` (tensor names carry the
Keras layer path, fused ops join several with ';'), Core ML's through the
reference interpreter's per-op outputs (op names carry the sanitised layer
name). The first layer whose relative error jumps is the one to look at.

The reference is the original rewritten as the exporters see it
(``convert.fold.export_graph``: BN folded, sub-pixel upsamplers), so layer
names and values line up (both rewrites are exact to ~1e-6).
"""
import re

import numpy as np

from edgepipe.base.quiet import native_stderr_silenced
from edgepipe.base.values import in_dtype

FLOOR = 1e-6          # relative error below this is float round-off
JUMP = 10.0           # a layer "jumps" when its error is 10x the worst before it
TOLERANCE = {"float32": 1e-3, "fp32": 1e-3, "fp16": 2e-2, "float16": 2e-2}
QUANTIZED_TOLERANCE = 0.2


def keras_layer_outputs(model, x) -> dict[str, np.ndarray]:
    """Every layer's output for ``x``, in the model's topological order."""
    from edgepipe.base.backend import keras
    chosen = [layer for layer in model.layers
              if type(layer).__name__ != "InputLayer" and not isinstance(layer.output, (list, tuple))]
    probe = keras.Model(model.inputs, [layer.output for layer in chosen])
    outs = probe(np.asarray(x, np.float32), training=False)
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    return {layer.name: np.asarray(o) for layer, o in zip(chosen, outs)}


def tflite_tensors(path, x, output_layers=()) -> list[tuple[str, np.ndarray]]:
    """(name, float value) of every op output, in execution order; int8/int16
    tensors are dequantized with their own scale and zero point. The model's
    outputs (named 'Identity' and the like) take ``output_layers``' names."""
    import warnings

    from ai_edge_litert import interpreter as litert
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "preserve_all_tensors is for debugging": it is
        interp = litert.Interpreter(model_path=str(path), experimental_preserve_all_tensors=True)
    with native_stderr_silenced():  # XNNPACK announces itself on fd 2
        interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    scale, zero = inp["quantization"]
    interp.set_tensor(inp["index"], in_dtype(x / scale + zero if scale else x, inp["dtype"]))
    interp.invoke()
    details = {d["index"]: d for d in interp.get_tensor_details()}
    renamed = _output_layers(interp, path, list(output_layers))
    found = []
    for op in interp._get_ops_details():
        for i in op["outputs"]:
            d = details[i]
            value = interp.get_tensor(i).astype(np.float32)
            s, z = d["quantization"]
            found.append((renamed.get(i, d["name"]), (value - z) * s if s else value))
    return found


def _output_layers(interp, path, output_layers: list) -> dict:
    """{output tensor index: the Keras output layer it is}: by the signature's names where
    they are the layers' (TFLite may order a two-output head's box before its classes),
    else in order."""
    from edgepipe.evaluate.runners import tflite_io_names
    outs, names = interp.get_output_details(), tflite_io_names(interp, path)[1]
    if sorted(names) == sorted(output_layers):
        return {d["index"]: name for d, name in zip(outs, names)}
    return {d["index"]: name for d, name in zip(outs, output_layers)}


def coreml_tensors(path, x) -> list[tuple[str, np.ndarray]]:
    """(op output name, value) from the reference interpreter, in its own (mostly NCHW) layout."""
    from edgepipe.evaluate.milref import ReferenceProgram
    program = ReferenceProgram(path)
    from edgepipe.evaluate.runners import image_pixels
    image = image_pixels(x).astype(np.float32).transpose(0, 3, 1, 2)
    program.run({program.input_names[0]: image}, keep_trace=True)
    return [(name, np.asarray(v, np.float32)) for name, v in program.trace.items() if isinstance(v, np.ndarray)]


def _sanitise(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z_]", "_", name)


def layer_of(tensor_name: str, layer_names: list[str], model_name: str) -> str | None:
    """The Keras layer a tensor is the output of: the latest layer its name
    mentions (TFLite: 'model/layer/Op;model/other/Op'; Core ML: 'model_layer_Op_cast')."""
    tokens = set(re.split(r"[/;:]", tensor_name))
    mentioned = [n for n in layer_names if n in tokens]
    if not mentioned:
        stem = tensor_name.removeprefix(_sanitise(model_name) + "_")
        prefix = [n for n in layer_names if stem.startswith(_sanitise(n) + "_") or stem == _sanitise(n)]
        mentioned = [max(prefix, key=len)] if prefix else []
    return max(mentioned, key=layer_names.index) if mentioned else None


def compare_layers(reference: dict, tensors: list, model_name: str) -> list[dict]:
    """Per Keras layer (topological order): relative error of the export's
    matching tensor (the last one attributed to the layer with the same shape)."""
    names = list(reference)
    candidates = {}
    for tname, value in tensors:
        layer = layer_of(tname, names, model_name)
        if not layer:
            continue
        # Core ML works in NCHW, except where coremltools moved a transpose
        views = [value, value.transpose(0, 2, 3, 1)] if value.ndim == 4 else [value]
        candidates.setdefault(layer, []).extend((tname, v) for v in views if v.shape == reference[layer].shape)
    rows = []
    for layer in names:
        ref = reference[layer]
        scored = [(_relative_error(got, ref), tname, got) for tname, got in candidates.get(layer, [])]
        if not scored:
            continue
        # a fused op's name also mentions the layer on its pre-activation tensor;
        # the layer's true output is the candidate that matches it best
        err, tname, got = min(scored, key=lambda s: s[0])
        rows.append({"layer": layer, "tensor": tname, "relative_error": err,
                     "max_abs": float(np.max(np.abs(got - ref)))})
    return rows


def _relative_error(got, ref) -> float:
    return float(np.linalg.norm(got - ref) / (np.linalg.norm(ref) + 1e-12))


def first_jump(rows: list[dict], tolerance: float) -> dict | None:
    """The first layer whose error exceeds ``tolerance`` and is JUMP x the worst
    before it; failing that, the layer with the largest increase."""
    worst, best_ratio, best = FLOOR, 0.0, None
    for row in rows:
        e = row["relative_error"]
        ratio = e / worst
        if e > tolerance and ratio >= JUMP:
            return row | {"jump": ratio, "before": worst, "kind": "jump"}
        if ratio > best_ratio and e > FLOOR:
            best_ratio, best = ratio, row | {"jump": ratio, "before": worst, "kind": "largest increase"}
        worst = max(worst, e)
    return best


def drill_down(original, export_path, x, variant: str, fed=None) -> dict:
    """Compare the export's intermediate tensors with the folded original's on one input: ``x``
    as the original takes it, ``fed`` as the export does (default ``x``). A Core ML ImageType takes
    8-bit pixels (``fed`` in [0, 1]) and maps them itself; a raw-pixel original takes 0..255."""
    from edgepipe.convert.fold import export_graph
    from edgepipe.convert.formats import format_of
    path, x = str(export_path), np.asarray(x[:1], np.float32)
    fed = x if fed is None else np.asarray(fed[:1], np.float32)
    fmt = format_of(path)
    if fmt == "tflite":
        tensors = tflite_tensors(path, x, [t.node.layer.name for t in original.outputs])
    elif fmt == "coreml":
        if fed is x:  # the original takes what the ImageType does: compare on the 8-bit pixels Core ML sees
            from edgepipe.evaluate.runners import image_pixels
            x = fed = image_pixels(x) / np.float32(255)
        tensors = coreml_tensors(path, fed)
    else:
        return {"available": False, "why": "drill-down reads TFLite and Core ML intermediates only"}
    folded = export_graph(original)
    rows = compare_layers(keras_layer_outputs(folded, x), tensors, folded.name)
    tolerance = TOLERANCE.get(variant, QUANTIZED_TOLERANCE)
    return {"available": True, "layers": rows, "first": first_jump(rows, tolerance), "tolerance": tolerance}

"""Per-layer int8 error with TFLite's QuantizationDebugger: for every quantized
op it runs the float op beside the int8 one and compares their outputs.

The figure we report per layer is the RMSE of the dequantized output divided by
the layer's own quantization step (``scale``): about 0.29 (1/sqrt(12)) is pure
rounding noise, values well above it point at a layer worth keeping in float.
"""
import csv
import io
import re
import warnings
from collections import Counter

import numpy as np

from edgepipe.base.quiet import native_stderr_silenced
from edgepipe.quantize.ptq import check_representative, configure, converter_for

ROUNDING_NOISE = 1 / np.sqrt(12)


def make_debugger(model, representative, debug_samples: int = 8):
    """A calibrated QuantizationDebugger over ``model`` (full-int8 kernels, float I/O)."""
    from edgepipe.base.backend import tf
    data = check_representative(representative, (1, *model.input_shape[1:]))
    converter = configure(converter_for(model), "int8", data, int8_io=False)

    def debug_data():
        for x in data[:debug_samples]:
            yield [x[None]]
    with warnings.catch_warnings(), native_stderr_silenced():  # it still uses tf.lite.Interpreter (deprecated)
        warnings.simplefilter("ignore")  # and its converter prints its options to fd 2
        return tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=debug_data)


def layer_statistics(debugger, output_names=()) -> list[dict]:
    """Run the debugger; one row per quantized layer, in graph order. ``output_names``: the
    model's outputs' layer names, for the rows the converter names only 'Identity'."""
    with warnings.catch_warnings(), native_stderr_silenced():
        warnings.simplefilter("ignore")
        debugger.run()
    dump = io.StringIO()
    debugger.layer_statistics_dump(dump)
    dump.seek(0)
    rows = []
    for r in csv.DictReader(dump):
        scale = float(r["scale"]) if r.get("scale") else float("nan")
        rmse = float(np.sqrt(float(r["mean_squared_error"])))
        rows.append({"layer": short_name(r["tensor_name"], output_names), "op": r["op_name"],
                     "tensor": r["tensor_name"], "scale": scale, "rmse_per_scale": rmse / scale if scale > 0 else float("nan"),
                     "max_abs_error": float(r["max_abs_error"]), "rmse": rmse})
    return unique_layer_names(rows)


def unique_layer_names(rows: list[dict]) -> list[dict]:
    """One name per row, so --keep-float can reach each: a Keras layer that became several
    ops (MobileNetV3's Rescaling: MUL and ADD) is named per op, 'rescaling/mul', and a name
    still repeated is numbered, 'rescaling/mul#2'."""
    per_layer = Counter(r["layer"] for r in rows)
    for r in rows:
        if per_layer[r["layer"]] > 1:
            r["layer"] = f"{r['layer']}/{r['op'].lower()}"
    seen = Counter()
    for r in rows:
        seen[r["layer"]] += 1
        if seen[r["layer"]] > 1:
            r["layer"] = f"{r['layer']}#{seen[r['layer']]}"
    return rows


def layer_errors(model, representative, debug_samples: int = 8) -> list[dict]:
    """One row per quantized layer, in graph order: op, tensor, scale, rmse/scale, max abs error."""
    return layer_statistics(make_debugger(model, representative, debug_samples), output_layer_names(model))


def output_layer_names(model) -> list[str]:
    """The Keras layers that make the model's outputs, in order (none for a model without them)."""
    return [str(n) for n in getattr(model, "output_names", None) or []]


def short_name(tensor: str, output_names=()) -> str:
    """'model/block3_0_relu/Relu;model/block3_0/Conv2D' -> 'block3_0' (the Keras layer
    that produced it: the last fused name, minus the model prefix). The converter names a
    model's output tensors 'Identity', 'Identity_1', ...: those are the output layers'."""
    output = re.fullmatch(r"Identity(?:_(\d+))?", tensor)
    k = int(output.group(1) or 0) if output else len(output_names)
    if k < len(output_names):
        return output_names[k]
    parts = tensor.split(";")[-1].split("/")
    return parts[1] if len(parts) > 2 else parts[-1]

"""Selective float fallback: keep the int8 layers that hurt most in float, one at a
time (worst RMSE-per-step first), until the model passes its accuracy gate.
Answers "int8 fell off a cliff": it names the layers and what keeping them costs."""
import warnings
from typing import Callable

from edgepipe.base.errors import EdgePipeError
from edgepipe.base.quiet import native_stderr_silenced
from edgepipe.quantize.debug import layer_statistics, make_debugger, output_layer_names


def selective_fallback(model, representative, gate: Callable[[bytes], tuple[bool, float]], *,
                       max_float_layers: int = 8, keep: list[str] = (), debug_samples: int = 8,
                       int8_io: bool = True) -> dict:
    """``gate(tflite_bytes) -> (passes, value)``. ``keep``: layer names (see
    ``quantize.debug.short_name``) to keep in float from the start.

    Returns ``{"model": bytes, "passed", "float_layers", "steps": [...], "layers": [...]}``.
    """
    from edgepipe.base.backend import tf
    debugger = make_debugger(model, representative, debug_samples)
    layers = layer_statistics(debugger, output_layer_names(model))
    by_name = {r["layer"]: r for r in layers}
    unknown = [k for k in keep if k not in by_name]
    if unknown:
        raise EdgePipeError(f"no quantized layer named {', '.join(unknown)}; layers: {', '.join(by_name)}")
    ranked = [r for r in sorted(layers, key=lambda r: -r["rmse_per_scale"]) if r["layer"] not in keep]
    if not ranked:  # the converter's debugger cannot build a model with no quantized layer
        raise EdgePipeError("--keep-float names every quantized layer, so nothing would be quantized; "
                            "for an all-float file use edgepipe convert --format tflite (or --mode float16)")
    kept = [by_name[k] for k in keep]
    steps = []
    while True:
        # setting the options quantizes again: the converter prints them to fd 2, and the
        # debugger opens the deprecated tf.lite.Interpreter
        with warnings.catch_warnings(), native_stderr_silenced():
            warnings.simplefilter("ignore")
            debugger.options = tf.lite.experimental.QuantizationDebugOptions(
                denylisted_nodes=[r["tensor"] for r in kept], fully_quantize=int8_io)
            blob = debugger.get_nondebug_quantized_model()
        passed, value = gate(blob)
        steps.append({"float_layers": [r["layer"] for r in kept], "value": value, "passed": passed,
                      "size_bytes": len(blob)})
        # never the last int8 layer too: a file with none is no quantized file (and the debugger cannot build it)
        if passed or len(kept) >= max_float_layers + len(keep) or len(ranked) <= 1:
            return {"model": blob, "passed": passed, "float_layers": steps[-1]["float_layers"], "steps": steps,
                    "layers": layers}
        kept.append(ranked.pop(0))

"""Core ML weight compression with ``coremltools.optimize.coreml``, on the fp16
ML program, on any OS (no calibration data: weights only). Each compressed weight
becomes a ``constexpr_*`` op that Core ML (and ``evaluate.milref``) expands at load:

- ``linear8``: 8-bit symmetric linear quantization per output channel;
- ``palette<N>``: N-bit k-means palettes, one per tensor (6 and 4 in the table);
- ``sparse<P>``: the P% smallest-magnitude weights of each tensor zeroed and
  stored as a bit mask plus the rest (lossless on a model pruned that far).

Tensors under ``MIN_WEIGHT_ELEMENTS`` values stay fp16, as TFLite's converter
leaves tensors under 1024 values in float for dynamic-range quantization.
"""
import re

from edgepipe.base.errors import EdgePipeError

MIN_WEIGHT_ELEMENTS = 1024


def compress(mlmodel, precision: str):
    """``mlmodel`` (an mlprogram) with its weights compressed as ``precision`` says."""
    import coremltools.optimize.coreml as cto
    op_config = _op_config(cto, precision)
    config = cto.OptimizationConfig(global_config=op_config)
    if isinstance(op_config, cto.OpLinearQuantizerConfig):
        return cto.linear_quantize_weights(mlmodel, config)
    if isinstance(op_config, cto.OpPalettizerConfig):
        return cto.palettize_weights(mlmodel, config)
    return cto.prune_weights(mlmodel, config)


def _op_config(cto, precision: str):
    kind, digits = (re.fullmatch(r"([a-z]+)(\d+)", precision) or re.match("()()", "")).groups()
    if kind == "linear" and digits == "8":
        return cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8", granularity="per_channel",
                                           weight_threshold=MIN_WEIGHT_ELEMENTS)
    if kind == "palette" and digits.isdigit() and 1 <= int(digits) <= 8:
        return cto.OpPalettizerConfig(mode="kmeans", nbits=int(digits), granularity="per_tensor",
                                      weight_threshold=MIN_WEIGHT_ELEMENTS)
    if kind == "sparse" and digits.isdigit() and 0 < int(digits) < 100:
        return cto.OpMagnitudePrunerConfig(target_sparsity=int(digits) / 100, weight_threshold=MIN_WEIGHT_ELEMENTS)
    raise EdgePipeError(f"unknown Core ML weight compression '{precision}'")

"""ONNX float16 and int8 (QDQ) variants, made from the float32 graph tf2onnx wrote.

- float16: ONNX Runtime's converter (``onnxruntime.transformers.float16``) stores
  weights and computes activations in fp16, and keeps float32 input and output
  (``keep_io_types``), so an app feeds the tensors the float model takes.
- int8: ``onnxruntime.quantization.quantize_static`` in QDQ format
  (QuantizeLinear/DequantizeLinear around each quantized op, which runtimes fuse
  into int8 kernels): int8 activations, int8 weights per output channel, MinMax
  ranges calibrated on the same representative images as the TFLite int8 export.
  Input and output stay float32.
"""
import logging
import tempfile
from pathlib import Path

from edgepipe.base.errors import EdgePipeError
from edgepipe.base.values import in_dtype
from edgepipe.quantize.ptq import check_representative


def reduce_precision(proto, precision: str, representative=None):
    """``proto`` (an ``onnx.ModelProto`` in float32) as ``precision``."""
    if precision == "float16":
        return to_float16(proto)
    if precision == "int8":
        return to_int8_qdq(proto, representative)
    raise EdgePipeError(f"unknown ONNX precision '{precision}'")


def to_float16(proto):
    from onnxruntime.transformers.float16 import convert_float_to_float16
    logging.getLogger("onnxruntime.transformers.float16").setLevel(logging.ERROR)
    return convert_float_to_float16(proto, keep_io_types=True)


def _input_shape(proto) -> tuple:
    inputs = [i for i in proto.graph.input if i.name not in {t.name for t in proto.graph.initializer}]
    if len(inputs) != 1:
        raise EdgePipeError(f"int8 calibration feeds one input; the model has {len(inputs)} "
                            f"({', '.join(i.name for i in inputs)})")
    dims = inputs[0].type.tensor_type.shape.dim
    return inputs[0].name, tuple(d.dim_value if d.dim_value > 0 else None for d in dims)


def _as_input_type(proto, x):
    """Calibration values in the input's own type: a model that takes uint8 pixels is fed
    them rounded, as an app feeds it (ORT refuses floats on an integer input)."""
    from onnx.helper import tensor_dtype_to_np_dtype
    name, _ = _input_shape(proto)
    elem = next(i for i in proto.graph.input if i.name == name).type.tensor_type.elem_type
    return in_dtype(x, tensor_dtype_to_np_dtype(elem))


def to_int8_qdq(proto, representative):
    """Static int8 QDQ quantization, calibrated one sample at a time on ``representative``."""
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    if representative is None:
        raise EdgePipeError("int8 ONNX needs representative data for calibration")
    name, shape = _input_shape(proto)
    data = _as_input_type(proto, check_representative(representative, (1, *shape[1:])))

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._items = iter(data)

        def get_next(self):
            x = next(self._items, None)
            return None if x is None else {name: x[None]}

    logging.getLogger("root").setLevel(logging.ERROR)  # ORT's quantizer logs advice through the root logger
    with tempfile.TemporaryDirectory(prefix=".edgepipe-tmp-onnx-") as tmp:
        src, dst = Path(tmp) / "float.onnx", Path(tmp) / "int8.onnx"
        onnx.save(proto, str(src))
        quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, per_channel=True,
                        calibrate_method=CalibrationMethod.MinMax)
        return onnx.load(str(dst))

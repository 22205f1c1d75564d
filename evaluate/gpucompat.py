"""Which ops of a TFLite model the GPU delegate cannot take, said before anyone
finds out on a phone.

TFLite's own tool is ``tf.lite.experimental.Analyzer.analyze(gpu_compatibility=True)``:
it prints "GPU COMPATIBILITY WARNING: ..." under each op the delegate refuses, by
the rules of ``tensorflow/lite/tools/versioning/gpu_compatibility.cc``. In the
TensorFlow 2.21 wheel that check passes every op (a FlexCosh, ARG_MAX and TOPK_V2
all come back "compatible"), so edgepipe also applies the main rules of that file
itself (``GPU_OPS`` and ``_rule`` below) and reports an op when either says so. It
is the delegate's static check, not a run on a GPU: a phone run
(``edgepipe bench --device android --delegate gpu``) stays the final word.
"""
import contextlib
import io
import re
from collections import Counter

# the builtin ops gpu_compatibility.cc accepts (its switch), some under the conditions in _rule
GPU_OPS = frozenset("""ABS ADD ADD_N AVERAGE_POOL_2D BATCH_MATMUL CAST CONCATENATION CONV_2D COS CUMSUM DENSIFY
DEPTHWISE_CONV_2D DEPTH_TO_SPACE DEQUANTIZE DIV ELU EQUAL EXP FLOOR FLOOR_DIV FLOOR_MOD FULLY_CONNECTED GATHER
GELU GREATER GREATER_EQUAL HARD_SWISH LEAKY_RELU LESS LESS_EQUAL LOG LOGICAL_AND LOGISTIC LSTM MAXIMUM MAX_POOL_2D
MEAN MINIMUM MIRROR_PAD MUL NEG NOT_EQUAL ONE_HOT PACK PAD PADV2 POW PRELU QUANTIZE REDUCE_MAX REDUCE_MIN
REDUCE_PROD RELU RELU6 RELU_N1_TO_1 RESHAPE RESIZE_BILINEAR RESIZE_NEAREST_NEIGHBOR RSQRT SELECT SELECT_V2 SIGN
SIN SLICE SOFTMAX SPACE_TO_DEPTH SPLIT SPLIT_V SQRT SQUARE SQUARED_DIFFERENCE STRIDED_SLICE SUB SUM TANH TILE
TRANSPOSE TRANSPOSE_CONV""".split())
GPU_CUSTOM_OPS = frozenset({"Convolution2DTransposeBias", "MaxPoolingWithArgmax2D", "MaxUnpooling2D", "Resampler"})
# tensor types the delegate computes in (int8/uint8 only as quantized values, which it dequantizes)
GPU_TYPES = frozenset({"FLOAT32", "FLOAT16", "INT8", "UINT8", "INT32", "BOOL"})
TOOL = "tf.lite.experimental.Analyzer + the op rules of TFLite's gpu_compatibility.cc"


def gpu_report(path) -> dict:
    """``{"tool", "ops", "compatible", "unsupported": [{"op", "count", "why"}], "analyzer_flagged"}``."""
    data = open(path, "rb").read()
    ours = _static_check(data)
    theirs = analyzer_warnings(data)
    flagged = {**ours, **theirs}  # op index -> (op name, why)
    counts = Counter(flagged.values())
    return {"tool": TOOL, "ops": _op_count(data), "compatible": not flagged,
            "unsupported": [{"op": op, "count": n, "why": why} for (op, why), n in sorted(counts.items())],
            "analyzer_flagged": len(theirs)}


def describe(report: dict) -> str:
    """One line for verify's and bench's output."""
    if report["compatible"]:
        return f"GPU delegate: all {report['ops']} ops supported (static check)"
    bad = sum(u["count"] for u in report["unsupported"])
    ops = "; ".join(f"{u['op']} x{u['count']} ({u['why']})" for u in report["unsupported"])
    return (f"GPU delegate cannot take {bad} of {report['ops']} ops: {ops}; they fall back to the CPU "
            f"and split the graph")


def analyzer_warnings(data: bytes) -> dict:
    """{op index: (op name, message)} for each op TFLite's Analyzer prints a GPU warning under."""
    from edgepipe.base.backend import tf
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        tf.lite.experimental.Analyzer.analyze(model_content=data, gpu_compatibility=True)
    found, last = {}, None
    for line in out.getvalue().splitlines():
        op = re.match(r"\s*Op#(\d+) (\S+?)\(", line)
        if op:
            last = (int(op[1]), op[2])
        elif line.startswith("GPU COMPATIBILITY WARNING:") and last and "Subgraph#" not in line:
            found[last[0]] = (last[1], line.split(":", 1)[1].strip())
    return found


def _model(data: bytes):
    from edgepipe.base.backend import tflite_schema
    _, flatbuffer_utils = tflite_schema()
    return flatbuffer_utils.read_model_from_bytearray(bytearray(data))


def _op_count(data: bytes) -> int:
    return len(_model(data).subgraphs[0].operators)


def _names():
    from edgepipe.base.backend import tflite_schema
    schema, _ = tflite_schema()
    ops = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    types = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    return ops, types


def _static_check(data: bytes) -> dict:
    """{op index: (op name, why)} for the main subgraph's ops the rules refuse."""
    model = _model(data)
    op_names, type_names = _names()
    graph = model.subgraphs[0]
    found = {}
    for i, op in enumerate(graph.operators):
        code = model.operatorCodes[op.opcodeIndex]
        name = op_names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "?")
        custom = name == "CUSTOM"
        if custom:
            name = (code.customCode or b"?").decode()
        why = _rule(name, custom, op, graph, model, type_names)
        if why:
            found[i] = (name, why)
    return found


def _rule(name: str, custom: bool, op, graph, model, type_names) -> str | None:
    """Why the delegate refuses this op, or None."""
    if custom:
        return None if name in GPU_CUSTOM_OPS else f"Not supported custom op {name}"
    if name not in GPU_OPS:
        return f"Not supported op {name}"
    tensors = [graph.tensors[t] for t in op.inputs if t >= 0]
    runtime = [t for t in tensors if model.buffers[t.buffer].data is None or not len(model.buffers[t.buffer].data)]
    types = [type_names.get(t.type, "?") for t in [*runtime, *(graph.tensors[t] for t in op.outputs)]]
    bad = sorted(set(types) - GPU_TYPES)
    if bad and name not in ("CAST", "DEQUANTIZE"):
        return f"{'/'.join(bad)} tensors"
    if name == "DEQUANTIZE" and types and types[0] == "INT16":
        return "Unsupported dequantization type (int16)"
    if name == "CAST" and not (set(types) <= {"FLOAT32", "INT32"} or set(types) <= {"FLOAT32", "FLOAT16", "BOOL"}):
        return f"Not supported Cast case: {' -> '.join(types)}"
    if name in ("SLICE", "STRIDED_SLICE") and tensors and len(tensors[0].shape) not in (3, 4):
        return f"{name} supports 3 or 4 dimensional tensors only"
    options = op.builtinOptions
    if name == "STRIDED_SLICE" and options and (options.ellipsisMask or options.newAxisMask or options.shrinkAxisMask):
        return "Slice does not support ellipsis, new-axis or shrink-axis masks"
    if name == "ADD_N" and len(tensors) != 2:
        return "ADD_N only supports 2 inputs"
    if name == "SOFTMAX" and options and options.beta != 1:
        return "Softmax.beta != 1 is not supported"
    return None

"""What precision a TFLite export really computes in, read from its tensors.

The converter's mode is not evidence: a full-int8 model with float I/O has
QUANTIZE/DEQUANTIZE ops like a float16 one, and dynamic-range quantization
leaves small weights (under 1024 values) in float32, so a "dynamic" export of a
small net may be plain float32. The graph itself says what runs:

- activations: what the compute ops write (QUANTIZE/DEQUANTIZE at the I/O
  boundary and on fp16 weights are bookkeeping, not computation);
- weights: constant tensors the ops read (not written by any op, not an input).

An 8/16-bit integer tensor counts as quantized only with a scale in its
quantization parameters.

Rule: int16 activations -> int16x8; int8 activations -> int8 (whatever the I/O
dtype); float activations with int8 weights -> dynamic; float16 weights ->
float16; otherwise float32.
"""
from collections import Counter

import numpy as np

BOUNDARY_OPS = ("QUANTIZE", "DEQUANTIZE")
INT8 = ("int8", "uint8")


def tflite_quantization(path) -> dict:
    """``{"precision", "io", "activations", "weights"}``: the detected precision,
    the input and output dtypes, and dtype counts of activations and weights."""
    tensors, ops, io = _graph(path)
    written = {int(t) for op in ops for t in op["outputs"]}
    read = {int(t) for op in ops for t in op["inputs"] if t >= 0}
    inputs = {d["index"] for d in io[0]}
    activations = Counter(tensors.get(int(t), "?") for op in ops if op["op_name"] not in BOUNDARY_OPS
                          for t in op["outputs"])
    weights = Counter(tensors.get(t, "?") for t in sorted(read - written - inputs))
    return {"precision": precision_of(activations, weights),
            "io": {"input": tensors[io[0][0]["index"]], "output": tensors[io[1][0]["index"]]},
            "activations": dict(activations), "weights": dict(weights)}


def precision_of(activations, weights) -> str:
    """The rule above, on dtype names of activations and weights."""
    if "int16" in activations:
        return "int16x8"
    if any(d in activations for d in INT8):
        return "int8"
    if any(d in weights for d in INT8):
        return "dynamic"
    if "float16" in weights:
        return "float16"
    return "float32"


def _kind(detail) -> str:
    """A tensor's dtype name; a small integer tensor without a scale is no quantized
    value (an index, a CAST result), so it is named apart and never counts as int8."""
    name = np.dtype(detail["dtype"]).name
    if name in (*INT8, "int16") and not len(detail["quantization_parameters"]["scales"]):
        return f"{name}-unquantized"
    return name


def _graph(path):
    """Tensor dtype names by index, ops, and (input, output) details of the main
    subgraph, from an interpreter without delegates: XNNPACK would fold the ops
    into DELEGATE nodes and hide them."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    interp = Interpreter(model_path=str(path),
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    tensors = {d["index"]: _kind(d) for d in interp.get_tensor_details()}
    return tensors, interp._get_ops_details(), (interp.get_input_details(), interp.get_output_details())


def onnx_precision(path) -> str:
    """What an ONNX file computes in, read from its graph: int8 where QDQ or QLinear
    ops quantize activations, float16 where its weights are fp16, else float32."""
    import onnx
    model = onnx.load(str(path), load_external_data=False)
    if _int8_computes(model.graph):
        return "int8"
    fp16 = onnx.TensorProto.FLOAT16
    weights = list(model.graph.initializer) + [a.t for n in model.graph.node if n.op_type == "Constant"
                                               for a in n.attribute if a.name == "value"]
    io = [v.type.tensor_type.elem_type for v in (*model.graph.input, *model.graph.output)]
    if any(t.data_type == fp16 for t in weights) or fp16 in io:  # fp16 weights, as initializers or Constant nodes
        return "float16"
    return "float32"


FLOAT_COMPUTE = ("Conv", "ConvTranspose", "MatMul", "Gemm")
# integer kernels: the standard ops, and ONNX Runtime's fused com.microsoft ones (an optimised
# dynamic-int8 file has MatMulIntegerToFloat where MatMulInteger was)
INTEGER_COMPUTE = ("ConvInteger", "MatMulInteger", "MatMulIntegerToFloat", "DynamicQuantizeMatMul", "QGemm",
                   "QAttention", "DynamicQuantizeLSTM")


def _integer_kernel(node) -> bool:
    return node.op_type in INTEGER_COMPUTE or node.op_type.startswith("QLinear")  # QLinearConv, QLinearMatMul...


def _int8_computes(graph) -> bool:
    """Whether most of the convolutions and matmuls run quantized: integer ops, or float
    ones whose weights come out of a DequantizeLinear (QDQ). One QuantizeLinear on the
    input of a float graph is no int8 model, and would open int8's looser gate."""
    made_by = {out: n for n in graph.node for out in n.output}
    read_by = {}
    for n in graph.node:
        for name in n.input:
            read_by.setdefault(name, []).append(n)
    compute = [n for n in graph.node if n.op_type in FLOAT_COMPUTE or _integer_kernel(n)]
    if not compute:  # no layer with weights: quantize ops themselves decide
        return any(n.op_type in ("QuantizeLinear", "DynamicQuantizeLinear") for n in graph.node)
    quantized = [n for n in compute if _integer_kernel(n)
                 or (len(n.input) > 1 and _dequantized(n.input[1], made_by))
                 or (_dequantized(n.input[0], made_by) and _requantized(n.output[0], read_by))]
    return 2 * len(quantized) >= len(compute)


MOVES = ("Transpose", "Reshape", "Identity", "Squeeze", "Unsqueeze", "Flatten")


def _dequantized(name: str, made_by: dict) -> bool:
    """Whether tensor ``name`` comes out of a DequantizeLinear, through ops that only move values."""
    node = made_by.get(name)
    while node is not None and node.op_type in MOVES:
        node = made_by.get(node.input[0])
    return node is not None and node.op_type == "DequantizeLinear"


def _requantized(name: str, read_by: dict, depth: int = 4) -> bool:
    """Whether tensor ``name`` reaches a QuantizeLinear through moves, a bias add or a clamp:
    an int8 activation in and out, with the weights already rounded (tf2onnx of a QAT model)."""
    readers = read_by.get(name, [])
    if any(n.op_type == "QuantizeLinear" for n in readers):
        return True
    return depth > 0 and any(n.op_type in (*MOVES, "Add", "Relu", "Clip", "BatchNormalization")
                             and _requantized(n.output[0], read_by, depth - 1) for n in readers)

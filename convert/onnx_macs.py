"""Mult-adds counted on an ONNX graph: the work of a file with no model card (a
PyTorch export, tf2onnx's output of someone's model), so bench can state GFLOP/s.

The definitions are ``tflite_macs``'s (batch 1, per output element): conv =
k_h*k_w*c_in/groups (depthwise included), transposed conv = every input element
times k_h*k_w*c_out/groups, MatMul and Gemm = the inner dimension. Every other op
counts 0. Shapes come from ONNX shape inference with free batch dimensions set to
1; a multiply-accumulate op whose shapes stay unknown (a free image size) makes
the count unknown (None), never a guess.
"""
import numpy as np

MAC_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")


def count_macs(model) -> int | None:
    """Mult-adds of one inference of ``model`` (an onnx.ModelProto), or None when a
    multiply-accumulate op's shapes are not known."""
    import onnx
    model = _batch_of_one(model)
    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception:  # noqa: BLE001  onnx's checker and inference raise many types
        return None
    shapes = _known_shapes(model.graph)
    total = 0
    for node in _all_nodes(model.graph):
        if node.op_type not in MAC_OPS:
            continue
        macs = _node_macs(node, shapes)
        if macs is None:
            return None
        total += macs
    return int(total)


def _node_macs(node, shapes) -> int | None:
    ins = [shapes.get(name) for name in node.input]
    out = shapes.get(node.output[0]) if node.output else None
    if node.op_type == "Conv":  # weight [c_out, c_in / groups, k...]
        return None if out is None or ins[1] is None else _prod(out) * _prod(ins[1][1:])
    if node.op_type == "ConvTranspose":  # weight [c_in, c_out / groups, k...]
        return None if ins[0] is None or ins[1] is None else _prod(ins[0]) * _prod(ins[1][1:])
    if node.op_type == "MatMul":  # the inner dimension at every output element
        return None if out is None or not ins[0] else _prod(out) * ins[0][-1]
    a = ins[0]  # Gemm: A [m, k] or, transposed, [k, m]
    if out is None or not a or len(a) != 2:
        return None
    trans_a = next((attr.i for attr in node.attribute if attr.name == "transA"), 0)
    return _prod(out) * a[0 if trans_a else 1]


def _batch_of_one(model):
    """A copy of ``model`` with each graph input's free first dimension set to 1."""
    model_copy = type(model)()
    model_copy.CopyFrom(model)
    initializers = {t.name for t in model_copy.graph.initializer}
    for value in model_copy.graph.input:
        dims = value.type.tensor_type.shape.dim
        if value.name not in initializers and len(dims) > 1 and not dims[0].HasField("dim_value"):
            dims[0].dim_value = 1
    return model_copy


def _known_shapes(graph) -> dict:
    """{tensor name: [int, ...]} for every tensor whose dimensions are all known."""
    shapes = {t.name: list(t.dims) for t in graph.initializer}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        tensor = value.type.tensor_type
        if tensor.HasField("shape") and all(d.HasField("dim_value") for d in tensor.shape.dim):
            shapes.setdefault(value.name, [int(d.dim_value) for d in tensor.shape.dim])
    for node in _all_nodes(graph):  # weights held in Constant nodes (PyTorch's exporter writes some)
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    shapes.setdefault(node.output[0], list(attr.t.dims))
    return shapes


def _all_nodes(graph):
    """The nodes of ``graph`` (a subgraph's, inside If and Loop, are counted once: their trip
    count is data)."""
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.g is not None and attr.g.node:
                yield from _all_nodes(attr.g)


def _prod(shape) -> int:
    return int(np.prod([max(int(d), 1) for d in shape])) if shape else 1

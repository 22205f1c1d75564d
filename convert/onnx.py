"""ONNX writer via tf2onnx (opset 17): inputs named like the model's inputs, at
the export's shapes (batch 1, or a free batch named ``batch``). A SavedModel's
serving signature is converted from its concrete function, outputs named by
the signature's keys. The float16 and int8 (QDQ) variants are made from the float
graph (``convert.onnx_variants``)."""
import json
from pathlib import Path

from edgepipe.base import atomic
from edgepipe.base.backend import tf
from edgepipe.base.errors import EdgePipeError
from edgepipe.base.quiet import converter_chatter_silenced
from edgepipe.convert import graphio

OPSET = 17


def to_onnx_bytes(model, meta: dict | None = None, ports: list | None = None, precision: str = "float32",
                  representative=None) -> bytes:
    """``precision``: float32, float16 or int8 (QDQ, calibrated on ``representative``)."""
    import logging
    import tf2onnx
    logging.getLogger("tf2onnx").setLevel(logging.CRITICAL)  # its op complaints: _check_ops says it in one line

    ports = ports or graphio.export_inputs(model)
    specs = [p.spec() for p in ports]
    with converter_chatter_silenced():
        if graphio.is_serving(model):
            proto = _serving_to_onnx(model, ports)
        else:
            proto, _ = tf2onnx.convert.from_keras(model, input_signature=specs, opset=OPSET)
    _check_ops(proto)
    _name_free_batch(proto)
    if precision != "float32":
        from edgepipe.convert.onnx_variants import reduce_precision
        proto = reduce_precision(proto, precision, representative)
    if meta:
        proto.doc_string = meta.get("description", "")
        proto.model_version = int(meta.get("version_int", 1))
        for key, value in {"model_card": json.dumps(meta), "author": meta.get("author", ""),
                           "license": meta.get("license", ""), "version": meta.get("version", "")}.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
    return proto.SerializeToString()


def _serving_to_onnx(model, ports):
    """tf2onnx's ``from_function``, except that only the signature's own inputs become ONNX
    inputs: the constants a Keras 3 export captures (an adapted Normalization's mean and
    variance, preprocess_input's channel means) are frozen in, not left as inputs to feed."""
    import tf2onnx
    from tf2onnx import tf_loader
    function = graphio.function(model, ports).get_concrete_function(*[p.spec() for p in ports])
    inputs = [t.name for t in function.inputs[:len(ports)]]  # the arguments; captured tensors follow them
    outputs = [t.name for t in function.outputs if t.dtype != tf.dtypes.resource]
    renames = tf2onnx.convert.tensor_names_from_structed(function, inputs, outputs)
    with tf.device("/cpu:0"):
        graph_def = tf_loader.from_function(function, inputs, outputs)
    proto, _ = tf2onnx.convert.from_graph_def(graph_def, name=function.name, input_names=inputs,
                                              output_names=outputs, opset=OPSET, tensors_to_rename=renames)
    return proto


def _check_ops(proto):
    """tf2onnx keeps a TensorFlow op it cannot map as a node of that name, and returns a
    model no runtime loads: refuse it here rather than write it."""
    import onnx
    unknown = sorted({n.op_type for n in _nodes(proto.graph)
                      if n.domain in ("", "ai.onnx", "ai.onnx.ml") and not onnx.defs.has(n.op_type, n.domain)})
    if unknown:
        raise EdgePipeError(f"ONNX has no operator for TensorFlow's {', '.join(unknown)} (tf2onnx cannot convert "
                            f"it; the file would not load)")


def _nodes(graph):
    """Every node, those of If/Loop bodies included."""
    for node in graph.node:
        yield node
        for attr in node.attribute:
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                yield from _nodes(sub)


def _name_free_batch(proto):
    """tf2onnx names a free batch ``unk__12``; an app reads ``batch`` more easily."""
    for value in [*proto.graph.input, *proto.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if dims and dims[0].dim_param:
            dims[0].dim_param = "batch"


def write(model, path: Path, meta: dict | None = None, ports: list | None = None, precision: str = "float32",
          representative=None) -> Path:
    return atomic.write_bytes(path, to_onnx_bytes(model, meta, ports, precision, representative))

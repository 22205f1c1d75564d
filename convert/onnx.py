"""ONNX writer via tf2onnx (opset 17), batch-1 static input named like the Keras input."""
import json
from pathlib import Path

from edgepipe.base.backend import tf
from edgepipe.base import atomic

OPSET = 17


def to_onnx_bytes(model, meta: dict | None = None) -> bytes:
    import tf2onnx

    spec = [tf.TensorSpec((1, *model.input_shape[1:]), tf.float32, name=model.input_names[0])]
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=OPSET)
    if meta:
        proto.doc_string = meta.get("description", "")
        proto.model_version = int(meta.get("version_int", 1))
        for key, value in {"model_card": json.dumps(meta), "author": meta.get("author", ""),
                           "license": meta.get("license", ""), "version": meta.get("version", "")}.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
    return proto.SerializeToString()


def write(model, path: Path, meta: dict | None = None) -> Path:
    return atomic.write_bytes(path, to_onnx_bytes(model, meta))

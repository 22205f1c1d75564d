"""ONNX writer via tf2onnx (opset 17), batch-1 static input named like the Keras input."""
from pathlib import Path

from mobile_models.backend import tf
from pipeline import atomic

OPSET = 17


def to_onnx_bytes(model) -> bytes:
    import tf2onnx

    spec = [tf.TensorSpec((1, *model.input_shape[1:]), tf.float32, name=model.input_names[0])]
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=OPSET)
    return proto.SerializeToString()


def write(model, path: Path) -> Path:
    return atomic.write_bytes(path, to_onnx_bytes(model))

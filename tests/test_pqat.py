"""Pruning-preserving QAT: fine-tuning under fake quantization keeps a pruned
model's zeros (plain QAT regrows them), and the result converts to int8 with
the zeros still in the int8 kernels."""
import numpy as np
import pytest

from edgepipe import mobile_models
from edgepipe.quantize import prune
from edgepipe.quantize.qat import pqat_model, qat_model
from tests.test_zoo_export import SMALL

TARGET = 0.5


def _kernel_sparsity(qat):
    """Zeros in the Conv2D/Dense kernels a QuantizeWrapper holds (depthwise kernels are not pruned)."""
    kernels = [w.numpy() for layer in qat.layers for w in layer.weights if w.name.endswith("/kernel:0")]
    return sum(int(np.sum(k == 0)) for k in kernels) / sum(k.size for k in kernels)


def _int8_kernel_sparsity(blob):
    """Zeros in the int8 conv (O, kh, kw, I; O > 1, unlike depthwise's 1, kh, kw, C) and FC kernels."""
    from ai_edge_litert.interpreter import Interpreter
    interp = Interpreter(model_content=blob)
    interp.allocate_tensors()
    kernels = []
    for t in interp.get_tensor_details():
        shape = tuple(t["shape"])
        if np.dtype(t["dtype"]) == np.int8 and (len(shape) == 2 or (len(shape) == 4 and shape[0] > 1)):
            try:
                kernels.append(interp.get_tensor(t["index"]))
            except ValueError:  # activations have no data outside invoke()
                continue
    return sum(int(np.sum(k == 0)) for k in kernels) / sum(k.size for k in kernels)


@pytest.fixture(scope="module")
def digits():
    from edgepipe.train.digits import digits_arrays
    x, y = digits_arrays(32, "train")
    return x[:256], y[:256]


@pytest.fixture(scope="module")
def pruned(digits):
    from edgepipe.base.backend import keras
    model = mobile_models.build("tiny_cnn", **SMALL["tiny_cnn"])
    wrapped = prune.wrap(model, TARGET, steps=10, kind="constant")
    prune.fine_tune(wrapped, *digits, keras.losses.SparseCategoricalCrossentropy(from_logits=True), steps=10)
    stripped = prune.strip(wrapped)
    assert abs(prune.overall_sparsity(prune.sparsity_table(stripped)) - TARGET) <= 0.01
    return stripped


def _train(q, digits, steps=4):
    from edgepipe.base.backend import keras
    q.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = digits
    q.fit(x[:32 * steps], y[:32 * steps], batch_size=32, epochs=1, verbose=0)
    return q


def test_pqat_keeps_the_sparsity_and_converts_to_int8(pruned, digits):
    from edgepipe.convert import tflite
    q = _train(pqat_model(pruned), digits)
    assert _kernel_sparsity(q) >= TARGET - 0.01
    blob = tflite.to_tflite_bytes(q, "int8", digits[0][:8])
    assert _int8_kernel_sparsity(blob) >= TARGET - 0.01


def test_plain_qat_regrows_the_zeros(pruned, digits):
    """The control: without the mask, a few Adam steps make nearly every weight nonzero."""
    assert _kernel_sparsity(_train(qat_model(pruned), digits)) < 0.05


def test_pqat_refuses_an_unstripped_model():
    from edgepipe.base.errors import EdgePipeError
    wrapped = prune.wrap(mobile_models.build("tiny_cnn", **SMALL["tiny_cnn"]), TARGET, steps=10)
    with pytest.raises(EdgePipeError, match="strip the pruning wrappers"):
        pqat_model(wrapped)


def test_a_qat_hed_exports_keep_the_output_names(tmp_path):
    """tfmot names the wrapped outputs quant_edges and quant_page; the int8 export must
    keep edges and page, which scan and the app look up."""
    from edgepipe.convert.graphio import output_names
    from edgepipe.convert.tflite import to_tflite_bytes
    from edgepipe.evaluate.runners import open_runner
    from edgepipe.mobile_models.hed import inference_model
    model = inference_model(mobile_models.build("hed_mobilenet_v2", input_shape=(32, 32, 3), region=1))
    qat = qat_model(model)
    assert qat.output_names == ["quant_edges", "quant_page"] and output_names(qat) == ["edges", "page"]
    images = np.random.default_rng(0).random((4, 32, 32, 3), np.float32)
    (tmp_path / "q.tflite").write_bytes(to_tflite_bytes(qat, "int8", images))
    assert sorted(o.name for o in open_runner(tmp_path / "q.tflite").outputs) == ["edges", "page"]

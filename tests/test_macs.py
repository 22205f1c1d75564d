"""Mult-adds of models edgepipe did not build: counted on the TFLite graph (any file,
Keras 3 included) and, for tf_keras, through nested models (a transfer-learning
tutorial's base network), agreeing with the paper-style profiler where both apply."""
import json

import numpy as np
import pytest

from edgepipe import mobile_models
from edgepipe.base.backend import keras
from edgepipe.cli.main import main
from edgepipe.convert.tflite import to_tflite_bytes
from edgepipe.convert.tflite_macs import count_macs
from edgepipe.mobile_models.profile import profile_model


@pytest.mark.parametrize("name, opts", [
    ("mobilenet_v2", {"input_shape": (64, 64, 3), "classes": 5, "alpha": 0.35}),
    ("shufflenet_v1", {"input_shape": (64, 64, 3), "classes": 5, "groups": 3, "scale": 0.5}),
])
def test_the_tflite_graph_has_the_profilers_mult_adds(name, opts):
    """Grouped convs, depthwise convs and the dense head, after BN folding and group merging."""
    model = mobile_models.build(name, **opts)
    assert count_macs(to_tflite_bytes(model)) == profile_model(model)["macs"]


def _tutorial_transfer_model():
    """The transfer-learning tutorial's shape: a base network called as one layer, a new head."""
    base = mobile_models.build("mobilenet_v2", input_shape=(64, 64, 3), classes=5, alpha=0.35)
    base = keras.Model(base.inputs, base.layers[-3].output, name="base")  # without its head
    inputs = keras.Input((64, 64, 3))
    x = keras.layers.GlobalAveragePooling2D()(base(inputs))
    return keras.Model(inputs, keras.layers.Dense(2)(x)), base


def test_a_nested_base_network_is_counted_layer_by_layer():
    model, base = _tutorial_transfer_model()
    macs = profile_model(model)["macs"]
    assert macs == profile_model(base)["macs"] + base.output_shape[-1] * 2  # was the head's alone
    assert macs == count_macs(to_tflite_bytes(model))


def test_a_nested_base_networks_activations_count_in_the_peak():
    """The peak counted a base network as one layer: its input and output only (45 KB here,
    against the 393 KB its 64-channel map and the 32-channel one before it hold at once)."""
    from edgepipe.mobile_models.profile import peak_activation_bytes

    def body(x):
        x = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(x)
        return keras.layers.Conv2D(8, 1)(keras.layers.Conv2D(64, 3, padding="same", activation="relu")(x))

    def head(x):
        return keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x))
    inp = keras.Input((32, 32, 3))
    base = keras.Model(inp, body(inp))
    x, y = keras.Input((32, 32, 3)), keras.Input((32, 32, 3))
    wrapped, inline = keras.Model(x, head(base(x))), keras.Model(y, head(body(y)))
    assert peak_activation_bytes(wrapped) == peak_activation_bytes(inline) == 32 * 32 * (32 + 64) * 4


def test_bench_states_mult_adds_of_a_keras_3_file_and_a_bare_tflite(tmp_path, capsys):
    from edgepipe.base.backend import keras3 as k3
    x = k3.Input((16, 16, 3))
    k3.Model(x, k3.layers.Conv2D(4, 3)(x)).save(tmp_path / "k3.keras")
    (tmp_path / "bare.tflite").write_bytes(to_tflite_bytes(_tutorial_transfer_model()[0]))
    capsys.readouterr()
    assert main(["bench", str(tmp_path / "k3.keras"), str(tmp_path / "bare.tflite"), "--runs", "2",
                 "--warmup", "0", "--json"]) == 0
    rows = {r["model"].rsplit("/", 1)[-1]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["k3.keras"]["macs"] == 14 * 14 * 4 * 27, rows["k3.keras"]
    assert rows["bare.tflite"]["macs"] == profile_model(_tutorial_transfer_model()[0])["macs"]


def test_separable_convs_dense_on_maps_and_shared_layers_count_their_work():
    """A SeparableConv2D counted 0, a Dense on a (H, W, C) map counted once instead of at
    every position, and a layer called twice (a siamese branch) counted once; counted by hand."""
    L = keras.layers
    inp = keras.Input((16, 16, 3))
    x = L.SeparableConv2D(16, 3, padding="same", depth_multiplier=2)(inp)
    x = L.Dense(8)(x)  # on every one of the 16x16 positions
    shared = L.Conv2D(8, 3, padding="same")
    x = L.Add()([shared(x), shared(L.ReLU()(x))])
    model = keras.Model(inp, L.Dense(4)(L.GlobalAveragePooling2D()(x)))
    separable = 16 * 16 * 3 * 2 * (3 * 3 + 16)
    dense, conv = 16 * 16 * 16 * 8, 16 * 16 * 8 * 9 * 8
    assert profile_model(model)["macs"] == separable + dense + 2 * conv + 8 * 4


def _torch_like_onnx(path, height="H"):
    """A generated ONNX graph as PyTorch's exporter writes one (NCHW, free batch, no model
    card): grouped conv, depthwise conv, transposed conv, then Gemm on the pooled vector."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(0)

    def weight(name, *shape):
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], group=2, pads=[1, 1, 1, 1]),        # 4 -> 8, 3x3, groups 2
             helper.make_node("Conv", ["a", "w2"], ["b"], group=8, strides=[2, 2], pads=[1, 1, 1, 1]),  # depthwise
             helper.make_node("ConvTranspose", ["b", "w3"], ["c"], strides=[2, 2]),          # 8 -> 6, 2x2
             helper.make_node("GlobalAveragePool", ["c"], ["p"]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Gemm", ["f", "w4"], ["y"], transB=1)]                          # 6 -> 5
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, height, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])],
                              [weight("w1", 8, 2, 3, 3), weight("w2", 8, 1, 3, 3), weight("w3", 8, 6, 2, 2),
                               weight("w4", 5, 6)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_an_onnx_file_without_a_card_has_its_mult_adds_counted_on_its_graph(tmp_path, capsys):
    """bench showed no GFLOP/s for an ONNX file without a model card (a PyTorch export, a convert-made
    file moved away from its card); counted by hand here."""
    import onnx
    from edgepipe.convert.onnx_macs import count_macs
    by_hand = 16 * 16 * 8 * (2 * 9) + 8 * 8 * 8 * 9 + 8 * 8 * 8 * (6 * 4) + 5 * 6
    assert count_macs(onnx.load(str(_torch_like_onnx(tmp_path / "t.onnx", 16)))) == by_hand
    # a free image size leaves the convs' work unknown: no count rather than a guess
    assert count_macs(onnx.load(str(_torch_like_onnx(tmp_path / "free.onnx")))) is None
    capsys.readouterr()
    assert main(["bench", str(tmp_path / "t.onnx"), "--runs", "2", "--warmup", "0", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row["macs"] == by_hand and row["achieved_gflops"] > 0, row


def test_the_onnx_count_matches_the_profiler_on_a_converted_zoo_model(tmp_path):
    import onnx
    from edgepipe.convert.onnx_macs import count_macs
    model = mobile_models.build("shufflenet_v2", input_shape=(32, 32, 3), classes=5, scale=0.5)
    assert main(["convert", "--model", _saved(model, tmp_path), "--format", "onnx",
                 "--out", str(tmp_path / "m.onnx")]) == 0
    assert count_macs(onnx.load(str(tmp_path / "m.onnx"))) == profile_model(model)["macs"]


def _saved(model, tmp_path) -> str:
    from edgepipe.base.modelio import save_keras
    return str(save_keras(model, tmp_path / "m.keras"))

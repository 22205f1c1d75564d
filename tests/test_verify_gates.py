"""edgepipe verify reads an export's real precision from its tensors and gates on
it, and refuses to call parity on constant outputs a pass."""
import json

import numpy as np
import pytest

from edgepipe.base.backend import keras
from edgepipe.cli.main import main
from edgepipe.convert import tflite
from edgepipe.evaluate.gates import default_gate
from edgepipe.evaluate.parity import CONSTANT_SPREAD, is_constant, output_spread
from edgepipe.evaluate.quantinfo import precision_of, tflite_quantization

SHAPE = (16, 16, 3)


def _trunk(x):
    # 3*3*16*32 = 4608 weights: above the converter's 1024-value floor for
    # dynamic-range quantization, so "dynamic" really quantizes a tensor
    h = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    return keras.layers.Conv2D(32, 3, padding="same", activation="relu")(h)


def _dense_net():
    x = keras.Input(SHAPE)
    return keras.Model(x, keras.layers.Conv2D(4, 1)(_trunk(x)), name="dense_net")


def _classifier(head="glorot_uniform"):
    x = keras.Input(SHAPE)
    h = keras.layers.GlobalAveragePooling2D()(_trunk(x))
    y = keras.layers.Dense(10, activation="softmax", kernel_initializer=head)(h)
    return keras.Model(x, y, name="classifier")


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    """The two nets saved as .keras, with the inputs verify reads (--data)."""
    d = tmp_path_factory.mktemp("gates")
    keras.utils.set_random_seed(7)
    x = np.random.default_rng(7).random((16, *SHAPE), dtype=np.float32)
    np.save(d / "x.npy", x)
    out = {"data": d / "x.npy", "x": x, "dir": d}
    for name, build in (("dense", _dense_net), ("classifier", _classifier),
                        ("zero_head", lambda: _classifier(head="zeros"))):
        model = build()
        model.save(d / f"{name}.keras")
        out[name] = (model, d / f"{name}.keras")
    return out


def _verify(nets, name, export, capsys, *extra):
    capsys.readouterr()
    code = main(["verify", "--model", str(nets[name][1]), "--export", str(export), "--data", str(nets["data"]),
                 "--json", *extra])
    return code, json.loads(capsys.readouterr().out)


# (mode, int8_io, detected precision, input dtype, gate for dense outputs, gate for the classifier)
MODES = [
    ("float32", True, "float32", "float32", "max_abs", "max_abs"),
    ("dynamic", True, "dynamic", "float32", "psnr_db", "top1_agreement"),
    ("float16", True, "float16", "float32", "psnr_db", "psnr_db"),
    ("int8", True, "int8", "int8", "psnr_db", "top1_agreement"),
    ("int8", False, "int8", "float32", "psnr_db", "top1_agreement"),
    ("int16x8", True, "int16x8", "int16", "psnr_db", "top1_agreement"),
]


@pytest.mark.parametrize("net", ["dense", "classifier"])
@pytest.mark.parametrize("mode, int8_io, precision, io, dense_gate, classifier_gate", MODES,
                         ids=[f"{m[0]}-{'intio' if m[1] else 'floatio'}" for m in MODES])
def test_verify_detects_each_ptq_mode_and_gates_on_it(nets, capsys, net, mode, int8_io, precision, io,
                                                       dense_gate, classifier_gate):
    model, _ = nets[net]
    path = tflite.write(model, nets["dir"] / f"{net}.{mode}.{int(int8_io)}.tflite", mode, nets["x"],
                        int8_io=int8_io)
    code, result = _verify(nets, net, path, capsys)
    gate = dense_gate if net == "dense" else classifier_gate
    assert result["variant"] == precision, result
    assert result["io"] == {"input": io, "output": io}
    row = result["outputs"][0]
    assert row["gate"].startswith(gate), row["gate"]
    expected = default_gate(precision, net == "classifier")
    if gate == "max_abs":  # 1e-4 + 1e-5 of the output's peak (these outputs are under 10)
        assert expected.threshold <= float(row["gate"].split("<= ")[1]) < expected.threshold + 1e-4, row["gate"]
    else:
        assert row["gate"].endswith(f" {expected.threshold:g}"), row["gate"]
    assert result["constant_outputs"] == [] and result["reason"] is None
    if gate == "top1_agreement":  # a random head has near-ties that int8 noise may flip
        assert code == (0 if result["pass"] else 1) and 0 <= row["top1_agreement"] <= 1
    else:
        assert result["pass"] and code == 0, row


def test_dynamic_on_small_weights_is_reported_as_the_float32_it_is(tmp_path, capsys, nets):
    """The converter leaves tensors under 1024 values in float: nothing got quantized."""
    x = keras.Input(SHAPE)
    model = keras.Model(x, keras.layers.Conv2D(4, 3, padding="same")(x))
    path = tflite.write(model, tmp_path / "small.dynamic.tflite", "dynamic")
    assert tflite_quantization(path)["precision"] == "float32"


def test_precision_rule():
    assert precision_of({"int16": 3}, {"int8": 2, "int64": 2}) == "int16x8"
    assert precision_of({"int8": 3}, {"int8": 2, "int32": 2}) == "int8"
    assert precision_of({"float32": 3}, {"int8": 1, "float32": 2}) == "dynamic"
    assert precision_of({"float32": 3}, {"float16": 4}) == "float16"
    assert precision_of({"float32": 3, "int8-unquantized": 1}, {"float32": 4}) == "float32"


def test_zero_head_fails_verify_unless_allowed(nets, capsys):
    model, _ = nets["zero_head"]
    path = tflite.write(model, nets["dir"] / "zero_head.tflite")
    code, result = _verify(nets, "zero_head", path, capsys)
    assert code == 1 and not result["pass"]
    assert result["reason"].startswith(
        "the original's outputs do not vary across the 16 inputs: parity on constant outputs proves nothing; "
        "pass --allow-constant-outputs to accept"), result["reason"]
    row = result["outputs"][0]
    assert row["constant"] and row["gate_pass"] and row["spread"] <= CONSTANT_SPREAD
    assert result["drilldown"] is None  # the export matches; there is nothing to drill into
    code, result = _verify(nets, "zero_head", path, capsys, "--allow-constant-outputs")
    assert code == 0 and result["pass"] and result["constant_outputs"] == [result["outputs"][0]["output"]]
    capsys.readouterr()
    args = ["verify", "--model", str(nets["zero_head"][1]), "--export", str(path), "--data", str(nets["data"])]
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "FAIL (constant)" in out and "pass --allow-constant-outputs to accept" in out


def test_output_spread():
    rng = np.random.default_rng(0)
    varying = rng.random((8, 10))
    assert not is_constant(varying) and output_spread(varying) > 0.1
    flat = np.full((8, 10), 0.1) + rng.normal(0, 1e-8, (8, 10))  # float round-off on a constant
    assert is_constant(flat) and is_constant(np.zeros((8, 4, 4, 2)))
    one_channel = np.concatenate([np.ones((8, 3)), rng.random((8, 1))], axis=1)
    assert not is_constant(one_channel)
    assert not is_constant(np.ones((1, 10)))  # one input shows nothing either way


def test_a_quantized_classifier_must_keep_its_scores_not_only_their_argmax():
    """Top-1 agreement alone passed an int8 file returning logits where the model gives
    probabilities, and probabilities three times as sharp: same argmax, wrong numbers."""
    from edgepipe.evaluate.gates import check_output, default_gate
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (64, 10)).astype(np.float32)
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    sharp = np.exp(3 * logits) / np.exp(3 * logits).sum(-1, keepdims=True)
    int8_like = np.clip(np.round(probs * 255) / 255 + rng.normal(0, 2e-3, probs.shape), 0, 1)  # rounding, noise
    for precision, floor, wrongs in (("int8", 20.0, (logits, sharp)), ("palette4", 12.0, (logits,))):
        gate = default_gate(precision, classifier=True)
        assert gate.psnr_floor == floor
        assert check_output(probs, int8_like, gate)["pass"]
        for wrong in wrongs:  # sharp is at 17.8 dB: within a 4-bit palette's floor
            result = check_output(probs, wrong, gate)
            assert result["top1_agreement"] == 1.0 and not result["pass"] and "scores floor" in result["gate"]
            assert result["margin"] < 0
    assert default_gate("float32", classifier=True).psnr_floor is None  # max_abs already holds the scores


def test_an_export_that_outputs_only_zeros_has_no_perfect_cosine():
    from edgepipe.evaluate.parity import parity
    ref = np.random.default_rng(0).normal(size=(4, 3)) * 1e-10
    assert parity(ref, np.zeros_like(ref))["cosine"] == 0.0
    assert parity(np.zeros((4, 3)), np.zeros((4, 3)))["cosine"] == 1.0
    assert parity(ref, ref)["cosine"] > 0.999


def test_a_gate_the_user_names_holds_for_lossy_exports_too():
    """verify --psnr 200 on a 4-bit palette export gated at 20 dB: the lossy default loosened the
    user's own limit, and the exit said pass."""
    from edgepipe.evaluate.gates import LOSSY
    assert default_gate("palette4", False, psnr_int=200.0, named=frozenset({"psnr"})).threshold == 200.0
    assert default_gate("palette4", True, agreement=1.0, named=frozenset({"agreement"})).threshold == 1.0
    assert default_gate("palette4", False, psnr_int=30.0).threshold == LOSSY["psnr"]  # defaults loosen

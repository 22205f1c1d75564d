"""Channel pruning: the pruned net is smaller for real (MACs, params), matches its
own TFLite export, reproduces the original at ratio 0 and when the removed
channels carried nothing, respects residuals/concats/splits, and the CLI runs."""
import json

import numpy as np
import pytest

from edgepipe import mobile_models
from edgepipe.base.backend import layers
from edgepipe.mobile_models.profile import profile_model
from edgepipe.cli.main import main
from edgepipe.base.errors import EdgePipeError
from edgepipe.quantize.channel_prune import kept_channels, prunable_groups, prune_channels
from tests.conftest import randomise_batchnorm
from tests.test_zoo_export import SMALL

X = np.random.default_rng(1).random((4, 32, 32, 3), np.float32)


def _model(name):
    """A SMALL zoo net (logits) with non-trivial BN statistics, as a trained net has."""
    return randomise_batchnorm(mobile_models.build(name, **SMALL[name]))


def _pruned_names(rows):
    return {r["layer"] for r in rows if r["after"] < r["before"]}


# which convs may lose channels: never one whose output meets an Add, Concatenate or split
EXPECTED = {
    "mobilenet_v2": lambda n: n.endswith("_expand") or n in ("conv1", "block0_project", "block16_project",
                                                             "conv_last"),
    "mobilenet_v1": lambda n: n.endswith("_pw") or n == "conv1",
    # conv1 feeds both branches of the first (stride-2) unit: both readers drop its channels
    "shufflenet_v2": lambda n: n.endswith("_pw1") or n in ("conv1", "conv5"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_pruned_net_is_smaller_and_matches_its_own_export(name):
    from ai_edge_litert.interpreter import Interpreter

    from edgepipe.convert import tflite
    model = _model(name)
    pruned, rows = prune_channels(model, 0.5)
    convs = {l.name for l in model.layers if type(l) is layers.Conv2D}
    assert _pruned_names(rows) == {c for c in convs if EXPECTED[name](c)}
    assert [l.name for l in pruned.layers] == [l.name for l in model.layers]
    for r in rows:
        assert pruned.get_layer(r["layer"]).filters == r["after"] == kept_channels(r["before"], 0.5)
    assert profile_model(pruned)["macs"] < 0.7 * profile_model(model)["macs"]
    assert pruned.count_params() < 0.7 * model.count_params()
    interp = Interpreter(model_content=tflite.to_tflite_bytes(pruned, "float32"))
    interp.allocate_tensors()
    i, o = interp.get_input_details()[0], interp.get_output_details()[0]
    want = pruned.predict(X, verbose=0)
    for k in range(len(X)):
        interp.set_tensor(i["index"], X[k:k + 1])
        interp.invoke()
        assert np.abs(interp.get_tensor(o["index"])[0] - want[k]).max() <= 1e-4


def test_ratio_zero_reproduces_the_original_exactly():
    model = _model("mobilenet_v2")
    pruned, rows = prune_channels(model, 0.0)
    assert rows and all(r["after"] == r["before"] for r in rows)
    np.testing.assert_array_equal(pruned.predict(X, verbose=0), model.predict(X, verbose=0))


def test_removing_channels_that_carry_nothing_changes_nothing():
    """Zero the weakest channels so they output exactly 0 after their BN and
    activation (kernel 0, BN mean and beta 0, the same in the depthwise BN behind):
    pruning them away must leave the logits unchanged."""
    model = _model("mobilenet_v2")
    rng = np.random.default_rng(2)
    for g in prunable_groups(model):
        conv, n = g["conv"], g["conv"].filters
        dead = rng.choice(n, n - kept_channels(n, 0.5), replace=False)
        kernel = conv.get_weights()[0]
        kernel[..., dead] = 0
        conv.set_weights([kernel])
        for layer in g["path"]:
            if isinstance(layer, layers.BatchNormalization):
                gamma, beta, mean, var = layer.get_weights()
                beta[dead], mean[dead] = 0, 0
                layer.set_weights([gamma, beta, mean, var])
    pruned, rows = prune_channels(model, 0.5)
    assert sum(r["before"] - r["after"] for r in rows) > 0
    np.testing.assert_allclose(pruned.predict(X, verbose=0), model.predict(X, verbose=0), atol=1e-5)


@pytest.mark.parametrize("ratio", [1.0, -0.1, 1.5])
def test_bad_ratio(ratio):
    with pytest.raises(EdgePipeError, match=r"must be in \[0, 1\)"):
        prune_channels(mobile_models.build("tiny_cnn", **SMALL["tiny_cnn"]), ratio)


def test_kept_channels_rounds_up_to_multiples_of_eight():
    assert [kept_channels(n, 0.5) for n in (48, 24, 72, 8, 3, 1)] == [24, 16, 40, 4, 2, 1]
    assert kept_channels(96, 0.0) == 96 and kept_channels(96, 0.99) == 1


def test_prune_cli_channel_end_to_end(tmp_path, capsys):
    from edgepipe.base.modelio import load_keras, save_keras
    path = save_keras(mobile_models.build("tiny_cnn", input_shape=(32, 32, 3)), tmp_path / "m.keras")
    assert main(["prune", "--model", str(path), "--structure", "channel", "--sparsity", "0.5", "--steps", "3",
                 "--latency-runs", "3", "--out", str(tmp_path / "p.keras")]) == 0
    printed = capsys.readouterr().out
    for text in ("channels per pruned conv", "block3_expand", "MACs:", "latency, 1 thread", "after fine-tuning"):
        assert text in printed
    pruned = load_keras(tmp_path / "p.keras")
    assert pruned.get_layer("block1_expand").filters == 24
    assert (tmp_path / "p.tflite").stat().st_size < 0.8 * (tmp_path / "p.unpruned.tflite").stat().st_size
    assert (tmp_path / "p.int8.tflite").is_file()
    for name in ("p.tflite", "p.int8.tflite", "p.unpruned.tflite", "p.unpruned.int8.tflite"):
        card = json.loads((tmp_path / f"{name}.model_card.json").read_text())
        assert card["inputs"][0]["range"] == [0.0, 1.0] and card["artifacts"][0]["file"] == name
    assert main(["prune", "--model", str(path), "--structure", "channel", "--sparsity", "1.0",
                 "--out", str(tmp_path / "q.keras")]) == 2
    assert "sparsity must be in [0, 1)" in capsys.readouterr().err


def test_a_sequential_model_has_no_groups_to_merge():
    """The TFLite writer's grouped-conv merge reads a functional graph; a Sequential model (a tutorial's)
    has no per-group convs, and passes through untouched instead of failing on its config."""
    from edgepipe.base.backend import keras
    from edgepipe.convert.grouped import merge_groups
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3), keras.layers.Flatten()])
    assert merge_groups(model) is model


def test_prune_feeds_a_tutorial_model_raw_pixels(tmp_path, capsys):
    """A Sequential model with its own Rescaling(1/255), as the Keras tutorial builds it: fine-tuned,
    scored and calibrated on 0..255 pixels, so its int8 input step is 1 pixel, and its cards say so."""
    from ai_edge_litert.interpreter import Interpreter
    from edgepipe.base.backend import keras
    from edgepipe.base.modelio import save_keras
    model = keras.Sequential([keras.Input((32, 32, 3)), layers.Rescaling(1 / 255),
                              layers.Conv2D(8, 3, activation="relu"), layers.GlobalAveragePooling2D(),
                              layers.Dense(10)])
    path = save_keras(model, tmp_path / "tutorial.keras")
    assert main(["prune", "--model", str(path), "--sparsity", "0.5", "--steps", "2", "--batch-size", "8",
                 "--out", str(tmp_path / "p.keras")]) == 0
    scale, _ = Interpreter(model_path=str(tmp_path / "p.int8.tflite")).get_input_details()[0]["quantization"]
    assert abs(scale - 1.0) < 0.01, scale  # [0, 1] calibration would give 1/255
    card = json.loads((tmp_path / "p.int8.tflite.model_card.json").read_text())
    assert card["inputs"][0]["range"] == [0.0, 255.0]

"""A box head is (N, 4) floats, as logits are: the gate verify and quantize apply
follows what the model says each output holds (its activation, the loss it was
compiled with), and --truth scores the classifier only. Tiny models, generated data."""
import json

import numpy as np
import pytest

from edgepipe.base.backend import keras
from edgepipe.cli.main import main
from edgepipe.evaluate.outputs import output_kinds


def _features(x):
    return keras.layers.Flatten()(keras.layers.Conv2D(4, 3, activation="relu")(x))


def _box_model(path, loss="mse"):
    x = keras.Input((8, 8, 3))
    model = keras.Model(x, keras.layers.Dense(4, name="box")(_features(x)))
    if loss:
        model.compile("adam", loss)
    model.save(path)
    return path


def _detector(path):
    """Classes and a box, compiled as a user compiles one; saved with its losses."""
    x = keras.Input((8, 8, 3))
    h = _features(x)
    model = keras.Model(x, [keras.layers.Dense(3, activation="softmax", name="cls")(h),
                            keras.layers.Dense(4, name="box")(h)])
    model.compile("adam", {"cls": "sparse_categorical_crossentropy", "box": "mse"})
    model.save(path)
    return path


@pytest.mark.parametrize("loss, kind", [("mse", "values"), (keras.losses.Huber(), "values"), (None, None),
                                        (keras.losses.SparseCategoricalCrossentropy(from_logits=True), "classes")])
def test_a_linear_heads_kind_comes_from_the_loss_it_was_compiled_with(tmp_path, loss, kind):
    from edgepipe.base.modelio import load_keras
    for suffix in (".keras", ".h5"):
        path = _box_model(tmp_path / f"m{suffix}", loss)
        assert output_kinds(load_keras(path), path) == {"box": kind}, (suffix, loss)


def test_uncompiled_linear_heads_are_read_by_their_shape(tmp_path):
    """A multi-task classifier saved without a loss (a softmax head and a logits head) keeps
    the logits gated on top-1 agreement; a loss saved as a function (Keras 3) is read too."""
    from edgepipe.base.modelio import load_keras
    x = keras.Input((8, 8, 3))
    h = _features(x)
    keras.Model(x, [keras.layers.Dense(3, activation="softmax", name="species")(h),
                    keras.layers.Dense(2, name="gender_logits")(h)]).save(tmp_path / "m.keras")
    assert output_kinds(load_keras(tmp_path / "m.keras")) == {"species": "classes", "gender_logits": None}
    path = _box_model(tmp_path / "f.keras", keras.losses.mean_squared_error)
    assert output_kinds(load_keras(path), path) == {"box": "values"}


def test_a_badly_calibrated_box_head_fails_its_psnr_gate(tmp_path, capsys):
    """It passed on top-1 agreement (100%) at 7 dB PSNR."""
    model = _box_model(tmp_path / "box.keras")
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.random((16, 8, 8, 3), np.float32))
    np.save(tmp_path / "dim.npy", rng.random((16, 8, 8, 3), np.float32) * 0.02)  # ranges 50x too small
    out = tmp_path / "box.tflite"
    assert main(["quantize", "--model", str(model), "--mode", "int8", "--data", str(tmp_path / "dim.npy"),
                 "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["verify", "--model", str(model), "--export", str(out), "--data", str(tmp_path / "x.npy"),
                 "--json"]) == 1
    row = json.loads(capsys.readouterr().out)["outputs"][0]
    assert row["gate"].startswith("psnr_db") and not row["pass"], row
    # --agreement, named for a box head, is no gate for it: the PSNR gate holds, and it says so
    assert main(["quantize", "--model", str(model), "--mode", "int8", "--data", str(tmp_path / "x.npy"),
                 "--agreement", "1.0", "--out", str(tmp_path / "box2.tflite")]) in (0, 1)
    assert "note: --agreement gates class scores; output box (4,) holds none, so its gate is psnr_db" in \
        capsys.readouterr().err


def test_truth_scores_the_classifier_of_a_detector(tmp_path, capsys):
    """--truth was checked against the box head too: labels 0..2 were refused as outside its '4 classes'."""
    model = _detector(tmp_path / "det.keras")
    rng = np.random.default_rng(1)
    np.save(tmp_path / "x.npy", rng.random((12, 8, 8, 3), np.float32))
    np.save(tmp_path / "y.npy", np.arange(12) % 3)
    out = tmp_path / "det.tflite"
    assert main(["convert", "--model", str(model), "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["verify", "--model", str(model), "--export", str(out), "--data", str(tmp_path / "x.npy"),
                 "--truth", str(tmp_path / "y.npy"), "--json"]) == 0
    rows = {r["output"]: r for r in json.loads(capsys.readouterr().out)["outputs"]}
    assert "top1" in rows["cls"] and "top1" not in rows["box"], rows


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_a_dict_of_outputs_exports_its_tensors_under_their_names(tmp_path, capsys, suffix):
    """A tf_keras model returning {"labels": ..., "box": ...}: its TFLite file held the two
    key strings as constant outputs (convert and quantize said 'wrote', exit 0), and verify
    stopped in a traceback. The keys differ from the layer names here, and from their order."""
    from edgepipe.evaluate.runners import open_runner
    x = keras.Input((8, 8, 3))
    h = _features(x)
    model = keras.Model(x, {"zeta": keras.layers.Dense(3, activation="sigmoid", name="labels")(h),
                            "alpha": keras.layers.Dense(4, name="box")(h)})
    path = tmp_path / f"dict{suffix}"
    model.save(path)
    rng = np.random.default_rng(2)
    np.save(tmp_path / "x.npy", rng.random((8, 8, 8, 3), np.float32))
    outputs = model(np.load(tmp_path / "x.npy"))
    expected = {"labels": np.asarray(outputs["zeta"]), "box": np.asarray(outputs["alpha"])}
    for fmt in ("tflite", "onnx"):
        out = tmp_path / f"dict.{fmt}"
        assert main(["convert", "--model", str(path), "--out", str(out)]) == 0
        got = open_runner(out).predict(np.load(tmp_path / "x.npy")[:1])
        assert {k: v.shape for k, v in got.items()} == {"labels": (1, 3), "box": (1, 4)}, (fmt, got)
        for name, value in got.items():
            np.testing.assert_allclose(value, expected[name][:1], atol=1e-4)
        capsys.readouterr()
        assert main(["verify", "--model", str(path), "--export", str(out), "--data", str(tmp_path / "x.npy"),
                     "--json"]) == 0
        assert {r["output"] for r in json.loads(capsys.readouterr().out)["outputs"]} == {"labels", "box"}


def test_an_export_that_prints_the_mean_fails_however_high_its_psnr(tmp_path, capsys):
    """A regression head on an offset (100 +- a little): an export that ignores its input and
    prints the mean read over 40 dB PSNR against the peak, and passed. Its output does not vary
    while the original's does (its error is all of that variation: variation_db 0), so it fails;
    the float16 file of the same model follows the variation and passes."""
    x = keras.Input((8, 8, 3))
    features = _features(x)
    model = keras.Model(x, keras.layers.Dense(1, name="value")(features))
    kernel, _ = model.get_layer("value").get_weights()
    model.get_layer("value").set_weights([kernel, np.array([100.0], np.float32)])
    rng = np.random.default_rng(3)
    data = rng.random((16, 8, 8, 3), np.float32)
    np.save(tmp_path / "x.npy", data)
    model.save(tmp_path / "value.keras")
    mean = keras.Model(x, keras.layers.Dense(1, name="value", kernel_initializer="zeros",
                                             bias_initializer=keras.initializers.Constant(
                                                 float(np.mean(model(data)))))(features))
    mean.save(tmp_path / "mean.keras")
    for source, name in ((tmp_path / "mean.keras", "mean.tflite"), (tmp_path / "value.keras", "value.tflite")):
        assert main(["quantize", "--model", str(source), "--mode", "float16", "--data", str(tmp_path / "x.npy"),
                     "--out", str(tmp_path / name)]) in (0, 1)
    capsys.readouterr()
    assert main(["verify", "--model", str(tmp_path / "value.keras"), "--export", str(tmp_path / "mean.tflite"),
                 "--data", str(tmp_path / "x.npy"), "--json"]) == 1
    row = json.loads(capsys.readouterr().out)["outputs"][0]
    assert row["psnr_db"] > 40 and row["variation_db"] < 1 and row["follows_input"] is False, row
    assert "does not vary with its input" in row["gate"], row
    assert main(["verify", "--model", str(tmp_path / "value.keras"), "--export", str(tmp_path / "value.tflite"),
                 "--data", str(tmp_path / "x.npy"), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)["outputs"][0]
    assert row["follows_input"] is True and row["variation_db"] > 10, row


def test_a_dict_of_outputs_keeps_the_losses_saved_by_key(tmp_path):
    """tf_keras saves a dict model's losses under the dict's keys, not its layers' names: an
    (N, 3) value head compiled with mse was read as class scores (gated on top-1 agreement)."""
    from edgepipe.base.modelio import load_keras
    x = keras.Input((8, 8, 3))
    h = _features(x)
    model = keras.Model(x, {"zeta": keras.layers.Dense(3, name="offsets")(h),
                            "alpha": keras.layers.Dense(3, name="logits")(h)})
    model.compile("adam", {"zeta": "mse", "alpha": keras.losses.SparseCategoricalCrossentropy(from_logits=True)})
    for suffix in (".keras", ".h5"):
        path = tmp_path / f"m{suffix}"
        model.save(path)
        assert output_kinds(load_keras(path), path) == {"offsets": "values", "logits": "classes"}, suffix

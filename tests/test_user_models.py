"""The user's own model, converted right (issue #20, continued): a SavedModel written
from a plain ``tf.Module``, a model with two named inputs and outputs, and a model
with free dimensions, each through ``edgepipe convert`` and ``edgepipe verify``.
Models are a few layers at 16x16 or 32x32 so the file stays fast."""
import json
from pathlib import Path

import numpy as np
import pytest

from edgepipe.base.backend import keras, tf
from edgepipe.cli.main import main

SCHEMA = Path(__file__).resolve().parent.parent / "schemas" / "model_card.schema.json"


def _ok(argv):
    assert main([str(a) for a in argv]) == 0


def _verify(capsys, model, export, *extra) -> tuple[int, dict]:
    capsys.readouterr()
    rc = main(["verify", "--model", str(model), "--export", str(export), "--json", *map(str, extra)])
    return rc, json.loads(capsys.readouterr().out, parse_constant=_not_json)


def _not_json(name):
    """Strict JSON, as JavaScript's JSON.parse and jq read it: no Infinity or NaN."""
    raise ValueError(f"verify --json printed {name}, which is not JSON")


def _refused(capsys, argv, expect: str) -> str:
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("edgepipe: error: "), lines
    assert expect in lines[0], lines[0]
    return lines[0]


def _by_output(report) -> dict:
    """{(output, batch): row}; batch None where the export's batch is fixed."""
    return {(r["output"], r.get("batch")): r for r in report["outputs"]}


def _check(report, fmt: str, outputs: set, batches=(None,)):
    """Every output at every batch passed its gate, with figures that say so."""
    rows = _by_output(report)
    assert report["pass"] and set(rows) == {(o, b) for o in outputs for b in batches}, rows.keys()
    for row in rows.values():
        if fmt == "coreml":  # fp16 by the reference interpreter
            assert row["psnr_db"] >= 40 and row["max_abs"] < 1e-2, row
        else:
            assert row["max_abs"] < 1e-5, row


def _tflite_io(path):
    from ai_edge_litert.interpreter import Interpreter
    interp = Interpreter(model_path=str(path))
    ins = {d["name"]: list(d["shape_signature"]) for d in interp.get_input_details()}
    return ins, {d["name"] for d in interp.get_output_details()}


def _onnx_io(path):
    import onnx
    graph = onnx.load(str(path)).graph
    dims = lambda v: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]  # noqa: E731
    return {i.name: dims(i) for i in graph.input}, {o.name for o in graph.output}


# -- a SavedModel from a plain tf.Module -----------------------------------------------------------------------------

class Net(tf.Module):
    """Not Keras: variables and a serving function, two named outputs."""

    def __init__(self, seed: int):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.kernel = tf.Variable(rng.normal(0, 0.5, (3, 3, 3, 4)).astype(np.float32))
        self.dense = tf.Variable(rng.normal(0, 0.5, (4, 2)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([None, 16, 16, 3], tf.float32, name="pixels")])
    def serve(self, pixels):
        features = tf.nn.relu(tf.nn.conv2d(pixels, self.kernel, 1, "SAME"))
        return {"logits": tf.reduce_mean(features, [1, 2]) @ self.dense, "features": features}


def _save_module(path: Path, seed: int) -> Path:
    net = Net(seed)
    tf.saved_model.save(net, str(path), signatures={"serving_default": net.serve})
    return path


def test_tf_module_savedmodel_converts_and_verifies_against_its_signature(tmp_path, capsys):
    model, other = _save_module(tmp_path / "net", 1), _save_module(tmp_path / "other", 2)
    outputs = {"logits", "features"}
    for fmt, suffix, extra, batches in (("tflite", ".tflite", [], (None,)),
                                        ("onnx", ".onnx", ["--dynamic-batch"], (1, 3)),
                                        ("coreml", ".mlpackage", [], (None,))):
        out = tmp_path / f"net{suffix}"
        _ok(["convert", "--model", model, "--format", fmt, "--out", out, *extra])
        rc, report = _verify(capsys, model, out)
        assert rc == 0, report
        _check(report, fmt, outputs, batches)
    assert _tflite_io(tmp_path / "net.tflite") == ({"pixels": [1, 16, 16, 3]}, outputs)
    assert _onnx_io(tmp_path / "net.onnx") == ({"pixels": ["batch", 16, 16, 3]}, outputs)
    # the reference is the signature itself: the same export fails against another module's weights
    rc, report = _verify(capsys, other, tmp_path / "net.tflite", "--no-drill-down")
    assert rc == 1 and min(r["max_abs"] for r in report["outputs"]) > 1e-2, report


def test_tf_module_savedmodel_without_a_serving_signature_is_one_line(tmp_path, capsys):
    class Bare(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32)])
        def f(self, x):
            return x
    tf.saved_model.save(Bare(), str(tmp_path / "bare"), signatures={})
    _refused(capsys, ["convert", "--model", tmp_path / "bare", "--format", "onnx", "--out", tmp_path / "b.onnx"],
             "no 'serving_default' signature")
    assert not (tmp_path / "b.onnx").exists()


# -- two named inputs, two named outputs -----------------------------------------------------------------------------

def two_input_model():
    """An image and a small vector; outputs declared in the order a sort would reverse."""
    keras.utils.set_random_seed(5)
    L = keras.layers
    image, vec = keras.Input((16, 16, 3), name="image"), keras.Input((4,), name="vec")
    x = L.GlobalAveragePooling2D()(L.Conv2D(6, 3, activation="relu")(image))
    x = L.Concatenate()([x, L.Dense(4, activation="relu")(vec)])
    return keras.Model([image, vec], [L.Dense(3, name="scores")(x), L.Dense(1, activation="sigmoid", name="gate")(x)])


def test_two_named_inputs_and_outputs(tmp_path, capsys):
    import jsonschema
    model = tmp_path / "two.keras"
    two_input_model().save(model)
    outputs = {"scores", "gate"}
    for fmt, suffix in (("tflite", ".tflite"), ("onnx", ".onnx"), ("coreml", ".mlpackage")):
        _ok(["convert", "--model", model, "--format", fmt, "--out", tmp_path / f"two{suffix}"])
        rc, report = _verify(capsys, model, tmp_path / f"two{suffix}")  # generated: a document and a vector
        assert rc == 0, report
        _check(report, fmt, outputs)
    assert _tflite_io(tmp_path / "two.tflite") == ({"image": [1, 16, 16, 3], "vec": [1, 4]}, outputs)
    assert _onnx_io(tmp_path / "two.onnx") == ({"image": [1, 16, 16, 3], "vec": [1, 4]}, outputs)
    card = json.loads((tmp_path / "two.tflite.model_card.json").read_text())
    jsonschema.validate(card, json.loads(SCHEMA.read_text()))
    assert [(i["name"], i.get("kind")) for i in card["inputs"]] == [("image", None), ("vec", "tensor")]
    # --data: one array per input name
    rng = np.random.default_rng(0)
    data = tmp_path / "data.npz"
    np.savez(data, image=rng.random((5, 16, 16, 3), np.float32), vec=rng.normal(size=(5, 4)).astype(np.float32))
    rc, report = _verify(capsys, model, tmp_path / "two.tflite", "--data", data)
    assert rc == 0 and report["outputs"][0]["spread"] > 0, report
    _check(report, "tflite", outputs)
    np.savez(tmp_path / "half.npz", image=rng.random((5, 16, 16, 3), np.float32))
    np.save(tmp_path / "image.npy", rng.random((5, 16, 16, 3), np.float32))
    verify = ["verify", "--model", model, "--export", tmp_path / "two.onnx", "--data"]
    _refused(capsys, [*verify, tmp_path / "half.npz"], "holds image; the model's inputs are image, vec")
    _refused(capsys, [*verify, tmp_path / "image.npy"], "give --data as an .npz")
    import zipfile  # a zip from a Mac carries a .DS_Store: numpy hands it back as bytes (a traceback)
    with zipfile.ZipFile(tmp_path / "mac.npz", "a") as archive, zipfile.ZipFile(data) as given:
        for member in given.namelist():
            archive.writestr(member, given.read(member))
        archive.writestr(".DS_Store", b"\x00\x00\x00\x01Bud1")
    _refused(capsys, [*verify, tmp_path / "mac.npz"], "member '.DS_Store' is no .npy array")
    np.savez(tmp_path / "many.npz", **{f"x{i}": np.zeros(2, np.float32) for i in range(300)})
    assert "and 292 more" in _refused(capsys, [*verify, tmp_path / "many.npz"], "holds x0, x1")
    _refused(capsys, ["convert", "--model", model, "--format", "onnx", "--out", tmp_path / "x.onnx",
                      "--input-shape", "1x16x16x3"], "name the one --input-shape fixes")


def _two_cameras_model():
    """Two image inputs fed differently: ``wide`` rescales its own raw pixels, ``tele``
    takes pixel / 255 (it says nothing); a stereo or siamese model's shape."""
    L = keras.layers
    wide, tele = keras.Input((16, 16, 3), name="wide"), keras.Input((16, 16, 3), name="tele")
    a = L.Conv2D(4, 3, activation="relu")(L.Rescaling(1 / 255)(wide))
    b = L.Conv2D(4, 3, activation="relu")(tele)
    merged = L.Concatenate()([L.GlobalAveragePooling2D()(a), L.GlobalAveragePooling2D()(b)])
    return keras.Model([wide, tele], L.Dense(3, bias_initializer="ones")(merged))


def test_two_image_inputs_each_say_what_they_take(tmp_path, capsys):
    """One spec served every input, so the card, the Core ML ImageTypes and verify said
    pixel / 255 for an input whose own Rescaling takes 0..255: a Core ML app fed it a
    255th of its pixels. Each image input now states its own."""
    keras.utils.set_random_seed(3)
    model = tmp_path / "cams.keras"
    _two_cameras_model().save(model)
    for fmt, suffix in (("tflite", ".tflite"), ("onnx", ".onnx"), ("coreml", ".mlpackage")):
        out = tmp_path / f"cams{suffix}"
        _ok(["convert", "--model", model, "--format", fmt, "--out", out])
        card = json.loads(Path(f"{out}.model_card.json").read_text())
        ranges = {i["name"]: (i["range"], i["normalization"]["source"]) for i in card["inputs"]}
        assert ranges == {"wide": ([0.0, 255.0], "model"), "tele": ([0.0, 1.0], "default")}, ranges
        assert "how pixels map to input 'tele'" in capsys.readouterr().err  # the one it assumed, by name
        rc, report = _verify(capsys, model, out)
        assert rc == 0, report
    # what an iPhone feeds: 8-bit pixels in both ImageTypes, run by the reference interpreter
    from edgepipe.evaluate.milref import ReferenceProgram
    rng = np.random.default_rng(4)
    wide, tele = (rng.integers(0, 256, (1, 16, 16, 3)).astype(np.float32) for _ in range(2))
    got = next(iter(ReferenceProgram(tmp_path / "cams.mlpackage").run(
        {"wide": wide.transpose(0, 3, 1, 2), "tele": tele.transpose(0, 3, 1, 2)}).values()))
    want = keras.models.load_model(model).predict([wide, tele / 255], verbose=0)
    assert np.allclose(got, want, atol=1e-2 * np.abs(want).max()), (got, want)
    # the user's flags still speak for every image input
    _refused(capsys, ["convert", "--model", model, "--format", "onnx", "--out", tmp_path / "x.onnx",
                      "--input-range", "0,1"], "drop them")


# -- free dimensions ---------------------------------------------------------------------------------------------------

def test_free_size_model_is_fixed_by_input_shape_and_keeps_a_dynamic_batch(tmp_path, capsys):
    keras.utils.set_random_seed(6)
    L = keras.layers
    image = keras.Input((None, None, 3), name="image")
    x = L.BatchNormalization()(L.Conv2D(4, 3, padding="same", activation="relu")(image))
    model = tmp_path / "free.keras"
    keras.Model(image, L.Conv2D(2, 3, strides=2, padding="same", name="map")(x)).save(model)
    convert = ["convert", "--model", model, "--out"]
    _refused(capsys, [*convert, tmp_path / "f.tflite", "--format", "tflite"],
             "input 'image' has free dimensions (?x?x?x3); fix them with --input-shape")
    _refused(capsys, [*convert, tmp_path / "f.mlpackage", "--format", "coreml", "--input-shape", "1x32x32x3",
                      "--dynamic-batch"], "Core ML exports take a batch of 1")
    for fmt, suffix, extra, batches in (("tflite", ".tflite", ["--dynamic-batch"], (1, 3)),
                                        ("onnx", ".onnx", ["--dynamic-batch"], (1, 3)),
                                        ("coreml", ".mlpackage", [], (None,))):
        _ok([*convert, tmp_path / f"free{suffix}", "--format", fmt, "--input-shape", "1x32x32x3", *extra])
        rc, report = _verify(capsys, model, tmp_path / f"free{suffix}")
        assert rc == 0, report
        _check(report, fmt, {"map"}, batches)
    assert _tflite_io(tmp_path / "free.tflite")[0] == {"image": [-1, 32, 32, 3]}
    assert _onnx_io(tmp_path / "free.onnx")[0] == {"image": ["batch", 32, 32, 3]}
    card = json.loads((tmp_path / "free.onnx.model_card.json").read_text())
    assert card["inputs"][0]["shape"] == [-1, 32, 32, 3] and card["outputs"][0]["shape"] == [-1, 16, 16, 2]


# -- models that take raw pixels --------------------------------------------------------------------------------------

class Uint8Net(tf.Module):
    """A camera pipeline's model: uint8 pixels in, scaled inside."""

    def __init__(self):
        super().__init__()
        self.w = tf.Variable(np.random.default_rng(3).normal(0, 0.5, (3, 3, 3, 2)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([1, 16, 16, 3], tf.uint8, name="image")])
    def serve(self, image):
        x = tf.cast(image, tf.float32) / 255.0
        return {"map": tf.sigmoid(tf.nn.conv2d(x, self.w, 1, "SAME") * 4.0)}


def test_uint8_savedmodel_card_says_pixels_and_verify_feeds_them(tmp_path, capsys):
    net = Uint8Net()
    tf.saved_model.save(net, str(tmp_path / "u8"), signatures={"serving_default": net.serve})
    out = tmp_path / "u8.tflite"
    _ok(["convert", "--model", tmp_path / "u8", "--format", "tflite", "--out", out])
    card = json.loads((tmp_path / "u8.tflite.model_card.json").read_text())["inputs"][0]
    assert card["dtype"] == "uint8" and card["range"] == [0.0, 255.0], card
    rc, report = _verify(capsys, tmp_path / "u8", out)
    assert rc == 0, report
    # pixel values reach a uint8 input rounded (127.6 is 128), not truncated
    from edgepipe.evaluate.runners import open_runner
    got = next(iter(open_runner(out).predict(np.full((1, 16, 16, 3), 127.6, np.float32)).values()))
    want = net.serve(tf.constant(np.full((1, 16, 16, 3), 128, np.uint8)))["map"].numpy()
    assert np.abs(got - want).max() < 1e-5
    # full int8 calibrates the uint8 signature with pixels (it once fed it floats and failed)
    _ok(["convert", "--model", tmp_path / "u8", "--format", "tflite", "--mode", "int8", "--out", tmp_path / "u8i.tflite"])
    rc, report = _verify(capsys, tmp_path / "u8", tmp_path / "u8i.tflite")
    assert rc == 0, report
    # and so does ONNX's int8 (its calibration fed floats to the uint8 input and failed)
    _ok(["convert", "--model", tmp_path / "u8", "--variant", "onnx_int8", "--out", tmp_path / "u8i.onnx"])
    rc, report = _verify(capsys, tmp_path / "u8", tmp_path / "u8i.onnx")
    assert rc == 0, report


def test_a_keras_model_with_uint8_input_takes_uint8_in_every_file_its_card_names(tmp_path, capsys):
    """Keras' own converter would turn a uint8 input into float32 (and int8 calibration then
    failed); ONNX keeps uint8. Every export now takes what the model takes, as its card says;
    an int8 file's card says int8 where the model took floats."""
    from edgepipe.evaluate.runners import open_runner
    x = keras.Input((16, 16, 3), dtype="uint8", name="image")
    h = keras.layers.Rescaling(1 / 255)(tf.cast(x, tf.float32))
    model = keras.Model(x, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(h))))
    model.save(tmp_path / "u8.keras")
    pixels = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3)).astype(np.float32)
    want = model.predict(pixels.astype(np.uint8), verbose=0)
    for variant, out in (("tflite_float32", "u8.tflite"), ("onnx_float32", "u8.onnx"), ("tflite_int8", "u8i.tflite")):
        _ok(["convert", "--model", tmp_path / "u8.keras", "--variant", variant, "--out", tmp_path / out])
        full = json.loads((tmp_path / f"{out}.model_card.json").read_text())
        card = full["inputs"][0]
        runner = open_runner(tmp_path / out)
        assert card["dtype"] == "uint8" and card["range"] == [0.0, 255.0], (variant, card)
        if "int8" in variant:  # TFLite's scale 0 means "not quantized": an app dividing by it fed garbage
            assert full["artifacts"][0]["quantization"]["input"] == {"name": card["name"], "scale": 1.0, "zero_point": 0,
                                                                     "dtype": "uint8", "quantized": False}
        assert runner.inputs[0].dtype in ("uint8", "tensor(uint8)"), (variant, runner.inputs[0])
        got = next(iter(runner.predict(pixels).values()))
        assert np.abs(got - want).max() <= (0.05 if "int8" in variant else 1e-4) * np.abs(want).max()
    x = keras.Input((16, 16, 3))
    keras.Model(x, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x))).save(tmp_path / "f.keras")
    for variant in ("tflite_float32", "tflite_float16", "tflite_dynamic", "tflite_int8", "tflite_int8_float_io",
                    "tflite_uint8", "tflite_int16x8"):  # the card says what each file takes
        out = tmp_path / f"f_{variant}.tflite"
        _ok(["convert", "--model", tmp_path / "f.keras", "--variant", variant, "--out", out])
        card = json.loads(Path(f"{out}.model_card.json").read_text())["inputs"][0]
        assert card["dtype"] == open_runner(out).inputs[0].dtype, variant


def test_a_pruned_tutorial_model_still_says_it_takes_raw_pixels():
    """tfmot's wrap and strip reuse the Rescaling layer, so it has nodes in three models; reading
    the pruned model's input spec must follow only its own (it once found no Rescaling at all, and
    prune scored and calibrated the model on [0, 1] images)."""
    from edgepipe.convert.inputspec import from_model
    from edgepipe.quantize import prune
    x = keras.Input((16, 16, 3))
    h = keras.layers.Conv2D(4, 3, activation="relu")(keras.layers.Rescaling(1 / 255)(x))
    model = keras.Model(x, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(h)))
    pruned = prune.strip(prune.wrap(model, 0.5, 2, "unstructured", "polynomial", False))
    assert from_model(model).value_range() == [0.0, 255.0]
    assert from_model(pruned) is not None and from_model(pruned).value_range() == [0.0, 255.0]


def test_a_keras_model_saved_by_tf_saved_model_converts_through_its_signature(tmp_path, capsys):
    """tf.saved_model.save on a Keras model keeps Keras nodes but not their configs: Keras cannot
    rebuild it, so convert and verify take its serving signature (they once refused it)."""
    x = keras.Input((16, 16, 3))
    model = keras.Model(x, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(x))))
    tf.saved_model.save(model, str(tmp_path / "sm"))
    out = tmp_path / "sm.tflite"
    _ok(["convert", "--model", tmp_path / "sm", "--format", "tflite", "--out", out])
    assert "does not say how pixels map" in capsys.readouterr().err
    rc, report = _verify(capsys, tmp_path / "sm", out)
    assert rc == 0, report


def test_a_single_logit_head_is_gated_as_a_dense_output(tmp_path, capsys):
    """The transfer-learning tutorial's binary head, Dense(1): verify once called it a classifier
    (two dimensions) and crashed looking for the top-1 agreement it cannot have."""
    x = keras.Input((16, 16, 3))
    h = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, activation="relu")(x))
    keras.Model(x, keras.layers.Dense(1)(h)).save(tmp_path / "binary.keras")
    out = tmp_path / "binary.int8.tflite"
    _ok(["convert", "--model", tmp_path / "binary.keras", "--variant", "tflite_int8", "--out", out])
    rc, report = _verify(capsys, tmp_path / "binary.keras", out, "--no-drill-down")
    assert rc in (0, 1) and report["outputs"][0]["gate"].startswith("psnr_db"), report


def _keras3_tutorial(path: Path) -> None:
    """The TF image-classification tutorial's model as TF 2.16+'s own tf.keras (Keras 3) saves it:
    augmentation layers inside, Rescaling(1/255), Dropout; small."""
    from edgepipe.base.backend import keras3 as k3
    augment = k3.Sequential([k3.layers.RandomFlip("horizontal"), k3.layers.RandomRotation(0.1),
                             k3.layers.RandomZoom(0.1)])
    model = k3.Sequential([k3.Input((32, 32, 3)), augment, k3.layers.Rescaling(1.0 / 255),
                           k3.layers.Conv2D(4, 3, activation="relu"), k3.layers.MaxPooling2D(),
                           k3.layers.Dropout(0.2), k3.layers.Flatten(), k3.layers.Dense(3)])
    model.save(path)


def test_a_keras_3_tutorial_model_converts_verifies_and_says_it_takes_raw_pixels(tmp_path, capsys):
    """TF 2.21's own tf.keras is Keras 3, whose files tf_keras cannot rebuild: they were refused.
    Keras 3 loads them and exports the inference function; its random augmentation layers (which
    would leave random state in the graph) are dropped, since they do nothing at inference."""
    _keras3_tutorial(tmp_path / "tutorial.keras")
    for variant in ("tflite_float32", "tflite_int8", "onnx_float32"):
        out = tmp_path / f"{variant}.{variant.split('_')[0]}"
        _ok(["convert", "--model", tmp_path / "tutorial.keras", "--variant", variant, "--out", out])
        card = json.loads(Path(f"{out}.model_card.json").read_text())
        image = card["inputs"][0]
        assert image["range"] == [0.0, 255.0] and image["normalization"]["source"] == "model", image
        rc, report = _verify(capsys, tmp_path / "tutorial.keras", out)
        # an untrained 3-class head has near ties, which int8 may flip: its gate may fail, not the verify
        assert rc == 0 or (variant == "tflite_int8" and rc == 1), report
        assert report["outputs"][0]["cosine"] > 0.99, report


def _keras3_functional_tutorial():
    """keras.io's "image classification from scratch" shape: a functional model whose input
    flows through an augmentation block, then Rescaling(1/255); small. Keras 3, unsaved."""
    from edgepipe.base.backend import keras3 as k3
    inputs = k3.Input((32, 32, 3))
    x = k3.Sequential([k3.layers.RandomFlip("horizontal"), k3.layers.RandomRotation(0.1)])(inputs)
    x = k3.layers.Rescaling(1.0 / 255)(x)
    x = k3.layers.Conv2D(4, 3, activation="relu")(x)
    x = k3.layers.GlobalAveragePooling2D()(x)
    return k3.Model(inputs, k3.layers.Dense(2)(k3.layers.Dropout(0.25)(x)))


def test_a_functional_keras_3_tutorial_says_raw_pixels_and_its_direct_export_is_refused(tmp_path, capsys):
    """Dropping the augmentation block leaves Rescaling shared with the original model, which
    hid it from the input walk (the card said pixel / 255). And Keras 3's model.export traces the
    augmentation active: a SavedModel that flips and rotates at random cannot be exported to
    match, so it is refused in one line that names the way out, and nothing is written."""
    model = _keras3_functional_tutorial()
    model.save(tmp_path / "scratch.keras")
    out = tmp_path / "scratch.tflite"
    _ok(["convert", "--model", tmp_path / "scratch.keras", "--format", "tflite", "--out", out])
    image = json.loads(Path(f"{out}.model_card.json").read_text())["inputs"][0]
    assert image["range"] == [0.0, 255.0] and image["normalization"]["source"] == "model", image
    model.export(tmp_path / "exported", verbose=False)
    _refused(capsys, ["convert", "--model", tmp_path / "exported", "--format", "tflite", "--out",
                      tmp_path / "exported.tflite"], "draws random numbers")
    assert not (tmp_path / "exported.tflite").exists()


def test_keras_3_preprocessing_ops_say_what_pixels_the_model_takes(tmp_path):
    """Keras 3 keeps ``x / 127.5 - 1`` (what ``preprocess_input`` of keras.applications' MobileNets
    does inside the TF transfer-learning tutorial's model) as ops, not layers, and the input walk
    missed them: the card said pixel / 255 to a model that takes raw pixels. Per-channel
    constants (a torch-style mean and std) are read too."""
    from edgepipe.base.backend import keras3 as k3
    import tensorflow as tf
    inputs = k3.Input((32, 32, 3))
    x = k3.Sequential([k3.layers.RandomFlip("horizontal")])(inputs)
    x = tf.keras.applications.mobilenet_v2.preprocess_input(x)
    base = k3.Sequential([k3.Input((32, 32, 3)), k3.layers.Conv2D(4, 3), k3.layers.GlobalAveragePooling2D()])
    k3.Model(inputs, k3.layers.Dense(2)(base(x))).save(tmp_path / "transfer.keras")
    inputs = k3.Input((32, 32, 3))
    x = (inputs / 255.0 - np.array([0.485, 0.456, 0.406], np.float32)) / np.array([0.229, 0.224, 0.225], np.float32)
    k3.Model(inputs, k3.layers.Conv2D(2, 3)(x)).save(tmp_path / "torch_style.keras")
    for name, ops in (("transfer", "TrueDivide, Subtract"), ("torch_style", "TrueDivide, Subtract, TrueDivide")):
        out = tmp_path / f"{name}.tflite"
        _ok(["convert", "--model", tmp_path / f"{name}.keras", "--format", "tflite", "--out", out])
        image = json.loads(Path(f"{out}.model_card.json").read_text())["inputs"][0]
        assert image["range"] == [0.0, 255.0] and image["normalization"]["source"] == "model", image
        assert f"({ops})" in image["description"], image


def test_caffe_style_preprocess_input_says_raw_pixels_in_both_kerases(tmp_path, capsys):
    """ResNet50's and VGG16's ``preprocess_input`` (caffe mode) reorders RGB to BGR, then
    subtracts a mean per channel: Keras 3 as three ``x[..., i]`` and a stack, tf_keras as
    ``x[..., ::-1]`` and ``nn.bias_add``. The walk stopped at the reorder, and the card said
    pixel / 255 to a model that takes raw RGB pixels (and int8 calibrated on the wrong range)."""
    import tensorflow as tf
    from edgepipe.base.backend import keras3 as k3
    inputs = k3.Input((16, 16, 3))
    x = k3.applications.resnet50.preprocess_input(inputs)
    k3.Model(inputs, k3.layers.Conv2D(2, 3)(x)).save(tmp_path / "k3.keras")
    inputs = keras.Input((16, 16, 3))
    x = keras.applications.vgg16.preprocess_input(inputs)
    keras.Model(inputs, keras.layers.Conv2D(2, 3)(x)).save(tmp_path / "k2.h5")
    for name, ops in (("k3.keras", "RGB->BGR, Add"), ("k2.h5", "RGB->BGR, nn.bias_add")):
        out = tmp_path / f"{name}.tflite"
        _ok(["convert", "--model", tmp_path / name, "--format", "tflite", "--out", out])
        image = json.loads(Path(f"{out}.model_card.json").read_text())["inputs"][0]
        assert image["range"] == [0.0, 255.0] and image["color_order"] == "RGB", image
        assert f"({ops})" in image["description"], image
        rc, report = _verify(capsys, tmp_path / name, out)
        assert rc == 0 and report["outputs"][0]["max_abs"] < 1e-3, report


def test_a_channel_reversal_alone_says_nothing_and_a_keras_3_slice_is_no_foreign_class(tmp_path):
    """``x[..., ::-1]`` is saved with Keras 3's ``__slice__`` encoding, which the file check
    took for a foreign class; a reorder alone says nothing about the pixels' range."""
    from edgepipe.base.backend import keras3 as k3
    inputs = k3.Input((8, 8, 3))
    k3.Model(inputs, k3.layers.Conv2D(2, 1)(inputs[..., ::-1])).save(tmp_path / "bgr.keras")
    out = tmp_path / "bgr.tflite"
    _ok(["convert", "--model", tmp_path / "bgr.keras", "--format", "tflite", "--out", out])
    image = json.loads(Path(f"{out}.model_card.json").read_text())["inputs"][0]
    assert image["normalization"]["source"] == "default", image


def test_a_rescaling_in_front_of_a_backbone_that_rescales_again_says_raw_pixels(tmp_path, capsys):
    """The transfer-learning wrapper ``Rescaling(1/255) -> EfficientNet`` (which rescales and
    normalises inside again): the whole chain maps pixels nowhere sensible, and the walk gave up
    with a false note and a pixel / 255 card, on which verify failed a correct export."""
    L = keras.layers
    inner = keras.Input((16, 16, 3))
    y = L.Normalization(mean=[0.485, 0.456, 0.406], variance=[0.052, 0.05, 0.051])(L.Rescaling(1 / 255)(inner))
    base = keras.Model(inner, L.Conv2D(4, 3, activation="relu")(y))
    inputs = keras.Input((16, 16, 3))
    x = L.GlobalAveragePooling2D()(base(L.Rescaling(1 / 255)(inputs), training=False))
    keras.Model(inputs, L.Dense(3)(x)).save(tmp_path / "wrapped.h5")
    out = tmp_path / "wrapped.tflite"
    _ok(["convert", "--model", tmp_path / "wrapped.h5", "--format", "tflite", "--out", out])
    image = json.loads(Path(f"{out}.model_card.json").read_text())["inputs"][0]
    assert image["range"] == [0.0, 255.0] and image["normalization"]["source"] == "model", image
    assert "(Rescaling)" in image["description"], image


def test_an_out_named_for_another_format_is_refused(tmp_path, capsys):
    x = keras.Input((8, 8, 3))
    keras.Model(x, keras.layers.Conv2D(2, 1)(x)).save(tmp_path / "m.h5")
    for fmt, out in (("tflite", "m.onnx"), ("onnx", "m.tflite"), ("coreml", "m.tflite")):
        _refused(capsys, ["convert", "--model", tmp_path / "m.h5", "--format", fmt, "--out", tmp_path / out],
                 f"the export is {fmt}")
        assert not (tmp_path / out).exists()
    _refused(capsys, ["quantize", "--model", tmp_path / "m.h5", "--mode", "dynamic", "--out", tmp_path / "q.onnx"],
             "the export is tflite")
    for argv in (["convert", "--format", "tflite"], ["quantize", "--mode", "dynamic"]):  # a name no runtime knows
        _refused(capsys, [*argv, "--model", tmp_path / "m.h5", "--out", tmp_path / "m.txt"], "end it with .tflite")
        assert not (tmp_path / "m.txt").exists()
    _refused(capsys, ["convert", "--model", tmp_path / "m.h5", "--out", tmp_path / "m.mlmodel"], "as .mlpackage")
    _ok(["convert", "--model", tmp_path / "m.h5", "--out", tmp_path / "m.onnx"])  # --out names the format
    import onnx
    onnx.checker.check_model(str(tmp_path / "m.onnx"))


def test_keras_applications_own_layer_classes_are_not_foreign(tmp_path):
    """ConvNeXt's LayerScale lives in keras.src.applications.convnext: Keras's own code,
    which the file check refused as a foreign class."""
    from edgepipe.base.backend import keras3 as k3
    from edgepipe.base.modelio import check_configs, find_foreign_code, read_configs
    k3.applications.ConvNeXtTiny(weights=None, input_shape=(32, 32, 3), classes=2).save(tmp_path / "cx.keras")
    check_configs(tmp_path / "cx.keras", "keras", "keras3")  # raised "refused: ... LayerScale"; loading is Keras's
    config = read_configs(tmp_path / "cx.keras", "keras")[0][0]
    layer_scale = next(layer for layer in config["config"]["layers"] if layer["class_name"] == "LayerScale")
    layer_scale["module"] = "evil.applications.convnext"  # ... while the same class from elsewhere is foreign
    assert "LayerScale" in find_foreign_code(config, api="keras3")


def test_a_keras_3_softmax_classifier_card_says_probabilities(tmp_path):
    """The card's output activation came from tf_keras layers only: a Keras 3 softmax head was
    called logits, and the TFLite metadata lost its (0, 1) range."""
    from edgepipe.base.backend import keras3 as k3
    x = k3.Input((16, 16, 3))
    pooled = k3.layers.GlobalAveragePooling2D()(x)
    for name, head in (("soft", k3.layers.Dense(3, activation="softmax")), ("logits", k3.layers.Dense(3))):
        k3.Model(x, head(pooled)).save(tmp_path / f"{name}.keras")
        (tmp_path / "labels.txt").write_bytes(b"\xef\xbb\xbfa\r\nb\r\nc\r\n")  # as Windows Notepad saves it
        out = tmp_path / f"{name}.tflite"
        _ok(["convert", "--model", tmp_path / f"{name}.keras", "--format", "tflite", "--labels",
             tmp_path / "labels.txt", "--out", out])
        card = json.loads(Path(f"{out}.model_card.json").read_text())
        assert card["labels"] == ["a", "b", "c"], card["labels"]  # the byte-order mark named class 0 "\ufeffa"
        output = card["outputs"][0]
        assert output["activation"] == ("softmax" if name == "soft" else "linear"), output
        assert output["meaning"].startswith("class probabilities" if name == "soft" else "class scores"), output
    # a tf_keras model ending in a Softmax layer (not a Dense's own activation) was called logits
    from edgepipe.mobile_models.graph import output_activation
    y = keras.Input((16, 16, 3))
    ends = keras.layers.Softmax()(keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(y)))
    assert output_activation(keras.Model(y, ends)) == "softmax"
    # an activation behind a Reshape is still the output's; a softmax over another axis is no one's
    pooled = keras.layers.GlobalAveragePooling2D()(y)
    boxes = keras.layers.Reshape((2, 4))(keras.layers.Dense(8, activation="sigmoid")(pooled))
    scores = keras.layers.Flatten()(keras.layers.Reshape((1, 3))(keras.layers.Dense(3, activation="softmax")(pooled)))
    mixed = keras.layers.Reshape((2, 4))(keras.layers.Dense(8, activation="softmax")(pooled))
    assert [output_activation(keras.Model(y, [boxes, scores, mixed]), i) for i in range(3)] == \
        ["sigmoid", "softmax", "linear"]
    k3_pooled = k3.layers.GlobalAveragePooling2D()(x)
    k3_boxes = k3.layers.Reshape((2, 4))(k3.layers.Dense(8, activation="sigmoid")(k3_pooled))
    k3.Model(x, [k3_boxes, k3.layers.Reshape((3,))(k3.layers.Dense(3, activation="softmax")(k3_pooled))]).save(
        tmp_path / "det.keras")
    _ok(["convert", "--model", tmp_path / "det.keras", "--format", "tflite", "--out", tmp_path / "det.tflite"])
    outputs = json.loads((tmp_path / "det.tflite.model_card.json").read_text())["outputs"]
    assert sorted(o["activation"] for o in outputs) == ["sigmoid", "softmax"], outputs


def test_a_keras_3_models_stored_constants_are_no_onnx_inputs(tmp_path, capsys):
    """An adapted Normalization's mean and variance are constants the Keras 3 export captures;
    tf2onnx made each an ONNX input the app would have to feed (and verify, bench and int8
    calibration then refused the file). They are frozen in."""
    import onnxruntime
    from edgepipe.base.backend import keras3 as k3
    norm = k3.layers.Normalization()
    norm.adapt(np.random.default_rng(0).random((8, 16, 16, 3)).astype(np.float32) * 255)
    x = k3.Input((16, 16, 3))
    k3.Model(x, k3.layers.Dense(2)(k3.layers.GlobalAveragePooling2D()(norm(x)))).save(tmp_path / "norm.keras")
    out = tmp_path / "norm.onnx"
    _ok(["convert", "--model", tmp_path / "norm.keras", "--format", "onnx", "--out", out])
    assert len(onnxruntime.InferenceSession(str(out)).get_inputs()) == 1
    rc, report = _verify(capsys, tmp_path / "norm.keras", out)
    assert rc == 0 and report["outputs"][0]["max_abs"] < 1e-4, report


def test_a_keras_3_lambda_is_refused_unless_trusted(tmp_path, capsys):
    from edgepipe.base.backend import keras3 as k3
    x = k3.Input((8, 8, 3))
    k3.Model(x, k3.layers.Lambda(lambda t: t * 2.0)(x)).save(tmp_path / "lam.keras")
    _refused(capsys, ["convert", "--model", tmp_path / "lam.keras", "--format", "tflite", "--out",
                      tmp_path / "lam.tflite"], "Lambda")
    assert not (tmp_path / "lam.tflite").exists()


def test_a_keras_3_file_that_keras_3_cannot_load_is_one_line(tmp_path, capsys):
    """A tf_keras file whose metadata says Keras 3 (hand-edited, or a newer Keras's) goes to
    Keras 3, which cannot rebuild it: one line, not a traceback."""
    import zipfile
    x = keras.Input((8, 8, 3))
    keras.Model(x, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x))).save(tmp_path / "k2.keras")
    with zipfile.ZipFile(tmp_path / "k2.keras") as src, zipfile.ZipFile(tmp_path / "k3.keras", "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            dst.writestr(name, json.dumps({"keras_version": "3.15.1"}) if name == "metadata.json" else data)
    for trust in ([], ["--trust-model"]):
        _refused(capsys, ["convert", "--model", tmp_path / "k3.keras", "--format", "tflite", "--out",
                          tmp_path / "k3.tflite", *trust], "k3.keras")
    assert not (tmp_path / "k3.tflite").exists()


class Warp(tf.Module):
    """An op tf2onnx has no ONNX mapping for (what Keras 3's RandomRotation and RandomZoom leave)."""

    @tf.function(input_signature=[tf.TensorSpec([1, 16, 16, 3], tf.float32, name="image")])
    def serve(self, image):
        shift = tf.constant([[1, 0, 2, 0, 1, 0, 0, 0]], tf.float32)
        return {"warped": tf.raw_ops.ImageProjectiveTransformV3(
            images=image, transforms=shift, output_shape=[16, 16], fill_value=0.0, interpolation="BILINEAR")}


def test_an_op_onnx_lacks_is_one_line_and_no_file(tmp_path, capsys):
    """tf2onnx logs the op it cannot map, keeps it as a node and returns; edgepipe wrote that
    file, which no runtime loads, and exited 0."""
    net = Warp()
    tf.saved_model.save(net, str(tmp_path / "warp"), signatures={"serving_default": net.serve})
    _refused(capsys, ["convert", "--model", tmp_path / "warp", "--format", "onnx", "--out", tmp_path / "warp.onnx",
                      "--input-range", "0,1"],
             "ImageProjectiveTransformV3")
    assert not list(tmp_path.glob("warp.onnx*"))


def test_outputs_named_by_tensorflow_ops_reach_core_ml(tmp_path, capsys):
    """A model ending in tf.nn.softmax / tf.math.argmax names its outputs 'tf.nn.softmax', which
    an ML Program may not call a feature: Core ML conversion failed. The file and its card now say
    tf_nn_softmax, and verify matches them to the original's outputs (argmax runs in the reference
    interpreter too)."""
    x = keras.Input((16, 16, 3))
    logits = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(x)))
    keras.Model(x, [tf.nn.softmax(logits), tf.math.argmax(logits, axis=-1)]).save(tmp_path / "ops.keras")
    out = tmp_path / "ops.mlpackage"
    _ok(["convert", "--model", tmp_path / "ops.keras", "--format", "coreml", "--out", out])
    card = json.loads((tmp_path / "ops.mlpackage.model_card.json").read_text())
    from edgepipe.convert.coreml import _coremltools
    described = _coremltools().utils.load_spec(str(out)).description
    assert {o["name"] for o in card["outputs"]} == {o.name for o in described.output} == {"tf_nn_softmax",
                                                                                         "tf_math_argmax"}
    rc, report = _verify(capsys, tmp_path / "ops.keras", out, "--no-drill-down", "--allow-constant-outputs")
    assert rc in (0, 1) and {r["output"] for r in report["outputs"]} == {"tf.nn.softmax", "tf.math.argmax"}, report


def test_quantize_refuses_two_inputs_with_a_command_that_works(tmp_path, capsys):
    """quantize sent a two-input model to a command that refused it too; the first one it names
    now runs as given."""
    import re
    import shlex
    two_input_model().save(tmp_path / "two.keras")
    line = _refused(capsys, ["quantize", "--model", tmp_path / "two.keras", "--mode", "int8", "--out",
                             tmp_path / "q.tflite"], "one input")
    suggested = shlex.split(re.search(r"`edgepipe ([^`]+)`", line)[1])
    _ok([*suggested, "--out", tmp_path / "two.tflite"])


def test_full_int8_of_two_inputs_calibrates_each_on_its_own_array(tmp_path, capsys):
    """int8 calibration fed one input only; a two-input model was refused. Each input is now
    calibrated on its own array of the .npz (generated: pixels, and a vector in [0, 10], whose
    int8 scales must differ accordingly), and verify passes the file on the same data."""
    from ai_edge_litert.interpreter import Interpreter
    two_input_model().save(tmp_path / "two.keras")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "inputs.npz", image=rng.integers(0, 256, (24, 16, 16, 3), np.uint8),
             vec=rng.uniform(0, 10, (24, 4)).astype(np.float32))
    out = tmp_path / "two.int8.tflite"
    _ok(["convert", "--model", tmp_path / "two.keras", "--variant", "tflite_int8", "--data",
         tmp_path / "inputs.npz", "--out", out])
    scales = {d["name"].split(":")[0].rsplit("_", 1)[-1]: d["quantization"][0]
              for d in Interpreter(model_path=str(out)).get_input_details()}
    assert any(abs(s - 1 / 255) < 1e-4 for s in scales.values()), scales  # the pixels, mapped to [0, 1]
    assert any(abs(s - 10 / 255) < 0.002 for s in scales.values()), scales  # the vector, as it is
    rc, report = _verify(capsys, tmp_path / "two.keras", out, "--data", tmp_path / "inputs.npz")
    assert rc == 0 and report["pass"], report
    # an .npy cannot feed two inputs, and the refusal says what can
    np.save(tmp_path / "one.npy", np.zeros((4, 16, 16, 3), np.float32))
    _refused(capsys, ["convert", "--model", tmp_path / "two.keras", "--variant", "tflite_int8", "--data",
                      tmp_path / "one.npy", "--out", tmp_path / "x.tflite"], "one array per input name")


class Subclassed(keras.Model):
    """A model defined by its call: its class is not at hand when the SavedModel is loaded."""

    def __init__(self):
        super().__init__()
        self.conv, self.dense = keras.layers.Conv2D(4, 3, activation="relu"), keras.layers.Dense(3)

    def call(self, x):
        return self.dense(tf.reduce_mean(self.conv(x), [1, 2]))


def test_a_subclassed_keras_savedmodel_converts_through_its_signature(tmp_path, capsys):
    """Refused as a foreign class, and trusted, Keras revived it with no inputs and convert
    crashed; its serving signature is the model, loaded and checked as a tf.Module's is."""
    model = Subclassed()
    model(tf.zeros((1, 16, 16, 3)))
    model.save(tmp_path / "sub", save_format="tf")
    for trust in ([], ["--trust-model"]):
        out = tmp_path / f"sub{len(trust)}.tflite"
        _ok(["convert", "--model", tmp_path / "sub", "--format", "tflite", "--out", out, "--input-range", "0,1",
             *trust])
        rc, report = _verify(capsys, tmp_path / "sub", out)
        assert rc == 0, report


def test_int8_of_models_whose_input_is_no_rgb_image(tmp_path, capsys):
    """A feature vector or a grayscale image with its own Rescaling: int8 calibration crashed on
    any input but HxWx3, and quantize's card called every input an RGB image taking float32,
    whatever the file took. The vector is fed as it is; the grayscale image, like an RGB one,
    takes --data in [0, 1] and is mapped to the raw pixels its Rescaling expects."""
    from edgepipe.evaluate.runners import open_runner
    rng = np.random.default_rng(0)
    vec = keras.Input((6,))
    keras.Model(vec, keras.layers.Dense(3)(vec)).save(tmp_path / "vec.keras")
    np.save(tmp_path / "vec.npy", rng.random((8, 6)).astype(np.float32))
    gray = keras.Input((16, 16, 1))
    h = keras.layers.Conv2D(4, 3, activation="relu")(keras.layers.Rescaling(1 / 255)(gray))
    keras.Model(gray, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(h))).save(tmp_path / "gray.keras")
    np.save(tmp_path / "gray.npy", rng.random((8, 16, 16, 1)).astype(np.float32))
    from edgepipe.cli.inputs import sample_inputs
    from edgepipe.convert.inputspec import raw_pixels
    fed = sample_inputs((16, 16, 1), str(tmp_path / "gray.npy"), spec=raw_pixels(), image=True)
    assert np.allclose(fed, np.load(tmp_path / "gray.npy") * 255, atol=1e-3)
    for name, kind in (("vec", "tensor"), ("gray", None)):
        model, data = tmp_path / f"{name}.keras", tmp_path / f"{name}.npy"
        _ok(["convert", "--model", model, "--variant", "tflite_int8", "--data", data, "--out", tmp_path / f"{name}.c.tflite"])
        _ok(["quantize", "--model", model, "--mode", "int8", "--data", data, "--out", tmp_path / f"{name}.q.tflite"])
        card = json.loads((tmp_path / f"{name}.q.tflite.model_card.json").read_text())["inputs"][0]
        assert card.get("kind") == kind and card["dtype"] == open_runner(tmp_path / f"{name}.q.tflite").inputs[0].dtype
    assert card["color_order"] == "GRAYSCALE" and card["range"] == [0.0, 255.0]


def test_a_float64_input_is_fed_and_described_as_float64(tmp_path, capsys):
    """The ONNX file takes tensor(double): its card said float32 and verify fed float32 (exit 2)."""
    from edgepipe.base.backend import keras3 as k3
    inp = k3.Input((8, 8, 3), dtype="float64")
    x = k3.layers.Activation("linear", dtype="float32")(k3.layers.Rescaling(1 / 255, dtype="float64")(inp))
    k3.Model(inp, k3.layers.Dense(3)(k3.layers.GlobalAveragePooling2D()(k3.layers.Conv2D(4, 3)(x)))).save(
        tmp_path / "f64.keras")
    out = tmp_path / "f64.onnx"
    _ok(["convert", "--model", tmp_path / "f64.keras", "--variant", "onnx_float32", "--out", out])
    card = json.loads(Path(f"{out}.model_card.json").read_text())
    assert card["inputs"][0]["dtype"] == "float64" and card["inputs"][0]["range"] == [0.0, 255.0]
    import jsonschema
    jsonschema.validate(card, json.loads(SCHEMA.read_text()))
    rc, report = _verify(capsys, tmp_path / "f64.keras", out)
    assert rc == 0, report


def test_a_mixed_precision_model_converts_in_float32(tmp_path, capsys):
    """TensorFlow's mixed-precision guide: a model trained under mixed_float16 failed TFLite
    conversion outright (the converter cannot translate its float16 casts). It converts in
    float32 now, and the float32 export passes verify's float32 gate."""
    from edgepipe.base.backend import keras3 as k3
    L = k3.layers
    k3.mixed_precision.set_global_policy("mixed_float16")
    try:
        inp = k3.Input((8, 8, 3))
        x = L.GlobalAveragePooling2D()(L.Conv2D(4, 3, activation="relu")(L.Rescaling(1 / 255)(inp)))
        k3.Model(inp, L.Activation("softmax", dtype="float32")(L.Dense(3)(x))).save(tmp_path / "mp.keras")
    finally:
        k3.mixed_precision.set_global_policy("float32")
    for variant in ("tflite_float32", "tflite_int8"):
        out = tmp_path / f"{variant}.tflite"
        _ok(["convert", "--model", tmp_path / "mp.keras", "--variant", variant, "--out", out])
        assert json.loads(Path(f"{out}.model_card.json").read_text())["inputs"][0]["range"] == [0.0, 255.0]
    rc, report = _verify(capsys, tmp_path / "mp.keras", tmp_path / "tflite_float32.tflite")
    assert rc == 0 and report["outputs"][0]["gate"].startswith("max_abs"), report


def test_a_keras_3_models_outputs_keep_their_layer_names(tmp_path, capsys):
    """Keras 3's export calls a list of outputs output_0, output_1: an app looking up
    'box' found nothing. Each format and the card now use the output layers' names."""
    from edgepipe.base.backend import keras3 as k3
    L = k3.layers
    inp = k3.Input((8, 8, 3))
    h = L.GlobalAveragePooling2D()(L.Conv2D(4, 3)(L.Rescaling(1 / 255)(inp)))
    k3.Model(inp, [L.Dense(3, activation="softmax", name="cls")(h), L.Dense(4, name="box")(h)]).save(
        tmp_path / "det.keras")
    for fmt, suffix in (("tflite", ".tflite"), ("onnx", ".onnx")):
        out = tmp_path / f"det{suffix}"
        _ok(["convert", "--model", tmp_path / "det.keras", "--format", fmt, "--out", out])
        names = (_tflite_io if fmt == "tflite" else _onnx_io)(out)[1]
        assert names == {"cls", "box"}, names
        card = json.loads(Path(f"{out}.model_card.json").read_text())
        assert [o["name"] for o in card["outputs"]] == ["cls", "box"], card["outputs"]
        rc, report = _verify(capsys, tmp_path / "det.keras", out)
        assert rc == 0 and {r["output"] for r in report["outputs"]} == {"cls", "box"}, report


def _digit_pixels():
    """scikit-learn's 8x8 digits (recorded scans, 1797 of them) as raw gray pixels 0..255."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    return (digits.images * (255 / 16)).astype(np.float32), digits.target


def _int8_accuracy(path, pixels, labels) -> float:
    """The int8 file fed raw pixels the way an app feeds it: quantized by its input's scale."""
    from ai_edge_litert.interpreter import Interpreter
    interp = Interpreter(model_path=str(path))
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    scale, zero = inp["quantization"]
    hits = 0
    for x, y in zip(pixels, labels):
        q = np.clip(np.round(x.reshape(inp["shape"]) / scale + zero), -128, 127).astype(inp["dtype"])
        interp.set_tensor(inp["index"], q)
        interp.invoke()
        hits += int(interp.get_tensor(out["index"])[0].argmax() == y)
    return hits / len(labels)


def test_a_raw_pixel_digit_classifier_keeps_its_accuracy_in_int8(tmp_path, capsys):
    """The beginner's grayscale classifier: Rescaling(1/255) inside, trained on raw pixels.
    Calibrated on generated data or on the user's --data in [0, 1] (as --help says), int8
    calibrated on [0, 1] and scored 10% on real pixels. Now both calibrate on 0..255. The same
    model with a (N, 8, 8) input is no NHWC image, so its --data is fed as it is: data in
    [0, 1] for a model whose Rescaling takes 0..255 is refused instead of ruining int8."""
    pixels, labels = _digit_pixels()
    keras.utils.set_random_seed(1)
    for name, shape in (("cnn", (8, 8, 1)), ("flat", (8, 8))):
        x = keras.Input(shape)
        h = keras.layers.Rescaling(1 / 255)(x)
        h = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(h) if len(shape) == 3 else h
        model = keras.Model(x, keras.layers.Dense(10)(keras.layers.Dense(32, activation="relu")(keras.layers.Flatten()(h))))
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(pixels.reshape(-1, *shape), labels, epochs=15, batch_size=64, verbose=0)
        model.save(tmp_path / f"{name}.keras")
    test_x, test_y = pixels[:300], labels[:300]
    float_acc = float(np.mean(keras.models.load_model(tmp_path / "cnn.keras").predict(
        test_x[..., None], verbose=0).argmax(-1) == test_y))
    assert float_acc > 0.9
    np.save(tmp_path / "unit.npy", pixels[300:500, ..., None] / 255)
    for flags in ([], ["--data", tmp_path / "unit.npy"]):
        out = tmp_path / f"cnn{len(flags)}.tflite"
        _ok(["convert", "--model", tmp_path / "cnn.keras", "--variant", "tflite_int8", "--out", out, *flags])
        assert _int8_accuracy(out, test_x[..., None], test_y) >= float_acc - 0.03, flags
    np.save(tmp_path / "flat_unit.npy", pixels[300:500] / 255)
    _refused(capsys, ["convert", "--model", tmp_path / "flat.keras", "--variant", "tflite_int8",
                      "--data", tmp_path / "flat_unit.npy", "--out", tmp_path / "flat.tflite"], "up to 255")
    np.save(tmp_path / "flat_raw.npy", pixels[300:500])
    _ok(["convert", "--model", tmp_path / "flat.keras", "--variant", "tflite_int8",
         "--data", tmp_path / "flat_raw.npy", "--out", tmp_path / "flat.tflite"])
    card = json.loads((tmp_path / "flat.tflite.model_card.json").read_text())["inputs"][0]
    assert card["kind"] == "tensor" and card["range"] == [0.0, 255.0], card
    flat_acc = float(np.mean(keras.models.load_model(tmp_path / "flat.keras").predict(test_x, verbose=0).argmax(-1) == test_y))
    assert _int8_accuracy(tmp_path / "flat.tflite", test_x, test_y) >= flat_acc - 0.03


def test_quantize_card_says_the_int8_input_the_file_takes(tmp_path):
    from edgepipe.evaluate.runners import open_runner
    x = keras.Input((16, 16, 3))
    h = keras.layers.Conv2D(4, 3, activation="relu")(keras.layers.Rescaling(1 / 255)(x))
    keras.Model(x, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(h))).save(tmp_path / "m.keras")
    for flags in ([], ["--uint8-io"], ["--float-io"]):
        out = tmp_path / f"m{len(flags) and flags[0]}.tflite"
        _ok(["quantize", "--model", tmp_path / "m.keras", "--mode", "int8", "--out", out, *flags])
        card = json.loads(Path(f"{out}.model_card.json").read_text())["inputs"][0]
        assert card["dtype"] == open_runner(out).inputs[0].dtype and card["range"] == [0.0, 255.0], (flags, card)


def test_commands_that_rewrite_keras_2_layers_refuse_a_keras_3_file_in_one_line(tmp_path, capsys):
    _keras3_tutorial(tmp_path / "tutorial.keras")
    model = tmp_path / "tutorial.keras"
    for argv in (["quantize", "--model", model, "--mode", "int8", "--out", tmp_path / "q.tflite"],
                 ["prune", "--model", model, "--sparsity", "0.5", "--out", tmp_path / "p.keras"],
                 ["profile", model]):
        _refused(capsys, argv, "saved by Keras 3")
    assert not list(tmp_path.glob("[qp].*"))


def test_a_keras_model_without_a_rescaling_layer_gets_a_note_and_edgepipe_networks_do_not(tmp_path, capsys):
    """keras.applications' MobileNets take [-1, 1] with preprocess_input outside the model: the
    bundle cannot know, so convert says what it assumed (it said nothing for Keras 2 files)."""
    from edgepipe.mobile_models import registry

    def tiny(name, rescale):
        x = keras.Input((16, 16, 3))
        h = keras.layers.Rescaling(1 / 127.5, -1)(x) if rescale else x
        h = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(h))
        return keras.Model(x, keras.layers.Dense(3)(h), name=name)
    ours = registry.build("tiny_cnn", input_shape=(16, 16, 3), classes=3)
    for model, noted in ((tiny("mobilenetv2_1.00_224", False), True), (tiny("mine", True), False), (ours, False)):
        path = tmp_path / f"{model.name}.keras"
        model.save(path)
        _ok(["convert", "--model", path, "--format", "tflite", "--out", path.with_suffix(".tflite")])
        err = capsys.readouterr().err
        assert ("no Rescaling/Normalization layer" in err) == noted, (model.name, err)


def test_a_keras_3_model_with_two_image_inputs_gets_each_inputs_own_normalisation(tmp_path, capsys):
    """The signature Keras 3 exports lists its inputs by name (alphabetically), the model in
    the order it was built: the card gave ``zeta``'s Rescaling to ``alpha`` and the reverse,
    an app fed both wrongly (error 86 against a peak of 0.5), and verify passed, feeding the
    same swapped spec to both sides."""
    from edgepipe.base.backend import keras3 as k3
    k3.utils.set_random_seed(12)
    zeta, alpha = k3.Input((16, 16, 3), name="zeta"), k3.Input((16, 16, 3), name="alpha")
    xz = k3.layers.Conv2D(4, 3, activation="relu")(k3.layers.Rescaling(1 / 127.5, offset=-1)(zeta))
    xa = k3.layers.Conv2D(4, 3, activation="relu")(alpha)
    joined = k3.layers.GlobalAveragePooling2D()(k3.layers.concatenate([xz, xa]))
    model = k3.Model([zeta, alpha], k3.layers.Dense(3)(joined))
    model.save(tmp_path / "two.keras")
    out = tmp_path / "two.tflite"
    _ok(["convert", "--model", tmp_path / "two.keras", "--format", "tflite", "--out", out])
    ranges = {i["name"]: i["range"] for i in json.loads(Path(f"{out}.model_card.json").read_text())["inputs"]}
    assert ranges == {"zeta": [0.0, 255.0], "alpha": [0.0, 1.0]}, ranges
    rng = np.random.default_rng(0)
    pixels = {n: rng.integers(0, 256, (1, 16, 16, 3)).astype(np.float32) for n in ("zeta", "alpha")}
    from edgepipe.evaluate.runners import open_runner
    card = {i["name"]: i["normalization"] for i in json.loads(Path(f"{out}.model_card.json").read_text())["inputs"]}
    got = open_runner(out).predict({n: p * np.float32(card[n]["scale"]) + np.float32(card[n]["bias"])
                                    for n, p in pixels.items()})
    want = np.asarray(model([pixels["zeta"], pixels["alpha"] / 255.0], training=False))
    assert np.abs(next(iter(got.values())) - want).max() < 1e-4
    rc, report = _verify(capsys, tmp_path / "two.keras", out)
    assert rc == 0, report


@pytest.mark.parametrize("block", ["pipeline", "solarization"])
def test_keras_3_augmentation_keras_ships_is_dropped_inside_a_pipeline_and_solarization_too(tmp_path, capsys, block):
    """A ``keras.layers.Pipeline`` of augmentation (clone_model does not enter it) and
    ``Solarization``, ``MixUp``, ``CutMix`` (missing from the list) stayed in the export,
    which then drew random numbers: convert was refused, naming a deleted temp folder and
    telling the user to give the .keras file they had given. Both do nothing at inference."""
    from edgepipe.base.backend import keras3 as k3
    L = k3.layers
    inp = k3.Input((16, 16, 3))
    front = L.Pipeline([L.RandomFlip(), L.Rescaling(1 / 255)]) if block == "pipeline" else \
        k3.Sequential([L.Solarization(addition_factor=0.2, value_range=(0, 255)), L.Rescaling(1 / 255)])
    x = L.GlobalAveragePooling2D()(L.Conv2D(4, 3, activation="relu")(front(inp)))
    k3.Model(inp, L.Dense(3)(x)).save(tmp_path / "aug.keras")
    out = tmp_path / "aug.tflite"
    capsys.readouterr()
    _ok(["convert", "--model", tmp_path / "aug.keras", "--format", "tflite", "--out", out])
    assert "Warning" not in capsys.readouterr().err  # nor Keras' input-structure warning
    image = json.loads(Path(f"{out}.model_card.json").read_text())["inputs"][0]
    assert image["range"] == [0.0, 255.0] and image["normalization"]["source"] == "model", image
    rc, report = _verify(capsys, tmp_path / "aug.keras", out)
    assert rc == 0, report


def test_a_keras_3_layer_random_at_inference_is_refused_naming_the_users_file(tmp_path, capsys):
    """A layer of the user's own that draws random numbers at inference (here a trusted Lambda
    adding noise) cannot be exported to match: refused in one line that names the user's
    file and the cause, not the temporary SavedModel edgepipe made from it."""
    from edgepipe.base.backend import keras3 as k3
    inp = k3.Input((16, 16, 3))
    x = k3.layers.GlobalAveragePooling2D()(k3.layers.Conv2D(4, 3)(inp))
    noisy = k3.layers.Lambda(lambda t: t + k3.random.normal(k3.ops.shape(t)))(x)
    k3.Model(inp, k3.layers.Dense(3)(noisy)).save(tmp_path / "noisy.keras")
    line = _refused(capsys, ["convert", "--model", tmp_path / "noisy.keras", "--format", "tflite", "--out",
                             tmp_path / "noisy.tflite", "--trust-model"], "random")
    assert str(tmp_path / "noisy.keras") in line and "edgepipe-keras3-" not in line, line
    assert not (tmp_path / "noisy.tflite").exists()


def test_an_export_of_another_model_with_tiny_outputs_fails_the_float_gate(tmp_path, capsys):
    """Outputs in units of 1e-5 (a head in small units): 1e-4 alone passed an export of
    another model (cosine -0.7). The absolute part is then 1% of the peak; the model's own
    export still passes."""
    for seed, name in ((1, "a"), (2, "b")):
        keras.utils.set_random_seed(seed)
        inp = keras.Input((16, 16, 3))
        x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(8, 3, activation="relu")(inp))
        keras.Model(inp, keras.layers.Rescaling(1e-5)(keras.layers.Dense(4)(x))).save(tmp_path / f"{name}.keras")
        _ok(["convert", "--model", tmp_path / f"{name}.keras", "--format", "tflite", "--out",
             tmp_path / f"{name}.tflite"])
    rc, report = _verify(capsys, tmp_path / "a.keras", tmp_path / "b.tflite", "--no-drill-down")
    assert rc == 1 and not report["outputs"][0]["pass"], report
    rc, report = _verify(capsys, tmp_path / "a.keras", tmp_path / "a.tflite")
    assert rc == 0, report


def test_an_int8_cards_quantization_is_named_and_in_the_cards_output_order(tmp_path):
    """A head with softmax classes and a 4-value box: TFLite ordered the box first, the card
    lists the classes first, and its quantization list (unnamed, in TFLite's order) paired
    by position dequantized each output with the other's scale (error 0.57 on a peak of
    0.29). Each entry is now named and in the card's order; dequantized as the card says,
    both outputs match Keras."""
    from edgepipe.evaluate.runners import open_runner, tflite_io_names
    keras.utils.set_random_seed(4)
    inp = keras.Input((16, 16, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(8, 3, activation="relu")(
        keras.layers.Rescaling(1 / 255)(inp)))
    model = keras.Model(inp, [keras.layers.Dense(3, activation="softmax", name="classes")(x),
                              keras.layers.Dense(4, name="box")(x)])
    model.save(tmp_path / "two.keras")
    out = tmp_path / "two.int8.tflite"
    _ok(["convert", "--model", tmp_path / "two.keras", "--variant", "tflite_int8", "--out", out])
    card = json.loads(Path(f"{out}.model_card.json").read_text())
    quant = card["artifacts"][0]["quantization"]
    assert [o["name"] for o in quant["outputs"]] == [o["name"] for o in card["outputs"]] == ["classes", "box"]
    assert [i["name"] for i in quant["inputs"]] == [card["inputs"][0]["name"]] and quant["input"] == quant["inputs"][0]
    pixels = np.random.default_rng(0).integers(0, 256, (1, 16, 16, 3)).astype(np.float32)
    runner = open_runner(out)
    runner.interp.set_tensor(runner.interp.get_input_details()[0]["index"],
                             np.clip(np.round(pixels / quant["input"]["scale"] + quant["input"]["zero_point"]),
                                     -128, 127).astype(np.int8))
    runner.interp.invoke()
    raw = {name: runner.interp.get_tensor(d["index"])
           for name, d in zip(tflite_io_names(runner.interp, out)[1], runner.interp.get_output_details())}
    want = dict(zip(["classes", "box"], model.predict(pixels, verbose=0)))
    for entry in quant["outputs"]:
        got = (raw[entry["name"]].astype(np.float32) - entry["zero_point"]) * entry["scale"]
        assert np.abs(got - want[entry["name"]]).max() < 0.05, entry


def test_the_drill_down_pairs_a_two_output_heads_outputs_by_name(tmp_path):
    """TFLite orders this head's box before its classes; the drill-down named the outputs in
    Keras' order, compared the classes' softmax with the box, and blamed 'classes' (relative
    error 8.9) for a gate the box failed. Paired by the signature's names, the classes' int8
    output is within int8 error of Keras."""
    from edgepipe.base.modelio import load_model
    from edgepipe.evaluate.drilldown import drill_down
    keras.utils.set_random_seed(4)
    inp = keras.Input((16, 16, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(8, 3, activation="relu")(inp))
    keras.Model(inp, [keras.layers.Dense(3, activation="softmax", name="classes")(x),
                      keras.layers.Dense(4, name="box")(x)]).save(tmp_path / "two.keras")
    out = tmp_path / "two.int8.tflite"
    _ok(["convert", "--model", tmp_path / "two.keras", "--variant", "tflite_int8", "--out", out])
    x = np.random.default_rng(0).random((1, 16, 16, 3)).astype(np.float32)
    rows = {r["layer"]: r for r in drill_down(load_model(tmp_path / "two.keras"), out, x, "int8")["layers"]}
    assert rows["classes"]["relative_error"] < 0.1 and rows["box"]["relative_error"] < 0.2, rows


def test_a_two_output_tflite_files_metadata_describes_each_tensor_in_the_files_order(tmp_path, tflite_support_metadata):
    """Readers pair metadata with tensors by position. TFLite orders this head's outputs
    by name (``boxes``, ``scores``), the card follows the model (``scores``, ``boxes``):
    the metadata called the box tensor a softmax in [0, 1]."""
    from edgepipe.evaluate.runners import open_runner, tflite_io_names
    keras.utils.set_random_seed(4)
    inp = keras.Input((16, 16, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(8, 3, activation="relu")(inp))
    model = keras.Model(inp, [keras.layers.Dense(3, activation="softmax", name="scores")(x),
                              keras.layers.Dense(4, name="boxes")(x)])
    model.save(tmp_path / "two.keras")
    for variant in ("tflite_float32", "tflite_int8"):
        out = tmp_path / f"two.{variant}.tflite"
        _ok(["convert", "--model", tmp_path / "two.keras", "--variant", variant, "--out", out])
        shown = json.loads(tflite_support_metadata.MetadataDisplayer.with_model_file(str(out)).get_metadata_json())
        described = shown["subgraph_metadata"][0]["output_tensor_metadata"]
        in_file = tflite_io_names(open_runner(out).interp, out)[1]
        assert in_file == ["boxes", "scores"], in_file  # the converter's order, which the metadata must follow
        assert [d["name"] for d in described] == in_file
        assert "softmax" in described[1]["description"] and "softmax" not in described[0]["description"]
        # an app calls it by name through LiteRT's signature runner (the converter wrote no signature)
        from ai_edge_litert.interpreter import Interpreter
        runner = Interpreter(model_path=str(out)).get_signature_runner("serving_default")
        (name, detail), = runner.get_input_details().items()
        got = runner(**{name: np.zeros(detail["shape"], detail["dtype"])})
        assert sorted(got) == ["boxes", "scores"] and got["scores"].shape == (1, 3), {k: v.shape for k, v in got.items()}
    # --auto-fallback converts from a concrete function, whose outputs are Identity, Identity_1:
    # matched to the card by their shapes, which differ, so the file is described and signed all the same
    out = tmp_path / "two.fallback.tflite"
    assert main(["quantize", "--model", str(tmp_path / "two.keras"), "--mode", "int8", "--auto-fallback",
                 "--agreement", "1.0", "--max-float-layers", "1", "--out", str(out)]) in (0, 1)
    shown = json.loads(tflite_support_metadata.MetadataDisplayer.with_model_file(str(out)).get_metadata_json())
    described = [d["name"] for d in shown["subgraph_metadata"][0]["output_tensor_metadata"]]
    from ai_edge_litert.interpreter import Interpreter
    interp = Interpreter(model_path=str(out))
    assert [described[i] for i, o in enumerate(interp.get_output_details()) if list(o["shape"]) == [1, 3]] == ["scores"]
    got = interp.get_signature_runner("serving_default")(**{name: np.zeros((1, 16, 16, 3), np.int8)})
    assert got["scores"].shape == (1, 3) and got["boxes"].shape == (1, 4), {k: v.shape for k, v in got.items()}


def test_an_export_with_its_two_image_inputs_wired_the_wrong_way_round_fails_verify(tmp_path, capsys):
    """verify fed both image inputs the same generated documents, so a hand conversion that
    swapped them gave the same outputs and passed (exit 0). Each image input now sees its own."""
    keras.utils.set_random_seed(0)
    before, after = keras.Input((16, 16, 3), name="before"), keras.Input((16, 16, 3), name="after")
    fb = keras.layers.Conv2D(4, 3, padding="same")(before)
    fa = keras.layers.Conv2D(4, 3, padding="same")(after)
    change = keras.layers.Conv2D(1, 1, activation="sigmoid", name="change")(
        keras.layers.Concatenate()([keras.layers.Subtract()([fa, fb]), fa]))
    model = keras.Model([before, after], change)
    model.save(tmp_path / "change.keras")
    spec = [tf.TensorSpec([1, 16, 16, 3], tf.float32, name=n) for n in ("before", "after")]
    wirings = {"right": lambda b, a: {"change": model([b, a])}, "swapped": lambda b, a: {"change": model([a, b])}}
    for name, wiring in wirings.items():
        fn = tf.function(wiring, input_signature=spec)
        converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], model)
        (tmp_path / f"{name}.tflite").write_bytes(converter.convert())
    assert _verify(capsys, tmp_path / "change.keras", tmp_path / "right.tflite")[0] == 0
    assert _verify(capsys, tmp_path / "change.keras", tmp_path / "swapped.tflite")[0] == 1


def test_outputs_without_a_batch_axis_are_carded_with_their_own_shape(tmp_path):
    """A signature returning a squeezed (5,) and a scalar: the card put the batch in place of
    the first axis and said [1] for both, which the file does not give."""
    from edgepipe.evaluate.runners import open_runner, tflite_io_names

    class Squeezed(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 8, 8, 3], tf.float32, name="image")])
        def serve(self, image):
            probs = tf.nn.softmax(tf.reshape(tf.reduce_mean(image, [1, 2]), [-1])[:3])
            return {"probs": probs, "total": tf.reduce_sum(image)}
    module = Squeezed()
    tf.saved_model.save(module, str(tmp_path / "sq"), signatures={"serving_default": module.serve})
    out = tmp_path / "sq.tflite"
    _ok(["convert", "--model", tmp_path / "sq", "--out", out])
    card = {o["name"]: o["shape"] for o in json.loads(Path(f"{out}.model_card.json").read_text())["outputs"]}
    runner = open_runner(out)
    in_file = dict(zip(tflite_io_names(runner.interp, out)[1],
                       (list(map(int, d["shape"])) for d in runner.interp.get_output_details())))
    assert card == in_file == {"probs": [3], "total": []}


def test_verify_json_of_an_exact_export_is_strict_json(tmp_path, capsys):
    """An exact match has PSNR +inf, which verify --json printed as Infinity: JSON.parse and jq refuse it."""
    inp = keras.Input((8, 8, 3))
    keras.Model(inp, keras.layers.ReLU()(inp)).save(tmp_path / "relu.keras")
    _ok(["convert", "--model", tmp_path / "relu.keras", "--out", tmp_path / "relu.tflite"])
    rc, report = _verify(capsys, tmp_path / "relu.keras", tmp_path / "relu.tflite")
    assert rc == 0 and report["outputs"][0]["psnr_db"] == "inf"


def test_profile_counts_a_free_size_model_at_the_size_given(tmp_path, capsys):
    """profile refused a model of free input size, with no way to name one."""
    x = keras.Input((None, None, 3))
    y = keras.layers.Conv2D(8, 3, strides=2, padding="same")(x)
    model = tmp_path / "free.keras"
    keras.Model(x, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(y))).save(model)
    _refused(capsys, ["profile", model], "pass --size N")
    macs = {}
    for size in (32, 64):
        assert main(["profile", str(model), "--size", str(size), "--json"]) == 0
        macs[size] = json.loads(capsys.readouterr().out)["macs"]
    assert macs[32] == 16 * 16 * 8 * 27 + 16 and macs[64] == 32 * 32 * 8 * 27 + 16, macs  # the conv's and the dense's


def test_the_range_note_does_not_deny_a_normalization_it_cannot_read(tmp_path, capsys):
    """Per-pixel statistics (Normalization over H, W and C) are no per-channel map; the note
    said the model had no Normalization layer at all."""
    x = keras.Input((8, 8, 3))
    norm = keras.layers.Normalization(axis=(1, 2, 3))
    norm.adapt(np.random.default_rng(0).random((4, 8, 8, 3)).astype(np.float32) * 255)
    model = tmp_path / "perpix.keras"
    keras.Model(x, keras.layers.Dense(2)(keras.layers.Flatten()(norm(x)))).save(model)
    _ok(["convert", "--model", model, "--format", "tflite", "--out", tmp_path / "p.tflite"])
    err = capsys.readouterr().err
    assert "not a per-channel scale and offset" in err and "no Rescaling" not in err, err


def _colour_photos(root, classes=("blue", "green", "red"), per_class=4):
    """Generated photos, one class per bright channel, of odd sizes and formats: an RGBA
    PNG, a grayscale PNG and JPEGs, as a user's folder holds them."""
    import cv2
    rng = np.random.default_rng(0)
    for name in classes:
        c = ("red", "green", "blue").index(name)
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            rgb = rng.integers(20, 60, (30 + 7 * i, 41, 3)).astype(np.uint8)
            rgb[..., c] = 210
            bgr = rgb[..., ::-1]
            if i == 0:
                cv2.imwrite(str(root / name / "a.png"), np.dstack([bgr, np.full(bgr.shape[:2], 255, np.uint8)]))
            else:
                cv2.imwrite(str(root / name / f"{i}.jpg"), bgr)
    (root / "green" / "notes.txt").write_text("not a photo")
    (root / ".DS_Store").write_bytes(b"\0")


def test_a_folder_of_the_users_photos_calibrates_int8_and_labels_itself_for_verify(tmp_path, capsys):
    """--data took .npy alone: a user with a folder of photos had to write numpy first. A folder
    now calibrates convert and quantize (read upright, resized to the input, raw pixels for a
    model with its own Rescaling), and verify scores top-1 on its class folders, numbered in
    sorted order as Keras' image_dataset_from_directory numbers them."""
    x = keras.Input((16, 16, 3))
    head = keras.layers.Dense(3, activation="softmax", name="colour")
    model = keras.Model(x, head(keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(x))))
    head.set_weights([np.eye(3, dtype=np.float32)[::-1] * 10, np.zeros(3, np.float32)])  # RGB: red is class 2
    model.save(tmp_path / "colour.keras")
    _colour_photos(tmp_path / "photos")
    out = tmp_path / "colour.int8.tflite"
    _ok(["quantize", "--model", tmp_path / "colour.keras", "--mode", "int8", "--data", tmp_path / "photos",
         "--out", out])
    assert json.loads(Path(f"{out}.model_card.json").read_text())["inputs"][0]["range"] == [0.0, 255.0]
    capsys.readouterr()
    assert main(["verify", "--model", str(tmp_path / "colour.keras"), "--export", str(out), "--data",
                 str(tmp_path / "photos"), "--json"]) == 0
    said = capsys.readouterr()
    report = json.loads(said.out)
    assert report["outputs"][0]["top1"] == report["outputs"][0]["top1_original"] == 1.0, report
    assert "0=blue, 1=green, 2=red" in said.err
    # labels that do not fit the model's classes are not scored, and it says so
    _colour_photos(tmp_path / "two", classes=("blue", "green"))
    rc, report = _verify(capsys, tmp_path / "colour.keras", out, "--data", tmp_path / "two")
    assert rc == 0 and "top1" not in report["outputs"][0]
    # a grayscale model reads the same photos as one channel
    g = keras.Input((12, 12, 1))
    keras.Model(g, keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(
        keras.layers.Rescaling(1 / 255)(g)))).save(tmp_path / "gray.keras")
    _ok(["convert", "--model", tmp_path / "gray.keras", "--variant", "tflite_int8", "--data", tmp_path / "photos",
         "--out", tmp_path / "gray.tflite"])


@pytest.mark.parametrize("case", ["empty", "corrupt", "not_an_image_input"])
def test_a_data_folder_that_cannot_feed_the_model_is_one_line(tmp_path, capsys, case):
    x = keras.Input((16, 16, 3) if case != "not_an_image_input" else (16,))
    keras.Model(x, keras.layers.Dense(3)(keras.layers.Flatten()(x))).save(tmp_path / "m.keras")
    folder = tmp_path / "photos"
    folder.mkdir()
    if case == "corrupt":
        _colour_photos(tmp_path / "photos" / "set")
        (folder / "set" / "red" / "cut.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    elif case == "not_an_image_input":
        _colour_photos(tmp_path / "photos" / "set")
    capsys.readouterr()
    rc = main(["quantize", "--model", str(tmp_path / "m.keras"), "--mode", "int8", "--data", str(folder),
               "--out", str(tmp_path / "m.tflite")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("edgepipe: error: "), err
    assert {"empty": "holds no images", "corrupt": "cut.jpg", "not_an_image_input": "feeds an image input"}[case] in err[0]
    assert not (tmp_path / "m.tflite").exists()

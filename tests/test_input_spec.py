"""The user's own model, converted right (issue #20): the TF image-classification
tutorial's Sequential model (augmentation block, Rescaling(1/255)) converts and
verifies, and every bundle states the input its model really takes: fed what
its bundle says, each export matches the Keras original fed its true input."""
import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from edgepipe.base.backend import keras
from edgepipe.cli.main import main
from edgepipe.convert.inputspec import DEFAULT, InputSpec, bundle_card, from_model, from_range
from edgepipe.evaluate.runners import open_runner

SIZE = 32
SCHEMA = Path(__file__).resolve().parent.parent / "schemas" / "model_card.schema.json"
IMAGENET_MEAN, IMAGENET_STD = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)


def tutorial_model(size=SIZE):
    """tensorflow.org/tutorials/images/classification, at a small input size."""
    L = keras.layers
    augment = keras.Sequential([L.RandomFlip("horizontal"), L.RandomRotation(0.1), L.RandomZoom(0.1)])
    return keras.Sequential([
        keras.Input((size, size, 3)), augment, L.Rescaling(1. / 255),
        L.Conv2D(16, 3, padding="same", activation="relu"), L.MaxPooling2D(),
        L.Conv2D(32, 3, padding="same", activation="relu"), L.MaxPooling2D(), L.Dropout(0.2),
        L.Flatten(), L.Dense(128, activation="relu"), L.Dense(5)])


def plain_model(size=SIZE):
    """No preprocessing layers: the user says what it takes."""
    L = keras.layers
    return keras.Sequential([keras.Input((size, size, 3), name="image"), L.Conv2D(8, 3, activation="relu"),
                             L.GlobalAveragePooling2D(), L.Dense(4, bias_initializer="ones")])


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    keras.utils.set_random_seed(7)
    folder = tmp_path_factory.mktemp("spec")
    paths = {}
    for name, build in (("tutorial", tutorial_model), ("plain", plain_model)):
        paths[name] = folder / f"{name}.keras"
        build().save(paths[name])
    return paths


@pytest.fixture(scope="module")
def pixels():
    from edgepipe.train.docgen import generate
    return np.stack([generate(99, i, SIZE).image for i in range(4)])  # uint8 RGB


def _convert(model, out, *flags):
    assert main(["convert", "--model", str(model), "--out", str(out), *flags]) == 0
    return out


def _keras(path, x):
    from edgepipe.base.modelio import load_keras
    return load_keras(path).predict(np.asarray(x, np.float32), verbose=0)


def _run(path, x):
    return next(iter(open_runner(path).predict(np.asarray(x, np.float32)).values()))


def _close(ref, got, rel=1e-4):
    err = np.abs(np.asarray(got).reshape(ref.shape) - ref).max()
    assert err <= rel * np.abs(ref).max(), f"max abs {err:.3g} against outputs up to {np.abs(ref).max():.3g}"


# --- reading each format's own statement of the input back -------------------------------

def _tflite_normalization(path):
    """(mean, std, colour space) from the TFLITE_METADATA flatbuffer, parsed here by schema slot."""
    import flatbuffers
    from flatbuffers import number_types as N
    from tensorflow.lite.tools import flatbuffer_utils
    from edgepipe.convert.tflite_metadata import strip_associated_files

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(strip_associated_files(path.read_bytes())))
    entry = next(m for m in model.metadata if m.name.decode() == "TFLITE_METADATA")
    buf = bytearray(model.buffers[entry.buffer].data.tobytes())

    def table(t, slot):  # the table a field points at
        o = t.Offset(4 + 2 * slot)
        return flatbuffers.table.Table(t.Bytes, t.Indirect(o + t.Pos))

    def first(t, slot):  # the first table of a vector field
        o = t.Offset(4 + 2 * slot)
        return flatbuffers.table.Table(t.Bytes, t.Indirect(t.Vector(o)))

    root = flatbuffers.table.Table(buf, flatbuffers.encode.Get(N.UOffsetTFlags.packer_type, buf, 0))
    tensor = first(first(root, 3), 2)  # subgraph_metadata[0].input_tensor_metadata[0]
    options = table(first(tensor, 4), 1)  # process_units[0].options (NormalizationOptions)
    mean, std = (options.GetVectorAsNumpy(N.Float32Flags, options.Offset(4 + 2 * s)) for s in (0, 1))
    props = table(table(tensor, 3), 1)  # content.content_properties (ImageProperties)
    o = props.Offset(4)
    color = props.Get(N.Int8Flags, o + props.Pos) if o else 0
    return mean.astype(np.float64), std.astype(np.float64), {0: "UNKNOWN", 1: "RGB", 2: "GRAYSCALE"}[color]


def _coreml_image_type(path):
    """(scale, bias, colour space, input name) of the ImageType: the mul/add coremltools puts first."""
    import coremltools as ct
    spec = ct.models.MLModel(str(path), skip_model_load=True).get_spec()
    name = spec.description.input[0].name
    block = next(iter(spec.mlProgram.functions["main"].block_specializations.values()))
    consts = {op.outputs[0].name: op.attributes["val"] for op in block.operations if op.type == "const"}

    def value(kind, default):
        v = consts.get(f"{name}__{kind}___y_0")
        return np.asarray(v.immediateValue.tensor.floats.values, np.float64) if v else np.asarray([default])
    space = spec.description.input[0].type.imageType.colorSpace
    color = ct.proto.FeatureTypes_pb2.ImageFeatureType.ColorSpace.Name(space)
    return value("scaled", 1.0), value("biased", 0.0), color, name


def _coreml_on_pixels(path, pixels):
    """The reference interpreter fed 8-bit pixels, as a CVPixelBuffer would (planes in the layout's order)."""
    from edgepipe.evaluate.milref import ReferenceProgram
    _, _, color, name = _coreml_image_type(path)
    planes = pixels[..., ::-1] if color == "BGR" else pixels
    program = ReferenceProgram(path)
    out = [next(iter(program.run({name: p[None].astype(np.float32).transpose(0, 3, 1, 2)}).values()))
           for p in planes]
    return np.concatenate(out)


@pytest.mark.parametrize("layer, takes", [
    (lambda L: L.Rescaling(1 / 255), "pixels"),
    (lambda L: L.Rescaling(1 / 127.5, offset=-1), "pixels"),
    (lambda L: L.Normalization(mean=IMAGENET_MEAN, variance=[s * s for s in IMAGENET_STD]), "pixels"),
    (lambda L: L.Normalization(mean=[123.7, 116.3, 103.5], variance=[1, 1, 1]), "pixels"),  # Caffe: mean only
    (lambda L: L.Rescaling(1.0, offset=-127.5), "pixels"),
    (lambda L: L.Normalization(mean=128.0, variance=100.0), "pixels"),
    (lambda L: L.Normalization(mean=[0.485, 0.456, 0.406], variance=[0.229 ** 2, 0.224 ** 2, 0.225 ** 2]), "unit"),
])
def test_what_a_leading_normalisation_says_the_model_takes(layer, takes):
    """Offsets count, not only scales: mean subtraction in pixel space (Caffe, VGG) means
    raw pixels, even with no division; ImageNet statistics on [0, 1] mean pixel / 255."""
    L = keras.layers
    inp = keras.Input((8, 8, 3))
    model = keras.Model(inp, L.GlobalAveragePooling2D()(L.Conv2D(2, 1)(layer(L)(inp))))
    spec = from_model(model)
    assert spec is not None and spec.source == "model"
    assert spec.value_range(3) == ([0.0, 255.0] if takes == "pixels" else [0.0, 1.0])


@pytest.mark.parametrize("first", ["Resizing", "CenterCrop"])
def test_a_resize_or_crop_before_the_rescaling_still_says_raw_pixels(tmp_path, first):
    """The data-augmentation tutorial's Sequential([Resizing, Rescaling(1/255)]): the walk
    stopped at the resize, the card said pixel / 255, and an app fed a 255th of the pixels.
    Both Kerases, as the user saves them."""
    from edgepipe.base.backend import keras3 as k3
    from edgepipe.base.modelio import load_model
    for name, K in (("tf_keras", keras), ("keras3", k3)):
        L = K.layers
        inp = K.Input((12, 12, 3))
        x = getattr(L, first)(8, 8)(inp)
        x = K.Sequential([L.Rescaling(1 / 255)])(x)
        K.Model(inp, L.Dense(2)(L.GlobalAveragePooling2D()(L.Conv2D(2, 1)(x)))).save(tmp_path / f"{name}.keras")
        spec = from_model(load_model(tmp_path / f"{name}.keras"))
        assert spec is not None and spec.value_range(3) == [0.0, 255.0], (name, spec)


@pytest.mark.parametrize("passes", ["linear", "ActivityRegularization"])
def test_a_layer_that_passes_values_through_before_the_rescaling_still_says_raw_pixels(tmp_path, passes):
    """A linear Activation or an ActivityRegularization in front of Rescaling(1/255) stopped
    the walk: the card said pixel / 255, and an int8 export calibrated on a 255th of the
    pixels passed verify but was 100x off on real ones. A relu is no pass-through."""
    from edgepipe.base.backend import keras3 as k3
    from edgepipe.base.modelio import load_model
    for name, K in (("tf_keras", keras), ("keras3", k3)):
        L = K.layers
        inp = K.Input((12, 12, 3))
        for first, says in ((passes, [0.0, 255.0]), ("relu", None)):
            x = L.Activation(first)(inp) if first in ("linear", "relu") else L.ActivityRegularization()(inp)
            x = L.Rescaling(1 / 255)(x)
            K.Model(inp, L.Dense(2)(L.GlobalAveragePooling2D()(x))).save(tmp_path / f"{name}.keras")
            spec = from_model(load_model(tmp_path / f"{name}.keras"))
            assert (spec and spec.value_range(3)) == says, (name, first, spec)


def test_a_tf_image_resize_before_the_rescaling_still_says_raw_pixels():
    """``tf.image.resize`` on the input is an op layer, not a Resizing layer: the walk stopped
    there, the card said pixel / 255 and int8 calibrated on a 255th of the range (43.5%
    against 96.5% on the helper's model)."""
    from edgepipe.base.backend import tf
    inp = keras.Input((12, 12, 3))
    x = keras.layers.Rescaling(1 / 255)(tf.image.resize(inp, (8, 8)))
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)))
    spec = from_model(model)
    assert spec is not None and spec.value_range(3) == [0.0, 255.0], spec


@pytest.mark.parametrize("mean, variance, image", [(-3.4, 9.0, False), (0.3, 2.2, False), (33.3, 78.6 ** 2, True),
                                                   (0.13, 0.31 ** 2, True)])
def test_a_one_channel_normalization_is_an_image_only_with_pixel_statistics(mean, variance, image):
    """The audio tutorial's spectrogram (Normalization adapted on log-mel or STFT magnitudes)
    was called a grayscale photo taking 0..255, and its own data was refused; one adapted
    on MNIST (raw or / 255) is an image."""
    from edgepipe.convert import graphio
    inp = keras.Input((12, 10, 1))
    x = keras.layers.Normalization(mean=mean, variance=variance)(keras.layers.Resizing(8, 8)(inp))
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(x)))
    assert (from_model(model) is not None) == image
    assert graphio.model_inputs(model)[0].is_image == image


# --- the tutorial model ------------------------------------------------------------------

@pytest.mark.parametrize("fmt,suffix", [("tflite", ".tflite"), ("onnx", ".onnx")])
def test_tutorial_model_converts_and_verifies(saved, tmp_path, fmt, suffix):
    out = _convert(saved["tutorial"], tmp_path / f"flowers{suffix}", "--format", fmt)
    assert main(["verify", "--model", str(saved["tutorial"]), "--export", str(out)]) == 0


def test_tutorial_model_coreml_verifies(saved, tmp_path):
    out = _convert(saved["tutorial"], tmp_path / "flowers.mlpackage", "--format", "coreml")
    assert main(["verify", "--model", str(saved["tutorial"]), "--export", str(out)]) == 0


def test_flatten_inlines_nested_models_and_reads_tf_op_preprocessing():
    """The transfer-learning tutorial's shape: augmentation, preprocess_input's tf.math ops,
    a nested functional backbone called with training=False, dropout, a head."""
    from edgepipe.convert.fold import count_batchnorm, export_graph
    from edgepipe.mobile_models.graph import flatten
    L = keras.layers
    inner_in = keras.Input((16, 16, 3))
    inner = L.ReLU()(L.BatchNormalization()(L.Conv2D(4, 3)(inner_in)))
    base = keras.Model(inner_in, inner, name="backbone")
    base.layers[2].set_weights([np.full(4, v, np.float32) for v in (1.5, 0.1, 0.2, 2.0)])
    inp = keras.Input((16, 16, 3), name="image")
    x = keras.Sequential([L.RandomFlip("horizontal")])(inp)
    x = keras.applications.mobilenet_v2.preprocess_input(x)
    x = L.GlobalAveragePooling2D()(base(x, training=False))
    model = keras.Model(inp, L.Dense(3, name="logits")(L.Dropout(0.2)(x)))
    flat = flatten(model)
    assert not any(isinstance(l, keras.Model) or "Random" in type(l).__name__ for l in flat.layers)
    assert (flat.input_names, flat.output_names) == (["image"], ["logits"])
    px = np.random.default_rng(0).uniform(0, 255, (2, 16, 16, 3)).astype(np.float32)
    np.testing.assert_allclose(flat.predict(px, verbose=0), model.predict(px, verbose=0), atol=1e-5)
    assert count_batchnorm(export_graph(model)) == 0  # the nested backbone's BN folds too
    spec = from_model(model)
    assert (spec.source, spec.mean, spec.std) == ("model", (0.0,), (1.0,))  # raw pixels in


# --- end to end: what each bundle says, fed to each export -------------------------------

CASES = {  # model, flags, the Keras original's true input for uint8 pixels
    "rescaling": ("tutorial", [], lambda p: p.astype(np.float32)),
    "range": ("plain", ["--input-range", "-1,1"], lambda p: p.astype(np.float32) / 127.5 - 1),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_export_fed_what_its_bundle_says_matches_keras(saved, pixels, tmp_path, case):
    model, flags, truth = CASES[case]
    ref = _keras(saved[model], truth(pixels))
    p = pixels.astype(np.float64)
    tfl = _convert(saved[model], tmp_path / "m.tflite", "--format", "tflite", *flags)
    mean, std, color = _tflite_normalization(tfl)
    assert color == "RGB"
    _close(ref, _run(tfl, (p - mean) / std))
    onx = _convert(saved[model], tmp_path / "m.onnx", "--format", "onnx", *flags)
    norm = bundle_card(onx)["inputs"][0]["normalization"]
    _close(ref, _run(onx, p * norm["scale"] + norm["bias"]))
    mlp = _convert(saved[model], tmp_path / "m.mlpackage", "--format", "coreml", *flags)
    scale, bias, color, _ = _coreml_image_type(mlp)
    np.testing.assert_allclose([scale[0], bias[0]], [norm["scale"], norm["bias"]], rtol=1e-6)
    assert color == "RGB"
    _close(ref, _coreml_on_pixels(mlp, pixels), rel=1e-2)  # fp16 Core ML


def test_per_channel_mean_std_and_bgr_reach_every_format(saved, pixels, tmp_path):
    """ImageNet mean/std in BGR: TFLite metadata per channel, Core ML's one scale plus
    the exact per-channel rest in the graph, the card says BGR."""
    flags = ["--mean", ",".join(map(str, IMAGENET_MEAN)), "--std", ",".join(map(str, IMAGENET_STD)), "--bgr"]
    truth = (pixels[..., ::-1] - np.asarray(IMAGENET_MEAN)) / np.asarray(IMAGENET_STD)
    ref = _keras(saved["plain"], truth)
    tfl = _convert(saved["plain"], tmp_path / "m.tflite", "--format", "tflite", *flags)
    mean, std, color = _tflite_normalization(tfl)
    np.testing.assert_allclose(mean, IMAGENET_MEAN, rtol=1e-6)
    np.testing.assert_allclose(std, IMAGENET_STD, rtol=1e-6)
    assert color == "UNKNOWN"  # the metadata schema has no BGR; the description says it
    card = json.loads((tmp_path / "m.tflite.model_card.json").read_text())
    entry = card["inputs"][0]
    assert entry["color_order"] == "BGR" and entry["normalization"]["source"] == "user"
    assert entry["description"].startswith("BGR image")
    _close(ref, _run(tfl, (pixels[..., ::-1] - mean) / std))
    mlp = _convert(saved["plain"], tmp_path / "m.mlpackage", "--format", "coreml", *flags)
    scale, bias, color, _ = _coreml_image_type(mlp)
    assert color == "BGR" and scale.size == 1 and bias.size == 3
    _close(ref, _coreml_on_pixels(mlp, pixels), rel=1e-2)
    # verify's reference runner lays a BGR ImageType's planes out blue first, as Core ML does
    assert main(["verify", "--model", str(saved["plain"]), "--export", str(mlp)]) == 0


def test_spec_flags_on_a_model_without_an_image_input_are_refused(tmp_path, capsys):
    """A 2-channel input or a feature vector is described as a tensor fed as it is: flags
    that would not reach its bundle are refused, not ignored."""
    for name, shape in (("two", (SIZE, SIZE, 2)), ("vec", (6,))):
        x = keras.Input(shape)
        h = keras.layers.GlobalAveragePooling2D()(x) if len(shape) == 3 else x
        keras.Model(x, keras.layers.Dense(2)(h)).save(tmp_path / f"{name}.keras")
        rc = main(["convert", "--model", str(tmp_path / f"{name}.keras"), "--format", "tflite",
                   "--out", str(tmp_path / f"{name}.tflite"), "--mean", "5", "--std", "2"])
        assert rc == 2 and "describe an image input" in capsys.readouterr().err
        assert not (tmp_path / f"{name}.tflite").exists()


def _grayscale_model(path, rescale: bool):
    x = keras.Input((SIZE, SIZE, 1), name="gray")
    h = keras.layers.Rescaling(1 / 255)(x) if rescale else x
    h = keras.layers.Conv2D(4, 3, activation="relu")(h)
    keras.Model(x, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(h))).save(path)
    return path


def test_a_grayscale_model_with_its_own_rescaling_is_a_grayscale_image_in_every_bundle(tmp_path, capsys):
    """A 1-channel model that rescales its own pixels was described as a bare tensor: the card
    gave no range, TFLite metadata and Core ML no image, and int8 calibrated on [0, 1]."""
    model = _grayscale_model(tmp_path / "g.keras", rescale=True)
    for fmt, suffix in (("tflite", ".tflite"), ("onnx", ".onnx"), ("coreml", ".mlpackage")):
        out = _convert(model, tmp_path / f"g{suffix}", "--format", fmt)
        card = bundle_card(out)
        jsonschema.validate(json.loads(Path(f"{out}.model_card.json").read_text()), json.loads(SCHEMA.read_text()))
        image = card["inputs"][0]
        assert image["color_order"] == "GRAYSCALE" and image["range"] == [0.0, 255.0], image
        assert image["shape"] == [1, SIZE, SIZE, 1] and "grayscale" in image["description"], image
        assert main(["verify", "--model", str(model), "--export", str(out)]) == 0
    mean, std, color = _tflite_normalization(tmp_path / "g.tflite")
    assert color == "GRAYSCALE" and mean.tolist() == [0.0] and std.tolist() == [1.0]
    scale, bias, color, _ = _coreml_image_type(tmp_path / "g.mlpackage")
    assert color == "GRAYSCALE" and scale.tolist() == [1.0] and bias.tolist() == [0.0]
    # and the Core ML file fed 8-bit gray pixels matches the model fed the same pixels
    pixels = np.random.default_rng(3).integers(0, 256, (2, SIZE, SIZE, 1), dtype=np.uint8)
    got = _coreml_on_pixels(tmp_path / "g.mlpackage", pixels)
    assert np.allclose(got, _keras(model, pixels), atol=2e-2 * np.abs(got).max())


def test_flags_make_a_plain_one_channel_input_a_grayscale_image(tmp_path, capsys):
    """Without a Rescaling a 1-channel input may be a mask or a spectrogram, so it stays a
    tensor; --input-range says it takes pixels, and --bgr means nothing for one channel."""
    model = _grayscale_model(tmp_path / "p.keras", rescale=False)
    plain = _convert(model, tmp_path / "plain.tflite", "--format", "tflite")
    assert bundle_card(plain)["inputs"][0]["kind"] == "tensor"
    ranged = _convert(model, tmp_path / "ranged.tflite", "--format", "tflite", "--input-range", "-1,1")
    image = bundle_card(ranged)["inputs"][0]
    assert image["color_order"] == "GRAYSCALE" and image["range"] == [-1.0, 1.0] and image["normalization"]["source"] == "user"
    assert _tflite_normalization(ranged)[2] == "GRAYSCALE"
    assert main(["verify", "--model", str(model), "--export", str(ranged)]) == 0
    capsys.readouterr()
    rc = main(["convert", "--model", str(model), "--format", "tflite", "--out", str(tmp_path / "bgr.tflite"),
               "--input-range", "0,1", "--bgr"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "grayscale" in err[0] and not (tmp_path / "bgr.tflite").exists()


def test_a_one_channel_input_beside_an_rgb_one_is_no_image():
    """A mask or a depth map next to an RGB image is fed as it is, whatever the flags say."""
    from edgepipe.convert.graphio import image_names
    shapes = {"rgb": (1, 8, 8, 3), "mask": (1, 8, 8, 1), "vec": (1, 4)}
    assert image_names(shapes) == image_names(shapes, grayscale=True) == {"rgb"}
    alone = {"gray": (None, 8, 8, 1), "vec": (1, 4)}
    assert image_names(alone) == set() and image_names(alone, grayscale=True) == {"gray"}


def test_zoo_models_keep_pixel_over_255(saved):
    from edgepipe import mobile_models
    from edgepipe.pipeline.cards import generic_meta
    entry = generic_meta(mobile_models.build("tiny_cnn", input_shape=(32, 32, 3), classes=10), "zoo")["inputs"][0]
    assert entry["normalization"] | {"formula": None} == {
        "scale": 1 / 255, "bias": 0.0, "formula": None, "mean": [0.0] * 3, "std": [255.0] * 3, "source": "default"}
    assert (entry["range"], entry["color_order"]) == ([0.0, 1.0], "RGB")


def test_calibration_data_follows_the_spec(saved, tmp_path):
    """A raw-pixel model calibrates on 0..255: its int8 input scale is ~1, not ~1/255."""
    from edgepipe.cli.inputs import sample_inputs
    unit = sample_inputs((SIZE, SIZE, 3), count=2)
    assert np.array_equal(sample_inputs((SIZE, SIZE, 3), count=2, spec=DEFAULT), unit)
    raw = sample_inputs((SIZE, SIZE, 3), count=2, spec=InputSpec((0.0,), (1.0,)))
    np.testing.assert_allclose(raw, unit * 255, atol=1e-3)
    np.testing.assert_allclose(sample_inputs((SIZE, SIZE, 3), count=2, spec=from_range(-1, 1)), unit * 2 - 1, atol=1e-6)
    out = tmp_path / "q.int8.tflite"
    assert main(["quantize", "--model", str(saved["tutorial"]), "--mode", "int8", "--calibration-samples", "8",
                 "--out", str(out)]) == 0
    card = json.loads(out.with_name(out.name + ".model_card.json").read_text())
    assert card["artifacts"][0]["quantization"]["input"]["scale"] > 0.5


@pytest.mark.parametrize("flags,needle", [
    (["--input-range", "1,-1"], "LO,HI with LO < HI"),
    (["--input-range", "0"], "LO,HI"),
    (["--mean", "1,2"], "one or three numbers"),
    (["--std", "0"], "> 0"),
    (["--mean", "nan"], "one or three numbers"),
])
def test_bad_spec_flags_are_one_line_errors(saved, tmp_path, capsys, flags, needle):
    code = main(["convert", "--model", str(saved["plain"]), "--format", "tflite", "--out",
                 str(tmp_path / "m.tflite"), *flags])
    err = capsys.readouterr().err
    assert code == 2 and needle in err and err.count("\n") == 1


def test_range_and_mean_std_together_are_refused(saved, tmp_path, capsys):
    code = main(["quantize", "--model", str(saved["plain"]), "--mode", "dynamic", "--out", str(tmp_path / "q.tflite"),
                 "--input-range", "0,1", "--mean", "127"])
    assert code == 2 and "give one" in capsys.readouterr().err


def test_googles_reader_reads_per_channel_and_raw_pixel_metadata(saved, tmp_path, tflite_support_metadata):
    flags = ["--mean", ",".join(map(str, IMAGENET_MEAN)), "--std", ",".join(map(str, IMAGENET_STD))]
    for model, extra, mean, std in (("plain", flags, list(IMAGENET_MEAN), list(IMAGENET_STD)),
                                    ("tutorial", [], [0.0], [1.0])):
        out = _convert(saved[model], tmp_path / f"{model}.tflite", "--format", "tflite", *extra)
        shown = tflite_support_metadata.MetadataDisplayer.with_model_file(str(out))
        image = json.loads(shown.get_metadata_json())["subgraph_metadata"][0]["input_tensor_metadata"][0]
        options = image["process_units"][0]["options"]
        np.testing.assert_allclose(options["mean"], mean, rtol=1e-6)
        np.testing.assert_allclose(options["std"], std, rtol=1e-6)
        assert image["content"]["content_properties"]["color_space"] == "RGB"


def test_calibration_reads_at_most_its_sample_count_from_an_npy_spread_over_it(tmp_path):
    """A 2,000-image .npy calibrated on all of it took 6 GB; the count applies as to a folder, and
    the images are spread over the array (arrays sorted by class come one class after another)."""
    from edgepipe.cli.inputs import sample_inputs
    pixels = np.broadcast_to(np.arange(50, dtype=np.uint8)[:, None, None, None], (50, 4, 4, 3))
    np.save(tmp_path / "x.npy", np.ascontiguousarray(pixels))
    x = sample_inputs((4, 4, 3), str(tmp_path / "x.npy"), count=5)
    assert x.shape == (5, 4, 4, 3)
    np.testing.assert_allclose(x[:, 0, 0, 0] * 255, [0, 12, 24, 37, 49], atol=1e-4)
    assert sample_inputs((4, 4, 3), str(tmp_path / "x.npy"), count=80).shape[0] == 50


def test_verify_feeds_what_the_original_says_when_the_bundle_only_assumed(saved, tmp_path, capsys):
    """A SavedModel of a Rescaling(1/255) model: its signature does not say, so its bundle assumes
    pixel / 255 and its int8 file is calibrated on a 255th of the real range. Verified against the
    .keras, which says raw pixels, verify feeds raw pixels (the int8 file then fails) and says why."""
    from edgepipe.base.modelio import load_keras
    from edgepipe.base.backend import tf
    folder = tmp_path / "tutorial_savedmodel"
    tf.saved_model.save(load_keras(saved["tutorial"]), str(folder))
    out = _convert(folder, tmp_path / "t.int8.tflite", "--mode", "int8", "--calibration-samples", "8")
    capsys.readouterr()
    assert main(["verify", "--model", str(saved["tutorial"]), "--export", str(out)]) == 1
    err = capsys.readouterr()
    assert "bundle only assumed pixel / 255" in err.out + err.err
    assert "neither the export's bundle nor the model" not in err.out + err.err


def test_core_ml_drill_down_feeds_a_raw_pixel_original_its_own_range(saved, pixels, tmp_path):
    """Core ML's ImageType takes 8-bit pixels; the original here takes them as 0..255. The drill-down
    fed Keras pixel / 255 and so blamed the exact Rescaling layer (relative error 254)."""
    from edgepipe.base.modelio import load_keras
    from edgepipe.evaluate.drilldown import drill_down
    out = _convert(saved["tutorial"], tmp_path / "t.mlpackage", "--precision", "fp32")
    unit = pixels[:1].astype(np.float32) / 255
    drill = drill_down(load_keras(saved["tutorial"]), out, unit * 255, "fp32", fed=unit)
    rows = {r["layer"]: r for r in drill["layers"]}
    assert any(name.startswith("rescaling") for name in rows) and drill["first"] is None, drill["first"]
    assert max(r["relative_error"] for r in drill["layers"]) < 1e-3

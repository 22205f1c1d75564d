"""Hostile model and image files: no foreign code without consent, bounded memory.

Every model format we load (.keras zip, HDF5 .h5, tf.keras SavedModel folder) is
inspected before Keras deserialises it: Lambda layers, serialized Python code,
foreign modules and unknown classes are refused unless --trust-model. Zip bombs,
HDF5 bombs and images with absurd pixel counts are refused from their headers.

Each refusal is checked through the CLI in-process: exit code 2, exactly one
``edgepipe: error:`` line, the hostile code never ran (a marker file it would
write stays absent), the input unchanged and nothing written.
"""
import hashlib
import json
import resource
import struct
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from edgepipe.base.errors import EdgePipeError
from edgepipe.cli.main import main

HINT = "pass --trust-model to load it anyway"


# -- helpers -------------------------------------------------------------------------------------------------------

def _digest(path: Path) -> str:
    if path.is_dir():
        return hashlib.sha256(b"".join(p.relative_to(path).as_posix().encode() + p.read_bytes()
                                       for p in sorted(path.rglob("*")) if p.is_file())).hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _listing(folder: Path) -> set:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")}


def refused(capsys, argv, model: Path, marker: Path | None = None, expect: str | None = None) -> str:
    """Run the CLI; assert a clean refusal (rc 2, one line, nothing ran, nothing changed). Returns the line."""
    capsys.readouterr()
    folder = model.parent
    before, listing = _digest(model), _listing(folder)
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2, err
    assert len(lines) == 1 and lines[0].startswith("edgepipe: error: "), err
    assert "Traceback" not in err
    if marker is not None:
        assert not marker.exists(), "the model's code ran"
    assert _digest(model) == before, "the input changed"
    assert _listing(folder) == listing, "something was written"
    if expect is not None:
        assert expect in lines[0], lines[0]
    return lines[0]


def convert_argv(model: Path, *extra) -> list:
    return [str(a) for a in ("convert", "--model", model, "--format", "tflite", "--out", model.parent / "o.tflite",
                             *extra)]


def _marker_lambda(marker: Path):
    """A Lambda whose function writes ``marker`` whenever it runs (the path rides in a default argument,
    which Keras serializes with the bytecode)."""
    return lambda x, _m=str(marker): (open(_m, "w").write("ran"), x)[1]


def as_legacy_savedmodel(src: Path, dst: Path) -> Path:
    """A SavedModel as TF < 2.5 wrote it: the Keras metadata inside saved_model.pb's object graph,
    no keras_metadata.pb. Keras still reads it from there."""
    import shutil
    from edgepipe.base.backend import keras, tf
    shutil.copytree(src, dst)
    metadata = keras.protobuf.saved_metadata_pb2.SavedMetadata()
    metadata.ParseFromString((dst / "keras_metadata.pb").read_bytes())
    saved = tf.__internal__.saved_model.parse_saved_model(str(dst))
    for node in metadata.nodes:
        saved.meta_graphs[0].object_graph_def.nodes[node.node_id].user_object.metadata = node.metadata
    (dst / "saved_model.pb").write_bytes(saved.SerializeToString())
    (dst / "keras_metadata.pb").unlink()
    return dst


def rewrite_keras(src: Path, dst: Path, mutate) -> Path:
    """Copy a .keras zip, passing its config.json through ``mutate(config)``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == "config.json":
                config = json.loads(data)
                mutate(config)
                data = json.dumps(config).encode()
            zout.writestr(info, data)
    return dst


def layer_named(config: dict, name: str) -> dict:
    return next(layer for layer in config["config"]["layers"] if layer["config"]["name"] == name)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def huge_png(path: Path, width: int = 20000, height: int = 20000) -> Path:
    """A valid 1-bit grayscale PNG of width x height: a few tens of KB on disk, 1.2 GB decoded as BGR."""
    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat)
                     + _png_chunk(b"IEND", b""))
    return path


def small_png(path: Path, width: int = 40, height: int = 30, shade: int = 200) -> Path:
    import cv2
    ok, buf = cv2.imencode(".png", np.full((height, width, 3), shade, np.uint8))
    path.write_bytes(buf.tobytes())
    return path


# -- fixtures ------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """A model whose Lambda (nested: Functional > Sequential > TimeDistributed > Lambda) writes a marker
    when it runs, in all three formats. Saving traces the Lambda, so the marker is removed afterwards."""
    from edgepipe.base.backend import keras
    root = tmp_path_factory.mktemp("hostile")
    marker = root / "MARKER"
    inner = keras.Sequential([keras.layers.TimeDistributed(keras.layers.Lambda(_marker_lambda(marker), name="lambda"),
                                                           input_shape=(8, 8, 4))], name="inner")
    x = keras.Input((8, 8, 3))
    model = keras.Model(x, inner(keras.layers.Conv2D(4, 1)(x)))
    paths = {"keras": root / "lambda.keras", "h5": root / "lambda.h5", "savedmodel": root / "lambda_savedmodel"}
    model.save(paths["keras"])
    model.save(paths["h5"])
    model.save(paths["savedmodel"], save_format="tf")
    paths["legacy_savedmodel"] = as_legacy_savedmodel(paths["savedmodel"], root / "lambda_legacy_savedmodel")
    marker.unlink(missing_ok=True)
    return paths, marker


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """A small benign model, .keras and .h5, to craft hostile variants from. ``tf.nn.relu`` on a Keras
    tensor makes a TFOpLambda layer, whose config names the TensorFlow function it calls."""
    from edgepipe.base.backend import keras, tf
    root = tmp_path_factory.mktemp("plain")
    x = keras.Input((8, 8, 3))
    y = tf.nn.relu(keras.layers.Conv2D(4, 3, name="conv")(x))
    model = keras.Model(x, keras.layers.Dense(2, name="dense")(keras.layers.GlobalAveragePooling2D()(y)))
    model.save(root / "plain.keras")
    model.save(root / "plain.h5")
    return root


def isolated(src: Path, tmp_path: Path) -> Path:
    """A copy of a fixture model alone in its own folder (so 'nothing written' is checkable)."""
    import shutil
    dst = tmp_path / "in" / src.name
    dst.parent.mkdir()
    (shutil.copytree if src.is_dir() else shutil.copy)(src, dst)
    return dst


# -- Lambda layers, in every format and command --------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["keras", "h5", "savedmodel", "legacy_savedmodel"])
def test_lambda_is_refused_in_every_format(hostile, fmt, tmp_path, capsys):
    paths, marker = hostile
    model = isolated(paths[fmt], tmp_path)
    line = refused(capsys, convert_argv(model), model, marker)
    assert "layer 'lambda' is a Lambda layer (arbitrary Python code)" in line and line.endswith(HINT), line


def test_lambda_is_refused_by_verify_bench_and_scan(hostile, tmp_path, capsys):
    paths, marker = hostile
    h5, keras_file = isolated(paths["h5"], tmp_path), paths["keras"]
    refused(capsys, ["verify", "--model", h5, "--export", h5.parent / "missing.tflite"], h5, marker, "Lambda")
    refused(capsys, ["bench", keras_file, "--runs", "1", "--warmup", "0"], keras_file, marker, "Lambda")
    photo = small_png(tmp_path / "photo.png")
    refused(capsys, ["scan", photo, "--model", keras_file], keras_file, marker, "Lambda")


@pytest.mark.parametrize("fmt", ["keras", "h5", "savedmodel", "legacy_savedmodel"])
def test_the_marker_is_real_when_trusted(hostile, fmt, tmp_path):
    """The fixture is hostile for real: trusted, loading these formats runs the Lambda's code."""
    from edgepipe.base.modelio import load_keras
    paths, marker = hostile
    try:
        load_keras(isolated(paths[fmt], tmp_path), trust=True)
        assert marker.exists()
    finally:
        marker.unlink(missing_ok=True)


def test_trusted_lambda_model_converts(tmp_path, capsys):
    from edgepipe.base.backend import keras
    x = keras.Input((8, 8, 3))
    model = keras.Model(x, keras.layers.Lambda(lambda t: t * 2.0, name="double")(x))
    path = tmp_path / "benign.keras"
    model.save(path)
    refused(capsys, convert_argv(path), path, expect="Lambda")
    assert main(convert_argv(path, "--trust-model")) == 0
    assert (tmp_path / "o.tflite").stat().st_size > 0


# -- crafted configs -----------------------------------------------------------------------------------------------

def test_foreign_module_is_never_imported(plain, tmp_path, capsys, monkeypatch):
    """Keras imports a config's ``module`` before it finds the class missing, even in safe_mode."""
    marker = tmp_path / "IMPORTED"
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "evilmod_xyz.py").write_text(f"open({str(marker)!r}, 'w').write('imported')\n")
    monkeypatch.syspath_prepend(str(lib))
    monkeypatch.delitem(sys.modules, "evilmod_xyz", raising=False)

    def evil(config):  # the model's own class: Keras resolves it by module, not by its layer table
        config.update(module="evilmod_xyz", registered_name=None)
    (tmp_path / "in").mkdir()
    path = rewrite_keras(plain / "plain.keras", tmp_path / "in" / "evil.keras", evil)
    line = refused(capsys, convert_argv(path), path, marker, "names Python module 'evilmod_xyz'")
    assert "evilmod_xyz" not in sys.modules and line.endswith(HINT)

    # The fixture is hostile for real: Keras' own safe_mode imports the module.
    from edgepipe.base.backend import keras
    with pytest.raises(Exception):
        keras.models.load_model(path, compile=False, safe_mode=True)
    assert marker.exists()
    sys.modules.pop("evilmod_xyz", None)


def _set(layer: str, **fields):
    return lambda config: layer_named(config, layer).update(fields)


def _set_in_config(layer: str, **fields):
    return lambda config: layer_named(config, layer)["config"].update(fields)


def _lambda_activation(config):
    layer_named(config, "dense")["config"]["activation"] = {
        "class_name": "__lambda__", "config": {"value": ["4wEAAAAA", None, None]}}


def _builtin_function(config):
    layer_named(config, "dense")["config"]["activation"] = {
        "module": "builtins", "class_name": "function", "config": "exec", "registered_name": "function"}


def _nested_unknown(config):
    dense = layer_named(config, "dense")
    dense["config"]["kernel_initializer"] = {"module": "keras.initializers", "class_name": "EvilInit",
                                             "config": {}, "registered_name": None}


def _disguised_class_method(config):
    dense = layer_named(config, "dense")
    dense.update(module="tf_keras.src.layers.core.tf_op_layer", registered_name="ClassMethod")
    dense["config"].update(cls_symbol="experimental.register_filesystem_plugin", method_name="__call__")


CRAFTED = {
    "unknown_class": (_set("conv", class_name="EvilLayer"), "has class 'EvilLayer'"),
    "unknown_class_multiline": (_set("conv", class_name="Evil\nLayer"), "has class 'Evil\\nLayer'"),
    "unknown_class_nested": (_nested_unknown, "has class 'EvilInit'"),
    "function_field": (_set_in_config("dense", function=["4wEAAAAAAAAAAAAAAAAA", None, None]),
                       "serialized Python function"),
    "lambda_function_type": (_set_in_config("dense", function_type="lambda"), "serialized Python lambda"),
    "lambda_object": (_lambda_activation, "serialized Python lambda"),
    "foreign_package": (_set("conv", registered_name="evilpkg>Conv2D"), "names package 'evilpkg'"),
    "builtins_function": (_builtin_function, "function 'exec', which is neither a Keras nor an edgepipe"),
    "tf_op_writing_files": (_set_in_config("tf.nn.relu", function="io.write_file"),
                            "calls TensorFlow's 'io.write_file'"),
    # an allowlist, not a denylist: these two dlopen a library of the attacker's choosing while Keras
    # rebuilds the graph, and raw_ops spells file access in names no denylist anticipates
    "tf_op_loading_a_library": (_set_in_config("tf.nn.relu", function="experimental.register_filesystem_plugin"),
                                "calls TensorFlow's 'experimental.register_filesystem_plugin'"),
    "tf_op_v1_library": (_set_in_config("tf.nn.relu", function="compat.v1.load_file_system_library"),
                         "calls TensorFlow's 'compat.v1.load_file_system_library'"),
    "tf_op_raw_read_file": (_set_in_config("tf.nn.relu", function="raw_ops.ReadFile"),
                            "calls TensorFlow's 'raw_ops.ReadFile'"),
    "module_of_a_layer": (_set("conv", module="os", registered_name=None), "names Python module 'os'"),
    # Keras falls back to registered_name when the module lacks class_name: a ClassMethod dressed as a Dense
    "registered_name_disguise": (_disguised_class_method, "calls TensorFlow's 'experimental.register_filesystem_plugin'"),
    # ... or the whole file: its top object a ClassMethod that says it is Functional
    "top_object_not_a_model": (lambda config: config.update(
        registered_name="ClassMethod", config={"name": "m", "cls_symbol": "experimental.register_filesystem_plugin",
                                               "method_name": "__call__"}), "top object is ClassMethod, not a Keras model"),
    "module_in_nested_field": (_set_in_config("dense", activation_module="subprocess"),
                               "names Python module 'subprocess'"),
    # a lookup layer opens a vocabulary given as a path while Keras rebuilds it: a FIFO hung the load
    "vocabulary_file": (_set_in_config("dense", vocabulary="/etc/passwd"),
                        "reads its vocabulary from the file '/etc/passwd'"),
}


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_crafted_keras_config_is_refused(plain, tmp_path, capsys, case):
    mutate, expect = CRAFTED[case]
    (tmp_path / "in").mkdir()
    path = rewrite_keras(plain / "plain.keras", tmp_path / "in" / f"{case}.keras", mutate)
    refused(capsys, convert_argv(path), path, expect=expect)


def test_crafted_h5_config_is_refused(plain, tmp_path, capsys):
    import h5py
    path = isolated(plain / "plain.h5", tmp_path)
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        layer_named(config, "conv")["class_name"] = "EvilLayer"
        f.attrs["model_config"] = json.dumps(config)
    refused(capsys, convert_argv(path), path, expect="has class 'EvilLayer'")


@pytest.mark.parametrize("fmt", ["keras", "h5", "savedmodel"])
def test_models_with_edgepipe_layers_still_load(tmp_path, fmt):
    from edgepipe.base.backend import keras, tf
    from edgepipe.base.custom_layers import ChannelSplit, DepthToSpace, GroupSplit
    from edgepipe.base.modelio import load_keras
    x = keras.Input((8, 8, 8))
    a, b = ChannelSplit(2)(keras.layers.Conv2D(8, 1, activation="relu")(x))
    g = keras.layers.Concatenate()([keras.layers.Conv2D(2, 1)(t) for t in GroupSplit(2)(b)])
    y = DepthToSpace(2)(tf.nn.relu(keras.layers.Concatenate()([a, g])))
    model = keras.Model(x, y)
    path = tmp_path / {"keras": "m.keras", "h5": "m.h5", "savedmodel": "m_savedmodel"}[fmt]
    model.save(path, **({"save_format": "tf"} if fmt == "savedmodel" else {}))
    loaded = load_keras(path)
    data = np.random.default_rng(0).random((1, 8, 8, 8), np.float32)
    np.testing.assert_allclose(loaded.predict(data, verbose=0), model.predict(data, verbose=0), atol=1e-6)


def test_config_walk_accepts_edgepipe_and_tfmot_classes():
    """Our registered layers, a QAT model's tfmot wrappers and quantize configs (ours among them: the
    pass-through config of ChannelSplit, the output-only one of a BN after a concat) and pruning
    wrappers all pass the inspection."""
    from edgepipe.base.backend import keras
    from edgepipe.base.custom_layers import ChannelSplit
    from edgepipe.base.modelio import find_foreign_code
    from edgepipe.quantize import prune
    from edgepipe.quantize.qat import qat_model
    x = keras.Input((8, 8, 3))
    parts = ChannelSplit(2)(keras.layers.Conv2D(8, 1)(x))
    y = keras.layers.BatchNormalization()(keras.layers.Concatenate()([keras.layers.Conv2D(4, 1)(t) for t in parts]))
    model = keras.Model(x, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(y)))
    qat = json.loads(qat_model(model).to_json())
    assert "PassThroughQuantizeConfig" in json.dumps(qat) and "OutputOnlyQuantizeConfig" in json.dumps(qat)
    for config in (json.loads(model.to_json()), qat, json.loads(prune.wrap(model, 0.5, steps=2).to_json())):
        assert find_foreign_code(config) is None


# -- resource bombs ------------------------------------------------------------------------------------------------

def test_zip_bomb_is_refused_from_its_directory(plain, tmp_path, capsys):
    """300 MB of zeros deflated to ~300 KB: refused by its ratio, without being inflated."""
    (tmp_path / "in").mkdir()
    path = tmp_path / "in" / "bomb.keras"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zout:
        with zipfile.ZipFile(plain / "plain.keras") as zin:
            zout.writestr("config.json", zin.read("config.json"))
        with zout.open("model.weights.h5", "w", force_zip64=True) as member:
            chunk = bytes(1 << 20)
            for _ in range(300):
                member.write(chunk)
    assert path.stat().st_size < 2_000_000
    peak = _peak_rss_mb()
    line = refused(capsys, convert_argv(path), path, expect="zip bomb")
    assert "model.weights.h5" in line
    assert _peak_rss_mb() - peak < 150, "the bomb was inflated"


def test_a_zip_of_very_many_members_is_refused_from_its_directory(plain, tmp_path, capsys):
    """200,000 empty members took a minute to open; a .keras file holds three."""
    (tmp_path / "in").mkdir()
    path = tmp_path / "in" / "many.keras"
    with zipfile.ZipFile(plain / "plain.keras") as zin, zipfile.ZipFile(path, "w") as zout:
        for name in zin.namelist():
            zout.writestr(name, zin.read(name))
        for k in range(1001):
            zout.writestr(f"pad/{k}", b"")
    refused(capsys, convert_argv(path), path, expect="members (Keras writes 3")


def test_model_over_the_size_limit_names_the_limit(plain, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("EDGEPIPE_MAX_MODEL_BYTES", "10000")
    path = isolated(plain / "plain.keras", tmp_path)
    line = refused(capsys, convert_argv(path), path, expect="EDGEPIPE_MAX_MODEL_BYTES")
    assert "9.766 KiB limit" in line
    (tmp_path / "h5").mkdir()
    h5 = isolated(plain / "plain.h5", tmp_path / "h5")
    monkeypatch.setenv("EDGEPIPE_MAX_MODEL_BYTES", "100")
    refused(capsys, convert_argv(h5), h5, expect="EDGEPIPE_MAX_MODEL_BYTES")
    monkeypatch.setenv("EDGEPIPE_MAX_MODEL_BYTES", "lots")
    refused(capsys, convert_argv(path), path, expect="EDGEPIPE_MAX_MODEL_BYTES must be a positive whole number")


def test_hdf5_dataset_bomb_is_refused(plain, tmp_path, capsys):
    """A chunked dataset declared at 16 GB but never written: a few KB on disk."""
    import h5py
    path = isolated(plain / "plain.h5", tmp_path)
    with h5py.File(path, "r+") as f:
        f.create_dataset("model_weights/bomb", shape=(1 << 32,), dtype="f4", chunks=(1 << 16,),
                         compression="gzip")
    assert path.stat().st_size < 1_000_000
    refused(capsys, convert_argv(path), path, expect="declare 16 GiB")


def test_huge_image_is_refused_from_its_header(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    photo = huge_png(tmp_path / "in" / "huge.png")
    assert photo.stat().st_size < 2_000_000
    peak = _peak_rss_mb()
    line = refused(capsys, ["scan", photo, "--model", tmp_path / "none.tflite"], photo,
                   expect="20000x20000 image has 400 megapixels, over the 40-megapixel limit")
    assert "EDGEPIPE_MAX_IMAGE_PIXELS" in line
    assert _peak_rss_mb() - peak < 150, "the image was decoded"


def test_a_raised_pixel_limit_reaches_the_completeness_check(tmp_path, monkeypatch):
    """Pillow's own decompression-bomb limit must not stand in for edgepipe's, which the user raised."""
    from PIL import Image
    from edgepipe.base.photos import read_rgb
    Image.new("L", (9000, 10000), 200).save(tmp_path / "big.jpg")  # 90 MP, over Pillow's 89.5 MP bomb limit
    monkeypatch.setenv("EDGEPIPE_MAX_IMAGE_PIXELS", "100000000")
    assert read_rgb(tmp_path / "big.jpg").shape == (10000, 9000, 3)


def test_image_limit_applies_to_folders_and_can_be_raised(tmp_path, monkeypatch):
    from edgepipe.cli.scan import read_photo
    from edgepipe.train.folders import image_folder, read_rgb
    for k, c in enumerate(("a", "b")):
        (tmp_path / "data" / c).mkdir(parents=True)
        for i in range(3):  # six different images: a copy is read once
            small_png(tmp_path / "data" / c / f"{i}.png", shade=40 * i + 120 * k)
    assert image_folder(tmp_path / "data", 8).images.shape == (6, 8, 8, 3)
    monkeypatch.setenv("EDGEPIPE_MAX_IMAGE_PIXELS", "1000")
    with pytest.raises(EdgePipeError, match="40x30 image .* over the 0.001-megapixel limit"):
        image_folder(tmp_path / "data", 8)
    with pytest.raises(EdgePipeError, match="EDGEPIPE_MAX_IMAGE_PIXELS"):
        read_photo(tmp_path / "data" / "a" / "0.png")
    monkeypatch.setenv("EDGEPIPE_MAX_IMAGE_PIXELS", "1200")
    assert read_rgb(tmp_path / "data" / "a" / "0.png").shape == (30, 40, 3)
    (tmp_path / "data" / "a" / "bad.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(EdgePipeError, match="corrupt, truncated or not an image"):
        read_rgb(tmp_path / "data" / "a" / "bad.png")
    with pytest.raises(EdgePipeError, match="not a readable image"):
        read_photo(tmp_path / "data" / "a" / "bad.png")


def test_photos_are_read_upright_whole_and_in_formats_opencv_lacks(tmp_path):
    """EXIF orientation is applied (corners come back in the upright image's pixels);
    a truncated JPEG, which OpenCV would fill with grey, is refused; a 16-bit TIFF is read."""
    from PIL import Image
    from edgepipe.base.photos import read_rgb
    rgb = np.zeros((30, 40, 3), np.uint8)
    rgb[:10, :, 0] = 255  # a red band at the top
    exif = Image.Image().getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(rgb).save(tmp_path / "turned.jpg", exif=exif, quality=95)
    upright = read_rgb(tmp_path / "turned.jpg")
    assert upright.shape == (40, 30, 3) and upright[:, -5:, 0].mean() > 200  # the band is now on the right
    data = (tmp_path / "turned.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[:len(data) // 2])
    with pytest.raises(EdgePipeError, match="cut.jpg: not a readable image"):
        read_rgb(tmp_path / "cut.jpg")
    Image.fromarray(np.full((20, 30), 65535, np.uint16)).save(tmp_path / "deep.tif")
    assert read_rgb(tmp_path / "deep.tif").min() == 255
    Image.fromarray(np.full((20, 30), 32768, np.int32), mode="I").save(tmp_path / "wide.tif")  # 16-bit values
    assert 127 <= read_rgb(tmp_path / "wide.tif").mean() <= 129
    # a JPEG that lost only its end marker has every row (OpenCV refuses it; Pillow reads it)
    (tmp_path / "no_end.jpg").write_bytes(data[:-2])
    assert np.array_equal(read_rgb(tmp_path / "no_end.jpg"), upright)


@pytest.mark.parametrize("fmt,kw", [("PNG", {}), ("TIFF", {}), ("GIF", {}), ("BMP", {}), ("WEBP", {}),
                                    ("JPEG", {"progressive": True})])
def test_a_photo_cut_short_is_refused_in_every_format(tmp_path, fmt, kw):
    """Pillow's lenient decode filled a truncated PNG, TIFF, GIF, BMP or progressive JPEG
    with black, and scan found a page edge where the file was cut (exit 0)."""
    from PIL import Image
    from edgepipe.base.photos import read_rgb
    rgb = (np.random.default_rng(0).random((60, 80, 3)) * 255).astype(np.uint8)
    whole = tmp_path / f"whole.{fmt.lower()}"
    Image.fromarray(rgb).save(whole, fmt, **kw)
    assert read_rgb(whole).shape == (60, 80, 3)
    data = whole.read_bytes()
    cut = tmp_path / f"cut.{fmt.lower()}"
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(EdgePipeError, match="not a readable image|not a TIFF edgepipe reads"):
        read_rgb(cut)


def test_a_float_colour_tiff_is_not_called_corrupt(tmp_path):
    """A valid 32-bit float RGB TIFF (OpenCV writes them; Pillow cannot open them) was
    'corrupt, truncated or not an image'."""
    import cv2
    from edgepipe.base.photos import read_rgb
    cv2.imwrite(str(tmp_path / "float.tiff"), np.random.default_rng(0).random((16, 16, 3)).astype(np.float32))
    with pytest.raises(EdgePipeError, match="32-bit float colour: save it as 8- or 16-bit"):
        read_rgb(tmp_path / "float.tiff")


# -- garbage and non-Keras files -----------------------------------------------------------------------------------

GARBAGE = b"\x00not a model\xff" * 10


@pytest.mark.parametrize("name", ["bad.h5", "bad.keras", "bad_savedmodel", "empty_folder"])
def test_garbage_is_one_line(tmp_path, capsys, name):
    (tmp_path / "in").mkdir()
    path = tmp_path / "in" / name
    if name.endswith("savedmodel"):
        path.mkdir()
        (path / "saved_model.pb").write_bytes(GARBAGE)
        (path / "keras_metadata.pb").write_bytes(GARBAGE)
    elif name == "empty_folder":
        path.mkdir()
    else:
        path.write_bytes(GARBAGE)
    refused(capsys, convert_argv(path), path, expect="not a loadable Keras model")


def test_non_keras_savedmodel_runs_no_file_op_without_trust(tmp_path, capsys):
    """A SavedModel from a plain tf.Module is its serving signature (convert and verify
    take it); a graph that writes files is refused unless --trust-model, and commands
    that need a Keras model say so in one line."""
    from edgepipe.base.backend import tf
    marker = tmp_path / "ran"

    class Writer(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 3], tf.float32, name="image")])
        def __call__(self, image):
            tf.io.write_file(str(marker), "ran")
            return {"y": image * 2.0}
    (tmp_path / "in").mkdir()
    path = tmp_path / "in" / "plain_savedmodel"
    tf.saved_model.save(Writer(), str(path))
    refused(capsys, convert_argv(path), path, marker, expect="its graph runs op 'WriteFile'")
    refused(capsys, ["verify", "--model", path, "--export", path.parent / "x.tflite"], path, marker, expect=HINT)
    refused(capsys, ["profile", path], path, marker, expect="not a Keras SavedModel (no keras_metadata.pb")

@pytest.mark.parametrize("op", ["DumpTensor", "FixedUnigramCandidateSampler"])
def test_a_savedmodel_op_that_writes_or_reads_a_file_by_attribute_is_refused(tmp_path, capsys, op):
    """Ops the name list missed: DumpTensor writes any file named in its attributes (it
    replaced a user's script), and a sampler reads the vocab_file its attribute names
    (its first line reached the terminal). Tied to the output by a control edge only."""
    from edgepipe.base.backend import tf
    from tensorflow.python.framework import op_def_library
    secret, victim = tmp_path / "secret.txt", tmp_path / "victim"
    secret.write_text("SECRET=1\n")

    class Sneaky(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 8, 8, 3], tf.float32, name="image")])
        def __call__(self, image):
            if op == "DumpTensor":
                side = op_def_library._apply_op_helper(
                    "DumpTensor", tensor_data=tf.constant(["ran"]), log_dir_path=str(victim), file_name="x",
                    enabled=True, func_name="f", node_name="n")[2]
            else:
                side = tf.random.fixed_unigram_candidate_sampler(
                    tf.constant([[0]], tf.int64), 1, 1, True, 2, vocab_file=str(secret))[0]
            with tf.control_dependencies([side]):
                return {"y": image * 2.0}
    (tmp_path / "in").mkdir()
    path = tmp_path / "in" / "sneaky"
    tf.saved_model.save(Sneaky(), str(path))
    assert not victim.exists()
    refused(capsys, convert_argv(path), path, victim, expect=f"its graph runs op '{op}'")


@pytest.mark.parametrize("op", ["Timestamp", "FIFOQueueV2"])
def test_a_savedmodel_stateful_op_outside_the_allowed_kinds_is_refused(tmp_path, capsys, op):
    """Stateful ops are allowed by kind (variables, tables, tensor arrays, loops, random
    numbers), not refused by name: one no name list mentions is refused too."""
    from edgepipe.base.backend import tf
    never = tmp_path / "never"

    class Odd(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 8, 8, 3], tf.float32, name="image")])
        def __call__(self, image):
            if op == "Timestamp":
                side = tf.raw_ops.Timestamp()
            else:
                queue = tf.raw_ops.FIFOQueueV2(component_types=[tf.float32])
                side = tf.raw_ops.QueueEnqueueV2(handle=queue, components=[image])
            with tf.control_dependencies([side]):
                return {"y": image * 2.0}
    (tmp_path / "in").mkdir()
    path = tmp_path / "in" / "odd"
    tf.saved_model.save(Odd(), str(path))
    refused(capsys, convert_argv(path), path, never, expect=f"its graph runs op '{op}' (a stateful op outside")


def test_a_savedmodel_with_variables_tables_tensor_arrays_and_loops_passes_the_op_check(tmp_path):
    """What models keep state in passes: a variable, a lookup table, a tensor array filled
    in a loop, a numerics check and a random draw."""
    from edgepipe.base.backend import tf
    from edgepipe.base.serving import _meta_graph, graph_problem

    class Legit(tf.Module):
        def __init__(self):
            self.scale = tf.Variable(tf.ones((3,)))
            self.table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(["a", "b"], [1, 2]), -1)

        @tf.function(input_signature=[tf.TensorSpec((None, 3)), tf.TensorSpec((None,), tf.string)])
        def __call__(self, x, words):
            sums = tf.TensorArray(tf.float32, size=3)
            for k in tf.range(3):
                sums = sums.write(k, tf.reduce_sum(x[:, k]))
            x = tf.debugging.check_numerics(x, "x") + tf.random.uniform((1, 3)) * 0.0
            return {"y": x * self.scale + tf.reduce_sum(sums.stack()), "ids": self.table.lookup(words)}
    tf.saved_model.save(Legit(), str(tmp_path / "legit"))
    assert graph_problem(_meta_graph(tmp_path / "legit")) is None


def test_tensor_maths_op_layers_pass_the_config_walk():
    """The TensorFlow ops a functional model calls on Keras tensors (slicing, reshape, concat, resize,
    arithmetic) become op layers whose symbols are on the allowlist."""
    from edgepipe.base.backend import keras, tf
    from edgepipe.base.modelio import find_foreign_code
    x = keras.Input((8, 8, 3))
    y = tf.image.resize(tf.nn.relu(x[:, 1:, 1:, :] * 2.0 + 1.0), (8, 8))
    y = tf.concat([tf.reshape(y, (-1, 8, 8, 3)), tf.math.reduce_mean(x, axis=-1, keepdims=True)], axis=-1)
    config = keras.Model(x, tf.transpose(y, (0, 2, 1, 3))).get_config()
    assert find_foreign_code(config) is None


def test_a_keras_savedmodel_whose_resource_writes_a_file_on_load_is_refused(tmp_path, capsys):
    """Loading a SavedModel runs its resources' initializers: a plain Keras model with one
    attached wrote a file, though its Keras config was clean."""
    from edgepipe.base.backend import keras, tf
    marker = tmp_path / "ran"

    class Writer(tf.saved_model.experimental.TrackableResource):
        def _create_resource(self):
            return tf.raw_ops.VarHandleOp(dtype=tf.float32, shape=[], shared_name="")

        def _initialize(self):
            return tf.io.write_file(str(marker), "ran")
    x = keras.Input((8, 8, 3))
    model = keras.Model(x, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)))
    model.writer = Writer()
    (tmp_path / "in").mkdir()
    path = tmp_path / "in" / "keras_savedmodel"
    model.save(path, save_format="tf")
    marker.unlink(missing_ok=True)
    refused(capsys, convert_argv(path), path, marker, expect="its graph runs op 'WriteFile'")
    refused(capsys, ["profile", path], path, marker, expect=HINT)
    # ... while an adapted Normalization (the audio tutorial's), whose saved adapt_step reads
    # the next batch of an iterator handed in, is no file access and loads untrusted
    from edgepipe.base.modelio import load_keras
    norm = keras.layers.Normalization()
    norm.adapt(np.random.default_rng(0).random((10, 4), np.float32))
    x = keras.Input((4,))
    keras.Model(x, keras.layers.Dense(2)(norm(x))).save(tmp_path / "adapted", save_format="tf")
    assert load_keras(tmp_path / "adapted").count_params() > 0


@pytest.mark.parametrize("fmt", ["h5", "keras"])
def test_weights_kept_in_another_file_are_refused(plain, tmp_path, capsys, fmt):
    """HDF5 external storage made a bias of another file's bytes (a secret on the user's disk
    landed in the exported .tflite); an external link reads another file too."""
    import h5py
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"SECRET-TOKEN-0123456789abcdefghijklmnop")

    def mutate(f):
        group = f["model_weights/dense/dense"] if fmt == "h5" else f["layers/dense/vars"]
        name = "bias:0" if fmt == "h5" else "1"
        del group[name]
        group.create_dataset(name, shape=(2,), dtype="float32", external=[(str(secret), 0, 8)])
    path = isolated(plain / f"plain.{fmt}", tmp_path)
    if fmt == "h5":
        with h5py.File(path, "r+") as f:
            mutate(f)
    else:
        with zipfile.ZipFile(path) as z:
            (tmp_path / "w.h5").write_bytes(z.read("model.weights.h5"))
        with h5py.File(tmp_path / "w.h5", "r+") as f:
            mutate(f)
        rewrite_member(path, "model.weights.h5", (tmp_path / "w.h5").read_bytes())
    refused(capsys, convert_argv(path), path, expect="keeps its data in another file")
    (tmp_path / "link").mkdir()
    linked = isolated(plain / "plain.h5", tmp_path / "link")
    with h5py.File(linked, "r+") as f:
        f["model_weights/elsewhere"] = h5py.ExternalLink(str(tmp_path / "w.h5" if fmt == "keras" else secret), "/")
    refused(capsys, convert_argv(linked), linked, expect="links to another file")


def rewrite_member(path: Path, member: str, data: bytes) -> None:
    """Replace one member of a zip in place (a test's own copy)."""
    with zipfile.ZipFile(path) as zin:
        items = [(info, data if info.filename == member else zin.read(info.filename)) for info in zin.infolist()]
    with zipfile.ZipFile(path, "w") as zout:
        for info, content in items:
            zout.writestr(info, content)


def test_file_attributes_are_whole_words():
    """vocab_file, DumpTensor's log_dir_path and file_name name files; CTCBeamSearchDecoder's
    top_paths (an OCR model's decoder) and CudnnRNN's direction do not."""
    from edgepipe.base.serving import FILE_ATTR
    assert all(FILE_ATTR.search(k) for k in ("vocab_file", "log_dir_path", "file_name", "filename", "path"))
    assert not any(FILE_ATTR.search(k) for k in ("top_paths", "direction", "data_format", "shared_name"))


def test_an_onnx_loop_of_endless_turns_still_stops_on_ctrl_c(tmp_path):
    """A Loop of 10^15 turns held the main thread in onnxruntime's native code, where no
    Python signal handler runs: verify ignored Ctrl-C and SIGTERM until killed. ORT now runs
    in a worker thread, and an interrupt stops it (RunOptions.terminate)."""
    import os
    import signal
    import threading
    import time

    import onnx
    from onnx import TensorProto, helper

    from edgepipe.evaluate.runners import open_runner
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Identity", ["v_in"], ["v_out"])],
        "body", [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                 helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
                 helper.make_tensor_value_info("v_in", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [1, 4])])
    graph = helper.make_graph(
        [helper.make_node("Constant", [], ["trips"], value=helper.make_tensor("t", TensorProto.INT64, [], [10 ** 15])),
         helper.make_node("Constant", [], ["go"], value=helper.make_tensor("g", TensorProto.BOOL, [], [True])),
         helper.make_node("Loop", ["trips", "go", "x"], ["y"], body=body)],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(tmp_path / "loop.onnx"))
    runner = open_runner(tmp_path / "loop.onnx")
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # xdist's workers may ignore it
    timer = threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGINT))
    try:
        timer.start()
        start = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            runner.predict(np.zeros((1, 4), np.float32))
        assert time.monotonic() - start < 30
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)


def test_a_tflite_while_of_endless_turns_still_stops_on_ctrl_c(tmp_path):
    """A WHILE whose condition never turns false held the main thread in LiteRT's Invoke(),
    where no Python signal handler runs: verify ignored Ctrl-C until killed. Invoke() now runs
    in a worker thread; LiteRT has no terminate, so the interrupt ends the process, which a
    subprocess stands for here (the worker would spin on in a test process)."""
    import signal
    import subprocess
    import sys
    import time

    from edgepipe.base.backend import tf

    class Endless(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32)], autograph=False)
        def __call__(self, x):
            return tf.while_loop(lambda i, y: tf.reduce_sum(y) > -1e30,  # inf stays above it: never false
                                 lambda i, y: (i + 1.0, y * 1.0000001), [tf.constant(0.0), x])[1]
    module = Endless()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([module.__call__.get_concrete_function()], module)
    (tmp_path / "endless.tflite").write_bytes(converter.convert())
    script = ("import signal, sys, numpy as np\n"
              "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
              "from edgepipe.evaluate.runners import open_runner\n"
              f"r = open_runner({str(tmp_path / 'endless.tflite')!r})\n"
              "print('ready', flush=True)\n"
              "r.predict(np.zeros((1, 4), np.float32))\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(2)  # inside Invoke() by now
        assert proc.poll() is None  # the loop does not end by itself
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        assert "KeyboardInterrupt" in proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()

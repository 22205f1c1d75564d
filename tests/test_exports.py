"""Each exporter on a tiny HED: files are written atomically and match Keras."""
import numpy as np
import pytest

from edgepipe.convert.fold import count_batchnorm, fold_batchnorm
from tests.conftest import randomise_batchnorm
from edgepipe.convert.formats import VARIANTS, export
from edgepipe.evaluate.parity import parity
from edgepipe.evaluate.runners import KerasRunner, open_runner
from edgepipe.base.errors import EdgePipeError


@pytest.fixture(scope="module")
def folded(tiny_hed):
    return fold_batchnorm(tiny_hed)


def test_batchnorm_folding_is_exact(tiny_hed, folded, tiny_images):
    assert count_batchnorm(tiny_hed) > 0 and count_batchnorm(folded) == 0
    assert np.abs(tiny_hed.predict(tiny_images, verbose=0) - folded.predict(tiny_images, verbose=0)).max() < 1e-5


def test_a_bn_after_a_conv_with_its_own_activation_is_not_folded_into_it(tmp_path):
    """Conv2D(activation="relu") then BatchNormalization, as users write it: the BN was
    folded as if it came before the ReLU, and the TFLite file differed from Keras by 2."""
    from edgepipe.base.backend import keras
    L = keras.layers
    inp = keras.Input((8, 8, 3))
    x = L.BatchNormalization()(L.Conv2D(4, 3, activation="relu")(inp))
    x = L.BatchNormalization()(L.Conv2D(4, 3)(x))  # a linear conv: this one folds
    model = keras.Model(inp, L.Dense(2)(L.GlobalAveragePooling2D()(x)))
    randomise_batchnorm(model)
    folded = fold_batchnorm(model)
    assert count_batchnorm(folded) == 1
    x = np.random.default_rng(0).random((4, 8, 8, 3), np.float32)
    assert np.abs(model.predict(x, verbose=0) - folded.predict(x, verbose=0)).max() < 1e-5
    out = export(VARIANTS["tflite_float32"], fold_batchnorm(model), tmp_path / "m.tflite")
    got = next(iter(open_runner(out).predict(x).values()))
    assert np.abs(got - model.predict(x, verbose=0)).max() < 1e-4


def _no_temp_files(directory):
    return [p.name for p in directory.iterdir() if p.name.startswith(".edgepipe-tmp-")] == []


def _export_and_run(variant, model, tmp_path, images):
    v = VARIANTS[variant]
    path = export(v, model, tmp_path / f"m{v.suffix}", images if v.precision == "int8" else None)
    assert path.exists() and _no_temp_files(tmp_path)
    return open_runner(path).predict(images)


def test_tflite_float32_matches_keras(tiny_hed, folded, tmp_path, tiny_images):
    ref = KerasRunner(tiny_hed).predict(tiny_images)["edges"]
    got = _export_and_run("tflite_float32", folded, tmp_path, tiny_images)
    assert parity(ref, next(iter(got.values())))["max_abs"] < 1e-4


def test_tflite_int8_has_int8_io_and_stays_close(tiny_hed, folded, tmp_path, tiny_images):
    ref = KerasRunner(tiny_hed).predict(tiny_images)["edges"]
    got = _export_and_run("tflite_int8", folded, tmp_path, tiny_images)
    runner = open_runner(tmp_path / "m.int8.tflite")
    assert runner.inputs[0].dtype == "int8"
    assert parity(ref, next(iter(got.values())))["psnr_db"] > 20


def test_onnx_matches_keras(tiny_hed, folded, tmp_path, tiny_images):
    ref = KerasRunner(tiny_hed).predict(tiny_images)["edges"]
    got = _export_and_run("onnx_float32", folded, tmp_path, tiny_images)
    assert list(got) == ["edges"]
    assert parity(ref, got["edges"])["max_abs"] < 1e-4


def test_coreml_mlpackage_has_image_input_and_named_output(folded, tmp_path):
    import coremltools as ct
    path = export(VARIANTS["coreml_fp16"], folded, tmp_path / "m.mlpackage")
    assert path.is_dir() and _no_temp_files(tmp_path)
    spec = ct.utils.load_spec(str(path))
    assert spec.description.input[0].name == "image"
    assert spec.description.input[0].type.WhichOneof("Type") == "imageType"
    assert [o.name for o in spec.description.output] == ["edges"]
    ops = {op.type for f in spec.mlProgram.functions.values() for b in f.block_specializations.values()
           for op in b.operations}
    assert "batch_norm" not in ops and "conv_transpose" in ops


def test_coreml_runs_in_the_reference_interpreter_off_macos(folded, tmp_path, tiny_images):
    import sys
    path = export(VARIANTS["coreml_fp16"], folded, tmp_path / "m.mlpackage")
    if sys.platform == "darwin":
        pytest.skip("real Core ML prediction available")
    runner = open_runner(path)
    assert runner.engine == "reference-interpreter" and "reference-interpreter" in runner.version
    ref = KerasRunner(folded).predict(tiny_images)["edges"]
    assert parity(ref, runner.predict(tiny_images)["edges"])["psnr_db"] >= 40


def test_coreml_latency_is_refused_off_macos(folded, tmp_path):
    import sys
    from edgepipe.evaluate.latency import measure_host
    if sys.platform == "darwin":
        pytest.skip("real Core ML prediction available")
    path = export(VARIANTS["coreml_fp16"], folded, tmp_path / "m.mlpackage")
    with pytest.raises(EdgePipeError, match="Core ML latency needs macOS"):
        measure_host({"coreml": str(path)}, 1, 1, 1)


def test_int8_calibration_rejects_nan(folded, tmp_path, tiny_images):
    from edgepipe.base.errors import EdgePipeError
    bad = tiny_images.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(EdgePipeError, match="NaN"):
        export(VARIANTS["tflite_int8"], folded, tmp_path / "m.int8.tflite", bad)
    assert not (tmp_path / "m.int8.tflite").exists()


META = {"name": "tiny", "description": "a tiny HED", "author": "tests", "license": "MIT", "version": "9.9.9",
        "inputs": [{"name": "image", "description": "RGB in [0, 1]"}],
        "outputs": [{"name": "edges", "meaning": "edge probability"}]}


def test_onnx_carries_the_model_card(folded, tmp_path):
    import json

    import onnx
    path = export(VARIANTS["onnx_float32"], folded, tmp_path / "m.onnx", meta=META)
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(props["model_card"])["version"] == "9.9.9" and props["author"] == "tests"


def test_coreml_carries_author_license_version_and_descriptions(folded, tmp_path):
    import coremltools as ct
    path = export(VARIANTS["coreml_fp16"], folded, tmp_path / "m.mlpackage", meta=META)
    spec = ct.utils.load_spec(str(path))
    md = spec.description.metadata
    assert (md.author, md.license, md.versionString, md.shortDescription) == ("tests", "MIT", "9.9.9", "a tiny HED")
    assert spec.description.output[0].shortDescription == "edge probability"
    assert "model_card" in md.userDefined


def test_subpixel_rewrite_of_transposed_convs_is_exact(tmp_path):
    from edgepipe.convert.fold import export_graph
    from edgepipe.evaluate.opprofile import tflite_op_histogram
    from edgepipe.base.backend import keras
    keras.utils.set_random_seed(3)
    x = keras.Input((16, 16, 5), name="image")
    a = keras.layers.Conv2DTranspose(3, 8, strides=4, padding="same", name="up4")(x)   # rewritten
    b = keras.layers.Conv2DTranspose(2, 3, strides=2, padding="same", name="odd")(x)   # kernel != 2s: kept
    model = keras.Model(x, [a, b])
    for layer in model.layers[1:]:
        kernel, bias = layer.get_weights()
        layer.set_weights([kernel, np.random.default_rng(0).normal(size=bias.shape).astype(np.float32)])
    graph = export_graph(model)
    kinds = {type(layer).__name__ for layer in graph.layers}
    assert "DepthToSpace" in kinds and [l.name for l in graph.layers if type(l).__name__ == "Conv2DTranspose"] == ["odd"]
    images = np.random.default_rng(1).random((2, 16, 16, 5)).astype(np.float32)
    for want, got in zip(model.predict(images, verbose=0), graph.predict(images, verbose=0)):
        assert np.abs(want - got).max() < 1e-5
    path = export(VARIANTS["tflite_float32"], graph, tmp_path / "m.tflite")
    assert "DEPTH_TO_SPACE" in tflite_op_histogram(path)
    got = open_runner(path).predict(images)
    up = [g for g in got.values() if g.shape == (2, 64, 64, 3)]
    assert len(up) == 1 and np.abs(model.predict(images, verbose=0)[0] - up[0]).max() < 1e-5


def test_hed_export_graph_has_no_transposed_convs_and_matches_in_every_format(tiny_hed, tmp_path, tiny_images):
    from edgepipe.convert.fold import export_graph
    graph = export_graph(tiny_hed)
    assert not [l for l in graph.layers if type(l).__name__ in ("Conv2DTranspose", "Concatenate")]
    ref = tiny_hed.predict(tiny_images, verbose=0)
    for variant in ("tflite_float32", "onnx_float32", "coreml_fp32"):
        v = VARIANTS[variant]
        got = next(iter(open_runner(export(v, graph, tmp_path / f"m{v.suffix}")).predict(tiny_images).values()))
        assert parity(ref, got)["max_abs"] < 1e-4, variant


def test_batchnorm_folds_through_a_concat_of_grouped_convs():
    """ShuffleNet v1's grouped 1x1 convs end in split -> convs -> concat -> BN: the
    BN folds into each group's conv, slice by slice, and nothing changes."""
    from edgepipe import mobile_models
    from tests.conftest import randomise_batchnorm
    model = mobile_models.build("shufflenet_v1", groups=3, scale=0.5, input_shape=(32, 32, 3), classes=10,
                                classifier_activation=None)
    randomise_batchnorm(model)
    folded = fold_batchnorm(model)
    x = np.random.default_rng(0).random((2, 32, 32, 3), np.float32)
    assert count_batchnorm(model) > 0 and count_batchnorm(folded) == 0
    assert np.abs(model.predict(x, verbose=0) - folded.predict(x, verbose=0)).max() < 1e-4


def test_hed_fuse_pyramid_is_exact_and_leaves_side_outputs_alone(tiny_images):
    """The fuse (a 1x1 conv over five upsampled sides) becomes sums and 2x
    depth-to-space steps, with the fuse weights and bias folded into the side
    convs; a training model, whose sides are outputs themselves, is not touched."""
    from edgepipe import mobile_models
    from edgepipe.convert.fuse_pyramid import d2s_permutation, fuse_pyramid
    from edgepipe.convert.upsample import transposed_to_subpixel
    from edgepipe.base.backend import tf
    from edgepipe.mobile_models.hed import inference_model
    for block in (2, 4, 8):
        x = np.random.default_rng(block).random((1, 3, 3, block * block)).astype(np.float32)
        y = x[..., d2s_permutation(block)]
        while y.shape[-1] > 1:
            y = tf.nn.depth_to_space(y, 2).numpy()
        assert np.array_equal(y, tf.nn.depth_to_space(x, block).numpy())
    # stem_stride 2: no full-resolution side, the fuse bias goes to side 1's phases;
    # full_side: a full-resolution side 1 beside a half-resolution body
    for options in ({}, {"stem_stride": 2}, {"stem_stride": 2, "full_side": 1}):
        train = randomise_batchnorm(mobile_models.build("hed_mobilenet_v2", input_shape=(64, 64, 3), **options))
        fuse = train.get_layer("fuse")
        fuse.set_weights([np.array([0.7, -0.4, 1.3, 0.2, -0.9], np.float32).reshape(1, 1, 5, 1),
                          np.array([0.25], np.float32)])
        subpixel = transposed_to_subpixel(fold_batchnorm(inference_model(train)))
        rewritten = fuse_pyramid(subpixel)
        names = [l.name for l in rewritten.layers]
        assert "dsn_concat" not in names and "fuse_up1" in names and "fuse" in names
        want, got = subpixel.predict(tiny_images, verbose=0), rewritten.predict(tiny_images, verbose=0)
        assert np.abs(want - got).max() < 1e-5
        assert fuse_pyramid(train) is train


def test_a_conv_that_is_also_a_model_output_keeps_its_batchnorm():
    """Folding would change the conv's own output, which the model returns too."""
    from edgepipe.base.backend import keras
    x = keras.Input((8, 8, 3))
    conv = keras.layers.Conv2D(4, 3, padding="same", name="conv")(x)
    bn = keras.layers.BatchNormalization(name="bn")(conv)
    model = randomise_batchnorm(keras.Model(x, [conv, bn]))
    folded = fold_batchnorm(model)
    images = np.random.default_rng(0).random((2, 8, 8, 3)).astype(np.float32)
    assert count_batchnorm(folded) == 1
    for want, got in zip(model.predict(images, verbose=0), folded.predict(images, verbose=0)):
        assert np.abs(want - got).max() < 1e-6


def test_tflite_runs_shufflenet_v1_grouped_convs_as_one_grouped_conv(tmp_path, shallow_zoo):
    """GroupSplit -> per-group convs -> concat becomes Conv2D(groups=g) in the graph
    LiteRT gets: no SPLIT or CONCATENATION left inside the units, outputs unchanged;
    the roofline graph no longer counts the split and concat copies."""
    from edgepipe import mobile_models
    from edgepipe.convert.fold import export_graph, roofline_graph
    from edgepipe.convert.grouped import merge_groups
    from edgepipe.evaluate.opprofile import tflite_op_histogram
    from edgepipe.base.custom_layers import GroupSplit
    from edgepipe.mobile_models import shufflenet
    from edgepipe.mobile_models.profile import profile_model
    from tests.conftest import randomise_batchnorm
    model = mobile_models.build("shufflenet_v1", groups=3, scale=0.5, input_shape=(32, 32, 3), classes=5,
                                classifier_activation=None)
    randomise_batchnorm(model)
    graph = export_graph(model)
    merged = merge_groups(graph)
    grouped = [l for l in merged.layers if getattr(l, "groups", 1) == 3]
    units = sum(shufflenet.SHUFFLENET_V1_REPEATS)  # two grouped convs each; the very first is not grouped
    assert not any(isinstance(l, GroupSplit) for l in merged.layers) and len(grouped) == 2 * units - 1
    images = np.random.default_rng(0).random((3, 32, 32, 3)).astype(np.float32)
    want = model.predict(images, verbose=0)
    assert np.abs(merged.predict(images, verbose=0) - want).max() < 1e-4
    path = export(VARIANTS["tflite_float32"], graph, tmp_path / "m.tflite")
    ops = tflite_op_histogram(path)
    assert "SPLIT" not in ops and ops.get("CONCATENATION", 0) == 3  # the stride-2 units' shortcut concats
    got, = open_runner(path).predict(images).values()
    assert np.abs(got - want).max() < 1e-4
    assert profile_model(roofline_graph(graph))["mac"] < profile_model(graph)["mac"]
    assert merge_groups(merged) is merged  # nothing left to merge
    # a split whose output the model also returns, or groups of unequal width, stay as they are
    from edgepipe.base.backend import keras
    x = keras.Input((8, 8, 6))
    a, b = GroupSplit(2)(x)
    returned = keras.layers.Concatenate()([keras.layers.Conv2D(4, 1)(a), keras.layers.Conv2D(4, 1)(b)])
    c, d = GroupSplit(2)(x)
    unequal = keras.layers.Concatenate()([keras.layers.Conv2D(4, 1)(c), keras.layers.Conv2D(2, 1)(d)])
    odd = keras.Model(x, [returned, a, unequal])
    assert merge_groups(odd) is odd


def test_shuffles_that_convs_can_absorb_are_dropped_exactly(tmp_path, shallow_zoo):
    """ShuffleNet v2's stage-ending shuffles are read by convs (through a
    depthwise conv on the stride-2 unit's left branch) and vanish from the export
    graph; those read by a channel split stay. Outputs are unchanged in TFLite and ONNX."""
    from edgepipe import mobile_models
    from edgepipe.convert.fold import export_graph
    from edgepipe.convert.shuffle import absorb_shuffles, shuffle_permutation
    from edgepipe.base.backend import tf
    from edgepipe.mobile_models.shufflenet import SHUFFLENET_V2_REPEATS
    x = np.arange(12.0).reshape(1, 1, 1, 12)
    assert np.array_equal(x[..., shuffle_permutation(3, 12)], tf.reshape(
        tf.transpose(tf.reshape(x, (1, 1, 1, 3, 4)), (0, 1, 2, 4, 3)), (1, 1, 1, 12)).numpy())
    model = mobile_models.build("shufflenet_v2", scale=0.5, input_shape=(32, 32, 3), classes=5,
                                classifier_activation=None)
    randomise_batchnorm(model)
    folded = fold_batchnorm(model)
    graph = absorb_shuffles(folded)
    permutes = lambda m: [l.name for l in m.layers if type(l).__name__ == "Permute"]
    assert len(permutes(folded)) == sum(SHUFFLENET_V2_REPEATS) and len(permutes(graph)) == len(permutes(folded)) - 3
    stage_ends = {f"stage{s}_{n - 1}_shuffle" for s, n in enumerate(SHUFFLENET_V2_REPEATS, 2)}
    assert len(stage_ends & {l.name for l in folded.layers}) == 3 and not stage_ends & {l.name for l in graph.layers}
    images = np.random.default_rng(0).random((3, 32, 32, 3)).astype(np.float32)
    want = model.predict(images, verbose=0)
    assert np.abs(graph.predict(images, verbose=0) - want).max() < 1e-4
    for variant in ("tflite_float32", "onnx_float32"):
        path = export(VARIANTS[variant], export_graph(model), tmp_path / f"m{VARIANTS[variant].suffix}")
        got, = open_runner(path).predict(images).values()
        assert np.abs(got - want).max() < 1e-4, variant


def test_a_region_hed_exports_edges_and_page_by_name_in_every_format(tmp_path, tiny_images):
    """HED with the page-region head (model option region: 1): every format keeps both
    outputs, named as the app and ``scan`` look them up, and matches Keras."""
    from edgepipe import mobile_models
    from edgepipe.convert.fold import export_graph
    from edgepipe.mobile_models.hed import inference_model
    from edgepipe.mobile_models.scan import scan
    model = randomise_batchnorm(inference_model(mobile_models.build("hed_mobilenet_v2", input_shape=(64, 64, 3),
                                                                    region=1)))
    ref = KerasRunner(model).predict(tiny_images)
    graph = export_graph(model)
    for variant in ("tflite_float32", "tflite_int8", "onnx_float32", "coreml_fp32"):
        v = VARIANTS[variant]
        path = export(v, graph, tmp_path / f"m{v.suffix}", tiny_images if v.precision == "int8" else None)
        got = open_runner(path).predict(tiny_images)
        assert sorted(got) == ["edges", "page"], variant
        for name in ("edges", "page"):
            p = parity(ref[name], got[name])
            assert p["psnr_db"] > 20 if v.precision == "int8" else p["max_abs"] < 1e-4, (variant, name, p)
    result = scan((tiny_images[0] * 255).astype(np.uint8), open_runner(tmp_path / "m.int8.tflite"))
    assert result.region is not None and result.region.shape == result.edges.shape == (64, 64)

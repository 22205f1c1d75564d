"""Files edgepipe did not make, brought to verify, bench and scan: TFLite files from the
converter itself (two outputs, two signatures, bool and integer inputs, a free batch),
ONNX files written with onnx.helper as other exporters write them, and models that take
raw pixels. Each model is a layer or two at 8x8 to 32x32 (generated weights)."""
import json

import numpy as np
import pytest

from edgepipe.base.backend import keras, tf
from edgepipe.base.errors import EdgePipeError
from edgepipe.cli.main import main
from edgepipe.evaluate.runners import open_runner


def _tflite(module, path, fn):
    path.write_bytes(tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], module).convert())
    return path


def _verify(capsys, model, export, *extra) -> tuple[int, dict]:
    capsys.readouterr()
    rc = main(["verify", "--model", str(model), "--export", str(export), "--json", "--no-drill-down",
               *map(str, extra)])
    return rc, json.loads(capsys.readouterr().out)


class TwoMaps(tf.Module):
    """An edge map and its complement: the converter names both 'StatefulPartitionedCall'."""
    @tf.function(input_signature=[tf.TensorSpec([1, 16, 16, 3], tf.float32, name="image")])
    def f(self, image):
        edges = tf.sigmoid(tf.reduce_mean(image, -1, keepdims=True) * 4 - 2)
        return {"edges": edges, "zbg": 1 - edges}


def test_two_outputs_keep_their_own_names_and_values(tmp_path):
    runner = open_runner(_tflite(TwoMaps(), tmp_path / "two.tflite", TwoMaps().f))
    x = np.random.default_rng(0).random((2, 16, 16, 3), np.float32)
    out = runner.predict(x)
    assert sorted(out) == ["edges", "zbg"], out.keys()  # both kept: one used to overwrite the other
    assert np.allclose(out["zbg"], 1 - out["edges"], atol=1e-5)  # XNNPACK's sigmoid differs by instruction set
    assert np.allclose(out["edges"][:1], TwoMaps().f(x[:1])["edges"].numpy(), atol=1e-5)


class TwoSignatures(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32, name="x")])
    def serving_default(self, x):
        return {"y": x * 0.5}

    @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32, name="x")])
    def a_reference(self, x):
        return {"y": x}


def test_a_file_whose_first_signature_is_not_serving_default_is_refused(tmp_path):
    """The converter orders signatures by name, so subgraph 0 (what the interpreter runs)
    was 'a_reference', and verify passed a file whose 'serving_default' halves every value."""
    module = TwoSignatures()
    tf.saved_model.save(module, str(tmp_path / "sm"), signatures={"serving_default": module.serving_default,
                                                                  "a_reference": module.a_reference})
    converter = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "sm"),
                                                         signature_keys=["serving_default", "a_reference"])
    (tmp_path / "two.tflite").write_bytes(converter.convert())
    with pytest.raises(EdgePipeError, match="2 signatures .*not 'serving_default'"):
        open_runner(tmp_path / "two.tflite")


class Flagged(tf.Module):
    """A bool input picks a branch; the export's other branch is broken when ``broken``."""
    def __init__(self, broken=False):
        super().__init__()
        self.broken = broken

    @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32, name="x"),
                                  tf.TensorSpec([1], tf.bool, name="flag")])
    def f(self, x, flag):
        other = tf.fill([1, 4], 999.0) if self.broken else -x
        return {"y": tf.where(flag[:, None], x, other)}


class Lookup(tf.Module):
    """int32 token ids into a 5-row table."""
    @tf.function(input_signature=[tf.TensorSpec([1, 3], tf.int32, name="ids")])
    def f(self, ids):
        table = tf.constant(np.arange(20, dtype=np.float32).reshape(5, 4))
        return {"y": tf.reduce_sum(tf.gather(table, ids), axis=1)}


def test_generated_bool_and_integer_inputs_take_every_value_alike_on_both_sides(tmp_path, capsys):
    """Uniform floats cast to bool are all True (the broken branch never ran: pass, exit 0);
    an int32 input got 0 from one runtime's cast and 0 or 1 from the other's rounding."""
    flagged = Flagged()
    tf.saved_model.save(flagged, str(tmp_path / "flagged"), signatures={"serving_default": flagged.f})
    broken = Flagged(broken=True)
    rc, report = _verify(capsys, tmp_path / "flagged", _tflite(broken, tmp_path / "broken.tflite", broken.f))
    assert rc == 1 and report["outputs"][0]["max_abs"] > 900, report
    rc, report = _verify(capsys, tmp_path / "flagged", _tflite(flagged, tmp_path / "flagged.tflite", flagged.f))
    assert rc == 0, report
    lookup = Lookup()
    tf.saved_model.save(lookup, str(tmp_path / "lookup"), signatures={"serving_default": lookup.f})
    rc, report = _verify(capsys, tmp_path / "lookup", _tflite(lookup, tmp_path / "lookup.tflite", lookup.f))
    assert rc == 0 and report["outputs"][0]["max_abs"] == 0 and report["outputs"][0]["spread"] > 0, report


def _edge_model(scale: float, uint8: bool = False):
    """A one-conv 'edge detector' with a sigmoid map; ``scale`` 1/255 makes it take raw pixels."""
    keras.utils.set_random_seed(3)
    inputs = keras.Input((32, 32, 3), dtype="uint8" if uint8 else "float32")
    x = keras.layers.Rescaling(scale)(tf.cast(inputs, tf.float32) if uint8 else inputs)
    return keras.Model(inputs, keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid", name="edges")(x))


def test_scan_feeds_a_model_the_pixels_it_takes(tmp_path):
    """scan fed every model pixel / 255: a model with its own Rescaling(1/255), its
    export (card: 0..255) and an unquantized uint8 TFLite saw a black photo."""
    from edgepipe.cli.scan import pixel_spec
    from edgepipe.mobile_models.scan import scan
    photo = np.random.default_rng(1).integers(0, 256, (48, 40, 3), dtype=np.uint8)
    unit = _edge_model(1.0)
    unit.save(tmp_path / "unit.keras")
    raw = _edge_model(1 / 255)
    raw.set_weights(unit.get_weights())
    raw.save(tmp_path / "raw.keras")
    assert main(["convert", "--model", str(tmp_path / "raw.keras"), "--format", "tflite",
                 "--out", str(tmp_path / "raw.tflite")]) == 0
    u8 = _edge_model(1 / 255, uint8=True)
    u8.set_weights(unit.get_weights())
    module = tf.Module()
    module.f = tf.function(lambda image: {"edges": u8(image)},
                           input_signature=[tf.TensorSpec([1, 32, 32, 3], tf.uint8, name="image")])
    _tflite(module, tmp_path / "u8.tflite", module.f)

    def edges(path):
        runner = open_runner(path)
        return scan(photo, runner, spec=pixel_spec(path, runner)).edges
    want = edges(tmp_path / "unit.keras")
    assert want.std() > 0.01
    for name in ("raw.keras", "raw.tflite", "u8.tflite"):
        assert np.abs(edges(tmp_path / name) - want).max() < 1e-2, name


def test_bench_runs_a_free_batch_in_one_call(tmp_path):
    """A free-batch TFLite or ONNX file was timed as N calls at batch 1 under --batch N."""
    module = tf.Module()
    module.f = tf.function(lambda x: {"y": tf.reduce_sum(x * 2.0, axis=-1)},
                           input_signature=[tf.TensorSpec([None, 8], tf.float32, name="x")])
    runner = open_runner(_tflite(module, tmp_path / "free.tflite", module.f))
    assert runner.dynamic_batch
    x = np.ones((6, 8), np.float32)
    runner.bound(x)()
    assert runner.interp.get_input_details()[0]["shape"][0] == 6
    assert np.allclose(runner.interp.get_tensor(runner.interp.get_output_details()[0]["index"]), 16.0)

    onnx_runner = open_runner(_onnx_doubler(tmp_path / "free.onnx", "N"))
    seen = []
    real_run = onnx_runner.sess.run
    onnx_runner.sess = type("Recording", (), {"run": lambda self, out, feed, options=None: seen.append(
        next(iter(feed.values())).shape) or real_run(out, feed, options)})()
    onnx_runner.bound(x)()
    assert seen[-1] == (6, 8), seen


def _onnx_doubler(path, batch, dtype=None, constant=False):
    """y = x * 2 as onnx.helper writes it (a PyTorch-like file): the 2 as an initializer or a Constant node."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    dtype = dtype or TensorProto.FLOAT
    two = numpy_helper.from_array(np.array(2, onnx.helper.tensor_dtype_to_np_dtype(dtype)), "two")
    nodes = [helper.make_node("Mul", ["input.1", "two"], ["y"])]
    if constant:
        nodes.insert(0, helper.make_node("Constant", [], ["two"], value=two))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("input.1", dtype, [batch, 8])],
                              [helper.make_tensor_value_info("y", dtype, [batch, 8])],
                              initializer=[] if constant else [two])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_fp16_weights_in_constant_nodes_are_read_as_float16(tmp_path):
    from onnx import TensorProto
    from edgepipe.evaluate.quantinfo import onnx_precision
    assert onnx_precision(_onnx_doubler(tmp_path / "a.onnx", 1, TensorProto.FLOAT16, constant=True)) == "float16"
    assert onnx_precision(_onnx_doubler(tmp_path / "b.onnx", 1, TensorProto.FLOAT16)) == "float16"
    assert onnx_precision(_onnx_doubler(tmp_path / "c.onnx", 1, constant=True)) == "float32"


def test_bench_takes_a_run_cards_work_only_for_the_files_it_lists(tmp_path):
    from edgepipe.cli.bench import _card_macs
    (tmp_path / "model_card.json").write_text(json.dumps({"macs": 1234, "artifacts": [{"file": "ours.onnx"}]}))
    assert _card_macs(tmp_path / "ours.onnx") == 1234
    assert _card_macs(tmp_path / "mine.onnx") is None  # the user's own model dropped into a run folder


def test_thread_counts_past_any_machine_are_a_usage_error():
    from edgepipe.cli.bench import parse_threads
    assert parse_threads("1,4") == [1, 4]
    with pytest.raises(EdgePipeError, match="at most 256"):
        parse_threads("20000")


def test_a_channels_first_export_is_named_as_such(tmp_path, capsys):
    """A PyTorch-style (N, 3, H, W) export beside an NHWC Keras model was 'is the export from this model?'."""
    import onnx
    from onnx import TensorProto, helper
    inputs = keras.Input((8, 8, 3))
    keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(inputs)).save(tmp_path / "m.keras")
    graph = helper.make_graph([helper.make_node("ReduceMean", ["input.1"], ["y"], axes=[2, 3], keepdims=0)], "g",
                              [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(tmp_path / "nchw.onnx"))
    capsys.readouterr()
    assert main(["verify", "--model", str(tmp_path / "m.keras"), "--export", str(tmp_path / "nchw.onnx")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "channels moved" in err[0] and "channels-last (NHWC)" in err[0], err
    # with the right NHWC images as --data, it said the data had the wrong shape
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((4, 8, 8, 3), np.float32))
    assert main(["verify", "--model", str(tmp_path / "m.keras"), "--export", str(tmp_path / "nchw.onnx"),
                 "--data", str(tmp_path / "x.npy")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds images of shape (8, 8, 3)" in err[0] and "channels-first" in err[0], err


def test_float32_gate_scales_with_the_output(tmp_path, capsys):
    """A raw-pixel model's outputs reach the thousands, where 1e-4 is a few float32 ulps:
    verify's exact gate is 1e-4 + 1e-5 of the output's peak (--rtol 0: 1e-4 alone)."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    conv = keras.layers.Conv2D(2, 3, kernel_initializer="ones")
    keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(conv(inputs))).save(tmp_path / "big.keras")
    assert main(["convert", "--model", str(tmp_path / "big.keras"), "--format", "tflite", "--input-range", "0,255",
                 "--out", str(tmp_path / "big.tflite")]) == 0
    rc, report = _verify(capsys, tmp_path / "big.keras", tmp_path / "big.tflite")
    row = report["outputs"][0]
    assert rc == 0 and float(row["gate"].split("<= ")[1]) > 1e-4 + 1e-5 * 1000, row
    rc, report = _verify(capsys, tmp_path / "big.keras", tmp_path / "big.tflite", "--rtol", "0")
    assert report["outputs"][0]["gate"].endswith("<= 0.0001"), report


def test_an_inf_in_the_original_does_not_open_the_float_gate():
    from edgepipe.cli.verify import _finite_peak
    from edgepipe.evaluate.gates import RTOL, check_output, default_gate
    ref = np.array([[0.5, 0.2, np.inf]], np.float32)
    gate = default_gate("float32", False, rtol=RTOL, peak=_finite_peak(ref))
    assert gate.threshold == pytest.approx(1e-4 + RTOL * 0.5)
    assert not check_output(ref, np.array([[9, -7, 3.4e38]], np.float32), gate)["pass"]


@pytest.mark.parametrize("text", ["1,,2", "1,", ",", "", "1, 1", "-1", "1.5", "٣"])
def test_a_thread_list_with_a_hole_a_repeat_or_a_non_number_is_a_usage_error(text):
    from edgepipe.cli.bench import parse_threads
    with pytest.raises(EdgePipeError, match="--threads"):
        parse_threads(text)
    assert parse_threads(" 1, 2 ") == [1, 2]


def test_a_file_fixed_at_batch_4_is_run_four_at_a_time_and_a_scalar_output_is_stacked(tmp_path):
    """verify died with a traceback (exit 1, a failed gate's code) on a hand conversion fixed
    at batch 4, fed one item a call; and on a scalar output, which cannot be concatenated."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3))
    model = keras.Model(inp, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(inp)))
    fn = tf.function(lambda x: {"scores": model(x), "total": tf.reduce_sum(x)},
                     input_signature=[tf.TensorSpec([4, 8, 8, 3], tf.float32, name="x")])
    path = tmp_path / "batch4.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], model).convert())
    x = np.random.default_rng(0).random((6, 8, 8, 3)).astype(np.float32)  # one full call, one padded
    got = open_runner(path).predict(x)
    np.testing.assert_allclose(got["scores"], model.predict(x, verbose=0), atol=1e-5)
    assert got["total"].shape == (2,)
    np.testing.assert_allclose(got["total"][0], x[:4].sum(), rtol=1e-5)


def _onnx_cast(path, dtype, shape):
    """y = float(x) for an input of ``dtype`` (an int8 or uint16 sensor input, say)."""
    import onnx
    from onnx import TensorProto, helper
    graph = helper.make_graph([helper.make_node("Cast", ["x"], ["y"], to=TensorProto.FLOAT)], "g",
                              [helper.make_tensor_value_info("x", dtype, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_bench_times_fixed_batches_integer_inputs_and_one_file_named_twice(tmp_path, capsys):
    """bench failed on a file fixed at batch 4 (it set one item), on an ONNX input of int8,
    int16 or uint16, and timed a file named twice once while printing two rows."""
    from onnx import TensorProto
    fn = tf.function(lambda x: {"y": tf.nn.relu(x) * 2.0}, input_signature=[tf.TensorSpec([4, 8, 8, 3], tf.float32)])
    batch4 = tmp_path / "batch4.tflite"
    batch4.write_bytes(tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()]).convert())
    files = [str(batch4), str(_onnx_cast(tmp_path / "b4.onnx", TensorProto.FLOAT, [4, 8]))]
    for kind in ("INT8", "INT16", "UINT16"):
        files.append(str(_onnx_cast(tmp_path / f"{kind}.onnx", getattr(TensorProto, kind), [1, 8])))
    files.append(files[-1])
    assert main(["bench", *files, "--runs", "3", "--warmup", "1", "--batch", "2", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["model"] for r in results] == files
    assert [r["batch"] for r in results] == [4, 4, 2, 2, 2, 2]  # whole calls of a fixed batch
    assert "fixed at batch 4" in " ".join(results[0]["notes"])
    assert results[-1]["samples_ms"] != results[-2]["samples_ms"]  # timed twice, not one timing copied


def test_bench_counts_the_work_of_every_item_a_batch_times(tmp_path, capsys):
    """--batch 4 timed four images against one image's mult-adds: GFLOP/s read 4x too low
    and "x compute" 4x too high. The bound now covers every item timed."""
    x = keras.Input((16, 16, 3))
    keras.Model(x, keras.layers.Conv2D(8, 3)(keras.layers.Conv2D(8, 3)(x))).save(tmp_path / "conv.keras")
    rows = {}
    for batch in (1, 4):
        assert main(["bench", str(tmp_path / "conv.keras"), "--runs", "3", "--warmup", "1", "--batch", str(batch),
                     "--json"]) == 0
        rows[batch] = json.loads(capsys.readouterr().out)[0]
    for batch, r in rows.items():  # the compute bound's own arithmetic, free of timing noise
        peak = r["options"]["host_peak_gflops_per_thread"] * r["threads"]
        assert r["compute_bound_ms"] * peak * 1e6 == pytest.approx(2 * r["macs"] * batch, rel=1e-9)
        assert r["roofline_bound_ms"] > 0 and r["batch"] == batch
    assert rows[4]["macs"] == rows[1]["macs"]  # one image's, as the card states it


def test_onnx_integer_inputs_take_rounded_values_within_their_range(tmp_path):
    from onnx import TensorProto
    runner = open_runner(_onnx_cast(tmp_path / "i8.onnx", TensorProto.INT8, [1, 4]))
    got = runner.predict(np.array([[0.6, -1.4, 300.0, -300.0]], np.float32))
    np.testing.assert_array_equal(list(got.values())[0], [[1, -1, 127, -128]])


def _onnx_conv(path, weights_dequantized: bool, input_qdq: bool, output_qdq: bool = False):
    """A 1x1 conv as a hand-written file: float, or with its weights, input or output through QDQ."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    w = np.random.default_rng(0).normal(0, 1, (2, 3, 1, 1)).astype(np.float32)
    inits, nodes, x, wname = [], [], "x", "w"
    scale = numpy_helper.from_array(np.array(0.05, np.float32), "s")
    zero = numpy_helper.from_array(np.array(0, np.int8), "z")
    inits += [scale, zero]
    if input_qdq:
        nodes += [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
                  helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"])]
        x = "xd"
    if weights_dequantized:
        inits.append(numpy_helper.from_array(np.clip(np.round(w / 0.05), -127, 127).astype(np.int8), "wq"))
        nodes.append(helper.make_node("DequantizeLinear", ["wq", "s", "z"], ["w"]))
    else:
        inits.append(numpy_helper.from_array(w, "w"))
    if output_qdq:  # a QAT model through tf2onnx: rounded float weights, activations quantized in and out
        nodes += [helper.make_node("Conv", [x, wname], ["c"]), helper.make_node("Relu", ["c"], ["r"]),
                  helper.make_node("QuantizeLinear", ["r", "s", "z"], ["rq"]),
                  helper.make_node("DequantizeLinear", ["rq", "s", "z"], ["y"])]
    else:
        nodes.append(helper.make_node("Conv", [x, wname], ["y"]))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 4, 4])], initializer=inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_an_onnx_file_is_int8_when_its_layers_compute_in_int8_not_when_it_holds_one_quantize_op(tmp_path):
    """One QuantizeLinear on the input of a float graph made the file 'int8', and verify
    then held it to int8's looser gate (weights changed by 5% passed)."""
    from edgepipe.evaluate.quantinfo import onnx_precision
    assert onnx_precision(_onnx_conv(tmp_path / "in.onnx", False, True)) == "float32"
    assert onnx_precision(_onnx_conv(tmp_path / "w.onnx", True, False)) == "int8"
    assert onnx_precision(_onnx_conv(tmp_path / "both.onnx", True, True)) == "int8"
    assert onnx_precision(_onnx_conv(tmp_path / "qat.onnx", False, True, output_qdq=True)) == "int8"


def test_verify_of_a_plain_int8_file_of_a_raw_pixel_model_says_what_it_fed_and_takes_the_range(tmp_path, capsys):
    """A model with no Rescaling that takes pixels 0..255, quantized by the plain converter
    on pixels: verify fed it pixel / 255 (every input quantized to -128) and failed a good
    file with no word why. It now says so, and --input-range 0,255 feeds it pixels."""
    keras.utils.set_random_seed(3)
    image = keras.Input((16, 16, 3), name="image")
    model = keras.Model(image, keras.layers.Conv2D(2, 3, padding="same", name="map")(image))
    model.save(tmp_path / "raw.keras")
    rng = np.random.default_rng(0)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([rng.integers(0, 256, (1, 16, 16, 3)).astype(np.float32)]
                                                for _ in range(16))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    (tmp_path / "raw.int8.tflite").write_bytes(converter.convert())
    def verify(*extra):
        capsys.readouterr()
        rc = main(["verify", "--model", str(tmp_path / "raw.keras"), "--export", str(tmp_path / "raw.int8.tflite"),
                   "--json", "--no-drill-down", *extra])
        out, err = capsys.readouterr()
        return rc, min(r["psnr_db"] for r in json.loads(out)["outputs"]), err
    rc, psnr, err = verify()
    assert rc == 1 and psnr < 15 and "verify fed pixel / 255" in err and "looks like raw pixels" in err
    rc, psnr, err = verify("--input-range", "0,255")
    assert rc == 0 and psnr > 30 and "pixel / 255" not in err
    keras.Model(image, keras.layers.Rescaling(1 / 255)(image)).save(tmp_path / "own.keras")
    assert main(["verify", "--model", str(tmp_path / "own.keras"), "--export", str(tmp_path / "raw.int8.tflite"),
                 "--input-range", "0,1"]) == 2  # the model's own range wins
    assert "--input-range/--mean/--std say [0, 1]" in capsys.readouterr().err


def test_bench_names_the_file_it_cannot_time(tmp_path, capsys):
    """Of several files, the one with a free height and width is named in the one-line error."""
    image = keras.Input((None, None, 3), name="image")
    keras.Model(image, keras.layers.Conv2D(2, 3, padding="same")(image)).save(tmp_path / "free size.keras")
    fixed = keras.Input((8, 8, 3), name="image")
    keras.Model(fixed, keras.layers.Conv2D(2, 3, padding="same")(fixed)).save(tmp_path / "fixed.keras")
    capsys.readouterr()
    assert main(["bench", str(tmp_path / "fixed.keras"), str(tmp_path / "free size.keras"), "--runs", "1"]) == 2
    assert "free size.keras: the input has free dimensions" in capsys.readouterr().err


def test_the_range_the_bundle_states_may_be_given_again():
    """A card writes one value per channel; --input-range -1,1 gives one for all. Alike."""
    from edgepipe.cli.verify import _same_spec
    from edgepipe.convert.inputspec import InputSpec, from_range
    card = InputSpec((127.5, 127.5, 127.5), (127.5, 127.5, 127.5), source="model")
    assert _same_spec(card, from_range(-1, 1)) and not _same_spec(card, from_range(0, 1))


def test_a_vector_input_without_a_batch_axis_is_timed_as_one_call_not_batch_16(tmp_path, capsys):
    """An ONNX file taking a bare feature vector, shape (16,), was reported as fixed at batch 16
    (a generated MatMul graph, as onnx.helper writes it)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    w = numpy_helper.from_array(np.ones((16, 4), np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "vector.onnx"))
    capsys.readouterr()
    assert main(["bench", str(tmp_path / "vector.onnx"), "--runs", "2", "--warmup", "0", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row["batch"] == 1 and row["macs"] == 16 * 4, row
    assert any("has no batch axis" in n for n in row["notes"]) and not any("batch 16" in n for n in row["notes"])

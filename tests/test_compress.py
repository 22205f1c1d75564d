"""Compression: every PTQ mode on every backbone with the expected tensor types,
per-layer int8 error, selective float fallback until a gate holds, magnitude and
2:4 pruning to their target sparsity, and the CLIs' bad-input errors."""
import json
from pathlib import Path

import numpy as np
import pytest

from edgepipe import mobile_models
from edgepipe.convert import tflite
from edgepipe.convert.fold import fold_batchnorm
from edgepipe.mobile_models.hed import inference_model
from edgepipe.cli.main import main
from edgepipe.quantize import prune
from edgepipe.quantize.fallback import selective_fallback
from tests.test_zoo_export import SMALL

# input dtype, output dtype, and a dtype the weights must include
EXPECTED = {"dynamic": ("float32", "float32", "int8"), "float16": ("float32", "float32", "float16"),
            "int16x8": ("int16", "int16", "int8")}


def _tensor_types(blob: bytes):
    from ai_edge_litert.interpreter import Interpreter
    interp = Interpreter(model_content=blob)
    dtypes = {np.dtype(t["dtype"]).name for t in interp.get_tensor_details()}
    return (np.dtype(interp.get_input_details()[0]["dtype"]).name,
            np.dtype(interp.get_output_details()[0]["dtype"]).name, dtypes)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_every_ptq_mode_on_every_backbone(name, shallow_zoo):
    """int8 with int8 I/O is also checked, with agreement, in test_zoo_export."""
    model = mobile_models.build(name, **SMALL[name])
    if mobile_models.entry(name).task == "edges":
        model = inference_model(model)
    model = fold_batchnorm(model)
    calib = np.random.default_rng(0).random((4, *model.input_shape[1:]), np.float32)
    for mode, (dtype_in, dtype_out, weights) in EXPECTED.items():
        got_in, got_out, dtypes = _tensor_types(tflite.to_tflite_bytes(model, mode, calib))
        assert (got_in, got_out) == (dtype_in, dtype_out) and weights in dtypes, f"{name} {mode}: {dtypes}"


def test_fallback_keeps_layers_in_float_until_the_gate_holds(tiny_hed, tiny_images):
    folded = fold_batchnorm(tiny_hed)
    seen = []

    def gate(blob):  # passes once at least two layers are float: the loop must walk there and stop
        from ai_edge_litert.interpreter import Interpreter
        interp = Interpreter(model_content=blob)
        floats = sum(1 for t in interp.get_tensor_details() if np.dtype(t["dtype"]) == np.float32)
        seen.append(floats)
        return len(seen) >= 3, float(floats)
    result = selective_fallback(folded, tiny_images, gate, max_float_layers=5)
    assert result["passed"] and len(result["float_layers"]) == 2 and len(result["steps"]) == 3
    worst = sorted(result["layers"], key=lambda r: -r["rmse_per_scale"])
    assert result["float_layers"] == [worst[0]["layer"], worst[1]["layer"]]
    assert seen[2] > seen[0]  # more float tensors with layers kept in float


def test_fallback_rejects_an_unknown_layer(tiny_hed, tiny_images):
    from edgepipe.base.errors import EdgePipeError
    with pytest.raises(EdgePipeError, match="no quantized layer named nope"):
        selective_fallback(fold_batchnorm(tiny_hed), tiny_images, lambda b: (True, 0.0), keep=["nope"])


@pytest.mark.parametrize("structure, sparsity", [("unstructured", 0.5), ("unstructured", 0.75), ("2:4", 0.5)])
def test_pruning_reaches_its_target_sparsity(structure, sparsity):
    from edgepipe.base.backend import keras
    from edgepipe.train.digits import digits_arrays
    model = mobile_models.build("tiny_cnn", input_shape=(32, 32, 3), classes=10)
    x, y = digits_arrays(32, "train")
    wrapped = prune.wrap(model, sparsity, steps=20, structure=structure)
    prune.fine_tune(wrapped, x[:256], y[:256], keras.losses.SparseCategoricalCrossentropy(), steps=20)
    rows = prune.sparsity_table(prune.strip(wrapped))
    assert abs(prune.overall_sparsity(rows) - sparsity) <= 0.01
    if structure == "2:4":  # every group of 4 along the input channels keeps at most 2
        kernel = prune.strip(wrapped).get_layer(rows[-1]["layer"]).get_weights()[0]
        groups = kernel.reshape(-1, kernel.shape[-2] // 4, 4, kernel.shape[-1]) if kernel.ndim == 4 else \
            kernel.T.reshape(kernel.shape[1], -1, 4)
        assert (np.count_nonzero(groups, axis=-2 if kernel.ndim == 4 else -1) <= 2).all()


@pytest.mark.parametrize("args, message", [
    (["--sparsity", "1.0"], "sparsity must be in [0, 1)"),
    (["--sparsity", "-0.1"], "argument --sparsity: must be >= 0"),
])
def test_prune_cli_bad_sparsity(tmp_path, capsys, args, message):
    from edgepipe.base.modelio import save_keras
    path = save_keras(mobile_models.build("tiny_cnn", input_shape=(32, 32, 3)), tmp_path / "m.keras")
    assert main(["prune", "--model", str(path), *args, "--out", str(tmp_path / "p.keras")]) == 2
    assert message in capsys.readouterr().err


def test_prune_cli_end_to_end(tmp_path, capsys):
    from edgepipe.base.modelio import save_keras
    path = save_keras(mobile_models.build("tiny_cnn", input_shape=(32, 32, 3)), tmp_path / "m.keras")
    assert main(["prune", "--model", str(path), "--sparsity", "0.75", "--steps", "20",
                 "--out", str(tmp_path / "p.keras")]) == 0
    printed = capsys.readouterr().out
    assert "per-layer sparsity" in printed and "gzip" in printed
    for f in ("p.keras", "p.tflite", "p.int8.tflite", "p.unpruned.tflite"):
        assert (tmp_path / f).is_file()
    assert (tmp_path / "p.int8.tflite").stat().st_size < (tmp_path / "p.unpruned.tflite").stat().st_size


def test_prune_takes_sequential_grayscale_and_non_square_user_models(tmp_path):
    """A Sequential Conv -> BN died with KeyError 'name' while exporting (after the pruned
    file was written); a grayscale or a non-square model was fed square RGB digits."""
    from edgepipe.base.backend import keras
    L = keras.layers
    models = {"gray": keras.Sequential([keras.Input((8, 8, 1)), L.Rescaling(1 / 255), L.Conv2D(8, 3),
                                        L.BatchNormalization(), L.ReLU(), L.Flatten(), L.Dense(10)]),
              "rect": keras.Sequential([keras.Input((16, 24, 3)), L.Conv2D(8, 3, activation="relu"),
                                        L.BatchNormalization(), L.GlobalAveragePooling2D(),
                                        L.Dense(10, activation="softmax")])}
    for name, model in models.items():
        model.save(tmp_path / f"{name}.keras")
        out = tmp_path / f"{name}.p.keras"
        qat = ["--qat-steps", "2"] if name == "rect" else []  # tfmot refused a BN after Conv(activation="relu")
        assert main(["prune", "--model", str(tmp_path / f"{name}.keras"), "--sparsity", "0.5", "--steps", "3",
                     "--out", str(out), *qat]) == 0, name
        assert (tmp_path / f"{name}.p.int8.tflite").is_file()
    # a transfer-learning base called as one layer: only the head was pruned, under "overall 50%"
    from edgepipe.base.modelio import load_keras
    base = keras.Sequential([keras.Input((16, 16, 3)), L.Conv2D(16, 3, activation="relu"), L.Conv2D(16, 3)],
                            name="base")
    inp = keras.Input((16, 16, 3))
    keras.Model(inp, L.Dense(10)(L.GlobalAveragePooling2D()(base(inp)))).save(tmp_path / "nested.keras")
    assert main(["prune", "--model", str(tmp_path / "nested.keras"), "--sparsity", "0.5", "--steps", "3",
                 "--out", str(tmp_path / "nested.p.keras")]) == 0
    kernels = [w for layer in load_keras(tmp_path / "nested.p.keras").layers
               if isinstance(layer, (L.Conv2D, L.Dense)) for w in layer.get_weights()[:1]]
    assert len(kernels) == 3 and 0.45 < np.mean([float(np.mean(k == 0)) for k in kernels]) < 0.55


@pytest.mark.parametrize("mode", ["int8", "float16"])
def test_quantize_checks_a_gate_the_user_names_in_every_mode(tmp_path, tiny_hed, tiny_images, capsys, mode):
    """--psnr without --auto-fallback was ignored: the file was written and the exit was 0
    whatever the PSNR. A named gate is now checked on the file written, the card records it,
    and a missed gate exits 1."""
    from edgepipe.base.modelio import save_keras
    path = save_keras(tiny_hed, tmp_path / "hed.keras")
    data = tmp_path / "x.npy"
    np.save(data, tiny_images)
    for psnr, rc in (("200", 1), ("10", 0)):
        out = tmp_path / f"hed.{mode}.{psnr}.tflite"
        capsys.readouterr()
        assert main(["quantize", "--model", str(path), "--mode", mode, "--data", str(data), "--psnr", psnr,
                     "--out", str(out)]) == rc
        assert ("not met" in capsys.readouterr().out) == (rc == 1)
        card = json.loads(Path(f"{out}.model_card.json").read_text())
        gate = card["gate"]
        assert gate["metric"] == "psnr_db" and gate["passed"] is (rc == 0) and 10 < gate["value"] < 200, gate
        # the artifact itself says so, in the run card's form (it said "ok" and nothing more)
        assert card["artifacts"][0]["verify"]["gate"] == {"rule": gate["rule"], "pass": rc == 0}, card["artifacts"]
        # verify holds the same named gate (it kept its built-in 30 / 40 dB and passed)
        assert main(["verify", "--model", str(path), "--export", str(out), "--data", str(data), "--psnr", psnr,
                     "--no-drill-down"]) == rc


def test_quantize_cli_modes_debug_and_fallback(tmp_path, tiny_hed, tiny_images, capsys):
    from edgepipe.base.modelio import save_keras
    path = save_keras(tiny_hed, tmp_path / "hed.keras")
    data = tmp_path / "x.npy"
    np.save(data, tiny_images)
    out = tmp_path / "hed.int8.tflite"
    rc = main(["quantize", "--model", str(path), "--mode", "int8", "--data", str(data), "--debug",
               "--auto-fallback", "--psnr", "200", "--max-float-layers", "2", "--out", str(out)])
    assert rc == 1  # no fallback meets the gate: the export is written, and the exit says it failed
    printed = capsys.readouterr().out
    assert "int8 error per layer" in printed and "not met with 2 float layer(s)" in printed
    card = json.loads((tmp_path / "hed.int8.tflite.model_card.json").read_text())
    assert len(card["float_layers"]) == 2 and card["gate"]["passed"] is False
    assert card["artifacts"][0]["verify"]["gate"]["pass"] is False
    assert main(["quantize", "--model", str(path), "--mode", "int4", "--out", str(out)]) == 2  # one line
    assert "invalid choice: 'int4'" in capsys.readouterr().err
    assert main(["quantize", "--model", str(path), "--mode", "int8", "--data", str(data),
                 "--keep-float", "nope", "--out", str(tmp_path / "x.tflite")]) == 2
    err = capsys.readouterr().err
    assert "no quantized layer named nope" in err and err.count("\n") == 1  # no converter chatter on stderr
    assert not (tmp_path / "x.tflite").exists()
    every = err.strip().rsplit("layers: ", 1)[1].replace(" ", "")  # the debugger cannot build an all-float file
    assert main(["quantize", "--model", str(path), "--mode", "int8", "--data", str(data),
                 "--keep-float", every, "--out", str(tmp_path / "x.tflite")]) == 2
    assert "names every quantized layer" in capsys.readouterr().err
    assert not (tmp_path / "x.tflite").exists()
    bad = tmp_path / "nan.npy"
    np.save(bad, np.full_like(tiny_images, np.nan))
    assert main(["quantize", "--model", str(path), "--mode", "int8", "--data", str(bad), "--out", str(out)]) == 2
    assert "NaN" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(SMALL))
def test_qat_on_every_backbone(name, shallow_zoo):
    """Fake-quant wrappers go on (ShuffleNet's routing layers and HED's transposed
    convs included), a training step runs, and the result converts to int8 kernels."""
    from edgepipe.convert.tflite import converter_for
    from edgepipe.base.backend import tf
    from edgepipe.quantize.qat import qat_model
    model = mobile_models.build(name, **SMALL[name])
    if mobile_models.entry(name).task == "edges":
        model = inference_model(model)
    q = qat_model(model)
    assert any("Quantize" in type(layer).__name__ for layer in q.layers)
    x = np.random.default_rng(0).random((4, *model.input_shape[1:]), np.float32)
    q.compile("sgd", "mse")
    q.fit(x, model.predict(x, verbose=0), epochs=1, verbose=0)
    converter = converter_for(q)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    from ai_edge_litert.interpreter import Interpreter
    interp = Interpreter(model_content=converter.convert())
    kinds = {np.dtype(t["dtype"]).name for t in interp.get_tensor_details()}
    assert "int8" in kinds, kinds


def _inverted_residual_net():
    """Two MobileNetV2 inverted-residual blocks (the zoo's layer kinds, a fraction of its
    layers: wrapping and tracing the whole zoo net cost a minute here)."""
    from edgepipe.base.backend import keras
    L = keras.layers
    inputs = keras.Input((32, 32, 3))
    x = L.ReLU(6.0)(L.BatchNormalization()(L.Conv2D(16, 3, strides=2, padding="same", use_bias=False)(inputs)))
    for _ in range(2):
        y = L.ReLU(6.0)(L.BatchNormalization()(L.Conv2D(32, 1, use_bias=False)(x)))
        y = L.ReLU(6.0)(L.BatchNormalization()(L.DepthwiseConv2D(3, padding="same", use_bias=False)(y)))
        x = L.Add()([x, L.BatchNormalization()(L.Conv2D(16, 1, use_bias=False)(y))])
    return keras.Model(inputs, L.Dense(10, activation="softmax")(L.GlobalAveragePooling2D()(x)))


def test_depthwise_pruning_is_opt_in_and_strips_to_plain_layers():
    """tfmot leaves depthwise kernels dense; ``depthwise=True`` prunes them too
    (through tfmot's PrunableLayer interface) and the stripped model holds only
    Keras' own DepthwiseConv2D, so it saves and converts like any other."""
    from edgepipe.base.backend import keras
    from edgepipe.train.digits import digits_arrays
    model = _inverted_residual_net()
    x, y = digits_arrays(32, "train")
    loss = keras.losses.SparseCategoricalCrossentropy()

    def depthwise_sparsity(depthwise):
        wrapped = prune.wrap(model, 0.5, steps=10, kind="constant", depthwise=depthwise)
        prune.fine_tune(wrapped, x[:128], y[:128], loss, steps=4)
        stripped = prune.strip(wrapped)
        assert {type(l).__name__ for l in stripped.layers if "depthwise" in l.name.lower()} <= {
            "DepthwiseConv2D", "ReLU", "BatchNormalization"}
        rows = [r for r in prune.sparsity_table(stripped, depthwise=True) if r["type"] == "DepthwiseConv2D"]
        return prune.overall_sparsity(rows)
    assert depthwise_sparsity(False) == 0.0
    assert abs(depthwise_sparsity(True) - 0.5) <= 0.01


def test_auto_fallback_and_core_ml_print_none_of_the_converters_lines(tmp_path, tiny_hed, tiny_images):
    """Each fallback step re-quantized with the converter's options printed to fd 2 and the
    deprecated tf.lite.Interpreter's 5-line warning; coremltools drew five progress bars.
    Run as a user runs them (a process of its own, stderr a file), stderr holds edgepipe's
    own lines only."""
    import subprocess
    import sys
    from edgepipe.base.modelio import save_keras
    path = save_keras(tiny_hed, tmp_path / "hed.keras")
    np.save(tmp_path / "x.npy", tiny_images)
    for argv, rc in ((["quantize", "--model", path, "--mode", "int8", "--data", tmp_path / "x.npy", "--auto-fallback",
                       "--psnr", "200", "--max-float-layers", "1", "--out", tmp_path / "hed.int8.tflite"], 1),
                     (["convert", "--model", path, "--format", "coreml", "--out", tmp_path / "hed.mlpackage"], 0)):
        done = subprocess.run([sys.executable, "-m", "edgepipe.cli.main", *map(str, argv)], capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == rc, done.stderr
        assert done.stderr == "", done.stderr


def test_a_layer_that_became_two_ops_is_named_per_op(tmp_path, capsys):
    """MobileNetV3's Rescaling (scale and offset) is a MUL and an ADD of one Keras layer: both
    were 'rescaling', so --auto-fallback printed ['rescaling', 'rescaling'] and --keep-float
    could reach only one of them."""
    from edgepipe.base.backend import keras
    from edgepipe.base.modelio import save_keras
    from edgepipe.quantize.debug import layer_errors
    x = keras.Input((8, 8, 3))
    y = keras.layers.MaxPooling2D(1)(keras.layers.Rescaling(1 / 127.5, offset=-1, name="rescaling")(x))
    y = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, activation="relu")(y))
    model = keras.Model(x, keras.layers.Dense(3, activation="softmax")(y))
    data = np.random.default_rng(4).random((8, 8, 8, 3), np.float32) * 255
    names = [r["layer"] for r in layer_errors(model, data)]
    assert len(names) == len(set(names)) and {"rescaling/mul", "rescaling/add"} <= set(names), names
    path = save_keras(model, tmp_path / "m.keras")
    np.save(tmp_path / "x.npy", data.astype(np.uint8))
    assert main(["quantize", "--model", str(path), "--mode", "int8", "--data", str(tmp_path / "x.npy"),
                 "--keep-float", "rescaling/mul,rescaling/add", "--out", str(tmp_path / "m.tflite")]) in (0, 1)
    card = json.loads((tmp_path / "m.tflite.model_card.json").read_text())
    assert card["float_layers"] == ["rescaling/mul", "rescaling/add"], card["float_layers"]


def test_the_output_layer_is_named_as_keras_names_it_not_identity():
    """The converter names a model's output tensors 'Identity': --keep-float dense_1 was refused
    and only 'Identity' reached the last Dense."""
    from edgepipe.base.backend import keras
    from edgepipe.quantize.debug import layer_errors, short_name
    inputs = keras.Input((12, 12, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, activation="relu")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3, name="logits")(keras.layers.Dense(8, activation="relu")(x)))
    names = [r["layer"] for r in layer_errors(model, np.random.default_rng(0).random((8, 12, 12, 3), np.float32), 4)]
    assert names[-1] == "logits" and "Identity" not in names
    assert short_name("Identity_1", ["a", "b"]) == "b" and short_name("Identity_2", ["a", "b"]) == "Identity_2"

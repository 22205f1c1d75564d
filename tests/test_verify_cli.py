"""edgepipe convert / verify on external Keras models: gates, exit codes and
refusal of unsafe or corrupt files."""
import json

import numpy as np
import pytest

from edgepipe.base.backend import keras
from edgepipe.cli.main import main


@pytest.fixture(scope="module")
def external(tmp_path_factory):
    """keras.applications networks with random weights, saved as users would."""
    d = tmp_path_factory.mktemp("external")
    keras.utils.set_random_seed(0)  # the same weights whichever test file ran before in this process
    out = {}
    for name, build in (("mobilenet", lambda: keras.applications.MobileNet(
            weights=None, alpha=0.25, input_shape=(96, 96, 3), classes=10)),
                        ("mobilenet_v2", lambda: keras.applications.MobileNetV2(
            weights=None, alpha=0.35, input_shape=(96, 96, 3), classes=10))):
        path = d / f"{name}.keras"
        model = build()
        _settle_batchnorm(model)
        model.save(path)
        out[name] = path
    return out


def _settle_batchnorm(model):
    """Batch statistics as a trained net's BN would hold them; with the fresh
    (0, 1) statistics a random net's activations vanish and every export agrees."""
    from edgepipe.cli.inputs import sample_inputs
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in bns:
        layer.momentum = 0.0
    model(sample_inputs(model.input_shape[1:], count=16), training=True)
    for layer in bns:
        layer.momentum = 0.99


@pytest.mark.parametrize("name", ["mobilenet", "mobilenet_v2"])
@pytest.mark.parametrize("fmt, suffix", [("tflite", ".tflite"), ("onnx", ".onnx")])
def test_external_model_converts_and_passes_verify(external, tmp_path, capsys, name, fmt, suffix):
    out = tmp_path / f"{name}{suffix}"
    assert main(["convert", "--model", str(external[name]), "--format", fmt, "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["verify", "--model", str(external[name]), "--export", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["pass"] and result["variant"] == "float32"
    assert result["outputs"][0]["max_abs"] <= 1e-4


def test_int8_export_is_gated_on_top1_agreement(external, tmp_path, capsys):
    out = tmp_path / "m.int8.tflite"
    assert main(["convert", "--model", str(external["mobilenet_v2"]), "--format", "tflite", "--mode", "int8",
                 "--calibration-samples", "16", "--out", str(out)]) == 0
    capsys.readouterr()
    code = main(["verify", "--model", str(external["mobilenet_v2"]), "--export", str(out), "--json"])
    result = json.loads(capsys.readouterr().out)
    assert result["variant"] == "int8" and "top1_agreement" in result["outputs"][0]["gate"]
    assert code == (0 if result["pass"] else 1)


def _perturb_tflite_weights(path, layer: str):
    """Flip the sign of a layer's first output channel in the .tflite flatbuffer itself."""
    from tensorflow.lite.python import schema_py_generated as schema
    buf = bytearray(path.read_bytes())
    model = schema.Model.GetRootAs(buf, 0)
    graph = model.Subgraphs(0)
    for i in range(graph.TensorsLength()):
        t = graph.Tensors(i)
        name = t.Name().decode()
        if layer in name.split("/") and t.ShapeLength() == 4 and model.Buffers(t.Buffer()).DataLength():
            data = model.Buffers(t.Buffer()).DataAsNumpy().view(np.float32)  # a view into buf
            data[: data.size // t.Shape(0)] *= -1.0
            path.write_bytes(bytes(buf))
            return name
    raise AssertionError(f"no weight tensor of {layer}")


def test_a_broken_tflite_export_fails_verify_and_names_the_layer(external, tmp_path, capsys):
    out = tmp_path / "m.tflite"
    assert main(["convert", "--model", str(external["mobilenet"]), "--format", "tflite", "--out", str(out)]) == 0
    _perturb_tflite_weights(out, "conv_pw_6")
    capsys.readouterr()
    assert main(["verify", "--model", str(external["mobilenet"]), "--export", str(out), "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert not result["pass"] and result["engine"] == "litert"
    first = result["drilldown"]["first"]
    assert first["layer"].startswith("conv_pw_6") and first["kind"] == "jump", first
    assert main(["verify", "--model", str(external["mobilenet"]), "--export", str(out)]) == 1
    assert "first divergence at layer 'conv_pw_6" in capsys.readouterr().out


def test_a_broken_coreml_export_fails_verify_and_names_the_layer(external, tmp_path, capsys):
    """The same drill-down for Core ML, from the reference interpreter's per-op outputs."""
    from edgepipe.base.modelio import load_keras
    broken = load_keras(external["mobilenet"])
    layer = broken.get_layer("conv_pw_6")
    kernel, *rest = layer.get_weights()
    kernel[..., :4] *= -3.0
    layer.set_weights([kernel, *rest])
    broken_path, out = tmp_path / "broken.keras", tmp_path / "m.mlpackage"
    broken.save(broken_path)
    assert main(["convert", "--model", str(broken_path), "--format", "coreml", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["verify", "--model", str(external["mobilenet"]), "--export", str(out), "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["engine"] == "reference-interpreter" and result["variant"] == "fp16"
    assert result["drilldown"]["first"]["layer"] == "conv_pw_6", result["drilldown"]["first"]


def test_coreml_export_passes_verify_on_linux(external, tmp_path, capsys):
    out = tmp_path / "m.mlpackage"
    assert main(["convert", "--model", str(external["mobilenet_v2"]), "--format", "coreml", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["verify", "--model", str(external["mobilenet_v2"]), "--export", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["variant"] == "fp16" and result["outputs"][0]["psnr_db"] >= 40 and result["drilldown"] is None


def test_lambda_layer_model_is_refused(tmp_path):
    x = keras.Input((8, 8, 3))
    m = keras.Model(x, keras.layers.Lambda(lambda t: t * 2.0)(x))
    path = tmp_path / "lambda.keras"
    m.save(path)
    assert main(["convert", "--model", str(path), "--format", "onnx", "--out", str(tmp_path / "l.onnx")]) == 2
    assert not (tmp_path / "l.onnx").exists()


@pytest.mark.parametrize("suffix", [".keras", ".h5", ".tflite", ".onnx"])
def test_corrupt_files_exit_2(tmp_path, external, suffix):
    bad = tmp_path / f"bad{suffix}"
    bad.write_bytes(b"\x00not a model\xff" * 10)
    if suffix in (".keras", ".h5"):
        args = ["verify", "--model", str(bad), "--export", str(bad)]
    else:
        args = ["verify", "--model", str(external["mobilenet"]), "--export", str(bad)]
    assert main(args) == 2


def test_verify_rejects_nan_data(external, tmp_path):
    data = np.full((2, 96, 96, 3), np.nan, np.float32)
    np.save(tmp_path / "d.npy", data)
    assert main(["verify", "--model", str(external["mobilenet"]), "--export", str(tmp_path / "x.onnx"),
                 "--data", str(tmp_path / "d.npy")]) == 2


def test_verify_reports_top1_on_labelled_data(external, tmp_path, capsys):
    from edgepipe.base.modelio import load_keras
    from edgepipe.cli.inputs import sample_inputs
    x = sample_inputs((96, 96, 3), count=8)
    pred = load_keras(external["mobilenet"]).predict(x, verbose=0).argmax(-1)
    truth = pred.copy()
    truth[:2] = (truth[:2] + 1) % 10  # two wrong labels: the original scores exactly 75%
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", truth)
    out = tmp_path / "m.tflite"
    assert main(["convert", "--model", str(external["mobilenet"]), "--format", "tflite", "--out", str(out)]) == 0
    capsys.readouterr()
    args = ["verify", "--model", str(external["mobilenet"]), "--export", str(out), "--data", str(tmp_path / "x.npy")]
    assert main(args + ["--truth", str(tmp_path / "y.npy"), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)["outputs"][0]
    assert row["top1_original"] == 0.75 and row["top1"] == 0.75 and row["top1_delta"] == 0
    np.save(tmp_path / "short.npy", truth[:5])
    assert main(args + ["--truth", str(tmp_path / "short.npy")]) == 2
    np.save(tmp_path / "one_based.npy", truth + 10)  # another label set: ids past the model's 10 classes
    capsys.readouterr()
    assert main(args + ["--truth", str(tmp_path / "one_based.npy")]) == 2
    assert "outside 0..9" in capsys.readouterr().err
    # a --psnr named alone gates a classifier on PSNR, in quantize and in verify (it swapped in top-1)
    half = tmp_path / "m.fp16.tflite"
    assert main(["quantize", "--model", str(external["mobilenet"]), "--mode", "float16", "--psnr", "200",
                 "--data", str(tmp_path / "x.npy"), "--out", str(half)]) == 1
    assert json.loads((tmp_path / "m.fp16.tflite.model_card.json").read_text())["gate"]["metric"] == "psnr_db"
    capsys.readouterr()
    assert main(["verify", "--model", str(external["mobilenet"]), "--export", str(half), "--psnr", "200",
                 "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["outputs"][0]["gate"].startswith("psnr_db")


def test_an_export_whose_output_has_another_size_is_one_line(tmp_path, capsys):
    """The same input, another head (a 3-class export checked against a regression model):
    one line naming both shapes, not a reshape traceback."""
    for name, units in (("regress", 1), ("classes", 3)):
        x = keras.Input((16, 16, 3))
        keras.Model(x, keras.layers.Dense(units)(keras.layers.GlobalAveragePooling2D()(x))).save(tmp_path / f"{name}.keras")
    assert main(["convert", "--model", str(tmp_path / "classes.keras"), "--format", "tflite",
                 "--out", str(tmp_path / "classes.tflite")]) == 0
    capsys.readouterr()
    assert main(["verify", "--model", str(tmp_path / "regress.keras"), "--export", str(tmp_path / "classes.tflite")]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("edgepipe: error: ") and "is the export from this model" in lines[0]

"""edgepipe convert / verify on external Keras models: gates, exit codes and
refusal of unsafe or corrupt files."""
import json

import numpy as np
import pytest

from mobile_models.backend import keras
from pipeline.cli import main


@pytest.fixture(scope="module")
def external(tmp_path_factory):
    """keras.applications networks with random weights, saved as users would."""
    d = tmp_path_factory.mktemp("external")
    out = {}
    for name, build in (("mobilenet", lambda: keras.applications.MobileNet(
            weights=None, alpha=0.25, input_shape=(96, 96, 3), classes=10)),
                        ("mobilenet_v2", lambda: keras.applications.MobileNetV2(
            weights=None, alpha=0.35, input_shape=(96, 96, 3), classes=10))):
        path = d / f"{name}.keras"
        build().save(path)
        out[name] = path
    return out


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


def test_a_broken_export_fails_verify_with_exit_1(external, tmp_path, capsys):
    """An export whose classifier weights were corrupted must not pass."""
    from pipeline.modelio import load_keras
    other = load_keras(external["mobilenet"])
    last = [l for l in other.layers if l.get_weights()][-1]
    rng = np.random.default_rng(0)
    last.set_weights([w + rng.normal(0, 0.5, w.shape).astype(w.dtype) for w in last.get_weights()])
    other_path = tmp_path / "other.keras"
    other.save(other_path)
    out = tmp_path / "other.tflite"
    assert main(["convert", "--model", str(other_path), "--format", "tflite", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["verify", "--model", str(external["mobilenet"]), "--export", str(out)]) == 1
    assert "FAIL" in capsys.readouterr().out


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

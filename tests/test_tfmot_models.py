"""Models a user saved from tfmot's own guides, still wrapped: mid-QAT (its comprehensive
guide saves and reloads one) or before ``strip_pruning``. Generated data, a tiny CNN."""
import numpy as np
import pytest

from edgepipe.base.backend import keras
from edgepipe.cli.main import main


def _tiny_cnn():
    return keras.Sequential([keras.layers.InputLayer((12, 12, 1)), keras.layers.Conv2D(4, 3, activation="relu"),
                             keras.layers.Flatten(), keras.layers.Dense(3)])


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "x.npy"
    np.save(path, np.random.default_rng(0).random((8, 12, 12, 1), np.float32))
    return path


def _fitted(model, data):
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(np.load(data), np.arange(8) % 3, epochs=1, verbose=0)  # QAT's ranges and pruning's masks move
    return model


def _one_line(capsys, argv) -> str:
    capsys.readouterr()
    assert main([str(a) for a in argv]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("edgepipe: error: "), lines
    return lines[0]


def test_a_qat_model_saved_mid_training_converts_to_int8_and_matches_itself(tmp_path, data, capsys):
    import tensorflow_model_optimization as tfmot
    path = tmp_path / "qat.h5"
    _fitted(tfmot.quantization.keras.quantize_model(_tiny_cnn()), data).save(path)
    out = tmp_path / "qat.tflite"
    assert main(["convert", "--model", str(path), "--mode", "int8", "--data", str(data), "--out", str(out)]) == 0
    from ai_edge_litert.interpreter import Interpreter
    kinds = {d["dtype"].__name__ for d in Interpreter(model_path=str(out)).get_tensor_details()}
    assert "int8" in kinds, kinds  # QAT's ranges made real int8 tensors
    # PSNR, not top-1 on 8 untrained outputs: a CPU's int8 kernels may round one step apart
    assert main(["verify", "--model", str(path), "--export", str(out), "--data", str(data), "--psnr", "30"]) == 0
    # quantizing it again would round twice: quantize says what to run instead
    line = _one_line(capsys, ["quantize", "--model", path, "--mode", "int8", "--out", tmp_path / "again.tflite"])
    assert "quantization-aware training already" in line and "edgepipe convert --mode int8" in line


def test_a_qat_model_in_a_keras_file_tfmot_cannot_reload_says_how_to_save_it(tmp_path, data, capsys):
    import tensorflow_model_optimization as tfmot
    path = tmp_path / "qat.keras"
    _fitted(tfmot.quantization.keras.quantize_model(_tiny_cnn()), data).save(path)
    line = _one_line(capsys, ["convert", "--model", path, "--out", tmp_path / "o.tflite"])
    assert "save it as .h5 or a SavedModel" in line


def test_a_model_saved_with_its_pruning_wrappers_is_stripped_and_converts(tmp_path, data, capsys):
    import tensorflow_model_optimization as tfmot
    sparsity = tfmot.sparsity.keras
    wrapped = sparsity.prune_low_magnitude(_tiny_cnn(), pruning_schedule=sparsity.ConstantSparsity(0.5, 0, frequency=1))
    wrapped.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    wrapped.fit(np.load(data), np.arange(8) % 3, batch_size=4, verbose=0, callbacks=[sparsity.UpdatePruningStep()])
    path = tmp_path / "pruned.h5"
    wrapped.save(path)
    out = tmp_path / "pruned.tflite"
    capsys.readouterr()
    assert main(["convert", "--model", str(path), "--out", str(out)]) == 0
    assert "strip_pruning" in capsys.readouterr().err
    assert main(["verify", "--model", str(path), "--export", str(out), "--data", str(data)]) == 0
    from edgepipe.base.modelio import load_keras
    kernel = load_keras(path).layers[0].get_weights()[0]
    assert np.isclose((kernel == 0).mean(), 0.5, atol=0.05)  # the masks the wrappers applied are kept

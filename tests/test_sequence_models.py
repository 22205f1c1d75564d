"""Sequence models users bring (text over token ids, recurrent layers), built here
untrained or trained a few steps on generated data: int8 keeps what the model takes,
and what TFLite cannot quantize is one line, not a crashed process."""
import json

import numpy as np
import pytest

from edgepipe.base.backend import keras
from edgepipe.cli.main import main

STEPS, FEATURES = 12, 6


def _run(*argv) -> int:
    return main([str(a) for a in argv])


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    path = tmp_path_factory.mktemp("series") / "x.npy"
    np.save(path, np.random.default_rng(0).normal(size=(16, STEPS, FEATURES)).astype(np.float32))
    return path


def _decisive_head(units: int, **kw):
    """Untrained, yet no near-ties between classes: int8 rounding cannot flip top-1 on any CPU."""
    return keras.layers.Dense(units, kernel_initializer=keras.initializers.RandomNormal(stddev=20.0, seed=0), **kw)


def _recurrent(path, layer):
    x = keras.Input((STEPS, FEATURES))
    keras.Model(x, keras.layers.Dense(3, kernel_initializer=SEEDED)(layer(x))).save(path)
    return path


SEEDED = keras.initializers.GlorotUniform(seed=0)


def _seeded(layer):
    return layer(8, kernel_initializer=SEEDED, recurrent_initializer=keras.initializers.Orthogonal(seed=0))


def test_an_lstm_quantizes_to_int8_and_matches_its_model(tmp_path, series):
    """int8 calibration of an LSTM crashed the process (TFLite fuses it only on the SavedModel route)."""
    model = _recurrent(tmp_path / "lstm.keras", _seeded(keras.layers.LSTM))
    out = tmp_path / "lstm.tflite"
    assert _run("quantize", "--model", model, "--mode", "int8", "--data", series, "--out", out) == 0
    from ai_edge_litert.interpreter import Interpreter
    ops = {op["op_name"] for op in Interpreter(model_path=str(out))._get_ops_details()}
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in ops, ops
    # an untrained head's near-ties flip top-1 under int8 rounding, differently per CPU: gate on PSNR
    assert _run("verify", "--model", model, "--export", out, "--data", series, "--psnr", "20") == 0
    # mult-adds: every step, four gates of (features + units) x units, then the head (they counted 0)
    from edgepipe.base.modelio import load_keras
    from edgepipe.convert.tflite_macs import count_macs
    from edgepipe.mobile_models.profile import profile_model
    by_hand = STEPS * 4 * (FEATURES + 8) * 8 + 8 * 3
    assert profile_model(load_keras(model))["macs"] == by_hand
    assert count_macs(out.read_bytes()) == by_hand


@pytest.mark.parametrize("layer", [keras.layers.GRU, keras.layers.SimpleRNN])
def test_int8_of_a_recurrent_layer_tflite_cannot_quantize_is_one_line(tmp_path, series, capsys, layer):
    model = _recurrent(tmp_path / "rnn.keras", _seeded(layer))
    for argv in (["quantize", "--mode", "int8"], ["convert", "--mode", "int8"]):
        capsys.readouterr()
        assert _run(*argv, "--model", model, "--data", series, "--out", tmp_path / "q.tflite") == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--mode dynamic" in err[0], err
    assert _run("quantize", "--model", model, "--mode", "dynamic", "--out", tmp_path / "d.tflite") == 0


def test_token_ids_stay_integers_in_an_int8_text_classifier(tmp_path):
    """The int32 token ids were quantized to int8 (37 came back as 36) while the card said int32."""
    tokens = keras.Input((10,), dtype="int32", name="tokens")
    h = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(50, 8, embeddings_initializer=keras.initializers.RandomNormal(stddev=1.0, seed=1))(tokens))
    keras.Model(tokens, _decisive_head(2, activation="softmax")(h)).save(tmp_path / "text.keras")
    ids = np.random.default_rng(1).integers(1, 50, (16, 10)).astype(np.int32)
    np.save(tmp_path / "ids.npy", ids)
    out = tmp_path / "text.tflite"
    assert _run("quantize", "--model", tmp_path / "text.keras", "--mode", "int8", "--data", tmp_path / "ids.npy",
                "--out", out) == 0
    from ai_edge_litert.interpreter import Interpreter
    taken = Interpreter(model_path=str(out)).get_input_details()[0]
    card = json.loads((tmp_path / "text.tflite.model_card.json").read_text())["inputs"][0]
    assert taken["dtype"] is np.int32 and card["dtype"] == "int32", (taken, card)
    assert _run("verify", "--model", tmp_path / "text.keras", "--export", out, "--data", tmp_path / "ids.npy",
                "--psnr", "30") == 0  # PSNR, not top-1 on 16 untrained outputs: CPUs round int8 differently


def test_float_token_ids_are_refused_for_full_integer_modes(tmp_path, capsys):
    """The text tutorial's Embedding on Keras' default float32 input: int8 quantized the ids
    themselves (scale max id / 255: id 1 came back as 0.992, read as 0), exit 0 and no word."""
    model = keras.Sequential([keras.Input((10,)), keras.layers.Embedding(50, 8, name="words"), keras.layers.GlobalAveragePooling1D(),
                              keras.layers.Dense(1)])
    model.save(tmp_path / "text.keras")
    np.save(tmp_path / "ids.npy", np.random.default_rng(1).integers(0, 50, (8, 10)).astype(np.float32))
    for mode in ("int8", "int16x8"):
        capsys.readouterr()
        assert _run("quantize", "--model", tmp_path / "text.keras", "--mode", mode, "--data", tmp_path / "ids.npy",
                    "--out", tmp_path / f"{mode}.tflite") == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "Embedding 'words' takes its token ids as float32" in err[0], err
        assert not (tmp_path / f"{mode}.tflite").exists()
    assert _run("quantize", "--model", tmp_path / "text.keras", "--mode", "dynamic", "--out", tmp_path / "d.tflite") == 0


def test_int8_of_a_savedmodels_recurrent_loop_is_one_line(tmp_path, series, capsys):
    """A subclassed model's GRU, saved as a SavedModel, converts from its graph: the int8
    converter crashed the process on the loop (TFLite fuses a Keras file's LSTM only)."""
    from edgepipe.base.backend import tf

    class Tagger(keras.Model):
        def __init__(self):
            super().__init__()
            self.rnn, self.head = _seeded(keras.layers.GRU), keras.layers.Dense(3)

        def call(self, x):
            return self.head(self.rnn(x))
    model = Tagger()
    model(np.zeros((1, STEPS, FEATURES), np.float32))
    serve = tf.function(lambda x: {"y": model(x)}, input_signature=[tf.TensorSpec([1, STEPS, FEATURES], tf.float32)])
    tf.saved_model.save(model, str(tmp_path / "sm"), signatures={"serving_default": serve})
    capsys.readouterr()
    assert _run("convert", "--model", tmp_path / "sm", "--mode", "int8", "--data", series,
                "--out", tmp_path / "q.tflite") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "recurrent loop" in err[0], err


def test_a_model_that_takes_text_is_one_line(tmp_path, capsys):
    """The text tutorial's export model (TextVectorization inside, string input): profile and bench
    died with a traceback (exit 1), convert with the converter's message cut mid-word."""
    vectorize = keras.layers.TextVectorization(max_tokens=20, output_sequence_length=6)
    vectorize.adapt(["a good film", "a bad film", "not good at all"])
    model = keras.Sequential([keras.Input((1,), dtype="string"), vectorize, keras.layers.Embedding(20, 4),
                              keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(1)])
    model.save(tmp_path / "text.keras")
    from edgepipe.base.backend import tf
    module = tf.Module()  # the same from a plain SavedModel's signature
    module.fn = tf.function(lambda text: {"n": tf.strings.length(text)}, input_signature=[tf.TensorSpec((1,), tf.string)])
    tf.saved_model.save(module, str(tmp_path / "sm"), signatures={"serving_default": module.fn})
    for argv in (["profile", tmp_path / "text.keras"], ["bench", tmp_path / "text.keras", "--runs", "1"],
                 ["convert", "--model", tmp_path / "text.keras", "--out", tmp_path / "t.tflite"],
                 ["convert", "--model", tmp_path / "sm", "--out", tmp_path / "s.tflite"]):
        capsys.readouterr()
        assert _run(*argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "takes text" in err[0] and "TextVectorization" in err[0], err


def test_a_fused_lstm_that_keeps_state_is_said_and_checked_from_a_fresh_state(tmp_path, series, capsys):
    """TFLite's fused LSTM leaves its last state in variable tensors, so the same window gave
    another forecast on each call (0.629, 0.626, 0.626); convert said nothing, and verify's
    item-by-item comparison failed or passed by chance. Now the note names what an app must do,
    and edgepipe's runner resets the state before every input, as that app would."""
    from edgepipe.evaluate.runners import open_runner
    model = _recurrent(tmp_path / "lstm.keras", _seeded(keras.layers.LSTM))
    out = tmp_path / "lstm.tflite"
    capsys.readouterr()
    assert _run("convert", "--model", model, "--out", out) == 0
    assert "keeps state between calls in 2 variable tensor(s)" in capsys.readouterr().err
    window = np.load(series)[:1]
    runner = open_runner(out)
    first, again = (runner.predict(window)[runner.outputs[0].name] for _ in range(2))
    np.testing.assert_array_equal(first, again)
    # the converter's SavedModel route keys its signature output_0; an app reading the card asks for its names
    from ai_edge_litert.interpreter import Interpreter
    card = json.loads(out.with_name(out.name + ".model_card.json").read_text())
    signature = Interpreter(model_path=str(out)).get_signature_list()["serving_default"]
    assert signature == {"inputs": [card["inputs"][0]["name"]], "outputs": [card["outputs"][0]["name"]]}, signature
    signed = Interpreter(model_path=str(out)).get_signature_runner("serving_default")
    np.testing.assert_allclose(signed(**{card["inputs"][0]["name"]: window})[card["outputs"][0]["name"]], first,
                               rtol=1e-5, atol=1e-6)
    assert _run("verify", "--model", model, "--export", out, "--data", series) == 0
    assert "resetVariableTensors" in capsys.readouterr().err

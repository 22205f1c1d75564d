"""keras.applications' mobile-class networks through edgepipe's Core ML export
and the numpy reference interpreter (evaluate.milref): every op coremltools
emits for them is implemented, each new op agrees with TensorFlow, and each
export passes edgepipe verify's fp16 gate.

Op sets (coremltools' iOS15 mlprogram, BN folded by convert.fold.export_graph),
besides const, the input/output casts and the ImageType's scaling mul:

- MobileNet: conv, pad, relu6, reduce_mean, reshape, transpose, (softmax)
- MobileNetV2: + add, matmul
- MobileNetV3Small/Large (hard-swish, squeeze-excite, own Rescaling): add, mul,
  relu, relu6, reduce_mean; minimalistic=True is a subset
- EfficientNetB0..B3 (own Rescaling + Normalization): add, mul, sigmoid, silu,
  reduce_mean, reshape, transpose, matmul; B1-B3 are B0's op set, wider/deeper
- NASNetMobile: add, avg_pool, max_pool, concat, slice_by_index, relu, pad

Only ``silu`` was new. ``gelu`` (Keras' approximate gelu), ``softplus`` and ``elu``
(Keras activations coremltools emits as single ops) and ``sigmoid_hard`` came with it.
"""
import json
import sys

import numpy as np
import pytest

from edgepipe.base.backend import keras, tf
from edgepipe.evaluate.milref.ops import OPS

RNG = np.random.default_rng(0)
SIZE = 32


def _close(a, b, tol=1e-5):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), atol=tol, rtol=tol)


# -- the new ops against TensorFlow --------------------------------------------------------------------------------

def test_silu_matches_tf():
    x = RNG.normal(scale=4, size=(2, 3, 5, 5)).astype(np.float32)
    _close(OPS["silu"](x=x), tf.nn.silu(x))
    _close(OPS["silu"](x=np.array([-100.0, 100.0], np.float32)), [0.0, 100.0])  # no overflow


def test_sigmoid_hard_matches_tf():
    x = RNG.normal(scale=4, size=(2, 3, 5, 5)).astype(np.float32)
    _close(OPS["sigmoid_hard"](x=x, alpha=1 / 6, beta=0.5), tf.nn.relu6(x + 3) / 6)  # Keras 3's hard_sigmoid
    _close(OPS["sigmoid_hard"](x=x), tf.clip_by_value(0.2 * x + 0.5, 0, 1))  # MIL's default alpha, beta


@pytest.mark.parametrize("mode, want", [
    ("EXACT", lambda x: tf.nn.gelu(x, approximate=False)),
    ("TANH_APPROXIMATION", lambda x: tf.nn.gelu(x, approximate=True)),
    ("SIGMOID_APPROXIMATION", lambda x: x * tf.sigmoid(1.702 * x))])
def test_gelu_modes_match_tf(mode, want):
    x = RNG.normal(scale=3, size=(2, 4, 6)).astype(np.float32)
    _close(OPS["gelu"](x=x, mode=mode), want(x))


def test_softplus_and_elu_match_tf():
    x = RNG.normal(scale=4, size=(2, 3, 5, 5)).astype(np.float32)
    _close(OPS["softplus"](x=x), tf.nn.softplus(x))
    _close(OPS["softplus"](x=np.array([-200.0, 200.0], np.float32)), [0.0, 200.0])
    _close(OPS["elu"](x=x), tf.nn.elu(x))
    _close(OPS["elu"](x=x, alpha=0.5), tf.where(x > 0, x, 0.5 * tf.math.expm1(x)))


def test_new_ops_run_from_a_saved_program(tmp_path):
    """The ops as coremltools writes them (its input names and modes), loaded from
    an .mlpackage and run op by op, against TensorFlow."""
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb

    from edgepipe.evaluate.milref import ReferenceProgram

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 3, 4, 4))], opset_version=ct.target.iOS15)
    def program(x):
        return (mb.silu(x=x, name="silu"), mb.sigmoid_hard(x=x, alpha=0.3, beta=0.4, name="sigmoid_hard"),
                mb.gelu(x=x, mode="EXACT", name="gelu_exact"),
                mb.gelu(x=x, mode="TANH_APPROXIMATION", name="gelu_tanh"),
                mb.gelu(x=x, mode="SIGMOID_APPROXIMATION", name="gelu_sigmoid"),
                mb.softplus(x=x, name="softplus"), mb.elu(x=x, alpha=0.5, name="elu"))
    path = tmp_path / "activations.mlpackage"
    ct.convert(program, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS15,
               compute_precision=ct.precision.FLOAT32).save(str(path))
    x = RNG.normal(scale=3, size=(1, 3, 4, 4)).astype(np.float32)
    ref = ReferenceProgram(path)
    got = dict(zip(["silu", "sigmoid_hard", "gelu_exact", "gelu_tanh", "gelu_sigmoid", "softplus", "elu"],
                   ref.run({ref.input_names[0]: x}).values()))
    want = {"silu": tf.nn.silu(x), "sigmoid_hard": tf.clip_by_value(0.3 * x + 0.4, 0, 1),
            "gelu_exact": tf.nn.gelu(x, approximate=False), "gelu_tanh": tf.nn.gelu(x, approximate=True),
            "gelu_sigmoid": x * tf.sigmoid(1.702 * x), "softplus": tf.nn.softplus(x),
            "elu": tf.where(x > 0, x, 0.5 * tf.math.expm1(x))}
    for name, value in want.items():
        _close(got[name], value, 1e-5)


# -- keras.applications through convert and verify -----------------------------------------------------------------

def _nasnet_small():
    """NASNetMobile's cells (normal and reduction cells of separable convs, pools and
    the adjust-block's crop and concat) at a size that converts in seconds:
    NASNetMobile itself takes ~100 s in coremltools and has the same op set."""
    nasnet = sys.modules[keras.applications.NASNetMobile.__module__]
    return nasnet.NASNet(input_shape=(SIZE, SIZE, 3), penultimate_filters=192, num_blocks=1,
                         stem_block_filters=8, skip_reduction=False, filter_multiplier=2, weights=None,
                         classes=10, classifier_activation=None)


A = keras.applications
# One network per family, at 32x32; logits (no softmax: a random classifier's
# probabilities are all ~1/classes). MobileNetV3Large and EfficientNetB1-B3 have
# the op sets of MobileNetV3Small and EfficientNetB0 (see the module docstring).
FAMILIES = {
    "mobilenet": lambda: A.MobileNet(input_shape=(SIZE, SIZE, 3), alpha=0.25, weights=None, classes=10,
                                     classifier_activation=None),
    "mobilenet_v2": lambda: A.MobileNetV2(input_shape=(SIZE, SIZE, 3), alpha=0.35, weights=None, classes=10,
                                          classifier_activation=None),
    "mobilenet_v3_small": lambda: A.MobileNetV3Small(input_shape=(SIZE, SIZE, 3), alpha=0.75, weights=None,
                                                     classes=10, classifier_activation=None),
    "efficientnet_b0": lambda: A.EfficientNetB0(input_shape=(SIZE, SIZE, 3), weights=None, classes=10,
                                                classifier_activation=None),
    "nasnet": _nasnet_small,
}
SIGNATURE_OPS = {"mobilenet": {"relu6"}, "mobilenet_v2": {"relu6", "add"}, "mobilenet_v3_small": {"relu", "mul"},
                 "efficientnet_b0": {"silu", "sigmoid"},
                 "nasnet": {"avg_pool", "max_pool", "concat", "slice_by_index"}}


def _pixels(seed: int, count: int) -> np.ndarray:
    from edgepipe.train.docgen import generate
    return np.stack([generate(seed, i, SIZE).image for i in range(count)])


def unit_rms_batchnorm(model, x):
    """Set each BN to scale its input to unit RMS on ``x`` (mean 0, one variance per
    layer), in order, so each layer sees the statistics the ones before produce.

    weights=None leaves BN at (0, 1): activations shrink layer by layer until the
    logits are ~1e-18 and fp16 flushes them (a softmax head then gives a constant
    1/classes). Centring per channel instead, as training-mode BN does, makes a
    random ReLU net chaotic: each layer amplifies relative error ~1.2x and fp16
    rounding alone reaches ~37 dB on MobileNet. Uncentred unit RMS keeps it at the
    critical point, as He initialisation does, so fp16 error only accumulates, as
    in a trained net."""
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]

    def settle(bn):
        inference = bn.call

        def call(inputs, training=None, **kwargs):
            mean, var = tf.nn.moments(inputs, axes=list(range(inputs.shape.rank - 1)))
            bn.moving_mean.assign(tf.zeros_like(mean))
            bn.moving_variance.assign(tf.fill(tf.shape(var), tf.reduce_mean(var + mean ** 2)))
            return inference(inputs, training=False)
        return call

    for bn in bns:
        bn.call = settle(bn)
    try:
        model(x, training=False)
    finally:
        for bn in bns:
            del bn.call
    return model


@pytest.fixture(scope="module")
def verify_data(tmp_path_factory):
    """Eight generated documents as [0, 1] RGB (exact 8-bit pixels, as an ImageType sees)."""
    path = tmp_path_factory.mktemp("data") / "images.npy"
    np.save(path, _pixels(424242, 8).astype(np.float32) / 255)
    return path


@pytest.fixture(scope="module", params=list(FAMILIES))
def exported(request, tmp_path_factory):
    """A family's model with random weights, saved, and converted by ``edgepipe convert``."""
    from edgepipe.base.modelio import save_keras
    from edgepipe.cli.main import main
    from edgepipe.convert.inputspec import spec_for
    name = request.param
    d = tmp_path_factory.mktemp(name)
    keras.utils.set_random_seed(0)
    model = FAMILIES[name]()
    unit_rms_batchnorm(model, spec_for(model).from_pixels(_pixels(7, 32)))
    path = save_keras(model, d / f"{name}.keras")
    out = d / f"{name}.mlpackage"
    assert main(["convert", "--model", str(path), "--format", "coreml", "--out", str(out)]) == 0
    return name, model, path, out


def test_export_runs_in_the_reference_interpreter(exported):
    """Every op of the program is implemented, and the fp16 program agrees with
    Keras fed what the bundle says the app feeds (the model's own Rescaling takes
    raw pixels)."""
    from edgepipe.convert.inputspec import DEFAULT, bundle_spec
    from edgepipe.evaluate.gates import check_output, default_gate
    from edgepipe.evaluate.milref import ReferenceProgram
    from edgepipe.evaluate.runners import open_runner
    name, model, _, out = exported
    ops = {o.op_type for o in ReferenceProgram(out).ops}
    assert SIGNATURE_OPS[name] <= ops, (name, sorted(ops))
    pixels = _pixels(424242, 8)
    ref = model.predict((bundle_spec(out) or DEFAULT).from_pixels(pixels), verbose=0)
    got = next(iter(open_runner(out).predict(pixels.astype(np.float32) / 255).values()))
    row = check_output(ref, got, default_gate("fp16", True))
    assert row["pass"] and row["psnr_db"] >= 40, (name, row)
    # Random weights leave some top-2 logits a hair apart; fp16 may swap those,
    # so the class must agree wherever the margin exceeds the export's own error.
    top2 = np.sort(ref.reshape(len(ref), -1), axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > 2 * row["max_abs"]
    agree = ref.reshape(len(ref), -1).argmax(1) == got.reshape(len(got), -1).argmax(1)
    assert clear.any() and agree[clear].all(), (name, row, clear, agree)


def test_export_passes_verify(exported, verify_data, capsys):
    from edgepipe.cli.main import main
    name, _, path, out = exported
    capsys.readouterr()
    code = main(["verify", "--model", str(path), "--export", str(out), "--data", str(verify_data), "--json",
                 "--no-drill-down"])
    result = json.loads(capsys.readouterr().out)
    row = result["outputs"][0]
    assert (result["engine"], result["variant"]) == ("reference-interpreter", "fp16")
    assert not result["constant_outputs"], (name, row)
    assert code == 0 and result["pass"] and row["psnr_db"] >= 40, (name, row)

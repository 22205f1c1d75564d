"""Per-op-type TFLite latency from timing prefixes of the graph."""
import numpy as np

from edgepipe.evaluate.prefix_profile import cut_points, monotone, prefix_model, profile_prefixes
from edgepipe.base.backend import keras


def _branchy():
    keras.utils.set_random_seed(0)
    x = keras.Input((16, 16, 3), name="image")
    a = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="stem")(x)
    side = keras.layers.Conv2D(1, 1, name="side")(a)
    b = keras.layers.DepthwiseConv2D(3, padding="same", name="dw")(a)
    c = keras.layers.Conv2D(8, 1, name="pw")(b)
    out = keras.layers.Add(name="add")([a, c])
    return keras.Model(x, [keras.layers.Conv2D(2, 1, name="head")(out), side])


def test_a_prefix_keeps_every_tensor_still_needed_downstream():
    model = _branchy()
    names = [layer.name for layer in model.layers]
    k = names.index("dw")
    prefix = prefix_model(model, k)
    # stem still feeds the add; side is a model output if it is inside the prefix
    want = ["dw", "stem"] + (["side"] if names.index("side") < k else [])
    assert sorted(t.node.layer.name for t in prefix.outputs) == sorted(want)
    x = np.random.default_rng(0).random((1, 16, 16, 3)).astype(np.float32)
    got = dict(zip(prefix.output_names, prefix.predict(x, verbose=0)))
    np.testing.assert_allclose(got["dw"], keras.Model(model.input, model.get_layer("dw").output)(x), atol=1e-6)
    assert cut_points(model)[-1] == len(model.layers) - 1


def test_monotone_smooths_a_dip_and_keeps_an_increasing_series():
    assert monotone([1.0, 2.0, 3.0]) == [1.0, 2.0, 3.0]
    assert monotone([1.0, 5.0, 1.0, 6.0]) == [1.0, 3.0, 3.0, 6.0]


def test_prefix_profile_accounts_for_the_whole_model(tmp_path):
    model = _branchy()
    result = profile_prefixes(model, tmp_path, runs=5, warmup=1)
    segments = result["segments"]
    assert segments[-1]["last"] == model.layers[-1].name and all(s["ms"] >= 0 for s in segments)
    assert abs(sum(s["ms"] for s in segments) - result["total_ms"]) < 1e-9
    assert abs(sum(k["share"] for k in result["by_kind"]) - 1) < 1e-9
    assert {k["kind"] for k in result["by_kind"]} <= {"Conv2D 3x3", "Conv2D 1x1", "DepthwiseConv2D 3x3"}
    # every layer's roofline bound lands in exactly one segment and one op type
    from edgepipe.evaluate.latency import layer_bound_ms
    from edgepipe.evaluate.prefix_profile import time_lost
    from edgepipe.mobile_models.profile import FUSED_OR_VIEW, profile_model
    assert all(s["bound_ms"] > 0 for s in segments)
    assert abs(sum(s["bound_ms"] for s in segments) - sum(k["bound_ms"] for k in result["by_kind"])) < 1e-9
    assert len({s["bound_ms"] for s in segments}) > 1
    lost = time_lost(segments, top=2)
    assert lost[0]["ms"] - lost[0]["bound_ms"] >= lost[1]["ms"] - lost[1]["bound_ms"]
    one = profile_model(model)["layers"][0]
    assert layer_bound_ms(one["macs"], 4 * one["mac"], 1.0, [[1.0, 1e9]]) == 2 * one["macs"] / 1e9 * 1e3
    assert one["kind"] not in FUSED_OR_VIEW


def test_bench_per_op_cli(tmp_path, capsys):
    from edgepipe.cli.main import main
    path = tmp_path / "m.keras"
    _branchy().save(path)
    assert main(["bench", str(path), "--per-op", "--runs", "3", "--warmup", "1"]) == 0
    out = capsys.readouterr().out
    assert "where TFLite float time goes in m.keras" in out and "Conv2D 3x3" in out
    assert "x roofline" in out and "most time above the roofline bound" in out
    tfl = tmp_path / "m.tflite"
    tfl.write_bytes(b"x")
    assert main(["bench", str(tfl), "--per-op"]) == 2

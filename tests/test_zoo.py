"""The model zoo: paper-exact sizes, registry behaviour and bad options."""
import numpy as np
import pytest

from edgepipe import mobile_models
from edgepipe.mobile_models.profile import profile_model
from edgepipe.base.errors import EdgePipeError


def test_registry_lists_the_mission_networks():
    assert {"mobilenet_v1", "mobilenet_v2", "shufflenet_v1", "shufflenet_v2", "hed_vgg",
            "hed_mobilenet_v2"} <= set(mobile_models.names())


def test_mobilenet_v2_matches_keras_applications_exactly():
    assert mobile_models.build("mobilenet_v2").count_params() == 3_538_984


def test_mobilenet_v1_matches_keras_applications_exactly():
    assert mobile_models.build("mobilenet_v1").count_params() == 4_253_864


@pytest.mark.parametrize("name, opts, macs, tol", [
    ("mobilenet_v1", {}, 569e6, 0.03),
    ("mobilenet_v2", {}, 300e6, 0.03),
    ("shufflenet_v2", {"scale": 1.0}, 146e6, 0.05),
    ("shufflenet_v1", {"groups": 3, "scale": 1.0}, 140e6, 0.05),
])
def test_mult_adds_match_the_papers(name, opts, macs, tol):
    got = profile_model(mobile_models.build(name, **opts))["macs"]
    assert abs(got - macs) / macs <= tol, f"{name}: {got / 1e6:.1f} M vs {macs / 1e6:.0f} M"


def test_shufflenet_v2_params_match_the_paper():
    got = mobile_models.build("shufflenet_v2", scale=1.0).count_params()
    assert abs(got - 2.28e6) / 2.28e6 <= 0.02, got


def test_hed_weight_sizes_match_the_seed():
    vgg = mobile_models.build("hed_vgg").count_params() * 4 / 1e6
    mnv2 = mobile_models.build("hed_mobilenet_v2").count_params() * 4 / 1e6
    assert abs(vgg - 4.4) < 0.1, vgg
    assert mnv2 <= 1.6, mnv2


def test_hed_speed_options_reshape_the_table():
    """stem_stride 2 halves every side's resolution but keeps the deepest at /16;
    sides=4 drops the last stage; width and expansion scale the inverted residuals."""
    from edgepipe.mobile_models.hed import HED_MOBILENET_V2, scaled_table
    assert scaled_table(HED_MOBILENET_V2) == HED_MOBILENET_V2
    fast = scaled_table(HED_MOBILENET_V2, stem_stride=2, width=0.5, expansion=4, sides=4)
    assert [r[4] for r in fast] == [2, 1, 2, 2, 2] and fast[-1][5] == 4
    assert [r[2] for r in fast] == [2, 3, 8, 12, 24] and {r[1] for r in fast if r[0] == "ir"} == {4}
    model = mobile_models.build("hed_mobilenet_v2", input_shape=(64, 64, 3), stem_stride=2, sides=4)
    assert [o.shape[1:3] for o in model.outputs] == [(64, 64)] * 5  # 4 sides + fuse, all full size
    assert model.get_layer("dsn1_up").strides == (2, 2)


def test_full_side_puts_side_1_at_full_resolution_beside_a_half_resolution_body():
    """full_side=1 (with stem_stride 2): side 1 comes from one conv on the image at
    full resolution, so it needs no upsampler; sides 2-5 stay where stem_stride 2 puts them."""
    fast = mobile_models.build("hed_mobilenet_v2", input_shape=(64, 64, 3), stem_stride=2)
    full = mobile_models.build("hed_mobilenet_v2", input_shape=(64, 64, 3), stem_stride=2, full_side=1)
    assert full.get_layer("dsn1").input.shape[1:3] == (64, 64)
    assert "dsn1_up" not in [layer.name for layer in full.layers]
    for k in (2, 3, 4, 5):
        assert full.get_layer(f"dsn{k}_up").strides == fast.get_layer(f"dsn{k}_up").strides
    assert full.output_names == fast.output_names and [o.shape for o in full.outputs] == [o.shape for o in fast.outputs]


def test_hed_region_head_adds_a_page_output():
    """region=1: a page-region logit map at full size; the deployed model returns
    the edge map first and the page probabilities second, by name."""
    from edgepipe.mobile_models.hed import inference_model
    plain = mobile_models.build("hed_mobilenet_v2", input_shape=(64, 64, 3))
    model = mobile_models.build("hed_mobilenet_v2", input_shape=(64, 64, 3), region=1)
    assert model.output_names[-1] == "region" and model.outputs[-1].shape[1:] == (64, 64, 1)
    assert model.count_params() - plain.count_params() < 12_000  # a small head on the deepest side
    deployed = inference_model(model)
    assert deployed.output_names == ["edges", "page"]
    edges, page = deployed.predict(np.random.default_rng(0).random((1, 64, 64, 3), np.float32), verbose=0)
    assert edges.shape == page.shape == (1, 64, 64, 1) and 0 <= page.min() and page.max() <= 1
    assert inference_model(plain).output_names == ["edges"]


@pytest.mark.parametrize("groups", [1, 2, 3, 4, 8])
def test_shufflenet_v1_every_group_count_builds(groups):
    m = mobile_models.build("shufflenet_v1", groups=groups, scale=0.5, input_shape=(64, 64, 3), classes=10)
    assert m.output_shape == (None, 10)


def test_channel_shuffle_order():
    """[0..8] with g = 3 becomes [0 3 6 1 4 7 2 5 8] (seed S0)."""
    from edgepipe.base.backend import keras
    from edgepipe.mobile_models.blocks import channel_shuffle
    x = keras.Input((1, 1, 9))
    m = keras.Model(x, channel_shuffle(x, 3, "t"))
    out = m(np.arange(9, dtype=np.float32).reshape(1, 1, 1, 9)).numpy().ravel()
    assert out.tolist() == [0, 3, 6, 1, 4, 7, 2, 5, 8]


def test_mobilenet_v2_residual_only_when_shapes_allow():
    m = mobile_models.build("mobilenet_v2", alpha=0.35, input_shape=(96, 96, 3))
    adds = [l.name for l in m.layers if l.name.endswith("_add")]
    # Table 2: repeats 1,2,3,4,3,3,1 -> residuals on every non-first repeat: 1+2+3+2+2 = 10
    assert len(adds) == 10


def test_classifiers_take_include_top_false():
    m = mobile_models.build("shufflenet_v2", scale=0.5, input_shape=(64, 64, 3), include_top=False)
    assert len(m.output_shape) == 4


@pytest.mark.parametrize("name, opts, needle", [
    ("resnet50", {}, "valid names"),
    ("shufflenet_v1", {"groups": 5}, "must be one of"),
    ("shufflenet_v2", {"scale": 0.75}, "valid"),
    ("mobilenet_v2", {"input_shape": (100, 100, 3)}, "multiples of 32"),
    ("mobilenet_v2", {"depth": 3}, "valid"),
    ("hed_mobilenet_v2", {"stem_stride": 4}, "stem_stride 1 or 2"),
    ("hed_mobilenet_v2", {"region": 2}, "region and full_side are 0 or 1"),
    ("hed_mobilenet_v2", {"full_side": 1}, "full_side with stem_stride 2 only"),
    ("hed_mobilenet_v2", {"sides": 6}, "sides 2..5"),
])
def test_bad_options_are_clear(name, opts, needle):
    with pytest.raises(EdgePipeError, match=needle):
        mobile_models.build(name, **opts)


def test_profile_warns_about_shufflenet_guidelines():
    p = profile_model(mobile_models.build("shufflenet_v1", groups=8, scale=0.5, input_shape=(64, 64, 3)))
    text = " ".join(p["warnings"])
    assert "G2" in text and "G3" in text
    assert p["peak_activation_bytes"] > 0 and p["mac"] > p["macs"] / 100


def test_profile_cli_json(capsys):
    import json
    from edgepipe.cli.main import main
    assert main(["profile", "mobilenet_v2", "--alpha", "0.35", "--size", "96", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert isinstance(out["params"], int) and isinstance(out["macs"], int) and out["macs"] > 0


def test_profile_cli_unknown_name():
    from edgepipe.cli.main import main
    assert main(["profile", "nope"]) == 2


def test_shufflenets_round_trip_through_keras_files_in_safe_mode(tmp_path):
    import subprocess
    import sys
    from edgepipe.base.modelio import save_keras
    for name, opts in (("shufflenet_v1", {"groups": 3, "scale": 0.5}), ("shufflenet_v2", {"scale": 0.5})):
        path = save_keras(mobile_models.build(name, input_shape=(64, 64, 3), classes=5, **opts),
                          tmp_path / f"{name}.keras")
        # a fresh process, where nothing imported our custom layers yet
        code = ("import sys; from edgepipe.base.modelio import load_keras; "
                f"print(load_keras(sys.argv[1]).count_params())")
        proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                              cwd=str(tmp_path.parent), env={**__import__("os").environ,
                                                             "PYTHONPATH": str(__import__("pathlib").Path(__file__).resolve().parent.parent)})
        assert proc.returncode == 0, proc.stderr[-500:]

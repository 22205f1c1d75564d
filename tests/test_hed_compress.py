"""Compression of the document detector (issue #18): magnitude (2:4) pruning with
PQAT, and channel pruning with QAT, each from a recipe on a tiny HED, fine-tuned
with HED's loss and document stream, exported and verified by the pipeline; the
channel pruner keeps side outputs, upsamplers and fuse consistent."""
import json
import shutil

import numpy as np
import pytest
import yaml

from edgepipe import mobile_models
from edgepipe.cli.main import main
from edgepipe.mobile_models.hed import inference_model
from edgepipe.quantize.channel_prune import kept_channels, prunable_groups, prune_channels
from tests.conftest import TINY, randomise_batchnorm

VARIANTS = ["tflite_float32", "tflite_int8"]


def _run(tmp_path, tiny_run, name, prune, qat_steps):
    """The TINY recipe plus ``prune`` and QAT, run in a copy of the session's tiny
    run: its training is up to date there, so the run starts at the prune stage."""
    recipe = TINY | {"name": name, "prune": prune, "export": {"variants": VARIANTS, "calibration_samples": 4},
                     "quantize": {"qat_steps": qat_steps, "qat_batch_size": 2}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    out = tmp_path / name
    shutil.copytree(tiny_run, out)
    assert main(["run", "--recipe", str(path), "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    return out, report, {(a["format"], a["variant"]): a for a in report["artifacts"]}


def _ops_and_kernels(path):
    from ai_edge_litert.interpreter import Interpreter
    interp = Interpreter(model_path=str(path))
    interp.allocate_tensors()
    ops = {d["op_name"] for d in interp._get_ops_details()}
    kernels = []
    for t in interp.get_tensor_details():
        if np.dtype(t["dtype"]) == np.int8 and len(t["shape"]) == 4 and t["shape"][0] > 1:
            try:
                kernels.append(interp.get_tensor(t["index"]))
            except ValueError:  # activations hold no data outside invoke()
                continue
    return ops, kernels


def _verified(entry):
    """An export that converted, ran on the held-out documents and has edge and corner metrics."""
    task = entry["task"]
    return entry["status"] == "ok" and 0 <= task["f_score"] <= 1 and "under_2pct" in task and "gate" in entry


def test_recipe_prunes_2_4_then_pqat_on_hed(tmp_path, tiny_run):
    from edgepipe.base.modelio import load_keras
    out, report, by = _run(tmp_path, tiny_run, "sparse", {"sparsity": 0.5, "structure": "2:4", "steps": 3,
                                                          "batch_size": 2}, qat_steps=2)
    assert report["stages"]["train"]["skipped"] and not report["stages"]["prune"]["skipped"]
    keras = by[("keras", "float32")]
    assert keras["path"].endswith("hed_mobilenet_v2.pruned.keras")
    pruned = load_keras(keras["path"])
    rows = {r["layer"]: r for r in report["prune"]["table"]}
    fours = [r for name, r in rows.items() if pruned.get_layer(name).get_weights()[0].shape[2] % 4 == 0]
    assert len(fours) > 10 and all(r["sparsity"] == 0.5 for r in fours)  # 2 of every 4 input channels
    assert not any(r["type"] == "Conv2DTranspose" for r in rows.values())  # the bilinear upsamplers stay dense
    assert "f_score" in report["prune"]["scores"]["pruned"]
    assert by[("tflite", "float32")]["gate"]["pass"] and _verified(by[("tflite", "float32")])
    int8 = by[("tflite", "int8")]
    assert _verified(int8)
    ops, kernels = _ops_and_kernels(int8["path"])
    assert "TRANSPOSE_CONV" not in ops and "DEPTH_TO_SPACE" in ops  # QAT ran on the sub-pixel form
    zeros = sum(int(np.sum(k == 0)) for k in kernels) / sum(k.size for k in kernels)
    assert zeros > 0.4  # PQAT kept the 2:4 zeros through fine-tuning and int8 conversion


def test_cli_channel_prunes_then_qat_on_hed(tmp_path, tiny_run, capsys):
    """``edgepipe prune`` on HED: channels removed consistently, fine-tuned and QAT'd with
    the recipe's HED loss and documents, exports scored and gated against their models."""
    from edgepipe.base.modelio import load_keras
    recipe = tmp_path / "tiny.yaml"  # the int8 gate on an untrained net's F-score would be a coin toss
    recipe.write_text(yaml.safe_dump(TINY | {"verify": {"gate_task_drop": 1.0}}))
    out = tmp_path / "slim.keras"
    model = tiny_run / "hed_mobilenet_v2.keras"
    assert main(["prune", "--model", str(model), "--structure", "channel", "--sparsity", "0.5", "--steps", "2",
                 "--batch-size", "2", "--qat-steps", "1", "--latency-runs", "2", "--recipe", str(recipe),
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for text in ("channels per pruned conv", "block3_0_expand", "MACs:", "HED before and after pruning", "from QAT",
                 "pruned int8", "corner <2%"):
        assert text in printed, text
    slim = load_keras(out)
    assert slim.get_layer("block3_0_expand").filters == kept_channels(36, 0.5)
    assert slim.get_layer("dsn1").get_weights()[0].shape[2] == kept_channels(6, 0.5)  # the side head follows
    assert slim.output_shape == (None, 64, 64, 1)
    assert (tmp_path / "slim.tflite").stat().st_size < 0.8 * (tmp_path / "slim.unpruned.tflite").stat().st_size
    ops, _ = _ops_and_kernels(tmp_path / "slim.int8.tflite")
    assert "TRANSPOSE_CONV" not in ops and "DEPTH_TO_SPACE" in ops  # QAT on the sub-pixel form
    (tmp_path / "photos").mkdir()
    assert main(["prune", "--model", str(model), "--sparsity", "0.5", "--data-folder", str(tmp_path / "photos"),
                 "--out", str(tmp_path / "x.keras")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("edgepipe: error: --data-folder is a classifier's") and err.count("\n") == 1


@pytest.mark.parametrize("name", ["hed_mobilenet_v2", "hed_vgg"])
def test_channel_pruning_hed_keeps_sides_and_fuse_consistent(name):
    """Zero the weakest channels (kernel, BN mean and beta, so they output exactly 0):
    pruning them away leaves every side output and the fuse unchanged, and the
    export graph (sub-pixel upsamplers, fuse pyramid) of the pruned model matches it."""
    from edgepipe.base.backend import keras, layers
    from edgepipe.convert.fold import export_graph
    full = randomise_batchnorm(mobile_models.build(name, input_shape=(32, 32, 3)))
    rng = np.random.default_rng(3)
    for g in prunable_groups(full):
        conv, n = g["conv"], g["conv"].filters
        dead = rng.choice(n, n - kept_channels(n, 0.5), replace=False)
        w = conv.get_weights()
        w[0][..., dead] = 0
        conv.set_weights(w)
        for layer in g["path"]:
            if isinstance(layer, layers.BatchNormalization):
                gamma, beta, mean, var = layer.get_weights()
                beta[dead], mean[dead] = 0, 0
                layer.set_weights([gamma, beta, mean, var])
    slim, rows = prune_channels(full, 0.5)
    assert sum(r["before"] - r["after"] for r in rows) > 0
    assert any("dsn" in r["consumer"] and r["after"] < r["before"] for r in rows)  # a side head's input shrank
    x = np.random.default_rng(4).random((2, 32, 32, 3), np.float32)
    want, got = full.predict(x, verbose=0), slim.predict(x, verbose=0)
    assert [a.shape for a in got] == [a.shape for a in want]
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, atol=1e-4)
    edges = inference_model(slim)
    exported = export_graph(edges)
    assert not any(isinstance(l, keras.layers.Conv2DTranspose) for l in exported.layers)
    np.testing.assert_allclose(exported.predict(x, verbose=0), edges.predict(x, verbose=0), atol=1e-5)


def test_hed_training_view_exposes_the_supervised_heads(tiny_hed):
    from edgepipe.train.hedtune import training_view
    view, heads = training_view(tiny_hed)
    assert heads == ["side1", "side2", "side3", "side4", "side5", "fuse"]
    assert all(shape == (None, 64, 64, 1) for shape in view.output_shape)
    assert view.layers[-1].get_weights()[0] is not None and view.count_params() == tiny_hed.count_params()

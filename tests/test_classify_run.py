"""A classifier through the whole pipeline on a tiny image folder the test makes,
and HED training from a folder of photos with corners."""
import json

import yaml

from edgepipe.cli.main import main
from tests.test_data import make_document_folder, make_image_folder


def test_classifier_recipe_end_to_end(tmp_path, tflite_support_metadata, capsys):
    root = make_image_folder(tmp_path / "imgs", per_class=8)
    recipe = {"name": "colors", "model": {"name": "tiny_cnn", "input_size": 32},
              "data": {"kind": "image_folder", "path": str(root)},
              "profiles": {"quick": {"phases": [{"size": 32, "steps": 150, "pool": 1}], "batch_size": 8,
                                     "steps_per_epoch": 50, "learning_rate": 0.01}},
              "export": {"calibration_samples": 200}, "bench": {"warmup": 1, "runs": 3}}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    out = tmp_path / "run"
    assert main(["run", "--recipe", str(tmp_path / "r.yaml"), "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["task"]["name"] == "classify"
    by = {(a["format"], a["variant"]): a for a in report["artifacts"]}
    keras = by[("keras", "float32")]["task"]
    # 2 held out per class, chance 1/3. 150 steps learn the colours (training loss 0.007-0.07 on
    # every CPU tried, ln 3 = 1.1 untrained), but which held-out images they get right depends on
    # the CPU's float rounding: 6/6 here, 4/6 with oneDNN off on SSE4.1
    assert report["train"]["final_loss"] < 0.3
    assert keras["count"] == 6 and sum(map(sum, keras["confusion"])) == 6
    assert keras["top1"] > 1 / 3 and keras["top1"] == sum(keras["confusion"][i][i] for i in range(3)) / 6
    int8 = by[("tflite", "int8")]
    assert int8["task"]["agreement"] == 1.0 and int8["gate"]["rule"].startswith("top1_agreement")
    card = json.loads((out / "model_card.json").read_text())
    assert card["labels"] == ["blue", "green", "red"] and card["task"] == "image classification"
    # 200 asked, the training split holds fewer: said, and the card records what int8 saw
    seen = card["training"]["calibration_samples"]
    assert 0 < seen < 24 and f"asks for 200 images; the training data holds {seen}" in capsys.readouterr().out
    carded = {(a["format"], a["variant"]): a for a in card["artifacts"]}  # whether each file passed its gate
    assert carded[("tflite", "int8")]["verify"]["gate"] == int8["gate"]
    shown = tflite_support_metadata.MetadataDisplayer.with_model_file(int8["path"])
    assert shown.get_associated_file_buffer("labels.txt").decode().split() == ["blue", "green", "red"]
    assert '<figure id="confusion"' in (out / "report.html").read_text()


def test_hed_trains_from_a_document_folder(tmp_path):
    root, _ = make_document_folder(tmp_path / "docs", count=5, size=96)
    recipe = {"name": "mine", "model": {"name": "hed_mobilenet_v2", "input_size": 64,
                                        "options": {"stem_stride": 2, "sides": 4, "region": 1}},
              "data": {"kind": "document_folder", "path": str(root), "augment": {"flip": True, "brightness": 0.1}},
              "profiles": {"quick": {"phases": [{"size": 64, "steps": 3, "pool": 1}], "batch_size": 2,
                                     "steps_per_epoch": 3, "val_size": 1}}}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    assert main(["train", "--recipe", str(tmp_path / "r.yaml"), "--out", str(tmp_path / "t")]) == 0
    state = json.loads((tmp_path / "t" / "checkpoints" / "state.json").read_text())
    assert state["steps_done"] == 3 and state["history"]["val_loss"][0] is not None
    from edgepipe.base.modelio import load_keras
    trained = load_keras(tmp_path / "t" / "hed_mobilenet_v2.keras")  # the recipe's options were built and kept
    names = {l.name for l in trained.layers}
    assert trained.get_layer("dsn1_up").strides == (2, 2) and "dsn4" in names and "dsn5" not in names
    assert trained.output_names == ["edges", "page"]  # the region head trained on the folder's quads


def test_model_and_data_must_agree(tmp_path, capsys):
    recipe = {"model": {"name": "tiny_cnn", "input_size": 32},
              "profiles": {"quick": {"phases": [{"size": 32, "steps": 1, "pool": 1}]}}}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    assert main(["train", "--recipe", str(tmp_path / "r.yaml"), "--out", str(tmp_path / "t")]) == 2
    assert "is a 'classify' model but data.kind synthetic_documents" in capsys.readouterr().err


def test_recipe_prune_and_quantize_stages(tmp_path):
    """prune (channel) -> QAT -> every PTQ variant, from one recipe; a re-run skips every stage."""
    import numpy as np

    from edgepipe.evaluate.runners import open_runner
    root = make_image_folder(tmp_path / "imgs", per_class=10)
    variants = ["tflite_float32", "tflite_int8", "tflite_int8_float_io", "tflite_dynamic", "tflite_float16",
                "tflite_int16x8", "coreml_fp32"]
    recipe = {"name": "slim", "model": {"name": "tiny_cnn", "input_size": 32},
              "data": {"kind": "image_folder", "path": str(root)},
              "profiles": {"quick": {"phases": [{"size": 32, "steps": 60, "pool": 1}], "batch_size": 8,
                                     "steps_per_epoch": 30, "learning_rate": 0.01}},
              "prune": {"sparsity": 0.5, "structure": "channel", "steps": 20, "batch_size": 8},
              "quantize": {"qat_steps": 5},
              "export": {"variants": variants, "calibration_samples": 12}, "bench": {"warmup": 1, "runs": 2},
              # 60 steps and 6 held-out images: one int8 flip moves agreement 17 points, and which image
              # flips depends on the CPU's float rounding; the stages are under test here, not the gates
              "verify": {"gate_agreement": 0.5}}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    out = tmp_path / "run"
    assert main(["run", "--recipe", str(tmp_path / "r.yaml"), "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["prune"]["macs"][1] < report["prune"]["macs"][0] and report["prune"]["table"]
    by = {(a["format"], a["variant"]): a for a in report["artifacts"]}
    assert by[("keras", "float32")]["path"].endswith("tiny_cnn.pruned.keras")
    want = {("tflite", "float32"), ("tflite", "int8"), ("tflite", "int8-float-io"), ("tflite", "dynamic"),
            ("tflite", "float16"), ("tflite", "int16x8"), ("coreml", "fp32")}
    assert want <= {k for k, a in by.items() if a["status"] == "ok"}, by.keys()
    dtypes = {v: open_runner(by[("tflite", v)]["path"]).inputs[0].dtype
              for v in ("int8", "int8-float-io", "int16x8", "float16")}
    assert dtypes == {"int8": "int8", "int8-float-io": "float32", "int16x8": "int16", "float16": "float32"}
    assert by[("coreml", "fp32")]["gate"]["pass"] and by[("tflite", "float32")]["gate"]["pass"]
    assert np.isfinite(by[("tflite", "int8")]["task"]["agreement"])
    assert main(["run", "--recipe", str(tmp_path / "r.yaml"), "--out", str(out)]) == 0
    again = json.loads((out / "report.json").read_text())
    assert all(s["skipped"] for s in again["stages"].values()), again["stages"]

"""The CLI's bad-input exits (code 2, one line, nothing written) and a tiny
end-to-end run of the whole pipeline."""
import json
import os
import subprocess
import sys

import pytest
import yaml

from edgepipe.cli.main import main
from edgepipe.pipeline.recipe import DEFAULT_RECIPE
from tests.conftest import TINY

def _recipe(tmp_path, data, name="r.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data) if isinstance(data, dict) else data)
    return p


def _run_cli(args):
    """Run in a subprocess to see exactly what a user sees."""
    env = os.environ | {"PYTHONPATH": os.getcwd()}
    return subprocess.run([sys.executable, "-m", "edgepipe.cli.main", *args], capture_output=True, text=True, env=env)


def _assert_clean_error(proc, needle):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgepipe: error:"), proc.stderr
    assert "Traceback" not in proc.stderr and needle in lines[0]


def test_missing_recipe(tmp_path):
    proc = _run_cli(["run", "--recipe", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "out")])
    _assert_clean_error(proc, "recipe not found")
    assert not (tmp_path / "out").exists()
    proc = _run_cli(["run", "--recipe", str(tmp_path), "--out", str(tmp_path / "out")])
    _assert_clean_error(proc, "is a folder; --recipe takes a recipe file")


@pytest.mark.parametrize("mutate, needle", [
    (lambda r: r.update(bogus=1), "bogus"),
    (lambda r: r["profiles"]["quick"].update(batch_size=0), "batch_size"),
    (lambda r: r["model"].update(input_size=70), "multiple of 16"),
    (lambda r: r["export"].update(variants=["tflite_int3"]), "variants"),
    (lambda r: r["data"].update(val_seed=1), "val_seed"),
    (lambda r: r.update(profile="nope"), "profile"),
    # numpy and Keras take 32-bit seeds and TensorFlow int64 steps: a traceback mid-training before
    (lambda r: r["data"].update(train_seed=-5), "train_seed"),
    (lambda r: r["profiles"]["quick"].update(seed=2**64), "seed"),
    (lambda r: r["profiles"]["quick"]["phases"][0].update(steps=10**30), "steps"),
    (lambda r: r["bench"].update(runs=10**15), "runs"),
    (lambda r: r.update(verify={"gate_psnr_db": float("nan")}), "gate_psnr_db"),  # a gate that can never pass
    (lambda r: r.update(verify={"gate_atol": float("inf")}), "gate_atol"),        # ...or never fail
    # builder options went through int() or Keras: a traceback, after the output folder was made
    (lambda r: r["model"].update(options={"expansion": float("nan")}), "expansion must be a number"),
    (lambda r: r["model"].update(options={"alpha": float("inf")}), "alpha must be a number"),
    (lambda r: r["model"].update(options={"expansion": -3}), "expansion must be a number"),
    (lambda r: r["model"].update(options={"sides": 2.5}), "whole number"),  # was cut to 2 unsaid
    (lambda r: r["model"].update(options={"region": 2}), "region is 1"),
    # loss weights: NaN stopped training at step 1 naming no key, a negative one "trained" to loss -433
    (lambda r: r["profiles"]["quick"].update(side_weights=[1, 1, float("nan"), 1, 1]), "side_weights.2"),
    (lambda r: r["profiles"]["quick"].update(fuse_weight=float("inf")), "fuse_weight"),
    (lambda r: r["profiles"]["quick"].update(side_weights=[-1000] * 5), "side_weights.0"),
    (lambda r: r.update(name="\x1b[2J\x1b[31mred"), "name: Value error, holds a control character"),
    (lambda r: r.update(bundle={"author": "me\nFAKE: line"}), "bundle.author"),
])
def test_bad_recipe_values(tmp_path, mutate, needle, capsys):
    data = json.loads(json.dumps(TINY))
    mutate(data)
    assert main(["run", "--recipe", str(_recipe(tmp_path, data)), "--out", str(tmp_path / "out")]) == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_bad_recipe_message_is_one_line(tmp_path):
    proc = _run_cli(["run", "--recipe", str(_recipe(tmp_path, dict(TINY, bogus=1))), "--out", str(tmp_path / "o")])
    _assert_clean_error(proc, "bogus")


def test_recipe_that_is_not_yaml(tmp_path):
    proc = _run_cli(["run", "--recipe", str(_recipe(tmp_path, "model: [unclosed")), "--out", str(tmp_path / "o")])
    _assert_clean_error(proc, "not valid YAML")


def test_unwritable_out(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    proc = _run_cli(["run", "--recipe", str(_recipe(tmp_path, TINY)), "--out", str(blocker / "run")])
    _assert_clean_error(proc, "not writable")


def test_default_recipe_is_valid():
    from edgepipe.pipeline.recipe import load_recipe
    r = load_recipe(DEFAULT_RECIPE)
    assert r.model.input_size == 256 and r.profile == "quick"
    assert r.export.calibration_samples >= 100


def test_tiny_pipeline_end_to_end(tiny_run):
    out = tiny_run
    report = json.loads((out / "report.json").read_text())
    by = {(a["format"], a["variant"]): a for a in report["artifacts"]}
    for key in [("keras", "float32"), ("tflite", "float32"), ("tflite", "int8"), ("onnx", "float32")]:
        a = by[key]
        assert a["status"] == "ok", a
        assert a["size_bytes"] > 0 and os.path.exists(a["path"])
        assert {"parity", "task", "latency"} <= set(a)
        assert a["latency"]["p50_ms"] > 0 and a["latency"]["p90_ms"] >= a["latency"]["p50_ms"]
    assert by[("tflite", "float32")]["parity"]["max_abs"] < 1e-4
    assert by[("onnx", "float32")]["parity"]["max_abs"] < 1e-4
    coreml = by[("coreml", "fp16")]
    assert coreml["status"] == "ok" and coreml["parity"]["psnr_db"] >= 40, coreml
    if sys.platform != "darwin":  # numerics from the reference interpreter, never a latency
        assert coreml["engine"] == "reference-interpreter" and "macOS" in coreml["reason"]
        assert not coreml["latency"]
    assert os.path.isdir(coreml["path"])
    card = json.loads((out / "model_card.json").read_text())
    assert card["inputs"][0]["range"] == [0.0, 1.0] and card["outputs"][0]["name"] == "edges"
    # trained and scanned letterboxed: the card said "resized to", and an app squashed its photos
    assert card["inputs"][0]["resize"]["method"] == "letterbox" and "letterboxed" in card["inputs"][0]["description"]
    int8 = [a for a in card["artifacts"] if a["variant"] == "int8"][0]
    assert int8["quantization"]["input"]["dtype"] == "int8"
    assert not [p for p in out.iterdir() if p.name.startswith(".edgepipe-tmp-")]
    import jsonschema
    schema_path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "schemas",
                               "model_card.schema.json")
    schema = json.loads(open(schema_path).read())
    jsonschema.validate(card, schema)
    bad = dict(card, inputs=[dict(card["inputs"][0], color_order="RGBA")])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
    import onnx
    props = {p.key: p.value for p in onnx.load(by[("onnx", "float32")]["path"]).metadata_props}
    assert json.loads(props["model_card"])["name"] == "hed_mobilenet_v2"


def test_bench_host_json(tmp_path, tiny_hed):
    from edgepipe.convert.formats import VARIANTS, export
    path = export(VARIANTS["tflite_float32"], tiny_hed, tmp_path / "m.tflite")
    proc = _run_cli(["bench", str(path), "--runs", "3", "--warmup", "1", "--json"])
    assert proc.returncode == 0, proc.stderr
    (result,) = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"model", "runtime", "threads", "p50_ms", "p90_ms", "mean_ms", "std_ms", "init_ms"} <= set(result)
    assert result["runtime"] == "litert" and result["threads"] == 1 and result["count"] == 3


def test_bench_missing_file_and_bad_threads(tmp_path):
    _assert_clean_error(_run_cli(["bench", str(tmp_path / "nope.tflite")]), "model not found")
    # a file that exists reaches TensorFlow's TFLite tools, whose start-up lines went to stderr unsilenced
    (tmp_path / "zero.tflite").write_bytes(b"")
    _assert_clean_error(_run_cli(["bench", str(tmp_path / "zero.tflite")]), "not a loadable TFLite model")
    assert main(["bench", "x.tflite", "--threads", "a,b"]) == 2


def test_bench_android_without_adb_says_so(tmp_path):
    model = tmp_path / "m.tflite"
    model.write_bytes(b"TFL3")
    env_path = os.environ.get("PATH", "")
    os.environ["PATH"] = "/nonexistent"
    try:
        assert main(["bench", str(model), "--device", "android"]) == 2
    finally:
        os.environ["PATH"] = env_path


def test_recipe_reference_is_generated_from_the_schema():
    from pathlib import Path

    from edgepipe.pipeline.recipe_docs import reference
    committed = (Path(__file__).resolve().parent.parent / "docs" / "recipe.md").read_text()
    assert committed == reference(), "run: python -m edgepipe.pipeline.recipe_docs > docs/recipe.md"


def test_every_shipped_recipe_is_valid():
    from pathlib import Path

    from edgepipe.pipeline.recipe import load_recipe
    from edgepipe.train.data import TASK_OF_KIND
    from edgepipe import mobile_models
    recipes = sorted((Path(__file__).resolve().parent.parent / "recipes").glob("*.yaml"))
    assert len(recipes) >= 3
    for path in recipes:
        r = load_recipe(path)
        assert mobile_models.entry(r.model.name).task == TASK_OF_KIND[r.data.kind], path.name


def test_a_recipe_may_merge_a_profile_but_not_give_a_key_twice(tmp_path):
    """Refusing a key given twice must not refuse YAML's merge key ('<<: *quick'), where a
    key given again overrides the merged one."""
    from edgepipe.base.errors import EdgePipeError
    from edgepipe.pipeline.recipe import DEFAULT_RECIPE, load_recipe
    text = DEFAULT_RECIPE.read_text().replace("  quick:", "  quick: &quick", 1)
    merged = tmp_path / "merged.yaml"
    merged.write_text(text.replace("\nexport:", "\n  fast:\n    <<: *quick\n    learning_rate: 0.001\nexport:", 1))
    recipe = load_recipe(merged, profile="fast")
    assert recipe.train.learning_rate == 0.001 and recipe.train.batch_size == 16
    (tmp_path / "twice.yaml").write_text(text + "name: again\n")
    with pytest.raises(EdgePipeError, match="the key 'name' is given twice"):
        load_recipe(tmp_path / "twice.yaml")
    # 1: and true: are two YAML keys and one Python key: one profile silently replaced the other
    (tmp_path / "one.yaml").write_text(text.replace("\nexport:", "\n  1: {}\n  true: {}\nexport:", 1))
    with pytest.raises(EdgePipeError, match="the key 'True' is the same key as '1'"):
        load_recipe(tmp_path / "one.yaml")


def test_escape_codes_in_a_path_reach_the_terminal_escaped(capsys):
    """A path with ESC sequences cleared the screen; one with a carriage return hid the error
    behind text of its own. The error stays one visible line."""
    assert main(["convert", "--model", "nope\x1b[2J\x1b[31m.keras", "--out", "x.tflite"]) == 2
    assert main(["convert", "--model", "evil.keras\redgepipe: all good", "--out", "x.tflite"]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\r" not in err and "nope\\x1b[2J" in err
    assert [line.startswith("edgepipe: error: ") for line in err.splitlines()] == [True, True]


def test_bundle_text_and_class_names_with_escape_codes_are_refused(tmp_path, capsys):
    """A recipe refused control characters in its bundle text; convert's flags and labels
    file wrote them into the card and metadata, to recolour whoever printed them."""
    from edgepipe.base.errors import EdgePipeError
    from edgepipe.cli.convert import read_labels
    assert main(["convert", "--model", "m.keras", "--out", "m.tflite", "--author", "me\x1b]0;T\x07"]) == 2
    assert "--author: author holds a control character" in capsys.readouterr().err
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\n\x1b[31mred\x1b[0m\n")
    with pytest.raises(EdgePipeError, match="control character"):
        read_labels(labels)
    with pytest.raises(EdgePipeError, match="is not a regular file"):
        read_labels(tmp_path)

"""report.json against its schema, and report.html rendered by a real headless
browser (Debian's chromium): the table and the plots must be on the page."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgepipe.cli.main import main
from edgepipe.pipeline.plots import pareto_front

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"


def _chromium():
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        from tests.conftest import _system_tool_missing
        _system_tool_missing("chromium")
    return exe


def _headless(exe, tmp_path, *args):
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--no-first-run", "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}"]
    return subprocess.run([exe, *flags, *args], capture_output=True, text=True, timeout=180)


def test_report_json_follows_its_schema(tiny_run):
    import jsonschema
    schema = json.loads((SCHEMAS / "report.schema.json").read_text())
    report = json.loads((tiny_run / "report.json").read_text())
    jsonschema.validate(report, schema)
    int8 = next(a for a in report["artifacts"] if a["variant"] == "int8")
    assert int8["gate"]["rule"].startswith("f_score_drop") and len(int8["layers"]) > 10
    assert int8["task"]["f_score_drop"] == pytest.approx(-int8["task"]["f_score_delta"])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(dict(report, artifacts=[dict(int8, status="done")]), schema)


def test_report_html_in_headless_chromium(tiny_run, tmp_path):
    from PIL import Image
    exe = _chromium()
    page = tiny_run / "report.html"
    text = page.read_text()
    assert 'src="http' not in text and 'href="http' not in text and "<script" not in text  # self-contained
    dom = _headless(exe, tmp_path, "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-500:]
    html = dom.stdout
    table = html[html.index('<table id="summary"'):html.index("</table>")]
    assert table.count("<tr>") == 1 + 5  # header + keras, tflite float32, int8, onnx, coreml
    assert "pass" in table and "not_run" not in table
    if sys.platform != "darwin":  # Core ML's row comes from the reference interpreter, and says so
        assert "numpy reference interpreter" in html
    for figure in ("pareto", "layer-errors", "latency", "scans", "loss"):
        start = html.index(f'<figure id="{figure}"')
        body = html[start:html.index("</figure>", start)]
        assert "<svg" in body or 'src="data:image/png;base64,' in body, figure
    shot = tmp_path / "report.png"
    result = _headless(exe, tmp_path, f"--screenshot={shot}", "--window-size=1200,3000", page.as_uri())
    assert result.returncode == 0 and shot.exists(), result.stderr[-500:]
    pixels = np.asarray(Image.open(shot).convert("L"), np.float32)
    assert pixels.shape == (3000, 1200)
    inked = (pixels < 200).mean(axis=1) > 0.01  # rows with visible content
    assert inked[:300].any() and inked[1000:2000].mean() > 0.3  # the title, and plots down the page


def test_report_command_rerenders(tiny_run, tmp_path, capsys):
    copy = tmp_path / "run"
    shutil.copytree(tiny_run, copy)
    (copy / "report.html").unlink()
    assert main(["report", str(copy)]) == 0
    assert (copy / "report.html").stat().st_size > 10_000
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert "report.json not found" in capsys.readouterr().err
    (copy / "report.json").write_text("[1, 2")
    assert main(["report", str(copy)]) == 2
    assert "is not an edgepipe report" in capsys.readouterr().err


def test_pareto_front():
    # (size, latency, accuracy): the int8 model is smallest, float fastest, keras dominated by float
    points = [(1.6, 3.4, 0.80), (1.2, 1.0, 0.80), (0.5, 1.4, 0.75), (1.2, 1.1, 0.70)]
    assert pareto_front(points) == [False, True, True, False]


def test_user_text_in_the_console_table_is_not_markup(capsys):
    # a recipe name or failure reason with "[/]" crashed rich after the whole run had finished
    from edgepipe.pipeline.report import artifact_entry, print_table, wide_console
    row = artifact_entry("tflite", "int8", None, "failed", "op [/] not [red]supported")
    print_table({"recipe": {"name": "x[/]<b>"}, "artifacts": [row]}, wide_console())
    out = capsys.readouterr().out
    assert "x[/]<b>" in out and "op [/] not [red]supported" in out


def _hostile_report() -> dict:
    """A hand-edited report.json that its schema allows: names that are HTML or TeX, an infinite PSNR."""
    row = {"format": "tflite", "variant": "$\\frac{$<img src=x>", "status": "ok", "reason": "", "path": "/etc/passwd",
           "size_bytes": 1000, "parity": {"psnr_db": "inf"}, "task": {"top1": 0.5, "confusion": [[1, 2], [3]]},
           "latency": {"p50_ms": 1.0, "samples_ms": [1.0, 2.0]},
           "layers": [{"layer": "$\\x{$", "op": "CONV_2D", "rmse_per_scale": 0.3}]}
    return {"recipe": {"name": "r", "hash": "h", "profile": "quick", "config": {"model": {}}},
            "artifacts": [row | {"format": "keras"}, row],
            "train": {"final_loss": 1.0, "loss": [1.0]}, "stages": {}, "timings_s": {},
            "task": {"name": "classify", "accuracy_key": "top1", "accuracy_label": "$\\foo{$",
                     "columns": [["<script>top-1</script>", "top1", ".1%"]]}}


def test_report_command_takes_a_hostile_report_json(tmp_path, capsys):
    # before: "<script>" went into a table header, "$\foo{$" into matplotlib's TeX parser (traceback),
    # "inf" into format(..., ".1f") (traceback), a ragged confusion matrix into numpy (traceback)
    (tmp_path / "report.json").write_text(json.dumps(_hostile_report()))
    assert main(["report", str(tmp_path)]) == 0
    page = (tmp_path / "report.html").read_text()
    assert "<script>" not in page and "<img src=x>" not in page and "&lt;script&gt;top-1" in page
    assert ">inf<" in page


@pytest.mark.parametrize("mutate, where", [
    (lambda r: r["task"].update(columns=[5]), "task/columns/0"),
    (lambda r: r["task"].update(columns=[["x", "top1", "{"]]), "task/columns/0/2"),        # a format() error
    (lambda r: r["artifacts"][0]["latency"].update(samples_ms=[1.0] * 1_000_001), "samples_ms"),
])
def test_report_json_out_of_bounds_is_one_line(tmp_path, capsys, mutate, where):
    report = _hostile_report()
    mutate(report)
    (tmp_path / "report.json").write_text(json.dumps(report))
    assert main(["report", str(tmp_path)]) == 2
    assert where in capsys.readouterr().err and not (tmp_path / "report.html").exists()


def test_report_opens_artifacts_only_in_its_run_folder(tmp_path):
    # report.json's paths may be relative to where the run started, or hand-edited to point anywhere
    from edgepipe.pipeline.html_report import _in_run
    (tmp_path / "m.tflite").write_bytes(b"x")
    assert _in_run("runs/elsewhere/m.tflite", tmp_path) == tmp_path / "m.tflite"
    assert _in_run("/etc/passwd", tmp_path) is None and _in_run(None, tmp_path) is None


def test_a_hand_edited_report_with_odd_but_valid_values_still_renders():
    """A validation curve longer than the training one, and a confusion count past int64:
    both passed the schema, and `edgepipe report` died in matplotlib with exit 1."""
    from edgepipe.pipeline.plots import confusion_svg, loss_svg
    assert "<svg" in loss_svg([1.0, 0.5], [0.9] * 50)
    assert "<svg" in confusion_svg([[10 ** 30, 1], [0, 2]])


def test_report_takes_the_trust_model_flag_its_refusal_names():
    """The sample scans re-run the run's export; for a Keras file with a Lambda layer the
    refusal said 'pass --trust-model', which `edgepipe report` did not accept."""
    from edgepipe.cli.main import build_parser
    assert build_parser().parse_args(["report", "run", "--trust-model"]).trust_model is True
    assert build_parser().parse_args(["report", "run"]).trust_model is False

"""`edgepipe run` tells the truth (issue #17): an interrupted export is never
recorded, so the next run makes the artifact; a failed release gate is exit 1,
named on stderr."""
import json
import os
import shutil
import signal

import yaml

from edgepipe.base import atomic
from edgepipe.cli.main import main
from tests.conftest import TINY


def _recipe(tmp_path, **verify):
    recipe = TINY | {"export": TINY["export"] | {"variants": ["tflite_float32", "coreml_fp16"]},
                     "verify": verify, "bench": {"warmup": 0, "runs": 1}}
    path = tmp_path / f"r{len(verify)}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def _swallowing_convert(real_convert):
    """coremltools' convert as it behaves under Ctrl-C: the KeyboardInterrupt is
    caught inside and turned into its own error (scripted here: the SIGINT is
    sent by the test itself, then swallowed the way coremltools does)."""
    def convert(*args, **kwargs):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            return real_convert(*args, **kwargs)
        except KeyboardInterrupt:
            raise RuntimeError("conversion failed") from None
    return convert


def test_interrupted_coreml_export_is_retried_and_failed_gates_exit_1(tmp_path, tiny_run, monkeypatch, capsys):
    import coremltools
    out = tmp_path / "run"
    shutil.copytree(tiny_run, out)  # trained on TINY: this recipe changes only its export and after
    shutil.rmtree(out / "hed_mobilenet_v2.mlpackage")
    before = json.loads((out / "manifest.json").read_text())["stages"]
    recipe = _recipe(tmp_path)
    with monkeypatch.context() as m:
        m.setattr(coremltools, "convert", _swallowing_convert(coremltools.convert))
        assert main(["run", "--recipe", str(recipe), "--out", str(out)]) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == "edgepipe: interrupted"
    stages = json.loads((out / "manifest.json").read_text())["stages"]
    assert stages["train"] == before["train"]
    assert stages["export"] == before["export"]  # interrupted: this export not recorded as done, nor as failed
    assert not (out / "hed_mobilenet_v2.mlpackage").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(atomic.TEMP_PREFIX)]

    # ... and the timing process dies (the out-of-memory killer, scripted by failing the measurement):
    # the bench stage was recorded done with no latency, and every rerun said 'bench: up to date'
    from edgepipe.base.errors import EdgePipeError
    from edgepipe.evaluate import latency

    def killed(*args, **kwargs):
        raise EdgePipeError("latency measurement failed: the timing process was killed (signal 9)")
    with monkeypatch.context() as m:
        m.setattr(latency, "measure_host", killed)
        code = main(["run", "--recipe", str(recipe), "--out", str(out)])
    err = capsys.readouterr().err
    assert atomic.is_mlpackage(out / "hed_mobilenet_v2.mlpackage"), err
    stages = json.loads((out / "manifest.json").read_text())["stages"]
    assert stages["export"] != before["export"] and "bench" not in stages
    assert code == (1 if "gate failed" in err else 0), err

    # a float32 gate no export can meet: the run exits 1 and names the export
    code = main(["run", "--recipe", str(_recipe(tmp_path, gate_atol=1e-12)), "--out", str(out)])
    said = capsys.readouterr()
    err = said.err
    assert code == 1, err
    assert "edgepipe: gate: tflite/float32: gate failed (max_abs" in err
    row = next(line for line in said.out.splitlines() if "tflite" in line and "float32" in line)
    assert "FAIL" in row and " ok " in row, row  # written, and failed its gate: the table said only "ok"
    report = json.loads((out / "report.json").read_text())
    tflite = next(a for a in report["artifacts"] if a["variant"] == "float32" and a["format"] == "tflite")
    assert not tflite["gate"]["pass"]
    assert tflite["latency"]["p50_ms"] > 0 and "bench" in json.loads((out / "manifest.json").read_text())["stages"]


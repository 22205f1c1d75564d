"""One installable package (issue #16): the wheel holds `edgepipe` and nothing
else at the top level, and it imports beside PyPI's `evaluate`."""
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYPI_EVALUATE = ROOT / ".venv" / "pypi-evaluate"  # installed by scripts/test.sh (pip --target, no deps)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    src = out / "src"  # setuptools builds in the source tree (build/, *.egg-info): build a copy
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", ".venv", "build", "runs", "*.egg-info",
                                                             "android_demo", "__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(out), str(src)], check=True, capture_output=True, cwd=out)
    (path,) = out.glob("edgepipe-*.whl")
    return path


def test_the_wheel_installs_only_edgepipe_at_the_top_level(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names}
    assert top == {"edgepipe", wheel.name.split("-py3")[0] + ".dist-info"}, top
    for sub in ("train", "convert", "quantize", "mobile_models", "evaluate", "pipeline", "base", "cli"):
        assert f"edgepipe/{sub}/__init__.py" in names
    assert "edgepipe/recipes/default.yaml" in names  # `edgepipe run` needs its default recipe once installed
    assert "edgepipe/evaluate/milref/ops.py" in names
    entry = zipfile.ZipFile(wheel).read(wheel.name.split("-py3")[0] + ".dist-info/entry_points.txt").decode()
    assert "edgepipe = edgepipe.cli.main:entry" in entry


@pytest.mark.skipif(not (PYPI_EVALUATE / "evaluate").is_dir(), reason="scripts/test.sh installs PyPI's evaluate")
def test_it_imports_beside_pypi_evaluate(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)  # what `pip install edgepipe.whl` puts in site-packages
    probe = (
        "import importlib.util, importlib.metadata as md, sys\n"
        f"assert importlib.util.find_spec('evaluate').origin.startswith({str(PYPI_EVALUATE)!r})\n"
        "import edgepipe, edgepipe.evaluate.parity, edgepipe.evaluate.gates, edgepipe.cli.main\n"
        f"assert edgepipe.__file__.startswith({str(site)!r}), edgepipe.__file__\n"
        "assert 'evaluate' not in sys.modules  # ours never binds the bare name\n"
        "assert importlib.util.find_spec('evaluate').origin.startswith("
        f"{str(PYPI_EVALUATE)!r})\n"
        "print(md.version('evaluate'))\n"
        "from edgepipe.pipeline.recipe import load_recipe; print(load_recipe().name)\n"
    )
    env = {"PYTHONPATH": f"{site}:{PYPI_EVALUATE}", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["0.4.6", "hed-documents"]


def test_help_answers_without_tensorflow():
    probe = ("import sys\nfrom edgepipe.cli.main import build_parser\nbuild_parser()\n"
             "from edgepipe import mobile_models\nassert len(mobile_models.names()) >= 7\n"
             "assert 'tensorflow' not in sys.modules, 'the CLI imported TensorFlow to build its parser'\n")
    subprocess.run([sys.executable, "-c", probe], check=True)

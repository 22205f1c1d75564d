"""Imports run down the data flow, never back up (DEVELOPERS.md, issue #16):
base -> mobile_models -> train -> quantize -> convert -> evaluate -> pipeline -> cli.
A module may import its own layer or any layer before it, at module level or
inside a function. Also: only edgepipe.base.backend imports TensorFlow/Keras."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# layer name -> folder in the repository (setuptools maps each into edgepipe.*)
LAYERS = {"base": "edgepipe/base", "mobile_models": "mobile_models", "train": "train", "quantize": "quantize",
          "convert": "convert", "evaluate": "evaluate", "pipeline": "pipeline", "cli": "edgepipe/cli"}
RANK = {name: i for i, name in enumerate(LAYERS)}
KERAS_MODULES = ("tensorflow", "tf_keras", "keras")  # tensorflow.lite.* schema helpers are not Keras


def imported_modules(path: Path):
    """(line, absolute module name) for every import in the file, nested ones included."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            if node.module == "edgepipe":  # from edgepipe import train
                yield from ((node.lineno, f"edgepipe.{a.name}") for a in node.names)


def layer_of(module: str):
    parts = module.split(".")
    if parts[0] != "edgepipe" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in RANK else None


def violations(layer: str, path: Path) -> list[str]:
    found = []
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    for line, module in imported_modules(path):
        target = layer_of(module)
        if target is not None and RANK[target] > RANK[layer]:
            found.append(f"{where}:{line} ({layer}) imports {module} ({target}), later in the flow")
        if (module in KERAS_MODULES or module.split(".")[0] in KERAS_MODULES[1:]) and path != ROOT / "edgepipe/base/backend.py":
            found.append(f"{where}:{line} imports {module}; only edgepipe.base.backend may")
        if module.split(".")[0] in {"mobile_models", "train", "quantize", "convert", "evaluate", "pipeline"}:
            found.append(f"{where}:{line} imports top-level {module}; use edgepipe.{module}")
    return found


def all_modules():
    for layer, folder in LAYERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield layer, path


def test_no_module_imports_against_the_flow():
    found = [v for layer, path in all_modules() for v in violations(layer, path)]
    assert not found, "\n".join(found)


def test_the_check_catches_an_upward_import(tmp_path):
    bad = tmp_path / "upward.py"
    bad.write_text("def f():\n    from edgepipe.pipeline.cards import bundle_meta\n    import tensorflow\n")
    found = violations("quantize", bad)
    assert len(found) == 2 and "later in the flow" in found[0] and "only edgepipe.base.backend" in found[1]


@pytest.mark.parametrize("folder", ["tests", "benchmarks", "scripts"])
def test_scripts_and_tests_use_the_namespace(folder):
    found = [v for path in sorted((ROOT / folder).rglob("*.py"))
             for v in violations("cli", path) if "top-level" in v]
    assert not found, "\n".join(found)

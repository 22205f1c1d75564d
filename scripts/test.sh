#!/usr/bin/env bash
# Quick start 2: install, then run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Google's TFLite metadata reader, used only by tests to check our writer. It pins
# protobuf<4, so it lives outside the environment, without its dependencies.
if [ ! -d .venv/reference/tensorflow_lite_support ]; then
  .venv/bin/python -m pip install --quiet --no-deps --target .venv/reference tflite-support==0.4.4
fi
# PyPI's `evaluate` (Hugging Face), whose name edgepipe once took: tests/test_packaging.py
# checks that both import side by side. Without its dependencies, beside the environment.
if [ ! -d .venv/pypi-evaluate/evaluate ]; then
  .venv/bin/python -m pip install --quiet --no-deps --target .venv/pypi-evaluate evaluate==0.4.6
fi
# two worker processes, one test file each (module fixtures are built once), the slowest files
# first (tests/conftest.py's SLOWEST_FIRST; xdist would order them by test count instead)
exec .venv/bin/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder --durations=15 "$@"

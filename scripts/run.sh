#!/usr/bin/env bash
# Quick start 1: install, then run the default pipeline on the embedded generated data.
# Extra arguments go to `edgepipe run` (for example --out DIR or --recipe FILE).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/edgepipe run "$@"

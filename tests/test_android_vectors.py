"""The Android core's parity vectors still hold for the Python quad finder.

The Java tests (android_demo/core/run_tests.sh, run by .ci/run) check the Java
finder against the same files, so together they keep both languages in step."""
from pathlib import Path

import numpy as np
import pytest

from edgepipe.mobile_models.docquad import find_quad

PARITY = Path(__file__).resolve().parent.parent / "android_demo/core/src/test/resources/parity"
ROWS = [line.split(",") for line in (PARITY / "expected.csv").read_text().splitlines()[1:] if line]


def _read_pgm(path):
    raw = path.read_bytes()
    parts = raw.split(b"\n", 3)
    w, h = map(int, parts[1].split())
    return np.frombuffer(parts[3], np.uint8).reshape(h, w)


def test_enough_vectors_of_each_kind():
    names = [r[0] for r in ROWS]
    assert len(names) >= 20
    assert any(n.startswith("hed_doc") for n in names) and any(n.startswith("none_") for n in names)
    assert any(n.startswith("thick_") for n in names) and any(n.startswith("broken_") for n in names)


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_python_finder_reproduces_the_vector(row):
    name, found = row[0], row[1] == "1"
    prob = _read_pgm(PARITY / f"{name}.pgm").astype(np.float32) / np.float32(255)
    r = find_quad(prob)
    assert r.found == found, r.reason
    if found:
        assert np.abs(r.corners.ravel() - np.array(row[2:10], float)).max() < 1e-3

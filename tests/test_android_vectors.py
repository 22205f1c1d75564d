"""The Android core's parity vectors still hold for the Python side: the quad
finder (with and without a letterbox roi), the letterbox geometry and mapping,
and the preprocessing path the app runs (letterbox, normalisation, quantization).

The Java tests (android_demo/core/run_tests.sh, run by .ci/run) check the Java
core against the same files, so together they keep both languages in step."""
import csv
import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest

from edgepipe.mobile_models.docquad import QuadParams, find_quad
from edgepipe.mobile_models.scan import Letterbox, expose, exposure_gain, letterbox, letterbox_geometry

PARITY = Path(__file__).resolve().parent.parent / "android_demo/core/src/test/resources/parity"
QUAD_FINDER_JAVA = PARITY.parents[2] / "main/java/dev/edgepipe/core/QuadFinder.java"
ROWS = [line.split(",") for line in (PARITY / "expected.csv").read_text().splitlines()[1:] if line]
PREP = list(csv.DictReader((PARITY / "preprocess.csv").read_text().splitlines()))
EXPOSURE = list(csv.DictReader((PARITY / "exposure.csv").read_text().splitlines()))


def _read_pnm(path):
    """Binary PGM (P5) or PPM (P6), 8-bit."""
    raw = path.read_bytes()
    parts = raw.split(b"\n", 3)
    w, h = map(int, parts[1].split())
    channels = 3 if parts[0] == b"P6" else 1
    return np.frombuffer(parts[3], np.uint8).reshape((h, w, channels) if channels == 3 else (h, w))


def _page(name):
    path = PARITY / f"{name}.page.pgm"
    return _read_pnm(path).astype(np.float32) / np.float32(255) if path.is_file() else None


def _image(name):
    path = PARITY / f"{name}.image.ppm"
    return _read_pnm(path) if path.is_file() else None


def _roi(row):
    return tuple(int(v) for v in row[10:14]) if len(row) >= 14 and row[10] else None


def test_enough_vectors_of_each_kind():
    names = [r[0] for r in ROWS]
    assert len(names) >= 20
    assert any(n.startswith("hed_doc") for n in names) and any(n.startswith("none_") for n in names)
    assert any(n.startswith("thick_") for n in names) and any(n.startswith("broken_") for n in names)
    assert sum(_roi(r) is not None for r in ROWS) >= 5
    assert sum("region_" in n for n in names) >= 3  # the finder's step 5, quads around closed outlines
    assert sum(_page(n) is not None for n in names) >= 3  # page-region maps beside the edges
    assert sum(_image(n) is not None for n in names) >= 6  # input images for step 9 (printed bands)
    assert {r["dtype"] for r in PREP} == {"float32", "int8", "uint8", "int16"}


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_python_finder_reproduces_the_vector(row):
    name, found = row[0], row[1] == "1"
    prob = _read_pnm(PARITY / f"{name}.pgm").astype(np.float32) / np.float32(255)
    r = find_quad(prob, roi=_roi(row), page=_page(name), image=_image(name))
    assert r.found == found, r.reason
    if found:
        assert np.abs(r.corners.ravel() - np.array(row[2:10], float)).max() < 1e-3


@pytest.mark.parametrize("row", [r for r in ROWS if r[0].startswith(("region_", "roi_region_"))],
                         ids=lambda r: r[0])
def test_region_vectors_exercise_step_5(row):
    """The drawn region_* pages are only found by step 5 (region quads); if a change to
    QuadParams makes the Hough path find them too, they no longer test the Java port of step 5."""
    prob = _read_pnm(PARITY / f"{row[0]}.pgm").astype(np.float32) / np.float32(255)
    with_regions = find_quad(prob, roi=_roi(row))
    without = find_quad(prob, QuadParams(regions=False), roi=_roi(row))
    assert with_regions.found
    assert not without.found or np.abs(without.corners - with_regions.corners).max() > 1


@pytest.mark.parametrize("row", [r for r in ROWS if _page(r[0]) is not None], ids=lambda r: r[0])
def test_page_vectors_exercise_the_page_score(row):
    """Each vector with a page map has a choice of quad the page map changes, so the Java
    port of the page score is really tested. The choice, before step 8 polishes it: two
    nearby choices may polish to the same ridge."""
    prob = _read_pnm(PARITY / f"{row[0]}.pgm").astype(np.float32) / np.float32(255)
    chosen = dataclasses.replace(QuadParams(), polish_iterations=0)
    with_page = find_quad(prob, chosen, roi=_roi(row), page=_page(row[0]))
    without = find_quad(prob, chosen, roi=_roi(row))
    assert with_page.found
    assert not without.found or np.abs(without.corners - with_page.corners).max() > 1


@pytest.mark.parametrize("row", [r for r in ROWS if _image(r[0]) is not None], ids=lambda r: r[0])
def test_band_vectors_exercise_step_9(row):
    """Each vector with an image moves a side past a printed band (step 9), or is the one
    that must not move (a rim beside the page on a plain surface), so the Java port of
    step 9 is tested both ways."""
    prob = _read_pnm(PARITY / f"{row[0]}.pgm").astype(np.float32) / np.float32(255)
    with_image = find_quad(prob, roi=_roi(row), image=_image(row[0]))
    without = find_quad(prob, roi=_roi(row))
    moved = np.abs(with_image.corners - without.corners).max()
    if "_none_" in row[0]:
        assert moved < 1e-9
    else:
        assert moved > 1


def test_java_params_defaults_equal_quad_params():
    """The vectors hold Python's answers with QuadParams' defaults; the Java finder runs them with
    Params' defaults, so a default tuned in one language must be tuned in the other."""
    src = QUAD_FINDER_JAVA.read_text()
    body = src[src.index("class Params"):src.index("class Result")]
    java = {re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name): value
            for name, value in re.findall(r"public \w+ (\w+) = ([^;]+);", body)}
    python = {f.name: f.default for f in dataclasses.fields(QuadParams)}
    assert java.keys() == python.keys()
    for name, default in python.items():
        want = str(default).lower() if isinstance(default, bool) else float(default)
        got = java[name] if isinstance(default, bool) else float(java[name].rstrip("fd"))
        assert got == want, f"QuadFinder.Params: {name} = {java[name]}, QuadParams: {default}"


def test_letterbox_geometry_and_mapping():
    lines = (PARITY / "letterbox.csv").read_text().splitlines()[1:]
    for line in filter(None, lines):
        v = [float(x) for x in line.split(",")]
        w, h, in_w, in_h = map(int, v[:4])
        box = letterbox_geometry(h, w, in_h, in_w)
        assert box.roi == tuple(int(x) for x in v[4:8]), line
        got = box.to_photo(np.array(v[8:18], np.float32).reshape(5, 2))
        assert np.allclose(got.ravel(), v[18:28], atol=1e-3, rtol=1e-6), line


@pytest.mark.parametrize("row", PREP, ids=[f"{r['name']}_{r['dtype']}" for r in PREP])
def test_python_preprocessing_reproduces_the_vector(row):
    """Letterbox as ``edgepipe scan``, then ``x = pixel * scale + bias`` and the
    quantization edgepipe's TFLite runner applies (np.round, clip)."""
    photo = _read_pnm(PARITY / f"prep_{row['name']}.ppm")
    boxed, box = letterbox(photo, int(row["in_h"]), int(row["in_w"]))
    assert box.roi == tuple(int(row[k]) for k in ("box_x", "box_y", "box_w", "box_h"))
    assert np.array_equal(boxed, _read_pnm(PARITY / f"prep_{row['name']}_boxed.ppm"))
    scale = np.array([float(row[f"scale_{c}"]) for c in "rgb"], np.float32)
    bias = np.array([float(row[f"bias_{c}"]) for c in "rgb"], np.float32)
    x = boxed.astype(np.float32) * scale + bias
    dtype = np.dtype(row["dtype"])
    if dtype != np.float32:
        info = np.iinfo(dtype)
        x = np.clip(np.round(x / float(row["q_scale"]) + int(row["q_zero_point"])), info.min, info.max)
    want = np.frombuffer((PARITY / f"prep_{row['name']}_{row['dtype']}.bin").read_bytes(), dtype.newbyteorder("<"))
    assert np.array_equal(x.astype(dtype).ravel(), want)


def test_exposure_vectors_cover_dark_and_lit_photos():
    gains = [float(r["gain"]) for r in EXPOSURE]
    assert min(gains) == 1.0 and max(gains) > 1.5  # lit photos are left alone, dark ones brightened


@pytest.mark.parametrize("row", EXPOSURE, ids=[r["name"] for r in EXPOSURE])
def test_python_exposure_reproduces_the_vector(row):
    """``scan.expose``: the gain from the photo's part of the letterboxed input, then
    floor(pixel * gain + 0.5); the Java core's Preprocess.expose must give the same bytes."""
    boxed = _read_pnm(PARITY / f"expose_{row['name']}.ppm")
    x, y, w, h = (int(row[k]) for k in ("box_x", "box_y", "box_w", "box_h"))
    assert exposure_gain(boxed[y:y + h, x:x + w]) == float(row["gain"])
    got = expose(boxed, Letterbox(x, y, w, h, w, h))
    assert np.array_equal(got, _read_pnm(PARITY / f"expose_{row['name']}_out.ppm"))
    assert np.array_equal(got[:y], boxed[:y]) and np.array_equal(got[:, :x], boxed[:, :x])  # bands untouched


def test_the_app_reads_every_quad_finder_setting_from_the_card():
    """The model card carries QuadParams (postprocessing.quad_finder); the app must read each
    key, or a run's tuned finder would silently run with the Java defaults on the phone."""
    kotlin = (PARITY.parents[4] / "app/src/main/java/dev/edgepipe/demo/ModelCard.kt").read_text()
    missing = [f.name for f in dataclasses.fields(QuadParams) if f'"{f.name}"' not in kotlin]
    assert not missing, f"ModelCard.kt does not read {missing}"

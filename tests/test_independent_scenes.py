"""The independent scene compositor of benchmarks/independent_scenes.py: labels are
the rendered page's corners, inside the frame, the same on every call, and the
compositor shares no code with the training renderer. No model needed."""
import ast
import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
PATH = ROOT / "benchmarks" / "independent_scenes.py"
FRAME = (640, 480)  # (height, width): a 480x640 portrait frame


@pytest.fixture(scope="module")
def scenes_module():
    spec = importlib.util.spec_from_file_location("independent_scenes", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def scenes(scenes_module):
    names = ("plain", "small_page", "strong_tilt", "occluded")
    return [scenes_module.compose(11, i, condition=name, frame=FRAME, keep_coverage=True)
            for i, name in enumerate(names)]


def test_shares_no_code_with_the_training_renderer():
    modules = set()
    for node in ast.walk(ast.parse(PATH.read_text())):
        if isinstance(node, ast.Import):
            modules |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            modules |= {node.module or ""} | {f"{node.module}.{a.name}" for a in node.names}
    assert not [m for m in modules if "docgen" in m or "phoneshots" in m]


def test_corners_inside_the_frame_and_ordered(scenes):
    h, w = FRAME
    for s in scenes:
        assert s.image.shape == (h, w, 3) and s.image.dtype == np.uint8
        c = s.corners
        assert c.shape == (4, 2) and np.all(c >= 0) and np.all(c[:, 0] <= w - 1) and np.all(c[:, 1] <= h - 1)
        assert int(np.argmin(c.sum(1))) == 0  # TL first
        x, y = c[:, 0], c[:, 1]
        assert np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y) > 0  # clockwise on screen (y down)


def test_deterministic(scenes_module, scenes):
    again = scenes_module.compose(11, 2, condition="strong_tilt", frame=FRAME)
    assert np.array_equal(again.image, scenes[2].image) and np.array_equal(again.corners, scenes[2].corners)
    other = scenes_module.compose(12, 2, condition="strong_tilt", frame=FRAME)
    assert not np.array_equal(other.corners, scenes[2].corners)
    assert scenes_module.compose(11, 5).condition == scenes_module.CONDITIONS[5]


def test_labels_match_the_rendered_page(scenes):
    for s in scenes:
        # the page's own coverage has the labelled quad's area and is whole well inside it
        area = cv2.contourArea(s.corners.astype(np.float32))
        assert abs(float(s.coverage.sum()) - area) < 0.002 * area + 2, s.condition
        mask = np.zeros(FRAME, np.uint8)
        cv2.fillPoly(mask, [np.round(s.corners * 16).astype(np.int32)], 1, shift=4)
        k = np.ones((5, 5), np.uint8)
        assert s.coverage[cv2.erode(mask, k) > 0].min() > 0.99
        assert s.coverage[cv2.dilate(mask, k) == 0].max() < 0.01
        # in the photo, the page's colour just inside the quad differs from just outside
        inner = (cv2.erode(mask, k, iterations=1) > 0) & (cv2.erode(mask, k, iterations=2) == 0)
        outer = (cv2.dilate(mask, k, iterations=2) > 0) & (cv2.dilate(mask, k, iterations=1) == 0)
        img = s.image.astype(np.float32)
        diff = np.abs(img[inner].mean(0) - img[outer].mean(0)).sum()
        assert diff > 15, (s.condition, diff)

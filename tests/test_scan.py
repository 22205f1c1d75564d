"""Document scanning end to end around the model: resize, quad finding, corner
scaling back to photo pixels, rectification, and the CLI's output contract."""
import json

import cv2
import numpy as np
import pytest

from edgepipe.evaluate.runners import TensorInfo
from edgepipe.mobile_models.scan import rectify, scan
from edgepipe.cli.main import main
from edgepipe.train.docgen import generate


class OracleEdgeRunner:
    """Stands in for a perfect HED: returns the generator's true edge map. It
    isolates everything scan does around the network."""
    runtime = "oracle"

    def __init__(self, edges):
        self.edges = edges.astype(np.float32)
        self.inputs = [TensorInfo("image", (1, *edges.shape, 3), "float32")]

    def predict(self, batch):
        return {"edges": self.edges[None, ..., None]}


@pytest.mark.parametrize("index", range(6))
def test_scan_recovers_known_corners_in_photo_pixels(index):
    s = generate(31337, index)
    photo = cv2.resize(s.image, (640, 480), interpolation=cv2.INTER_LINEAR)  # a non-square "camera" photo
    truth = s.corners * np.array([640 / 256, 480 / 256], np.float32)
    r = scan(photo, OracleEdgeRunner(s.edges))
    assert r.corners is not None, r.reason
    err = np.linalg.norm(r.corners - truth, axis=1).mean() / np.hypot(640, 480)
    assert err < 0.02
    assert r.page is not None and r.page.ndim == 3 and min(r.page.shape[:2]) > 20


def test_blank_image_reports_no_document():
    r = scan(np.zeros((300, 400, 3), np.uint8), OracleEdgeRunner(np.zeros((256, 256))))
    assert r.corners is None and r.page is None and r.reason


def test_rectify_flattens_a_known_quad():
    page = np.zeros((200, 300, 3), np.uint8)
    page[50:150, 100:200] = 255
    out = rectify(page, np.array([[100, 50], [199, 50], [199, 149], [100, 149]], np.float32))
    assert abs(out.shape[0] - 100) <= 1 and abs(out.shape[1] - 100) <= 1 and out.mean() > 250


def test_scan_cli_json_and_errors(tmp_path, tiny_hed, capsys):
    from edgepipe.convert.formats import VARIANTS, export
    model = export(VARIANTS["tflite_float32"], tiny_hed, tmp_path / "hed.tflite")
    photo = tmp_path / "blank.png"
    cv2.imwrite(str(photo), np.full((120, 160, 3), 128, np.uint8))
    assert main(["scan", str(photo), "--model", str(model), "--json", "-o", str(tmp_path / "page.png")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"corners"}
    assert out["corners"] is None or (len(out["corners"]) == 4 and (tmp_path / "page.png").exists())
    assert main(["scan", str(tmp_path / "missing.jpg"), "--model", str(model)]) == 2
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    assert main(["scan", str(tmp_path / "broken.jpg"), "--model", str(model)]) == 2

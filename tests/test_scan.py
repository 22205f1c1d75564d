"""Document scanning end to end around the model: resize, quad finding, corner
scaling back to photo pixels, rectification, and the CLI's output contract."""
import json

import cv2
import numpy as np
import pytest

from edgepipe.base.errors import EdgePipeError
from edgepipe.evaluate.runners import TensorInfo
from edgepipe.mobile_models.scan import letterbox, letterbox_geometry, rectify, scan
from edgepipe.cli.main import main
from edgepipe.train.docgen import generate


class OracleEdgeRunner:
    """Stands in for a perfect HED: draws the true quad into the letterboxed
    input's frame. It isolates everything scan does around the network."""
    runtime = "oracle"

    def __init__(self, photo_corners=None, photo_size=(480, 640), size=256):
        self.inputs = [TensorInfo("image", (1, size, size, 3), "float32")]
        self.edges = np.zeros((size, size), np.float32)
        if photo_corners is not None:
            box = letterbox_geometry(*photo_size, size, size)
            quad = np.round(box.to_input(photo_corners) * 16).astype(np.int32)
            cv2.polylines(self.edges, [quad], True, 1.0, 2, cv2.LINE_8, shift=4)

    def predict(self, batch):
        return {"edges": self.edges[None, ..., None]}


@pytest.mark.parametrize("index", range(6))
def test_scan_recovers_known_corners_in_photo_pixels(index):
    s = generate(31337, index)
    photo = cv2.resize(s.image, (640, 480), interpolation=cv2.INTER_LINEAR)  # a non-square "camera" photo
    truth = s.corners * np.array([640 / 256, 480 / 256], np.float32)
    r = scan(photo, OracleEdgeRunner(truth))
    assert r.corners is not None, r.reason
    err = np.linalg.norm(r.corners - truth, axis=1).mean() / np.hypot(640, 480)
    assert err < 0.02
    assert r.page is not None and r.page.ndim == 3 and min(r.page.shape[:2]) > 20


def test_letterbox_keeps_the_aspect_and_maps_points_back():
    photo = np.full((200, 100, 3), 200, np.uint8)  # portrait
    image, box = letterbox(photo, 64, 64)
    assert (box.x, box.y, box.w, box.h) == (16, 0, 32, 64)
    assert image[:, :16].max() == 0 and image[:, 48:].max() == 0 and image[:, 16:48].min() == 200
    pts = np.array([[0, 0], [100, 200], [50, 100]], np.float32)
    assert np.allclose(box.to_photo(box.to_input(pts)), pts, atol=1e-4)
    assert np.allclose(box.to_input(pts), [[16, 0], [48, 64], [32, 32]])


class RecordingRunner(OracleEdgeRunner):
    def predict(self, batch):
        self.seen = batch
        return super().predict(batch)


def test_a_dark_photo_is_brightened_before_the_network_and_a_lit_one_is_not():
    """Auto-exposure: the photo's part of the input is scaled so its brightest 1% reach
    EXPOSURE_TARGET (gain at most MAX_GAIN); the letterbox bands stay black; the corners
    come back in the photo's pixels either way."""
    from edgepipe.mobile_models.scan import EXPOSURE_TARGET, MAX_GAIN, exposure_gain
    s = generate(31337, 0)
    lit = cv2.resize(s.image, (640, 480), interpolation=cv2.INTER_AREA)
    lit[:80, :80] = 255  # a white patch, 2% of the photo: its brightest 1% is white, so well exposed
    dark = (lit * 0.25).astype(np.uint8)
    truth = s.corners * np.array([640 / 256, 480 / 256], np.float32)
    for photo, brightened in ((dark, True), (lit, False)):
        runner = RecordingRunner(truth)
        r = scan(photo, runner)
        boxed, box = letterbox(photo, 256, 256)
        seen = np.round(runner.seen[0] * 255).astype(np.uint8)
        content = seen[box.y:box.y + box.h, box.x:box.x + box.w]
        assert seen[:box.y].max() == 0  # bands untouched
        if brightened:
            p99 = np.percentile(content.astype(np.float32).mean(-1), 99)
            assert abs(p99 - EXPOSURE_TARGET) < 8 or exposure_gain(boxed[box.y:box.y + box.h]) == MAX_GAIN
        else:
            assert np.array_equal(seen, boxed)
        assert r.corners is not None and np.abs(r.corners - truth).max() < 0.02 * 800


def test_blank_image_reports_no_document():
    r = scan(np.zeros((300, 400, 3), np.uint8), OracleEdgeRunner())
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
    rc = main(["scan", str(photo), "--model", str(model), "--json", "-o", str(tmp_path / "page.png")])
    out = json.loads(capsys.readouterr().out)
    assert rc == (0 if out["corners"] else 1)  # 1: no page found, and nothing written
    assert set(out) == ({"corners"} if out["corners"] else {"corners", "reason"})
    assert (len(out["corners"]) == 4 and (tmp_path / "page.png").exists()) if out["corners"] else \
        not (tmp_path / "page.png").exists()
    assert main(["scan", str(tmp_path / "missing.jpg"), "--model", str(model)]) == 2
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    assert main(["scan", str(tmp_path / "broken.jpg"), "--model", str(model)]) == 2
    capsys.readouterr()
    assert main(["scan", str(photo), "--model", str(model), "-o", str(photo)]) == 2  # the photo is never the page
    err = capsys.readouterr().err
    assert "is the input" in err and "--out" not in err, err  # scan has no --out to name


def test_edges_and_page_are_told_apart_by_name():
    from edgepipe.base.errors import EdgePipeError
    from edgepipe.mobile_models.scan import edges_and_page
    e, p = np.zeros((1, 8, 8, 1)), np.ones((1, 8, 8, 1))
    assert edges_and_page({"page": p, "edges": e})[0] is e and edges_and_page({"page": p, "edges": e})[1] is p
    assert edges_and_page({"Identity": e}) == (e, None)  # a model of one output: its edge map
    assert edges_and_page({"Identity": np.zeros((1, 3)), "Identity_1": e}) == (e, None)  # its one map
    with pytest.raises(EdgePipeError, match="name it 'edges'"):
        edges_and_page({"a": e, "b": p})
    with pytest.raises(EdgePipeError, match=r"page-region map 'page' must have the edge map's shape"):
        edges_and_page({"edges": e, "page": np.ones((1, 4, 4, 1))})
    with pytest.raises(EdgePipeError, match=r"edge map must be \(N, H, W, 1\); it is \(1, 64\)"):
        edges_and_page({"edges": np.zeros((1, 64)), "page": p})


@pytest.mark.parametrize("dtype, floats", [("uint8", (0.0, 255.0)), ("int8", (-1.0, 1.0)), ("uint8", (0.0, 1.0))])
def test_a_quantized_input_without_a_card_is_fed_the_pixels_its_bytes_hold(tmp_path, dtype, floats):
    """A foreign int8/uint8-input TFLite with no card: its bytes are the pixels (int8:
    pixel - 128), whatever floats its quantization says they stand for. pixel / 255
    fed through a 0..255 or [-1, 1] input used a sliver of its range."""
    from edgepipe.base.backend import tf
    from edgepipe.cli.scan import pixel_spec
    from edgepipe.evaluate.runners import open_runner

    @tf.function(input_signature=[tf.TensorSpec((1, 16, 16, 3), tf.float32)])
    def edges(x):
        return tf.sigmoid(tf.reduce_mean(x, -1, keepdims=True))

    def calibration():
        for lo_hi in (floats, floats[::-1]):
            yield [np.linspace(*lo_hi, 16 * 16 * 3, dtype=np.float32).reshape(1, 16, 16, 3)]
    converter = tf.lite.TFLiteConverter.from_concrete_functions([edges.get_concrete_function()], edges)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = calibration
    converter.inference_input_type = getattr(tf, dtype)
    path = tmp_path / "foreign.tflite"
    path.write_bytes(converter.convert())
    runner = open_runner(path)
    pixels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1).repeat(3, -1)
    fed = runner._to_input(pixel_spec(path, runner).from_pixels(pixels)).astype(np.int32)
    np.testing.assert_array_equal(fed, pixels.astype(np.int32) - (128 if dtype == "int8" else 0))


def test_a_float_input_without_a_card_is_fed_pixel_over_255_and_says_so(tmp_path, capsys):
    """A plain converter's file has its Rescaling folded into the first conv: nothing in it
    says it takes raw pixels, and a page went unseen as 'too few edge pixels' without a word."""
    from edgepipe.base.backend import tf
    from edgepipe.cli.scan import pixel_spec
    from edgepipe.convert.inputspec import DEFAULT
    from edgepipe.evaluate.runners import open_runner

    @tf.function(input_signature=[tf.TensorSpec((1, 16, 16, 3), tf.float32)])
    def edges(x):
        return tf.sigmoid(tf.reduce_mean(x, -1, keepdims=True))
    path = tmp_path / "plain.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_concrete_functions([edges.get_concrete_function()], edges).convert())
    capsys.readouterr()
    assert pixel_spec(path, open_runner(path)) is DEFAULT
    err = capsys.readouterr().err
    assert "carries no model card" in err and "pixel / 255" in err and "edgepipe convert" in err


def test_an_edge_map_at_half_the_input_size_is_placed_on_the_photo_at_the_input_size():
    """A model whose map is half its input (a stride-2 head): corners were read as input
    pixels, so the page came out at half its size in the photo's top-left, exit 0."""
    s = generate(31337, 2)
    photo = cv2.resize(s.image, (640, 480), interpolation=cv2.INTER_LINEAR)
    truth = s.corners * np.array([640 / 256, 480 / 256], np.float32)
    half = OracleEdgeRunner(truth, size=128)
    half.inputs = [TensorInfo("image", (1, 256, 256, 3), "float32")]
    r = scan(photo, half)
    assert r.corners is not None, r.reason
    assert np.linalg.norm(r.corners - truth, axis=1).max() / np.hypot(640, 480) < 0.02
    squeezed = OracleEdgeRunner(truth, size=128)
    squeezed.edges = squeezed.edges[:, :100]
    squeezed.inputs = half.inputs
    with pytest.raises(EdgePipeError, match="another aspect"):
        scan(photo, squeezed)


def test_scan_moves_a_side_found_on_a_printed_band_out_to_the_page_edge():
    """Generated photo: a white page with a blue stripe printed up to its left edge, on a
    brown desk. The stand-in network fires on the stripe's inner edge, as the trained one
    does; scan reads the photo's pixels (the finder's step 9) and returns the page's corners."""
    page = np.array([[180, 90], [470, 110], [460, 400], [165, 385]], np.float32)  # photo pixels, 640x480
    stripe = 26  # px wide in the photo, about 10 in the network's input
    inner = page.copy()
    inner[0] += [stripe, 1]
    inner[3] += [stripe, 1]
    photo = np.empty((480, 640, 3), np.uint8)
    photo[:] = (110, 86, 64)
    cv2.fillPoly(photo, [page.astype(np.int32)], (245, 243, 236))
    cv2.fillPoly(photo, [np.array([page[0], inner[0], inner[3], page[3]], np.int32)], (40, 60, 150))
    r = scan(photo, OracleEdgeRunner(inner))
    assert r.corners is not None, r.reason
    assert np.abs(r.corners - page).max() < 8, r.corners          # the page, within 3 input px
    assert np.abs(r.corners[[0, 3], 0] - inner[[0, 3], 0]).min() > 15  # not the stripe's inner edge

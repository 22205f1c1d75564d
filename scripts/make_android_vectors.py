"""Write cross-language test vectors for the Android core's Java tests.

Quad finder: each vector is an 8-bit PGM edge map, an optional roi (the content
of a letterboxed input) and the Python quad finder's answer on that exact map
(probabilities = byte / 255), in expected.csv. The Java tests must find the same
corners within 1 px and the same "not found" cases. ``region_*`` vectors (and, with
--model, ``hed_region_*`` ones picked because it changes their answer) exercise the
finder's step 5, quads around closed edge outlines. ``page_*`` vectors (and, with
a --model that has a page-region output, ``hed_page_*`` ones picked because the
page map changes their answer) carry the page map beside the edge map, as
``NAME.page.pgm``. ``hed_band_*`` and ``hed_paper_*`` (with --band-model /
--paper-model) are real maps of independent scenes, with the input image as
``NAME.image.ppm``, picked because step 9 or the image's paper score changes
their answer.

Preprocessing (the path the app runs on every camera frame): small photos (PPM)
letterboxed into a model input as ``mobile_models/scan.py`` does it (area resize,
centred, black bands), normalised with the model card's formula and written in
each input type the pipeline makes (float32, int8, uint8, int16) with the
quantization edgepipe's TFLite runner applies; plus letterbox coordinate
mapping (preprocess.csv, letterbox.csv, prep_*.ppm / *.bin).

tests/test_android_vectors.py re-checks the Python side, so a change to either
language shows up in CI.

    python scripts/make_android_vectors.py [--model runs/default/hed_mobilenet_v2.tflite]
"""
import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "android_demo" / "core" / "src" / "test" / "resources" / "parity"

from edgepipe.mobile_models.docquad import find_quad  # noqa: E402
from edgepipe.mobile_models.scan import (edges_and_page, expose, exposure_gain, letterbox,  # noqa: E402
                                         letterbox_geometry)

DRAWN = {
    "axis_aligned": [[40, 30], [210, 30], [210, 225], [40, 225]],
    "rotated": [[70, 20], [230, 70], [180, 240], [20, 190]],
    "perspective": [[90, 40], [170, 45], [230, 220], [30, 210]],
    "small": [[100, 100], [160, 105], [155, 170], [98, 160]],
    "corner_out_of_frame": [[-20, 30], [200, 10], [230, 230], [20, 240]],
    "large": [[5, 8], [250, 4], [252, 250], [3, 247]],
    "perspective_small": [[60, 70], [140, 60], [165, 170], [65, 180]],
    "tiny": [[119, 127], [147, 140], [140, 159], [113, 145]],  # 1.2% of the frame: a receipt far away
    "steep": [[55, 61], [137, 77], [162, 230], [96, 173]],     # tilted ~60 degrees: a 29 degree corner
}
# small pages for the finder's step 5 (closed outlines), each in a clear patch of a busy scene
REGION_PAGES = {
    "shelves": [[100, 96], [158, 88], [165, 142], [105, 150]],
    "planks": [[150, 25], [215, 37], [206, 95], [140, 83]],
    "cup": [[140, 92], [196, 96], [192, 150], [136, 146]],
    "letterbox": [[96, 104], [150, 100], [154, 150], [100, 154]],
    "no_hough_line": [[110, 100], [154, 104], [151, 146], [107, 142]],  # drawn faint and broken: no Hough line
    "pole": [[126, 104], [154, 104], [157, 136], [128, 138]],
}


def _draw(corners, thickness=2, size=256):
    m = np.zeros((size, size), np.float32)
    cv2.polylines(m, [np.round(np.asarray(corners, np.float32) * 16).astype(np.int32)], True, 1.0, thickness,
                  cv2.LINE_8, shift=4)
    return m


def _dashed(corners, on=2, period=6, size=256):
    """A thin outline broken into short dashes: a faint page border in an HED map."""
    m = np.zeros((size, size), np.float32)
    corners = np.asarray(corners, np.float32)
    for a, b in zip(corners, np.roll(corners, -1, 0)):
        n = int(np.hypot(*(b - a)))
        for t in range(0, n, period):
            p, q = a + (b - a) * t / n, a + (b - a) * min(t + on, n) / n
            cv2.line(m, tuple(int(v) for v in np.round(p)), tuple(int(v) for v in np.round(q)), 1.0, 1)
    return m


def drawn_cases():
    cases = {f"drawn_{k}": _draw(v) for k, v in DRAWN.items()}
    for k in ("rotated", "perspective", "axis_aligned"):
        m = cv2.GaussianBlur(_draw(DRAWN[k], thickness=5), (0, 0), 2.0)
        cases[f"thick_{k}"] = m / m.max()
    for k, cols in (("perspective", slice(100, 130)), ("rotated", slice(60, 90))):
        m = _draw(DRAWN[k])
        m[:, cols] = 0
        cases[f"broken_{k}"] = m
    for name, side in (("bottom", 2), ("left", 3)):  # a hidden side (step 5 closes it through the stubs left)
        m = _draw(DRAWN["perspective"])
        c = np.asarray(DRAWN["perspective"], np.float32)
        a, b = c[side], c[(side + 1) % 4]
        cv2.line(m, tuple(int(v) for v in a), tuple(int(v) for v in b), 0.0, 5)
        cases[f"missing_side_{name}"] = m
    cases["cut_off_bottom"] = _draw([[90, 60], [170, 65], [230, 290], [30, 280]])  # the image border stands in
    m = _draw(DRAWN["axis_aligned"])
    for y in range(60, 200, 12):
        cv2.line(m, (60, y), (180, y), 1.0, 1)
    cases["clutter_text_lines"] = m
    m = _draw(DRAWN["perspective_small"])
    for a, b in (((0, 30), (255, 30)), ((200, 0), (200, 255))):  # tile grout / a table edge past two sides
        cv2.line(m, a, b, 1.0, 2)
    cases["background_lines"] = m
    m = _draw([[60, 80], [180, 80], [180, 200], [60, 200]])  # a shelf edge running on from a corner (step 8)
    cv2.line(m, (181, 80), (255, 88), 0.9, 2)
    cases["shelf_edge_past_the_corner"] = m
    rng = np.random.default_rng(0)
    blank = np.zeros((256, 256), np.float32)
    one = blank.copy()
    cv2.line(one, (10, 100), (240, 120), 1.0, 2)
    two = one.copy()
    cv2.line(two, (10, 180), (240, 190), 1.0, 2)
    # a receipt whose bottom side the network left blank, above a table edge, its corner on a
    # cable that leaves the frame (so no closed outline proposes it): step 4b closes it
    receipt = _draw([[0, 235], [255, 232], [255, 232], [0, 235]])
    cv2.polylines(receipt, [np.array([[98, 168], [100, 40], [150, 42], [148, 170]], np.int32)], False, 1.0, 2)
    cv2.line(receipt, (100, 40), (30, 0), 1.0, 2)
    cases["open_side_receipt_on_a_cable"] = receipt
    crossing = np.zeros((128, 128), np.float32)  # a small map: quads in the crossing's blur pass the area floor
    cv2.line(crossing, (30, 20), (100, 26), 1.0, 2)
    cv2.line(crossing, (100, 26), (104, 127), 1.0, 2)
    cases |= {"none_blank": blank, "none_noise": (rng.random((256, 256)) < 0.01).astype(np.float32),
              "none_one_line": one, "none_two_lines": two, "none_two_edges_meeting": crossing}
    return cases | region_cases()


def region_cases():
    """The finder's step 5: a small page whose closed outline is proposed as a connected
    region while the scene's long lines take every Hough slot (without step 5: not found)."""
    cases = {}
    m = _draw(REGION_PAGES["shelves"])
    for y in (10, 24, 38, 52, 66, 192, 206, 220, 234, 248):  # shelves above and below
        cv2.line(m, (0, y), (255, y + (y % 3) - 1), 1.0, 2)
    cases["region_page_among_shelves"] = m
    m = _draw(REGION_PAGES["planks"])
    for c in range(-160, 200, 14):  # floor planks at about -20 degrees, a clear patch round the page
        if not -70 <= c <= 40:
            cv2.line(m, (0, 140 + c), (255, 47 + c), 1.0, 2)
    cases["region_page_on_planks"] = m
    m = _draw(REGION_PAGES["cup"])
    cv2.ellipse(m, (60, 120), (30, 18), 0, 0, 360, 1.0, 2)  # a cup's rim: another closed outline, no page
    for y in (12, 26, 40, 54, 68, 196, 210, 224, 238):
        cv2.line(m, (0, y), (255, y), 1.0, 2)
    cases["region_page_and_cup_rim"] = m
    cases["region_page_without_hough_lines"] = _dashed(REGION_PAGES["no_hough_line"])
    # a faint page against a pole that runs out of the frame: its outline touches the frame, so
    # only the enclosed gap inside it proposes the page
    m = np.maximum(_dashed(REGION_PAGES["pole"]), _draw([[151, 0], [159, 255], [159, 255], [151, 0]]))
    cases["region_page_on_a_pole"] = m
    return cases


LANDSCAPE = letterbox_geometry(480, 640, 256, 256).roi   # a 4:3 phone frame in a square input
PORTRAIT = letterbox_geometry(640, 480, 256, 256).roi


def roi_cases():
    """Edge maps of letterboxed inputs, as (map, roi): edges in the bands are ignored and
    the roi's borders, not the map's, stand in for a hidden side."""
    cases = {"roi_landscape_drawn": (_draw([[50, 60], [200, 50], [215, 200], [40, 190]]), LANDSCAPE)}
    m = _draw([[60, 70], [190, 64], [200, 190], [55, 180]])
    for y in (6, 14, 240, 250):  # strong lines in the bands must not become sides
        cv2.line(m, (0, y), (255, y), 1.0, 2)
    cv2.line(m, (0, 0), (255, 28), 1.0, 2)
    cases["roi_landscape_band_clutter"] = (m, LANDSCAPE)
    m = _draw([[5, 40], [180, 30], [200, 220], [12, 230]])  # the left side lies in the band
    cases["roi_portrait_side_in_band"] = (m, PORTRAIT)
    m = _draw([[70, 90], [180, 95], [175, 170], [75, 165]])
    for y in (LANDSCAPE[1], LANDSCAPE[1] + LANDSCAPE[3] - 1):  # HED's response to the band's edge
        cv2.line(m, (0, y), (255, y), 0.8, 2)
    cases["roi_landscape_band_edges"] = (m, LANDSCAPE)
    m = np.zeros((256, 256), np.float32)
    for y in (5, 20, 235, 250):
        cv2.line(m, (0, y), (255, y), 1.0, 2)
    cv2.line(m, (40, 0), (200, 28), 1.0, 2)
    cases["roi_none_edges_only_in_bands"] = (m, LANDSCAPE)
    m = _draw(REGION_PAGES["letterbox"])  # step 5 inside a roi: a grid cell loses to the page's outline
    x, y, w, h = LANDSCAPE
    for yy in (6, 14, 242, 250):  # lines in the bands are not the page's
        cv2.line(m, (0, yy), (255, yy), 1.0, 2)
    for yy in (44, 58, 72, 86):  # shelves above the page
        cv2.line(m, (0, yy), (255, yy - 3), 1.0, 2)
    for xx in (20, 34, 48, 62):  # a radiator's fins crossing them
        cv2.line(m, (xx, y), (xx + 2, y + h), 1.0, 2)
    cv2.rectangle(m, (180, 170), (240, 240), 1.0, 2)  # a box running out of the photo: touches the roi
    cases["roi_region_page_in_letterbox"] = (m, LANDSCAPE)
    return cases


def _fill(corners, size=256, blur=4.0):
    """A soft page-region map like the network's: the quad filled, blurred."""
    m = np.zeros((size, size), np.float32)
    cv2.fillPoly(m, [np.round(np.asarray(corners, np.float32) * 16).astype(np.int32)], 1.0, cv2.LINE_8, shift=4)
    return cv2.GaussianBlur(m, (0, 0), blur)


def page_cases():
    """Drawn edge maps whose answer the page map changes: (edges, roi, page)."""
    page = [[60, 40], [150, 40], [150, 200], [60, 200]]
    framed = np.maximum(_draw(page), _draw([[40, 25], [200, 25], [200, 225], [40, 225]]))  # a picture frame
    tilted = [[70, 60], [180, 50], [190, 200], [80, 210]]
    on_book = np.maximum(_draw(tilted), _draw([[45, 40], [215, 28], [228, 226], [52, 236]]))  # a book under it
    on_book[190:215, 120:150] = 0  # a thumb over the page's bottom side
    return {"page_in_picture_frame": (framed, None, _fill(page)),
            "page_on_a_book": (on_book, None, _fill(tilted)),
            "page_in_letterbox": (framed, (0, 8, 256, 240), _fill(page))}


def _scene(corners, band=None, surface=(96, 84, 70), rim=None, size=256):
    """A generated input image: a white page on a plain surface, with a printed ``band``
    (side k, width px, RGB) along one side up to the paper's edge, or a ``rim`` (a dark
    line parallel to side k, px outside it) on the surface beside the page."""
    rng = np.random.default_rng(1)
    img = np.empty((size, size, 3), np.float32)
    img[:] = surface
    c = np.asarray(corners, np.float32)
    if rim is not None:
        k, gap = rim
        a, b = c[k], c[(k + 1) % 4]
        n = np.array([b[1] - a[1], a[0] - b[0]]) / np.linalg.norm(b - a)
        n = n if (a - c.mean(0)) @ n > 0 else -n
        ends = [a - 0.4 * (b - a) + gap * n, b + 0.4 * (b - a) + gap * n]
        cv2.line(img, *[tuple(int(v) for v in np.round(e)) for e in ends], (30, 24, 20), 3)
    cv2.fillPoly(img, [np.round(c * 16).astype(np.int32)], (246, 244, 238), cv2.LINE_AA, shift=4)
    if band is not None:
        k, width, colour = band
        inner = _inset(c, k, width)
        strip = np.array([c[k], c[(k + 1) % 4], inner[(k + 1) % 4], inner[k]])
        cv2.fillPoly(img, [np.round(strip * 16).astype(np.int32)], colour, cv2.LINE_AA, shift=4)
    img = cv2.GaussianBlur(img, (0, 0), 0.7) + rng.normal(0, 2.0, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def _inset(corners, k, width):
    """``corners`` with side k moved ``width`` px inward (its neighbours' lines kept)."""
    c = np.asarray(corners, np.float64)
    a, b = c[k], c[(k + 1) % 4]
    n = np.array([b[1] - a[1], a[0] - b[0]]) / np.linalg.norm(b - a)
    n = n if (c.mean(0) - a) @ n > 0 else -n
    out = c.copy()
    for i, j in ((k, k - 1), ((k + 1) % 4, (k + 2) % 4)):  # slide corner i along its other side j
        d = c[j % 4] - c[i]
        out[i] = c[i] + d * width / abs(d @ n)
    return out


def band_cases():
    """The finder's step 9 on generated images: (edges, roi, page, image). The network fires on
    a printed band's inner edge, so the map is drawn there; past the band the image has the
    page's edge. And a page beside a saucer's rim on a plain surface, which must not move."""
    page = [[60, 50], [190, 60], [184, 214], [52, 204]]
    cases = {}
    for name, (k, width, colour) in {"band_side_stripe": (3, 10, (40, 60, 150)),
                                     "band_header": (0, 12, (180, 40, 40)),
                                     "band_footer_in_letterbox": (2, 9, (30, 120, 60))}.items():
        roi = (0, 24, 256, 208) if "letterbox" in name else None
        image = _scene(page, band=(k, width, colour))
        if roi:
            image[:roi[1]], image[roi[1] + roi[3]:] = 0, 0
        cases[name] = (_draw(_inset(page, k, width)), roi, None, image)
    cases["band_none_rim_beside_the_page"] = (_draw(page), None, None, _scene(page, rim=(1, 9)))
    # the same, cut by a letterbox: a band's pad is a colour step of its own, so the cut corner cannot tell
    cut = (0, 52, 256, 158)
    image = _scene(page, rim=(1, 9))
    image[:cut[1]], image[cut[1] + cut[3]:] = 0, 0
    cases["band_none_rim_page_cut_by_letterbox"] = (_draw(page), cut, None, image)
    return cases


def hed_step_cases(model_path, prefix, without, seed, count=4, scan=160):
    """Real HED edge maps of independent scenes (``benchmarks/independent_scenes.py``,
    letterboxed and exposed as ``edgepipe scan`` feeds them) whose answer a finder step
    changes: ``without`` holds the QuadParams fields that turn the step off."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import independent_scenes
    from edgepipe.evaluate.runners import open_runner
    from edgepipe.mobile_models.docquad import QuadParams
    runner = open_runner(model_path)
    cases = {}
    for i in range(scan):
        image, box = letterbox(independent_scenes.compose(seed, i).image, 256, 256)
        image = expose(image, box)
        prob = _as_stored(_edges(runner, image[None])[0, ..., 0])
        with_step = find_quad(prob, roi=box.roi, image=image)
        without_step = find_quad(prob, QuadParams(**without), roi=box.roi, image=image)
        if with_step.found and without_step.found and np.abs(with_step.corners - without_step.corners).max() > 1:
            cases[f"{prefix}_{len(cases):02d}"] = (prob, box.roi, None, image)
        if len(cases) == count:
            break
    return cases


def hed_cases(model_path, count=8):
    """Real HED edge maps: square generated documents, and 4:3 crops of them letterboxed
    as ``edgepipe scan`` and the app feed a phone frame."""
    from edgepipe.evaluate.runners import open_runner
    from edgepipe.train.docgen import generate
    runner = open_runner(model_path)
    docs = [generate(20_000, i).image for i in range(count)]
    probs = _edges(runner, np.stack(docs))
    cases = {f"hed_doc_{i:02d}": (probs[i, ..., 0], None) for i in range(count)}
    boxed = [letterbox(d[32:224], 256, 256) for d in docs[:4]]  # 256x192: a landscape frame
    probs = _edges(runner, np.stack([b[0] for b in boxed]))
    cases |= {f"hed_lb_doc_{i:02d}": (probs[i, ..., 0], b[1].roi) for i, b in enumerate(boxed)}
    return cases | hed_region_cases(runner) | hed_page_cases(runner)


def _edges(runner, images):
    return edges_and_page(runner.predict(images.astype(np.float32) / 255.0))[0]


def _as_stored(prob):
    """Probabilities as the PGM stores them (byte / 255)."""
    return np.round(np.clip(prob, 0, 1) * 255).astype(np.float32) / np.float32(255)


def hed_page_cases(runner, count=4, scan=96):
    """Real HED edge and page maps on which the page map changes the finder's answer:
    the first ``count`` of ``scan`` held-out generated scenes (none if the model has no page output)."""
    from edgepipe.train.docgen import generate
    cases = {}
    for start in range(0, scan, 16):
        images = np.stack([generate(20_000, i, composition="heldout").image for i in range(start, start + 16)])
        edges, page = edges_and_page(runner.predict(images.astype(np.float32) / 255.0))
        if page is None:
            return {}
        for prob, region in zip(_as_stored(edges[..., 0]), _as_stored(page[..., 0])):
            with_page, without = find_quad(prob, page=region), find_quad(prob)
            if with_page.found != without.found or (
                    with_page.found and np.abs(with_page.corners - without.corners).max() > 1):
                cases[f"hed_page_{len(cases):02d}"] = (prob, None, region)
            if len(cases) == count:
                return cases
    return cases


def hed_region_cases(runner, count=3, scan=48):
    """Real HED edge maps on which the finder's step 5 (region quads) changes the answer:
    the first ``count`` of ``scan`` held-out generated scenes (tile floors, plain desks)."""
    from edgepipe.mobile_models.docquad import QuadParams
    from edgepipe.train.docgen import generate
    docs = [generate(20_000, i, composition="heldout").image for i in range(scan)]
    cases = {}
    for start in range(0, scan, 16):
        batch = np.stack(docs[start:start + 16]).astype(np.float32) / 255.0
        for prob in _as_stored(edges_and_page(runner.predict(batch))[0][..., 0]):
            with_regions, without = find_quad(prob), find_quad(prob, QuadParams(regions=False))
            if with_regions.found != without.found or (
                    with_regions.found and np.abs(with_regions.corners - without.corners).max() > 1e-3):
                cases[f"hed_region_{len(cases):02d}"] = (prob, None)
            if len(cases) == count:
                return cases
    return cases


def write_pgm(path, prob):
    data = np.clip(np.round(prob * 255), 0, 255).astype(np.uint8)
    path.write_bytes(f"P5\n{data.shape[1]} {data.shape[0]}\n255\n".encode() + data.tobytes())
    return data


def read_ppm(path):
    raw = path.read_bytes()
    parts = raw.split(b"\n", 3)
    w, h = map(int, parts[1].split())
    return np.frombuffer(parts[3], np.uint8).reshape(h, w, 3)


def read_pgm(path):
    raw = path.read_bytes()
    parts = raw.split(b"\n", 3)
    w, h = map(int, parts[1].split())
    return np.frombuffer(parts[3], np.uint8).reshape(h, w)


# (name, photo w, photo h, input w, input h): every path OpenCV's INTER_AREA takes
PHOTOS = [("shrink_landscape", 61, 45, 24, 24),    # non-integer shrink, bands top and bottom
          ("shrink_portrait", 30, 52, 16, 20),     # non-integer shrink, bands left and right
          ("shrink_2x", 64, 48, 32, 32),           # integer 2x2 blocks
          ("shrink_3x", 96, 72, 32, 32),           # integer 3x3 blocks
          ("enlarge", 10, 7, 24, 24),              # a photo smaller than the input
          ("enlarge_x_only", 31, 13, 32, 32)]      # wider by 1/31, same height: the linear path
IMAGENET = ([1 / (255 * s) for s in (0.229, 0.224, 0.225)], [-m / s for m, s in ((0.485, 0.229), (0.456, 0.224),
                                                                                    (0.406, 0.225))])
# (dtype, per-channel scale, per-channel bias, quantization scale, zero point): the card's
# normalisation and the input tensor's quantization, as the pipeline's exports carry them
INPUT_TYPES = [("float32", [1 / 255] * 3, [0.0] * 3, 0.0, 0),
               ("int8", [1 / 255] * 3, [0.0] * 3, 0.003921568859368563, -128),
               ("uint8", [1 / 255] * 3, [0.0] * 3, 0.003921568859368563, 0),
               ("int16", *IMAGENET, 2.7 / 32767, 0)]
LETTERBOXES = [(640, 480, 256, 256), (480, 640, 256, 256), (1920, 1080, 256, 256), (1000, 1000, 256, 256),
               (100, 50, 320, 240), (3, 1000, 256, 256), (4032, 3024, 224, 224), (257, 100, 256, 256),
               (255, 101, 256, 256), (300, 301, 256, 192), (37, 23, 24, 24)]
PREPROCESS_HEADER = ("name,dtype,photo_w,photo_h,in_w,in_h,box_x,box_y,box_w,box_h,scale_r,scale_g,scale_b,"
                     "bias_r,bias_g,bias_b,q_scale,q_zero_point")


def _photo(w, h, seed):
    """A small RGB photo with smooth gradients and sharp detail, so rounding shows."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / max(w - 1, 1), yy * 255 / max(h - 1, 1), (xx + yy) % 256], -1)
    return np.clip(base * 0.6 + rng.integers(0, 102, (h, w, 3)), 0, 255).astype(np.uint8)


def model_input(boxed, dtype, scale, bias, q_scale, zero):
    """The card's formula in float32, then the input tensor's quantization exactly as
    edgepipe's TFLite runner applies it (round half to even, clip)."""
    x = boxed.astype(np.float32) * np.array(scale, np.float32) + np.array(bias, np.float32)
    if dtype == "float32":
        return x
    info = np.iinfo(dtype)
    return np.clip(np.round(x / float(np.float32(q_scale)) + zero), info.min, info.max).astype(dtype)


def write_ppm(path, rgb):
    path.write_bytes(f"P6\n{rgb.shape[1]} {rgb.shape[0]}\n255\n".encode() + rgb.tobytes())


def _f32(v) -> str:
    return repr(float(np.float32(v)))


def write_preprocess_vectors() -> int:
    rows = []
    for i, (name, w, h, in_w, in_h) in enumerate(PHOTOS):
        photo = _photo(w, h, i)
        boxed, box = letterbox(photo, in_h, in_w)
        write_ppm(OUT / f"prep_{name}.ppm", photo)
        write_ppm(OUT / f"prep_{name}_boxed.ppm", boxed)
        for dtype, scale, bias, q_scale, zero in INPUT_TYPES:
            x = model_input(boxed, dtype, scale, bias, q_scale, zero)
            (OUT / f"prep_{name}_{dtype}.bin").write_bytes(x.astype(x.dtype.newbyteorder("<")).tobytes())
            rows.append(",".join([name, dtype, *map(str, (w, h, in_w, in_h, *box.roi)), *map(_f32, scale),
                                  *map(_f32, bias), _f32(q_scale), str(zero)]))
    (OUT / "preprocess.csv").write_text(PREPROCESS_HEADER + "\n" + "\n".join(rows) + "\n")
    (OUT / "exposure.csv").write_text("\n".join(exposure_rows()) + "\n")
    (OUT / "letterbox.csv").write_text("\n".join(letterbox_rows()) + "\n")
    return len(rows)


EXPOSURE_LEVELS = (("dark", 0.3), ("dim", 0.55), ("lit", 1.0))  # a photo dimmed by this factor


def exposure_rows():
    """Auto-exposure (``scan.expose``) on letterboxed photos dimmed to several levels:
    the boxed input, the gain and the exposed input (expose_*.ppm, exposure.csv)."""
    rows = ["name,in_w,box_x,box_y,box_w,box_h,gain"]
    for i, (name, w, h, in_w, in_h) in enumerate(PHOTOS):
        for level, factor in EXPOSURE_LEVELS:
            boxed, box = letterbox((_photo(w, h, i) * factor).astype(np.uint8), in_h, in_w)
            gain = exposure_gain(boxed[box.y:box.y + box.h, box.x:box.x + box.w])
            write_ppm(OUT / f"expose_{name}_{level}.ppm", boxed)
            write_ppm(OUT / f"expose_{name}_{level}_out.ppm", expose(boxed, box))
            rows.append(",".join(map(str, (f"{name}_{level}", in_w, *box.roi))) + f",{gain!r}")
    return rows


def letterbox_rows():
    """Geometry and Letterbox.to_photo on the input's corners and centre, per photo shape."""
    rows = ["photo_w,photo_h,in_w,in_h,box_x,box_y,box_w,box_h,input points (x y)*5,photo points (x y)*5"]
    for w, h, in_w, in_h in LETTERBOXES:
        box = letterbox_geometry(h, w, in_h, in_w)
        pts = np.array([[0, 0], [in_w - 1, 0], [in_w - 1, in_h - 1], [0, in_h - 1], [in_w / 2, in_h / 3]],
                       np.float32)
        mapped = box.to_photo(pts)
        rows.append(",".join(map(str, (w, h, in_w, in_h, *box.roi)))
                    + "," + ",".join(f"{v:.6f}" for v in pts.ravel())
                    + "," + ",".join(f"{v:.6f}" for v in mapped.ravel()))
    return rows


EXPECTED_HEADER = "name,found,x0,y0,x1,y1,x2,y2,x3,y3,roi_x,roi_y,roi_w,roi_h"


def expected_row(name, data, roi=None, page=None, image=None):
    """``data``, ``page``: the stored bytes of the edge map and the page map (or None);
    ``image``: the input image (RGB bytes) for step 9, or None."""
    page = None if page is None else page.astype(np.float32) / np.float32(255)
    r = find_quad(data.astype(np.float32) / np.float32(255), roi=roi, page=page, image=image)
    coords = ",".join(f"{v:.4f}" for v in r.corners.ravel()) if r.found else ",,,,,,,"
    return f"{name},{int(r.found)},{coords},{','.join(str(int(v)) for v in roi) if roi else ',,,'}"


def _earlier_rois():
    """The roi of each vector in the current expected.csv: real HED maps are kept between runs."""
    path = OUT / "expected.csv"
    rows = [ln.split(",") for ln in path.read_text().splitlines()[1:] if ln] if path.is_file() else []
    return {r[0]: tuple(int(v) for v in r[10:14]) if len(r) >= 14 and r[10] else None for r in rows}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", help="exported HED (.tflite/.onnx) for real edge maps")
    ap.add_argument("--band-model", help="exported HED for real edge maps on which step 9 moves a side "
                    "(hed_band_*; the other hed_* vectors stay)")
    ap.add_argument("--paper-model", help="exported HED for real edge maps whose answer the image's paper "
                    "score changes (hed_paper_*; the other hed_* vectors stay)")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    cases = {k: (v, None) for k, v in drawn_cases().items()} | roi_cases() | page_cases() | band_cases()
    cases |= hed_cases(args.model) if args.model else {}
    cases |= hed_step_cases(args.band_model, "hed_band", {"band_max_px": 0}, seed=2) if args.band_model else {}
    cases |= hed_step_cases(args.paper_model, "hed_paper", {"paper_weight": 0}, seed=1) if args.paper_model else {}
    rows = []
    for name, (prob, roi, *extra) in cases.items():
        page, image = (extra + [None, None])[:2]
        page = write_pgm(OUT / f"{name}.page.pgm", page) if page is not None else None
        if image is not None:
            write_ppm(OUT / f"{name}.image.ppm", image)
        rows.append(expected_row(name, write_pgm(OUT / f"{name}.pgm", prob), roi, page, image))
    # real HED maps written earlier (with --model) stay; their answers are recomputed
    earlier = _earlier_rois()
    for p in sorted(OUT.glob("hed_*.pgm")):
        name = p.name[:-len(".pgm")]
        if name not in cases and not name.endswith(".page"):
            page, image = OUT / f"{name}.page.pgm", OUT / f"{name}.image.ppm"
            rows.append(expected_row(name, read_pgm(p), earlier.get(name), read_pgm(page) if page.is_file() else None,
                                     read_ppm(image) if image.is_file() else None))
    (OUT / "expected.csv").write_text(EXPECTED_HEADER + "\n" + "\n".join(rows) + "\n")
    n_prep = write_preprocess_vectors()
    print(f"wrote {len(rows)} quad-finder vectors and {n_prep} preprocessing vectors to {OUT}")


if __name__ == "__main__":
    main()

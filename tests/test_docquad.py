import cv2
import numpy as np
import pytest

from itertools import permutations

from edgepipe.mobile_models.docquad import QuadParams, _candidate_quads, find_quad, order_corners


def _draw(corners, size=256, thickness=2, prob=1.0):
    m = np.zeros((size, size), np.float32)
    cv2.polylines(m, [np.round(np.asarray(corners) * 16).astype(np.int32)], True, prob, thickness,
                  cv2.LINE_8, shift=4)
    return m


def _max_err(found, truth):
    return np.abs(found - order_corners(truth)).max()


QUADS = {
    "axis_aligned": [[40, 30], [210, 30], [210, 225], [40, 225]],
    "rotated": [[70, 20], [230, 70], [180, 240], [20, 190]],
    "perspective": [[90, 40], [170, 45], [230, 220], [30, 210]],
    "small": [[100, 100], [160, 105], [155, 170], [98, 160]],
    "corner_out_of_frame": [[-20, 30], [200, 10], [230, 230], [20, 240]],
    "tiny": [[119, 127], [147, 140], [140, 159], [113, 145]],    # 1.2% of the frame: a receipt far away
}
STEEP = [[55, 61], [137, 77], [162, 230], [96, 173]]  # a page tilted ~60 degrees away: corners of 29-70 degrees


def _side_lines(corners):
    """The four sides of a quad as (rho, theta) lines."""
    c = np.asarray(corners, np.float64)
    out = []
    for a, b in zip(c, np.roll(c, -1, 0)):
        normal = np.array([b[1] - a[1], a[0] - b[0]]) / np.hypot(*(b - a))
        out.append((float(normal @ a), float(np.arctan2(normal[1], normal[0]))))
    return out


def _quads_from(lines, params=QuadParams()):
    return [order_corners(q) for q, _ in _candidate_quads(lines, params, [(0, 1, 2, 3)])]


def test_a_steeply_tilted_page_is_a_candidate_whatever_the_order_of_its_lines():
    truth = order_corners(STEEP)
    for order in permutations(_side_lines(STEEP)):
        assert any(np.abs(q - truth).max() < 1e-3 for q in _quads_from(list(order))), order


def test_a_corner_sharper_than_the_limit_is_refused_whatever_the_order_of_the_lines():
    sliver = [[40, 100], [220, 100], [200, 140], [60, 110]]  # sides 15 degrees apart at the last corner
    for order in permutations(_side_lines(sliver)):
        assert _quads_from(list(order)) == [], order


@pytest.mark.parametrize("name", QUADS)
def test_finds_drawn_quads(name):
    truth = np.array(QUADS[name], np.float32)
    r = find_quad(_draw(truth))
    assert r.found, r.reason
    assert _max_err(r.corners, truth) < 2.5


def test_thick_soft_edges_like_hed_output():
    truth = np.array(QUADS["rotated"], np.float32)
    m = cv2.GaussianBlur(_draw(truth, thickness=5), (0, 0), 2.0)
    m /= m.max()
    r = find_quad(m)
    assert r.found and _max_err(r.corners, truth) < 3


def test_broken_edges_are_bridged():
    truth = np.array(QUADS["perspective"], np.float32)
    m = _draw(truth)
    m[:, 100:130] = 0  # a gap through two sides
    r = find_quad(m)
    assert r.found and _max_err(r.corners, truth) < 3


def test_clutter_inside_the_page_does_not_win():
    truth = np.array(QUADS["axis_aligned"], np.float32)
    m = _draw(truth)
    for y in range(60, 200, 12):  # text lines
        cv2.line(m, (60, y), (180, y), 1.0, 1)
    r = find_quad(m)
    assert r.found and _max_err(r.corners, truth) < 3


def test_background_lines_past_the_page_do_not_win():
    """Long lines beyond two sides (tile grout, a table edge) close a larger quad
    with the page's other sides; it has more edge pixels but gaps where the page's
    sides are extended, so the page must still win."""
    truth = np.array([[60, 70], [140, 60], [165, 170], [65, 180]], np.float32)
    m = _draw(truth)
    cv2.line(m, (0, 30), (255, 30), 1.0, 2)
    cv2.line(m, (200, 0), (200, 255), 1.0, 2)
    r = find_quad(m)
    assert r.found and _max_err(r.corners, truth) < 3


@pytest.mark.parametrize("case", ["blank", "noise", "one_line", "two_lines"])
def test_not_found(case):
    rng = np.random.default_rng(0)
    m = np.zeros((256, 256), np.float32)
    if case == "noise":
        m = (rng.random((256, 256)) < 0.01).astype(np.float32)
    elif case == "one_line":
        cv2.line(m, (10, 100), (240, 120), 1.0, 2)
    elif case == "two_lines":
        cv2.line(m, (10, 100), (240, 120), 1.0, 2)
        cv2.line(m, (10, 180), (240, 190), 1.0, 2)
    r = find_quad(m)
    assert not r.found and r.corners is None and r.reason


def test_a_map_that_is_mostly_edge_is_no_page():
    """A segmentation head's map over 0.25 everywhere (what a non-edge model gives) made a
    thin quad out of nothing; a real edge map has under 15% of its pixels over the threshold."""
    m = np.full((128, 160), 0.6, np.float32)
    m[::7] = 0.2  # stripes, so Hough finds lines if the finder looks
    r = find_quad(m)
    assert not r.found and "saturated" in r.reason
    drawn = _draw(QUADS["rotated"])
    assert find_quad(drawn).found and find_quad(drawn, QuadParams(max_edge_frac=0.01)).reason.startswith("edge map saturated")


def test_non_finite_input_is_not_found():
    m = _draw(QUADS["rotated"])
    m[0, 0] = np.nan
    assert not find_quad(m).found


def test_order_corners_from_any_permutation():
    truth = np.array(QUADS["rotated"], np.float32)
    for perm in ([2, 0, 3, 1], [3, 2, 1, 0], [1, 3, 0, 2]):
        assert np.allclose(order_corners(truth[perm]), truth)


@pytest.mark.parametrize("end", [(255, 84), (255, 88), (250, 90)])
def test_each_side_is_fitted_to_its_own_pixels_not_a_line_running_on_past_the_corner(end):
    """A shelf edge that runs on from the page's corner, a few degrees off the top side, pulled
    the whole-line fit by a pixel or more; step 8 refits each side to its own pixels."""
    from dataclasses import replace
    corners = np.array([[60, 80], [180, 80], [180, 200], [60, 200]], float)
    m = _draw(corners)
    cv2.line(m, (181, 80), end, 0.9, 2)
    polished, chosen = find_quad(m), find_quad(m, replace(QuadParams(), polish_iterations=0))
    assert np.abs(polished.corners - corners).max() < 0.25 < 1.0 < np.abs(chosen.corners - corners).max()


def test_a_side_out_of_frame_falls_back_to_the_image_border():
    """The page runs off the bottom of the photo: three sides are seen, the image's
    bottom border stands in for the fourth."""
    import cv2
    edges = np.zeros((128, 128), np.float32)
    tl, tr, br, bl = (30, 20), (100, 26), (104, 127), (24, 127)
    for a, b in ((bl, tl), (tl, tr), (tr, br)):  # no bottom side
        cv2.line(edges, a, b, 1.0, 2)
    r = find_quad(edges)
    assert r.found, r.reason
    assert np.abs(r.corners - np.array([tl, tr, br, bl], np.float32)).max() < 3
    assert np.allclose(r.corners[2:, 1], 127, atol=1)


def test_border_fallback_does_not_invent_a_page_from_two_lines():
    import cv2
    edges = np.zeros((128, 128), np.float32)
    cv2.line(edges, (30, 20), (100, 26), 1.0, 2)
    cv2.line(edges, (100, 26), (104, 127), 1.0, 2)
    assert not find_quad(edges).found


def test_a_small_page_among_long_background_lines_is_found_by_its_outline():
    """Long background lines (a facade's perspective lines) fill the Hough
    line budget before a small page's short sides get in; the page's closed
    outline still proposes it (step 5)."""
    import cv2
    from edgepipe.mobile_models.docquad import QuadParams
    edges = np.zeros((256, 256), np.float32)
    for deg in (-20, -7, 7, 20):  # converging far to the left: no quad among them
        angle = np.deg2rad(deg)
        cv2.line(edges, (-300, 128), (int(-300 + 900 * np.cos(angle)), int(128 + 900 * np.sin(angle))), 1.0, 2)
    page = np.array([[150, 10], [190, 14], [186, 50], [146, 46]], np.float32)
    cv2.polylines(edges, [np.round(page).astype(np.int32)], True, 1.0, 2)
    budget = QuadParams(max_lines=4)
    found = find_quad(edges, budget)
    assert found.found and np.abs(found.corners - page).max() < 2, found
    assert not find_quad(edges, QuadParams(max_lines=4, regions=False)).found


def test_a_page_with_no_hough_line_is_found_by_its_outline():
    """A faint, broken page border (the dashed outline of the Java parity vector
    ``region_page_without_hough_lines``): no side gets the Hough vote minimum (0.12
    of the side), so there is no straight line at all; the dilated outline is still
    closed, so step 5 finds the page. Without step 5 the reason names the lines."""
    from edgepipe.mobile_models.docquad import QuadParams
    from tests.test_android_vectors import PARITY, _read_pnm
    page = np.array([[110, 100], [154, 104], [151, 146], [107, 142]], np.float32)
    edges = _read_pnm(PARITY / "region_page_without_hough_lines.pgm").astype(np.float32) / 255
    found = find_quad(edges)
    assert found.found and _max_err(found.corners, page) < 2, found
    without = find_quad(edges, QuadParams(regions=False))
    assert not without.found and without.reason == "only 0 straight edges found"


def _fill(corners, size=256):
    m = np.zeros((size, size), np.float32)
    cv2.fillPoly(m, [np.round(np.asarray(corners) * 16).astype(np.int32)], 1.0, cv2.LINE_8, shift=4)
    return m


def test_the_page_map_picks_the_page_inside_a_larger_outline():
    """A page inside a picture frame: on edges alone the frame, with more supported
    perimeter, wins; the page-region map says which outline holds the page."""
    truth = np.array([[60, 40], [150, 40], [150, 200], [60, 200]], np.float32)
    frame = np.array([[40, 25], [200, 25], [200, 225], [40, 225]], np.float32)
    edges = np.maximum(_draw(truth), _draw(frame))
    assert _max_err(find_quad(edges).corners, frame) < 3
    page = cv2.GaussianBlur(_fill(truth), (0, 0), 4.0)  # a soft, coarse region like the network's
    r = find_quad(edges, page=page)
    assert r.found and _max_err(r.corners, truth) < 3


def test_a_page_map_of_the_wrong_shape_is_refused():
    truth = np.array(QUADS["axis_aligned"], np.float32)
    r = find_quad(_draw(truth), page=np.zeros((128, 128), np.float32))
    assert not r.found and r.reason == "page map is (128, 128), the edge map (256, 256)"
    nan = _fill(truth)
    nan[0, 0] = np.nan
    assert find_quad(_draw(truth), page=nan).reason == "page map has NaN or infinite values"



def test_a_tiny_quad_where_two_edges_cross_is_no_page():
    """Lines through the blur where two edges cross bound quads a few pixels across;
    with the area floor low enough for a far-away receipt, the side floor refuses them."""
    edges = np.zeros((128, 128), np.float32)
    cv2.line(edges, (30, 20), (100, 26), 1.0, 2)
    cv2.line(edges, (100, 26), (104, 127), 1.0, 2)
    assert find_quad(edges, QuadParams(min_side_px=0)).found  # what the floor is there for
    assert not find_quad(edges).found


def test_a_page_whose_outline_runs_on_out_of_the_frame_is_found_by_the_gap_inside_it():
    """A faint page (dashed: its short sides win no Hough vote) against a pole that
    runs out of the frame: the outline touches the frame, so its own quad is not
    proposed; the enclosed gap inside it is."""
    truth = np.array([[126, 104], [154, 104], [157, 136], [128, 138]], np.float32)
    edges = np.zeros((256, 256), np.float32)
    for a, b in zip(truth, np.roll(truth, -1, 0)):
        n = int(np.hypot(*(b - a)))
        for t in range(0, n, 6):
            p, q = a + (b - a) * t / n, a + (b - a) * min(t + 2, n) / n
            cv2.line(edges, tuple(int(v) for v in np.round(p)), tuple(int(v) for v in np.round(q)), 1.0, 1)
    cv2.line(edges, (151, 0), (159, 255), 1.0, 2)
    r = find_quad(edges)
    assert r.found, r.reason
    assert _max_err(r.corners, truth) < 3


RECEIPT = [[100, 40], [150, 42], [148, 170], [98, 168]]


def _receipt_without_its_bottom_side():
    """A receipt whose bottom side the network left blank, above a table edge, one corner on a
    cable that leaves the frame (so its outline is no closed region for step 5)."""
    m = np.zeros((256, 256), np.float32)
    cv2.polylines(m, [np.array(RECEIPT, np.int32)[[3, 0, 1, 2]]], False, 1.0, 2)
    cv2.line(m, (0, 235), (255, 232), 1.0, 2)
    cv2.line(m, (100, 40), (30, 0), 1.0, 2)
    return m


def test_a_side_left_blank_is_closed_where_the_two_sides_beside_it_end():
    m = _receipt_without_its_bottom_side()
    assert _max_err(find_quad(m).corners, RECEIPT) <= 3
    without = find_quad(m, QuadParams(open_gap_px=0))  # what step 4b is for: the sides ran on to the table
    assert without.found and _max_err(without.corners, RECEIPT) > 50


def test_a_side_that_runs_out_of_the_frame_has_no_end_to_close_a_page_at():
    from edgepipe.mobile_models.docquad import LineRuns, _dilate
    m = np.zeros((256, 256), bool)
    m[100, 50:256] = True   # runs to the border: it leaves the photo
    m[150, 50:201] = True   # ends inside the frame
    m[150, 209:231] = True  # past a gap: the same stretch (8 px, 4 after the support map's dilation)
    m[150, 245:256] = True  # past a gap of 10 after dilation: another, which runs out of the frame
    support = _dilate(m, 2)
    along_x = (np.pi / 2)   # normal straight down: lines y = rho, sampled along -x
    frame = (0, 0, 256, 256)
    runs = LineRuns((100.0, along_x), support, frame, gap=8, inset=2)
    assert runs.end((50.0, 100.0), -1) is None and runs.end((50.0, 100.0), +1) is not None  # to x=48 (inset)
    runs = LineRuns((150.0, along_x), support, frame, gap=8, inset=2)
    end = runs.end((50.0, 150.0), -1)
    assert end is not None and abs(end[0] - 230) <= 1 and abs(end[1] - 150) < 1e-6
    assert runs.end((40.0, 150.0), -1) is not None and runs.end((38.0, 150.0), -1) is None  # must start near


def test_a_line_with_no_edge_pixels_and_a_zero_suppression_radius_do_not_break_the_finder():
    from edgepipe.mobile_models.docquad import LineRuns
    assert LineRuns((10.0, 0.0), np.zeros((50, 60), bool), (0, 0, 60, 50), 8, 2).end((10.0, 5.0), 1) is None
    m = _draw(QUADS["axis_aligned"])
    found = find_quad(m, QuadParams(nms_rho=0, nms_theta_deg=0, support_tol=0))  # a peak suppresses itself
    assert found.found and _max_err(found.corners, QUADS["axis_aligned"]) <= 3


def test_the_vectorised_line_test_agrees_with_the_scalar_one():
    # same_line_as (Hough suppression) restates same_line (refinement, step 4b, the Java
    # port) for speed; lines near both thresholds keep the two from drifting apart.
    from edgepipe.mobile_models.docquad import same_line, same_line_as
    rng = np.random.default_rng(0)
    params, center = QuadParams(), (128.0, 96.0)
    rhos, thetas = rng.uniform(-300, 300, 4000), rng.uniform(0, np.pi, 4000)
    for r2, t2 in zip(rng.uniform(-300, 300, 40), rng.uniform(0, np.pi, 40)):
        near_t = (t2 + rng.normal(0, 0.2, 200)) % np.pi  # many pairs close in angle
        near_r = r2 + rng.normal(0, 15, 200)
        rs, ts = np.concatenate([rhos[:200], near_r]), np.concatenate([thetas[:200], near_t])
        fast = same_line_as(rs, ts, (r2, t2), center, params)
        slow = [same_line((r, t), (r2, t2), center, params) for r, t in zip(rs, ts)]
        assert fast.tolist() == slow
        assert 0 < fast.sum() < len(fast)


def _page_on(surface, corners, band=None):
    """A generated input image: a white page on ``surface`` (HxWx3), with a printed band
    (the strip between the page's left side and ``band``'s x offset) in blue."""
    img = surface.copy()
    c = np.asarray(corners, np.int32)
    cv2.fillPoly(img, [c], (246, 244, 238))
    if band:
        cv2.fillPoly(img, [np.array([c[0], c[0] + [band, 0], c[3] + [band, 0], c[3]], np.int32)], (40, 60, 150))
    return img


PAGE = [[60, 50], [190, 50], [190, 210], [60, 210]]


def test_a_band_on_a_busy_surface_is_not_taken_for_the_page():
    """Step 9 moves a side only across one printed colour that also reaches both corners. On a
    noisy surface (a photo's texture), a line past the side must not pull it out; a page with
    a real stripe on the same surface still moves."""
    rng = np.random.default_rng(0)
    surface = rng.integers(60, 200, (256, 256, 3)).astype(np.uint8)
    inner = [[70, 50], [190, 50], [190, 210], [70, 210]]
    plain = find_quad(_draw(PAGE), image=_page_on(surface, PAGE))
    assert np.abs(plain.corners - np.array(PAGE)).max() < 1.5
    striped = find_quad(_draw(inner), image=_page_on(surface, PAGE, band=10))
    assert np.abs(striped.corners - np.array(PAGE)).max() < 1.5, striped.corners
    off = find_quad(_draw(inner), QuadParams(band_max_px=0), image=_page_on(surface, PAGE, band=10))
    assert np.abs(off.corners - np.array(inner)).max() < 1.5


def test_an_image_that_is_not_the_maps_rgb_input_is_refused():
    for image in (np.zeros((128, 128, 3), np.uint8), np.zeros((256, 256), np.uint8),
                  np.zeros((256, 256, 4), np.uint8), np.zeros((256, 256, 3), np.float32)):  # [0, 1] floats
        r = find_quad(_draw(PAGE), image=image)
        assert not r.found and "image is" in r.reason


def test_the_image_keeps_a_page_from_joining_a_background_line_past_its_side():
    """A page in front of a doorway whose jambs run on from its sides to the lintel: on
    edges alone the larger quad (page sides, jambs and lintel, all supported) wins. In the
    generated image only the page's quad has paper just inside every side."""
    lintel = [[60, 20], [190, 20], [190, 210], [60, 210]]
    edges = np.maximum(_draw(PAGE), _draw(lintel))
    surface = np.full((256, 256, 3), (90, 95, 100), np.uint8)
    image = _page_on(surface, PAGE)
    alone = find_quad(edges, QuadParams(paper_weight=0), image=image)
    assert np.abs(alone.corners - np.array(lintel)).max() < 1.5
    with_image = find_quad(edges, image=image)
    assert np.abs(with_image.corners - np.array(PAGE)).max() < 1.5, with_image.corners

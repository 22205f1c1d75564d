"""Document-quad finder: HED edge map -> four ordered corners, or "not found".

The algorithm is plain numpy so that the Java core of ``android_demo`` can mirror
it line by line:
1. threshold the edge map, low (0.25): on photos unlike training a page's
   weaker sides fall under 0.5 and the finder then builds the quad from background lines;
2. Hough transform (1 px x 1 degree), peaks with non-maximum suppression;
3. refine each line by a weighted least-squares fit to nearby edge pixels;
4. for every 4 lines and each way to split them into two opposite pairs, the
   quad of their intersections; keep convex quads with plausible angles and area;
4b. for every two roughly parallel lines and a third crossing both (three sides
   of a page), follow each of the two from its corner along its edge pixels, over
   gaps up to ``open_gap_px``, to where it ends: the line through the two ends is a
   fourth side, where the edge map has none (a pale page edge on a pale desk, a
   shadow, a side the network missed);
5. also, for every connected outline of edge pixels that stays inside the frame,
   the quad of its extreme points, each side snapped to the edge ridge: a small
   page in a busy scene is a closed outline whose short sides lose the Hough vote
   to the scene's long lines (buildings, tile grout, shelves); and for every
   enclosed gap between edges shaped like a quad (a page's interior), its quad
   snapped out to the ridge, for an outline joined to an edge that leaves the frame;
6. score each by its in-frame perimeter: samples on an edge minus ``miss_penalty``
   times samples off any edge; pick the best-scoring quad among those with at
   least ``min_support`` of the perimeter on edges, else report "not found".
   Penalising gaps keeps the page's sides, extended to meet background lines
   (floor tile grout, a cup's rim, another object), from outscoring the page just
   because the larger quad has more supported pixels. Given the input image, each
   sample also scores ``paper_weight`` times how much the pixel just inside looks
   like the quad's paper (the median colour just inside its sides) minus how much
   the pixel just outside does: a quad closed on a background line has the world,
   not paper, inside that side, and a frame printed inside a page has paper on
   both sides of it;
7. if no quad is found (a side out of frame or hidden), try three lines plus one
   image border, scoring only the three real sides;
8. polish the chosen quad: refit each side to the edge pixels along that side
   alone (between its corners, less ``polish_trim`` at each end), not along the
   whole line, where a background edge in line with the side tilts the fit; then
   intersect the new sides, at most ``polish_iterations`` times, keeping a
   corner within ``polish_max_move`` px of where it was chosen;
9. given the input image, a side found on a printed band's inner edge (a flyer's
   stripe, a form's frame) moves out to the page's edge past the band
   (``bands.py``), up to ``band_max_px``.

With the network's page-region map (HED's ``page`` output), each perimeter
sample also scores ``page_weight`` times (page probability ``page_offset`` px
inside the side minus ``page_offset`` px outside it): a true page side separates
page from world, while a background line or a fold inside the page has the same
region on both sides. Step 4's candidates then stop winning on edges alone.
"""
from dataclasses import dataclass
import math
from bisect import bisect_left, bisect_right
from itertools import combinations

import numpy as np

from edgepipe.mobile_models.bands import band_shifts, outward_normal

THETAS = np.deg2rad(np.arange(180, dtype=np.float64))
COS, SIN = np.cos(THETAS), np.sin(THETAS)
EDGES, PAGE = "edges", "page"  # an HED export's outputs: edge map, and page-region map if it has one


@dataclass(frozen=True)
class QuadParams:
    threshold: float = 0.25         # low: a pale or blurred page side is a weak edge, and the perimeter score rejects noise
    max_lines: int = 10
    nms_rho: float = 10.0
    nms_theta_deg: float = 10.0
    min_votes_frac: float = 0.12   # of the image side
    max_edge_frac: float = 0.4     # of the frame: real edge maps stay under 0.15; more is not an edge map
    min_area_frac: float = 0.006   # of the frame: a receipt at arm's length in a 12 MP frame is ~1%
    min_side_px: float = 10.0       # shorter sides are the blur where two edges cross, not a page
    min_pair_angle_deg: float = 20.0  # a page tilted 60 degrees away has corners this sharp in the photo
    max_parallel_deg: float = 50.0
    support_tol: int = 2
    min_support: float = 0.5
    miss_penalty: float = 2.0      # score = supported - miss_penalty * unsupported perimeter samples
    roi_margin: int = 2            # edge pixels this close to a letterbox band are the band's, not the page's
    regions: bool = True           # also propose quads around connected edge outlines (step 5)
    open_gap_px: int = 8           # step 4b follows a side over gaps this long; 0 turns step 4b off
    page_weight: float = 1.0       # score per sample for page inside minus page outside (page map only)
    page_offset: float = 4.0       # px from the side where the page map is read: past its blurred transition
    polish_iterations: int = 3     # step 8; 0 turns it off
    polish_band: float = 2.0       # px either side of a side whose edge pixels are refitted
    polish_trim: float = 0.1       # of the side's length, left out at each end: the blur where two edges cross
    polish_max_move: float = 8.0   # px: a corner the refit would move further is left where it was
    band_max_px: int = 20          # step 9: the widest printed band a side moves across; 0 turns step 9 off
    band_step: float = 40.0        # RGB distance (0-255) across the page's edge past the band
    band_spread: float = 18.0      # median RGB distance of the band's pixels from its colour: one printed colour
    band_match: float = 30.0       # RGB distance between the band and what lies inside its corners' extension
    paper_weight: float = 1.0      # score per sample for "paper inside, not outside", read from the input image
    paper_offset: float = 4.0      # px from the side where the image is read
    paper_sigma: float = 30.0      # RGB distance at which a pixel stops looking like the quad's paper


@dataclass(frozen=True)
class QuadResult:
    corners: np.ndarray | None  # 4x2 TL TR BR BL, or None when not found
    support: float
    reason: str = ""

    @property
    def found(self) -> bool:
        return self.corners is not None


def order_corners(pts) -> np.ndarray:
    """Clockwise (image coordinates, y down) starting from the top-left-most corner."""
    pts = np.asarray(pts, np.float32).reshape(4, 2)
    c = pts.mean(0)
    pts = pts[np.argsort(np.arctan2(pts[:, 1] - c[1], pts[:, 0] - c[0]))]
    start = int(np.argmin(pts[:, 0] + pts[:, 1]))
    return np.roll(pts, -start, axis=0)


def hough_lines(binary: np.ndarray, params: QuadParams, max_peaks: int = 30):
    """Strongest lines as (rho, theta) with x*cos(theta) + y*sin(theta) = rho,
    strongest first, with duplicates (same line, other pivot) suppressed."""
    ys, xs = np.nonzero(binary)
    h, w = binary.shape
    diag = int(np.ceil(np.hypot(h, w)))
    votes = np.multiply.outer(xs.astype(np.float64), COS)  # in place: the busiest lines of the finder
    votes += np.multiply.outer(ys.astype(np.float64), SIN)
    cells = np.rint(votes, out=votes).astype(np.int32)
    cells += diag
    cells *= 180
    cells += np.arange(180, dtype=np.int32)
    acc = np.bincount(cells.ravel(), minlength=(2 * diag + 1) * 180)
    # the 4000 strongest cells, ties in index order (a stable sort of all, without sorting all)
    top = min(4000, acc.size)
    strong = np.flatnonzero(acc >= max(_kth_smallest(acc, acc.size - top), params.min_votes_frac * min(h, w)))
    order = strong[np.argsort(-acc[strong], kind="stable")][:top]
    rhos, thetas = (order // 180 - diag).astype(np.float64), THETAS[order % 180]
    alive, lines = np.ones(len(order), bool), []
    while len(lines) < max_peaks and alive.any():
        k = int(np.argmax(alive))  # the strongest peak no line found so far suppresses
        lines.append((float(rhos[k]), float(thetas[k])))
        alive &= ~same_line_as(rhos, thetas, lines[-1], (w / 2, h / 2), params)
        alive[k] = False  # itself, even with a suppression radius of 0
    return lines


def _kth_smallest(counts: np.ndarray, k: int) -> int:
    """``np.partition(counts, k)[k]`` for non-negative integer counts, by counting them:
    partitioning an accumulator of mostly zeros took a third of the finder's time."""
    return int(np.searchsorted(np.cumsum(np.bincount(counts)), k, side="right"))


def same_line_as(rhos, thetas, line, center, params) -> np.ndarray:
    """``same_line`` of each (rhos[i], thetas[i]) and ``line``, vectorised: the peak
    search tests thousands of peaks against each line it keeps."""
    r2, t2 = line
    d = np.abs(thetas - t2) % math.pi
    close_angle = np.degrees(np.minimum(d, math.pi - d)) < params.nms_theta_deg
    c1, s1, c2, s2 = np.cos(thetas), np.sin(thetas), math.cos(t2), math.sin(t2)
    d1 = c1 * center[0] + s1 * center[1] - rhos
    d2 = c2 * center[0] + s2 * center[1] - r2
    d2 = np.where(c1 * c2 + s1 * s2 < 0, -d2, d2)  # opposite normals describe the same direction
    return close_angle & (np.abs(d1 - d2) < params.nms_rho)


def same_line(l1, l2, center, params) -> bool:
    """Nearly the same angle and nearly the same offset from the image centre.
    Comparing offsets at the centre (not rho at the origin) keeps a thick edge,
    whose Hough peaks pivot around a point inside the image, to one line.
    Plain floats, not numpy: the peak search calls this hundreds of thousands of times."""
    (r1, t1), (r2, t2) = l1, l2
    if _angle_between(t1, t2) >= params.nms_theta_deg:
        return False
    c1, s1, c2, s2 = math.cos(t1), math.sin(t1), math.cos(t2), math.sin(t2)
    d1 = c1 * center[0] + s1 * center[1] - r1
    d2 = c2 * center[0] + s2 * center[1] - r2
    if c1 * c2 + s1 * s2 < 0:  # opposite normals describe the same direction
        d2 = -d2
    return abs(d1 - d2) < params.nms_rho


def edge_points(weights: np.ndarray):
    """The map's edge pixels as (N x 2 float64 x, y; N weights): found once, fitted many times."""
    ys, xs = np.nonzero(weights)
    return np.stack([xs, ys], 1).astype(np.float64), weights[ys, xs].astype(np.float64)


def refine_line(weights, rho: float, theta: float, band: float = 3.0, iterations: int = 3):
    """Weighted total-least-squares fit to the edge pixels within ``band`` of the
    line, repeated so pixels missed by the coarse Hough angle are picked up.
    ``weights``: the weighted edge map, or its ``edge_points``."""
    pts_all, wt_all = edge_points(weights) if isinstance(weights, np.ndarray) else weights
    for _ in range(iterations):
        near = np.abs(pts_all @ np.array([np.cos(theta), np.sin(theta)]) - rho) <= band
        if near.sum() < 10:
            break
        rho, theta = _fit_line(pts_all[near], wt_all[near], theta)
    return rho, theta


def _fit_line(pts, wt, theta: float):
    """(rho, theta) of the weighted total-least-squares line through ``pts``, its
    normal turned to within 90 degrees of ``theta``."""
    mean = (pts * wt[:, None]).sum(0) / wt.sum()
    d = pts - mean
    (a, b), (_, c) = ((d * wt[:, None]).T @ d).tolist()
    nx, ny = smallest_eigenvector(a, b, c)  # the normal
    mx, my = float(mean[0]), float(mean[1])
    if nx * math.cos(theta) + ny * math.sin(theta) < 0:
        nx, ny = -nx, -ny
    return nx * mx + ny * my, math.atan2(ny, nx)


def smallest_eigenvector(a: float, b: float, d: float) -> tuple[float, float]:
    """Unit eigenvector of the smaller eigenvalue of [[a, b], [b, d]], in closed form
    (as the Java port; numpy's eigh costs more than the fit it serves)."""
    half = (a - d) / 2.0
    lam = (a + d) / 2.0 - math.sqrt(half * half + b * b)
    v1, v2 = (b, lam - a), (lam - d, b)  # from the first row, from the second
    n1, n2 = math.hypot(*v1), math.hypot(*v2)
    if n1 < 1e-12 and n2 < 1e-12:
        return (1.0, 0.0) if a <= d else (0.0, 1.0)
    return (v1[0] / n1, v1[1] / n1) if n1 >= n2 else (v2[0] / n2, v2[1] / n2)


def polish_quad(quad, points, params: QuadParams, keep_side: int = -1):
    """Step 8: ``quad`` (side k from corner k to k + 1) with each side refitted to the
    ``edge_points`` along it; ``keep_side`` (one on the image border) stays."""
    chosen = np.asarray(quad, np.float64)
    # every quad refitted stays within polish_max_move of the chosen one: only pixels that near can count
    reach = params.polish_max_move + params.polish_band + 1
    lo, hi = chosen.min(0) - reach, chosen.max(0) + reach
    inside = np.all((points[0] >= lo) & (points[0] <= hi), axis=1)
    pts_all, wt_all = points[0][inside], points[1][inside]
    quad = chosen
    for _ in range(params.polish_iterations):
        lines = [_side_line(quad, k) if k == keep_side else _refit_side(quad, k, pts_all, wt_all, params)
                 for k in range(4)]
        corners = [_intersect(lines[k - 1], lines[k]) for k in range(4)]
        if any(c is None for c in corners):
            break
        polished = np.array(corners)
        if not _is_convex(polished) or np.abs(polished - chosen).max() > params.polish_max_move:
            break
        quad = polished
    return quad


def _side_line(quad, k: int):
    """(rho, theta) of the line through corners k and k + 1."""
    a, b = quad[k], quad[(k + 1) % 4]
    length = math.hypot(*(b - a)) + 1e-12
    nx, ny = -(b[1] - a[1]) / length, (b[0] - a[0]) / length
    return float(nx * a[0] + ny * a[1]), math.atan2(ny, nx)


def _refit_side(quad, k: int, pts_all, wt_all, params: QuadParams, min_points: int = 8):
    """Side k's line fitted to the edge pixels within ``polish_band`` of the segment, away
    from its ends; the side as it is where fewer than ``min_points`` lie there."""
    rho, theta = _side_line(quad, k)
    a, b = quad[k], quad[(k + 1) % 4]
    length = math.hypot(*(b - a)) + 1e-12
    along = ((pts_all - a) @ (b - a)) / (length * length)
    across = pts_all @ np.array([math.cos(theta), math.sin(theta)]) - rho
    near = (np.abs(across) <= params.polish_band) & (along >= params.polish_trim) & (along <= 1 - params.polish_trim)
    if near.sum() < min_points:
        return rho, theta
    return _fit_line(pts_all[near], wt_all[near], theta)


def _intersect(l1, l2):
    """Cramer's rule in plain floats: the candidate loop calls this thousands of times per map."""
    (r1, t1), (r2, t2) = l1, l2
    c1, s1, c2, s2 = math.cos(t1), math.sin(t1), math.cos(t2), math.sin(t2)
    det = c1 * s2 - s1 * c2
    if abs(det) < 1e-6:
        return None
    return np.array([(r1 * s2 - s1 * r2) / det, (c1 * r2 - r1 * c2) / det])


def _angle_between(t1, t2):
    d = abs(t1 - t2) % math.pi
    return math.degrees(min(d, math.pi - d))


def _candidate_quads(lines, params, fours=None):
    """Quads from 4 lines split into two roughly parallel pairs: yields (corners,
    the line index under each side). Side k runs from corner k to corner k+1."""
    angle = _angles(lines)
    for four in fours if fours is not None else combinations(range(len(lines)), 4):
        a, b, c, d = four
        for (p, q), (r, s) in (((a, b), (c, d)), ((a, c), (b, d)), ((a, d), (b, c))):
            if angle[p][q] > params.max_parallel_deg or angle[r][s] > params.max_parallel_deg:
                continue
            if min(angle[p][r], angle[p][s], angle[q][r], angle[q][s]) < params.min_pair_angle_deg:
                continue  # every corner, not two: which two would depend on the lines' order
            lp, lq, lr, ls = lines[p], lines[q], lines[r], lines[s]
            pts = [_intersect(lp, lr), _intersect(lp, ls), _intersect(lq, ls), _intersect(lq, lr)]
            if all(pt is not None for pt in pts):
                yield np.array(pts), (p, s, q, r)


def _angles(lines) -> list[list[float]]:
    """``_angle_between`` of every two lines, in degrees: looked up, not recomputed, per candidate."""
    thetas = np.array([t for _, t in lines], np.float64)
    d = np.abs(thetas[:, None] - thetas[None, :]) % math.pi
    return np.degrees(np.minimum(d, math.pi - d)).tolist()


def border_lines(frame) -> list[tuple[float, float]]:
    """The borders of ``frame`` (x, y, w, h) as (rho, theta): top, bottom, left, right."""
    x, y, w, h = frame
    return [(float(y), np.pi / 2), (y + h - 1.0, np.pi / 2), (float(x), 0.0), (x + w - 1.0, 0.0)]


def _is_convex(quad):
    pts = quad.tolist()  # plain floats: called for every candidate
    signs = []
    for i in range(4):
        (ax, ay), (bx, by), (cx, cy) = pts[i], pts[(i + 1) % 4], pts[(i + 2) % 4]
        signs.append((bx - ax) * (cy - by) - (by - ay) * (cx - bx))
    return all(v > 0 for v in signs) or all(v < 0 for v in signs)


def _shortest_side(quad):
    pts = quad.tolist()
    return min(math.hypot(pts[i][0] - pts[i - 1][0], pts[i][1] - pts[i - 1][1]) for i in range(4))


def _area(quad):
    """Shoelace formula in plain floats."""
    pts = quad.tolist()
    return 0.5 * abs(sum(pts[i][0] * pts[(i + 1) % 4][1] - pts[(i + 1) % 4][0] * pts[i][1] for i in range(4)))


def perimeter_support(quad, support_map, skip_side: int = -1, frame=None, samples=None):
    """In-frame perimeter samples (1 px apart) as (fraction on an edge, number on
    an edge, number in frame); ``skip_side`` (one lying on the image border) is not
    scored. ``frame`` (x, y, w, h): the part of the map that shows the photo.
    ``samples``: the quad's ``side_samples``, if already taken."""
    frame = frame or (0, 0, support_map.shape[1], support_map.shape[0])
    samples = side_samples(quad, skip_side, frame) if samples is None else samples
    hits = sum(int(_read(support_map, pts, frame).sum()) for _, pts in samples)
    total = sum(len(pts) for _, pts in samples)
    return (hits / total if total else 0.0), hits, total


def side_samples(quad, skip_side: int, frame) -> list:
    """For each scored side k (corner k to corner k + 1), (k, its points 1 px apart
    that lie in ``frame``): taken once per candidate, read by every score term."""
    x0, y0, w, h = frame
    out = []
    for i in range(4):
        if i == skip_side:
            continue
        a, b = quad[i], quad[(i + 1) % 4]
        n = max(int(np.hypot(*(b - a))), 1)
        t = (np.arange(n) + 0.5) / n
        pts = a + t[:, None] * (b - a)
        xi, yi = np.round(pts[:, 0]).astype(int), np.round(pts[:, 1]).astype(int)
        out.append((i, pts[(xi >= x0) & (xi < x0 + w) & (yi >= y0) & (yi < y0 + h)]))
    return out


def _dilate(binary, r):
    """Square dilation by ``r`` pixels; the border does not wrap around."""
    h, w = binary.shape
    padded = np.pad(binary, r)
    out = np.zeros_like(binary)
    for dy in range(2 * r + 1):
        for dx in range(2 * r + 1):
            out |= padded[dy:dy + h, dx:dx + w]
    return out


def find_quad(edge_map: np.ndarray, params: QuadParams = QuadParams(), roi=None, page=None,
              image=None) -> QuadResult:
    """Edge probabilities (HxW in [0, 1]) -> ordered corners in pixel coordinates.
    ``roi`` (x, y, w, h): the part of the map that shows the photo (a letterboxed
    input's content); edges outside it are ignored and its borders stand in for
    hidden sides. ``page``: the page-region probabilities (same shape), if the
    model has them. ``image``: the network's input (HxWx3 RGB pixels, 0-255) the map
    was computed from, for step 9."""
    prob = np.asarray(edge_map, np.float32).squeeze()
    if prob.ndim != 2 or not np.isfinite(prob).all():
        return QuadResult(None, 0.0, "edge map is not a finite 2-D array")
    if page is not None:
        page = np.asarray(page, np.float32).squeeze()
        if page.shape != prob.shape:
            return QuadResult(None, 0.0, f"page map is {page.shape}, the edge map {prob.shape}")
        if not np.isfinite(page).all():
            return QuadResult(None, 0.0, "page map has NaN or infinite values")
        page = np.clip(page, 0, 1)  # probabilities; a model emitting logits must not swamp the edge score
    if image is not None and (np.ndim(image) != 3 or np.shape(image)[:2] != prob.shape or np.shape(image)[2] != 3
                              or np.asarray(image).dtype != np.uint8):
        return QuadResult(None, 0.0, f"image is {np.shape(image)} {np.asarray(image).dtype}, the edge map "
                                     f"{prob.shape}: not its input as 8-bit RGB pixels")
    frame, binary = threshold_edges(prob, params, roi)
    x0, y0, w, h = frame
    if binary.sum() < params.min_votes_frac * min(h, w):
        return QuadResult(None, 0.0, "too few edge pixels")
    if binary.sum() > params.max_edge_frac * h * w:  # a segmentation head, or a map that is all edge
        return QuadResult(None, 0.0, "edge map saturated: most pixels are edges (is this an edge-detection model?)")
    weights = np.where(binary, prob, 0)
    points = edge_points(weights)
    lines = []
    for peak in hough_lines(binary, params):
        line = refine_line(points, *peak)
        if not any(same_line(line, other, (prob.shape[1] / 2, prob.shape[0] / 2), params) for other in lines):
            lines.append(line)
    lines = lines[:params.max_lines]
    # fewer than 3 Hough lines is no reason to stop: a small page's short sides may
    # lose every vote and still close an outline that step 5 finds
    support_map = _dilate(binary, params.support_tol)
    hough = lines
    fours = list(combinations(range(len(lines)), 4))
    if params.open_gap_px > 0:
        extra, extra_fours = open_side_quads(lines, support_map, frame, params, (prob.shape[1] / 2, prob.shape[0] / 2))
        fours += extra_fours
        lines = lines + extra
    if params.regions:
        extra, extra_fours = region_quads(support_map, weights, frame, params)
        fours += [tuple(len(lines) + i for i in four) for four in extra_fours]
        lines = lines + extra
    scorer = QuadScorer(support_map, page, params, frame, image)
    best = _best_quad(lines, scorer, fours) if fours else None
    if best is None:  # a side out of frame or hidden: let the image border stand in for it
        n = len(hough)
        lines = hough + border_lines(frame)
        fours = [(*three, n + k) for three in combinations(range(n), 3) for k in range(4)]
        best = _best_quad(lines, scorer, fours, border_from=n)
    if best is None:
        return QuadResult(None, 0.0, f"only {len(hough)} straight edges found" if len(hough) < 3
                          else "no plausible quadrilateral")
    quad, support, on_border = best
    quad = polish_quad(quad, points, params, on_border)
    if image is not None and params.band_max_px > 0:
        quad = widen_to_bands(quad, image, frame, params, on_border)
    return QuadResult(order_corners(quad), support)


def widen_to_bands(quad, image, frame, params: QuadParams, keep_side: int = -1):
    """Step 9: each side moved out by its ``bands.band_shifts``; the quad as it was if the
    moved sides do not meet in a convex quad."""
    shifts = band_shifts(quad, image, frame, params, keep_side)
    if not any(shifts):
        return quad
    lines = []
    for k, shift in enumerate(shifts):
        rho, theta = _side_line(quad, k)
        n = outward_normal(quad, k)
        lines.append((rho + shift * (n[0] * math.cos(theta) + n[1] * math.sin(theta)), theta))
    corners = [_intersect(lines[k - 1], lines[k]) for k in range(4)]
    if any(c is None for c in corners) or not _is_convex(np.array(corners)):
        return quad
    return np.array(corners)


def threshold_edges(prob, params: QuadParams, roi=None):
    """(frame, edge pixels): ``prob`` thresholded inside ``roi``'s frame, less a
    ``roi_margin`` band along a letterbox's edges."""
    frame = _frame(roi, prob.shape)
    x0, y0, w, h = frame
    m = params.roi_margin if roi is not None else 0
    binary = np.zeros(prob.shape, bool)
    binary[y0 + m:y0 + h - m, x0 + m:x0 + w - m] = prob[y0 + m:y0 + h - m, x0 + m:x0 + w - m] >= params.threshold
    return frame, binary


def open_side_quads(lines, support_map, frame, params, centre):
    """Step 4b: quads closed across a side the edge map lacks. For two roughly
    parallel lines and a third crossing both, each of the two is followed from
    its corner along its edge pixels (``LineRuns``) on one side of the third, then
    on the other; the line through the two ends closes the quad, unless it is
    one of ``lines`` already (the 4-line candidates have that quad). Returned
    as (new lines, fours indexing ``lines`` followed by the new lines)."""
    angle, runs = _angles(lines), {}
    new, fours = [], []
    for p, q in combinations(range(len(lines)), 2):
        if angle[p][q] > params.max_parallel_deg:
            continue
        lp, lq = lines[p], lines[q]
        for k in (p, q):
            if k not in runs:
                runs[k] = LineRuns(lines[k], support_map, frame, params.open_gap_px, params.support_tol)
        same_way = runs[p].ux * runs[q].ux + runs[p].uy * runs[q].uy > 0
        for r, lr in enumerate(lines):
            if r in (p, q) or min(angle[r][p], angle[r][q]) < params.min_pair_angle_deg:
                continue
            corner_p, corner_q = _intersect(lp, lr), _intersect(lq, lr)
            if corner_p is None or corner_q is None:
                continue
            for sign in (1, -1):
                end_p = runs[p].end(corner_p, sign)
                end_q = runs[q].end(corner_q, sign if same_way else -sign)
                if end_p is None or end_q is None or min(math.dist(end_p, corner_p), math.dist(end_q, corner_q)) \
                        < params.min_side_px:
                    continue  # no side runs on from a corner there
                line = _line_through(end_p, end_q, params.min_side_px)
                if line is None or any(same_line(line, other, centre, params) for other in lines):
                    continue
                fours.append((p, q, r, len(lines) + len(new)))
                new.append(line)
    return new, fours


class LineRuns:
    """A line's supported stretches: the support map read 1 px apart along it,
    stretches joined across gaps of at most ``gap`` samples, so that
    ``end(point, sign)`` finds in O(log n) where the edge that runs from ``point``
    along the line (direction ``sign``) ends: ``inset`` samples (the support map's
    dilation) before its stretch's last."""

    def __init__(self, line, support_map, frame, gap: int, inset: int = 0):
        rho, theta = line
        x0, y0, w, h = frame
        nx, ny = math.cos(theta), math.sin(theta)
        self.ux, self.uy = -ny, nx
        cx, cy = x0 + w / 2, y0 + h / 2
        off = nx * cx + ny * cy - rho  # the sample at t = 0 is the line's point nearest the frame centre
        self.ox, self.oy = cx - off * nx, cy - off * ny
        self.half, self.gap, self.inset = int(math.hypot(w, h) / 2) + 1, gap, inset
        t = np.arange(-self.half, self.half + 1)
        xi = np.round(self.ox + t * self.ux).astype(int)
        yi = np.round(self.oy + t * self.uy).astype(int)
        inside = (xi >= x0) & (xi < x0 + w) & (yi >= y0) & (yi < y0 + h)
        on = np.zeros(len(t), bool)
        on[inside] = support_map[yi[inside], xi[inside]]
        seen = np.flatnonzero(inside)  # an edge that runs to the frame's border leaves the photo there
        self.lo, self.hi = (int(seen[0]), int(seen[-1])) if len(seen) else (0, -1)
        idx = np.flatnonzero(on)  # sample indices on an edge, ascending
        self.on, self.first, self.last = idx.tolist(), [], []  # per on-sample: its stretch's ends
        if len(idx):
            breaks = np.flatnonzero(np.diff(idx) > gap + 1)  # stretch k + 1 starts after breaks[k]
            stretch = np.concatenate([[0], np.cumsum(np.diff(idx) > gap + 1)]).astype(int)
            firsts, lasts = idx[np.concatenate([[0], breaks + 1])], idx[np.concatenate([breaks, [len(idx) - 1]])]
            self.first, self.last = firsts[stretch].tolist(), lasts[stretch].tolist()

    def end(self, point, sign: int):
        """Where the stretch that starts within ``gap`` of ``point`` ends, going
        ``sign`` (+1: along (ux, uy)); None when no edge starts there, or when it
        runs on to the frame's border (a side that leaves the photo ends nowhere)."""
        k = int(round((point[0] - self.ox) * self.ux + (point[1] - self.oy) * self.uy)) + self.half
        if sign > 0:
            i = bisect_left(self.on, k)
            if i == len(self.on) or self.on[i] - k > self.gap or self.last[i] + self.gap >= self.hi:
                return None
            stop = max(self.last[i] - self.inset, k)
        else:
            i = bisect_right(self.on, k) - 1
            if i < 0 or k - self.on[i] > self.gap or self.first[i] - self.gap <= self.lo:
                return None
            stop = min(self.first[i] + self.inset, k)
        t = stop - self.half
        return self.ox + t * self.ux, self.oy + t * self.uy


def _line_through(a, b, min_length: float):
    """(rho, theta) of the line through points ``a`` and ``b``; None when they are closer than ``min_length``."""
    dx, dy = b[0] - a[0], b[1] - a[1]
    length = math.hypot(dx, dy)
    if length < min_length:
        return None
    nx, ny = dy / length, -dx / length
    return nx * a[0] + ny * a[1], math.atan2(ny, nx)


def region_quads(support_map, weights, frame, params):
    """Quads around closed edge outlines: a page in a busy scene is often a
    connected outline whose sides are too short to win the Hough vote against the
    scene's long lines. Each connected group of edge pixels whose extreme points
    span a plausible quad gives four lines, snapped to the edge ridge along each
    side; and so does each enclosed gap between edges that fills the quad of its
    extreme points (a page's interior), which still works when the outline is
    joined to a background edge that runs out of the frame or along a pole.
    Returned as (lines, fours)."""
    x0, y0, w, h = frame
    points = edge_points(weights)
    lines, fours = [], []

    def add(quad, outward):
        centre = quad.mean(0)
        four = []
        for i in range(4):
            a, b = quad[i], quad[(i + 1) % 4]
            normal = np.array([b[1] - a[1], a[0] - b[0]], np.float64)
            normal /= np.linalg.norm(normal) + 1e-9
            if normal @ (a - centre) < 0:
                normal = -normal
            rho = float(normal @ a) + outward  # from the rim the quad was taken on to the ridge
            four.append(len(lines))
            lines.append(refine_line(points, rho, float(np.arctan2(normal[1], normal[0]))))
        fours.append(tuple(four))

    for xs, ys in _enclosed_components(support_map, frame, 4 * params.min_votes_frac * min(w, h)):
        quad = _extreme_quad(xs, ys)
        if params.min_area_frac * w * h <= _area(quad) <= 0.8 * w * h:
            add(quad, -params.support_tol)  # the outline's outer rim, in to the ridge
    gaps = np.zeros_like(support_map)
    gaps[y0:y0 + h, x0:x0 + w] = ~support_map[y0:y0 + h, x0:x0 + w]
    for xs, ys in _enclosed_components(gaps, frame, 0.25 * params.min_area_frac * w * h):
        quad = _extreme_quad(xs, ys)
        area = _area(quad)
        if GAP_FILL * area <= len(xs) and area <= 0.8 * w * h:
            add(quad, params.support_tol)  # the gap's rim, out to the ridge
    return lines, fours


GAP_FILL = 0.85  # an enclosed gap this close to its extreme points' quad is quad-shaped


def _enclosed_components(mask, frame, min_pixels):
    """Connected components of ``mask`` with at least ``min_pixels`` pixels that do
    not touch the frame's border (those the Hough path with border lines covers)."""
    from scipy import ndimage
    x0, y0, w, h = frame
    count, labels = _label(mask)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    for k, (rows, cols) in enumerate(ndimage.find_objects(labels), start=1):
        if sizes[k] < min_pixels or rows.start <= y0 or cols.start <= x0 \
                or rows.stop >= y0 + h or cols.stop >= x0 + w:
            continue
        ys, xs = np.nonzero(labels[rows, cols] == k)  # raster order, as the Java port scans
        yield xs + cols.start, ys + rows.start


def _extreme_quad(xs, ys):
    """The region's extreme points along the diagonals or along the axes, whichever
    encloses more: a rotated page's corners, or an upright page's."""
    pts = np.stack([xs, ys], 1).astype(np.float64)
    diag = pts[[np.argmin(xs + ys), np.argmax(xs - ys), np.argmax(xs + ys), np.argmax(ys - xs)]]
    axes = pts[[np.argmin(ys), np.argmax(xs), np.argmax(ys), np.argmin(xs)]]
    return diag if _area(diag) >= _area(axes) else axes


def _label(binary):
    """4-connected components of a mask: (count, labels), numbered in raster order
    of each component's first pixel (the order the Java port finds them)."""
    from scipy import ndimage
    labels, count = ndimage.label(binary)
    return count, labels


def _frame(roi, shape):
    """``roi`` clipped to the map, or the whole map."""
    if roi is None:
        return 0, 0, shape[1], shape[0]
    x, y, w, h = (int(v) for v in roi)
    x, y = min(max(x, 0), shape[1] - 1), min(max(y, 0), shape[0] - 1)
    return x, y, max(1, min(w, shape[1] - x)), max(1, min(h, shape[0] - y))


@dataclass(frozen=True)
class QuadScorer:
    """Scores a candidate quad on the maps (step 6)."""
    support_map: np.ndarray
    page: np.ndarray | None
    params: QuadParams
    frame: tuple
    image: np.ndarray | None = None

    def score(self, quad, skip_side: int = -1, to_beat: float = -np.inf):
        """(score, fraction of the scored perimeter on an edge); the score is -inf
        when the quad cannot beat ``to_beat``: each sample's page contrast is at most
        1, so (for a non-negative page weight) the page map is not read for quads that
        lose even with a perfect one."""
        samples = side_samples(quad, skip_side, self.frame)
        frac, hits, total = perimeter_support(quad, self.support_map, skip_side, self.frame, samples)
        score = hits - self.params.miss_penalty * (total - hits)
        if self.page is not None:
            if self.params.page_weight >= 0 and score + self.params.page_weight * total <= to_beat:
                return -np.inf, frac
            score += self.params.page_weight * page_contrast(quad, self.page, self.params.page_offset,
                                                             skip_side, self.frame, samples)
        if self.image is not None and self.params.paper_weight > 0:
            if score + self.params.paper_weight * total <= to_beat:
                return -np.inf, frac
            score += self.params.paper_weight * paper_contrast(quad, self.image, self.params, self.frame, samples)
        return score, frac


def _inward_steps(quad, samples, offset):
    """(points, step) per scored side: the step is ``offset`` px along its inward normal."""
    cx, cy = (float(v) for v in quad.mean(0))
    out = []
    for i, pts in samples:
        a, b = quad[i], quad[(i + 1) % 4]
        nx, ny = float(b[1] - a[1]), float(a[0] - b[0])
        norm = math.sqrt(nx * nx + ny * ny) + 1e-9
        nx, ny = nx / norm, ny / norm
        if nx * (cx - a[0]) + ny * (cy - a[1]) < 0:  # inward
            nx, ny = -nx, -ny
        out.append((pts, np.array([offset * nx, offset * ny])))
    return out


def paper_contrast(quad, image, params, frame, samples) -> float:
    """Sum over the perimeter samples of how much the pixel just inside looks like
    the quad's paper (the median colour just inside all its sides) minus how much the
    pixel just outside does. A page's sides have its paper inside and the world
    outside; a quad closed on a background line has the world inside that side, and
    a frame printed inside the page has paper on both sides."""
    steps = _inward_steps(quad, samples, params.paper_offset)
    if sum(len(pts) for pts, _ in steps) == 0:
        return 0.0
    pts = np.concatenate([pts for pts, _ in steps])
    step = np.concatenate([np.broadcast_to(st, pts.shape) for pts, st in steps])
    inside, outside = _read(image, pts + step, frame), _read(image, pts - step, frame)
    paper = np.median(inside, axis=0)
    s2 = params.paper_sigma ** 2
    like_in = np.exp(-((inside - paper) ** 2).sum(1) / s2)
    like_out = np.exp(-((outside - paper) ** 2).sum(1) / s2)
    return float((like_in - like_out).sum())


def page_contrast(quad, page, offset: float, skip_side: int = -1, frame=None, samples=None) -> float:
    """Sum over the in-frame perimeter samples (``side_samples``) of page probability
    ``offset`` px inside the quad minus ``offset`` px outside; read points are
    clamped into ``frame``."""
    frame = frame or (0, 0, page.shape[1], page.shape[0])
    samples = side_samples(quad, skip_side, frame) if samples is None else samples
    return float(sum((_read(page, pts + step, frame) - _read(page, pts - step, frame)).sum()
                     for pts, step in _inward_steps(quad, samples, offset)))


def _read(values, pts, frame):
    """``values`` at the nearest pixel to each point, clamped into ``frame``."""
    x0, y0, w, h = frame
    xi = np.minimum(np.maximum(np.round(pts[:, 0]).astype(int), x0), x0 + w - 1)  # ufuncs: np.clip costs more
    yi = np.minimum(np.maximum(np.round(pts[:, 1]).astype(int), y0), y0 + h - 1)
    return values[yi, xi].astype(np.float64)


def _best_quad(lines, scorer: QuadScorer, fours=None, border_from=None):
    """The plausible candidate with the best score, as (quad, support, the side on the
    image border or -1)."""
    params = scorer.params
    x0, y0, w, h = scorer.frame
    best, best_score = None, -np.inf
    lo_x, lo_y, hi_x, hi_y = x0 - 0.5 * w, y0 - 0.5 * h, x0 + 1.5 * w, y0 + 1.5 * h
    for quad, side_lines in _candidate_quads(lines, params, fours):
        if any(not (lo_x <= x <= hi_x and lo_y <= y <= hi_y) for x, y in quad.tolist()) or not _is_convex(quad):
            continue
        if _area(quad) < params.min_area_frac * h * w or _shortest_side(quad) < params.min_side_px:
            continue
        skip = next((k for k, i in enumerate(side_lines) if border_from is not None and i >= border_from), -1)
        score, frac = scorer.score(quad, skip, best_score)
        if frac >= params.min_support and score > best_score:
            best, best_score = (quad, frac, skip), score
    return best

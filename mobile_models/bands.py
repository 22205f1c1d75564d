"""Quad finder step 9: a side found on a printed band's inner edge moves out to the page's edge.

A flyer, a form or a packaging sheet often has a coloured band (a header, a side
stripe, a frame) printed up to the paper's edge. The edge network, trained on
pages whose margins are paper-toned, fires on the band's inner edge, where paper
meets ink, and the quad comes out a band's width short of the page on that side.
The image itself still shows the page's edge: past a uniform band, a strong
colour step parallel to the side. The same pattern also appears where a page lies
on a plain surface beside some other edge (a saucer's rim, a rocket, a shadow), so
a side moves only if the band also reaches both of the side's corners: along
each neighbouring side's line, extended outward, the band's colour lies inside
and a colour step crosses it, as a page's edge does and an unrelated background
line does not. A corner the photo cuts off (too little of the extension in frame)
cannot tell; the other must then show it.

Measured on the scanner's real-image sets (default run, int8, within 2%): it
fixed 6 and 7 misses on the two independent sets it was tuned on, 2 and 10 on two it
was not (breaking 1), and changed none of the phone sets' 420 photos (README,
"Printed bands").

Plain numpy on the network's input image (RGB, the letterboxed and exposed
pixels the edge map was computed from), so that the Java core mirrors it.
"""
import numpy as np

SAMPLES = 16            # points along the side's middle, where neither corner's blur reaches
SPAN = (0.15, 0.85)     # of the side's length
SHIFT_FROM = 3          # px: a nearer step is the side's own blur
STEP_SHARE = 0.7        # of the samples that must cross the band's outer edge
CORNER_SHARE = 0.75     # of the samples along a neighbour's extension that must cross an edge
MIN_CORNER_SAMPLES = 3  # fewer in the photo: that corner cannot tell
MAX_SHARE_OF_PAGE = 0.2  # a band is at most this share of the page's extent across the side


def band_shifts(quad, image, frame, params, skip_side: int = -1) -> list[int]:
    """For each side k of ``quad`` (4x2, side k from corner k to k + 1), how many px it
    moves outward onto a printed band's outer edge (0: it stays). ``image``: HxWx3 RGB
    the size of the edge map; ``frame`` (x, y, w, h): the part of it that is photo;
    ``params``: the finder's ``QuadParams`` (``band_max_px``, ``band_step``,
    ``band_spread``, ``band_match``)."""
    img = np.asarray(image)  # read as float where sampled: converting the whole image costs more than the step
    q = np.asarray(quad, np.float64)
    return [0 if k == skip_side else _shift(q, k, img, frame, params) for k in range(4)]


def _shift(q, k: int, img, frame, params) -> int:
    a, b = q[k], q[(k + 1) % 4]
    n = outward_normal(q, k)
    span = min(abs(float((q[(k + 2) % 4] - a) @ n)), abs(float((q[(k + 3) % 4] - a) @ n)))
    reach = int(min(params.band_max_px, MAX_SHARE_OF_PAGE * span))
    if reach < SHIFT_FROM:
        return 0
    along = a + np.linspace(*SPAN, SAMPLES)[:, None] * (b - a)
    # colours at every half px outward from the side, read once: offset m / 2 is row m
    offsets = np.arange(2 * reach + 4) / 2
    points = along[None] + offsets[:, None, None] * n
    rows = _sample(img, points.reshape(-1, 2)).reshape(len(offsets), SAMPLES, 3)
    shifts = np.arange(SHIFT_FROM, reach + 1)
    inside = _inside(points[2 * shifts + 3], frame)
    shifts = shifts[:np.argmin(inside)] if not inside.all() else shifts  # up to where the photo ends
    if not len(shifts):
        return 0
    step = _distance(rows[2 * shifts + 3], rows[2 * shifts - 3])  # across the line `shift` px out, per sample
    median_step = np.median(step, axis=1)
    stepped = (median_step >= params.band_step) & (np.mean(step > params.band_step / 2, axis=1) >= STEP_SHARE)
    best, best_step, colour = 0, -1.0, None
    for i in np.flatnonzero(stepped):
        band = rows[2:2 * shifts[i] - 3:2].reshape(-1, 3)  # every pixel 1 .. shift - 2 px out
        band_colour = np.median(band, axis=0)
        # one printed colour pixel by pixel; a texture (gravel, a carpet) averages to one colour only
        if np.median(_distance(band, band_colour)) <= params.band_spread and median_step[i] > best_step:
            best, best_step, colour = int(shifts[i]), float(median_step[i]), band_colour
    if not best:
        return 0
    verdicts = [_reaches_corner(q, j, corner, n, best, colour, img, frame, params)
                for j, corner in ((k - 1, a), (k + 1, b))]
    # both corners the band reaches, or one where the photo cannot show the other
    return best if False not in verdicts and True in verdicts else 0


def _reaches_corner(q, j: int, corner, n, shift: int, colour, img, frame, params) -> bool | None:
    """Does the band reach ``corner`` along neighbouring side ``j``? Along side j's
    line, extended from the corner outward by the band's width, the band's colour
    lies inside and a colour step crosses the line. None (cannot tell) where fewer than
    ``MIN_CORNER_SAMPLES`` of those points, with both sides of the line, lie in the photo:
    a letterbox band or the frame's edge would make a step of its own."""
    j %= 4
    a, b = q[j], q[(j + 1) % 4]
    u = (b - a) / (np.linalg.norm(b - a) + 1e-12)
    if u @ n < 0:
        u = -u
    length = shift / max(abs(float(u @ n)), 0.3)
    pts = corner + np.linspace(1.0, max(1.5, length - 1.0), max(3, int(length)))[:, None] * u
    nj = outward_normal(q, j)
    usable = _inside(np.stack([pts - 2.0 * nj, pts + 2.0 * nj], axis=1), frame)
    if usable.sum() < MIN_CORNER_SAMPLES:
        return None
    pts = pts[usable]
    inner = _sample(img, pts - 2.0 * nj)
    step = _distance(_sample(img, pts + 2.0 * nj), inner)
    half = params.band_step / 2
    return bool(np.median(step) >= half and np.mean(step > half) >= CORNER_SHARE
                and np.median(_distance(inner, colour)) <= params.band_match)


def outward_normal(q, k: int) -> np.ndarray:
    """Unit normal of side k pointing away from the quad's centre."""
    a, b = q[k], q[(k + 1) % 4]
    d = (b - a) / (np.linalg.norm(b - a) + 1e-12)
    n = np.array([-d[1], d[0]])
    return -n if (q.mean(0) - a) @ n > 0 else n


def _inside(pts, frame):
    """Whether all points (the last axis x, y; the one before it, the points) lie in ``frame``."""
    x0, y0, w, h = frame
    x, y = pts[..., 0], pts[..., 1]
    return np.all((x >= x0) & (x <= x0 + w - 1) & (y >= y0) & (y <= y0 + h - 1), axis=-1)


def _distance(c1, c2) -> np.ndarray:
    """Euclidean RGB distance per sample."""
    return np.sqrt(((c1 - c2) ** 2).sum(-1))


def _sample(img, pts) -> np.ndarray:
    """Bilinear RGB at each point, coordinates clamped into the image."""
    h, w = img.shape[:2]
    x = np.clip(pts[:, 0], 0, w - 1)
    y = np.clip(pts[:, 1], 0, h - 1)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    top = img[y0, x0].astype(np.float64) * (1 - fx) + img[y0, x1] * fx
    bottom = img[y1, x0].astype(np.float64) * (1 - fx) + img[y1, x1] * fx
    return top * (1 - fy) + bottom * fy

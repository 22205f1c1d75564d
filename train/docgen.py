"""Synthetic document photos: the embedded default dataset for HED.

Each sample is a page (report, receipt, form or two-column layout on a paper
tone, sometimes folded) pasted into a background (procedural textures or photos
that scikit-image ships), sometimes under a hand, seen by a random camera:
perspective tilt, rotation, scale, partly out of frame, lighting gradient,
shadow, colour temperature, low light, defocus or motion blur, noise and JPEG. Labels are the four
corners (TL, TR, BR, BL, in output pixels) and the quad-border edge map.
Sample ``i`` of seed ``s`` depends only on ``(s, i)``: generation is
deterministic and embarrassingly parallel.
"""
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from edgepipe.mobile_models.docquad import order_corners

PAPER_TONES = [(250, 250, 248), (242, 238, 228), (235, 232, 215), (225, 228, 232), (248, 244, 236), (214, 206, 190)]
PHOTO_NAMES = ("astronaut", "brick", "camera", "chelsea", "coffee", "coins", "grass",
               "gravel", "rocket", "immunohistochemistry", "clock", "moon", "horse", "hubble_deep_field")


@dataclass(frozen=True)
class Composition:
    """Which backgrounds and page styles a stream draws from. ``HELDOUT`` shares
    none of ``TRAIN``'s photos, background textures or page layouts, so a score
    on it says how the detector does on scenes unlike its training."""
    photos: tuple[str, ...]
    textures: tuple[str, ...]
    layouts: tuple[str, ...]
    aspects: tuple[float, ...]


TRAIN = Composition(photos=("astronaut", "brick", "camera", "coins", "grass", "gravel", "immunohistochemistry",
                            "moon", "horse"),
                    textures=("wood", "cloth", "stone", "clutter"), layouts=("report", "receipt"),
                    aspects=(1.414, 1.294, 1.586, 2.4, 0.707))
HELDOUT = Composition(photos=("chelsea", "coffee", "rocket", "clock", "hubble_deep_field"),
                      textures=("tiles", "gradient"), layouts=("form", "two_column"),
                      aspects=(1.414, 1.333, 1.5, 0.75))
COMPOSITIONS = {"train": TRAIN, "heldout": HELDOUT}


@dataclass
class DocSample:
    image: np.ndarray    # HxWx3 uint8 RGB
    edges: np.ndarray    # HxW uint8 {0, 1}
    corners: np.ndarray  # 4x2 float32, TL TR BR BL, may lie outside the frame


@lru_cache(maxsize=4)
def _photos(names=PHOTO_NAMES):
    import skimage.data as data
    out = []
    for name in names:
        im = getattr(data, name)()
        if im.ndim == 2:
            im = np.stack([im] * 3, -1)
        if im.dtype != np.uint8:  # a few samples ship as bool or float
            im = (255 * (im.astype(np.float32) / max(float(im.max()), 1e-6))).astype(np.uint8)
        out.append(np.ascontiguousarray(im[..., :3]))
    return out


def _noise_field(rng, size, octaves=4):
    field = np.zeros((size, size), np.float32)
    for o in range(octaves):
        cells = 2 ** (o + 2)
        grid = rng.random((cells, cells)).astype(np.float32)
        field += cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC) / 2 ** o
    return (field - field.min()) / (np.ptp(field) + 1e-6)


def _background(rng, size, comp: Composition):
    choices = ("photo",) + comp.textures
    kind = choices[rng.integers(len(choices))]
    if kind == "photo":  # a photo that a dependency ships
        photos = _photos(comp.photos)
        photo = photos[rng.integers(len(photos))]
        h, w = photo.shape[:2]
        s = int(rng.integers(min(h, w) // 2, min(h, w) + 1))
        y, x = rng.integers(0, h - s + 1), rng.integers(0, w - s + 1)
        return cv2.resize(photo[y:y + s, x:x + s], (size, size), interpolation=cv2.INTER_AREA)
    base = rng.integers(20, 200, 3).astype(np.float32)
    tint = rng.uniform(0.5, 1.5, 3).astype(np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    if kind == "wood":  # warped stripes
        warp = _noise_field(rng, size, 3) * rng.uniform(2, 6)
        v = 0.5 + 0.5 * np.sin((yy * rng.uniform(10, 40) + warp) * np.pi)
    elif kind == "cloth":  # fine weave
        f = rng.uniform(40, 90)
        v = 0.5 + 0.25 * (np.sin(xx * f * np.pi) + np.sin(yy * f * np.pi)) * _noise_field(rng, size, 2)
    elif kind == "stone":  # noise texture
        v = _noise_field(rng, size, 5)
    elif kind == "tiles":  # floor or table tiles with grout lines
        n = rng.uniform(3, 9)
        grout = (np.abs(np.sin(xx * n * np.pi)) < 0.06) | (np.abs(np.sin(yy * n * np.pi)) < 0.06)
        v = np.where(grout, 0.15, 0.7 + 0.2 * _noise_field(rng, size, 2))
    elif kind == "gradient":  # a plain desk under uneven light
        angle = rng.uniform(0, 2 * np.pi)
        v = 0.3 + 0.5 * (np.cos(angle) * xx + np.sin(angle) * yy + 1) / 2
    else:  # clutter: random rectangles and circles on a plain desk
        v = np.full((size, size), 0.5, np.float32)
        for _ in range(rng.integers(3, 12)):
            c = float(rng.random())
            p = rng.integers(0, size, 2)
            if rng.random() < 0.5:
                cv2.circle(v, (int(p[0]), int(p[1])), int(rng.integers(5, max(6, size // 4))), c, -1)
            else:
                q = p + rng.integers(-size // 3, size // 3, 2)
                cv2.rectangle(v, (int(p[0]), int(p[1])), (int(q[0]), int(q[1])), c, -1)
    img = base * tint * (0.6 + 0.8 * v[..., None])
    return np.clip(img, 0, 255).astype(np.uint8)


def _page(rng, width, height, layout: str = "report"):
    """A page texture: paper tone with text-like lines, tables and blocks, laid
    out as a report, a receipt, a form or two columns; sometimes folded."""
    tone = np.array(PAPER_TONES[rng.integers(len(PAPER_TONES))], np.float32) + rng.normal(0, 4, 3)
    page = np.empty((height, width, 3), np.uint8)
    page[:] = np.clip(tone, 0, 255)
    ink = tuple(int(v) for v in rng.integers(0, 90, 3))
    margin = int(width * rng.uniform(0.06, 0.14))
    if layout == "receipt":
        _receipt(rng, page, ink, margin)
    elif layout == "form":
        _form(rng, page, ink, margin)
    elif layout == "two_column":
        half = width // 2
        _report(rng, page[:, :half], ink, margin)
        _report(rng, page[:, half:], ink, margin)
    else:
        _report(rng, page, ink, margin)
    return _fold(rng, page) if rng.random() < 0.3 else page


def _receipt(rng, page, ink, margin):
    """Centred short lines of monospace-like blocks, with a total line."""
    height, width = page.shape[:2]
    y = margin
    while y < height - margin:
        n = int(rng.integers(3, 16))
        x = (width - n * 6) // 2 if rng.random() < 0.3 else margin
        for k in range(n):
            cv2.rectangle(page, (x + 6 * k, y), (x + 6 * k + 4, y + 4), ink, -1)
        y += int(rng.integers(8, 12))
        if rng.random() < 0.08:
            cv2.line(page, (margin, y), (width - margin, y), ink, 1)
            y += 6


def _form(rng, page, ink, margin):
    """Labels, underlined fields and check boxes."""
    height, width = page.shape[:2]
    y = margin
    while y < height - margin - 12:
        label = int(rng.integers(15, width // 3))
        cv2.rectangle(page, (margin, y), (margin + label, y + 4), ink, -1)
        if rng.random() < 0.3:
            for k in range(int(rng.integers(2, 5))):
                x = margin + label + 10 + 22 * k
                cv2.rectangle(page, (x, y - 2), (x + 8, y + 6), ink, 1)
        else:
            cv2.line(page, (margin + label + 8, y + 6), (width - margin, y + 6), ink, 1)
        y += int(rng.integers(14, 22))


def _fold(rng, page):
    """A crease across the page: one side a little darker, a thin line along it."""
    height, width = page.shape[:2]
    out = page.astype(np.float32)
    if rng.random() < 0.5:
        at = int(rng.integers(height // 4, 3 * height // 4))
        out[at:] *= rng.uniform(0.88, 0.97)
        cv2.line(out, (0, at), (width, at), tuple(float(v) * 0.8 for v in out[at, width // 2]), 1)
    else:
        at = int(rng.integers(width // 4, 3 * width // 4))
        out[:, at:] *= rng.uniform(0.88, 0.97)
        cv2.line(out, (at, 0), (at, height), tuple(float(v) * 0.8 for v in out[height // 2, at]), 1)
    return np.clip(out, 0, 255).astype(np.uint8)


def _report(rng, page, ink, margin):
    """Paragraphs, tables and blocks, top to bottom."""
    height, width = page.shape[:2]
    y = margin
    while y < height - margin:
        kind = rng.random()
        if kind < 0.7:  # a paragraph of text lines
            line_h = int(rng.integers(4, 9))
            for _ in range(rng.integers(2, 8)):
                if y > height - margin:
                    break
                x = margin
                end = width - margin - int(rng.integers(0, width // 3))
                while x < end:
                    wlen = int(rng.integers(4, 22))
                    cv2.rectangle(page, (x, y), (min(x + wlen, end), y + line_h // 2), ink, -1)
                    x += wlen + int(rng.integers(2, 6))
                y += line_h + 2
        elif kind < 0.85:  # a table
            rows, cols = int(rng.integers(2, 6)), int(rng.integers(2, 5))
            cell_h = int(rng.integers(8, 16))
            x0, x1 = margin, width - margin
            for r in range(rows + 1):
                cv2.line(page, (x0, y + r * cell_h), (x1, y + r * cell_h), ink, 1)
            for c in range(cols + 1):
                xc = x0 + (x1 - x0) * c // cols
                cv2.line(page, (xc, y), (xc, y + rows * cell_h), ink, 1)
            y += rows * cell_h
        else:  # a block: figure or logo
            bw, bh = int(rng.integers(width // 5, width // 2)), int(rng.integers(10, height // 5))
            x = int(rng.integers(margin, max(margin + 1, width - margin - bw)))
            color = tuple(int(v) for v in rng.integers(40, 220, 3))
            cv2.rectangle(page, (x, y), (x + bw, y + bh), color, -1)
            y += bh
        y += int(rng.integers(6, 16))


def _camera_quad(rng, size, aspect):
    """Project a rectangle of the given aspect through a random 3-D pose."""
    ax = np.deg2rad(rng.uniform(0, 35)) * rng.choice([-1, 1])
    ay = np.deg2rad(rng.uniform(-15, 15))
    az = np.deg2rad(rng.uniform(-25, 25))
    w, h = 1.0, aspect
    pts = np.array([[-w, -h, 0], [w, -h, 0], [w, h, 0], [-w, h, 0]], np.float64) / 2
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    p = pts @ (rz @ ry @ rx).T
    p[:, 2] += 2.5
    proj = p[:, :2] / p[:, 2:3]
    proj -= proj.mean(0)
    scale = rng.uniform(0.45, 0.95) * size / max(np.ptp(proj[:, 0]), np.ptp(proj[:, 1]))
    proj *= scale
    out_of_frame = rng.random() < 0.2
    for _ in range(20):
        shift = rng.uniform(-0.12, 0.12, 2) * size
        if out_of_frame:  # push a corner or two out, but keep every side visible
            shift += rng.choice([-1, 1], 2) * rng.uniform(0.1, 0.3, 2) * size
        quad = (proj + size / 2 + shift).astype(np.float32)
        if min(_visible_fraction(quad, i, size) for i in range(4)) >= 0.35:
            return quad
    return (proj + size / 2).astype(np.float32)


def _visible_fraction(quad, side, size):
    a, b = quad[side], quad[(side + 1) % 4]
    pts = a + np.linspace(0, 1, 32)[:, None] * (b - a)
    return float(np.mean(np.all((pts >= 0) & (pts <= size - 1), axis=1)))


def _lighting(rng, img):
    size = img.shape[0]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    angle = rng.uniform(0, 2 * np.pi)
    grad = 1 + rng.uniform(-0.35, 0.25) * (np.cos(angle) * xx + np.sin(angle) * yy)
    out = img.astype(np.float32) * grad[..., None] * rng.uniform(0.6, 1.15)
    if rng.random() < 0.5:  # a soft shadow across the scene
        mask = np.zeros((size, size), np.float32)
        poly = rng.integers(-size // 2, size + size // 2, (int(rng.integers(3, 6)), 2)).astype(np.int32)
        cv2.fillPoly(mask, [poly], 1.0)
        mask = cv2.GaussianBlur(mask, (0, 0), rng.uniform(3, 12))
        out *= 1 - rng.uniform(0.2, 0.55) * mask[..., None]
    warm = rng.uniform(-0.12, 0.12)  # colour temperature, then per-channel white balance
    out *= np.array([1 + warm, 1.0, 1 - warm], np.float32) * rng.uniform(0.93, 1.07, 3)
    return out


def _hand(rng, img, corners):
    """A skin-toned palm and fingers reaching over one side of the page."""
    size = img.shape[0]
    k = int(rng.integers(4))
    a, b = corners[k], corners[(k + 1) % 4]
    at = a + rng.uniform(0.25, 0.75) * (b - a)
    outward = at - corners.mean(0)
    outward /= np.linalg.norm(outward) + 1e-6
    palm = at + outward * size * rng.uniform(0.08, 0.16)
    skin = np.array([rng.uniform(150, 235), rng.uniform(100, 180), rng.uniform(80, 150)], np.float32)
    mask = np.zeros((size, size), np.float32)
    r = size * rng.uniform(0.07, 0.11)
    cv2.ellipse(mask, (int(palm[0]), int(palm[1])), (int(r * 1.2), int(r)), float(np.degrees(np.arctan2(*outward[::-1]))),
                0, 360, 1.0, -1)
    side = np.array([-outward[1], outward[0]])
    for f in range(4):  # fingers pointing onto the page
        base = palm + side * r * (f - 1.5) * 0.55
        tip = base - outward * r * rng.uniform(1.2, 1.9)
        cv2.line(mask, (int(base[0]), int(base[1])), (int(tip[0]), int(tip[1])), 1.0, max(2, int(r * 0.35)))
    mask = cv2.GaussianBlur(mask, (0, 0), 1.0)[..., None]
    shade = 0.75 + 0.25 * _noise_field(rng, size, 2)[..., None]
    return img * (1 - mask) + skin * shade * mask


def _motion_blur(rng, img):
    length = int(rng.integers(5, 14))
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2] = 1.0 / length
    rot = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), rng.uniform(0, 180), 1.0)
    kernel = cv2.warpAffine(kernel, rot, (length, length))
    return cv2.filter2D(img, -1, kernel / max(kernel.sum(), 1e-6))


def _degrade(rng, img):
    low_light = rng.random() < 0.15
    if low_light:  # underexposed, then the camera's gain lifts the noise
        img = 255 * (img / 255) ** rng.uniform(1.4, 2.2) * rng.uniform(0.35, 0.6)
    if rng.random() < 0.15:
        img = _motion_blur(rng, img)
    elif rng.random() < 0.6:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 1.6))
    img = img + rng.normal(0, rng.uniform(1, 8) * (2.5 if low_light else 1), img.shape).astype(np.float32)
    img = np.clip(img, 0, 255).astype(np.uint8)
    if rng.random() < 0.7:
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 95))])
        img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    return img


def generate(seed: int, index: int, size: int = 256, edge_width: int = 2, composition: str = "train") -> DocSample:
    """Sample ``index`` of the stream with ``seed``; same inputs, same sample.
    ``composition``: ``train`` or ``heldout`` (disjoint backgrounds and layouts)."""
    comp = COMPOSITIONS[composition]
    rng = np.random.default_rng([seed, index])
    img = _background(rng, size, comp).astype(np.float32)
    aspect = float(rng.choice(comp.aspects))
    layout = "receipt" if aspect > 2 else comp.layouts[rng.integers(len(comp.layouts))]
    page_w = 192
    page = _page(rng, page_w, int(page_w * aspect), layout).astype(np.float32)
    corners = _camera_quad(rng, size, aspect)
    src = np.array([[0, 0], [page_w, 0], [page_w, page.shape[0]], [0, page.shape[0]]], np.float32)
    homography = cv2.getPerspectiveTransform(src, corners)
    warped = cv2.warpPerspective(page, homography, (size, size), flags=cv2.INTER_AREA)
    mask = cv2.warpPerspective(np.ones(page.shape[:2], np.float32), homography, (size, size))
    img = img * (1 - mask[..., None]) + warped * mask[..., None]
    if rng.random() < 0.15:
        img = _hand(rng, img, order_corners(corners))
    img = _degrade(rng, _lighting(rng, img))
    corners = order_corners(corners)
    edges = np.zeros((size, size), np.uint8)
    cv2.polylines(edges, [np.round(corners * 16).astype(np.int32)], True, 1, edge_width, cv2.LINE_8, shift=4)
    return DocSample(img, edges, corners)

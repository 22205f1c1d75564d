"""Synthetic document photos: the embedded default dataset for HED.

Each sample is a page-like quad (text lines, tables, blocks on a paper tone)
pasted into a background (procedural textures or photos that scikit-image
ships) under a random camera: perspective tilt, rotation, scale, partly out of
frame, lighting gradient, shadow, blur, noise and JPEG. Labels are the four
corners (TL, TR, BR, BL, in output pixels) and the quad-border edge map.
Sample ``i`` of seed ``s`` depends only on ``(s, i)``: generation is
deterministic and embarrassingly parallel.
"""
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from mobile_models.docquad import order_corners

PAPER_TONES = [(250, 250, 248), (242, 238, 228), (235, 232, 215), (225, 228, 232), (248, 244, 236), (214, 206, 190)]
PHOTO_NAMES = ("astronaut", "brick", "camera", "chelsea", "coffee", "coins", "grass",
               "gravel", "rocket", "immunohistochemistry", "clock", "moon", "horse", "hubble_deep_field")


@dataclass
class DocSample:
    image: np.ndarray    # HxWx3 uint8 RGB
    edges: np.ndarray    # HxW uint8 {0, 1}
    corners: np.ndarray  # 4x2 float32, TL TR BR BL, may lie outside the frame


@lru_cache(maxsize=1)
def _photos():
    import skimage.data as data
    out = []
    for name in PHOTO_NAMES:
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


def _background(rng, size):
    kind = rng.integers(0, 5)
    if kind == 0:  # photo that a dependency ships
        photo = _photos()[rng.integers(len(_photos()))]
        h, w = photo.shape[:2]
        s = int(rng.integers(min(h, w) // 2, min(h, w) + 1))
        y, x = rng.integers(0, h - s + 1), rng.integers(0, w - s + 1)
        return cv2.resize(photo[y:y + s, x:x + s], (size, size), interpolation=cv2.INTER_AREA)
    base = rng.integers(20, 200, 3).astype(np.float32)
    tint = rng.uniform(0.5, 1.5, 3).astype(np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    if kind == 1:  # wood: warped stripes
        warp = _noise_field(rng, size, 3) * rng.uniform(2, 6)
        v = 0.5 + 0.5 * np.sin((yy * rng.uniform(10, 40) + warp) * np.pi)
    elif kind == 2:  # cloth: fine weave
        f = rng.uniform(40, 90)
        v = 0.5 + 0.25 * (np.sin(xx * f * np.pi) + np.sin(yy * f * np.pi)) * _noise_field(rng, size, 2)
    elif kind == 3:  # stone / noise texture
        v = _noise_field(rng, size, 5)
    else:  # clutter: random rectangles and circles on a plain desk
        v = np.full((size, size), 0.5, np.float32)
        for _ in range(rng.integers(3, 12)):
            c = float(rng.random())
            p = rng.integers(0, size, 2)
            if rng.random() < 0.5:
                cv2.circle(v, (int(p[0]), int(p[1])), int(rng.integers(5, size // 4)), c, -1)
            else:
                q = p + rng.integers(-size // 3, size // 3, 2)
                cv2.rectangle(v, (int(p[0]), int(p[1])), (int(q[0]), int(q[1])), c, -1)
    img = base * tint * (0.6 + 0.8 * v[..., None])
    return np.clip(img, 0, 255).astype(np.uint8)


def _page(rng, width, height):
    """A page texture: paper tone with text-like lines, tables and blocks."""
    tone = np.array(PAPER_TONES[rng.integers(len(PAPER_TONES))], np.float32) + rng.normal(0, 4, 3)
    page = np.empty((height, width, 3), np.uint8)
    page[:] = np.clip(tone, 0, 255)
    ink = tuple(int(v) for v in rng.integers(0, 90, 3))
    margin = int(width * rng.uniform(0.06, 0.14))
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
    return page


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
    out *= rng.uniform(0.9, 1.1, 3)  # white balance
    return out


def _degrade(rng, img):
    if rng.random() < 0.6:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 1.6))
    img = img + rng.normal(0, rng.uniform(1, 8), img.shape).astype(np.float32)
    img = np.clip(img, 0, 255).astype(np.uint8)
    if rng.random() < 0.7:
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 95))])
        img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    return img


def generate(seed: int, index: int, size: int = 256, edge_width: int = 2) -> DocSample:
    """Sample ``index`` of the stream with ``seed``; same inputs, same sample."""
    rng = np.random.default_rng([seed, index])
    img = _background(rng, size).astype(np.float32)
    aspect = float(rng.choice([1.414, 1.294, 1.586, 2.4, 0.707]))
    page_w = 192
    page = _page(rng, page_w, int(page_w * aspect)).astype(np.float32)
    corners = _camera_quad(rng, size, aspect)
    src = np.array([[0, 0], [page_w, 0], [page_w, page.shape[0]], [0, page.shape[0]]], np.float32)
    homography = cv2.getPerspectiveTransform(src, corners)
    warped = cv2.warpPerspective(page, homography, (size, size), flags=cv2.INTER_AREA)
    mask = cv2.warpPerspective(np.ones(page.shape[:2], np.float32), homography, (size, size))
    img = img * (1 - mask[..., None]) + warped * mask[..., None]
    img = _degrade(rng, _lighting(rng, img))
    corners = order_corners(corners)
    edges = np.zeros((size, size), np.uint8)
    cv2.polylines(edges, [np.round(corners * 16).astype(np.int32)], True, 1, edge_width, cv2.LINE_8, shift=4)
    return DocSample(img, edges, corners)

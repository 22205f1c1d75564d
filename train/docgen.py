"""Synthetic document photos: the embedded default dataset for HED.

Each sample is a page (report, receipt, form, two-column layout, packaging, or a
real picture printed on paper; sometimes folded) pasted into a background
(procedural textures, object clutter, a pale desk, or real photos that the
packages ship), sometimes under a hand or thumb, seen by a random camera:
perspective tilt, rotation, scale (small pages too), partly out of frame,
lighting gradient, shadow, colour temperature, low light, defocus or motion
blur, noise and JPEG. Some samples are non-square frames letterboxed into the
square input, as ``edgepipe scan`` feeds a phone photo. Labels are the four
corners (TL, TR, BR, BL, in output pixels), the quad-border edge map and the
page-region map (both zero in letterbox bands). Sample ``i`` of seed ``s`` depends only on ``(s, i)``:
generation is deterministic and embarrassingly parallel.
"""
from dataclasses import dataclass

import cv2
import numpy as np

from edgepipe.mobile_models.docquad import order_corners
from edgepipe.mobile_models.scan import PAD_VALUE, letterbox_geometry
from edgepipe.train import deskobjects, realimages

PAPER_TONES = [(250, 250, 248), (242, 238, 228), (235, 232, 215), (225, 228, 232), (248, 244, 236), (214, 206, 190)]


@dataclass(frozen=True)
class Composition:
    """Which backgrounds and page styles a stream draws from. ``HELDOUT`` shares
    none of ``TRAIN``'s photos, background textures, page layouts or printed
    pictures, so a score on it says how the detector does on scenes unlike its
    training."""
    photos: tuple[str, ...]
    textures: tuple[str, ...]
    layouts: tuple[str, ...]
    aspects: tuple[float, ...]
    pictures: tuple[str, ...] = ()
    desk_objects: float = 0.0   # share of scenes with phones, cards or books beside the page


@dataclass(frozen=True)
class Camera:
    """How the page is seen: tilt (degrees about the horizontal axis), the page's
    share of the frame, and how often a hand or thumb covers a side."""
    max_tilt: float = 50.0
    min_tilt: float = 0.0
    scale: tuple[float, float] = (0.25, 0.95)
    out_of_frame: float = 0.2
    hand: float = 0.2


TRAIN = Composition(photos=realimages.TRAIN_PHOTOS,
                    textures=("wood", "cloth", "stone", "clutter", "objects", "pale", "grid"),
                    layouts=("report", "receipt", "package", "picture"),
                    aspects=(1.414, 1.294, 1.586, 2.4, 0.707), pictures=realimages.TRAIN_PICTURES,
                    desk_objects=0.3)
HELDOUT = Composition(photos=realimages.EVAL_PHOTOS, textures=("tiles", "gradient"),
                      layouts=("form", "two_column", "picture"), aspects=(1.414, 1.333, 1.5, 0.75),
                      pictures=realimages.EVAL_PICTURES)
COMPOSITIONS = {"train": TRAIN, "heldout": HELDOUT}
LETTERBOX_SHARE = 0.3       # training samples that are letterboxed phone frames
FRAME_ASPECTS = (4 / 3, 3 / 4, 16 / 9, 9 / 16)


@dataclass
class DocSample:
    image: np.ndarray    # HxWx3 uint8 RGB
    edges: np.ndarray    # HxW uint8 {0, 1}
    corners: np.ndarray  # 4x2 float32, TL TR BR BL, may lie outside the frame
    region: np.ndarray   # HxW uint8 {0, 1}: the visible page
    content: tuple       # (x, y, w, h): the photo inside a letterboxed frame, as scan's roi


def _noise_field(rng, shape, octaves=4):
    h, w = (shape, shape) if np.isscalar(shape) else shape
    field = np.zeros((h, w), np.float32)
    for o in range(octaves):
        cells = 2 ** (o + 2)
        grid = rng.random((cells, cells)).astype(np.float32)
        field += cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC) / 2 ** o
    return (field - field.min()) / (np.ptp(field) + 1e-6)


def _photo_crop(rng, photo, h, w):
    """A random crop of ``photo`` with the frame's aspect, resized to h x w."""
    ph, pw = photo.shape[:2]
    ch = int(rng.integers(max(8, ph // 2), ph + 1))
    cw = min(pw, max(8, int(round(ch * w / h))))
    ch = min(ph, max(8, int(round(cw * h / w))))
    y, x = rng.integers(0, ph - ch + 1), rng.integers(0, pw - cw + 1)
    crop = photo[y:y + ch, x:x + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    interp = cv2.INTER_AREA if ch > h else cv2.INTER_LINEAR
    return cv2.resize(crop, (w, h), interpolation=interp)


def _objects(rng, v, h, w):
    """Object clutter with strong outlines: cups, books, phones, cables, table edges."""
    for _ in range(rng.integers(4, 14)):
        c, ink = float(rng.random()), float(rng.random() < 0.5)
        p = rng.integers(0, [w, h])
        kind = rng.random()
        thick = int(rng.integers(1, 4))
        if kind < 0.35:
            axes = (int(rng.integers(5, max(6, w // 5))), int(rng.integers(5, max(6, h // 5))))
            cv2.ellipse(v, (int(p[0]), int(p[1])), axes, float(rng.uniform(0, 180)), 0, 360, c, -1)
            cv2.ellipse(v, (int(p[0]), int(p[1])), axes, float(rng.uniform(0, 180)), 0, 360, ink, thick)
        elif kind < 0.7:
            size = rng.uniform(0.05, 0.3) * np.array([w, h])
            box = cv2.boxPoints(((float(p[0]), float(p[1])), tuple(map(float, size)), float(rng.uniform(0, 90))))
            cv2.fillPoly(v, [box.astype(np.int32)], c)
            cv2.polylines(v, [box.astype(np.int32)], True, ink, thick)
        else:  # a long straight edge: a shelf, a table's rim, a cable
            q = rng.integers(0, [w, h])
            cv2.line(v, (int(p[0]), int(p[1])), (int(q[0]), int(q[1])), c, int(rng.integers(1, 6)))
    return v


def _background(rng, h, w, comp: Composition, pale=False):
    if pale:  # a pale desk under a pale page: the low-contrast case
        base = rng.uniform(175, 235) + rng.normal(0, 6, 3)
        v = 0.9 + 0.1 * _noise_field(rng, (h, w), 3)
        return np.clip(base * v[..., None], 0, 255).astype(np.uint8)
    choices = ("photo",) * 4 + comp.textures
    kind = choices[rng.integers(len(choices))]
    if kind == "photo":  # a photo that a dependency ships
        return _photo_crop(rng, realimages.load(comp.photos[rng.integers(len(comp.photos))]), h, w)
    if kind == "pale":
        return _background(rng, h, w, comp, pale=True)
    base = rng.integers(20, 200, 3).astype(np.float32)
    tint = rng.uniform(0.5, 1.5, 3).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) / max(h, w)
    if kind == "wood":  # warped stripes
        warp = _noise_field(rng, (h, w), 3) * rng.uniform(2, 6)
        v = 0.5 + 0.5 * np.sin((yy * rng.uniform(10, 40) + warp) * np.pi)
    elif kind == "cloth":  # fine weave
        f = rng.uniform(40, 90)
        v = 0.5 + 0.25 * (np.sin(xx * f * np.pi) + np.sin(yy * f * np.pi)) * _noise_field(rng, (h, w), 2)
    elif kind == "stone":  # noise texture
        v = _noise_field(rng, (h, w), 5)
    elif kind == "tiles":  # floor or table tiles with grout lines
        n = rng.uniform(3, 9)
        grout = (np.abs(np.sin(xx * n * np.pi)) < 0.06) | (np.abs(np.sin(yy * n * np.pi)) < 0.06)
        v = np.where(grout, 0.15, 0.7 + 0.2 * _noise_field(rng, (h, w), 2))
    elif kind == "gradient":  # a plain desk under uneven light
        angle = rng.uniform(0, 2 * np.pi)
        v = 0.3 + 0.5 * (np.cos(angle) * xx + np.sin(angle) * yy + 1) / 2
    elif kind == "grid":  # shelves, window panes, planks: long crossing lines that are no page
        v = np.full((h, w), float(rng.uniform(0.3, 0.8)), np.float32)
        for axis in (0, 1) if rng.random() < 0.7 else (int(rng.integers(2)),):
            pos = 0.0
            while pos < (w, h)[axis]:
                pos += rng.uniform(0.08, 0.35) * max(h, w)
                shade, width = float(rng.uniform(0, 1)), int(rng.integers(1, 5))
                p, q = ((int(pos), 0), (int(pos), h)) if axis == 0 else ((0, int(pos)), (w, int(pos)))
                cv2.line(v, p, q, shade, width)
        angle = rng.uniform(-30, 30)
        v = cv2.warpAffine(v, cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.3), (w, h),
                           borderMode=cv2.BORDER_REFLECT)
    elif kind == "objects":
        v = _objects(rng, np.full((h, w), float(rng.uniform(0.2, 0.8)), np.float32), h, w)
    else:  # clutter: random rectangles and circles on a plain desk
        v = np.full((h, w), 0.5, np.float32)
        side = min(h, w)
        for _ in range(rng.integers(3, 12)):
            c = float(rng.random())
            p = rng.integers(0, [w, h])
            if rng.random() < 0.5:
                cv2.circle(v, (int(p[0]), int(p[1])), int(rng.integers(5, max(6, side // 4))), c, -1)
            else:
                q = p + rng.integers(-side // 3, side // 3, 2)
                cv2.rectangle(v, (int(p[0]), int(p[1])), (int(q[0]), int(q[1])), c, -1)
    img = base * tint * (0.6 + 0.8 * v[..., None])
    return np.clip(img, 0, 255).astype(np.uint8)


def _page(rng, width, height, layout: str = "report", pictures=()):
    """A page texture: paper tone with text-like lines, tables and blocks, laid
    out as a report, a receipt, a form or two columns; a printed box (packaging);
    or a real picture printed on paper. Sometimes folded."""
    tone = np.array(PAPER_TONES[rng.integers(len(PAPER_TONES))], np.float32) + rng.normal(0, 4, 3)
    page = np.empty((height, width, 3), np.uint8)
    page[:] = np.clip(tone, 0, 255)
    ink = tuple(int(v) for v in rng.integers(0, 90, 3))
    margin = int(width * rng.uniform(0.06, 0.14))
    if layout == "package":
        _package(rng, page, margin)
    elif layout == "picture" and pictures:
        _picture(rng, page, realimages.load(pictures[rng.integers(len(pictures))]), margin)
    elif layout == "receipt":
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


def _package(rng, page, margin):
    """A printed card or box face: a saturated colour, bands and a logo block."""
    height, width = page.shape[:2]
    page[:] = rng.integers(0, 256, 3)
    for _ in range(rng.integers(1, 4)):
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            y = int(rng.integers(0, height))
            cv2.rectangle(page, (0, y), (width, y + int(rng.integers(4, height // 4))), colour, -1)
        else:
            c = (int(rng.integers(margin, width - margin)), int(rng.integers(margin, height - margin)))
            cv2.circle(page, c, int(rng.integers(5, width // 3)), colour, -1)
    _report(rng, page[height // 2:], tuple(int(v) for v in rng.integers(0, 256, 3)), margin)


def _picture(rng, page, picture, margin):
    """A real picture printed on the paper (ink multiplies the paper tone), tiled
    down the page like a book's pages or a flyer."""
    height, width = page.shape[:2]
    inner = width - 2 * margin
    tile_h = max(4, int(inner * picture.shape[0] / picture.shape[1]))
    tile = cv2.resize(picture, (inner, tile_h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    y = margin
    while y + 4 < height - margin:
        rows = min(tile_h, height - margin - y)
        region = page[y:y + rows, margin:margin + inner].astype(np.float32)
        page[y:y + rows, margin:margin + inner] = (region * tile[:rows]).astype(np.uint8)
        y += tile_h + int(rng.integers(4, 20))


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


def _camera_quad(rng, h, w, aspect, camera: Camera = Camera()):
    """Project a rectangle of the given aspect through a random 3-D pose."""
    ax = np.deg2rad(rng.uniform(camera.min_tilt, camera.max_tilt)) * rng.choice([-1, 1])
    ay = np.deg2rad(rng.uniform(-15, 15))
    az = np.deg2rad(rng.uniform(-25, 25))
    pw, ph = 1.0, aspect
    pts = np.array([[-pw, -ph, 0], [pw, -ph, 0], [pw, ph, 0], [-pw, ph, 0]], np.float64) / 2
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    p = pts @ (rz @ ry @ rx).T
    p[:, 2] += 2.5
    proj = p[:, :2] / p[:, 2:3]
    proj -= proj.mean(0)
    proj *= rng.uniform(*camera.scale) * min(w / np.ptp(proj[:, 0]), h / np.ptp(proj[:, 1]))
    centre, frame = np.array([w, h]) / 2, np.array([w, h], np.float64)
    out_of_frame = rng.random() < camera.out_of_frame
    for _ in range(20):
        slack = np.maximum(frame - np.ptp(proj, 0), 0) / 2  # room to move while staying in frame
        shift = rng.uniform(-1, 1, 2) * np.maximum(slack, 0.05 * frame)
        if out_of_frame:  # push a corner or two out, but keep every side visible
            shift += rng.choice([-1, 1], 2) * rng.uniform(0.1, 0.3, 2) * frame
        quad = (proj + centre + shift).astype(np.float32)
        if min(_visible_fraction(quad, i, h, w) for i in range(4)) >= 0.35:
            return quad
    return (proj + centre).astype(np.float32)


def _visible_fraction(quad, side, h, w):
    a, b = quad[side], quad[(side + 1) % 4]
    pts = a + np.linspace(0, 1, 32)[:, None] * (b - a)
    return float(np.mean(np.all((pts >= 0) & (pts <= np.array([w - 1, h - 1])), axis=1)))


def _lighting(rng, img):
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) / max(h, w)
    angle = rng.uniform(0, 2 * np.pi)
    grad = 1 + rng.uniform(-0.35, 0.25) * (np.cos(angle) * xx + np.sin(angle) * yy)
    out = img.astype(np.float32) * grad[..., None] * rng.uniform(0.6, 1.15)
    if rng.random() < 0.5:  # a soft shadow across the scene
        mask = np.zeros((h, w), np.float32)
        poly = (rng.uniform(-0.5, 1.5, (int(rng.integers(3, 6)), 2)) * [w, h]).astype(np.int32)
        cv2.fillPoly(mask, [poly], 1.0)
        mask = cv2.GaussianBlur(mask, (0, 0), rng.uniform(3, 12) * max(h, w) / 256)
        out *= 1 - rng.uniform(0.2, 0.55) * mask[..., None]
    warm = rng.uniform(-0.12, 0.12)  # colour temperature, then per-channel white balance
    out *= np.array([1 + warm, 1.0, 1 - warm], np.float32) * rng.uniform(0.93, 1.07, 3)
    return out


def _hand(rng, img, corners):
    """A skin-toned palm and fingers (or a thumb) reaching over one side of the page."""
    h, w = img.shape[:2]
    size = min(h, w)
    k = int(rng.integers(4))
    a, b = corners[k], corners[(k + 1) % 4]
    at = a + rng.uniform(0.25, 0.75) * (b - a)
    outward = at - corners.mean(0)
    outward /= np.linalg.norm(outward) + 1e-6
    r = size * rng.uniform(0.07, 0.11)
    palm = at + outward * r * rng.uniform(0.6, 1.1)  # just outside the side, so fingers cross it
    skin = np.array([rng.uniform(150, 235), rng.uniform(100, 180), rng.uniform(80, 150)], np.float32)
    mask = np.zeros((h, w), np.float32)
    cv2.ellipse(mask, (int(palm[0]), int(palm[1])), (int(r * 1.2), int(r)), float(np.degrees(np.arctan2(*outward[::-1]))),
                0, 360, 1.0, -1)
    side = np.array([-outward[1], outward[0]])
    thumb = rng.random() < 0.5
    for f in range(1 if thumb else 4):  # fingers (or one thumb) pointing onto the page
        base = palm + side * r * (0 if thumb else (f - 1.5) * 0.55)
        tip = base - outward * r * rng.uniform(1.5, 2.2)
        cv2.line(mask, (int(base[0]), int(base[1])), (int(tip[0]), int(tip[1])), 1.0, max(2, int(r * 0.35)))
    mask = cv2.GaussianBlur(mask, (0, 0), max(1.0, size / 256))[..., None]
    shade = 0.75 + 0.25 * _noise_field(rng, (h, w), 2)[..., None]
    return img * (1 - mask) + skin * shade * mask


def _motion_blur(rng, img, px=1.0):
    length = max(3, int(rng.integers(5, 14) * px))
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2] = 1.0 / length
    rot = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), rng.uniform(0, 180), 1.0)
    kernel = cv2.warpAffine(kernel, rot, (length, length))
    return cv2.filter2D(img, -1, kernel / max(kernel.sum(), 1e-6))


def _degrade(rng, img):
    """Camera faults, in units of a 256-pixel frame so that a phone-sized frame
    blurs as much once scaled down."""
    px = max(img.shape[:2]) / 256
    low_light = rng.random() < 0.15
    if low_light:  # underexposed, then the camera's gain lifts the noise
        img = 255 * (img / 255) ** rng.uniform(1.4, 2.2) * rng.uniform(0.35, 0.6)
    if rng.random() < 0.15:
        img = _motion_blur(rng, img, px)
    elif rng.random() < 0.6:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 1.6) * px)
    img = img + rng.normal(0, rng.uniform(1, 8) * (2.5 if low_light else 1), img.shape).astype(np.float32)
    img = np.clip(img, 0, 255).astype(np.uint8)
    if rng.random() < 0.7:
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 95))])
        img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    return img


def render_scene(rng, h: int, w: int, comp: Composition, camera: Camera = Camera(), pale: bool = False):
    """One h x w photo of a page: (RGB uint8 image, corners TL TR BR BL in pixels)."""
    img = _background(rng, h, w, comp, pale=pale or rng.random() < 0.08).astype(np.float32)
    aspect = float(rng.choice(comp.aspects))
    layout = "receipt" if aspect > 2 else comp.layouts[rng.integers(len(comp.layouts))]
    page_w = 192
    page = _page(rng, page_w, int(page_w * aspect), layout, comp.pictures).astype(np.float32)
    corners = _camera_quad(rng, h, w, aspect, camera)
    src = np.array([[0, 0], [page_w, 0], [page_w, page.shape[0]], [0, page.shape[0]]], np.float32)
    homography = cv2.getPerspectiveTransform(src, corners)
    if comp.desk_objects and rng.random() < comp.desk_objects:
        img = deskobjects.lay(rng, img, homography, (page_w, page.shape[0]), page[2:6, 2:6].mean((0, 1)))
    flags = cv2.INTER_AREA if max(h, w) <= 512 else cv2.INTER_LINEAR
    warped = cv2.warpPerspective(page, homography, (w, h), flags=flags)
    mask = cv2.warpPerspective(np.ones(page.shape[:2], np.float32), homography, (w, h))
    img = img * (1 - mask[..., None]) + warped * mask[..., None]
    if rng.random() < camera.hand:
        img = _hand(rng, img, order_corners(corners))
    return _degrade(rng, _lighting(rng, img)), order_corners(corners)


def generate(seed: int, index: int, size: int = 256, edge_width: int = 2, composition: str = "train") -> DocSample:
    """Sample ``index`` of the stream with ``seed``; same inputs, same sample.
    ``composition``: ``train`` or ``heldout`` (disjoint backgrounds and layouts).
    A share of samples are non-square frames letterboxed as ``scan`` does."""
    comp = COMPOSITIONS[composition]
    rng = np.random.default_rng([seed, index])
    h = w = size
    if rng.random() < LETTERBOX_SHARE:
        aspect = float(rng.choice(FRAME_ASPECTS))  # width / height
        box = letterbox_geometry(int(round(1000 / aspect)), 1000, size, size)
        h, w = box.h, box.w
    img, corners = render_scene(rng, h, w, comp)
    x0, y0 = (size - w) // 2, (size - h) // 2
    image = np.full((size, size, 3), PAD_VALUE, np.uint8)
    image[y0:y0 + h, x0:x0 + w] = img
    corners = corners + np.array([x0, y0], np.float32)
    content = (x0, y0, w, h)
    return DocSample(image, edge_label(corners, size, edge_width, content), corners,
                     region_label(corners, size, content), content)


def _content_mask(size: int, content) -> np.ndarray:
    x, y, w, h = content
    inside = np.zeros((size, size), np.uint8)
    inside[y:y + h, x:x + w] = 1
    return inside


def region_label(corners: np.ndarray, size: int, content) -> np.ndarray:
    """The page's area (the quad filled, sub-pixel corners) as a size x size
    uint8 {0, 1} map, zero outside ``content`` (x, y, w, h)."""
    region = np.zeros((size, size), np.uint8)
    cv2.fillPoly(region, [np.round(corners * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
    return region * _content_mask(size, content)


def edge_label(corners: np.ndarray, size: int, edge_width: int, content) -> np.ndarray:
    """The quad's border as a size x size uint8 {0, 1} map (sub-pixel corners),
    zero outside ``content`` (x, y, w, h): letterbox bands show no page."""
    edges = np.zeros((size, size), np.uint8)
    cv2.polylines(edges, [np.round(corners * 16).astype(np.int32)], True, 1, edge_width, cv2.LINE_8, shift=4)
    return edges * _content_mask(size, content)

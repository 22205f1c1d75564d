"""Document scanning on scenes from an independent compositor.

    .venv/bin/python benchmarks/independent_scenes.py [--run runs/default] [--model FILE] [--count 160]
        [--seed 1] [--worst DIR]

``benchmarks/document_quality.py`` scores ``edgepipe scan`` on phone-like photos
that the training renderer (``train/docgen.py``) draws, only from evaluation
sources. A good score there may still be an artefact of that renderer. This
benchmark composes its scenes with code of its own, written from scratch with
numpy, OpenCV, Pillow and matplotlib; it imports nothing from ``train/docgen.py``
or ``train/phoneshots.py``. From ``edgepipe.train.realimages`` it only loads the
evaluation images: ``EVAL_PHOTOS`` as backgrounds, ``EVAL_PICTURES`` pasted on
some pages. Page content (letters, reports with matplotlib charts, tables, forms,
notebooks, receipts, flyers) is drawn here, with Pillow's default font at several
sizes.

These are generated images composed from real photographs, not camera
recordings: a page of a real paper size (A4, US letter, a till receipt) is placed
in 3-D in front of a pinhole camera (rotation about all three axes, a phone-like
focal length, a distance), projected onto a background crop, and the photo then
goes through lighting and a camera model (blur, sensor noise, JPEG written and
read back). The labels are the page's exact projected corners (TL, TR, BR, BL,
photo pixels, pixel centres at integer coordinates as in OpenCV); every corner is
inside the frame. Frames are 640x480, 480x640, 1512x2016 and 2016x1512 (w x h).

Conditions (they cycle with the scene index, so any prefix covers them evenly):
``plain``, ``small_page`` (the page 15-30% of the frame's width), ``strong_tilt``
(50-65 degrees between the page's normal and the optical axis), ``pale_on_pale``
(a white page on a bright, low-texture desk), ``occluded`` (a finger, thumb, hand
or an object over part of one side), ``clutter`` (books, a phone, cards, another
sheet, a keyboard, a ruler, desk edges and plank seams around the page, in the
page's plane), ``lighting`` (hard shadow across the page, vignetting, colour
cast, low light, glare) and ``blur_noise`` (defocus, motion blur, sensor noise,
JPEG quality 40-70).

Each scene goes through ``edgepipe scan``'s own path (``scan.scan``: letterbox,
auto-exposure, model, quad finder, back to photo pixels); the error is the worst
corner's distance as a share of the photo diagonal. Scene ``i`` of seed ``s`` is
the same image on every run. ``--worst DIR`` writes the worst scans as PNG (true
quad green, found quad red; scaled to at most 1024 pixels).
"""
import argparse
import io
import json
import sys
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edgepipe.evaluate.taskmetrics import error_summary, error_table_lines, worst_corner_error  # noqa: E402
from edgepipe.train import realimages  # noqa: E402  (image loading only, evaluation sources only)

FRAMES = ((480, 640), (640, 480), (2016, 1512), (1512, 2016))  # (height, width)
CONDITIONS = ("plain", "small_page", "strong_tilt", "pale_on_pale", "occluded", "clutter", "lighting", "blur_noise")
PAPERS = {"A4": (210.0, 297.0), "letter": (215.9, 279.4), "receipt": (80.0, None)}  # mm; a receipt's length varies
LAYOUTS = ("letter", "report", "table", "form", "flyer", "notebook")
STREAM = 0x5CE7E  # this compositor's own random stream tag

WORDS = ("the of and to in is for on that with as by this be are from at or an it not which have has was all "
         "can will one more their also any been other into its may such than these our only new used some time "
         "account invoice total payment delivery order number customer service period balance amount report "
         "quarter review results growth market revenue data analysis project meeting schedule office notice "
         "please contact address department summary figure table section policy member annual budget update "
         "river garden station morning village library museum harbour winter company product quality").split()


@dataclass
class Scene:
    image: np.ndarray           # HxWx3 uint8 RGB
    corners: np.ndarray         # 4x2 float64, TL TR BR BL in photo pixels
    condition: str
    paper: str
    layout: str
    tilt_deg: float
    coverage: np.ndarray | None = None  # HxW float32: the page's share of each pixel (before occluders)


# ----------------------------------------------------------------------------- geometry

def _rotation(axis, angle: float) -> np.ndarray:
    r, _ = cv2.Rodrigues(np.asarray(axis, np.float64).reshape(3, 1) * angle)
    return r


def _intrinsics(rng, h: int, w: int) -> np.ndarray:
    """A phone or webcam lens: 55-80 degrees across the diagonal, principal point near the centre."""
    fov = np.deg2rad(rng.uniform(55, 80))
    f = 0.5 * np.hypot(w, h) / np.tan(fov / 2)
    cx, cy = w / 2 + rng.normal(0, 0.01) * w, h / 2 + rng.normal(0, 0.01) * h
    return np.array([[f, 0, cx], [0, f, cy], [0, 0, 1]], np.float64)


@dataclass
class View:
    K: np.ndarray
    R: np.ndarray
    t: np.ndarray
    tilt_deg: float

    def camera(self, pts_mm) -> np.ndarray:
        """Plane points (N x 2, mm, page centre at 0, y down the page) -> camera coordinates (N x 3)."""
        p = np.asarray(pts_mm, np.float64).reshape(-1, 2)
        return p[:, :1] * self.R[:, 0] + p[:, 1:2] * self.R[:, 1] + self.t

    def project(self, pts_mm) -> np.ndarray:
        c = self.camera(pts_mm) @ self.K.T
        return c[:, :2] / c[:, 2:3]

    @property
    def homography(self) -> np.ndarray:
        """Plane mm -> photo pixels."""
        return self.K @ np.column_stack([self.R[:, 0], self.R[:, 1], self.t])


def _page_outline(size_mm) -> np.ndarray:
    w, h = size_mm
    return np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]], np.float64)


def _place(rng, h, w, size_mm, tilt, fill, width_fill=False):
    """Pose a page of ``size_mm`` so that its projection fills ``fill`` of the frame
    (its width share if ``width_fill``, else its larger share) with every corner inside."""
    outline = _page_outline(size_mm)
    margin = max(2.0, 0.012 * min(h, w))
    for attempt in range(80):
        K = _intrinsics(rng, h, w)
        tilt_deg = rng.uniform(*tilt)
        phi = rng.uniform(0, 2 * np.pi)  # the tilt's axis, in the page plane
        roll = np.deg2rad(rng.choice([0, 90, 180, 270], p=[0.5, 0.25, 0.1, 0.15]) + np.clip(rng.normal(0, 12), -30, 30))
        R = _rotation([np.cos(phi), np.sin(phi), 0.0], np.deg2rad(tilt_deg)) @ _rotation([0, 0, 1], roll)
        target = rng.uniform(*fill) * (0.985 ** max(0, attempt - 20))
        reach = max(0.0, 0.3 * (1 - attempt / 40))
        centre = np.array([w / 2, h / 2]) + rng.uniform(-reach, reach, 2) * [w, h]
        ray = np.linalg.solve(K, [centre[0], centre[1], 1.0])
        z = 600.0
        view = None
        for _ in range(5):
            view = View(K, R, ray * z, tilt_deg)
            if np.any(view.camera(outline)[:, 2] <= 1.0):
                break
            p = view.project(outline)
            share = np.ptp(p[:, 0]) / w if width_fill else max(np.ptp(p[:, 0]) / w, np.ptp(p[:, 1]) / h)
            z *= share / target
        view = View(K, R, ray * z, tilt_deg)
        if np.any(view.camera(outline)[:, 2] <= 0.2 * z):
            continue
        p = view.project(outline)
        share = np.ptp(p[:, 0]) / w if width_fill else max(np.ptp(p[:, 0]) / w, np.ptp(p[:, 1]) / h)
        inside = np.all((p >= margin) & (p <= np.array([w - 1, h - 1]) - margin))
        if inside and abs(share / target - 1) < 0.03:
            return view, p
    raise RuntimeError("could not place the page")  # not reached for the ranges used here


def _clockwise_from_top_left(p) -> np.ndarray:
    """TL, TR, BR, BL: clockwise on screen (y down), starting at the smallest x + y."""
    p = np.asarray(p, np.float64)
    c = p.mean(0)
    p = p[np.argsort(np.arctan2(p[:, 1] - c[1], p[:, 0] - c[0]))]
    return np.roll(p, -int(np.argmin(p.sum(1))), axis=0)


def _clip_near(cam_pts: np.ndarray, z_min: float) -> np.ndarray:
    """A polygon in camera coordinates clipped to z >= z_min (Sutherland-Hodgman, one plane)."""
    out = []
    n = len(cam_pts)
    for i in range(n):
        a, b = cam_pts[i], cam_pts[(i + 1) % n]
        ina, inb = a[2] >= z_min, b[2] >= z_min
        if ina:
            out.append(a)
        if ina != inb:
            s = (z_min - a[2]) / (b[2] - a[2])
            out.append(a + s * (b - a))
    return np.array(out)


def _project_polygon(view: View, pts_mm) -> np.ndarray | None:
    cam = _clip_near(view.camera(pts_mm), 0.15 * view.t[2])
    if len(cam) < 3:
        return None
    c = cam @ view.K.T
    return c[:, :2] / c[:, 2:3]


# ----------------------------------------------------------------------------- rasters and layers

def _smooth_noise(rng, h, w, cells: float) -> np.ndarray:
    """Zero-mean, unit-ish, smooth random field with about ``cells`` bumps across the longer side."""
    gh, gw = max(2, int(round(cells * h / max(h, w))) + 2), max(2, int(round(cells * w / max(h, w))) + 2)
    field = cv2.resize(rng.standard_normal((gh, gw)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    return field / max(float(field.std()), 1e-6)


def _layer(raster_rgba: np.ndarray, H_raster: np.ndarray, h: int, w: int):
    """Warp an RGBA float raster (straight alpha, 0..1) with ``H_raster`` (raster pixel
    centres -> photo pixel centres). A one-pixel transparent border makes the alpha
    ramp cross 0.5 exactly on the raster's outer edge (index -0.5 and size - 0.5).
    Returns (x0, y0, premultiplied RGB 0..255, alpha) over the clipped bounding box, or None."""
    rh, rw = raster_rgba.shape[:2]
    pad = np.zeros((rh + 2, rw + 2, 4), np.float32)
    pad[1:-1, 1:-1, :3] = raster_rgba[..., :3] * raster_rgba[..., 3:]
    pad[1:-1, 1:-1, 3] = raster_rgba[..., 3]
    Hp = H_raster @ np.array([[1, 0, -1], [0, 1, -1], [0, 0, 1]], np.float64)
    box = np.array([[-0.5, -0.5, 1], [rw + 1.5, -0.5, 1], [rw + 1.5, rh + 1.5, 1], [-0.5, rh + 1.5, 1]]) @ Hp.T
    if np.any(box[:, 2] <= 0):
        return None
    box = box[:, :2] / box[:, 2:3]
    x0, y0 = max(0, int(np.floor(box[:, 0].min())) - 1), max(0, int(np.floor(box[:, 1].min())) - 1)
    x1, y1 = min(w, int(np.ceil(box[:, 0].max())) + 2), min(h, int(np.ceil(box[:, 1].max())) + 2)
    if x1 <= x0 or y1 <= y0:
        return None
    Hb = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], np.float64) @ Hp
    out = cv2.warpPerspective(pad, Hb, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))
    return x0, y0, out[..., :3] * 255, np.clip(out[..., 3], 0, 1)


def _blend(canvas: np.ndarray, layer) -> None:
    if layer is None:
        return
    x0, y0, rgb, a = layer
    region = canvas[y0:y0 + a.shape[0], x0:x0 + a.shape[1]]
    region *= 1 - a[..., None]
    region += rgb


def _paste_plane(canvas, view: View, raster_rgba, centre_mm, size_mm, angle=0.0) -> None:
    """Lay an RGBA raster as a ``size_mm`` rectangle in the page's plane, centred at
    ``centre_mm`` and turned by ``angle`` (radians); skipped where it nears the camera."""
    rh, rw = raster_rgba.shape[:2]
    sw, sh = size_mm
    c, s = np.cos(angle), np.sin(angle)
    # raster index -> local mm (centred) -> turned -> plane mm
    local = np.array([[sw / rw, 0, (0.5 * sw / rw) - sw / 2], [0, sh / rh, (0.5 * sh / rh) - sh / 2], [0, 0, 1]])
    turn = np.array([[c, -s, centre_mm[0]], [s, c, centre_mm[1]], [0, 0, 1]])
    outline = (np.array([[-sw, -sh], [sw, -sh], [sw, sh], [-sw, sh]]) / 2) @ np.array([[c, s], [-s, c]]) + centre_mm
    if np.any(view.camera(outline)[:, 2] <= 0.2 * view.t[2]):
        return
    h, w = canvas.shape[:2]
    _blend(canvas, _layer(raster_rgba, view.homography @ turn @ local, h, w))


def _fill_plane_polygon(canvas, view: View, pts_mm, colour, alpha=1.0) -> None:
    p = _project_polygon(view, pts_mm)
    if p is None:
        return
    h, w = canvas.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [np.round(p * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    a = mask.astype(np.float32)[..., None] * (alpha / 255)
    canvas *= 1 - a
    canvas += a * np.asarray(colour, np.float32)


def _plane_line(canvas, view: View, a_mm, b_mm, colour, width_mm, alpha=1.0) -> None:
    a, b = np.asarray(a_mm, np.float64), np.asarray(b_mm, np.float64)
    n = np.array([-(b - a)[1], (b - a)[0]])
    n *= width_mm / 2 / max(np.linalg.norm(n), 1e-9)
    _fill_plane_polygon(canvas, view, [a - n, b - n, b + n, a + n], colour, alpha)


# ----------------------------------------------------------------------------- page content

@lru_cache(maxsize=64)
def _font(size: int):
    return ImageFont.load_default(size=max(4, int(size)))


def _words(rng, n) -> str:
    return " ".join(WORDS[i] for i in rng.integers(len(WORDS), size=n))


def _paragraph(rng, d, x, y, width, size, ink, lines, y_max) -> float:
    font, lh = _font(size), size * 1.45
    for i in range(lines):
        if y + lh > y_max:
            break
        limit = width * (rng.uniform(0.3, 0.8) if i == lines - 1 else 1.0)
        words, text = [], ""
        while True:
            cand = " ".join(words + [WORDS[rng.integers(len(WORDS))]])
            if d.textlength(cand, font=font) > limit:
                break
            words, text = cand.split(" "), cand
        if i == 0 and text:
            text = text[0].upper() + text[1:]
        d.text((x, y), text, fill=ink, font=font)
        y += lh
    return y + lh * 0.6


def _matplotlib_array(rng, w_px, h_px, kind, accent):
    """A chart or a table drawn by matplotlib into an RGBA float array of w_px x h_px."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    scale = min(1.0, 900 / max(w_px, h_px))
    rw, rh = max(60, int(w_px * scale)), max(40, int(h_px * scale))
    fig = Figure(figsize=(rw / 100, rh / 100), dpi=100)
    fig.patch.set_alpha(0.0)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes([0.1, 0.14, 0.86, 0.78])
    ax.patch.set_alpha(0.0)
    colours = [accent, "#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860"]
    n = int(rng.integers(4, 10))
    if kind == "bar":
        ax.bar(np.arange(n), rng.uniform(1, 10, n), color=[colours[i % len(colours)] for i in range(n)])
        ax.set_xticks(np.arange(n), [w[:4] for w in rng.choice(WORDS, n)], fontsize=7)
    elif kind == "line":
        x = np.arange(24)
        for k in range(int(rng.integers(1, 4))):
            ax.plot(x, np.cumsum(rng.normal(0.2, 1, 24)), color=colours[k], lw=1.5, marker="o" if k == 0 else None,
                    ms=3)
        ax.grid(alpha=0.4)
    elif kind == "pie":
        ax.set_position([0.2, 0.05, 0.6, 0.9])
        ax.pie(rng.uniform(1, 5, min(n, 6)), colors=colours[:min(n, 6)], startangle=float(rng.uniform(0, 360)))
    elif kind == "scatter":
        ax.scatter(rng.normal(size=60), rng.normal(size=60), s=8, c=colours[1])
        ax.set_xlabel(_words(rng, 2), fontsize=8)
    else:  # table
        ax.axis("off")
        ax.set_position([0.02, 0.02, 0.96, 0.96])
        rows, cols = int(rng.integers(5, 12)), int(rng.integers(3, 6))
        cells = [[f"{v:,.2f}" for v in rng.uniform(0, 5000, cols)] for _ in range(rows)]
        table = ax.table(cellText=cells, colLabels=[w.title() for w in rng.choice(WORDS, cols)], loc="center",
                         cellLoc="right")
        table.auto_set_font_size(False)
        table.set_fontsize(8)
        table.scale(1, rh / 100 / (rows + 1) / 0.2)
        for (r, _), cell in table.get_celld().items():
            cell.set_edgecolor("#555555")
            cell.set_facecolor(accent if r == 0 else ("#f0f0f0" if r % 2 else "none"))
            if r == 0:
                cell.set_alpha(0.5)
    if kind in ("bar", "line", "scatter"):
        ax.tick_params(labelsize=7)
        ax.set_title(_words(rng, 3).title(), fontsize=9)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba()).astype(np.float32) / 255
    return cv2.resize(rgba, (int(w_px), int(h_px)), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def _paste_rgba(page: np.ndarray, rgba: np.ndarray, x: int, y: int) -> None:
    """Straight-alpha RGBA (0..1 floats) onto an RGB uint8 page at (x, y), clipped."""
    h, w = rgba.shape[:2]
    x1, y1 = min(page.shape[1], x + w), min(page.shape[0], y + h)
    if x1 <= x or y1 <= y:
        return
    a = rgba[:y1 - y, :x1 - x, 3:]
    region = page[y:y1, x:x1].astype(np.float32)
    page[y:y1, x:x1] = np.clip(region * (1 - a) + 255 * rgba[:y1 - y, :x1 - x, :3] * a, 0, 255).astype(np.uint8)


def _picture_rgba(rng, w_px, h_px) -> np.ndarray:
    im = realimages.load(str(rng.choice(realimages.EVAL_PICTURES)))
    ih, iw = im.shape[:2]
    aspect = w_px / h_px
    cw, ch = (iw, int(iw / aspect)) if iw / ih < aspect else (int(ih * aspect), ih)
    cw, ch = max(8, min(cw, iw)), max(8, min(ch, ih))
    x, y = int(rng.integers(0, iw - cw + 1)), int(rng.integers(0, ih - ch + 1))
    crop = cv2.resize(im[y:y + ch, x:x + cw], (int(w_px), int(h_px)), interpolation=cv2.INTER_CUBIC)
    return np.concatenate([crop.astype(np.float32) / 255, np.ones((int(h_px), int(w_px), 1), np.float32)], -1)


def _draw_page(rng, layout: str, pw: int, ph: int, width_mm: float) -> np.ndarray:
    """The page raster (ph x pw RGB float32, 0..255) for one layout."""
    mm = pw / width_mm  # pixels per millimetre
    thermal = layout == "receipt"
    if thermal:
        tone = np.array([250, 250, 247]) - rng.uniform(0, 8)
    elif rng.random() < 0.08:
        tone = np.array([[250, 241, 185], [248, 224, 228], [222, 236, 248], [226, 245, 226]][rng.integers(4)], float)
    else:
        tone = np.array([[250, 250, 248], [253, 253, 253], [239, 237, 229], [245, 240, 225], [241, 244, 248]]
                        [rng.integers(5)], float) - rng.uniform(0, 6)
    img = Image.new("RGB", (pw, ph), tuple(int(v) for v in tone))
    d = ImageDraw.Draw(img)
    ink = tuple(int(v) for v in ((rng.uniform(45, 90),) * 3 if thermal else
                                 ([rng.uniform(10, 45)] * 3 if rng.random() < 0.8 else (20, 30, rng.uniform(90, 140)))))
    accent = tuple(int(v) for v in rng.choice([(31, 78, 140), (170, 40, 40), (30, 120, 80), (200, 120, 20),
                                               (90, 50, 130), (40, 40, 40)]))
    accent_hex = "#%02x%02x%02x" % accent
    m = mm * rng.uniform(15, 25)  # margin
    x0, x1, y, y_max = m, pw - m, m, ph - m
    body = mm * rng.uniform(3.0, 4.2)
    arr = None
    if layout == "letter":
        r = mm * 6
        if rng.random() < 0.5:
            d.ellipse([x0, y, x0 + 2 * r, y + 2 * r], fill=accent)
        else:
            d.rectangle([x0, y, x0 + 2 * r, y + 2 * r], fill=accent)
        d.text((x0 + 2.6 * r, y + 0.3 * r), _words(rng, 2).upper(), fill=accent, font=_font(mm * 6))
        y += 2 * r + mm * 4
        d.line([x0, y, x1, y], fill=accent, width=max(1, int(mm * 0.6)))
        y += mm * 8
        for _ in range(int(rng.integers(3, 5))):
            d.text((x0, y), _words(rng, 3).title(), fill=ink, font=_font(body))
            y += body * 1.4
        y += mm * 6
        while y < y_max - mm * 40:
            y = _paragraph(rng, d, x0, y, x1 - x0, body, ink, int(rng.integers(3, 7)), y_max - mm * 35)
        pts = [(x0 + mm * (5 + 5 * k), y + mm * 10 + mm * 4 * np.sin(k * rng.uniform(1, 2.5))) for k in range(9)]
        d.line(pts, fill=(30, 40, 130), width=max(1, int(mm * 0.5)), joint="curve")
        d.text((pw / 2, ph - m * 0.6), _words(rng, 6), fill=ink, font=_font(mm * 2.5), anchor="mm")
    elif layout in ("report", "table"):
        d.text((x0, y), _words(rng, int(rng.integers(2, 5))).title(), fill=accent if layout == "report" else ink,
               font=_font(mm * rng.uniform(6, 9)), stroke_width=max(0, int(mm * 0.15)), stroke_fill=ink)
        y += mm * 14
        y = _paragraph(rng, d, x0, y, x1 - x0, body, ink, int(rng.integers(3, 6)), y_max)
        kind = "table" if layout == "table" else str(rng.choice(["bar", "line", "pie", "scatter"]))
        box_h = min(y_max - y - mm * 20, (x1 - x0) * rng.uniform(0.45, 0.75) * (1.3 if kind == "table" else 1))
        if box_h > mm * 25:
            arr = (_matplotlib_array(rng, int(x1 - x0), int(box_h), kind, accent_hex), int(x0), int(y))
            y += box_h + mm * 3
            d.text((x0, y), "Figure %d. " % rng.integers(1, 9) + _words(rng, 6), fill=ink, font=_font(body * 0.8))
            y += mm * 8
        if rng.random() < 0.5 and y < y_max - mm * 20:  # two columns
            half = (x1 - x0 - mm * 6) / 2
            y2 = y
            _paragraph(rng, d, x0, y, half, body, ink, 40, y_max)
            _paragraph(rng, d, x0 + half + mm * 6, y2, half, body, ink, 40, y_max)
        else:
            while y < y_max - body * 3:
                y = _paragraph(rng, d, x0, y, x1 - x0, body, ink, int(rng.integers(3, 7)), y_max)
        d.text((pw / 2, ph - m * 0.5), str(rng.integers(1, 40)), fill=ink, font=_font(mm * 3), anchor="mm")
    elif layout == "form":
        d.rectangle([x0, y, x1, y + mm * 12], fill=accent)
        d.text((x0 + mm * 3, y + mm * 6), _words(rng, 3).upper() + " FORM", fill=(255, 255, 255),
               font=_font(mm * 6), anchor="lm")
        y += mm * 18
        lw = max(1, int(mm * 0.3))
        while y < y_max - mm * 30:
            choice = rng.random()
            if choice < 0.15:  # section band
                d.rectangle([x0, y, x1, y + mm * 6], fill=(225, 225, 225))
                d.text((x0 + mm * 2, y + mm * 3), _words(rng, 2).title(), fill=ink, font=_font(mm * 3.5), anchor="lm")
                y += mm * 9
            elif choice < 0.55:  # labelled fields in a row
                n = int(rng.integers(1, 4))
                fw = (x1 - x0) / n
                for k in range(n):
                    fx = x0 + k * fw
                    d.text((fx, y), _words(rng, 2).title() + ":", fill=ink, font=_font(mm * 3))
                    if rng.random() < 0.5:
                        d.rectangle([fx, y + mm * 4.5, fx + fw - mm * 4, y + mm * 11], outline=ink, width=lw)
                    else:
                        d.line([fx, y + mm * 11, fx + fw - mm * 4, y + mm * 11], fill=ink, width=lw)
                y += mm * 15
            elif choice < 0.8:  # check boxes
                for k in range(int(rng.integers(2, 5))):
                    bx = x0 + k * mm * 42
                    if bx + mm * 40 > x1:
                        break
                    d.rectangle([bx, y, bx + mm * 4, y + mm * 4], outline=ink, width=lw)
                    if rng.random() < 0.4:
                        d.line([bx, y, bx + mm * 4, y + mm * 4], fill=(20, 30, 120), width=lw * 2)
                    d.text((bx + mm * 6, y + mm * 2), _words(rng, 1).title(), fill=ink, font=_font(mm * 3),
                           anchor="lm")
                y += mm * 9
            else:  # character boxes
                n = int((x1 - x0) // (mm * 6))
                for k in range(n):
                    d.rectangle([x0 + k * mm * 6, y, x0 + (k + 1) * mm * 6, y + mm * 7], outline=ink, width=lw)
                y += mm * 11
        d.rectangle([x1 - mm * 70, y_max - mm * 22, x1, y_max], outline=ink, width=lw)
        d.text((x1 - mm * 68, y_max - mm * 20), "Signature", fill=ink, font=_font(mm * 2.5))
    elif layout == "flyer":
        band = rng.random() < 0.5
        if band:
            d.rectangle([0, 0, pw, mm * rng.uniform(30, 60)], fill=accent)
            d.text((pw / 2, mm * 18), _words(rng, 2).upper(), fill=(255, 255, 255), font=_font(mm * 12), anchor="mm")
            y = mm * 70
        else:
            d.text((x0, y), _words(rng, 2).upper(), fill=accent, font=_font(mm * 12))
            y += mm * 22
        pic_h = (x1 - x0) * rng.uniform(0.4, 0.7)
        arr = (_picture_rgba(rng, int(x1 - x0), int(pic_h)), int(x0), int(y))
        y += pic_h + mm * 6
        half = (x1 - x0 - mm * 6) / 2
        _paragraph(rng, d, x0, y, half, body, ink, 40, y_max)
        _paragraph(rng, d, x0 + half + mm * 6, y, half, body, ink, 40, y_max)
    elif layout == "notebook":
        gap = mm * rng.uniform(6.5, 8.5)
        line_col = (150, 180, 225)
        yy = mm * 30
        while yy < ph - mm * 8:
            d.line([0, yy, pw, yy], fill=line_col, width=max(1, int(mm * 0.25)))
            yy += gap
        d.line([mm * 30, 0, mm * 30, ph], fill=(225, 120, 120), width=max(1, int(mm * 0.3)))
        pen = (25, 35, 120) if rng.random() < 0.7 else (25, 25, 25)
        yy = mm * 30 - gap * 0.2
        for _ in range(int(rng.integers(6, 25))):
            yy += gap
            if yy > ph - mm * 12:
                break
            xs = np.arange(mm * 33, mm * 33 + (pw - mm * 45) * rng.uniform(0.3, 1.0), mm * 1.2)
            ys = yy - gap * 0.25 + gap * 0.22 * np.sin(xs / (mm * rng.uniform(0.6, 1.1))) * rng.uniform(0.5, 1, xs.size)
            gaps = rng.random(xs.size) < 0.12  # breaks between words
            seg = []
            for xv, yv, g in zip(xs, ys, gaps):
                if g and len(seg) > 1:
                    d.line(seg, fill=pen, width=max(1, int(mm * 0.35)))
                    seg = []
                seg.append((float(xv), float(yv)))
            if len(seg) > 1:
                d.line(seg, fill=pen, width=max(1, int(mm * 0.35)))
    else:  # receipt
        m = mm * 5
        x0, x1, y = m, pw - m, mm * 8
        small = mm * 2.8
        d.text((pw / 2, y), _words(rng, 2).upper(), fill=ink, font=_font(mm * 5), anchor="mt")
        y += mm * 8
        for _ in range(3):
            d.text((pw / 2, y), _words(rng, 3).title(), fill=ink, font=_font(small), anchor="mt")
            y += small * 1.4
        y += mm * 3
        dash = "-" * int((x1 - x0) / max(d.textlength("-", font=_font(small)), 1))
        d.text((x0, y), dash, fill=ink, font=_font(small))
        y += small * 1.6
        total = 0.0
        while y < ph - mm * 45:
            price = float(rng.uniform(0.5, 40))
            total += price
            d.text((x0, y), _words(rng, int(rng.integers(1, 3))).upper(), fill=ink, font=_font(small))
            d.text((x1, y), f"{price:.2f}", fill=ink, font=_font(small), anchor="ra")
            y += small * 1.45
        d.text((x0, y), dash, fill=ink, font=_font(small))
        y += small * 1.6
        d.text((x0, y), "TOTAL", fill=ink, font=_font(mm * 4), stroke_width=max(0, int(mm * 0.15)), stroke_fill=ink)
        d.text((x1, y), f"{total:.2f}", fill=ink, font=_font(mm * 4), anchor="ra")
        y += mm * 8
        bx = x0 + mm * 5
        while bx < x1 - mm * 5 and y + mm * 12 < ph - mm * 4:  # bar code
            bw = mm * rng.choice([0.3, 0.6, 0.9])
            d.rectangle([bx, y, bx + bw, y + mm * 12], fill=ink)
            bx += bw + mm * rng.choice([0.3, 0.6, 0.9])
    page = np.asarray(img).astype(np.float32)
    if arr is not None:
        rgba, ax, ay = arr
        page_u8 = page.astype(np.uint8)
        _paste_rgba(page_u8, rgba, ax, ay)
        page = page_u8.astype(np.float32)
    # paper: a faint large-scale unevenness and a fine grain
    page *= (1 + 0.012 * _smooth_noise(rng, ph, pw, 4))[..., None]
    page += rng.normal(0, 1.2, page.shape[:2]).astype(np.float32)[..., None]
    if thermal and rng.random() < 0.5:  # faded print towards one end
        fade = np.linspace(0, rng.uniform(0.2, 0.5), ph, dtype=np.float32)[::int(rng.choice([-1, 1]))]
        page = page + (255 - page) * fade[:, None, None] * 0.6
    return np.clip(page, 0, 255)


# ----------------------------------------------------------------------------- backgrounds

def _photo_backdrop(rng, h, w) -> np.ndarray:
    """A crop of an evaluation photo, zoomed, flipped and colour-jittered, at h x w."""
    im = realimages.load(str(rng.choice(realimages.EVAL_PHOTOS)))
    ih, iw = im.shape[:2]
    aspect = w / h
    cw, ch = (iw, iw / aspect) if iw / ih < aspect else (ih * aspect, ih)
    zoom = rng.uniform(0.35, 1.0)
    cw, ch = max(16, int(cw * zoom)), max(16, int(ch * zoom))
    x, y = int(rng.integers(0, iw - cw + 1)), int(rng.integers(0, ih - ch + 1))
    crop = im[y:y + ch, x:x + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    if rng.random() < 0.2:
        crop = crop[::-1]
    hsv = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-10, 10)) % 180
    hsv[..., 1] *= rng.uniform(0.55, 1.3)
    hsv[..., 2] = (hsv[..., 2] - 128) * rng.uniform(0.7, 1.15) + 128 + rng.uniform(-25, 15)
    crop = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB)
    return cv2.resize(crop, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.float32)


def _pale_desk(rng, h, w, page_level: float) -> np.ndarray:
    """A bright, nearly featureless desk: white laminate, light wood, pale stone or a
    light tablecloth, 6-30 levels from the page (usually darker, sometimes brighter)."""
    delta = rng.uniform(6, 30) * (1 if rng.random() < 0.75 else -0.6)
    level = np.clip(page_level - delta, 175, 252)
    tint = np.array([[1.0, 1.0, 1.0], [1.02, 1.0, 0.95], [1.03, 0.99, 0.92], [0.98, 1.0, 1.02],
                     [1.0, 0.99, 0.97]][rng.integers(5)])
    desk = np.full((h, w, 3), level, np.float32) * tint.astype(np.float32)
    desk *= (1 + 0.02 * _smooth_noise(rng, h, w, 3))[..., None]
    if rng.random() < 0.4:  # faint wood grain
        yy = np.arange(h, dtype=np.float32)[:, None] / max(h, w)
        xx = np.arange(w, dtype=np.float32)[None] / max(h, w)
        a = rng.uniform(0, np.pi)
        u = np.cos(a) * xx + np.sin(a) * yy
        grain = np.sin(u * rng.uniform(60, 140) + 3 * _smooth_noise(rng, h, w, 6))
        desk *= (1 + rng.uniform(0.008, 0.02) * grain)[..., None]
    desk += rng.normal(0, 1.0, (h, w)).astype(np.float32)[..., None]
    return desk


# ----------------------------------------------------------------------------- clutter (in the page's plane)

def _object_raster(rng, kind: str, size_mm, px_per_mm: float) -> np.ndarray:
    """RGBA float raster for a book, phone, card or sheet lying on the desk."""
    sw, sh = size_mm
    pw, ph = max(8, int(sw * px_per_mm)), max(8, int(sh * px_per_mm))
    mm = pw / sw
    if kind == "book":
        cover = tuple(int(v) for v in rng.uniform([20, 20, 20], [200, 180, 170]))
        img = Image.new("RGB", (pw, ph), cover)
        d = ImageDraw.Draw(img)
        d.rectangle([0, ph * 0.2, pw, ph * 0.35], fill=tuple(int(255 - v * 0.5) for v in cover))
        d.text((pw / 2, ph * 0.275), _words(rng, 2).upper(), fill=cover, font=_font(mm * 8), anchor="mm")
        d.rectangle([0, 0, mm * 8, ph], fill=tuple(int(v * 0.7) for v in cover))  # the spine's hinge
        alpha = np.ones((ph, pw), np.float32)
    elif kind == "phone":
        img = Image.new("RGB", (pw, ph), (0, 0, 0))
        d = ImageDraw.Draw(img)
        body = tuple(int(v) for v in rng.choice([(25, 25, 28), (200, 200, 205), (60, 70, 90)]))
        d.rounded_rectangle([0, 0, pw - 1, ph - 1], radius=mm * 9, fill=body)
        d.rounded_rectangle([mm * 3, mm * 3, pw - mm * 3, ph - mm * 3], radius=mm * 7, fill=(12, 14, 20))
        if rng.random() < 0.5:  # the screen is on
            d.rounded_rectangle([mm * 3.5, mm * 3.5, pw - mm * 3.5, ph - mm * 3.5], radius=mm * 6.5,
                                fill=tuple(int(v) for v in rng.uniform([40, 60, 90], [120, 160, 220])))
            for k in range(4):
                for j in range(4):
                    cx, cy = mm * (12 + j * 15), mm * (25 + k * 18)
                    d.rounded_rectangle([cx, cy, cx + mm * 10, cy + mm * 10], radius=mm * 2.5,
                                        fill=tuple(int(v) for v in rng.uniform(60, 250, 3)))
        mask = Image.new("L", (pw, ph), 0)
        ImageDraw.Draw(mask).rounded_rectangle([0, 0, pw - 1, ph - 1], radius=mm * 9, fill=255)
        alpha = np.asarray(mask).astype(np.float32) / 255
    elif kind == "card":
        base = tuple(int(v) for v in rng.uniform([30, 30, 30], [240, 240, 240]))
        img = Image.new("RGB", (pw, ph), base)
        d = ImageDraw.Draw(img)
        d.rectangle([0, ph * 0.15, pw, ph * 0.3], fill=(20, 20, 20) if rng.random() < 0.5 else (230, 200, 60))
        d.text((mm * 6, ph * 0.6), " ".join(str(rng.integers(1000, 9999)) for _ in range(4)),
               fill=(255, 255, 255) if sum(base) < 380 else (10, 10, 10), font=_font(mm * 4.5))
        mask = Image.new("L", (pw, ph), 0)
        ImageDraw.Draw(mask).rounded_rectangle([0, 0, pw - 1, ph - 1], radius=mm * 3, fill=255)
        alpha = np.asarray(mask).astype(np.float32) / 255
    elif kind == "keyboard":
        img = Image.new("RGB", (pw, ph), (35, 35, 38) if rng.random() < 0.6 else (210, 210, 212))
        d = ImageDraw.Draw(img)
        key = (60, 60, 64) if img.getpixel((0, 0))[0] < 100 else (245, 245, 245)
        for r in range(5):
            for c in range(int((sw - 10) // 19)):
                x, yk = mm * (5 + c * 19), mm * (6 + r * 19)
                if yk + mm * 16 < ph:
                    d.rounded_rectangle([x, yk, x + mm * 16, yk + mm * 16], radius=mm * 2, fill=key)
        alpha = np.ones((ph, pw), np.float32)
    else:  # another sheet, or a ruler
        if kind == "ruler":
            img = Image.new("RGB", (pw, ph), tuple(int(v) for v in rng.choice([(230, 215, 120), (190, 195, 200)])))
            d = ImageDraw.Draw(img)
            for k in range(int(sw)):
                d.line([k * mm, 0, k * mm, mm * (6 if k % 10 == 0 else 3)], fill=(20, 20, 20),
                       width=max(1, int(mm * 0.25)))
        else:
            img = Image.new("RGB", (pw, ph), tuple(int(v) for v in rng.uniform(232, 252, 3)))
            d = ImageDraw.Draw(img)
            y = mm * 20
            while y < ph - mm * 20:
                y = _paragraph(rng, d, mm * 20, y, pw - mm * 40, mm * 3.5, (40, 40, 40), 5, ph - mm * 20)
        alpha = np.ones((ph, pw), np.float32)
    rgb = np.asarray(img).astype(np.float32) / 255
    return np.concatenate([rgb, alpha[..., None]], -1)


def _clutter(rng, canvas, view: View, size_mm, px_per_mm: float) -> None:
    """Things around (and under) the page, all lying in the page's plane."""
    W, Hm = size_mm
    reach = max(W, Hm)
    # strong lines first: the desk's edge, or plank seams / tile grout
    for kind in rng.choice(["desk_edge", "planks", "none"], size=int(rng.integers(1, 3)), replace=False):
        a = rng.uniform(-0.3, 0.3) + rng.choice([0, np.pi / 2])
        direction, normal = np.array([np.cos(a), np.sin(a)]), np.array([-np.sin(a), np.cos(a)])
        if kind == "desk_edge":
            off = (reach / 2 + rng.uniform(10, 80)) * rng.choice([-1, 1])
            far = off + np.sign(off) * 3000
            poly = [normal * off - direction * 3000, normal * off + direction * 3000,
                    normal * far + direction * 3000, normal * far - direction * 3000]
            colour = rng.uniform([10, 10, 10], [120, 100, 90])
            _fill_plane_polygon(canvas, view, poly, colour)
            _plane_line(canvas, view, normal * off - direction * 3000, normal * off + direction * 3000,
                        np.minimum(colour + 60, 255), rng.uniform(3, 8))
        elif kind == "planks":
            gap = rng.uniform(70, 160)
            shade = rng.uniform(0, 60)
            for k in range(-12, 13):
                _plane_line(canvas, view, normal * k * gap - direction * 3000, normal * k * gap + direction * 3000,
                            (shade, shade * 0.8, shade * 0.6), rng.uniform(1.5, 4), alpha=0.85)
    n = int(rng.integers(2, 5))
    kinds = rng.choice(["book", "phone", "card", "sheet", "keyboard", "ruler"], size=n,
                       p=[0.3, 0.2, 0.2, 0.12, 0.08, 0.1])
    sizes = {"book": lambda: (rng.uniform(130, 190), rng.uniform(190, 260)), "phone": lambda: (71.0, 146.0),
             "card": lambda: (85.6, 54.0), "sheet": lambda: (210.0, 297.0), "keyboard": lambda: (290.0, 110.0),
             "ruler": lambda: (310.0, 32.0)}
    for kind in kinds:
        sw, sh = sizes[kind]()
        if kind == "sheet":  # another page under this one, a little shifted and turned
            centre = rng.uniform(-1, 1, 2) * rng.uniform(20, 70)
            angle = rng.uniform(-0.3, 0.3)
        else:  # next to the page, possibly partly under it
            a = rng.uniform(0, 2 * np.pi)
            dist = 0.5 * np.hypot(W, Hm) * rng.uniform(0.7, 1.3) + 0.5 * max(sw, sh) * rng.uniform(0.3, 1.0)
            centre = np.array([np.cos(a), np.sin(a)]) * dist
            angle = rng.uniform(-np.pi, np.pi)
        raster = _object_raster(rng, kind, (sw, sh), min(px_per_mm, 6.0))
        _paste_plane(canvas, view, raster, centre, (sw, sh), angle)


# ----------------------------------------------------------------------------- occluders

def _capsule(h, w, a, b, ra, rb, pad=2.0):
    """A tapered capsule from ``a`` (radius ra, round end) to ``b`` (radius rb), in its
    clipped bounding box: (x0, y0, alpha, across in [0, 1], along in px from a) or None."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    r = max(ra, rb) + pad
    x0, y0 = max(0, int(min(a[0], b[0]) - r)), max(0, int(min(a[1], b[1]) - r))
    x1, y1 = min(w, int(max(a[0], b[0]) + r) + 1), min(h, int(max(a[1], b[1]) + r) + 1)
    if x1 <= x0 or y1 <= y0:
        return None
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    ab = (b - a).astype(np.float32)
    L2 = float(ab @ ab) + 1e-9
    t = np.clip(((xx - a[0]) * ab[0] + (yy - a[1]) * ab[1]) / L2, 0, 1)
    dx, dy = xx - (a[0] + t * ab[0]), yy - (a[1] + t * ab[1])
    dist = np.sqrt(dx * dx + dy * dy)
    rad = ra + (rb - ra) * t
    alpha = np.clip(rad - dist + 0.5, 0, 1)
    return x0, y0, alpha, np.clip(dist / rad, 0, 1), t * np.sqrt(L2)


def across_of(d):
    return np.array([-d[1], d[0]])


SKIN = ((243, 204, 178), (230, 180, 150), (210, 160, 125), (180, 125, 95), (140, 95, 70), (100, 68, 50))


def _palm(rng, canvas, centre, direction, radius, skin):
    """The back of the hand the fingers come from: a broad, softly shaded capsule."""
    h, w = canvas.shape[:2]
    cap = _capsule(h, w, centre, centre + direction * radius * 3, radius * 2.4, radius * 2.8, pad=radius)
    if cap is None:
        return
    x0, y0, alpha, across, _ = cap
    region = canvas[y0:y0 + alpha.shape[0], x0:x0 + alpha.shape[1]]
    shade = 0.78 + 0.22 * np.sqrt(np.clip(1 - across ** 2, 0, 1))
    colour = np.asarray(skin, np.float32) * 0.97 * shade[..., None]
    a = alpha[..., None]
    region[:] = region * (1 - a) + colour * a


def _finger(rng, canvas, tip, direction, radius, length, skin, nail=True):
    """One finger lying over the photo: tip centre ``tip``, pointing along -``direction``
    (``direction`` points from the tip towards the hand). Rounded shading, a nail, creases,
    and its soft shadow on what lies under it."""
    h, w = canvas.shape[:2]
    base = tip + direction * length
    cap = _capsule(h, w, tip, base, radius, radius * rng.uniform(1.05, 1.25), pad=radius * 0.8)
    if cap is None:
        return
    x0, y0, alpha, across, along = cap
    region = canvas[y0:y0 + alpha.shape[0], x0:x0 + alpha.shape[1]]
    # shadow: the finger's outline moved away from the light and blurred
    shift = np.array([rng.uniform(0.15, 0.45), rng.uniform(0.15, 0.45)]) * radius * rng.choice([-1, 1], 2)
    m = np.float32([[1, 0, shift[0]], [0, 1, shift[1]]])
    shadow = cv2.warpAffine(alpha, m, alpha.shape[::-1])
    shadow = cv2.GaussianBlur(shadow, (0, 0), max(0.8, radius * 0.35))
    region *= (1 - rng.uniform(0.25, 0.45) * shadow * (1 - alpha))[..., None]
    shade = 0.68 + 0.32 * np.sqrt(np.clip(1 - across ** 2, 0, 1))
    colour = np.asarray(skin, np.float32) * shade[..., None]
    for k, at in enumerate((rng.uniform(1.7, 2.1), rng.uniform(3.0, 3.6))):  # knuckle creases
        crease = np.exp(-((along - at * radius) / (radius * 0.07)) ** 2) * (across < 0.85)
        colour *= (1 - 0.18 * crease)[..., None]
    if nail:
        d = direction / np.linalg.norm(direction)
        centre = tip + d * radius * 0.55
        yy, xx = np.mgrid[y0:y0 + alpha.shape[0], x0:x0 + alpha.shape[1]].astype(np.float32)
        u = (xx - centre[0]) * d[0] + (yy - centre[1]) * d[1]
        v = -(xx - centre[0]) * d[1] + (yy - centre[1]) * d[0]
        e = (u / (radius * 0.85)) ** 2 + (v / (radius * 0.6)) ** 2
        nail_a = np.clip((1 - e) * 6, 0, 1)
        rim = np.clip((1 - np.abs(e - 1) * 8), 0, 1)
        nail_col = np.minimum(np.asarray(skin, np.float32) * [1.05, 1.0, 1.02] + [18, 18, 22], 255)
        colour = colour * (1 - nail_a[..., None]) + nail_col * (0.9 + 0.1 * shade[..., None]) * nail_a[..., None]
        colour *= (1 - 0.15 * rim)[..., None]
    colour *= (1 + 0.03 * rng.standard_normal(alpha.shape).astype(np.float32))[..., None]
    a = alpha[..., None]
    region[:] = region * (1 - a) + colour * a


def _occlude(rng, canvas, view: View, size_mm, corners_px, px_per_mm: float) -> str:
    """A finger, thumb, hand or an object over part of one side of the page (placed at 30-70%
    along the side, so the corners usually stay visible)."""
    W, Hm = size_mm
    outline = _page_outline(size_mm)
    k = int(rng.integers(4))
    u = rng.uniform(0.3, 0.7)
    a_mm, b_mm = outline[k], outline[(k + 1) % 4]
    at_mm = a_mm + u * (b_mm - a_mm)
    out_mm = np.array([[0, -1], [1, 0], [0, 1], [-1, 0]][k], np.float64)  # outward normal of side k
    side_len = np.linalg.norm(b_mm - a_mm)
    at = view.project(at_mm[None])[0]
    inward_px = view.project((at_mm - out_mm * 5)[None])[0] - at
    inward = inward_px / max(np.linalg.norm(inward_px), 1e-9)
    # the local scale at that side (pixels per mm), for physically sized things
    local = np.linalg.norm(view.project((at_mm + (b_mm - a_mm) / side_len * 10)[None])[0] - at) / 10
    kind = rng.choice(["finger", "thumb", "hand", "pen", "mug", "phone", "note"], p=[0.25, 0.2, 0.15, 0.1, 0.1, 0.1, 0.1])
    if kind in ("finger", "thumb", "hand"):
        skin = np.asarray(SKIN[rng.integers(len(SKIN))], np.float32) * rng.uniform(0.92, 1.06, 3)
        near = rng.uniform(1.0, 1.3)  # held above the page, so a little larger
        radius = (rng.uniform(10, 12.5) if kind == "thumb" else rng.uniform(7.5, 9.5)) * local * near
        turn = np.deg2rad(rng.uniform(-35, 35))
        c, s = np.cos(turn), np.sin(turn)
        towards_hand = -np.array([c * inward[0] - s * inward[1], s * inward[0] + c * inward[1]])
        depth = rng.uniform(0.4, 1.8) * radius  # how far the tip reaches onto the page
        tip = at - towards_hand * depth
        if kind == "hand":  # two to four fingers side by side, tips staggered, from one hand
            across = np.array([-towards_hand[1], towards_hand[0]])
            n = int(rng.integers(2, 5))
            length = radius * rng.uniform(6, 9)
            _palm(rng, canvas, tip + towards_hand * length, towards_hand, radius * (0.6 + 0.3 * n), skin)
            for f in range(n):
                off = (f - (n - 1) / 2) * 2.15 * radius
                _finger(rng, canvas, tip + across * off + towards_hand * abs(off) * rng.uniform(0.1, 0.4),
                        towards_hand, radius, length, skin, nail=rng.random() < 0.8)
        else:
            length = radius * rng.uniform(6, 10)
            _palm(rng, canvas, tip + towards_hand * length + across_of(towards_hand) * radius * rng.uniform(-1, 1),
                  towards_hand, radius * 1.3, skin)
            _finger(rng, canvas, tip, towards_hand, radius, length * 1.05, skin, nail=rng.random() < 0.85)
        return kind
    if kind == "pen":
        length = rng.uniform(130, 150)
        ang = np.arctan2(out_mm[1], out_mm[0]) + rng.uniform(-0.6, 0.6)
        d = np.array([np.cos(ang), np.sin(ang)])
        tip_mm = at_mm - out_mm * rng.uniform(10, 40)
        p0, p1 = view.project(np.array([tip_mm, tip_mm + d * length]))
        h, w = canvas.shape[:2]
        r = rng.uniform(4, 5.5) * local
        cap = _capsule(h, w, p0, p1, r * 0.5, r)
        if cap is not None:
            x0, y0, alpha, across, _ = cap
            colour = np.asarray(rng.choice([(20, 30, 120), (20, 20, 20), (170, 30, 30), (230, 230, 235)]), np.float32)
            shade = (0.7 + 0.45 * np.sqrt(np.clip(1 - across ** 2, 0, 1)))[..., None]
            region = canvas[y0:y0 + alpha.shape[0], x0:x0 + alpha.shape[1]]
            region[:] = region * (1 - alpha[..., None]) + np.minimum(colour * shade, 255) * alpha[..., None]
        return kind
    if kind == "mug":  # seen from above: the rim (in perspective) and the coffee in it
        r_out = rng.uniform(40, 46)
        centre = at_mm + out_mm * r_out * rng.uniform(-0.3, 0.5)
        ring = np.stack([np.cos(np.linspace(0, 2 * np.pi, 72, endpoint=False)),
                         np.sin(np.linspace(0, 2 * np.pi, 72, endpoint=False))], 1)
        body = np.asarray(rng.choice([(240, 240, 236), (30, 60, 130), (180, 40, 40), (60, 60, 60)]), np.float32)
        handle_dir = rng.uniform(0, 2 * np.pi)
        hd = np.array([np.cos(handle_dir), np.sin(handle_dir)])
        _plane_line(canvas, view, centre + hd * r_out * 0.9, centre + hd * (r_out + 22), body * 0.9, 11)
        _fill_plane_polygon(canvas, view, centre + ring * r_out, body)
        _fill_plane_polygon(canvas, view, centre + ring * (r_out - 4), body * 0.8)
        _fill_plane_polygon(canvas, view, centre + ring * (r_out - 7), rng.uniform([50, 25, 10], [110, 70, 40]))
        return kind
    if kind == "phone":
        sw, sh = 71.0, 146.0
        centre = at_mm + out_mm * rng.uniform(0, 0.3) * sh
        angle = np.arctan2(out_mm[1], out_mm[0]) + np.pi / 2 + rng.uniform(-0.4, 0.4)
        _paste_plane(canvas, view, _object_raster(rng, "phone", (sw, sh), min(px_per_mm, 6)), centre, (sw, sh), angle)
        return kind
    # a sticky note stuck across the side
    side = 76.0
    centre = at_mm + out_mm * rng.uniform(-0.25, 0.25) * side
    colour = np.asarray(rng.choice([(250, 235, 110), (250, 170, 190), (170, 235, 170), (140, 210, 245)]), float)
    pw = max(8, int(side * min(px_per_mm, 6)))
    note = Image.new("RGB", (pw, pw), tuple(int(v) for v in colour))
    dn = ImageDraw.Draw(note)
    for j in range(3):
        y = pw * (0.3 + 0.2 * j)
        dn.line([(pw * 0.15, y), (pw * rng.uniform(0.5, 0.85), y + pw * 0.03)], fill=(30, 30, 90),
                width=max(1, pw // 60))
    rgba = np.concatenate([np.asarray(note).astype(np.float32) / 255, np.ones((pw, pw, 1), np.float32)], -1)
    _paste_plane(canvas, view, rgba, centre, (side, side), rng.uniform(-0.35, 0.35))
    return "note"


# ----------------------------------------------------------------------------- light and camera

def _hard_shadow(rng, h, w, corners_px, px) -> np.ndarray:
    """A multiplicative field: a sharp-edged shadow (a person, a phone, a lamp arm) crossing the page."""
    wts = rng.dirichlet(np.ones(4))
    through = (0.4 * corners_px.mean(0) + 0.6 * (wts @ corners_px))
    a = rng.uniform(0, np.pi)
    n = np.array([np.cos(a), np.sin(a)], np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    s = (xx - through[0]) * n[0] + (yy - through[1]) * n[1]
    soft = rng.uniform(0.4, 2.5) * px
    inside = 1 / (1 + np.exp(np.clip(-s / soft, -80, 80)))  # far from the edge exp overflowed: 0 or 1 anyway
    if rng.random() < 0.4:  # a band (a pole, an arm) rather than a half-plane
        width = rng.uniform(0.08, 0.3) * np.ptp(corners_px[:, 0] if abs(n[0]) > 0.7 else corners_px[:, 1]) + 10 * px
        inside = inside * (1 / (1 + np.exp(np.clip((s - width) / soft, -80, 80))))
    depth = rng.uniform(0.35, 0.65)
    field = 1 - (1 - depth) * inside
    tint = np.array([0.95, 1.0, 1.08], np.float32)  # shadows are lit by the bluish sky / room
    return field[..., None] * (1 + (tint - 1) * inside[..., None])


def _light(rng, img, condition, corners_px) -> tuple[np.ndarray, bool]:
    h, w = img.shape[:2]
    px = max(h, w) / 640
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # always: a gentle illumination slope and a small white-balance error
    a = rng.uniform(0, 2 * np.pi)
    slope = rng.uniform(0, 0.12)
    img *= (1 + slope * ((xx / w - 0.5) * np.cos(a) + (yy / h - 0.5) * np.sin(a)))[..., None]
    img *= rng.uniform(0.96, 1.04, 3).astype(np.float32)
    low = False
    if condition != "lighting":
        return img, low
    effects = [e for e in ("shadow", "vignette", "cast", "low", "glare") if rng.random() < {
        "shadow": 0.65, "vignette": 0.55, "cast": 0.55, "low": 0.35, "glare": 0.2}[e]] or ["shadow"]
    if "shadow" in effects:
        img *= _hard_shadow(rng, h, w, corners_px, px)
    if "glare" in effects:  # a specular hot spot on the (slightly glossy) page
        c = corners_px[rng.integers(4)] * 0.3 + corners_px.mean(0) * 0.7
        r = rng.uniform(0.05, 0.15) * max(h, w)
        spot = np.exp(-((xx - c[0]) ** 2 + (yy - c[1]) ** 2) / (2 * r * r))
        img += (rng.uniform(60, 160) * spot)[..., None]
    if "vignette" in effects:
        rr = ((xx - w / 2) ** 2 + (yy - h / 2) ** 2) / (0.25 * (w * w + h * h))
        img *= (1 - rng.uniform(0.3, 0.6) * rr ** rng.uniform(1.0, 1.6))[..., None]
    if "cast" in effects:
        gains = [(1.0, 0.84, 0.62), (0.9, 1.0, 0.82), (0.82, 0.93, 1.1), (1.08, 0.9, 0.95)][rng.integers(4)]
        img *= np.asarray(gains, np.float32) * rng.uniform(0.95, 1.05, 3).astype(np.float32)
    if "low" in effects:
        img *= rng.uniform(0.15, 0.4)
        low = True
    return img, low


def _disk(radius: float) -> np.ndarray:
    r = max(0.5, radius)
    n = int(np.ceil(r)) * 2 + 1
    yy, xx = np.mgrid[0:n, 0:n] - n // 2
    k = np.clip(r + 0.5 - np.sqrt(xx ** 2 + yy ** 2), 0, 1).astype(np.float32)
    return k / k.sum()


def _line_kernel(length: float, angle: float) -> np.ndarray:
    n = int(np.ceil(length)) | 1
    k = np.zeros((n, n), np.float32)
    c = n // 2
    d = np.array([np.cos(angle), np.sin(angle)]) * (length - 1) / 2
    cv2.line(k, (int(round((c - d[0]) * 16)), int(round((c - d[1]) * 16))),
             (int(round((c + d[0]) * 16)), int(round((c + d[1]) * 16))), 1.0, 1, cv2.LINE_AA, shift=4)
    return k / max(k.sum(), 1e-6)


def _camera(rng, img, condition, low_light) -> np.ndarray:
    """Optics, sensor and encoder: blur, noise, sharpening, then JPEG written and read back."""
    h, w = img.shape[:2]
    px = max(h, w) / 640
    if condition == "blur_noise":
        kind = rng.choice(["defocus", "motion", "both"], p=[0.45, 0.35, 0.2])
        if kind in ("defocus", "both"):
            img = cv2.filter2D(img, -1, _disk(rng.uniform(1.5, 4.0) * px))
        if kind in ("motion", "both"):
            img = cv2.filter2D(img, -1, _line_kernel(rng.uniform(5, 18) * px, rng.uniform(0, np.pi)))
        read, shot, quality = rng.uniform(3, 8), rng.uniform(0.05, 0.25), int(rng.integers(40, 71))
    else:
        sigma = rng.uniform(0.0, 0.6) * px
        if sigma > 0.3:
            img = cv2.GaussianBlur(img, (0, 0), sigma)
        read, shot, quality = rng.uniform(0.5, 2.5), rng.uniform(0.0, 0.05), int(rng.integers(80, 96))
    if low_light:  # high ISO
        read, shot = read + rng.uniform(3, 8), shot + rng.uniform(0.1, 0.3)
    img = np.clip(img, 0, 255)
    sd = np.sqrt(read ** 2 + shot * img)
    img = img + sd * rng.standard_normal(img.shape, dtype=np.float32)
    if condition == "blur_noise" or low_light:  # blotchy chroma noise, as phones leave it after denoising
        chroma = np.stack([_smooth_noise(rng, h, w, max(h, w) / (6 * px)) for _ in range(3)], -1)
        img += chroma * rng.uniform(1, 4)
    if rng.random() < 0.5:  # the phone's sharpening
        img = img + rng.uniform(0.2, 0.6) * (img - cv2.GaussianBlur(img, (0, 0), 1.2 * px))
    out = Image.fromarray(np.clip(img + 0.5, 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    out.save(buf, format="JPEG", quality=quality, subsampling=2 if quality < 90 else 0)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


# ----------------------------------------------------------------------------- a scene

def compose(seed: int, index: int, condition: str | None = None, frame: tuple[int, int] | None = None,
            keep_coverage: bool = False) -> Scene:
    """Scene ``index`` of set ``seed``: conditions cycle with the index; ``condition``
    and ``frame`` ((height, width)) override them (the random stream stays the same)."""
    condition = condition or CONDITIONS[index % len(CONDITIONS)]
    rng = np.random.default_rng([STREAM, seed, index])
    drawn = FRAMES[int(rng.integers(len(FRAMES)))]
    h, w = frame or drawn
    paper = str(rng.choice(list(PAPERS), p=[0.45, 0.35, 0.2]))
    width_mm, height_mm = PAPERS[paper]
    if height_mm is None:
        height_mm = float(rng.uniform(170, 360))
    layout = "receipt" if paper == "receipt" else str(rng.choice(LAYOUTS))
    tilt = {"strong_tilt": (50, 65)}.get(condition, (0, 35))
    fill = {"small_page": (0.15, 0.30), "strong_tilt": (0.45, 0.9), "occluded": (0.45, 0.8)}.get(condition, (0.4, 0.9))
    view, projected = _place(rng, h, w, (width_mm, height_mm), tilt, fill, width_fill=condition == "small_page")
    # background
    if condition == "pale_on_pale":
        page_level = 246.0
        canvas = _pale_desk(rng, h, w, page_level)
    else:
        canvas = _photo_backdrop(rng, h, w)
    # the page raster at about the resolution it is seen at
    seen = max(np.linalg.norm(projected[1] - projected[0]), np.linalg.norm(projected[2] - projected[3]))
    pw = int(np.clip(seen * rng.uniform(1.0, 1.3), 160, 2000))
    ph = int(round(pw * height_mm / width_mm))
    if ph > 3200:
        pw, ph = int(pw * 3200 / ph), 3200
    px_per_mm = pw / width_mm
    if condition == "clutter":
        _clutter(rng, canvas, view, (width_mm, height_mm), px_per_mm)
    page = _draw_page(rng, layout, pw, ph, width_mm)
    if condition == "pale_on_pale":
        page = np.clip(page * (page_level / max(float(np.median(page)), 1.0)), 0, 255)
    rgba = np.concatenate([page / 255, np.ones((ph, pw, 1), np.float32)], -1)
    to_mm = np.array([[width_mm / pw, 0, 0.5 * width_mm / pw - width_mm / 2],
                      [0, height_mm / ph, 0.5 * height_mm / ph - height_mm / 2], [0, 0, 1]])
    layer = _layer(rgba, view.homography @ to_mm, h, w)
    x0, y0, rgb, alpha = layer
    coverage = np.zeros((h, w), np.float32)
    coverage[y0:y0 + alpha.shape[0], x0:x0 + alpha.shape[1]] = alpha
    if rng.random() < 0.6:  # the page casts a thin soft shadow (it is not perfectly flat)
        off = rng.uniform(-1, 1, 2) * 0.006 * min(h, w)
        shadow = cv2.warpAffine(coverage, np.float32([[1, 0, off[0]], [0, 1, off[1]]]), (w, h))
        shadow = cv2.GaussianBlur(shadow, (0, 0), max(0.7, rng.uniform(0.003, 0.012) * min(h, w)))
        canvas *= (1 - rng.uniform(0.1, 0.3) * shadow * (1 - coverage))[..., None]
    _blend(canvas, layer)
    if condition == "occluded":
        _occlude(rng, canvas, view, (width_mm, height_mm), projected, px_per_mm)
    canvas, low = _light(rng, canvas, condition, projected)
    image = _camera(rng, canvas, condition, low)
    corners = _clockwise_from_top_left(projected)
    return Scene(image, corners, condition, paper, layout, view.tilt_deg, coverage if keep_coverage else None)


# ----------------------------------------------------------------------------- benchmark

def evaluate(runner, seed: int, count: int, progress=None) -> tuple[dict, list]:
    from edgepipe.mobile_models import scan as scanning
    scenes = []
    for i in range(count):
        s = compose(seed, i)
        result = scanning.scan(s.image, runner)
        err = worst_corner_error(result.corners, s.corners, s.image.shape[1], s.image.shape[0])
        scenes.append({"index": i, "condition": s.condition, "error_pct": err, "size": list(s.image.shape[:2]),
                       "paper": s.paper, "layout": s.layout, "tilt_deg": round(s.tilt_deg, 1),
                       "reason": result.reason})
        if progress:
            progress(i + 1, count)
    table = {"all": error_summary([s["error_pct"] for s in scenes])}
    for name in CONDITIONS:
        errs = [s["error_pct"] for s in scenes if s["condition"] == name]
        if errs:
            table[name] = error_summary(errs)
    return table, scenes


def print_table(table: dict) -> None:
    print("\n".join(error_table_lines(table)))


def write_worst(runner, seed: int, scenes: list, folder: Path, count: int) -> list[str]:
    """The worst scans as PNG: true quad green, found quad red, scaled to at most 1024 px."""
    from edgepipe.mobile_models import scan as scanning
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for s in sorted(scenes, key=lambda s: -s["error_pct"])[:count]:
        scene = compose(seed, s["index"])
        result = scanning.scan(scene.image, runner)
        h, w = scene.image.shape[:2]
        k = min(1.0, 1024 / max(h, w))
        im = cv2.cvtColor(cv2.resize(scene.image, (int(round(w * k)), int(round(h * k))),
                                     interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2BGR)
        cv2.polylines(im, [np.round(scene.corners * k).astype(np.int32)], True, (0, 200, 0), 2, cv2.LINE_AA)
        if result.corners is not None:
            cv2.polylines(im, [np.round(np.asarray(result.corners) * k).astype(np.int32)], True, (0, 0, 255), 2,
                          cv2.LINE_AA)
        err = "miss" if not np.isfinite(s["error_pct"]) else f"{s['error_pct']:.1f}"
        path = folder / f"{s['index']:03d}_{s['condition']}_{w}x{h}_{err}.png"
        cv2.imwrite(str(path), im)
        written.append(str(path))
    return written


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="runs/default", help="run folder (its hed_mobilenet_v2.int8.tflite is scored)")
    ap.add_argument("--model", help="export to score instead of the run's int8 TFLite")
    ap.add_argument("--count", type=int, default=160, help="scenes (conditions cycle)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--worst", type=Path, help="write the worst scans as PNG into this folder")
    ap.add_argument("--worst-count", type=int, default=12)
    args = ap.parse_args()
    from edgepipe.evaluate.runners import open_runner
    model = Path(args.model) if args.model else Path(args.run) / "hed_mobilenet_v2.int8.tflite"
    runner = open_runner(model)
    print(f"model: {model}")
    t0 = time.time()
    table, scenes = evaluate(runner, args.seed, args.count,
                             lambda i, n: print(f"\rscene {i}/{n}", end="", file=sys.stderr, flush=True))
    print(f"\rindependently composed scenes ({args.count}, seed {args.seed}, {time.time() - t0:.0f} s), "
          "worst corner as % of the diagonal:", flush=True)
    print_table(table)
    result = {"model": str(model), "seed": args.seed, "count": args.count, "table": table, "scenes": scenes}
    if args.worst:
        result["worst"] = write_worst(runner, args.seed, scenes, args.worst, args.worst_count)
        print(f"worst {len(result['worst'])} scans written to {args.worst}")
    print(json.dumps(result, default=float))


if __name__ == "__main__":
    main()

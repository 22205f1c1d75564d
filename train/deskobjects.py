"""Things lying on the desk in the page's own plane: a phone, a card, a book.
Real photos of documents have them, and their outlines are straight and in the
same perspective as the page, so a detector trained without them takes their
sides for the page's.

Each object is drawn as a small raster, placed beside the page in page
coordinates, and warped by the page's own homography, before the page is pasted
on top. The labels stay the page's.
"""
import cv2
import numpy as np

KINDS = ("phone", "card", "book")


def _phone(rng, pw, _ph, _tone):
    """A phone face down or face up: a dark slab, sometimes a lit screen."""
    w = int(pw * rng.uniform(0.3, 0.4))
    h = int(w * rng.uniform(1.9, 2.2))
    raster = np.zeros((h, w, 3), np.float32)
    raster[:] = rng.uniform(8, 60) + rng.normal(0, 4, 3)
    if rng.random() < 0.5:
        inset = max(1, w // 14)
        raster[inset * 2:h - inset * 2, inset:w - inset] = rng.uniform(40, 230, 3)
    return raster


def _card(rng, pw, _ph, _tone):
    """A bank or business card: saturated, with a band."""
    w = int(pw * rng.uniform(0.35, 0.45))
    h = int(w * 0.63)
    raster = np.empty((h, w, 3), np.float32)
    raster[:] = rng.uniform(0, 255, 3)
    y = int(rng.integers(0, h // 2))
    raster[y:y + max(2, h // 6)] = rng.uniform(0, 255, 3)
    return raster


def _book(rng, pw, ph, _tone):
    """A closed book or a folder: a cover colour and a darker spine band."""
    w, h = int(pw * rng.uniform(0.6, 1.1)), int(ph * rng.uniform(0.6, 1.1))
    cover = rng.uniform(20, 230, 3)
    raster = np.empty((h, w, 3), np.float32)
    raster[:] = cover
    raster[:, :max(2, w // 10)] = cover * 0.6
    return raster


DRAW = {"phone": _phone, "card": _card, "book": _book}


def _placement(rng, pw, ph, ow, oh):
    """A 3x3 affine from object raster pixels to page raster pixels: turned, and
    shifted so that the object lies beside the page, not touching it."""
    angle = np.deg2rad(rng.uniform(-25, 25))
    c, s = np.cos(angle), np.sin(angle)
    direction = rng.uniform(0, 2 * np.pi)
    reach = np.array([pw + ow, ph + oh]) / 2  # centre distance at which the two just touch
    gap = rng.uniform(1.02, 1.4)
    centre = np.array([pw, ph]) / 2 + gap * reach * [np.cos(direction), np.sin(direction)]
    to_centre = np.array([[1, 0, -ow / 2], [0, 1, -oh / 2], [0, 0, 1]])
    turn = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    place = np.array([[1, 0, centre[0]], [0, 1, centre[1]], [0, 0, 1]])
    return place @ turn @ to_centre


def _in_front(homography, pts) -> bool:
    """Every point maps in front of the camera (same sign of w as the page's centre), not near the horizon."""
    w = homography[2, 0] * pts[:, 0] + homography[2, 1] * pts[:, 1] + homography[2, 2]
    return bool(np.all(w > 0.25 * homography[2, 2])) if homography[2, 2] > 0 else False


def lay(rng, img: np.ndarray, homography: np.ndarray, page_size, tone) -> np.ndarray:
    """1-3 desk objects warped into ``img`` (HxWx3 float32) by the page's
    ``homography`` (page raster -> photo); ``page_size`` is (pw, ph) in raster pixels."""
    h, w = img.shape[:2]
    pw, ph = page_size
    for _ in range(int(rng.integers(1, 4))):
        kind = KINDS[rng.integers(len(KINDS))]
        raster = DRAW[kind](rng, pw, ph, tone)
        oh, ow = raster.shape[:2]
        affine = _placement(rng, pw, ph, ow, oh)
        corners = np.array([[0, 0, 1], [ow, 0, 1], [ow, oh, 1], [0, oh, 1]], np.float64) @ affine.T
        if not _in_front(homography, corners[:, :2]):
            continue
        to_photo = homography @ affine
        warped = cv2.warpPerspective(raster, to_photo, (w, h), flags=cv2.INTER_LINEAR)
        mask = cv2.warpPerspective(np.ones((oh, ow), np.float32), to_photo, (w, h))[..., None]
        img = img * (1 - mask) + warped * mask
    return img

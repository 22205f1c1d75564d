"""Document scanning: photo -> letterboxed model input -> HED edge map -> quad ->
perspective-rectified page.

The photo is scaled to fit the model's input with its aspect kept and the rest
padded (letterbox): squeezing a 3:4 phone frame into a square bends every angle
the detector learned. The same quad finder serves verify, this command and
(ported) the Android app.
"""
import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

from edgepipe.base.errors import EdgePipeError
from edgepipe.mobile_models.docquad import EDGES, PAGE, QuadParams, find_quad

PAD_VALUE = 0  # letterbox bands, in pixel units before normalisation
# Auto-exposure for dark frames: a photo whose brightest 1% is darker than the
# knee holds no well-lit white page; brighten it (up to MAX_GAIN) so that its
# brightest 1% reaches TARGET, as a camera's auto-exposure would have. On the
# held-out phone sets this turns most low-light misses into hits
# (benchmarks/document_quality.py); well-exposed and pale photos are untouched.
EXPOSURE_KNEE, EXPOSURE_TARGET, MAX_GAIN = 160.0, 220.0, 4.0


@dataclass(frozen=True)
class Letterbox:
    """Where the photo lies in the model input: content rectangle (x, y, w, h)
    in input pixels, and the photo's own size."""
    x: int
    y: int
    w: int
    h: int
    photo_w: int
    photo_h: int

    @property
    def roi(self) -> tuple[int, int, int, int]:
        return self.x, self.y, self.w, self.h

    def to_photo(self, points: np.ndarray) -> np.ndarray:
        """Model-input pixel coordinates -> photo pixel coordinates."""
        scale = np.array([self.photo_w / self.w, self.photo_h / self.h], np.float32)
        return (np.asarray(points, np.float32) - np.array([self.x, self.y], np.float32)) * scale

    def to_input(self, points: np.ndarray) -> np.ndarray:
        scale = np.array([self.w / self.photo_w, self.h / self.photo_h], np.float32)
        return np.asarray(points, np.float32) * scale + np.array([self.x, self.y], np.float32)


def letterbox_geometry(photo_h: int, photo_w: int, in_h: int, in_w: int) -> Letterbox:
    scale = min(in_w / photo_w, in_h / photo_h)
    w = min(in_w, max(1, int(round(photo_w * scale))))
    h = min(in_h, max(1, int(round(photo_h * scale))))
    return Letterbox((in_w - w) // 2, (in_h - h) // 2, w, h, photo_w, photo_h)


def letterbox(photo: np.ndarray, in_h: int, in_w: int) -> tuple[np.ndarray, Letterbox]:
    """HxWx3 uint8 photo -> in_h x in_w x 3 uint8 input (area resize, centred,
    ``PAD_VALUE`` bands) and its geometry."""
    box = letterbox_geometry(photo.shape[0], photo.shape[1], in_h, in_w)
    canvas = np.full((in_h, in_w, photo.shape[2]), PAD_VALUE, np.uint8)
    canvas[box.y:box.y + box.h, box.x:box.x + box.w] = cv2.resize(photo, (box.w, box.h),
                                                                  interpolation=cv2.INTER_AREA)
    return canvas, box


def exposure_gain(content: np.ndarray) -> float:
    """The gain for an RGB uint8 image (the letterboxed photo, bands excluded):
    1.0 unless its 99th-percentile brightness, (R + G + B) / 3, is under the knee.
    Integer histogram arithmetic, so the Java port gets the same number."""
    brightness = content.reshape(-1, 3).astype(np.int32).sum(1)  # 0..765
    cumulative = np.cumsum(np.bincount(brightness, minlength=766))
    p99 = int(np.searchsorted(cumulative, 0.99 * brightness.size)) / 3.0
    return 1.0 if p99 >= EXPOSURE_KNEE else min(MAX_GAIN, EXPOSURE_TARGET / max(p99, 1.0))


def expose(image: np.ndarray, box: Letterbox) -> np.ndarray:
    """``image`` (a letterboxed input, uint8) with the photo's part brightened by
    ``exposure_gain``: floor(pixel * gain + 0.5), clipped at 255."""
    content = image[box.y:box.y + box.h, box.x:box.x + box.w]
    gain = exposure_gain(content)
    if gain == 1.0:
        return image
    out = image.copy()
    out[box.y:box.y + box.h, box.x:box.x + box.w] = np.minimum(np.floor(content * gain + 0.5), 255).astype(np.uint8)
    return out


@dataclass
class ScanResult:
    corners: np.ndarray | None  # 4x2 TL TR BR BL in photo pixels, or None
    reason: str
    page: np.ndarray | None     # rectified page, RGB uint8
    edges: np.ndarray           # edge probabilities at the model's input size
    box: Letterbox | None = None  # where the photo lies in ``edges``
    region: np.ndarray | None = None  # page-region probabilities, if the model has them


def edges_and_page(outputs: dict) -> tuple[np.ndarray, np.ndarray | None]:
    """A runner's outputs -> (edge map, page-region map or None). An HED export
    names them ``edges`` and ``page``; otherwise the edge map is the only output,
    or the only (N, H, W, 1) one (a converter may have named it ``Identity``)."""
    if EDGES in outputs:
        edges, page = outputs[EDGES], outputs.get(PAGE)
    else:
        maps = [v for v in outputs.values() if _is_map(v)]
        if len(outputs) != 1 and len(maps) != 1:
            raise EdgePipeError(f"cannot tell the edge map among the model's outputs {sorted(outputs)}: "
                                f"name it '{EDGES}' (and the page-region map '{PAGE}')")
        edges, page = (next(iter(outputs.values())) if len(outputs) == 1 else maps[0]), None
    if not _is_map(edges):
        raise EdgePipeError(f"the model's edge map must be (N, H, W, 1); it is {np.shape(edges)}")
    if page is not None and np.shape(page) != np.shape(edges):
        raise EdgePipeError(f"the model's page-region map '{PAGE}' must have the edge map's shape "
                            f"{np.shape(edges)}; it is {np.shape(page)}")
    return edges, page


def at_input_size(values: np.ndarray, h_in: int, w_in: int) -> np.ndarray:
    """A map the model gives at a fraction of its input size (a stride-2 head), resized
    to the input's, where the letterbox and the corners are measured; a map of another
    shape cannot be placed on the photo."""
    h, w = values.shape
    if (h, w) == (h_in, w_in):
        return values
    if h * w_in != w * h_in:
        raise EdgePipeError(f"the model's edge map is {h}x{w}, its input {h_in}x{w_in}: a map of another aspect "
                            "cannot be placed on the photo")
    return cv2.resize(np.asarray(values, np.float32), (w_in, h_in), interpolation=cv2.INTER_LINEAR)


def _is_map(a) -> bool:
    shape = np.shape(a)
    return len(shape) == 4 and shape[-1] == 1


def rectify(photo: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """Warp the quad to an upright rectangle sized by its longer opposite sides."""
    c = np.asarray(corners, np.float32)
    w = int(round(max(np.linalg.norm(c[1] - c[0]), np.linalg.norm(c[2] - c[3]))))
    h = int(round(max(np.linalg.norm(c[3] - c[0]), np.linalg.norm(c[2] - c[1]))))
    dst = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], np.float32)
    return cv2.warpPerspective(photo, cv2.getPerspectiveTransform(c, dst), (max(w, 1), max(h, 1)),
                               flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def scan(photo: np.ndarray, runner, params: QuadParams = QuadParams(), spec=None) -> ScanResult:
    """``photo``: HxWx3 RGB uint8; ``runner``: any edgepipe runner of an HED export;
    ``spec``: how pixels map to its input (``convert.inputspec.InputSpec``; default
    pixel / 255, what edgepipe's HED takes)."""
    h_in, w_in = runner.inputs[0].shape[1:3]
    image, box = letterbox(photo, h_in, w_in)
    image = expose(image, box)
    x = image[None].astype(np.float32) / 255.0 if spec is None else spec.from_pixels(image[None])
    edges, region = edges_and_page(runner.predict(x))
    if edges.shape[1] < h_in:  # a coarser map blurs the letterbox's edge further into the photo
        params = replace(params, roi_margin=params.roi_margin + math.ceil(h_in / edges.shape[1]))
    edges, region = (at_input_size(m[0, ..., 0], h_in, w_in) if m is not None else None for m in (edges, region))
    r = find_quad(edges, params, roi=box.roi, page=region, image=image)
    if not r.found:
        return ScanResult(None, r.reason, None, edges, box, region)
    corners = box.to_photo(r.corners)
    return ScanResult(corners, "", rectify(photo, corners), edges, box, region)

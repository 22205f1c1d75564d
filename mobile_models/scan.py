"""Document scanning: photo -> HED edge map -> quad -> perspective-rectified page.

The same quad finder serves verify, this command and (ported) the Android app.
"""
from dataclasses import dataclass

import cv2
import numpy as np

from edgepipe.mobile_models.docquad import QuadParams, find_quad


@dataclass
class ScanResult:
    corners: np.ndarray | None  # 4x2 TL TR BR BL in photo pixels, or None
    reason: str
    page: np.ndarray | None     # rectified page, RGB uint8
    edges: np.ndarray           # edge probabilities at the model's input size


def rectify(photo: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """Warp the quad to an upright rectangle sized by its longer opposite sides."""
    c = np.asarray(corners, np.float32)
    w = int(round(max(np.linalg.norm(c[1] - c[0]), np.linalg.norm(c[2] - c[3]))))
    h = int(round(max(np.linalg.norm(c[3] - c[0]), np.linalg.norm(c[2] - c[1]))))
    dst = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], np.float32)
    return cv2.warpPerspective(photo, cv2.getPerspectiveTransform(c, dst), (max(w, 1), max(h, 1)),
                               flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def scan(photo: np.ndarray, runner, params: QuadParams = QuadParams()) -> ScanResult:
    """``photo``: HxWx3 RGB uint8; ``runner``: any edgepipe runner of an HED export."""
    h_in, w_in = runner.inputs[0].shape[1:3]
    x = cv2.resize(photo, (w_in, h_in), interpolation=cv2.INTER_AREA).astype(np.float32)[None] / 255.0
    edges = next(iter(runner.predict(x).values()))[0, ..., 0]
    r = find_quad(edges, params)
    if not r.found:
        return ScanResult(None, r.reason, None, edges)
    scale = np.array([photo.shape[1] / w_in, photo.shape[0] / h_in], np.float32)
    corners = r.corners * scale
    return ScanResult(corners, "", rectify(photo, corners), edges)

"""A held-out set of phone-like document photos built only from evaluation
sources (``realimages.EVAL_PHOTOS`` and ``EVAL_PICTURES``, and page layouts and
textures that training never draws), at the resolutions phones and webcams give.

Each photo has one named condition, so that a score can be broken down:
``composite`` (640x480 webcam-like), ``portrait`` and ``landscape`` (12 MP-class
phone frames), ``small_page``, ``strong_tilt``, ``low_contrast`` (a pale page on a
pale desk) and ``occluded`` (a hand or thumb over one side). These are
generated images from real photographs, not camera recordings.
"""
from dataclasses import dataclass

import numpy as np

from edgepipe.train.docgen import HELDOUT, Camera, render_scene

PHONE_FRAMES = ((480, 640), (640, 480), (2016, 1512), (1512, 2016))  # (height, width)
STANDARD = Camera(max_tilt=35.0, scale=(0.45, 0.9), out_of_frame=0.1, hand=0.0)
CONDITIONS = {
    "composite": (((480, 640),), STANDARD, False),
    "portrait": (((2016, 1512),), STANDARD, False),
    "landscape": (((1512, 2016),), STANDARD, False),
    "small_page": (PHONE_FRAMES, Camera(max_tilt=35.0, scale=(0.2, 0.35), out_of_frame=0.0, hand=0.0), False),
    "strong_tilt": (PHONE_FRAMES, Camera(min_tilt=45.0, max_tilt=60.0, scale=(0.5, 0.9), out_of_frame=0.0,
                                         hand=0.0), False),
    "low_contrast": (PHONE_FRAMES, STANDARD, True),
    "occluded": (PHONE_FRAMES, Camera(max_tilt=35.0, scale=(0.45, 0.85), out_of_frame=0.0, hand=1.0), False),
}


@dataclass
class PhoneShot:
    image: np.ndarray    # HxWx3 uint8 RGB at full resolution
    corners: np.ndarray  # 4x2 float32 TL TR BR BL, photo pixels
    condition: str


def phone_shot(seed: int, index: int) -> PhoneShot:
    """Photo ``index`` of the set ``seed``: conditions cycle, so any prefix of
    the set covers them evenly."""
    names = list(CONDITIONS)
    condition = names[index % len(names)]
    frames, camera, pale = CONDITIONS[condition]
    rng = np.random.default_rng([seed, index, 23])
    h, w = frames[rng.integers(len(frames))]
    image, corners = render_scene(rng, h, w, HELDOUT, camera, pale=pale)
    return PhoneShot(image, corners, condition)

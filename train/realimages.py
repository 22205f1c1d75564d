"""Real images that the installed packages ship (scikit-image, matplotlib,
scikit-learn), split once into training sources and evaluation sources.

Nothing here downloads. The evaluation sources never reach training, so a score
on them says how the detector does on imagery it never saw (``train/phoneshots``).
"""
from functools import lru_cache

import numpy as np

# Backgrounds: people, animals, buildings, objects, textures.
TRAIN_PHOTOS = ("astronaut", "brick", "camera", "coins", "grass", "gravel", "immunohistochemistry", "moon",
                "horse", "hubble_deep_field", "cell", "retina", "logo", "clock")
EVAL_PHOTOS = ("chelsea", "coffee", "rocket", "china", "flower", "grace_hopper", "motorcycle")
# Page content printed on the document: a photographed sign, a book page, packaging art.
TRAIN_PICTURES = ("text", "logo", "astronaut", "coins")
EVAL_PICTURES = ("page", "gift_pack", "coffee")


def _skimage(name):
    import skimage.data as data
    return data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(data, name)()


def _matplotlib(name):
    import matplotlib.cbook as cbook
    import matplotlib.image as mpimg
    file = {"grace_hopper": "grace_hopper.jpg", "gift_pack": "Minduka_Present_Blue_Pack.png"}[name]
    return mpimg.imread(cbook.get_sample_data(file))


def _sklearn(name):
    from sklearn.datasets import load_sample_image
    return load_sample_image(f"{name}.jpg")


LOADERS = {"grace_hopper": _matplotlib, "gift_pack": _matplotlib, "china": _sklearn, "flower": _sklearn}


@lru_cache(maxsize=32)
def load(name: str) -> np.ndarray:
    """HxWx3 uint8 RGB; an alpha channel is composited onto white (packaging art)."""
    im = np.asarray(LOADERS.get(name, _skimage)(name))
    if im.dtype != np.uint8:  # floats in [0, 1], or bool
        im = (255 * np.clip(im.astype(np.float32) / max(float(im.max()), 1e-6), 0, 1)).astype(np.uint8)
    if im.ndim == 2:
        im = np.stack([im] * 3, -1)
    if im.shape[2] == 4:
        alpha = im[..., 3:].astype(np.float32) / 255
        im = (im[..., :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)
    return np.ascontiguousarray(im[..., :3])

"""scikit-learn's digits (1,797 8x8 images, shipped with the package) upscaled
to RGB, with deterministic train/val/test splits: the embedded default for
classification. Nothing downloads."""
import cv2
import numpy as np


def digits_arrays(size: int = 32, split: str = "train", seed: int = 0):
    """Images (N, size, size, 3) float32 in [0, 1] on the 8-bit grid, and integer labels.
    Splits are 70/15/15 of a seeded permutation."""
    from sklearn.datasets import load_digits
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be train, val or test, got {split}")
    d = load_digits()
    order = np.random.default_rng(seed).permutation(len(d.images))
    n_train, n_val = int(0.7 * len(order)), int(0.15 * len(order))
    idx = {"train": order[:n_train], "val": order[n_train:n_train + n_val],
           "test": order[n_train + n_val:]}[split]
    images = np.stack([cv2.resize((d.images[i] / 16.0).astype(np.float32), (size, size),
                                  interpolation=cv2.INTER_LINEAR) for i in idx])
    # 8-bit, as every camera frame is: Core ML's ImageType and the apps feed 8-bit
    # pixels, so verify compares every format on the same inputs
    images = np.round(images * 255.0).astype(np.float32) / 255.0
    return np.repeat(images[..., None], 3, axis=-1), d.target[idx].astype(np.int64)

"""Users' own data on disk. Every problem names the file and stops before training.

Classification, one folder per class (torchvision ``ImageFolder`` layout)::

    root/cat/001.jpg  root/dog/xyz.png ...

Documents: photos plus the page corners, in ``corners.json``
(``{"IMG_1.jpg": [[x, y], [x, y], [x, y], [x, y]], ...}``) or ``corners.csv``
(``file,x1,y1,x2,y2,x3,y3,x4,y4`` with a header), in photo pixels, any order
(they are sorted to TL, TR, BR, BL).
"""
import csv
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgepipe.base.errors import EdgePipeError
from edgepipe.mobile_models.docquad import order_corners
from edgepipe.mobile_models.scan import letterbox
from edgepipe.train.docgen import edge_label, region_label

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclass
class ClassImages:
    images: np.ndarray      # (N, size, size, 3) float32 in [0, 1]
    labels: np.ndarray      # (N,) int64
    class_names: list[str]


@dataclass
class Documents:
    images: np.ndarray      # (N, size, size, 3) uint8 RGB
    edges: np.ndarray       # (N, size, size) uint8 {0, 1}: the page border
    corners: np.ndarray     # (N, 4, 2) float32 TL TR BR BL in letterboxed input pixels
    files: list[str]
    regions: np.ndarray     # (N, size, size) uint8 {0, 1}: the page's area


def read_rgb(path: Path) -> np.ndarray:
    """An image file as RGB uint8, or a clear error naming it. Its header is read
    first: an image over ``EDGEPIPE_MAX_IMAGE_PIXELS`` is refused undecoded."""
    from edgepipe.base.safety import image_size
    image_size(path, unreadable=f"cannot read image {path} (corrupt or not an image)")
    data = np.fromfile(str(path), np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise EdgePipeError(f"cannot read image {path} (corrupt or not an image)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)


def _existing_dir(root) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise EdgePipeError(f"data folder {root} does not exist")
    return root


def split_indices(labels: np.ndarray, split: str, seed: int, val_fraction: float = 0.2) -> np.ndarray:
    """Stratified, seeded train/val split: every class keeps at least one image on each side."""
    if split not in ("train", "val", "all"):
        raise ValueError(f"split must be train, val or all, got {split}")
    if split == "all":
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    picked = []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_val = min(max(1, int(round(val_fraction * len(idx)))), len(idx) - 1)
        picked.append(idx[:n_val] if split == "val" else idx[n_val:])
    return np.sort(np.concatenate(picked))


def class_names(root) -> list[str]:
    """The class folders under ``root``, sorted: label i is the i-th name."""
    root = _existing_dir(root)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise EdgePipeError(f"data folder {root} has no class folders (expected {root}/CLASS/*.jpg)")
    if len(classes) < 2:  # one class trains a constant output that every gate would pass
        raise EdgePipeError(f"data folder {root} has one class folder ({classes[0]}); a classifier needs at least "
                            "two")
    return classes


def image_folder(root, size: int, split: str = "all", seed: int = 0) -> ClassImages:
    root = Path(root)
    classes = class_names(root)
    files, labels = [], []
    for label, name in enumerate(classes):
        found = sorted(p for p in (root / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if len(found) < 2:
            raise EdgePipeError(f"class folder {root / name} has {len(found)} image(s); each class needs at "
                                "least 2 (one is held out for validation)")
        files += found
        labels += [label] * len(found)
    labels = np.asarray(labels, np.int64)
    keep = split_indices(labels, split, seed)
    images = np.stack([_resize(read_rgb(files[i]), size) for i in keep]).astype(np.float32) / 255.0
    return ClassImages(images, labels[keep], classes)


def _corners_table(root: Path) -> dict[str, np.ndarray]:
    """file name -> 4x2 corners, from corners.json or corners.csv."""
    as_json, as_csv = root / "corners.json", root / "corners.csv"
    if as_json.is_file():
        try:
            raw = json.loads(as_json.read_text())
        except ValueError as e:
            raise EdgePipeError(f"{as_json} is not valid JSON: {e}") from None
        if not isinstance(raw, dict):
            raise EdgePipeError(f"{as_json} must map file names to 4 [x, y] points")
        return {name: _points(pts, f"{as_json} entry {name}") for name, pts in raw.items()}
    if as_csv.is_file():
        with open(as_csv, newline="") as f:
            rows = list(csv.reader(f))
        table = {}
        for n, row in enumerate(rows[1:], start=2):
            if not row:
                continue
            table[row[0]] = _points(row[1:], f"{as_csv} line {n}")
        return table
    raise EdgePipeError(f"document folder {root} has no corners.json or corners.csv")


def _points(values, where: str) -> np.ndarray:
    try:
        pts = np.asarray(values, np.float64).reshape(-1, 2)
    except (ValueError, TypeError):
        raise EdgePipeError(f"{where}: corners must be numbers") from None
    if len(pts) != 4:
        raise EdgePipeError(f"{where}: needs 4 corner points, got {len(pts)}")
    if not np.isfinite(pts).all():
        raise EdgePipeError(f"{where}: corners contain NaN or Inf")
    return pts


def document_folder(root, size: int, edge_width: int = 2) -> Documents:
    root = _existing_dir(root)
    table = _corners_table(root)
    if not table:
        raise EdgePipeError(f"document folder {root}: the corners file lists no images")
    images, edges, corners, regions = [], [], [], []
    for name in sorted(table):
        path = root / name
        if not path.is_file():
            raise EdgePipeError(f"{path} is listed in the corners file but does not exist")
        photo = read_rgb(path)
        h, w = photo.shape[:2]
        pts = table[name]
        if (pts < 0).any() or (pts[:, 0] > w).any() or (pts[:, 1] > h).any():
            raise EdgePipeError(f"corners of {path} fall outside the {w}x{h} image: {pts.tolist()}")
        image, box = letterbox(photo, size, size)  # as `edgepipe scan` feeds a photo
        quad = order_corners(box.to_input(pts))
        images.append(image)
        edges.append(edge_label(quad, size, edge_width, box.roi))
        regions.append(region_label(quad, size, box.roi))
        corners.append(quad)
    return Documents(np.stack(images), np.stack(edges), np.stack(corners), sorted(table), np.stack(regions))

"""Users' own data on disk. Every problem names the file and stops before training.

Classification, one folder per class (torchvision ``ImageFolder`` layout)::

    root/cat/001.jpg  root/dog/xyz.png ...

Documents: photos plus the page corners, in ``corners.json``
(``{"IMG_1.jpg": [[x, y], [x, y], [x, y], [x, y]], ...}``) or ``corners.csv``
(``file,x1,y1,x2,y2,x3,y3,x4,y4`` with a header), in photo pixels, any order
(they are sorted to TL, TR, BR, BL).
"""
import csv
import functools
import hashlib
import io
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgepipe.base.errors import EdgePipeError
from edgepipe.base.photos import MIN_PHOTO_SIDE, read_rgb
from edgepipe.base.safety import one_line
from edgepipe.mobile_models.docquad import _area as quad_area, _is_convex as is_convex, order_corners
from edgepipe.mobile_models.scan import letterbox
from edgepipe.train.docgen import edge_label, region_label

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
MIN_PAGE_AREA = 0.001  # of the photo: smaller is a typo (a point, a line), not a page


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
    rois: np.ndarray        # (N, 4) int (x, y, w, h): the photo inside its letterboxed input


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)


def _existing_dir(root) -> Path:
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise EdgePipeError(f"data folder {root} is a file; data.path names the folder that holds the images")
    if not root.is_dir():
        raise EdgePipeError(f"data folder {root} does not exist")
    return root


SPLITS = ("train", "val", "test", "all")
SPLIT_NAMES = {"train", "training", "val", "valid", "validation", "test", "testing", "eval"}
MIN_PER_CLASS = 3  # one to train on, one to choose the checkpoint (val), one held out to score (test)


def split_indices(labels: np.ndarray, split: str, seed: int, held_fraction: float = 0.2) -> np.ndarray:
    """Stratified, seeded, disjoint train / val / test split: every class keeps at
    least one image in each. ``val`` chooses the checkpoint during training;
    ``test`` is what verify and the report score, so their figures come from
    images that touched neither the weights nor their choice."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split}")
    if split == "all":
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    picked = []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n = min(max(1, int(round(held_fraction * len(idx)))), (len(idx) - 1) // 2)
        picked.append({"test": idx[:n], "val": idx[n:2 * n], "train": idx[2 * n:]}[split])
    return np.sort(np.concatenate(picked))


MAX_FINGERPRINT_FILES = 1_000_000


def fingerprint(root) -> str:
    """What the folder holds, cheaply: every file's path, size and modification time.
    A run's training and scores are tied to it, so adding, removing or editing a photo
    (or corners.json) trains again instead of scoring an old model on a new split."""
    root, digest, count = Path(root), hashlib.sha256(), 0
    if not root.is_dir():
        return "missing"
    for path in sorted(_entries(root)):
        count += 1
        if count > MAX_FINGERPRINT_FILES:
            raise EdgePipeError(f"data folder {root} holds over {MAX_FINGERPRINT_FILES:,} files; point data.path at "
                                "the images alone")
        try:
            st = path.stat()
        except OSError:  # a dangling link: the loader names it
            continue
        # a folder by its name alone: its time moves when a .DS_Store or a sync tool's temp file comes and goes
        stamp = "dir" if path.is_dir() else f"{st.st_size} {st.st_mtime_ns}"
        digest.update(f"{path.relative_to(root).as_posix()!r} {stamp}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:16]


def _entries(root: Path):
    """Every folder and file under ``root`` that the loaders may read (hidden entries and a
    Mac archive's leftovers are skipped), through linked folders (the loader reads a linked
    class folder; ``rglob`` does not enter it), each folder once, never up into ``root``'s
    own ancestors (a link to ``../..`` would walk the whole disk)."""
    visited, top = set(), root.resolve()
    for folder, dirs, files in os.walk(root, followlinks=True):
        st = os.stat(folder)
        if (st.st_dev, st.st_ino) in visited:
            dirs[:] = []
            continue
        visited.add((st.st_dev, st.st_ino))
        dirs[:] = [d for d in dirs if not _ignored(Path(d))]
        for name in dirs + [f for f in files if not _ignored(Path(f))]:
            yield Path(folder) / name
        dirs[:] = [d for d in dirs if not _up_the_tree(Path(folder) / d, top)]


def _up_the_tree(path: Path, top: Path) -> bool:
    """A link to ``top`` or to a folder above it."""
    if not path.is_symlink():
        return False
    try:
        target = path.resolve()
    except (OSError, RuntimeError):
        return True
    return target == top or target in top.parents


def _ignored(path: Path) -> bool:
    """Hidden entries, and what a Mac's archiver leaves: __MACOSX folders, ._ AppleDouble files."""
    return path.name.startswith(".") or path.name == "__MACOSX"


def _class_name_problem(name: str) -> str:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "is not UTF-8 (labels.txt, the card and the Core ML labels are UTF-8 text)"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "holds a control character such as a line break (labels.txt has one name per line)"
    return ""


def class_names(root) -> list[str]:
    """The class folders under ``root``, sorted: label i is the i-th name."""
    root = _existing_dir(root)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not _ignored(p))
    for name in classes:
        problem = _class_name_problem(name)
        if problem:
            raise EdgePipeError(f"class folder {one_line(repr(name), 80)} in {root}: its name {problem}; rename it")
    if not classes:
        raise EdgePipeError(f"data folder {root} has no class folders (expected {root}/CLASS/*.jpg)")
    if len(classes) > 1 and {c.lower() for c in classes} <= SPLIT_NAMES:  # root/train/CLASS: not classes
        raise EdgePipeError(f"data folder {root} holds {', '.join(classes)}: a split made already, not classes; "
                            "edgepipe splits one folder of class folders itself (by data.train_seed), so point "
                            "data.path at a folder whose subfolders are the classes")
    if len(classes) < 2:  # one class trains a constant output that every gate would pass
        raise EdgePipeError(f"data folder {root} has one class folder ({classes[0]}); a classifier needs at least "
                            "two")
    return classes


def image_folder(root, size: int, split: str = "all", seed: int = 0) -> ClassImages:
    root = Path(root)
    files, labels, classes = _class_files(root.resolve(), fingerprint(root))
    keep = split_indices(labels, split, seed)
    images = np.stack([_resize(read_rgb(files[i], MIN_IMAGE_SIDE), size) for i in keep]).astype(np.float32) / 255.0
    return ClassImages(images, labels[keep], classes)


MIN_IMAGE_SIDE = 8  # a 1x1 or 5000x1 "image" stretched to the input size teaches nothing


@functools.lru_cache(maxsize=4)
def _class_files(root: Path, contents: str) -> tuple[list[Path], np.ndarray, list[str]]:
    """Every distinct image under ``root``'s class folders, and its label. Training reads
    three splits of one folder: keyed on its ``contents`` (the fingerprint), the files are
    listed and hashed once, and a copy is noted once."""
    classes = class_names(root)
    files, labels, seen = [], [], {}
    unused = [p for p in root.iterdir() if not p.is_dir() and not _ignored(p)]  # beside the class folders
    for label, name in enumerate(classes):
        entries = [p for p in sorted((root / name).iterdir()) if not _ignored(p)]
        is_image = [p.suffix.lower() in IMAGE_SUFFIXES and not p.is_dir() for p in entries]
        images = [p for p, ok in zip(entries, is_image) if ok]
        unused += [p for p, ok in zip(entries, is_image) if not ok]
        found = _distinct(images, seen, classes, label)
        if len(found) < MIN_PER_CLASS:
            raise EdgePipeError(f"class folder {root / name} has {len(found)} image(s); each class needs at "
                                f"least {MIN_PER_CLASS} (one to train on, one to choose the checkpoint, one held "
                                "out to score)")
        files += found
        labels += [label] * len(found)
    _note_unused(root, unused)
    return files, np.asarray(labels, np.int64), classes


def _note_unused(root: Path, unused: list[Path]) -> None:
    """Say what in the folder is not read: a subfolder inside a class (not searched), a file
    beside the class folders, a suffix that is no image edgepipe reads."""
    if unused:
        shown = ", ".join(one_line(p.relative_to(root).as_posix() + ("/" if p.is_dir() else ""), 60)
                          for p in unused[:3]) + (f" and {len(unused) - 3} more" if len(unused) > 3 else "")
        print(f"note: {root}: {len(unused)} {'entry' if len(unused) == 1 else 'entries'} not used ({shown}); a "
              f"class's images sit directly in its "
              f"folder, as {', '.join(IMAGE_SUFFIXES)}", file=sys.stderr)


def _content_digest(path: Path) -> str | None:
    """The file's bytes, hashed, to find copies; None where it cannot be read (read_rgb names why)."""
    try:
        if not path.is_file():  # a FIFO or a device named like a photo would block or never end
            return None
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _distinct(files: list[Path], seen: dict, classes: list[str], label: int) -> list[Path]:
    """``files`` less exact copies (a copy, a link) of an image already listed: a copy
    would land in training and in the held-out test at once. A copy filed under another
    class is a labelling mistake, and is refused."""
    kept = []
    for path in files:
        digest = _content_digest(path)
        if digest is None:
            kept.append(path)
            continue
        first = seen.setdefault(digest, (path, label))
        if first[1] != label:
            raise EdgePipeError(f"{path} and {first[0]} are the same image under two classes ({classes[label]}, "
                                f"{classes[first[1]]}); keep it in one")
        if first[0] == path:
            kept.append(path)
        else:
            print(f"note: {path} is a copy of {first[0]}; it is read once", file=sys.stderr)
    return kept


CSV_HEADER = ["file", "x1", "y1", "x2", "y2", "x3", "y3", "x4", "y4"]


def _corners_table(root: Path) -> dict[str, np.ndarray]:
    """file name -> 4x2 corners, from corners.json or corners.csv (exactly one of them)."""
    as_json, as_csv = root / "corners.json", root / "corners.csv"
    if as_json.is_file() and as_csv.is_file():
        raise EdgePipeError(f"document folder {root} has both corners.json and corners.csv; keep one")
    if as_json.is_file():
        return _json_table(as_json)
    if as_csv.is_file():
        return _csv_table(as_csv)
    raise EdgePipeError(f"document folder {root} has no corners.json or corners.csv")


def _text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8-sig")  # a byte-order mark (Excel, Notepad) is fine
    except UnicodeDecodeError:
        raise EdgePipeError(f"{path} is not UTF-8 text; save it as UTF-8 (Excel: CSV UTF-8)") from None


def _json_table(path: Path) -> dict[str, np.ndarray]:
    def unique(pairs):
        names = [name for name, _ in pairs]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise EdgePipeError(f"{path} lists {one_line(twice[0])} more than once")
        return dict(pairs)
    try:
        raw = json.loads(_text(path), object_pairs_hook=unique)
    except (ValueError, RecursionError) as e:
        raise EdgePipeError(f"{path} is not valid JSON: {one_line(e, 120)}") from None
    if not isinstance(raw, dict):
        raise EdgePipeError(f"{path} must map file names to 4 [x, y] points")
    return {name: _points(pts, f"{path} entry {one_line(name)}") for name, pts in raw.items()}


def _csv_table(path: Path) -> dict[str, np.ndarray]:
    reader = csv.reader(io.StringIO(_text(path), newline=""))
    rows = [(reader.line_num, row) for row in reader if row]  # numbered as a text editor shows them
    if not rows or [c.strip().lower() for c in rows[0][1]] != CSV_HEADER:
        first = one_line(",".join(rows[0][1]) if rows else "nothing")
        raise EdgePipeError(f"{path}: the first line must be the header {','.join(CSV_HEADER)}; it is {first}")
    table = {}
    for n, row in rows[1:]:
        if row[0] in table:
            raise EdgePipeError(f"{path} line {n}: {one_line(row[0])} is listed more than once")
        table[row[0]] = _points(row[1:], f"{path} line {n}")
    return table


def _points(values, where: str) -> np.ndarray:
    leaves = _leaves(values)
    if leaves is None:
        raise EdgePipeError(f"{where}: corners must be 4 [x, y] points or 8 numbers, not lists nested deeper")
    if any(isinstance(v, bool) for v in leaves):
        raise EdgePipeError(f"{where}: corners must be numbers, not true/false")
    try:
        pts = np.asarray(values, np.float64).reshape(-1, 2)
    except (ValueError, TypeError, OverflowError):
        raise EdgePipeError(f"{where}: corners must be numbers") from None
    if len(pts) != 4:
        raise EdgePipeError(f"{where}: needs 4 corner points, got {len(pts)}")
    if not np.isfinite(pts).all():
        raise EdgePipeError(f"{where}: corners contain NaN or Inf")
    return pts


def _leaves(values, deepest: int = 3) -> list | None:
    """The non-list values inside ``values``, or None when lists nest deeper than
    ``deepest`` (4 points of 2 numbers nest 2 deep): no recursion, so a file nesting
    a thousand deep is one error line, not a RecursionError."""
    leaves, todo = [], [(values, 0)]
    while todo:
        value, depth = todo.pop()
        if isinstance(value, (list, tuple)):
            if depth >= deepest:
                return None
            todo.extend((v, depth + 1) for v in value)
        else:
            leaves.append(value)
    return leaves


def _page_shape_problem(quad: np.ndarray, w: int, h: int) -> str:
    """Why four ordered corners cannot be a photographed page, or ''. A page seen
    by a camera is a convex quadrilateral; a point, a line or a dart is a typo."""
    area = quad_area(quad)
    if area < MIN_PAGE_AREA * w * h:
        return f"they enclose {area:.0f} square pixels, under {MIN_PAGE_AREA:.1%} of the photo"
    if not is_convex(quad):
        return "they do not make a convex quadrilateral"
    return ""


_noted: set = set()


def _note_unlabelled(root: Path, listed: set, count: int) -> None:
    """Say (once per folder) which photos in the folder the corners file leaves out."""
    left = sorted(p.name for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.resolve() not in listed)
    if left and root.resolve() not in _noted:
        _noted.add(root.resolve())
        more = f" and {len(left) - 3} more" if len(left) > 3 else ""
        print(f"note: {root}: {count} labelled photos; {len(left)} without corners are not used "
              f"({', '.join(one_line(n, 60) for n in left[:3])}{more})", file=sys.stderr)


def document_folder(root, size: int, edge_width: int = 2) -> Documents:
    root = _existing_dir(root)
    table = _corners_table(root)
    if not table:
        raise EdgePipeError(f"document folder {root}: the corners file lists no images")
    images, edges, corners, regions, rois, seen, copies = [], [], [], [], [], {}, {}
    for name in sorted(table):
        path = _listed_file(root, name)
        if path.resolve() in seen:  # "a.jpg" and "./a.jpg": one photo would land in train and test alike
            raise EdgePipeError(f"{root}: the corners file lists {one_line(seen[path.resolve()])} and "
                                f"{one_line(name)}, the same photo")
        seen[path.resolve()] = name
        _no_copy(path, copies)
        photo = read_rgb(path, min_side=MIN_PHOTO_SIDE)
        h, w = photo.shape[:2]
        pts = table[name]
        if (pts < 0).any() or (pts[:, 0] > w).any() or (pts[:, 1] > h).any():
            raise EdgePipeError(f"corners of {path} fall outside the {w}x{h} image: {pts.tolist()}")
        problem = _page_shape_problem(order_corners(pts).astype(np.float64), w, h)
        if problem:
            raise EdgePipeError(f"corners of {path} are no page: {problem}: {pts.tolist()}")
        image, box = letterbox(photo, size, size)  # as `edgepipe scan` feeds a photo
        quad = order_corners(box.to_input(pts))
        images.append(image)
        edges.append(edge_label(quad, size, edge_width, box.roi))
        regions.append(region_label(quad, size, box.roi))
        corners.append(quad)
        rois.append(box.roi)
    _note_unlabelled(root, set(seen), len(table))
    return Documents(np.stack(images), np.stack(edges), np.stack(corners), sorted(table), np.stack(regions),
                     np.array(rois, np.int64))


def _no_copy(path: Path, copies: dict) -> None:
    """Two listed photos with the same bytes would land in training and in the held-out test."""
    digest = _content_digest(path)
    if digest is None:
        return
    if digest in copies:
        raise EdgePipeError(f"{path} is a copy of {copies[digest]}: the corners file lists the same photo twice")
    copies[digest] = path


def _listed_file(root: Path, name: str) -> Path:
    """The photo a corners-file entry names (its ".." taken by name, so a link inside the
    folder cannot lead out of it), or a one-line error. It must lie in the folder: the run
    checks that folder for changes, so a photo elsewhere could be edited and an old
    model's scores reported as current."""
    top = os.path.normpath(os.path.abspath(root))
    norm = os.path.normpath(os.path.join(top, name))  # "..", resolved by name, before any link is followed
    if os.path.commonpath([top, norm]) != top:
        raise EdgePipeError(f"{root}: the corners file names {one_line(name)}, outside the data folder; keep the "
                            "photos in it (subfolders are fine)")
    path = Path(norm)
    try:
        if path.is_file():
            return path
    except (OSError, ValueError):  # a name too long for the file system, or holding a NUL
        pass
    raise EdgePipeError(f"{one_line(path)} is listed in the corners file but does not exist")


def photo_files(root) -> list[Path]:
    """Every image file under ``root``, at any depth, in path order (``--data FOLDER``);
    hidden entries and a Mac archiver's leftovers are skipped, linked folders not followed."""
    root = _existing_dir(root)
    found = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not _ignored(Path(d)))
        found += [Path(folder) / n for n in names if not _ignored(Path(n)) and Path(n).suffix.lower() in IMAGE_SUFFIXES]
    files = sorted(p for p in found if p.is_file())
    if not files:
        raise EdgePipeError(f"data folder {root} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def folder_classes(root, files: list[Path]) -> list[str] | None:
    """The class folders' names, sorted (the order Keras' image_dataset_from_directory numbers
    them in), when every file lies one level down in one of two or more; else None."""
    parts = [p.relative_to(root).parts for p in files]
    if any(len(part) != 2 for part in parts):
        return None
    classes = sorted({part[0] for part in parts})
    return classes if len(classes) >= 2 else None

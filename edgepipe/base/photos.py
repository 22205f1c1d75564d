"""Reading a user's photo, once, the same way for ``scan`` and for training on a
document or image folder: shown upright (EXIF orientation applied, as a phone's
gallery shows it), as RGB uint8, or refused in one line naming the file.

OpenCV decodes; Pillow reads the header first (the size limit, and what is no
image at all) and checks that the file is complete: decoders fill a truncated
PNG, TIFF, GIF, BMP or JPEG with black or grey and say nothing, which would score
a half photo. A JPEG that lost only its end-of-image marker has every row and is read.
Formats OpenCV cannot decode but Pillow can (some TIFFs) go through Pillow.
"""
from pathlib import Path

import numpy as np

from edgepipe.base.errors import EdgePipeError
from edgepipe.base.quiet import native_stderr_silenced
from edgepipe.base.safety import image_size, pillow_unbounded

MIN_PHOTO_SIDE = 16  # a thumbnail, an icon or a 1x1 pixel is no photo of a page


def read_rgb(path, min_side: int = 1) -> np.ndarray:
    """``path`` as an upright HxWx3 RGB uint8 array, at least ``min_side`` pixels a side."""
    path = Path(path)
    if path.is_dir():
        raise EdgePipeError(f"{path} is a folder; give one photo (.jpg, .png)")
    if not path.exists():
        raise EdgePipeError(f"photo not found: {path}")
    if not path.is_file():  # a FIFO or a device would block or never end when read
        raise EdgePipeError(f"{path} is not a regular file; give one photo (.jpg, .png)")
    unreadable = f"{path}: not a readable image (corrupt, truncated or not an image)"
    if path.suffix.lower() in (".tif", ".tiff"):  # a valid TIFF of a kind Pillow cannot open is no corrupt file
        unreadable = (f"{path}: not a TIFF edgepipe reads (corrupt, or a kind Pillow cannot open, such as 32-bit "
                      "float colour: save it as 8- or 16-bit)")
    image_size(path, unreadable=unreadable)
    with native_stderr_silenced():  # libpng and libjpeg print their own complaints
        _check_complete(path, unreadable)
        rgb = _decode_cv2(path)
        if rgb is None:
            rgb = _decode_pillow(path)
    if rgb is None:
        raise EdgePipeError(unreadable)
    if min(rgb.shape[:2]) < min_side:
        raise EdgePipeError(f"{path} is {rgb.shape[1]}x{rgb.shape[0]} pixels; too small to read "
                            f"(at least {min_side} pixels a side)")
    return rgb


def _check_complete(path: Path, unreadable: str) -> None:
    """Refuse a file whose data runs out: decoders fill the missing rows with black or
    grey, and the scan then finds a page edge where the file was cut. A baseline JPEG
    that lost only its end marker (it has every row) passes."""
    with pillow_unbounded() as Image:
        with Image.open(path) as im:
            jpeg, progressive = im.format == "JPEG", bool(im.info.get("progressive") or im.info.get("progression"))
            try:
                im.load()  # Pillow's strict decode refuses data that runs out
                return
            except (OSError, SyntaxError, ValueError) as error:
                truncated = "truncated" in str(error)
    if (truncated and not jpeg) or (jpeg and (progressive or _cut_short(path))):
        raise EdgePipeError(unreadable)
    # else a decode Pillow lacks (an exotic TIFF compression): OpenCV may have it


def _cut_short(path: Path) -> bool:
    """Whether a JPEG whose data ran out lost image rows, not just its end marker: the
    decoder fills missing rows with one flat grey, so the last 16 rows are a single colour."""
    from PIL import ImageFile
    with pillow_unbounded() as Image:
        ImageFile.LOAD_TRUNCATED_IMAGES = True  # restored by pillow_unbounded
        try:
            with Image.open(path) as im:
                tail = np.asarray(im.convert("RGB"))[-16:].reshape(-1, 3)
        except Exception:  # noqa: BLE001
            return True
    return bool((tail == tail[0]).all())


def _decode_cv2(path: Path):
    import cv2
    data = np.fromfile(str(path), np.uint8)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None  # IMREAD_COLOR applies EXIF orientation
    return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _decode_pillow(path: Path):
    """Pillow's decode, after ``_check_complete``: a JPEG missing only its end marker
    (which OpenCV refuses) is read whole."""
    from PIL import ImageFile, ImageOps
    try:
        with pillow_unbounded() as Image:
            ImageFile.LOAD_TRUNCATED_IMAGES = True  # restored by pillow_unbounded
            with Image.open(path) as im:
                im = ImageOps.exif_transpose(im)
                if im.mode not in ("RGB", "RGBA", "L", "LA", "P", "CMYK", "YCbCr"):
                    im = _to_8bit(np.asarray(im))
                return np.ascontiguousarray(np.asarray(im.convert("RGB")))
    except Exception:  # noqa: BLE001  Pillow raises many types for files it cannot decode
        return None


def _to_8bit(values: np.ndarray):
    """A 16-bit, 32-bit or float single-channel image (TIFF) as 8-bit grey: integers
    by the smallest of 8 / 16 bits / their type's range that holds them (Pillow reads
    16-bit files as 32-bit), floats in [0, 1] as they are, other floats by their range."""
    from PIL import Image
    v = values.astype(np.float64)
    if not np.isfinite(v).all():
        raise ValueError("non-finite pixels")
    if np.issubdtype(values.dtype, np.integer):
        top = next(t for t in (255, 65535, np.iinfo(values.dtype).max) if v.max() <= t)
        v = np.clip(v, 0, None) / top
    elif v.min() < 0 or v.max() > 1:
        v = (v - v.min()) / max(float(np.ptp(v)), 1e-12)
    return Image.fromarray(np.round(v * 255).astype(np.uint8))

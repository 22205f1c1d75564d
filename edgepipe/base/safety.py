"""Resource limits for files users hand us: models and images are sized from
their headers before anything is decompressed or decoded.

* a ``.keras`` zip may not expand beyond ``EDGEPIPE_MAX_MODEL_BYTES`` (default
  2 GiB), nor any large member compress better than ``MAX_COMPRESSION_RATIO``
  (zip bombs); the weight arrays declared in an HDF5 file count against the same
  limit (chunked HDF5 datasets can be compression bombs too);
* an image may not hold more than ``EDGEPIPE_MAX_IMAGE_PIXELS`` (default 40
  megapixels): a 1 MB PNG can declare 20000x20000 pixels, 1.2 GB once decoded.

No TensorFlow here: these checks run before it is imported.
"""
import os
import threading
import zipfile
from contextlib import contextmanager
from pathlib import Path

from edgepipe.base.errors import EdgePipeError, first_line

MODEL_BYTES_ENV = "EDGEPIPE_MAX_MODEL_BYTES"
IMAGE_PIXELS_ENV = "EDGEPIPE_MAX_IMAGE_PIXELS"
DEFAULT_MAX_MODEL_BYTES = 2 * 1024 ** 3
DEFAULT_MAX_IMAGE_PIXELS = 40_000_000
# Keras stores its zip members uncompressed; deflate tops out near 1032:1 on
# zeros. Real weights (even pruned ones) deflate a few times at most.
MAX_COMPRESSION_RATIO = 100
MAX_ZIP_MEMBERS = 1000
_RATIO_APPLIES_ABOVE = 1024 ** 2  # small members (config.json) may compress well


def _env_limit(name: str, default: int) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise EdgePipeError(f"{name} must be a positive whole number, got '{text}'") from None
    if value < 1:
        raise EdgePipeError(f"{name} must be a positive whole number, got '{text}'")
    return value


def max_model_bytes() -> int:
    """How far a model file may expand in memory (``EDGEPIPE_MAX_MODEL_BYTES``)."""
    return _env_limit(MODEL_BYTES_ENV, DEFAULT_MAX_MODEL_BYTES)


def max_image_pixels() -> int:
    """How many pixels an input image may hold (``EDGEPIPE_MAX_IMAGE_PIXELS``)."""
    return _env_limit(IMAGE_PIXELS_ENV, DEFAULT_MAX_IMAGE_PIXELS)


def human_bytes(n: int) -> str:
    for unit, size in (("GiB", 1024 ** 3), ("MiB", 1024 ** 2), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.4g} {unit}"
    return f"{n} bytes"


def _too_big(path, what: str, size: int, limit: int) -> EdgePipeError:
    return EdgePipeError(f"{path}: refused: {what} {human_bytes(size)}, over the {human_bytes(limit)} limit; "
                         f"set {MODEL_BYTES_ENV}=<bytes> to raise it")


def check_model_zip(path) -> None:
    """Size a ``.keras`` zip from its central directory, before any member is read.

    Declared sizes are binding: ``zipfile`` never yields more than a member's
    declared ``file_size``, so their sum bounds what loading can expand to."""
    limit = max_model_bytes()
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as e:
        raise EdgePipeError(f"{path}: not a loadable Keras model (not a valid .keras zip: {first_line(e)})") from None
    if len(infos) > MAX_ZIP_MEMBERS:  # Keras writes three; each member costs a seek and a parse
        raise EdgePipeError(f"{path}: refused: a .keras zip of {len(infos):,} members (Keras writes 3; limit "
                            f"{MAX_ZIP_MEMBERS:,})")
    total = sum(i.file_size for i in infos)
    if total > limit:
        raise _too_big(path, "unpacks to", total, limit)
    for i in infos:
        if i.file_size > _RATIO_APPLIES_ABOVE and i.file_size > MAX_COMPRESSION_RATIO * max(i.compress_size, 1):
            ratio = i.file_size // max(i.compress_size, 1)
            raise EdgePipeError(f"{path}: refused: member {one_line(i.filename)!r} expands {ratio}:1 "
                                f"({human_bytes(i.compress_size)} to {human_bytes(i.file_size)}), a zip bomb's ratio "
                                f"(limit {MAX_COMPRESSION_RATIO}:1; Keras itself stores members uncompressed: "
                                f"re-save the model with Keras)")


def hdf5_declared_bytes(h5file) -> int:
    """Bytes the datasets of an open ``h5py.File`` hold once read: their declared
    shapes, not their (possibly compressed or unwritten) storage."""
    import h5py
    total = 0

    def visit(_name, obj):
        nonlocal total
        if isinstance(obj, h5py.Dataset):
            total += int(obj.size or 0) * int(obj.dtype.itemsize)
    h5file.visititems(visit)
    return total


def hdf5_reaching_out(h5file) -> str | None:
    """What in an open ``h5py.File`` reads other files, in words, or None: an external
    link, a dataset whose bytes live in another file (external storage) or a virtual
    dataset. Keras never writes them; loading one copies another file into the export."""
    import h5py
    groups, seen = [h5file], set()
    while groups:
        group = groups.pop()
        for name in group:
            link = group.get(name, getlink=True)
            where = f"{group.name.rstrip('/')}/{name}"
            if isinstance(link, h5py.ExternalLink):
                return f"{where} links to another file ({link.filename})"
            if isinstance(link, h5py.SoftLink):
                continue  # within the file: its target is visited where it lives
            obj = group[name]
            if isinstance(obj, h5py.Dataset) and (obj.external or obj.is_virtual):
                return f"dataset {where} keeps its data in another file"
            if isinstance(obj, h5py.Group) and obj.id not in seen:  # hard links can make cycles
                seen.add(obj.id)
                groups.append(obj)
    return None


def check_hdf5_size(path, h5file, where: str = "its weights") -> None:
    reaching = hdf5_reaching_out(h5file)
    if reaching:  # refused even when trusted: no Keras file does this, and the other file lands in the export
        raise EdgePipeError(f"{path}: refused: {one_line(reaching, 200)}; a Keras model file holds its own weights")
    limit = max_model_bytes()
    total = hdf5_declared_bytes(h5file)
    if total > limit:
        raise _too_big(path, f"{where} declare", total, limit)


def check_folder_size(path) -> None:
    """A SavedModel folder is read as is: its size on disk is what loading takes."""
    limit = max_model_bytes()
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.stat(os.path.join(root, f)).st_size
            except OSError:
                continue
            if total > limit:
                raise _too_big(path, "holds more than", total, limit)


_pil_lock = threading.Lock()


@contextmanager
def pillow_unbounded():
    """Pillow with its own decompression-bomb limit lifted (``max_image_pixels``, which the
    user can raise, replaces it) and, for the block, truncated images still refused."""
    from PIL import Image, ImageFile
    with _pil_lock:
        saved = Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES
        Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = None, False
        try:
            yield Image
        finally:
            Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = saved


def image_size(path, unreadable: str | None = None) -> tuple[int, int]:
    """(width, height) of an image from its header only, refused above
    ``max_image_pixels()``. ``unreadable``: the message when it is not an image
    (default "PATH: not a readable image")."""
    path = Path(path)
    limit = max_image_pixels()
    with pillow_unbounded() as Image:
        try:
            with Image.open(path) as im:  # parses the header; pixels are decoded lazily
                width, height = im.size
        except Exception:  # noqa: BLE001  Pillow raises many types for corrupt or unknown files
            raise EdgePipeError(unreadable or f"{path}: not a readable image") from None
    pixels = int(width) * int(height)
    if pixels > limit:
        raise EdgePipeError(f"{path}: refused: {width}x{height} image has {pixels / 1e6:.4g} megapixels, over the "
                            f"{limit / 1e6:.4g}-megapixel limit; set {IMAGE_PIXELS_ENV}=<pixels> to raise it")
    return width, height


def escaped(text: str) -> str:
    """``text`` with control characters escaped (``\\x1b``, ``\\n``): it cannot rewrite a terminal."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def has_control(text: str) -> bool:
    """An escape code, tab, newline or other C0/C1 control character: not for names a bundle shows."""
    return any(ord(c) < 32 or 127 <= ord(c) < 160 for c in text)


def one_line(text: str, limit: int = 200) -> str:
    """``text`` safe inside a one-line message: control characters escaped, long text cut."""
    text = escaped(text)
    return text if len(text) <= limit else text[:limit] + "..."


"""Atomic artifact writes: write beside the target, then rename over it, so a
killed run never leaves a half-written model."""
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path


def ensure_writable_dir(path) -> Path:
    """Create ``path`` if needed and prove we can write there."""
    from pipeline.errors import EdgePipeError
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise EdgePipeError(f"output directory {out} is not writable ({e.strerror})") from None
    return out


def write_bytes(path: Path, data: bytes) -> Path:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; artifacts are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def remove_stale_temps(directory: Path) -> list[str]:
    """Temp files of a killed run (``.tmpPID-name`` and ``.name.XXXX.tmp``)."""
    stale = [p for p in Path(directory).iterdir()
             if p.name.startswith(".tmp") or (p.name.startswith(".") and p.name.endswith(".tmp"))]
    for p in stale:
        _remove(p)
    return [p.name for p in stale]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: Path, text: str) -> Path:
    return write_bytes(path, text.encode())


@contextmanager
def staged_path(path: Path):
    """Yield a temporary sibling path (file or directory) that replaces ``path``
    only if the block finishes without an exception."""
    path = Path(path)
    tmp = path.with_name(f".tmp{os.getpid()}-{path.name}")  # keeps the suffix tools check
    _remove(tmp)
    try:
        yield tmp
        _remove(path)
        os.replace(tmp, path)
    finally:
        _remove(tmp)


def _remove(p: Path):
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
    elif p.exists() or p.is_symlink():
        p.unlink()

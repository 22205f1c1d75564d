"""Atomic artifact writes: write beside the target, then rename over it, so a
killed run never leaves a half-written model.

The user's things are sacred: a target is replaced only when edgepipe wrote it
and it is the same kind of artifact (a file by a file; an ``.mlpackage`` folder by
an ``.mlpackage``), never a plain folder, never the input and never a file inside
an input folder. edgepipe knows what it wrote by ``.edgepipe-written.json`` in each
folder: the sha256 of each file it wrote there (a user's file saved over one of
ours, or one of ours edited, no longer matches; a file copied to a folder without
that record is the user's). A folder it made for a run carries an ``.edgepipe``
marker, so ``run``/``train --out`` may use it again, and only it. Temp
names carry one prefix, ``.edgepipe-tmp-``, so cleaning up after a killed run
touches nothing else.
"""
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from edgepipe.base.errors import EdgePipeError
from edgepipe.base.interrupts import deferred

TEMP_PREFIX = ".edgepipe-tmp-"
OWNED = ".edgepipe"                   # in a folder edgepipe made for a run (run/train --out may use it again)
WRITTEN = ".edgepipe-written.json"    # in every folder it writes to: {name: sha256} of what it wrote


def ensure_writable_dir(path) -> Path:
    """Create ``path`` if needed, claim it for edgepipe and prove we can write there.
    A folder that holds anything edgepipe did not make is refused, not written into."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise EdgePipeError(f"output folder {out} exists and is not a folder")
    claimed = (out / OWNED).is_file()
    earlier = [] if claimed or not out.is_dir() else _earlier_run(out)
    if out.is_dir() and not claimed and not earlier:
        theirs = sorted(p.name for p in out.iterdir() if not p.name.startswith(TEMP_PREFIX))
        if theirs:
            shown = ", ".join(theirs[:3]) + (", ..." if len(theirs) > 3 else "")
            raise EdgePipeError(f"output folder {out} holds files edgepipe did not make ({shown}); they are left "
                                "alone: choose a new or empty --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out, prefix=TEMP_PREFIX)
        os.close(fd)
        os.unlink(probe)
        if earlier:  # what an earlier edgepipe provably wrote there is edgepipe's to replace
            _record_written(*earlier)
        if not claimed:
            (out / OWNED).write_text('{"made_by": "edgepipe"}\n')
    except OSError as e:
        raise EdgePipeError(f"output folder {out} is not writable ({e.strerror or e})") from None
    return out


RUN_FILES = ("manifest.json", "report.json", "report.html", "history.json", "model_card.json")  # beside its models


@contextmanager
def exclusive(folder: Path):
    """One edgepipe at a time in a run folder: two runs writing one --out would record each
    other's models under their own stage keys."""
    fd = os.open(Path(folder) / OWNED, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise EdgePipeError(f"another edgepipe is writing to {folder}; wait for it or choose another --out") from None
    except OSError:
        pass  # a file system without locks (some NFS mounts): go on as before
    try:
        yield
    finally:
        os.close(fd)


def _earlier_run(out: Path) -> list[Path]:
    """The files of a run or training folder from before edgepipe marked its folders, or [] when
    it is no such folder. A manifest proves itself by an output that still has its recorded hash
    (any JSON with a "stages" key is not enough: the folder and its files may be yours), and
    the folder must hold nothing else but what such a run writes, each recognisably edgepipe's."""
    manifest = _read_json(out / "manifest.json")
    stages = manifest.get("stages") if isinstance(manifest, dict) else None
    outputs = [o for r in stages.values() if isinstance(r, dict) and isinstance(r.get("outputs"), dict)
               for o in r["outputs"].items()] if isinstance(stages, dict) else []
    proven = {out / Path(str(p)).name for p, digest in outputs if _hash_is(out / Path(str(p)).name, digest)}
    state = _read_json(out / "checkpoints" / "state.json")
    if proven:
        claimed = proven | {out / name for name in RUN_FILES if (out / name).is_file()}
    elif isinstance(state, dict) and {"key", "epochs_done", "history"} <= set(state):
        claimed = {p for p in out.iterdir() if p.is_file() and (p.suffix == ".keras" or p.name == "history.json")}
    else:
        return []
    unexplained = [p for p in out.iterdir() if p not in claimed and p.name not in RUN_FOLDERS
                   and not p.name.startswith(TEMP_PREFIX)]
    return [] if unexplained or not all(map(_run_file_is_ours, claimed)) else sorted(claimed)


RUN_FOLDERS = ("checkpoints", "logs", WRITTEN)  # what else a run leaves in its folder


def _run_file_is_ours(path: Path) -> bool:
    """A report or history as edgepipe writes them (a hand-written report.html is not)."""
    if path.name == "report.html":
        try:
            with open(path, "rb") as f:
                return f.read(200).startswith(b'<!doctype html><html lang="en"><head><meta charset="utf-8">'
                                              b'<title>edgepipe report')
        except OSError:
            return False
    keys = {"report.json": {"recipe", "artifacts"}, "history.json": {"loss"},
            "model_card.json": {"generator", "inputs"}}.get(path.name)
    data = _read_json(path) if keys else None
    return keys is None or isinstance(data, dict) and keys <= set(data)


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):  # damaged or nested past the stack: not a record of ours
        return None


def _hash_is(path: Path, digest) -> bool:
    """Whether the file at ``path`` has the sha256 an edgepipe manifest recorded for it."""
    if not path.is_file() or not isinstance(digest, str):
        return False
    try:
        return _digest(path) == digest
    except OSError:
        return False


def _digest(path: Path) -> str:
    """sha256 of a file's bytes, or of an ``.mlpackage``'s model and weights (coremltools
    rewrites the package's Manifest.json whenever it opens one)."""
    core = path / "Data" / "com.apple.CoreML"  # what coremltools writes there: the model and its weights
    files = sorted(p for p in core.rglob("*") if p.is_file() and p.name == "model.mlmodel"
                   or p.parent.name == "weights") if path.is_dir() else [path]
    h = hashlib.sha256()
    for file in files:
        h.update(file.relative_to(path).as_posix().encode() if path.is_dir() else b"")
        with open(file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def made_by_edgepipe(path: Path) -> bool:
    """Whether edgepipe wrote the existing file or ``.mlpackage`` at ``path``: its folder's record
    holds the bytes' sha256. A touch or a copy within the folder keeps them; saving over them,
    editing them, or copying them to a folder without that record makes them the user's."""
    path = Path(path)
    recorded = _written(path.parent).get(path.name)
    digests = recorded if isinstance(recorded, list) else [recorded]
    try:
        return recorded is not None and _digest(path) in digests
    except OSError:
        return False


def _added_to_package(package: Path) -> list[str]:
    """Files in an ``.mlpackage`` that coremltools does not write (someone else's, added since)."""
    ours = ("Manifest.json", "Data/com.apple.CoreML/model.mlmodel", "Data/com.apple.CoreML/weights/")
    files = (p.relative_to(package).as_posix() for p in package.rglob("*") if p.is_file() or p.is_symlink())
    return sorted(f for f in files if not (f in ours[:2] or f.startswith(ours[2])))


def _written(folder: Path) -> dict:
    return _own_record(folder) or {}


def _record_written(*paths: Path, digests: dict | None = None):
    """Note ``paths`` (in one folder) in that folder's record (``digests``: those already taken,
    by path). Best effort: a lost entry only means edgepipe later refuses to replace that file."""
    if paths:
        folder = paths[0].parent
        with _record_lock(folder):
            _save_record(folder, {k: v for k, v in _written(folder).items() if (folder / k).exists()}
                         | {p.name: (digests or {}).get(p) or _digest(p) for p in paths})


def _expect(path: Path, tmp: Path) -> str:
    """Before ``tmp`` replaces ``path``: either version is edgepipe's, so a kill between the
    rename and the record it makes after leaves none of its files looking like the user's.
    Returns ``tmp``'s digest, for that record."""
    digest = _digest(tmp)
    with _record_lock(path.parent):
        record = _written(path.parent)
        before = record.get(path.name)
        before = before if isinstance(before, list) else [before] if before else []
        _save_record(path.parent, record | {path.name: before + [digest]})
    return digest


@contextmanager
def _record_lock(folder: Path):
    """One read-modify-write of a folder's record at a time: two edgepipes writing into one
    folder (make -j, CI jobs) would otherwise drop each other's entries, and edgepipe would
    then take its own files for the user's. The lock is on the folder itself: no file added."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError:
        pass  # a file system without locks: as before
    try:
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _record_is_ours(folder: Path) -> bool:
    return _own_record(folder) is not None


def _own_record(folder: Path) -> dict | None:
    """The folder's record as edgepipe wrote it ({} when there is none yet), or None when the
    file of that name is yours: a link (to a file of yours), or anything but a plain file holding
    a JSON object (edgepipe replaces its record atomically, so its own is never half-written).
    Yours is neither read as a record nor replaced, and then nothing in the folder proves
    edgepipe's, so edgepipe replaces none of it."""
    record = folder / WRITTEN
    if record.is_symlink():
        return None
    if not record.exists():
        return {}
    data = _read_json(record) if record.is_file() else None
    return data if isinstance(data, dict) else None


def _save_record(folder: Path, record: dict):
    if not _record_is_ours(folder):
        return
    tmp = None
    with deferred():
        try:
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=f"{TEMP_PREFIX}written.", suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                json.dump(record, f)
            os.replace(tmp, folder / WRITTEN)
        except OSError:
            if tmp:
                Path(tmp).unlink(missing_ok=True)


def is_mlpackage(path: Path) -> bool:
    """A Core ML package folder as coremltools writes it."""
    path = Path(path)
    return path.suffix == ".mlpackage" and path.is_dir() and (path / "Manifest.json").is_file() \
        and (path / "Data" / "com.apple.CoreML").is_dir()


def check_target(path, folder_artifact: bool = False, inputs=()) -> Path:
    """Refuse an output path that would replace something edgepipe did not make,
    or that is one of ``inputs`` (through links too)."""
    path = Path(path)
    if path.is_symlink():
        raise EdgePipeError(f"{path} is a symbolic link; edgepipe does not replace links, choose another output")
    for src in inputs:
        if src and same_path(src, path):
            raise EdgePipeError(f"the output {path} is the input {src}; choose another output")
        if src and Path(src).is_dir() and inside(path, src):
            raise EdgePipeError(f"the output {path} is inside the input folder {src}; choose another output")
    if path.is_dir() and not (folder_artifact and is_mlpackage(path)):
        raise EdgePipeError(f"{path} is an existing folder edgepipe did not make; it is left alone, "
                            "choose another output")
    if folder_artifact and path.exists() and not path.is_dir():
        raise EdgePipeError(f"{path} is an existing file, not an .mlpackage; choose another output")
    if path.exists() and not made_by_edgepipe(path):
        why = "" if _record_is_ours(path.parent) else (f" (the record of what it wrote there, {WRITTEN}, is "
                                                        "not a file edgepipe wrote: a link or not its JSON)")
        raise EdgePipeError(f"{path} exists and edgepipe did not write it{why}; it is left alone, "
                            "choose another output")
    added = _added_to_package(path) if path.is_dir() else []
    if added:
        raise EdgePipeError(f"{path} holds files edgepipe did not write ({', '.join(added[:3])}); it is left alone, "
                            "choose another output")
    if not path.parent.is_dir():
        raise EdgePipeError(f"output folder {path.parent} does not exist")
    return path


def same_path(a, b) -> bool:
    a, b = Path(a), Path(b)
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return a.resolve() == b.resolve()
    except (OSError, RuntimeError):  # a link loop is nobody's input
        return False


def inside(path, folder) -> bool:
    """Whether ``path`` lies in ``folder``: its existing ancestors are compared with the
    folder as files (``samefile``), so a case-insensitive disk (macOS, Windows) that
    spells the folder ``Data`` in one and ``data`` in the other cannot slip past."""
    try:
        here, folder = Path(path).resolve(), Path(folder).resolve()
        if here.is_relative_to(folder):
            return True
        return any(a.exists() and os.path.samefile(a, folder) for a in (here, *here.parents))
    except (OSError, RuntimeError):
        return False


def write_bytes(path: Path, data: bytes) -> Path:
    path = check_target(path)
    with deferred():  # a file this size is written in moments: no temp file left by an interrupt
        try:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{TEMP_PREFIX}{path.name}.", suffix=".tmp")
        except OSError as e:
            raise EdgePipeError(f"cannot write {path} ({e.strerror or e})") from None
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; artifacts are meant to be shared
            digest = _expect(path, Path(tmp))
            os.replace(tmp, path)
        except OSError as e:
            Path(tmp).unlink(missing_ok=True)
            raise EdgePipeError(f"cannot write {path} ({e.strerror or e})") from None
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _record_written(path, digests={path: digest})
        return path


def write_text(path: Path, text: str) -> Path:
    return write_bytes(path, text.encode())


def remove_stale_temps(directory: Path) -> list[str]:
    """Temp files and folders of a killed edgepipe run: only names with edgepipe's prefix."""
    stale = [p for p in Path(directory).iterdir() if p.name.startswith(TEMP_PREFIX)]
    for p in stale:
        _remove(p)
    return [p.name for p in stale]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def staged_path(path: Path, folder_artifact: bool = False, along=None):
    """Yield a temporary sibling path (file or folder) that replaces ``path`` only
    if the block finishes without an exception. ``folder_artifact``: the artifact
    is a folder (.mlpackage, SavedModel) and may replace one of its own kind.
    ``along()`` (writing the file's card) runs with the rename, inside ``deferred()``:
    an interrupt leaves the old pair or the new one, never a new file by an old card."""
    path = check_target(path, folder_artifact)
    tmp = path.with_name(f"{TEMP_PREFIX}{os.getpid()}-{path.name}")  # keeps the suffix tools check
    _remove(tmp)
    try:
        yield tmp
        with deferred():  # renamed and recorded together, with its card if any
            _replace(tmp, path)
            if along is not None:
                along()
    finally:
        _remove(tmp)


def _replace(tmp: Path, path: Path):
    digest = _expect(path, tmp)
    try:
        if path.is_dir():  # an earlier .mlpackage (checked above): move aside, then drop
            old = path.with_name(f"{TEMP_PREFIX}{os.getpid()}-old-{path.name}")
            os.replace(path, old)
            os.replace(tmp, path)
            _remove(old)
        else:
            os.replace(tmp, path)
    except OSError as e:
        raise EdgePipeError(f"cannot write {path} ({e.strerror or e})") from None
    _record_written(path, digests={path: digest})


def _remove(p: Path):
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
    elif p.exists() or p.is_symlink():
        p.unlink()

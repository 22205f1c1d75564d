"""Who writes in multi-worker training. With ``distribute: multi_worker`` every
worker runs the same program (``TF_CONFIG`` says which one it is), and every one
must take part in each checkpoint save (reading mirrored and BatchNorm variables
is a collective), but only the chief's files count. So the chief writes to the run
folder, and the others write the same files to a temp folder of their own that
is removed when training ends (TensorFlow's documented pattern). Resuming, every
worker reads the chief's checkpoint, which needs a folder they all see (a shared
filesystem, or one machine)."""
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from edgepipe.base.errors import EdgePipeError


def role() -> tuple[str, int]:
    """(task type, index) from ``TF_CONFIG``; ("chief", 0) when it is not set."""
    text = os.environ.get("TF_CONFIG", "").strip()
    if not text:
        return "chief", 0
    try:
        task = json.loads(text)["task"]
        return str(task["type"]), int(task["index"])
    except (ValueError, KeyError, TypeError):
        raise EdgePipeError("TF_CONFIG must be JSON with task.type and task.index "
                            '(e.g. {"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", '
                            '"index": 0}})') from None


def is_chief() -> bool:
    """The chief, or worker 0 of a cluster without one, or a single process."""
    kind, index = role()
    if kind == "chief":
        return True
    cluster = json.loads(os.environ["TF_CONFIG"]).get("cluster", {})
    return kind == "worker" and index == 0 and "chief" not in cluster


def describe() -> str:
    kind, index = role()
    return f"{kind}:{index}"


@contextmanager
def write_dir(folder: Path):
    """``folder`` for the chief; for any other worker a temp folder, removed after."""
    if is_chief():
        yield Path(folder)
        return
    kind, index = role()
    tmp = Path(tempfile.mkdtemp(prefix=f"edgepipe-{kind}{index}-"))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

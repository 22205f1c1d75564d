"""Native libraries (TensorFlow's C++ runtime, LiteRT's XNNPACK delegate,
libpng and libjpeg inside OpenCV) print to fd 2 directly, past Python's
``sys.stderr``. A user should see edgepipe's own one-line errors, not that."""
import os
import sys
from contextlib import contextmanager


@contextmanager
def native_stderr_silenced():
    """Send fd 2 to /dev/null for the block (Python-level exceptions still propagate)."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # pytest's capture, an IDE console
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    try:
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)

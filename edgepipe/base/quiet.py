"""Native libraries (TensorFlow's C++ runtime, LiteRT's XNNPACK delegate,
libpng and libjpeg inside OpenCV) print to fd 2 directly, past Python's
``sys.stderr``. A user should see edgepipe's own one-line errors, not that."""
import io
import logging
import os
import sys
import warnings
from contextlib import contextmanager, redirect_stderr


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


@contextmanager
def converter_chatter_silenced():
    """A converter's own output while it traces the model: TensorFlow's and tf2onnx's
    warnings and prints (a lookup table's serialisation complaints, a bare exception
    text), coremltools' progress bars. edgepipe says what matters itself, in one line."""
    tf_logger = logging.getLogger("tensorflow")
    level = tf_logger.level
    tf_logger.setLevel(logging.ERROR)
    try:
        with native_stderr_silenced(), redirect_stderr(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        tf_logger.setLevel(level)


class _SlowCallbackNote(logging.Filter):
    """Keras' "Callback method `on_train_batch_end` is slow compared to the batch time":
    edgepipe's per-step NaN check on a tiny batch, said on stderr of a run that succeeded."""

    def filter(self, record) -> bool:
        return "is slow compared to the batch time" not in record.getMessage()


_SLOW_CALLBACK_NOTE = _SlowCallbackNote()


def callback_timing_notes_dropped():
    """Drop Keras' callback-timing note from TensorFlow's logger (once; later calls do nothing)."""
    logging.getLogger("tensorflow").addFilter(_SLOW_CALLBACK_NOTE)  # a filter already there is not added twice

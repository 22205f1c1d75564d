"""The one module that imports TensorFlow and Keras.

tfmot needs Keras 2 (``tf_keras``), while TF 2.21 ships Keras 3, so
``TF_USE_LEGACY_KERAS=1`` must be set before TensorFlow is first imported.
Every other module does ``from mobile_models.backend import tf, keras``.
"""
import os
import sys
from contextlib import contextmanager

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["TF_USE_LEGACY_KERAS"] = "1"


@contextmanager
def _quiet_native_stderr():
    """TensorFlow's C++ runtime logs CUDA probing to fd 2 before it reads
    TF_CPP_MIN_LOG_LEVEL; users should see one-line errors, not that."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    saved = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    try:
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


with _quiet_native_stderr():
    import tensorflow as tf  # noqa: E402
    import tf_keras as keras  # noqa: E402

layers = keras.layers

__all__ = ["tf", "keras", "layers"]

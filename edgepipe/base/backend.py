"""The one module that imports TensorFlow and Keras.

tfmot needs Keras 2 (``tf_keras``), while TF 2.21 ships Keras 3, so
``TF_USE_LEGACY_KERAS=1`` must be set before TensorFlow is first imported.
Every other module does ``from edgepipe.base.backend import tf, keras``.

``tf``, ``keras`` and ``layers`` are stand-ins that import TensorFlow on first
use (about 4.5 s): the CLI answers ``--help`` and argument errors, and lists
the registry's networks, without loading it.
"""
import os
import sys

from edgepipe.base.quiet import native_stderr_silenced

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["TF_USE_LEGACY_KERAS"] = "1"

_modules: dict = {}


def _load(name: str = "tf") -> dict:
    if name == "keras3" and "keras3" not in _modules:
        _load()
        with native_stderr_silenced():
            import keras  # Keras 3: only to read the files it saved (edgepipe.base.keras3)
        _modules["keras3"] = keras
    if not _modules:
        with native_stderr_silenced():
            import tensorflow
            import tf_keras
        import absl.logging  # the converters' deprecation chatter would bury edgepipe's own lines
        absl.logging.set_verbosity(absl.logging.ERROR)
        _modules.update(tf=tensorflow, keras=tf_keras, layers=tf_keras.layers)
    return _modules


def tflite_schema():
    """(schema_py_generated, flatbuffer_utils): TensorFlow's TFLite flatbuffer schema and
    tools, imported after TensorFlow itself, whose start-up lines are silenced."""
    _load()
    from tensorflow.lite.python import schema_py_generated
    from tensorflow.lite.tools import flatbuffer_utils
    return schema_py_generated, flatbuffer_utils


def op_def(name: str):
    """TensorFlow's registered definition of op type ``name`` (its ``is_stateful``,
    attrs), or None for a type this TensorFlow does not know."""
    _load()
    from tensorflow.python.framework import op_def_registry
    return op_def_registry.get(name)


class _Deferred:
    """Stands for a module and imports it on first attribute access."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr):
        return getattr(_load(self._name)[self._name], attr)

    def __repr__(self):
        return f"<deferred {self._name}>"


def loaded() -> bool:
    """Whether TensorFlow has been imported by this process."""
    return "tensorflow" in sys.modules


tf = _Deferred("tf")
keras = _Deferred("keras")
layers = _Deferred("layers")
keras3 = _Deferred("keras3")  # TF 2.16+'s own tf.keras: what today's tutorials save

__all__ = ["tf", "keras", "keras3", "layers", "loaded"]

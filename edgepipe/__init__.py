"""edgepipe: train, prune, quantize and export lightweight vision backbones to
TFLite, Core ML and ONNX, and check every export against its original.

The repository keeps its design folders at the top level (``mobile_models/``,
``train/``, ``quantize/``, ``convert/``, ``evaluate/``, ``pipeline/``);
setuptools installs each as ``edgepipe.<folder>``. Imports run down the flow:
base -> mobile_models -> train -> quantize -> convert -> evaluate -> pipeline -> cli
(``tests/test_layering.py`` enforces it).
"""
__version__ = "0.2.0"

import os as _os

# Before anything imports TensorFlow (coremltools, tf2onnx and tfmot import it
# themselves): tfmot and our models need Keras 2 (tf_keras) behind tf.keras.
# edgepipe.base.backend imports TensorFlow itself, on first use.
_os.environ["TF_USE_LEGACY_KERAS"] = "1"
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

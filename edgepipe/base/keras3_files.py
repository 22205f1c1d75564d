"""Models saved by Keras 3: TensorFlow 2.16+'s own ``tf.keras``, what today's tutorials save.

edgepipe's Keras is Keras 2 (``tf_keras``, which tfmot's pruning and QAT need), and it
cannot rebuild a Keras 3 file. Keras 3 can. So a Keras 3 ``.keras`` or ``.h5`` file is
loaded by Keras 3 (after the config walk that guards every model, and in safe mode
unless trusted), relieved of the augmentation and dropout layers that do nothing at
inference (their random state would otherwise reach the export), and exported as a
SavedModel whose ``serving_default`` signature edgepipe converts and verifies like any
other (``edgepipe.base.serving``). The Keras 3 model stays attached (``keras_model``),
so its own Rescaling/Normalization layers still say what pixels it takes.
"""
import re
import tempfile
import warnings
from pathlib import Path

import numpy as np

from edgepipe.base import serving
from edgepipe.base.backend import keras3
from edgepipe.base.errors import EdgePipeError, first_line

TRUST_HINT = "pass --trust-model to load it anyway"
# Keras 3 layers that return their input unchanged at inference
INFERENCE_NOOPS = frozenset({
    "RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomContrast", "RandomBrightness",
    "RandomHue", "RandomSaturation", "RandomSharpness", "RandomShear", "RandomColorJitter", "RandomGrayscale",
    "RandomErasing", "RandomGaussianBlur", "RandomPerspective", "RandomInvert", "RandomPosterization",
    "RandomElasticTransform", "RandomColorDegeneration", "RandAugment", "AugMix", "Solarization", "MixUp",
    "CutMix", "GaussianNoise",
    "GaussianDropout", "Dropout", "AlphaDropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D"})
PROBE_SIDE = 32  # a free spatial dimension, when checking that stripping changed nothing


def load(path: Path, trust: bool) -> serving.ServingModel:
    """The file's inference function as a served signature (its config was checked by the caller)."""
    try:
        model = keras3.saving.load_model(path, compile=False, safe_mode=not trust)
    except Exception as e:  # noqa: BLE001  Keras raises many types for corrupt or hostile files
        msg = first_line(e)
        if ("Lambda" in msg or "safe_mode" in msg) and not trust:
            raise EdgePipeError(f"{path}: refused to load a model with a Lambda layer or custom code "
                                f"({TRUST_HINT})") from None
        raise EdgePipeError(f"{path}: not a loadable Keras 3 model ({msg})") from None
    return served(without_inference_noops(in_float32(model)), path)


def in_float32(model):
    """A model trained under ``mixed_float16`` (TensorFlow's mixed-precision guide) computes
    in float16, whose casts TFLite's converter cannot translate: the same layers and weights
    computing in float32, which every format then converts (and TFLite's float16 variant
    halves again). A model whose config cannot be rebuilt is returned as it is."""
    if not any(str(getattr(layer, "dtype_policy", None) and layer.dtype_policy.name).startswith("mixed")
               for layer in model._flatten_layers()):
        return model
    try:
        clone = type(model).from_config(_float32_policies(model.get_config()))
        clone.set_weights(model.get_weights())
    except Exception:  # noqa: BLE001  a subclassed model's config: convert what was loaded
        return model
    return clone


def _float32_policies(config):
    if isinstance(config, list):
        return [_float32_policies(v) for v in config]
    if not isinstance(config, dict):
        return config
    inner = config.get("config")
    if config.get("class_name") in ("DTypePolicy", "FloatDTypePolicy") and isinstance(inner, dict) \
            and str(inner.get("name", "")).startswith("mixed"):
        config = dict(config, config=dict(inner, name="float32"))
    return {k: _float32_policies(v) for k, v in config.items()}


def served(model, source: Path) -> serving.ServingModel:
    """Export ``model`` (Keras 3) to a temporary SavedModel and serve its signature from memory."""
    with tempfile.TemporaryDirectory(prefix="edgepipe-keras3-") as tmp:
        try:
            model.export(tmp, format="tf_saved_model", verbose=False)
        except Exception as e:  # noqa: BLE001  what Keras 3 cannot trace into a TensorFlow graph
            raise EdgePipeError(f"{source}: Keras 3 could not export the model's inference function "
                                f"({first_line(e)})") from None
        try:
            model_served = serving.load_serving(Path(tmp), trust=True)  # our own export of a checked model
        except serving.RandomSignature as e:
            raise EdgePipeError(f"{source}: its inference output is random (op '{e.op}'): a layer draws random "
                                f"numbers at inference, and edgepipe drops only the augmentation and dropout "
                                f"layers Keras ships; remove that layer from the model, or run it in "
                                f"training only, and save it again") from None
    model_served.path, model_served.keras_model = Path(source), model
    model_served.name_outputs(_layer_names(model, model_served.output_names))
    return model_served


def _layer_names(model, keys: list) -> dict:
    """{signature key: output layer name}: Keras 3's export calls a list of outputs
    ``output_0``, ``output_1``...; apps look them up by the names the model gives them."""
    names = list(getattr(model, "output_names", None) or [])
    ordered = [f"output_{i}" for i in range(len(keys))]  # the signature's map comes in no set order
    if sorted(keys) != sorted(ordered) or len(names) != len(keys) or len(set(names)) != len(names):
        return {}
    if not all(isinstance(n, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\-]*", n) for n in names):
        return {}
    return dict(zip(ordered, names))


def without_inference_noops(model):
    """``model`` with its augmentation and dropout layers replaced by Identity when that
    leaves its inference output unchanged (checked on a random batch); else ``model``."""
    if not any(type(layer).__name__ in INFERENCE_NOOPS for layer in all_layers(model)):
        return model
    try:
        stripped = keras3.models.clone_model(model, clone_function=_identity_for_noop, recursive=True)
        feeds = [_probe(tensor) for tensor in model.inputs]
        feeds = feeds[0] if len(feeds) == 1 else feeds  # as the model was built: no structure warning
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            before, after = model(feeds, training=False), stripped(feeds, training=False)
        same = all(np.allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
                   for a, b in zip(keras3.tree.flatten(before), keras3.tree.flatten(after)))
    except Exception:  # noqa: BLE001  a model clone_model cannot rebuild keeps its layers
        return model
    return stripped if same else model


def _identity_for_noop(layer):
    if type(layer).__name__ in INFERENCE_NOOPS:
        return keras3.layers.Identity(name=layer.name)
    if type(layer).__name__ == "Pipeline":  # a layer holding layers, which clone_model does not enter
        return keras3.layers.Pipeline([_identity_for_noop(inner) for inner in layer.layers], name=layer.name)
    return layer  # shared, weights and all


def all_layers(model):
    """Every layer of ``model``, nested models' layers included (either Keras)."""
    for layer in getattr(model, "layers", []):
        yield layer
        yield from all_layers(layer)


def _probe(tensor) -> np.ndarray:
    shape = [1] + [d if d is not None else PROBE_SIDE for d in tensor.shape[1:]]
    rng = np.random.default_rng(0)
    if "int" in str(tensor.dtype):
        return rng.integers(0, 255, shape).astype(str(tensor.dtype))
    return rng.random(shape).astype(str(tensor.dtype))


def output_activation(model, index: int = 0) -> str | None:
    """The activation of the layer behind a Keras 3 model's output ``index``, as tf_keras
    names it ('softmax', 'linear' for logits); None where it cannot be traced."""
    from edgepipe.base.layer_trace import computing_layer
    try:
        output = model.outputs[index]
        layer, kept = computing_layer(output._keras_history.operation, output.shape[-1])
    except (AttributeError, IndexError):
        return None
    activation = getattr(layer, "activation", None)  # a function; a layer without one is linear
    name = "softmax" if type(layer).__name__ == "Softmax" else \
        getattr(activation, "__name__", "linear") if activation is not None else "linear"
    return None if name == "softmax" and not kept else name  # a softmax over another axis: not traced

"""What an app feeds a model's image input, in one object that every bundle
format is written from: the model card, TFLite metadata, the Core ML ImageType,
ONNX metadata, and the calibration data edgepipe generates.

It comes from the user (``--input-range``, ``--mean/--std``, ``--bgr``), else from
the model itself (a model that starts with its own ``Rescaling``/``Normalization``
takes raw pixels), else the default: pixel / 255, what the zoo trains on.
"""
import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from edgepipe.base.errors import EdgePipeError
from edgepipe.mobile_models.graph import leading_layers

SOURCES = ("model", "user", "default")
COLOR_ORDERS = ("RGB", "BGR")
GRAYSCALE = "GRAYSCALE"  # a card's color_order for a 1-channel image (its spec keeps "RGB": one channel has no order)
# A leading affine layer maps the input it expects onto a normalised range: one
# that the input's full range spans widely enough (at least MIN_SPAN), that lies
# near zero (its centre within one span of it), and that stays moderate (|x| at
# most MAX_ABS: Caffe-style mean subtraction gives about +-128). Which of raw
# pixels 0..255 or pixel / 255 yields such a range says what the model takes.
MIN_SPAN, MAX_ABS = 0.5, 300.0
# Layers that move, resample or crop pixels without rescaling them: the walk passes them
# (the data-augmentation tutorial's Sequential([Resizing, Rescaling(1/255)]))
KEEP_VALUES = ("Resizing", "CenterCrop", "Cropping2D", "ZeroPadding2D", "ActivityRegularization",
               "Identity")  # the last two, and a linear Activation, pass every value through
# ... and the same as tf_keras op layers (``tf.image.resize(x, ...)`` on the input)
KEEP_VALUES_OPS = ("image.resize", "image.resize_with_pad", "image.resize_with_crop_or_pad", "image.central_crop",
                   "image.crop_to_bounding_box", "image.pad_to_bounding_box", "compat.v1.image.resize")


@dataclass(frozen=True)
class InputSpec:
    """``x = (pixel - mean) / std`` per channel, pixels 0..255, channels in the
    model's order (``color_order``); one value stands for every channel."""
    mean: tuple = (0.0,)
    std: tuple = (255.0,)
    color_order: str = "RGB"
    source: str = "default"
    note: str = ""  # why, in words, for the card's description

    def __post_init__(self):
        object.__setattr__(self, "mean", tuple(float(m) for m in self.mean))
        object.__setattr__(self, "std", tuple(float(s) for s in self.std))
        values = self.mean + self.std
        if not all(math.isfinite(v) for v in values) or min(self.std) <= 0:
            raise EdgePipeError(f"input normalisation needs finite values and std > 0, got mean {self.mean}, "
                                f"std {self.std}")
        if len(self.mean) != len(self.std) and 1 not in (len(self.mean), len(self.std)):
            raise EdgePipeError(f"--mean has {len(self.mean)} values and --std {len(self.std)}: give one "
                                "value or one per channel for each")
        if self.color_order not in COLOR_ORDERS or self.source not in SOURCES:
            raise ValueError(f"color_order {self.color_order!r} / source {self.source!r}")

    @property
    def uniform(self) -> bool:
        """One scale and bias for every channel (Core ML's ImageType takes one scale)."""
        return len(set(self.mean)) == 1 and len(set(self.std)) == 1

    def per_channel(self, channels: int) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) as float64 arrays of ``channels`` values."""
        for name, v in (("mean", self.mean), ("std", self.std)):
            if len(v) not in (1, channels):
                raise EdgePipeError(f"--{name} has {len(v)} values, the model's input has {channels} channels")
        return (np.broadcast_to(np.asarray(self.mean), (channels,)).astype(np.float64),
                np.broadcast_to(np.asarray(self.std), (channels,)).astype(np.float64))

    def scale_bias(self, channels: int) -> tuple[np.ndarray, np.ndarray]:
        """The same map as ``x = pixel * scale + bias``."""
        mean, std = self.per_channel(channels)
        return 1.0 / std, -mean / std

    def value_range(self, channels: int = 3) -> list[float]:
        """[lowest, highest] value the input tensor takes (pixels 0 and 255, every channel)."""
        scale, bias = self.scale_bias(channels)
        ends = np.concatenate([bias, 255 * scale + bias])
        return [float(ends.min()) + 0.0, float(ends.max()) + 0.0]  # + 0.0: no "-0" in cards and messages

    def own_range(self) -> list[float]:
        """``value_range`` over as many channels as the spec itself names (a tensor input's)."""
        return self.value_range(max(len(self.mean), len(self.std)))

    @property
    def is_default(self) -> bool:
        """pixel / 255 in RGB order, wherever it came from."""
        return (self.mean, self.std, self.color_order) == (DEFAULT.mean, DEFAULT.std, "RGB")

    def from_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """RGB pixels (..., C) in 0..255 -> what the model's input takes (float32)."""
        if self.is_default:
            return np.asarray(pixels).astype(np.float32) / 255.0  # bit for bit what edgepipe always fed
        pixels = np.asarray(pixels, np.float64)
        if self.color_order == "BGR":
            pixels = pixels[..., ::-1]
        scale, bias = self.scale_bias(pixels.shape[-1])
        return (pixels * scale + bias).astype(np.float32)

    def from_unit(self, images: np.ndarray) -> np.ndarray:
        """RGB images in [0, 1] -> the model's input; the default spec returns them unchanged."""
        images = np.asarray(images, np.float32)
        if self.is_default:
            return images  # exactly, not images * 255 / 255
        return self.from_pixels(images.astype(np.float64) * 255)


DEFAULT = InputSpec()  # pixel / 255 -> [0, 1]: every zoo model, and any model that says nothing


def raw_pixels(source: str = "model", note: str = "") -> InputSpec:
    return InputSpec((0.0,), (1.0,), source=source, note=note)


def from_range(lo: float, hi: float, source: str = "user") -> InputSpec:
    """Pixels 0..255 mapped linearly onto [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        raise EdgePipeError(f"--input-range needs LO < HI, got {lo:g},{hi:g}")
    std = 255.0 / (hi - lo)
    return InputSpec((-lo * std,), (std,), source=source)


def from_input_quantization(dtype: str, scale: float, zero: int) -> InputSpec | None:
    """What an 8-bit quantized image input takes, when no card says: its bytes are the
    pixels (uint8 as they are; int8 as pixel - 128, what the converter's int8 input
    type means), so ``float = scale * (byte - zero)`` is the pixel map. A quantized
    input whose floats are [0, 1] gets pixel / 255, as before; one whose floats are
    0..255 or [-1, 1] gets its own (pixel / 255 fed through it used a sliver of its range)."""
    shift = {"uint8": 0, "int8": 128}.get(dtype)
    if shift is None or not (math.isfinite(scale) and scale > 0):
        return None
    return InputSpec((shift + zero,), (1.0 / scale,), source="model",
                     note=f"the model's {dtype} input holds pixels (scale {scale:g}, zero point {zero})")


def from_model(model, index: int = 0) -> InputSpec | None:
    """What the model's own leading Rescaling/Normalization layers (or the
    ``tf.math`` ops ``keras.applications`` preprocess_input leaves) say its input
    ``index`` takes, or None when it starts with neither, or has no layers (a
    SavedModel signature)."""
    if _input_dtype(model, index) == "uint8":  # 0..255 is all a uint8 input can hold
        return raw_pixels("model", "the model takes uint8 pixels")
    if getattr(model, "keras_model", None) is not None:  # served from a Keras 3 file
        chain = _keras3_chain(model.keras_model, _keras3_input_index(model, index))
    elif hasattr(model, "layers"):
        chain = leading_layers(model, index)
    else:
        return None
    scale, bias, found, verdict = np.ones(1), np.zeros(1), [], None
    for layer in chain:
        if _keeps_values(layer):  # a resize or crop before the Rescaling changes no pixel's scale
            continue
        if not found and not _rgb_input(model, index) and not _pixel_statistics(layer):
            return None  # a spectrogram's adapted Normalization says nothing about pixels
        order = _channel_order(layer)
        if order is not None:  # caffe's RGB -> BGR: the app still feeds RGB, the model reorders
            if len(scale) not in (1, len(order)):
                break
            scale, bias = (v if len(v) == 1 else v[list(order)] for v in (scale, bias))
            found.append("RGB->BGR" if order == (2, 1, 0) else "a channel reorder")
            continue
        step = _affine(layer)
        if step is None:
            break
        a, b = step
        scale, bias = scale * a, bias * a + b
        found.append(type(layer).__name__ if type(layer).__name__ not in _OP_LAYERS else layer.symbol)
        # the longest run of steps that says raw or unit pixels decides: a Rescaling(1/255) put in
        # front of a backbone that rescales again (EfficientNet) still says the model takes 0..255
        verdict = _verdict(scale, bias, found) or verdict
    return verdict


def _keeps_values(layer) -> bool:
    if type(layer).__name__ == "Activation":
        return getattr(layer.activation, "__name__", None) == "linear"
    return type(layer).__name__ in KEEP_VALUES or getattr(layer, "symbol", None) in KEEP_VALUES_OPS


def _rgb_input(model, index: int) -> bool:
    try:
        shape = model.inputs[index].shape if hasattr(model, "layers") else model.inputs[index][1]
        return len(shape) == 4 and shape[-1] == 3
    except (AttributeError, IndexError, TypeError):
        return False


def _pixel_statistics(layer) -> bool:
    """Whether a leading Normalization was adapted on pixels, raw (an MNIST digit: mean
    33, std 78) or / 255. Said of a 1-channel input, where its statistics are all that
    tells a grayscale image from a spectrogram or a depth map; any other layer passes."""
    if type(layer).__name__ != "Normalization":
        return True
    mean = np.asarray(layer.mean, np.float64).reshape(-1)
    std = np.sqrt(np.asarray(layer.variance, np.float64).reshape(-1))
    raw = (mean >= 10).all() and (mean <= 245).all() and (std >= 8).all() and (std <= 128).all()
    unit = (mean >= 0.04).all() and (mean <= 0.96).all() and (std >= 0.03).all() and (std <= 0.5).all()
    return bool(raw or unit)


def _verdict(scale, bias, found: list[str]) -> InputSpec | None:
    """Raw pixels or pixels / 255, when ``x * scale + bias`` normalises one and not the other."""
    raw, unit = (_normalises(scale, bias, top) for top in (255.0, 1.0))
    if raw and not unit:
        return raw_pixels("model", f"the model normalises its input itself ({', '.join(found)})")
    if unit and not raw:
        return replace(DEFAULT, source="model", note=f"the model's own {', '.join(found)} expects pixels / 255")
    return None


def _keras3_input_index(served, index: int) -> int:
    """The Keras 3 model's own position of the served signature's input ``index``: the
    signature lists its inputs by name (alphabetically), the model in the order it was
    built; -1 (no chain) where the names do not say."""
    names = [getattr(t, "name", None) for t in served.keras_model.inputs]
    if len(names) == 1:
        return 0
    name = served.inputs[index][0]
    return names.index(name) if names.count(name) == 1 else -1


def _keras3_chain(model, index: int = 0):
    """The layers a Keras 3 model's single input flows through first, entering nested
    models and passing Identity layers (``leading_layers`` reads tf_keras' graph); None
    where the chain cannot be followed (it branches or merges), which ends the caller's walk."""
    if type(model).__name__ in ("Sequential", "Pipeline"):  # a Pipeline is a layer of layers in a row
        steps = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    else:
        steps = _keras3_functional_steps(model, index)
    for layer in steps:
        if layer is None or type(layer).__name__ not in ("Identity", "Sequential", "Functional", "Pipeline"):
            yield layer
        elif type(layer).__name__ != "Identity":
            yield from _keras3_chain(layer)


def _keras3_functional_steps(model, index: int = 0) -> list:
    """The ops input ``index`` flows through one after another; a None ends a chain that branches."""
    by_depth = getattr(model, "_nodes_by_depth", None)  # this model's own call nodes (a shared layer has others)
    if not 0 <= index < len(model.inputs) or by_depth is None:
        return [None]
    readers = {}
    for node in (n for depth in by_depth.values() for n in depth):
        for t in node.input_tensors:
            readers.setdefault(id(t), []).append(node)
    current, steps = model.inputs[index], []
    while id(current) in readers:
        after = readers[id(current)]
        if len(after) == 1 and len(after[0].input_tensors) == 1 and len(after[0].output_tensors) == 1:
            steps.append(after[0].operation)
            current = after[0].output_tensors[0]
            continue
        split = _keras3_channel_split(after, readers)
        if split is None:
            return steps + [None]  # the input branches, or an op reads something else too
        steps.append(split[0])
        current = split[1]
    return steps


@dataclass(frozen=True)
class ChannelOrder:
    """A step that reorders the channels: output channel k is input channel order[k]."""
    order: tuple


def _keras3_channel_split(nodes, readers):
    """(ChannelOrder, output) when ``nodes`` are ``x[..., i]`` for each channel i and
    one Stack on the last axis joins them (caffe-mode ``preprocess_input``), else None."""
    picks = [_keras3_channel_index(node) for node in nodes]
    if None in picks or sorted(picks) != list(range(len(picks))):
        return None
    stacks = {id(r): r for node in nodes for r in readers.get(id(node.output_tensors[0]), [])}
    if len(stacks) != 1:
        return None
    stack = next(iter(stacks.values()))
    parts = [id(t) for t in stack.input_tensors]
    outputs = [id(node.output_tensors[0]) for node in nodes]
    if (type(stack.operation).__name__ != "Stack" or getattr(stack.operation, "axis", None) != -1
            or sorted(parts) != sorted(outputs) or len(stack.output_tensors) != 1):
        return None
    order = tuple(picks[outputs.index(part)] for part in parts)
    return ChannelOrder(order), stack.output_tensors[0]


def _keras3_channel_index(node) -> int | None:
    """i for a node ``x[..., i]``, else None."""
    key = _getitem_key(node)
    if key is None or len(key) != 2 or key[0] is not Ellipsis or isinstance(key[1], bool):
        return None
    return key[1] if isinstance(key[1], int) else None


def _getitem_key(node):
    if type(node.operation).__name__ != "GetItem" or len(node.output_tensors) != 1:
        return None
    args = getattr(node, "arguments", None)
    if args is None or args.kwargs or len(args.args) != 2 or not isinstance(args.args[1], (list, tuple)):
        return None
    return list(args.args[1])


def _channel_order(layer) -> tuple | None:
    """The channel order of a step that only reorders channels (``x[..., ::-1]``, or
    caffe's split-and-stack), else None."""
    if isinstance(layer, ChannelOrder):
        return layer.order
    if type(layer).__name__ == "GetItem":  # Keras 3 op; a shared one must slice alike everywhere
        keys = [_getitem_key(node) for node in layer._inbound_nodes]
        channels = layer._inbound_nodes[0].input_tensors[0].shape[-1] if keys else None
    elif type(layer).__name__ == "SlicingOpLambda" and layer.symbol == "__operators__.getitem":
        keys = [_tf_keras_slice(node) for node in layer._inbound_nodes]
        channels = layer.input_shape[-1] if keys else None
    else:
        return None
    if not keys or not isinstance(channels, int) or any(k != [Ellipsis, slice(None, None, -1)] for k in keys):
        return None
    return tuple(range(channels))[::-1]


def _tf_keras_slice(node):
    """A tf_keras getitem's key, as a list with slices (a loaded file keeps slices as dicts)."""
    spec = node.call_kwargs.get("slice_spec", node.call_args[1] if len(node.call_args) > 1 else None)
    if not isinstance(spec, (list, tuple)):
        return None
    return [slice(k["start"], k["stop"], k["step"]) if isinstance(k, dict) and set(k) == {"start", "stop", "step"}
            else k for k in spec]


def _normalises(scale: np.ndarray, bias: np.ndarray, top: float) -> bool:
    """Whether ``x * scale + bias`` maps inputs in [0, top] onto a normalised range."""
    ends = np.concatenate([bias, top * scale + bias])
    lo, hi = float(ends.min()), float(ends.max())
    span, centre = hi - lo, (hi + lo) / 2
    return span >= MIN_SPAN and abs(centre) <= span and max(abs(lo), abs(hi)) <= MAX_ABS


def _input_dtype(model, index: int = 0) -> str | None:
    """The dtype name of the model's input ``index``: a Keras model's or a SavedModel signature's."""
    try:
        if hasattr(model, "layers"):
            return model.inputs[index].dtype.name
        return model.inputs[index][2]  # base.serving.ServingModel: (name, shape, dtype name)
    except (AttributeError, IndexError, TypeError):
        return None


# ``x op c`` as (scale, bias) from the constant c (one value, or one per channel)
def _divide(c):
    return 1 / c, 0 * c


def _multiply(c):
    return c, 0 * c


def _add(c):
    return 1 + 0 * c, c


def _subtract(c):
    return 1 + 0 * c, -c


# tf_keras' tf.math/tf.nn ops; nn.bias_add is caffe-mode preprocess_input's mean
_TF_OPS = {"math.truediv": _divide, "math.divide": _divide, "math.multiply": _multiply, "math.add": _add,
           "__operators__.add": _add, "math.subtract": _subtract, "nn.bias_add": _add}
_OP_LAYERS = ("TFOpLambda", "SlicingOpLambda")


def _affine(layer):
    """(scale, bias) arrays when ``layer`` is an elementwise/per-channel affine map, else None."""
    kind = type(layer).__name__
    if kind in _KERAS3_OPS:
        return _keras3_op_affine(layer)
    if kind == "Rescaling":
        return np.asarray(layer.scale, np.float64).reshape(-1), np.asarray(layer.offset, np.float64).reshape(-1)
    if kind == "Normalization" and not layer.invert and layer.axis in ((), (-1,), (_rank(layer) - 1,)):
        mean = np.asarray(layer.mean, np.float64).reshape(-1)
        std = np.maximum(np.sqrt(np.asarray(layer.variance, np.float64).reshape(-1)), 1e-7)  # Keras' epsilon
        return 1 / std, -mean / std
    if kind == "TFOpLambda" and layer.symbol in _TF_OPS and len(layer._inbound_nodes) == 1:
        return _tf_op_affine(layer.symbol, layer._inbound_nodes[0])
    return None


def _tf_op_affine(symbol: str, node):
    """``x op c`` with x the tensor (c - x is no such map) and c a constant."""
    second = "bias" if symbol == "nn.bias_add" else "y"
    const = node.call_args[1] if len(node.call_args) > 1 else node.call_kwargs.get(second)
    first = node.call_args[0] if node.call_args else None
    if symbol == "nn.bias_add" and node.call_kwargs.get("data_format", "NHWC") not in ("NHWC", None):
        return None
    if not hasattr(first, "shape"):
        return None
    return _constant_affine(_TF_OPS[symbol], const)


def _constant_affine(op, const):
    """``op``'s (scale, bias) for a usable constant (never a division by zero), else None."""
    c = _constant(const)
    if c is None or (op is _divide and (c == 0).any()):
        return None
    return op(c)


def _constant(value) -> np.ndarray | None:
    """A number, or one per channel, as a float64 vector; None for tensors of the graph and the rest."""
    if isinstance(value, bool) or value is None or hasattr(value, "_keras_history") or hasattr(value, "node"):
        return None
    try:
        c = np.asarray(value, np.float64).reshape(-1)
    except (TypeError, ValueError):
        return None
    return c if c.size in (1, 3) and np.isfinite(c).all() else None


# Keras 3 ops on a tensor and a constant (``x / 127.5 - 1``): (scale, bias) from the constant c
_KERAS3_OPS = {"TrueDivide": _divide, "Divide": _divide, "Multiply": _multiply, "Add": _add, "Subtract": _subtract}


def _keras3_op_affine(op):
    """A Keras 3 op node ``x op c`` (``c op x`` for the commutative two) with c a scalar or one
    value per channel; None for anything else, such as the two-tensor merge layers of the same names."""
    steps = [_keras3_node_affine(type(op).__name__, node) for node in getattr(op, "_inbound_nodes", [])]
    if not steps or any(step is None for step in steps):
        return None
    # the op of a model stripped of its augmentation layers is shared with the original: two calls
    same = all(np.array_equal(a, b) for step in steps[1:] for a, b in zip(steps[0], step))
    return steps[0] if same else None


def _keras3_node_affine(kind: str, node):
    from edgepipe.base.backend import keras3
    arguments = getattr(node, "arguments", None)
    if arguments is None or arguments.kwargs or len(arguments.args) != 2:
        return None
    x, c = arguments.args
    if not isinstance(x, keras3.KerasTensor) and kind in ("Multiply", "Add"):
        x, c = c, x
    if not isinstance(x, keras3.KerasTensor) or isinstance(c, keras3.KerasTensor):
        return None
    return _constant_affine(_KERAS3_OPS[kind], c)


def _rank(layer) -> int:
    """The rank of a layer's input (tf_keras: ``input_shape``; Keras 3: its input tensor's)."""
    shape = layer.input_shape if hasattr(layer, "input_shape") else layer.input.shape
    return len(shape)


def from_card(entry: dict) -> InputSpec:
    """The spec a model card's input entry states (see ``pipeline.cards.image_input``)."""
    norm = entry.get("normalization")
    if not norm:
        return DEFAULT
    if "mean" in norm and "std" in norm:
        mean, std = np.atleast_1d(norm["mean"]), np.atleast_1d(norm["std"])
    else:  # a card written before mean/std: x = pixel * scale + bias
        scale, bias = np.atleast_1d(np.asarray(norm["scale"], np.float64)), np.atleast_1d(norm["bias"])
        mean, std = -bias / scale, 1 / scale
    order = entry.get("color_order", "RGB")
    return InputSpec(tuple(mean), tuple(std), "RGB" if order == GRAYSCALE else order, norm.get("source", "default"))


def spec_for(model, user: InputSpec | None = None) -> InputSpec:
    """The user's spec, else the model's own, else the default."""
    return user or from_model(model) or DEFAULT


def bundle_card(path) -> dict | None:
    """The model card an export carries (TFLite associated file, ONNX
    ``metadata_props``, Core ML ``userDefined``), else the ``<file>.model_card.json``
    edgepipe writes beside it; None when there is neither."""
    from edgepipe.convert.formats import format_of
    path, text = Path(path), None
    fmt = format_of(path)
    if fmt == "tflite":
        from edgepipe.convert.tflite_metadata import associated_files
        text = associated_files(path).get("model_card.json")
    elif fmt == "onnx":
        import onnx
        props = onnx.load(str(path), load_external_data=False).metadata_props
        text = next((p.value for p in props if p.key == "model_card"), None)
    elif fmt == "coreml":
        from edgepipe.convert.coreml import _coremltools, opened_copy
        with opened_copy(path) as copy:
            text = _coremltools().utils.load_spec(str(copy)).description.metadata.userDefined.get("model_card")
    side = path.with_name(path.name + ".model_card.json")
    if not text and side.is_file():
        text = side.read_text(encoding="utf-8")
    try:
        return json.loads(text) if text else None
    except (ValueError, RecursionError):
        return None


def bundle_spec(path) -> InputSpec | None:
    """The input spec an export's bundle states for its (first) image input."""
    specs = bundle_specs(path)
    return next(iter(specs.values())) if specs else None


def bundle_specs(path) -> dict:
    """{input name: spec} that an export's bundle states for each image input (verify
    feeds the export what it says)."""
    card = bundle_card(path)
    images = [i for i in (card or {}).get("inputs") or [] if isinstance(i, dict) and i.get("normalization")]
    return {str(i.get("name", k)): from_card(i) for k, i in enumerate(images)}

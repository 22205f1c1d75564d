"""The inputs and outputs an export is written for, the same way for a Keras
model and a SavedModel's serving signature (``edgepipe.base.serving``): names,
shapes with the free dimensions fixed (``--input-shape``), a batch of 1 or a
free one (``--dynamic-batch``), and which inputs are images (NHWC: RGB, or
grayscale where the model or the user says how pixels map to it; the input spec,
the Core ML ImageType and generated data apply to those)."""
import re
from dataclasses import dataclass, replace

from edgepipe.base.backend import tf
from edgepipe.base.errors import EdgePipeError
from edgepipe.base.serving import ServingModel


@dataclass(frozen=True)
class Port:
    """One named tensor of the model: shape with the batch first, None where free."""
    name: str
    shape: tuple
    dtype: str = "float32"
    is_image: bool = False  # see ``image_names``
    pixel_spec: object = None  # an image input's convert.inputspec.InputSpec, where one was chosen (cli.inputs.input_spec)

    @property
    def dynamic_batch(self) -> bool:
        return bool(self.shape) and self.shape[0] is None

    def spec(self):
        return tf.TensorSpec(self.shape, tf.as_dtype(self.dtype), name=self.name)


def image_names(shapes: dict, grayscale: bool = False) -> set:
    """The inputs ({name: shape, batch first}) that take images, NHWC: those with 3
    channels (RGB). 1-channel inputs are grayscale images only with ``grayscale`` (the
    model's own Rescaling/Normalization or the user's flags say how pixels map to it)
    and where no input is RGB: otherwise such an input may be a mask, a depth map or a
    spectrogram, and is fed as it is."""
    def nhwc(shape, channels):
        return len(shape) == 4 and shape[-1] == channels
    rgb = {n for n, s in shapes.items() if nhwc(s, 3)}
    return rgb or ({n for n, s in shapes.items() if nhwc(s, 1)} if grayscale else set())


def with_images(ports: list[Port], grayscale: bool = False) -> list[Port]:
    """``ports`` with ``is_image`` set as ``image_names`` says."""
    images = image_names({p.name: p.shape for p in ports}, grayscale)
    return [replace(p, is_image=p.name in images) for p in ports]


def is_serving(model) -> bool:
    return isinstance(model, ServingModel)


def model_inputs(model) -> list[Port]:
    """The model's own inputs, free dimensions as None; a 1-channel one is a grayscale
    image when the model's own layers say how pixels map to it."""
    from edgepipe.convert.inputspec import from_model
    if is_serving(model):
        ports = [Port(n, s, d) for n, s, d in model.inputs]
    else:
        ports = [Port(n, tuple(t.shape.as_list()), t.dtype.name) for n, t in zip(model.input_names, model.inputs)]
    return with_images(ports, grayscale=any(from_model(model, i) is not None for i in range(len(ports))))


def export_inputs(model, given: dict | None = None, dynamic_batch: bool = False,
                  fix: str = "--input-shape") -> list[Port]:
    """The inputs as the export takes them: ``given`` ({input name or None: shape
    with batch}, from ``--input-shape``) fixes free dimensions, the batch is 1 or
    free. A free dimension left over is the user's to fix, in one line (``fix``:
    the command-line words that do it)."""
    ports, given = model_inputs(model), dict(given or {})
    if None in given and len(ports) > 1:
        raise EdgePipeError(f"the model has {len(ports)} inputs ({', '.join(p.name for p in ports)}): name the one "
                            f"--input-shape fixes, e.g. --input-shape {ports[0].name}:{_example(ports[0])}")
    unknown = set(given) - {None} - {p.name for p in ports}
    if unknown:
        raise EdgePipeError(f"--input-shape names input '{sorted(unknown)[0]}'; the model's inputs are "
                            f"{', '.join(p.name for p in ports)}")
    return [_fixed(p, given.get(p.name, given.get(None)), dynamic_batch, fix) for p in ports]


def _fixed(port: Port, shape, dynamic_batch: bool, fix: str) -> Port:
    if not port.shape:
        raise EdgePipeError(f"input '{port.name}' is a scalar; exports take tensors with a batch dimension")
    if shape is not None:
        if len(shape) != len(port.shape) or any(m is not None and m != g for m, g in zip(port.shape[1:], shape[1:])):
            raise EdgePipeError(f"--input-shape {_text(shape)} does not fit input '{port.name}' of shape "
                                f"{_text(port.shape)}")
        if shape[0] != 1:
            raise EdgePipeError(f"--input-shape {_text(shape)}: exports take a batch of 1 (--dynamic-batch "
                                f"keeps it free for TFLite and ONNX)")
        port = replace(port, shape=tuple(shape))
    if None in port.shape[1:]:
        raise EdgePipeError(f"input '{port.name}' has free dimensions ({_text(port.shape)}); fix them with "
                            f"{fix}, e.g. --input-shape {_example(port)}")
    return replace(port, shape=(None if dynamic_batch else 1, *port.shape[1:]))


def _text(shape) -> str:
    return "x".join("?" if d is None else str(d) for d in shape)


def _example(port: Port) -> str:
    """The port's shape at batch 1 with its free dimensions at 224 (a common image size)."""
    return "x".join("1" if i == 0 else str(d or 224) for i, d in enumerate(port.shape))


def parse_shape(text: str) -> tuple[str | None, tuple]:
    """``[NAME:]1x64x64x3`` -> (NAME or None, (1, 64, 64, 3)); ValueError when malformed."""
    name, colon, dims = text.rpartition(":")
    if not re.fullmatch(r"[1-9]\d{0,5}(x[1-9]\d{0,5})*", dims.strip().lower()) or (colon and not name.strip()):
        raise ValueError(text)  # ':1x64x64x3' names no input
    return name or None, tuple(int(d) for d in dims.strip().lower().split("x"))


# -- calling the model ------------------------------------------------------------------------------------------

def call(model, feeds: dict, names: list[str] | None = None):
    """The model on ``feeds`` ({input name: tensor}) at inference: a Keras model
    with one output returns its tensor (as the writers always traced it), else
    {output name: tensor}."""
    if is_serving(model):
        return model(feeds)
    args = [feeds[n] for n in model.input_names]
    out = model(args[0] if len(args) == 1 else args, training=False)
    if len(model.outputs) == 1:
        return tf.nest.flatten(out)[0]
    # a dict of outputs flattens by sorted key, the order of model.outputs and its names
    return dict(zip(output_names(model), tf.nest.flatten(out)))


def output_names(model) -> list[str]:
    """A Keras model's output names as its exports carry them: a QAT model's output
    layers are tfmot wrappers named ``quant_<layer>``, and apps look the outputs
    up by the original names (``edges``, ``page``)."""
    by_name = {layer.name: layer for layer in model.layers}

    def original(name):
        layer = by_name.get(name)
        return layer.layer.name if type(layer).__name__.startswith("QuantizeWrapper") else name
    return [original(name) for name in model.output_names]


def function(model, ports: list[Port], scale: dict | None = None):
    """The model as a tf.function of ``ports``' shapes, positional arguments in
    input order, named like the inputs (TFLite signatures and tf2onnx take the names
    from here). ``scale``: {input name: per-channel factors} applied first (Core ML's
    ImageType has one scale; the rest of a per-channel std goes here)."""
    names, scale = [p.name for p in ports], scale or {}

    def run(*args):
        feeds = {n: a * tf.constant(scale[n], a.dtype) if n in scale else a for n, a in zip(names, args)}
        return call(model, feeds)
    return tf.function(run, input_signature=[p.spec() for p in ports])


def concrete_function(model, ports: list[Port], scale: dict | None = None):
    return function(model, ports, scale).get_concrete_function()


def output_ports(model, ports: list[Port]) -> list[Port]:
    """The outputs as the export gives them, shapes traced on ``ports`` (free
    dimensions of the original become the export's fixed ones)."""
    batch = ports[0].shape[0] if ports else 1
    if is_serving(model):
        own = [Port(n, s, d) for n, s, d in model.outputs]
    else:
        own = [Port(n, tuple(t.shape.as_list()), t.dtype.name) for n, t in zip(output_names(model), model.outputs)]
    if all(None not in p.shape[1:] for p in own):  # only a free first axis is the batch: (5,) and () stay
        return [replace(p, shape=(batch, *p.shape[1:])) if p.shape and p.shape[0] is None else p for p in own]
    traced = concrete_function(model, ports).structured_outputs
    traced = traced if isinstance(traced, dict) else {own[0].name: traced}
    return [Port(p.name, tuple(traced[p.name].shape.as_list()), p.dtype) for p in own]


def output_tensor_names(function) -> dict[str, str]:
    """Graph tensor name (``Identity_1``) -> output name, for converters that name
    outputs after the graph (coremltools)."""
    outs = function.structured_outputs
    if not isinstance(outs, dict):
        return {}
    return {t.name.split(":")[0]: k for k, t in outs.items()}

"""Core ML writer: an mlprogram ``.mlpackage`` with an ImageType for each image
input (NHWC, 3 channels), so iOS feeds a CVPixelBuffer directly (pixels 0..255
mapped by the bundle's input spec, ``convert.inputspec``: by default x 1/255 to
the [0, 1] the zoo trains on), a plain tensor for any other input, and outputs
renamed to the model's output names. A SavedModel's serving signature (not
Keras) is converted from its concrete function.

An ImageType has one scale and a bias per channel. A spec whose std differs per
channel (ImageNet's mean/std) gets scale 1/mean(std) there and the exact rest,
std_mean / std[c], as a per-channel multiply in front of the graph."""
import logging
import re
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

from edgepipe.base import atomic
from edgepipe.base.backend import keras
from edgepipe.base.errors import EdgePipeError
from edgepipe.base.quiet import converter_chatter_silenced
from edgepipe.convert import graphio
from edgepipe.convert.inputspec import DEFAULT, InputSpec, from_card

def _coremltools():
    """coremltools, imported after TensorFlow (which it imports) and without the lines its
    import prints on Linux (no native Core ML, untested scikit-learn and TensorFlow versions)."""
    import warnings
    from edgepipe.base.backend import tf
    from edgepipe.base.quiet import native_stderr_silenced
    logging.getLogger("coremltools").setLevel(logging.ERROR)
    tf.__version__  # noqa: B018  TensorFlow's own start-up lines are silenced by its loader
    with native_stderr_silenced(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import coremltools as ct
    return ct


def private_copy(path) -> tuple[Path, tempfile.TemporaryDirectory | None]:
    """coremltools rewrites an ``.mlpackage``'s Manifest.json whenever it opens one (``load_spec``
    and ``MLModel`` alike): what only reads a package opens a private one, whose Manifest.json
    is a copy and whose model and weights are links to the user's (nothing large is copied).
    Returns the path to open and the folder holding it (keep it while in use)."""
    path = Path(path)
    if not path.is_dir():
        return path, None
    holder = None
    try:
        holder = tempfile.TemporaryDirectory(prefix="edgepipe-mlpackage-")
        copy = Path(holder.name) / path.name
        copy.mkdir()
        for entry in path.iterdir():
            if entry.name == "Manifest.json":
                shutil.copyfile(entry, copy / entry.name)
            else:
                (copy / entry.name).symlink_to(entry.resolve())
    except OSError as e:
        if holder:
            holder.cleanup()
        raise EdgePipeError(f"{path}: cannot read the package ({e.strerror or e})") from None
    return copy, holder


@contextmanager
def opened_copy(path):
    """``private_copy`` for the length of a ``with`` block."""
    copy, holder = private_copy(path)
    try:
        yield copy
    finally:
        if holder:
            holder.cleanup()


def feature_name(name: str) -> str:
    """``name`` as an ML Program may call a feature ([A-Za-z_][A-Za-z0-9_]*): an output a
    TensorFlow op ends in is named like ``tf.math.argmax``, which coremltools refuses."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return name if re.match(r"[A-Za-z_]", name) else f"_{name}"


def with_feature_names(meta: dict) -> dict:
    """The card of a Core ML file: its outputs under the names the file gives them."""
    return meta | {"outputs": [o | {"name": feature_name(o["name"])} if isinstance(o.get("name"), str) else o
                               for o in meta.get("outputs", [])]}


def image_preprocessing(spec: InputSpec, channels: int = 3):
    """(ImageType scale, per-channel bias, per-channel multiply after it or None) for ``spec``."""
    mean, std = spec.per_channel(channels)
    if spec.uniform:
        return float(1 / std[0]), [float(b) for b in -mean / std], None
    ref = float(std.mean())
    return 1 / ref, [float(b) for b in -mean / ref], ref / std


def _with_channel_scale(model, factors: dict):
    """``model`` behind a per-channel multiply on the image inputs ``factors`` names
    ({input name: factors}: the part of the std an ImageType cannot take)."""
    inputs = [keras.Input(shape=t.shape[1:], name=n) for n, t in zip(model.input_names, model.inputs)]
    fed = [keras.layers.Rescaling([float(f) for f in factors[n]], name=f"per_channel_std_{i}")(x) if n in factors
           else x for i, (n, x) in enumerate(zip(model.input_names, inputs))]
    return keras.Model(inputs, model(fed[0] if len(fed) == 1 else fed))


def _image_type(ct, port, spec: InputSpec, scale: float, biases: list):
    if port.shape[-1] == 1:  # a grayscale ImageType takes one bias
        return ct.ImageType(name=port.name, shape=port.shape, scale=scale, bias=biases[0],
                            color_layout=ct.colorlayout.GRAYSCALE)
    layout = ct.colorlayout.RGB if spec.color_order == "RGB" else ct.colorlayout.BGR
    return ct.ImageType(name=port.name, shape=port.shape, scale=scale, bias=biases, color_layout=layout)


def to_mlmodel(model, precision: str = "fp16", scale: float = 1 / 255.0, bias: float = 0.0,
               labels: list[str] | None = None, spec: InputSpec | None = None, ports: list | None = None,
               target: str = "iOS15", specs: dict | None = None):
    """``labels`` make it a Core ML classifier: Vision returns VNClassificationObservation
    and Xcode shows ``classLabel`` plus a label -> score dictionary. ``spec`` (else
    ``scale``/``bias``) says how the ImageType maps pixels to the model's image inputs;
    other inputs are plain tensors; ``specs`` ({input name: spec}) gives an image input
    its own. ``ports``: the export's inputs (default: the model's, batch 1). A
    SavedModel's serving signature converts from its concrete function."""
    ct = _coremltools()
    spec = spec or InputSpec((-bias / scale,), (1 / scale,))
    ports = ports or graphio.export_inputs(model)
    if any(p.dynamic_batch for p in ports):
        raise EdgePipeError("Core ML exports take a batch of 1; --dynamic-batch is for tflite and onnx")
    specs = {p.name: (specs or {}).get(p.name, spec) for p in ports if p.is_image}
    maps = {p.name: image_preprocessing(specs[p.name], p.shape[-1]) for p in ports if p.name in specs}
    factors = {name: m[2] for name, m in maps.items() if m[2] is not None}
    names, graph, renames = _source(model, ports, factors)
    precision_flag = ct.precision.FLOAT16 if precision == "fp16" else ct.precision.FLOAT32
    inputs = [_image_type(ct, p, specs[p.name], *maps[p.name][:2]) if p.name in specs
              else ct.TensorType(name=p.name, shape=p.shape) for p in ports]
    classifier = ct.ClassifierConfig(list(labels)) if labels else None
    # source given: "auto" freezes the whole graph once more only to learn it is TensorFlow 2
    with converter_chatter_silenced():  # coremltools' progress bars
        mlmodel = ct.convert(graph, source="tensorflow", convert_to="mlprogram", inputs=inputs,
                             classifier_config=classifier, compute_precision=precision_flag,
                             minimum_deployment_target=getattr(ct.target, target))
    proto = mlmodel.get_spec()
    described = proto.description
    outputs = [o.name for o in described.output if o.name != described.predictedFeatureName]
    pairs = [(o, renames.get(o)) for o in outputs] if renames else list(zip(outputs, names))
    for old, new in pairs:
        if new and old != feature_name(new):
            ct.utils.rename_feature(proto, old, feature_name(new))
    if labels:
        proto.description.predictedProbabilitiesName = feature_name(names[0])
    return ct.models.MLModel(proto, weights_dir=mlmodel.weights_dir, skip_model_load=True)


def _source(model, ports, factors: dict):
    """(output names, what coremltools converts, {converter's output name: ours} or {} for
    positional): a Keras model as is, a serving signature as its concrete function;
    ``factors``: {image input name: per-channel multiply} to put first."""
    if graphio.is_serving(model):
        function = graphio.concrete_function(model, ports, factors or None)
        return model.output_names, [function], graphio.output_tensor_names(function)
    graph = _with_channel_scale(model, factors) if factors else model
    return graphio.output_names(model), graph, {}


def _describe(mlmodel, meta: dict):
    """Author, license, version, descriptions and the model card, where Xcode shows them."""
    import json
    mlmodel.author = meta.get("author", "")
    mlmodel.license = meta.get("license", "")
    mlmodel.version = meta.get("version", "")
    mlmodel.short_description = meta.get("description", "")
    for i in meta.get("inputs", []):
        mlmodel.input_description[i["name"]] = i.get("description", "")
    outputs = [o.name for o in mlmodel.get_spec().description.output]
    for o in meta.get("outputs", []):
        if o["name"] in outputs:
            mlmodel.output_description[o["name"]] = o.get("meaning", "")
    if "classLabel" in outputs:
        mlmodel.output_description["classLabel"] = "the most likely label"
    mlmodel.user_defined_metadata["model_card"] = json.dumps(meta)


def write(model, path: Path, precision: str = "fp16", meta: dict | None = None, ports: list | None = None) -> Path:
    """``precision``: fp16 or fp32 compute, or a weight compression of the fp16 program
    (``convert.coreml_compress``; those need iOS 16's constexpr ops)."""
    images = [i for i in (meta or {}).get("inputs", []) if i.get("normalization")]
    spec = from_card(images[0]) if images else DEFAULT
    specs = {i["name"]: from_card(i) for i in images if isinstance(i.get("name"), str)}
    compressed = precision not in ("fp16", "fp32")
    mlmodel = to_mlmodel(model, "fp16" if compressed else precision, labels=(meta or {}).get("labels"), spec=spec,
                         ports=ports, target="iOS16" if compressed else "iOS15", specs=specs)
    if compressed:
        from edgepipe.convert.coreml_compress import compress
        with converter_chatter_silenced():  # coremltools' own progress bars, one per pass
            mlmodel = compress(mlmodel, precision)
    if meta:
        _describe(mlmodel, meta)
    with atomic.staged_path(path, folder_artifact=True) as tmp:
        mlmodel.save(str(tmp))
    return path


def can_predict() -> tuple[bool, str]:
    """Core ML prediction needs macOS; say so instead of inventing numbers."""
    if sys.platform != "darwin":
        return False, "Core ML prediction needs macOS (coremltools cannot run MLModel.predict on Linux)"
    return True, ""

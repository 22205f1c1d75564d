"""Core ML writer: an mlprogram ``.mlpackage`` with an ImageType input, so iOS
feeds a CVPixelBuffer directly (pixels 0..255 mapped by the bundle's input spec,
``convert.inputspec``: by default x 1/255 to the [0, 1] the zoo trains on), and
outputs renamed to the Keras output names.

An ImageType has one scale and a bias per channel. A spec whose std differs per
channel (ImageNet's mean/std) gets scale 1/mean(std) there and the exact rest,
std_mean / std[c], as a per-channel multiply in front of the graph."""
import logging
import sys
from pathlib import Path

from edgepipe.base import atomic
from edgepipe.base.backend import keras
from edgepipe.convert.inputspec import DEFAULT, InputSpec, from_card

PRECISIONS = ("fp16", "fp32")


def _coremltools():
    logging.getLogger("coremltools").setLevel(logging.ERROR)
    import coremltools as ct
    return ct


def image_preprocessing(spec: InputSpec, channels: int = 3):
    """(ImageType scale, per-channel bias, per-channel multiply after it or None) for ``spec``."""
    mean, std = spec.per_channel(channels)
    if spec.uniform:
        return float(1 / std[0]), [float(b) for b in -mean / std], None
    ref = float(std.mean())
    return 1 / ref, [float(b) for b in -mean / ref], ref / std


def _with_channel_scale(model, factors):
    """``model`` behind a per-channel multiply (the part of the std an ImageType cannot take)."""
    image = keras.Input(shape=model.input_shape[1:], name=model.input_names[0])
    scaled = keras.layers.Rescaling([float(f) for f in factors], name="per_channel_std")(image)
    return keras.Model(image, model(scaled))


def to_mlmodel(model, precision: str = "fp16", scale: float = 1 / 255.0, bias: float = 0.0,
               labels: list[str] | None = None, spec: InputSpec | None = None):
    """``labels`` make it a Core ML classifier: Vision returns VNClassificationObservation
    and Xcode shows ``classLabel`` plus a label -> score dictionary. ``spec`` (else
    ``scale``/``bias``) says how the ImageType maps pixels to the model's input."""
    ct = _coremltools()
    spec = spec or InputSpec((-bias / scale,), (1 / scale,))
    scale, biases, factors = image_preprocessing(spec, model.input_shape[-1])
    names = model.output_names
    graph = model if factors is None else _with_channel_scale(model, factors)
    precision_flag = ct.precision.FLOAT16 if precision == "fp16" else ct.precision.FLOAT32
    layout = ct.colorlayout.RGB if spec.color_order == "RGB" else ct.colorlayout.BGR
    image = ct.ImageType(name=model.input_names[0], shape=(1, *model.input_shape[1:]), scale=scale,
                         bias=biases, color_layout=layout)
    classifier = ct.ClassifierConfig(list(labels)) if labels else None
    mlmodel = ct.convert(graph, convert_to="mlprogram", inputs=[image], classifier_config=classifier,
                         compute_precision=precision_flag, minimum_deployment_target=ct.target.iOS15)
    proto = mlmodel.get_spec()
    described = proto.description
    outputs = [o.name for o in described.output if o.name != described.predictedFeatureName]
    for old, new in zip(outputs, names):
        if old != new:
            ct.utils.rename_feature(proto, old, new)
    if labels:
        proto.description.predictedProbabilitiesName = names[0]
    return ct.models.MLModel(proto, weights_dir=mlmodel.weights_dir, skip_model_load=True)


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


def write(model, path: Path, precision: str = "fp16", meta: dict | None = None) -> Path:
    spec = from_card(meta["inputs"][0]) if meta and meta.get("inputs") else DEFAULT
    mlmodel = to_mlmodel(model, precision, labels=(meta or {}).get("labels"), spec=spec)
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

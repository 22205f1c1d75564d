"""Core ML writer: an mlprogram ``.mlpackage`` with an ImageType input, so iOS
feeds a CVPixelBuffer directly (pixels 0..255 scaled by 1/255 to the [0, 1]
the model was trained on), and outputs renamed to the Keras output names."""
import logging
import sys
from pathlib import Path

from pipeline import atomic

PRECISIONS = ("fp16", "fp32")


def _coremltools():
    logging.getLogger("coremltools").setLevel(logging.ERROR)
    import coremltools as ct
    return ct


def to_mlmodel(model, precision: str = "fp16", scale: float = 1 / 255.0, bias: float = 0.0,
               labels: list[str] | None = None):
    """``labels`` make it a Core ML classifier: Vision returns VNClassificationObservation
    and Xcode shows ``classLabel`` plus a label -> score dictionary."""
    ct = _coremltools()
    shape = (1, *model.input_shape[1:])
    precision_flag = ct.precision.FLOAT16 if precision == "fp16" else ct.precision.FLOAT32
    image = ct.ImageType(name=model.input_names[0], shape=shape, scale=scale, bias=[bias] * 3,
                         color_layout=ct.colorlayout.RGB)
    classifier = ct.ClassifierConfig(list(labels)) if labels else None
    mlmodel = ct.convert(model, convert_to="mlprogram", inputs=[image], classifier_config=classifier,
                         compute_precision=precision_flag, minimum_deployment_target=ct.target.iOS15)
    spec = mlmodel.get_spec()
    outputs = [o.name for o in spec.description.output if o.name != spec.description.predictedFeatureName]
    for old, new in zip(outputs, model.output_names):
        if old != new:
            ct.utils.rename_feature(spec, old, new)
    if labels:
        spec.description.predictedProbabilitiesName = model.output_names[0]
    return ct.models.MLModel(spec, weights_dir=mlmodel.weights_dir, skip_model_load=True)


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
    norm = (meta or {}).get("inputs", [{}])[0].get("normalization", {"scale": 1 / 255.0, "bias": 0.0})
    mlmodel = to_mlmodel(model, precision, norm["scale"], norm["bias"], (meta or {}).get("labels"))
    if meta:
        _describe(mlmodel, meta)
    with atomic.staged_path(path) as tmp:
        mlmodel.save(str(tmp))
    return path


def can_predict() -> tuple[bool, str]:
    """Core ML prediction needs macOS; say so instead of inventing numbers."""
    if sys.platform != "darwin":
        return False, "Core ML prediction needs macOS (coremltools cannot run MLModel.predict on Linux)"
    return True, ""

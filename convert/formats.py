"""One table of export variants. It drives the recipe choices, the CLI, the docs
and the verify/bench loop (Ultralytics-style, one small writer per format)."""
from dataclasses import dataclass


@dataclass(frozen=True)
class Variant:
    name: str        # recipe / CLI name
    format: str      # keras | tflite | onnx | coreml
    precision: str   # float32 | int8 | fp16 ...
    suffix: str
    runs_on: str     # where its runner works


VARIANTS = {v.name: v for v in [
    Variant("tflite_float32", "tflite", "float32", ".tflite", "linux, macos, android"),
    Variant("tflite_int8", "tflite", "int8", ".int8.tflite", "linux, macos, android"),
    Variant("onnx_float32", "onnx", "float32", ".onnx", "linux, macos, windows"),
    Variant("coreml_fp16", "coreml", "fp16", ".mlpackage", "macos, ios (conversion on linux)"),
]}


def export(variant: Variant, model, path, representative=None, meta: dict | None = None):
    """Write ``model`` as ``variant`` to ``path`` atomically; return the path.
    ``meta`` (see ``pipeline.cards.bundle_meta``) is embedded where the format has room."""
    if variant.format == "tflite":
        from convert import tflite
        return tflite.write(model, path, variant.precision, representative, meta=meta)
    if variant.format == "onnx":
        from convert import onnx
        return onnx.write(model, path, meta)
    if variant.format == "coreml":
        from convert import coreml
        return coreml.write(model, path, variant.precision, meta)
    raise ValueError(variant.format)

"""One table of export variants. It drives the recipe choices, the CLI, the docs
and the verify/bench loop (Ultralytics-style, one small writer per format)."""
from dataclasses import dataclass


@dataclass(frozen=True)
class Variant:
    name: str        # recipe / CLI name
    format: str      # keras | tflite | onnx | coreml
    precision: str   # float32 | dynamic | float16 | int8 | int16x8 | fp16 | fp32
    suffix: str
    runs_on: str     # where its runner works
    integer_io: bool = True  # quantized TFLite: integer input/output (else float I/O around the int8 graph)

    @property
    def label(self) -> str:
        """How reports name it: the precision, plus the I/O where that differs."""
        return self.precision if self.integer_io else f"{self.precision}-float-io"


VARIANTS = {v.name: v for v in [
    Variant("tflite_float32", "tflite", "float32", ".tflite", "linux, macos, android"),
    Variant("tflite_int8", "tflite", "int8", ".int8.tflite", "linux, macos, android"),
    Variant("tflite_int8_float_io", "tflite", "int8", ".int8-float-io.tflite", "linux, macos, android", False),
    Variant("tflite_dynamic", "tflite", "dynamic", ".dynamic.tflite", "linux, macos, android"),
    Variant("tflite_float16", "tflite", "float16", ".float16.tflite", "linux, macos, android (GPU delegate)"),
    Variant("tflite_int16x8", "tflite", "int16x8", ".int16x8.tflite", "linux, macos, android"),
    Variant("onnx_float32", "onnx", "float32", ".onnx", "linux, macos, windows"),
    Variant("coreml_fp16", "coreml", "fp16", ".mlpackage", "macos, ios (conversion on linux)"),
    Variant("coreml_fp32", "coreml", "fp32", ".fp32.mlpackage", "macos, ios (conversion on linux)"),
]}
# what a recipe exports unless it names its variants
DEFAULT_VARIANTS = ("tflite_float32", "tflite_int8", "onnx_float32", "coreml_fp16")


def export(variant: Variant, model, path, representative=None, meta: dict | None = None):
    """Write ``model`` as ``variant`` to ``path`` atomically; return the path.
    ``meta`` (see ``pipeline.cards.bundle_meta``) is embedded where the format has room."""
    if variant.format == "tflite":
        from convert import tflite
        return tflite.write(model, path, variant.precision, representative, variant.integer_io, meta=meta)
    if variant.format == "onnx":
        from convert import onnx
        return onnx.write(model, path, meta)
    if variant.format == "coreml":
        from convert import coreml
        return coreml.write(model, path, variant.precision, meta)
    raise ValueError(variant.format)

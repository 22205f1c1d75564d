"""One table of export variants. It drives the recipe choices, the CLI, the docs
and the verify/bench loop (Ultralytics-style, one small writer per format)."""
from dataclasses import dataclass


CALIBRATED = ("int8", "int16x8")  # precisions whose activation ranges come from calibration data


@dataclass(frozen=True)
class Variant:
    name: str        # recipe / CLI name
    format: str      # keras | tflite | onnx | coreml
    precision: str   # float32 | dynamic | float16 | int8 | int16x8 | fp16 | fp32
    suffix: str
    runs_on: str     # where its runner works
    integer_io: bool = True  # quantized TFLite: integer input/output (else float I/O around the int8 graph)

    @property
    def needs_calibration(self) -> bool:
        """Integer activations: the converter needs representative data for their ranges."""
        return self.precision in CALIBRATED

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


def export_formats() -> list[str]:
    return sorted({v.format for v in VARIANTS.values()})


def precisions(fmt: str) -> list[str]:
    """The precisions the table offers for ``fmt``, in table order (the first is the default)."""
    return list(dict.fromkeys(v.precision for v in VARIANTS.values() if v.format == fmt))


def find(fmt: str, precision: str | None = None, integer_io: bool = True) -> Variant:
    """The table's variant for a format and precision (default: the format's first)."""
    precision = precision or precisions(fmt)[0]
    for v in VARIANTS.values():
        if (v.format, v.precision, v.integer_io) == (fmt, precision, integer_io):
            return v
    raise KeyError(f"{fmt} {precision}")


# what a recipe exports unless it names its variants
DEFAULT_VARIANTS = ("tflite_float32", "tflite_int8", "onnx_float32", "coreml_fp16")


def export(variant: Variant, model, path, representative=None, meta: dict | None = None, ports: list | None = None):
    """Write ``model`` as ``variant`` to ``path`` atomically; return the path.
    ``meta`` (see ``pipeline.cards.bundle_meta``) is embedded where the format has room;
    ``ports`` (``convert.graphio``): the export's inputs, default the model's at batch 1."""
    if variant.format == "tflite":
        from edgepipe.convert import tflite
        return tflite.write(model, path, variant.precision, representative, variant.integer_io, meta=meta,
                            ports=ports)
    if variant.format == "onnx":
        from edgepipe.convert import onnx
        return onnx.write(model, path, meta, ports)
    if variant.format == "coreml":
        from edgepipe.convert import coreml
        return coreml.write(model, path, variant.precision, meta, ports)
    raise ValueError(variant.format)

"""One table of export variants. It drives the recipe choices, the CLI, the docs,
the runners (which runtime opens a file) and the verify/bench loop
(Ultralytics-style, one small writer per format). Nothing else lists formats,
precisions, suffixes or which variants need calibration: read them from here."""
from dataclasses import dataclass
from pathlib import Path

CALIBRATED = ("int8", "int16x8")  # precisions whose activation ranges come from calibration data


@dataclass(frozen=True)
class Format:
    name: str
    suffix: str          # the plain export's suffix; every variant of the format ends with it
    runner: str          # the runtime that opens it (evaluate.runners)
    folder: bool = False  # the artifact is a folder (an .mlpackage)
    also: tuple = ()     # other suffixes the runner opens


FORMATS = {f.name: f for f in [
    Format("tflite", ".tflite", "litert"),
    Format("onnx", ".onnx", "onnxruntime"),
    Format("coreml", ".mlpackage", "coreml", folder=True, also=(".mlmodel",)),
]}
KERAS_SUFFIXES = (".keras", ".h5")  # originals, opened by the reference runner


@dataclass(frozen=True)
class Variant:
    name: str        # recipe / CLI name
    format: str      # tflite | onnx | coreml (FORMATS)
    precision: str   # what it computes in; Core ML compressed variants name their weight compression
    suffix: str
    runs_on: str     # where it runs
    io: str = "native"  # quantized TFLite I/O: native (int8 / int16), float (around the int8 graph), uint8
    gate: str = "exact"  # release gate family (evaluate.gates): exact | half | quantized | lossy
    note: str = ""   # one line for the docs

    @property
    def needs_calibration(self) -> bool:
        """Integer activations: the converter needs representative data for their ranges."""
        return self.precision in CALIBRATED

    @property
    def integer_io(self) -> bool:
        return self.io != "float"

    @property
    def runner(self) -> str:
        return FORMATS[self.format].runner

    @property
    def label(self) -> str:
        """How reports name it: the precision, plus the I/O where that differs."""
        return self.precision if self.io == "native" else f"{self.precision}-{self.io}-io"


_MOBILE = "linux, macos, android"
_APPLE = "macos, ios (conversion on linux)"
VARIANTS = {v.name: v for v in [
    Variant("tflite_float32", "tflite", "float32", ".tflite", _MOBILE),
    Variant("tflite_int8", "tflite", "int8", ".int8.tflite", _MOBILE, gate="quantized"),
    Variant("tflite_int8_float_io", "tflite", "int8", ".int8-float-io.tflite", _MOBILE, io="float",
            gate="quantized"),
    Variant("tflite_uint8", "tflite", "int8", ".uint8.tflite", _MOBILE, io="uint8", gate="quantized",
            note="full int8 with uint8 input and output (MediaPipe Tasks, TFLite Task Library)"),
    Variant("tflite_dynamic", "tflite", "dynamic", ".dynamic.tflite", _MOBILE, gate="quantized"),
    Variant("tflite_float16", "tflite", "float16", ".float16.tflite", _MOBILE + " (GPU delegate)", gate="half"),
    Variant("tflite_int16x8", "tflite", "int16x8", ".int16x8.tflite", _MOBILE, gate="quantized"),
    Variant("onnx_float32", "onnx", "float32", ".onnx", "linux, macos, windows"),
    Variant("onnx_float16", "onnx", "float16", ".float16.onnx", "linux, macos, windows", gate="half",
            note="fp16 weights and activations, float32 input and output"),
    Variant("onnx_int8", "onnx", "int8", ".int8.onnx", "linux, macos, windows", gate="quantized",
            note="int8 QDQ, calibrated by onnxruntime.quantization on the TFLite int8's data"),
    Variant("coreml_fp16", "coreml", "fp16", ".mlpackage", _APPLE, gate="half"),
    Variant("coreml_fp32", "coreml", "fp32", ".fp32.mlpackage", _APPLE),
    Variant("coreml_linear8", "coreml", "linear8", ".linear8.mlpackage", _APPLE, gate="quantized",
            note="fp16 program, weights 8-bit linear (per channel)"),
    Variant("coreml_palette6", "coreml", "palette6", ".palette6.mlpackage", _APPLE, gate="quantized",
            note="fp16 program, weights as 6-bit palettes (k-means, per tensor)"),
    Variant("coreml_palette4", "coreml", "palette4", ".palette4.mlpackage", _APPLE, gate="lossy",
            note="fp16 program, weights as 4-bit palettes (k-means, per tensor)"),
    Variant("coreml_sparse50", "coreml", "sparse50", ".sparse50.mlpackage", _APPLE, gate="lossy",
            note="fp16 program, 50% of each weight zeroed by magnitude, stored sparse (lossless "
                 "after the recipe's prune stage at >= 50%)"),
]}


def export_formats() -> list[str]:
    return sorted({v.format for v in VARIANTS.values()})


def precisions(fmt: str | None = None) -> list[str]:
    """The precisions the table offers for ``fmt`` (all formats: None), in table order
    (a format's first is its default)."""
    return list(dict.fromkeys(v.precision for v in VARIANTS.values() if fmt in (None, v.format)))


def find(fmt: str, precision: str | None = None, integer_io: bool = True, io: str | None = None) -> Variant:
    """The table's variant for a format and precision (default: the format's first);
    ``io`` (native, float, uint8) picks among TFLite's int8 I/O variants."""
    precision = precision or precisions(fmt)[0]
    io = io or ("native" if integer_io else "float")
    for v in VARIANTS.values():
        if (v.format, v.precision, v.io) == (fmt, precision, io):
            return v
    raise KeyError(f"{fmt} {precision}")


def format_of(path) -> str | None:
    """The table's format of a saved artifact, by its suffix; None for anything else."""
    name = Path(path).name.lower().rstrip("/")
    for f in FORMATS.values():
        if name.endswith((f.suffix, *f.also)):
            return f.name
    return None


def calibrated_formats() -> list[str]:
    return sorted({v.format for v in VARIANTS.values() if v.needs_calibration})


# what a recipe exports unless it names its variants
DEFAULT_VARIANTS = ("tflite_float32", "tflite_int8", "onnx_float32", "coreml_fp16")


def export(variant: Variant, model, path, representative=None, meta: dict | None = None, ports: list | None = None):
    """Write ``model`` as ``variant`` to ``path`` atomically; return the path.
    ``meta`` (see ``pipeline.cards.bundle_meta``) is embedded where the format has room;
    ``ports`` (``convert.graphio``): the export's inputs, default the model's at batch 1."""
    if variant.format == "tflite":
        from edgepipe.convert import tflite
        return tflite.write(model, path, variant.precision, representative, variant.integer_io, meta=meta,
                            ports=ports, io_dtype="uint8" if variant.io == "uint8" else None)
    if variant.format == "onnx":
        from edgepipe.convert import onnx
        return onnx.write(model, path, meta, ports, variant.precision, representative)
    if variant.format == "coreml":
        from edgepipe.convert import coreml
        return coreml.write(model, path, variant.precision, meta, ports)
    raise ValueError(variant.format)

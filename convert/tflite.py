"""TFLite writer: a batch-1 concrete function, so shapes are static and no
SHAPE/PACK ops survive around transposed convolutions; grouped convs built
from parts become one grouped CONV_2D (convert.grouped)."""
from pathlib import Path

from edgepipe.base import atomic
from edgepipe.quantize import ptq


def to_tflite_bytes(model, mode: str = "float32", representative=None, int8_io: bool = True) -> bytes:
    if representative is not None:
        representative = ptq.check_representative(representative, (1, *model.input_shape[1:]))
    return ptq.configure(converter_for(model), mode, representative, int8_io).convert()


def converter_for(model):
    """A converter over the TFLite export graph (grouped convs merged, exact)."""
    from edgepipe.convert.grouped import merge_groups
    return ptq.converter_for(merge_groups(model))


def write(model, path: Path, mode: str = "float32", representative=None, int8_io: bool = True,
          meta: dict | None = None) -> Path:
    """Convert and write atomically; ``meta`` (a model card) becomes TFLite metadata."""
    data = to_tflite_bytes(model, mode, representative, int8_io)
    if meta:
        from edgepipe.convert.tflite_metadata import attach
        data = attach(data, meta)
    return atomic.write_bytes(path, data)

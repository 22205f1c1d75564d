"""TFLite writer: a concrete function at the export's input shapes (batch 1 by
default), so shapes are static and no SHAPE/PACK ops survive around transposed
convolutions; grouped convs built from parts become one grouped CONV_2D
(convert.grouped). A SavedModel's serving signature goes through the same path:
its inputs, outputs and their names become the TFLite signature's."""
import warnings
from pathlib import Path

import numpy as np

from edgepipe.base import atomic
from edgepipe.base.backend import tf
from edgepipe.base.errors import EdgePipeError
from edgepipe.base.quiet import native_stderr_silenced
from edgepipe.convert import graphio
from edgepipe.quantize import ptq


def to_tflite_bytes(model, mode: str = "float32", representative=None, int8_io: bool = True,
                    ports: list | None = None, io_dtype: str | None = None) -> bytes:
    if representative is not None:
        refuse_float_ids(model, mode)
        taking = ports or graphio.export_inputs(model)
        representative = _calibration(representative, taking, mode)
    converter, names = _converter(model, ports)
    converter = ptq.configure(converter, mode, representative, int8_io, io_dtype)
    with native_stderr_silenced(), warnings.catch_warnings():  # the converter's own chatter, not edgepipe's
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        data = converter.convert()
    return _name_outputs(data, names) if names else data


def _calibration(representative, taking: list, mode: str):
    """Calibration data as the converter's representative dataset takes it: one array, or for
    a model of several inputs ``representative`` as {input name: array}, returned as a list
    in the order of ``taking`` (the converted function's inputs), each in its input's dtype."""
    if not isinstance(representative, dict):
        if len(taking) != 1:
            raise EdgePipeError(f"{mode} calibration of a model of {len(taking)} inputs "
                                f"({', '.join(p.name for p in taking)}) takes one array per input name")
        representative = {taking[0].name: representative}
    if set(representative) != {p.name for p in taking}:
        raise EdgePipeError(f"{mode} calibration data names {', '.join(sorted(representative))}; the model's "
                            f"inputs are {', '.join(p.name for p in taking)}")
    arrays = [_as_input(ptq.check_representative(representative[p.name], (1, *p.shape[1:])), p) for p in taking]
    if len({len(a) for a in arrays}) != 1:
        raise EdgePipeError(f"{mode} calibration data holds different numbers of items per input")
    return arrays


def _as_input(data, port):
    """A signature that takes pixels is calibrated with pixels, not floats; token ids with
    the integers they are."""
    if port.dtype == "uint8":
        return np.clip(np.round(data), 0, 255).astype(np.uint8)
    if np.dtype(port.dtype).kind in "iu":
        return np.round(data).astype(port.dtype)
    return data


def refuse_float_ids(model, mode: str):
    """Token ids that reach an Embedding as floats (Keras' default input dtype): full-integer
    quantization scales them like any activation, id 1 came back as 0.992, the lookup truncated
    it to 0 and read the wrong row, with nothing said."""
    from edgepipe.base.keras3_files import all_layers
    for layer in all_layers(getattr(model, "keras_model", None) or model):  # a Keras 3 file's layers too
        try:
            dtype = layer.input.dtype if type(layer).__name__ == "Embedding" else ""
            dtype = str(getattr(dtype, "name", dtype))  # tf.float32 or "float32"
        except Exception:  # noqa: BLE001  a layer never called, or shared: no single input to judge
            continue
        if "float" in dtype:
            raise EdgePipeError(f"{mode}: Embedding '{layer.name}' takes its token ids as {dtype}, which "
                                "full-integer quantization would scale like any activation (id 1 becomes 0.99, "
                                "read as 0); give the model an integer input (keras.Input(shape, dtype='int32')), "
                                "or use --mode dynamic or float16")


def converter_for(model, ports: list | None = None):
    """A converter over the TFLite export graph (grouped convs merged, exact);
    ``ports``: the export's inputs (default: the model's, batch 1)."""
    return _converter(model, ports)[0]


def _converter(model, ports: list | None):
    """(converter, {graph tensor name: output name} for the outputs to rename)."""
    from edgepipe.convert.grouped import merge_groups
    if _zoo_like(model, ports):
        return ptq.converter_for(merge_groups(model)), {}
    graph = model if graphio.is_serving(model) else merge_groups(model)
    function = graphio.concrete_function(graph, ports or graphio.export_inputs(model))
    return ptq.function_converter(function, graph), graphio.output_tensor_names(function)


def _zoo_like(model, ports) -> bool:
    """A one-input, one-output Keras model at its own shape and batch 1: the graph
    every zoo export took (several outputs are named through ``graphio`` instead)."""
    if graphio.is_serving(model) or len(model.inputs) != 1 or len(model.outputs) != 1:
        return False
    own = graphio.model_inputs(model)[0]
    if own.dtype != "float32":  # the zoo's function takes float32: keep uint8 pixels, int32 token ids
        return False
    return ports is None or (ports[0].shape[0] == 1 and ports[0].shape[1:] == own.shape[1:])


def _name_outputs(data: bytes, names: dict) -> bytes:
    """Output tensors named like the model's outputs. Without a trackable object the
    converter writes no signature and keeps graph names (``Identity_1``); passing one
    costs a SavedModel round trip (see ``quantize.ptq.converter_for``)."""
    from edgepipe.base.backend import tflite_schema
    _, flatbuffer_utils = tflite_schema()
    flat = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    graph = flat.subgraphs[0]
    for i in graph.outputs:
        tensor = graph.tensors[i]
        name = names.get(tensor.name.decode().split(":")[0])
        if name:
            tensor.name = name.encode()
    return bytes(flatbuffer_utils.convert_object_to_bytearray(flat))


def state_tensors(data) -> list[str]:
    """Variable tensors of the main subgraph: where TFLite's fused LSTM and RNN kernels keep
    their last state, so that the next Invoke() starts from it unless the app resets it. Read
    through the flatbuffer's accessors, not its object tree: a 100 MB model opens at once."""
    from ai_edge_litert import schema_py_generated as schema  # LiteRT's own copy: no TensorFlow import
    graph = schema.Model.GetRootAs(data, 0).Subgraphs(0)
    tensors = (graph.Tensors(i) for i in range(graph.TensorsLength()))
    return [t.Name().decode() for t in tensors if t.IsVariable()]


def state_note(path) -> str | None:
    """What an app must know about a file that keeps state between calls, or None."""
    try:
        names = state_tensors(Path(path).read_bytes())
    except Exception:  # noqa: BLE001  a file the interpreter took but this reader does not: no note
        return None
    if not names:
        return None
    return (f"note: {Path(path).name} keeps state between calls in {len(names)} variable tensor(s) (TFLite's "
            "fused LSTM/RNN kernels leave their last state there): reset it before each input, as edgepipe's "
            "checks do (Android: interpreter.resetVariableTensors(); Python: reset_all_variables()), or each "
            "output depends on the inputs before it")


def write(model, path: Path, mode: str = "float32", representative=None, int8_io: bool = True,
          meta: dict | None = None, ports: list | None = None, io_dtype: str | None = None) -> Path:
    """Convert and write atomically; ``meta`` (a model card) becomes TFLite metadata;
    ``io_dtype="uint8"``: a full-int8 model with uint8 input and output."""
    data = to_tflite_bytes(model, mode, representative, int8_io, ports, io_dtype)
    if meta:
        from edgepipe.convert.tflite_metadata import attach
        data = attach(data, meta)
    return atomic.write_bytes(path, data)

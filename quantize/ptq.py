"""Post-training quantization modes for the TFLite converter.

Each mode is a name a recipe or the CLI can use. Calibration data is checked
before the converter sees it: NaN or a wrong shape is a user error, not a
mysterious converter crash.
"""
import numpy as np

from edgepipe.base.backend import keras, tf
from edgepipe.base.errors import EdgePipeError


def check_representative(data: np.ndarray, input_shape) -> np.ndarray:
    data = np.asarray(data, np.float32)
    if data.ndim != len(input_shape) or tuple(data.shape[1:]) != tuple(input_shape[1:]):
        raise EdgePipeError(f"representative data has shape {data.shape}, model expects (N, "
                            f"{', '.join(str(d) for d in input_shape[1:])})")
    if not np.isfinite(data).all():
        raise EdgePipeError("representative data contains NaN or Inf")
    if len(data) == 0:
        raise EdgePipeError("representative data is empty")
    return data


def configure(converter, mode: str, representative=None, int8_io: bool = True, io_dtype: str | None = None):
    """Set ``converter`` up for ``mode``, a TFLite precision of ``convert.formats.VARIANTS``
    (the table lists them; this layer, below it, only implements each); ``representative``
    is an (N, H, W, C) array, or a list of arrays, one per input in the graph's input
    order; ``io_dtype="uint8"`` gives a full-int8 model uint8 I/O."""
    if io_dtype is not None and (io_dtype != "uint8" or mode != "int8"):
        raise EdgePipeError(f"{io_dtype} input/output is for int8 only, not {mode}")
    if mode == "float32":
        return converter
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "dynamic":
        return converter
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
        return converter
    if mode not in ("int8", "int16x8"):
        raise EdgePipeError(f"unknown TFLite quantization mode '{mode}'")
    _check_integer_recurrent(converter, mode)
    if representative is None:
        raise EdgePipeError(f"mode {mode} needs representative data for calibration")
    samples = representative if isinstance(representative, (list, tuple)) else [representative]

    def gen():  # one item of every input at a time, in the converted function's input order
        for i in range(len(samples[0])):
            yield [x[i:i + 1] for x in samples]
    converter.representative_dataset = gen
    if mode == "int8":
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        io = tf.uint8 if io_dtype == "uint8" else tf.int8
    else:
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        io = tf.int16  # integer I/O here means int16, matching the activations
    if int8_io:
        converter.inference_input_type = converter.inference_output_type = io
    return converter


def converter_for(model):
    """A converter over the model's batch-1 concrete function.

    No ``trackable_obj``: given the model, the converter round-trips it through a
    SavedModel first, which takes 20 s instead of 2 s for ShuffleNet's 300 layers
    and yields the same flatbuffer maths (the function captures the weights)."""
    shape = (1, *model.input_shape[1:])
    fn = tf.function(lambda x: model(x, training=False))
    concrete = fn.get_concrete_function(tf.TensorSpec(shape, tf.float32, name=model.input_names[0]))
    return function_converter(concrete, model)


def function_converter(concrete, model):
    """A converter over ``concrete``, a function of ``model``. The function holds its
    variables weakly, so the converter keeps ``model`` alive: a model built for the export
    (grouped convs merged) was otherwise collected before ``convert()`` at random. A
    recurrent model goes through the SavedModel route (``trackable_obj``), where TFLite
    fuses LSTM / GRU loops: without it, int8 calibration of one crashes the process."""
    if _recurrent(model):
        converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)
    else:
        converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    converter.edgepipe_keeps = model  # also read by ``configure``
    return converter


def _recurrent(model, but=()) -> list[str]:
    """The recurrent layers in ``model``, less those of the classes ``but``."""
    return [layer.name for layer in getattr(model, "submodules", ())
            if isinstance(layer, keras.layers.RNN) and not isinstance(layer, but)]


def _unfused_loops(model) -> list[str]:
    """The ``While`` loops of a SavedModel signature (a subclassed model's GRU or LSTM):
    served from its graph, not its Keras layers, TFLite fuses none of them."""
    function = getattr(model, "function", None)  # base.serving.ServingModel
    if function is None:
        return []
    graph = function.graph.as_graph_def()
    nodes = [*graph.node, *(n for f in graph.library.function for n in f.node_def)]
    return [n.name for n in nodes if n.op in ("While", "StatelessWhile")]


def _check_integer_recurrent(converter, mode: str) -> None:
    """TFLite has a fused int8 kernel for a Keras LSTM alone: calibrating any other loop (a
    GRU, a SimpleRNN, a SavedModel's recurrent graph) kills the process (a segfault, TF 2.21),
    so it is refused before."""
    model = getattr(converter, "edgepipe_keeps", None)
    unfused = _recurrent(model, but=keras.layers.LSTM) or _unfused_loops(model)
    if unfused:
        raise EdgePipeError(f"TFLite has no {mode} kernel for this recurrent loop ({', '.join(unfused[:4])}; it "
                            "fuses a Keras file's LSTM only), and its converter crashes on it: use --mode dynamic "
                            "or float16 (weights quantized, activations float)")

"""One runner protocol shared by verify and bench.

``predict(batch)`` takes float32 NHWC in the model's input range and returns
``{output name: float32 array}`` with the batch axis first. Runners for
batch-1 exports loop over the batch; int8 I/O is quantized and dequantized
here so callers never see integer tensors.
"""
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgepipe.base.errors import EdgePipeError, first_line
from edgepipe.base.quiet import native_stderr_silenced
from edgepipe.base.values import in_dtype


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple
    dtype: str


def fixed_dims(shape) -> list[int | None]:
    """A runtime's shape as ints, None where free (None, -1, a symbolic name like 'batch')."""
    return [int(d) if isinstance(d, (int, np.integer)) and d >= 0 else None for d in shape]


def shape_text(shape) -> str:
    """A shape as a person writes it: (1, 256, 256, 3), ? where free."""
    return "(" + ", ".join("?" if d is None else str(d) for d in fixed_dims(shape)) + ")"


class NotRunnable(Exception):
    """This runtime cannot run here (for example Core ML on Linux)."""


class Runner:
    runtime = "?"
    engine = "?"    # what computed the numbers: the runtime itself, or a reference
    version = "?"
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    dynamic_batch = False  # the model takes any batch: ``predict`` runs ``batch_size`` items a call
    state_note = None  # what an app must know about state the file keeps between calls
    batch_size = 1

    def predict(self, batch) -> dict[str, np.ndarray]:
        """``batch``: an array for the first input, or {input name: array}."""
        raise NotImplementedError

    def bound(self, batch: np.ndarray):
        """A zero-argument call that runs inference on ``batch`` with the inputs
        already in the runtime: what a timed run executes. LiteRT's
        benchmark_model times ``Invoke()`` alone; runners with a cheaper path
        than ``predict`` (no conversions, no output copies) override this."""
        return lambda: self.predict(batch)

    def feeds(self, batch) -> dict[str, np.ndarray]:
        """``batch`` as {input name: float32 array}, every input given, shapes checked."""
        if not isinstance(batch, dict):
            batch = {self.inputs[0].name: batch}
        names = [i.name for i in self.inputs]
        if set(batch) != set(names):
            raise EdgePipeError(f"the model's inputs are {', '.join(names)}; given {', '.join(batch)}")
        feeds = {n: np.asarray(batch[n], np.float32) for n in names}
        for info in self.inputs:
            self.check_input(feeds[info.name], info)
        if len({len(x) for x in feeds.values()}) != 1:
            raise EdgePipeError(f"inputs {', '.join(names)} hold different numbers of items")
        return feeds

    def _each(self, batch, fn):
        """``fn({name: array})`` on ``batch_size`` items at a time, or as many as a fixed
        batch holds (the last call padded with copies of the last item, their results dropped)."""
        feeds = self.feeds(batch)
        n, step = len(next(iter(feeds.values()))), self.batch_size if self.dynamic_batch else self._fixed_batch()
        parts = []
        for i in range(0, n, step):
            short = max(0, i + step - n)
            chunk = {k: padded_slice(v, i, step) for k, v in feeds.items()}
            parts.append({k: y[:step - short] if short and np.ndim(y) and len(y) == step else y
                          for k, y in fn(chunk).items()})
        # a scalar output (one value per call) is stacked: as many values as calls
        return {k: np.concatenate([p[k] for p in parts]) if np.ndim(parts[0][k]) else np.stack([p[k] for p in parts])
                for k in parts[0]}

    def call_items(self) -> int:
        """Items one call runs when timed: a file fixed at batch N runs N at a time, else one."""
        return 1 if self.dynamic_batch else self._fixed_batch()

    def _fixed_batch(self) -> int:
        """The batch the first input is fixed at (1 where the runtime does not say)."""
        shape = self.inputs[0].shape if self.inputs else ()
        first = shape[0] if shape else None
        return int(first) if isinstance(first, (int, np.integer)) and first > 0 else 1

    def raw_integer_input(self) -> bool:
        """Whether the first input holds integers fed as they are (uint8 pixels), not
        floats the runtime quantizes."""
        return False

    def input_quantization(self) -> tuple[str, float, int] | None:
        """(integer dtype, scale, zero point) of a first input the runtime quantizes
        (``float = scale * (q - zero)``), else None."""
        return None

    def input_shapes(self) -> dict[str, tuple]:
        """{input name: NHWC shape, None where free}: what the model takes."""
        return {i.name: _nhwc(i) for i in self.inputs}

    def check_input(self, batch: np.ndarray, info: TensorInfo | None = None):
        """A batch the model cannot take is the user's error (an export of another model, wrong --data)."""
        info = info or self.inputs[0]
        if not info.shape:  # the runtime does not say (Core ML's own predict)
            return
        want, got = _nhwc(info)[1:], batch.shape[1:]
        if len(want) != len(got) or any(w is not None and int(w) != g for w, g in zip(want, got)):
            named = f"input '{info.name}'" if len(self.inputs) > 1 else "the model"
            if transposed_image(want, got) or transposed_image(got, want):
                raise EdgePipeError(f"{named} takes (N, {', '.join(str(d) for d in want)}) and is fed (N, "
                                    f"{', '.join(str(d) for d in got)}), the same images with the channels moved: "
                                    "edgepipe checks and times channels-last (NHWC) models, as TFLite, Core ML and "
                                    "phone apps take images; export the channels-first one NHWC")
            raise EdgePipeError(f"{named} takes inputs of shape (N, {', '.join(str(d) for d in want)}), "
                                f"given (N, {', '.join(str(d) for d in got)}): is the export from this model?")


def run_stoppably(call, stop=None):
    """``call()`` in a worker thread. In the main thread a runtime's native loop leaves no
    moment for a Python signal handler: an ONNX Loop or a TFLite WHILE of endless turns
    ignored Ctrl-C and SIGTERM for good. Here the main thread waits where the handler runs,
    and on an interrupt calls ``stop`` (a runtime's own terminate, where it has one) before
    the interrupt goes on; a runtime without one runs on in its daemon thread until the
    process exits, which the CLI then does."""
    result = {}

    def work():
        try:
            result["out"] = call()
        except Exception as e:  # noqa: BLE001  re-raised in the caller's thread
            result["error"] = e
    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.1)
    except BaseException:
        if stop is not None:
            stop()
            worker.join(10)
        raise
    if "error" in result:
        raise result["error"]
    return result.get("out")


def padded_slice(x, start: int, step: int):
    """``x[start:start + step]``, padded to ``step`` items with copies of the last one
    (what a file fixed at batch ``step`` is fed at the end of a batch)."""
    part = x[start:start + step]
    short = step - len(part)
    return np.concatenate([part, np.repeat(x[-1:], short, 0)]) if short > 0 else part


def transposed_image(chw, hwc) -> bool:
    """Whether ``chw`` is ``hwc``'s image channels-first (a PyTorch export beside a Keras model)."""
    same = all(a is None or b is None or a == b for a, b in zip(chw[1:], hwc[:2]))  # a free H or W fits any
    return len(chw) == 3 == len(hwc) and chw[0] in (1, 3) and chw[0] == hwc[2] and same


def _nhwc(info: TensorInfo) -> tuple:
    """A tensor's shape with free dimensions (None, -1, 'N') as None; Core ML images,
    (N, C, H, W) inside, as NHWC."""
    shape = tuple(int(d) if isinstance(d, (int, np.integer)) and d > 0 else None for d in info.shape)
    if info.dtype == "image" and len(shape) == 4:
        shape = (shape[0], *shape[2:], shape[1])
    return shape


class KerasRunner(Runner):
    runtime = "keras"
    engine = "keras"
    dynamic_batch = True

    def __init__(self, model):
        from edgepipe.base.backend import tf
        self.version = tf.__version__
        self.model = model
        self._fn = tf.function(lambda x: model(x, training=False))
        self.inputs = [TensorInfo(n, tuple(t.shape.as_list()), getattr(t.dtype, "name", "float32"))
                       for n, t in zip(model.input_names, model.inputs)]
        self.outputs = [TensorInfo(n, tuple(o.shape), "float32") for n, o in zip(model.output_names, model.outputs)]

    def bound(self, batch):
        from edgepipe.base.backend import tf
        x = tf.constant(np.asarray(batch, np.float32))
        return lambda: self._fn(x)

    def predict(self, batch):
        feeds = self.feeds(batch)
        args = [feeds[i.name] for i in self.inputs]
        from edgepipe.base.backend import tf
        out = self._fn(args[0] if len(args) == 1 else args)
        # a dict of outputs flattens by sorted key, the order of model.outputs and its names
        return {n: np.asarray(o) for n, o in zip(self.model.output_names, tf.nest.flatten(out))}


class ServingRunner(Runner):
    """A SavedModel's serving signature (``edgepipe.base.serving``): the original a
    non-Keras SavedModel's exports are checked against."""
    runtime = "savedmodel"
    engine = "tensorflow"

    def __init__(self, model):
        from edgepipe.base.backend import tf
        self.version = tf.__version__
        self.model = model
        self.inputs = [TensorInfo(n, s, d) for n, s, d in model.inputs]
        self.outputs = [TensorInfo(n, s, d) for n, s, d in model.outputs]
        self.dynamic_batch = all(s and s[0] is None for _, s, _ in model.inputs)
        self.batch_size = 64  # a free batch: run it in slices that bound memory

    def _run(self, feeds):
        from edgepipe.base.backend import tf
        dtypes = {i.name: i.dtype for i in self.inputs}
        out = self.model({k: tf.cast(v, dtypes[k]) for k, v in feeds.items()})
        return {k: np.asarray(v, np.float32) for k, v in out.items()}

    def predict(self, batch):
        return self._each(batch, self._run)


def reference_runner(model) -> Runner:
    """The original's runner: Keras, or a SavedModel's serving signature."""
    from edgepipe.base.serving import ServingModel
    return ServingRunner(model) if isinstance(model, ServingModel) else KerasRunner(model)


class TFLiteRunner(Runner):
    runtime = "litert"
    engine = "litert"

    def __init__(self, path, threads=1, xnnpack=True):
        from ai_edge_litert import interpreter as litert
        import ai_edge_litert
        self.version = getattr(ai_edge_litert, "__version__", "?")
        resolver = (litert.OpResolverType.AUTO if xnnpack
                    else litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        try:
            with native_stderr_silenced():  # XNNPACK announces itself on fd 2
                self.interp = litert.Interpreter(model_path=str(path), num_threads=threads,
                                                 experimental_op_resolver_type=resolver)
                self.interp.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise EdgePipeError(f"{path}: not a loadable TFLite model ({str(e).splitlines()[0]})") from None
        ins, self._out = self.interp.get_input_details(), self.interp.get_output_details()
        in_names, self._out_names = tflite_io_names(self.interp, path)
        self._ins = dict(zip(in_names, ins))
        self._in = ins[0]  # the first input: what a timed run sets
        self.inputs = [TensorInfo(n, tuple(d["shape_signature"]), np.dtype(d["dtype"]).name)
                       for n, d in self._ins.items()]
        self.outputs = [TensorInfo(n, tuple(d["shape"]), np.dtype(d["dtype"]).name)
                        for n, d in zip(self._out_names, self._out)]
        self.dynamic_batch = all(len(d["shape_signature"]) and d["shape_signature"][0] == -1
                                 for d in self._ins.values())
        self._batch = 1
        from edgepipe.convert.tflite import state_note
        self.state_note = state_note(path)  # a fused LSTM's state: reset before every input, as an app must
        self._invoke = self._invoke_from_fresh_state if self.state_note else self.interp.invoke  # timed as is

    def _invoke_from_fresh_state(self):
        self.interp.reset_all_variables()
        self.interp.invoke()

    def raw_integer_input(self) -> bool:
        return np.issubdtype(self._in["dtype"], np.integer) and not self._in["quantization"][0]

    def input_quantization(self) -> tuple[str, float, int] | None:
        scale, zero = self._in["quantization"]
        return (np.dtype(self._in["dtype"]).name, float(scale), int(zero)) if scale else None

    def _to_input(self, x, detail=None):
        detail = detail or self._in
        scale, zero = detail["quantization"]
        return in_dtype(x / scale + zero if scale else x, detail["dtype"])  # integer pixels rounded, not truncated

    def bound(self, batch):
        batch = np.asarray(batch, np.float32)
        if self.dynamic_batch and self._runs_whole(batch):  # a free batch: one Invoke(), as an app would
            return self._invoke
        step = self.call_items()  # a file fixed at batch N is fed N items a call
        items = [self._to_input(padded_slice(batch, i, step)) for i in range(0, len(batch), step)]
        self._resize(step)
        if len(items) == 1:  # the common case: set once, time Invoke() alone
            self.interp.set_tensor(self._in["index"], items[0])
            return self._invoke

        def run():
            for x in items:
                self.interp.set_tensor(self._in["index"], x)
                self._invoke()
        return run

    def _runs_whole(self, batch) -> bool:
        """Set ``batch`` as one tensor, if the graph runs it (a Reshape fixed at batch 1 does not)."""
        try:
            self._resize(len(batch))
            self.interp.set_tensor(self._in["index"], self._to_input(batch))
            self._invoke()
            return True
        except (RuntimeError, ValueError):
            self._batch = None  # reallocate on the next resize
            return False

    def _resize(self, batch: int):
        """A free batch takes the slice's size (the tensors are reallocated when it changes)."""
        if not self.dynamic_batch or batch == self._batch:
            return
        for d in self._ins.values():
            self.interp.resize_tensor_input(d["index"], [batch, *d["shape_signature"][1:]])
        self.interp.allocate_tensors()
        self._batch = batch

    def _one(self, feeds):
        self._resize(len(next(iter(feeds.values()))))
        for name, x in feeds.items():
            self.interp.set_tensor(self._ins[name]["index"], self._to_input(x, self._ins[name]))
        run_stoppably(self._invoke)  # LiteRT releases the GIL in Invoke() but has no terminate
        out = {}
        for name, d in zip(self._out_names, self._out):
            y = self.interp.get_tensor(d["index"])
            s, z = d["quantization"]
            out[name] = (y.astype(np.float32) - z) * s if s else y.astype(np.float32)
        return out

    def predict(self, batch):
        return self._each(batch, self._one)


def tflite_io_names(interp, path) -> tuple[list[str], list[str]]:
    """(input names, output names) of a LiteRT interpreter's tensors as an app finds them,
    in the order of its ``get_input_details()`` / ``get_output_details()``."""
    signature = _first_subgraph_signature(interp, path)
    return (_tensor_names(interp.get_input_details(), signature.get("inputs", {})),
            _tensor_names(interp.get_output_details(), signature.get("outputs", {})))


def _first_subgraph_signature(interp, path) -> dict:
    """The signature of the subgraph the interpreter runs ({"inputs": {key: tensor index},
    "outputs": ...}, or {} when the file has none). A file with several signatures is
    checked and timed on one only when that one is ``serving_default``: the converter
    orders signatures by name, so subgraph 0 may be another function than the one an
    app calls by default."""
    signatures = interp._get_full_signature_list()  # noqa: SLF001 (the public list lacks the tensor indices)
    if len(signatures) <= 1:
        return next(iter(signatures.values()), {})
    if "serving_default" in signatures and interp.get_signature_runner("serving_default")._subgraph_index == 0:
        return signatures["serving_default"]
    raise EdgePipeError(f"{path}: holds {len(signatures)} signatures ({', '.join(signatures)}), and the one it runs "
                        "first is not 'serving_default'; edgepipe checks one function per file: convert the "
                        "signature your app calls on its own")


def _tensor_names(details: list, keys: dict) -> list[str]:
    """Each tensor's name as an app sees it: its signature key, else the converter's
    name without "serving_default_" and ":0"; the full name where two would clash
    (two outputs named "StatefulPartitionedCall:0" and ":1")."""
    by_index = {index: key for key, index in keys.items()}
    names = [by_index.get(d["index"]) or d["name"].removeprefix("serving_default_").split(":")[0] for d in details]
    if len(set(names)) < len(names):
        names = [by_index.get(d["index"]) or d["name"] for d in details]
    return names


class OnnxRunner(Runner):
    runtime = "onnxruntime"
    engine = "onnxruntime"

    def __init__(self, path, threads=1):
        import onnxruntime as ort
        self.version, self.path = ort.__version__, path
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 4  # fatal only: an error reaches the user as edgepipe's one line, not ORT's log too
        # int8 matmuls on x64 CPUs without VNNI (AVX2, plain AVX-512) take a u8 x s8 path whose
        # instruction can saturate; this keeps them exact there, and changes nothing on VNNI machines
        opts.add_session_config_entry("session.x64quantprecision", "1")
        try:
            self.sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # ORT raises its own exception types for bad files
            raise EdgePipeError(f"{path}: not a loadable ONNX model ({str(e).splitlines()[0][:160]})") from None
        self.inputs = [TensorInfo(i.name, tuple(i.shape), i.type) for i in self.sess.get_inputs()]
        self.outputs = [TensorInfo(o.name, tuple(o.shape), o.type) for o in self.sess.get_outputs()]
        self.dynamic_batch = all(i.shape and not isinstance(i.shape[0], int) for i in self.inputs)
        self._types = {i.name: _ONNX_TYPES.get(i.dtype, np.float32) for i in self.inputs}

    def bound(self, batch):
        name, batch = self.inputs[0].name, np.asarray(batch, np.float32)
        whole = {name: in_dtype(batch, self._types[name])}
        if self.dynamic_batch and self._runs(whole):  # a free batch runs in one call, as an app would
            return lambda: self.sess.run(None, whole)
        step = self.call_items()  # a file fixed at batch N is fed N items a call
        feeds = [{name: in_dtype(padded_slice(batch, i, step), self._types[name])} for i in range(0, len(batch), step)]
        for feed in feeds[:1]:
            self._one_call(feed)  # a graph that cannot take them is the user's one line, not a timing failure

        def run():
            for feed in feeds:
                self.sess.run(None, feed)
        return run

    def raw_integer_input(self) -> bool:
        return np.issubdtype(self._types[self.inputs[0].name], np.integer)

    def _runs(self, feed) -> bool:
        try:
            self._run_stoppably(feed)
            return True
        except Exception:  # noqa: BLE001 (ORT's own types: a graph fixed at batch 1 inside)
            return False

    def _one(self, feeds):
        outs = self._one_call({k: in_dtype(v, self._types[k]) for k, v in feeds.items()})
        return {o.name: np.asarray(v, np.float32) for o, v in zip(self.outputs, outs)}

    def _one_call(self, feeds):
        try:
            return self._run_stoppably(feeds)
        except Exception as e:  # ORT's own types: a shape or dtype the model's graph does not take
            raise EdgePipeError(f"{self.path}: onnxruntime cannot run it on these inputs "
                                f"({first_line(e)[:200]})") from None

    def _run_stoppably(self, feeds):
        """``sess.run``, stoppable: on an interrupt ORT is told to stop (RunOptions.terminate)."""
        import onnxruntime as ort
        options = ort.RunOptions()

        def stop():
            options.terminate = True
        return run_stoppably(lambda: self.sess.run(None, feeds, options), stop)

    def predict(self, batch):
        return self._each(batch, self._one)


_ONNX_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
               "tensor(bool)": np.bool_, **{f"tensor({t})": np.dtype(t).type for t in
                                           ("int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64")}}


def image_pixels(x):
    """What a Core ML ImageType input carries: 8-bit RGB pixels."""
    return np.clip(np.round(np.asarray(x) * 255), 0, 255).astype(np.uint8)


def coreml_runner(path, compute_units: str = "all") -> Runner:
    """Core ML itself on macOS, the reference interpreter elsewhere (``evaluate.coreml_runners``)."""
    from edgepipe.evaluate.coreml_runners import coreml_runner as pick
    return pick(path, compute_units)


def open_runner(path, threads: int = 1, xnnpack: bool = True, compute_units: str = "all",
                trust: bool = False) -> Runner:
    """A runner for a saved artifact, chosen by its suffix."""
    from edgepipe.base.modelio import check_model_path
    path = check_model_path(path)
    try:
        return _open(path, threads, xnnpack, compute_units, trust)
    except (EdgePipeError, NotRunnable):
        raise
    except Exception as e:  # each runtime raises its own types for a corrupt or truncated file
        msg = first_line(e)
        raise EdgePipeError(f"{path}: not a readable model ({msg})") from None


def _open(path: Path, threads, xnnpack, compute_units, trust) -> Runner:
    """The runner the format table (``convert.formats.FORMATS``) names for the file's suffix."""
    from edgepipe.convert.formats import FORMATS, KERAS_SUFFIXES, format_of
    fmt = format_of(path)
    if fmt is not None:
        return _RUNNERS[FORMATS[fmt].runner](path, threads, xnnpack, compute_units)
    if path.name.lower().endswith(KERAS_SUFFIXES) or path.is_dir():
        from edgepipe.base.modelio import load_model
        return reference_runner(load_model(path, trust=trust))
    known = ", ".join([*KERAS_SUFFIXES, *(s for f in FORMATS.values() for s in (f.suffix, *f.also))])
    raise EdgePipeError(f"{path}: unknown model format (expected {known})")


_RUNNERS = {  # FORMATS' runner names -> (path, threads, xnnpack, compute_units) -> Runner
    "litert": lambda path, threads, xnnpack, units: TFLiteRunner(path, threads, xnnpack),
    "onnxruntime": lambda path, threads, xnnpack, units: OnnxRunner(path, threads),
    "coreml": lambda path, threads, xnnpack, units: coreml_runner(path, units),
}


def set_tf_threads(threads: int):
    """Must run before TensorFlow executes anything in this process."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    from edgepipe.base.backend import tf
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)

"""One runner protocol shared by verify and bench.

``predict(batch)`` takes float32 NHWC in the model's input range and returns
``{output name: float32 array}`` with the batch axis first. Runners for
batch-1 exports loop over the batch; int8 I/O is quantized and dequantized
here so callers never see integer tensors.
"""
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgepipe.base.errors import EdgePipeError, first_line


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple
    dtype: str


class NotRunnable(Exception):
    """This runtime cannot run here (for example Core ML on Linux)."""


class Runner:
    runtime = "?"
    engine = "?"    # what computed the numbers: the runtime itself, or a reference
    version = "?"
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]

    def predict(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def bound(self, batch: np.ndarray):
        """A zero-argument call that runs inference on ``batch`` with the inputs
        already in the runtime: what a timed run executes. LiteRT's
        benchmark_model times ``Invoke()`` alone; runners with a cheaper path
        than ``predict`` (no conversions, no output copies) override this."""
        return lambda: self.predict(batch)

    def _each(self, batch, fn):
        batch = np.asarray(batch, np.float32)
        self.check_input(batch)
        per_item = [fn(x[None]) for x in batch]
        return {k: np.concatenate([p[k] for p in per_item]) for k in per_item[0]}


    def check_input(self, batch: np.ndarray):
        """A batch the model cannot take is the user's error (an export of another model, wrong --data)."""
        want, got = self.inputs[0].shape[1:], batch.shape[1:]
        if not self.inputs[0].shape:  # the runtime does not say (Core ML's own predict)
            return
        if self.inputs[0].dtype == "image" and len(want) == 3:  # Core ML images are (N, C, H, W) inside
            want = (*want[1:], want[0])
        fixed = [w if isinstance(w, (int, np.integer)) and w > 0 else None for w in want]  # 'N', -1: open
        if len(want) != len(got) or any(w is not None and int(w) != g for w, g in zip(fixed, got)):
            raise EdgePipeError(f"the model takes inputs of shape (N, {', '.join(str(d) for d in want)}), "
                                f"given (N, {', '.join(str(d) for d in got)}): is the export from this model?")


class KerasRunner(Runner):
    runtime = "keras"
    engine = "keras"

    def __init__(self, model):
        from edgepipe.base.backend import tf
        self.version = tf.__version__
        self.model = model
        self._fn = tf.function(lambda x: model(x, training=False))
        self.inputs = [TensorInfo(model.input_names[0], tuple(model.input_shape), "float32")]
        self.outputs = [TensorInfo(n, tuple(o.shape), "float32") for n, o in zip(model.output_names, model.outputs)]

    def bound(self, batch):
        from edgepipe.base.backend import tf
        x = tf.constant(np.asarray(batch, np.float32))
        return lambda: self._fn(x)

    def predict(self, batch):
        batch = np.asarray(batch, np.float32)
        self.check_input(batch)
        out = self._fn(batch)
        out = out if isinstance(out, (list, tuple)) else [out]
        return {n: np.asarray(o) for n, o in zip(self.model.output_names, out)}


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
            self.interp = litert.Interpreter(model_path=str(path), num_threads=threads,
                                             experimental_op_resolver_type=resolver)
            self.interp.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise EdgePipeError(f"{path}: not a loadable TFLite model ({str(e).splitlines()[0]})") from None
        self._in = self.interp.get_input_details()[0]
        self._out = self.interp.get_output_details()
        self.inputs = [TensorInfo(self._in["name"], tuple(self._in["shape"]), np.dtype(self._in["dtype"]).name)]
        self.outputs = [TensorInfo(_tflite_name(d["name"]), tuple(d["shape"]), np.dtype(d["dtype"]).name)
                        for d in self._out]

    def _to_input(self, x):
        scale, zero = self._in["quantization"]
        if scale:
            info = np.iinfo(self._in["dtype"])
            x = np.clip(np.round(x / scale + zero), info.min, info.max)
        return x.astype(self._in["dtype"])

    def bound(self, batch):
        items = [self._to_input(x[None]) for x in np.asarray(batch, np.float32)]
        if len(items) == 1:  # the common case: set once, time Invoke() alone
            self.interp.set_tensor(self._in["index"], items[0])
            return self.interp.invoke

        def run():
            for x in items:
                self.interp.set_tensor(self._in["index"], x)
                self.interp.invoke()
        return run

    def _one(self, x):
        self.interp.set_tensor(self._in["index"], self._to_input(x))
        self.interp.invoke()
        out = {}
        for d in self._out:
            y = self.interp.get_tensor(d["index"])
            s, z = d["quantization"]
            out[_tflite_name(d["name"])] = (y.astype(np.float32) - z) * s if s else y.astype(np.float32)
        return out

    def predict(self, batch):
        return self._each(batch, self._one)


def _tflite_name(name: str) -> str:
    # "StatefulPartitionedCall:0" -> keep; "serving_default_edges:0" -> "edges"
    return name.removeprefix("serving_default_").split(":")[0]


class OnnxRunner(Runner):
    runtime = "onnxruntime"
    engine = "onnxruntime"

    def __init__(self, path, threads=1):
        import onnxruntime as ort
        self.version = ort.__version__
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        try:
            self.sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # ORT raises its own exception types for bad files
            raise EdgePipeError(f"{path}: not a loadable ONNX model ({str(e).splitlines()[0][:160]})") from None
        i = self.sess.get_inputs()[0]
        self.inputs = [TensorInfo(i.name, tuple(i.shape), i.type)]
        self.outputs = [TensorInfo(o.name, tuple(o.shape), o.type) for o in self.sess.get_outputs()]

    def bound(self, batch):
        feeds = [{self.inputs[0].name: x[None]} for x in np.asarray(batch, np.float32)]

        def run():
            for feed in feeds:
                self.sess.run(None, feed)
        return run

    def _one(self, x):
        outs = self.sess.run(None, {self.inputs[0].name: x})
        return {o.name: np.asarray(v, np.float32) for o, v in zip(self.outputs, outs)}

    def predict(self, batch):
        return self._each(batch, self._one)


class CoreMLRunner(Runner):
    """Core ML's own ``MLModel.predict`` (macOS only)."""
    runtime = "coreml"
    engine = "coreml"

    COMPUTE_UNITS = {"cpu": "CPU_ONLY", "cpu_gpu": "CPU_AND_GPU", "all": "ALL"}

    def __init__(self, path, compute_units: str = "all"):
        from edgepipe.convert.coreml import _coremltools, can_predict
        ok, why = can_predict()
        if not ok:
            raise NotRunnable(why)
        ct = _coremltools()
        self.version = ct.__version__
        units = getattr(ct.ComputeUnit, self.COMPUTE_UNITS[compute_units])
        self.model = ct.models.MLModel(str(path), compute_units=units)
        spec = self.model.get_spec().description
        self.labels = _class_labels(self.model.get_spec())
        self.inputs = [TensorInfo(i.name, (), "image") for i in spec.input]
        self.outputs = [TensorInfo(o.name, (), "float32") for o in spec.output
                        if o.name != spec.predictedFeatureName]

    def _one(self, x):
        from PIL import Image
        img = Image.fromarray(image_pixels(x)[0])
        got = self.model.predict({self.inputs[0].name: img})
        return {o.name: _numeric(got[o.name], self.labels) for o in self.outputs}

    def predict(self, batch):
        return self._each(batch, self._one)


class CoreMLReferenceRunner(Runner):
    """The same ``.mlpackage`` run by the numpy reference interpreter
    (``evaluate.milref``) where Core ML cannot run: reference numerics for
    verify, labelled ``reference-interpreter``; never a latency figure."""
    runtime = "coreml"

    def __init__(self, path):
        from edgepipe.evaluate.milref import ENGINE, ReferenceProgram
        from edgepipe.convert.coreml import _coremltools
        self.engine = ENGINE
        self.version = f"coremltools {_coremltools().__version__} + {ENGINE}"
        self.program = ReferenceProgram(path)
        desc = self.program.spec.description
        self.labels = self.program.class_labels()
        self.inputs = [TensorInfo(n, self.program.input_shapes[n], "image") for n in self.program.input_names]
        self.outputs = [TensorInfo(o.name, (), "float32") for o in desc.output if o.name != desc.predictedFeatureName]

    def _one(self, x):
        # what an ImageType input sees: 8-bit RGB pixels, here in the program's NCHW
        image = image_pixels(x).astype(np.float32).transpose(0, 3, 1, 2)
        got = self.program.run({self.inputs[0].name: image})
        return {o.name: _numeric(got[o.name], self.labels) for o in self.outputs}

    def predict(self, batch):
        return self._each(batch, self._one)


def image_pixels(x):
    """What a Core ML ImageType input carries: 8-bit RGB pixels."""
    return np.clip(np.round(np.asarray(x) * 255), 0, 255).astype(np.uint8)


def _class_labels(spec):
    """A classifier's label order, from the model card we embed (else None: sorted keys)."""
    import json
    card = spec.description.metadata.userDefined.get("model_card")
    try:
        return json.loads(card).get("labels") if card else None
    except ValueError:
        return None


def _numeric(value, labels):
    """A classifier's {label: probability} back to an array in label order."""
    if isinstance(value, dict):
        order = labels or sorted(value)
        return np.asarray([[value[k] for k in order]], np.float32)
    return np.asarray(value, np.float32)


def coreml_runner(path, compute_units: str = "all") -> Runner:
    """Core ML itself on macOS, the reference interpreter elsewhere."""
    from edgepipe.convert.coreml import can_predict
    if can_predict()[0]:
        return CoreMLRunner(path, compute_units)
    return CoreMLReferenceRunner(path)


def open_runner(path, threads: int = 1, xnnpack: bool = True, compute_units: str = "all",
                trust: bool = False) -> Runner:
    """A runner for a saved artifact, chosen by its suffix."""
    path = Path(path)
    if not path.exists():
        raise EdgePipeError(f"model not found: {path}")
    try:
        return _open(path, threads, xnnpack, compute_units, trust)
    except (EdgePipeError, NotRunnable):
        raise
    except Exception as e:  # each runtime raises its own types for a corrupt or truncated file
        msg = first_line(e)
        raise EdgePipeError(f"{path}: not a readable model ({msg})") from None


def _open(path: Path, threads, xnnpack, compute_units, trust) -> Runner:
    name = path.name.lower()
    if name.endswith(".tflite"):
        return TFLiteRunner(path, threads, xnnpack)
    if name.endswith(".onnx"):
        return OnnxRunner(path, threads)
    if name.endswith(".mlpackage") or name.endswith(".mlmodel"):
        return coreml_runner(path, compute_units)
    if name.endswith((".keras", ".h5")) or path.is_dir():
        from edgepipe.base.modelio import load_keras
        return KerasRunner(load_keras(path, trust=trust))
    raise EdgePipeError(f"{path}: unknown model format (expected .keras, .h5, .tflite, .onnx or .mlpackage)")


def set_tf_threads(threads: int):
    """Must run before TensorFlow executes anything in this process."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    from edgepipe.base.backend import tf
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)

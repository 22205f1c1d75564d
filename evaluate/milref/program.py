"""Run a saved Core ML ML program (``.mlpackage``) op by op in numpy.

coremltools can convert on Linux but ``MLModel.predict`` needs macOS. This
reference interpreter loads the same MIL program coremltools wrote (ops and
constant weights, through its milproto reader) and evaluates it with
``evaluate.milref.ops``. Tensors the program declares fp16 are stored as fp16
between ops (each op computes in fp32 from fp16 inputs and rounds its output),
which is how the fp16 error of an export shows up. These are reference
numerics, not Core ML's on-device kernels or timings.
"""
import logging
from pathlib import Path

import numpy as np

from edgepipe.evaluate.milref.ops import OPS
from edgepipe.base.errors import EdgePipeError

ENGINE = "reference-interpreter"


class UnsupportedOp(EdgePipeError):
    pass


def _mil():
    logging.getLogger("coremltools").setLevel(logging.ERROR)
    import coremltools as ct
    from coremltools.converters.mil.frontend.milproto import load as milproto
    from coremltools.converters.mil.mil import types
    return ct, milproto, types


def load_program(path):
    """The ``main`` function of the MIL program saved at ``path``."""
    from edgepipe.convert.coreml import opened_copy
    ct, milproto, _ = _mil()
    path = Path(path)
    with opened_copy(path) as copy:  # the user's package is never opened (and rewritten)
        try:
            model = ct.models.MLModel(str(copy), skip_model_load=True)
            spec = model.get_spec()
        except Exception as e:  # corrupt package, wrong file
            raise EdgePipeError(f"{path}: not a readable Core ML package ({str(e).splitlines()[0][:160]})") from None
        if spec.WhichOneof("Type") != "mlProgram":
            raise EdgePipeError(f"{path}: the reference interpreter runs ML programs (mlprogram), "
                                f"not '{spec.WhichOneof('Type')}' models")
        program = milproto.load(spec, specification_version=spec.specificationVersion,
                                file_weights_dir=model.weights_dir)  # reads the weights now
    return program.functions["main"], spec


class ReferenceProgram:
    """``run({input: array}) -> {output: array}``; ``trace`` keeps every op's output."""

    engine = ENGINE

    def __init__(self, path):
        self.function, self.spec = load_program(path)
        _, _, self.types = _mil()
        self.ops = list(self.function.operations)
        missing = sorted({o.op_type for o in self.ops if o.op_type != "const" and o.op_type not in OPS})
        if missing:
            raise UnsupportedOp(f"{Path(path).name}: op {', '.join(missing)} not supported by the "
                                f"reference interpreter")
        self.input_names = list(self.function.inputs)
        self.input_shapes = {k: tuple(v.shape) for k, v in self.function.inputs.items()}
        self.output_names = [v.name for v in self.function.outputs]
        self.trace: dict[str, np.ndarray] = {}

    def run(self, feeds: dict, keep_trace: bool = False) -> dict:
        env = {}
        for name, var in self.function.inputs.items():
            if name not in feeds:
                raise EdgePipeError(f"missing input '{name}'")
            env[name] = self._typed(np.asarray(feeds[name]), var)
        for o in self.ops:
            if o.op_type == "const":
                env[o.outputs[0].name] = self._const(o.outputs[0].val)
                continue
            args = {k: self._value(v, env) for k, v in o.inputs.items()}
            try:
                result = OPS[o.op_type](**args)
            except TypeError:  # an input this op's numpy form does not take: a variant never guessed at
                raise UnsupportedOp(f"op {o.op_type} with inputs {', '.join(sorted(args))} not supported by the "
                                    "reference interpreter") from None
            results = result if isinstance(result, tuple) and len(o.outputs) > 1 else (result,)
            for var, value in zip(o.outputs, results):
                env[var.name] = self._typed(value, var)
        self.trace = {o.outputs[0].name: env[o.outputs[0].name] for o in self.ops
                      if keep_trace and o.op_type != "const"}
        return {n: env[n] for n in self.output_names}

    def class_labels(self) -> list | None:
        """The classes of a classifier's ``classify`` op, in output order."""
        for o in self.ops:
            if o.op_type == "classify":
                return [c.item() if hasattr(c, "item") else c for c in np.asarray(o.inputs["classes"].val).ravel()]
        return None

    def op_types(self) -> dict[str, str]:
        """Output name -> op type, for naming where an error starts."""
        return {v.name: o.op_type for o in self.ops for v in o.outputs}

    @staticmethod
    def _value(v, env):
        """An op's input, fp16 widened to fp32 for the arithmetic."""
        if isinstance(v, (list, tuple)):
            return [_widen(env[x.name]) for x in v]
        return _widen(env[v.name])

    @staticmethod
    def _const(val):
        return val if isinstance(val, (str, dict)) else np.asarray(val)

    def _typed(self, value, var):
        """Store the value in the type the program declares (fp16 stays fp16)."""
        if isinstance(value, (str, dict)) or not self.types.is_tensor(var.sym_type) and \
                not self.types.is_scalar(var.sym_type):
            return value
        dtype = self.types.nptype_from_builtin(var.dtype)
        return np.asarray(value).astype(dtype, copy=False)


def _widen(value):
    return value.astype(np.float32) if isinstance(value, np.ndarray) and value.dtype == np.float16 else value


def program_precision(path) -> str:
    """How the program stores its weights, else what it computes in: ``sparse<P>``
    (P% of the compressed weights zero), ``palette<N>`` (N-bit lookup tables),
    ``linear8`` (8-bit linear weights: coremltools.optimize.coreml); else 'fp16' when
    it computes in fp16 anywhere, else 'fp32'."""
    function, _ = load_program(path)
    _, _, types = _mil()
    kinds = {o.op_type: o for o in function.operations if o.op_type.startswith("constexpr_")}
    if "constexpr_sparse_to_dense" in kinds:
        masks = [np.unpackbits(np.asarray(o.inputs["mask"].val, np.uint8)) if "shape" in o.inputs
                 else np.asarray(o.inputs["mask"].val).ravel() for o in function.operations
                 if o.op_type == "constexpr_sparse_to_dense"]
        sizes = [int(np.prod(o.outputs[0].shape)) for o in function.operations
                 if o.op_type == "constexpr_sparse_to_dense"]
        kept = sum(int(np.count_nonzero(m[:n])) for m, n in zip(masks, sizes))
        return f"sparse{round(100 * (1 - kept / max(1, sum(sizes))))}"
    if "constexpr_lut_to_dense" in kinds:
        lut = np.asarray(kinds["constexpr_lut_to_dense"].inputs["lut"].val)
        size = lut.size if "shape" in kinds["constexpr_lut_to_dense"].inputs else lut.shape[-2]
        return f"palette{int(np.log2(size))}"
    if kinds.keys() & {"constexpr_affine_dequantize", "constexpr_blockwise_shift_scale"}:
        return "linear8"
    return "fp16" if any(v.dtype == types.fp16 for o in function.operations for v in o.outputs
                         if types.is_tensor(v.sym_type)) else "fp32"

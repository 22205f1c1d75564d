"""The ops of Core ML's ML program (MIL) that our exports contain, in numpy.

Each op takes the MIL op's named inputs and returns its output(s). An op that
is not in ``OPS`` is refused by name when the program loads, never guessed.
"""
import math

import numpy as np

from edgepipe.evaluate.milref import kernels

OPS = {}


def op(*names):
    def register(fn):
        for name in names:
            OPS[name] = fn
        return fn
    return register


def _ints(v):
    return [int(i) for i in np.asarray(v).reshape(-1)]


def _axis(v, rank):
    return int(v) % rank


# elementwise ---------------------------------------------------------------
for _name, _fn in {"add": np.add, "sub": np.subtract, "mul": np.multiply, "real_div": np.divide,
                   "maximum": np.maximum, "minimum": np.minimum, "pow": np.power}.items():
    OPS[_name] = (lambda f: lambda x, y: f(x, y))(_fn)
for _name, _fn in {"exp": np.exp, "sqrt": np.sqrt, "abs": np.abs, "tanh": np.tanh, "square": np.square,
                   "identity": lambda a: a}.items():
    OPS[_name] = (lambda f: lambda x: f(x))(_fn)


# MIL's guarded ops add their epsilon first (layer and group norms write it)
@op("rsqrt")
def rsqrt(x, epsilon=1e-12):
    return 1 / np.sqrt(x + epsilon)


@op("log")
def log(x, epsilon=1e-45):
    return np.log(x + epsilon)


@op("inverse")
def inverse(x, epsilon=1e-4):
    return 1 / (x + epsilon)


@op("layer_norm")
def layer_norm(x, axes=None, gamma=None, beta=None, epsilon=1e-5):
    axes = tuple(_axis(a, x.ndim) for a in _ints(axes)) if axes is not None else tuple(range(x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    y = (x - mean) / np.sqrt(((x - mean) ** 2).mean(axis=axes, keepdims=True) + epsilon)
    return y * (1 if gamma is None else gamma) + (0 if beta is None else beta)


@op("relu")
def relu(x):
    return np.maximum(x, 0)


@op("relu6")
def relu6(x):
    return np.clip(x, 0, 6)


@op("clip")
def clip(x, alpha, beta):
    return np.clip(x, alpha, beta)


@op("leaky_relu")
def leaky_relu(x, alpha=0.01):
    return np.where(x >= 0, x, x * alpha)


@op("sigmoid")
def sigmoid(x):
    # exp(-x) overflows to inf for very negative x, which still gives the right 0
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


@op("silu")
def silu(x):
    """swish: x * sigmoid(x) (EfficientNet's activation)."""
    return x * sigmoid(x)


@op("sigmoid_hard")
def sigmoid_hard(x, alpha=0.2, beta=0.5):
    return np.clip(alpha * x + beta, 0, 1)


@op("gelu")
def gelu(x, mode="EXACT"):
    """The three modes of MIL's gelu: erf, tanh or sigmoid approximation."""
    mode = str(mode)
    if mode == "EXACT":
        return 0.5 * x * (1 + _erf(x / np.sqrt(2)))
    if mode == "TANH_APPROXIMATION":
        return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
    if mode == "SIGMOID_APPROXIMATION":
        return x * sigmoid(1.702 * x)
    raise ValueError(f"gelu mode {mode}")


def _erf(x):
    return np.vectorize(math.erf, otypes=[np.float64])(x).astype(np.result_type(x, np.float32))


@op("softplus")
def softplus(x):
    return np.logaddexp(0, x)


@op("elu")
def elu(x, alpha=1.0):
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


@op("softmax")
def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=int(axis), keepdims=True))
    return e / e.sum(axis=int(axis), keepdims=True)


@op("cast")
def cast(x, dtype):
    # the program's declared output type is applied by the interpreter
    return x


# linear algebra and normalisation -------------------------------------------
@op("conv")
def conv(x, weight, bias=None, strides=(1, 1), pad_type="valid", pad=(0, 0, 0, 0), dilations=(1, 1), groups=1):
    return kernels.conv(x, weight, bias, _ints(strides), pad_type, pad, _ints(dilations), groups)


@op("conv_transpose")
def conv_transpose(x, weight, bias=None, pad=(0, 0, 0, 0), output_shape=None, pad_type="valid",
                   strides=(1, 1), dilations=(1, 1), groups=1):
    shape = None if output_shape is None else _ints(output_shape)
    return kernels.conv_transpose(x, weight, bias, pad, shape, pad_type, _ints(strides), _ints(dilations), groups)


@op("matmul")
def matmul(x, y, transpose_x=False, transpose_y=False):
    x = np.swapaxes(x, -1, -2) if transpose_x else x
    y = np.swapaxes(y, -1, -2) if transpose_y else y
    return np.matmul(x, y)


@op("linear")
def linear(x, weight, bias=None):
    y = x @ weight.T
    return y if bias is None else y + bias


@op("batch_norm")
def batch_norm(x, mean, variance, gamma=None, beta=None, epsilon=1e-5):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    y = (x - mean.reshape(shape)) / np.sqrt(variance.reshape(shape) + epsilon)
    y = y if gamma is None else y * gamma.reshape(shape)
    return y if beta is None else y + beta.reshape(shape)


# pooling and reductions ----------------------------------------------------
@op("max_pool")
def max_pool(x, kernel_sizes, strides, pad_type, pad=(0, 0, 0, 0), ceil_mode=False):
    return kernels.pool(x, "max", _ints(kernel_sizes), _ints(strides), pad_type, pad, ceil_mode=bool(ceil_mode))


@op("avg_pool")
def avg_pool(x, kernel_sizes, strides, pad_type, pad=(0, 0, 0, 0), exclude_padding_from_average=False,
             ceil_mode=False):
    return kernels.pool(x, "avg", _ints(kernel_sizes), _ints(strides), pad_type, pad,
                        bool(exclude_padding_from_average), bool(ceil_mode))


def _reduce(fn):
    def reduce(x, axes=None, keep_dims=False):
        axes = None if axes is None else tuple(_axis(a, x.ndim) for a in _ints(axes))
        return fn(x, axis=axes, keepdims=bool(keep_dims))
    return reduce


OPS.update({"reduce_mean": _reduce(np.mean), "reduce_sum": _reduce(np.sum), "reduce_max": _reduce(np.max),
            "reduce_min": _reduce(np.min)})


def _arg(fn):
    def reduce(x, axis=-1, keep_dims=False, output_dtype="int32"):  # a model's tf.math.argmax output
        found = fn(x, axis=_axis(axis, x.ndim), keepdims=bool(keep_dims))
        return found.astype(np.int32)  # the declared output type is applied by the interpreter
    return reduce


OPS.update({"reduce_argmax": _arg(np.argmax), "reduce_argmin": _arg(np.argmin)})


# tensor layout -------------------------------------------------------------
@op("transpose")
def transpose(x, perm):
    return np.transpose(x, _ints(perm))


@op("reshape")
def reshape(x, shape):
    return np.reshape(x, _ints(shape))


@op("squeeze")
def squeeze(x, axes=None):
    return np.squeeze(x) if axes is None else np.squeeze(x, tuple(_ints(axes)))


@op("expand_dims")
def expand_dims(x, axes):
    for a in sorted(_axis(a, x.ndim + len(_ints(axes))) for a in _ints(axes)):
        x = np.expand_dims(x, a)
    return x


@op("tile")
def tile(x, reps):
    return np.tile(x, _ints(reps))


@op("concat")
def concat(values, axis, interleave=False):
    if bool(interleave):  # channel-interleaved: a0 b0 a1 b1 ...
        axis = _axis(axis, values[0].ndim)
        stacked = np.stack(values, axis=axis + 1)
        shape = list(values[0].shape)
        shape[axis] *= len(values)
        return stacked.reshape(shape)
    return np.concatenate(values, axis=int(axis))


@op("split")
def split(x, axis, num_splits=None, split_sizes=None):
    axis = _axis(axis, x.ndim)
    if split_sizes is not None:
        return tuple(np.split(x, np.cumsum(_ints(split_sizes))[:-1], axis=axis))
    return tuple(np.split(x, int(num_splits), axis=axis))


@op("pad")
def pad(x, pad, mode="constant", constant_val=0.0):
    p = _ints(pad)
    pairs = [(0, 0)] * (x.ndim - len(p) // 2) + [(p[2 * i], p[2 * i + 1]) for i in range(len(p) // 2)]
    if mode == "constant":
        return np.pad(x, pairs, constant_values=float(constant_val))
    return np.pad(x, pairs, mode={"reflect": "reflect", "replicate": "edge"}[str(mode)])


@op("slice_by_index")
def slice_by_index(x, begin, end, stride=None, begin_mask=None, end_mask=None, squeeze_mask=None):
    b, e = _ints(begin), _ints(end)
    s = _ints(stride) if stride is not None else [1] * x.ndim
    bm = np.asarray(begin_mask if begin_mask is not None else [False] * x.ndim, bool).reshape(-1)
    em = np.asarray(end_mask if end_mask is not None else [False] * x.ndim, bool).reshape(-1)
    sq = np.asarray(squeeze_mask if squeeze_mask is not None else [False] * x.ndim, bool).reshape(-1)
    index = tuple(slice(None if bm[i] else b[i], None if em[i] else e[i], s[i]) for i in range(x.ndim))
    y = x[index]
    return np.squeeze(y, tuple(i for i in range(x.ndim) if sq[i])) if sq.any() else y


@op("slice_by_size")
def slice_by_size(x, begin, size):
    b, s = _ints(begin), _ints(size)
    return x[tuple(slice(bi, None if si == -1 else bi + si) for bi, si in zip(b, s))]


@op("depth_to_space")
def depth_to_space(x, block_size):
    """TF's ordering (DCR): channel (by * b + bx) * C + c moves to pixel offset (by, bx)."""
    b = int(block_size)
    n, channels, h, w = x.shape
    c = channels // (b * b)
    return x.reshape(n, b, b, c, h, w).transpose(0, 3, 4, 1, 5, 2).reshape(n, c, h * b, w * b)


# resampling ----------------------------------------------------------------
@op("upsample_nearest_neighbor")
def upsample_nearest_neighbor(x, scale_factor_height=1, scale_factor_width=1):
    return x.repeat(int(scale_factor_height), axis=2).repeat(int(scale_factor_width), axis=3)


@op("upsample_bilinear")
def upsample_bilinear(x, scale_factor_height=1, scale_factor_width=1, align_corners=True):
    out_h, out_w = int(x.shape[2] * float(scale_factor_height)), int(x.shape[3] * float(scale_factor_width))
    return kernels.resize_bilinear(x, out_h, out_w, bool(align_corners))


@op("resize_bilinear")
def resize_bilinear(x, target_size_height=1, target_size_width=1, sampling_mode="DEFAULT"):
    modes = {"ALIGN_CORNERS": True, "STRICT_ALIGN_CORNERS": True, "HALF_PIXEL_CENTERS": False, "DEFAULT": False}
    if str(sampling_mode) not in modes:
        raise ValueError(f"resize_bilinear sampling_mode {sampling_mode}")
    return kernels.resize_bilinear(x, int(target_size_height), int(target_size_width), modes[str(sampling_mode)])


# classifier head -----------------------------------------------------------
@op("classify")
def classify(probabilities, classes):
    """(top label, {label: probability}) as Core ML's classifier outputs."""
    p = np.asarray(probabilities, np.float32).reshape(-1)
    labels = list(np.asarray(classes).reshape(-1))
    return labels[int(p.argmax())], dict(zip(labels, p.tolist()))


# weight decompression (coremltools.optimize.coreml) -------------------------
def _unpack_bits(packed, nbits: int, count: int):
    """Indices packed LSB-first into bytes, as the MIL spec lays them out."""
    bits = np.unpackbits(np.asarray(packed, np.uint8), bitorder="little")[: nbits * count]
    return (bits.reshape(count, nbits) << np.arange(nbits)).sum(axis=1)


def _along(v, rank, axis):
    v = np.asarray(v)
    if v.ndim == 0:
        return v
    shape = [1] * rank
    shape[axis] = -1
    return v.reshape(shape)


@op("constexpr_affine_dequantize")
def constexpr_affine_dequantize(quantized_data, zero_point, scale, axis):
    q = np.asarray(quantized_data)
    a = _axis(axis, q.ndim)
    return (q.astype(np.float32) - _along(zero_point, q.ndim, a).astype(np.float32)) * _along(scale, q.ndim, a)


@op("constexpr_lut_to_dense")
def constexpr_lut_to_dense(indices, lut, shape=None):
    lut = np.asarray(lut)
    if shape is not None:  # iOS16: one flat LUT
        count = int(np.prod(_ints(shape)))
        return lut[_unpack_bits(indices, int(np.log2(lut.size)), count)].reshape(_ints(shape))
    return _lut_blockwise(np.asarray(indices), lut)


def _lut_blockwise(indices, lut):
    """iOS18: ``indices`` already unpacked to the weight's shape; ``lut`` has one
    table per block, shape (*blocks, palette, vector)."""
    rank = indices.ndim
    if lut.shape[-1] != 1:
        raise ValueError("vector palettization (lut vector size > 1)")
    out = np.empty(indices.shape, lut.dtype)
    block = [indices.shape[i] // lut.shape[i] for i in range(rank)]
    for idx in np.ndindex(*lut.shape[:rank]):
        sl = tuple(slice(i * b, (i + 1) * b) for i, b in zip(idx, block))
        out[sl] = lut[idx][:, 0][indices[sl]]
    return out


@op("constexpr_sparse_to_dense")
def constexpr_sparse_to_dense(nonzero_data, mask, shape=None):
    data = np.asarray(nonzero_data)
    if shape is None:  # iOS18: mask already unpacked to the weight's shape
        m = np.asarray(mask).astype(bool)
        out = np.zeros(m.shape, data.dtype)
        out[m] = data
        return out
    count = int(np.prod(_ints(shape)))
    bits = np.unpackbits(np.asarray(mask, np.uint8), bitorder="little")[:count].astype(bool)
    out = np.zeros(count, data.dtype)
    out[bits] = data
    return out.reshape(_ints(shape))


@op("constexpr_blockwise_shift_scale")
def constexpr_blockwise_shift_scale(data, scale, offset=None):
    """iOS18 linear quantization: (data - offset) * scale, each scale/offset
    covering a block of the weight."""
    data = np.asarray(data)
    reps = [d // s for d, s in zip(data.shape, np.shape(scale))]
    scale = np.asarray(scale, np.float32)
    full_scale = np.kron(scale, np.ones(reps, np.float32)) if data.ndim else scale
    shifted = data.astype(np.float32)
    if offset is not None:
        shifted = shifted - np.kron(np.asarray(offset, np.float32), np.ones(reps, np.float32))
    return shifted * full_scale


@op("constexpr_cast")
def constexpr_cast(source_val, output_dtype):
    return np.asarray(source_val)

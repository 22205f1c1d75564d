"""Numpy kernels for Core ML's spatial ops, in MIL's NCHW layout.

Written from the MIL op specification (coremltools ``mil/ops/defs``), not from
Core ML's implementation: they are the reference that an export is held to.
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def same_padding(size: int, kernel: int, stride: int, dilation: int, lower: bool = False) -> tuple[int, int]:
    """MIL ``same``: output = ceil(size / stride); the odd pixel goes after
    (``same``) or before (``same_lower``)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    small, large = total // 2, total - total // 2
    return (large, small) if lower else (small, large)


def spatial_padding(x_hw, kernel_hw, strides, dilations, pad_type: str, pad) -> list[tuple[int, int]]:
    """Per spatial axis (before, after) padding for ``valid``/``same``/``same_lower``/``custom``."""
    if pad_type == "valid":
        return [(0, 0)] * len(x_hw)
    if pad_type == "custom":
        pad = [int(p) for p in pad]
        return [(pad[2 * i], pad[2 * i + 1]) for i in range(len(x_hw))]
    if pad_type in ("same", "same_lower"):
        return [same_padding(s, k, st, d, pad_type == "same_lower")
                for s, k, st, d in zip(x_hw, kernel_hw, strides, dilations)]
    raise ValueError(f"unknown pad_type {pad_type}")


def windows(x, kernel_hw, strides, dilations, padding, fill=0.0):
    """(N, C, Ho, Wo, kh, kw) view of the padded input's receptive fields."""
    x = np.pad(x, [(0, 0), (0, 0), *padding], constant_values=fill)
    (kh, kw), (sh, sw), (dh, dw) = kernel_hw, strides, dilations
    span = ((kh - 1) * dh + 1, (kw - 1) * dw + 1)
    view = sliding_window_view(x, span, axis=(2, 3))
    return view[:, :, ::sh, ::sw, ::dh, ::dw]


def conv(x, weight, bias=None, strides=(1, 1), pad_type="valid", pad=(0, 0, 0, 0), dilations=(1, 1), groups=1):
    """x (N, C_in, H, W), weight (C_out, C_in/groups, kh, kw) -> (N, C_out, Ho, Wo)."""
    groups = int(groups)
    c_out, c_in_g, kh, kw = weight.shape
    padding = spatial_padding(x.shape[2:], (kh, kw), strides, dilations, pad_type, pad)
    win = windows(x, (kh, kw), strides, dilations, padding)
    if groups == 1:
        y = np.tensordot(win, weight, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)
    elif c_in_g == 1 and c_out == groups:  # depthwise: one filter per channel
        y = np.einsum("nchwij,cij->nchw", win, weight[:, 0])
    else:
        c_out_g = c_out // groups
        parts = [np.tensordot(win[:, g * c_in_g:(g + 1) * c_in_g], weight[g * c_out_g:(g + 1) * c_out_g],
                              axes=([1, 4, 5], [1, 2, 3])) for g in range(groups)]
        y = np.concatenate(parts, axis=-1).transpose(0, 3, 1, 2)
    if bias is not None:
        y = y + bias.reshape(1, -1, 1, 1)
    return np.ascontiguousarray(y)


def conv_transpose(x, weight, bias=None, pad=(0, 0, 0, 0), output_shape=None, pad_type="valid",
                   strides=(1, 1), dilations=(1, 1), groups=1):
    """x (N, C_in, H, W), weight (C_in, C_out/groups, kh, kw): every input pixel
    scatters its kernel into the full output, which padding then crops."""
    groups = int(groups)
    n, c_in, h, w = x.shape
    _, c_out_g, kh, kw = weight.shape
    (sh, sw), (dh, dw) = strides, dilations
    full = np.zeros((n, c_out_g * groups, (h - 1) * sh + (kh - 1) * dh + 1, (w - 1) * sw + (kw - 1) * dw + 1),
                    np.float32)
    c_in_g = c_in // groups
    for g in range(groups):
        xs, ws = x[:, g * c_in_g:(g + 1) * c_in_g], weight[g * c_in_g:(g + 1) * c_in_g]
        cols = np.tensordot(xs, ws, axes=([1], [0]))  # (N, H, W, C_out_g, kh, kw)
        for i in range(kh):
            for j in range(kw):
                full[:, g * c_out_g:(g + 1) * c_out_g, i * dh:i * dh + (h - 1) * sh + 1:sh,
                     j * dw:j * dw + (w - 1) * sw + 1:sw] += cols[..., i, j].transpose(0, 3, 1, 2)
    crop = _transpose_crop(full.shape[2:], (h, w), (sh, sw), pad_type, pad, output_shape)
    (t, b), (left, r) = crop
    y = full[:, :, t:full.shape[2] - b, left:full.shape[3] - r]
    if bias is not None:
        y = y + bias.reshape(1, -1, 1, 1)
    return np.ascontiguousarray(y)


def _transpose_crop(full_hw, in_hw, strides, pad_type, pad, output_shape):
    if pad_type == "custom":
        pad = [int(p) for p in pad]
        return [(pad[0], pad[1]), (pad[2], pad[3])]
    if pad_type == "valid" and output_shape is None:
        return [(0, 0), (0, 0)]
    target = list(output_shape[2:]) if output_shape is not None else [s * st for s, st in zip(in_hw, strides)]
    crops = []
    for f, t in zip(full_hw, target):
        total = max(int(f) - int(t), 0)
        # ``same`` crops like the forward conv pads: the odd pixel comes off the end
        crops.append((total // 2, total - total // 2) if pad_type != "valid" else (0, total))
    return crops


def pool(x, kind, kernel_sizes, strides, pad_type, pad, exclude_padding_from_average=False, ceil_mode=False):
    """max or average pooling; padding never wins a max and is excluded from an
    average only when the op says so."""
    if ceil_mode:
        raise ValueError("ceil_mode pooling")
    ones = (1,) * len(kernel_sizes)
    padding = spatial_padding(x.shape[2:], kernel_sizes, strides, ones, pad_type, pad)
    if kind == "max":
        return windows(x, kernel_sizes, strides, ones, padding, fill=-np.inf).max(axis=(-2, -1))
    sums = windows(x, kernel_sizes, strides, ones, padding).sum(axis=(-2, -1))
    if exclude_padding_from_average:
        counts = windows(np.ones((1, 1, *x.shape[2:]), np.float32), kernel_sizes, strides, ones,
                         padding).sum(axis=(-2, -1))
        return sums / counts
    return sums / float(np.prod(kernel_sizes))


def resize_bilinear(x, out_h: int, out_w: int, align_corners: bool):
    """Bilinear resampling; ``align_corners`` maps corner pixels onto corner pixels,
    otherwise pixel centres are aligned (half-pixel)."""
    def coords(n_out, n_in):
        if align_corners and n_out > 1:
            return np.arange(n_out) * (n_in - 1) / (n_out - 1)
        return np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    ys, xs = coords(out_h, x.shape[2]), coords(out_w, x.shape[3])
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, x.shape[2] - 1), np.minimum(x0 + 1, x.shape[3] - 1)
    wy, wx = (ys - y0)[:, None], (xs - x0)[None, :]
    top = x[:, :, y0][:, :, :, x0] * (1 - wx) + x[:, :, y0][:, :, :, x1] * wx
    bottom = x[:, :, y1][:, :, :, x0] * (1 - wx) + x[:, :, y1][:, :, :, x1] * wx
    return top * (1 - wy) + bottom * wy

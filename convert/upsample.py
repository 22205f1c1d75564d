"""Rewrite HED's upsampling transposed convs as sub-pixel convs, exactly.

A ``Conv2DTranspose`` with kernel 2s, stride s and 'same' padding gives each
output pixel contributions from at most three neighbouring input pixels per
axis. So it equals a 3x3 ``Conv2D`` on the low-resolution input with s² phase
channels per output channel, followed by ``DepthToSpace(s)``. TFLite runs
TRANSPOSE_CONV with a 32x32 kernel slowly (about 1 ms each at 256² for ~0.3 M
mult-adds on one x86 core); the rewrite leaves the maths unchanged and lets
XNNPACK take the conv. Weights are rearranged, not retrained.
"""
import numpy as np

from edgepipe.base.backend import layers
from edgepipe.base.custom_layers import DepthToSpace
from edgepipe.mobile_models.graph import rebuild


def _rewritable(layer) -> bool:
    if type(layer) is not layers.Conv2DTranspose:
        return False
    (kh, kw), (sh, sw) = layer.kernel_size, layer.strides
    return (layer.padding == "same" and sh == sw and sh % 2 == 0 and kh == kw == 2 * sh
            and tuple(layer.dilation_rate) == (1, 1) and layer.data_format == "channels_last")


def subpixel_weights(kernel: np.ndarray, bias: np.ndarray, s: int) -> list[np.ndarray]:
    """Conv2DTranspose kernel (2s, 2s, c_out, c_in) -> Conv2D kernel (3, 3, c_in, s*s*c_out).

    Transposed conv: out[y] = sum_i in[i] * w[y - i*s + s/2]. With y = q*s + r and
    input offset d = i - q in {-1, 0, 1}, the tap is w[r + s/2 - d*s] when that
    index lies in [0, 2s). DepthToSpace reads channel (ry*s + rx)*c_out + c.
    """
    _, _, c_out, c_in = kernel.shape
    conv = np.zeros((3, 3, c_in, s * s * c_out), np.float32)
    for ry in range(s):
        for rx in range(s):
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    ky, kx = ry + s // 2 - dy * s, rx + s // 2 - dx * s
                    if 0 <= ky < 2 * s and 0 <= kx < 2 * s:
                        channels = slice((ry * s + rx) * c_out, (ry * s + rx + 1) * c_out)
                        conv[dy + 1, dx + 1, :, channels] = kernel[ky, kx].T
    return [conv, np.tile(bias, s * s).astype(np.float32)]


def transposed_to_subpixel(model):
    """A new functional model with every rewritable Conv2DTranspose replaced by
    Conv2D(3x3) -> DepthToSpace; the DepthToSpace keeps the original layer name."""
    targets = {layer.name: layer for layer in model.layers if _rewritable(layer)}
    if not targets:
        return model
    config = model.get_config()
    entries = []
    for entry in config["layers"]:
        layer = targets.get(entry["name"])
        if layer is None:
            entries.append(entry)
            continue
        s, phases = layer.strides[0], f"{layer.name}_phases"
        conv = layers.Conv2D(s * s * layer.filters, 3, padding="same", name=phases,
                             activation=layer.get_config()["activation"])  # elementwise: commutes with the shuffle
        entries.append({"class_name": "Conv2D", "config": conv.get_config(), "name": phases,
                        "inbound_nodes": entry["inbound_nodes"]})
        shuffle = DepthToSpace(s, name=layer.name)
        entries.append({"class_name": "edgepipe>DepthToSpace", "config": shuffle.get_config(), "name": layer.name,
                        "inbound_nodes": [[[phases, 0, 0, {}]]]})
    config["layers"] = entries
    weights = {}
    for name, src in targets.items():
        w = src.get_weights()
        weights[f"{name}_phases"] = subpixel_weights(w[0], w[1] if src.use_bias else np.zeros(src.filters),
                                                     src.strides[0])
    return rebuild(model, config, weights, custom_objects={"DepthToSpace": DepthToSpace})

"""Channel pruning that makes the network smaller, not just sparser.

Filters are ranked by the L1 norm of their kernel (Li et al. 2017, "Pruning
Filters for Efficient ConvNets"; CondenseNet's criterion) and the weakest are
removed: the model is rebuilt from its config with fewer ``filters`` and the
surviving weights are sliced in, so MACs, parameters and latency all fall.

A conv is prunable only when its output reaches, through channel-wise layers
alone (BN, activations, depthwise convs, padding, pooling, dropout), only
Conv2D, Conv2DTranspose or Dense layers, each of which then drops the matching
input channels. A path that touches an Add, Concatenate, split, reshape,
depth-to-space or the model output is left alone, so residuals, concats and
ShuffleNet's channel splits stay consistent without special cases: MobileNetV2
loses expansion channels, MobileNet v1 pointwise outputs, ShuffleNet v2 the
middle channels of each branch.

HED: a stage whose output feeds both the next stage and a side head (``dsnK``,
a 1x1 conv) loses channels in both readers, so its stem convs and the
expansions and single-block projections of its inverted residuals shrink. The
side heads themselves are one channel wide and stay so; their upsamplers
(transposed, or sub-pixel conv + depth-to-space) and the fuse over the
concatenated sides are never on a pruned path, so side outputs, upsamplers and
fuse keep their shapes, and the export's rewrites (``convert.upsample``,
``convert.fuse_pyramid``) apply to the pruned model unchanged.
"""
import numpy as np

from edgepipe.base.backend import layers
from edgepipe.mobile_models.graph import consumers
from edgepipe.base.errors import EdgePipeError

# Layers that map channel c to channel c and nothing else.
CHANNEL_WISE = (layers.BatchNormalization, layers.ReLU, layers.Activation, layers.DepthwiseConv2D,
                layers.ZeroPadding2D, layers.MaxPooling2D, layers.AveragePooling2D, layers.Dropout,
                layers.GlobalAveragePooling2D, layers.GlobalMaxPooling2D, layers.LeakyReLU)
ROUND_TO = 8  # XNNPACK/NEON kernels process channels in blocks of 4-16: keep multiples of 8


def check_ratio(ratio: float):
    if not 0.0 <= ratio < 1.0:
        raise EdgePipeError(f"channel pruning ratio must be in [0, 1), got {ratio}")


def kept_channels(n: int, ratio: float) -> int:
    """Channels kept of ``n`` when removing ``ratio`` of them. Never more removed than
    asked: the removed count rounds down, the kept count rounds up to a multiple of 8
    (not above ``n``); layers that would keep 4 or fewer keep the exact count (>= 1)."""
    keep = max(1, n - int(np.floor(ratio * n + 1e-9)))  # 1e-9: 0.3 * 10 is 3.0000000000000004
    return min(n, -(-keep // ROUND_TO) * ROUND_TO) if keep > ROUND_TO // 2 else keep


def _plain_conv(layer) -> bool:
    return type(layer) is layers.Conv2D and layer.groups == 1 and layer.data_format == "channels_last"


def _consumer_ok(layer) -> bool:
    """A layer that can drop input channels: a plain conv, a transposed conv (an upsampler) or a Dense."""
    transposed = type(layer) is layers.Conv2DTranspose and layer.data_format == "channels_last"
    return _plain_conv(layer) or transposed or type(layer) is layers.Dense


def _channel_wise(layer) -> bool:
    if not isinstance(layer, CHANNEL_WISE):
        return False
    if isinstance(layer, layers.Activation):  # softmax mixes channels
        return layer.get_config()["activation"] not in ("softmax", "log_softmax")
    if isinstance(layer, layers.DepthwiseConv2D):
        return layer.depth_multiplier == 1
    if isinstance(layer, layers.BatchNormalization):
        return layer.axis in ([-1], [3], -1, 3)
    return getattr(layer, "data_format", "channels_last") == "channels_last"


def prunable_groups(model) -> list[dict]:
    """Each prunable conv with the channel-wise layers behind it and its consumers
    (the layers that read its channels and must drop the same ones)."""
    readers = consumers(model)
    outputs = set(model.output_names)
    groups = []
    for conv in model.layers:
        if not _plain_conv(conv) or len(conv._inbound_nodes) != 1:
            continue
        path, frontier, ends, ok = [], [conv], [], True
        while frontier and ok:
            layer = frontier.pop()
            if layer.name in outputs:
                ok = False
            for nxt in readers.get(layer.name, []):
                if len(nxt._inbound_nodes) != 1:  # a shared layer sees other tensors too
                    ok = False
                elif _consumer_ok(nxt):
                    ends.append(nxt)
                elif _channel_wise(nxt):
                    path.append(nxt)
                    frontier.append(nxt)
                else:
                    ok = False
        if ok and ends:
            groups.append({"conv": conv, "path": path, "consumers": ends})
    return groups


def l1_importance(conv) -> np.ndarray:
    """L1 norm of each output filter (kernel is (kh, kw, c_in, c_out))."""
    return np.abs(conv.get_weights()[0]).sum(axis=(0, 1, 2))


def _take(w, idx, axis):
    return w if idx is None else np.take(w, idx, axis=axis)


def _slice(layer, weights, cin=None, cout=None):
    """``layer``'s weights with input channels ``cin`` and output channels ``cout`` kept."""
    if isinstance(layer, layers.DepthwiseConv2D):  # (kh, kw, c, 1) and bias (c,)
        return [_take(w, cout, 2 if w.ndim == 4 else 0) for w in weights]
    if isinstance(layer, layers.BatchNormalization):
        return [_take(w, cout, 0) for w in weights]
    if isinstance(layer, layers.Conv2DTranspose):  # (kh, kw, c_out, c_in) and bias (c_out,)
        return [_take(_take(weights[0], cin, 3), cout, 2), *[_take(b, cout, 0) for b in weights[1:]]]
    if isinstance(layer, layers.Conv2D):  # (kh, kw, c_in, c_out) and bias (c_out,)
        return [_take(_take(weights[0], cin, 2), cout, 3), *[_take(b, cout, 0) for b in weights[1:]]]
    if isinstance(layer, layers.Dense):  # (c_in, units): only the inputs change
        return [_take(weights[0], cin, 0), *weights[1:]]
    return weights


def prune_channels(model, ratio: float):
    """A new, narrower model with ``ratio`` of each prunable conv's filters removed
    (lowest L1 first), and a table of rows {layer, before, after, consumer} (the
    consumers' names, comma-separated)."""
    check_ratio(ratio)
    if not getattr(model, "_is_graph_network", False):
        raise EdgePipeError("channel pruning needs a functional or sequential Keras model")
    groups = prunable_groups(model)
    keep, cin, cout, rows = {}, {}, {}, []
    for g in groups:
        conv = g["conv"]
        n = conv.filters
        k = kept_channels(n, ratio)
        # the k largest L1 norms, in their original order (stable for ties)
        idx = np.sort(np.argsort(-l1_importance(conv), kind="stable")[:k])
        keep[conv.name] = k
        cout[conv.name] = idx
        for layer in g["path"]:
            cout[layer.name] = idx
        for consumer in g["consumers"]:
            cin[consumer.name] = idx
        rows.append({"layer": conv.name, "before": n, "after": k,
                     "consumer": ", ".join(c.name for c in g["consumers"])})
    config = model.get_config()
    for entry in config["layers"]:
        entry.pop("build_config", None)  # stale input shapes; layers rebuild from their inputs
        if entry["config"]["name"] in keep:
            entry["config"]["filters"] = keep[entry["config"]["name"]]
    pruned = model.__class__.from_config(config)
    for layer in pruned.layers:
        weights = model.get_layer(layer.name).get_weights()
        if weights:
            layer.set_weights(_slice(layer, weights, cin.get(layer.name), cout.get(layer.name)))
    return pruned, rows


def fine_tune(model, x, y, loss, steps: int, batch_size: int = 32, learning_rate: float = 1e-3):
    """A few steps of plain training so the remaining channels take over."""
    from edgepipe.train.finetune import fit_steps
    return fit_steps(model, x, y, loss, steps, batch_size, learning_rate)

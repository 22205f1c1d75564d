"""Rewrite HED's fuse layer as a pyramid of sums and 2x depth-to-space steps, exactly.

After ``convert.upsample``, side k is ``DepthToSpace(b_k)`` of a linear conv
with b_k² phase channels, and the fuse is a 1x1 conv over the concatenation of
the full-resolution sides: ``fuse = bias + sum_k w_k * side_k``. Every step is
linear, so

    fuse = w_1 side_1 + D2S_2(w_2 P_2 + D2S_2(w_3 P_3 + D2S_2(w_4 P_4 + D2S_2(w_5 P_5)))) + bias

once each phase conv's output channels are permuted so that repeated 2x steps
place them where one ``D2S(b)`` would, and scaled by its fuse weight. The
phone then rearranges one 1-channel map at full resolution instead of four,
and skips the 5-channel concat and the 1x1 conv over it: the HED tail spent
about 1.4 of 10.4 ms there on one x86 core (prefix timing).
"""
import numpy as np

from edgepipe.base.backend import layers, tf
from edgepipe.base.custom_layers import DepthToSpace
from edgepipe.mobile_models.graph import rebuild, sole_reader


def d2s_permutation(block: int) -> np.ndarray:
    """Channel order ``p`` with ``D2S_2^n(x[..., p]) == D2S_block(x)`` for a 1-channel result."""
    index = np.arange(block * block, dtype=np.float32).reshape(1, 1, 1, -1)
    once = tf.nn.depth_to_space(index, block).numpy().ravel()
    steps = index
    while steps.shape[-1] > 1:
        steps = tf.nn.depth_to_space(steps, 2)
    steps = steps.numpy().ravel().astype(int)
    perm = np.empty(block * block, int)
    perm[steps] = once.astype(int)  # position holding channel steps[i] must hold channel once[i]
    return perm


def _linear(layer) -> bool:
    return layer.get_config().get("activation", "linear") == "linear"


def _side_source(layer, sole, concat):
    """(phase conv, block, layers between it and the concat) behind one input
    of the fuse concat, or None if that input is not a linear side."""
    dropped, user = [], concat
    while isinstance(layer, layers.Activation) and _linear(layer) and sole(layer) is user:
        dropped.append(layer)
        user, layer = layer, layer._inbound_nodes[0].inbound_layers
    block = 1
    if isinstance(layer, DepthToSpace) and sole(layer) is user:
        dropped.append(layer)
        block, user, layer = layer.block, layer, layer._inbound_nodes[0].inbound_layers
    ok = (type(layer) is layers.Conv2D and _linear(layer) and layer.filters == block * block
          and sole(layer) is user and block & (block - 1) == 0)
    return (layer, block, dropped) if ok else None


def find_pyramid(model):
    """(fuse conv, [(phase conv, block), ...], layers to drop) for HED's fuse, or None."""
    sole = sole_reader(model)
    for concat in model.layers:
        fuse = sole(concat) if isinstance(concat, layers.Concatenate) else None
        if not (type(fuse) is layers.Conv2D and fuse.kernel_size == (1, 1) and fuse.filters == 1
                and _linear(fuse) and fuse.strides == (1, 1)):
            continue
        inputs = concat._inbound_nodes[0].inbound_layers
        sides = [_side_source(s, sole, concat) for s in inputs]
        blocks = sorted({s[1] for s in sides if s})
        if all(sides) and blocks and len(sides) == len(inputs):
            dropped = [concat.name] + [d.name for s in sides for d in s[2]]
            return fuse, [(s[0], s[1]) for s in sides], dropped
    return None


def fuse_pyramid(model):
    """A new functional model with HED's fuse rewritten as the pyramid; the last
    Add keeps the fuse conv's name, so consumers and drill-down names still match."""
    found = find_pyramid(model)
    if found is None:
        return model
    fuse, sides, dropped = found
    w = fuse.get_weights()
    fuse_w, fuse_b = w[0].ravel(), (w[1] if fuse.use_bias else np.zeros(1, np.float32))
    config = model.get_config()
    at = [e["name"] for e in config["layers"]].index(fuse.name)  # sides come before it, its readers after
    before = [e for e in config["layers"][:at] if e["name"] not in set(dropped)]
    after = config["layers"][at + 1:]
    by_block = {}
    for conv, block in sides:
        by_block.setdefault(block, []).append(conv.name)
    top = max(by_block)
    current, block, added = None, top, []
    while block >= 1:
        terms = ([current] if current else []) + by_block.get(block, [])
        name = fuse.name if block == 1 else f"{fuse.name}_sum{block}"
        if len(terms) > 1:
            added.append(("Add", layers.Add(name=name), terms))
            current = name
        elif block == 1:  # a lone full-resolution term: keep the name for the consumers
            added.append(("Activation", layers.Activation("linear", name=name), terms))
            current = name
        else:
            current = terms[0]
        if block > 1:
            up = f"{fuse.name}_up{block // 2}"
            added.append(("edgepipe>DepthToSpace", DepthToSpace(2, name=up), [current]))
            current = up
        block //= 2
    config["layers"] = before + [
        {"class_name": class_name, "config": layer.get_config(), "name": layer.name,
         "inbound_nodes": [[[t, 0, 0, {}] for t in terms]]} for class_name, layer, terms in added] + after
    for e in config["layers"]:
        if any(e["name"] == conv.name for conv, _ in sides):
            e["config"]["use_bias"] = True  # it takes the fuse bias or its scaled own
    bias_to = min(sides, key=lambda s: s[1])[0].name  # a finest side: its phases cover every pixel
    weights = {}
    for i, (conv, block) in enumerate(sides):
        src, s = conv.get_weights(), float(fuse_w[i])
        perm = d2s_permutation(block) if block > 1 else np.arange(1)
        bias = (src[1][perm] if len(src) > 1 else np.zeros(block * block, np.float32)) * s
        bias = bias + (fuse_b[0] if conv.name == bias_to else 0.0)
        weights[conv.name] = [(src[0][..., perm] * s).astype(np.float32), bias.astype(np.float32)]
    return rebuild(model, config, weights, custom_objects={"DepthToSpace": DepthToSpace})


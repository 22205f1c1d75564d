"""Drop a channel shuffle whose readers can take the permutation in their weights.

A shuffle (Reshape (h, w, g, n) -> Permute -> Reshape (h, w, c)) only reorders
channels. A Conv2D reading it gives the same result from the unshuffled tensor
with its kernel's input channels reordered; a depthwise conv reorders its own
channels and hands the reordering on to the convs reading it. So the shuffle
that ends each ShuffleNet v2 stage, read by the next stage's first unit (or by
conv5), costs nothing once exported. A transpose with a 2-wide inner axis runs
at a fraction of copy speed in LiteRT. Shuffles read by a channel split stay.
"""
import numpy as np

from edgepipe.base.backend import layers
from edgepipe.mobile_models.graph import consumers, drop_layers, inbound_layers, output_layers, rebuild, sole_reader


def shuffle_permutation(groups: int, channels: int) -> np.ndarray:
    """``perm`` with shuffle(x)[..., c] == x[..., perm[c]] (ShuffleNet's g x n transpose)."""
    return np.arange(channels).reshape(groups, channels // groups).T.reshape(-1)


def _shuffle_at(reshape, reader):
    """(first reshape, permute, groups) when ``reshape`` ends a channel shuffle."""
    permute = inbound_layers(reshape)[0] if len(inbound_layers(reshape)) == 1 else None
    if not isinstance(permute, layers.Permute) or tuple(permute.dims) != (1, 2, 4, 3) or reader(permute) is not reshape:
        return None
    first = inbound_layers(permute)[0]
    if not isinstance(first, layers.Reshape) or reader(first) is not permute or len(first.target_shape) != 4:
        return None
    if tuple(reshape.output_shape[1:]) != tuple(first.input_shape[1:]):
        return None
    return first, permute, first.target_shape[2]


def _absorbers(readers, outputs, layer) -> list | None:
    """The layers whose weights take a channel permutation of ``layer``'s output:
    [(Conv2D, "input")] or [(DepthwiseConv2D, "channels"), (its Conv2D readers...)]."""
    found = []
    for r in readers.get(layer.name, []):
        if type(r) is layers.Conv2D and r.groups == 1:
            found.append((r, "input"))
        elif type(r) is layers.DepthwiseConv2D and r.depth_multiplier == 1 and r.name not in outputs:
            below = _absorbers(readers, outputs, r)
            if below is None or any(kind != "input" for _, kind in below):
                return None
            found += [(r, "channels"), *below]
        else:
            return None
    return found or None


def absorb_shuffles(model):
    """A new model without the channel shuffles its convs can absorb (exact)."""
    reader, readers = sole_reader(model), consumers(model)
    outputs = output_layers(model)
    replaced, inverse = {}, {}  # dropped layer -> its replacement; absorbing layer -> inverse permutation
    for layer in model.layers:
        if not isinstance(layer, layers.Reshape) or layer.name in outputs:
            continue
        shuffle = _shuffle_at(layer, reader)
        absorbers = _absorbers(readers, outputs, layer) if shuffle else None
        if not absorbers or any(a.name in inverse for a, _ in absorbers):
            continue
        first, permute, groups = shuffle
        source = inbound_layers(first)[0]
        if isinstance(source.output, list):  # a reader would need the right one of several outputs
            continue
        source = source.name
        inv = np.argsort(shuffle_permutation(groups, layer.output_shape[-1]))
        replaced |= {first.name: source, permute.name: source, layer.name: source}
        inverse |= {a.name: (kind, inv) for a, kind in absorbers}
    if not replaced:
        return model
    weights = {}
    for name, (kind, inv) in inverse.items():
        kernel, *rest = model.get_layer(name).get_weights()
        weights[name] = [kernel[:, :, inv, :]] + ([r[inv] for r in rest] if kind == "channels" else rest)
    return rebuild(model, drop_layers(model.get_config(), replaced), weights)

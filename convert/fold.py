"""Fold BatchNormalization into the preceding convolution.

The seed's iPhone profile lost 35% of its frame time to unfolded BN. We fold
in Keras, before any converter sees the model, so every format gets the same
folded graph: the functional config is rewritten (BN removed, its consumers
rewired to the conv, the conv given a bias) and the folded weights are set.
A BN folds into a conv used only by it, or through a concat of such convs
(ShuffleNet v1's grouped 1x1 convs); any other BN is left alone.
"""
import numpy as np

from edgepipe.base.backend import keras, layers
from edgepipe.mobile_models.graph import drop_layers, flatten, rebuild, sole_reader

FOLDABLE = (layers.Conv2D, layers.DepthwiseConv2D)  # Conv2DTranspose is a Conv2D subclass


def _foldable_pairs(model):
    """BN name -> (the layer it is removed in favour of, [(conv, first channel), ...]).

    A BN folds into a conv used only by it, or, through a channel concat used
    only by it, into every conv feeding that concat (ShuffleNet v1's grouped
    1x1 convs): each conv takes its slice of the BN's scale and shift."""
    reader = sole_reader(model)

    pairs = {}
    for layer in model.layers:
        if (not isinstance(layer, layers.BatchNormalization) or len(layer._inbound_nodes) != 1
                or layer.axis not in ([-1], [3], -1, 3)):
            continue
        src = layer._inbound_nodes[0].inbound_layers
        if _linear_conv(src) and reader(src) is layer:
            pairs[layer.name] = (src, [(src, 0)])
        elif isinstance(src, layers.Concatenate) and src.axis in (-1, 3) and reader(src) is layer:
            parts = src._inbound_nodes[0].inbound_layers
            if all(_linear_conv(p) and reader(p) is src for p in parts):
                offsets = np.cumsum([0] + [p.output_shape[-1] for p in parts])[:-1]
                pairs[layer.name] = (src, list(zip(parts, offsets.tolist())))
    return pairs


def _linear_conv(layer) -> bool:
    """A conv whose output is its affine map: one with its own activation
    (Conv2D(activation="relu") then BN, as users write it) has a non-linearity between,
    and a BN after it cannot move into its weights."""
    return isinstance(layer, FOLDABLE) and layer.get_config().get("activation", "linear") == "linear"


def _rewire(config, pairs):
    folded_convs = {conv.name for _, convs in pairs.values() for conv, _ in convs}
    for l in config["layers"]:
        if l["name"] in folded_convs:
            l["config"]["use_bias"] = True
    return drop_layers(config, {bn: target.name for bn, (target, _) in pairs.items()})


def _folded_weights(conv, bn, first: int = 0):
    """The conv's kernel and bias with the BN's channels [first, first + filters) folded in."""
    gamma, beta, mean, var = (p[first:first + conv.output_shape[-1]] for p in _bn_params(bn))
    scale = gamma / np.sqrt(var + bn.epsilon)
    w = conv.get_weights()
    kernel, bias = w[0], (w[1] if conv.use_bias else np.zeros_like(mean))
    if isinstance(conv, layers.DepthwiseConv2D):  # (kh, kw, c, mult): out channel = c * mult + m
        kernel = kernel * scale.reshape(kernel.shape[2], kernel.shape[3])
    elif isinstance(conv, layers.Conv2DTranspose):  # (kh, kw, out, in)
        kernel = kernel * scale[None, None, :, None]
    else:
        kernel = kernel * scale
    return [kernel.astype(np.float32), ((bias - mean) * scale + beta).astype(np.float32)]


def _bn_params(bn):
    params = dict(zip([w.name.split("/")[-1].split(":")[0] for w in bn.weights], bn.get_weights()))
    n = params["moving_mean"].shape[0]
    return (params.get("gamma", np.ones(n, np.float32)), params.get("beta", np.zeros(n, np.float32)),
            params["moving_mean"], params["moving_variance"])


def fold_batchnorm(model) -> "keras.Model":
    """A new functional model with every foldable BN merged into its conv."""
    if isinstance(model, keras.Sequential):  # the rewrite reads a functional config
        model = flatten(model)
    pairs = _foldable_pairs(model)
    if not pairs:
        return model
    folded = {conv.name: _folded_weights(conv, model.get_layer(bn), first)
              for bn, (_, convs) in pairs.items() for conv, first in convs}
    return rebuild(model, _rewire(model.get_config(), pairs), folded)


def count_batchnorm(model) -> int:
    return sum(isinstance(l, layers.BatchNormalization) for l in model.layers)


def export_graph(model):
    """The graph every exporter gets: one flat functional graph (Sequential and
    nested models inlined and their inference no-ops dropped, since the rewrites
    read a functional config: mobile_models.graph.flatten), BN folded into its
    convs, channel shuffles that convs can absorb dropped (convert.shuffle),
    HED's transposed-conv upsamplers rewritten as sub-pixel convs
    (convert.upsample) and its fuse as a pyramid of sums and 2x depth-to-space
    steps (convert.fuse_pyramid). All exact; all remove work the phone would do."""
    from edgepipe.convert.fuse_pyramid import fuse_pyramid
    from edgepipe.convert.shuffle import absorb_shuffles
    from edgepipe.convert.upsample import transposed_to_subpixel
    return fuse_pyramid(transposed_to_subpixel(absorb_shuffles(fold_batchnorm(flatten(model)))))


def roofline_graph(exported):
    """The least work any of our exports does: an ``export_graph`` result with
    grouped convs merged as the TFLite writer merges them. Its profile gives the
    roofline bound's per-layer costs (no split or concat copies counted)."""
    from edgepipe.convert.grouped import merge_groups
    return merge_groups(exported)

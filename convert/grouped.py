"""GroupSplit -> one Conv2D per group -> Concatenate  =>  one Conv2D(groups=g).

Exact: the grouped conv's kernel is the per-group kernels side by side on the
output axis. LiteRT runs a grouped CONV_2D as one XNNPACK op, without the split
and concat copies (ShuffleNet v1 g=3 at 224: 12% faster). Only the TFLite
writer applies it: tf2onnx and Core ML's TF frontend both fail on a grouped
Conv2D (it traces to a PartitionedCall), so ShuffleNet v1 builds its grouped
convs from parts (mobile_models.custom_layers.GroupSplit).
"""
import numpy as np

from edgepipe.base.backend import layers
from edgepipe.base.custom_layers import GroupSplit
from edgepipe.mobile_models.graph import consumers, output_layers, rebuild, sole_reader

_SAME = ("filters", "kernel_size", "strides", "padding", "dilation_rate", "activation", "use_bias", "groups",
         "data_format")  # a grouped conv's groups are alike: equal widths (a channel-pruned group may differ)


def _group_sites(model, entries: dict) -> list:
    """(split, [conv of group 0, 1, ...], concat) wherever the pattern is exact:
    group i's conv alone reads the split's output i, and the concat reads only them, in order."""
    reader, readers = sole_reader(model), consumers(model)
    outputs = output_layers(model)
    sites = []
    for split in (l for l in model.layers if isinstance(l, GroupSplit) and l.name not in outputs):
        convs = [None] * split.parts
        for layer in readers.get(split.name, []):
            node = entries[layer.name]["inbound_nodes"]
            if len(node) == 1 and len(node[0]) == 1:
                convs[node[0][0][2]] = layer
        if (len(readers.get(split.name, [])) != split.parts
                or any(c is None or type(c) is not layers.Conv2D for c in convs)):
            continue
        concat = reader(convs[0])
        if (isinstance(concat, layers.Concatenate) and concat.axis in (-1, 3)
                and [n[0] for n in entries[concat.name]["inbound_nodes"][0]] == [c.name for c in convs]
                and all(reader(c) is concat and _same(c, convs[0]) for c in convs)):
            sites.append((split, convs, concat))
    return sites


def _same(conv, first) -> bool:
    c, f = conv.get_config(), first.get_config()
    return c["groups"] == 1 and all(c[k] == f[k] for k in _SAME)


def merge_groups(model):
    """A new model with every per-group conv triple merged into a grouped Conv2D
    named after the concat it replaces (its readers are rewired to it)."""
    if not any(isinstance(layer, GroupSplit) for layer in model.layers):
        return model  # nothing to merge (and a Sequential config has no graph to rewire)
    config = model.get_config()
    entries = {e["name"]: e for e in config["layers"]}
    sites = _group_sites(model, entries)
    if not sites:
        return model
    merged, weights = {}, {}  # concat name -> config entry of the grouped conv; -> its weights
    for split, convs, concat in sites:
        conv_config = convs[0].get_config() | {"name": concat.name, "groups": split.parts,
                                               "filters": sum(c.filters for c in convs)}
        merged[concat.name] = {"class_name": "Conv2D", "config": conv_config, "name": concat.name,
                               "inbound_nodes": entries[split.name]["inbound_nodes"]}
        weights[concat.name] = [np.concatenate(w, axis=-1) for w in zip(*(c.get_weights() for c in convs))]
    dropped = {l.name for split, convs, _ in sites for l in (split, *convs)}
    config["layers"] = [merged.get(e["name"], e) for e in config["layers"] if e["name"] not in dropped]
    return rebuild(model, config, weights)

"""Model profiler: parameters, mult-adds, memory-access cost and peak activation
memory per layer, plus ShuffleNet v2's practical guidelines G1-G4.

Definitions (all counts in elements, batch 1):
- MACs (mult-adds): conv = h_out*w_out*k_h*k_w*(c_in/g)*c_out; depthwise =
  h_out*w_out*k_h*k_w*c*m; transposed conv = h_in*w_in*k_h*k_w*c_in*c_out;
  dense = n_in*n_out. BN, bias and element-wise ops count 0, as in the papers.
- MAC (memory-access cost, ShuffleNet v2 sec. 2): inputs read + outputs written
  + weights read; for a 1x1 conv this is hw(c1+c2) + c1*c2/g.
- Peak activation memory: the most float32 bytes alive at once when layers run
  in order and a tensor is freed after its last consumer.
"""
from dataclasses import asdict, dataclass

import numpy as np

from edgepipe.base.backend import layers

# Layers a runtime fuses into their producer (activations) or runs as a view
# (reshape): no memory traffic of their own in a roofline bound.
FUSED_OR_VIEW = ("InputLayer", "ReLU", "Activation", "Reshape", "Flatten", "Dropout")

ELEMENTWISE = (layers.Add, layers.Multiply, layers.ReLU, layers.Activation, layers.BatchNormalization,
               layers.Average, layers.Subtract)


@dataclass
class LayerProfile:
    name: str
    kind: str
    output_shape: list
    params: int
    macs: int
    mac: int


def _shapes(t):
    """A layer's input or output shapes as a list; unknown ones (a string input's) dropped."""
    return [s for s in (t if isinstance(t, list) else [t]) if s is not None]


def _elems(shape):
    return int(np.prod([d for d in shape[1:] if d is not None]))


def _layer_macs(layer, ins, outs):
    if isinstance(layer, layers.SeparableConv2D):  # a depthwise conv, then a 1x1 conv over its channels
        kh, kw = layer.kernel_size
        spread = ins[0][-1] * layer.depth_multiplier
        return _elems(outs[0]) // layer.filters * spread * (kh * kw + layer.filters)
    if isinstance(layer, layers.Conv2DTranspose):
        kh, kw = layer.kernel_size
        return _elems(ins[0]) * kh * kw * layer.filters
    if isinstance(layer, layers.DepthwiseConv2D):
        kh, kw = layer.kernel_size
        return _elems(outs[0]) * kh * kw
    if isinstance(layer, layers.Conv2D):
        kh, kw = layer.kernel_size
        return _elems(outs[0]) * kh * kw * ins[0][-1] // layer.groups
    if isinstance(layer, layers.Dense):  # on every position of an N-D input, not once
        return _elems(ins[0]) * layer.units
    if isinstance(layer, layers.Bidirectional):  # a forward and a backward pass over the sequence
        return sum(_layer_macs(rnn, ins, outs) for rnn in (layer.forward_layer, layer.backward_layer))
    if isinstance(layer, layers.RNN):
        return _recurrent_macs(layer, ins[0])
    return 0


# Gate matrices per step (each (inputs + units) x units): LSTM i, f, c, o; GRU z, r, h
RECURRENT_GATES = {"LSTM": 4, "GRU": 3, "SimpleRNN": 1}


def _recurrent_macs(layer, shape) -> int:
    """Every step multiplies the input and the last state by each gate's weights."""
    steps, features = shape[1] or 1, shape[-1]
    gates = RECURRENT_GATES.get(type(layer).__name__.removesuffix("V2"), 0)
    return steps * gates * (features + layer.units) * layer.units


def _is_nested(layer) -> bool:
    return hasattr(layer, "layers") and hasattr(layer, "inputs")


def leaf_layers(model):
    """The layers as they run: a nested model (a transfer-learning tutorial's base
    network) is its own layers, not one layer of no work."""
    for layer in model.layers:
        if _is_nested(layer):
            yield from leaf_layers(layer)
        elif not isinstance(layer, layers.InputLayer):
            yield layer


def _calls(model, layer) -> int:
    """How often ``model`` calls ``layer``: a shared layer (a siamese branch) works each time."""
    nodes = getattr(model, "_network_nodes", None)
    if not nodes:
        return 1
    return max(1, sum(f"{layer.name}_ib-{i}" in nodes for i in range(len(layer._inbound_nodes))))


def _leaves_with_calls(model, times: int = 1):
    for layer in model.layers:
        calls = times * _calls(model, layer)
        if _is_nested(layer):
            yield from _leaves_with_calls(layer, calls)
        elif not isinstance(layer, layers.InputLayer):
            yield layer, calls


def _layer_rows(model):
    for layer, calls in _leaves_with_calls(model):
        ins = [tuple(s) for s in _shapes(layer.get_input_shape_at(0))]
        outs = [tuple(s) for s in _shapes(layer.get_output_shape_at(0))]
        weights = sum(int(np.prod(w.shape)) for w in layer.weights if "bias" not in w.name)
        mac = calls * (sum(_elems(s) for s in ins) + sum(_elems(s) for s in outs)) + weights
        yield LayerProfile(layer.name, type(layer).__name__, [list(o[1:]) for o in outs],
                           layer.count_params(), int(calls * _layer_macs(layer, ins, outs)), int(mac))


def profile_model(model) -> dict:
    rows = list(_layer_rows(model))
    totals = {"params": int(model.count_params()), "macs": sum(r.macs for r in rows),
              "mac": sum(r.mac for r in rows), "peak_activation_bytes": peak_activation_bytes(model)}
    return totals | {"name": model.name, "warnings": guideline_warnings(model, rows, totals),
                     "layers": [asdict(r) for r in rows]}


def peak_activation_bytes(model) -> int:
    order = [l for l in model.layers]
    index = {l.name: i for i, l in enumerate(order)}
    last_use = {}
    for l in order:
        for node in l._inbound_nodes:
            for src in _shapes(node.inbound_layers):
                last_use[src.name] = max(last_use.get(src.name, 0), index[l.name])
    outputs = {t.node.layer.name for t in model.outputs} if hasattr(model.outputs[0], "node") else set()
    live, peak = {}, 0
    for i, l in enumerate(order):
        if _is_nested(l):  # a base network runs its own layers here: their peak, beside what lives outside
            given = sum(_elems(s) for s in _shapes(l.input_shape)) * 4  # its input, counted inside too
            peak = max(peak, sum(live.values()) - given + peak_activation_bytes(l))
        live[l.name] = sum(_elems(s) for s in _shapes(l.output_shape)) * 4
        peak = max(peak, sum(live.values()))
        for name in [n for n in live if last_use.get(n, len(order)) <= i and n not in outputs]:
            del live[name]
    return int(peak)


def guideline_warnings(model, rows, totals) -> list[str]:
    from edgepipe.base.custom_layers import GroupSplit
    # rows and leaf layers run in step (names may repeat across nested models)
    warnings, layer_of = [], {id(r): layer for r, layer in zip(rows, leaf_layers(model))}
    unequal = [r for r in rows if r.kind == "Conv2D" and r.macs and _ratio(layer_of[id(r)]) > 4
               and layer_of[id(r)].input_shape[-1] > 4]  # the RGB stem must widen
    if unequal:
        warnings.append(f"G1: {len(unequal)} 1x1/3x3 convs change width more than 4x (equal in/out widths "
                        f"minimise memory-access cost), e.g. {unequal[0].name}")
    grouped = [l.name for l in layer_of.values() if isinstance(l, GroupSplit)
               or (isinstance(l, layers.Conv2D) and getattr(l, "groups", 1) > 1)]
    if grouped:
        warnings.append(f"G2: {len(grouped)} group convolutions raise memory-access cost, e.g. {grouped[0]}")
    fragments = max([l.parts for l in layer_of.values() if isinstance(l, GroupSplit)] or [0])
    if fragments > 2:
        warnings.append(f"G3: up to {fragments} parallel branches per block fragment the network "
                        f"and reduce parallelism")
    elementwise = sum(r.mac for r in rows if isinstance(layer_of[id(r)], ELEMENTWISE))
    share = elementwise / totals["mac"] if totals["mac"] else 0.0
    if share > 0.15:
        warnings.append(f"G4: element-wise ops (ReLU, Add, BN) are {share:.0%} of memory-access cost; "
                        f"they are not free")
    return warnings


def _ratio(layer):
    c_in, c_out = layer.input_shape[-1], layer.filters
    return max(c_in, c_out) / max(min(c_in, c_out), 1)


def roofline_terms(profile: dict) -> list[list[int]]:
    """``[mult-adds, float32 bytes moved]`` per layer of a ``profile_model`` result,
    for a roofline bound: each layer needs at least the longer of its compute at
    peak and its traffic (the MAC column) at the memory bandwidth. Skipping the
    layers in FUSED_OR_VIEW keeps the sum a lower bound."""
    return [[r["macs"], 4 * r["mac"]] for r in profile["layers"] if r["kind"] not in FUSED_OR_VIEW]

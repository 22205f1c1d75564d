"""Walking a functional Keras model's graph (the rewrites, pruners and profilers share it)."""
from edgepipe.base.backend import keras, tf


def inbound_layers(layer) -> list:
    """The layers feeding ``layer``'s first call."""
    if not layer._inbound_nodes:
        return []
    inbound = layer._inbound_nodes[0].inbound_layers
    return inbound if isinstance(inbound, list) else [inbound]


def consumers(model) -> dict:
    """Layer name -> the layers that read its output, in model order. Only this model's
    nodes count: a layer shared with another model (tfmot's strip and clone reuse layers)
    also has that model's nodes."""
    out = {}
    mine = getattr(model, "_network_nodes", None)
    for layer in model.layers:
        for i, node in enumerate(layer._inbound_nodes):
            if mine is not None and f"{layer.name}_ib-{i}" not in mine:
                continue
            inbound = node.inbound_layers
            for src in inbound if isinstance(inbound, list) else [inbound]:
                out.setdefault(src.name, []).append(layer)
    return out


def output_layers(model) -> set:
    """Names of the layers whose outputs the model returns."""
    return {t.node.layer.name for t in model.outputs}


def sole_reader(model):
    """A function: layer -> the one layer that reads its output, or None when
    several do or the output is also a model output (a rewrite that changes
    that tensor would change what the model returns)."""
    outputs = output_layers(model)
    readers = consumers(model)

    def reader(layer):
        found = readers.get(layer.name, [])
        return found[0] if len(found) == 1 and layer.name not in outputs else None
    return reader


def drop_layers(config: dict, replaced: dict) -> dict:
    """A functional config without the layers named in ``replaced`` (name -> the
    layer whose output their readers take instead)."""
    def fix(obj):
        if isinstance(obj, list):
            if obj and isinstance(obj[0], str) and obj[0] in replaced:
                return [replaced[obj[0]]] + [fix(o) for o in obj[1:]]
            return [fix(o) for o in obj]
        if isinstance(obj, dict):
            return {k: fix(v) for k, v in obj.items()}
        return obj

    config["layers"] = fix([l for l in config["layers"] if l["name"] not in replaced])
    config["output_layers"] = fix(config["output_layers"])
    return config


def rebuild(model, config: dict, weights: dict, custom_objects=None):
    """A rewrite's last step: ``config`` as a model whose layers take
    ``weights[name]`` where given, else the weights of their namesake in ``model``."""
    rebuilt = keras.Model.from_config(config, custom_objects=custom_objects)
    for layer in rebuilt.layers:
        if layer.name in weights:
            layer.set_weights(weights[layer.name])
        elif layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return rebuilt


def output_activation(model, index: int = 0) -> str:
    """The activation of the layer behind output ``index`` ('linear' for logits)."""
    from edgepipe.base.layer_trace import computing_layer
    layer, kept = computing_layer(model.get_layer(model.output_names[index]), model.outputs[index].shape[-1])
    if type(layer).__name__ == "Softmax":  # a Softmax layer ends the model, not a Dense's own activation
        name = "softmax"
    else:
        name = str(layer.get_config().get("activation", "linear"))
    return "linear" if name == "softmax" and not kept else name  # a softmax over another axis: no probabilities here



# Training-time layers that return their input at inference: a user's model
# (the TF image-classification tutorial's) may start with an augmentation block.
INFERENCE_NOOPS = ("RandomFlip", "RandomRotation", "RandomZoom", "RandomContrast", "RandomTranslation",
                   "RandomBrightness", "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
                   "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization")
_AUGMENTATION = INFERENCE_NOOPS[:6]


def is_inference_noop(layer) -> bool:
    return type(layer).__name__ in INFERENCE_NOOPS


def is_nested_graph(layer) -> bool:
    """A nested Sequential or Functional model (a subclassed one has no graph to inline)."""
    return isinstance(layer, keras.Model) and (isinstance(layer, keras.Sequential) or layer._is_graph_network)


def needs_flattening(model) -> bool:
    """Sequential, nested models or augmentation layers: the graph rewrites read a
    flat functional config (a Sequential's layer entries have no names or inbound
    nodes: the tutorial model's ``KeyError: 'name'``)."""
    return isinstance(model, keras.Sequential) or any(
        is_nested_graph(l) or type(l).__name__ in _AUGMENTATION for l in model.layers)


def flatten(model):
    """``model`` as one flat functional graph of fresh layers with its weights:
    nested models inlined, inference no-ops dropped. Exact at inference."""
    if not needs_flattening(model) or not model.inputs:  # no inputs: a Sequential never built on a shape
        return model
    copies = {}  # id(original) -> (original, copy): a shared layer stays shared
    used = set(model.input_names)  # layer names taken
    inputs = [keras.Input(shape=t.shape[1:], batch_size=t.shape[0], dtype=t.dtype, name=n)
              for t, n in zip(model.inputs, model.input_names)]
    outputs = _inline(model, inputs, copies, used)
    for tensor, name in zip(tf.nest.flatten(outputs), model.output_names):
        layer = tensor._keras_history.layer
        if layer.name != name and name not in used and not isinstance(layer, keras.layers.InputLayer):
            layer._name = name  # readers find outputs by the original's names
    flat = keras.Model(inputs, outputs, name=model.name)
    for original, copy in copies.values():
        if copy is not original and original.weights:
            copy.set_weights(original.get_weights())
    return flat


def _inline(model, inputs: list, copies: dict, used: set):
    """``model``'s outputs computed from ``inputs`` by copies of its layers."""
    if isinstance(model, keras.Sequential):
        x = inputs[0]
        for layer in model.layers:
            x = _call(layer, (x,), {}, copies, used)
        return x
    counts = model._tensor_usage_count  # map_arguments pops one entry per reader
    tensors = {str(id(ref)): [x] * counts[str(id(ref))] for ref, x in zip(model.inputs, inputs)}
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            if node.is_input or any(i not in tensors for i in node.flat_input_ids):
                continue
            args, kwargs = node.map_arguments(tensors)
            out = _call(node.layer, args, kwargs, copies, used)
            for i, y in zip(node.flat_output_ids, tf.nest.flatten(out)):
                tensors[i] = [y] * counts[i]
    outs = [tensors[str(id(ref))].pop() for ref in model.outputs]
    return tf.nest.pack_sequence_as(model._nested_outputs, outs)


def _call(layer, args, kwargs, copies: dict, used: set):
    kwargs = {k: v for k, v in kwargs.items() if k != "training"}  # the export is inference
    if is_nested_graph(layer):
        return _inline(layer, layer._flatten_to_reference_inputs(args[0]), copies, used)
    if is_inference_noop(layer):
        return args[0]
    if id(layer) not in copies:
        copies[id(layer)] = (layer, _copy(layer, used))
    return copies[id(layer)][1](*args, **kwargs)


def _copy(layer, used: set):
    """A fresh layer like ``layer`` (its own call history, so the rewrites see one
    node), renamed when a nested model reused an outer name; the layer itself
    where its config cannot be rebuilt (a subclassed model)."""
    config = layer.get_config()
    name, n = config.get("name", layer.name), 1
    while config.get("name", name) in used:
        config["name"] = f"{name}_{n}"
        n += 1
    try:
        copy = type(layer).from_config(config)
    except Exception:  # noqa: BLE001 - keep the original: exact, just not rewritable
        return layer
    used.add(copy.name)
    return copy


def leading_layers(model, index: int = 0):
    """The layers the model's input ``index`` flows through first, in order, entering
    nested models and skipping inference no-ops, until the graph branches or merges."""
    yield from _chain(model, index)


def _chain(model, index: int = 0):
    """Yield the chain's layers; return True when it ran through the whole model."""
    steps, whole = _model_chain(model, index)
    for layer in steps:
        if is_nested_graph(layer):
            if not (yield from _chain(layer)):
                return False
        elif not is_inference_noop(layer):
            yield layer
    return whole


def _model_chain(model, index: int = 0) -> tuple[list, bool]:
    """(the layers after input ``index`` while each reads the last alone, whether they are all of it)."""
    if isinstance(model, keras.Sequential):
        return list(model.layers), True
    if index >= len(model.inputs):
        return [], False
    readers, ends = consumers(model), output_layers(model)
    layer, steps = model._input_layers[index], []
    while True:
        after = readers.get(layer.name, [])
        if layer.name in ends:
            return steps, not after and len(model.outputs) == 1 and len(model.inputs) == 1
        if len(after) != 1 or len(inbound_layers(after[0])) != 1:
            return steps, False
        layer = after[0]
        steps.append(layer)

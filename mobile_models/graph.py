"""Walking a functional Keras model's graph (the rewrites, pruners and profilers share it)."""
from mobile_models.backend import keras


def inbound_layers(layer) -> list:
    """The layers feeding ``layer``'s first call."""
    if not layer._inbound_nodes:
        return []
    inbound = layer._inbound_nodes[0].inbound_layers
    return inbound if isinstance(inbound, list) else [inbound]


def consumers(model) -> dict:
    """Layer name -> the layers that read its output, in model order."""
    out = {}
    for layer in model.layers:
        for node in layer._inbound_nodes:
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

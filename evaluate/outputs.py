"""What each output of a model holds: class scores, gated on top-1 agreement, or
values (a box, a mask, a regression), gated on PSNR. An (N, k) float array cannot
tell logits from a box head; the model can: its output activation, and the loss it
was compiled with, which model files keep. Where neither says (a linear head saved
uncompiled), the shape decides, and ``--psnr`` names the gate."""
import re

from edgepipe.base.modelio import saved_loss

# Keras loss names (functions and, snake-cased, classes) by what their output holds
CLASS_LOSSES = frozenset({"categorical_crossentropy", "sparse_categorical_crossentropy", "categorical_focal_crossentropy",
                          "categorical_hinge", "kl_divergence", "kldivergence", "kld",
                          "kullback_leibler_divergence"})
VALUE_LOSSES = frozenset({"mean_squared_error", "mse", "mean_absolute_error", "mae", "mean_absolute_percentage_error",
                          "mape", "mean_squared_logarithmic_error", "msle", "huber", "huber_loss", "log_cosh",
                          "logcosh", "cosine_similarity", "poisson", "hinge", "squared_hinge", "binary_crossentropy",
                          "binary_focal_crossentropy"})


def activation(model, index: int) -> str | None:
    """The activation of the layer behind output ``index`` ('linear' for logits); None
    where there are no layers to read (a SavedModel signature)."""
    if getattr(model, "keras_model", None) is not None:  # served from a Keras 3 file: its layers
        from edgepipe.base.keras3_files import output_activation as keras3_activation
        return keras3_activation(model.keras_model, index)
    if not hasattr(model, "get_layer"):
        return None
    from edgepipe.mobile_models.graph import output_activation
    return output_activation(model, index)


def output_kinds(model, path=None) -> dict[str, str | None]:
    """{output name: "classes", "values" or None (the array's shape decides)};
    ``path``: the model file, for its saved loss."""
    names = list(model.output_names)
    nested = getattr(model, "_nested_outputs", None)  # a dict of outputs: its losses are saved by key
    keys = sorted(nested) if isinstance(nested, dict) and len(nested) == len(names) else names
    losses = _per_output(saved_loss(path) if path else None, names, keys)
    kinds = {}
    for i, name in enumerate(names):
        act, loss = activation(model, i), _loss_kind(losses.get(name))
        if act == "softmax":
            kinds[name] = "classes"
        elif loss:
            kinds[name] = loss
        elif act not in (None, "linear"):  # sigmoid, relu, tanh: values, not scores to argmax over
            kinds[name] = "values"
        else:
            kinds[name] = None
    return kinds


def _per_output(loss, names: list[str], keys: list[str]) -> dict:
    """{output name: its loss}; ``keys``: the names a dict of outputs keys them by, in
    the outputs' order (sorted, as model.outputs), else the names themselves."""
    if isinstance(loss, dict) and not ("class_name" in loss or "module" in loss):
        return {n: loss.get(n, loss.get(k)) for n, k in zip(names, keys)}
    if isinstance(loss, list):
        return dict(zip(names, loss))
    return {n: loss for n in names} if loss is not None else {}


def _loss_kind(loss) -> str | None:
    name = loss.get("class_name") if isinstance(loss, dict) else loss
    if name == "function" and isinstance(loss, dict):  # a loss function, as Keras 3 saves one
        name = loss.get("config")
    if not isinstance(name, str):
        return None
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name.rsplit(">", 1)[-1]).lower()  # MeanSquaredError -> mean_squared_error
    return "classes" if name in CLASS_LOSSES else "values" if name in VALUE_LOSSES else None

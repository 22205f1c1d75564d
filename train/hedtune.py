"""Fine-tuning HED after a compression step (magnitude or channel pruning, QAT,
PQAT) with what trained it: deep supervision with the class-balanced loss on
every side output, soft Dice on the fuse (``train.dice_weight``), the recipe's
side and fuse weights, and the recipe's document stream (generated documents or
the folder's training split, with its augmentation).

The deployed model has one output (``edges``, a sigmoid of the fuse logits); the
side outputs and the fuse logits are still layers inside it. ``training_view``
exposes them again, sharing the layers, so fine-tuning the view fine-tunes the
model, whatever wraps its layers (tfmot's pruning or quantization wrappers keep
the inner layer as ``.layer``).
"""
from types import SimpleNamespace

from edgepipe.base.backend import keras
from edgepipe.base.errors import EdgePipeError
from edgepipe.base.quiet import callback_timing_notes_dropped
from edgepipe.mobile_models.hed import REGION, SIDE_NAMES
from edgepipe.train.fit import _documents_dataset, hed_loss_weights, hed_losses

HEADS = (*SIDE_NAMES, "fuse", REGION)  # the logits HED training supervises
# Tracing HED's training step (with tfmot's pruning or fake-quant wrappers) costs
# about as much as 30 eager steps at 64 px: a fine-tune this short runs eagerly.
EAGER_STEPS = 10


def _inner_name(layer) -> str:
    return getattr(layer, "layer", layer).name


def training_view(model):
    """(a model over ``model``'s layers returning its side, fuse and region logits, their head names)."""
    found = {}
    for layer in model.layers:
        name = _inner_name(layer)
        if name in HEADS and len(layer._inbound_nodes) == 1:
            found[name] = layer.output
    if "fuse" not in found:
        raise EdgePipeError("HED fine-tuning needs the model's 'fuse' layer (the logits before the edge map); "
                            "this model has none")
    heads = [h for h in HEADS if h in found]
    return keras.Model(model.inputs, [found[h] for h in heads], name=f"{model.name}_heads"), heads


def compile_view(view, heads, train_cfg, learning_rate: float):
    """The HED training loss (``train.fit.compile_hed``'s) on the view's outputs, by head."""
    losses, weights = hed_losses(heads, train_cfg), hed_loss_weights(heads, train_cfg)
    names = view.output_names
    view.compile(keras.optimizers.Adam(learning_rate),
                 loss={n: losses[h] for n, h in zip(names, heads)},
                 loss_weights={n: weights[h] for n, h in zip(names, heads)})


def document_stream(data_cfg, train_cfg, size: int, batch_size: int, outputs: list[str], heads=None):
    """The last training phase's stream (its generated pool, or the folder's
    training split), at the deployed ``size``; targets keyed by ``outputs``,
    chosen by the head each output is (``heads``, default the same names)."""
    heads = list(heads or outputs)
    phase = len(train_cfg.phases) - 1
    pool = train_cfg.phases[phase].pool
    ds = _documents_dataset(data_cfg, phase, SimpleNamespace(size=size, pool=pool), batch_size, heads)
    ds = ds.map(lambda x, y: (x, {n: y[h] for n, h in zip(outputs, heads)}))
    return ds.prefetch(2)


def hed_tuner(train_cfg, data_cfg, size: int):
    """A fine-tune function ``tune(model, steps, batch_size, learning_rate, callbacks=(), seed=0)``
    for the compression stages (``quantize.stages``), training HED as its recipe does."""
    def tune(model, steps: int, batch_size: int, learning_rate: float, callbacks=(), seed: int = 0):
        keras.utils.set_random_seed(seed)
        view, heads = training_view(model)
        compile_view(view, heads, train_cfg, learning_rate)
        ds = document_stream(data_cfg, train_cfg, size, batch_size, view.output_names, heads)
        view.run_eagerly = steps <= EAGER_STEPS
        callback_timing_notes_dropped()
        view.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=list(callbacks))
        return model
    return tune

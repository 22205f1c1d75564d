"""HED training: deep supervision with the class-balanced loss on every side
output and the fuse output, progressive resizing, NaN guard and checkpoints."""
import math
from pathlib import Path

from mobile_models.backend import keras, tf
from mobile_models.hed import SIDE_NAMES
from pipeline.errors import EdgePipeError
from train.datasets import document_dataset
from train.losses import class_balanced_sigmoid_ce

STEPS_PER_EPOCH = 50


class NaNGuard(keras.callbacks.Callback):
    """Stop at the first non-finite loss and say at which step."""

    def __init__(self):
        super().__init__()
        self.bad_step = None

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            self.bad_step = int(self.model.optimizer.iterations.numpy())
            self.model.stop_training = True


def compile_hed(model, cfg, total_steps):
    schedule = keras.optimizers.schedules.CosineDecay(cfg.learning_rate, total_steps, alpha=0.05)
    weights = dict(zip(SIDE_NAMES, cfg.side_weights)) | {"fuse": cfg.fuse_weight}
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss={name: class_balanced_sigmoid_ce for name in model.output_names},
                  loss_weights={name: weights[name] for name in model.output_names})


def train_hed(model, cfg, data_seed: int, ckpt_dir: Path, verbose: int = 1) -> dict:
    """Train ``model`` (built with a None x None input) through ``cfg.phases``.

    Returns the loss history. Raises EdgePipeError on NaN loss, keeping the
    last good weights in ``ckpt_dir/last.weights.h5``.
    """
    keras.utils.set_random_seed(cfg.seed)
    total = sum(p.steps for p in cfg.phases)
    compile_hed(model, cfg, total)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    last = ckpt_dir / "last.weights.h5"
    guard = NaNGuard()
    history, epoch = {"loss": [], "phase_size": []}, 0
    for i, phase in enumerate(cfg.phases):
        ds = document_dataset(data_seed + 7919 * i, phase.pool, phase.size, cfg.batch_size,
                              model.output_names).repeat()
        for epochs, steps in _epoch_chunks(phase.steps):
            h = model.fit(ds, initial_epoch=epoch, epochs=epoch + epochs, steps_per_epoch=steps,
                          verbose=verbose, callbacks=[guard, _SaveLast(last)])
            epoch += epochs
            history["loss"] += h.history["loss"]
            history["phase_size"] += [phase.size] * len(h.history["loss"])
            if guard.bad_step is not None:
                raise EdgePipeError(f"training loss became NaN at step {guard.bad_step}; "
                                    f"last good weights kept in {last}")
    return history


def _epoch_chunks(steps: int) -> list[tuple[int, int]]:
    """(epochs, steps per epoch) runs that add up to exactly ``steps``."""
    full, rest = divmod(steps, STEPS_PER_EPOCH)
    return [(n, k) for n, k in ((full, STEPS_PER_EPOCH), (1 if rest else 0, rest)) if n]


class _SaveLast(keras.callbacks.Callback):
    """Keep the last finite epoch's weights (written atomically)."""

    def __init__(self, path: Path):
        super().__init__()
        self.path = path

    def on_epoch_end(self, epoch, logs=None):
        if math.isfinite((logs or {}).get("loss", 0.0)):
            tmp = self.path.with_name(f".{self.path.name}.tmp.h5")
            self.model.save_weights(str(tmp))
            tmp.replace(self.path)

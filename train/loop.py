"""The training loop every task shares: epochs through phases, checkpoints you can
resume from (weights *and* optimizer state), best weights by validation loss,
early stopping, a NaN guard, TensorBoard logs and a progress bar (Keras ``fit``).

Layout of ``ckpt_dir``:
    last/            tf.train.Checkpoint of model + optimizer, every epoch
    best/            weights with the lowest validation loss so far (when validation is on)
    state.json       epochs done, history, best loss: what --resume continues from
"""
import json
import math
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from edgepipe import __version__
from edgepipe.base.backend import keras, tf
from edgepipe.base import atomic, safety
from edgepipe.base.errors import EdgePipeError, first_line
from edgepipe.base.quiet import callback_timing_notes_dropped


@dataclass
class Epoch:
    phase: int
    steps: int


@dataclass
class TrainState:
    key: str
    epochs_done: int = 0
    steps_done: int = 0
    best_val: float | None = None
    bad_epochs: int = 0
    stopped_early: bool = False
    writer: str = ""  # which worker wrote this file (multi-worker: only the chief writes the run's)
    generator: str = f"edgepipe {__version__}"  # which edgepipe wrote it
    history: dict = field(default_factory=lambda: {"loss": [], "val_loss": [], "lr": [], "phase": []})

    def save(self, path: Path):
        from edgepipe.train.workers import describe
        self.writer = describe()
        atomic.write_text(path, json.dumps(asdict(self)) + "\n")


def epoch_plan(phase_steps: list[int], steps_per_epoch: int) -> list[Epoch]:
    """Every epoch of every phase; the last epoch of a phase may be short, so each
    phase runs exactly its steps."""
    plan = []
    for i, steps in enumerate(phase_steps):
        full, rest = divmod(steps, steps_per_epoch)
        plan += [Epoch(i, steps_per_epoch)] * full + ([Epoch(i, rest)] if rest else [])
    return plan


def load_state(ckpt_dir: Path, key: str, resume: bool) -> TrainState:
    """The saved state to continue from, or a fresh one. A checkpoint from another
    recipe is never silently continued."""
    path = ckpt_dir / "state.json"
    if not resume or not path.is_file():
        return TrainState(key)
    try:
        state = TrainState(**json.loads(path.read_text()))
    except (ValueError, TypeError, RecursionError):
        raise EdgePipeError(f"{path} is corrupt; delete {ckpt_dir} to train from scratch") from None
    if state.key != key:
        raise EdgePipeError(f"checkpoint in {ckpt_dir} was made by a different recipe or data (a photo added, "
                            "removed or edited) and cannot be continued; train into another --out")
    return state


class _EpochEnd(keras.callbacks.Callback):
    """Per batch: stop on a non-finite loss. Per epoch: history, checkpoint, best
    weights, early stopping, state.json (written last, so it never points ahead)."""

    def __init__(self, state, plan, manager, ckpt_dir, patience, lr_at):
        super().__init__()
        self.state, self.plan, self.manager, self.dir = state, plan, manager, ckpt_dir
        self.patience, self.lr_at = patience, lr_at
        self.bad_step = None

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if (loss is not None and not math.isfinite(loss)) or not weights_finite(self.model):
            self.bad_step = int(self.model.optimizer.iterations.numpy())
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.bad_step is not None or not math.isfinite(logs.get("loss", math.nan)):
            return
        s = self.state
        s.steps_done = int(self.model.optimizer.iterations.numpy())
        s.epochs_done += 1
        val = logs.get("val_loss")
        for k, v in (("loss", logs["loss"]), ("val_loss", val), ("lr", self.lr_at(s.steps_done)),
                     ("phase", self.plan[s.epochs_done - 1].phase)):
            s.history[k].append(None if v is None else float(v))
        if val is not None and math.isfinite(val):
            if s.best_val is None or val < s.best_val:
                s.best_val, s.bad_epochs = float(val), 0
                save_best(self.model, self.dir)
            else:
                s.bad_epochs += 1
                if self.patience and s.bad_epochs >= self.patience:
                    s.stopped_early = True
                    self.model.stop_training = True
        self.manager.save(checkpoint_number=s.epochs_done)
        s.save(self.dir / "state.json")


def weights_finite(model) -> bool:
    """Whether every weight is finite. The loss alone is not enough: where the CPU's
    max instruction returns the non-NaN operand (AVX-512 kernels do), ReLU turns a NaN
    activation into 0, so the loss stays finite while NaN gradients poison the weights."""
    return bool(tf.reduce_all([tf.reduce_all(tf.math.is_finite(w)) for w in model.weights]))


def run_epochs(model, plan: list[Epoch], dataset_for: Callable, ckpt_dir: Path, state: TrainState, *,
               val_data=None, patience: int = 0, log_dir: Path | None = None, verbose: int = 1,
               lr_at: Callable = lambda step: None, write_to: Path | None = None) -> TrainState:
    """Fit ``model`` (compiled) through ``plan[state.epochs_done:]``.

    ``dataset_for(phase, skip_batches)`` returns that phase's repeated dataset with
    the batches already trained on skipped, so a resumed run sees the same stream.
    A resume reads ``ckpt_dir``; checkpoints and state.json go to ``write_to``
    (default ``ckpt_dir``; a multi-worker run's non-chief workers write to a temp folder).
    """
    out = Path(write_to or ckpt_dir)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
    manager = checkpoint_manager(checkpoint, out / "last")
    if state.epochs_done:
        _restore(model, checkpoint, state, ckpt_dir)
    end = _EpochEnd(state, plan, manager, out, patience, lr_at)
    callbacks = [end] + ([keras.callbacks.TensorBoard(str(log_dir), write_graph=False, profile_batch=0)]
                         if log_dir else [])
    while state.epochs_done < len(plan) and not state.stopped_early:
        first, n = state.epochs_done, 1
        while first + n < len(plan) and plan[first + n] == plan[first]:
            n += 1  # consecutive epochs of one phase and length share one fit() call
        phase = plan[first].phase
        skip = sum(e.steps for e in plan[:first] if e.phase == phase)
        callback_timing_notes_dropped()
        model.fit(dataset_for(phase, skip), initial_epoch=first, epochs=first + n,
                  steps_per_epoch=plan[first].steps, validation_data=val_data, verbose=verbose,
                  callbacks=callbacks)
        if end.bad_step is not None:
            raise EdgePipeError(f"training loss became NaN at step {end.bad_step}; the last good checkpoint "
                                f"(epoch {state.epochs_done}, step {state.steps_done}) is kept in {ckpt_dir}")
    return state


def checkpoint_manager(checkpoint, folder: Path):
    """TensorFlow's manager, after checking the folder's ``checkpoint`` state file: the
    manager deletes the files of every older checkpoint that file lists, and a copied or
    crafted run folder could list any path on the machine."""
    folder = Path(folder).absolute()  # TensorFlow joins a relative state entry onto the folder as given
    _refuse_link(folder)
    state = tf.train.get_checkpoint_state(str(folder)) if folder.is_dir() else None
    listed = [state.model_checkpoint_path, *state.all_model_checkpoint_paths] if state else []
    for path in filter(None, listed):
        target = Path(path) if Path(path).is_absolute() else folder / path
        if target.parent.resolve() != folder.resolve():
            raise EdgePipeError(f"{folder / 'checkpoint'} lists {safety.one_line(path, 120)}, outside {folder}; "
                                "edgepipe would delete it when it saves: delete the folder to start over")
    return tf.train.CheckpointManager(checkpoint, str(folder), max_to_keep=1)


def _restore(model, checkpoint, state, ckpt_dir):
    latest = tf.train.latest_checkpoint(str(ckpt_dir / "last"))
    if latest is None:
        raise EdgePipeError(f"{ckpt_dir}/state.json says {state.epochs_done} epochs are done "
                            "but no checkpoint is there; delete the folder to start over")
    model.optimizer.build(model.trainable_variables)  # create slots so they restore now
    try:
        checkpoint.restore(latest).assert_existing_objects_matched()
    except (tf.errors.OpError, AssertionError, ValueError, IndexError) as e:  # truncated, corrupt, another model
        reason = first_line(e, 160)
        raise EdgePipeError(f"checkpoint in {ckpt_dir} cannot be restored ({reason}); "
                            "delete the folder to train from scratch") from None
    got = int(model.optimizer.iterations.numpy())
    if got != state.steps_done:
        raise EdgePipeError(f"checkpoint has {got} optimizer steps, state.json {state.steps_done}: "
                            f"delete {ckpt_dir} to start over")


def _checkpoint_file(path: Path) -> bool:
    """What ``tf.train.Checkpoint.write(".../weights")`` writes (a user's weights.h5 is not)."""
    return path.name in ("checkpoint", "weights.index") or path.name.startswith("weights.data-")


def save_best(model, ckpt_dir: Path):
    """A TF checkpoint, not .h5: Keras' h5 loader cannot assign mirrored BN statistics.
    The folder is swapped whole, but only the checkpoint's own files are removed: any
    other file in ``best`` (a user's) moves along to the new folder."""
    tmp, best, old = ckpt_dir / ".best.tmp", ckpt_dir / "best", ckpt_dir / ".best.old"
    for folder in (tmp, best, old):  # through a link, your files would move into the checkpoint
        _refuse_link(folder)
    tmp.mkdir(parents=True, exist_ok=True)
    for stale in filter(_checkpoint_file, tmp.iterdir()):  # a save cut short; anything else is carried
        shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    tf.train.Checkpoint(model=model).write(str(tmp / "weights"))
    if best.is_dir():
        for theirs in [p for p in best.iterdir() if not _checkpoint_file(p)]:
            os.replace(theirs, tmp / theirs.name)
    shutil.rmtree(old, ignore_errors=True)  # only ever the checkpoint's own files
    if best.is_dir():
        best.replace(old)
    tmp.replace(best)
    shutil.rmtree(old, ignore_errors=True)


def _refuse_link(folder: Path):
    if folder.is_symlink():
        raise EdgePipeError(f"{folder} is a link; edgepipe keeps its checkpoints in a folder of its own")


def restore_best(model, ckpt_dir: Path) -> bool:
    _refuse_link(ckpt_dir / "best")
    best = ckpt_dir / "best" / "weights"
    if not (ckpt_dir / "best").is_dir():
        return False
    tf.train.Checkpoint(model=model).read(str(best)).assert_existing_objects_matched()
    return True


def fit_as_worker(model, plan, dataset_for, ckpt_dir: Path, state: TrainState, val, cfg, log_dir, verbose, lr_at):
    """``run_epochs`` then the best weights, as this process's role allows: the chief
    (or a single process) writes to ``ckpt_dir`` and ``log_dir``; another worker of
    a multi-worker run writes the same checkpoints to a temp folder, removed after."""
    from edgepipe.train import workers
    with workers.write_dir(ckpt_dir) as out:
        run_epochs(model, plan, dataset_for, ckpt_dir, state, val_data=val, patience=cfg.early_stopping_patience,
                   log_dir=log_dir if workers.is_chief() else None, verbose=verbose, lr_at=lr_at, write_to=out)
        if val is not None and cfg.restore_best:
            restore_best(model, out) or restore_best(model, ckpt_dir)  # resumed with no new best: the chief's
    return state

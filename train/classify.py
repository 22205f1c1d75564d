"""Image-classifier training (digits, image folders) on the shared loop: the same
checkpoints, resume, schedules, weight decay, early stopping and strategies as HED."""
from pathlib import Path

import numpy as np

from edgepipe.base.backend import keras, tf
from edgepipe.base.errors import EdgePipeError
from edgepipe.train import data, loop
from edgepipe.train.fit import make_optimizer, make_strategy, set_bn_momentum


def _arrays_dataset(x, y, batch_size: int, seed: int, augment_cfg):
    """Endless batches of ``batch_size``: repeated before batching, so a split smaller than a
    batch (or not a multiple of one) still gives full batches, as the recipe's batch_size says."""
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return ds.map(data.augment(augment_cfg), num_parallel_calls=tf.data.AUTOTUNE).repeat().batch(batch_size)


def train_classifier(build, cfg, data_cfg, size: int, ckpt_dir: Path, *, key: str = "", resume: bool = False,
                     log_dir: Path | None = None, verbose: int = 1):
    """``build(classes)`` makes the model. Returns ``(model, state, class_names)``."""
    if any(p.size != size for p in cfg.phases):
        raise EdgePipeError(f"classifier phases must train at the model's input_size {size} "
                            f"(got sizes {[p.size for p in cfg.phases]})")
    strategy = make_strategy(cfg.distribute, cfg.cpu_replicas)  # first: multi_worker must precede any TF op
    keras.utils.set_random_seed(cfg.seed)
    state = loop.load_state(ckpt_dir, key, resume)
    x, y, names = data.classes(data_cfg, "train", size)
    xv, yv, _ = data.classes(data_cfg, "val", size)
    with strategy.scope():
        model = build(len(names))
        set_bn_momentum(model, cfg.bn_momentum)
        optimizer, schedule = make_optimizer(cfg, sum(p.steps for p in cfg.phases))
        model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"])
    train_ds = _arrays_dataset(x, y, cfg.batch_size, data_cfg.train_seed, data_cfg.augment)

    def dataset_for(phase: int, skip: int):
        return train_ds.skip(skip)

    plan = loop.epoch_plan([p.steps for p in cfg.phases], cfg.steps_per_epoch)
    val = (xv, yv) if cfg.val_size else None
    loop.fit_as_worker(model, plan, dataset_for, ckpt_dir, state, val, cfg, log_dir, verbose,
                       lambda step: float(schedule(step)))
    return model, state, names


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """Rows: true class, columns: predicted class."""
    m = np.zeros((classes, classes), np.int64)
    np.add.at(m, (truth, predicted), 1)
    return m


def classification_metrics(probs: np.ndarray, labels: np.ndarray) -> dict:
    predicted = probs.reshape(len(labels), -1).argmax(-1)
    m = confusion_matrix(labels, predicted, probs.shape[-1])
    return {"top1": float(np.mean(predicted == labels)), "count": int(len(labels)), "confusion": m.tolist()}

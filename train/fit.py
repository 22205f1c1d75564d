"""HED training: deep supervision with the class-balanced loss on every side
output and the fuse output, progressive resizing, LR schedules, weight decay
that skips BatchNorm and biases, and data-parallel strategies. The epoch loop,
checkpoints and resume live in ``train.loop``."""
from pathlib import Path

import numpy as np

from edgepipe.base.backend import keras, tf
from edgepipe.mobile_models.hed import REGION, SIDE_NAMES
from edgepipe.base.errors import EdgePipeError
from edgepipe.train import data, loop
from edgepipe.train.datasets import dense_targets, document_arrays, document_dataset
from edgepipe.train.losses import region_loss, with_dice

NO_DECAY = ["bias", "gamma", "beta"]  # BN scale/shift and biases: decaying them only hurts


def make_strategy(name: str = "none", cpu_replicas: int = 0):
    """``none``, ``mirrored`` (all local devices) or ``multi_worker`` (TF_CONFIG).
    ``cpu_replicas`` > 1 splits the CPU into that many logical devices, to run the
    data-parallel path on a machine without accelerators (must precede any TF op)."""
    if cpu_replicas > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        try:
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_replicas)
        except RuntimeError:
            if len(tf.config.list_logical_devices("CPU")) != cpu_replicas:
                raise EdgePipeError("cpu_replicas must be set before TensorFlow starts; run training in a "
                                    "fresh process") from None
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = [d.name for d in tf.config.list_logical_devices("GPU")] or \
                  [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise EdgePipeError(f"unknown distribute strategy '{name}' (none, mirrored, multi_worker)")


def lr_schedule(cfg, total_steps: int):
    """Cosine decay to 5% over all steps, or step decay by ``step_gamma`` every ``step_every_epochs``."""
    if cfg.schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(cfg.learning_rate, max(total_steps, 1), alpha=0.05)
    every = cfg.step_every_epochs * cfg.steps_per_epoch
    bounds = list(range(every, max(total_steps, every + 1), every))
    return keras.optimizers.schedules.PiecewiseConstantDecay(
        bounds, [cfg.learning_rate * cfg.step_gamma ** i for i in range(len(bounds) + 1)])


def make_optimizer(cfg, total_steps: int):
    schedule = lr_schedule(cfg, total_steps)
    if not cfg.weight_decay:
        return keras.optimizers.Adam(schedule), schedule
    opt = keras.optimizers.AdamW(schedule, weight_decay=cfg.weight_decay)
    opt.exclude_from_weight_decay(var_names=NO_DECAY)
    return opt, schedule


def set_bn_momentum(model, momentum: float | None):
    if momentum is None:
        return
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = momentum


def hed_losses(outputs, cfg) -> dict:
    """Each HED head's loss: class-balanced CE on the sides, plus Dice on the fuse,
    and the region loss on the page-region head."""
    return {name: region_loss if name == REGION else with_dice(cfg.dice_weight if name == "fuse" else 0.0)
            for name in outputs}


def hed_loss_weights(outputs, cfg) -> dict:
    weights = dict(zip(SIDE_NAMES, cfg.side_weights)) | {"fuse": cfg.fuse_weight, REGION: cfg.region_weight}
    return {name: weights[name] for name in outputs}


def compile_hed(model, cfg, total_steps):
    optimizer, schedule = make_optimizer(cfg, total_steps)
    model.compile(optimizer=optimizer, loss=hed_losses(model.output_names, cfg),
                  loss_weights=hed_loss_weights(model.output_names, cfg))
    return schedule


def _validation(model, data_cfg, count: int, size: int):
    """Documents for best-checkpoint selection and early stopping, at the deployed
    size (the model is fully convolutional, so it is comparable across phases).
    Generated ones come from seed val_seed + 1, so verify's held-out set stays unseen."""
    if not count:
        return None
    if data_cfg.kind == "synthetic_documents":
        images, edges, _, regions = document_arrays(data_cfg.val_seed + 1, count, size, regions=True)
    else:
        images, edges, _, regions = data.documents(data_cfg, "val", size, count, regions=True)
    return images.astype(np.float32) / 255.0, _targets(edges, regions, model.output_names)


def _targets(edges, regions, outputs):
    return dense_targets(edges[..., None].astype(np.float32), regions[..., None].astype(np.float32), outputs)


def _documents_dataset(data_cfg, phase: int, p, batch_size: int, outputs: list[str]):
    """A phase's training stream: generated documents, or the folder's training split."""
    if data_cfg.kind == "synthetic_documents":
        ds = document_dataset(data_cfg.train_seed + 7919 * phase, p.pool, p.size, batch_size, outputs, batch=False)
    else:
        images, edges, _, regions = data.documents(data_cfg, "train", p.size, regions=True)
        x = images.astype(np.float32) / 255.0
        ds = tf.data.Dataset.from_tensor_slices((x, _targets(edges, regions, outputs)))
        ds = ds.shuffle(len(x), seed=data_cfg.train_seed, reshuffle_each_iteration=True)
    # repeated before batching: a folder's split smaller than a batch still gives full batches
    return ds.map(data.augment(data_cfg.augment), num_parallel_calls=tf.data.AUTOTUNE).repeat().batch(batch_size)


def train_hed(build, cfg, data_cfg, ckpt_dir: Path, *, key: str = "", resume: bool = False,
              log_dir: Path | None = None, verbose: int = 1):
    """Build (``build()``, inside the strategy scope) and train through ``cfg.phases``.

    Returns ``(model, state)``; ``state.history`` has per-epoch loss, val_loss and lr.
    With ``resume``, continues from ``ckpt_dir`` (weights, optimizer state, data
    position). NaN loss raises EdgePipeError and keeps the last good checkpoint.
    """
    strategy = make_strategy(cfg.distribute, cfg.cpu_replicas)  # first: multi_worker must precede any TF op
    keras.utils.set_random_seed(cfg.seed)
    state = loop.load_state(ckpt_dir, key, resume)
    plan = loop.epoch_plan([p.steps for p in cfg.phases], cfg.steps_per_epoch)
    with strategy.scope():
        model = build()
        set_bn_momentum(model, cfg.bn_momentum)
        schedule = compile_hed(model, cfg, sum(p.steps for p in cfg.phases))

    def dataset_for(phase: int, skip: int):
        ds = _documents_dataset(data_cfg, phase, cfg.phases[phase], cfg.batch_size, model.output_names)
        return ds.skip(skip).prefetch(2)

    val = _validation(model, data_cfg, cfg.val_size, cfg.phases[-1].size)
    loop.fit_as_worker(model, plan, dataset_for, ckpt_dir, state, val, cfg, log_dir, verbose,
                       lambda step: float(schedule(step)))
    return model, state

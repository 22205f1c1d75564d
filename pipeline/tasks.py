"""What differs between the pipeline's tasks, in one place: how to train, which
data calibrates and checks an export, how to score it, and what the bundle says.
The stages in ``pipeline.run`` only call these."""
import functools
import hashlib
from pathlib import Path

import numpy as np

from edgepipe.base import atomic, modelio
from edgepipe.base.errors import EdgePipeError
from edgepipe.pipeline.recipe import INTEGER_OPTIONS
from edgepipe.train.data import TASK_OF_KIND


def train_key(recipe) -> str:
    """What the training checkpoints belong to: a resume continues only the same training."""
    cfg = [c.model_dump() for c in (recipe.model, recipe.data, recipe.train)] + [data_inputs(recipe)]
    return hashlib.sha256(repr(cfg).encode()).hexdigest()[:16]


def check_out_outside_data(recipe, out) -> None:
    """A run folder inside the user's data folder would be read back as a class or a
    photo (and left in their dataset): refused before anything is made."""
    if not recipe.data.path:
        return
    if atomic.inside(out, recipe.data.path):
        raise EdgePipeError(f"--out {out} is inside the data folder {recipe.data.path}; write the run elsewhere")


def data_inputs(recipe) -> dict:
    """What a stage that trains or scores on the user's folder depends on besides the
    recipe: the folder's contents (``train.folders.fingerprint``); {} for generated data."""
    if recipe.data.kind not in ("document_folder", "image_folder"):
        return {}
    from edgepipe.train.folders import fingerprint
    return {"data_files": fingerprint(recipe.data.path)}




def builder_options(recipe) -> dict:
    """The recipe's ``model.options`` as the builder takes them (counts as ints)."""
    return {k: int(v) if k in INTEGER_OPTIONS else v for k, v in recipe.model.options.items()}


def _resume_allowed(recipe, ckpt: Path, console, resume: bool) -> bool:
    from edgepipe.train.loop import load_state
    if not (resume and (ckpt / "state.json").is_file()):
        return False
    try:
        state = load_state(ckpt, train_key(recipe), True)
    except EdgePipeError:
        console.log("checkpoints belong to another recipe: training from scratch")
        return False
    console.log(f"resuming training after epoch {state.epochs_done} (step {state.steps_done})")
    return True


def _save_trained(model, path: Path, console):
    """The chief saves the model into the run; another worker of a multi-worker run saves to a temp folder
    that is removed (it must take part: saving reads mirrored variables, a collective)."""
    from edgepipe.train.workers import describe, write_dir
    with write_dir(path.parent) as folder:  # every worker saves: reading mirrored variables is a collective
        modelio.save_keras(model, folder / path.name)
    if folder != path.parent:
        console.log(f"{describe()}: trained; the chief writes {path.name}")


def _log_training(console, model, state):
    strategy = model.distribute_strategy
    console.log(f"trained {state.steps_done} steps on {strategy.num_replicas_in_sync} replica(s) "
                f"({type(strategy).__name__})")
    if state.stopped_early:
        console.log(f"early stopping after epoch {state.epochs_done}")


class EdgeTask:
    """HED document edges, scored by edge F-score and corner error after quad finding."""
    name = "edges"
    columns = [("edge F", "f_score", ".3f"), ("ODS F", "ods_f", ".3f"), ("corner med %", "corner_err_median_pct", ".2f"),
               ("corner p90 %", "corner_err_p90_pct", ".2f"), ("corner <2%", "under_2pct", ".1%"),
               ("corner <5%", "under_5pct", ".1%"), ("detected", "detection_rate", ".1%")]
    accuracy_key, accuracy_label = "under_5pct", "documents with corner error < 5% of diagonal"
    output = "edges"

    def __init__(self, recipe):
        self.recipe = recipe

    def train(self, out: Path, console, resume: bool = True):
        from edgepipe import mobile_models
        from edgepipe.mobile_models.hed import inference_model
        from edgepipe.train.fit import train_hed
        r = self.recipe
        name, size, ckpt = r.model.name, r.model.input_size, out / "checkpoints"
        opts = builder_options(r)
        trainable, state = train_hed(lambda: mobile_models.build(name, input_shape=(None, None, 3), **opts), r.train,
                                     r.data, ckpt, key=train_key(r), resume=_resume_allowed(r, ckpt, console, resume),
                                     log_dir=out / "logs", verbose=1 if console.is_terminal else 2)
        _log_training(console, trainable, state)
        fixed = mobile_models.build(name, input_shape=(size, size, 3), **opts)
        fixed.set_weights(trainable.get_weights())
        model = inference_model(fixed, r.model.output)
        _save_trained(model, out / f"{name}.keras", console)
        return model, state.history

    @functools.lru_cache(maxsize=1)  # export and the run's card both ask: the folder is read once
    def calibration(self) -> np.ndarray:
        from edgepipe.train.data import documents
        r = self.recipe
        n, size = r.export.calibration_samples, r.model.input_size
        if r.data.kind == "synthetic_documents":
            from edgepipe.train.datasets import representative_images
            return representative_images(r.data.train_seed, n, size)
        return documents(r.data, "train", size, n)[0].astype(np.float32) / 255.0

    def tuner(self, model):
        """Fine-tuning for the prune and QAT stages: HED's own loss and document stream."""
        from edgepipe.train.hedtune import hed_tuner
        return hed_tuner(self.recipe.train, self.recipe.data, self.recipe.model.input_size)

    def heldout(self):
        from edgepipe.train.data import documents
        images, edges, corners, rois = documents(self.recipe.data, "test", self.recipe.model.input_size, rois=True)
        # the finder reads the pixels (paper score, step 9) and, as scan does, ignores letterbox bands
        return images.astype(np.float32) / 255.0, (edges, corners, images, rois)

    def score(self, pred: np.ndarray, truth, ref: np.ndarray | None = None, others: dict | None = None) -> dict:
        """``others``: the model's other outputs by name; the page-region map, if
        there is one, goes to the quad finder as in ``edgepipe scan``."""
        from edgepipe.evaluate.taskmetrics import task_metrics
        from edgepipe.mobile_models.docquad import PAGE
        cfg = self.recipe.verify
        return task_metrics(pred, truth[0], truth[1], cfg.edge_threshold, cfg.edge_tolerance_px,
                            pages=(others or {}).get(PAGE), images=truth[2] if len(truth) > 2 else None,
                            rois=truth[3] if len(truth) > 3 else None)

    def meta(self, model, recipe_hash: str) -> dict:
        from edgepipe.pipeline.cards import bundle_meta
        meta = bundle_meta(self.recipe, model, recipe_hash)
        return meta | {"description": meta["description"] or
                       f"Document-edge detector ({self.recipe.model.name}): edge probabilities for page-corner finding"}


class ClassifyTask:
    """Image classification, scored by top-1 and (for exports) agreement with the original."""
    name = "classify"
    columns = [("top-1", "top1", ".1%"), ("agreement", "agreement", ".1%")]
    accuracy_key, accuracy_label = "top1", "top-1 accuracy (held-out)"
    output = None  # the model's single output

    def __init__(self, recipe):
        self.recipe = recipe

    def train(self, out: Path, console, resume: bool = True):
        from edgepipe import mobile_models
        from edgepipe.train.classify import train_classifier
        r = self.recipe
        name, size, ckpt = r.model.name, r.model.input_size, out / "checkpoints"
        opts = builder_options(r) | {"input_shape": (size, size, 3)}
        model, state, labels = train_classifier(
            lambda classes: mobile_models.build(name, classes=classes, **opts), r.train, r.data, size, ckpt,
            key=train_key(r), resume=_resume_allowed(r, ckpt, console, resume), log_dir=out / "logs",
            verbose=1 if console.is_terminal else 2)
        _log_training(console, model, state)
        _save_trained(model, out / f"{name}.keras", console)
        return model, state.history

    def labels(self) -> list[str]:
        from edgepipe.train.data import class_names
        return class_names(self.recipe.data)

    @functools.lru_cache(maxsize=1)  # export and the run's card both ask: the folder is read once
    def calibration(self) -> np.ndarray:
        from edgepipe.train.data import classes
        x = classes(self.recipe.data, "train", self.recipe.model.input_size)[0]
        pick = np.random.default_rng(0).permutation(len(x))[:self.recipe.export.calibration_samples]
        return x[np.sort(pick)]  # every class: the split is sorted class by class, so x[:n] saw the first few

    def fine_tune_data(self):
        """Training arrays for the prune and QAT stages."""
        from edgepipe.train.data import classes
        x, y, _ = classes(self.recipe.data, "train", self.recipe.model.input_size)
        return x, y

    def tuner(self, model):
        """Fine-tuning for the prune and QAT stages: cross-entropy on the training arrays."""
        from edgepipe.quantize.stages import classifier_loss
        from edgepipe.train.finetune import array_tuner
        return array_tuner(*self.fine_tune_data(), classifier_loss(model))

    def heldout(self):
        from edgepipe.train.data import classes
        x, y, _ = classes(self.recipe.data, "test", self.recipe.model.input_size)
        return x, y

    def score(self, pred: np.ndarray, truth, ref: np.ndarray | None = None, others: dict | None = None) -> dict:
        from edgepipe.train.classify import classification_metrics
        metrics = classification_metrics(pred, truth)
        if ref is not None:
            metrics["agreement"] = float(np.mean(ref.argmax(-1) == pred.reshape(ref.shape).argmax(-1)))
        return metrics

    def meta(self, model, recipe_hash: str) -> dict:
        from edgepipe.pipeline.cards import classifier_meta
        r = self.recipe
        meta = classifier_meta(model, self.labels(), r.model.name, r.bundle.model_dump())
        return meta | {"description": meta["description"] or f"{r.model.name} image classifier "
                       f"({len(self.labels())} classes, {r.data.kind})",
                       "training": {"data": r.data.model_dump(), "profile": r.profile, "recipe_hash": recipe_hash}}


def task_for(recipe):
    from edgepipe import mobile_models
    task = mobile_models.entry(recipe.model.name).task
    kind_task = TASK_OF_KIND[recipe.data.kind]
    if task != kind_task:
        raise EdgePipeError(f"model {recipe.model.name} is a '{task}' model but data.kind {recipe.data.kind} "
                            f"is '{kind_task}' data")
    return EdgeTask(recipe) if task == "edges" else ClassifyTask(recipe)

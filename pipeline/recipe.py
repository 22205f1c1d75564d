"""The recipe schema: YAML in, validated pydantic objects out.

Unknown keys and bad values are refused with one line naming the key. The
schema is the single source of truth for the recipe reference in the docs.
"""
import math
import os
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from edgepipe.convert.formats import DEFAULT_VARIANTS, VARIANTS
from edgepipe.base.errors import EdgePipeError
from edgepipe.base.safety import has_control

EXPORT_VARIANTS = tuple(VARIANTS)
# Bounds the libraries underneath hold to: numpy and Keras seeds are unsigned 32-bit (and the
# streams add small offsets to them), step counts become int64 tensors.
MAX_SEED = 2**31 - 1
MAX_STEPS = 100_000_000
MAX_RUNS = 1_000_000


INTEGER_OPTIONS = ("groups", "stem_stride", "expansion", "sides", "full_side")  # model.options that count something
MAX_OPTION = 64  # no builder option means anything past this (alpha 64 is a 64x wider network)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelCfg(Strict):
    name: str = Field("hed_mobilenet_v2", description="a registered network (`edgepipe.mobile_models.names()`)")
    input_size: int = Field(256, ge=32, le=2048, description="deployed input side, a multiple of 16")
    output: Literal["fuse", "mean"] = Field("fuse", description="test-time edge map: fuse, or mean of sides+fuse")
    options: dict[Literal["alpha", "groups", "scale", "stem_stride", "width", "expansion", "sides", "region", "full_side"],
                  float] = Field(
        {}, description="builder options: alpha (MobileNet width), groups and scale (ShuffleNet); "
                        "stem_stride, width, expansion and sides (HED, `mobile_models/hed.py` scaled_table); "
                        "full_side: 1 with stem_stride 2 takes HED's side 1 from one full-resolution conv; "
                        "region: 1 adds HED's page-region output, which `scan` uses to choose the quad")

    @field_validator("options")
    @classmethod
    def _sane_options(cls, options: dict) -> dict:
        for key, value in options.items():
            if not (math.isfinite(value) and 0 < value <= MAX_OPTION) and not (key == "region" and value == 0):
                raise ValueError(f"{key} must be a number in (0, {MAX_OPTION}], got {value:g}")
            if key in INTEGER_OPTIONS + ("region",) and value != int(value):
                raise ValueError(f"{key} counts something, so it must be a whole number, got {value:g}")
            if key == "region" and value not in (0, 1):
                raise ValueError(f"region is 1 (add the page-region output) or 0, got {value:g}")
        return options


class AugmentCfg(Strict):
    flip: bool = Field(False, description="random horizontal flips (edge maps flip with the image)")
    brightness: float = Field(0.0, ge=0, le=1, description="random brightness shift, up to this much of [0, 1]")
    contrast: float = Field(0.0, ge=0, lt=1, description="random contrast factor in [1 - c, 1 + c]")


class DataCfg(Strict):
    kind: Literal["synthetic_documents", "document_folder", "digits", "image_folder"] = Field(
        "synthetic_documents", description="dataset (train/data.py): generated documents, a folder of photos "
        "with corners.json/csv, scikit-learn digits, or a folder per class")
    path: str | None = Field(None, description="the folder, for document_folder and image_folder; a relative "
                      "path is read beside the recipe file")
    train_seed: int = Field(0, ge=0, le=MAX_SEED, description="training stream / split seed; calibration data is drawn from training")
    val_seed: int = Field(10_000, ge=0, le=MAX_SEED, description="held-out stream (synthetic documents, where it must differ from train_seed)")
    val_size: int = Field(64, ge=1, le=10_000, description="held-out images for verify (synthetic documents)")
    augment: AugmentCfg = AugmentCfg()

    @field_validator("path")
    @classmethod
    def _home(cls, path):
        path = path and os.path.expanduser(path)  # "~/photos" in YAML, where no shell expands it
        try:
            (path or "").encode("utf-8")
        except UnicodeEncodeError:  # a folder unzipped from a Latin-1 archive: the run's records are UTF-8
            raise ValueError(f"{path.encode('utf-8', 'backslashreplace').decode()} is not a UTF-8 path; rename the "
                             "folder") from None
        return path

    @model_validator(mode="after")
    def _consistent(self):
        if self.val_seed == self.train_seed and self.kind == "synthetic_documents":  # a folder is split by train_seed
            raise ValueError("val_seed must differ from train_seed (held-out data)")
        folder = self.kind in ("document_folder", "image_folder")
        if folder and not self.path:
            raise ValueError(f"data.path is required for kind {self.kind}")
        if not folder and self.path:
            raise ValueError(f"data.path is only for document_folder or image_folder, not {self.kind}")
        return self


class Phase(Strict):
    size: int = Field(ge=32, le=2048, description="training input side (progressive resizing)")
    steps: int = Field(ge=1, le=MAX_STEPS)
    pool: int | None = Field(None, ge=1, le=MAX_STEPS, description="distinct generated images cycled in this phase "
                             "(required for generated documents; a folder's training split is its own pool)")


# a loss weight: NaN or inf stopped training at step 1 with no word of the key; a negative one trained "to" -433
LossWeight = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]


def _printable(text: str) -> str:
    """Text a console, a report and a bundle show: an escape code or other control
    character would recolour or rewrite the user's terminal (newlines are for YAML, not names)."""
    if has_control(text):
        raise ValueError("holds a control character (an escape code, a tab or a newline); use printable text")
    return text


Text = Annotated[str, AfterValidator(_printable)]


class TrainCfg(Strict):
    phases: list[Phase] = Field(min_length=1)
    batch_size: int = Field(16, ge=1, le=1024, description="images per step (global, across replicas)")
    steps_per_epoch: int = Field(50, ge=1, le=MAX_STEPS, description="steps between checkpoints, validation and log lines")
    learning_rate: float = Field(3e-3, gt=0, lt=1, description="initial learning rate (Adam, or AdamW with weight_decay)")
    schedule: Literal["cosine", "step"] = Field("cosine", description="cosine: decay to 5% over all steps; "
                                                "step: multiply by step_gamma every step_every_epochs")
    step_every_epochs: int = Field(4, ge=1, description="step schedule: epochs between decays")
    step_gamma: float = Field(0.1, gt=0, le=1, description="step schedule: decay factor")
    weight_decay: float = Field(0.0, ge=0, lt=1, description="AdamW decoupled weight decay; BN and biases excluded")
    val_size: int = Field(16, ge=0, le=10_000, description="validation images (seed val_seed + 1) scored every "
                          "epoch for the best checkpoint and early stopping; a classifier scores its whole "
                          "validation split for any value but 0; 0 turns validation off")
    early_stopping_patience: int = Field(0, ge=0, le=MAX_STEPS, description="stop after this many epochs without a better "
                                         "validation loss; 0 = never")
    bn_momentum: float | None = Field(None, gt=0, lt=1, description="BatchNorm moving-average momentum for "
                                      "training; empty keeps the network's 0.99. Runs of a few hundred steps "
                                      "need ~0.9, or the inference statistics lag the weights (ShuffleNet v2 "
                                      "on digits: 96% in training mode, 10% at inference with 0.99)")
    restore_best: bool = Field(True, description="end with the best-validation weights rather than the last")
    distribute: Literal["none", "mirrored", "multi_worker"] = Field(
        "none", description="tf.distribute strategy: mirrored = all local devices, multi_worker = TF_CONFIG")
    cpu_replicas: int = Field(0, ge=0, le=64, description="split the CPU into N logical devices (data-parallel "
                              "on CPU-only hosts; mostly for testing the distributed path)")
    side_weights: list[LossWeight] = Field([1, 1, 1, 1, 1], min_length=5, max_length=5,
                                      description="loss weights of side outputs 1-5 (deep supervision)")
    fuse_weight: LossWeight = Field(1.0, description="loss weight of the fuse output")
    region_weight: LossWeight = Field(1.0, description="HED: loss weight of the page-region output "
                                                         "(model option region: 1)")
    dice_weight: float = Field(0.0, ge=0, le=100, description="HED: add this times soft Dice to the fuse "
                               "output's class-balanced loss, so that false edges on background contours cost "
                               "as much as missed page edges (side outputs keep the plain loss, for recall)")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="weight-initialisation and shuffle seed")


class ExportCfg(Strict):
    variants: list[Literal[EXPORT_VARIANTS]] = Field(list(DEFAULT_VARIANTS),  # type: ignore[valid-type]
                                                     description="artifacts to write (convert/formats.py): "
                                                     + ", ".join(EXPORT_VARIANTS))
    calibration_samples: int = Field(200, ge=1, le=10_000, description="int8/int16x8 representative images, "
                                     "drawn from the training data")


class PruneCfg(Strict):
    sparsity: float = Field(0.5, ge=0, lt=1, description="share of weights (or, for channel, of filters) removed")
    structure: Literal["unstructured", "2:4", "channel"] = Field(
        "unstructured", description="magnitude pruning (unstructured or 2:4, tfmot) or channel removal (L1)")
    schedule: Literal["polynomial", "constant"] = Field("polynomial", description="magnitude pruning schedule")
    depthwise: bool = Field(False, description="magnitude pruning reaches depthwise kernels too (smaller, less "
                            "accurate)")
    steps: int = Field(300, ge=1, le=MAX_STEPS, description="fine-tuning steps")
    batch_size: int = Field(32, ge=1, le=1024)
    learning_rate: float = Field(1e-3, gt=0, lt=1)


class QuantizeCfg(Strict):
    qat_steps: int = Field(0, ge=0, le=MAX_STEPS, description="quantization-aware fine-tuning steps before the int8 variants "
                           "(0 = post-training only); after magnitude pruning this is PQAT, keeping the zeros")
    qat_learning_rate: float = Field(1e-4, gt=0, lt=1)
    qat_batch_size: int = Field(32, ge=1, le=1024, description="images per quantization-aware step")


class VerifyCfg(Strict):
    edge_threshold: float = Field(0.5, gt=0, lt=1, description="edge probability counted as edge")
    edge_tolerance_px: int = Field(2, ge=0, le=16, description="match distance for the edge F-score")
    gate_atol: float = Field(1e-4, gt=0, allow_inf_nan=False, description="float32 release gate: max abs error against Keras")
    gate_psnr_db: float = Field(40.0, allow_inf_nan=False, description="fp16/float16 release gate: minimum PSNR in dB")
    gate_agreement: float = Field(0.98, gt=0, le=1, description="quantized classifiers: minimum top-1 agreement")
    gate_task_drop: float = Field(0.01, ge=0, le=1, description="quantized detectors: largest edge F-score drop "
                                                                 "against the original (0.01 = 1 point)")


class BenchCfg(Strict):
    threads: int = Field(1, ge=1, le=64, description="CPU threads for latency")
    warmup: int = Field(5, ge=0, le=MAX_RUNS, description="untimed runs first")
    runs: int = Field(30, ge=1, le=MAX_RUNS, description="timed runs, interleaved across artifacts")


class BundleCfg(Strict):
    author: Text = Field("edgepipe", description="written into Core ML, ONNX and the model card")
    license: Text = Field("Apache-2.0", description="licence string in the bundle metadata")
    version: Text = Field("0.1.0", description="model version in the bundle metadata")
    description: Text = Field("", description="one line for the bundle; empty: a description of the task")


class Recipe(Strict):
    name: Text = Field("default", description="run name shown in the report")
    model: ModelCfg = ModelCfg()
    data: DataCfg = DataCfg()
    profile: str = Field("quick", description="which entry of `profiles` trains")
    profiles: dict[Text, TrainCfg] = Field(description="named training settings")
    prune: PruneCfg | None = Field(None, description="optional stage after training: prune and fine-tune "
                                   "(HED with its own loss and document stream); the exports are made from the "
                                   "pruned model")
    export: ExportCfg = ExportCfg()
    quantize: QuantizeCfg = QuantizeCfg()
    verify: VerifyCfg = VerifyCfg()
    bench: BenchCfg = BenchCfg()
    bundle: BundleCfg = BundleCfg()

    @model_validator(mode="after")
    def _profile_exists(self):
        if self.profile not in self.profiles:
            raise ValueError(f"profile '{self.profile}' not in profiles ({', '.join(self.profiles)})")
        if self.model.input_size % 16:
            raise ValueError(f"model.input_size must be a multiple of 16, got {self.model.input_size}")
        if self.data.kind == "synthetic_documents":
            for name, cfg in self.profiles.items():
                for i, phase in enumerate(cfg.phases):
                    if phase.pool is None:
                        raise ValueError(f"profiles.{name}.phases[{i}].pool is required for generated documents: "
                                         "how many distinct images the phase cycles")
        return self

    @property
    def train(self) -> TrainCfg:
        return self.profiles[self.profile]


# recipes/ installs as the package data edgepipe.recipes
DEFAULT_RECIPE = Path(str(resources.files("edgepipe.recipes") / "default.yaml"))


def first_error(e: ValidationError) -> str:
    """A validation error as one line: ``dotted.key: message``."""
    err = e.errors()[0]
    return f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"


def anchor_data_path(raw: dict, folder: Path) -> None:
    """Make a relative ``data.path`` in a recipe file absolute: a folder beside that file, as a
    sweep's ``base:`` is beside the sweep file, so the recipe works from any working folder.
    A path found only under the working folder (the older reading) is still taken from there."""
    data = raw.get("data")
    given = data.get("path") if isinstance(data, dict) else None
    if not isinstance(given, str) or not given or Path(os.path.expanduser(given)).is_absolute():
        return
    beside, here = folder / given, Path(given)
    try:
        data["path"] = str((here if here.exists() and not beside.exists() else beside).resolve())
    except (OSError, ValueError):  # a name no file system takes: left as given, for the check that names it
        pass


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (it keeps the last
    silently: a recipe with two ``name:`` or two ``learning_rate:`` lines trains on one of them)."""

    def construct_mapping(self, node, deep=False):
        seen = []
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # '<<: *base': a key given again overrides it, as YAML says
                continue
            key = self.construct_object(key_node, deep=deep)
            same = next((k for k in seen if key == k), None)
            if same is not None:  # 1, 1.0 and true are one key once read
                said = "given twice" if type(same) is type(key) else f"the same key as '{same}'"
                raise yaml.constructor.ConstructorError(None, None, f"the key '{key}' is {said}",
                                                        key_node.start_mark)
            seen.append(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path, what: str):
    """A recipe's or sweep's YAML: a missing file, bad YAML, a key given twice or nesting past
    Python's stack are one line."""
    if not path.is_file():
        raise EdgePipeError(f"{what} not found: {path}")
    try:
        return yaml.load(path.read_text(), Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise EdgePipeError(f"{what} {path} is not valid YAML: {' '.join(str(e).split())[:300]}") from None
    except RecursionError:
        raise EdgePipeError(f"{what} {path} is nested too deeply to be a {what}") from None


def load_recipe(path: str | Path | None = None, profile: str | None = None) -> Recipe:
    path = Path(path) if path else DEFAULT_RECIPE
    if path.is_dir():
        raise EdgePipeError(f"{path} is a folder; --recipe takes a recipe file (YAML)")
    raw = read_yaml(path, "recipe")
    if not isinstance(raw, dict):
        raise EdgePipeError(f"recipe {path} must be a YAML mapping")
    if profile:
        raw["profile"] = profile
    anchor_data_path(raw, path.parent)
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as e:
        raise EdgePipeError(f"recipe {path}: {first_error(e)}") from None
    if recipe.data.kind == "image_folder":  # its classes, before any output folder is made
        from edgepipe.train.folders import class_names
        class_names(Path(recipe.data.path))
    return recipe

"""The sweep file: a base recipe and a grid of overrides, expanded into runs.

    name: digits-backbones
    base: digits_mobilenet_v2.yaml        # a recipe file (relative to this file), a mapping, or empty: default
    grid:                                  # every combination, in this order
      model.name: [mobilenet_v2, shufflenet_v2]
      train.learning_rate: [0.003, 0.01]   # train.X is profiles.<profile>.X
    runs:                                  # more runs, each a mapping of overrides
      - {model.name: tiny_cnn, model.input_size: 32}
    retries: 1                             # a failed or killed run is tried this many more times

Each run is validated as a recipe before anything starts; a bad key or value is
one line that names the run and the key.
"""
import copy
import itertools
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from edgepipe.base.errors import EdgePipeError
from edgepipe.pipeline.recipe import DEFAULT_RECIPE, Recipe, anchor_data_path, first_error, read_yaml


class SweepCfg(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field("sweep", description="sweep name shown in the report")
    base: str | dict | None = Field(None, description="base recipe: a YAML file (relative to the sweep file), "
                                    "an inline mapping, or empty for the packaged default")
    profile: str | None = Field(None, description="training profile of every run (default: the base recipe's)")
    grid: dict[str, list[Any]] = Field({}, description="dotted recipe key -> values; every combination is a run")
    runs: list[dict[str, Any]] = Field([], description="further runs, each a mapping of dotted keys to values")
    retries: int = Field(1, ge=0, le=10, description="extra attempts for a run whose task failed or was killed")
    train_cpus: float = Field(1.0, gt=0, le=1024, description="CPUs a training/export task reserves (Ray)")
    bench_cpus: int | None = Field(None, ge=1, le=4096, description="CPUs the latency task holds; default: "
                                   "every CPU of the largest node, so nothing else runs beside it")
    timeout_minutes: float = Field(0, ge=0, description="cancel and retry a task running longer; 0 = no limit")

    @field_validator("grid")
    @classmethod
    def _non_empty(cls, grid):
        for key, values in grid.items():
            if not values:
                raise ValueError(f"grid key {key} has no values")
        return grid


@dataclass
class RunSpec:
    name: str           # the run's folder under the sweep's --out
    overrides: dict     # dotted key -> value, as the sweep file says
    recipe: Recipe
    raw: dict           # the recipe as a mapping (what the task validates again)


def load_sweep(path) -> tuple[SweepCfg, list[RunSpec]]:
    path = Path(path)
    raw = read_yaml(path, "sweep file")
    if not isinstance(raw, dict):
        raise EdgePipeError(f"sweep file {path} must be a YAML mapping")
    try:
        cfg = SweepCfg.model_validate(raw)
    except ValidationError as e:
        raise EdgePipeError(f"sweep file {path}: {first_error(e)}") from None
    try:
        _check_size(cfg)
    except EdgePipeError as e:
        raise EdgePipeError(f"sweep file {path}: {e}") from None
    base = _base_recipe(cfg, path)
    specs = [_spec(path, base, cfg.profile, over) for over in expand(cfg)]
    if not specs:
        raise EdgePipeError(f"sweep file {path}: no runs (give a grid or runs)")
    _unique_names(specs)
    return cfg, specs


def base_recipe_file(cfg: SweepCfg, sweep_path) -> Path | None:
    """The base recipe's file (an input of the sweep, never one of its outputs); None for an inline base."""
    if isinstance(cfg.base, dict):
        return None
    return (Path(sweep_path).parent / Path(cfg.base).expanduser()) if cfg.base else DEFAULT_RECIPE


def _base_recipe(cfg: SweepCfg, sweep_path: Path) -> dict:
    where = base_recipe_file(cfg, sweep_path)
    if where is None:
        return cfg.base
    raw = read_yaml(where, "base recipe")
    if not isinstance(raw, dict):
        raise EdgePipeError(f"base recipe {where} must be a YAML mapping")
    anchor_data_path(raw, where.parent)
    return raw


MAX_RUNS = 10_000      # runs in one sweep: each is a training job
MAX_VALUE_NODES = 10_000  # list items and mapping entries in one override value (YAML aliases repeat theirs)


def _count(value, budget: int) -> int:
    """Nodes in ``value``, counting stops past ``budget``: a YAML alias bomb is tiny on disk but
    astronomically large once walked, as naming a run or validating it does."""
    seen, stack = 0, [value]
    while stack and seen <= budget:
        node = stack.pop()
        seen += 1
        if isinstance(node, dict):
            stack += [*node.keys(), *node.values()]
        elif isinstance(node, (list, tuple)):
            stack += node
    return seen


def _check_size(cfg: SweepCfg):
    runs = math.prod(len(v) for v in cfg.grid.values()) if cfg.grid else 0
    if runs + len(cfg.runs) > MAX_RUNS:
        raise EdgePipeError(f"the sweep expands to {runs + len(cfg.runs):,} runs; at most {MAX_RUNS:,} "
                            "(split it into several sweeps)")
    overrides = [(k, v) for k, values in cfg.grid.items() for v in values] + \
        [(k, v) for r in cfg.runs for k, v in r.items()]
    for key, value in overrides:
        if _count(value, MAX_VALUE_NODES) > MAX_VALUE_NODES:
            raise EdgePipeError(f"the value of {key} has over {MAX_VALUE_NODES:,} items (YAML aliases?)")


def expand(cfg: SweepCfg) -> list[dict]:
    """The grid's combinations (first key slowest), then the explicit runs."""
    keys = list(cfg.grid)
    combos = [dict(zip(keys, values)) for values in itertools.product(*cfg.grid.values())] if keys else []
    return combos + [dict(r) for r in cfg.runs]


def apply_overrides(base: dict, overrides: dict, profile: str | None = None) -> dict:
    """A copy of ``base`` with each dotted key set; ``train.X`` means the active profile's X."""
    recipe = copy.deepcopy(base)
    if profile:
        recipe["profile"] = profile
    for key, value in overrides.items():
        parts = str(key).split(".")
        if parts[0] == "train":
            parts = ["profiles", recipe.get("profile", "quick")] + parts[1:]
        node = recipe
        for i, part in enumerate(parts[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise EdgePipeError(f"cannot set {key}: {'.'.join(parts[:i + 1])} is not a mapping")
        node[parts[-1]] = copy.deepcopy(value)
    return recipe


def run_name(overrides: dict) -> str:
    """A folder name from the overrides: ``shufflenet_v2,options=scale0.5,learning_rate=0.01`` for
    ``{model.name: shufflenet_v2, model.options: {scale: 0.5}, train.learning_rate: 0.01}``."""
    parts = []
    for key, value in overrides.items():
        if isinstance(value, dict):
            text = "+".join(f"{k}{v}" for k, v in value.items())
        else:
            text = "+".join(map(str, value)) if isinstance(value, list) else str(value)
        leaf = str(key).split(".")[-1]
        parts.append(text if leaf == "name" else f"{leaf}={text}")
    name = re.sub(r"[^A-Za-z0-9._=,+-]+", "_", ",".join(parts)).strip("._") or "base"
    return name[:120]


def _spec(path: Path, base: dict, profile, overrides: dict) -> RunSpec:
    name = run_name(overrides)
    try:
        raw = apply_overrides(base, overrides, profile)
    except EdgePipeError as e:
        raise EdgePipeError(f"sweep file {path}: run {name}: {e}") from None
    anchor_data_path(raw, path.parent)  # an override's or an inline base's path: beside the sweep file
    if "name" not in overrides:
        raw["name"] = name
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as e:
        raise EdgePipeError(f"sweep file {path}: run {name}: {first_error(e)}") from None
    return RunSpec(name, overrides, recipe, recipe.model_dump())


SWEEP_JSON, SWEEP_HTML = "sweep.json", "sweep.html"  # the sweep's own files, beside its run folders
SWEEP_FILES = (SWEEP_JSON, SWEEP_HTML)


def _unique_names(specs: list[RunSpec]):
    """Each run its own folder: a repeated name gets the first -2, -3, ... that no run
    is named (a run the user named ``a-2`` keeps its name; the second ``a`` takes ``a-3``)."""
    named, used = {s.name for s in specs}, set(SWEEP_FILES)
    for s in specs:
        if s.name in used:
            k = 2
            while f"{s.name}-{k}" in used or f"{s.name}-{k}" in named:
                k += 1
            s.name = f"{s.name}-{k}"
        used.add(s.name)

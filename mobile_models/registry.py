"""One registry of named model builders (timm-style).

The CLI, the tests and the docs enumerate ``names()``; nobody writes a second
``if name == ...`` chain.
"""
import inspect
from dataclasses import dataclass
from typing import Callable

from edgepipe.base.errors import EdgePipeError


@dataclass(frozen=True)
class ModelEntry:
    name: str
    task: str  # "edges" (HED) or "classify"
    builder: Callable
    summary: str

    def options(self):
        return [p for p in inspect.signature(self.builder).parameters]


_REGISTRY: dict[str, ModelEntry] = {}


def register(name: str, task: str, summary: str):
    def wrap(fn):
        if name in _REGISTRY and _REGISTRY[name].builder is not fn:
            raise ValueError(f"network name '{name}' is registered twice "
                             f"({_REGISTRY[name].builder.__module__} and {fn.__module__})")
        _REGISTRY[name] = ModelEntry(name, task, fn, summary)
        return fn
    return wrap


def names() -> list[str]:
    _load_zoo()
    return sorted(_REGISTRY)


def entry(name: str) -> ModelEntry:
    _load_zoo()
    if name not in _REGISTRY:
        raise EdgePipeError(f"unknown network '{name}'; valid names: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def build(name: str, **options):
    """Build a registered network. Unknown options are refused with the valid list."""
    e = entry(name)
    unknown = sorted(set(options) - set(e.options()))
    if unknown:
        raise EdgePipeError(f"{name} does not take option(s) {', '.join(unknown)}; valid: {', '.join(e.options())}")
    return e.builder(**options)


def _load_zoo():
    # Importing the zoo modules runs their @register decorators.
    from edgepipe.mobile_models import hed, mobilenet, shufflenet, tiny  # noqa: F401

"""Loading and saving Keras models, safely.

``.keras`` files load with ``safe_mode=True``: a Lambda layer (arbitrary code)
is refused unless the user says ``trust=True``.
"""
from pathlib import Path

from mobile_models.backend import keras
from pipeline import atomic
from pipeline.errors import EdgePipeError


def load_keras(path, trust: bool = False):
    import mobile_models.custom_layers  # noqa: F401  (registers our layers for safe_mode loading)
    path = Path(path)
    if not path.exists():
        raise EdgePipeError(f"model not found: {path}")
    try:
        if path.suffix == ".keras":
            return keras.models.load_model(path, compile=False, safe_mode=not trust)
        return keras.models.load_model(path, compile=False)
    except Exception as e:  # Keras raises many types for corrupt or hostile files
        msg = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        if "Lambda" in msg or "safe_mode" in msg:
            raise EdgePipeError(f"{path}: refused to load a model with a Lambda layer or custom code "
                                f"(pass --trust-model to load it anyway)") from None
        raise EdgePipeError(f"{path}: not a loadable Keras model ({msg})") from None


def save_keras(model, path: Path) -> Path:
    with atomic.staged_path(path) as tmp:
        model.save(tmp)
    return path

"""Option checks shared by the builders: clear errors that list valid choices."""
from edgepipe.base.errors import EdgePipeError


def check_input(input_shape, multiple, name):
    if len(input_shape) != 3 or input_shape[2] != 3:
        raise EdgePipeError(f"{name}: input_shape must be (H, W, 3), got {tuple(input_shape)}")
    h, w = input_shape[:2]
    if h is None or w is None or h % multiple or w % multiple or h < multiple:
        raise EdgePipeError(f"{name}: input H and W must be multiples of {multiple} "
                            f"(e.g. 96, 128, 160, 192, 224), got {h}x{w}")


def check_alpha(alpha, name, choices=None):
    if choices is not None and alpha not in choices:
        raise EdgePipeError(f"{name}: width {alpha} not supported; valid: {', '.join(map(str, choices))}")
    if not 0 < alpha <= 4:
        raise EdgePipeError(f"{name}: width multiplier must be in (0, 4], got {alpha}")

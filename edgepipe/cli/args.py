"""Argument types shared by the commands: every numeric option is range-checked
at parse time, so nonsense gets argparse's one-line usage error (exit 2)."""
import argparse

from edgepipe.base import safety
from edgepipe.base.errors import EdgePipeError


def _number(kind, lo=None, hi=None, lo_open=False):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}")
        if value != value or value in (float("inf"), float("-inf")):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        if lo is not None and (value <= lo if lo_open else value < lo):
            raise argparse.ArgumentTypeError(f"must be {'>' if lo_open else '>='} {lo:g}, got {text}")
        if hi is not None and value > hi:
            raise argparse.ArgumentTypeError(f"must be <= {hi:g}, got {text}")
        return value
    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def int_range(lo: int, hi: int | None = None):
    return _number(int, lo, hi)


def float_range(lo: float | None = None, hi: float | None = None, lo_open: bool = False):
    return _number(float, lo, hi, lo_open)


positive_int = int_range(1)
count = int_range(0)
fraction = float_range(0.0, 1.0)
positive = float_range(0.0, lo_open=True)


def add_trust(parser):
    parser.add_argument("--trust-model", action="store_true",
                        help="allow Lambda layers, custom objects and foreign modules to run (unsafe)")


def recipe_parser(sub, name: str, help_text: str, default_out: str):
    c = sub.add_parser(name, help=help_text)
    c.add_argument("--recipe", help="recipe YAML (default: the packaged recipes/default.yaml)")
    c.add_argument("--out", default=default_out, help=f"output folder (default: {default_out})")
    c.add_argument("--profile", help="training profile from the recipe (default: the recipe's `profile`)")
    return c


def check_suffix(out, fmt: str):
    """An --out named for another format would hold bytes no runtime of that name opens."""
    from edgepipe.convert.formats import FORMATS, format_of
    named = format_of(out)
    if named is not None and named != fmt:
        raise EdgePipeError(f"--out {safety.one_line(str(out), 120)} is named as {named}, but the export is {fmt}: "
                            f"end it with {FORMATS[fmt].suffix}")
    if named is None:  # "model.txt" or "model": no app, runtime or `edgepipe verify` would know what it holds
        raise EdgePipeError(f"--out {safety.one_line(str(out), 120)} does not name {'an' if fmt[0] in 'aeiou' else 'a'} {fmt} file: end it with "
                            f"{FORMATS[fmt].suffix}")
    if not str(out).lower().rstrip("/").endswith(FORMATS[fmt].suffix):  # .mlmodel: read, never written
        raise EdgePipeError(f"--out {safety.one_line(str(out), 120)}: edgepipe writes {fmt} as "
                            f"{FORMATS[fmt].suffix} (an ML program is a package; .mlmodel holds the older "
                            "neural-network format only)")

"""Ctrl-C that no library can swallow.

coremltools (and other converters) catch ``KeyboardInterrupt`` inside their
conversion loops and raise their own error, so the interrupt looks like a failed
export. ``watch()`` remembers that SIGINT arrived; ``check()`` turns the
remembered interrupt back into ``KeyboardInterrupt`` after any step, so an
interrupted stage is never recorded, as done or as failed.
"""
import signal
import threading
from contextlib import contextmanager

from edgepipe.base.errors import EdgePipeError, first_line

_state = {"interrupted": False}


@contextmanager
def watch():
    """Within the block, remember every SIGINT (and still raise KeyboardInterrupt)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def on_sigint(signum, frame):
        _state["interrupted"] = True
        if callable(previous):
            previous(signum, frame)
        raise KeyboardInterrupt

    _state["interrupted"] = False
    signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def converter_errors(what: str):
    """A converter's own exception means the user's model does not convert (an
    unsupported op, a shape it cannot handle): one line, exit 2. A Ctrl-C the
    converter swallowed stays a Ctrl-C."""
    try:
        yield
    except EdgePipeError:
        check()
        raise
    except Exception as e:  # noqa: BLE001  TFLite, tf2onnx and coremltools raise anything
        check()
        reason = first_line(e)
        raise EdgePipeError(f"{what} failed: {reason}") from None


def interrupted() -> bool:
    return _state["interrupted"]


def check():
    """Raise KeyboardInterrupt if SIGINT arrived, whatever happened to it since."""
    if _state["interrupted"]:
        raise KeyboardInterrupt

"""Ctrl-C (and SIGTERM, what CI runners and ``docker stop`` send) that no library can swallow.

coremltools (and other converters) catch ``KeyboardInterrupt`` inside their
conversion loops and raise their own error, so the interrupt looks like a failed
export. ``watch()`` remembers that SIGINT arrived; ``check()`` turns the
remembered interrupt back into ``KeyboardInterrupt`` after any step, so an
interrupted stage is never recorded, as done or as failed. SIGTERM is handled
like SIGINT (temp files cleaned, nothing recorded); the exit status is 128 plus
the signal's number: 130 for Ctrl-C, 143 for SIGTERM.
"""
import signal
import threading
from contextlib import contextmanager

from edgepipe.base.errors import EdgePipeError, first_line

_state = {"interrupted": False, "signal": signal.SIGINT}
WATCHED = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def watch():
    """Within the block, remember every SIGINT or SIGTERM (and raise KeyboardInterrupt)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in WATCHED}

    def on_signal(signum, frame):
        _state["interrupted"], _state["signal"] = True, signum
        if signum == signal.SIGINT and callable(previous[signum]):
            previous[signum](signum, frame)
        raise KeyboardInterrupt

    _state["interrupted"], _state["signal"] = False, signal.SIGINT
    for s in WATCHED:
        signal.signal(s, on_signal)
    try:
        yield
    finally:
        for s in WATCHED:
            signal.signal(s, previous[s])


@contextmanager
def deferred():
    """Hold SIGINT and SIGTERM for a short block (a temp file renamed into place and
    recorded, a bundle's file and its card): a signal that arrives inside it is acted on
    at its end, so an interrupt never leaves a temp file, or a file without its record."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held, previous = [], {s: signal.getsignal(s) for s in WATCHED}
    for s in WATCHED:
        signal.signal(s, lambda signum, frame: held.append((signum, frame)))
    try:
        yield
    finally:
        for s in WATCHED:
            signal.signal(s, previous[s])
    for signum, frame in held[:1]:  # as if it came now
        handler = previous[signum]
        if callable(handler):
            handler(signum, frame)
        elif handler == signal.SIG_DFL:
            on_early_signal(signum, frame)


def on_early_signal(signum, frame):
    """Outside ``watch()`` (Python starting, arguments parsed, a command unwinding after an
    interrupt): the same KeyboardInterrupt, with the signal remembered for the exit status.
    A second signal once the command is on its way out is let go: raised inside
    TensorFlow's teardown (a variable's ``__del__``) it printed "Exception ignored" and a traceback."""
    if _state["interrupted"]:
        return
    _state["interrupted"], _state["signal"] = True, signum
    raise KeyboardInterrupt


def exit_status() -> int:
    """128 plus the number of the signal that interrupted the command (130 for Ctrl-C). The
    status is kept for ``exit_as_interrupted``."""
    _state["exit"] = 128 + int(_state["signal"])
    return _state["exit"]


def exit_as_interrupted():
    """An atexit hook, registered before anything else so that it runs last: once an interrupted
    command has cleaned up, leave with its status. CPython kills itself with SIGINT at exit when
    a KeyboardInterrupt passed through its own printing or run functions on the way (seen once
    under load: status -2 for a SIGTERM whose interrupt we had caught), and CI gates on 143."""
    if "exit" in _state:
        import os
        import sys
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(_state["exit"])


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
        raise EdgePipeError(f"{what} failed: {reason}{_hint(str(e))}") from None


# What a converter's message means, where its first line only names MLIR locations
CONVERTER_HINTS = {"TensorListReserve": "a recurrent loop TFLite cannot lower to its builtin ops (a Keras 3 LSTM, "
                                        "GRU or SimpleRNN); tf_keras' layers convert, or export it to ONNX",
                   "Lowering tensor list ops": "a recurrent loop TFLite cannot lower to its builtin ops"}


def _hint(message: str) -> str:
    return next((f" ({hint})" for key, hint in CONVERTER_HINTS.items() if key in message), "")


def interrupted() -> bool:
    return _state["interrupted"]


def check():
    """Raise KeyboardInterrupt if SIGINT arrived, whatever happened to it since."""
    if _state["interrupted"]:
        raise KeyboardInterrupt

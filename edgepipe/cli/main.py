"""The ``edgepipe`` command line: one module per command, each with
``add_parser(sub)``. Errors a user can cause print one line and exit 2; a failed
gate exits 1; Ctrl-C exits 130, SIGTERM 143. Nothing here imports TensorFlow, so ``--help``
and argument errors answer at once."""
import argparse
import errno
import os
import signal
import sys

from edgepipe.base.errors import EdgePipeError
from edgepipe.base.safety import escaped

COMMANDS = ("run", "sweep", "train", "profile", "convert", "quantize", "prune", "verify", "bench", "scan", "report")


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one ``edgepipe: error:`` line (exit 2) like every other."""

    def error(self, message):
        raise EdgePipeError(f"{self.prog.removeprefix('edgepipe').strip() or 'arguments'}: {message} "
                            f"(see `{self.prog} --help`)")


def build_parser():
    from importlib import import_module
    p = Parser(prog="edgepipe", description="Train, quantize, export and check mobile vision models.")
    sub = p.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        import_module(f"edgepipe.cli.{name}").add_parser(sub)
    return p


def main(argv=None):
    from edgepipe.base import interrupts
    os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")  # its warnings would add lines to our one-line errors
    try:
        args = build_parser().parse_args(argv)
        with interrupts.watch():
            return args.func(args)
    except EdgePipeError as e:
        message = escaped(" ".join(str(e).split("\n")))  # a file name may hold a newline or escape codes
        print(f"edgepipe: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edgepipe: interrupted", file=sys.stderr)
        return interrupts.exit_status()
    except OSError as e:
        if e.errno not in PATH_ERRORS:
            raise
        where = f"{_short(e.filename)}: " if e.filename is not None else "writing its output: "
        print(f"edgepipe: error: {escaped(where)}{os.strerror(e.errno).lower()}", file=sys.stderr)
        return 2
    except Exception:
        if interrupts.interrupted():  # a library turned Ctrl-C into its own error
            print("edgepipe: interrupted", file=sys.stderr)
            return interrupts.exit_status()
        raise


# Errors a path the user gave causes wherever it is first touched (pathlib's exists() raises
# these instead of answering False): a name past the file system's limit, a link loop, a
# read-only or full disk, a folder they may not write
PATH_ERRORS = {getattr(errno, n) for n in ("ENAMETOOLONG", "ELOOP", "EACCES", "EPERM", "EROFS", "ENOSPC", "EDQUOT")
               if hasattr(errno, n)}


def _short(name) -> str:
    text = " ".join(str(name).split())
    return text if len(text) <= 120 else f"{text[:60]}...{text[-40:]}"


def entry():
    """Console script: Ctrl-C or SIGTERM before ``main`` runs is still one line and 130 or 143."""
    import atexit

    from edgepipe.base import interrupts
    atexit.register(interrupts.exit_as_interrupted)  # first registered, last to run
    for s in interrupts.WATCHED:
        signal.signal(s, interrupts.on_early_signal)
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("edgepipe: interrupted", file=sys.stderr)
        sys.exit(interrupts.exit_status())


if __name__ == "__main__":
    entry()

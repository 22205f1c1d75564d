"""The one exception type for errors a user can cause (bad paths, bad recipes,
corrupt models, wrong shapes, NaN data). The CLI prints its message on one line
and exits with code 2."""


class EdgePipeError(Exception):
    """An error the user can fix; never a bug in edgepipe."""


def first_line(e: BaseException, limit: int = 200) -> str:
    """What a library's exception says, as the tail of a one-line message."""
    text = str(e).strip()
    return text.splitlines()[0][:limit] if text else type(e).__name__

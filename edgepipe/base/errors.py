"""The one exception type for errors a user can cause (bad paths, bad recipes,
corrupt models, wrong shapes, NaN data). The CLI prints its message on one line
and exits with code 2."""


class EdgePipeError(Exception):
    """An error the user can fix; never a bug in edgepipe."""


def first_line(e: BaseException, limit: int = 200) -> str:
    """What a library's exception says, as the tail of a one-line message."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    if lines and lines[0] == "in user code:":  # TensorFlow's traced-function errors: the cause is last
        lines = lines[-1:]
    if not lines:
        return type(e).__name__
    line = lines[0]
    if len(line) <= limit:
        return line
    cut = line[:limit].rsplit(" ", 1)[0] if " " in line[:limit] else line[:limit]
    return cut.rstrip(" ,;:") + " ..."  # whole words: a word cut in half reads as a different word

"""The one exception type for errors a user can cause (bad paths, bad recipes,
corrupt models, wrong shapes, NaN data). The CLI prints its message on one line
and exits with code 2."""


class EdgePipeError(Exception):
    """An error the user can fix; never a bug in edgepipe."""

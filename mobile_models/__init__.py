"""What the networks are: table-driven builders behind one registry."""
from edgepipe.mobile_models.registry import build, entry, names  # noqa: F401

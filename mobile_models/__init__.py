"""What the networks are: table-driven builders behind one registry."""
from mobile_models.registry import build, entry, names  # noqa: F401

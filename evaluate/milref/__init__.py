"""A numpy reference interpreter for Core ML ML programs (see ``program``)."""
from edgepipe.evaluate.milref.program import ENGINE, ReferenceProgram, UnsupportedOp

__all__ = ["ENGINE", "ReferenceProgram", "UnsupportedOp"]

"""Values as a tensor's own type, one way for every runtime edgepipe feeds."""
import numpy as np


def in_dtype(x, dtype) -> np.ndarray:
    """``x`` cast to ``dtype``; for an integer type rounded (half to even) and clipped to its
    range first, as an app rounds pixels (a plain cast would truncate 127.6 to 127 and wrap 300)."""
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        x = np.clip(np.round(x), info.min, info.max)
    return np.asarray(x).astype(dtype)

"""Streaming temporal average of a (compensated) video."""

from __future__ import annotations

import numpy as np

from .accumulate import add_frames
from .errors import InputError

__all__ = ["temporal_average"]


def temporal_average(reader, chunk: int = 256, progress=None) -> np.ndarray:
    """Mean over time of ``reader``'s frames: ``(H, W, C)`` float64.

    Frames are summed in float64, ``chunk`` at a time. Raises InputError for
    an empty video or a non-finite result (NaN/Inf in the frames).
    """
    t, h, w, c = reader.shape
    if t == 0:
        raise InputError(f"{reader.path}: has 0 frames; cannot compute a temporal average")
    total = np.zeros((h, w, c), dtype=np.float64)
    for a in range(0, t, chunk):
        b = min(t, a + chunk)
        add_frames(total, reader.read(a, b))
        if progress is not None:
            progress(b, t)
    avg = total / t
    if not np.isfinite(avg).all():
        raise InputError(f"{reader.path}: contains NaN or Inf values; the temporal average is not finite")
    return avg

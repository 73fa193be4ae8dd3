"""Order-stable sums over frames.

Chunk sizes follow the number of workers, and float64 addition is not
associative: summing each chunk first would make results depend on the
worker count. Every sum over frames therefore adds one frame at a time, in
frame order, into one float64 accumulator.
"""

from __future__ import annotations

import numpy as np

__all__ = ["add_frames"]


def add_frames(acc: np.ndarray | None, frames: np.ndarray) -> np.ndarray:
    """``acc + frames[0] + frames[1] + ...`` left to right (float64); ``acc=None`` starts at zero."""
    if acc is None:
        acc = np.zeros(frames.shape[1:], dtype=np.float64)
    for f in frames:
        acc += f
    return acc

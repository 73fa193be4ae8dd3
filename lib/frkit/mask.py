"""Valid-pixel masks of a session (stage 3).

A recording's mask is the temporal AND of its per-frame valid masks
(``idx.hdf``): a pixel counts only if it was in view in every frame. Each
mask is then warped into the reference grid with the recording's
``w_to_reference`` (nearest sample, and false where the sample falls outside
the frame), and the session mask is the AND over all recordings.
"""

from __future__ import annotations

import numpy as np

from .errors import InputError

__all__ = ["temporal_and", "warp_mask"]


def temporal_and(reader, chunk: int = 512) -> np.ndarray:
    """AND over time of ``reader``'s masks (``> 0``; channel 0): bool ``(H, W)``."""
    t, h, w, _ = reader.shape
    if t == 0:
        raise InputError(f"{reader.path}: has no frames")
    out = np.ones((h, w), dtype=bool)
    for a in range(0, t, chunk):
        block = reader.read(a, min(t, a + chunk))[..., 0]
        out &= (block > 0).all(axis=0)
    return out


def warp_mask(mask: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Warp a bool mask backward by ``flow`` (nearest sample + in-bounds rule).

    ``out(y, x) = mask(round(y + v), round(x + u))`` where ``0 <= x + u < W``
    and ``0 <= y + v < H``, false elsewhere.
    """
    mask = np.asarray(mask, dtype=bool)
    h, w = mask.shape
    if flow.shape[:2] != (h, w):
        raise InputError(f"mask is {h}x{w} but the displacement field is {flow.shape[0]}x{flow.shape[1]}")
    x = np.arange(w, dtype=np.float64)[None, :] + flow[..., 0]
    y = np.arange(h, dtype=np.float64)[:, None] + flow[..., 1]
    inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
    xi = np.clip(np.floor(x + 0.5), 0, w - 1).astype(np.intp)
    yi = np.clip(np.floor(y + 0.5), 0, h - 1).astype(np.intp)
    return mask[yi, xi] & inside

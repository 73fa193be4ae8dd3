"""Gaussian smoothing of images on frkit's compiled separable filter.

fr-align smooths the averages and band-passes them for the match quality;
taking the filter from ``scipy.ndimage`` cost about 0.16 s of imports per
run (fr-align runs once per recording). The smoothing is
``scipy.ndimage.gaussian_filter`` with ``mode="reflect"`` and
``truncate=4`` (same taps, same borders) computed by the flow's separable
filter :func:`frkit.flow.kernels.resize_planes` with float32 taps, so values
agree with scipy's to float32 precision of the weights (about 1e-7 relative).
"""

from __future__ import annotations

import math

import numpy as np

from .flow import kernels as K
from .flow.pyramid import _reflect_index

__all__ = ["gaussian_table", "gaussian_smooth"]


def gaussian_table(n: int, sigma: float, truncate: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """Taps ``(index, weight)``, each ``(n, 2r + 1)``, of a Gaussian filter along an axis of length ``n``.

    ``r = int(truncate * sigma + 0.5)`` (scipy's radius); weights
    ``exp(-x^2 / 2 sigma^2)`` normalized to sum 1; indices reflected
    half-sample at the borders (scipy's ``reflect``: d c b a | a b c d).
    """
    r = int(truncate * float(sigma) + 0.5)
    x = np.arange(-r, r + 1, dtype=np.float64)
    g = np.exp(-0.5 * (x / sigma) ** 2)
    g /= g.sum()
    j = np.arange(n, dtype=np.int64)[:, None] + np.arange(-r, r + 1, dtype=np.int64)[None, :]
    return _reflect_index(j, n), np.broadcast_to(g.astype(np.float32), j.shape).copy()


def gaussian_smooth(img: np.ndarray, sigma: float) -> np.ndarray:
    """``img`` ``(H, W)`` or ``(H, W, C)`` smoothed by a Gaussian of ``sigma`` px along rows and columns only
    (channels are never mixed), borders reflected; float64. ``sigma`` 0 returns a float64 copy."""
    img = np.asarray(img, dtype=np.float64)
    if sigma <= 0:
        return img.copy()
    planar = img[None] if img.ndim == 2 else np.moveaxis(img, -1, 0)
    planar = np.ascontiguousarray(planar)
    k, h, w = planar.shape
    out = np.empty_like(planar)
    K.resize_planes(planar, *gaussian_table(h, sigma), *gaussian_table(w, sigma), out)
    return out[0] if img.ndim == 2 else np.moveaxis(out, 0, -1)


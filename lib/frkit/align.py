"""Displacement between two recordings' temporal averages (session stage 2).

Both averages are smoothed spatially (``sigma_smooth``; the channel axis is
never mixed) and normalized, each by its own range (recordings days apart
differ in brightness). A rigid shift from phase correlation is the start;
the moving average is pre-warped by it, the variational flow refines from
zero, and the result is ``flow + shift`` (exact, since the shift is
constant). The field lives on the reference grid and points into the moving
recording: ``aligned(y, x) = moving(y + v, x + u)``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .errors import InputError
from .flow.displacement import ReferencePyramid, warp
from .flow.params import FlowParams
from .options import ALIGN, resolve
from .preprocess import NORM_EPS
from .rigid import rigid_shift

__all__ = ["between_displacement", "flow_params"]


def flow_params(params, n_channels: int) -> FlowParams:
    """The solver parameters of fr-align's ``params``: every level solved, channels weighted equally."""
    return FlowParams.from_values(params, 0, (1.0 / n_channels,) * n_channels).for_channels(n_channels)


def _as_hwc(img: np.ndarray, name: str) -> np.ndarray:
    img = np.asarray(img, dtype=np.float64)
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3:
        raise InputError(f"{name}: an average must be (H, W) or (H, W, C), got shape {img.shape}")
    if not np.isfinite(img).all():
        raise InputError(f"{name}: contains NaN or Inf")
    return img


def _smooth_normalize(img: np.ndarray, sigma: float) -> np.ndarray:
    if sigma > 0:
        img = ndi.gaussian_filter(img, sigma=(sigma, sigma, 0), mode="reflect", truncate=4.0)
    lo, hi = img.min(), img.max()
    return (img - lo) / (hi - lo + NORM_EPS)


def between_displacement(reference: np.ndarray, moving: np.ndarray, params=None, engine=None) -> np.ndarray:
    """Backward field ``(H, W, 2)`` float64 from ``moving``'s average to ``reference``'s.

    Both are ``(H, W)`` or ``(H, W, C)`` with equal shapes; ``params`` are
    fr-align's values (:data:`frkit.options.ALIGN`, its defaults when None).
    """
    if params is None:
        params = resolve(ALIGN)
    ref = _as_hwc(reference, "reference average")
    mov = _as_hwc(moving, "moving average")
    if ref.shape != mov.shape:
        raise InputError(f"averages differ in shape: reference {ref.shape[:2]} with {ref.shape[2]} channel(s), "
                         f"moving {mov.shape[:2]} with {mov.shape[2]}")
    if np.ptp(ref) == 0 or np.ptp(mov) == 0:
        raise InputError("an average is constant (all pixels equal); nothing to align")
    img1 = _smooth_normalize(ref, params.sigma_smooth)
    img2 = _smooth_normalize(mov, params.sigma_smooth)
    dx, dy = rigid_shift(img1, img2, upsample=params.cc_upsample)
    h, w, c = ref.shape
    p1 = np.ascontiguousarray(np.moveaxis(img1, -1, 0), dtype=np.float32)
    p2 = np.ascontiguousarray(np.moveaxis(img2, -1, 0), dtype=np.float32)
    shifted = warp(p2, np.full((h, w), dx), np.full((h, w), dy), p1, cubic=True).astype(np.float32)
    if engine is None:
        pyramid = ReferencePyramid(p1, flow_params(params, c))
        flow = pyramid.flow(shifted)
    else:
        pyramid = engine.prepare(p1, flow_params(params, c))
        flow = np.moveaxis(engine.to_host(engine.flows(pyramid, shifted[None]))[0], -1, 0).astype(np.float64)
    flow[0] += dx
    flow[1] += dy
    return np.moveaxis(flow, 0, -1)

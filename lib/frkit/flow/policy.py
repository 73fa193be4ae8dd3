"""The per-pixel policies of the method, each defined once for both engines.

The CPU engine (numba, :mod:`frkit.flow.kernels`, :mod:`frkit.flow.warp`)
and the GPU engine (:mod:`frkit.gpu`) must make the same decisions. Every
such decision is written here, and both engines take it from here:

* constants of the kernels (:data:`OMEGA`, :data:`KEYS_A`, :data:`EPS_PSI`,
  :data:`EPS_TENSOR`): the numba kernels import them (numba freezes them at
  compile time) and :mod:`frkit.gpu.source` emits :data:`CUDA_CONSTANTS` as
  ``#define`` lines in front of ``kernels.cu``;
* the per-level schedule: :func:`alpha_scale` / :func:`level_alpha` (the
  smoothness weight of each pyramid level) and :func:`median_applies`
  (whether the 5x5 median filters a level's increments); both level drivers
  (:class:`frkit.flow.displacement.ReferencePyramid` and
  :class:`frkit.gpu.batchflow.BatchPyramid`) call these functions;
* the output rules: :func:`integer_range` (integer output is rounded half to
  even and clipped to the dtype, never wrapped), :func:`valid_mask` (the
  in-bounds rule) and :func:`flow_statistics` (:data:`STAT_NAMES`). The GPU
  engine runs these functions as they are (on CuPy arrays); the CPU engine
  runs compiled per-pixel transcriptions (``frkit.flow.warp``), which the
  tests check against them.
"""

from __future__ import annotations

import numpy as np

__all__ = ["OMEGA", "KEYS_A", "EPS_PSI", "EPS_TENSOR", "CUDA_CONSTANTS", "STAT_NAMES", "alpha_scale",
           "level_alpha", "median_applies", "integer_range", "valid_mask", "flow_statistics"]

#: SOR over-relaxation factor (the default of ``FlowParams.omega``)
OMEGA = 1.95
#: Keys cubic parameter of every image interpolation (OpenCV's INTER_CUBIC)
KEYS_A = -0.75
#: added under the robust (generalized Charbonnier) powers, data and smoothness
EPS_PSI = 1e-5
#: regularizes the gradient-constancy normalization ``1 / (|grad f_x|^2 + eps)``
EPS_TENSOR = 1e-6

#: constants emitted into the CUDA source as float32 literals, ``#define NAME (value f)``
CUDA_CONSTANTS = {"KEYS_A": KEYS_A, "EPS_PSI": EPS_PSI, "EPS_TENSOR": EPS_TENSOR}

#: per-frame flow statistics, in this order
#: (mean_u, mean_v: the mean flow itself, so a QC reads the translation without the fields)
STAT_NAMES = ("mean_disp", "max_disp", "mean_div", "mean_translation", "mean_u", "mean_v")


def alpha_scale(index: int, min_level: int, eta: float) -> float:
    """Factor on the smoothness weights at pyramid level ``index``.

    ``eta ** (-index / 2)`` on the coarser levels (a coarse grid needs a
    stronger weight for the same smoothness in full-resolution pixels) and
    exactly 1 at the finest computed level ``min_level``, whatever it is.
    """
    return 1.0 if index == min_level else eta ** (-index / 2.0)


def level_alpha(alpha: tuple[float, float], level) -> tuple[float, float]:
    """Smoothness weights ``(alpha_x, alpha_y)`` of a :class:`~frkit.flow.pyramid.Level`.

    The solvers divide them by the squared grid spacings themselves.
    """
    return alpha[0] * level.alpha_scale, alpha[1] * level.alpha_scale


def median_applies(rows: int, cols: int) -> bool:
    """Whether a level's flow increments get the 5x5 median: only when both sides exceed 5 pixels."""
    return min(rows, cols) > 5


def integer_range(dtype) -> tuple[int, int] | None:
    """``(min, max)`` of an integer output dtype (values are rounded, then clipped to it); None for floats."""
    dtype = np.dtype(dtype)
    if dtype.kind not in "iu":
        return None
    info = np.iinfo(dtype)
    return info.min, info.max


def valid_mask(flow, xp=np):
    """The in-bounds rule: bool ``(..., H, W)``, true where ``0 <= x + u < W`` and ``0 <= y + v < H``.

    ``flow`` is ``(..., H, W, 2)`` (``[..., 0] = u``, ``[..., 1] = v``), normally
    the stored float32 flow; the sums are taken in float64. ``xp`` is numpy or cupy.
    """
    h, w = flow.shape[-3:-1]
    x = xp.arange(w, dtype=xp.float64) + flow[..., 0].astype(xp.float64)
    y = xp.arange(h, dtype=xp.float64)[:, None] + flow[..., 1].astype(xp.float64)
    return (x >= 0) & (x < w) & (y >= 0) & (y < h)


def flow_statistics(flow, xp=np):
    """:data:`STAT_NAMES` of ``(..., H, W, 2)`` flows: float64 ``(..., 6)``.

    Mean and maximum of ``|w|``, mean divergence ``du/dx + dv/dy`` (central
    differences, one-sided at the edges, spacing 1; a 1-pixel axis adds 0),
    the length of the mean flow, and the mean flow ``(mean u, mean v)``.
    ``xp`` is numpy or cupy.
    """
    h, w = flow.shape[-3:-1]
    u = flow[..., 0].astype(xp.float64)
    v = flow[..., 1].astype(xp.float64)
    mag = xp.sqrt(u * u + v * v)
    div = (xp.gradient(u, axis=-1) if w > 1 else 0 * u) + (xp.gradient(v, axis=-2) if h > 1 else 0 * v)
    plane = (-2, -1)
    mean_u, mean_v = u.mean(axis=plane), v.mean(axis=plane)
    return xp.stack([mag.mean(axis=plane), mag.max(axis=plane), div.mean(axis=plane),
                     xp.sqrt(mean_u ** 2 + mean_v ** 2), mean_u, mean_v], axis=-1)

"""Displacement between two recordings' temporal averages (session stage 2).

Two designs share one building block, :func:`one_shot` (pyflowreg's stage 2):
both averages are smoothed spatially (``sigma``; the channel axis is never
mixed) and normalized, each by its own range (recordings days apart differ in
brightness); a rigid shift from phase correlation is the start; the moving
average is pre-warped by it, the variational flow refines from zero, and the
result is ``flow + shift`` (exact, since the shift is constant).

* **explicit values** (``sigma_smooth``, ``alpha_between`` or
  ``iterations_between`` set): exactly one :func:`one_shot` with them, as the
  peer applies them (unset ones take the seed's 6, 25, 100).
* **auto** (none set, the default): a one-shot with the seed's smoothing and
  regularization as a robust start (they find large offsets and rotations;
  solved down to a coarse level only, as the heavy smoothing leaves nothing
  finer), then :func:`refine`: the light smoothing and weak regularization
  of :data:`frkit.options.ALIGN_AUTO` over the finest pyramid levels,
  starting from the coarse field. The heavy smoothing that makes the
  start robust also blurs away real elastic deformation; the refinement puts
  it back (bench/align_accuracy.py measures both).

The field lives on the reference grid and points into the moving recording:
``aligned(y, x) = moving(y + v, x + u)``. :func:`alignment_match` measures how
well the aligned moving average matches the reference (correlation in the
overlap), so a failed alignment can be seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InputError, OptionError
from .filters import gaussian_smooth
from .flow.displacement import ReferencePyramid, warp
from .flow.params import FlowParams
from .options import ALIGN, ALIGN_AUTO, ALIGN_SEED, resolve
from .preprocess import NORM_EPS
from .rigid import rigid_shift

__all__ = ["between_displacement", "flow_params", "one_shot", "refine", "applied_schedule", "Stage",
           "alignment_match", "channel_weights", "judge", "WARN_CORRELATION",
           "FAIL_CORRELATION", "FAIL_OVERLAP"]


@dataclass(frozen=True)
class Stage:
    """One flow solve of stage 2: smoothing sigma, smoothness weight, SOR iterations per level, the
    number of pyramid levels (None: the ``levels`` parameter, i.e. the full pyramid) and the finest level
    solved (0: full resolution; the field is upsampled from there)."""

    sigma: float
    alpha: tuple[float, float]
    iterations: int
    levels: int | None = None
    min_level: int = 0

    def record(self) -> dict:
        return {"sigma_smooth": self.sigma, "alpha_between": list(self.alpha),
                "iterations_between": self.iterations, "levels": self.levels, "min_level": self.min_level}


def applied_schedule(params) -> tuple[Stage, ...]:
    """The solves fr-align runs for ``params``: one explicit stage, or the auto start and refinement.

    Any of ``sigma_smooth``, ``alpha`` or ``iterations`` set (not ``"auto"``)
    means one pyflowreg-style solve with those values (the others at the
    seed's, :data:`frkit.options.ALIGN_SEED`); all three ``"auto"`` means
    :data:`frkit.options.ALIGN_AUTO`.
    """
    given = {k: params[k] for k in ("sigma_smooth", "alpha", "iterations") if params[k] != "auto"}
    if not given:
        return tuple(Stage(s["sigma_smooth"], (float(s["alpha"]),) * 2, s["iterations"], s["levels"],
                           s["min_level"]) for s in ALIGN_AUTO)
    vals = {**ALIGN_SEED, **given}
    alpha = vals["alpha"]
    alpha = tuple(float(a) for a in alpha) if isinstance(alpha, (tuple, list)) else (float(alpha),) * 2
    return (Stage(float(vals["sigma_smooth"]), alpha, int(vals["iterations"])),)


def channel_weights(params, n_channels: int) -> tuple[float, ...]:
    """Normalized per-channel weights of the data term (``weight``; None: equal)."""
    w = params.get("weight")
    if w is None:
        return (1.0 / n_channels,) * n_channels
    if len(w) != n_channels:
        raise OptionError(f"--weight has {len(w)} value(s) but the averages have {n_channels} channel(s)")
    total = float(sum(w))
    return tuple(float(x) / total for x in w)


def flow_params(params, n_channels: int, stage: Stage | None = None) -> FlowParams:
    """The solver parameters of fr-align's ``params`` for one ``stage`` (default: the first applied)."""
    stage = stage or applied_schedule(params)[0]
    values = params.replace(alpha=stage.alpha, iterations=stage.iterations,
                            levels=stage.levels if stage.levels is not None else params.levels)
    return FlowParams.from_values(values, stage.min_level,
                                  channel_weights(params, n_channels)).for_channels(n_channels)


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
        img = gaussian_smooth(img, sigma)
    lo, hi = img.min(), img.max()
    return (img - lo) / (hi - lo + NORM_EPS)


def _planar(img: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(img, -1, 0), dtype=np.float32)


def _solve(fixed: np.ndarray, moving: np.ndarray, fparams: FlowParams, init, engine) -> np.ndarray:
    """Backward flow ``(H, W, 2)`` float64 of planar ``moving`` against planar ``fixed``."""
    if engine is None:
        w0 = None if init is None else np.ascontiguousarray(np.moveaxis(init, -1, 0), dtype=np.float64)
        return np.moveaxis(ReferencePyramid(fixed, fparams).flow(moving, w0), 0, -1)
    pyramid = engine.prepare(fixed, fparams)
    return np.asarray(engine.to_host(engine.flows(pyramid, moving[None], init))[0], dtype=np.float64)


def one_shot(ref: np.ndarray, mov: np.ndarray, stage: Stage, params, engine=None) -> np.ndarray:
    """pyflowreg's stage 2 with ``stage``'s values: smooth, rigid start, one flow solve. ``(H, W, 2)``."""
    c = ref.shape[2]
    weights = channel_weights(params, c)
    img1 = _smooth_normalize(ref, stage.sigma)
    img2 = _smooth_normalize(mov, stage.sigma)
    dx, dy = rigid_shift(img1, img2, upsample=params.cc_upsample, weights=weights)
    h, w = ref.shape[:2]
    p1, p2 = _planar(img1), _planar(img2)
    shifted = warp(p2, np.full((h, w), dx), np.full((h, w), dy), p1, cubic=True).astype(np.float32)
    flow = _solve(p1, shifted, flow_params(params, c, stage), None, engine)
    flow[..., 0] += dx
    flow[..., 1] += dy
    return flow


def refine(ref: np.ndarray, mov: np.ndarray, start: np.ndarray, stage: Stage, params, engine=None) -> np.ndarray:
    """``start`` refined at ``stage``'s (fine) scale: the flow solve over ``stage.levels`` levels from it."""
    c = ref.shape[2]
    img1 = _smooth_normalize(ref, stage.sigma)
    img2 = _smooth_normalize(mov, stage.sigma)
    return _solve(_planar(img1), _planar(img2), flow_params(params, c, stage), start, engine)


def between_displacement(reference: np.ndarray, moving: np.ndarray, params=None, engine=None) -> np.ndarray:
    """Backward field ``(H, W, 2)`` float64 from ``moving``'s average to ``reference``'s.

    Both are ``(H, W)`` or ``(H, W, C)`` with equal shapes; ``params`` are
    fr-align's values (:data:`frkit.options.ALIGN`, its defaults when None);
    :func:`applied_schedule` says which solves run.
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
    first, *rest = applied_schedule(params)
    w = one_shot(ref, mov, first, params, engine)
    for stage in rest:
        w = refine(ref, mov, w, stage, params, engine)
    return w


def alignment_match(reference: np.ndarray, moving: np.ndarray, w: np.ndarray, weights=None,
                    sigma: float = 2.0, background: float = 12.0) -> tuple[float, float]:
    """``(correlation, overlap_fraction)`` of the reference and the moving average warped by ``w``.

    Channels are combined with ``weights`` (None: equal), both images are
    band-passed: smoothed by ``sigma`` (shot noise would lower the correlation
    of two perfectly aligned averages) less their ``background`` (a Gaussian
    of that sigma: shading and vignetting shared by unrelated fields of view
    would raise it). The Pearson correlation is taken over the
    overlap: the reference pixels whose match ``p + w(p)`` lies inside the
    moving frame. ``overlap_fraction`` is that overlap's share of the frame.
    """
    ref = _as_hwc(reference, "reference average")
    mov = _as_hwc(moving, "moving average")
    c = ref.shape[2]
    wts = np.full(c, 1.0 / c) if weights is None else np.asarray(weights, dtype=np.float64) / np.sum(weights)
    r, m = ((img * wts).sum(-1) for img in (ref, mov))
    r = gaussian_smooth(r, sigma) - gaussian_smooth(r, background)
    m = gaussian_smooth(m, sigma) - gaussian_smooth(m, background)
    h, wd = r.shape
    y, x = np.mgrid[0:h, 0:wd].astype(np.float64)
    yy, xx = y + w[..., 1], x + w[..., 0]
    inside = (yy >= 0) & (yy <= h - 1) & (xx >= 0) & (xx <= wd - 1)
    overlap = float(inside.mean())
    if inside.sum() < 16:
        return 0.0, overlap
    u, v = (np.ascontiguousarray(w[..., k], dtype=np.float64) for k in (0, 1))
    planes = m[None].astype(np.float32)
    aligned = warp(planes, u, v, planes, cubic=False)[0].astype(np.float64)  # bilinear; used inside only
    a, b = r[inside], aligned[inside]
    a, b = a - a.mean(), b - b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return (float((a * b).sum() / denom) if denom > 0 else 0.0), overlap


#: below this correlation fr-align warns (one line). Measured by bench/align_accuracy.py --quality:
#: aligned pairs of real averages score 0.42 (50 raw unregistered frames per average) to 0.95, synthetic ones
#: 0.99; unrelated fields of view -0.4 to 0.26 where they overlap enough
WARN_CORRELATION = 0.6
#: below this correlation the alignment has clearly failed (exit 3, nothing written)
FAIL_CORRELATION = 0.3
#: ... and below this overlap fraction: a quarter-frame offset in both axes plus 3 degrees still overlaps by about
#: half; a flow that wandered off the frame on unrelated images overlaps by a third or less
FAIL_OVERLAP = 0.4


def judge(correlation: float, overlap: float) -> str:
    """``"ok"``, ``"poor"`` (warn) or ``"failed"`` for an alignment's match quality (:func:`alignment_match`)."""
    if correlation < FAIL_CORRELATION or overlap < FAIL_OVERLAP:
        return "failed"
    if correlation < WARN_CORRELATION:
        return "poor"
    return "ok"

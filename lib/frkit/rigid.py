"""Rigid (translation) estimate by phase correlation.

Used as the rigid start of the flow (``--cc-init``) and between recordings
(fr-align). Large frames are shrunk to at most ``work_size`` pixels per axis
first; rows and columns keep their own scale, so non-square frames are right.
"""

from __future__ import annotations

import numpy as np

from .flow.displacement import resize

__all__ = ["rigid_shift"]


def _prepare(img: np.ndarray, weights: np.ndarray | None, rows: int, cols: int) -> np.ndarray:
    img = np.asarray(img, dtype=np.float32)
    if img.ndim == 3:
        if weights is None:
            img = img.mean(axis=-1)
        else:
            w = np.asarray(weights, dtype=np.float64)
            img = (img * (w / w.sum())).sum(axis=-1)
    img = np.ascontiguousarray(img, dtype=np.float32)
    if img.shape != (rows, cols):
        img = resize(img[None], rows, cols)[0]
    img = img - img.mean()
    window = np.outer(np.hanning(rows), np.hanning(cols)).astype(np.float32) if min(rows, cols) > 2 else 1.0
    return img * window


def rigid_shift(reference: np.ndarray, moving: np.ndarray, upsample: int = 1, work_size: int = 256,
                weights=None) -> tuple[float, float]:
    """Constant backward displacement ``(dx, dy)`` that aligns ``moving`` to ``reference``.

    If ``moving`` shows the reference content moved by ``(+dy rows, +dx cols)``,
    the result is ``(dx, dy)``: warping ``moving`` by the constant flow
    ``u = dx, v = dy`` brings it back. Images are ``(H, W)`` or ``(H, W, C)``
    (channels reduced by a weighted mean). ``upsample`` sets the sub-pixel
    resolution (1/upsample of a working pixel).
    """
    h, w = reference.shape[:2]
    rows, cols = min(h, work_size), min(w, work_size)
    ref = _prepare(reference, weights, rows, cols)
    mov = _prepare(moving, weights, rows, cols)
    if not np.any(ref) or not np.any(mov):
        return 0.0, 0.0
    # local: skimage (with scipy.fft) adds ~0.1 s to every fr-compensate start, needed only with --cc-init
    from skimage.registration import phase_cross_correlation

    shift, _, _ = phase_cross_correlation(ref, mov, upsample_factor=max(1, int(upsample)),
                                          normalization="phase", disambiguate=True)
    ty, tx = float(shift[0]), float(shift[1])
    return -tx * w / cols, -ty * h / rows

"""Rigid (translation) estimate by phase correlation.

Used as the rigid start of the flow (``--cc-init``) and between recordings
(fr-align). Large frames are shrunk to at most ``work_size`` pixels per axis
first; rows and columns keep their own scale, so non-square frames are right.

The phase correlation is Guizar-Sicairos' method (whole-pixel peak of the
phase-normalized cross-power spectrum, then a matrix-multiply DFT refinement
around it), as in ``skimage.registration.phase_cross_correlation`` with
``normalization="phase"`` and ``disambiguate=True``, written here on
``numpy.fft``: skimage's module imports ``scipy.ndimage``, about 0.16 s of
fr-align's start-up, for the disambiguation only.
"""

from __future__ import annotations

import numpy as np

from .flow.displacement import resize

__all__ = ["rigid_shift", "phase_correlation"]


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


def _upsampled_dft(spectrum: np.ndarray, size: int, upsample: int, offsets) -> np.ndarray:
    """The inverse DFT of ``spectrum`` on a ``size x size`` grid of step ``1/upsample`` px starting at
    ``-offsets`` (per axis), by two matrix products (only the few samples around the peak are needed)."""
    out = spectrum
    for axis in (1, 0):  # columns, then rows
        n = spectrum.shape[axis]
        kernel = np.exp(2j * np.pi * (np.arange(size) - offsets[axis])[:, None] * np.fft.fftfreq(n, upsample)[None, :])
        kernel = kernel.astype(spectrum.dtype, copy=False)
        out = kernel @ out if axis == 0 else out @ kernel.T
    return out


def _unwrap(reference: np.ndarray, moving: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """The real shift among the ``shift`` modulo the frame size (per axis: positive or negative).

    Phase correlation knows a shift only modulo the frame; each choice
    overlaps a different quadrant of ``moving`` (periodically shifted by the
    rounded shift) with ``reference``; the quadrant whose pixels correlate best
    wins (skimage's rule, there on a cubic-spline shift; the choice is
    coarse, so the rounded shift does).
    """
    shape = np.array(reference.shape)
    positive = np.mod(shift, shape)
    negative = positive - shape
    index = np.round(positive).astype(int)
    shifted = np.roll(moving, tuple(index), axis=(0, 1))
    best, choice = -1.0, None
    for rows in (slice(0, index[0]), slice(index[0], None)):
        for cols in (slice(0, index[1]), slice(index[1], None)):
            a, b = reference[rows, cols].ravel(), shifted[rows, cols].ravel()
            if a.size <= 2:
                continue
            a, b = a - a.mean(), b - b.mean()
            denom = np.sqrt((a @ a) * (b @ b))
            corr = float(a @ b / denom) if denom > 0 else -1.0
            if corr > best:
                best, choice = corr, (rows, cols)
    if choice is None:
        return shift
    return np.array([positive[k] if choice[k].stop is None else negative[k] for k in range(2)])


def phase_correlation(reference: np.ndarray, moving: np.ndarray, upsample: int = 1) -> tuple[float, float]:
    """Shift ``(rows, cols)`` that registers 2-D ``moving`` onto ``reference`` (``moving`` shifted by it
    matches ``reference``), to ``1/upsample`` px. Computed in the inputs' precision (float32 stays float32)."""
    f_ref, f_mov = np.fft.fft2(reference), np.fft.fft2(moving)
    product = f_ref * f_mov.conj()
    # the floor is relative to the data's precision: in float32 (how rigid_shift calls it) it keeps the nearly
    # empty high frequencies of smoothed images small instead of raising their noise to unit weight
    product /= np.maximum(np.abs(product), 100 * np.finfo(product.real.dtype).eps)
    corr = np.fft.ifft2(product)
    peak = np.unravel_index(np.argmax(np.abs(corr)), corr.shape)
    shape = np.array(corr.shape)
    shift = np.array(peak, dtype=np.float64)
    shift[shift > np.trunc(shape / 2)] -= shape[shift > np.trunc(shape / 2)]
    if upsample > 1:
        shift = np.round(shift * upsample) / upsample
        size = int(np.ceil(upsample * 1.5))
        center = np.trunc(size / 2.0)
        fine = _upsampled_dft(product, size, upsample, center - shift * upsample)
        fine_peak = np.array(np.unravel_index(np.argmax(np.abs(fine)), fine.shape), dtype=np.float64)
        shift = shift + (fine_peak - center) / upsample
    shift[shape == 1] = 0.0
    shift = _unwrap(reference, moving, shift)
    return float(shift[0]), float(shift[1])


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
    ty, tx = phase_correlation(ref, mov, max(1, int(upsample)))
    return -tx * w / cols, -ty * h / rows

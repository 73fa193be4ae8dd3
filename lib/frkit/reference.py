"""The reference frame of a recording (``docs/method.md`` §3).

From several frames, the reference is pre-registered: the frames are smoothed
more than usual, normalized, averaged into a provisional reference, each is
registered to it (with a stiffer smoothness, alpha + 2), and the raw frames,
warped by those flows, are averaged. The frames are streamed twice in chunks,
so memory does not grow with the number of reference frames.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .accumulate import add_frames
from .flow.params import FlowParams
from .preprocess import NORM_EPS, Preprocessor, check_finite, expand_sigma

__all__ = ["default_reference_frames", "build_reference", "EXTRA_SMOOTHING", "ALPHA_EXTRA"]

#: extra Gaussian sigma (rows, cols, time) for the reference's pre-registration
EXTRA_SMOOTHING = (1.0, 1.0, 0.5)
#: added to both alpha components when registering the reference frames
ALPHA_EXTRA = 2.0

DEFAULT_FIRST, DEFAULT_STOP = 50, 500


def default_reference_frames(n_frames: int) -> list[int]:
    """0-based frames 50..499, clipped to the recording.

    Recordings shorter than 100 frames have fewer than 50 frames after frame
    50, so they use all their frames instead. No frame is ever repeated.
    """
    if n_frames >= 2 * DEFAULT_FIRST:
        return list(range(DEFAULT_FIRST, min(DEFAULT_STOP, n_frames)))
    return list(range(min(n_frames, DEFAULT_STOP - DEFAULT_FIRST)))


def _window(a: int, b: int, radius: int, n: int) -> tuple[int, int]:
    return max(0, a - radius), min(n, b + radius)


def _smoothed_chunks(reader, indices, pre: Preprocessor, engine, chunk: int):
    """Yield ``(raw, smoothed)`` per chunk: raw ``(m, H, W, C)`` and planar
    smoothed (not normalized) ``(m, C, H, W)`` float32 frames of the sequence
    ``indices``, the temporal filter reflected at the sequence ends."""
    n = len(indices)
    radius = pre.temporal_radius()
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        lo, hi = _window(a, b, radius, n)
        numbers = [indices[p] for p in range(lo, hi)]
        frames = reader.read_indices(numbers)
        check_finite(frames, numbers, reader.path)
        raw = frames[a - lo:b - lo]
        if radius:
            frames = pre.temporal(frames, np.arange(a, b), n, lo)
        else:
            frames = raw
        yield raw, engine.preprocess(frames, pre, normalize=False)


def build_reference(reader, indices, sigma, params: FlowParams, engine, channel_normalization: str = "joint",
                    chunk: int = 32, progress=None) -> np.ndarray:
    """Raw reference ``(H, W, C)`` float64 from the frames ``indices`` of ``reader``.

    ``sigma`` is the pipeline's Gaussian sigma (one row or one per channel),
    ``params`` its flow parameters. ``progress(k)`` is called with the number
    of frames finished in the second pass.
    """
    indices = list(indices)
    if not indices:
        raise ValueError("no reference frames selected")
    if len(indices) == 1:
        return reader.read_indices(indices)[0].astype(np.float64)
    n_ch = reader.shape[3]
    base = np.zeros(n_ch)
    # the range is not known yet: smooth without normalizing, normalize after pass 1
    pre = Preprocessor(base, base + 1.0, expand_sigma(sigma, n_ch)).with_extra_smoothing(EXTRA_SMOOTHING)

    # pass 1: range, mean of the smoothed frames, mean of the raw frames
    lo = np.full(n_ch, np.inf)
    hi = np.full(n_ch, -np.inf)
    total = None
    raw_total = None
    for raw, smooth in _smoothed_chunks(reader, indices, pre, engine, chunk):
        lo = np.minimum(lo, smooth.min(axis=(0, 2, 3)))
        hi = np.maximum(hi, smooth.max(axis=(0, 2, 3)))
        total = add_frames(total, smooth)
        raw_total = add_frames(raw_total, raw)
    if channel_normalization == "joint":
        lo[:] = lo.min()
        hi[:] = hi.max()
    n = len(indices)
    scale = 1.0 / (hi - lo + NORM_EPS)
    provisional = ((total / n - lo[:, None, None]) * scale[:, None, None]).astype(np.float32)
    raw_mean = raw_total / n

    # pass 2: register every frame to the provisional mean, average the warped raw frames
    stiff = replace(params, alpha=(params.alpha[0] + ALPHA_EXTRA, params.alpha[1] + ALPHA_EXTRA))
    pyramid = engine.prepare(provisional, stiff)
    acc = np.zeros(reader.shape[1:], dtype=np.float64)
    for raw, smooth in _smoothed_chunks(reader, indices, pre, engine, chunk):
        proc = ((smooth - lo[None, :, None, None].astype(np.float32)) *
                scale[None, :, None, None].astype(np.float32))
        flows = engine.flows(pyramid, proc)
        add_frames(acc, engine.to_host(engine.warp_frames(raw, flows, raw_mean, "cubic", np.float64)))
        if progress is not None:
            progress(len(raw))
    return acc / n

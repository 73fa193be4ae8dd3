"""Temporal smoothing of the flow fields within a batch (``--flow-smoothing``).

At real photon counts each frame's flow carries estimation noise that is
independent from frame to frame (or shared by neighbours through the temporal
prefilter), while physiological motion is mostly smooth over a few frames. A
Gaussian over time, applied to the flows before they warp the frames,
averages the noise away; how wide depends on the recording, so ``auto``
chooses per batch, for the translation and the non-rigid rest apart, the
sigma with the least expected error (:func:`smoothing_risk`, Stein's
unbiased risk) under the flow's noise as measured on noisy copies of the
reference (:class:`FlowNoise`). ``docs/method.md`` section 4.4 has the rule
and the measurements.

The filter works within a batch (like the temporal prefilter, it never
crosses a batch border); near a border the taps that fall outside are
dropped and the rest renormalized. Each output frame is the same weighted
sum, in the same order, however the batch is cut into chunks, so chunked and
time-chunked runs give the same bits as a whole run.
:class:`StreamingFlowFilter` delays frames by the filter's radius and works
on numpy and CuPy arrays alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["radius", "tap_weights", "StreamingFlowFilter", "context_frames", "choose_smoothing", "smoothing_risk",
           "smoother_matrix", "FlowNoise", "flow_noise", "lag_covariances", "SMOOTHING_CHOICES"]

#: taps reach this many sigmas (the Gaussian beyond holds under 0.3 % of the weight)
TRUNCATE = 3.0
#: the sigmas (frames) ``auto`` chooses among for each part of the flow (0: not smoothed)
SMOOTHING_CHOICES = (0.0, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)
#: columns of the sample summed at once into its Gram matrix (bounds the float64 copy)
_GRAM_BLOCK = 1 << 16


def radius(sigma: float) -> int:
    """Frames on either side of a frame that its smoothed flow depends on (0: no smoothing)."""
    return int(math.ceil(TRUNCATE * sigma)) if sigma > 0 else 0


def tap_weights(sigma: float, frames: np.ndarray, b0: int, b1: int, r: int | None = None) -> np.ndarray:
    """``(2R+1, n)`` float32 weights of offsets ``-R..R`` for ``frames`` of batch ``[b0, b1)``.

    ``R`` is ``r`` (at least ``radius(sigma)``; offsets beyond the sigma's own
    radius weigh 0) or ``radius(sigma)``. Offsets that leave the batch weigh 0;
    the others are renormalized to sum 1.
    """
    own = radius(sigma)
    r = own if r is None else r
    offsets = np.arange(-r, r + 1)
    g = np.exp(-0.5 * (offsets / sigma) ** 2) if own else (offsets == 0).astype(np.float64)
    g[np.abs(offsets) > own] = 0.0
    t = np.asarray(frames)[None, :] + offsets[:, None]
    w = np.where((t >= b0) & (t < b1), g[:, None], 0.0)
    return (w / w.sum(axis=0, keepdims=True)).astype(np.float32)


def smoother_matrix(k: int, sigma: float) -> np.ndarray:
    """``(k, k)`` float64: the filter over a window of ``k`` consecutive frames as one batch (its
    :func:`tap_weights`, row ``t`` weighting frame ``t + offset``); the identity for ``sigma == 0``."""
    frames = np.arange(k)
    weights = tap_weights(sigma, frames, 0, k).astype(np.float64)
    m = np.zeros((k, k))
    for row, offset in zip(weights, range(-radius(sigma), radius(sigma) + 1)):
        t = frames + offset
        inside = (t >= 0) & (t < k)
        m[frames[inside], t[inside]] = row[inside]
    return m


@dataclass(frozen=True)
class FlowNoise:
    """The flow's estimation noise: its covariance between frames ``j`` apart (``j = 0, 1, ...``; the
    temporal prefilter correlates neighbours), per element, of the translation and of the rest."""

    translation: tuple
    rest: tuple

    def as_record(self) -> dict:
        return {"translation": list(self.translation), "rest": list(self.rest)}


def lag_covariances(x: np.ndarray, lags: int) -> tuple:
    """Covariance of ``(K, n)`` samples (rows a sequence) between rows ``0..lags`` apart, over the columns;
    those beyond lag 0 clipped to ``[0, lag 0]`` (a Gaussian prefilter correlates neighbours positively,
    and a few samples would otherwise pass their scatter on as structure)."""
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean(axis=0)
    k = len(x)
    c0 = float(np.mean(x * x))
    return (c0,) + tuple(float(np.clip(np.mean(x[:k - j] * x[j:]), 0.0, c0)) if j < k else 0.0
                         for j in range(1, lags + 1))


def flow_noise(flows: np.ndarray, lags: int) -> FlowNoise:
    """:class:`FlowNoise` from ``(K, H, W, 2)`` host flows whose true flow is zero (noisy copies of the
    reference, :func:`frkit.noise.shot_noise_copies`, in sequence); ``lags``: how far apart frames share
    noise (twice the temporal prefilter's radius: 0 without one)."""
    translation, rest = _split(flows)
    return FlowNoise(lag_covariances(translation, lags), lag_covariances(rest, lags))


def smoothing_risk(gram: np.ndarray, per_frame: int, sigma: float, covariance) -> float:
    """Expected squared error per element of the flows smoothed with ``sigma``: Stein's unbiased risk.

    For ``k`` frames of ``per_frame`` elements with Gram matrix ``G`` (over
    time) and noise covariance ``S`` between frames (Toeplitz of
    ``covariance``, by lag): ``(tr((L - I) G (L - I)^T) / per_frame - tr(S)
    + 2 tr(L S)) / k`` with ``L`` the :func:`smoother_matrix`. It needs the
    noise, not the motion: smoothing wins where the flow's fluctuation is
    the noise, and loses where it is motion, fast or uncorrelated motion
    included (sigma 0 costs exactly the noise).
    """
    k = len(gram)
    lm = smoother_matrix(k, sigma)
    a = lm - np.eye(k)
    lag = np.abs(np.arange(k)[None, :] - np.arange(k)[:, None])
    cov = np.asarray(covariance, dtype=np.float64)
    s = np.where(lag < len(cov), cov[np.minimum(lag, len(cov) - 1)], 0.0)
    return (float(np.einsum("ij,jk,ik->", a, gram, a)) / per_frame - float(np.trace(s))
            + 2.0 * float(np.einsum("ij,ji->", lm, s))) / k


def _gram(x: np.ndarray) -> np.ndarray:
    """``x @ x.T`` in float64 for ``(k, n)`` ``x``, in fixed blocks and without BLAS: the same bits on
    any machine and thread count (time chunks and a whole run must choose alike)."""
    g = np.zeros((len(x), len(x)))
    for c in range(0, x.shape[1], _GRAM_BLOCK):
        block = x[:, c:c + _GRAM_BLOCK].astype(np.float64)
        g += np.einsum("in,jn->ij", block, block)
    return g


def _split(flows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(translation (k, 2) float64, rest (k, H*W*2) float32)`` of ``(k, H, W, 2)`` host flows."""
    flows = np.asarray(flows)
    translation = frame_means(flows)
    rest = (flows - translation[:, None, None, :].astype(np.float32)).reshape(len(flows), -1)
    return translation, rest


def choose_smoothing(flows: np.ndarray, noise: FlowNoise, choices=SMOOTHING_CHOICES) -> tuple[float, float]:
    """``(sigma of the translation, sigma of the non-rigid rest)`` for ``(k, H, W, 2)`` consecutive host flows.

    The flow of each frame is split into its translation (the mean over the
    field) and the non-rigid rest; for each part the sigma among ``choices``
    with the least :func:`smoothing_risk` under ``noise`` is chosen. A still,
    noisy recording gets the widest (its flow is noise), motion larger than
    the noise the least.
    """
    if len(flows) < 3:
        return 0.0, 0.0
    translation, rest = _split(flows)
    chosen = []
    for gram, per_frame, cov in ((translation @ translation.T, 2, noise.translation),
                                 (_gram(rest), rest.shape[1], noise.rest)):
        risks = [smoothing_risk(gram, per_frame, c, cov) for c in choices]
        chosen.append(float(choices[int(np.argmin(risks))]))
    return chosen[0], chosen[1]


def frame_means(flows) -> np.ndarray:
    """``(n, 2)`` float64 host means (u, v) of ``(n, H, W, 2)`` flows (numpy or CuPy), each frame on its own,
    so its bits do not depend on how frames were grouped."""
    if isinstance(flows, np.ndarray):
        from .flow.kernels import flow_means

        out = np.empty((len(flows), 2))
        flow_means(np.ascontiguousarray(flows, dtype=np.float32).reshape(len(flows), -1), out)
        return out
    return np.stack([f.mean(axis=(0, 1), dtype=np.float64).get() for f in flows]).reshape(-1, 2)


def context_frames(start: int, stop: int, batch_size: int, n_frames: int, sigma) -> tuple[int, int]:
    """Frames ``[lo, hi)`` whose flows frames ``[start, stop)`` need: ``radius`` more on either side,
    within the batches of ``start`` and ``stop - 1`` (``sigma`` a number or a sequence: its largest)."""
    r = radius(max(np.atleast_1d(sigma)))
    lo = max((start // batch_size) * batch_size, start - r)
    hi = min(min(n_frames, ((stop - 1) // batch_size + 1) * batch_size), stop + r)
    return lo, hi


def _xp(array):
    """numpy or CuPy, whichever holds ``array``."""
    if isinstance(array, np.ndarray):
        return np
    import cupy

    return cupy.get_array_module(array)


class StreamingFlowFilter:
    """Smooth the flows of one batch ``[b0, b1)`` as they arrive in consecutive chunks.

    ``sigma`` is one sigma for the whole flow, or ``(translation, rest)``:
    the per-frame translation (mean flow) smoothed with the first, the
    non-rigid rest with the second (:func:`choose_smoothing`).
    :meth:`push` takes a chunk's first frame, its flows ``(n, H, W, 2)`` and a
    host payload with one entry per frame (the raw frames); it returns the
    ``(first frame, smoothed flows, payload)`` pieces that are complete (their
    later neighbours have arrived), in order. :meth:`finish` returns the rest
    once the batch's last frame was pushed. With ``sigma == 0`` every chunk
    passes through unchanged.
    """

    def __init__(self, sigma, b0: int, b1: int):
        self.sigma_translation, self.sigma_rest = (float(sigma),) * 2 if np.isscalar(sigma) else map(float, sigma)
        self.b0, self.b1 = b0, b1
        self.r = max(radius(self.sigma_translation), radius(self.sigma_rest))
        self.split = self.sigma_translation != self.sigma_rest
        self.first = None  # frame index of the buffer's first frame
        self.flows = None
        self.means = None  # (n, 2) float64 per-frame translations, when the two parts are smoothed apart
        self.payload = None
        self.next_out = None  # first frame not yet returned

    def push(self, a: int, flows, payload: np.ndarray) -> list:
        if self.r == 0:
            return [(a, flows, payload)]
        means = frame_means(flows) if self.split else None
        if self.first is None:
            self.first, self.next_out, self.flows, self.payload, self.means = a, a, flows, payload, means
        else:
            if a != self.first + len(self.flows):
                raise ValueError(f"flows of frame {a} pushed out of order")
            self.flows = _xp(flows).concatenate([self.flows, flows])
            self.payload = np.concatenate([self.payload, payload])
            self.means = np.concatenate([self.means, means]) if self.split else None
        end = self.first + len(self.flows)
        return self._emit(end if end >= self.b1 else end - self.r)

    def finish(self) -> list:
        if self.r == 0 or self.first is None:
            return []
        return self._emit(self.first + len(self.flows))

    def _sources(self, frames: np.ndarray, k: int, weights: np.ndarray) -> np.ndarray:
        """Buffer positions of offset ``k``'s taps. A tap that weighs 0 (outside the batch, beyond the
        sigma) reads the frame itself, so the (zero) term has the same bits however the batch was cut
        into chunks; taps beyond the buffer occur only for the context frames of a time chunk (not
        output): they read the frame itself too."""
        t = frames + k
        end = self.first + len(self.flows)
        return np.where((weights > 0) & (t >= self.first) & (t < end), t, frames) - self.first

    def _weighted_sum(self, xp, sources: np.ndarray, weights: np.ndarray, shift: np.ndarray):
        """``(n_out, H, W, 2)`` float32: ``sum_j weights[j] * flows[sources[j]] + shift`` per output frame (taps in
        order; ``shift`` ``(n_out, 2)`` float32 per component)."""
        n_out = sources.shape[1]
        if xp is np:  # compiled, blocked over pixels: the wide sigmas read many frames per output frame
            from .flow.kernels import temporal_taps

            out = np.empty((n_out,) + self.flows.shape[1:], dtype=np.float32)
            temporal_taps(self.flows.reshape(len(self.flows), -1), sources.astype(np.int64),
                          np.ascontiguousarray(weights, dtype=np.float32), shift, out.reshape(n_out, -1))
            return out
        out = None
        for src, wj in zip(sources, weights):
            w = xp.asarray(wj.reshape(-1, 1, 1, 1))
            contiguous = bool(np.all(np.diff(src) == 1))  # a view, not a gathered copy
            taps = self.flows[src[0]:src[0] + len(src)] if contiguous else self.flows[xp.asarray(src)]
            if out is None:
                out = w * taps
            else:
                out += w * taps
        out = out.astype(np.float32, copy=False)
        return out + xp.asarray(shift[:, None, None, :]) if self.split else out

    def _emit(self, upto: int) -> list:
        """Smoothed flows of frames ``[next_out, upto)``; keeps the frames later ones still need."""
        if upto <= self.next_out:
            return []
        xp = _xp(self.flows)
        frames = np.arange(self.next_out, upto)
        rest_weights = tap_weights(self.sigma_rest, frames, self.b0, self.b1, self.r)
        taps = [j for j, k in enumerate(range(-self.r, self.r + 1)) if abs(k) <= radius(self.sigma_rest)]
        sources = np.stack([self._sources(frames, j - self.r, rest_weights[j]) for j in taps])
        shift = np.zeros((len(frames), 2))
        if self.split:
            # the translation smoothed with its own sigma: add (G_translation - G_rest) of the means
            translation_weights = tap_weights(self.sigma_translation, frames, self.b0, self.b1, self.r)
            for j, k in enumerate(range(-self.r, self.r + 1)):
                w = translation_weights[j].astype(np.float64) - rest_weights[j]
                shift += w[:, None] * self.means[self._sources(frames, k, translation_weights[j] + rest_weights[j])]
        out = self._weighted_sum(xp, sources, rest_weights[taps], shift.astype(np.float32))
        piece = (self.next_out, out, self.payload[self.next_out - self.first:upto - self.first])
        keep = max(self.first, upto - self.r) - self.first
        self.flows, self.payload = self.flows[keep:], self.payload[keep:]
        if self.split:
            self.means = self.means[keep:]
        self.first += keep
        self.next_out = upto
        return [piece]

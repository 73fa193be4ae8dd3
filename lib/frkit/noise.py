"""The noise level of a recording, and the smoothness weight it calls for (``--alpha auto``).

At real photon counts (a few photons per pixel and frame, or fewer) shot
noise dominates the frames, and the flow's data term fits it: a smoothness
weight tuned on clean images (alpha 1.5 on the [0, 1]-normalized frames)
lets the flow invent frame-to-frame motion where there is none. The remedy
here is the textbook one for a quadratic regularizer: weight smoothness in
proportion to the noise variance of the data, never below the classic 1.5
(so clean recordings are corrected exactly as before).

The noise is measured on the raw frames, normalized as the method sees them,
with Immerkaer's estimator: the 3x3 mask below is the difference of two
Laplacians, so it cancels image content that is locally linear and passes
white noise with a gain of 36. It needs one frame, not a time series, so
motion does not inflate it, and it averages squares (not a median), so it
stays right at counts of a photon or less, where most pixels are 0 or 1.
``docs/method.md`` (section "Regularization from the noise") shows the
measurements behind the constants.
"""

from __future__ import annotations

import numpy as np

from .preprocess import NORM_EPS, normalization_range

__all__ = ["noise_variance", "channel_noise_variances", "weighted_variance", "shot_noise_copies", "auto_alpha",
           "auto_flow_smoothing", "ALPHA_FLOOR", "ALPHA_PER_VARIANCE", "ALPHA_CEILING", "SMOOTHING_FROM_ALPHA",
           "NOISE_FRAMES"]

#: the classic smoothness weight: the least ``auto`` chooses (clean recordings keep it)
ALPHA_FLOOR = 1.5
#: alpha per unit of noise variance of the normalized frames (measured, see the module docstring)
ALPHA_PER_VARIANCE = 2000.0
#: the most ``auto`` chooses (reached below about one photon per pixel and frame)
ALPHA_CEILING = 50.0
#: the noise (as the alpha it calls for, unclipped) from which the flow is also smoothed over time; full
#: smoothing from ALPHA_CEILING on, where the spatial weight stops growing
SMOOTHING_FROM_ALPHA = 25.0
#: frames the noise is measured on
NOISE_FRAMES = 20

_MASK = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float64)


def _mask_response(frame: np.ndarray) -> np.ndarray:
    """The interior ``(H-2, W-2)`` of the 3x3 correlation of ``frame`` with :data:`_MASK`.

    Summed in ``scipy.ndimage.correlate``'s order (the mask row by row, from
    0), so the bits are its (a test checks): the noise, and with it
    ``--alpha auto``, stay those of earlier versions, without the ~0.2 s
    import of scipy.ndimage at the start of fr-compensate (on a chunked
    recording's critical path: the reference step).
    """
    h, w = frame.shape
    acc = None
    for i in range(3):
        for j in range(3):
            term = frame[i:h - 2 + i, j:w - 2 + j] * _MASK[i, j]
            acc = term if acc is None else acc + term
    return acc


def noise_variance(frames: np.ndarray, weights=None, channel_normalization: str = "joint") -> float:
    """Noise variance of ``(n, H, W, C)`` raw frames, normalized as the method normalizes them.

    The normalization range comes from the frames' mean (the reference is not
    known yet when the weight is chosen); per channel
    (:func:`channel_noise_variances`), then weighted by ``weights`` (the data
    term's channel weights, default equal).
    """
    return weighted_variance(channel_noise_variances(frames, channel_normalization), weights)


def weighted_variance(per_channel: np.ndarray, weights=None) -> float:
    """The channels' noise variances weighted by the data term's channel ``weights`` (default equal)."""
    c = len(per_channel)
    weights = np.full(c, 1.0 / c) if weights is None else np.asarray(weights[:c], dtype=np.float64)
    return float(np.asarray(per_channel) @ (weights / weights.sum()))


def channel_noise_variances(frames: np.ndarray, channel_normalization: str = "joint") -> np.ndarray:
    """``(C,)`` noise variance of each channel of ``(n, H, W, C)`` raw frames, normalized as in
    :func:`noise_variance`."""
    frames = np.asarray(frames, dtype=np.float64)
    n, h, w, c = frames.shape
    if min(h, w) < 3:
        return np.zeros(c)
    low, high = normalization_range(frames.mean(axis=0), channel_normalization)
    per_channel = np.empty(c)
    for k in range(c):
        scale = 1.0 / (high[k] - low[k] + NORM_EPS)
        total = 0.0
        for frame in frames[..., k]:
            response = _mask_response(frame * scale)
            total += float(np.mean(response * response)) / 36.0
        per_channel[k] = total / n
    return per_channel


#: shot noise grows with the signal; this share of the brightest pixel's variance is everywhere (dark
#: counts, read noise), so the darkest pixels are not noise-free
SHOT_NOISE_FLOOR = 0.05


def shot_noise_copies(reference: np.ndarray, variances, channel_normalization: str, n: int,
                      seed: int = 0) -> np.ndarray:
    """``(n, H, W, C)`` float32 copies of a raw ``(H, W, C)`` reference with noise as the recording's.

    Per channel the noise is Gaussian with a variance proportional to the
    normalized signal (plus :data:`SHOT_NOISE_FLOOR`), as shot noise is,
    scaled so that its mean is ``variances[c]`` (normalized units, as
    :func:`channel_noise_variances` measures). The flows of such copies
    against the reference are the flow's estimation noise alone (their true
    flow is zero). Seeded: the same copies on every run.
    """
    reference = np.asarray(reference, dtype=np.float64)
    low, high = normalization_range(reference, channel_normalization)
    rng = np.random.default_rng(seed)
    copies = np.empty((n,) + reference.shape, dtype=np.float32)
    for c in range(reference.shape[-1]):
        span = high[c] - low[c] + NORM_EPS
        profile = np.clip((reference[..., c] - low[c]) / span, 0.0, None) + SHOT_NOISE_FLOOR
        sd = np.sqrt(float(variances[c]) * profile / profile.mean()) * span
        copies[..., c] = reference[..., c] + sd * rng.standard_normal((n,) + reference.shape[:2])
    return copies


def auto_alpha(variance: float) -> float:
    """The smoothness weight for a noise variance: ``clip(2000 * variance, 1.5, 50)``."""
    return float(np.clip(ALPHA_PER_VARIANCE * variance, ALPHA_FLOOR, ALPHA_CEILING))


def auto_flow_smoothing(variance: float, full_sigma: float) -> float:
    """The temporal sigma of the flows (frames) for a noise variance.

    None on clean and moderately noisy recordings (there the spatial weight
    alone suffices, and smoothing would only blur fast motion); rising
    linearly from :data:`SMOOTHING_FROM_ALPHA` to ``full_sigma`` where
    :func:`auto_alpha` reaches its ceiling (about two photons per pixel and
    frame, and below).
    """
    ramp = (ALPHA_PER_VARIANCE * variance - SMOOTHING_FROM_ALPHA) / (ALPHA_CEILING - SMOOTHING_FROM_ALPHA)
    return float(full_sigma * np.clip(ramp, 0.0, 1.0))

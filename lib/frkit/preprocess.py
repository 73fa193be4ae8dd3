"""Preprocessing of frames before flow estimation (``docs/method.md`` §1.1, §2).

Frames are normalized with one affine map taken from the raw reference (so
every batch shares the reference's intensity scale; values are not clipped),
then Gaussian filtered: spatially per frame, and optionally along time inside
a batch (half-sample symmetric borders at the batch ends). Normalization is
affine and the Gaussian is linear, so the order of the two does not matter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba as nb
import numpy as np

__all__ = [
    "Preprocessor",
    "gaussian_kernel",
    "normalization_range",
    "temporal_weights",
    "bin_frames",
    "check_finite",
]

NORM_EPS = 1e-8


def gaussian_kernel(sigma: float) -> np.ndarray:
    """Normalized 1-D Gaussian taps, radius ``floor(4 sigma + 0.5)`` (float64)."""
    if sigma <= 0:
        return np.ones(1)
    radius = int(4.0 * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-0.5 * (x / sigma) ** 2)
    return g / g.sum()


def _reflect(i: int, n: int) -> int:
    """Half-sample symmetric index (-1 -> 0, n -> n - 1)."""
    if n == 1:
        return 0
    period = 2 * n
    i %= period
    return period - 1 - i if i >= n else i


def temporal_weights(n: int, sigma: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Temporal Gaussian over a sequence of ``n`` frames.

    Returns ``(sources, weights, radius)``: ``sources[t]`` lists the frame
    positions (reflected at both ends) that frame ``t`` averages with
    ``weights``. ``radius`` is 0 when the filter is the identity.
    """
    g = gaussian_kernel(sigma)
    radius = len(g) // 2
    src = np.array([[_reflect(t + r, n) for r in range(-radius, radius + 1)] for t in range(n)], dtype=np.int64)
    return src, g, radius


def normalization_range(reference: np.ndarray, mode: str = "joint") -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``(low, high)`` of the raw reference ``(H, W, C)``.

    ``joint`` uses the range over all channels for every channel; ``separate``
    each channel's own range.
    """
    ref = np.asarray(reference, dtype=np.float64)
    c = ref.shape[-1]
    if mode == "joint":
        return np.full(c, ref.min()), np.full(c, ref.max())
    if mode == "separate":
        flat = ref.reshape(-1, c)
        return flat.min(axis=0), flat.max(axis=0)
    raise ValueError(f"unknown channel normalization {mode!r}")


@nb.njit(nogil=True, cache=True, error_model="numpy")
def _normalize_smooth(frame, lo, scale, kr_list, kc_list, out, tmp):
    """``out[k] = G_k((frame[..., k] - lo[k]) * scale[k])`` for one ``(H, W, C)`` frame.

    Separable Gaussian, rows first then columns, half-sample symmetric borders.
    ``kr_list/kc_list`` are ``(C, 2R+1)`` zero-padded tap tables (centred).
    """
    H, W, C = frame.shape
    for k in range(C):
        kr = kr_list[k]
        kc = kc_list[k]
        rr = kr.shape[0] // 2
        rc = kc.shape[0] // 2
        lk = lo[k]
        sk = scale[k]
        # vertical pass (along rows / axis 0), vectorized along columns
        for y in range(H):
            for x in range(W):
                tmp[y, x] = 0.0
            for t in range(-rr, rr + 1):
                wgt = kr[t + rr]
                if wgt == 0.0:
                    continue
                yy = y + t
                # reflect (half-sample symmetric), repeated for tiny images
                while yy < 0 or yy >= H:
                    yy = -yy - 1 if yy < 0 else 2 * H - 1 - yy
                for x in range(W):
                    tmp[y, x] += wgt * ((frame[yy, x, k] - lk) * sk)
        # horizontal pass
        for y in range(H):
            for x in range(W):
                acc = 0.0
                for t in range(-rc, rc + 1):
                    wgt = kc[t + rc]
                    if wgt == 0.0:
                        continue
                    xx = x + t
                    while xx < 0 or xx >= W:
                        xx = -xx - 1 if xx < 0 else 2 * W - 1 - xx
                    acc += wgt * tmp[y, xx]
                out[k, y, x] = acc


def _pad_taps(kernels: list[np.ndarray]) -> np.ndarray:
    width = max(len(k) for k in kernels)
    out = np.zeros((len(kernels), width))
    for i, k in enumerate(kernels):
        off = (width - len(k)) // 2
        out[i, off:off + len(k)] = k
    return out


@dataclass(frozen=True)
class Preprocessor:
    """Normalization and spatial Gaussian for frames of one recording.

    ``low``/``high`` are the per-channel normalization range (from the raw
    reference); ``sigma`` is ``(C, 3)``: per channel (rows, cols, time).
    """

    low: np.ndarray
    high: np.ndarray
    sigma: np.ndarray

    @classmethod
    def from_reference(cls, reference: np.ndarray, sigma, mode: str = "joint") -> "Preprocessor":
        lo, hi = normalization_range(reference, mode)
        return cls(lo, hi, expand_sigma(sigma, reference.shape[-1]))

    @property
    def n_channels(self) -> int:
        return len(self.low)

    def with_extra_smoothing(self, extra=(1.0, 1.0, 0.5)) -> "Preprocessor":
        return Preprocessor(self.low, self.high, self.sigma + np.asarray(extra, dtype=np.float64))

    def _tables(self):
        kr = _pad_taps([gaussian_kernel(s) for s in self.sigma[:, 0]])
        kc = _pad_taps([gaussian_kernel(s) for s in self.sigma[:, 1]])
        return kr, kc

    def spatial(self, frame: np.ndarray, normalize: bool = True) -> np.ndarray:
        """Normalize and spatially smooth one ``(H, W, C)`` frame -> planar ``(C, H, W)`` float32."""
        h, w, c = frame.shape
        if normalize:
            lo = self.low
            scale = 1.0 / (self.high - self.low + NORM_EPS)
        else:
            lo = np.zeros(c)
            scale = np.ones(c)
        kr, kc = self._tables_cached()
        out = np.empty((c, h, w), dtype=np.float32)
        tmp = np.empty((h, w), dtype=np.float64)
        _normalize_smooth(np.ascontiguousarray(frame), lo, scale, kr, kc, out, tmp)
        return out

    def _tables_cached(self):
        cache = self.__dict__.get("_taps")
        if cache is None:
            cache = self._tables()
            object.__setattr__(self, "_taps", cache)
        return cache

    def temporal_radius(self) -> int:
        """Largest temporal filter radius over the channels (0 = no temporal filter)."""
        return max(len(gaussian_kernel(s)) // 2 for s in self.sigma[:, 2])

    def temporal(self, frames: np.ndarray, positions: np.ndarray, n: int, offset: int) -> np.ndarray:
        """Temporal Gaussian of the frames at sequence positions ``positions``.

        ``frames`` holds consecutive sequence positions ``offset, offset+1, ...``
        (enough context for the radius); the sequence has ``n`` frames and is
        reflected at both ends. Returns float32 ``(len(positions), H, W, C)``.
        """
        c = frames.shape[-1]
        out = np.empty((len(positions),) + frames.shape[1:], dtype=np.float32)
        for k in range(c):
            src, g, _ = temporal_weights(n, self.sigma[k, 2])
            for i, t in enumerate(positions):
                acc = np.zeros(frames.shape[1:3], dtype=np.float64)
                for s, wgt in zip(src[t], g):
                    acc += wgt * frames[s - offset, :, :, k]
                out[i, :, :, k] = acc
        return out


def expand_sigma(sigma, n_channels: int) -> np.ndarray:
    """``(C, 3)`` float64 sigma from one row or a per-channel table.

    Channels without a row take row 0.
    """
    s = np.atleast_2d(np.asarray(sigma, dtype=np.float64))
    if s.shape[1] != 3:
        raise ValueError("sigma rows need three values: rows, cols, time")
    if (s < 0).any() or not np.isfinite(s).all():
        raise ValueError("sigma values must be finite and >= 0")
    rows = [s[k] if k < len(s) else s[0] for k in range(n_channels)]
    return np.array(rows, dtype=np.float64)


def check_finite(frames: np.ndarray, frame_numbers, source) -> None:
    """InputError naming the first frame with NaN or Inf (float data only)."""
    if frames.dtype.kind != "f":
        return
    ok = np.isfinite(frames.reshape(len(frames), -1)).all(axis=1)
    if not ok.all():
        from .errors import InputError

        raise InputError(f"{source}: frame {frame_numbers[int(np.argmin(ok))]} contains NaN or Inf")


def bin_frames(frames: np.ndarray, bin_size: int) -> np.ndarray:
    """Average groups of ``bin_size`` consecutive frames along axis 0.

    A last incomplete group is averaged over the frames it has. The mean is
    computed in float64 and cast back to the input dtype (integers rounded
    to nearest and clipped, so they never wrap around).
    """
    if bin_size == 1:
        return frames
    t = frames.shape[0]
    n = math.ceil(t / bin_size)
    out = np.empty((n,) + frames.shape[1:], dtype=frames.dtype)
    for i in range(n):
        group = frames[i * bin_size:(i + 1) * bin_size].astype(np.float64).mean(axis=0)
        out[i] = cast_frames(group, frames.dtype)
    return out


def cast_frames(values: np.ndarray, dtype) -> np.ndarray:
    """Cast float values to ``dtype``; integers are rounded and clipped to range."""
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    if dtype.kind == "b":
        return values > 0.5
    return values.astype(dtype)

"""Temporal smoothing of the flow fields within a batch (``--flow-smoothing``).

At real photon counts each frame's flow carries estimation noise that is
independent from frame to frame, while physiological motion is smooth over a
few frames (tens of milliseconds). A Gaussian over time, applied to the flows
before they warp the frames, averages the noise away and keeps the motion:
on the noisy benchmark (``bench/noisy_motion.py``) a sigma of 0.7 frames
reduces the motion invented on a still recording by a third or more and
improves the correction of moving ones (``docs/method.md`` section 4.4).

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

import numpy as np

__all__ = ["radius", "tap_weights", "StreamingFlowFilter", "context_frames"]

#: taps reach this many sigmas (the Gaussian beyond holds under 0.3 % of the weight)
TRUNCATE = 3.0


def radius(sigma: float) -> int:
    """Frames on either side of a frame that its smoothed flow depends on (0: no smoothing)."""
    return int(math.ceil(TRUNCATE * sigma)) if sigma > 0 else 0


def tap_weights(sigma: float, frames: np.ndarray, b0: int, b1: int) -> np.ndarray:
    """``(2R+1, n)`` float32 weights of offsets ``-R..R`` for ``frames`` of batch ``[b0, b1)``.

    Offsets that leave the batch weigh 0; the others are renormalized to sum 1.
    """
    r = radius(sigma)
    offsets = np.arange(-r, r + 1)
    g = np.exp(-0.5 * (offsets / sigma) ** 2) if r else np.ones(1)
    t = np.asarray(frames)[None, :] + offsets[:, None]
    w = np.where((t >= b0) & (t < b1), g[:, None], 0.0)
    return (w / w.sum(axis=0, keepdims=True)).astype(np.float32)


def context_frames(start: int, stop: int, batch_size: int, n_frames: int, sigma: float) -> tuple[int, int]:
    """Frames ``[lo, hi)`` whose flows frames ``[start, stop)`` need: ``radius`` more on either side,
    within the batches of ``start`` and ``stop - 1``."""
    r = radius(sigma)
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

    :meth:`push` takes a chunk's first frame, its flows ``(n, H, W, 2)`` and a
    host payload with one entry per frame (the raw frames); it returns the
    ``(first frame, smoothed flows, payload)`` pieces that are complete (their
    later neighbours have arrived), in order. :meth:`finish` returns the rest
    once the batch's last frame was pushed. With ``sigma == 0`` every chunk
    passes through unchanged.
    """

    def __init__(self, sigma: float, b0: int, b1: int):
        self.sigma, self.b0, self.b1 = float(sigma), b0, b1
        self.r = radius(self.sigma)
        self.first = None  # frame index of the buffer's first frame
        self.flows = None
        self.payload = None
        self.next_out = None  # first frame not yet returned

    def push(self, a: int, flows, payload: np.ndarray) -> list:
        if self.r == 0:
            return [(a, flows, payload)]
        if self.first is None:
            self.first, self.next_out, self.flows, self.payload = a, a, flows, payload
        else:
            if a != self.first + len(self.flows):
                raise ValueError(f"flows of frame {a} pushed out of order")
            xp = _xp(flows)
            self.flows = xp.concatenate([self.flows, flows])
            self.payload = np.concatenate([self.payload, payload])
        end = self.first + len(self.flows)
        return self._emit(end if end >= self.b1 else end - self.r)

    def finish(self) -> list:
        if self.r == 0 or self.first is None:
            return []
        return self._emit(self.first + len(self.flows))

    def _emit(self, upto: int) -> list:
        """Smoothed flows of frames ``[next_out, upto)``; keeps the frames later ones still need."""
        if upto <= self.next_out:
            return []
        xp = _xp(self.flows)
        frames = np.arange(self.next_out, upto)
        weights = tap_weights(self.sigma, frames, self.b0, self.b1)
        end = self.first + len(self.flows)
        out = None
        for j, k in enumerate(range(-self.r, self.r + 1)):
            # a tap outside the batch weighs 0; it reads the frame itself, so the (zero) term has the
            # same bits however the batch was cut into chunks. Taps beyond the buffer occur only for the
            # context frames of a time chunk (not output): they read the frame itself too
            t = frames + k
            src = np.where((weights[j] > 0) & (t >= self.first) & (t < end), t, frames) - self.first
            w = xp.asarray(weights[j].reshape(-1, 1, 1, 1))
            contiguous = bool(np.all(np.diff(src) == 1))  # a view, not a gathered copy
            taps = self.flows[src[0]:src[0] + len(src)] if contiguous else self.flows[xp.asarray(src)]
            if out is None:
                out = w * taps
            else:
                out += w * taps
        piece = (self.next_out, out.astype(np.float32, copy=False),
                 self.payload[self.next_out - self.first:upto - self.first])
        keep = max(self.first, upto - self.r) - self.first
        self.flows, self.payload = self.flows[keep:], self.payload[keep:]
        self.first += keep
        self.next_out = upto
        return [piece]

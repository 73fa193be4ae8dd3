"""Backward warping of whole frames, valid masks and flow statistics (CPU).

Convention: ``out(y, x) = in(y + v(y, x), x + u(y, x))`` with ``flow[..., 0] = u``
(columns) and ``flow[..., 1] = v`` (rows). A sample is valid when its position
lies in ``[0, W) x [0, H)``; invalid samples take the fill image. The rules
(in-bounds, statistics, integer rounding) are defined in
:mod:`frkit.flow.policy`; the kernels here are their per-pixel transcriptions.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .kernels import keys_weights
from .policy import STAT_NAMES, flow_statistics, integer_range, valid_mask

__all__ = ["warp_frame", "warp_into", "valid_mask", "flow_statistics", "mask_and_statistics", "STAT_NAMES"]


@nb.njit(nogil=True, cache=True, error_model="numpy", fastmath={"contract", "nsz"})
def _warp_cast(src, flow, fill, out, cubic, to_int, lo, hi):
    """Warp ``src (H, W, C)`` by ``flow`` into ``out`` (any dtype); integers rounded and clipped."""
    H, W, C = src.shape
    acc = np.empty(C)
    for y in range(H):
        for x in range(W):
            mx = x + np.float64(flow[y, x, 0])
            my = y + np.float64(flow[y, x, 1])
            if mx < 0.0 or mx >= W or my < 0.0 or my >= H:
                for k in range(C):
                    acc[k] = fill[y, x, k]
            else:
                if mx > W - 1:
                    mx = W - 1.0
                if my > H - 1:
                    my = H - 1.0
                x0 = int(mx)
                y0 = int(my)
                tx = mx - x0
                ty = my - y0
                if cubic:
                    wx0, wx1, wx2, wx3 = keys_weights(tx)
                    wy0, wy1, wy2, wy3 = keys_weights(ty)
                    if x0 >= 1 and x0 + 2 < W and y0 >= 1 and y0 + 2 < H:
                        xa, xb, xc, xd = x0 - 1, x0, x0 + 1, x0 + 2
                        ya, yb, yc, yd = y0 - 1, y0, y0 + 1, y0 + 2
                    else:  # replicate the edge
                        xa, xb, xc, xd = max(x0 - 1, 0), x0, min(x0 + 1, W - 1), min(x0 + 2, W - 1)
                        ya, yb, yc, yd = max(y0 - 1, 0), y0, min(y0 + 1, H - 1), min(y0 + 2, H - 1)
                    for k in range(C):
                        r0 = wx0 * src[ya, xa, k] + wx1 * src[ya, xb, k] + wx2 * src[ya, xc, k] + wx3 * src[ya, xd, k]
                        r1 = wx0 * src[yb, xa, k] + wx1 * src[yb, xb, k] + wx2 * src[yb, xc, k] + wx3 * src[yb, xd, k]
                        r2 = wx0 * src[yc, xa, k] + wx1 * src[yc, xb, k] + wx2 * src[yc, xc, k] + wx3 * src[yc, xd, k]
                        r3 = wx0 * src[yd, xa, k] + wx1 * src[yd, xb, k] + wx2 * src[yd, xc, k] + wx3 * src[yd, xd, k]
                        acc[k] = wy0 * r0 + wy1 * r1 + wy2 * r2 + wy3 * r3
                else:
                    x1 = min(x0 + 1, W - 1)
                    y1 = min(y0 + 1, H - 1)
                    for k in range(C):
                        top = (1.0 - tx) * src[y0, x0, k] + tx * src[y0, x1, k]
                        bot = (1.0 - tx) * src[y1, x0, k] + tx * src[y1, x1, k]
                        acc[k] = (1.0 - ty) * top + ty * bot
            for k in range(C):
                v = acc[k]
                if to_int:
                    v = np.rint(v)
                    v = lo if v < lo else (hi if v > hi else v)
                out[y, x, k] = v


def warp_into(frame: np.ndarray, flow: np.ndarray, fill: np.ndarray, out: np.ndarray, method: str = "cubic"):
    """Warp one frame into ``out`` of any numeric dtype (integers rounded and clipped, never wrapped)."""
    if method not in ("cubic", "linear"):
        raise ValueError(f"unknown interpolation {method!r}")
    limits = integer_range(out.dtype)
    lo, hi = (0.0, 0.0) if limits is None else (float(limits[0]), float(limits[1]))
    _warp_cast(np.ascontiguousarray(frame), np.ascontiguousarray(flow), np.ascontiguousarray(fill, dtype=np.float64),
               out, method == "cubic", limits is not None, lo, hi)
    return out


@nb.njit(nogil=True, cache=True, error_model="numpy")
def _mask_stats(flow, valid, stats):
    H, W, _ = flow.shape
    s_mag = 0.0
    m_mag = 0.0
    su = 0.0
    sv = 0.0
    sdiv = 0.0
    for y in range(H):
        for x in range(W):
            u = np.float64(flow[y, x, 0])
            v = np.float64(flow[y, x, 1])
            px = x + u
            py = y + v
            valid[y, x] = px >= 0.0 and px < W and py >= 0.0 and py < H
            m = np.sqrt(u * u + v * v)
            s_mag += m
            m_mag = max(m_mag, m)
            su += u
            sv += v
            # central differences, one-sided at the edges (numpy.gradient)
            if W > 1:
                if x == 0:
                    sdiv += np.float64(flow[y, 1, 0]) - u
                elif x == W - 1:
                    sdiv += u - np.float64(flow[y, x - 1, 0])
                else:
                    sdiv += 0.5 * (np.float64(flow[y, x + 1, 0]) - np.float64(flow[y, x - 1, 0]))
            if H > 1:
                if y == 0:
                    sdiv += np.float64(flow[1, x, 1]) - v
                elif y == H - 1:
                    sdiv += v - np.float64(flow[y - 1, x, 1])
                else:
                    sdiv += 0.5 * (np.float64(flow[y + 1, x, 1]) - np.float64(flow[y - 1, x, 1]))
    n = H * W
    stats[0] = s_mag / n
    stats[1] = m_mag
    stats[2] = sdiv / n
    stats[3] = np.sqrt((su / n) ** 2 + (sv / n) ** 2)
    stats[4] = su / n
    stats[5] = sv / n


def mask_and_statistics(flow: np.ndarray, valid: np.ndarray, stats: np.ndarray) -> None:
    """:func:`valid_mask` and :func:`flow_statistics` of one ``(H, W, 2)`` flow, in one compiled pass.

    The mask is exactly the policy's; the statistics agree with it up to the
    order of the float64 sums.
    """
    _mask_stats(np.ascontiguousarray(flow), valid, stats)


def warp_frame(frame: np.ndarray, flow: np.ndarray, fill: np.ndarray, method: str = "cubic") -> np.ndarray:
    """Warp one ``(H, W, C)`` frame of any numeric dtype; float64 result.

    ``flow`` is ``(H, W, 2)``; ``fill`` ``(H, W, C)`` supplies out-of-view
    pixels. ``method`` is ``cubic`` (Keys, ``KEYS_A``) or ``linear``; taps
    beyond the edge replicate the edge pixel.
    """
    return warp_into(frame, flow, fill, np.empty(frame.shape, dtype=np.float64), method)

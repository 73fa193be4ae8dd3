"""Backward warping of whole frames, valid masks and flow statistics.

Convention: ``out(y, x) = in(y + v(y, x), x + u(y, x))`` with ``flow[..., 0] = u``
(columns) and ``flow[..., 1] = v`` (rows). A sample is valid when its position
lies in ``[0, W) x [0, H)``; invalid samples take the fill image.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .kernels import _keys

__all__ = ["warp_frame", "valid_mask", "flow_statistics", "STAT_NAMES"]

STAT_NAMES = ("mean_disp", "max_disp", "mean_div", "mean_translation")


@nb.njit(nogil=True, cache=True, error_model="numpy", fastmath={"contract", "nsz"})
def _warp_hwc(src, flow, fill, out, cubic):
    H, W, C = src.shape
    for y in range(H):
        for x in range(W):
            mx = x + np.float64(flow[y, x, 0])
            my = y + np.float64(flow[y, x, 1])
            if mx < 0.0 or mx >= W or my < 0.0 or my >= H:
                for k in range(C):
                    out[y, x, k] = fill[y, x, k]
                continue
            if mx > W - 1:
                mx = W - 1.0
            if my > H - 1:
                my = H - 1.0
            x0 = int(mx)
            y0 = int(my)
            tx = mx - x0
            ty = my - y0
            if cubic:
                xs = (max(x0 - 1, 0), x0, min(x0 + 1, W - 1), min(x0 + 2, W - 1))
                ys = (max(y0 - 1, 0), y0, min(y0 + 1, H - 1), min(y0 + 2, H - 1))
                wx = (_keys(tx + 1.0), _keys(tx), _keys(1.0 - tx), _keys(2.0 - tx))
                wy = (_keys(ty + 1.0), _keys(ty), _keys(1.0 - ty), _keys(2.0 - ty))
                for k in range(C):
                    acc = 0.0
                    for a in range(4):
                        row = 0.0
                        for b in range(4):
                            row += wx[b] * src[ys[a], xs[b], k]
                        acc += wy[a] * row
                    out[y, x, k] = acc
            else:
                x1 = min(x0 + 1, W - 1)
                y1 = min(y0 + 1, H - 1)
                for k in range(C):
                    top = (1.0 - tx) * src[y0, x0, k] + tx * src[y0, x1, k]
                    bot = (1.0 - tx) * src[y1, x0, k] + tx * src[y1, x1, k]
                    out[y, x, k] = (1.0 - ty) * top + ty * bot


def warp_frame(frame: np.ndarray, flow: np.ndarray, fill: np.ndarray, method: str = "cubic") -> np.ndarray:
    """Warp one ``(H, W, C)`` frame of any numeric dtype; float64 result.

    ``flow`` is ``(H, W, 2)``; ``fill`` ``(H, W, C)`` supplies out-of-view
    pixels. ``method`` is ``cubic`` (Keys, a = -0.75) or ``linear``; taps
    beyond the edge replicate the edge pixel.
    """
    if method not in ("cubic", "linear"):
        raise ValueError(f"unknown interpolation {method!r}")
    out = np.empty(frame.shape, dtype=np.float64)
    _warp_hwc(np.ascontiguousarray(frame), np.ascontiguousarray(flow),
              np.ascontiguousarray(fill, dtype=np.float64), out, method == "cubic")
    return out


def valid_mask(flow: np.ndarray) -> np.ndarray:
    """In-bounds rule: ``0 <= x + u < W`` and ``0 <= y + v < H`` (bool ``(H, W)``).

    Evaluated in float64 on the given (normally the stored float32) flow.
    """
    h, w = flow.shape[:2]
    x = np.arange(w, dtype=np.float64)[None, :] + flow[..., 0]
    y = np.arange(h, dtype=np.float64)[:, None] + flow[..., 1]
    return (x >= 0) & (x < w) & (y >= 0) & (y < h)


def flow_statistics(flow: np.ndarray) -> tuple[float, float, float, float]:
    """``(mean_disp, max_disp, mean_div, mean_translation)`` of one ``(H, W, 2)`` flow.

    Divergence uses central differences (one-sided at the edges, spacing 1).
    """
    u = flow[..., 0].astype(np.float64)
    v = flow[..., 1].astype(np.float64)
    mag = np.hypot(u, v)
    div = np.gradient(u, axis=1) + np.gradient(v, axis=0) if min(u.shape) > 1 else np.zeros_like(u)
    return float(mag.mean()), float(mag.max()), float(div.mean()), float(np.hypot(u.mean(), v.mean()))

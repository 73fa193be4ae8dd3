"""Compiled per-frame sums of fr-qc's streaming pass (numba, ``nogil``).

Each kernel reads a batch once, in its stored dtype, and accumulates in
float64: what numpy needs several full-size float64 temporaries for (the
channel mean, masked copies, products) costs one sweep here. The measures
they feed are defined in :mod:`frkit.qc.measures` (the numpy reference the
tests compare against); nothing here decides a result.

Numba compiles a kernel once per combination of input dtypes and caches it
on disk (``cache=True``), so only a machine's first run pays the compilation.
"""

from __future__ import annotations

import numba as nb
import numpy as np

__all__ = ["ready", "raw_frame_stats", "pair_sums", "flow_stats", "PAIR_SUMS"]

# reassociation lets LLVM vectorize the sums; no 'nnan'/'ninf': the maxima must see NaN and inf as they are
_jit = dict(nogil=True, cache=True, fastmath={"reassoc", "contract", "nsz", "arcp"}, error_model="numpy")

def ready(a) -> np.ndarray:
    """``a`` as the kernels take it: C-contiguous, and float16 (which numba does not compute in) as float32."""
    a = np.asarray(a)
    return np.ascontiguousarray(a, dtype=np.float32 if a.dtype == np.float16 else a.dtype)


#: the columns of :func:`pair_sums`'s ``sums``: over the valid pixels of frame i, with t the centred template
PAIR_SUMS = ("n", "st", "stt", "sx", "sxx", "sxt", "sc", "scc", "sct")


@nb.njit(**_jit)
def raw_frame_stats(frames, ceiling, frame_max, b, binned, out):
    """Per frame of ``frames`` ``(n, H, W, C)``: brightness, saturation and a binned copy, in one sweep.

    ``out[i] = (mean, std, saturated fraction)``: mean and standard deviation
    (population) of the frame's channel mean over all pixels; the fraction of
    samples (every channel) at the clipping level: ``>= ceiling``, or, with
    ``frame_max``, equal to the frame's own maximum (as
    :func:`frkit.qc.measures.saturated_fraction`). ``binned[i]`` ``(H // b,
    W // b)`` gets the means of ``b x b`` blocks of the channel mean (rows and
    columns beyond whole blocks dropped, as :class:`~frkit.qc.measures.Template`
    bins).
    """
    n, h, w, c = frames.shape
    hb, wb = h // b, w // b
    inv_c = 1.0 / c
    inv_block = 1.0 / (b * b)
    npx = h * w
    row = np.empty(w, dtype=np.float64)
    acc = np.empty(wb, dtype=np.float64)
    for i in range(n):
        s = 0.0
        ss = 0.0
        count = 0
        top = -np.inf
        for y in range(h):
            for x in range(w):
                g = 0.0
                for k in range(c):
                    v = np.float64(frames[i, y, x, k])
                    g += v
                    if frame_max:
                        if v > top:
                            top = v
                            count = 1
                        elif v == top:
                            count += 1
                    elif v >= ceiling:
                        count += 1
                g *= inv_c
                row[x] = g
                s += g
                ss += g * g
            yb = y // b
            if yb < hb:
                if y % b == 0:
                    acc[:] = 0.0
                for xb in range(wb):
                    for x in range(xb * b, xb * b + b):
                        acc[xb] += row[x]
                if y % b == b - 1:
                    for xb in range(wb):
                        binned[i, yb, xb] = acc[xb] * inv_block
        mean = s / npx
        out[i, 0] = mean
        out[i, 1] = np.sqrt(max(ss / npx - mean * mean, 0.0))
        out[i, 2] = count / (npx * c)


@nb.njit(**_jit)
def pair_sums(x, cor, valid, has_mask, t, sums, x_total, cor_total, valid_all):
    """The sums behind the correlation of two videos with one template, over each frame's valid pixels.

    ``x`` and ``cor`` ``(n, H, W, C)`` (any channel counts; each pixel's
    channel mean is used), ``valid`` ``(n, H, W)`` nonzero where valid (read
    only with ``has_mask``; else every pixel is valid), ``t`` ``(H, W)`` the
    centred template. ``sums[i]`` gets :data:`PAIR_SUMS`. Also accumulates
    ``x_total``, ``cor_total`` ``(H, W)`` (sums of the channel means over the
    frames, for the mean images) and ``valid_all &= valid``.
    """
    n, h, w, cx = x.shape
    cc = cor.shape[3]
    inv_x, inv_c = 1.0 / cx, 1.0 / cc
    for i in range(n):
        nv = 0.0
        st = 0.0
        stt = 0.0
        sx = 0.0
        sxx = 0.0
        sxt = 0.0
        sc = 0.0
        scc = 0.0
        sct = 0.0
        for y in range(h):
            for xx in range(w):
                gx = 0.0
                for k in range(cx):
                    gx += np.float64(x[i, y, xx, k])
                gx *= inv_x
                gc = 0.0
                for k in range(cc):
                    gc += np.float64(cor[i, y, xx, k])
                gc *= inv_c
                x_total[y, xx] += gx
                cor_total[y, xx] += gc
                ok = True
                if has_mask:
                    ok = valid[i, y, xx] != 0
                    if not ok:
                        valid_all[y, xx] = False
                if ok:
                    tv = t[y, xx]
                    nv += 1.0
                    st += tv
                    stt += tv * tv
                    sx += gx
                    sxx += gx * gx
                    sxt += gx * tv
                    sc += gc
                    scc += gc * gc
                    sct += gc * tv
        sums[i, 0] = nv
        sums[i, 1] = st
        sums[i, 2] = stt
        sums[i, 3] = sx
        sums[i, 4] = sxx
        sums[i, 5] = sxt
        sums[i, 6] = sc
        sums[i, 7] = scc
        sums[i, 8] = sct


@nb.njit(**_jit)
def flow_stats(u, v, out):
    """Per frame of the flow ``u``, ``v`` ``(n, H, W)``: ``out[i] = (mean |w|, max |w|, mean u, mean v)``."""
    n, h, w = u.shape
    npx = h * w
    for i in range(n):
        s = 0.0
        su = 0.0
        sv = 0.0
        top = 0.0
        for y in range(h):
            for x in range(w):
                a = np.float64(u[i, y, x])
                b = np.float64(v[i, y, x])
                m = np.sqrt(a * a + b * b)
                s += m
                su += a
                sv += b
                if m > top or m != m:
                    top = m
        out[i, 0] = s / npx
        out[i, 1] = top
        out[i, 2] = su / npx
        out[i, 3] = sv / npx

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
def _gray_row(frames, i, y, row):
    """``row[:] =`` the channel mean of row ``y`` of frame ``i`` of ``frames`` ``(n, H, W, C)``, as float64."""
    w, c = frames.shape[2], frames.shape[3]
    if c == 1:  # the common case, as its own loop: it vectorizes
        for x in range(w):
            row[x] = np.float64(frames[i, y, x, 0])
    else:
        inv_c = 1.0 / c
        for x in range(w):
            g = 0.0
            for k in range(c):
                g += np.float64(frames[i, y, x, k])
            row[x] = g * inv_c


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
    bins). ``frames`` must be C-contiguous.
    """
    n, h, w, c = frames.shape
    samples = frames.reshape(n, h, w * c)
    hb, wb = h // b, w // b
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
            _gray_row(frames, i, y, row)
            for x in range(w):
                s += row[x]
                ss += row[x] * row[x]
            line = samples[i, y]
            if frame_max:
                for j in range(w * c):
                    v = np.float64(line[j])
                    if v > top:
                        top = v
                        count = 1
                    elif v == top:
                        count += 1
            else:
                for j in range(w * c):
                    count += np.float64(line[j]) >= ceiling
            yb = y // b
            if yb < hb:
                if y % b == 0:
                    acc[:] = 0.0
                for xb in range(wb):
                    t = 0.0
                    for q in range(b):
                        t += row[xb * b + q]
                    acc[xb] += t
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
    n, h, w = x.shape[0], x.shape[1], x.shape[2]
    gx = np.empty(w, dtype=np.float64)
    gc = np.empty(w, dtype=np.float64)
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
            _gray_row(x, i, y, gx)
            _gray_row(cor, i, y, gc)
            for p in range(w):
                x_total[y, p] += gx[p]
                cor_total[y, p] += gc[p]
            if not has_mask:
                for p in range(w):
                    tv = t[y, p]
                    st += tv
                    stt += tv * tv
                    sx += gx[p]
                    sxx += gx[p] * gx[p]
                    sxt += gx[p] * tv
                    sc += gc[p]
                    scc += gc[p] * gc[p]
                    sct += gc[p] * tv
                nv += w
                continue
            for p in range(w):
                if valid[i, y, p] == 0:
                    valid_all[y, p] = False
            for p in range(w):
                # select, not multiply by the mask: a NaN outside the valid pixels must not count
                ok = valid[i, y, p] != 0
                tv = t[y, p] if ok else 0.0
                a = gx[p] if ok else 0.0
                c = gc[p] if ok else 0.0
                nv += 1.0 if ok else 0.0
                st += tv
                stt += tv * tv
                sx += a
                sxx += a * a
                sxt += a * tv
                sc += c
                scc += c * c
                sct += c * tv
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
                top = m if m > top else top
        out[i, 0] = s / npx
        out[i, 1] = top if s == s else np.nan  # a NaN anywhere makes the sum NaN: the maximum is NaN too
        out[i, 2] = su / npx
        out[i, 3] = sv / npx

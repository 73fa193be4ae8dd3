"""The per-frame sums of fr-qc's streaming pass, in numpy, a few frames at a time.

Each function sweeps a batch in blocks of :func:`block_frames` frames: the
block's float64 copy (about 512 KB) stays in the CPU cache, so the dozen
numpy operations over it cost little more than one pass over the batch,
where whole-batch float64 temporaries would each go to memory. Sums are
accumulated in float64 from the stored values. The measures they feed are
defined in :mod:`frkit.qc.measures` (the plain numpy reference the tests
compare against); nothing here decides a result.

Plain numpy, not numba: a fr-qc process then pays neither numba's import
and first-call set-up (about 0.3 s of a 1-2 s run) nor, on a machine's
first run, the compilation (about 2 s); the sweeps are 2-3x slower than
compiled loops, about 0.5 ms per 256 x 256 frame (``bench/qc_cost.py``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["ready", "block_frames", "raw_frame_stats", "pair_sums", "flow_stats", "PAIR_SUMS"]

#: a block's float64 plane holds about this many values (512 KB: it stays in a core's cache)
BLOCK_VALUES = 1 << 16


def ready(a) -> np.ndarray:
    """``a`` as the sweeps take it: C-contiguous, float16 as float32."""
    a = np.asarray(a)
    return np.ascontiguousarray(a, dtype=np.float32 if a.dtype == np.float16 else a.dtype)


def block_frames(h: int, w: int) -> int:
    """Frames per block: about :data:`BLOCK_VALUES` pixels, at least one frame."""
    return max(1, BLOCK_VALUES // max(1, h * w))


#: the columns of :func:`pair_sums`'s ``sums``: over the valid pixels of frame i, with t the centred template
PAIR_SUMS = ("n", "st", "stt", "sx", "sxx", "sxt", "sc", "scc", "sct")


def _gray(frames: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out[:] =`` the channel mean of ``frames`` ``(m, H, W, C)`` as float64, ``out`` ``(m, H * W)``."""
    m, h, w, c = frames.shape
    if c == 1:
        np.copyto(out, frames.reshape(m, h * w), casting="unsafe")
    else:
        np.mean(frames.reshape(m, h * w, c), axis=-1, dtype=np.float64, out=out)
    return out


def _rowdot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``sum_j a[i, j] * b[i, j]`` (einsum's own loop: no BLAS thread start-up on a small block)."""
    return np.einsum("ij,ij->i", a, b)


def _matvec(a: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``a @ v`` by einsum (as :func:`_rowdot`)."""
    return np.einsum("ij,j->i", a, v)


def _add_frames(total: np.ndarray, frames: np.ndarray) -> None:
    """``total += frames.sum(axis=0)``; one frame is added as it is (no reduction, no temporary)."""
    if len(frames) == 1:
        total += frames[0]
    else:
        total += frames.sum(axis=0)


def _count_rows(flags: np.ndarray) -> np.ndarray:
    """``np.count_nonzero(flags, axis=1)`` row by row (without ``axis`` numpy counts bytes several times faster)."""
    return np.array([np.count_nonzero(row) for row in flags], dtype=np.intp)


def _at_clipping(samples: np.ndarray, ceiling: float, frame_max: bool) -> np.ndarray:
    """Per row of ``samples`` ``(m, n)``: how many are at the clipping level (see :func:`raw_frame_stats`)."""
    if frame_max:  # fmax ignores NaN, as the comparison with the maximum does
        top = np.fmax.reduce(samples, axis=1)
        return _count_rows(samples == top[:, None])
    if np.issubdtype(samples.dtype, np.integer):  # compare in the stored dtype, not float64 copies
        info = np.iinfo(samples.dtype)
        if ceiling > info.max:
            return np.zeros(len(samples), dtype=np.intp)
        ceiling = samples.dtype.type(max(info.min, np.ceil(ceiling)))
    return _count_rows(samples >= ceiling)


def raw_frame_stats(frames, ceiling, frame_max, b, binned, out):
    """Per frame of ``frames`` ``(n, H, W, C)``: brightness, saturation and a binned copy.

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
    k = block_frames(h, w)
    plane = np.empty((min(k, n), h * w))
    for a in range(0, n, k):
        z = min(n, a + k)
        g = _gray(frames[a:z], plane[:z - a])
        g3 = g.reshape(z - a, h, w)
        rows = g3[:, :hb * b].reshape(z - a, hb, b, w).sum(axis=2)  # block sums: rows, then columns
        blocks = rows[:, :, 0:wb * b:b].copy()
        for q in range(1, b):
            blocks += rows[:, :, q:wb * b:b]
        binned[a:z] = blocks * (1.0 / (b * b))
        mean = g.sum(axis=1) / (h * w)
        g -= mean[:, None]  # the variance about the mean: no cancellation
        out[a:z, 0] = mean
        out[a:z, 1] = np.sqrt(_rowdot(g, g) / (h * w))
        out[a:z, 2] = _at_clipping(frames[a:z].reshape(z - a, h * w * c), ceiling, frame_max) / (h * w * c)


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
    k = min(n, block_frames(h, w))
    tv = np.ascontiguousarray(t, dtype=np.float64).reshape(h * w)
    tt = tv * tv
    both = np.empty((2, k, h * w))  # the block of x and of cor, one array: each sum below is one call
    weight = np.empty((k, h * w)) if has_mask else None
    totals = (x_total.reshape(h * w), cor_total.reshape(h * w))
    all_flat = valid_all.reshape(h * w)
    integers = not (np.issubdtype(x.dtype, np.inexact) or np.issubdtype(cor.dtype, np.inexact))
    for a in range(0, n, k):
        z = min(n, a + k)
        m = z - a
        f = both[:, :m]
        _gray(x[a:z], f[0])
        _gray(cor[a:z], f[1])
        for total, g in zip(totals, f):
            _add_frames(total, g)  # every pixel, before masking
        s = sums[a:z]
        if has_mask:
            ok = valid[a:z].reshape(m, h * w) != 0
            all_flat &= ok.all(axis=0)
            wt = weight[:m]
            np.copyto(wt, ok, casting="unsafe")
            if integers:  # no NaN: multiplying by the mask zeroes (a little cheaper than a masked copy)
                np.multiply(f, wt, out=f)
            else:  # zeroed, not multiplied by the mask: a NaN outside the valid pixels must not count
                np.copyto(f, 0.0, where=~ok)
            s[:, 0] = wt.sum(axis=1)
            s[:, 1] = _matvec(wt, tv)
            s[:, 2] = _matvec(wt, tt)
        else:
            s[:, 0], s[:, 1], s[:, 2] = h * w, tv.sum(), tt.sum()
        flat = f.reshape(2 * m, h * w)
        s[:, 3::3] = flat.sum(axis=1).reshape(2, m).T
        s[:, 4::3] = _rowdot(flat, flat).reshape(2, m).T
        s[:, 5::3] = _matvec(flat, tv).reshape(2, m).T


def flow_stats(u, v, out):
    """Per frame of the flow ``u``, ``v`` ``(n, H, W)``: ``out[i] = (mean |w|, max |w|, mean u, mean v)``.

    In float64 from the stored values; a NaN anywhere in a frame makes its mean and maximum NaN.
    """
    n, h, w = u.shape
    k = block_frames(h, w)
    fu, fv = np.empty((min(k, n), h * w)), np.empty((min(k, n), h * w))
    for a in range(0, n, k):
        z = min(n, a + k)
        m = z - a
        bu, bv = fu[:m], fv[:m]
        np.copyto(bu, u[a:z].reshape(m, h * w), casting="unsafe")
        np.copyto(bv, v[a:z].reshape(m, h * w), casting="unsafe")
        out[a:z, 2] = bu.sum(axis=1) / (h * w)
        out[a:z, 3] = bv.sum(axis=1) / (h * w)
        np.multiply(bu, bu, out=bu)  # |w| as sqrt(u^2 + v^2): vectorized, where hypot calls libm per value
        np.multiply(bv, bv, out=bv)
        np.sqrt(np.add(bu, bv, out=bu), out=bu)
        out[a:z, 0] = bu.sum(axis=1) / (h * w)
        out[a:z, 1] = bu.max(axis=1)  # propagates NaN

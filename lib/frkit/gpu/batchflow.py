"""The coarse-to-fine pyramid for a batch of frames on one backend.

The same method as :mod:`frkit.flow.displacement` (levels, resize, warp,
gradient-constancy tensor, lagged robust weights, 5x5 median of the
increments, B-spline flow resampling), with two differences that make it
run well on a GPU: the level solver is red-black SOR (all pixels of one
colour at once), and everything is float32. Every launch covers the whole
batch.
"""

from __future__ import annotations

import numpy as np

from ..flow.params import FlowParams
from ..flow.policy import level_alpha, median_applies
from ..flow.pyramid import flow_upsample_table, pyramid_levels, pyramid_sigma, resize_table

__all__ = ["BatchPyramid"]


class BatchPyramid:
    """A reference's pyramid on a backend; :meth:`flows` estimates a batch.

    ``reference`` is planar ``(K, H, W)`` float32 (host array).
    """

    def __init__(self, backend, reference: np.ndarray, params: FlowParams):
        self.bk = backend
        xp = backend.xp
        reference = np.ascontiguousarray(reference, dtype=np.float32)
        self.reference = reference  # host copy (rigid pre-alignment, describe)
        self.n_channels, self.height, self.width = reference.shape
        self.params = params.for_channels(self.n_channels)
        p = self.params
        self.levels = pyramid_levels(self.height, self.width, p.eta, p.levels, p.min_level)
        self._tables = [self._device_tables(self.height, self.width, lv.rows, lv.cols) for lv in self.levels]
        ref = xp.asarray(reference)
        self.images = [self._resize(ref, self._tables[n], lv.rows, lv.cols) for n, lv in enumerate(self.levels)]
        self._wk = xp.asarray(np.asarray(p.weights, np.float32))
        self._a_data = xp.asarray(np.asarray(p.a_data, np.float32))
        self._dummy = xp.zeros(1, dtype=xp.float32)

    # -- helpers --------------------------------------------------------------
    def _device_tables(self, h, w, rows, cols, flow=False):
        xp = self.bk.xp
        if flow:
            ir, wr = flow_upsample_table(h, rows)
            ic, wc = flow_upsample_table(w, cols)
        else:
            sigma = pyramid_sigma(h, w, rows, cols)
            ir, wr = resize_table(h, rows, sigma)
            ic, wc = resize_table(w, cols, sigma)
        return tuple(xp.asarray(np.ascontiguousarray(a, dtype=np.int32 if a.dtype.kind == "i" else np.float32))
                     for a in (ir, wr, ic, wc))

    def _resize(self, planes, tables, rows, cols):
        """Resize ``(..., H, W)`` float32 planes with tap tables."""
        xp = self.bk.xp
        lead = planes.shape[:-2]
        h, w = planes.shape[-2:]
        p = int(np.prod(lead)) if lead else 1
        src = xp.ascontiguousarray(planes.reshape(p, h, w), dtype=xp.float32)
        ir, wr, ic, wc = tables
        tmp = xp.empty((p, rows, w), dtype=xp.float32)
        self.bk.launch("resize_rows", p * rows * w, src, tmp, p, h, w, rows, ir, wr, ir.shape[1])
        out = xp.empty((p, rows, cols), dtype=xp.float32)
        self.bk.launch("resize_cols", p * rows * cols, tmp, out, p, rows, w, cols, ic, wc, ic.shape[1])
        return out.reshape(lead + (rows, cols))

    def _resample_flow(self, uv, rows, cols):
        h, w = uv.shape[-2:]
        if (h, w) == (rows, cols):
            return uv
        return self._resize(uv, self._device_tables(h, w, rows, cols, flow=True), rows, cols)

    # -- the estimate ---------------------------------------------------------
    def flows(self, proc, init=None):
        """Backward flows ``(B, 2, H, W)`` float32 of preprocessed frames ``(B, K, H, W)``.

        ``init`` is None, one start ``(2, H, W)`` or one per frame ``(B, 2, H, W)`` (host or device).
        """
        bk, xp, p = self.bk, self.bk.xp, self.params
        B, K, H, W = proc.shape
        frames = xp.ascontiguousarray(proc, dtype=xp.float32)
        uv = None
        for n, lv in enumerate(self.levels):
            r, c = lv.rows, lv.cols
            f1 = self.images[n]
            f2 = self._resize(frames, self._tables[n], r, c)
            sx, sy = 1.0 / lv.h_col, 1.0 / lv.h_row
            if n == 0:
                if init is None:
                    uv = xp.zeros((B, 2, r, c), dtype=xp.float32)
                    f2w = f2
                else:
                    start = self._resize(xp.asarray(init, dtype=xp.float32), self._tables[0], r, c)
                    uv = xp.ascontiguousarray(xp.broadcast_to(start, (B, 2, r, c)))
                    f2w = self._warp(f2, uv, f1, sx, sy) if p.warp_coarsest else f2
            else:
                uv = xp.ascontiguousarray(self._resample_flow(uv, r, c))
                f2w = self._warp(f2, uv, f1, sx, sy)
            J = xp.zeros((B, K, 6, r + 2, c + 2), dtype=xp.float32)
            bk.launch("tensor_gc", B * K * r * c, f1, f2w, J, B, K, r, c, lv.h_row, lv.h_col)
            u = xp.ascontiguousarray(uv[:, 0])
            v = xp.ascontiguousarray(uv[:, 1])
            du, dv = self._solve(J, u, v, lv)
            use_median = int(median_applies(r, c))
            bk.launch("median_add", B * r * c, du, u, B, r, c, use_median)
            bk.launch("median_add", B * r * c, dv, v, B, r, c, use_median)
            uv = xp.stack([u, v], axis=1)
        return xp.ascontiguousarray(self._resample_flow(uv, H, W))

    def _warp(self, f2, uv, f1, sx, sy):
        xp = self.bk.xp
        B, K, r, c = f2.shape
        out = xp.empty_like(f2)
        u = xp.ascontiguousarray(uv[:, 0])
        v = xp.ascontiguousarray(uv[:, 1])
        self.bk.launch("warp_level", B * r * c, f2, u, v, f1, out, B, K, r, c, sx, sy, 1)
        return out

    def _solve(self, J, u, v, lv):
        bk, xp, p = self.bk, self.bk.xp, self.params
        B, K = J.shape[:2]
        r, c = lv.rows, lv.cols
        shape = (B, r + 2, c + 2)
        up = xp.empty(shape, dtype=xp.float32)
        vp = xp.empty(shape, dtype=xp.float32)
        bk.launch("pad_replicate", up.size, u, up, B, r, c)
        bk.launch("pad_replicate", vp.size, v, vp, B, r, c)
        du = xp.zeros(shape, dtype=xp.float32)
        dv = xp.zeros(shape, dtype=xp.float32)
        iu, iv, gu, gv, a12 = (xp.zeros(shape, dtype=xp.float32) for _ in range(5))
        smooth_quadratic = p.a_smooth == 1.0
        psi = self._dummy if smooth_quadratic else xp.ones(shape, dtype=xp.float32)
        alpha_x, alpha_y = level_alpha(p.alpha, lv)
        ax = alpha_x / (lv.h_col * lv.h_col)
        ay = alpha_y / (lv.h_row * lv.h_row)
        half = (c + 1) // 2
        for it in range(1, p.iterations + 1):
            robust = it % p.update_lag == 0
            if it == 1 or robust:
                if not smooth_quadratic:
                    bk.launch("smooth_psi", psi.size, up, vp, du, dv, psi, B, r + 2, c + 2, lv.h_col, lv.h_row,
                              p.a_smooth, int(not robust))
                bk.launch("rb_refresh", B * r * c, J, self._wk, self._a_data, up, vp, du, dv, psi,
                          iu, iv, gu, gv, a12, B, K, r, c, ax, ay, p.omega, int(not robust), int(smooth_quadratic))
            for colour in (0, 1):
                bk.launch("rb_sweep", B * r * half, du, dv, iu, iv, gu, gv, a12, psi, B, r, c, ax, ay,
                          1.0 - p.omega, colour, int(smooth_quadratic))
        return du, dv

"""Coarse-to-fine displacement estimation for one frame (CPU).

:class:`ReferencePyramid` caches everything that depends only on the fixed
image (its pyramid and the resize tables); :meth:`ReferencePyramid.flow`
estimates the backward displacement of one moving image against it.
"""

from __future__ import annotations

import numpy as np

from . import kernels as K
from .params import FlowParams
from .policy import level_alpha, median_applies
from .pyramid import Level, flow_upsample_table, pyramid_levels, pyramid_sigma, resize_table

__all__ = ["ReferencePyramid", "resize", "warp", "get_displacement"]


def _tables(h_in: int, w_in: int, h_out: int, w_out: int):
    sigma = pyramid_sigma(h_in, w_in, h_out, w_out)
    ir, wr = resize_table(h_in, h_out, sigma)
    ic, wc = resize_table(w_in, w_out, sigma)
    return ir, wr, ic, wc


def resize(planes: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Resize planar ``(K, H, W)`` data with the pyramid's fused Gaussian-cubic kernel."""
    k, h, w = planes.shape
    out = np.empty((k, rows, cols), dtype=planes.dtype)
    K.resize_planes(planes, *_tables(h, w, rows, cols), out)
    return out


def resample_flow(uv: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Resample flow planes ``(2, r, c)`` to ``(2, rows, cols)`` (values unchanged: full-res pixels)."""
    if uv.shape[1:] == (rows, cols):
        return uv
    ir, wr = flow_upsample_table(uv.shape[1], rows)
    ic, wc = flow_upsample_table(uv.shape[2], cols)
    out = np.empty((uv.shape[0], rows, cols), dtype=uv.dtype)
    K.resize_planes(np.ascontiguousarray(uv), ir, wr, ic, wc, out)
    return out


def warp(planes: np.ndarray, u: np.ndarray, v: np.ndarray, fill: np.ndarray, cubic: bool = True,
         scale_x: float = 1.0, scale_y: float = 1.0) -> np.ndarray:
    """Backward-warp planar ``(K, R, C)`` data by ``(u, v)`` with reference fill."""
    out = np.empty(planes.shape, dtype=np.result_type(planes.dtype, fill.dtype))
    K.warp_planes(planes, u, v, scale_x, scale_y, fill, out, cubic)
    return out


class ReferencePyramid:
    """The fixed image's pyramid for repeated displacement estimates.

    ``reference`` is planar ``(K, H, W)`` (preprocessed, float32). ``params``
    must already be resolved for ``K`` channels (:meth:`FlowParams.for_channels`).
    """

    def __init__(self, reference: np.ndarray, params: FlowParams):
        reference = np.ascontiguousarray(reference, dtype=np.float32)
        if reference.ndim != 3:
            raise ValueError("reference must be planar (K, H, W)")
        self.params = params.for_channels(reference.shape[0])
        self.n_channels, self.height, self.width = reference.shape
        self.reference = reference
        p = self.params
        self.levels: tuple[Level, ...] = pyramid_levels(self.height, self.width, p.eta, p.levels, p.min_level)
        self.images = [resize(reference, lev.rows, lev.cols) for lev in self.levels]
        self._weights = np.asarray(p.weights, dtype=np.float64)
        self._a_data = np.asarray(p.a_data, dtype=np.float64)

    def flow(self, moving: np.ndarray, init: np.ndarray | None = None) -> np.ndarray:
        """Backward displacement ``(2, H, W)`` float64 (planes u, v) of ``moving``.

        ``moving`` is planar ``(K, H, W)`` float32, preprocessed like the
        reference; ``init`` an optional ``(2, H, W)`` starting flow.
        """
        p = self.params
        moving = np.ascontiguousarray(moving, dtype=np.float32)
        if moving.shape != (self.n_channels, self.height, self.width):
            raise ValueError(f"moving image has shape {moving.shape}, expected "
                             f"{(self.n_channels, self.height, self.width)}")
        u = v = None
        for n, lev in enumerate(self.levels):
            f1 = self.images[n]
            f2 = resize(moving, lev.rows, lev.cols)
            sx, sy = 1.0 / lev.h_col, 1.0 / lev.h_row
            if n == 0:
                if init is None:
                    u = np.zeros((lev.rows, lev.cols))
                    v = np.zeros((lev.rows, lev.cols))
                    f2w = f2
                else:
                    uv = resize(np.ascontiguousarray(init, dtype=np.float64), lev.rows, lev.cols)
                    u, v = uv[0], uv[1]
                    f2w = warp(f2, u, v, f1, True, sx, sy) if p.warp_coarsest else f2
            else:
                uv = resample_flow(np.stack([u, v]), lev.rows, lev.cols)
                u, v = uv[0], uv[1]
                f2w = warp(f2, u, v, f1, True, sx, sy)
            J = np.empty((self.n_channels, 6, lev.cols + 2, lev.rows + 2))
            for k in range(self.n_channels):
                K.motion_tensor_gc(f1[k], f2w[k], lev.h_row, lev.h_col, J[k])
            ut = np.pad(u.T, 1, mode="edge")
            vt = np.pad(v.T, 1, mode="edge")
            dut = np.empty_like(ut)
            dvt = np.empty_like(vt)
            K.solve_level(J, self._weights, self._a_data, ut, vt, *level_alpha(p.alpha, lev),
                          lev.h_col, lev.h_row, p.iterations, p.update_lag, p.a_smooth, p.omega,
                          dut, dvt)
            if median_applies(lev.rows, lev.cols):
                K.median5x5(dut)
                K.median5x5(dvt)
            u = u + dut[1:-1, 1:-1].T
            v = v + dvt[1:-1, 1:-1].T
        return resample_flow(np.stack([u, v]), self.height, self.width)


def get_displacement(fixed: np.ndarray, moving: np.ndarray, params: FlowParams,
                     init: np.ndarray | None = None) -> np.ndarray:
    """Backward displacement ``(H, W, 2)`` from ``moving`` to ``fixed``.

    Both images are ``(H, W)`` or ``(H, W, C)`` and already preprocessed.
    ``init`` is an optional ``(H, W, 2)`` starting flow. Warping ``moving``
    with the result (``out(y, x) = moving(y + v, x + u)``) aligns it to ``fixed``.
    """
    f = _planar(fixed)
    m = _planar(moving)
    pyr = ReferencePyramid(f, params)
    w0 = None if init is None else np.moveaxis(np.asarray(init, dtype=np.float64), -1, 0)
    return np.moveaxis(pyr.flow(m, w0), 0, -1)


def _planar(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img, dtype=np.float32)
    if img.ndim == 2:
        return img[None]
    if img.ndim == 3:
        return np.ascontiguousarray(np.moveaxis(img, -1, 0))
    raise ValueError("image must be (H, W) or (H, W, C)")

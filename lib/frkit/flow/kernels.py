"""Compiled CPU kernels of the optical-flow method (numba, ``nogil``).

Conventions inside this module:

* images are planar ``(K, rows, cols)`` float32; flows are float64 planes;
* the level solver works on **transposed** padded arrays of shape
  ``(cols + 2, rows + 2)``, index ``[i, j]`` = (column, row). The reference
  sweep order is column-major (outer loop over columns, inner over rows); the
  transposed layout makes that inner loop contiguous (about 2x faster than
  striding across rows) without changing the order in which pixels are
  updated;
* every kernel releases the GIL so frames run in parallel threads;
* constants come from :mod:`frkit.flow.policy` (frozen at compile time).

Nothing here allocates per pixel or touches files.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from llvmlite import ir as llvm_ir
from numba.core import types
from numba.extending import intrinsic

from .median import median25_network
from .policy import EPS_PSI, EPS_TENSOR, KEYS_A

# 'contract' lets LLVM fuse multiply-adds; results stay deterministic for a
# given machine because every frame runs the same compiled code.
_FM = {"contract", "nsz", "arcp"}
_jit = dict(nogil=True, cache=True, fastmath=_FM, error_model="numpy")


# ---------------------------------------------------------------------------
# resize


@nb.njit(**_jit)
def resize_planes(src, idx_r, w_r, idx_c, w_c, out):
    """Separable resize of ``src (K, H, W)`` into ``out (K, M, N)``.

    ``idx_r/w_r`` (M, Pr) are the row taps, ``idx_c/w_c`` (N, Pc) the column
    taps (see :func:`frkit.flow.pyramid.resize_table`). The row pass runs
    first because it vectorizes along the contiguous axis and shrinks the data
    most. Accumulation is float32 for float32 input.
    """
    K, H, W = src.shape
    M, Pr = idx_r.shape
    N, Pc = idx_c.shape
    tmp = np.empty(W, dtype=out.dtype)
    for k in range(K):
        for i in range(M):
            for x in range(W):
                tmp[x] = 0.0
            for p in range(Pr):
                wgt = w_r[i, p]
                srow = src[k, idx_r[i, p]]
                for x in range(W):
                    tmp[x] += wgt * srow[x]
            for jn in range(N):
                acc = 0.0
                for p in range(Pc):
                    acc += w_c[jn, p] * tmp[idx_c[jn, p]]
                out[k, i, jn] = acc


# ---------------------------------------------------------------------------
# warping


@nb.njit(inline="always", **_jit)
def keys_weights(t):
    """Keys weights (``KEYS_A``) of the taps at offsets -1, 0, 1, 2 for a fraction ``t`` in [0, 1).

    Each tap's distance lies in a known interval, so no branches."""
    s = 1.0 - t
    u = 1.0 + t
    v = 2.0 - t
    w0 = ((KEYS_A * u - 5.0 * KEYS_A) * u + 8.0 * KEYS_A) * u - 4.0 * KEYS_A
    w1 = ((KEYS_A + 2.0) * t - (KEYS_A + 3.0)) * t * t + 1.0
    w2 = ((KEYS_A + 2.0) * s - (KEYS_A + 3.0)) * s * s + 1.0
    w3 = ((KEYS_A * v - 5.0 * KEYS_A) * v + 8.0 * KEYS_A) * v - 4.0 * KEYS_A
    return w0, w1, w2, w3


@nb.njit(**_jit)
def warp_planes(src, u, v, sx, sy, fill, out, cubic):
    """Backward warp: ``out[k, y, x] = src[k, y + v*sy, x + u*sx]``.

    ``u, v`` (rows, cols) are in full-resolution pixels; ``sx = 1/h_col`` and
    ``sy = 1/h_row`` convert them to this grid. Samples whose position falls
    outside ``[0, cols) x [0, rows)`` take ``fill``; inside, the position is
    clipped to the last pixel centre and interpolated (Keys cubic ``KEYS_A`` or
    bilinear) with edge-replicated taps.
    """
    K, R, C = src.shape
    for y in range(R):
        for x in range(C):
            mx = x + u[y, x] * sx
            my = y + v[y, x] * sy
            if mx < 0.0 or mx >= C or my < 0.0 or my >= R:
                for k in range(K):
                    out[k, y, x] = fill[k, y, x]
                continue
            if mx > C - 1:
                mx = C - 1.0
            if my > R - 1:
                my = R - 1.0
            x0 = int(mx)
            y0 = int(my)
            tx = mx - x0
            ty = my - y0
            if cubic:
                wx0, wx1, wx2, wx3 = keys_weights(tx)
                wy0, wy1, wy2, wy3 = keys_weights(ty)
                xa = max(x0 - 1, 0)
                xb = x0
                xc = min(x0 + 1, C - 1)
                xd = min(x0 + 2, C - 1)
                ya = max(y0 - 1, 0)
                yb = y0
                yc = min(y0 + 1, R - 1)
                yd = min(y0 + 2, R - 1)
                for k in range(K):
                    s = src[k]
                    r0 = wx0 * s[ya, xa] + wx1 * s[ya, xb] + wx2 * s[ya, xc] + wx3 * s[ya, xd]
                    r1 = wx0 * s[yb, xa] + wx1 * s[yb, xb] + wx2 * s[yb, xc] + wx3 * s[yb, xd]
                    r2 = wx0 * s[yc, xa] + wx1 * s[yc, xb] + wx2 * s[yc, xc] + wx3 * s[yc, xd]
                    r3 = wx0 * s[yd, xa] + wx1 * s[yd, xb] + wx2 * s[yd, xc] + wx3 * s[yd, xd]
                    out[k, y, x] = wy0 * r0 + wy1 * r1 + wy2 * r2 + wy3 * r3
            else:
                x1 = min(x0 + 1, C - 1)
                y1 = min(y0 + 1, R - 1)
                for k in range(K):
                    s = src[k]
                    top = (1.0 - tx) * s[y0, x0] + tx * s[y0, x1]
                    bot = (1.0 - tx) * s[y1, x0] + tx * s[y1, x1]
                    out[k, y, x] = (1.0 - ty) * top + ty * bot


# ---------------------------------------------------------------------------
# motion tensor (gradient constancy), written in the solver's transposed layout


@nb.njit(**_jit)
def motion_tensor_gc(f1, f2, h_row, h_col, J):
    """Gradient-constancy motion tensor of one channel pair.

    ``f1, f2`` (R, C) float32 (reference and warped moving image). ``J`` is a
    ``(6, C + 2, R + 2)`` float64 output in the transposed padded layout, with
    components (J11, J22, J33, J12, J13, J23) and a zero ring.
    """
    R, C = f1.shape
    # symmetric-padded images (ring = copy of the adjacent edge pixel)
    F1 = np.empty((R + 2, C + 2), dtype=np.float64)
    F2 = np.empty((R + 2, C + 2), dtype=np.float64)
    for y in range(R + 2):
        yy = min(max(y - 1, 0), R - 1)
        for x in range(C + 2):
            xx = min(max(x - 1, 0), C - 1)
            F1[y, x] = f1[yy, xx]
            F2[y, x] = f2[yy, xx]
    # averaged x-derivative and temporal difference on the interior, then
    # symmetric ring (sym1 of the interior)
    fx = np.empty((R + 2, C + 2), dtype=np.float64)
    ft = np.empty((R + 2, C + 2), dtype=np.float64)
    inv2hc = 1.0 / (2.0 * h_col)
    for y in range(1, R + 1):
        for x in range(1, C + 1):
            fx[y, x] = 0.5 * ((F1[y, x + 1] - F1[y, x - 1]) + (F2[y, x + 1] - F2[y, x - 1])) * inv2hc
            ft[y, x] = F2[y, x] - F1[y, x]
    for y in range(1, R + 1):
        fx[y, 0] = fx[y, 1]
        fx[y, C + 1] = fx[y, C]
        ft[y, 0] = ft[y, 1]
        ft[y, C + 1] = ft[y, C]
    for x in range(C + 2):
        fx[0, x] = fx[1, x]
        fx[R + 1, x] = fx[R, x]
        ft[0, x] = ft[1, x]
        ft[R + 1, x] = ft[R, x]
    inv2hr = 1.0 / (2.0 * h_row)
    ihc2 = 1.0 / (h_col * h_col)
    ihr2 = 1.0 / (h_row * h_row)
    J[:, :, :] = 0.0
    for y in range(1, R + 1):
        for x in range(1, C + 1):
            fxy = (fx[y + 1, x] - fx[y - 1, x]) * inv2hr
            fxt = (ft[y, x + 1] - ft[y, x - 1]) * inv2hc
            fyt = (ft[y + 1, x] - ft[y - 1, x]) * inv2hr
            fxx = 0.5 * ((F1[y, x - 1] - 2.0 * F1[y, x] + F1[y, x + 1])
                         + (F2[y, x - 1] - 2.0 * F2[y, x] + F2[y, x + 1])) * ihc2
            fyy = 0.5 * ((F1[y - 1, x] - 2.0 * F1[y, x] + F1[y + 1, x])
                         + (F2[y - 1, x] - 2.0 * F2[y, x] + F2[y + 1, x])) * ihr2
            rx = 1.0 / (fxx * fxx + fxy * fxy + EPS_TENSOR)
            ry = 1.0 / (fxy * fxy + fyy * fyy + EPS_TENSOR)
            J[0, x, y] = rx * fxx * fxx + ry * fxy * fxy
            J[1, x, y] = rx * fxy * fxy + ry * fyy * fyy
            J[2, x, y] = rx * fxt * fxt + ry * fyt * fyt
            J[3, x, y] = rx * fxx * fxy + ry * fxy * fyy
            J[4, x, y] = rx * fxx * fxt + ry * fxy * fyt
            J[5, x, y] = rx * fxy * fxt + ry * fyy * fyt


# ---------------------------------------------------------------------------
# level solver: nonlinear SOR with lagged generalized-Charbonnier weights


@nb.njit(inline="always", **_jit)
def _neumann(a):
    C2, R2 = a.shape
    for i in range(C2):
        a[i, 0] = a[i, 1]
        a[i, R2 - 1] = a[i, R2 - 2]
    for j in range(R2):
        a[0, j] = a[1, j]
        a[C2 - 1, j] = a[C2 - 2, j]


@intrinsic
def _as_int64(typingctx, x):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], llvm_ir.IntType(64))
    return types.int64(types.float64), codegen


@intrinsic
def _as_float64(typingctx, x):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], llvm_ir.DoubleType())
    return types.float64(types.int64), codegen


@nb.njit(inline="always", **_jit)
def fast_pow(x, p):
    """``x ** p`` for positive finite ``x``, branch-free and vectorizable.

    log2 from the exponent bits plus an atanh series on the mantissa, exp2
    from a Taylor polynomial plus exponent bits; relative error below 1e-8,
    several times cheaper than libm's ``pow`` inside the solver's refresh.
    """
    b = _as_int64(x)
    ef = _as_float64((b >> 52) | np.int64(0x4330000000000000)) - 4503599627370496.0 - 1023.0
    mf = _as_float64((b & np.int64(0x000FFFFFFFFFFFFF)) | np.int64(0x3FF0000000000000))
    big = mf > 1.4142135623730951
    mf = mf * 0.5 if big else mf
    ef = ef + 1.0 if big else ef
    t = (mf - 1.0) / (mf + 1.0)
    t2 = t * t
    ln_m = 2.0 * t * (1.0 + t2 * (1.0 / 3.0 + t2 * (0.2 + t2 * (1.0 / 7.0 + t2 * (1.0 / 9.0)))))
    y = p * (ef + ln_m * 1.4426950408889634)
    nf = np.floor(y + 0.5)
    z = (y - nf) * 0.6931471805599453
    ez = 1.0 + z * (1.0 + z * (0.5 + z * (1.0 / 6.0 + z * (1.0 / 24.0 + z * (1.0 / 120.0 + z * (
        1.0 / 720.0 + z * (1.0 / 5040.0 + z * (1.0 / 40320.0))))))))
    scale = _as_float64(_as_int64(nf + 1023.0 + 4503599627370496.0) << 52)
    return scale * ez


@nb.njit(**_jit)
def pow_inplace(x, p):
    """``x[:] = x ** p`` with :func:`fast_pow`."""
    for i in range(x.size):
        x[i] = fast_pow(x[i], p)


@nb.njit(**_jit)
def _refresh(J, wk, a_data, U, V, dU, dV, quadratic, smooth_quadratic, a_s, ax, ay, hx, hy, omega,
             IU, IV, GU, GV, A12, RU, RV, EX, EY, ebuf, pbuf, sbuf):
    """Recompute the lagged weights and the per-pixel constants of the sweep.

    Data weights ``psi_k = a_k (max(0, s_k^2) + eps)^(a_k - 1)`` at the
    current increments (all 1 when ``quadratic``), smoothness edge weights
    from the total flow gradient when ``a_s != 1``. Writes the reciprocal
    diagonals ``IU = omega / Du``, the constant parts ``GU = sum_q a_q (U_q -
    U_p) - sum_k psi J13`` (``GV`` likewise) and the coupling ``A12``.
    """
    K = J.shape[0]
    C2, R2 = U.shape
    if not smooth_quadratic:
        # psi_s on the whole padded array, row by row (column i of the image)
        for i in range(C2):
            il = max(i - 1, 0)
            ir = min(i + 1, C2 - 1)
            sxd = 1.0 / ((ir - il) * hx)
            row = pbuf[i]
            for j in range(R2):
                jl = max(j - 1, 0)
                jr = min(j + 1, R2 - 1)
                syd = 1.0 / ((jr - jl) * hy)
                ux = ((U[ir, j] + dU[ir, j]) - (U[il, j] + dU[il, j])) * sxd
                vx = ((V[ir, j] + dV[ir, j]) - (V[il, j] + dV[il, j])) * sxd
                uy = ((U[i, jr] + dU[i, jr]) - (U[i, jl] + dU[i, jl])) * syd
                vy = ((V[i, jr] + dV[i, jr]) - (V[i, jl] + dV[i, jl])) * syd
                row[j] = ux * ux + uy * uy + vx * vx + vy * vy + EPS_PSI
            if quadratic:
                for j in range(R2):
                    row[j] = 1.0
            else:
                pow_inplace(row, a_s - 1.0)
                for j in range(R2):
                    row[j] *= a_s
        for i in range(C2 - 1):
            for j in range(R2):
                EX[i, j] = 0.5 * (pbuf[i, j] + pbuf[i + 1, j]) * ax
        for i in range(C2):
            for j in range(R2 - 1):
                EY[i, j] = 0.5 * (pbuf[i, j] + pbuf[i, j + 1]) * ay
    for i in range(1, C2 - 1):
        du = dU[i]
        dv = dV[i]
        if not quadratic:
            for k in range(K):
                j11 = J[k, 0, i]
                j22 = J[k, 1, i]
                j33 = J[k, 2, i]
                j12 = J[k, 3, i]
                j13 = J[k, 4, i]
                j23 = J[k, 5, i]
                eb = ebuf[k]
                for j in range(R2):
                    a = du[j]
                    b = dv[j]
                    e = (j11[j] * a * a + j22[j] * b * b + j33[j]
                         + 2.0 * (j12[j] * a * b + j13[j] * a + j23[j] * b))
                    eb[j] = max(e, 0.0) + EPS_PSI
                pow_inplace(eb, a_data[k] - 1.0)
        # channel sums with the pixel loop innermost (vectorizes)
        d11 = sbuf[0]
        d22 = sbuf[1]
        a12 = sbuf[2]
        b1 = sbuf[3]
        b2 = sbuf[4]
        for j in range(R2):
            d11[j] = 0.0
            d22[j] = 0.0
            a12[j] = 0.0
            b1[j] = 0.0
            b2[j] = 0.0
        for k in range(K):
            j11 = J[k, 0, i]
            j22 = J[k, 1, i]
            j12 = J[k, 3, i]
            j13 = J[k, 4, i]
            j23 = J[k, 5, i]
            eb = ebuf[k]
            c = wk[k] * a_data[k]
            for j in range(R2):
                psi = wk[k] if quadratic else c * eb[j]
                d11[j] += psi * j11[j]
                d22[j] += psi * j22[j]
                a12[j] += psi * j12[j]
                b1[j] += psi * j13[j]
                b2[j] += psi * j23[j]
        iu = IU[i]
        iv = IV[i]
        gu = GU[i]
        gv = GV[i]
        ru = RU[i]
        rv = RV[i]
        if smooth_quadratic:
            if quadratic:
                # base-flow smoothness residual: constant while the weights are
                uc = U[i]
                ul = U[i - 1]
                ur = U[i + 1]
                vc = V[i]
                vl = V[i - 1]
                vr = V[i + 1]
                for j in range(1, R2 - 1):
                    ru[j] = (ax * (ul[j] + ur[j] - 2.0 * uc[j]) + ay * (uc[j - 1] + uc[j + 1] - 2.0 * uc[j]))
                    rv[j] = (ax * (vl[j] + vr[j] - 2.0 * vc[j]) + ay * (vc[j - 1] + vc[j + 1] - 2.0 * vc[j]))
            s = 2.0 * (ax + ay)
            for j in range(1, R2 - 1):
                iu[j] = omega / (s + d11[j])
                iv[j] = omega / (s + d22[j])
                gu[j] = ru[j] - b1[j]
                gv[j] = rv[j] - b2[j]
        else:
            for j in range(1, R2 - 1):
                el = EX[i - 1, j]
                er = EX[i, j]
                eu = EY[i, j - 1]
                ed = EY[i, j]
                up = U[i, j]
                vp = V[i, j]
                ru[j] = (el * (U[i - 1, j] - up) + er * (U[i + 1, j] - up)
                         + eu * (U[i, j - 1] - up) + ed * (U[i, j + 1] - up))
                rv[j] = (el * (V[i - 1, j] - vp) + er * (V[i + 1, j] - vp)
                         + eu * (V[i, j - 1] - vp) + ed * (V[i, j + 1] - vp))
                s = el + er + eu + ed
                iu[j] = omega / (s + d11[j])
                iv[j] = omega / (s + d22[j])
                gu[j] = ru[j] - b1[j]
                gv[j] = rv[j] - b2[j]
        a12o = A12[i]
        for j in range(R2):
            a12o[j] = a12[j]


@nb.njit(**_jit)
def solve_level(J, wk, a_data, U, V, alpha_x, alpha_y, hx, hy, iterations, update_lag, a_s, omega, dU, dV):
    """Solve one pyramid level for the increments ``dU, dV`` (in place).

    ``J`` (K, 6, C+2, R+2), ``U, V, dU, dV`` (C+2, R+2) in the transposed
    padded layout; ``wk`` channel weights; ``a_data`` per-channel exponents.
    Nonlinearities are refreshed before sweeps ``update_lag, 2*update_lag,
    ...`` (1-based), the first ``update_lag - 1`` sweeps use quadratic weights.
    Gauss-Seidel order and the u-then-v update inside a pixel follow the
    reference method; the divisions are replaced by reciprocals computed at
    each refresh (same update, fewer divisions in the inner loop).
    """
    K = J.shape[0]
    C2, R2 = U.shape
    ax = alpha_x / (hx * hx)
    ay = alpha_y / (hy * hy)
    shape = (C2, R2)
    IU = np.zeros(shape)
    IV = np.zeros(shape)
    GU = np.zeros(shape)
    GV = np.zeros(shape)
    A12 = np.zeros(shape)
    RU = np.zeros(shape)
    RV = np.zeros(shape)
    EX = np.empty(shape)
    EY = np.empty(shape)
    ebuf = np.empty((K, R2))
    sbuf = np.empty((5, R2))
    pbuf = np.empty(shape) if a_s != 1.0 else np.empty((1, 1))
    smooth_quadratic = a_s == 1.0
    dU[:, :] = 0.0
    dV[:, :] = 0.0
    one_m_omega = 1.0 - omega
    for it in range(1, iterations + 1):
        robust = it % update_lag == 0
        if it == 1 or robust:
            _refresh(J, wk, a_data, U, V, dU, dV, not robust, smooth_quadratic, a_s, ax, ay, hx, hy, omega,
                     IU, IV, GU, GV, A12, RU, RV, EX, EY, ebuf, pbuf, sbuf)
        _neumann(dU)
        _neumann(dV)
        if smooth_quadratic:
            _sweep_const(dU, dV, IU, IV, GU, GV, A12, ax, ay, one_m_omega)
        else:
            _sweep_edges(dU, dV, IU, IV, GU, GV, A12, EX, EY, one_m_omega)


# The sweeps carry the value just computed above the pixel (j - 1) in a
# register and add it last, so the loop-carried dependency is one
# multiply-add per pixel instead of a store/reload plus the whole stencil sum.


@nb.njit(**_jit)
def _sweep_const(dU, dV, IU, IV, GU, GV, A12, ax, ay, om):
    C2, R2 = dU.shape
    for i in range(1, C2 - 1):
        uc = dU[i]
        ul = dU[i - 1]
        ur = dU[i + 1]
        vc = dV[i]
        vl = dV[i - 1]
        vr = dV[i + 1]
        iu = IU[i]
        iv = IV[i]
        gu = GU[i]
        gv = GV[i]
        a12 = A12[i]
        u_up = uc[0]
        v_up = vc[0]
        for j in range(1, R2 - 1):
            iuj = iu[j]
            ivj = iv[j]
            tu = ax * (ul[j] + ur[j]) + ay * uc[j + 1] + gu[j] - a12[j] * vc[j]
            u = (om * uc[j] + iuj * tu) + (iuj * ay) * u_up
            uc[j] = u
            tv = ax * (vl[j] + vr[j]) + ay * vc[j + 1] + gv[j]
            v = (om * vc[j] + ivj * tv - (ivj * a12[j]) * u) + (ivj * ay) * v_up
            vc[j] = v
            u_up = u
            v_up = v


@nb.njit(**_jit)
def _sweep_edges(dU, dV, IU, IV, GU, GV, A12, EX, EY, om):
    C2, R2 = dU.shape
    for i in range(1, C2 - 1):
        uc = dU[i]
        ul = dU[i - 1]
        ur = dU[i + 1]
        vc = dV[i]
        vl = dV[i - 1]
        vr = dV[i + 1]
        iu = IU[i]
        iv = IV[i]
        gu = GU[i]
        gv = GV[i]
        a12 = A12[i]
        exl = EX[i - 1]
        exr = EX[i]
        ey = EY[i]
        u_up = uc[0]
        v_up = vc[0]
        for j in range(1, R2 - 1):
            iuj = iu[j]
            ivj = iv[j]
            el = exl[j]
            er = exr[j]
            eu = ey[j - 1]
            ed = ey[j]
            tu = el * ul[j] + er * ur[j] + ed * uc[j + 1] + gu[j] - a12[j] * vc[j]
            u = (om * uc[j] + iuj * tu) + (iuj * eu) * u_up
            uc[j] = u
            tv = el * vl[j] + er * vr[j] + ed * vc[j + 1] + gv[j]
            v = (om * vc[j] + ivj * tv - (ivj * a12[j]) * u) + (ivj * eu) * v_up
            vc[j] = v
            u_up = u
            v_up = v


# ---------------------------------------------------------------------------
# 5x5 median of the increments (mirror border: d c b | a b c d | c b a)

_NET = median25_network()


@nb.njit(**_jit)
def median5x5_interior(a, net):
    """Median-filter the interior ``a[1:-1, 1:-1]`` in place (5x5, mirror)."""
    C2, R2 = a.shape
    C = C2 - 2
    R = R2 - 2
    pad = np.empty((C + 4, R + 4), dtype=a.dtype)
    for i in range(C + 4):
        si = i - 2
        if si < 0:
            si = -si
        elif si > C - 1:
            si = 2 * (C - 1) - si
        for j in range(R + 4):
            sj = j - 2
            if sj < 0:
                sj = -sj
            elif sj > R - 1:
                sj = 2 * (R - 1) - sj
            pad[i, j] = a[si + 1, sj + 1]
    buf = np.empty((25, R), dtype=a.dtype)
    m = net.shape[0]
    for i in range(C):
        for di in range(5):
            for dj in range(5):
                row = buf[di * 5 + dj]
                src = pad[i + di]
                for j in range(R):
                    row[j] = src[j + dj]
        for n in range(m):
            lo = buf[net[n, 0]]
            hi = buf[net[n, 1]]
            mode = net[n, 2]
            if mode == 0:
                for j in range(R):
                    x = lo[j]
                    y = hi[j]
                    lo[j] = min(x, y)
                    hi[j] = max(x, y)
            elif mode == 1:
                for j in range(R):
                    lo[j] = min(lo[j], hi[j])
            else:
                for j in range(R):
                    hi[j] = max(lo[j], hi[j])
        mid = buf[12]
        for j in range(R):
            a[i + 1, j + 1] = mid[j]


def median5x5(a: np.ndarray) -> None:
    """In-place 5x5 median of the interior of a padded transposed plane."""
    median5x5_interior(a, _NET)


# ---------------------------------------------------------------------------
# temporal smoothing of the flows (frkit.flow_time)


#: pixels (elements) per block: the buffered frames' block stays in cache while every output frame reads it
_TAPS_BLOCK = 2048


@nb.njit(**_jit)
def temporal_taps(flows, src, weights, offset, out):
    """``out[i, p] = sum_j weights[j, i] * flows[src[j, i], p] + offset[i, p % 2]``, taps added in order
    ``j = 0, 1, ...``.

    ``flows`` ``(n, P)`` float32 (buffered frames, flattened, u and v
    interleaved), ``src`` and ``weights`` ``(taps, n_out)``, ``offset``
    ``(n_out, 2)`` float32, ``out`` ``(n_out, P)`` float32. Each output
    element depends only on its own taps, in a fixed order, so any split of
    the frames into calls gives the same bits. Blocked over ``P`` so the
    taps are read from cache.
    """
    n_taps, n_out = src.shape
    n_p = flows.shape[1]
    acc = np.empty(_TAPS_BLOCK, dtype=np.float32)
    for p0 in range(0, n_p, _TAPS_BLOCK):
        m = min(n_p, p0 + _TAPS_BLOCK) - p0
        for i in range(n_out):
            for q in range(m):
                acc[q] = 0.0
            for j in range(n_taps):
                w = np.float32(weights[j, i])
                row = flows[src[j, i], p0:p0 + m]
                for q in range(m):
                    acc[q] += w * row[q]
            dst = out[i, p0:p0 + m]
            for q in range(m):
                dst[q] = acc[q] + offset[i, (p0 + q) % 2]


@nb.njit(**_jit)
def flow_means(flows, out):
    """``out[i] = (mean u, mean v)`` (float64) of each ``flows[i]`` ``(P,)`` with u and v interleaved,
    summed in element order."""
    n, n_p = flows.shape
    for i in range(n):
        su = 0.0
        sv = 0.0
        for q in range(0, n_p, 2):
            su += flows[i, q]
            sv += flows[i, q + 1]
        out[i, 0] = su / (n_p // 2)
        out[i, 1] = sv / (n_p // 2)

"""The red-black level iteration in plain numpy (float32), written from the spec.

An independent oracle for the ``rb_refresh`` / ``rb_sweep`` kernels: same
lag cadence as the CPU solver, u then v inside a pixel, Neumann ghosts that
always copy the adjacent interior value.
"""

import numpy as np

from frkit.flow.policy import EPS_PSI, OMEGA

EPS = np.float32(EPS_PSI)


def rb_level(J, wk, a_data, U, V, alpha_x, alpha_y, hx, hy, iterations, update_lag, a_s, omega=OMEGA):
    """J (B, K, 6, R+2, C+2); U, V (B, R+2, C+2) padded. Returns dU, dV (B, R+2, C+2)."""
    f = np.float32
    B, K = J.shape[:2]
    R2, C2 = U.shape[1:]
    ax, ay = f(alpha_x / hx**2), f(alpha_y / hy**2)
    dU = np.zeros_like(U)
    dV = np.zeros_like(V)
    yy, xx = np.mgrid[0:R2, 0:C2]
    interior = (yy > 0) & (yy < R2 - 1) & (xx > 0) & (xx < C2 - 1)
    colours = [interior & ((yy + xx) % 2 == c) for c in (0, 1)]

    def shift(a, dy, dx):  # a[y + dy, x + dx] on the interior (edges wrap but are masked out)
        return np.roll(a, (-dy, -dx), axis=(1, 2))

    def ghosts(a):
        a[:, 0, :] = a[:, 1, :]
        a[:, -1, :] = a[:, -2, :]
        a[:, :, 0] = a[:, :, 1]
        a[:, :, -1] = a[:, :, -2]

    for it in range(1, iterations + 1):
        robust = it % update_lag == 0
        if it == 1 or robust:
            d11 = np.zeros_like(U); d22 = np.zeros_like(U); a12 = np.zeros_like(U)
            b1 = np.zeros_like(U); b2 = np.zeros_like(U)
            for k in range(K):
                j11, j22, j33, j12, j13, j23 = (J[:, k, c] for c in range(6))
                if robust:
                    e = j11 * dU * dU + j22 * dV * dV + j33 + f(2) * (j12 * dU * dV + j13 * dU + j23 * dV)
                    psi = f(wk[k] * a_data[k]) * (np.maximum(e, 0) + EPS) ** f(a_data[k] - 1)
                else:
                    psi = f(wk[k])
                d11 += psi * j11; d22 += psi * j22; a12 += psi * j12; b1 += psi * j13; b2 += psi * j23
            if a_s == 1:
                el = er = np.full_like(U, ax)
                eu = ed = np.full_like(U, ay)
            else:
                Ub, Vb = U + dU, V + dV
                gx = lambda a: np.gradient(a, hx, axis=2)  # noqa: E731
                gy = lambda a: np.gradient(a, hy, axis=1)  # noqa: E731
                z = gx(Ub) ** 2 + gy(Ub) ** 2 + gx(Vb) ** 2 + gy(Vb) ** 2
                ps = (f(a_s) * (np.maximum(z, 0) + EPS) ** f(a_s - 1)) if robust else np.ones_like(U)
                ps = ps.astype(np.float32)
                el = f(0.5) * (ps + shift(ps, 0, -1)) * ax
                er = f(0.5) * (ps + shift(ps, 0, 1)) * ax
                eu = f(0.5) * (ps + shift(ps, -1, 0)) * ay
                ed = f(0.5) * (ps + shift(ps, 1, 0)) * ay
            ru = el * (shift(U, 0, -1) - U) + er * (shift(U, 0, 1) - U) + eu * (shift(U, -1, 0) - U) + ed * (shift(U, 1, 0) - U)
            rv = el * (shift(V, 0, -1) - V) + er * (shift(V, 0, 1) - V) + eu * (shift(V, -1, 0) - V) + ed * (shift(V, 1, 0) - V)
            s = el + er + eu + ed
            IU, IV = f(omega) / (s + d11), f(omega) / (s + d22)
            GU, GV = ru - b1, rv - b2
        for m in colours:
            su = el * shift(dU, 0, -1) + er * shift(dU, 0, 1) + eu * shift(dU, -1, 0) + ed * shift(dU, 1, 0)
            u = f(1 - omega) * dU + IU * (su + GU - a12 * dV)
            dU = np.where(m, u, dU)
            sv = el * shift(dV, 0, -1) + er * shift(dV, 0, 1) + eu * shift(dV, -1, 0) + ed * shift(dV, 1, 0)
            v = f(1 - omega) * dV + IV * (sv + GV - a12 * dU)
            dV = np.where(m, v, dV)
            ghosts(dU)
            ghosts(dV)
    return dU, dV

"""A literal, slow transcription of one pyramid level's solver.

Nonlinear SOR on the Euler-Lagrange equations of the gradient-constancy
data term (per-channel generalized Charbonnier weights ``psi_k``) plus a
smoothness term (edge weights ``psi_s``), both lagged: they are recomputed
from the current increments every ``update_lag``-th sweep and stay constant
in between. Written straight from the formulas (divisions, normal layout,
explicit column-major loop) to check the optimized kernel on tiny problems.
"""

import numpy as np

from frkit.flow.policy import EPS_PSI as EPS
from frkit.flow.policy import OMEGA


def _gradient(a, h, axis):
    return np.gradient(a, h, axis=axis)


def literal_level_solver(J, wt, U, V, alpha_x, alpha_y, hx, hy, iterations, update_lag, a_data, a_s,
                         omega=OMEGA, order="column"):
    """J: (K, 6, R+2, C+2) components (J11, J22, J33, J12, J13, J23); wt: (K,) weights.

    U, V: (R+2, C+2) base flows. Returns dU, dV (R+2, C+2).
    """
    K = J.shape[0]
    R2, C2 = U.shape
    dU = np.zeros_like(U)
    dV = np.zeros_like(V)
    Wt = np.zeros((K, R2, C2))
    for k in range(K):
        Wt[k, 1:-1, 1:-1] = wt[k]
    psi = np.ones((K, R2, C2))
    psi_s = np.ones((R2, C2))
    for it in range(1, iterations + 1):
        if it % update_lag == 0:
            for k in range(K):
                j11, j22, j33, j12, j13, j23 = J[k]
                e = j11 * dU**2 + j22 * dV**2 + j33 + 2 * j12 * dU * dV + 2 * j13 * dU + 2 * j23 * dV
                psi[k] = a_data[k] * (np.maximum(e, 0) + EPS) ** (a_data[k] - 1)
            if a_s != 1:
                Ub, Vb = U + dU, V + dV
                z = (_gradient(Ub, hx, 1) ** 2 + _gradient(Ub, hy, 0) ** 2 + _gradient(Vb, hx, 1) ** 2
                     + _gradient(Vb, hy, 0) ** 2)
                psi_s = a_s * (np.maximum(z, 0) + EPS) ** (a_s - 1)
        for a in (dU, dV):
            a[0, :] = a[1, :]
            a[-1, :] = a[-2, :]
            a[:, 0] = a[:, 1]
            a[:, -1] = a[:, -2]
        if order == "column":
            pixels = [(j, i) for i in range(1, C2 - 1) for j in range(1, R2 - 1)]
        elif order == "row":
            pixels = [(j, i) for j in range(1, R2 - 1) for i in range(1, C2 - 1)]
        else:  # "reverse": column-major from the last pixel back
            pixels = [(j, i) for i in range(C2 - 2, 0, -1) for j in range(R2 - 2, 0, -1)]
        for j, i in pixels:
            nbrs = [((j, i - 1), alpha_x / hx**2), ((j, i + 1), alpha_x / hx**2),
                    ((j + 1, i), alpha_y / hy**2), ((j - 1, i), alpha_y / hy**2)]
            S = Nu = Nv = 0.0
            for q, base in nbrs:
                aq = base if a_s == 1 else 0.5 * (psi_s[j, i] + psi_s[q]) * base
                S += aq
                Nu += aq * (U[q] + dU[q] - U[j, i])
                Nv += aq * (V[q] + dV[q] - V[j, i])
            Du = S + sum(Wt[k, j, i] * psi[k, j, i] * J[k, 0, j, i] for k in range(K))
            Dv = S + sum(Wt[k, j, i] * psi[k, j, i] * J[k, 1, j, i] for k in range(K))
            Nu -= sum(Wt[k, j, i] * psi[k, j, i] * (J[k, 4, j, i] + J[k, 3, j, i] * dV[j, i]) for k in range(K))
            dU[j, i] = (1 - omega) * dU[j, i] + omega * Nu / Du
            Nv -= sum(Wt[k, j, i] * psi[k, j, i] * (J[k, 5, j, i] + J[k, 3, j, i] * dU[j, i]) for k in range(K))
            dV[j, i] = (1 - omega) * dV[j, i] + omega * Nv / Dv
    return dU, dV

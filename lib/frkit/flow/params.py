"""Parameters of the variational optical-flow method (no pipeline options)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from .policy import OMEGA


@dataclass(frozen=True)
class FlowParams:
    """Solver parameters for one displacement estimate.

    ``alpha`` is ``(alpha_x, alpha_y)``; ``a_data`` and ``weights`` hold one
    entry per channel (see :meth:`for_channels`). ``min_level`` is the
    effective finest level (presets are resolved by the caller).
    ``warp_coarsest`` warps the moving image by the initial flow at the
    coarsest level too. The reference method does not: it starts the
    coarsest level's solve from the initial flow but compares the unwarped
    image, so a good initialization is counted twice there.
    """

    alpha: tuple[float, float] = (1.5, 1.5)
    levels: int = 100
    min_level: int = 0
    eta: float = 0.8
    update_lag: int = 5
    iterations: int = 50
    a_smooth: float = 1.0
    a_data: tuple[float, ...] = (0.45,)
    weights: tuple[float, ...] = (1.0,)
    warp_coarsest: bool = True
    omega: float = OMEGA

    @classmethod
    def from_values(cls, values, min_level: int, weights) -> "FlowParams":
        """From a tool's checked parameter values (alpha, levels, eta, update_lag, iterations, a_smooth,
        a_data; their bounds are declared in :mod:`frkit.options`), at the finest level ``min_level``."""
        return cls(alpha=tuple(float(a) for a in values.alpha), levels=values.levels, min_level=min_level,
                   eta=values.eta, update_lag=values.update_lag, iterations=values.iterations,
                   a_smooth=values.a_smooth, a_data=(values.a_data,), weights=tuple(float(w) for w in weights))

    def for_channels(self, n_channels: int) -> "FlowParams":
        """Per-channel ``weights`` (normalized to sum 1) and ``a_data``.

        Extra weights are dropped and the rest renormalized; a missing weight
        gets ``1 / n_channels``. A single ``a_data`` applies to all channels.
        """
        w = list(self.weights[:n_channels])
        w += [1.0 / n_channels] * (n_channels - len(w))
        total = sum(w)
        if total <= 0:
            raise ValueError("channel weights must sum to a positive number")
        w = tuple(x / total for x in w)
        a = tuple(self.a_data)
        a = a[:n_channels] if len(a) >= n_channels else a + (a[-1],) * (n_channels - len(a))
        return replace(self, weights=w, a_data=a)

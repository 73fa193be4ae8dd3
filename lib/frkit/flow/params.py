"""Parameters of the variational optical-flow method (no pipeline options)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

#: quality presets set only the finest computed pyramid level
QUALITY_MIN_LEVEL = {"quality": 0, "balanced": 4, "fast": 6}

#: SOR over-relaxation factor (a constant of the method)
OMEGA = 1.95


@dataclass(frozen=True)
class FlowParams:
    """Solver parameters for one displacement estimate.

    ``alpha`` is ``(alpha_x, alpha_y)``; ``a_data`` and ``weights`` hold one
    entry per channel (see :meth:`for_channels`). ``min_level`` is the
    effective finest level (presets are resolved by the caller).
    ``warp_coarsest`` warps the moving image by the initial flow at the
    coarsest level too; the reference method does not (``algorithm.md``
    §3.9), which double counts a good initialization there.
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
    omega: float = field(default=OMEGA)

    def __post_init__(self):
        if len(self.alpha) != 2 or min(self.alpha) <= 0:
            raise ValueError("alpha must be two positive numbers")
        if not 0 < self.eta <= 1:
            raise ValueError("eta must be in (0, 1]")
        if self.iterations < 1 or self.update_lag < 1 or self.levels < 1:
            raise ValueError("iterations, update_lag and levels must be >= 1")
        if any(not 0 < a <= 1 for a in self.a_data):
            raise ValueError("a_data must be in (0, 1]")
        if self.a_smooth <= 0:
            raise ValueError("a_smooth must be > 0")

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

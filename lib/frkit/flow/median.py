"""A comparator network for the median of 25 values (the 5x5 median filter).

Batcher's odd-even merge sort for 32 wires, restricted to the 25 used wires
(the unused ones would carry +inf, so comparators touching them are no-ops),
then pruned backwards to the comparators the middle output depends on. A
comparator whose upper output is never needed becomes a plain ``min`` and vice
versa. The network is data-independent, so the filter vectorizes across a row.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

N_INPUTS = 25
MEDIAN_WIRE = 12

#: comparator modes
BOTH, MIN_ONLY, MAX_ONLY = 0, 1, 2


def _batcher(n: int) -> list[tuple[int, int]]:
    pairs = []
    p = 1
    while p < n:
        k = p
        while k >= 1:
            for j in range(k % p, n - k, 2 * k):
                for i in range(min(k, n - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return pairs


@lru_cache(maxsize=1)
def median25_network() -> np.ndarray:
    """``(m, 3)`` int64 rows ``(low_wire, high_wire, mode)`` in execution order."""
    full = [(a, b) for a, b in _batcher(32) if a < N_INPUTS and b < N_INPUTS]
    needed = {MEDIAN_WIRE}
    kept = []
    for a, b in reversed(full):
        need_lo, need_hi = a in needed, b in needed
        if not (need_lo or need_hi):
            continue
        mode = BOTH if (need_lo and need_hi) else (MIN_ONLY if need_lo else MAX_ONLY)
        kept.append((a, b, mode))
        needed.update((a, b))
    kept.reverse()
    return np.array(kept, dtype=np.int64)

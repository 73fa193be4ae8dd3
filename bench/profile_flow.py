#!/usr/bin/env python3
"""Where the time of one displacement estimate goes, kernel by kernel (one core).

Times ``ReferencePyramid.flow`` on a textured frame with a known smooth warp
for each preset and splits it into the numba kernels (resize, warp, motion
tensor, level solver, median) and the Python glue. The pipeline-level split
(reference, read, preprocess, flow, warp, write) is in every run's
``compensate.json`` (``summary.stage_seconds``).

    python bench/profile_flow.py [--size 512] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from frkit.flow import displacement as D  # noqa: E402
from frkit.flow import kernels as K  # noqa: E402
from frkit.flow.params import FlowParams  # noqa: E402
from frkit.options import QUALITY_MIN_LEVEL  # noqa: E402
from frkit.synth import SyntheticSession  # noqa: E402

KERNELS = ("resize_planes", "warp_planes", "motion_tensor_gc", "solve_level", "median5x5")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args(argv)
    s = SyntheticSession(a.size, a.size, 2, seed=1, photons=None)
    frames = s.frames(dtype=np.float32)[..., 0]
    ref = (frames[0] - frames.min()) / np.ptp(frames)
    mov = (frames[1] - frames.min()) / np.ptp(frames)

    times: dict[str, float] = {}

    def timed(name, fn):
        def wrapper(*args, **kw):
            t0 = time.perf_counter()
            out = fn(*args, **kw)
            times[name] = times.get(name, 0.0) + time.perf_counter() - t0
            return out
        return wrapper

    originals = {n: getattr(K, n) for n in KERNELS}
    for preset, min_level in QUALITY_MIN_LEVEL.items():
        pyr = D.ReferencePyramid(ref[None], FlowParams(min_level=min_level))
        pyr.flow(mov[None])  # compile / warm caches
        times.clear()
        for n, fn in originals.items():
            setattr(K, n, timed(n, fn))
        t0 = time.perf_counter()
        for _ in range(a.repeat):
            pyr.flow(mov[None])
        total = (time.perf_counter() - t0) / a.repeat
        for n, fn in originals.items():
            setattr(K, n, fn)
        pix = sum((lv.rows + 2) * (lv.cols + 2) for lv in pyr.levels) * pyr.params.iterations
        print(f"{a.size}x{a.size} {preset:8s}: {1000 * total:7.1f} ms per frame, "
              f"{1e9 * times['solve_level'] / a.repeat / pix:.2f} ns per pixel-iteration in the solver")
        accounted = 0.0
        for n in KERNELS:
            t = times.get(n, 0.0) / a.repeat
            accounted += t
            print(f"    {n:18s} {1000 * t:7.1f} ms  {100 * t / total:5.1f} %")
        print(f"    {'python glue':18s} {1000 * (total - accounted):7.1f} ms  {100 * (total - accounted) / total:5.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What fr-qc costs next to the compensation it checks (target: at most 15 %).

Writes a synthetic recording (or takes --input), corrects it with fr-compensate
at the balanced preset (timed), then runs fr-qc on the result (timed, with the
peak of Python/numpy memory it allocated, which must not grow with the length).

    .venv/bin/python bench/qc_cost.py                     # 256 x 256, 300 frames
    .venv/bin/python bench/qc_cost.py --frames 600 --size 512
    .venv/bin/python bench/qc_cost.py --input /work/shared/data/allen_movie_100x100x100.h5
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import tracemalloc
from pathlib import Path

import h5py
import numpy as np

from frkit import options, tools
from frkit.qc.recording import find_inputs, measure
from frkit.synth import SyntheticSession


def write_recording(path: Path, frames: int, size: int) -> None:
    s = SyntheticSession(size, size, frames, seed=3, shift_px=4.0, warp_px=1.5, margin=48)
    with h5py.File(path, "w") as f:
        mov = f.create_dataset("mov", (frames, size, size), np.uint16, chunks=(1, size, size))
        for a in range(0, frames, 50):
            mov[a:a + 50] = s.frames(a, min(frames, a + 50))[..., 0]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", type=Path, help="a recording (default: a synthetic one)")
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--keep", type=Path, help="write the stage-1 folder here and keep it")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = a.input
        if src is None:
            src = (a.keep.parent / f"{a.keep.name}.h5") if a.keep else tmp / "rec.h5"
            write_recording(src, a.frames, a.size)
        out = a.keep or tmp / "out"
        t0 = time.perf_counter()
        tools.compensate(src, out, options.resolve(options.COMPENSATE, quality="balanced", save_w=True,
                                                   workers=a.workers))
        t_comp = time.perf_counter() - t0
        tools.average(out, out / "temporal_average.npy", options.resolve(options.AVERAGE))  # as a session has it
        t0 = time.perf_counter()
        s = tools.qc(out, None, options.resolve(options.QC))
        t_qc = time.perf_counter() - t0  # the first run: with importing matplotlib and drawing
        t0 = time.perf_counter()
        measure(find_inputs(out))
        t_measure = time.perf_counter() - t0  # the streaming pass alone: what grows with the length
        tracemalloc.start()  # a second run for the memory (tracing slows numpy's allocations)
        tools.qc(out, None, options.resolve(options.QC))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        h, w, c = s["shape"]
        frame_mb = h * w * c * 8 / 2 ** 20
        result = {
            "recording": str(a.input or f"synthetic {a.size}x{a.size}, {a.frames} frames"), "frames": s["frames"],
            "compensate_balanced_s": round(t_comp, 2), "qc_s": round(t_qc, 2),
            "qc_over_compensate_percent": round(100 * t_qc / t_comp, 1),
            "qc_measure_pass_s": round(t_measure, 2),
            "qc_fixed_s (import matplotlib, figure, files)": round(t_qc - t_measure, 2),
            "per_frame_ms": {"compensate": round(1000 * t_comp / s["frames"], 1),
                             "qc_measure": round(1000 * t_measure / s["frames"], 1)},
            "measure_over_compensate_percent": round(100 * t_measure / t_comp, 1),
            "qc_peak_memory_mb": round(peak / 2 ** 20, 1), "one_float64_frame_mb": round(frame_mb, 2),
            "correlation": [s["correlation"]["raw"]["mean"], s["correlation"]["corrected"]["mean"]],
            "residual_motion_px": s["residual_motion_px"]["median"], "bad_frames": s["bad_frames"]["count"],
        }
        print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

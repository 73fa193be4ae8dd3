"""What fr-qc costs next to the compensation it checks (target: at most 15 %).

Writes a synthetic recording (or takes --input), corrects it with fr-compensate
at the balanced preset (timed), then runs fr-qc on the result (timed, with the
peak of Python/numpy memory it allocated, which must not grow with the length).
Each --repeat corrects and checks back-to-back again (a shared machine's load
then weighs on both alike); the first fr-qc of the process pays the imports
(matplotlib, scipy.fft), later ones do not, so the last line gives the first
repeat's ratio and the worst. --cli times the two commands as separate
processes instead (start-up and imports included on both sides, as `make
session` runs them), wall and CPU time (user + system of every thread and
child process: fr-qc's second process, which draws qc.png, counts; on a loaded
machine the CPU times vary less). In-process, tools.qc draws qc.png itself. fr-qc compiles nothing; fr-compensate's first run in a
fresh checkout (or after its numba kernels changed) compiles them, about 10 s
at 256 x 256, once: with --repeat 2 the later repeats show the steady state
(the "worst of" figure).

    .venv/bin/python bench/qc_cost.py                     # 256 x 256, 300 frames
    .venv/bin/python bench/qc_cost.py --frames 1000 --repeat 2
    .venv/bin/python bench/qc_cost.py --frames 600 --size 512
    .venv/bin/python bench/qc_cost.py --cli
    .venv/bin/python bench/qc_cost.py --input /work/shared/data/allen_movie_100x100x100.h5
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import h5py
import numpy as np

from frkit import options, tools
from frkit.qc.recording import find_inputs, measure
from frkit.synth import SyntheticSession

BIN = Path(sys.executable).parent  # the commands of this venv


def write_recording(path: Path, frames: int, size: int) -> None:
    s = SyntheticSession(size, size, frames, seed=3, shift_px=4.0, warp_px=1.5, margin=48)
    with h5py.File(path, "w") as f:
        mov = f.create_dataset("mov", (frames, size, size), np.uint16, chunks=(1, size, size))
        for a in range(0, frames, 50):
            mov[a:a + 50] = s.frames(a, min(frames, a + 50))[..., 0]


def _timed_cli(*args) -> tuple[float, float]:
    """Run a command; its wall time and CPU time (user + system, all its threads and children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([str(a) for a in args], check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def run_once(src: Path, out: Path, a) -> dict:
    """Correct ``src`` into ``out`` and check it, back-to-back; the times and fr-qc's summary."""
    shutil.rmtree(out, ignore_errors=True)
    if a.cli:
        t_comp, c_comp = _timed_cli(BIN / "fr-compensate", src, "-o", out, "--quality", "balanced", "--save-w",
                                    "--workers", a.workers)
        tools.average(out, out / "temporal_average.npy", options.resolve(options.AVERAGE))  # as a session has it
        t_qc, c_qc = _timed_cli(BIN / "fr-qc", out)
        return {"compensate_s": t_comp, "qc_s": t_qc, "summary": json.loads((out / "qc.json").read_text()),
                "compensate_cpu_s": c_comp, "qc_cpu_s": c_qc}
    t0, c0 = time.perf_counter(), time.process_time()
    tools.compensate(src, out, options.resolve(options.COMPENSATE, quality="balanced", save_w=True,
                                               workers=a.workers))
    t_comp, c_comp = time.perf_counter() - t0, time.process_time() - c0
    tools.average(out, out / "temporal_average.npy", options.resolve(options.AVERAGE))  # as a session has it
    t0, c0 = time.perf_counter(), time.process_time()
    s = tools.qc(out, None, options.resolve(options.QC))
    t_qc, c_qc = time.perf_counter() - t0, time.process_time() - c0
    t0 = time.perf_counter()
    measure(find_inputs(out))
    t_measure = time.perf_counter() - t0  # the streaming pass alone: what grows with the length
    # CPU seconds (all threads) too: on a shared machine they vary less than wall time does
    return {"compensate_s": t_comp, "qc_s": t_qc, "measure_s": t_measure, "summary": s,
            "compensate_cpu_s": c_comp, "qc_cpu_s": c_qc}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", type=Path, help="a recording (default: a synthetic one)")
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=1, help="correct and check this many times, back-to-back")
    ap.add_argument("--cli", action="store_true", help="time fr-compensate and fr-qc as commands (processes)")
    ap.add_argument("--keep", type=Path, help="write the stage-1 folder here and keep it")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = a.input
        if src is None:
            src = (a.keep.parent / f"{a.keep.name}.h5") if a.keep else tmp / "rec.h5"
            write_recording(src, a.frames, a.size)
        out = a.keep or tmp / "out"
        runs = [run_once(src, out, a) for _ in range(a.repeat)]
        s = runs[-1]["summary"]
        peak = None
        if not a.cli:
            tracemalloc.start()  # one more fr-qc for the memory (tracing slows numpy's allocations)
            tools.qc(out, None, options.resolve(options.QC))
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        h, w, c = s["shape"]
        rows = []
        for i, r in enumerate(runs):
            row = {"repeat": i + 1, "compensate_balanced_s": round(r["compensate_s"], 2), "qc_s": round(r["qc_s"], 2),
                   "qc_over_compensate_percent": round(100 * r["qc_s"] / r["compensate_s"], 1)}
            if "qc_cpu_s" in r:
                row.update({"compensate_cpu_s": round(r["compensate_cpu_s"], 2), "qc_cpu_s": round(r["qc_cpu_s"], 2),
                            "qc_over_compensate_cpu_percent": round(100 * r["qc_cpu_s"] / r["compensate_cpu_s"], 1)})
            if "measure_s" in r:
                row.update({"qc_measure_pass_s": round(r["measure_s"], 2),
                            "qc_fixed_s": round(r["qc_s"] - r["measure_s"], 2),
                            "measure_over_compensate_percent": round(100 * r["measure_s"] / r["compensate_s"], 1)})
            rows.append(row)
        result = {
            "recording": str(a.input or f"synthetic {a.size}x{a.size}, {a.frames} frames"), "frames": s["frames"],
            "timing": "commands (processes)" if a.cli else "library calls in one process",
            "runs": rows,
            "qc_peak_memory_mb": None if peak is None else round(peak / 2 ** 20, 1),
            "one_float64_frame_mb": round(h * w * c * 8 / 2 ** 20, 2),
            "residual_frames_measured": s["residual_motion_px"].get("frames_measured"),
            "correlation": [s["correlation"]["raw"]["mean"], s["correlation"]["corrected"]["mean"]],
            "residual_motion_px": s["residual_motion_px"]["median"], "bad_frames": s["bad_frames"]["count"],
        }
        print(json.dumps(result, indent=1))
        first, worst = rows[0], max(rows, key=lambda r: r["qc_over_compensate_percent"])
        split = (f", pass {first['qc_measure_pass_s']} s + fixed {first['qc_fixed_s']} s"
                 if "qc_measure_pass_s" in first else "")
        print(f"fr-qc / fr-compensate (balanced): {first['qc_over_compensate_percent']} % "
              f"(qc {first['qc_s']} s{split}; compensate {first['compensate_balanced_s']} s); "
              f"worst of {len(rows)}: {worst['qc_over_compensate_percent']} %"
              + (f"; CPU time: {first['qc_over_compensate_cpu_percent']} %" if "qc_cpu_s" in first else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

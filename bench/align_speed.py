#!/usr/bin/env python3
"""Wall time of the whole ``fr-align`` command on a 512x512 pair of averages, on one core.

Builds two 512x512 temporal averages with a known transform between them
(:mod:`frkit.synth`: 12 px shift, 2 deg, 1 % scale, 2 px elastic, gain 0.9),
runs the installed ``fr-align`` on them ``--repeats`` times pinned to one core
(``taskset -c CORE``, ``NUMBA_NUM_THREADS=OMP_NUM_THREADS=1``) after one
warm-up run (numba's on-disk cache is filled once per install), and prints
the minimum and median wall time of the command (process start to exit:
imports, cache loading, reading, the solve, the match quality, writing) with
the command's CPU time (user + sys: on one core the wall time of an
undisturbed run; it barely depends on the load of a shared machine, the wall
time does), the end-point error of the written field and the 1-minute load
average (the minimum wall time is the least disturbed run).

    python bench/align_speed.py [--repeats 7] [--core 0] [--fr-align PATH] [--size 512]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "lib"))

from frkit import synth  # noqa: E402


def pair(size: int):
    """(reference, moving, truth, interior) of a size x size session with a known transform."""
    ref_src, mov_src = synth.average_sources(size, size, 48, seed=5)
    return synth.transformed_pair(ref_src, mov_src, size, size, 48, (12.0, -7.0), 2.0, 1.01, 2.0, 0.9, seed=5,
                                  border=8)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--core", type=int, default=0)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--fr-align", default=str(HERE.parent / ".venv" / "bin" / "fr-align"))
    ap.add_argument("--extra", default="", help="extra fr-align arguments (space separated)")
    args = ap.parse_args()
    ref, mov, truth, interior = pair(args.size)
    env = {**os.environ, "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    pin = ["taskset", "-c", str(args.core)] if shutil.which("taskset") else []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        np.save(d / "ref.npy", ref.astype(np.float32))
        np.save(d / "mov.npy", mov.astype(np.float32))
        out = d / "w.npz"
        cmd = pin + [args.fr_align, str(d / "ref.npy"), str(d / "mov.npy"), "-o", str(out)] + args.extra.split()
        times, cpus, loads = [], [], []
        for k in range(args.repeats + 1):
            out.unlink(missing_ok=True)
            r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.perf_counter()
            p = subprocess.run(cmd, env=env, capture_output=True, text=True)
            dt = time.perf_counter() - t
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
            if p.returncode != 0:
                raise SystemExit(f"fr-align failed ({p.returncode}):\n{p.stderr}")
            if k:  # the first run is the warm-up
                times.append(dt)
                cpus.append(cpu)
                loads.append(os.getloadavg()[0])
        f = np.load(out)
        w = np.stack([f["u"], f["v"]], -1)
    err = float(np.hypot(*(w - truth)[interior].T).mean())
    print(f"fr-align {args.size}x{args.size}, one core ({' '.join(pin) or 'no taskset'}, 1 thread), "
          f"{args.repeats} runs: min {min(times):.2f} s, median {statistics.median(times):.2f} s, "
          f"max {max(times):.2f} s; CPU time (user+sys) min {min(cpus):.2f} s, median {statistics.median(cpus):.2f} s; "
          f"load average {min(loads):.2f}-{max(loads):.2f} (of {os.cpu_count()} cores); "
          f"EPE {err:.3f} px")


if __name__ == "__main__":
    main()

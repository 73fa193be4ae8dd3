#!/usr/bin/env python3
"""Candidate remedies for the flow's noise, tried offline on the noisy benchmark (``noisy_motion.py``).

For each motion level and each solver variant (fr-compensate flags, as JSON
``{"name": [flags]}``) fr-compensate runs once with ``--save-w``; then every
post-processing of its flows is applied offline, both channels warped by the
result and scored with ``noisy_motion.measure``. Post-processings (comma
separated): ``id`` (as computed), ``rigid`` (per-frame mean flow only),
``ft:S`` (Gaussian over time, sigma S frames), ``rt:S`` (per-frame mean kept,
remainder smoothed over time), ``rft:A/B`` (mean smoothed with A, remainder
with B), ``rs:K`` (mean plus K times the remainder), ``rw`` (remainder shrunk
by a Wiener factor from the frame-to-frame differences). Writes
``results/noisy_motion/explore_PID.json``.

    python bench/noisy_flow_candidates.py 128 100 '{"bal": ["--quality", "balanced", "--flow-smoothing", "0"]}' \
        id,rigid,ft:1,rt:1,rs:0.5,rw
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
from scipy import ndimage as ndi

sys.path.insert(0, str(Path(__file__).parent))
import noisy_motion as nm  # noqa: E402

from frkit.flow.warp import warp_frame  # noqa: E402


def main() -> None:
    size, frames = int(sys.argv[1]), int(sys.argv[2])
    solvers = json.loads(sys.argv[3])   # {"name": [flags]}
    posts = sys.argv[4].split(",")
    rows = []
    for level in os.environ.get("LEVELS", "none moderate strong").split():
        video, truth = nm.make_recording(size, frames, level)
        with h5py.File(truth) as f: fl = f["flow"][:]
        border = int(np.ceil(np.abs(fl).max())) + 8
        with h5py.File(video) as f: raw = np.stack([f["ch1"][:], f["ch2"][:]], -1)
        for sname, flags in solvers.items():
            out = nm.RESULTS / "explore" / f"{level}_{sname}"
            t0 = time.perf_counter()
            cmd = [str(Path(sys.executable).parent / "fr-compensate"), str(video), "-o", str(out), "--weight", "1,0",
                   "--channel-normalization", "separate", "-q", "--save-w", *flags]
            subprocess.run(cmd, check=True)
            sec = time.perf_counter() - t0
            with h5py.File(out / "w.h5") as f: w = np.stack([f["u"][:], f["v"][:]], -1).astype(np.float64)
            w = w.reshape(frames, size, size, 2)
            ref = np.load(out / "reference_frame.npy")
            for post in posts:
                kind, _, arg = post.partition(":")
                m = w.mean(axis=(1, 2), keepdims=True)
                r = w - m
                if kind == "id": w2 = w
                elif kind == "rigid": w2 = np.broadcast_to(m, w.shape)
                elif kind == "rt":  # rigid + temporally smoothed remainder
                    w2 = m + ndi.gaussian_filter1d(r, float(arg), axis=0, mode="nearest")
                elif kind == "ft":
                    w2 = ndi.gaussian_filter1d(w, float(arg), axis=0, mode="nearest")
                elif kind == "rft":
                    sa, sb = map(float, arg.split("/"))
                    g = lambda x, s_: ndi.gaussian_filter1d(x, s_, axis=0, mode="nearest") if s_ > 0 else x
                    w2 = g(m, sa) + g(r, sb)
                elif kind == "rs":  # rigid + shrunk remainder
                    w2 = m + float(arg) * r
                elif kind == "rw":  # rigid + Wiener-shrunk remainder, noise from temporal differences
                    d = np.diff(r, axis=0)
                    noise = (d ** 2).mean() / 2
                    tot = (r ** 2).mean()
                    k = max(0.0, 1 - noise / tot); w2 = m + k * r
                    print(f"   wiener k={k:.3f}")
                corr = np.stack([warp_frame(raw[t].astype(np.float64), w2[t].astype(np.float32), ref.astype(np.float64)) for t in range(frames)])
                row = {"level": level, "solver": sname, "post": post, "s": sec, **nm.measure(corr, truth, border)}
                rows.append(row)
                print(f"{level:9s} {sname:14s} {post:10s} res {row['residual_px']:.3f} corr {row['corr_true']:.4f} nrmse {row['nrmse']:.4f} crisp {row['crispness']:.3f} {sec:5.1f}s", flush=True)
    json.dump(rows, open(nm.RESULTS / f"explore_{os.getpid()}.json", "w"))


if __name__ == "__main__":
    main()

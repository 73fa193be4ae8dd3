"""The built-in example used by ``make demo``.

``python -m frkit.demo recording OUT.h5`` writes a synthetic 2-photon
recording with known motion (dataset ``mov``, (T, H, W) uint16) and its true
backward flows next to it (``OUT.truth.h5``, datasets ``u``, ``v``).
``python -m frkit.demo report OUT.h5 RESULTDIR`` compares fr-compensate's
``w.h5`` with the truth and prints how much motion was removed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import h5py
import numpy as np

from . import layout
from .io.atomic import atomic_output
from .synth import MotionError, SyntheticSession

BORDER = 16


def truth_path(recording: Path) -> Path:
    return recording.with_name(recording.stem + ".truth.h5")


def write_recording(path: Path, frames: int, size: int, seed: int, shift: float, warp: float) -> None:
    session = SyntheticSession(size, size, frames, seed=seed, shift_px=shift, warp_px=warp)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as f:
        mov = f.create_dataset("mov", (frames, size, size), dtype=np.uint16, chunks=(1, size, size))
        for a in range(0, frames, 32):
            b = min(frames, a + 32)
            mov[a:b] = session.frames(a, b)[..., 0]
    with atomic_output(truth_path(path)) as tmp, h5py.File(tmp, "w") as f:
        u = f.create_dataset("u", (frames, size, size), dtype=np.float32)
        v = f.create_dataset("v", (frames, size, size), dtype=np.float32)
        for t in range(frames):
            w = session.true_flow(t)
            u[t], v[t] = w[..., 0], w[..., 1]


def motion_report(truth_file: Path, flow_file: Path, border: int = BORDER) -> MotionError:
    err = MotionError(border)
    with h5py.File(truth_file, "r") as tf, h5py.File(flow_file, "r") as ef:
        for t in range(tf["u"].shape[0]):
            est = np.stack([ef["u"][t], ef["v"][t]], -1)
            tru = np.stack([tf["u"][t], tf["v"][t]], -1)
            err.add(est, tru)
    return err


def report(recording: Path, result: Path) -> str:
    import json

    rec = json.loads((result / layout.RECORD).read_text())
    s = rec["summary"]
    err = motion_report(truth_path(recording), result / layout.FLOW)
    removed = 100.0 * (1.0 - err.residual_rms / err.input_rms) if err.input_rms > 0 else 0.0
    t, h, w, c = s["shape"]
    lines = [
        f"fr-compensate corrected {t} frames of {h}x{w} in {s['elapsed_s']:.1f} s "
        f"({s['frames_per_s']:.1f} frames/s, {s['engine']})",
        f"  motion in the input:         {err.input_rms:.2f} px RMS (mean |w| {s['mean_displacement']:.2f} px, "
        f"max {s['max_displacement']:.2f} px)",
        f"  residual motion after:       {err.residual_rms:.3f} px RMS  ({removed:.1f} % removed; "
        f"{border_note()})",
        f"  results in {result}/: " + ", ".join(n for n in rec["outputs"]),
    ]
    return "\n".join(lines)


def border_note() -> str:
    return f"{BORDER}-px border excluded, against the known truth"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m frkit.demo", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("recording", help="write a synthetic recording and its true flows")
    r.add_argument("path", type=Path)
    r.add_argument("--frames", type=int, default=150)
    r.add_argument("--size", type=int, default=192)
    r.add_argument("--seed", type=int, default=7)
    r.add_argument("--shift", type=float, default=3.0, help="peak rigid drift (px)")
    r.add_argument("--warp", type=float, default=1.5, help="peak non-rigid warp (px)")
    p = sub.add_parser("report", help="compare fr-compensate's flows with the truth")
    p.add_argument("recording", type=Path)
    p.add_argument("result", type=Path)
    a = ap.parse_args(argv)
    if a.cmd == "recording":
        write_recording(a.path, a.frames, a.size, a.seed, a.shift, a.warp)
    else:
        print(report(a.recording, a.result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

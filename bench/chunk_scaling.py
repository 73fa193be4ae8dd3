"""Time chunks on one machine: `make -j2 session` with one recording as 1 chunk and as 2 chunks.

    .venv/bin/python bench/chunk_scaling.py [--frames 1200] [--size 128] [--quality balanced] [--buffer 400]
                                            [--reference-frames 0:100]

One recording, so any speed-up comes from its chunks running side by side. Each fr-compensate
runs with n_workers = 1 (one core per task, as a cluster array task with --cpus-per-task=1); the
unchunked run with all cores (n_workers = 0) is the baseline a user has today. Prints the wall
time of `make -j2 all` (stages 1-3), the stage-1 steps from the records (shared reference with the
initialization chain, the join) and checks the chunked compensated.HDF5 is the unchunked one's bytes.
The reference (pre-registered frames, serial in both) is kept small as in a long recording, where
frkit's default 450 reference frames are a small part of the work.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py

from frkit.synth import SyntheticSession

BIN = Path(sys.executable).parent


def session(root: Path, frames: int, size: int, quality: str, chunk_frames: int, workers: int, buffer: int,
            reference_frames: str):
    root.mkdir(parents=True)
    s = SyntheticSession(size, size, frames, seed=5, shift_px=2.0, warp_px=0.8)
    with h5py.File(root / "rec.h5", "w") as f:
        f["mov"] = s.frames()[..., 0]
    cfg = root / "session.toml"
    cfg.write_text(f'root = "."\npattern = "rec.h5"\nstage1_quality_setting = "{quality}"\nn_workers = {workers}\n'
                   f'chunk_frames = {chunk_frames}\nalign_output_format = "HDF5"\n'
                   f'[flow_options]\nbuffer_size = {buffer}\nreference_frames = "{reference_frames}"\n')
    return cfg


def run(cfg: Path) -> tuple[float, float]:
    """``(wall time of make -j2 all, of its stage 1: until compensate.json was written)``."""
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    mk = subprocess.run([sys.executable, "-m", "frkit.session", "plan", str(cfg)], env=env, check=True,
                        capture_output=True, text=True).stdout.strip()
    t0, wall0 = time.perf_counter(), time.time()
    subprocess.run(["make", "-s", "-j2", "-f", mk, "all"], env=env, check=True, capture_output=True)
    record = cfg.parent / "compensated_outputs" / "rec" / "compensate.json"
    return time.perf_counter() - t0, record.stat().st_mtime - wall0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=1200)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--quality", default="balanced")
    ap.add_argument("--buffer", type=int, default=400)
    ap.add_argument("--reference-frames", default="0:100")
    a = ap.parse_args()
    print(f"one recording {a.frames} frames {a.size}x{a.size}, quality {a.quality}, buffer_size {a.buffer}, "
          f"reference_frames {a.reference_frames}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    print(f"{'chunks':>6} {'n_workers':>9} {'make -j2 all (s)':>17} {'stage 1 (s)':>12} {'reference+chain (s)':>20} "
          f"{'join (s)':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        videos = {}
        for name, chunks, workers in (("whole-all", 1, 0), ("whole-1", 1, 1), ("two-1", 2, 1)):
            cfg = session(Path(tmp) / name, a.frames, a.size, a.quality,
                          0 if chunks == 1 else -(-a.frames // 2), workers, a.buffer, a.reference_frames)
            wall, stage1 = run(cfg)
            rec = json.loads((Path(tmp) / name / "compensated_outputs" / "rec" / "compensate.json").read_text())
            steps = rec["summary"]["stage_seconds"]
            ref = f"{steps['reference']:.1f}" if chunks > 1 else "-"
            join = f"{steps['join']:.2f}" if chunks > 1 else "-"
            print(f"{chunks:>6} {workers or 'all':>9} {wall:>17.1f} {stage1:>12.1f} {ref:>20} {join:>9}", flush=True)
            videos[name] = (Path(tmp) / name / "compensated_outputs" / "rec" / "compensated.HDF5").read_bytes()
        same = videos["two-1"] == videos["whole-1"] == videos["whole-all"]
        print(f"compensated.HDF5 of 2 chunks == unchunked, byte for byte: {same}")


if __name__ == "__main__":
    main()

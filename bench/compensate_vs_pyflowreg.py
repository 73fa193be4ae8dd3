#!/usr/bin/env python3
"""fr-compensate and pyflowreg side by side on the same synthetic recordings.

For each case (frame size, frames, channels, preset) both tools correct the
same HDF5 file on the same machine with the same number of workers, and the
script prints frames/s (end to end, file to file), peak memory (the summed
PSS of the whole process tree, sampled every 50 ms, so worker processes and
shared memory are counted once) and the residual motion against the known
truth (RMS over frames and pixels of the flow error minus its temporal
mean, 16-px border excluded), then the frkit/pyflowreg ratios.

pyflowreg is installed into ``bench/.peer-venv`` on first use (``pip install
--pre pyflowreg``); it is never a dependency of frkit. Each tool runs once
on a small file first so that numba's caches are warm.

Examples::

    python bench/compensate_vs_pyflowreg.py                      # 512x512, 300 frames, balanced
    python bench/compensate_vs_pyflowreg.py --frames 300 1200 --only frkit
    python bench/compensate_vs_pyflowreg.py --preset balanced quality --channels 1 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import h5py
import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "lib"))

from frkit.synth import MotionError, SyntheticSession  # noqa: E402

PEER_VENV = HERE / ".peer-venv"
RESULTS = HERE / "results"

PEER_SCRIPT = r"""
import sys
from pyflowreg.motion_correction.OF_options import OFOptions
from pyflowreg.motion_correction.compensate_recording import compensate_recording, RegistrationConfig
inp, out, quality, workers, nch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
opts = OFOptions(input_file=inp, output_path=out, output_format="HDF5", quality_setting=quality,
                 save_w=True, save_valid_idx=True, weight=[1.0 / nch] * nch)
compensate_recording(opts, config=RegistrationConfig(n_jobs=workers))
"""


# -- measurement --------------------------------------------------------------

def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def _pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_measured(cmd: list[str], env=None) -> tuple[float, float, str]:
    """Run ``cmd``; return (wall seconds, peak tree PSS in MiB, combined output)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    peak = 0
    done = threading.Event()

    def sample():
        nonlocal peak
        while not done.is_set():
            peak = max(peak, sum(_pss_kib(p) for p in _tree(proc.pid)))
            done.wait(0.05)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out, _ = proc.communicate()
    wall = time.perf_counter() - t0
    done.set()
    th.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}):\n{out[-3000:]}")
    return wall, peak / 1024.0, out


# -- inputs -------------------------------------------------------------------

def make_recording(size: int, frames: int, channels: int, seed: int = 1) -> Path:
    d = RESULTS / "data"
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"synth_{size}_{frames}_{channels}ch.h5"
    if path.exists():
        return path
    s = SyntheticSession(size, size, frames, seed=seed, shift_px=3.0, warp_px=1.5, channels=channels)
    tmp = path.with_suffix(".partial")
    with h5py.File(tmp, "w") as f:
        dsets = [f.create_dataset(f"ch{c + 1}", (frames, size, size), np.uint16, chunks=(1, size, size))
                 for c in range(channels)]
        tu = f.create_dataset("truth_u", (frames, size, size), np.float32)
        tv = f.create_dataset("truth_v", (frames, size, size), np.float32)
        for a in range(0, frames, 50):
            b = min(frames, a + 50)
            block = s.frames(a, b)
            for c in range(channels):
                dsets[c][a:b] = block[..., c]
            for t in range(a, b):
                w = s.true_flow(t)
                tu[t], tv[t] = w[..., 0], w[..., 1]
    os.replace(tmp, path)
    return path


def video_only(path: Path) -> Path:
    """A copy without the truth datasets (pyflowreg's discovery must see only the video)."""
    out = path.with_name(path.stem + "_video.h5")
    if not out.exists():
        tmp = out.with_suffix(".partial")
        with h5py.File(path, "r") as src, h5py.File(tmp, "w") as dst:
            for name in src:
                if name.startswith("ch"):
                    src.copy(name, dst)
        os.replace(tmp, out)
    return out


def residual(truth_file: Path, flow_file: Path) -> float:
    err = MotionError(border=16)
    with h5py.File(truth_file) as tf, h5py.File(flow_file) as ff:
        for t in range(tf["truth_u"].shape[0]):
            err.add(np.stack([ff["u"][t], ff["v"][t]], -1), np.stack([tf["truth_u"][t], tf["truth_v"][t]], -1))
    return err.residual_rms


# -- tools --------------------------------------------------------------------

def peer_python() -> Path:
    py = PEER_VENV / "bin" / "python"
    if not py.exists():
        print("installing pyflowreg into", PEER_VENV, file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "--pre", "pyflowreg"], check=True)
    return py


def run_frkit(inp: Path, out: Path, preset: str, workers: int, channels: int):
    exe = Path(sys.executable).parent / "fr-compensate"
    cmd = [str(exe), str(inp), "-o", str(out), "--quality", preset, "--save-w", "--workers", str(workers), "-q",
           "--weight", ",".join([str(1.0 / channels)] * channels)]
    return run_measured(cmd)


def run_peer(inp: Path, out: Path, preset: str, workers: int, channels: int):
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    cmd = [str(peer_python()), "-c", PEER_SCRIPT, str(inp), str(out), preset, str(workers), str(channels)]
    return run_measured(cmd, env=env)


TOOLS = {"frkit": run_frkit, "pyflowreg": run_peer}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--frames", type=int, nargs="+", default=[300])
    ap.add_argument("--channels", type=int, nargs="+", default=[1])
    ap.add_argument("--preset", nargs="+", default=["balanced"], choices=["fast", "balanced", "quality"])
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--only", choices=list(TOOLS), help="run one tool only")
    ap.add_argument("--json", type=Path, default=RESULTS / "compensate_vs_pyflowreg.json")
    a = ap.parse_args(argv)
    tools = [a.only] if a.only else list(TOOLS)

    warm = video_only(make_recording(64, 30, 1))
    for name in tools:  # warm numba caches
        TOOLS[name](warm, RESULTS / "warmup" / name, "fast", a.workers, 1)

    rows = []
    for ch in a.channels:
        for n in a.frames:
            src = make_recording(a.size, n, ch)
            vid = video_only(src)
            for preset in a.preset:
                row = {"size": a.size, "frames": n, "channels": ch, "preset": preset, "workers": a.workers}
                for name in tools:
                    out = RESULTS / "runs" / f"{name}_{a.size}_{n}_{ch}ch_{preset}"
                    wall, peak, _ = TOOLS[name](vid, out, preset, a.workers, ch)
                    row[name] = {"seconds": round(wall, 2), "frames_per_s": round(n / wall, 3),
                                 "peak_mib": round(peak, 1), "residual_px": round(residual(src, out / "w.h5"), 4)}
                    print(f"{name:9s} {a.size}x{a.size} T={n} C={ch} {preset:8s}: {n / wall:7.2f} frames/s  "
                          f"peak {peak:7.0f} MiB  residual {row[name]['residual_px']:.3f} px", flush=True)
                if len(tools) == 2:
                    f, p = row["frkit"], row["pyflowreg"]
                    row["ratio"] = {"speed": round(f["frames_per_s"] / p["frames_per_s"], 2),
                                    "memory": round(f["peak_mib"] / p["peak_mib"], 2),
                                    "residual": round(f["residual_px"] / p["residual_px"], 3)}
                    print(f"  ratio frkit/pyflowreg: speed x{row['ratio']['speed']}, memory x{row['ratio']['memory']}, "
                          f"residual x{row['ratio']['residual']}", flush=True)
                rows.append(row)
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps({"machine": os.uname().nodename, "cpus": os.cpu_count(), "rows": rows}, indent=2))
    print("results:", a.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())

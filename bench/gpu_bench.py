#!/usr/bin/env python3
"""fr-compensate on the GPU: frames/s end to end, time per stage, memory bandwidth.

Runs ``fr-compensate --device cuda`` on a synthetic 512x512 recording
(balanced and quality), file to file, and prints frames/s, the per-stage
seconds from compensate.json, and the fraction of the GPU's memory bandwidth
that the red-black sweep reaches (bytes it must move per pixel-iteration over
its measured time, against the peak from the device's memory clock and bus
width). With ``--cpu`` the CPU path runs too; with ``--peer`` pyflowreg's
GPU backend (flowreg_cuda) runs where it is installed (``bench/.peer-venv``).

    python bench/gpu_bench.py [--frames 2000] [--cpu] [--peer]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "lib"))

from frkit.synth import SyntheticSession  # noqa: E402

#: bytes the sweep kernel must move per pixel-iteration (float32): reads of
#: IU IV GU GV A12 and dU dV, writes of dU dV
SWEEP_BYTES = 4 * (5 + 2 + 2)

PEER_GPU = r"""
import sys, time
from pyflowreg.motion_correction.OF_options import OFOptions
from pyflowreg.motion_correction.compensate_recording import compensate_recording, RegistrationConfig
opts = OFOptions(input_file=sys.argv[1], output_path=sys.argv[2], output_format="HDF5", quality_setting=sys.argv[3],
                 flow_backend="flowreg_cuda")
t = time.time(); compensate_recording(opts, config=RegistrationConfig(n_jobs=1, parallelization="sequential"))
print("SECONDS", time.time() - t)
"""


def recording(frames: int, size: int = 512) -> Path:
    d = HERE / "results" / "data"
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"gpu_{size}_{frames}.h5"
    if not path.exists():
        s = SyntheticSession(size, size, frames, seed=1)
        with h5py.File(path.with_suffix(".partial"), "w") as f:
            ds = f.create_dataset("ch1", (frames, size, size), np.uint16, chunks=(1, size, size))
            for a in range(0, frames, 100):
                ds[a:min(frames, a + 100)] = s.frames(a, min(frames, a + 100))[..., 0]
        path.with_suffix(".partial").rename(path)
    return path


def sweep_bandwidth():
    """Measured bandwidth of the red-black sweep on a large batch, and the device's peak (GB/s)."""
    import cupy as cp

    from frkit.gpu.backend import CupyBackend

    bk = CupyBackend(0)
    B, R, C = 64, 512, 512
    shape = (B, R + 2, C + 2)
    arrs = [cp.random.random(shape, dtype=cp.float32) * 0.1 for _ in range(7)]
    psi = cp.zeros(1, dtype=cp.float32)
    half = (C + 1) // 2
    for _ in range(3):
        bk.launch("rb_sweep", B * R * half, *arrs, psi, B, R, C, 1.0, 1.0, -0.95, 0, 1)
    bk.synchronize()
    start, stop = cp.cuda.Event(), cp.cuda.Event()
    n = 50
    start.record()
    for i in range(n):
        bk.launch("rb_sweep", B * R * half, *arrs, psi, B, R, C, 1.0, 1.0, -0.95, i % 2, 1)
    stop.record()
    stop.synchronize()
    seconds = cp.cuda.get_elapsed_time(start, stop) / 1000
    moved = n * B * R * C / 2 * SWEEP_BYTES
    props = cp.cuda.runtime.getDeviceProperties(0)
    peak = 2 * props["memoryClockRate"] * 1e3 * props["memoryBusWidth"] / 8 / 1e9
    return moved / seconds / 1e9, peak, bk.describe()


def run_frkit(path: Path, out: Path, preset: str, device: str) -> dict:
    exe = Path(sys.executable).parent / "fr-compensate"
    t0 = time.perf_counter()
    subprocess.run([str(exe), str(path), "-o", str(out), "--quality", preset, "--device", device, "-q"], check=True)
    wall = time.perf_counter() - t0
    rec = json.loads((out / "compensate.json").read_text())["summary"]
    return {"wall_s": round(wall, 2), "frames_per_s": round(rec["frames"] / wall, 1),
            "stage_seconds": rec["stage_seconds"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=2000)
    ap.add_argument("--cpu", action="store_true", help="also run the CPU path (slow)")
    ap.add_argument("--peer", action="store_true", help="also run pyflowreg's GPU backend")
    a = ap.parse_args(argv)
    gbs, peak, name = sweep_bandwidth()
    print(f"device: {name}; red-black sweep moves {gbs:.0f} GB/s = {100 * gbs / peak:.0f} % of the "
          f"{peak:.0f} GB/s peak")
    path = recording(a.frames)
    results = {"device": name, "sweep_GBps": gbs, "peak_GBps": peak, "runs": []}
    for preset in ("balanced", "quality"):
        for device in ["cuda"] + (["cpu"] if a.cpu else []):
            r = run_frkit(path, HERE / "results" / "runs" / f"gpu_{device}_{preset}", preset, device)
            results["runs"].append({"tool": "frkit", "device": device, "preset": preset, **r})
            print(f"frkit {device:4s} {preset:8s}: {r['frames_per_s']:8.1f} frames/s end to end; stages (s): "
                  + ", ".join(f"{k} {v}" for k, v in r["stage_seconds"].items()))
        if a.peer:
            py = HERE / ".peer-venv" / "bin" / "python"
            try:
                p = subprocess.run([str(py), "-c", PEER_GPU, str(path), str(HERE / "results" / "runs" / "peer_gpu"),
                                    preset], capture_output=True, text=True, timeout=3600)
                sec = float(p.stdout.split("SECONDS")[1].split()[0])
                print(f"pyflowreg flowreg_cuda {preset}: {a.frames / sec:.1f} frames/s")
                results["runs"].append({"tool": "pyflowreg", "device": "cuda", "preset": preset,
                                        "frames_per_s": a.frames / sec})
            except Exception as exc:  # the peer's GPU backend is optional
                print(f"pyflowreg GPU backend did not run: {exc}")
    (HERE / "results" / "gpu_bench.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

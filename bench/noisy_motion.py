#!/usr/bin/env python3
"""Correction of realistic, noisy recordings: frkit against pyflowreg, suite2p and NoRMCorre (jnormcorre).

Each test recording has two channels. Channel 1 is what a two-photon
microscope writes: shot noise at about one photon per pixel and frame
(Poisson), an offset and a gain as a digitizer applies them, and a little
read noise, over bright somata, dim neuropil and dark gaps. Channel 2 is the
same movie without noise. Every tool registers on channel 1 only and carries
channel 2 along with the same correction, so the corrected noise-free
channel, compared with the true frames (noise-free and unmoved), measures
the correction and nothing else:

* residual motion: the flow from each true frame to the corrected noise-free
  frame (frkit's solver on noise-free images, every level), minus its
  temporal mean per pixel (a constant offset is only the choice of
  reference), RMS over frames and interior pixels, in pixels;
* correlation with the true frames and NRMSE (noise-free channel, interior);
* crispness of the mean of corrected channel 1: the Frobenius norm of the
  gradient magnitude of the mean image, as CaImAn defines it (higher is
  sharper; reported relative to the true mean's);
* wall time (2 channels for every tool).

``--realism`` prints photon-transfer statistics of the real recordings in
``../shared/data`` next to the synthetic one's (the same estimator on both).
The peers run in their own environments under ``bench/`` (created on first
use; never frkit's dependencies): ``.peer-venv`` (pyflowreg),
``.suite2p-venv`` (suite2p 1.1.0) and ``.jnormcorre-venv`` (jnormcorre 1.0.0, with jax < 0.9:
jnormcorre calls ``jnp.fix``, which jax 0.10 removed).

    python bench/noisy_motion.py --realism
    python bench/noisy_motion.py --size 256 --frames 200 --tools frkit-balanced pyflowreg-balanced suite2p jnormcorre

Variants of frkit are named ``frkit-PRESET+flag=value+...``; e.g.
``frkit-balanced+flow-smoothing=0`` is the balanced preset without the
temporal smoothing of the flows (the default before it, ``--alpha auto``
alone), and ``bench/noisy_flow_candidates.py`` tries post-processings of the
flows offline on the same recordings.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h5py
import numpy as np
from scipy import ndimage as ndi

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results" / "noisy_motion"
sys.path.insert(0, str(REPO / "lib"))

from frkit import layout  # noqa: E402
from frkit.flow.displacement import ReferencePyramid  # noqa: E402
from frkit.flow.params import FlowParams  # noqa: E402
from frkit.synth import SyntheticSession  # noqa: E402

#: motion levels: (name, rigid drift peak, non-rigid peak) in pixels
LEVELS = {"none": (0.0, 0.0), "moderate": (4.5, 2.0), "strong": (9.0, 3.5)}
#: the digitizer: counts = OFFSET + GAIN * photons + read noise
OFFSET, GAIN, READ_SD = 100.0, 40.0, 8.0
MEAN_PHOTONS = 1.0  # per pixel and frame, averaged over the field of view
CLEAN_SCALE = 1000.0  # the noise-free channel as uint16


# -- data ---------------------------------------------------------------------------------------------------------

def make_recording(size: int, frames: int, level: str, seed: int = 7) -> tuple[Path, Path]:
    """``(video.h5, truth.h5)``: ch1 noisy counts, ch2 noise-free; truth: true frames and flows."""
    d = RESULTS / "data"
    d.mkdir(parents=True, exist_ok=True)
    video, truth = d / f"{level}_{size}_{frames}.h5", d / f"{level}_{size}_{frames}_truth.h5"
    if video.exists() and truth.exists():
        return video, truth
    shift, warp = LEVELS[level]
    s = SyntheticSession(size, size, frames, seed=seed, shift_px=shift, warp_px=warp, photons=None)
    clean = s.frames(dtype=np.float64)[..., 0]
    rng = np.random.default_rng(seed)
    photons = rng.poisson(np.clip(clean, 0, None) * (MEAN_PHOTONS / clean.mean()))
    counts = OFFSET + GAIN * photons + rng.normal(0, READ_SD, clean.shape)
    with h5py.File(video, "w") as f:
        f["ch1"] = np.clip(np.rint(counts), 0, 65535).astype(np.uint16)
        f["ch2"] = np.clip(np.rint(clean * CLEAN_SCALE), 0, 65535).astype(np.uint16)
    with h5py.File(truth, "w") as f:
        f["still"] = (s.still_frames() * CLEAN_SCALE).astype(np.float32)
        f["flow"] = np.stack([s.true_flow(t) for t in range(frames)]).astype(np.float32)
        f.attrs["counts_per_clean"] = GAIN * MEAN_PHOTONS / clean.mean() / CLEAN_SCALE
    return video, truth


def photon_transfer(frames: np.ndarray) -> dict:
    """Photons per pixel and frame from the variance of frame-to-frame differences against the mean
    (Poisson: variance = gain * (mean - offset)); the same estimator for real and synthetic movies."""
    v = frames.astype(np.float64)
    mean = ((v[1:] + v[:-1]) / 2).mean(0).ravel()
    var = (np.diff(v, axis=0).var(0) / 2).ravel()
    bins = np.quantile(mean, np.linspace(0.02, 0.98, 25))
    idx = np.digitize(mean, bins)
    mx = np.array([np.median(mean[idx == i]) for i in range(1, len(bins)) if (idx == i).sum() > 10])
    vy = np.array([np.median(var[idx == i]) for i in range(1, len(bins)) if (idx == i).sum() > 10])
    gain, intercept = np.polyfit(mx, vy, 1)
    offset = -intercept / gain if gain > 0 else 0.0
    ph = np.clip(mean - offset, 0, None) / max(gain, 1e-12)
    return {"photons_mean": float(ph.mean()), "photons_p50": float(np.median(ph)),
            "photons_p99": float(np.percentile(ph, 99)), "bright_to_median": float(np.percentile(mean, 99.5)
                                                                                  / np.median(mean)),
            "dark_fraction": float(np.mean(ph < 0.1))}


def realism(size: int, frames: int) -> None:
    import tifffile

    data = REPO.parent / "shared" / "data"
    movies = {"sima_example (real)": lambda: tifffile.imread(data / "sima_example.tif")}
    for name, key in (("allen_movie_100x100x100.h5", "data"), ("allen_792757260_test_data.h5", "input_frames")):
        movies[f"{name} (real)"] = lambda name=name, key=key: h5py.File(data / name, "r")[key][:]
    video, _ = make_recording(size, frames, "none")
    movies["synthetic, still (this benchmark)"] = lambda: h5py.File(video, "r")["ch1"][:]
    print(f"{'movie':40s} {'photons/px mean':>16s} {'median':>8s} {'p99':>8s} {'p99.5/median':>13s} {'dark':>6s}")
    for name, load in movies.items():
        st = photon_transfer(load())
        print(f"{name:40s} {st['photons_mean']:16.2f} {st['photons_p50']:8.2f} {st['photons_p99']:8.2f} "
              f"{st['bright_to_median']:13.2f} {st['dark_fraction']:6.2f}")


# -- tools (each: input video, output folder -> corrected (T, H, W, 2), seconds) ------------------------------------

def _run(cmd, env=None) -> float:
    t0 = time.perf_counter()
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({p.returncode}): {p.stderr[-2000:]}{p.stdout[-1000:]}")
    return time.perf_counter() - t0


def _read_two_channels(path: Path) -> np.ndarray:
    with h5py.File(path, "r") as f:
        return np.stack([f["ch1"][:], f["ch2"][:]], -1)


def run_frkit(video: Path, out: Path, preset: str, *flags: str):
    cmd = [Path(sys.executable).parent / "fr-compensate", video, "-o", out, "--quality", preset, "--weight", "1,0",
           "--channel-normalization", "separate", "--workers", str(os.cpu_count()), "-q", *flags]
    seconds = _run(cmd)
    return _read_two_channels(out / layout.COMPENSATED), seconds


def tool(name: str):
    """A runner by name; ``frkit-PRESET+flag=value+...`` adds fr-compensate flags (for trying variants)."""
    if name in TOOLS:
        return TOOLS[name]
    preset, *extra = name.removeprefix("frkit-").split("+")
    flags = [x for kv in extra for x in (f"--{kv.partition('=')[0]}", kv.partition("=")[2]) if x]
    return lambda v, o: run_frkit(v, o, preset, *flags)


PYFLOWREG = r"""
import sys
from pyflowreg.motion_correction.OF_options import OFOptions
from pyflowreg.motion_correction.compensate_recording import compensate_recording, RegistrationConfig
inp, out, quality, workers = sys.argv[1:5]
opts = OFOptions(input_file=inp, output_path=out, output_format="HDF5", quality_setting=quality, weight=[1.0, 0.0],
                 channel_normalization="separate", save_valid_idx=True)
compensate_recording(opts, config=RegistrationConfig(n_jobs=int(workers)))
"""

def _venv(name: str, packages: list[str]) -> Path:
    py = HERE / name / "bin" / "python"
    if not py.exists():
        print(f"installing {' '.join(packages)} into bench/{name}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(HERE / name)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", *packages], check=True)
    return py


def run_pyflowreg(video: Path, out: Path, preset: str):
    py = _venv(".peer-venv", ["--pre", "pyflowreg"])
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    seconds = _run([py, "-c", PYFLOWREG, video, out, preset, os.cpu_count()], env=env)
    return _read_two_channels(layout.find_compensated(out)), seconds


def run_peer_script(venv: str, packages: list[str], script: Path, video: Path, out: Path):
    py = _venv(venv, packages)
    out.mkdir(parents=True, exist_ok=True)
    seconds = _run([py, script, video, out / "corrected.h5"])
    return _read_two_channels(out / "corrected.h5"), seconds


TOOLS = {
    "frkit-fast": lambda v, o: run_frkit(v, o, "fast"),
    "frkit-balanced": lambda v, o: run_frkit(v, o, "balanced"),
    "frkit-quality": lambda v, o: run_frkit(v, o, "quality"),
    "frkit-balanced-alpha1.5": lambda v, o: run_frkit(v, o, "balanced", "--alpha", "1.5"),
    "pyflowreg-balanced": lambda v, o: run_pyflowreg(v, o, "balanced"),
    "pyflowreg-quality": lambda v, o: run_pyflowreg(v, o, "quality"),
    "suite2p": lambda v, o: run_peer_script(".suite2p-venv", ["torch==2.13.0", "suite2p==1.1.0", "h5py"],
                                            HERE / "peers" / "suite2p_register.py", v, o),
    "jnormcorre": lambda v, o: run_peer_script(".jnormcorre-venv", ["torch==2.13.0", "jnormcorre==1.0.0", "jax<0.9", "jaxlib<0.9", "h5py"],
                                               HERE / "peers" / "jnormcorre_register.py", v, o),
}


# -- measures -----------------------------------------------------------------------------------------------------

def _planar(img: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return ((img - lo) / (hi - lo))[None].astype(np.float32)


def measure(corrected: np.ndarray, truth: Path, border: int) -> dict:
    """The measures of the module docstring, on a corrected ``(T, H, W, 2)`` video."""
    with h5py.File(truth, "r") as f:
        still = f["still"][:].astype(np.float64)
    clean = corrected[..., 1].astype(np.float64)
    inner = (slice(border, -border), slice(border, -border))
    params = FlowParams(alpha=(1.5, 1.5), levels=100, min_level=0, iterations=50)

    def flow(t):
        lo, hi = still[t].min(), still[t].max()
        return np.moveaxis(ReferencePyramid(_planar(still[t], lo, hi), params).flow(_planar(clean[t], lo, hi)), 0, -1)

    with ThreadPoolExecutor(os.cpu_count()) as pool:  # the solver releases the GIL
        flows = np.stack(list(pool.map(flow, range(len(still)))))
    # a constant offset is only the choice of reference: compare with the true frames moved by it
    offset = flows.mean(axis=0)
    residual = (flows - offset)[:, inner[0], inner[1]]
    y, x = np.mgrid[0:still.shape[1], 0:still.shape[2]].astype(np.float64)
    coords = [y - offset[..., 1], x - offset[..., 0]]  # still(x) ~ clean(x + w): clean(x) ~ still(x - w)
    corr, nrmse = [], []
    for t in range(len(still)):
        a = clean[t][inner].ravel()
        b = ndi.map_coordinates(still[t], coords, order=3, mode="nearest")[inner].ravel()
        corr.append(np.corrcoef(a, b)[0, 1])
        nrmse.append(np.sqrt(np.mean((a - b) ** 2)) / (b.max() - b.min()))
    with h5py.File(truth, "r") as f:
        counts_per_clean = float(f.attrs["counts_per_clean"])
    true_mean = OFFSET + counts_per_clean * still.mean(axis=0)  # the true mean image in channel-1 counts

    def crisp(img):
        gy, gx = np.gradient(img)
        return float(np.linalg.norm(np.hypot(gx, gy)[inner]))

    return {"residual_px": float(np.sqrt(np.mean(np.sum(residual ** 2, -1)))),
            "corr_true": float(np.mean(corr)), "nrmse": float(np.mean(nrmse)),
            "crispness": crisp(corrected[..., 0].astype(np.float64).mean(axis=0)) / crisp(true_mean)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--levels", nargs="+", default=list(LEVELS), choices=list(LEVELS))
    ap.add_argument("--tools", nargs="+", default=["frkit-balanced", "frkit-balanced-alpha1.5", "pyflowreg-balanced",
                                                   "suite2p", "jnormcorre"],
                    help=f"{', '.join(TOOLS)}, or frkit-PRESET+flag=value+...")
    ap.add_argument("--realism", action="store_true", help="print photon-transfer statistics and exit")
    ap.add_argument("--json", type=Path, default=RESULTS / "results.json")
    args = ap.parse_args()
    if args.realism:
        realism(args.size, args.frames)
        return
    rows = []
    for level in args.levels:
        video, truth = make_recording(args.size, args.frames, level)
        with h5py.File(truth, "r") as f:
            fl = f["flow"][:]
        motion = float(np.sqrt(np.mean(np.sum((fl - fl.mean(0)) ** 2, -1))))
        border = int(np.ceil(np.abs(fl).max())) + 8
        for name in args.tools:
            out = RESULTS / "runs" / f"{level}_{name}"
            corrected, seconds = tool(name)(video, out)
            row = {"level": level, "motion_px": motion, "tool": name, "seconds": seconds,
                   **measure(corrected, truth, border)}
            rows.append(row)
            print(f"{level:9s} (motion {motion:4.2f} px)  {name:24s} residual {row['residual_px']:.3f} px  "
                  f"corr {row['corr_true']:.3f}  nrmse {row['nrmse']:.4f}  crisp {row['crispness']:.3f}  "
                  f"{seconds:6.1f} s", flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=1))
    base = {r["level"]: r for r in rows if r["tool"] == "frkit-balanced"}
    for r in rows:
        if r["level"] in base and r["tool"] != "frkit-balanced":
            b = base[r["level"]]
            print(f"{r['level']:9s} frkit-balanced / {r['tool']:24s} residual x{b['residual_px'] / r['residual_px']:.2f}"
                  f"  time x{b['seconds'] / r['seconds']:.2f}")


if __name__ == "__main__":
    main()

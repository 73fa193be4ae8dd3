#!/usr/bin/env python3
"""frkit's hand-on formats read by the tools that come next: suite2p (cell detection) and CaImAn's conventions.

1. A synthetic recording with known cells and known motion (``frkit.synth``)
   is corrected with ``fr-compensate --output-format suite2p`` and, again,
   ``--output-format caiman``.
2. suite2p 1.1.0 (its own environment, ``bench/.suite2p-venv``, created on
   first use; never a dependency of frkit) runs on frkit's
   ``suite2p/plane0`` with ``do_registration = 0``: it must take frkit's
   binary as its registered movie and detect cells. Reported: ROIs found, how
   many true cells have an ROI centre within ``--match-px`` pixels (recall)
   and how many ROIs lie on a true cell (precision); as a control, the same
   on the uncorrected movie (written by the same suite2p writer).
3. CaImAn is not installed (it is distributed through conda, with a compiled
   stack of its own); instead the ``.mmap`` file is opened exactly as
   ``caiman.load_memmap`` does it -- the fields decoded from the name as
   ``caiman.paths.decode_mmap_filename_dict`` does, ``np.memmap(shape=(d1 *
   d2 * d3, T), order=order, dtype=float32)``, images
   ``Yr.T.reshape((T, d1, d2), order='F')`` -- and compared with
   ``compensated.HDF5``.

    python bench/consumers.py                        # 128x128, 400 frames
    python bench/consumers.py --suite2p-python /path/to/venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from frkit.io import open_video
from frkit.io.handoff import export_video
from frkit.synth import MARGIN, SyntheticSession

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent

SUITE2P = r"""
import json, sys
import numpy as np
from suite2p import default_settings, run_s2p
folder, fs, diameter = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
settings = default_settings()
settings["torch_device"] = "cpu"
settings["fs"] = fs
settings["diameter"] = [diameter, diameter]
settings["run"]["do_registration"] = 0   # frkit corrected the motion
settings["run"]["do_deconvolution"] = False
run_s2p(db={"data_path": [folder], "save_path0": folder}, settings=settings)
plane = folder + "/suite2p/plane0"
stat = np.load(plane + "/stat.npy", allow_pickle=True)
ops = np.load(plane + "/ops.npy", allow_pickle=True).item()
print("RESULT " + json.dumps({"centers": [[float(s["med"][0]), float(s["med"][1])] for s in stat],
                              "registration_skipped": "yoff" not in ops, "nframes": int(ops["nframes"])}))
"""


def suite2p_python(given: str | None) -> Path:
    if given:
        return Path(given)
    py = HERE / ".suite2p-venv" / "bin" / "python"
    if not py.exists():
        print("installing suite2p 1.1.0 into bench/.suite2p-venv", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(HERE / ".suite2p-venv")], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "torch==2.13.0", "suite2p==1.1.0"], check=True)
    return py


def caiman_load_memmap(path: Path) -> np.ndarray:
    """The movie ``(T, d1, d2)`` as CaImAn's ``load_memmap`` + ``reshape(order='F')`` gives it."""
    fields = {}
    parts = path.stem.split("_")[1:]
    for key in ("d1", "d2", "d3", "order", "frames"):
        for i in range(len(parts) - 1, -1, -1):
            if parts[i] == key:
                fields[key] = parts[i + 1] if key == "order" else int(parts[i + 1])
                break
    d1, d2, d3, order, t = fields["d1"], fields["d2"], fields["d3"], fields["order"], fields["frames"]
    yr = np.memmap(path, mode="r", shape=(d1 * d2 * d3, t), dtype=np.float32, order=order)
    return np.reshape(yr.T, (t, d1, d2), order="F")


def match(found: np.ndarray, truth: np.ndarray, px: float) -> tuple[int, int]:
    """(true cells with an ROI centre within px, ROIs within px of a true cell)."""
    if len(found) == 0:
        return 0, 0
    d = np.hypot(*(found[:, None, :] - truth[None, :, :]).transpose(2, 0, 1))
    return int((d.min(axis=0) <= px).sum()), int((d.min(axis=1) <= px).sum())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--frames", type=int, default=400)
    ap.add_argument("--fs", type=float, default=10.0)
    ap.add_argument("--diameter", type=float, default=8.0, help="suite2p's cell diameter (pixels)")
    ap.add_argument("--match-px", type=float, default=4.0)
    ap.add_argument("--suite2p-python", default=None)
    ap.add_argument("--keep", default=None, help="work folder to keep (default: a temporary one)")
    args = ap.parse_args(argv)

    work = Path(args.keep or tempfile.mkdtemp(prefix="frkit-consumers-"))
    work.mkdir(parents=True, exist_ok=True)
    rec = SyntheticSession(height=args.size, width=args.size, n_frames=args.frames, seed=0)
    with h5py.File(work / "raw.h5", "w") as f:
        f["mov"] = rec.frames()[..., 0]
    # true cell centres in frame coordinates (the template is drawn with a margin; cells there are out of view)
    truth = np.asarray(rec.centers, dtype=float) - MARGIN
    truth = truth[((truth >= 0) & (truth < args.size)).all(axis=1)]
    report = {"size": args.size, "frames": args.frames, "true_cells_in_view": len(truth)}

    out = work / "s2p"
    cmd = [str(BIN / "fr-compensate"), str(work / "raw.h5"), "-o", str(out), "--quality", "fast", "-q",
           "--output-format", "suite2p", "--frame-rate", str(args.fs)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    report["fr_compensate_s"] = round(time.perf_counter() - t0, 1)
    report["fr_compensate_cmd"] = " ".join(cmd[1:])

    py = suite2p_python(args.suite2p_python)
    with open_video(work / "raw.h5") as raw:  # control: the uncorrected movie, same writer
        export_video(raw, "suite2p", work / "raw_s2p", "raw", rate=args.fs)
    for key, folder in (("suite2p", out), ("suite2p_on_uncorrected", work / "raw_s2p")):
        t0 = time.perf_counter()
        r = subprocess.run([str(py), "-c", SUITE2P, str(folder), str(args.fs), str(args.diameter)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            print(r.stdout[-3000:], r.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"suite2p failed on {folder}")
        s2p = json.loads(next(line for line in r.stdout.splitlines() if line.startswith("RESULT "))[7:])
        centers = np.array(s2p["centers"]).reshape(-1, 2)
        hit_cells, hit_rois = match(centers, truth, args.match_px)
        report[key] = {"rois": len(centers), "registration_skipped": s2p["registration_skipped"],
                       "nframes": s2p["nframes"], "recall": round(hit_cells / len(truth), 3),
                       "precision": round(hit_rois / max(1, len(centers)), 3),
                       "seconds": round(time.perf_counter() - t0, 1)}

    cm_out = work / "caiman"
    subprocess.run([str(BIN / "fr-compensate"), str(work / "raw.h5"), "-o", str(cm_out), "--quality", "fast",
                    "-q", "--output-format", "caiman"], check=True)
    mmap = next(cm_out.glob("*.mmap"))
    movie = caiman_load_memmap(mmap)
    with h5py.File(cm_out / "compensated.HDF5", "r") as f:
        expected = f["ch1"][:].astype(np.float32)
    report["caiman"] = {"file": mmap.name, "shape": list(movie.shape),
                        "equal_to_compensated_HDF5": bool(np.array_equal(movie, expected))}
    print(json.dumps(report, indent=2))
    ok = (report["suite2p"]["registration_skipped"] and report["suite2p"]["recall"] >= 0.5
          and report["caiman"]["equal_to_compensated_HDF5"])
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

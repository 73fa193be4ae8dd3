"""The built-in example session used by ``make demo``.

``python -m frkit.demo session DIR`` writes three synthetic recordings of one
field of view (each moving inside itself, and shifted, rotated and warped
relative to the others) as ``DIR/rec_*.h5``, their known motion under
``DIR/truth/`` and a ``DIR/session.toml``.
``python -m frkit.demo summary DIR/session.toml`` compares the session's
results with the truth and prints a short summary.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import h5py
import numpy as np

from . import layout
from .io.atomic import atomic_output
from .synth import MotionError, SyntheticSession, session_views

BORDER = 16
SESSION_TOML = """\
# A frkit session: every recording matching `pattern` under `root` (this folder).
root = "."
pattern = "rec_*.h5"
stage1_quality_setting = "balanced"
align_output_format = "HDF5"

[flow_options]
save_w = true          # keep the flow fields, so the demo can compare them with the truth
"""


def write_session(folder: Path, n: int = 3, frames: int = 120, height: int = 160, width: int = 192,
                  seed: int = 5) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "truth").mkdir(exist_ok=True)
    views = session_views(n, height, width, seed=seed, max_shift=8.0, max_rotation=1.0, elastic_px=1.5)
    for i, view in enumerate(views):
        s = SyntheticSession(height, width, frames, seed=seed, shift_px=2.5, warp_px=1.5, view=view,
                             motion_seed=seed * 10 + i, margin=48)
        name = f"rec_{i + 1}"
        with atomic_output(folder / f"{name}.h5") as tmp, h5py.File(tmp, "w") as f:
            mov = f.create_dataset("mov", (frames, height, width), np.uint16, chunks=(1, height, width))
            for a in range(0, frames, 40):
                b = min(frames, a + 40)
                mov[a:b] = s.frames(a, b)[..., 0]
        with atomic_output(folder / "truth" / f"{name}.h5") as tmp, h5py.File(tmp, "w") as f:
            w = np.stack([s.true_flow(t) for t in range(frames)]).astype(np.float32)
            f["u"], f["v"] = w[..., 0], w[..., 1]
    (folder / "session.toml").write_text(SESSION_TOML)


def summary(config: Path) -> str:
    from .session.config import load_config

    cfg = load_config(config)
    recs = cfg.recordings()
    final = np.load(cfg.final_dir / layout.FINAL_NPZ)
    center = int(final["middle_idx"])
    lines = [f"session of {len(recs)} recordings in {cfg.root} (center: {recs[center].name})"]
    for i, p in enumerate(recs):
        d = cfg.recording_dir(p)
        rec = json.loads((d / layout.RECORD).read_text())["summary"]
        err = MotionError(BORDER)
        with h5py.File(cfg.root / "truth" / f"{p.stem}.h5") as tf, h5py.File(d / layout.FLOW) as ef:
            for t in range(tf["u"].shape[0]):
                err.add(np.stack([ef["u"][t], ef["v"][t]], -1), np.stack([tf["u"][t], tf["v"][t]], -1))
        mag = np.hypot(final["displacement_fields_u"][i], final["displacement_fields_v"][i])
        lines.append(f"  {p.stem}: {rec['frames']} frames at {rec['frames_per_s']:.0f} frames/s; motion inside "
                     f"{err.input_rms:.2f} -> {err.residual_rms:.2f} px RMS (known truth); displacement to the "
                     f"center: mean {mag.mean():.2f} px, max {mag.max():.2f} px")
    fv = final["final_valid"]
    lines.append(f"  valid in all recordings: {int(fv.sum())} of {fv.size} pixels ({100 * fv.mean():.1f} %)")
    lines.append(f"  masks: {cfg.final_dir / layout.FINAL_PNG} and {cfg.final_dir}/*_valid_idx*.png")
    lines.append(f"  aligned videos: {cfg.final_dir}/aligned_*.hdf5; everything: {cfg.output_dir}")
    qc = cfg.final_dir / layout.SESSION_QC_JSON
    if qc.is_file():  # fr-qc's session report (make session builds it)
        report = json.loads(qc.read_text())
        lines.append(f"  quality: {report['headline']}")
        lines += [f"  WARNING {w}" for w in report["warnings"]]
        lines.append(f"  report: {report['report']} (open it in a browser)")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m frkit.demo", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("session", help="write a synthetic session (recordings, truth, session.toml)")
    s.add_argument("folder", type=Path)
    s.add_argument("--recordings", type=int, default=3)
    s.add_argument("--frames", type=int, default=120)
    p = sub.add_parser("summary", help="compare a finished session with the truth")
    p.add_argument("config", type=Path)
    a = ap.parse_args(argv)
    if a.cmd == "session":
        if (a.folder / "session.toml").exists():
            return 0  # already there; make decides what to redo
        write_session(a.folder, a.recordings, a.frames)
    else:
        print(summary(a.config))
    return 0


if __name__ == "__main__":
    sys.exit(main())

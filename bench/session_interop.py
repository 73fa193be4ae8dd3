#!/usr/bin/env python3
"""Mix pyflowreg and frkit stages on one synthetic session, both ways.

1. pyflowreg stage 1 (its compensation: compensated.HDF5 with uint16 video,
   idx.hdf with dataset ``ch1``), then frkit stages 2-3
   (fr-average, fr-align, fr-mask, fr-reproject with ``--config``).
2. frkit stage 1 (make stage1), then pyflowreg's ``run_stage2`` and
   ``run_stage3`` reading frkit's files.

Both runs must finish, and the session masks and displacement fields of the
mixed runs are compared with an all-frkit run. pyflowreg is installed into
``bench/.peer-venv`` on first use.

    python bench/session_interop.py [--workdir bench/results/interop]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "lib"))

from frkit.synth import SyntheticSession, session_views  # noqa: E402

BIN = Path(sys.executable).parent
ENV = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")

PEER_STAGE1 = """
import sys
from pyflowreg.session.config import SessionConfig
from pyflowreg.session.stage1_compensate import run_stage1
cfg = SessionConfig.from_toml(sys.argv[1])
run_stage1(cfg, {"quality_setting": "fast"})
"""
PEER_STAGE23 = """
import sys
from pyflowreg.session.config import SessionConfig
from pyflowreg.session.stage2_between_avgs import run_stage2
from pyflowreg.session.stage3_valid_mask import run_stage3
cfg = SessionConfig.from_toml(sys.argv[1])
middle, center, fields = run_stage2(cfg)
run_stage3(cfg, middle, fields)
"""


def sh(*args, env=None):
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env or ENV)
    if p.returncode != 0:
        raise SystemExit(f"FAILED: {' '.join(map(str, args))}\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    return p.stdout


def write_session(root: Path, n=3, h=96, w=128, t=60):
    root.mkdir(parents=True)
    for i, v in enumerate(session_views(n, h, w, seed=4, max_shift=6.0, max_rotation=1.0, elastic_px=1.0)):
        s = SyntheticSession(h, w, t, seed=4, view=v, motion_seed=40 + i, margin=40)
        with h5py.File(root / f"rec_{i + 1}.h5", "w") as f:
            f["mov"] = s.frames()[..., 0]
    # absolute root: pyflowreg resolves a relative root against its working directory
    (root / "session.toml").write_text(f'root = "{root}"\npattern = "rec_*.h5"\nstage1_quality_setting = "fast"\n'
                                       'align_output_format = "HDF5"\n')


def peer_python() -> Path:
    venv = HERE / ".peer-venv"
    py = venv / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "--pre", "pyflowreg"], check=True)
    return py


def frkit_all(root: Path):
    mk = sh(sys.executable, "-m", "frkit.session", "plan", root / "session.toml").strip()
    sh("make", "--no-print-directory", "-f", mk, "all")


def fields(root: Path):
    out = {}
    for d in sorted((root / "compensated_outputs").iterdir()):
        if d.is_dir() and not d.name.startswith("."):
            z = np.load(d / "w_to_reference.npz")
            out[d.name] = np.stack([z["u"], z["v"]], -1)
    return out


def compare(name: str, ref_root: Path, root: Path) -> None:
    a = np.load(ref_root / "final_results" / "final_valid_idx.npz")["final_valid"]
    b = np.load(root / "final_results" / "final_valid_idx.npz")["final_valid"]
    fa, fb = fields(ref_root), fields(root)
    diffs = {k: float(np.hypot(*(fa[k] - fb[k])[16:-16, 16:-16].reshape(-1, 2).T).mean()) for k in fa}
    print(f"{name}: final mask agrees on {100 * (a == b).mean():.2f} % of pixels "
          f"(valid {100 * a.mean():.1f} % vs {100 * b.mean():.1f} %); mean |w difference| "
          + ", ".join(f"{k} {v:.2f} px" for k, v in diffs.items()))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", type=Path, default=HERE / "results" / "interop")
    a = ap.parse_args(argv)
    shutil.rmtree(a.workdir, ignore_errors=True)
    py = peer_python()
    peer_env = dict(ENV, OMP_NUM_THREADS="1")

    base = a.workdir / "frkit_only"
    write_session(base)
    frkit_all(base)

    mixed1 = a.workdir / "peer_stage1_frkit_23"
    write_session(mixed1)
    sh(py, "-c", PEER_STAGE1, mixed1 / "session.toml", env=peer_env)
    cfg = mixed1 / "session.toml"
    with h5py.File(next((mixed1 / "compensated_outputs").glob("*/idx.hdf"))) as f:
        print("pyflowreg stage 1 wrote idx.hdf datasets:", list(f.keys()))
    for d in sorted((mixed1 / "compensated_outputs").iterdir()):
        video = d / "compensated.HDF5" if (d / "compensated.HDF5").exists() else d / "compensated.hdf5"
        sh(BIN / "fr-average", video, "--config", cfg)
    sh(BIN / "fr-align", "--config", cfg)
    sh(BIN / "fr-mask", "--config", cfg, "-q")
    sh(BIN / "fr-reproject", "--config", cfg, "-q")
    compare("pyflowreg stage 1 + frkit stages 2-3", base, mixed1)

    mixed2 = a.workdir / "frkit_stage1_peer_23"
    write_session(mixed2)
    mk = sh(sys.executable, "-m", "frkit.session", "plan", mixed2 / "session.toml").strip()
    sh("make", "--no-print-directory", "-f", mk, "stage1")
    sh(py, "-c", PEER_STAGE23, mixed2 / "session.toml", env=peer_env)
    compare("frkit stage 1 + pyflowreg stages 2-3", base, mixed2)
    print("interop: both directions completed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Speed and peak memory of each hand-on format (``--output-format``), copied from a compensated.HDF5.

A ``(T, H, W)`` uint16 video (default 2000 x 256 x 256, 262 MB) is written
as ``compensated.HDF5``; each format then copies it in its own process
(``frkit.io.handoff.export_video``), which reports its wall time and its peak
resident memory (``ru_maxrss``) minus the peak after the imports alone. A
streamed writer's extra memory stays near one batch (64 frames = 8 MB here)
whatever T is; a writer that held the movie would need about the movie's size.

    python bench/handoff_speed.py [--frames 2000] [--size 256]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from frkit.io import open_video
from frkit.io.handoff import export_video
import pynwb, hdmf, tifffile  # imported before the baseline: not counted
folder, fmt = Path(sys.argv[1]), sys.argv[2]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
with open_video(folder / "compensated.HDF5") as reader:
    files = export_video(reader, fmt, folder / fmt, "compensated", rate=30.0, source=folder / "raw.h5",
                         translation=None)
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
size = sum(Path(f).stat().st_size for f in files)
print(json.dumps({"format": fmt, "seconds": round(seconds, 2), "extra_peak_MB": round((peak - base) / 1024, 1),
                  "written_MB": round(size / 1e6, 1), "MB_per_s": round(size / 1e6 / seconds, 1)}))
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=2000)
    ap.add_argument("--size", type=int, default=256)
    args = ap.parse_args(argv)
    from frkit.io import Hdf5VideoWriter

    work = Path(tempfile.mkdtemp(prefix="frkit-handoff-"))
    (work / "raw.h5").write_bytes(b"")  # the NWB 'original' points to a raw file; its content is not read
    rng = np.random.default_rng(0)
    with Hdf5VideoWriter(work / "compensated.HDF5", 1, args.size, args.size, np.uint16) as w:
        for a in range(0, args.frames, 100):
            n = min(100, args.frames - a)
            w.append(rng.integers(0, 4000, (n, args.size, args.size, 1), dtype=np.uint16))
    movie_mb = args.frames * args.size * args.size * 2 / 1e6
    print(json.dumps({"frames": args.frames, "size": args.size, "movie_MB": round(movie_mb, 1)}))
    for fmt in ("tiff", "suite2p", "caiman", "nwb"):
        r = subprocess.run([sys.executable, "-c", CHILD, str(work), fmt], capture_output=True, text=True)
        if r.returncode != 0:
            print(r.stderr[-2000:], file=sys.stderr)
            return 1
        print(r.stdout.strip().splitlines()[-1])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

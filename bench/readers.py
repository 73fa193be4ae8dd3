#!/usr/bin/env python3
"""Opening and streaming microscope formats: time and Python memory.

ScanImage: a synthetic file of N pages (tiny frames, two channels) built to ScanImage's layout
(``tests/si_files.py``), opened with frkit's reader (one IFD walk into a numpy offset array) and, for
comparison, with tifffile's ScanImage series (which builds a page object per page). Reported: seconds to
open and peak Python memory while opening (tracemalloc), then frames/s for a full streamed read.
Also the files with irregular page offsets (the page-by-page IFD walk) and the real Bruker sample.

Examples::

    python bench/readers.py                   # 100,000 pages
    python bench/readers.py --pages 400000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import tifffile

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from si_files import write_scanimage  # noqa: E402

from frkit.io import open_video  # noqa: E402
from frkit.io.scanimage import _Pages  # noqa: E402


def measure(fn):
    """``fn()``, its seconds (untraced run) and its peak Python memory (a second, traced run)."""
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    if hasattr(out, "close"):
        out.close()
    tracemalloc.start()
    try:
        out = fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return out, dt, peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=100_000)
    args = ap.parse_args()
    n = args.pages - args.pages % 2
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "si.tif"
        pages = (np.arange(n) % 65536).astype(np.uint16)[:, None, None] * np.ones((1, 4, 4), np.uint16)
        write_scanimage(p, pages, "SI.hChannels.channelSave = [1;2]\nSI.hStackManager.framesPerSlice = Inf\n")
        print(f"ScanImage file: {n} pages of 4x4 uint16, {p.stat().st_size / 1e6:.1f} MB")
        r, dt, peak = measure(lambda: open_video(p))
        print(f"  frkit open (regular offsets): {dt:.3f} s, peak {peak / 1e6:.2f} MB -> {r.shape}")
        t0 = time.perf_counter()
        for a in range(0, r.n_frames, 400):
            r.read(a, min(r.n_frames, a + 400))
        print(f"  frkit streamed read: {r.n_frames / (time.perf_counter() - t0):.0f} frames/s")
        r.close()
        # the page-by-page walk (files without one stride): time it on the same file
        orig = _Pages._walk_regular
        _Pages._walk_regular = lambda *a: None
        try:
            _, dt2, peak2 = measure(lambda: _Pages(p, 4 * 4 * 2))
        finally:
            _Pages._walk_regular = orig
        print(f"  frkit page-by-page IFD walk (irregular files): {dt2:.3f} s, peak {peak2 / 1e6:.2f} MB")

        def tf():
            with tifffile.TiffFile(p) as t:
                return t.series[0].shape
        shape, dt, peak = measure(tf)
        print(f"  tifffile ScanImage series: {dt:.3f} s, peak {peak / 1e6:.2f} MB -> {shape}")
    bruker = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "bruker_tseries_small"
    if bruker.is_dir():
        t0 = time.perf_counter()
        with open_video(bruker) as r:
            r.read(0, r.n_frames)
        print(f"Bruker sample {r.shape}: open + read {time.perf_counter() - t0:.3f} s "
              f"({r.n_frames * r.n_channels / (time.perf_counter() - t0):.0f} files/s)")


if __name__ == "__main__":
    main()

"""Writing fr-qc's per-recording outputs: qc_frames.csv, qc.png, then qc.json (it marks the set complete)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from .. import layout
from ..io.atomic import atomic_output, remove_quietly, write_json_atomic
from .figures import draw_recording
from .recording import FRAME_COLUMNS

__all__ = ["write_frames_csv", "write_recording_outputs", "read_frames_csv", "clear_outputs"]


def _cell(x):
    if isinstance(x, str):
        return x
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    x = float(x)
    return "" if not math.isfinite(x) else f"{x:.6g}"


def write_frames_csv(path, frames: dict) -> None:
    """One row per frame, :data:`FRAME_COLUMNS` (empty cell: not known)."""
    with atomic_output(path) as tmp, open(tmp, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(FRAME_COLUMNS)
        for i in range(len(frames["frame"])):
            out.writerow([_cell(frames[k][i]) for k in FRAME_COLUMNS])


def read_frames_csv(path) -> dict:
    """qc_frames.csv back as columns (floats, NaN for empty; ``reasons`` as text)."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    out = {}
    for k in FRAME_COLUMNS:
        if k == "reasons":
            out[k] = [r[k] for r in rows]
        else:
            out[k] = np.array([float(r[k]) if r[k] != "" else np.nan for r in rows])
    return out


def clear_outputs(folder) -> None:
    """Remove a previous run's outputs (qc.json first: without it the set is not a result)."""
    for name in reversed(layout.QC_OUTPUTS):
        remove_quietly(Path(folder) / name)


def _jsonable(obj):
    return json.loads(json.dumps(obj, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def write_recording_outputs(folder, summary: dict, frames: dict, images: dict, title: str, drawer=None) -> None:
    """qc_frames.csv, qc.png (drawn by ``drawer``, a :class:`~frkit.qc.drawing.FigureProcess`; None:
    here), then qc.json."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_frames_csv(folder / layout.QC_FRAMES, frames)
    if drawer is not None:
        drawer.draw(folder / layout.QC_PNG, summary, frames, images, title)
    else:
        draw_recording(folder / layout.QC_PNG, summary, frames, images, title)
    write_json_atomic(folder / layout.QC_JSON, _jsonable(summary))

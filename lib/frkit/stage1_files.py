"""The stage-1 output folder made ready, stale results removed, and a frames-done counter.

Shared by :mod:`frkit.compensate` and the join of time chunks
(:func:`frkit.chunks.join`). Kept free of compute imports (numba, scipy):
the join is a process of its own on a chunked run's critical path, and
it should start in a fraction of a second.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import layout
from .errors import OutputError
from .io.atomic import partial_path

__all__ = ["remove_outputs", "prepare_outputs", "progress_counter"]


def remove_outputs(outdir: Path, names) -> None:
    """Remove ``outdir/name`` and its ``.partial`` file for each of ``names`` (those that exist)."""
    for name in names:
        for p in (outdir / name, partial_path(outdir / name)):
            if p.exists():
                p.unlink()


def prepare_outputs(outdir: Path) -> None:
    """A writable folder without the results this run replaces.

    A stale result must not survive a failed rerun: the record goes first
    (it marks a complete set), then the outputs (pyflowreg reads
    ``compensated.hdf5`` before ``.HDF5``: a stale one must go too).
    """
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{outdir}: cannot create output directory ({exc.strerror})") from None
    if not os.access(outdir, os.W_OK | os.X_OK):
        raise OutputError(f"{outdir}: output directory is not writable")
    remove_outputs(outdir, reversed(layout.COMPENSATE_OUTPUTS + layout.COMPENSATED_ALIASES))


def progress_counter(progress, total: int):
    """``advance(k)``: adds ``k`` frames done and calls ``progress(done, total)`` (when given)."""
    done = 0

    def advance(k):
        nonlocal done
        done += k
        if progress is not None:
            progress(done, total)

    return advance

"""Checks on input and output paths shared by the tools."""

from __future__ import annotations

from pathlib import Path

from . import layout
from .errors import InputError, OutputError

__all__ = ["check_distinct_output", "require_file", "resolve_video"]


def require_file(path, what: str = "video") -> Path:
    """``path`` if it is an existing, readable, non-empty file, else InputError."""
    from .io.readers import check_file

    return check_file(path, what)


def resolve_video(path) -> Path:
    """A video file, or the compensated video of a stage-1 folder (either spelling)."""
    p = Path(path)
    if p.is_dir():
        found = layout.find_compensated(p)
        if found is None:
            raise InputError(f"{p}: no compensated.HDF5 (or .hdf5) in this folder; run stage 1 first")
        return found
    return require_file(p, "video")


def check_distinct_output(input_path, outdir, names=layout.COMPENSATE_OUTPUTS) -> None:
    """Refuse an output directory that would overwrite the input.

    ``outdir`` must not be an existing file, and the input must not be one
    of the files the tool writes into ``outdir``.
    """
    inp = Path(input_path)
    out = Path(outdir)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a directory")
    try:
        resolved = inp.resolve()
    except OSError:
        return
    for name in names:
        target = out / name
        for candidate in (target, target.with_name(target.name + ".partial")):
            try:
                if candidate.resolve() == resolved:
                    raise OutputError(f"{inp}: the input would be overwritten by the output {candidate}")
            except OSError:
                continue

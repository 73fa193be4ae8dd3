"""The Make rules of one recording's stage 1: one fr-compensate, or time chunks and their join.

With ``chunk_frames`` in session.toml a recording's ``compensate.json`` is
made by ``python -m frkit.session join`` from one rule per chunk
(``fr-compensate --frames``), which all follow the recording's shared
reference (``fr-compensate --reference-only``). The chunk and reference
records are intermediate files: the join removes them, and Make does not
redo them while ``compensate.json`` is newer than what they came from.
"""

from __future__ import annotations

from pathlib import Path

from .. import layout

__all__ = ["stage1_rules"]


def stage1_rules(deps: str, recording: str, folder: Path, record: str, stamp: str, cfg_arg: str, chunks, quote):
    """``(rule lines, intermediate targets)`` that make ``record`` (``compensate.json``) of ``recording``.

    ``deps`` are every file the recording reads (Make prerequisites),
    ``recording`` its fr-compensate argument(s); ``chunks`` are the recording's ``(start, stop)`` frames, or ``[None]``
    for the whole recording; ``stamp`` is the stage-1 parameter stamp;
    ``quote`` checks a path for Make.
    """
    d = quote(folder)
    if chunks == [None]:
        return [f"{record}: {deps} {stamp}", f"\tfr-compensate {recording} -o {d}{cfg_arg} -q"], []
    ref = quote(folder / layout.CHUNK_DIR / layout.CHUNK_REFERENCE_RECORD)
    lines = [f"{ref}: {deps} {stamp}", f"\tfr-compensate {recording} -o {d} --reference-only{cfg_arg} -q"]
    parts = []
    for start, stop in chunks:
        part = quote(layout.chunk_folder(folder, start, stop) / layout.CHUNK_RECORD)
        parts.append(part)
        lines += [f"{part}: {ref}", f"\tfr-compensate {recording} -o {d} --frames {start}:{stop}{cfg_arg} -q"]
    lines += [f"{record}: {' '.join(parts)}", f"\tpython3 -m frkit.session join {d}"]
    return lines, [ref, *parts]

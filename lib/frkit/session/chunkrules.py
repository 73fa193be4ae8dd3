"""The Make rules of one recording's stage 1: one fr-compensate, or time chunks and their join.

With ``chunk_frames`` in session.toml a recording's ``compensate.json`` is
made by ``python -m frkit.session join`` from one rule per chunk
(``fr-compensate --frames``), which all follow the recording's shared
reference (``fr-compensate --reference-only``). The chunk and reference
records are intermediate files: the join removes them, and Make does not
redo them while ``compensate.json`` is newer than what they came from.

The reference step carries the flow initialization only to the last
chunk's start (``--initialize-until``): the chunks carry it on themselves.
Every chunk of a recording waits for its reference step, so that step runs
with the threads of all its chunks together (:func:`reference_workers`):
its results do not depend on the worker count (:mod:`frkit.accumulate`),
and on ``make -j`` it would otherwise hold back the idle cores its chunks
are about to use.
"""

from __future__ import annotations

from pathlib import Path

from .. import layout
from ..pipelining import available_cpus

__all__ = ["stage1_rules", "reference_workers"]


def reference_workers(n_workers: int, n_chunks: int, cpus: int | None = None) -> int:
    """``--workers`` of a recording's reference step: ``n_workers`` (session.toml) for each of its
    ``n_chunks`` chunks, at most the ``cpus`` this process may use (0: all of them).

    Capped rather than "all CPUs" always: with ``n_workers = 1`` a user keeps
    each step to one core (and its memory to a few frames), and the step
    takes no more than its chunks will.
    """
    cpus = available_cpus() if cpus is None else cpus
    if n_workers <= 0 or n_workers * n_chunks >= cpus:
        return 0
    return n_workers * n_chunks


def stage1_rules(deps: str, recording: str, folder: Path, record: str, stamp: str, cfg_arg: str, chunks, quote,
                 n_workers: int = 0):
    """``(rule lines, intermediate targets)`` that make ``record`` (``compensate.json``) of ``recording``.

    ``deps`` are every file the recording reads (Make prerequisites),
    ``recording`` its fr-compensate argument(s); ``chunks`` are the recording's ``(start, stop)`` frames, or ``[None]``
    for the whole recording; ``stamp`` is the stage-1 parameter stamp;
    ``quote`` checks a path for Make; ``n_workers`` is session.toml's (each
    chunk's; the reference step's from :func:`reference_workers`).
    """
    d = quote(folder)
    if chunks == [None]:
        return [f"{record}: {deps} {stamp}", f"\tfr-compensate {recording} -o {d}{cfg_arg} -q"], []
    ref = quote(folder / layout.CHUNK_DIR / layout.CHUNK_REFERENCE_RECORD)
    workers = reference_workers(n_workers, len(chunks))
    lines = [f"{ref}: {deps} {stamp}",
             f"\tfr-compensate {recording} -o {d} --reference-only --initialize-until {chunks[-1][0]}{cfg_arg} "
             f"--workers {workers} -q"]
    parts = []
    for start, stop in chunks:
        part = quote(layout.chunk_folder(folder, start, stop) / layout.CHUNK_RECORD)
        parts.append(part)
        lines += [f"{part}: {ref}", f"\tfr-compensate {recording} -o {d} --frames {start}:{stop}{cfg_arg} -q"]
    lines += [f"{record}: {' '.join(parts)}", f"\tpython3 -m frkit.session join {d}"]
    return lines, [ref, *parts]

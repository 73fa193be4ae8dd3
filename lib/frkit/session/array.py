"""Which recording, or which (recording, time chunk) pair, a cluster array task processes."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import OptionError

__all__ = ["ARRAY_VARIABLES", "array_task_index", "Task", "task_table", "format_task_table"]


@dataclass(frozen=True)
class Task:
    """One stage-1 array task: a recording (``index`` among the session's) and its frames.

    ``frames`` is None for a whole recording (a session without
    ``chunk_frames``), else the time chunk ``(start, stop)`` in stage-1
    frames (after ``bin_size``).
    """

    recording: Path
    index: int
    chunk: int
    frames: tuple[int, int] | None


def task_table(recordings: list[Path], frame_counts: dict, chunk_frames: int, bin_size: int = 1) -> list[Task]:
    """The stage-1 array tasks in array order: recordings in session order, each one's chunks in time order.

    ``frame_counts`` maps each recording to its raw frame count; chunks are
    counted in frames after binning (``bin_size``).
    """
    from ..chunks import chunk_ranges

    if chunk_frames <= 0:
        return [Task(p, i, 0, None) for i, p in enumerate(recordings)]
    return [Task(p, i, j, span) for i, p in enumerate(recordings)
            for j, span in enumerate(chunk_ranges(-(-frame_counts[p] // bin_size), chunk_frames))]


def format_task_table(tasks: list[Task]) -> str:
    """The table a user writes ``--array=`` from: both task ids, the recording, its frames."""
    lines = ["# task(1-based)\ttask(0-based)\trecording\tframes"]
    for k, t in enumerate(tasks):
        frames = "all" if t.frames is None else f"{t.frames[0]}:{t.frames[1]}"
        lines.append(f"{k + 1}\t{k}\t{t.recording.name}\t{frames}")
    n = len(tasks)
    lines.append(f"# --array=1-{n} (default --index-base 1) or --array=0-{n - 1} with --index-base 0")
    return "\n".join(lines)

#: checked in this order: SLURM, SGE, PBS Pro, Torque
ARRAY_VARIABLES = ("SLURM_ARRAY_TASK_ID", "SGE_TASK_ID", "PBS_ARRAY_INDEX", "PBS_ARRAYID")


def array_task_index(n_recordings: int, index_base: int = 1, env=None, what: str = "recording(s)") -> int:
    """0-based task index (a recording, or a row of :func:`task_table`) from the scheduler's array task id.

    ``index_base`` is the id of the first task (1 for ``--array=1-N``, 0
    for ``--array=0-(N-1)``). A missing, non-numeric (SGE sets ``undefined``
    outside arrays) or out-of-range id is an OptionError.
    """
    env = os.environ if env is None else env
    if index_base not in (0, 1):
        raise OptionError("--index-base must be 0 or 1")
    for var in ARRAY_VARIABLES:
        value = env.get(var)
        if value is None:
            continue
        text = value.strip()
        if not text.isdigit():
            raise OptionError(f"{var}={value!r} is not a task number; is this an array job?")
        index = int(text) - index_base
        if not 0 <= index < n_recordings:
            raise OptionError(f"{var}={text} is out of range: {n_recordings} {what} take ids "
                              f"{index_base}..{n_recordings - 1 + index_base} with --index-base {index_base}")
        return index
    raise OptionError("--array-task: no array task id in the environment (" + ", ".join(ARRAY_VARIABLES) + ")")

"""Which recording a cluster array task processes."""

from __future__ import annotations

import os

from ..errors import OptionError

__all__ = ["ARRAY_VARIABLES", "array_task_index"]

#: checked in this order: SLURM, SGE, PBS Pro, Torque
ARRAY_VARIABLES = ("SLURM_ARRAY_TASK_ID", "SGE_TASK_ID", "PBS_ARRAY_INDEX", "PBS_ARRAYID")


def array_task_index(n_recordings: int, index_base: int = 1, env=None) -> int:
    """0-based recording index from the scheduler's array task id.

    ``index_base`` is the id of the first recording (1 for ``--array=1-N``, 0
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
            raise OptionError(f"{var}={text} is out of range: {n_recordings} recording(s) take ids "
                              f"{index_base}..{n_recordings - 1 + index_base} with --index-base {index_base}")
        return index
    raise OptionError("--array-task: no array task id in the environment (" + ", ".join(ARRAY_VARIABLES) + ")")

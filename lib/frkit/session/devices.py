"""Which GPU one stage-1 task computes on, when a node has several.

A SLURM array task that asks ``--gres=gpu:1`` sees exactly its GPU
(SLURM sets ``CUDA_VISIBLE_DEVICES``), so ``cuda`` is right as it is. A
task that sees several GPUs (a whole node, or ``CUDA_VISIBLE_DEVICES=0,1,2,3``
set by hand) takes one of them: by ``SLURM_LOCALID`` when it is one of
several tasks of one job step (``srun -n``), else by its array task index,
so consecutive tasks (the chunks of a recording) spread over the GPUs.
"""

from __future__ import annotations

import os

__all__ = ["visible_gpus", "task_device"]


def visible_gpus(env=None) -> int | None:
    """The number of GPUs ``CUDA_VISIBLE_DEVICES`` lists (None when it is unset: unknown, all of them)."""
    env = os.environ if env is None else env
    value = env.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return None
    ids = [x for x in value.replace(" ", "").split(",") if x]
    # CUDA stops at the first invalid id ("-1", "NoDevFiles" hide every GPU)
    n = 0
    for x in ids:
        if x.startswith("-") or x.lower().startswith("nodev"):
            break
        n += 1
    return n


def task_device(device: str, task_index: int, env=None) -> str:
    """The device for the task ``task_index`` (0-based) given ``device`` (``cpu``, ``cuda``, ``cuda:N``).

    Only a bare ``cuda`` with more than one visible GPU is spread:
    ``cuda:K``, K the task's slot modulo the number of visible GPUs (CUDA
    numbers the visible ones from 0). ``cpu`` and an explicit ``cuda:N`` are
    kept.
    """
    env = os.environ if env is None else env
    n = visible_gpus(env)
    if device != "cuda" or n is None or n <= 1:
        return device
    slot = task_index
    local, ntasks = env.get("SLURM_LOCALID", ""), env.get("SLURM_NTASKS", "1")
    if local.isdigit() and ntasks.isdigit() and int(ntasks) > 1:
        slot = int(local)
    return f"cuda:{slot % n}"

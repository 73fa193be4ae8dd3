"""``status.json``: per-folder stage flags, as pyflowreg's session reads them.

A recording folder carries ``{"stage1": "done", "stage2": "done"}``, the
final-results folder ``{"stage3": "done"}``. Updates are read-modify-write
and atomic; unknown keys are kept.
"""

from __future__ import annotations

import json
from pathlib import Path

from .. import layout
from ..io.atomic import write_json_atomic

__all__ = ["read_status", "mark_done"]


def read_status(folder) -> dict:
    p = Path(folder) / layout.STATUS
    try:
        data = json.loads(p.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def mark_done(folder, stage: str) -> dict:
    """Set ``stage`` (e.g. ``"stage1"``) to ``"done"`` in ``folder/status.json``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    status = read_status(folder)
    status[stage] = layout.STAGE_DONE
    write_json_atomic(folder / layout.STATUS, status)
    return status


def clear(folder, stage: str) -> None:
    """Remove ``stage`` from ``folder/status.json`` (its outputs are being replaced)."""
    status = read_status(folder)
    if stage in status:
        del status[stage]
        write_json_atomic(Path(folder) / layout.STATUS, status)

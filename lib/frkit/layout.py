"""File names of the on-disk contract (``session-and-files.md`` §2-§4).

These names are what pyflowreg and MATLAB Flow-Registration read and write,
so a stage done by either can feed a frkit stage and the other way round.
"""

from __future__ import annotations

from pathlib import Path

# per-recording stage-1 folder
COMPENSATED = "compensated.HDF5"
COMPENSATED_ALIASES = ("compensated.HDF5", "compensated.hdf5")
VALID_IDX = "idx.hdf"
FLOW = "w.h5"
STATISTICS = "statistics.npz"
REFERENCE = "reference_frame.npy"
RECORD = "compensate.json"
TEMPORAL_AVERAGE = "temporal_average.npy"
W_TO_REFERENCE = "w_to_reference.npz"
STATUS = "status.json"

# dataset names
VALID_IDX_DATASET = "idx"
VALID_IDX_ALIASES = ("idx", "ch1")
FLOW_DATASETS = ("u", "v")

#: every file fr-compensate writes (the record last)
COMPENSATE_OUTPUTS = (COMPENSATED, VALID_IDX, FLOW, STATISTICS, REFERENCE, RECORD)


def channel_datasets(n_channels: int) -> list[str]:
    """``ch1 .. chN`` (1-based, as pyflowreg and MATLAB name them)."""
    return [f"ch{i + 1}" for i in range(n_channels)]


def find_compensated(folder: Path) -> Path | None:
    """The compensated video in a stage-1 folder (either spelling), or None."""
    for name in COMPENSATED_ALIASES:
        p = Path(folder) / name
        if p.is_file():
            return p
    return None

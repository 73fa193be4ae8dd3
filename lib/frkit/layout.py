"""The on-disk contract: every file, dataset, key and dtype the tools exchange.

These are the names and layouts pyflowreg and MATLAB Flow-Registration read
and write, so a stage done by either can feed a frkit stage and the other
way round (``docs/files.md`` describes each file). No other module spells a
file name, a dataset or a key of the contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: every output is written as NAME + this suffix and renamed when complete
PARTIAL_SUFFIX = ".partial"

# -- per-recording stage-1 folder ------------------------------------------------------
COMPENSATED = "compensated.HDF5"
COMPENSATED_ALIASES = ("compensated.HDF5", "compensated.hdf5")  # pyflowreg reads .hdf5 first
VALID_IDX = "idx.hdf"
FLOW = "w.h5"
STATISTICS = "statistics.npz"
REFERENCE = "reference_frame.npy"
RECORD = "compensate.json"
TEMPORAL_AVERAGE = "temporal_average.npy"
W_TO_REFERENCE = "w_to_reference.npz"
STATUS = "status.json"

#: every file fr-compensate writes (the record last: it marks the set complete)
COMPENSATE_OUTPUTS = (COMPENSATED, VALID_IDX, FLOW, STATISTICS, REFERENCE, RECORD)

# -- datasets and keys -----------------------------------------------------------------
VALID_IDX_DATASET = "idx"  # frkit and MATLAB; pyflowreg names it ch1 (read as any single dataset)
FLOW_DATASETS = ("u", "v")  # w.h5 and w_to_reference.npz: u = x (columns), v = y (rows)
#: dtype of w_to_reference.npz's u and v, for every recording (the center's zero field too)
W_TO_REFERENCE_DTYPE = np.dtype(np.float64)
# w_to_reference.npz also holds the match quality of the alignment (float64 scalars) and the solves applied
ALIGNMENT_CORRELATION = "alignment_correlation"  # Pearson correlation of reference and aligned moving average
ALIGNMENT_OVERLAP = "overlap_fraction"  # share of the reference frame whose match lies inside the moving frame
ALIGNMENT_SCHEDULE = "alignment_schedule"  # JSON list of the flow solves applied (sigma, alpha, iterations, levels)
TEMPORAL_AVERAGE_VARIABLE = "temporal_average"  # in the .mat copy

#: keys of compensate.json that decide whether a result still stands
RECORD_INPUT_KEYS = ("path", "size", "mtime")
RECORD_RESULT_PARAMETERS = "result_parameters"
RECORD_PARAMETERS = "parameters"

#: status.json flags
STAGE_DONE = "done"

# -- session folders -------------------------------------------------------------------
STATE_DIR = ".frkit"  # under output_root: Make stamps and the generated rules
SESSION_MAKEFILE = "session.mk"
FINAL_NPZ = "final_valid_idx.npz"
FINAL_MAT = "final_valid_idx.mat"
FINAL_PNG = "final_valid_idx.png"
ALIGN_EXT = {"TIFF": "tif", "HDF5": "hdf5", "MAT": "mat"}
#: -o suffixes fr-reproject understands -> format
SUFFIX_FORMAT = {"tif": "TIFF", "tiff": "TIFF", "hdf5": "HDF5", "h5": "HDF5", "hdf": "HDF5", "mat": "MAT"}


def channel_datasets(n_channels: int) -> list[str]:
    """``ch1 .. chN`` (1-based, as pyflowreg and MATLAB name them)."""
    return [f"ch{i + 1}" for i in range(n_channels)]


def aligned_name(stem: str, fmt: str) -> str:
    """``aligned_<stem>.<ext>``: a recording's video in the center's grid (stage 3)."""
    return f"aligned_{stem}.{ALIGN_EXT[fmt.upper()]}"


def mask_png_names(stem: str) -> tuple[str, str]:
    """A recording's own and aligned valid-mask PNGs in final_results."""
    return f"{stem}_valid_idx.png", f"{stem}_valid_idx_aligned.png"


def find_compensated(folder: Path) -> Path | None:
    """The compensated video in a stage-1 folder (either spelling), or None."""
    for name in COMPENSATED_ALIASES:
        p = Path(folder) / name
        if p.is_file():
            return p
    return None


@dataclass
class RecordingFiles:
    """The stage-1/2 files of one recording (and its stage-3 video)."""

    stem: str
    idx: Path
    w_to_reference: Path
    average: Path
    compensated: Path
    aligned_video: Path | None = None

    @classmethod
    def in_folder(cls, folder, stem: str | None = None, aligned_video: Path | None = None) -> "RecordingFiles":
        """The files of the stage-1 folder ``folder`` (named ``stem``, default the folder's name)."""
        d = Path(folder)
        return cls(stem=stem or d.name, idx=d / VALID_IDX, w_to_reference=d / W_TO_REFERENCE,
                   average=d / TEMPORAL_AVERAGE, compensated=find_compensated(d) or d / COMPENSATED,
                   aligned_video=aligned_video)

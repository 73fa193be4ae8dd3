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

#: fr-qc's per-recording outputs (qc.json last: it marks the set complete)
QC_FRAMES = "qc_frames.csv"
QC_PNG = "qc.png"
QC_JSON = "qc.json"
QC_OUTPUTS = (QC_FRAMES, QC_PNG, QC_JSON)

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
#: fr-qc --config's session report (session_qc.json last)
REPORT_HTML = "report.html"
SESSION_QC_PNG = "session_qc.png"
SESSION_QC_JSON = "session_qc.json"
SESSION_QC_OUTPUTS = (REPORT_HTML, SESSION_QC_PNG, SESSION_QC_JSON)
ALIGN_EXT = {"TIFF": "tif", "HDF5": "hdf5", "MAT": "mat"}
#: -o suffixes fr-reproject understands -> format
SUFFIX_FORMAT = {"tif": "TIFF", "tiff": "TIFF", "hdf5": "HDF5", "h5": "HDF5", "hdf": "HDF5", "mat": "MAT"}


# -- hand-on formats (--output-format; frkit.io.handoff writes them) ---------------------
HANDOFF_FORMATS = ("hdf5", "tiff", "suite2p", "caiman", "nwb")
SUITE2P_PLANE = ("suite2p", "plane0")  # under the output folder, as suite2p's save_path0/save_folder/plane0
SUITE2P_BINARIES = ("data.bin", "data_chan2.bin")  # int16 (T, Ly, Lx) per channel
SUITE2P_RECORDS = ("db.npy", "settings.npy", "ops.npy")  # suite2p >= 1.0: db + settings; < 1.0: ops


def caiman_name(stem: str, height: int, width: int, n_frames: int) -> str:
    """CaImAn's memory-map file name for ``(T, H, W)`` float32 frames in Fortran order."""
    return f"{stem}_d1_{height}_d2_{width}_d3_1_order_F_frames_{n_frames}.mmap"


def handoff_outputs(fmt: str, folder, stem: str, shape) -> list[Path]:
    """The files ``--output-format fmt`` writes for a ``(T, H, W, C)`` video into ``folder`` (none for hdf5).

    One CaImAn file per channel, ``STEM_chN_...`` when there are several.
    """
    folder = Path(folder)
    t, h, w, c = shape
    if fmt == "tiff":
        return [folder / f"{stem}.tif"]
    if fmt == "nwb":
        return [folder / f"{stem}.nwb"]
    if fmt == "caiman":
        return [folder / caiman_name(stem if c == 1 else f"{stem}_ch{k + 1}", h, w, t) for k in range(c)]
    if fmt == "suite2p":
        plane = folder.joinpath(*SUITE2P_PLANE)
        return [plane / n for n in SUITE2P_BINARIES[:c]] + [plane / n for n in SUITE2P_RECORDS]
    return []


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

# -- time chunks (fr-compensate --reference-only / --frames, joined by `python -m frkit.session join`) --------
CHUNK_DIR = "chunks"  # inside a stage-1 folder; removed by the join
CHUNK_REFERENCE_RECORD = "reference.json"  # the shared reference step's record (written last)
CHUNK_INITIALIZATION = "initialization.npy"  # (batches, H, W, 2) float64: each batch's flow initialization
CHUNK_RECORD = "chunk.json"  # a chunk's record, written last: the chunk is complete


def chunk_folder(stage1_folder, start: int, stop: int) -> Path:
    """The partial stage-1 folder of frames ``[start, stop)``."""
    return Path(stage1_folder) / CHUNK_DIR / f"frames_{start:08d}-{stop:08d}"

"""The session's per-recording steps, shared by the tools and the array mode."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import layout
from ..align import AlignParams, between_displacement
from ..average import temporal_average
from ..errors import InputError
from ..io import open_video, save_npy_atomic, save_npz_atomic, savemat_atomic
from . import status
from .config import SessionConfig
from .final import RecordingFiles, load_average
from .plan import aligned_name

__all__ = ["average_video", "finish_stage1", "align_averages", "session_files", "align_params"]


def average_video(compensated: Path, output: Path, mat: bool = False, tif: bool = False) -> np.ndarray:
    """Temporal average of a compensated video into ``output`` (.npy), plus optional copies."""
    compensated = Path(compensated)
    if not compensated.exists():
        raise InputError(f"{compensated}: no such file (run stage 1 / fr-compensate first)")
    with open_video(compensated) as reader:
        avg = temporal_average(reader)
    save_npy_atomic(output, avg)
    if mat:
        savemat_atomic(Path(output).with_suffix(".mat"), {"temporal_average": avg})
    if tif:
        import tifffile

        from ..io.atomic import atomic_output

        with atomic_output(Path(output).with_suffix(".tif")) as tmp:
            tifffile.imwrite(tmp, avg.astype(np.float32), photometric="minisblack",
                             planarconfig="contig" if avg.shape[-1] > 1 else None)
    return avg


def finish_stage1(folder: Path) -> None:
    """After compensation: the temporal average and ``status.json`` stage1 = done."""
    folder = Path(folder)
    video = layout.find_compensated(folder)
    if video is None:
        raise InputError(f"{folder}: no compensated.HDF5")
    average_video(video, folder / layout.TEMPORAL_AVERAGE)
    status.mark_done(folder, "stage1")


def align_params(cfg: SessionConfig | None, **overrides) -> AlignParams:
    base = {}
    if cfg is not None:
        base = dict(sigma_smooth=float(cfg.sigma_smooth), cc_upsample=int(cfg.cc_upsample),
                    alpha=float(cfg.alpha_between), iterations=int(cfg.iterations_between))
    base.update({k: v for k, v in overrides.items() if v is not None})
    return AlignParams(**base)


def align_averages(reference: Path, moving: Path, output: Path, params: AlignParams, mat: bool = False,
                   engine=None) -> np.ndarray:
    """``w_to_reference.npz`` (u, v on the reference grid) from two average files.

    The same file on both sides gives the zero field (the center recording).
    """
    ref = load_average(reference)
    if Path(reference).resolve() == Path(moving).resolve():
        w = np.zeros(ref.shape[:2] + (2,), dtype=np.float32)
    else:
        w = between_displacement(ref, load_average(moving), params, engine)
    save_npz_atomic(output, u=w[..., 0], v=w[..., 1])
    if mat:
        savemat_atomic(Path(output).with_suffix(".mat"), {"u": w[..., 0].astype(np.float64),
                                                           "v": w[..., 1].astype(np.float64)})
    return w


def session_files(cfg: SessionConfig) -> tuple[list[RecordingFiles], int]:
    """Every recording's stage-1/2/3 paths and the center index."""
    recordings = cfg.recordings()
    center = cfg.center_index(recordings)
    files = []
    for p in recordings:
        d = cfg.recording_dir(p)
        compensated = layout.find_compensated(d) or d / layout.COMPENSATED
        idx = d / layout.VALID_IDX
        files.append(RecordingFiles(stem=p.stem, idx=idx, w_to_reference=d / layout.W_TO_REFERENCE,
                                    average=d / layout.TEMPORAL_AVERAGE, compensated=compensated,
                                    aligned_video=cfg.final_dir / aligned_name(p.stem, cfg.align_output_format)))
    return files, center

"""A session's stages: loops over its recordings that call the tools' entry points (:mod:`frkit.tools`).

Nothing here computes: each function finds the session's paths and calls
the same function the single-recording command calls, then marks the stage
done in ``status.json``.
"""

from __future__ import annotations

from pathlib import Path

from .. import layout, options, tools
from ..errors import AlignmentError, InputError, OptionError
from . import status
from .array import Task, array_task_index, task_table
from .config import SessionConfig
from .devices import task_device
from .planes import PlaneRecording, plane_centers, plane_dir, plane_of, source_of

__all__ = ["session_files", "stage1_tasks", "compensate_array_task", "finish_stage1", "align_all", "mask_session",
           "reproject_all"]


def session_files(cfg: SessionConfig) -> tuple[list[layout.RecordingFiles], int]:
    """Every recording's stage-1/2/3 paths and the center index (with planes: the center's first plane)."""
    files, _, center = _files_and_centers(cfg)
    return files, center


def _files_and_centers(cfg: SessionConfig) -> tuple[list[layout.RecordingFiles], list[int], int]:
    """Every recording's paths (a plane's aligned video in ``final_results/plane<K>``), per recording the
    index of the one it is aligned to (:func:`frkit.session.planes.plane_centers`), and the center index."""
    recordings = cfg.recordings()
    fmt = cfg.values(options.REPROJECT).format or "TIFF"
    files = [layout.RecordingFiles.in_folder(cfg.recording_dir(p), p.stem,
                                             plane_dir(cfg.final_dir, p) / layout.aligned_name(p.stem, fmt))
             for p in recordings]
    center = cfg.center_index(recordings)
    return files, plane_centers(recordings, center), center


def finish_stage1(folder: Path) -> None:
    """After compensation: the temporal average and ``status.json`` stage1 = done."""
    folder = Path(folder)
    if layout.find_compensated(folder) is None:
        raise InputError(f"{folder}: no compensated.HDF5")
    tools.average(folder, folder / layout.TEMPORAL_AVERAGE, options.resolve(options.AVERAGE))
    status.mark_done(folder, "stage1")


def stage1_tasks(cfg: SessionConfig, counts: dict | None = None) -> list[Task]:
    """The session's stage-1 array tasks (:func:`frkit.session.array.task_table`); ``counts``: frame counts
    when known (else each recording is opened)."""
    from ..io import open_video

    recordings = cfg.recordings()
    chunk_frames = cfg.settings.chunk_frames
    if counts is None and chunk_frames > 0:
        counts = {}
        for p in recordings:
            with open_video(source_of(p), plane=plane_of(p)) as r:
                counts[p] = r.shape[0]
    return task_table(recordings, counts or {}, chunk_frames, cfg.values(options.COMPENSATE).bin_size)


def compensate_array_task(cfg: SessionConfig, params, progress=None, env=None) -> tuple[Path, dict]:
    """The stage-1 work of this array task.

    A session without ``chunk_frames``: the whole stage 1 (compensation,
    average, status) of one recording. With it: the time chunk of the
    task's (recording, chunk) pair, or with ``--reference-only`` the shared
    reference of the task's recording (one task per recording); the join,
    average and status then come from ``make`` (stages 2-3 job).
    """
    if params.frames:
        raise OptionError("--array-task takes its frames from the task id (chunk_frames in session.toml), "
                          "not from --frames")
    recordings = cfg.recordings()
    if params.reference_only:
        index = array_task_index(len(recordings), params.index_base, env)
        recording = recordings[index]
        folder = cfg.recording_dir(recording)
        params = params.replace(device=task_device(params.device, index, env),
                                plane=plane_of(recording, params.plane))
        if params.initialize_until is None and cfg.settings.chunk_frames > 0:  # as far as the chunks need
            from ..io import open_video

            with open_video(source_of(recording), plane=plane_of(recording)) as r:
                tasks = task_table([recording], {recording: r.shape[0]}, cfg.settings.chunk_frames, params.bin_size)
            params = params.replace(initialize_until=tasks[-1].frames[0])
        return folder, tools.compensate(source_of(recording), folder, params, progress)
    tasks = stage1_tasks(cfg)
    index = array_task_index(len(tasks), params.index_base, env, "stage-1 task(s)")
    task = tasks[index]
    params = params.replace(device=task_device(params.device, index, env),
                            plane=plane_of(task.recording, params.plane))
    folder = cfg.recording_dir(task.recording)
    source = source_of(task.recording)
    if task.frames is not None:
        return folder, tools.compensate(source, folder, params.replace(frames=task.frames), progress)
    summary = tools.compensate(source, folder, params, progress)
    finish_stage1(folder)
    return folder, summary


def align_all(cfg: SessionConfig, params, warn=None) -> list[dict]:
    """Stage 2: every recording's ``w_to_reference.npz`` (the center's is the zero field).

    A recording whose alignment failed gets no file; the others are still
    aligned, then one :class:`AlignmentError` names every failed one.
    ``warn(summary)`` is called for each written alignment (it may carry a warning).
    """
    files, centers, _ = _files_and_centers(cfg)
    summaries, failed = [], []
    for f, center in zip(files, centers):
        try:
            summary = tools.align(files[center].average, f.average, f.w_to_reference, params)
        except AlignmentError as exc:
            failed.append(str(exc))
            continue
        if warn is not None:
            warn(summary)
        summaries.append(summary)
        status.mark_done(f.w_to_reference.parent, "stage2")
    if failed:
        raise AlignmentError(f"{len(failed)} of {len(files)} alignments failed: " + "; ".join(failed))
    return summaries


def mask_session(cfg: SessionConfig, output: Path | None, params) -> dict:
    """Stage 3: the session's valid-pixel mask in ``output`` (default ``final_results``); with planes, one per
    plane in ``<output>/plane<K>`` (the summary: the last plane's, and ``planes``: plane -> its summary)."""
    if params.center is not None:
        raise OptionError("with --config the center comes from session.toml ('center')")
    files, centers, _ = _files_and_centers(cfg)
    recordings = cfg.recordings()
    if not isinstance(recordings[0], PlaneRecording):
        return tools.mask(files, output or cfg.final_dir, params.replace(center=centers[0]))
    summaries = {}
    for k in sorted({p.plane for p in recordings}):
        idx = [i for i, p in enumerate(recordings) if p.plane == k]
        folder = plane_dir(Path(output or cfg.final_dir), recordings[idx[0]])
        summaries[k] = tools.mask([files[i] for i in idx], folder, params.replace(center=idx.index(centers[idx[0]])))
    return dict(summaries[k], planes=summaries)


def reproject_all(cfg: SessionConfig, params, progress=None) -> list[dict]:
    """Stage 3: every recording's video in the center's grid (``aligned_<stem>.<ext>``)."""
    files, centers, _ = _files_and_centers(cfg)
    return [tools.reproject(f.compensated.parent, f.w_to_reference, f.aligned_video,
                            params.replace(reference_average=params.reference_average or str(files[c].average)),
                            progress)
            for f, c in zip(files, centers)]

"""One library entry point per tool, all of one shape: inputs, parameters, outputs -> a summary.

``params`` is the tool's :class:`frkit.options.Values` (from
:func:`frkit.options.resolve`; e.g. ``resolve(options.ALIGN, alpha=5)``).
Each function checks its inputs and refuses, before any work, an output that
is or would replace one of its inputs; then it computes and writes every
output atomically. ``cmd/`` parses the command line and calls these;
:mod:`frkit.session.stages` calls the same functions for every recording.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from . import layout
from .errors import AlignmentError, InputError, OptionError, OutputError
from .io.atomic import partial_path

__all__ = ["compensate", "average", "align", "mask", "reproject", "apply_flow", "qc", "check_outputs", "resolve_video"]


def check_outputs(inputs, outputs) -> None:
    """Refuse any output that is an input, or whose ``.partial`` name is (also through links)."""
    ins = [Path(p) for p in inputs if p is not None]
    for out in map(Path, outputs):
        if out.is_dir():
            raise OutputError(f"{out}: is a directory; give a file name")
        for candidate in (out, partial_path(out)):
            for inp in ins:
                same = candidate.resolve() == inp.resolve() or (
                    candidate.exists() and inp.exists() and candidate.samefile(inp))
                if same:
                    raise OutputError(f"{inp}: the input would be overwritten by the output {candidate}")


def resolve_video(path) -> Path:
    """A video file, or the compensated video of a stage-1 folder (either spelling)."""
    from .io.readers import check_file

    p = Path(path)
    if p.is_dir():
        found = layout.find_compensated(p)
        if found is None:
            raise InputError(f"{p}: no compensated.HDF5 (or .hdf5) in this folder; run stage 1 first")
        return found
    return check_file(p, "video")


@contextmanager
def _engine(params):
    """The engine ``params`` ask for (``device``, ``workers``), closed afterwards."""
    from .engine import make_engine

    engine = make_engine(params.get("device", "cpu"), params.get("workers", 0))
    try:
        yield engine
    finally:
        engine.close()


def compensate(input, output, params, progress=None) -> dict:
    """fr-compensate: correct the motion inside the recording ``input`` into the folder ``output``."""
    from .compensate import compensate_recording, describe_input
    from .io import open_video
    from .io.handoff import check_handoff, handoff_outputs
    from .io.readers import check_file, recording_files

    files = recording_files(input)  # one file, or every file of a multi-file recording
    if len(files) == 1:
        input = files[0] = check_file(files[0], "video")
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise OutputError(f"{output}: exists and is not a directory")
    check_outputs([*files, params.reference_file], [output / name for name in layout.COMPENSATE_OUTPUTS])
    if params.reference_only and params.frames:
        raise OptionError("give --reference-only or --frames, not both")
    if (params.reference_only or params.frames) and params.output_format != "hdf5":
        raise OptionError(f"--output-format {params.output_format}: time chunks write the standard files only; "
                          "give it to a whole run")
    stem = Path(layout.COMPENSATED).stem
    check_outputs(files, handoff_outputs(params.output_format, output, stem, (0, 0, 0, 2)))  # before reading
    with open_video(input, axes=params.axes, datasets=params.dataset, deinterleave=params.deinterleave,
                    plane=params.get("plane")) as reader, _engine(params) as engine:
        if params.reference_only or params.frames:  # time chunks (frkit.chunks)
            from .chunks import compensate_chunk, reference_step

            if params.reference_only:
                return reference_step(reader, output, params, engine, progress, describe_input(input))
            return compensate_chunk(reader, output, params, engine, params.frames, progress, describe_input(input))
        check_outputs(files, handoff_outputs(params.output_format, output, stem, reader.shape))  # CaImAn: T, H, W
        check_handoff(params, files[0], reader.shape)
        return compensate_recording(reader, output, params, engine, progress=progress,
                                    input_info=describe_input(input))


def average(compensated, output, params, progress=None) -> dict:
    """fr-average: the temporal average of a compensated video, ``(H, W, C)`` float64 ``.npy``."""
    from .average import temporal_average
    from .io import open_video, save_npy_atomic, save_tiff_atomic, savemat_atomic

    video = resolve_video(compensated)
    output = Path(output) if output is not None else video.parent / layout.TEMPORAL_AVERAGE
    extra = {".mat": params.mat, ".tif": params.tif}
    outputs = [output] + [output.with_suffix(s) for s, on in extra.items() if on]
    check_outputs([video], outputs)
    with open_video(video) as reader:
        avg = temporal_average(reader, progress=progress)
    save_npy_atomic(output, avg)
    if params.mat:
        savemat_atomic(output.with_suffix(".mat"), {layout.TEMPORAL_AVERAGE_VARIABLE: avg})
    if params.tif:
        save_tiff_atomic(output.with_suffix(".tif"), avg.astype(np.float32))
    return {"frames": reader.shape[0], "shape": list(avg.shape), "output": str(output)}


def align(reference, moving, output, params, progress=None) -> dict:
    """fr-align: ``w_to_reference.npz`` (u, v on the reference grid and the match quality) from two averages.

    The same file on both sides gives the zero field (the center recording).
    A clearly failed alignment (:func:`frkit.align.judge`) raises
    :class:`frkit.errors.AlignmentError`, writes nothing and removes an
    earlier ``output`` (stage 3 must not take it for this result), unless
    ``params.accept_poor_alignment``; the summary's ``warning`` is a line to
    show when the match is poor or was accepted.
    """
    from .align import alignment_match, applied_schedule, between_displacement, channel_weights, judge
    from .io.atomic import save_npz_atomic, savemat_atomic
    from .io.base import check_file
    from .mask import load_average

    reference, moving = check_file(reference, "temporal average"), check_file(moving, "temporal average")
    output = Path(output) if output is not None else moving.parent / layout.W_TO_REFERENCE
    check_outputs([reference, moving], [output] + ([output.with_suffix(".mat")] if params.mat else []))
    ref = load_average(reference)
    same = reference.resolve() == moving.resolve()
    mov = ref if same else load_average(moving)
    if mov.shape != ref.shape:
        raise InputError(f"{moving}: average has shape {mov.shape}, the reference {reference} has {ref.shape}")
    if same:
        w = np.zeros(ref.shape[:2] + (2,))
    elif params.device == "cpu":
        w = between_displacement(ref, mov, params)
    else:
        with _engine(params) as engine:
            w = between_displacement(ref, mov, params, engine)
    w = w.astype(layout.W_TO_REFERENCE_DTYPE)
    correlation, overlap = alignment_match(ref, mov, w, channel_weights(params, ref.shape[2]))
    verdict = judge(correlation, overlap)
    quality = f"correlation {correlation:.2f} in an overlap of {overlap:.0%} of the frame"
    if verdict == "failed" and not params.accept_poor_alignment:
        # a field from an earlier run would be taken for this one's result by stage 3
        for stale in [output] + ([output.with_suffix(".mat")] if params.mat else []):
            stale.unlink(missing_ok=True)
        raise AlignmentError(f"{moving}: alignment to {reference} failed ({quality}); no {output.name} written "
                             "(unrelated fields of view? --accept-poor-alignment writes it anyway)")
    u, v = layout.FLOW_DATASETS
    schedule = [s.record() for s in applied_schedule(params)]
    save_npz_atomic(output, **{u: w[..., 0], v: w[..., 1], layout.ALIGNMENT_CORRELATION: np.float64(correlation),
                               layout.ALIGNMENT_OVERLAP: np.float64(overlap),
                               layout.ALIGNMENT_SCHEDULE: np.array(json.dumps(schedule))})
    if params.mat:
        savemat_atomic(output.with_suffix(".mat"), {u: w[..., 0].astype(np.float64), v: w[..., 1].astype(np.float64),
                                                    layout.ALIGNMENT_CORRELATION: correlation,
                                                    layout.ALIGNMENT_OVERLAP: overlap})
    magnitude = np.hypot(w[..., 0], w[..., 1])
    warning = None
    if verdict != "ok":
        warning = (f"warning: {moving}: poor alignment ({quality}"
                   + ("; accepted with --accept-poor-alignment)" if verdict == "failed" else ")"))
    return {"output": str(output), "mean_displacement": float(magnitude.mean()),
            "max_displacement": float(magnitude.max()), "alignment_correlation": correlation,
            "overlap_fraction": overlap, "verdict": verdict, "warning": warning, "schedule": schedule}


def mask(recordings, output, params, progress=None) -> dict:
    """fr-mask: the pixels valid in every frame of every recording (:class:`layout.RecordingFiles` list)."""
    from .mask import session_mask
    from .session import status

    recordings = list(recordings)
    if not recordings:
        raise OptionError("no recordings given")
    if len({r.stem for r in recordings}) != len(recordings):
        raise OptionError("two recordings have the same name")
    center = (len(recordings) + 1) // 2 - 1 if params.center is None else params.center
    if not center < len(recordings):
        raise OptionError(f"--center {center} is out of range for {len(recordings)} recordings")
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise OutputError(f"{output}: exists and is not a directory")
    outputs = [output / n for n in (layout.FINAL_NPZ, layout.FINAL_MAT, layout.FINAL_PNG)]
    outputs += [output / n for r in recordings for n in layout.mask_png_names(r.stem)]
    check_outputs([p for r in recordings for p in (r.idx, r.w_to_reference, r.average, r.compensated)], outputs)
    if output.is_dir():
        status.clear(output, "stage3")
    summary = session_mask(recordings, center, output)
    status.mark_done(output, "stage3")
    return {**summary, "output": str(output)}


def reproject(compensated, w_to_reference, output, params, progress=None) -> dict:
    """fr-reproject: warp a compensated video into the center recording's grid with its field.

    ``output`` is a file, or a folder (default: the current one) to hold ``aligned_<stem>.<ext>``.
    """
    from .io import open_video, open_video_writer
    from .io.readers import check_file
    from .reproject import fill_image, output_dtype, reproject as warp_video
    from .io.handoff import check_handoff, handoff_outputs
    from .mask import load_average, load_flow

    video = resolve_video(compensated)
    field = check_file(w_to_reference, "displacement field")
    stem = video.parent.name if video.stem.lower() == "compensated" else video.stem
    output = Path.cwd() if output is None else Path(output)
    fmt = params.format or layout.SUFFIX_FORMAT.get(output.suffix.lower().lstrip("."), "TIFF")
    if output.is_dir():
        output = output / layout.aligned_name(stem, fmt)
    ref_avg = params.reference_average
    check_outputs([video, field, ref_avg], [output])
    check_outputs([video, field, ref_avg], handoff_outputs(params.output_format, output.parent, output.stem,
                                                           (0, 0, 0, 1)))
    flow = load_flow(field)
    avg = load_average(ref_avg) if (params.fill == "reference" and ref_avg is not None) else None
    with open_video(video) as reader, _engine(params) as engine:
        t, h, w, c = reader.shape
        check_handoff(params, video, reader.shape)
        img = fill_image(params.fill, (h, w, c), avg)
        output.parent.mkdir(parents=True, exist_ok=True)
        with open_video_writer(output, fmt, c, h, w, output_dtype(reader.dtype, params.fill), n_frames=t) as writer:
            warp_video(reader, flow, writer, img, engine, params.chunk_size, progress=progress)
    # the field is the same for every frame: its mean is every frame's translation
    translation = np.broadcast_to(flow.reshape(-1, 2).mean(axis=0), (t, 2))
    handoff = _handoff(output, params, source=video, translation=translation)
    return {"frames": t, "output": str(output), "format": fmt, "handoff": handoff}


def apply_flow(video, flow, output, params, progress=None) -> dict:
    """fr-apply-flow: warp ``video`` frame by frame with the saved flow ``flow`` (w.h5) into ``output``."""
    from .apply_flow import apply_flow as warp_video, check_flow_fits, load_fill, open_flow, target_reference
    from .io import open_video, open_video_writer
    from .io.handoff import check_handoff, handoff_outputs
    from .io.readers import check_file

    video, flow = check_file(video, "video"), check_file(flow, "flow")
    if output is None:
        raise OptionError("missing -o/--output OUT")
    output = Path(output)
    fmt = layout.SUFFIX_FORMAT.get(output.suffix.lower().lstrip("."), "HDF5")
    check_outputs([video, flow, params.fill_image], [output])
    with open_video(video, axes=params.axes, datasets=params.dataset, deinterleave=params.deinterleave) as reader, \
            open_flow(flow) as fields, _engine(params) as engine:
        check_flow_fits(reader, fields)
        t, h, w, c = reader.shape
        check_outputs([video, flow], handoff_outputs(params.output_format, output.parent, output.stem, reader.shape))
        check_handoff(params, video, reader.shape)
        chunk = params.chunk_size or engine.preferred_chunk((h, w, c))
        if params.fill_image is not None:
            fill = load_fill(params.fill_image, (h, w, c))
        else:
            fill = target_reference(reader, fields, engine, params.interpolation, chunk)
        dtype = np.dtype(reader.dtype) if params.output_dtype == "same" else np.dtype(params.output_dtype)
        output.parent.mkdir(parents=True, exist_ok=True)
        with open_video_writer(output, fmt, c, h, w, dtype, n_frames=t) as writer:
            summary = warp_video(reader, fields, writer, fill, engine, params.interpolation, chunk, progress)
    translation = summary.pop("translation")
    summary["handoff"] = _handoff(output, params, source=video, translation=translation)
    return {**summary, "output": str(output), "format": fmt}


def _handoff(video, params, source, translation=None) -> list[str]:
    """``--output-format``: the finished ``video`` once more, beside it (:mod:`frkit.io.handoff`)."""
    from .io import open_video
    from .io.handoff import export_video

    if params.output_format == "hdf5":
        return []
    video = Path(video)
    with open_video(video) as corrected:
        return export_video(corrected, params.output_format, video.parent, video.stem, rate=params.frame_rate,
                            source=source, translation=translation, metadata=params.nwb_template)



def qc(stage1, output, params, progress=None, drawer=None) -> dict:
    """fr-qc: measure how well a stage-1 folder is corrected; ``qc.json``, ``qc_frames.csv``, ``qc.png``.

    ``output`` is a folder (default: the stage-1 folder). The raw recording
    is ``params.input``, else the one its ``compensate.json`` names.
    ``drawer``: a :class:`~frkit.qc.drawing.FigureProcess` started
    beforehand draws qc.png (None: drawn here).
    """
    from .pipelining import thread_count
    from .qc.outputs import clear_outputs, write_recording_outputs
    from .qc.recording import find_inputs, measure

    inputs = find_inputs(stage1, params.input)
    output = inputs.folder if output is None else Path(output)
    if output.exists() and not output.is_dir():
        raise OutputError(f"{output}: exists and is not a directory")
    check_outputs(list(inputs.files().values()), [output / n for n in layout.QC_OUTPUTS])
    clear_outputs(output)
    summary, frames, images = measure(inputs, progress=progress, workers=thread_count(params.workers))
    write_recording_outputs(output, summary, frames, images, f"{inputs.folder.name}: {summary['frames']} frames",
                            drawer)
    return {**summary, "output": str(output)}

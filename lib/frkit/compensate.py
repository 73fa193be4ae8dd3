"""Motion compensation of one recording, streamed from file to files.

:func:`compensate_recording` reads like the method (``docs/method.md``):

1. **outputs**: the output folder is made ready and stale results removed;
2. **reference**: from a file, or pre-registered frames of the recording;
3. **batch plan**: batches of ``buffer_size`` frames, the unit of the method
   (the flow initialization and the optional reference update change
   between batches; the temporal filter does not cross batch borders), each
   read and computed in chunks, so memory is bounded by the chunk;
4. **initial flow**: the mean flow of the first frames;
5. **batches**: flows, warped frames, valid masks and statistics, written
   behind the computation while the next chunk is read ahead;
6. **record**: ``compensate.json`` last, which marks the set complete.

Outputs (:mod:`frkit.layout`): ``compensated.HDF5``, ``idx.hdf``, optionally
``w.h5``, ``statistics.npz``, ``reference_frame.npy`` and the record. Each is
written under a ``.partial`` name and renamed when complete.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import layout
from ._version import __version__
from .accumulate import add_frames
from .binned import binned
from .engine import RigidInit
from .errors import InputError, OptionError
from .flow.params import FlowParams
from .flow.policy import STAT_NAMES
from .flow_time import SMOOTHING_CHOICES, StreamingFlowFilter, choose_smoothing, context_frames, flow_noise
from .io.atomic import save_npy_atomic, save_npz_atomic, write_json_atomic
from .io.describe import describe_input  # its home is light: fr-qc and the planner need no engine
from .io.handoff import handoff_outputs
from .io.writers import Hdf5VideoWriter
from .noise import ALPHA_FLOOR, NOISE_FRAMES, auto_alpha, auto_flow_smoothing, channel_noise_variances, \
    shot_noise_copies, weighted_variance
from .options import FLOW_SMOOTHING_AUTO, QUALITY_MIN_LEVEL
from .pipelining import BackgroundWriter, ReadAhead
from .preprocess import Preprocessor, check_finite, expand_sigma
from .reference import build_reference, default_reference_frames
from .stage1_files import prepare_outputs as _prepare_outputs, progress_counter as _progress_counter, \
    remove_outputs as _remove_outputs

__all__ = ["compensate_recording", "flow_params", "flow_smoothing", "describe_input"]

#: frames averaged for the first flow initialization / carried between batches
INIT_FRAMES_FIRST = 22
INIT_FRAMES_CARRY = 20
#: frames averaged for the reference update
REFERENCE_UPDATE_FRAMES = 100
#: noisy copies of the reference whose flows measure the flow's estimation noise (``--flow-smoothing auto``)
NOISE_COPIES = 16


def flow_params(params, alpha=None) -> FlowParams:
    """The solver parameters of fr-compensate's ``params`` (the quality preset resolved; ``alpha``
    replaces ``auto``)."""
    min_level = params.min_level if params.min_level >= 0 else QUALITY_MIN_LEVEL[params.quality]
    if params.alpha == "auto" or alpha is not None:
        params = params.replace(alpha=alpha if alpha is not None else (ALPHA_FLOOR, ALPHA_FLOOR))
    return FlowParams.from_values(params, min_level, params.weight)


class _Timer:
    """Accumulated wall time per pipeline stage (reported in the record)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    def add(self, name, seconds):
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def __call__(self, name):
        timer = self

        class _Span:
            def __enter__(self):
                self.t0 = time.perf_counter()

            def __exit__(self, *exc):
                timer.add(name, time.perf_counter() - self.t0)

        return _Span()


@dataclass
class _Run:
    """What the steps of one compensation share."""

    reader: object
    outdir: Path
    params: object
    engine: object
    flow: FlowParams
    sigma: np.ndarray
    chunk: int
    timer: _Timer
    out_dtype: np.dtype
    advance: object = None
    alpha: tuple | None = None  # as measured (--alpha auto) or given
    flow_smoothing: float = 0.0  # temporal sigma of the flows (frames): as given, or auto's without a choice
    smoothing_plan: list = None  # (translation, rest) sigma of each batch, as applied
    noise_channels: np.ndarray | None = None  # measured noise variance per channel (--alpha auto)
    flow_noise: object = None  # the flow's estimation noise (frkit.flow_time.FlowNoise), when measured

    @property
    def shape(self):
        return self.reader.shape


def compensate_recording(reader, outdir: Path, params, engine, progress=None, input_info: dict | None = None) -> dict:
    """Compensate the motion of ``reader``'s recording into ``outdir``; returns a summary.

    ``reader`` yields ``(T, H, W, C)`` raw frames (``params.bin_size`` is
    applied here); ``params`` are fr-compensate's values
    (:data:`frkit.options.COMPENSATE`); ``engine`` a :class:`frkit.engine.Engine`;
    ``progress`` an optional callable taking ``(done, total)`` frame counts.
    Raises :class:`FrkitError` subclasses for user errors, leaving no
    final-named output behind.
    """
    t_start = time.perf_counter()
    run, ref_raw, ref_indices, noise = _open_run(reader, outdir, params, engine)
    reader = run.reader
    n_frames, height, width, n_ch = reader.shape
    _prepare_outputs(run.outdir)
    stale = handoff_outputs(params.output_format, run.outdir, Path(layout.COMPENSATED).stem, reader.shape)
    _remove_outputs(run.outdir, [p.relative_to(run.outdir) for p in stale])
    run.advance = _progress_counter(progress, (len(ref_indices) if len(ref_indices) > 1 else 0)
                                    + (min(INIT_FRAMES_FIRST, n_frames) if params.update_initialization_w else 0)
                                    + n_frames)
    writers = []
    try:
        with run.timer("reference"):
            if ref_raw is None:
                ref_raw = build_reference(reader, ref_indices, run.sigma, run.flow, engine,
                                          params.channel_normalization, run.chunk, progress=run.advance)
        if np.ptp(ref_raw) == 0:
            raise InputError(f"{reader.path}: the reference frame is constant (all pixels equal); nothing to register")
        writers = _open_writers(run)
        translation = np.empty((n_frames, 2))
        stats = _run_batches(run, ref_raw, writers, translation=translation)
        with run.timer("write"):  # data first, the record last (it marks the set complete)
            save_npz_atomic(run.outdir / layout.STATISTICS, **{k: stats[:, i] for i, k in enumerate(STAT_NAMES)})
            save_npy_atomic(run.outdir / layout.REFERENCE, ref_raw)
            for wr in reversed(writers):
                wr.commit()
        writers = []
        handoff = _write_handoff(run, translation, (input_info or {}).get("path"))
    except BaseException:
        for wr in writers:
            wr.abort()
        _remove_outputs(run.outdir, list(layout.COMPENSATE_OUTPUTS) + [p.relative_to(run.outdir) for p in stale])
        raise
    summary = {
        "frames": n_frames,
        "shape": [n_frames, height, width, n_ch],
        "input_dtype": str(np.dtype(reader.dtype)),
        "output_dtype": str(run.out_dtype),
        "min_level": run.flow.min_level,
        "alpha": list(run.flow.alpha),
        "noise_variance": noise,
        "flow_smoothing": run.flow_smoothing,
        "flow_smoothing_per_batch": run.smoothing_plan,
        "flow_noise": run.flow_noise.as_record() if run.flow_noise else None,
        "reference_frames": len(ref_indices) if ref_indices else (0 if params.reference_file else 1),
        "mean_displacement": float(stats[:, 0].mean()),
        "max_displacement": float(stats[:, 1].max()),
        "handoff": handoff,
    }
    return _write_record(run, summary, t_start, input_info or {"path": str(reader.path)})


# -- the steps ---------------------------------------------------------------------------------------------------

def _open_run(reader, outdir, params, engine, alpha=None, noise=None):
    """``(run, raw reference or None, reference frame indices, noise variance)`` before any output is written.

    ``alpha`` and ``noise`` (a time chunk: those its shared reference step
    measured) skip the reference source and the noise measurement.
    """
    reader = binned(reader, params.bin_size)
    _, height, width, n_ch = reader.shape
    _check_recording(reader)
    if params.reference_file and params.reference_frames:
        raise OptionError("give --reference-frames or --reference, not both")
    noise_channels = None
    if alpha is None:
        ref_raw, ref_indices = _reference_source(reader, params)
        noise_channels, alpha = _regularization(reader, params, ref_indices)
        noise = None if noise_channels is None else weighted_variance(noise_channels, params.weight)
    else:
        ref_raw, ref_indices = None, []
    run = _Run(reader, Path(outdir), params, engine, flow_params(params, alpha).for_channels(n_ch),
               expand_sigma(params.sigma, n_ch),
               params.chunk_size or engine.preferred_chunk((height, width, n_ch)), _Timer(),
               np.dtype(reader.dtype) if params.output_dtype == "same" else np.dtype(params.output_dtype))
    run.alpha = alpha
    run.noise_channels = noise_channels
    run.flow_smoothing = flow_smoothing(params, noise)
    return run, ref_raw, ref_indices, noise


def flow_smoothing(params, noise: float | None) -> float:
    """The temporal sigma (frames) of the flows: as given, or for ``auto`` from the measured ``noise``
    variance (:func:`frkit.noise.auto_flow_smoothing`, up to the preset's :data:`FLOW_SMOOTHING_AUTO`):
    0 turns smoothing off, above 0 each batch chooses its own (:func:`batch_smoothing`) and this is
    the sigma of a batch with nothing to choose from; none when the noise was not measured (a given
    ``--alpha``: pyflowreg's behaviour)."""
    if params.flow_smoothing != "auto":
        return float(params.flow_smoothing)
    return 0.0 if noise is None else auto_flow_smoothing(noise, FLOW_SMOOTHING_AUTO[params.quality])


def batch_smoothing(run: "_Run", sample) -> tuple[float, float]:
    """``(translation, rest)`` temporal sigmas of a batch's flows.

    With ``--flow-smoothing auto`` on a noisy recording (the noise-decided
    sigma above 0) and the flow's noise measured (:func:`_flow_noise`) they
    are chosen by :func:`frkit.flow_time.choose_smoothing` from ``sample``:
    the flows the batch's initialization was averaged from (the first
    frames, or the last frames of the previous batch), so the choice travels
    with the initialization and time chunks make it alike. Otherwise (or
    with no sample: ``--no-update-initialization-w``) both are the run's
    sigma.
    """
    sigma = run.flow_smoothing
    if run.flow_noise is None or sample is None:
        return sigma, sigma
    return choose_smoothing(sample, run.flow_noise)


def _flow_noise(run: "_Run", ref_raw: np.ndarray, pre, pyramid, rigid):
    """The flow's estimation noise (:class:`frkit.flow_time.FlowNoise`), when ``auto`` smoothing chooses.

    Measured, not modelled: the flows of :data:`NOISE_COPIES` copies of the
    reference with the recording's measured noise
    (:func:`frkit.noise.shot_noise_copies`), preprocessed as one batch,
    whose true flow is zero. None when the smoothing is given, off, or has
    no sample to choose from.
    """
    if (run.params.flow_smoothing != "auto" or run.flow_smoothing == 0 or run.noise_channels is None
            or not run.params.update_initialization_w):
        return None
    copies = shot_noise_copies(ref_raw, run.noise_channels, run.params.channel_normalization, NOISE_COPIES)
    flows = []
    with run.timer("flow_noise"):
        for a in range(0, NOISE_COPIES, run.chunk):
            b = min(NOISE_COPIES, a + run.chunk)
            src = pre.temporal(copies, np.arange(a, b), NOISE_COPIES, 0) if pre.temporal_radius() else copies[a:b]
            proc = run.engine.preprocess(src, pre)
            flows.append(run.engine.to_host(run.engine.flows(pyramid, proc, None, rigid)))
    return flow_noise(np.concatenate(flows), 2 * pre.temporal_radius())


def _check_recording(reader) -> None:
    n_frames, height, width, _ = reader.shape
    if n_frames < 2:
        raise InputError(f"{reader.path}: has {n_frames} frame(s); need at least 2")
    if min(height, width) < 8:
        raise InputError(f"{reader.path}: frames are {height}x{width}; need at least 8x8 pixels")


def _reference_source(reader, params):
    """``(raw reference or None, frame indices)``: a reference file, or the frames to pre-register."""
    n_frames = reader.shape[0]
    if params.reference_file:
        return _load_reference_file(params.reference_file, reader.shape), []
    if params.reference_frames:
        indices = [i for i in params.reference_frames if i < n_frames]
        if not indices:
            raise OptionError(f"--reference-frames: no index is below the frame count ({n_frames})")
        return None, indices
    return None, default_reference_frames(n_frames)


def _regularization(reader, params, ref_indices):
    """``(noise variance per channel, alpha)``: with ``--alpha auto``, measured on the reference frames (or
    the first frames); otherwise ``(None, the given alpha)``."""
    if params.alpha != "auto":
        return None, tuple(params.alpha)
    frames = (ref_indices or range(reader.shape[0]))[:NOISE_FRAMES]
    sample = reader.read_indices(list(frames))
    check_finite(sample, frames, reader.path)
    per_channel = channel_noise_variances(sample, params.channel_normalization)
    return per_channel, (auto_alpha(weighted_variance(per_channel, params.weight)),) * 2


def _load_reference_file(path: str, shape) -> np.ndarray:
    from .io import load_image  # local: only needed for --reference

    try:
        ref = np.asarray(load_image(path), dtype=np.float64)
    except FileNotFoundError:
        raise InputError(f"{path}: reference image not found") from None
    if ref.ndim == 2:
        ref = ref[..., None]
    _, h, w, c = shape
    if ref.shape[:2] != (h, w) or ref.shape[2] != c:
        raise InputError(f"{path}: reference is {ref.shape[0]}x{ref.shape[1]} with {ref.shape[2]} channel(s), "
                         f"the recording is {h}x{w} with {c}")
    if not np.isfinite(ref).all():
        raise InputError(f"{path}: reference contains NaN or Inf")
    return ref


def _open_writers(run: _Run) -> list:
    """The video, valid-mask and (with ``save_w``) flow writers, in that order."""
    _, height, width, n_ch = run.shape
    writers = [Hdf5VideoWriter(run.outdir / layout.COMPENSATED, n_ch, height, width, run.out_dtype,
                               dataset_names=layout.channel_datasets(n_ch))]
    writers.append(Hdf5VideoWriter(run.outdir / layout.VALID_IDX, 1, height, width, np.uint8,
                                   dataset_names=[layout.VALID_IDX_DATASET]))
    if run.params.save_w:
        writers.append(Hdf5VideoWriter(run.outdir / layout.FLOW, 2, height, width, np.float32,
                                       dataset_names=list(layout.FLOW_DATASETS)))
    return writers


def _batch_plan(n_frames: int, buffer_size: int, chunk: int, frames: tuple[int, int] | None = None):
    """Batches ``(b0, b1)`` that hold frames of ``frames = (start, stop)`` (default: all) and, per batch,
    its chunks ``(b0, b1, a, b)`` clipped to ``frames`` (the batch borders stay those of the whole
    recording: a time chunk computes its frames exactly as the whole run does)."""
    start, stop = frames or (0, n_frames)
    batches = [(b0, min(n_frames, b0 + buffer_size)) for b0 in range(0, n_frames, buffer_size)
               if b0 < stop and min(n_frames, b0 + buffer_size) > start]
    return batches, {batch: _spans(max(start, batch[0]), min(stop, batch[1]), *batch, chunk) for batch in batches}


def _spans(first, last, b0, b1, chunk):
    return [(b0, b1, a, min(last, a + chunk)) for a in range(first, last, chunk)]


def _loader(run: _Run, pre: Preprocessor):
    """``load(span)``: raw frames ``[a, b)`` and the frames to preprocess (within batch ``[b0, b1)``)."""
    t_radius = pre.temporal_radius()
    reader = run.reader

    def load(span):
        b0, b1, a, b = span
        t0 = time.perf_counter()
        lo, hi = max(b0, a - t_radius), min(b1, b + t_radius)
        frames = reader.read(lo, hi)
        check_finite(frames, range(lo, hi), reader.path)
        raw = frames[a - lo:b - lo]
        src = pre.temporal(frames, np.arange(a - b0, b - b0), b1 - b0, lo - b0) if t_radius else raw
        run.timer.add("read", time.perf_counter() - t0)
        return raw, src

    return load


def _initial_flow(run: _Run, pyramid, pre, load, rigid):
    """``(mean flow (H, W, 2), the flows (n0, H, W, 2) it averages)`` of the first frames of the first
    batch (``(None, None)`` when switched off)."""
    if not run.params.update_initialization_w:
        return None, None
    n_frames, height, width, _ = run.shape
    first_batch_end = min(n_frames, run.params.buffer_size)
    n0 = min(INIT_FRAMES_FIRST, first_batch_end)
    acc = np.zeros((height, width, 2))
    sample = []
    with ReadAhead(_spans(0, n0, 0, first_batch_end, run.chunk), load) as chunks:
        for (_, _, a, b), (_, src) in chunks:
            with run.timer("preprocess"):
                proc = run.engine.preprocess(src, pre)
            with run.timer("flow"):
                sample.append(run.engine.to_host(run.engine.flows(pyramid, proc, None, rigid)))
                add_frames(acc, sample[-1])
            run.advance(b - a)
    return acc / n0, np.concatenate(sample)


def _flow_setup(run: _Run, ref_raw: np.ndarray):
    """``(preprocessor, preprocessed reference, its pyramid, rigid init or None, frame loader)``."""
    pre = Preprocessor.from_reference(ref_raw, run.sigma, run.params.channel_normalization)
    ref_proc = pre.spatial(ref_raw.astype(np.float32))
    pyramid = run.engine.prepare(ref_proc, run.flow)
    rigid = RigidInit(run.params.cc_upsample) if run.params.cc_initialization else None
    return pre, ref_proc, pyramid, rigid, _loader(run, pre)


def _carried_flow(run: _Run, batch, flows_of) -> tuple[np.ndarray, np.ndarray]:
    """``(the initialization carried out of batch = (b0, b1), the flows it averages)``: the mean flow of its
    last frames, and those flows.

    ``flows_of(span)`` gives the host flows of a span's frames. Used by the
    initialization chain of time chunks (:func:`frkit.chunks.initialization_chain`);
    the whole run sums the same frames in the same order as it computes them
    (:func:`_run_batches`), so both give the same bits.
    """
    b0, b1 = batch
    carry_from = b1 - min(INIT_FRAMES_CARRY, b1 - b0)
    carry_sum = np.zeros(run.shape[1:3] + (2,))
    sample = []
    for span in _spans(carry_from, b1, b0, b1, run.chunk):
        sample.append(flows_of(span))
        add_frames(carry_sum, sample[-1])
    return carry_sum / (b1 - carry_from), np.concatenate(sample)


def _run_batches(run: _Run, ref_raw: np.ndarray, writers, frames: tuple[int, int] | None = None,
                 initializations=None, translation: np.ndarray | None = None) -> np.ndarray:
    """Correct every batch into ``writers``; returns the per-frame statistics ``(T, 6)`` and fills
    ``translation`` ``(T, 2)``, when given, with each frame's mean flow (u, v), and
    ``run.smoothing_plan`` with each batch's flow smoothing (:func:`batch_smoothing`).

    A time chunk passes ``frames = (start, stop)``, ``initializations``,
    the flow initialization of the first batches of the whole recording
    (:func:`frkit.chunks.initialization_chain`; ``None`` entries when
    switched off), at least those a chunk from ``start`` needs
    (:func:`frkit.chunks.initialized_batches`), and ``run.smoothing_plan``
    of the same batches: the batches then need nothing from the frames
    before ``start``; later batches carry both on as a whole run does. The
    temporal filter reads its context from the recording.
    """
    engine, params, timer = run.engine, run.params, run.timer
    n_frames, height, width, _ = run.shape
    start, stop = frames or (0, n_frames)
    pre, ref_proc, pyramid, rigid, load = _flow_setup(run, ref_raw)
    video, idx = writers[0], writers[1]
    wfile = writers[2] if len(writers) > 2 else None

    if initializations is None:
        run.flow_noise = _flow_noise(run, ref_raw, pre, pyramid, rigid)
        w_init, sample = _initial_flow(run, pyramid, pre, load, rigid)
        run.smoothing_plan = [batch_smoothing(run, sample)]
    stats = np.empty((stop - start, len(STAT_NAMES)))
    # the temporal flow filter needs the flows of a few frames beyond a time chunk (within its batches)
    context = context_frames(start, stop, params.buffer_size, n_frames,
                             _context_sigmas(run, start, stop) if initializations is not None else 0.0)
    batches, spans = _batch_plan(n_frames, params.buffer_size, run.chunk, context)

    def output(a, flows_dev, raw):
        """Warp and write frames ``[a, a + len(raw))`` by their (smoothed) flows, those in ``[start, stop)``."""
        lo, hi = max(a, start), min(a + len(raw), stop)
        if hi <= lo:
            return
        flows_dev, raw = flows_dev[lo - a:hi - a], raw[lo - a:hi - a]
        with timer("warp"):
            reg, valid, st = engine.warp_output(raw, flows_dev, ref_raw, params.interpolation, run.out_dtype)
        stats[lo - start:hi - start] = st
        if translation is not None:
            translation[lo - start:hi - start] = engine.to_host(flows_dev.mean(axis=(1, 2)))
        # flows come back to the host only where they are needed
        flows = engine.to_host(flows_dev) if wfile is not None else None
        mask = (valid[..., None] * np.uint8(255)).astype(np.uint8)
        background.submit(_append_job(timer, video, reg, idx, mask, wfile, flows))
        run.advance(hi - lo)

    # I/O overlaps compute: the next chunk is read and the last one written
    # while this one is computed (the GPU path depends on it)
    with ReadAhead([sp for batch in batches for sp in spans[batch]], load) as chunks, \
            BackgroundWriter() as background:
        chunk_iter = iter(chunks)
        for b0, b1 in batches:
            k = b0 // params.buffer_size
            if initializations is not None and k < len(initializations):
                w_init = initializations[k]
            # the initialization of the next batch is carried out of this one unless it is given
            carry = initializations is None or k + 1 >= len(initializations)
            carry_from = b1 - min(INIT_FRAMES_CARRY, b1 - b0)
            update_from = b1 - min(REFERENCE_UPDATE_FRAMES, b1 - b0)
            carry_sum = np.zeros((height, width, 2))
            carried = []
            ref_update_sum = None
            smoother = StreamingFlowFilter(run.smoothing_plan[b0 // params.buffer_size], b0, b1)
            for _ in spans[(b0, b1)]:
                (_, _, a, b), (raw, src) = next(chunk_iter)
                with timer("preprocess"):
                    proc = engine.preprocess(src, pre)
                with timer("flow"):
                    flows_dev = engine.flows(pyramid, proc, w_init, rigid)
                    engine.synchronize()
                # the initialization carried on and the reference update use the flows as estimated
                if carry and b > carry_from:
                    s = max(a, carry_from)
                    carried.append(engine.to_host(flows_dev[s - a:]))
                    add_frames(carry_sum, carried[-1])
                if params.update_reference and b > update_from:
                    s = max(a, update_from)
                    with timer("reference_update"):
                        warped = engine.to_host(engine.warp_planar(proc[s - a:], flows_dev[s - a:], ref_proc,
                                                                   params.interpolation))
                    ref_update_sum = add_frames(ref_update_sum, warped)
                with timer("flow_smoothing"):
                    pieces = smoother.push(a, flows_dev, raw)
                for piece in pieces:
                    output(*piece)
            with timer("flow_smoothing"):
                pieces = smoother.finish()
            for piece in pieces:
                output(*piece)
            # the next batch's initialization and smoothing, when this run computed all the frames they come
            # from (a time chunk that ends inside the batch did not, and does not need them)
            if carry and b1 < n_frames and sum(len(c) for c in carried) == b1 - carry_from:
                if params.update_initialization_w:
                    w_init = carry_sum / (b1 - carry_from)
                if len(run.smoothing_plan) == k + 1:
                    run.smoothing_plan.append(batch_smoothing(run, np.concatenate(carried)
                                                              if params.update_initialization_w else None))
            if params.update_reference and ref_update_sum is not None:
                ref_proc = (ref_update_sum / (b1 - update_from)).astype(np.float32)
                pyramid = engine.prepare(ref_proc, run.flow)
        background.flush()
    return stats


def _context_sigmas(run: _Run, start: int, stop: int) -> tuple:
    """The sigmas a time chunk's first and last batch smooth with: as planned, or, for a batch the chunk
    will choose for itself, the widest it may choose."""
    widest = max(SMOOTHING_CHOICES) if run.flow_noise is not None else run.flow_smoothing
    plan = run.smoothing_plan
    return tuple(x for k in (start // run.params.buffer_size, (stop - 1) // run.params.buffer_size)
                 for x in (plan[k] if k < len(plan) else (widest,)))


def _write_handoff(run: _Run, translation: np.ndarray, source) -> list[str]:
    """The corrected video once more in ``--output-format`` (:mod:`frkit.io.handoff`), from compensated.HDF5.

    For NWB, ``--save-w`` also puts the flow fields and the valid masks in.
    """
    from contextlib import ExitStack

    from .io import open_video
    from .io.handoff import export_video

    params = run.params
    if params.output_format == "hdf5":
        return []
    with run.timer("handoff"), ExitStack() as stack:
        video = stack.enter_context(open_video(run.outdir / layout.COMPENSATED))
        extras = {}
        if params.output_format == "nwb" and params.save_w:
            extras["flow"] = stack.enter_context(open_video(run.outdir / layout.FLOW,
                                                            datasets=list(layout.FLOW_DATASETS)))
            extras["valid_mask"] = stack.enter_context(open_video(run.outdir / layout.VALID_IDX))
        return export_video(video, params.output_format, run.outdir, Path(layout.COMPENSATED).stem,
                            rate=params.frame_rate, source=source, translation=translation, extras=extras,
                            metadata=params.nwb_template)


def _append_job(timer, video, reg, idx, mask, wfile, flows):
    def job():
        t0 = time.perf_counter()
        video.append(reg)
        idx.append(mask)
        if wfile is not None:
            wfile.append(flows)
        timer.add("write", time.perf_counter() - t0)

    return job


def _write_record(run: _Run, summary: dict, t_start: float, input_info: dict) -> dict:
    """``compensate.json``: the parameters as applied, the input, the summary; written last."""
    elapsed = time.perf_counter() - t_start
    summary.update({
        "elapsed_s": elapsed,
        "frames_per_s": summary["frames"] / elapsed if elapsed > 0 else math.inf,
        "stage_seconds": {k: round(v, 3) for k, v in run.timer.seconds.items()},
        "engine": run.engine.describe(),
    })
    parameters = run.params.record()
    parameters.update(workers=run.engine.workers, chunk_size=run.chunk)  # as applied
    record = {
        "tool": "fr-compensate",
        "frkit_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "input": input_info,
        layout.RECORD_PARAMETERS: parameters,
        layout.RECORD_RESULT_PARAMETERS: run.params.record(only_results=True),
        "outputs": [n for n in layout.COMPENSATE_OUTPUTS if (run.outdir / n).exists() or n == layout.RECORD],
        "summary": summary,
    }
    write_json_atomic(run.outdir / layout.RECORD, json.loads(json.dumps(record)))
    return summary

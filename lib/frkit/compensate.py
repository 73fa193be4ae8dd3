"""Motion compensation of one recording, streamed from file to files.

The recording is processed in batches of ``buffer_size`` frames (the unit of
the method: the flow initialization and the optional reference update change
between batches, and the temporal filter does not cross batch borders). Each
batch is read and computed in small chunks, so memory is bounded by the
chunk, not by the batch or the recording.

Outputs (``layout.py``): ``compensated.HDF5``, ``idx.hdf``, optionally
``w.h5``, ``statistics.npz``, ``reference_frame.npy`` and the record
``compensate.json``. Each is written under a ``.partial`` name and renamed
when complete; the record is renamed last.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import layout
from ._version import __version__
from .accumulate import add_frames
from .engine import RigidInit
from .errors import InputError, OptionError, OutputError
from .flow.params import QUALITY_MIN_LEVEL, FlowParams
from .flow.warp import STAT_NAMES
from .io.atomic import partial_path, save_npy_atomic, save_npz_atomic, write_json_atomic
from .io.writers import Hdf5VideoWriter
from .pipelining import BackgroundWriter, ReadAhead
from .preprocess import Preprocessor, check_finite, expand_sigma
from .reference import build_reference, default_reference_frames

__all__ = ["CompensateOptions", "compensate_recording", "OUTPUT_DTYPES"]

#: ``--output-dtype`` choices besides ``same`` (the input dtype)
OUTPUT_DTYPES = ("same", "uint8", "uint16", "int16", "int32", "float32", "float64")

#: frames averaged for the first flow initialization / carried between batches
INIT_FRAMES_FIRST = 22
INIT_FRAMES_CARRY = 20
#: frames averaged for the reference update
REFERENCE_UPDATE_FRAMES = 100


@dataclass
class CompensateOptions:
    """Options of one compensation run (the command-line options of fr-compensate)."""

    alpha: tuple[float, float] = (1.5, 1.5)
    weight: tuple[float, ...] = (0.5, 0.5)
    levels: int = 100
    min_level: int = -1
    quality: str = "quality"
    eta: float = 0.8
    update_lag: int = 5
    iterations: int = 50
    a_smooth: float = 1.0
    a_data: float = 0.45
    sigma: tuple[tuple[float, float, float], ...] = ((1.0, 1.0, 0.1), (1.0, 1.0, 0.1))
    bin_size: int = 1
    buffer_size: int = 400
    reference_frames: tuple[int, ...] | None = None
    reference_file: str | None = None
    update_reference: bool = False
    update_initialization_w: bool = True
    cc_initialization: bool = False
    cc_up: int = 1
    channel_normalization: str = "joint"
    interpolation: str = "cubic"
    save_w: bool = False
    output_dtype: str = "same"
    workers: int = 0
    chunk_size: int = 0
    extra: dict = field(default_factory=dict)

    def validate(self) -> "CompensateOptions":
        def need(cond, msg):
            if not cond:
                raise OptionError(msg)

        need(self.quality in QUALITY_MIN_LEVEL, f"--quality must be one of {', '.join(QUALITY_MIN_LEVEL)}")
        need(self.min_level >= -1, "--min-level must be >= 0 (or -1 for the preset)")
        need(len(self.alpha) == 2 and min(self.alpha) > 0, "--alpha must be positive")
        need(0 < self.eta <= 1, "--eta must be in (0, 1]")
        need(self.levels >= 1, "--levels must be >= 1")
        need(self.iterations >= 1, "--iterations must be >= 1")
        need(self.update_lag >= 1, "--update-lag must be >= 1")
        need(0 < self.a_data <= 1, "--a-data must be in (0, 1]")
        need(self.a_smooth > 0, "--a-smooth must be > 0")
        need(len(self.weight) >= 1 and all(w >= 0 for w in self.weight) and sum(self.weight) > 0,
             "--weight needs non-negative channel weights with a positive sum")
        need(self.bin_size >= 1, "--bin-size must be >= 1")
        need(self.buffer_size >= 1, "--buffer-size must be >= 1")
        need(self.cc_up >= 1, "--cc-up must be >= 1")
        need(self.channel_normalization in ("joint", "separate"), "--channel-normalization must be joint or separate")
        need(self.interpolation in ("cubic", "linear"), "--interpolation must be cubic or linear")
        need(self.output_dtype in OUTPUT_DTYPES, f"--output-dtype must be one of {', '.join(OUTPUT_DTYPES)}")
        need(not (self.reference_frames and self.reference_file), "give --reference-frames or --reference, not both")
        if self.reference_frames is not None:
            need(len(self.reference_frames) >= 1 and min(self.reference_frames) >= 0,
                 "--reference-frames needs at least one frame index >= 0")
        try:
            expand_sigma(self.sigma, 1)
        except ValueError as exc:
            raise OptionError(f"--sigma: {exc}") from None
        return self

    @property
    def effective_min_level(self) -> int:
        return self.min_level if self.min_level >= 0 else QUALITY_MIN_LEVEL[self.quality]

    def flow_params(self) -> FlowParams:
        return FlowParams(alpha=tuple(float(a) for a in self.alpha), levels=self.levels,
                          min_level=self.effective_min_level, eta=self.eta, update_lag=self.update_lag,
                          iterations=self.iterations, a_smooth=self.a_smooth, a_data=(self.a_data,),
                          weights=tuple(float(w) for w in self.weight))

    def to_record(self) -> dict:
        d = asdict(self)
        d.pop("extra")
        d["min_level_effective"] = self.effective_min_level
        return d

    def result_parameters(self) -> dict:
        """The options that change the results (not workers or chunking), JSON-normalized."""
        d = self.to_record()
        for k in ("workers", "chunk_size"):
            d.pop(k)
        return json.loads(json.dumps(d, default=_json_default))


_INT_FIELDS = ("levels", "min_level", "update_lag", "iterations", "bin_size", "buffer_size", "cc_up", "workers")
_FLOAT_FIELDS = ("eta", "a_smooth", "a_data")
_BOOL_FIELDS = ("update_reference", "update_initialization_w", "cc_initialization", "save_w")
_STR_FIELDS = ("quality", "channel_normalization", "interpolation", "output_dtype", "reference_file")


def options_from_values(values: dict, where: str = "config") -> dict:
    """:class:`CompensateOptions` fields from plain values (TOML/JSON types).

    ``alpha`` may be a number or two; ``weight`` a number or a list;
    ``sigma`` one ``[rows, cols, time]`` row or a list of rows;
    ``reference_frames`` a list of indices or ``"START:STOP"``.
    """

    def bad(key, want):
        return OptionError(f"{where}: '{key}' must be {want}, not {values[key]!r}")

    def number(x):
        return isinstance(x, (int, float)) and not isinstance(x, bool)

    out = {}
    for key, v in values.items():
        if key in _INT_FIELDS:
            if not isinstance(v, int) or isinstance(v, bool):
                raise bad(key, "an integer")
            out[key] = v
        elif key in _FLOAT_FIELDS:
            if not number(v):
                raise bad(key, "a number")
            out[key] = float(v)
        elif key in _BOOL_FIELDS:
            if not isinstance(v, bool):
                raise bad(key, "true or false")
            out[key] = v
        elif key in _STR_FIELDS:
            if not isinstance(v, str):
                raise bad(key, "a string")
            out[key] = v
        elif key == "alpha":
            vals = [v] if number(v) else v
            if not isinstance(vals, (list, tuple)) or len(vals) not in (1, 2) or not all(map(number, vals)):
                raise bad(key, "a number or two")
            out[key] = (float(vals[0]), float(vals[-1]))
        elif key == "weight":
            vals = [v] if number(v) else v
            if not isinstance(vals, (list, tuple)) or not vals or not all(map(number, vals)):
                raise bad(key, "a number or a list of numbers")
            out[key] = tuple(float(x) for x in vals)
        elif key == "sigma":
            rows = [v] if isinstance(v, (list, tuple)) and v and all(map(number, v)) else v
            if (not isinstance(rows, (list, tuple)) or not rows
                    or not all(isinstance(r, (list, tuple)) and len(r) == 3 and all(map(number, r)) for r in rows)):
                raise bad(key, "[rows, cols, time] or a list of such rows")
            out[key] = tuple(tuple(float(x) for x in r) for r in rows)
        elif key == "reference_frames":
            if isinstance(v, str) and ":" in v:
                a, _, b = v.partition(":")
                if not (a.strip().isdigit() or not a.strip()) or not b.strip().isdigit():
                    raise bad(key, "START:STOP or a list of frame indices")
                out[key] = tuple(range(int(a or 0), int(b)))
            elif isinstance(v, (list, tuple)) and v and all(isinstance(i, int) and i >= 0 for i in v):
                out[key] = tuple(v)
            else:
                raise bad(key, "START:STOP or a list of frame indices")
        else:
            raise OptionError(f"{where}: '{key}' is not an fr-compensate option")
    return out


def _output_dtype(option: str, input_dtype) -> np.dtype:
    return np.dtype(input_dtype) if option == "same" else np.dtype(option)


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


class _Timer:
    """Accumulated wall time per pipeline stage (reported in the record)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    def __call__(self, name):
        timer = self

        class _Span:
            def __enter__(self):
                self.t0 = time.perf_counter()

            def __exit__(self, *exc):
                timer.seconds[name] = timer.seconds.get(name, 0.0) + time.perf_counter() - self.t0

        return _Span()


def _chunk_size(opts: CompensateOptions, engine, frame_shape) -> int:
    if opts.chunk_size > 0:
        return opts.chunk_size
    preferred = getattr(engine, "preferred_chunk", None)
    if preferred is not None:
        return preferred(frame_shape)
    h, w, c = frame_shape
    # about 40 bytes per pixel and channel in flight per frame (raw, float32
    # planes, flows, output); keep a chunk under ~256 MB
    per_frame = max(1, h * w * (c * 16 + 24))
    by_memory = max(1, (256 << 20) // per_frame)
    return int(max(1, min(4 * engine.workers, 64, by_memory)))


def compensate_recording(reader, outdir: Path, opts: CompensateOptions, engine, progress=None,
                         input_info: dict | None = None) -> dict:
    """Compensate the motion of ``reader``'s recording into ``outdir``.

    ``reader`` yields ``(T, H, W, C)`` frames (already binned); ``engine`` is
    a :mod:`frkit.engine` engine; ``progress`` an optional callable taking
    ``(done, total)`` frame counts. Returns a summary dict (also stored in
    the record). Raises :class:`FrkitError` subclasses for user errors,
    leaving no final-named output behind.
    """
    opts.validate()
    t_start = time.perf_counter()
    n_frames, height, width, n_ch = reader.shape
    path = reader.path
    if n_frames < 2:
        raise InputError(f"{path}: has {n_frames} frame(s); need at least 2")
    if min(height, width) < 8:
        raise InputError(f"{path}: frames are {height}x{width}; need at least 8x8 pixels")
    out_dtype = _output_dtype(opts.output_dtype, reader.dtype)
    params = opts.flow_params().for_channels(n_ch)
    sigma = expand_sigma(opts.sigma, n_ch)
    timer = _Timer()

    # reference (external file or pre-registered frames)
    if opts.reference_file:
        ref_raw = _load_reference_file(opts.reference_file, reader.shape)
        ref_indices = []
    else:
        if opts.reference_frames:
            ref_indices = [i for i in opts.reference_frames if i < n_frames]
            if not ref_indices:
                raise OptionError(f"--reference-frames: no index is below the frame count ({n_frames})")
        else:
            ref_indices = default_reference_frames(n_frames)
        ref_raw = None

    outdir = Path(outdir)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{outdir}: cannot create output directory ({exc.strerror})") from None
    if not os.access(outdir, os.W_OK | os.X_OK):
        raise OutputError(f"{outdir}: output directory is not writable")
    # a stale result must not survive a failed rerun: remove the record
    # first (it marks a complete set), then the outputs this run replaces
    # (pyflowreg reads compensated.hdf5 before .HDF5: a stale one must go too)
    for name in reversed(layout.COMPENSATE_OUTPUTS + layout.COMPENSATED_ALIASES):
        for p in (outdir / name, partial_path(outdir / name)):
            if p.exists():
                p.unlink()

    chunk = _chunk_size(opts, engine, (height, width, n_ch))
    n_ref_work = len(ref_indices) if len(ref_indices) > 1 else 0
    n_init = min(INIT_FRAMES_FIRST, n_frames) if opts.update_initialization_w else 0
    total_work = n_ref_work + n_init + n_frames
    done = 0

    def advance(k):
        nonlocal done
        done += k
        if progress is not None:
            progress(done, total_work)

    writers = []
    try:
        with timer("reference"):
            if ref_raw is None:
                ref_raw = build_reference(reader, ref_indices, sigma, params, engine,
                                          opts.channel_normalization, chunk, progress=advance)
        if np.ptp(ref_raw) == 0:
            raise InputError(f"{path}: the reference frame is constant (all pixels equal); nothing to register")
        pre = Preprocessor.from_reference(ref_raw, sigma, opts.channel_normalization)
        ref_proc = pre.spatial(ref_raw.astype(np.float32))
        pyramid = engine.prepare(ref_proc, params)
        rigid = RigidInit(opts.cc_up) if opts.cc_initialization else None
        t_radius = pre.temporal_radius()

        video = Hdf5VideoWriter(outdir / layout.COMPENSATED, n_ch, height, width, out_dtype,
                                dataset_names=layout.channel_datasets(n_ch))
        writers.append(video)
        idx = Hdf5VideoWriter(outdir / layout.VALID_IDX, 1, height, width, np.uint8,
                              dataset_names=[layout.VALID_IDX_DATASET])
        writers.append(idx)
        wfile = None
        if opts.save_w:
            wfile = Hdf5VideoWriter(outdir / layout.FLOW, 2, height, width, np.float32,
                                    dataset_names=list(layout.FLOW_DATASETS))
            writers.append(wfile)

        def load(span):
            """Raw frames [a, b) and the frames to preprocess (batch [b0, b1)); runs read-ahead."""
            b0, b1, a, b = span
            t0 = time.perf_counter()
            lo, hi = max(b0, a - t_radius), min(b1, b + t_radius)
            frames = reader.read(lo, hi)
            check_finite(frames, range(lo, hi), path)
            raw = frames[a - lo:b - lo]
            src = pre.temporal(frames, np.arange(a - b0, b - b0), b1 - b0, lo - b0) if t_radius else raw
            timer.seconds["read"] = timer.seconds.get("read", 0.0) + time.perf_counter() - t0
            return raw, src

        def spans(first, last, b0, b1):
            return [(b0, b1, a, min(last, a + chunk)) for a in range(first, last, chunk)]

        # flow initialization from the first frames
        w_init = None
        if opts.update_initialization_w:
            first_batch_end = min(n_frames, opts.buffer_size)
            n0 = min(INIT_FRAMES_FIRST, first_batch_end)
            acc = np.zeros((height, width, 2))
            with ReadAhead(spans(0, n0, 0, first_batch_end), load) as chunks:
                for (_, _, a, b), (_, src) in chunks:
                    with timer("preprocess"):
                        proc = engine.preprocess(src, pre)
                    with timer("flow"):
                        add_frames(acc, engine.to_host(engine.flows(pyramid, proc, None, rigid)))
                    advance(b - a)
            w_init = acc / n0

        stats = np.empty((n_frames, 4))
        batches = [(b0, min(n_frames, b0 + opts.buffer_size)) for b0 in range(0, n_frames, opts.buffer_size)]
        # I/O overlaps compute: the next chunk is read and the last one written
        # while this one is computed (the GPU path depends on it)
        with ReadAhead([sp for b0, b1 in batches for sp in spans(b0, b1, b0, b1)], load) as chunks, \
                BackgroundWriter() as background:
            chunk_iter = iter(chunks)
            for b0, b1 in batches:
                carry_from = b1 - min(INIT_FRAMES_CARRY, b1 - b0)
                update_from = b1 - min(REFERENCE_UPDATE_FRAMES, b1 - b0)
                carry_sum = np.zeros((height, width, 2))
                ref_update_sum = None
                for _ in range(len(spans(b0, b1, b0, b1))):
                    (_, _, a, b), (raw, src) = next(chunk_iter)
                    with timer("preprocess"):
                        proc = engine.preprocess(src, pre)
                    with timer("flow"):
                        flows_dev = engine.flows(pyramid, proc, w_init, rigid)
                        engine.synchronize()
                    with timer("warp"):
                        reg, valid, st = engine.warp_output(raw, flows_dev, ref_raw, opts.interpolation, out_dtype)
                    stats[a:b] = st
                    # flows come back to the host only where they are needed
                    flows = engine.to_host(flows_dev) if wfile is not None else None
                    if b > carry_from:
                        s = max(a, carry_from)
                        tail = flows[s - a:] if flows is not None else engine.to_host(flows_dev[s - a:])
                        add_frames(carry_sum, tail)
                    if opts.update_reference and b > update_from:
                        s = max(a, update_from)
                        with timer("reference_update"):
                            warped = engine.to_host(engine.warp_planar(proc[s - a:], flows_dev[s - a:], ref_proc,
                                                                       opts.interpolation))
                        ref_update_sum = add_frames(ref_update_sum, warped)
                    mask = (valid[..., None] * np.uint8(255)).astype(np.uint8)
                    background.submit(_append_job(timer, video, reg, idx, mask, wfile, flows))
                    advance(b - a)
                if opts.update_initialization_w:
                    w_init = carry_sum / (b1 - carry_from)
                if opts.update_reference and ref_update_sum is not None:
                    ref_proc = (ref_update_sum / (b1 - update_from)).astype(np.float32)
                    pyramid = engine.prepare(ref_proc, params)
            background.flush()

        # commit: data first, the record last (it marks the set complete)
        with timer("write"):
            save_npz_atomic(outdir / layout.STATISTICS, **{k: stats[:, i] for i, k in enumerate(STAT_NAMES)})
            save_npy_atomic(outdir / layout.REFERENCE, ref_raw)
            for wr in reversed(writers):
                wr.commit()
        writers.clear()
    except BaseException:
        for wr in writers:
            wr.abort()
        for name in layout.COMPENSATE_OUTPUTS:
            for p in (outdir / name, partial_path(outdir / name)):
                if p.exists():
                    p.unlink()
        raise

    elapsed = time.perf_counter() - t_start
    summary = {
        "frames": n_frames,
        "shape": [n_frames, height, width, n_ch],
        "input_dtype": str(np.dtype(reader.dtype)),
        "output_dtype": str(out_dtype),
        "reference_frames": len(ref_indices) if ref_indices else (0 if opts.reference_file else 1),
        "mean_displacement": float(stats[:, 0].mean()),
        "max_displacement": float(stats[:, 1].max()),
        "elapsed_s": elapsed,
        "frames_per_s": n_frames / elapsed if elapsed > 0 else math.inf,
        "stage_seconds": {k: round(v, 3) for k, v in timer.seconds.items()},
        "engine": engine.describe(),
    }
    record = {
        "tool": "fr-compensate",
        "frkit_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "input": input_info or {"path": str(path)},
        "parameters": opts.to_record(),
        "result_parameters": opts.result_parameters(),
        "outputs": [n for n in layout.COMPENSATE_OUTPUTS if (outdir / n).exists() or n == layout.RECORD],
        "summary": summary,
    }
    write_json_atomic(outdir / layout.RECORD, json.loads(json.dumps(record, default=_json_default)))
    return summary


def _append_job(timer, video, reg, idx, mask, wfile, flows):
    def job():
        t0 = time.perf_counter()
        video.append(reg)
        idx.append(mask)
        if wfile is not None:
            wfile.append(flows)
        timer.seconds["write"] = timer.seconds.get("write", 0.0) + time.perf_counter() - t0

    return job


def _json_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, (np.ndarray, tuple)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(type(obj).__name__)


def describe_input(path) -> dict:
    """Path, size and modification time of an input file (for the record)."""
    p = Path(path)
    st = p.stat()
    return {"path": str(p.resolve()), "size": st.st_size, "mtime": st.st_mtime}


def with_overrides(opts: CompensateOptions, **kw) -> CompensateOptions:
    return replace(opts, **kw)

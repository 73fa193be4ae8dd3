"""Time chunks: one recording compensated as independent ranges of frames, then joined.

With a fixed reference, frames depend on each other only through

* the temporal prefilter, which never crosses a batch border: a chunk reads
  the frames around its own from the recording (the halo), within the batch;
* the flow initialization carried from one batch to the next (the mean
  flow of the last 20 frames of the previous batch). It is a chain through
  the recording, so it is computed once, in order, by the reference step:
  20 frames of flow per batch (5 % of the work with 400-frame batches), and
  stored for the batches up to the last chunk's start
  (``--initialize-until``, :func:`initialized_batches`; default: every batch). A chunk takes the stored
  initialization of its batches and carries it on, as the whole run does,
  beyond the stored ones: the chain's part after the last chunk's start
  (half of it with 2 chunks) is not computed twice.

The three steps, each a command:

1. :func:`reference_step` (``fr-compensate --reference-only``): the reference,
   the measured smoothness weight and the initialization of every batch,
   under ``<folder>/chunks/`` (:mod:`frkit.layout`), record written last;
2. :func:`compensate_chunk` (``fr-compensate --frames START:STOP``): a partial
   stage-1 folder ``chunks/frames_<start>-<stop>/`` with the standard files
   of its frames and ``chunk.json`` (written last: the chunk is complete);
3. :func:`join` (``python -m frkit.session join FOLDER``): the standard stage-1
   files, frame for frame those of an unchunked run (any chunk borders:
   batch borders only save halo reads), then the chunks are removed.
   It writes the files once more (2000 frames of 256x256 uint16 and their
   mask: 0.4 s, mostly the kernel's writes; the copy itself is ~0.05 s of
   user time, so copying raw HDF5 chunks would gain little). HDF5 virtual
   datasets would need no copy, but a file of them cannot be the unchunked
   run's bytes, and it breaks when the chunk files move or are removed.

Join refuses (nothing written) a missing or incomplete chunk, overlapping
chunks, and a chunk computed with other parameters, for another input or
from another reference.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np

from . import layout
from ._version import __version__
from .errors import InputError, OptionError
from .flow.policy import STAT_NAMES
from .flow_time import FlowNoise  # numpy only: the join stays light
from .io.atomic import commit_partial, partial_path, remove_quietly, save_npy_atomic, save_npz_atomic, \
    write_json_atomic
from .io.writers import Hdf5VideoWriter
from .stage1_files import prepare_outputs as _prepare_outputs, progress_counter as _progress_counter, \
    remove_outputs as _remove_outputs

# frkit.compensate (numba, scipy) is imported inside the steps that compute: the join,
# a process of its own on the critical path of every chunked recording, needs none of it.

__all__ = ["reference_step", "compensate_chunk", "join", "chunk_ranges", "initialization_chain",
           "initialized_batches"]

#: frames copied at once by the join (memory O(block))
JOIN_BLOCK = 64


def chunk_ranges(n_frames: int, chunk_frames: int) -> list[tuple[int, int]]:
    """``[start, stop)`` of each chunk of ``chunk_frames`` frames (0: one chunk, the whole recording)."""
    if chunk_frames <= 0 or chunk_frames >= n_frames:
        return [(0, n_frames)]
    return [(a, min(n_frames, a + chunk_frames)) for a in range(0, n_frames, chunk_frames)]


def _refuse_update_reference(params) -> None:
    if params.update_reference:
        raise OptionError("--update-reference cannot be split into time chunks: the reference changes after "
                          "every batch, so each frame depends on all earlier ones")


def _digest(paths) -> str:
    """sha256 over the bytes of ``paths`` (the shared reference's identity)."""
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _reference_files(folder: Path, with_initialization: bool) -> list[Path]:
    d = Path(folder) / layout.CHUNK_DIR
    return [d / layout.REFERENCE] + ([d / layout.CHUNK_INITIALIZATION] if with_initialization else [])


def initialized_batches(n_frames: int, buffer_size: int, until: int | None) -> int:
    """How many batches (from the first) the reference step stores an initialization for, so that a chunk
    starting at any frame up to ``until`` (the last chunk's start) has all it needs; every batch when
    ``until`` is None.

    A chunk carries the initialization out of its first batch itself when it
    computes that batch's carried frames (the last 20), i.e. when it starts
    at or before them (a chunk on a batch border always does); else it needs
    the next batch's stored too. From there on it carries it on itself.
    """
    from .compensate import INIT_FRAMES_CARRY

    n_batches = -(-n_frames // buffer_size)
    if until is None:
        return n_batches
    k = min(until, n_frames - 1) // buffer_size
    b0, b1 = k * buffer_size, min(n_frames, (k + 1) * buffer_size)
    return min(n_batches, k + 1 + (until > b1 - min(INIT_FRAMES_CARRY, b1 - b0)))


def initialization_chain(run, ref_raw: np.ndarray, path: Path, n_stored: int) -> list:
    """Write ``(n_stored, H, W, 2)`` float64 to ``path``: the flow initialization each of the first
    ``n_stored`` batches starts from (:func:`initialized_batches`); returns their flow smoothing
    (:func:`frkit.compensate.batch_smoothing`).

    The same rule and order of sums as the whole run (:mod:`frkit.compensate`):
    batch 0 starts from the mean flow of the first frames, batch k+1 from
    the mean flow of the last frames of batch k computed from batch k's
    start; each batch's smoothing is chosen from the flows its
    initialization averages. One field in memory; written under a
    ``.partial`` name.
    """
    from .compensate import _batch_plan, _carried_flow, _flow_noise, _flow_setup, _initial_flow, batch_smoothing

    engine = run.engine
    n_frames, height, width, _ = run.shape
    batches = _batch_plan(n_frames, run.params.buffer_size, run.chunk)[0][:n_stored]
    pre, _, pyramid, rigid, load = _flow_setup(run, ref_raw)
    tmp = partial_path(path)
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float64, shape=(len(batches), height, width, 2))
    try:
        run.flow_noise = _flow_noise(run, ref_raw, pre, pyramid, rigid)
        w, sample = _initial_flow(run, pyramid, pre, load, rigid)
        plan = []
        for k, batch in enumerate(batches):
            out[k] = w
            plan.append(batch_smoothing(run, sample))
            if k + 1 == len(batches):
                break

            def flows_of(span, w=w):
                _, src = load(span)
                host = engine.to_host(engine.flows(pyramid, engine.preprocess(src, pre), w, rigid))
                run.advance(span[3] - span[2])
                return host

            with run.timer("initialization"):
                w, sample = _carried_flow(run, batch, flows_of)
        out.flush()
        del out
        commit_partial(tmp, path)
    except BaseException:
        remove_quietly(tmp)
        raise
    return plan


def reference_step(reader, outdir: Path, params, engine, progress=None, input_info: dict | None = None) -> dict:
    """Step 1: the shared reference of a chunked run under ``outdir/chunks/``; returns its record.

    The final stage-1 files of ``outdir`` and every earlier chunk are
    removed: they are being replaced.
    """
    from .compensate import INIT_FRAMES_CARRY, INIT_FRAMES_FIRST, _open_run, batch_smoothing
    from .reference import build_reference

    _refuse_update_reference(params)
    t0 = time.perf_counter()
    run, ref_raw, ref_indices, noise = _open_run(reader, outdir, params, engine)
    n_frames, height, width, n_ch = run.shape
    cdir = run.outdir / layout.CHUNK_DIR
    _prepare_outputs(run.outdir)
    cdir.mkdir(exist_ok=True)
    rec_path = cdir / layout.CHUNK_REFERENCE_RECORD
    files = _reference_files(run.outdir, params.update_initialization_w)
    _remove_outputs(cdir, [layout.CHUNK_REFERENCE_RECORD, layout.REFERENCE, layout.CHUNK_INITIALIZATION])
    for old in cdir.glob("frames_*"):
        shutil.rmtree(old)
    n_stored = initialized_batches(n_frames, params.buffer_size, params.get("initialize_until"))
    run.advance = _progress_counter(progress, (len(ref_indices) if len(ref_indices) > 1 else 0)
                                    + (min(INIT_FRAMES_FIRST, n_frames) if params.update_initialization_w else 0)
                                    + (n_stored - 1) * INIT_FRAMES_CARRY * params.update_initialization_w)
    try:
        with run.timer("reference"):
            if ref_raw is None:
                ref_raw = build_reference(run.reader, ref_indices, run.sigma, run.flow, engine,
                                          params.channel_normalization, run.chunk, progress=run.advance)
        if np.ptp(ref_raw) == 0:
            raise InputError(f"{run.reader.path}: the reference frame is constant (all pixels equal); "
                             "nothing to register")
        if params.update_initialization_w:
            plan = initialization_chain(run, ref_raw, files[1], n_stored)
        else:  # no initialization, no sample to choose from: every batch has the run's sigma
            plan = [batch_smoothing(run, None)] * initialized_batches(n_frames, params.buffer_size, None)
        save_npy_atomic(files[0], ref_raw)
    except BaseException:
        _remove_outputs(cdir, [layout.REFERENCE, layout.CHUNK_INITIALIZATION])
        raise
    parameters = params.record()
    parameters.update(workers=engine.workers, chunk_size=run.chunk)
    record = {
        "tool": "fr-compensate --reference-only",
        "frkit_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "input": input_info or {"path": str(run.reader.path)},
        layout.RECORD_PARAMETERS: parameters,
        layout.RECORD_RESULT_PARAMETERS: params.record(only_results=True),
        "shape": [n_frames, height, width, n_ch],
        "input_dtype": str(np.dtype(run.reader.dtype)),
        "alpha": list(run.alpha),
        "min_level": run.flow.min_level,
        "flow_alpha": list(run.flow.alpha),
        "noise_variance": noise,
        "flow_smoothing": run.flow_smoothing,
        "flow_smoothing_per_batch": plan,
        "flow_noise": run.flow_noise.as_record() if run.flow_noise else None,
        "reference_frames": len(ref_indices) if ref_indices else (0 if params.reference_file else 1),
        "initialization": bool(params.update_initialization_w),
        "initialized_batches": n_stored if params.update_initialization_w else 0,
        "digest": _digest(files),
        "elapsed_s": time.perf_counter() - t0,
        "stage_seconds": {k: round(v, 3) for k, v in run.timer.seconds.items()},
        "engine": engine.describe(),
    }
    write_json_atomic(rec_path, json.loads(json.dumps(record)))
    return record


def read_reference(folder: Path) -> dict:
    """The shared reference record of a chunked stage-1 folder (InputError when there is none)."""
    path = Path(folder) / layout.CHUNK_DIR / layout.CHUNK_REFERENCE_RECORD
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: no shared reference; run fr-compensate --reference-only first") from None
    except ValueError:
        raise InputError(f"{path}: not a valid reference record (rerun fr-compensate --reference-only)") from None
    if not isinstance(record, dict) or "flow_smoothing_per_batch" not in record:  # before smoothing per batch
        raise InputError(f"{path}: a reference record of an older frkit (no flow_smoothing_per_batch); "
                         "rerun fr-compensate --reference-only")
    return record


def _joined_plan(ref: dict, records: list, where) -> list:
    """Each batch's flow smoothing: the shared reference's, then the chunks' own (all agree by construction:
    a disagreement means chunks of different runs)."""
    plan = {k: list(v) for k, v in enumerate(ref["flow_smoothing_per_batch"])}
    for rec in records:
        for k, pair in rec.get("flow_smoothing_per_batch", {}).items():
            if plan.setdefault(int(k), list(pair)) != list(pair):
                raise InputError(f"{where}: chunks disagree on the flow smoothing of batch {k}; "
                                 "run fr-compensate --reference-only and the chunks again")
    return [plan[k] for k in sorted(plan)]


def _same_input(a: dict, b: dict) -> bool:
    return all(a.get(k) == b.get(k) for k in layout.RECORD_INPUT_KEYS)


def _parameter_difference(a: dict, b: dict) -> str:
    keys = [k for k in dict.fromkeys(list(a) + list(b)) if a.get(k) != b.get(k)]
    return ", ".join(f"{k}: {b.get(k)!r} vs {a.get(k)!r}" for k in keys)


def compensate_chunk(reader, outdir: Path, params, engine, frames: tuple[int, int], progress=None,
                     input_info: dict | None = None) -> dict:
    """Step 2: frames ``[start, stop)`` of the recording into ``outdir/chunks/frames_<start>-<stop>/``.

    Needs the shared reference of ``outdir`` (:func:`reference_step`) made
    for this input with these parameters. Returns the chunk's record.
    """
    from .compensate import _batch_plan, _open_run, _open_writers, _run_batches

    _refuse_update_reference(params)
    t0 = time.perf_counter()
    outdir = Path(outdir)
    ref = read_reference(outdir)
    where = outdir / layout.CHUNK_DIR / layout.CHUNK_REFERENCE_RECORD
    if input_info is not None and not _same_input(ref["input"], input_info):
        raise InputError(f"{where}: the shared reference was made from another input or an older version of "
                         f"{input_info.get('path')}; run fr-compensate --reference-only again")
    now = params.record(only_results=True)
    if ref[layout.RECORD_RESULT_PARAMETERS] != now:
        raise OptionError(f"{where}: the shared reference was made with other parameters "
                          f"({_parameter_difference(ref[layout.RECORD_RESULT_PARAMETERS], now)}); "
                          "run fr-compensate --reference-only again")
    run, _, _, _ = _open_run(reader, outdir, params, engine, alpha=tuple(ref["alpha"]),
                             noise=ref["noise_variance"])
    n_frames = run.shape[0]
    start, stop = frames
    if stop > n_frames:
        raise OptionError(f"--frames {start}:{stop}: the recording has {n_frames} frames")
    if list(run.shape) != ref["shape"]:
        raise InputError(f"{where}: the shared reference is for frames of shape {ref['shape']}, "
                         f"the recording is {list(run.shape)}")
    files = _reference_files(outdir, ref["initialization"])
    ref_raw = np.load(files[0])
    init = np.load(files[1], mmap_mode="r") if ref["initialization"] else None
    n_batches = len(_batch_plan(n_frames, params.buffer_size, run.chunk)[0])
    initializations = init if init is not None else [None] * n_batches
    needed = initialized_batches(n_frames, params.buffer_size, start)
    if len(initializations) < needed:
        raise InputError(f"{where}: the shared reference holds the flow initialization of the first "
                         f"{len(initializations)} batches only (--initialize-until); frames {start}:{stop} need "
                         f"{needed}: run fr-compensate --reference-only again")
    run.smoothing_plan = [tuple(pair) for pair in ref["flow_smoothing_per_batch"]]
    run.flow_noise = FlowNoise(**ref["flow_noise"]) if ref["flow_noise"] else None

    folder = layout.chunk_folder(outdir, start, stop)
    folder.mkdir(parents=True, exist_ok=True)
    _remove_outputs(folder, [layout.CHUNK_RECORD, *layout.COMPENSATE_OUTPUTS])  # a stale chunk must not survive
    run.outdir = folder
    run.advance = _progress_counter(progress, stop - start)
    writers = []
    try:
        writers = _open_writers(run)
        stats = _run_batches(run, ref_raw, writers, (start, stop), initializations)
        save_npz_atomic(folder / layout.STATISTICS, **{k: stats[:, i] for i, k in enumerate(STAT_NAMES)})
        for wr in reversed(writers):
            wr.commit()
        writers = []
    except BaseException:
        for wr in writers:
            wr.abort()
        _remove_outputs(folder, layout.COMPENSATE_OUTPUTS)
        raise
    record = {
        "tool": "fr-compensate --frames",
        "frkit_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "frames": [start, stop],
        "input": input_info or ref["input"],
        layout.RECORD_RESULT_PARAMETERS: now,
        "reference_digest": ref["digest"],
        "output_dtype": str(run.out_dtype),
        # the smoothing of the batches it wrote frames of (those after the shared reference's, it chose)
        "flow_smoothing_per_batch": {str(k): list(run.smoothing_plan[k])
                                     for k in range(start // params.buffer_size, (stop - 1) // params.buffer_size + 1)},
        "elapsed_s": time.perf_counter() - t0,
        "stage_seconds": {k: round(v, 3) for k, v in run.timer.seconds.items()},
        "engine": engine.describe(),
    }
    write_json_atomic(folder / layout.CHUNK_RECORD, json.loads(json.dumps(record)))
    return record


# -- join --------------------------------------------------------------------------------------------------------

def complete_chunks(folder: Path, ref: dict) -> list[tuple[int, int, Path, dict]]:
    """The complete chunks of ``folder`` that belong to ``ref``, sorted; refuses any that does not.

    Raises InputError/OptionError (one line) for a chunk made from another
    input, with other parameters or from another reference, for overlapping
    chunks and for frames that no complete chunk holds (an unfinished one,
    without its record, counts as missing).
    """
    cdir = Path(folder) / layout.CHUNK_DIR
    found = []
    for d in sorted(cdir.glob("frames_*")):
        rec_path = d / layout.CHUNK_RECORD
        if not rec_path.is_file():
            continue
        try:
            rec = json.loads(rec_path.read_text())
            start, stop = (int(x) for x in rec["frames"])
        except (ValueError, KeyError, TypeError):
            raise InputError(f"{rec_path}: not a valid chunk record; remove {d} and compute it again") from None
        if rec.get(layout.RECORD_RESULT_PARAMETERS) != ref[layout.RECORD_RESULT_PARAMETERS]:
            diff = _parameter_difference(ref[layout.RECORD_RESULT_PARAMETERS], rec.get(layout.RECORD_RESULT_PARAMETERS)
                                         or {})
            raise OptionError(f"{d}: computed with other parameters than the reference ({diff}); "
                              f"compute frames {start}:{stop} again")
        if rec.get("reference_digest") != ref["digest"]:
            raise InputError(f"{d}: computed from another reference than {cdir / layout.CHUNK_REFERENCE_RECORD}; "
                             f"compute frames {start}:{stop} again")
        if not _same_input(ref["input"], rec.get("input") or {}):
            raise InputError(f"{d}: computed from another input than the reference "
                             f"({(rec.get('input') or {}).get('path')})")
        found.append((start, stop, d, rec))
    found.sort()
    n_frames = ref["shape"][0]
    at = 0
    for start, stop, d, _ in found:
        if start < at:
            prev = next(f for f in found if f[1] > start and f[2] != d)
            raise InputError(f"{cdir}: chunks {prev[0]}:{prev[1]} and {start}:{stop} overlap")
        if start > at:
            raise InputError(f"{cdir}: frames {at}:{start} are in no complete chunk; compute them with "
                             f"fr-compensate --frames {at}:{start}")
        at = stop
    if at != n_frames:
        raise InputError(f"{cdir}: frames {at}:{n_frames} are in no complete chunk; compute them with "
                         f"fr-compensate --frames {at}:{n_frames}")
    return found


def _chunk_datasets(path: Path) -> list[str]:
    with h5py.File(path, "r") as f:
        return list(f.keys())


def _step_times(ref: dict, chunks, join_seconds: float) -> dict:
    """Each step's seconds (inside its process) and engine, for the record: where a chunked run's time went."""
    return {"reference": {"seconds": round(ref["elapsed_s"], 3), "engine": ref["engine"],
                          "stage_seconds": ref["stage_seconds"]},
            "chunks": [{"frames": [start, stop], "seconds": round(rec["elapsed_s"], 3), "engine": rec["engine"],
                        "stage_seconds": rec["stage_seconds"]} for start, stop, _, rec in chunks],
            "join": round(join_seconds, 3)}


def join(folder, progress=None) -> dict:
    """Step 3: the standard stage-1 files of ``folder`` from its chunks; returns the summary.

    The video, mask and flow files are written by the same writer, frame by
    frame, as an unchunked run; the record last. Then ``chunks/`` is removed.
    """
    t0 = time.perf_counter()
    folder = Path(folder)
    ref = read_reference(folder)
    files = _reference_files(folder, ref["initialization"])
    for p in files:
        if not p.is_file():
            raise InputError(f"{p}: missing; run fr-compensate --reference-only again")
    if _digest(files) != ref["digest"]:
        raise InputError(f"{folder / layout.CHUNK_DIR}: the reference files changed after their record was "
                         "written; run fr-compensate --reference-only again")
    chunks = complete_chunks(folder, ref)
    plan = _joined_plan(ref, [rec for *_, rec in chunks], folder / layout.CHUNK_DIR)
    n_frames, height, width, n_ch = ref["shape"]
    for start, stop, d, _ in chunks:  # a record is written last, yet check the frames are all there
        for name in (layout.COMPENSATED, layout.VALID_IDX):
            try:
                with h5py.File(d / name, "r") as f:
                    if any(f[k].shape[0] != stop - start for k in f.keys()):
                        raise InputError(f"{d / name}: does not hold frames {start}:{stop}")
            except OSError:
                raise InputError(f"{d / name}: missing or unreadable; compute frames {start}:{stop} again") from None
    save_w = bool(ref[layout.RECORD_PARAMETERS].get("save_w"))
    first = chunks[0][2]
    out_dtype = np.dtype(chunks[0][3]["output_dtype"])
    _prepare_outputs(folder)
    advance = _progress_counter(progress, n_frames)
    names = [(layout.COMPENSATED, n_ch, out_dtype, layout.channel_datasets(n_ch)),
             (layout.VALID_IDX, 1, np.uint8, [layout.VALID_IDX_DATASET])]
    if save_w:
        names.append((layout.FLOW, 2, np.float32, list(layout.FLOW_DATASETS)))
    writers = []
    try:
        for name, c, dtype, datasets in names:
            if _chunk_datasets(first / name) != sorted(datasets):
                raise InputError(f"{first / name}: datasets {_chunk_datasets(first / name)}, expected {datasets}")
            writers.append(Hdf5VideoWriter(folder / name, c, height, width, dtype, dataset_names=datasets))
        for start, stop, d, _ in chunks:
            opened = [h5py.File(d / name, "r") for name, *_ in names]
            try:
                for a in range(0, stop - start, JOIN_BLOCK):
                    b = min(stop - start, a + JOIN_BLOCK)
                    for wr, f, (_, _, _, datasets) in zip(writers, opened, names):
                        wr.append(np.stack([f[k][a:b] for k in datasets], axis=-1))
                    advance(b - a)
            finally:
                for f in opened:
                    f.close()
        stats = np.concatenate([np.stack([np.load(d / layout.STATISTICS)[k] for k in STAT_NAMES], axis=1)
                                for _, _, d, _ in chunks])
        save_npz_atomic(folder / layout.STATISTICS, **{k: stats[:, i] for i, k in enumerate(STAT_NAMES)})
        save_npy_atomic(folder / layout.REFERENCE, np.load(files[0]))
        for wr in reversed(writers):
            wr.commit()
        writers = []
    except BaseException:
        for wr in writers:
            wr.abort()
        _remove_outputs(folder, layout.COMPENSATE_OUTPUTS)
        raise
    elapsed = ref["elapsed_s"] + sum(rec["elapsed_s"] for *_, rec in chunks) + time.perf_counter() - t0
    summary = {
        "frames": n_frames,
        "shape": ref["shape"],
        "input_dtype": ref["input_dtype"],
        "output_dtype": str(out_dtype),
        "min_level": ref["min_level"],
        "alpha": ref["flow_alpha"],
        "noise_variance": ref["noise_variance"],
        "flow_smoothing": ref["flow_smoothing"],
        "flow_smoothing_per_batch": plan,
        "flow_noise": ref["flow_noise"],
        "reference_frames": ref["reference_frames"],
        "mean_displacement": float(stats[:, 0].mean()),
        "max_displacement": float(stats[:, 1].max()),
        "elapsed_s": elapsed,
        "frames_per_s": n_frames / elapsed if elapsed > 0 else float("inf"),
        "stage_seconds": {"reference": ref["stage_seconds"].get("reference", 0.0),
                          "join": round(time.perf_counter() - t0, 3)},
        "steps": _step_times(ref, chunks, time.perf_counter() - t0),
        "engine": ref["engine"],
        "chunks": [[start, stop] for start, stop, *_ in chunks],
    }
    record = {
        "tool": "fr-compensate",
        "frkit_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "input": ref["input"],
        layout.RECORD_PARAMETERS: ref[layout.RECORD_PARAMETERS],
        layout.RECORD_RESULT_PARAMETERS: ref[layout.RECORD_RESULT_PARAMETERS],
        "outputs": [n for n in layout.COMPENSATE_OUTPUTS if (folder / n).exists() or n == layout.RECORD],
        "summary": summary,
    }
    write_json_atomic(folder / layout.RECORD, json.loads(json.dumps(record)))
    shutil.rmtree(folder / layout.CHUNK_DIR, ignore_errors=True)
    return summary

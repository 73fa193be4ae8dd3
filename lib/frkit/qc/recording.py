"""QC of one stage-1 folder: find its inputs, measure in one streaming pass, judge.

:func:`find_inputs` locates the corrected video, the valid masks, the flow
or statistics and the raw recording (from ``compensate.json``, or given);
:func:`measure` reads the raw and corrected videos side by side, a batch at
a time (memory O(batch)), and returns the per-frame table, the two mean
images and the summary with its bad frames and verdicts.
"""

from __future__ import annotations

import json
import math
import threading
from collections import deque
from contextlib import closing
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from .. import layout
from .._version import __version__
from ..errors import FrkitError, InputError
from ..io import open_video
from . import kernels as K
from . import measures as M

__all__ = ["Stage1Inputs", "find_inputs", "measure", "residual_stride", "RULES", "FRAME_COLUMNS",
           "RESIDUAL_FRAMES"]

#: the bad-frame rules and verdict thresholds (one home; the README quotes them)
RULES = {
    "blank_fraction": 0.05,        # std or mean of the raw frame <= 5 % of the recording's median
    "saturated_min": 0.01,         # >= 1 % of the samples at the clipping level ...
    "saturated_over_median": 5.0,  # ... and >= 5x the recording's median fraction
    "torn_z": 8.0,                 # one clear seam between horizontal bands: robust z >= 8 ...
    "torn_min_px": 3.0,            # ... and >= 3 px
    "jump_half_window": 5,         # running median over +-5 frames of the raw rigid shift
    "jump_z": 8.0,                 # distance from it robust z >= 8 ...
    "jump_min_px": 3.0,            # ... and >= 3 px ...
    "jump_agree": 0.25,            # ... and every band's shift within max(1.5 px, 25 % of the jump) of it
    "residual_good_px": 0.5,       # residual motion verdicts: good <= 0.5 px, fair <= 1 px, else poor
    "residual_fair_px": 1.0,
    "few_bad_fraction": 0.01,      # bad frames: none, few (<= 1 %), many
    "large_displacement_fraction": 0.1,  # displacement "large" when p95 of max > 10 % of the frame's side
}

#: the residual motion is measured on about this many evenly spaced corrected frames (every frame of a
#: shorter recording): its median and 95th percentile need a sample, not every frame, and the patch
#: cross-correlations are the pass's dearest step (bench/qc_cost.py); other frames' residual_px is empty
RESIDUAL_FRAMES = 100

#: the statistics.npz keys behind qc_frames.csv's displacement columns (mean, max, mean_u, mean_v)
DISPLACEMENT_KEYS = ("mean_disp", "max_disp", "mean_u", "mean_v")

#: qc_frames.csv columns, in order
FRAME_COLUMNS = ("frame", "mean_displacement", "max_displacement", "mean_u", "mean_v", "correlation_raw",
                 "correlation_corrected", "bad", "raw_shift_x", "raw_shift_y", "residual_px", "reasons")


def _stat(path: Path) -> dict:
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime": st.st_mtime}


@dataclass
class Stage1Inputs:
    """What fr-qc reads from one stage-1 folder."""

    folder: Path
    compensated: Path
    raw: object  # the raw recording as open_video takes it: a file, directory, glob or list of files
    idx: Path | None = None
    flow: Path | None = None
    statistics: Path | None = None
    average: Path | None = None
    record: Path | None = None
    read_options: dict = field(default_factory=dict)  # axes, datasets, deinterleave of the raw recording
    bin_size: int = 1

    def files(self) -> dict[str, Path]:
        """Every file read, by role (for the record in qc.json and the Make rules); a raw recording
        of several files gives ``raw``, ``raw_2``, ..."""
        from ..io.readers import recording_files

        raws = recording_files(self.raw)
        roles = {"compensated": self.compensated, "raw": raws[0], "valid_idx": self.idx, "flow": self.flow,
                 "statistics": self.statistics, "temporal_average": self.average, "record": self.record}
        roles.update({f"raw_{i + 1}": f for i, f in enumerate(raws[1:], 1)})
        return {k: v for k, v in roles.items() if v is not None}

    def describe(self) -> dict:
        from ..io.describe import describe_input

        described = {k: _stat(p) for k, p in self.files().items() if not k.startswith("raw")}
        return {**described, "raw": describe_input(self.raw)}


def _exists(recording) -> bool:
    """Every file of a recording (a file, directory, glob or list, as the record holds it) is there."""
    from ..io.readers import recording_files

    try:
        return all(f.is_file() for f in recording_files(recording))
    except FrkitError:
        return False


def _has_keys(npz: Path, keys) -> bool:
    """``npz`` is readable and holds every one of ``keys`` (only its directory is read)."""
    try:
        with np.load(npz) as z:
            return set(keys) <= set(z.files)
    except (OSError, ValueError):
        return False  # a damaged file: _Displacement reports it


def find_inputs(folder, raw=None) -> Stage1Inputs:
    """The inputs of ``fr-qc folder [--input raw]``; InputError when the folder or the raw recording is missing."""
    d = Path(folder)
    if not d.is_dir():
        raise InputError(f"{d}: not a stage-1 folder")
    compensated = layout.find_compensated(d)
    if compensated is None:
        raise InputError(f"{d}: no compensated.HDF5 (or .hdf5) in this folder; run stage 1 first")
    rec_path = d / layout.RECORD
    record, read_options, bin_size = None, {}, 1
    if rec_path.is_file():
        try:
            record = json.loads(rec_path.read_text())
            params = record.get(layout.RECORD_PARAMETERS) or record.get(layout.RECORD_RESULT_PARAMETERS) or {}
            read_options = {"axes": params.get("axes"), "datasets": params.get("dataset"),
                            "deinterleave": int(params.get("deinterleave") or 1), "plane": params.get("plane")}
            bin_size = int(params.get("bin_size") or 1)
            recorded_raw = record["input"].get("source", record["input"]["path"])
        except (ValueError, KeyError, TypeError, AttributeError):
            raise InputError(f"{rec_path}: not a frkit record (damaged?)") from None
        if raw is None:
            if not _exists(recorded_raw):
                raise InputError(f"{rec_path}: its input {recorded_raw} is missing; give the recording with "
                                 f"--input")
            raw = recorded_raw
    elif raw is None:
        raise InputError(f"{d}: no {layout.RECORD} (not written by frkit); give the raw recording with --input")
    if not _exists(raw):
        raise InputError(f"{raw}: no such file")
    if read_options.get("datasets"):
        read_options["datasets"] = list(read_options["datasets"])

    def present(name):
        p = d / name
        return p if p.is_file() else None

    statistics = present(layout.STATISTICS)
    # frkit's statistics.npz holds every displacement column: the flow fields (most of the bytes) are not read
    flow = None if statistics is not None and _has_keys(statistics, DISPLACEMENT_KEYS) else present(layout.FLOW)
    return Stage1Inputs(d, compensated, raw, idx=present(layout.VALID_IDX), flow=flow,
                        statistics=statistics, average=present(layout.TEMPORAL_AVERAGE),
                        record=rec_path if record is not None else None, read_options=read_options,
                        bin_size=bin_size)


class _Displacement:
    """Per-frame displacement: from statistics.npz or w.h5 (the fields), or none.

    ``inputs.flow`` is set only when the statistics lack a column (a
    pyflowreg folder's have no ``mean_u``, ``mean_v``): then the fields are
    read and the columns computed from them.
    """

    def __init__(self, inputs: Stage1Inputs, frames: int, hw: tuple[int, int]):
        self.source, self.file, self.stats = None, None, None
        if inputs.flow is not None:
            try:
                self.file = h5py.File(inputs.flow, "r")
                u, v = (self.file[k] for k in layout.FLOW_DATASETS)
            except (OSError, KeyError) as exc:
                self.close()
                raise InputError(f"{inputs.flow}: not a readable flow file (u, v): {exc}") from None
            if u.shape != (frames,) + hw or v.shape != u.shape:
                self.close()
                raise InputError(f"{inputs.flow}: u, v are {u.shape} but the video is {(frames,) + hw}")
            self.u, self.v, self.source = u, v, layout.FLOW
        elif inputs.statistics is not None:
            try:
                with np.load(inputs.statistics) as z:
                    self.stats = {k: np.asarray(z[k], dtype=np.float64) for k in DISPLACEMENT_KEYS
                                  if k in z.files or k in ("mean_disp", "max_disp")}
            except (OSError, KeyError, ValueError) as exc:
                raise InputError(f"{inputs.statistics}: not readable statistics: {exc}") from None
            if any(a.shape != (frames,) for a in self.stats.values()):
                raise InputError(f"{inputs.statistics}: statistics are not one value per frame ({frames})")
            self.source = layout.STATISTICS

    def read(self, a: int, b: int) -> np.ndarray:
        """``(b - a, 4)``: mean and max displacement length, mean u, mean v (NaN where unknown)."""
        out = np.full((b - a, 4), np.nan)
        if self.file is not None:
            try:  # as stored (float32): the sweep converts a block of frames at a time
                u, v = self.u[a:b], self.v[a:b]
            except (OSError, ValueError) as exc:
                raise InputError(f"{self.file.filename}: cannot read frames {a}..{b - 1}: {exc}") from None
            K.flow_stats(K.ready(u), K.ready(v), out)
        elif self.stats is not None:
            for i, k in enumerate(DISPLACEMENT_KEYS):
                if k in self.stats:
                    out[:, i] = self.stats[k][a:b]
        return out

    def close(self):
        if self.file is not None:
            self.file.close()
            self.file = None


def _template(inputs: Stage1Inputs, corrected, batch: int) -> np.ndarray:
    """The corrected temporal mean (channels averaged): temporal_average.npy when it is newer than the video."""
    t, h, w, c = corrected.shape
    avg = inputs.average
    if avg is not None and avg.stat().st_mtime >= inputs.compensated.stat().st_mtime:
        try:
            a = np.load(avg, allow_pickle=False)
        except (OSError, ValueError):
            a = None
        if a is not None and a.shape in ((h, w, c), (h, w)) and np.isfinite(a).all():
            return a.mean(axis=-1) if a.ndim == 3 else a.astype(np.float64)
    inputs.average = None  # not used: computed here instead
    total = np.zeros((h, w))
    for a in range(0, t, batch):
        total += M.gray(corrected.read(a, min(t, a + batch))).sum(axis=0)
    return total / t


def _group(values: np.ndarray, n_groups: int, size: int, how) -> np.ndarray:
    """Reduce ``values`` (one per raw frame) over consecutive groups of ``size`` (the stage-1 bins)."""
    if size == 1:
        return values
    return np.array([how(values[i * size:(i + 1) * size]) for i in range(n_groups)])


def measure(inputs: Stage1Inputs, batch: int = 32, progress=None,
            residual_frames: int | None = RESIDUAL_FRAMES, workers: int = 1) -> tuple[dict, dict, dict]:
    """Measure one stage-1 folder; returns ``(summary, per-frame columns, images)``.

    ``images``: ``mean_raw``, ``mean_corrected`` (H, W), ``valid_all`` (H, W) bool.
    ``residual_frames``: measure the residual motion on about that many evenly
    spaced frames (:func:`residual_stride`; None: on every frame).
    ``workers``: threads measuring batches side by side (the results are
    the same bits for any number).
    """
    progress = progress or (lambda done, total: None)
    opened = []
    try:
        corrected = open_video(inputs.compensated)
        opened.append(corrected)
        raw = open_video(inputs.raw, axes=inputs.read_options.get("axes"),
                         datasets=inputs.read_options.get("datasets"),
                         deinterleave=inputs.read_options.get("deinterleave", 1),
                         plane=inputs.read_options.get("plane"))
        opened.append(raw)
        t, h, w, c = corrected.shape
        tr = raw.shape[0]
        b = inputs.bin_size
        if raw.shape[1:] != (h, w, c):
            raise InputError(f"{inputs.raw}: frames are {raw.shape[1:]} but {inputs.compensated} has {(h, w, c)}; "
                             f"not the recording this folder corrected (give --input)")
        if -(-tr // b) != t:
            raise InputError(f"{inputs.compensated}: has {t} frames but {inputs.raw} has {tr}"
                             + (f" (bin size {b})" if b > 1 else "") + "; truncated, or not its recording")
        mask = None
        if inputs.idx is not None:
            mask = open_video(inputs.idx)
            opened.append(mask)
            if mask.shape[:3] != (t, h, w):
                raise InputError(f"{inputs.idx}: masks are {mask.shape[:3]} but the video is {(t, h, w)}")
        disp = _Displacement(inputs, t, (h, w))
        opened.append(disp)
        return _measure(inputs, corrected, raw, mask, disp, batch, progress, residual_frames, workers)
    except (OSError, RuntimeError) as exc:
        raise InputError(f"{inputs.folder}: cannot read: {exc}") from None
    finally:
        for r in opened:
            r.close()


def residual_stride(frames: int, sample: int | None = RESIDUAL_FRAMES) -> int:
    """Measure the residual motion on every ``stride``-th frame: about ``sample`` evenly spaced frames (None: all)."""
    return 1 if not sample else max(1, -(-frames // int(sample)))


class _Pass:
    """The streaming pass's work on one batch: what it reads and measures, apart from every other batch.

    :meth:`batch` measures frames ``[a, z)`` and returns their rows and their
    partial sums; :func:`_measure` adds the batches up in order, so the
    result has the same bits whether the batches ran one after another or
    side by side in threads. The reads are serialized (``read_lock``: a
    file handle is not shared across threads); the measuring runs in numpy
    and scipy.fft, which release the GIL.
    """

    def __init__(self, bin_size, corrected, raw, mask, disp, template, residual_frames, fft_workers):
        t, h, w, _ = corrected.shape
        self.corrected, self.raw, self.mask, self.disp = corrected, raw, mask, disp
        self.hw, self.b, self.tr = (h, w), bin_size, raw.shape[0]
        self.centred = template - template.mean()
        # the raw rigid shift: jumps are large, a coarse grid does
        self.coarse = coarse = max(1, int(math.ceil(max(h, w) / 128)))
        self.rigid = M.Template(template, (1, 1), bin=coarse, workers=fft_workers)
        self.local = M.Template(template, M.patch_grid(h, w), workers=fft_workers)
        self.bands = M.Template(template, (int(np.clip(h // 16, 4, 6)), 1), bin=coarse, workers=fft_workers)
        self.stride = residual_stride(t, residual_frames)
        if np.issubdtype(raw.dtype, np.integer):
            self.ceiling, self.frame_max = float(np.iinfo(raw.dtype).max), False
        else:  # floats have no ceiling: the frame's own maximum, as measures.saturated_fraction
            self.ceiling, self.frame_max = math.inf, True
        self.read_lock = threading.Lock()

    def _read(self, a, z):
        ra, rz = a * self.b, min(self.tr, z * self.b)
        with self.read_lock:
            rb = K.ready(self.raw.read(ra, rz))
            cb = K.ready(self.corrected.read(a, z))
            valid = K.ready(self.mask.read(a, z)[..., 0]) if self.mask is not None else np.zeros((1, 1, 1), np.uint8)
            disp = self.disp.read(a, z)
        return rb, cb, valid, disp

    def batch(self, a: int, z: int) -> dict:
        """Frames ``[a, z)``: per raw frame ``raw_stats`` (mean, std, saturated), ``tear``, ``spread``; per
        frame ``sums`` (:data:`kernels.PAIR_SUMS`), ``shift``, ``residual`` (NaN where not sampled),
        ``disp``; the partial ``raw_sum``, ``cor_sum`` and ``valid_all`` of these frames."""
        (h, w), b, coarse = self.hw, self.b, self.coarse
        rb, cb, valid, disp = self._read(a, z)
        n = z - a
        out = {"disp": disp, "raw_stats": np.empty((len(rb), 3)), "spread": None}
        binned = np.empty((len(rb), h // coarse, w // coarse), dtype=np.float32)
        K.raw_frame_stats(rb, self.ceiling, self.frame_max, coarse, binned, out["raw_stats"])
        band_shifts = self.bands.shifts_binned(binned)
        out["tear"] = M.band_seam(band_shifts)
        if b > 1:  # the frames stage 1 corrected are the bin means
            pad = np.full((n * b, h, w), np.nan)
            pad[:len(rb)] = M.gray(rb)
            rg = np.nanmean(pad.reshape(n, b, h, w), axis=1)
            shift = self.rigid.shifts(rg)[:, 0]
            rg = rg[..., None]
        else:
            rg = rb
            shift = self.rigid.shifts_binned(binned)[:, 0]
            out["spread"] = M.band_spread(band_shifts, shift)
        out["shift"] = shift
        out["sums"] = np.empty((n, len(K.PAIR_SUMS)))
        out["raw_sum"], out["cor_sum"] = np.zeros((h, w)), np.zeros((h, w))
        out["valid_all"] = np.ones((h, w), dtype=bool)
        K.pair_sums(rg, cb, valid, self.mask is not None, self.centred, out["sums"], out["raw_sum"],
                    out["cor_sum"], out["valid_all"])
        out["residual"] = np.full(n, np.nan)
        picked = np.arange(a + (-a) % self.stride, z, self.stride)  # the frames i with i % stride == 0
        if picked.size:
            patch = self.local.shifts(M.gray(cb[picked - a]))
            out["residual"][picked - a] = np.hypot(*np.moveaxis(patch, -1, 0)).mean(axis=1)
        return out


def _batches(measure_batch, t: int, batch: int, workers: int):
    """``(a, z, measure_batch(a, z))`` for every batch, in order; up to ``workers`` batches measured at once.

    At most ``workers + 1`` batches are in memory (O(batch), whatever the length).
    """
    spans = [(a, min(t, a + batch)) for a in range(0, t, batch)]
    if workers <= 1 or len(spans) < 2:
        for a, z in spans:
            yield a, z, measure_batch(a, z)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fr-qc") as pool:
        pending = deque()
        try:
            for a, z in spans:
                pending.append((a, z, pool.submit(measure_batch, a, z)))
                if len(pending) > workers:
                    a0, z0, done = pending.popleft()
                    yield a0, z0, done.result()
            while pending:
                a0, z0, done = pending.popleft()
                yield a0, z0, done.result()
        finally:  # an error (or a closed generator): no batch is left running on files about to close
            for _, _, f in pending:
                f.cancel()


def _measure(inputs, corrected, raw, mask, disp, batch, progress, residual_frames=RESIDUAL_FRAMES, workers=1):
    t, h, w, c = corrected.shape
    b, tr = inputs.bin_size, raw.shape[0]
    template = _template(inputs, corrected, batch)
    # threads over batches, or scipy.fft's own threads inside one batch's transforms
    measurer = _Pass(b, corrected, raw, mask, disp, template, residual_frames, 1 if workers > 1 else -1)
    cols = {k: np.full(t, np.nan) for k in ("corr_raw", "corr_cor", "residual", "sx", "sy")}
    disp_cols = np.full((t, 4), np.nan)
    per_raw = {k: np.zeros(tr) for k in ("std", "mean", "sat", "tear", "spread")}
    raw_sum, cor_sum = np.zeros((h, w)), np.zeros((h, w))
    valid_all = np.ones((h, w), dtype=bool)
    with closing(_batches(measurer.batch, t, batch, workers)) as batches:  # closed: no batch left running
        for a, z, m in batches:
            ra, rz = a * b, min(tr, z * b)
            per_raw["mean"][ra:rz], per_raw["std"][ra:rz], per_raw["sat"][ra:rz] = m["raw_stats"].T
            per_raw["tear"][ra:rz] = m["tear"]
            if m["spread"] is not None:
                per_raw["spread"][a:z] = m["spread"]
            raw_sum += m["raw_sum"]
            cor_sum += m["cor_sum"]
            valid_all &= m["valid_all"]
            n_, st, stt, sx, sxx, sxt, sc, scc, sct = m["sums"].T
            cols["corr_raw"][a:z] = M.correlation_from_sums(n_, st, stt, sx, sxx, sxt)
            cols["corr_cor"][a:z] = M.correlation_from_sums(n_, st, stt, sc, scc, sct)
            cols["sx"][a:z], cols["sy"][a:z] = m["shift"][:, 0], m["shift"][:, 1]
            cols["residual"][a:z] = m["residual"]
            disp_cols[a:z] = m["disp"]
            progress(z, t)
    for k, how in (("std", np.min), ("mean", np.min), ("sat", np.max), ("tear", np.max), ("spread", np.min)):
        per_raw[k] = _group(per_raw[k], t, b, how)
    mean_raw, mean_cor = raw_sum / t, cor_sum / t
    region = M.crispness_region(valid_all)
    reasons = bad_frames(per_raw, np.stack([cols["sx"], cols["sy"]], -1))
    frames = {
        "frame": np.arange(t), "mean_displacement": disp_cols[:, 0], "max_displacement": disp_cols[:, 1],
        "mean_u": disp_cols[:, 2], "mean_v": disp_cols[:, 3], "correlation_raw": cols["corr_raw"],
        "correlation_corrected": cols["corr_cor"], "bad": np.array([int(bool(r)) for r in reasons]),
        "raw_shift_x": cols["sx"], "raw_shift_y": cols["sy"], "residual_px": cols["residual"],
        "reasons": [";".join(r) for r in reasons],
    }
    summary = _summary(inputs, frames, reasons, disp.source, (t, h, w, c),
                       M.crispness(mean_raw, region), M.crispness(mean_cor, region))
    return summary, frames, {"mean_raw": mean_raw, "mean_corrected": mean_cor, "valid_all": valid_all}


def bad_frames(per_frame: dict, raw_shift: np.ndarray) -> list[list[str]]:
    """The reasons each frame is bad (empty: good), from per-frame raw measures and the raw rigid shift.

    ``per_frame``: ``std``, ``mean`` (raw frame), ``sat`` (saturated
    fraction), ``tear`` (:func:`measures.band_seam`), ``spread``
    (:func:`measures.band_spread`), each ``(T,)``; ``raw_shift``
    ``(T, 2)``. The rules are :data:`RULES` (README: "Bad frames").
    """
    r = RULES
    t = len(per_frame["std"])
    std, mean = per_frame["std"], per_frame["mean"]
    med_std, med_mean = np.median(std), np.median(mean)
    blank = (std <= r["blank_fraction"] * med_std) | ((med_mean > 0) & (mean <= r["blank_fraction"] * med_mean))
    sat = per_frame["sat"]
    saturated = (sat >= r["saturated_min"]) & (sat >= r["saturated_over_median"] * np.median(sat)) & ~blank
    tear = np.where(blank, np.nan, per_frame["tear"])
    with np.errstate(invalid="ignore"):
        torn = (M.robust_z(tear, floor=0.1) >= r["torn_z"]) & (tear >= r["torn_min_px"])
    shift = np.where(blank[:, None], np.nan, raw_shift)
    dist = np.hypot(*np.moveaxis(shift - M.running_median(shift, r["jump_half_window"]), -1, 0))
    with np.errstate(invalid="ignore"):
        jump = ((M.robust_z(dist, floor=0.1) >= r["jump_z"]) & (dist >= r["jump_min_px"])
                & (per_frame["spread"] <= np.maximum(1.5, r["jump_agree"] * dist)))
    out = []
    for i in range(t):
        out.append([name for name, flag in (("blank", blank[i]), ("saturated", saturated[i]), ("torn", torn[i]),
                                            ("jump", jump[i])) if flag])
    return out


def _stats(x: np.ndarray) -> dict:
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return {"mean": None, "p5": None}
    return {"mean": float(x.mean()), "p5": float(np.percentile(x, 5))}


def _change(before, after, tol) -> str:
    if before is None or after is None:
        return "unknown"
    if after > before + tol:
        return "improved"
    return "unchanged" if after >= before - tol else "worse"


def _summary(inputs, frames, reasons, disp_source, shape, crisp_raw, crisp_cor) -> dict:
    r = RULES
    t, h, w, c = shape
    good = frames["bad"] == 0
    corr_raw, corr_cor = _stats(frames["correlation_raw"][good]), _stats(frames["correlation_corrected"][good])
    residual = frames["residual_px"][good]
    residual = residual[np.isfinite(residual)]  # the frames it was measured on
    res_med = float(np.median(residual)) if residual.size else None
    raw_motion = np.hypot(*(frames[k] - np.median(frames[k]) for k in ("raw_shift_x", "raw_shift_y")))[good]
    bad = [{"frame": i, "reasons": rs} for i, rs in enumerate(reasons) if rs]
    displacement = {"source": disp_source}
    if disp_source is not None:
        mx = frames["max_displacement"]
        displacement.update(mean=float(np.nanmean(frames["mean_displacement"])), max=float(np.nanmax(mx)),
                            p95_max=float(np.nanpercentile(mx, 95)))
        large = displacement["p95_max"] > r["large_displacement_fraction"] * min(h, w)
        displacement["verdict"] = "large" if large else "ok"
    else:
        displacement["verdict"] = "unknown"
    verdicts = {
        "correlation": _change(corr_raw["mean"], corr_cor["mean"], 0.005),
        "crispness": _change(crisp_raw, crisp_cor, 0.01 * crisp_raw),
        "residual_motion": "unknown" if res_med is None else (
            "good" if res_med <= r["residual_good_px"] else "fair" if res_med <= r["residual_fair_px"] else "poor"),
        "bad_frames": "none" if not bad else ("few" if len(bad) <= r["few_bad_fraction"] * t else "many"),
        "displacement": displacement["verdict"],
    }
    return {
        "tool": "fr-qc", "frkit_version": __version__, "folder": str(inputs.folder.resolve()),
        "inputs": inputs.describe(), "frames": t, "shape": [h, w, c],
        "correlation": {"raw": corr_raw, "corrected": corr_cor, "verdict": verdicts["correlation"]},
        "crispness": {"raw": crisp_raw, "corrected": crisp_cor, "verdict": verdicts["crispness"]},
        "residual_motion_px": {"median": res_med,
                               "p95": float(np.percentile(residual, 95)) if residual.size else None,
                               "verdict": verdicts["residual_motion"],
                               "frames_measured": int(np.isfinite(frames["residual_px"]).sum())},
        "raw_motion_px": {"median": float(np.median(raw_motion)) if raw_motion.size else None,
                          "p95": float(np.percentile(raw_motion, 95)) if raw_motion.size else None},
        "displacement": displacement,
        "bad_frames": {"count": len(bad), "frames": bad, "verdict": verdicts["bad_frames"]},
        "verdicts": verdicts,
        "rules": RULES,
    }


def up_to_date(qc_json: Path, inputs: Stage1Inputs) -> bool:
    """``qc.json`` exists and was measured from exactly these files (path, size, mtime)."""
    try:
        old = json.loads(Path(qc_json).read_text())
        return old.get("inputs") == inputs.describe() and old.get("frkit_version") == __version__
    except (OSError, ValueError, FrkitError):
        return False


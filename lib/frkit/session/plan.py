"""Planning a session run for Make.

``plan(config)`` checks the whole session before any work (the recordings
exist, stems are unique, the center is one of them, every recording has the
same frame size and channel count) and writes, under
``<output_root>/.frkit/``:

* ``stage1.json``, ``stage2.json``, ``stage3.json``: the parameters that
  decide each stage's results, ``center``: the reference recording,
  ``recordings``: the list of stems. Each is rewritten only when its
  content changes, so its timestamp tells Make what is out of date;
* ``session.mk``: the rules. Per recording: ``compensate.json`` (fr-compensate),
  ``temporal_average.npy`` (fr-average), ``w_to_reference.npz`` (fr-align),
  ``qc.json`` (fr-qc); per session: ``final_valid_idx.npz`` (fr-mask),
  ``aligned_<stem>.<ext>`` (fr-reproject) and ``session_qc.json`` with the
  report (fr-qc --config); ``qc.json`` in the state folder stamps the report's
  parameters.

Changing stage-1 parameters thus recomputes everything downstream; stage-2
parameters or the center recompute the fields and stage 3; stage-3 output
format only the aligned videos.

With ``planes`` (:mod:`frkit.session.planes`) each recording is one plane
(``fr-compensate --plane K``), aligned to the center's same plane; each
plane has its own ``final_results/plane<K>/`` (fr-mask --recording), and
``qc`` makes the per-recording reports only (no session report).
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py

from .. import layout, options
from .._version import __version__
from ..io.describe import describe_input
from ..errors import FrkitError, InputError
from ..io import open_video
from ..io.atomic import partial_path, write_json_atomic
from .config import SessionConfig
from .chunkrules import stage1_rules
from .planes import PlaneRecording, plane_centers, plane_dir, plane_of, source_of
from .stages import session_files, stage1_tasks

__all__ = ["plan", "check_recordings"]


def check_recordings(cfg: SessionConfig, recordings: list[Path]) -> dict[Path, int]:
    """All recordings readable with one frame size and channel count; returns their frame counts."""
    first = None
    counts = {}
    v = cfg.values(options.COMPENSATE)
    for p in recordings:
        with open_video(source_of(p), axes=v.axes, datasets=v.dataset, deinterleave=v.deinterleave,
                        plane=plane_of(p, v.plane)) as r:
            t, h, w, c = r.shape
        counts[p] = t
        if t < 2:
            raise InputError(f"{p}: has {t} frame(s); need at least 2")
        if first is None:
            first = (p, (h, w, c))
        elif (h, w, c) != first[1]:
            fh, fw, fc = first[1]
            raise InputError(f"{p.name} is {h}x{w} with {c} channel(s) but {first[0].name} is {fh}x{fw} with "
                             f"{fc}; a session needs one frame size and channel count")
    return counts


def _complete_peer_output(folder: Path, expected_frames: int) -> bool:
    """A stage-1 folder written by another tool (no record) that is whole:
    the video has the expected frame count (and its own frame_count
    attribute, where written, agrees) and idx.hdf has the same frames."""
    video = layout.find_compensated(folder)
    idx = folder / layout.VALID_IDX
    if video is None or not idx.is_file():
        return False
    try:
        with open_video(video) as v, open_video(idx) as m:
            if v.shape[0] != expected_frames or m.shape[:3] != v.shape[:3]:
                return False
            v.read(v.shape[0] - 1, v.shape[0])  # the last frame is really there
        with h5py.File(video, "r") as f:
            declared = f.attrs.get("frame_count")
            if declared is not None and int(declared) != expected_frames:
                return False
    except (FrkitError, OSError, ValueError):
        return False
    return True


def reconcile_stage1(cfg: SessionConfig, recordings: list[Path], counts: dict[Path, int]) -> dict[str, str]:
    """Decide from the records, not from timestamps alone, which stage-1 results stand.

    A frkit record whose input (path, size, mtime) or result parameters differ
    from now is removed (its outputs are out of date). A complete folder from
    another tool, without a record, is adopted: a record is written for it. An
    incomplete one is left for fr-compensate to redo. Returns stem -> action.
    """
    session_params = cfg.stage_parameters(1)
    bin_size = session_params["bin_size"]
    actions = {}
    for p in recordings:
        params = dict(session_params, plane=p.plane) if isinstance(p, PlaneRecording) else session_params
        folder = cfg.recording_dir(p)
        rec_path = folder / layout.RECORD
        now = describe_input(source_of(p))
        if rec_path.is_file():
            try:
                rec = json.loads(rec_path.read_text())
                same_input = all(rec["input"].get(k) == now[k] for k in layout.RECORD_INPUT_KEYS)
                same_params = rec.get(layout.RECORD_RESULT_PARAMETERS) == params
            except (ValueError, KeyError, TypeError, AttributeError):
                same_input = same_params = False
            if not (same_input and same_params):
                rec_path.unlink()
                actions[p.stem] = "stale"
            continue
        expected = -(-counts[p] // bin_size)
        if _complete_peer_output(folder, expected):
            write_json_atomic(rec_path, {"tool": "adopted", "frkit_version": __version__, "input": now,
                                         layout.RECORD_RESULT_PARAMETERS: params,
                                         "note": "stage-1 outputs written by another tool, checked complete"})
            actions[p.stem] = "adopted"
    return actions


def _write_if_changed(path: Path, text: str) -> bool:
    if path.exists() and path.read_text() == text:
        return False
    tmp = partial_path(path)
    tmp.write_text(text)
    tmp.replace(path)
    return True


def _q(p) -> str:
    s = str(p)
    if any(ch in s for ch in " \t\n#$%:;=\\"):
        raise InputError(f"{s}: make cannot handle paths with spaces or the characters #$%:;=\\; "
                         "rename it or run the tools directly")
    return s


def _input_args(p) -> tuple[str, str]:
    """A recording's Make prerequisites (every file it reads) and its fr-compensate argument(s)."""
    from ..io.readers import recording_files

    src = source_of(p)
    deps = " ".join(_q(f.resolve()) for f in recording_files(src))
    arg = " ".join(_q(f) for f in src.resolve()) if isinstance(src, tuple) else _q(src.resolve())
    if isinstance(p, PlaneRecording):
        arg += f" --plane {p.plane}"
    return deps, arg


def plan(cfg: SessionConfig) -> Path:
    """Validate the session and write its Make rules; returns the path of ``session.mk``."""
    recordings = cfg.recordings()
    center = cfg.center_index(recordings)
    counts = check_recordings(cfg, recordings)
    reconcile_stage1(cfg, recordings, counts)
    out, final = cfg.output_dir, cfg.final_dir
    state = out / layout.STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    final.mkdir(parents=True, exist_ok=True)
    for stage in (1, 2, 3):
        _write_if_changed(state / f"stage{stage}.json", json.dumps(cfg.stage_parameters(stage), sort_keys=True,
                                                                     indent=1) + "\n")
    _write_if_changed(state / "qc.json", json.dumps(cfg.values(options.QC).record(only_results=True),
                                                    sort_keys=True, indent=1) + "\n")
    c_stem = recordings[center].stem
    by_plane = isinstance(recordings[center], PlaneRecording)
    centers = {p.stem: recordings[c].stem for p, c in zip(recordings, plane_centers(recordings, center))}
    for d in {plane_dir(final, p) for p in recordings}:
        d.mkdir(parents=True, exist_ok=True)
    _write_if_changed(state / "center", c_stem + "\n")
    _write_if_changed(state / "recordings", "\n".join(p.stem for p in recordings) + "\n")

    config = _q(Path(cfg.source).resolve()) if cfg.source else None
    cfg_arg = f" --config {config}" if config else ""
    st = _q(state)
    lines = [
        f"# generated by frkit from {config}; regenerated on every run, do not edit",
        ".DELETE_ON_ERROR:",
        ".PHONY: all stage1 stage2 stage3 qc",
        "all: stage3 qc",
        "",
    ]
    avg = {p.stem: _q(out / p.stem / layout.TEMPORAL_AVERAGE) for p in recordings}
    rec = {p.stem: _q(out / p.stem / layout.RECORD) for p in recordings}
    wref = {p.stem: _q(out / p.stem / layout.W_TO_REFERENCE) for p in recordings}
    videos = {f.stem: _q(f.aligned_video) for f in session_files(cfg)[0]}
    chunks = {}
    for task in stage1_tasks(cfg, counts):
        chunks.setdefault(task.recording, []).append(task.frames)
    intermediate = []
    qc = {p.stem: _q(out / p.stem / layout.QC_JSON) for p in recordings}
    for p in recordings:
        s, d = p.stem, _q(out / p.stem)
        c_avg = avg[centers[s]]
        ref_arg = f" --reference-average {c_avg}" if by_plane else ""  # else from the session's one center
        deps, arg = _input_args(p)
        rules, parts = stage1_rules(deps, arg, out / p.stem, rec[s], f"{st}/stage1.json", cfg_arg, chunks[p], _q,
                                    cfg.values(options.COMPENSATE).workers)
        intermediate += parts
        lines += rules + [
            f"{avg[s]}: {rec[s]}",
            f"\tfr-average {d} -o $@{cfg_arg}",
            f"{wref[s]}: {avg[s]} {c_avg} {st}/stage2.json {st}/center",
            f"\tfr-align {c_avg} {avg[s]} -o $@{cfg_arg}",
            f"{videos[s]}: {rec[s]} {wref[s]} {c_avg} {st}/stage3.json {st}/center",
            f"\tfr-reproject {d} {wref[s]} -o $@{ref_arg}{cfg_arg}",
            f"{qc[s]}: {rec[s]} {avg[s]} {deps}",
            f"\tfr-qc {d} -q",
            "",
        ]
    if by_plane:
        lines += _plane_stage3_rules(cfg, recordings, centers, rec, wref, avg, videos, st)
    else:
        lines += _session_stage3_rules(cfg_arg, final, rec, wref, avg, videos, qc, st)
    if intermediate:  # removed by the join; not redone while compensate.json is up to date
        lines += [".INTERMEDIATE: " + " ".join(intermediate), ""]
    mk = state / layout.SESSION_MAKEFILE
    _write_if_changed(mk, "\n".join(lines))
    return mk


def _plane_stage3_rules(cfg, recordings, centers, rec, wref, avg, videos, st) -> list[str]:
    """Stage 3 of a session by planes: per plane, its mask from its recordings (center: the center's plane)."""
    groups: dict[int, list] = {}
    for p in recordings:
        groups.setdefault(p.plane, []).append(p)
    lines, masks = ["stage1: " + " ".join(avg.values()), "stage2: " + " ".join(wref.values())], []
    for k, members in sorted(groups.items()):
        npz = _q(plane_dir(cfg.final_dir, members[0]) / layout.FINAL_NPZ)
        masks.append(npz)
        stems = [p.stem for p in members]
        center = stems.index(centers[stems[0]])
        folders = " ".join(f"--recording {_q(cfg.recording_dir(p))}" for p in members)
        lines += [f"{npz}: {' '.join(rec[s] for s in stems)} {' '.join(wref[s] for s in stems)} "
                  f"{' '.join(avg[s] for s in stems)} {st}/center {st}/recordings",
                  f"\tfr-mask {folders} --center {center} -o {_q(plane_dir(cfg.final_dir, members[0]))} -q"]
    qc = [_q(cfg.recording_dir(p) / layout.QC_JSON) for p in recordings]
    return lines + ["stage3: " + " ".join(masks) + " " + " ".join(videos.values()),
                    "qc: " + " ".join(qc), ""]


def _session_stage3_rules(cfg_arg, final, rec, wref, avg, videos, qc, st) -> list[str]:
    """Stage 3 and the session report of a session with one center: one mask in final_results."""
    npz = _q(final / layout.FINAL_NPZ)
    return [
        "stage1: " + " ".join(avg.values()),
        "stage2: " + " ".join(wref.values()),
        f"{npz}: {' '.join(rec.values())} {' '.join(wref.values())} {' '.join(avg.values())} "
        f"{st}/center {st}/recordings",
        f"\tfr-mask{cfg_arg}",
        f"stage3: {npz} " + " ".join(videos.values()),
        f"{_q(final / layout.SESSION_QC_JSON)}: {' '.join(qc.values())} {' '.join(wref.values())} "
        f"{' '.join(avg.values())} {npz} {st}/center {st}/recordings {st}/qc.json",
        f"\tfr-qc{cfg_arg} -q",
        f"qc: {_q(final / layout.SESSION_QC_JSON)}",
        "",
    ]

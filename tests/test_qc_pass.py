"""fr-qc's streaming pass: the blocked numpy sweeps equal the numpy definitions of the measures, and the
residual motion measured on an evenly spaced subsample of frames is the every-frame measure's and the
known motion's."""

import csv
import json

import h5py
import numpy as np
import pytest

from frkit import layout
from frkit.qc import kernels as K
from frkit.qc import measures as M
from frkit.qc.outputs import write_frames_csv
from frkit.qc.recording import find_inputs, measure, residual_stride
from frkit.synth import SyntheticSession


def _blocks(gray, b):
    n, h, w = gray.shape
    return gray[:, :h // b * b, :w // b * b].reshape(n, h // b, b, w // b, b).mean(axis=(2, 4))


@pytest.mark.parametrize("kind", ["uint16, two channels", "float32, one channel"])
def test_raw_frame_stats_equal_numpy(kind):
    rng = np.random.default_rng(0)
    if kind.startswith("uint16"):
        frames = rng.integers(0, 40000, (5, 21, 34, 2), dtype=np.uint16)
        frames[1, :3] = np.iinfo(np.uint16).max  # saturated rows
        ceiling, frame_max, b = float(np.iinfo(np.uint16).max), False, 3
    else:
        frames = rng.random((4, 20, 30, 1)).astype(np.float32)
        frames[2, :5] = 7.0  # clipped: many samples at the frame's own maximum
        ceiling, frame_max, b = np.inf, True, 2
    n, h, w, _ = frames.shape
    out, binned = np.empty((n, 3)), np.empty((n, h // b, w // b), np.float32)
    K.raw_frame_stats(frames, ceiling, frame_max, b, binned, out)
    gray = M.gray(frames)
    np.testing.assert_allclose(out[:, 0], gray.mean(axis=(1, 2)), rtol=1e-12)
    np.testing.assert_allclose(out[:, 1], gray.std(axis=(1, 2)), rtol=1e-9)
    np.testing.assert_array_equal(out[:, 2], M.saturated_fraction(frames))
    assert out[1 if frame_max is False else 2, 2] > 0.1
    np.testing.assert_allclose(binned, _blocks(gray, b), rtol=1e-6)


def test_pair_sums_give_the_correlations_and_means_of_numpy():
    rng = np.random.default_rng(1)
    n, h, w = 6, 24, 30
    template = rng.random((h, w)) * 100
    x = (template[None, ..., None] + rng.normal(0, 30, (n, h, w, 1))).clip(0).astype(np.uint16)
    cor = (template[None, ..., None] + rng.normal(0, 5, (n, h, w, 2))).astype(np.float32)
    valid = (rng.random((n, h, w)) > 0.2).astype(np.uint8)
    valid[0] = 1  # every pixel valid
    valid[3] = 0
    valid[3, 4, 5] = 1  # one valid pixel: no correlation exists
    sums = np.empty((n, len(K.PAIR_SUMS)))
    x_total, cor_total, valid_all = np.zeros((h, w)), np.zeros((h, w)), np.ones((h, w), bool)
    K.pair_sums(x, cor, valid, True, template - template.mean(), sums, x_total, cor_total, valid_all)
    nv, st, stt, sx, sxx, sxt, sc, scc, sct = sums.T
    got = [M.correlation_from_sums(nv, st, stt, sx, sxx, sxt), M.correlation_from_sums(nv, st, stt, sc, scc, sct)]
    want = M.frame_correlations([M.gray(x), M.gray(cor)], template, valid.astype(bool))
    for g, r in zip(got, want):
        np.testing.assert_allclose(g, r, rtol=1e-9, equal_nan=True)
        assert np.isnan(g[3]) and np.isfinite(np.delete(g, 3)).all()
    assert want[1][0] > want[0][0] > 0.5  # the less noisy video correlates better
    np.testing.assert_allclose(x_total, M.gray(x).sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(cor_total, M.gray(cor).sum(axis=0), rtol=1e-9)
    np.testing.assert_array_equal(valid_all, valid.astype(bool).all(axis=0))
    # without a mask every pixel counts and valid_all is left alone
    K.pair_sums(x, cor, np.zeros((1, 1, 1), np.uint8), False, template - template.mean(), sums,
                x_total, cor_total, valid_all)
    np.testing.assert_allclose(M.correlation_from_sums(*sums.T[[0, 1, 2, 3, 4, 5]]),
                               M.frame_correlation(M.gray(x), template), rtol=1e-9)


def test_flow_stats_equal_numpy():
    rng = np.random.default_rng(2)
    u, v = (rng.normal(0, 2, (3, 17, 23)).astype(np.float32) for _ in range(2))
    out = np.empty((3, 4))
    K.flow_stats(u, v, out)
    mag = np.hypot(u.astype(np.float64), v.astype(np.float64))
    np.testing.assert_allclose(out, np.stack([mag.mean(axis=(1, 2)), mag.max(axis=(1, 2)),
                                              u.mean(axis=(1, 2), dtype=np.float64),
                                              v.mean(axis=(1, 2), dtype=np.float64)], -1), rtol=1e-12)


def test_sweeps_do_not_depend_on_the_block_size(monkeypatch):
    """Blocks of one, two (a ragged last block) and all frames give the same per-frame numbers and totals."""
    rng = np.random.default_rng(3)
    n, h, w = 5, 12, 16
    x = rng.integers(0, 4000, (n, h, w, 1), dtype=np.uint16)
    cor = rng.normal(100, 20, (n, h, w, 2)).astype(np.float32)
    cor[2, :2] = np.nan  # outside the valid pixels: never counted in the sums
    valid = (rng.random((n, h, w)) > 0.3).astype(np.uint8)
    valid[2, :2] = 0
    u, v = (rng.normal(0, 2, (n, h, w)).astype(np.float32) for _ in range(2))
    t = rng.random((h, w))
    t -= t.mean()
    results = []
    for frames_per_block in (1, 2, n):
        monkeypatch.setattr(K, "BLOCK_VALUES", frames_per_block * h * w)
        assert K.block_frames(h, w) == frames_per_block
        stats, binned = np.empty((n, 3)), np.empty((n, h // 3, w // 3), np.float32)
        K.raw_frame_stats(x, 4000.0, False, 3, binned, stats)
        sums, totals = np.empty((n, len(K.PAIR_SUMS))), (np.zeros((h, w)), np.zeros((h, w)))
        valid_all = np.ones((h, w), bool)
        K.pair_sums(x, cor, valid, True, t, sums, *totals, valid_all)
        flow = np.empty((n, 4))
        K.flow_stats(u, v, flow)
        results.append([stats, binned, sums, *totals, valid_all, flow])
    assert np.isfinite(results[0][2]).all()
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_allclose(b, a, rtol=1e-12, equal_nan=True)
    # integer videos (no NaN) are masked by a product, float ones by a masked copy: the same sums
    whole = np.nan_to_num(cor, nan=7.0).round().astype(np.uint16)
    got = []
    for video in (whole, whole.astype(np.float32)):
        sums = np.empty((n, len(K.PAIR_SUMS)))
        K.pair_sums(x, video, valid, True, t, sums, np.zeros((h, w)), np.zeros((h, w)), np.ones((h, w), bool))
        got.append(sums)
    np.testing.assert_allclose(got[0], got[1], rtol=1e-12)


def test_residual_stride_spreads_the_sample_over_the_recording():
    assert residual_stride(150, 200) == 1 and residual_stride(1000, 200) == 5 and residual_stride(1001, 200) == 6
    assert residual_stride(300) == 3  # the default: about RESIDUAL_FRAMES frames
    assert residual_stride(10 ** 6, None) == 1


def test_residual_motion_on_a_subsample_is_the_full_measure_and_the_known_motion(tmp_path):
    """The "corrected" video still moves by a known translation (the residual motion to find)."""
    t = 120
    s = SyntheticSession(128, 128, t, seed=5, shift_px=1.5, warp_px=0.0, margin=40)
    moved = s.frames()[..., 0]
    truth = np.array([np.hypot(*np.moveaxis(s.true_flow(i), -1, 0)).mean() for i in range(t)])
    d = tmp_path / "stage1"
    d.mkdir()
    with h5py.File(tmp_path / "raw.h5", "w") as f:
        f["mov"] = moved
    with h5py.File(d / layout.COMPENSATED, "w") as f:
        f["ch1"] = moved
    with h5py.File(d / layout.VALID_IDX, "w") as f:
        f["idx"] = np.ones(moved.shape, dtype=np.uint8)
    np.save(d / layout.TEMPORAL_AVERAGE, s.template())  # the unmoved field: the residual is the true motion
    (d / layout.RECORD).write_text(json.dumps({"tool": "fr-compensate", "input": {"path": str(tmp_path / "raw.h5")},
                                               "parameters": {"bin_size": 1}}))
    full, ff, _ = measure(find_inputs(d), residual_frames=None)
    sub, fs, _ = measure(find_inputs(d), residual_frames=30)
    k = residual_stride(t, 30)
    assert k == 4 and sub["residual_motion_px"]["frames_measured"] == 30
    assert full["residual_motion_px"]["frames_measured"] == t
    # the same estimate on the frames measured, none on the others
    np.testing.assert_array_equal(fs["residual_px"][::k], ff["residual_px"][::k])
    assert np.isnan(np.delete(fs["residual_px"], np.arange(0, t, k))).all()
    # each frame's estimate is its known motion, and the subsample's statistics are the full ones'
    assert np.median(np.abs(ff["residual_px"] - truth)) < 0.1
    assert full["residual_motion_px"]["median"] == pytest.approx(np.median(truth), abs=0.1)
    assert sub["residual_motion_px"]["median"] == pytest.approx(full["residual_motion_px"]["median"], abs=0.05)
    assert sub["residual_motion_px"]["p95"] == pytest.approx(full["residual_motion_px"]["p95"], abs=0.1)
    assert np.median(truth) > 0.5  # the motion is there to find
    # the frames picked do not depend on where the batches end
    _, f7, _ = measure(find_inputs(d), batch=7, residual_frames=30)
    np.testing.assert_allclose(f7["residual_px"], fs["residual_px"], rtol=1e-6)
    # the other columns are measured on every frame
    for key in ("correlation_raw", "correlation_corrected", "raw_shift_x"):
        np.testing.assert_array_equal(fs[key], ff[key])
    # qc_frames.csv leaves the frames not measured empty
    write_frames_csv(tmp_path / "f.csv", fs)
    with open(tmp_path / "f.csv", newline="") as fh:
        cells = [r["residual_px"] for r in csv.DictReader(fh)]
    assert [i for i, c in enumerate(cells) if c != ""] == list(range(0, t, k))


def _folder(root, frames, t):
    """A stage-1 folder whose corrected video is ``frames`` (T, H, W) and raw recording too."""
    root.mkdir()
    with h5py.File(root / "raw.h5", "w") as f:
        f["mov"] = frames[:t]
    d = root / "stage1"
    d.mkdir()
    with h5py.File(d / layout.COMPENSATED, "w") as f:
        f["ch1"] = frames[:t]
    with h5py.File(d / layout.VALID_IDX, "w") as f:
        f["idx"] = np.ones(frames[:t].shape, dtype=np.uint8)
    (d / layout.RECORD).write_text(json.dumps({"tool": "fr-compensate", "input": {"path": str(root / "raw.h5")},
                                               "parameters": {"bin_size": 1}}))
    return d


@pytest.mark.parametrize("workers", [1, 2])
def test_pass_memory_does_not_grow_with_the_length(tmp_path, workers):
    """Nor with threads: at most workers + 1 batches are in memory."""
    import tracemalloc

    frames = SyntheticSession(64, 80, 400, seed=2, shift_px=2.0, warp_px=0.5, margin=30).frames()[..., 0]
    peaks = []
    for t in (80, 400):
        d = _folder(tmp_path / f"t{t}", frames, t)
        measure(find_inputs(d), workers=workers)  # imports and first-call caches (scipy.fft plans) before tracing
        tracemalloc.start()
        measure(find_inputs(d), workers=workers)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    frame = 64 * 80 * 8  # one float64 frame
    # 320 more frames add their per-frame numbers (a few hundred bytes each), never their pixels
    assert peaks[1] < peaks[0] + 20 * frame, peaks
    assert peaks[1] < 200 * frame  # and the batch of 32 frames sets the scale


def test_kept_freed_memory_is_not_faulted_in_again_by_the_next_batches(tmp_path):
    """fr-qc keeps freed memory (``keep_freed_memory``): the pass's batch-sized arrays then reuse the pages
    of the first batches. By default glibc gives them back and faults them in again, batch after batch."""
    import platform
    import subprocess
    import sys

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("mallopt is glibc's")
    frames = SyntheticSession(64, 80, 200, seed=2, shift_px=2.0, warp_px=0.5, margin=30).frames()[..., 0]
    d = _folder(tmp_path / "rec", frames, 200)
    probe = """
import resource, sys
from frkit.pipelining import keep_freed_memory
from frkit.qc.recording import find_inputs, measure
if sys.argv[1] == "keep":
    assert keep_freed_memory()
measure(find_inputs(sys.argv[2]), workers=1)  # imports, first calls, the first batches' pages
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
measure(find_inputs(sys.argv[2]), workers=1)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""
    faults = {how: int(subprocess.run([sys.executable, "-c", probe, how, str(d)], capture_output=True, text=True,
                                      check=True).stdout) for how in ("default", "keep")}
    assert faults["keep"] * 10 < faults["default"], faults

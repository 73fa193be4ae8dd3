"""Temporal smoothing of the flows (--flow-smoothing): the filter, its chunk invariance, and what it buys on
noisy recordings."""

import json

import h5py
import numpy as np
import pytest

from frkit import layout, tools
from frkit.chunks import join
from frkit.flow_time import SMOOTHING_CHOICES, StreamingFlowFilter, choose_smoothing, context_frames, \
    flow_noise, radius, smoother_matrix, smoothing_risk
from frkit.noise import ALPHA_CEILING, ALPHA_PER_VARIANCE, SMOOTHING_FROM_ALPHA, auto_flow_smoothing
from frkit.options import FLOW_SMOOTHING_AUTO
from frkit.synth import Motion, MotionError, SyntheticSession

from conftest import run_tool, write_h5


def gaussian_in_batch(flows, sigma, b0, b1):
    """The definition, frame by frame: Gaussian taps within the batch, renormalized."""
    r = radius(sigma)
    out = np.empty_like(flows, dtype=np.float64)
    for t in range(b0, b1):
        ks = [k for k in range(-r, r + 1) if b0 <= t + k < b1]
        g = np.exp(-0.5 * (np.array(ks) / sigma) ** 2)
        out[t - b0] = sum(gk * flows[t + k - b0] for gk, k in zip(g, ks)) / g.sum()
    return out


def stream(flows, sigma, b0, cuts):
    """Push ``flows`` (frames ``b0..``) in chunks ending at ``cuts``; returns the smoothed flows and payload."""
    f = StreamingFlowFilter(sigma, b0, b0 + len(flows))
    pieces, a = [], b0
    for b in cuts:
        pieces += f.push(a, flows[a - b0:b - b0], np.arange(a, b))
        a = b
    pieces += f.finish()
    assert [p[0] for p in pieces] == sorted(p[0] for p in pieces)
    return np.concatenate([p[1] for p in pieces]), np.concatenate([p[2] for p in pieces])


def test_streamed_filter_is_the_gaussian_and_has_the_same_bits_however_cut():
    rng = np.random.default_rng(0)
    flows = rng.normal(size=(23, 5, 6, 2)).astype(np.float32)
    whole, payload = stream(flows, 1.0, 100, [123])
    np.testing.assert_allclose(whole, gaussian_in_batch(flows, 1.0, 100, 123), atol=1e-5)
    assert payload.tolist() == list(range(100, 123))  # every frame once, in order, with its own payload
    for cuts in ([101, 102, 110, 123], [104, 108, 112, 116, 120, 123], [122, 123]):
        assert np.array_equal(stream(flows, 1.0, 100, cuts)[0], whole), cuts
    assert np.abs(whole).std() < 0.6 * np.abs(flows).std()  # noise really averaged


def test_translation_and_rest_smoothed_apart_are_their_gaussians_with_the_same_bits_however_cut():
    rng = np.random.default_rng(1)
    flows = rng.normal(size=(30, 5, 6, 2)).astype(np.float32) + rng.normal(size=(30, 1, 1, 2)).astype(np.float32)
    mean = flows.astype(np.float64).mean(axis=(1, 2), keepdims=True)
    expected = gaussian_in_batch(np.broadcast_to(mean, flows.shape), 0.7, 0, 30) + \
        gaussian_in_batch(flows - mean, 3.0, 0, 30)
    whole, _ = stream(flows, (0.7, 3.0), 0, [30])
    np.testing.assert_allclose(whole, expected, atol=1e-5)
    for cuts in ([1, 2, 17, 30], [9, 18, 27, 30], [29, 30]):
        assert np.array_equal(stream(flows, (0.7, 3.0), 0, cuts)[0], whole), cuts
    # equal sigmas are the one-sigma filter, bit for bit
    assert np.array_equal(stream(flows, (1.0, 1.0), 0, [7, 30])[0], stream(flows, 1.0, 0, [30])[0])


def test_smoothing_risk_is_unbiased_for_white_and_correlated_noise():
    """Averaged over noise draws, the risk estimate is the true error of the smoothed samples."""
    rng = np.random.default_rng(2)
    k, n = 20, 30
    motion = np.sin(np.arange(k)[:, None] / 3.0 + rng.uniform(0, 6, n)[None, :])  # correlated over frames
    prefilter = np.array([0.2, 0.6, 0.2])  # noise shared by neighbours, as after a temporal prefilter
    cov = (float(prefilter @ prefilter), float(prefilter[:2] @ prefilter[1:]), float(prefilter[0] * prefilter[2]))
    for noise_cov, make in (((1.0,), lambda: rng.normal(size=(k, n))),
                            (cov, lambda: np.apply_along_axis(np.convolve, 0, rng.normal(size=(k + 2, n)),
                                                              prefilter, "valid"))):
        for sigma in (0.0, 1.0, 3.0):
            lm = smoother_matrix(k, sigma)
            estimates, errors = [], []
            for _ in range(400):
                x = motion + 0.3 * make()
                estimates.append(smoothing_risk(x @ x.T, n, sigma, [0.09 * c for c in noise_cov]))
                errors.append(np.mean((lm @ x - motion) ** 2))
            assert np.mean(estimates) == pytest.approx(np.mean(errors), rel=0.03, abs=1e-3), (noise_cov, sigma)


def test_choice_smooths_noise_widely_and_motion_larger_than_noise_little():
    rng = np.random.default_rng(3)
    # estimation noise, independent from frame to frame, in the translation and in the rest
    noise = (rng.normal(scale=0.2, size=(22, 16, 16, 2)) + rng.normal(scale=0.2, size=(22, 1, 1, 2))).astype(np.float32)
    known = flow_noise(np.concatenate([noise] * 1), 0)
    assert choose_smoothing(noise, known) == (SMOOTHING_CHOICES[-1],) * 2
    t = np.arange(22)[:, None, None, None]
    y = np.arange(16)[None, :, None, None]
    # translation and a non-rigid ramp that change within two or three frames
    fast = (3 * np.sin(t * 1.3) + np.sin(t * 1.1) * (y - 7.5) / 4 + noise).astype(np.float32)
    sigma_translation, sigma_rest = choose_smoothing(fast, known)
    assert sigma_translation == 0 and sigma_rest <= 0.7
    # uncorrelated jumps of the translation (a low frame rate) are motion, not noise: never smoothed
    jumps = (noise + rng.normal(scale=2.0, size=(22, 1, 1, 2))).astype(np.float32)
    assert choose_smoothing(jumps, known) == (0.0, SMOOTHING_CHOICES[-1])
    assert choose_smoothing(noise[:2], known) == (0.0, 0.0)  # too few frames to choose from


def test_zero_sigma_passes_chunks_through_unchanged():
    flows = np.ones((4, 3, 3, 2), np.float32)
    f = StreamingFlowFilter(0.0, 0, 4)
    (a, out, payload), = f.push(0, flows, np.arange(4))
    assert a == 0 and out is flows and f.finish() == []


def test_context_of_a_time_chunk_stays_in_its_batches():
    assert context_frames(25, 50, 20, 50, 1.0) == (22, 50)  # batch 20:40 and 40:50
    assert context_frames(0, 25, 20, 50, 1.0) == (0, 28)
    assert context_frames(20, 40, 20, 50, 1.0) == (20, 40)  # batch borders are never crossed
    assert context_frames(5, 7, 20, 50, 0.0) == (5, 7)


def test_auto_smoothing_grows_with_the_noise_only_beyond_what_alpha_absorbs():
    at = lambda alpha: auto_flow_smoothing(alpha / ALPHA_PER_VARIANCE, 1.0)  # noqa: E731
    assert at(1.5) == at(SMOOTHING_FROM_ALPHA) == 0.0  # clean and moderate recordings: no smoothing
    assert 0 < at((SMOOTHING_FROM_ALPHA + ALPHA_CEILING) / 2) < 1
    assert at(ALPHA_CEILING) == at(4 * ALPHA_CEILING) == 1.0


def joined_plans(root, *folders):
    """Assert each joined stage-1 folder holds the bytes of ``root/whole``; the per-batch flow smoothing of
    ``whole`` and of each folder, from their records."""
    from test_chunks import STAGE1_FILES

    for d in folders:
        for name in STAGE1_FILES:
            assert (root / d / name).read_bytes() == (root / "whole" / name).read_bytes(), (d, name)
    return [json.loads((root / d / layout.RECORD).read_text())["summary"]["flow_smoothing_per_batch"]
            for d in ("whole",) + folders]


def test_time_chunks_with_smoothing_are_the_bytes_of_a_whole_run(tmp_path):
    from test_chunks import STAGE1_FILES, chunked, params, write_recording

    rec = write_recording(tmp_path / "rec.h5")
    tools.compensate(rec, tmp_path / "whole", params(flow_smoothing=1.5, chunk_size=3))
    tools.compensate(rec, tmp_path / "raw", params(flow_smoothing=0))
    # 0:27 and 27:33 end inside a batch: their last frames need the flows of the next chunk's first ones
    chunked(rec, tmp_path / "joined", [(27, 33), (0, 27), (33, 50)], flow_smoothing=1.5)
    join(tmp_path / "joined")
    for name in STAGE1_FILES:
        assert (tmp_path / "joined" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name
    with h5py.File(tmp_path / "whole" / layout.FLOW) as a, h5py.File(tmp_path / "raw" / layout.FLOW) as b:
        assert not np.allclose(a["u"][()], b["u"][()], atol=1e-3)  # the smoothing really acted
    summary = json.loads((tmp_path / "joined" / layout.RECORD).read_text())["summary"]
    assert summary["flow_smoothing"] == 1.5


def test_time_chunks_choose_each_batch_smoothing_as_a_whole_run(tmp_path):
    """Still, then strongly moving (noisy): the batches choose different smoothing, and time chunks with
    borders inside batches choose, and write, exactly what the whole run does."""
    from test_chunks import chunked, params

    still = SyntheticSession(48, 48, 40, seed=9, shift_px=0.0, warp_px=0.0, photons=1.5).frames()
    moving = SyntheticSession(48, 48, 40, seed=9, shift_px=6.0, warp_px=2.5, photons=1.5).frames()
    rec = write_h5(tmp_path / "rec.h5", np.concatenate([still, moving]))
    tools.compensate(rec, tmp_path / "whole", params())
    chunked(rec, tmp_path / "joined", [(30, 55), (0, 30), (55, 80)])
    join(tmp_path / "joined")
    # the reference step stops the chain at the last chunk's start: the chunks choose the later batches'
    tools.compensate(rec, tmp_path / "until", params(reference_only=True, initialize_until=30))
    for span in [(30, 80), (0, 30)]:
        tools.compensate(rec, tmp_path / "until", params(frames=span))
    join(tmp_path / "until")
    plans = joined_plans(tmp_path, "joined", "until")
    assert plans[0] == plans[1] == plans[2] and len(plans[0]) == 4
    # batch 3 is chosen from the last frames of batch 2 (moving): its translation is smoothed less
    assert plans[0][0][0] >= 4 and plans[0][3][0] < 1, plans[0]
    assert len({tuple(p) for p in plans[0]}) > 1 and any(p[0] != p[1] for p in plans[0])


def test_a_time_chunk_ending_before_its_batch_carries_on_chooses_nothing_for_later_batches(tmp_path):
    """A chunk that stops inside a batch whose successor the shared reference left to the chunks: it has not
    computed the frames that choice comes from, and must not choose from fewer (or none)."""
    from frkit import options

    def params(**kw):
        return options.resolve(options.COMPENSATE, quality="fast", buffer_size=80, save_w=True, **kw)

    s = SyntheticSession(48, 48, 200, seed=9, shift_px=3.0, warp_px=1.0, photons=1.5)
    rec = write_h5(tmp_path / "rec.h5", s.frames())
    tools.compensate(rec, tmp_path / "whole", params())
    tools.compensate(rec, tmp_path / "joined", params(reference_only=True, initialize_until=90))
    # 0:90 ends before batch 80:160's carried frames (140:160), even with the widest sigma's context
    for span in [(0, 90), (90, 200)]:
        tools.compensate(rec, tmp_path / "joined", params(frames=span))
    join(tmp_path / "joined")
    plans = joined_plans(tmp_path, "joined")
    assert plans[0] == plans[1] and len(plans[0]) == 3


def _residual(tmp_path, s, **kw):
    """Residual motion (px) of fr-compensate's flows against the truth, and the summary."""
    from test_compensate import run

    path = write_h5(tmp_path / "rec.h5", s.frames())
    out = tmp_path / "out"
    summary = run(path, out, quality="balanced", save_w=True, **kw)
    with h5py.File(out / layout.FLOW) as f:
        flows = np.stack([f["u"][:], f["v"][:]], -1)
    err = MotionError(border=16)
    for t in range(s.n_frames):
        err.add(flows[t], s.true_flow(t))
    return err, summary


def test_still_noisy_recording_comes_out_still_by_default(tmp_path):
    s = SyntheticSession(128, 128, 24, seed=9, shift_px=0.0, warp_px=0.0, photons=1.5)
    auto, summary = _residual(tmp_path, s)
    unsmoothed, _ = _residual(tmp_path, s, flow_smoothing=0)
    # applied and recorded
    assert summary["flow_smoothing"] == FLOW_SMOOTHING_AUTO["balanced"] and summary["alpha"][0] == ALPHA_CEILING
    assert summary["flow_smoothing_per_batch"][0][1] >= 4  # the flow is noise: smoothed widely
    # the noise-adapted alpha alone leaves ~0.19 px of invented motion, a fixed sigma of 0.7 frames ~0.11;
    # the chosen smoothing about 0.03
    assert auto.residual_rms < 0.06 < 0.14 < unsmoothed.residual_rms, (auto.residual_rms, unsmoothed.residual_rms)


def test_strong_motion_in_a_very_noisy_recording_is_still_corrected(tmp_path):
    s = SyntheticSession(128, 128, 40, seed=9, shift_px=6.0, warp_px=2.5, photons=1.5)
    auto, summary = _residual(tmp_path, s)
    unsmoothed, _ = _residual(tmp_path, s, flow_smoothing=0)
    assert summary["flow_smoothing"] == FLOW_SMOOTHING_AUTO["balanced"]
    # within the bound of the moderately noisy test, and no worse than without smoothing (sigma 1 would be)
    assert auto.input_rms > 4 and auto.residual_rms < 0.3, auto.residual_rms
    assert auto.residual_rms <= unsmoothed.residual_rms, (auto.residual_rms, unsmoothed.residual_rms)


def test_uncorrelated_jumps_in_a_noisy_recording_are_not_smoothed_away(tmp_path):
    """At a low frame rate the motion between frames is independent: it must not be taken for noise (a fixed
    sigma of 0.7 frames leaves about 1.3 px of the 2.7 px here)."""
    s = SyntheticSession(128, 128, 30, seed=9, shift_px=0.0, warp_px=0.0, photons=1.5)
    s.motion = Motion(np.random.default_rng(5).normal(scale=2.0, size=(30, 2)), [])
    auto, summary = _residual(tmp_path, s)
    unsmoothed, _ = _residual(tmp_path, s, flow_smoothing=0)
    assert summary["flow_smoothing_per_batch"][0][0] == 0.0  # the translation is motion
    assert auto.input_rms > 2 and auto.residual_rms <= unsmoothed.residual_rms < 0.3, \
        (auto.residual_rms, unsmoothed.residual_rms)


def test_a_given_alpha_keeps_pyflowreg_behaviour_and_bad_values_are_refused(tmp_path):
    s = SyntheticSession(64, 64, 6, seed=9, shift_px=0.0, warp_px=0.0, photons=1.5)
    path = write_h5(tmp_path / "rec.h5", s.frames())
    from test_compensate import run

    assert run(path, tmp_path / "a", alpha=(1.5, 1.5))["flow_smoothing"] == 0.0
    p = run_tool("fr-compensate", path, "-o", tmp_path / "b", "--flow-smoothing", "-1", "-q")
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and "--flow-smoothing" in p.stderr
    assert not (tmp_path / "b" / layout.RECORD).exists()



def test_the_gpu_engine_smooths_the_flows_as_the_cpu_does(tmp_path):
    from frkit.compensate import compensate_recording
    from frkit.engine import CpuEngine
    from frkit.gpu.backend import host_compiler
    from frkit.gpu.engine import make_host_engine
    from frkit.io import open_video
    from frkit.options import COMPENSATE, resolve

    if host_compiler() is None:
        pytest.skip("needs a C++ compiler (the GPU kernels run on the host)")
    s = SyntheticSession(64, 64, 20, seed=3, shift_px=2.0, warp_px=1.0, photons=1.5)
    path = write_h5(tmp_path / "r.h5", s.frames())
    flows = {}
    for name, engine in (("cpu", CpuEngine(2)), ("gpu", make_host_engine(7))):
        with open_video(path) as r, engine:
            summary = compensate_recording(r, tmp_path / name, resolve(COMPENSATE, quality="fast", save_w=True,
                                                                      chunk_size=7), engine)
        assert summary["flow_smoothing"] == FLOW_SMOOTHING_AUTO["fast"]
        with h5py.File(tmp_path / name / layout.FLOW) as f:
            flows[name] = np.stack([f["u"][:], f["v"][:]], -1)
    assert np.sqrt(((flows["gpu"] - flows["cpu"]) ** 2).sum(-1).mean()) < 0.03

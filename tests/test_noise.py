"""frkit.noise: the measured noise level and the smoothness weight it calls for (--alpha auto)."""

import json

import numpy as np
import pytest

from frkit import layout
from frkit.noise import ALPHA_CEILING, ALPHA_FLOOR, auto_alpha, noise_variance
from frkit.synth import MotionError, SyntheticSession

from conftest import write_h5


def poisson_truth(s, frames):
    """The Poisson variance of the normalized frames (gain 1), as noise_variance normalizes them."""
    mean = frames.mean(axis=0)
    return float(frames.mean() / (mean.max() - mean.min()) ** 2)


@pytest.mark.parametrize("photons", [1, 16, 256])
@pytest.mark.parametrize("shift", [0.0, 7.0])
def test_noise_variance_matches_the_shot_noise_whatever_the_motion(photons, shift):
    s = SyntheticSession(128, 128, 12, seed=4, shift_px=shift, warp_px=shift / 3, photons=photons)
    frames = s.frames().astype(np.float64)
    want = poisson_truth(s, frames[..., 0])
    assert noise_variance(frames) == pytest.approx(want, rel=0.12)


def test_auto_alpha_keeps_clean_recordings_at_the_classic_weight():
    assert auto_alpha(0.0) == ALPHA_FLOOR == 1.5
    assert auto_alpha(1e-4) == ALPHA_FLOOR
    assert ALPHA_FLOOR < auto_alpha(0.005) < ALPHA_CEILING
    assert auto_alpha(10.0) == ALPHA_CEILING


def _invented_motion(tmp_path, run, alpha):
    """Residual motion (px) of a still recording at about one photon per pixel and frame."""
    s = SyntheticSession(128, 128, 40, seed=9, shift_px=0.0, warp_px=0.0, photons=1.5)
    path = write_h5(tmp_path / "still.h5", s.frames())
    out = tmp_path / f"alpha_{alpha}"
    summary = run(path, out, quality="balanced", save_w=True, alpha=alpha)
    import h5py

    with h5py.File(out / layout.FLOW) as f:
        flows = np.stack([f["u"][:], f["v"][:]], -1)
    err = MotionError(border=16)
    for t in range(s.n_frames):
        err.add(flows[t], s.true_flow(t))
    return err.residual_rms, summary, out


def test_auto_alpha_invents_little_motion_on_a_still_noisy_recording(tmp_path):
    from test_compensate import run

    auto, summary, out = _invented_motion(tmp_path, run, "auto")
    classic, _, _ = _invented_motion(tmp_path, run, (1.5, 1.5))
    assert classic > 0.5  # the problem: the classic weight fits shot noise
    assert auto < 0.3 and auto < classic / 2, (auto, classic)
    record = json.loads((out / layout.RECORD).read_text())
    assert record["parameters"]["alpha"] == "auto" and record["result_parameters"]["alpha"] == "auto"
    assert summary["alpha"][0] > 5 and summary["noise_variance"] > 0  # what was applied is recorded


def test_auto_alpha_still_corrects_strong_motion_in_a_noisy_recording(tmp_path):
    import h5py

    from test_compensate import run

    s = SyntheticSession(128, 128, 40, seed=9, shift_px=6.0, warp_px=2.5, photons=4)
    path = write_h5(tmp_path / "moving.h5", s.frames())
    residual = {}
    for alpha in ("auto", (1.5, 1.5)):
        run(path, tmp_path / "o", quality="balanced", save_w=True, alpha=alpha)
        with h5py.File(tmp_path / "o" / layout.FLOW) as f:
            flows = np.stack([f["u"][:], f["v"][:]], -1)
        err = MotionError(border=16)
        for t in range(s.n_frames):
            err.add(flows[t], s.true_flow(t))
        residual[str(alpha)] = err.residual_rms
    assert err.input_rms > 4  # strong motion, corrected within the bound of the clean-data test
    assert residual["auto"] < 0.3 and residual["auto"] < 0.6 * residual["(1.5, 1.5)"], residual


def test_the_mask_response_is_scipy_ndimage_correlate_bit_for_bit():
    """noise_variance sums the 3x3 mask without scipy.ndimage; the bits (so --alpha auto) must not change."""
    from scipy import ndimage as ndi

    from frkit.noise import _MASK, _mask_response

    rng = np.random.default_rng(7)
    for k in range(50):
        frame = rng.random((30 + k % 4, 35 + k % 6)) * 10.0 ** rng.uniform(-4, 4)
        assert np.array_equal(_mask_response(frame), ndi.correlate(frame, _MASK, mode="reflect")[1:-1, 1:-1]), k

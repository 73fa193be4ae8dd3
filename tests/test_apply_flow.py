"""fr-apply-flow: a saved per-frame flow applied to another recording of the same frames."""

import os
import shutil

import h5py
import numpy as np
import pytest
from conftest import run_in_process as run_tool
from frkit import options, tools
from frkit.synth import SyntheticSession

# channel B's intensity range must not change channel A's normalization (joint would mix them) and
# alpha must not be measured from both channels: then weights (1, 0) make channel B play no part
SAME_FLOW = dict(alpha=2, channel_normalization="separate", quality="fast", save_w=True, workers=1)


@pytest.fixture(scope="module")
def two_channels(tmp_path_factory):
    """Channel A, channel B (another signal, same motion), and fr-compensate runs on A and on (A, B)."""
    d = tmp_path_factory.mktemp("apply")
    rec = SyntheticSession(height=48, width=40, n_frames=12, seed=3)
    a = rec.frames()[..., 0]
    b = (a // 2 + np.random.default_rng(1).integers(0, 50, a.shape)).astype(np.uint16)
    with h5py.File(d / "two.h5", "w") as f:
        f["ch1"], f["ch2"] = a, b
    for name, data in (("a.h5", a), ("b.h5", b)):
        with h5py.File(d / name, "w") as f:
            f["mov"] = data
    tools.compensate(d / "two.h5", d / "two", options.resolve(options.COMPENSATE, weight=(1, 0), **SAME_FLOW))
    tools.compensate(d / "a.h5", d / "a", options.resolve(options.COMPENSATE, **SAME_FLOW))
    np.save(d / "ref_b.npy", np.load(d / "two" / "reference_frame.npy")[..., 1])
    return d


def _ch(path, name="ch1"):
    with h5py.File(path, "r") as f:
        return f[name][:]


def test_flow_of_channel_a_applied_to_b_equals_two_channel_correction(two_channels):
    d = two_channels
    assert np.array_equal(_ch(d / "a" / "w.h5", "u"), _ch(d / "two" / "w.h5", "u"))  # the premise
    r = run_tool("fr-apply-flow", d / "b.h5", d / "a" / "w.h5", "-o", d / "b_fill.h5", "--reference",
                 d / "ref_b.npy", "-q")
    assert r.returncode == 0, r.stderr
    expected = _ch(d / "two" / "compensated.HDF5", "ch2")
    got = _ch(d / "b_fill.h5")
    assert got.dtype == expected.dtype == np.uint16
    # bit for bit: the same warp call, interpolation, rounding and (with channel B's reference) fill
    assert np.array_equal(got, expected)


def test_default_fill_changes_only_out_of_view_pixels(two_channels):
    d = two_channels
    r = run_tool("fr-apply-flow", d / "b.h5", d / "a" / "w.h5", "-o", d / "b_default.h5", "-q")
    assert r.returncode == 0, r.stderr
    got, expected = _ch(d / "b_default.h5"), _ch(d / "two" / "compensated.HDF5", "ch2")
    valid = _ch(d / "two" / "idx.hdf", "idx") > 0
    assert (~valid).sum() > 100  # the motion pushes samples out of view: the fill matters
    assert np.array_equal(got[valid], expected[valid])
    # the default fill is channel B's own reference (not A's): out-of-view pixels look like B
    assert abs(float(got[~valid].mean()) - float(expected[~valid].mean())) < 0.1 * float(expected.mean())


def test_flow_with_float64_and_matlab_names_is_read(two_channels, tmp_path):
    d = two_channels
    with h5py.File(tmp_path / "w.hdf", "w") as f:  # MATLAB Flow-Registration: w.hdf, u/v float64
        for k in "uv":
            f[k] = _ch(d / "a" / "w.h5", k).astype(np.float64)
    r = run_tool("fr-apply-flow", d / "b.h5", tmp_path / "w.hdf", "-o", tmp_path / "b.h5", "--reference",
                 d / "ref_b.npy", "-q")
    assert r.returncode == 0, r.stderr
    assert np.array_equal(_ch(tmp_path / "b.h5"), _ch(d / "two" / "compensated.HDF5", "ch2"))


def _bad_inputs(d, tmp):
    with h5py.File(tmp / "short.h5", "w") as f:
        f["mov"] = _ch(d / "b.h5", "mov")[:10]
    with h5py.File(tmp / "narrow.h5", "w") as f:
        f["mov"] = _ch(d / "b.h5", "mov")[:, :, :32]
    shutil.copy(d / "a" / "w.h5", tmp / "trunc.h5")
    os.truncate(tmp / "trunc.h5", os.path.getsize(tmp / "trunc.h5") // 2)
    with h5py.File(tmp / "no_uv.h5", "w") as f:
        f["x"] = np.zeros((12, 48, 40), np.float32)
    with h5py.File(tmp / "nan.h5", "w") as f:
        u = _ch(d / "a" / "w.h5", "u")
        u[3, 2, 2] = np.nan
        f["u"], f["v"] = u, _ch(d / "a" / "w.h5", "v")
    w, b = d / "a" / "w.h5", d / "b.h5"
    return [((tmp / "short.h5", w), "has 12 flow fields"), ((tmp / "narrow.h5", w), "flow fields are 48x40"),
            ((b, tmp / "missing.h5"), "no such file"), ((b, tmp / "trunc.h5"), "truncated"),
            ((b, tmp / "no_uv.h5"), "no dataset 'u'"), ((b, tmp / "nan.h5"), "frame 3 contains NaN"),
            ((b, w, "--reference", d / "two" / "reference_frame.npy"), "fill image is 48x40x2")]


def test_bad_input_is_one_line_exit_2_and_no_output(two_channels, tmp_path):
    for args, words in _bad_inputs(two_channels, tmp_path):
        out = tmp_path / "out.h5"
        r = run_tool("fr-apply-flow", *args, "-o", out)
        assert r.returncode == 2, (args, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0], (args, r.stderr)
        assert not out.exists() and not (tmp_path / "out.h5.partial").exists()


def test_output_equal_to_input_is_refused(two_channels, tmp_path):
    d = two_channels
    shutil.copy(d / "b.h5", tmp_path / "b.h5")
    r = run_tool("fr-apply-flow", tmp_path / "b.h5", d / "a" / "w.h5", "-o", tmp_path / "b.h5")
    assert r.returncode == 2 and "would be overwritten" in r.stderr

"""fr-compensate end to end: accuracy against known motion, file contracts, determinism."""

import json

import h5py
import numpy as np
import pytest

from frkit import layout
from frkit.compensate import compensate_recording
from frkit.options import COMPENSATE, resolve
from frkit.engine import CpuEngine
from frkit.flow.warp import valid_mask
from frkit.io import open_video
from frkit.synth import MotionError, SyntheticSession

from conftest import write_h5


def run(path, out, workers=2, **kw):
    opts = resolve(COMPENSATE, **kw)
    with open_video(path) as reader, CpuEngine(workers) as engine:
        return compensate_recording(reader, out, opts, engine)


def read_flows(out):
    with h5py.File(out / layout.FLOW, "r") as f:
        return np.stack([f["u"][:], f["v"][:]], -1)


@pytest.fixture(scope="module")
def moving_recording(tmp_path_factory):
    """128x128, 100 frames, rigid drift plus non-rigid warps, peak motion about 4 px."""
    s = SyntheticSession(128, 128, 100, seed=3, shift_px=3.0, warp_px=1.5)
    d = tmp_path_factory.mktemp("moving")
    return s, write_h5(d / "rec.h5", s.frames())


@pytest.fixture(scope="module")
def balanced_result(moving_recording, tmp_path_factory):
    s, path = moving_recording
    out = tmp_path_factory.mktemp("out") / "rec"
    summary = run(path, out, quality="balanced", save_w=True)
    return s, path, out, summary


def test_balanced_leaves_under_a_quarter_pixel_of_residual_motion(balanced_result):
    s, _, out, _ = balanced_result
    assert 3.0 < s.peak_motion() < 5.5
    flows = read_flows(out)
    err = MotionError(border=16)
    for t in range(s.n_frames):
        err.add(flows[t], s.true_flow(t))
    assert err.input_rms > 1.0
    assert err.residual_rms < 0.25, (err.residual_rms, err.input_rms)


def test_output_files_follow_the_contract(balanced_result):
    s, path, out, _ = balanced_result
    t, h, w = s.n_frames, s.height, s.width
    with h5py.File(out / layout.COMPENSATED, "r") as f:
        assert list(f.keys()) == ["ch1"]
        d = f["ch1"]
        assert d.shape == (t, h, w) and d.chunks == (1, h, w) and d.dtype == np.uint16
        assert d.maxshape == (None, h, w)
    with h5py.File(out / layout.VALID_IDX, "r") as f:
        assert list(f.keys()) == ["idx"]
        m = f["idx"][:]
        assert m.shape == (t, h, w) and m.dtype == np.uint8 and set(np.unique(m)) <= {0, 255}
    with h5py.File(out / layout.FLOW, "r") as f:
        assert sorted(f.keys()) == ["u", "v"]
        assert f["u"].shape == (t, h, w) and f["u"].dtype == np.float32
    st = np.load(out / layout.STATISTICS)
    assert sorted(st.files) == sorted(["mean_disp", "max_disp", "mean_div", "mean_translation", "mean_u", "mean_v"])
    assert all(st[k].shape == (t,) and st[k].dtype == np.float64 for k in st.files)
    ref = np.load(out / layout.REFERENCE)
    assert ref.shape == (h, w, 1) and ref.dtype == np.float64
    rec = json.loads((out / layout.RECORD).read_text())
    assert rec["parameters"]["quality"] == "balanced" and rec["summary"]["min_level"] == 4
    assert rec["input"]["path"] == str(path)
    assert rec["frkit_version"]
    assert not list(out.glob("*.partial"))


def test_valid_mask_is_exactly_the_in_bounds_rule(balanced_result):
    _, _, out, _ = balanced_result
    flows = read_flows(out)
    with h5py.File(out / layout.VALID_IDX, "r") as f:
        idx = f["idx"][:]
    for t in range(len(flows)):
        assert np.array_equal(idx[t] == 255, valid_mask(flows[t]))
    assert (idx == 0).any()  # the motion pushes some pixels out of view


def test_statistics_match_the_stored_flows(balanced_result):
    _, _, out, _ = balanced_result
    flows = read_flows(out).astype(np.float64)
    st = np.load(out / layout.STATISTICS)
    mag = np.hypot(flows[..., 0], flows[..., 1])
    assert np.allclose(st["mean_disp"], mag.mean(axis=(1, 2)))
    assert np.allclose(st["max_disp"], mag.max(axis=(1, 2)))
    mean_u, mean_v = flows[..., 0].mean(axis=(1, 2)), flows[..., 1].mean(axis=(1, 2))
    assert np.allclose(st["mean_translation"], np.hypot(mean_u, mean_v))
    assert np.allclose(st["mean_u"], mean_u) and np.allclose(st["mean_v"], mean_v)


def test_pure_shift_recovered_to_five_hundredths(tmp_path):
    s = SyntheticSession(128, 128, 30, seed=5, shift_px=3.0, warp_px=0.0)
    path = write_h5(tmp_path / "shift.h5", s.frames(dtype=np.float32))
    np.save(tmp_path / "template.npy", s.template())
    run(path, tmp_path / "out", reference_file=str(tmp_path / "template.npy"), quality="balanced", save_w=True)
    flows = read_flows(tmp_path / "out")
    inner = (slice(16, -16), slice(16, -16))
    for t in range(s.n_frames):
        truth = s.true_flow(t)
        err = np.abs(flows[t][inner].mean(axis=(0, 1)) - truth[inner].mean(axis=(0, 1)))
        assert err.max() < 0.05, (t, err)


def test_integer_output_is_rounded_and_clipped_never_wrapped(tmp_path):
    s = SyntheticSession(96, 96, 24, seed=8, shift_px=3.0, warp_px=1.0, photons=None)
    frames = s.frames(dtype=np.float64)
    # a saturated, strongly contrasted recording: cubic overshoot goes past both ends
    u16 = np.where(frames > np.median(frames), 65535, 0).astype(np.uint16)
    path = write_h5(tmp_path / "sat.h5", u16)
    run(path, tmp_path / "int", quality="fast", buffer_size=10, reference_frames=(0, 1, 2))
    run(path, tmp_path / "flt", quality="fast", buffer_size=10, reference_frames=(0, 1, 2), output_dtype="float64")
    with h5py.File(tmp_path / "int" / layout.COMPENSATED) as a, h5py.File(tmp_path / "flt" / layout.COMPENSATED) as b:
        got, ref = a["ch1"][:], b["ch1"][:]
    assert got.dtype == np.uint16 and ref.dtype == np.float64
    assert ref.min() < 0 and ref.max() > 65535  # the overshoot is there...
    assert np.array_equal(got, np.clip(np.rint(ref), 0, 65535).astype(np.uint16))  # ...and clipped


def test_same_bytes_whatever_the_worker_count(moving_recording, tmp_path):
    _, path = moving_recording
    for w in (1, 2):
        run(path, tmp_path / f"w{w}", workers=w, quality="fast", buffer_size=30, save_w=True, chunk_size=7 * w)
    for name in (layout.COMPENSATED, layout.VALID_IDX, layout.FLOW, layout.STATISTICS, layout.REFERENCE):
        assert (tmp_path / "w1" / name).read_bytes() == (tmp_path / "w2" / name).read_bytes(), name


def test_two_channels_with_weights(tmp_path):
    s = SyntheticSession(96, 96, 40, seed=11, shift_px=2.5, warp_px=1.0, channels=2)
    path = write_h5(tmp_path / "two.h5", s.frames())
    run(path, tmp_path / "out", quality="balanced", weight=(0.7, 0.3), save_w=True)
    with h5py.File(tmp_path / "out" / layout.COMPENSATED) as f:
        assert list(f.keys()) == ["ch1", "ch2"] and f["ch2"].shape == (40, 96, 96)
    assert np.load(tmp_path / "out" / layout.REFERENCE).shape == (96, 96, 2)
    flows = read_flows(tmp_path / "out")
    err = MotionError(border=16)
    for t in range(s.n_frames):
        err.add(flows[t], s.true_flow(t))
    assert err.residual_rms < 0.25


@pytest.mark.parametrize("kw", [dict(cc_initialization=True, cc_upsample=4), dict(update_reference=True, buffer_size=20),
                                dict(bin_size=1, update_initialization_w=False), dict(sigma=((1, 1, 0.6),))])
def test_pipeline_options_keep_accuracy(moving_recording, tmp_path, kw):
    s, path = moving_recording
    run(path, tmp_path / "o", quality="balanced", save_w=True, **kw)
    flows = read_flows(tmp_path / "o")
    err = MotionError(border=16)
    for t in range(s.n_frames):
        err.add(flows[t], s.true_flow(t))
    assert err.residual_rms < 0.3, (kw, err.residual_rms)


def test_temporal_binning(moving_recording, tmp_path):
    from frkit.binned import binned

    s, path = moving_recording
    with open_video(path) as raw, CpuEngine(2) as engine:
        reader = binned(raw, 3)
        assert reader.shape[0] == 34
        first = raw.read(0, 3).astype(np.float64).mean(axis=0)
        assert np.array_equal(reader.read(0, 1)[0], np.rint(first).astype(np.uint16))
        # the library applies (and records) bin_size itself
        summary = compensate_recording(raw, tmp_path / "b", resolve(COMPENSATE, quality="fast", bin_size=3), engine)
    assert summary["frames"] == 34
    assert json.loads((tmp_path / "b" / layout.RECORD).read_text())["parameters"]["bin_size"] == 3
    with h5py.File(tmp_path / "b" / layout.COMPENSATED) as f:
        assert f["ch1"].shape == (34, 128, 128)


def test_real_recording_gets_sharper(shared_data, tmp_path):
    """sima_example.tif (real 2-photon data): correction raises frame-to-mean correlation."""
    src = shared_data / "sima_example.tif"
    run(src, tmp_path / "sima", quality="balanced")
    with open_video(src) as r:
        raw = r.read(0, r.shape[0])[..., 0].astype(np.float64)
    with h5py.File(tmp_path / "sima" / layout.COMPENSATED) as f:
        cor = f["ch1"][:].astype(np.float64)
    assert cor.shape == raw.shape

    def mean_corr(v):
        m = v.mean(0)[8:-8, 8:-8].ravel()
        return np.mean([np.corrcoef(f[8:-8, 8:-8].ravel(), m)[0, 1] for f in v])

    assert mean_corr(cor) > mean_corr(raw)

"""--output-format: the corrected video read back by the libraries its next users read it with."""

import json
import sys

import h5py
import numpy as np
import pytest
import tifffile
from conftest import run_in_process as run_tool
from frkit import options, tools
from frkit.errors import OptionError
from frkit.io import open_video
from frkit.synth import SyntheticSession

T, H, W, RATE = 30, 24, 20, 15.0  # more frames than rows: NWB's inspector takes time as the longest axis


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    d = tmp_path_factory.mktemp("handoff")
    frames = SyntheticSession(height=H, width=W, n_frames=T, seed=5, channels=2, margin=4).frames()
    with h5py.File(d / "rec.h5", "w") as f:
        f["ch1"], f["ch2"] = frames[..., 0], frames[..., 1]
    return d / "rec.h5"


def _compensate(recording, out, fmt, **kw):
    params = options.resolve(options.COMPENSATE, quality="fast", alpha=2, workers=1, output_format=fmt, **kw)
    return tools.compensate(recording, out, params)


def _compensated(folder):
    with h5py.File(folder / "compensated.HDF5", "r") as f:
        return np.stack([f["ch1"][:], f["ch2"][:]], -1)


@pytest.fixture(scope="module")
def outputs(recording, tmp_path_factory):
    """One fr-compensate run per format (the NWB one with --save-w and a session template)."""
    root = tmp_path_factory.mktemp("formats")
    template = root / "session.toml"
    template.write_text('session_description = "test session"\nexperimenter = "Doe, Jane"\n'
                        'session_start_time = "2024-05-01T10:00:00+00:00"\ninstitution = "Lab"\n'
                        '[subject]\nsubject_id = "m1"\nspecies = "Mus musculus"\nsex = "F"\nage = "P90D"\n'
                        '[imaging_plane]\nlocation = "VISp"\nindicator = "GCaMP6f"\nexcitation_lambda = 920.0\n')
    out = {}
    for fmt in ("tiff", "suite2p", "caiman"):
        out[fmt] = root / fmt
        _compensate(recording, out[fmt], fmt, frame_rate=RATE)
    if _has_pynwb():
        out["nwb"] = root / "nwb"
        _compensate(recording, out["nwb"], "nwb", frame_rate=RATE, save_w=True, nwb_template=str(template))
    return out


def _has_pynwb():
    import importlib.util

    return importlib.util.find_spec("pynwb") is not None


def test_tiff_is_an_imagej_hyperstack_fiji_splits_into_channels_and_frames(outputs):
    d = outputs["tiff"]
    with tifffile.TiffFile(d / "compensated.tif") as tf:
        assert tf.is_bigtiff and tf.is_imagej
        series = tf.series[0]
        assert series.axes == "TCYX" and series.shape == (T, 2, H, W)
        meta = tf.imagej_metadata
        assert (meta["channels"], meta["frames"], meta["hyperstack"]) == (2, T, True)
        assert meta["fps"] == pytest.approx(RATE)
        data = series.asarray()
    assert data.dtype == np.uint16
    assert np.array_equal(np.moveaxis(data, 1, -1), _compensated(d))


def test_suite2p_binary_and_settings_follow_suite2p_layout(outputs):
    d = outputs["suite2p"]
    plane = d / "suite2p" / "plane0"
    db = np.load(plane / "db.npy", allow_pickle=True).item()
    ops = np.load(plane / "ops.npy", allow_pickle=True).item()
    settings = np.load(plane / "settings.npy", allow_pickle=True).item()
    assert (db["Ly"], db["Lx"], db["nframes"], db["nchannels"], db["nplanes"]) == (H, W, T, 2, 1)
    assert db["reg_file"] == str(plane / "data.bin") and db["reg_file_chan2"] == str(plane / "data_chan2.bin")
    assert ops["do_registration"] == 0 and settings["run"]["do_registration"] == 0
    assert ops["fs"] == settings["fs"] == RATE
    expected = _compensated(d)
    for k, name in enumerate(("data.bin", "data_chan2.bin")):
        movie = np.fromfile(plane / name, dtype=np.int16).reshape(T, H, W)  # suite2p's BinaryFile layout
        assert np.array_equal(movie, (expected[..., k] // 2).astype(np.int16))  # suite2p's uint16 rule


def _caiman_load(path):
    """As caiman.load_memmap and its reshape do: fields from the name, (d1*d2*d3, T) in the named order."""
    parts = path.stem.split("_")[1:]
    f = {k: parts[len(parts) - 1 - parts[::-1].index(k) + 1] for k in ("d1", "d2", "d3", "order", "frames")}
    d1, d2, t = int(f["d1"]), int(f["d2"]), int(f["frames"])
    yr = np.memmap(path, mode="r", shape=(d1 * d2 * int(f["d3"]), t), dtype=np.float32, order=f["order"])
    return np.reshape(yr.T, (t, d1, d2), order="F")


def test_caiman_memmap_loads_as_caiman_loads_it(outputs):
    d = outputs["caiman"]
    expected = _compensated(d)
    for k in range(2):
        path = d / f"compensated_ch{k + 1}_d1_{H}_d2_{W}_d3_1_order_F_frames_{T}.mmap"
        assert np.array_equal(_caiman_load(path), expected[..., k].astype(np.float32))


@pytest.mark.parametrize("fmt,name", [("tiff", "compensated.tif"), ("suite2p", "suite2p/plane0/data_chan2.bin"),
                                      ("caiman", f"compensated_ch2_d1_{H}_d2_{W}_d3_1_order_F_frames_{T}.mmap"),
                                      ("nwb", "compensated.nwb")])
def test_fr_average_reads_every_format_frkit_writes(outputs, fmt, name, tmp_path):
    if fmt not in outputs:
        pytest.skip("pynwb is not installed")
    path = outputs[fmt] / name
    r = run_tool("fr-average", path, "-o", tmp_path / "avg.npy", "-q")
    assert r.returncode == 0, r.stderr
    avg = np.load(tmp_path / "avg.npy")
    expected = _compensated(outputs[fmt]).mean(axis=0)
    if fmt == "suite2p":
        expected = (_compensated(outputs[fmt])[..., 1:] // 2).mean(axis=0)
    elif fmt == "caiman":
        expected = expected[..., 1:]
    assert np.allclose(avg, expected)


def test_truncated_handoff_file_is_one_line_exit_2(outputs, tmp_path):
    src = outputs["caiman"] / f"compensated_ch1_d1_{H}_d2_{W}_d3_1_order_F_frames_{T}.mmap"
    bad = tmp_path / src.name
    bad.write_bytes(src.read_bytes()[:1000])
    r = run_tool("fr-average", bad, "-o", tmp_path / "avg.npy")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "truncated" in r.stderr


def test_nwb_movie_equals_compensated_hdf5_with_provenance(outputs):
    pynwb = pytest.importorskip("pynwb")
    d = outputs["nwb"]
    expected = _compensated(d)
    with h5py.File(d / "w.h5", "r") as f:
        u = f["u"][:]
    with pynwb.NWBHDF5IO(str(d / "compensated.nwb"), "r") as io:
        nwb = io.read()
        assert nwb.subject.subject_id == "m1" and nwb.session_description == "test session"
        ophys = nwb.processing["ophys"]
        mc = ophys["MotionCorrection"]
        for k in range(2):
            stack = mc.corrected_image_stacks[f"CorrectedImageStack_ch{k + 1}"]
            assert isinstance(stack.corrected, pynwb.ophys.TwoPhotonSeries)
            assert np.array_equal(stack.corrected.data[:], expected[..., k])
            assert stack.corrected.rate == RATE
            assert stack.original is nwb.acquisition["original"]
            assert stack.original.external_file[0].endswith("rec.h5")
            xy = stack.xy_translation.data[:]
            assert xy.shape == (T, 2)
            assert np.allclose(xy[:, 0], u.mean(axis=(1, 2)), atol=1e-4)  # mean u of each frame
        assert np.array_equal(ophys["flow_u"].data[:], u)
        with h5py.File(d / "idx.hdf", "r") as f:
            assert np.array_equal(ophys["valid_mask"].data[:], f["idx"][:])


def _critical(path):
    from nwbinspector import Importance, inspect_nwbfile

    return [m for m in inspect_nwbfile(nwbfile_path=str(path)) if m.importance == Importance.CRITICAL]


def test_nwbinspector_finds_no_critical_issue(outputs):
    pytest.importorskip("nwbinspector")
    if "nwb" not in outputs:
        pytest.skip("pynwb is not installed")
    assert _critical(outputs["nwb"] / "compensated.nwb") == []


def test_nwb_input_gives_a_copy_with_the_original_series_linked(tmp_path):
    pynwb = pytest.importorskip("pynwb")
    pytest.importorskip("nwbinspector")
    from datetime import datetime, timezone

    from pynwb.file import Subject
    from pynwb.ophys import OpticalChannel, TwoPhotonSeries

    frames = SyntheticSession(height=H, width=W, n_frames=T, seed=6, margin=4).frames()[..., 0]
    nwb = pynwb.NWBFile(session_description="raw", identifier="raw-1", experimenter=["Doe, Jane"],
                        session_start_time=datetime(2024, 5, 1, tzinfo=timezone.utc), institution="Lab",
                        experiment_description="test", keywords=["test"],
                        subject=Subject(subject_id="m2", species="Mus musculus", sex="M", age="P60D"))
    dev = nwb.create_device(name="scope")
    plane = nwb.create_imaging_plane(name="plane", optical_channel=OpticalChannel(name="green", description="green", emission_lambda=510.0),
                                     description="L2/3", device=dev, excitation_lambda=920.0, imaging_rate=RATE,
                                     indicator="GCaMP6f", location="VISp")
    nwb.add_acquisition(TwoPhotonSeries(name="TwoPhotonSeries", data=frames, imaging_plane=plane, rate=RATE,
                                        unit="n.a."))
    with pynwb.NWBHDF5IO(str(tmp_path / "raw.nwb"), "w") as io:
        io.write(nwb)
    _compensate(tmp_path / "raw.nwb", tmp_path / "out", "nwb")  # the rate comes from the input
    with pynwb.NWBHDF5IO(str(tmp_path / "out" / "compensated.nwb"), "r") as io:
        out = io.read()
        stack = out.processing["ophys"]["MotionCorrection"].corrected_image_stacks["CorrectedImageStack"]
        raw = out.acquisition["TwoPhotonSeries"]
        assert stack.original is raw and out.subject.subject_id == "m2"
        assert np.array_equal(raw.data[:], frames)
        with h5py.File(tmp_path / "out" / "compensated.HDF5", "r") as f:
            assert np.array_equal(stack.corrected.data[:], f["ch1"][:])
        assert stack.corrected.imaging_plane is raw.imaging_plane
    assert _critical(tmp_path / "out" / "compensated.nwb") == []


def test_nwb_without_frame_rate_fails_cleanly(recording, tmp_path):
    pytest.importorskip("pynwb")
    r = run_tool("fr-compensate", recording, "-o", tmp_path / "out", "--quality", "fast", "--alpha", "2",
                 "--output-format", "nwb")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "--frame-rate" in r.stderr
    assert not (tmp_path / "out").exists()  # refused before any work


def test_missing_pynwb_is_a_clear_error(monkeypatch, tmp_path, recording):
    from frkit.io.nwb_out import write_nwb

    monkeypatch.setitem(sys.modules, "pynwb", None)  # import pynwb raises ImportError
    with open_video(recording) as reader, pytest.raises(OptionError, match=r"pip install 'frkit\[nwb\]'"):
        write_nwb(reader, tmp_path / "x.nwb", rate=RATE, source=recording)
    # the tools refuse before computing anything
    r = run_tool("fr-compensate", recording, "-o", tmp_path / "out", "--output-format", "nwb", "--frame-rate", "10")
    assert r.returncode == 2 and "pip install 'frkit[nwb]'" in r.stderr and not (tmp_path / "out").exists()


def test_reproject_and_apply_flow_hand_on_too(outputs, tmp_path):
    d = outputs["tiff"]
    np.savez(tmp_path / "w_to_reference.npz", u=np.full((H, W), 0.5), v=np.zeros((H, W)))
    r = run_tool("fr-reproject", d / "compensated.HDF5", tmp_path / "w_to_reference.npz", "--fill", "zero",
                 "-o", tmp_path / "aligned.h5", "--output-format", "caiman", "-q")
    assert r.returncode == 0, r.stderr
    with h5py.File(tmp_path / "aligned.h5", "r") as f:
        aligned = f["ch2"][:]
    mm = tmp_path / f"aligned_ch2_d1_{H}_d2_{W}_d3_1_order_F_frames_{T}.mmap"
    assert np.array_equal(_caiman_load(mm), aligned.astype(np.float32))

    with h5py.File(tmp_path / "w.h5", "w") as f:
        f["u"], f["v"] = np.full((T, H, W), 0.5, np.float32), np.zeros((T, H, W), np.float32)
    r = run_tool("fr-apply-flow", d / "compensated.HDF5", tmp_path / "w.h5", "-o", tmp_path / "moved.h5",
                 "--output-format", "tiff", "--frame-rate", "7", "-q")
    assert r.returncode == 0, r.stderr
    with tifffile.TiffFile(tmp_path / "moved.tif") as tf, h5py.File(tmp_path / "moved.h5", "r") as f:
        assert tf.series[0].axes == "TCYX" and tf.imagej_metadata["fps"] == 7
        assert np.array_equal(tf.series[0].asarray()[:, 1], f["ch2"][:])
    summary = json.loads((d / "compensate.json").read_text())["summary"]
    assert summary["handoff"] == [str(d / "compensated.tif")]


def test_suite2p_with_three_channels_is_refused_before_computing(tmp_path):
    frames = SyntheticSession(height=H, width=W, n_frames=T, seed=7, channels=3, margin=4).frames()
    with h5py.File(tmp_path / "rec3.h5", "w") as f:
        for k in range(3):
            f[f"ch{k + 1}"] = frames[..., k]
    r = run_tool("fr-compensate", tmp_path / "rec3.h5", "-o", tmp_path / "out", "--output-format", "suite2p")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "at most 2 channels" in r.stderr
    assert not (tmp_path / "out").exists()


def test_a_failed_hand_on_copy_removes_the_whole_set(recording, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "suite2p").write_text("a file where suite2p's folder goes")  # the copy fails after the computation
    r = run_tool("fr-compensate", recording, "-o", out, "--quality", "fast", "--alpha", "2",
                 "--output-format", "suite2p", "-q")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "cannot create" in r.stderr
    left = sorted(p.name for p in out.rglob("*") if p.is_file())
    assert left == ["suite2p"]  # neither compensated.HDF5 nor a record nor a partial binary is left for a result

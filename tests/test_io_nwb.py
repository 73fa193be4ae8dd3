"""NWB input: TwoPhotonSeries / OnePhotonSeries read as (T, H, W, C), lazily; external files followed."""

from datetime import datetime, timezone

import numpy as np
import pytest
import tifffile

from frkit.errors import InputError, OptionError
from frkit.io import open_video

from conftest import check_reader, make_video, run_tool

pynwb = pytest.importorskip("pynwb")
from pynwb import NWBHDF5IO, NWBFile  # noqa: E402
from pynwb.ophys import OnePhotonSeries, OpticalChannel, TwoPhotonSeries  # noqa: E402


def _nwb(path, series):
    """An NWB file holding ``series``: a list of (class, name, kwargs) on one imaging plane."""
    f = NWBFile(session_description="test", identifier="frkit", session_start_time=datetime(2026, 1, 1,
                                                                                          tzinfo=timezone.utc))
    dev = f.create_device(name="scope")
    plane = f.create_imaging_plane(name="plane", optical_channel=OpticalChannel(name="green", description="g",
                                                                                   emission_lambda=510.0),
                                   description="p", device=dev, excitation_lambda=920.0, indicator="GCaMP",
                                   location="V1", imaging_rate=30.0)
    for cls, name, kw in series:
        timing = {} if "timestamps" in kw else {"rate": 30.0}
        f.add_acquisition(cls(name=name, imaging_plane=plane, unit="n.a.", **timing, **kw))
    with NWBHDF5IO(str(path), "w") as io:
        io.write(f)
    return path


def test_two_photon_series_is_frames_rows_columns(tmp_path):
    video = make_video((7, 6, 5), "uint16")  # (T, H, W), as suite2p and frkit store it
    p = _nwb(tmp_path / "rec.nwb", [(TwoPhotonSeries, "TwoPhotonSeries", {"data": video})])
    with open_video(p) as r:
        assert "TwoPhotonSeries" in r.description
        check_reader(r, video[..., None])
    with open_video(p, axes="TWH") as r:  # a file stored strictly x (columns) first
        check_reader(r, video.transpose(0, 2, 1)[..., None])


def test_several_series_need_dataset(tmp_path):
    a, b = make_video((4, 6, 5), "int16", seed=1), make_video((4, 6, 5), "float32", seed=2)
    p = _nwb(tmp_path / "two.nwb", [(TwoPhotonSeries, "green", {"data": a}),
                                    (OnePhotonSeries, "wide", {"data": b})])
    with pytest.raises(InputError, match=r"two\.nwb: several imaging series \(acquisition/green, acquisition/wide\)"):
        open_video(p)
    with open_video(p, datasets=["wide"]) as r:
        check_reader(r, b[..., None])
    with open_video(p, datasets=["acquisition/green"]) as r:
        check_reader(r, a[..., None])
    with pytest.raises(InputError, match=r"two\.nwb: no imaging series 'red'"):
        open_video(p, datasets=["red"])


def test_external_file_series(tmp_path):
    video = make_video((9, 6, 5), "uint16")
    for i in range(3):
        tifffile.imwrite(tmp_path / f"ext_{i + 1}.tif", video[3 * i:3 * i + 3], photometric="minisblack")
    p = _nwb(tmp_path / "ext.nwb", [(TwoPhotonSeries, "TwoPhotonSeries", {
        "external_file": ["ext_1.tif", "ext_2.tif", "ext_3.tif"], "starting_frame": [0, 3, 6], "format": "external",
        "dimension": [5, 6], "timestamps": np.arange(9) / 30.0})])
    with open_video(p) as r:
        check_reader(r, video[..., None])
    (tmp_path / "ext_2.tif").unlink()
    with pytest.raises(InputError, match=r"ext_2\.tif: no such file \(external_file of TwoPhotonSeries in ext\.nwb\)"):
        open_video(p)


def test_broken_nwb_files(tmp_path):
    video = make_video((40, 32, 24), "uint16")
    p = _nwb(tmp_path / "cut.nwb", [(TwoPhotonSeries, "TwoPhotonSeries", {"data": video})])
    raw = p.read_bytes()
    p.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputError, match=r"cut\.nwb: "):
        with open_video(p) as r:
            r.read(0, r.n_frames)
    q = tmp_path / "none.nwb"
    f = NWBFile(session_description="t", identifier="x", session_start_time=datetime(2026, 1, 1, tzinfo=timezone.utc))
    with NWBHDF5IO(str(q), "w") as io:
        io.write(f)
    with pytest.raises(InputError, match=r"none\.nwb: no TwoPhotonSeries or OnePhotonSeries"):
        open_video(q)


def test_fr_compensate_nwb_bad_dataset_is_one_line(tmp_path):
    video = make_video((4, 6, 5), "uint16")
    p = _nwb(tmp_path / "rec.nwb", [(TwoPhotonSeries, "TwoPhotonSeries", {"data": video})])
    res = run_tool("fr-compensate", p, "-o", tmp_path / "out", "--dataset", "nope", "-q")
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "no imaging series 'nope'" in res.stderr


def test_missing_pynwb_is_a_clear_error(tmp_path, monkeypatch):
    p = _nwb(tmp_path / "rec.nwb", [(TwoPhotonSeries, "TwoPhotonSeries", {"data": make_video((4, 6, 5), "uint8")})])
    monkeypatch.setitem(__import__("sys").modules, "pynwb", None)
    with pytest.raises(InputError, match=r"rec\.nwb: reading NWB files needs pynwb: pip install 'frkit\[nwb\]'"):
        open_video(p)

"""Scanbox .sbx + .mat: frames, channels and the inverted uint16 convention, built to Scanbox's layout."""

import numpy as np
import pytest
import scipy.io

from frkit.errors import InputError
from frkit.io import open_video

from conftest import check_reader, make_video, run_tool


def _sbx(path, video, info):
    """``video`` (T, H, W, C) uint16 intensities stored as Scanbox does: MATLAB [nchan, cols, lines, T]
    column-major, i.e. C-order (T, lines, cols, nchan), inverted (65535 - value)."""
    (65535 - video).astype("<u2").tofile(path)
    scipy.io.savemat(path.with_suffix(".mat"), {"info": info})
    return path


@pytest.mark.parametrize("header", ["channels=1", "chan.nchan=2"])
def test_two_channels(tmp_path, header):
    video = make_video((5, 8, 6, 2), "uint16")
    info = {"sz": np.array([8, 6]), "recordsPerBuffer": 8, "scanmode": 1}
    info.update({"channels": 1} if header == "channels=1" else {"chan": {"nchan": 2}, "channels": -1})
    p = _sbx(tmp_path / "mouse_000_001.sbx", video, info)
    with open_video(p) as r:
        assert "Scanbox" in r.description
        check_reader(r, video)


@pytest.mark.parametrize("channels", [2, 3])
def test_one_pmt(tmp_path, channels):
    video = make_video((4, 8, 6, 1), "uint16")
    p = _sbx(tmp_path / "one.sbx", video, {"sz": np.array([8, 6]), "channels": channels,
                                           "recordsPerBuffer": 4, "scanmode": 0})
    with open_video(p) as r:
        check_reader(r, video)


def test_a_directory_with_sbx_and_mat_is_one_recording(tmp_path):
    video = make_video((4, 8, 6, 1), "uint16")
    _sbx(tmp_path / "one.sbx", video, {"sz": np.array([8, 6]), "channels": 2})
    with open_video(tmp_path) as r:  # the .mat header is not taken for a video
        check_reader(r, video)


def test_broken_scanbox_files(tmp_path):
    video = make_video((4, 8, 6, 2), "uint16")
    p = _sbx(tmp_path / "cut.sbx", video, {"sz": np.array([8, 6]), "channels": 1})
    p.write_bytes(p.read_bytes()[:-10])
    with pytest.raises(InputError, match=r"cut\.sbx: truncated Scanbox file"):
        open_video(p)
    p.with_suffix(".mat").unlink()
    with pytest.raises(InputError, match=r"cut\.sbx: its Scanbox header cut\.mat is missing"):
        open_video(p)
    q = _sbx(tmp_path / "nosz.sbx", video, {"channels": 1})
    res = run_tool("fr-compensate", q, "-o", tmp_path / "out", "-q")
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "nosz.mat: Scanbox info lacks" in res.stderr

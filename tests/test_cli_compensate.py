"""fr-compensate as a command: exit statuses, one-line errors, nothing half-written."""

import os

import h5py
import numpy as np
import pytest

from frkit import layout
from frkit.synth import SyntheticSession

from conftest import run_tool

RESULT_NAMES = set(layout.COMPENSATE_OUTPUTS)


def fr(*args, env=None):
    return run_tool("fr-compensate", *args, env=env)


def one_error_line(proc):
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("fr-compensate: error: "), lines[0]
    assert "Traceback" not in proc.stderr
    return lines[0]


def leftovers(outdir):
    if not outdir.exists():
        return set()
    return {p.name for p in outdir.iterdir()}


@pytest.fixture(scope="module")
def small_h5(tmp_path_factory):
    s = SyntheticSession(64, 64, 12, seed=2, shift_px=2.0, warp_px=0.5)
    path = tmp_path_factory.mktemp("in") / "small.h5"
    with h5py.File(path, "w") as f:
        f["mov"] = s.frames()[..., 0]
    return path


def test_runs_and_reports_one_summary_line(small_h5, tmp_path):
    p = fr(small_h5, "-o", tmp_path / "out", "--quality", "fast")
    assert p.returncode == 0, p.stderr
    assert p.stdout == ""
    assert len(p.stderr.strip().splitlines()) == 1 and "frames/s" in p.stderr
    assert {layout.COMPENSATED, layout.VALID_IDX, layout.STATISTICS, layout.REFERENCE, layout.RECORD} <= \
        leftovers(tmp_path / "out")
    q = fr(small_h5, "-o", tmp_path / "q", "--quality", "fast", "-q")
    assert q.returncode == 0 and q.stderr == ""


def test_help_lists_every_option_with_defaults():
    p = fr("--help")
    assert p.returncode == 0
    for opt in ("--alpha", "--weight", "--levels", "--min-level", "--quality", "--eta", "--update-lag",
                "--iterations", "--a-smooth", "--a-data", "--sigma", "--bin-size", "--buffer-size",
                "--reference-frames", "--reference", "--update-reference", "--update-initialization-w",
                "--cc-init", "--cc-up", "--channel-normalization", "--interpolation", "--save-w",
                "--output-dtype", "--workers", "--device", "--dataset", "--axes", "--deinterleave"):
        assert opt in p.stdout, opt
    assert "default" in p.stdout


@pytest.mark.parametrize("args,needle", [
    (["--quality", "best"], "--quality"),
    (["--bogus"], "--bogus"),
    (["--alpha", "x"], "--alpha"),
    (["--sigma", "1,1"], "sigma"),
    (["--a-data", "2"], "--a-data"),
    (["--reference-frames", "9:3"], "--reference-frames"),
    (["--device", "tpu"], "device"),
])
def test_bad_options_exit_2_with_one_line(small_h5, tmp_path, args, needle):
    out = tmp_path / "out"
    p = fr(small_h5, "-o", out, *args)
    assert p.returncode == 2
    assert needle in one_error_line(p)
    assert not (leftovers(out) & RESULT_NAMES)


def test_missing_input(tmp_path):
    p = fr(tmp_path / "nope.h5", "-o", tmp_path / "out")
    assert p.returncode == 2 and "nope.h5" in one_error_line(p)
    assert not (tmp_path / "out").exists()


def test_truncated_hdf5(small_h5, tmp_path):
    bad = tmp_path / "cut.h5"
    data = small_h5.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    p = fr(bad, "-o", tmp_path / "out")
    assert p.returncode == 2 and "cut.h5" in one_error_line(p)
    assert not (leftovers(tmp_path / "out") & RESULT_NAMES)


def test_no_video_dataset(tmp_path):
    path = tmp_path / "novideo.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.zeros(10)
    p = fr(path, "-o", tmp_path / "out")
    assert p.returncode == 2 and "novideo.h5" in one_error_line(p)


def test_fewer_than_two_frames(tmp_path):
    path = tmp_path / "one.h5"
    with h5py.File(path, "w") as f:
        f["mov"] = np.ones((1, 32, 32), np.uint16)
    p = fr(path, "-o", tmp_path / "out")
    assert p.returncode == 2 and "frame" in one_error_line(p)
    assert not (leftovers(tmp_path / "out") & RESULT_NAMES)


def test_nan_frames_leave_nothing_that_looks_like_a_result(tmp_path):
    s = SyntheticSession(64, 64, 30, seed=1)
    frames = s.frames(dtype=np.float32)[..., 0]
    frames[25, 10, 10] = np.nan  # found mid-run, after outputs were opened
    path = tmp_path / "nan.h5"
    with h5py.File(path, "w") as f:
        f["mov"] = frames
    out = tmp_path / "out"
    p = fr(path, "-o", out, "--quality", "fast", "--reference-frames", "0:5", "--buffer-size", "10")
    assert p.returncode == 2
    assert "frame 25" in one_error_line(p) and "NaN" in p.stderr
    assert leftovers(out) == set()


def test_unwritable_output_directory(small_h5, tmp_path):
    if os.geteuid() == 0:
        blocker = tmp_path / "file"
        blocker.write_text("not a directory")
        p = fr(small_h5, "-o", blocker / "sub")
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        p = fr(small_h5, "-o", ro / "sub")
    assert p.returncode == 2
    one_error_line(p)


def test_output_path_equal_to_input(tmp_path, small_h5):
    d = tmp_path / "d"
    d.mkdir()
    target = d / layout.COMPENSATED
    target.write_bytes(small_h5.read_bytes())
    p = fr(target, "-o", d)
    assert p.returncode == 2 and "overwritten" in one_error_line(p)
    assert target.read_bytes() == small_h5.read_bytes()


def test_failed_reruns(small_h5, tmp_path):
    out = tmp_path / "out"
    assert fr(small_h5, "-o", out, "--quality", "fast").returncode == 0
    before = {n: (out / n).read_bytes() for n in leftovers(out)}
    # refused before any work: the previous complete result stays as it was
    p = fr(small_h5, "-o", out, "--quality", "fast", "--reference-frames", "500:600")
    assert p.returncode == 2
    assert {n: (out / n).read_bytes() for n in leftovers(out)} == before
    # failed during the run: neither the old nor the new result is left
    frames = SyntheticSession(64, 64, 30, seed=1).frames(dtype=np.float32)[..., 0]
    frames[20, 3, 3] = np.inf
    bad = tmp_path / "inf.h5"
    with h5py.File(bad, "w") as f:
        f["mov"] = frames
    p = fr(bad, "-o", out, "--quality", "fast", "--reference-frames", "0:4", "--buffer-size", "8")
    assert p.returncode == 2 and "frame 20" in one_error_line(p)
    assert not (leftovers(out) & RESULT_NAMES)


def test_reads_time_last_hdf5_with_axes(shared_data, tmp_path):
    p = fr(shared_data / "sima_example.h5", "-o", tmp_path / "sima", "--axes", "HWT", "--quality", "fast", "-q")
    assert p.returncode == 0, p.stderr
    with h5py.File(tmp_path / "sima" / layout.COMPENSATED) as f:
        assert f["ch1"].shape == (20, 128, 256) and f["ch1"].dtype == np.uint16

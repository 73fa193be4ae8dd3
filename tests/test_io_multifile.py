"""Recordings of several files (directory, glob, list) and Bruker Prairie View T-series folders."""

import shutil
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from frkit.errors import InputError
from frkit.io import open_video
from frkit.io.multifile import expand_inputs, group_stem, natural_key, recording_stem
from frkit.io.readers import recording_files

from conftest import ENV, check_reader, make_video, run_tool, write_h5


def _split(folder, data, sizes, name="rec_{:05d}.tif", start=1):
    """``data`` written as consecutive numbered TIFF files of ``sizes`` frames."""
    folder.mkdir(exist_ok=True)
    paths, t = [], 0
    for i, n in enumerate(sizes):
        p = folder / name.format(start + i)
        tifffile.imwrite(p, data[t:t + n], photometric="minisblack")
        paths.append(p)
        t += n
    return paths


def test_natural_order():
    names = ["r_10.tif", "r_2.tif", "r_1.tif"]
    assert sorted(names, key=natural_key) == ["r_1.tif", "r_2.tif", "r_10.tif"]


@pytest.mark.parametrize("how", ["directory", "glob", "list"])
def test_numbered_files_are_one_recording(tmp_path, how):
    data = make_video((23, 6, 5), "int16")
    # 11 files, so plain string order (1, 10, 11, 2, ...) would differ from natural order
    paths = _split(tmp_path / "d", data, [2] * 11 + [1], name="rec_{}.tif")
    spec = {"directory": tmp_path / "d", "glob": str(tmp_path / "d" / "rec_*.tif"),
            "list": [str(p) for p in reversed(paths)]}[how]
    with open_video(spec) as r:
        assert "12 files" in r.description
        check_reader(r, data[..., None])


def test_reads_across_file_boundaries_keep_one_member_open(tmp_path):
    data = make_video((9, 4, 3, 2), "float32")
    d = tmp_path / "h"
    d.mkdir()
    for i in range(3):
        write_h5(d / f"part_{i + 1:03d}.h5", data[3 * i:3 * i + 3])
    with open_video(d) as r:
        check_reader(r, data)
        r.read(2, 7)
        assert r._current is not None and r._current[0] == 2  # only the last member is open


def test_gap_in_numbered_group(tmp_path):
    data = make_video((8, 6, 5), "uint16")
    paths = _split(tmp_path / "d", data, [2, 2, 2, 2])
    paths[2].unlink()
    with pytest.raises(InputError, match=r"rec_00003\.tif: missing from the numbered group rec_00001\.tif"):
        open_video(tmp_path / "d")


@pytest.mark.parametrize("bad", ["size", "dtype", "channels"])
def test_files_must_agree(tmp_path, bad):
    d = tmp_path / "d"
    _split(d, make_video((4, 6, 5), "uint16"), [2, 2])
    other = {"size": make_video((2, 6, 4), "uint16"), "dtype": make_video((2, 6, 5), "int16"),
             "channels": make_video((2, 6, 5, 2), "uint16")}[bad]
    write_h5(d / "rec_00003.h5", other) if bad == "channels" else \
        tifffile.imwrite(d / "rec_00003.tif", other, photometric="minisblack")
    with pytest.raises(InputError) as ei:
        open_video(d)
    msg = str(ei.value)
    assert "rec_0000" in msg and "the files of one recording must agree" in msg and "\n" not in msg


def test_truncated_file_in_the_middle(tmp_path):
    data = make_video((6, 32, 24), "uint16")
    paths = _split(tmp_path / "d", data, [2, 2, 2])
    raw = paths[1].read_bytes()
    paths[1].write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputError, match=r"rec_00002\.tif: .*truncated"):
        with open_video(tmp_path / "d") as r:
            r.read(0, r.n_frames)


def test_input_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"empty: is a directory with no video files"):
        open_video(tmp_path / "empty")
    with pytest.raises(InputError, match=r"nothing_\*\.tif: no files match"):
        open_video(str(tmp_path / "nothing_*.tif"))
    p = _split(tmp_path / "d", make_video((2, 4, 4), "uint8"), [2])[0]
    with pytest.raises(InputError, match=r"given twice"):
        expand_inputs([p, p])


def test_group_stem():
    from pathlib import Path
    assert group_stem([Path("mouse1_00001.tif"), Path("mouse1_00002.tif")]) == "mouse1"
    assert recording_stem([Path("/x/a.tif")]) == "a"


# -- Bruker Prairie View T-series --------------------------------------------------------------------

def _expected_bruker(folder):
    """The sample's frames read one file at a time, in cycle, frame order; channels 1, 2."""
    frames = []
    for cycle in (1, 2, 3):
        for f in (1, 2, 3, 4):
            chans = []
            for ch in (1, 2):
                with tifffile.TiffFile(folder / f"TSeries-camp-005_Cycle{cycle:05d}_Ch{ch}_{f:06d}.ome.tif",
                                       is_ome=False) as t:
                    chans.append(t.pages[0].asarray())
            frames.append(np.stack(chans, -1))
    return np.stack(frames)


def test_bruker_real_sample(shared_data):
    folder = shared_data / "bruker_tseries_small"
    with open_video(folder) as r:
        assert r.shape == (12, 128, 128, 2)
        check_reader(r, _expected_bruker(folder))
    assert len(recording_files(folder)) == 24


def test_bruker_no_warnings_on_stderr(shared_data):
    code = ("from frkit.io import open_video\n"
            f"r = open_video({str(shared_data / 'bruker_tseries_small')!r})\n"
            "r.read(0, r.n_frames); print(r.shape)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(12, 128, 128, 2)" and out.stderr == ""


def _xml(folder, frames, name="TSeries-camp-005"):
    """A Prairie View file list: frames is a list of (cycle, index, {channel: filename})."""
    rows = ['<?xml version="1.0" encoding="utf-8"?>', '<PVScan version="5.3.64.300">']
    cycle = None
    for c, i, files in frames:
        if c != cycle:
            if cycle is not None:
                rows.append("</Sequence>")
            rows.append(f'<Sequence type="TSeries Timed Element" cycle="{c}">')
            cycle = c
        rows.append(f'<Frame relativeTime="0" index="{i}">')
        rows += [f'<File channel="{ch}" channelName="Ch{ch}" page="1" filename="{fn}" />' for ch, fn in files.items()]
        rows.append("<ExtraParameters /></Frame>")
    rows += ["</Sequence>", "</PVScan>"]
    (folder / f"{name}.xml").write_text("\n".join(rows))


def test_bruker_with_xml_follows_its_order(shared_data, tmp_path):
    src = shared_data / "bruker_tseries_small"
    folder = tmp_path / "ts"
    shutil.copytree(src, folder)
    expected = _expected_bruker(src)
    # the .xml lists the channels swapped and cycle 2 only: its order wins over the names
    frames = [(2, f, {1: f"TSeries-camp-005_Cycle00002_Ch2_{f:06d}.ome.tif",
                      2: f"TSeries-camp-005_Cycle00002_Ch1_{f:06d}.ome.tif"}) for f in (1, 2, 3, 4)]
    _xml(folder, frames)
    with open_video(folder) as r:
        assert "TSeries-camp-005.xml" in r.description
        check_reader(r, expected[4:8, :, :, ::-1])
    (folder / f"TSeries-camp-005_Cycle00002_Ch1_000003.ome.tif").unlink()
    with pytest.raises(InputError, match=r"Cycle00002_Ch1_000003\.ome\.tif: no such file \(listed in "):
        open_video(folder)


def test_bruker_channel_missing_for_a_frame(shared_data, tmp_path):
    folder = tmp_path / "ts"
    shutil.copytree(shared_data / "bruker_tseries_small", folder)
    (folder / "TSeries-camp-005_Cycle00003_Ch2_000002.ome.tif").unlink()
    with pytest.raises(InputError, match=r"ts: channel 2 is missing for cycle 3 frame 2"):
        open_video(folder)
    (folder / "TSeries-camp-005_Cycle00003_Ch1_000002.ome.tif").unlink()
    with pytest.raises(InputError, match=r"ts: T-series cycle 3 frame 2 is missing"):
        open_video(folder)


def test_bruker_truncated_frame_file(shared_data, tmp_path):
    folder = tmp_path / "ts"
    shutil.copytree(shared_data / "bruker_tseries_small", folder)
    p = folder / "TSeries-camp-005_Cycle00002_Ch1_000001.ome.tif"
    p.write_bytes(p.read_bytes()[:20000])
    with pytest.raises(InputError, match=r"Cycle00002_Ch1_000001\.ome\.tif: "):
        with open_video(folder) as r:
            r.read(0, 12)


def test_fr_compensate_reads_several_files(tmp_path):
    data = make_video((10, 24, 20), "uint16", seed=3)
    paths = _split(tmp_path / "d", data, [4, 4, 2], name="mouse1_{:05d}.tif")
    out = tmp_path / "out"
    res = run_tool("fr-compensate", str(tmp_path / "d" / "mouse1_*.tif"), "-o", out, "-q", "--quality", "fast",
                   "--iterations", "2")
    assert res.returncode == 0, res.stderr
    import h5py, json
    with h5py.File(out / "compensated.HDF5") as f:
        assert f["ch1"].shape == (10, 24, 20)
    rec = json.loads((out / "compensate.json").read_text())
    assert rec["input"]["files"] == 3 and rec["input"]["size"] == sum(p.stat().st_size for p in paths)
    # several paths on the command line; a gap is one line and exit 2
    paths[1].unlink()
    res = run_tool("fr-compensate", *paths[::2], "-o", tmp_path / "out2", "-q")
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    assert "mouse1_00002.tif: missing from the numbered group" in res.stderr
    assert not (tmp_path / "out2").exists() or not any((tmp_path / "out2").iterdir())

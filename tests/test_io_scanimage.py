"""ScanImage TIFFs: channels, planes, frames per slice, volumes and flyback frames from the metadata.

The files are built to ScanImage's published page order (si_files.py; tifffile reads them back as
ScanImage files with the same pages). The expected frames come from an independent model: a
(volume, frame-in-volume, channel, H, W) array whose frames are ``slices x framesPerSlice`` and then the
flyback frames.
"""

import tracemalloc

import numpy as np
import pytest
import tifffile

from frkit.errors import InputError, OptionError
from frkit.io import open_video
from frkit.io.scanimage import ScanImageReader, scanimage_layout

from conftest import check_reader, make_video, run_tool
from si_files import write_scanimage


def _acquisition(volumes, slices, fps, flyback, channels, h=6, w=5, dtype="int16", seed=0):
    """(volumes, slices*fps + flyback, channels, h, w) random frames and their pages in file order."""
    vol = make_video((volumes, slices * fps + flyback, channels, h, w), dtype, seed=seed)
    return vol, vol.reshape(-1, h, w)


def _plane(vol, z, slices, fps):
    """Plane ``z`` of every volume (its ``fps`` repeats), flyback dropped, as (T, H, W, C)."""
    v, _, c, h, w = vol.shape
    real = vol[:, :slices * fps].reshape(v, slices, fps, c, h, w)
    return real[:, z].reshape(v * fps, c, h, w).transpose(0, 2, 3, 1)


SI2020 = ("SI.hChannels.channelSave = [1;2]\nSI.hStackManager.enable = true\nSI.hStackManager.stackMode = 'fast'\n"
          "SI.hStackManager.numSlices = 11\nSI.hStackManager.actualNumSlices = 3\n"
          "SI.hStackManager.framesPerSlice = 2\nSI.hStackManager.numFramesPerVolume = 6\n"
          "SI.hStackManager.numFramesPerVolumeWithFlyback = 7\nSI.hStackManager.actualNumVolumes = 4\n"
          "SI.hFastZ.enable = true\n")


@pytest.mark.parametrize("z", [0, 1, 2])
def test_si2020_planes_frames_per_slice_flyback(tmp_path, z):
    vol, pages = _acquisition(volumes=4, slices=3, fps=2, flyback=1, channels=2)
    p = tmp_path / "si2020.tif"
    write_scanimage(p, pages, SI2020)
    with open_video(p, plane=z) as r:
        assert isinstance(r, ScanImageReader)
        assert r.shape == (8, 6, 5, 2)
        check_reader(r, _plane(vol, z, 3, 2))


def test_si2016_fastz_discarded_flyback_frames_in_the_software_tag(tmp_path):
    meta = ("SI.hChannels.channelSave = 1\nSI.hFastZ.enable = 1\nSI.hFastZ.numDiscardFlybackFrames = 2\n"
            "SI.hFastZ.numVolumes = 5\nSI.hStackManager.numSlices = 4\nSI.hStackManager.framesPerSlice = 1\n")
    vol, pages = _acquisition(volumes=5, slices=4, fps=1, flyback=2, channels=1, dtype="uint16")
    p = tmp_path / "si2016.tif"
    write_scanimage(p, pages, meta, how="software")
    with open_video(p, plane=3) as r:
        check_reader(r, _plane(vol, 3, 4, 1))


def test_disabled_stack_ignores_stale_slice_counts(tmp_path):
    meta = ("SI.hChannels.channelSave = [1;2]\nSI.hStackManager.enable = false\nSI.hStackManager.numSlices = 5\n"
            "SI.hStackManager.actualNumSlices = 5\nSI.hStackManager.framesPerSlice = 10\n")
    pages = make_video((20, 6, 5), "uint16")
    p = tmp_path / "flat.tif"
    write_scanimage(p, pages, meta)
    with open_video(p) as r:
        check_reader(r, pages.reshape(10, 2, 6, 5).transpose(0, 2, 3, 1))


def test_si5_description_metadata_channels(tmp_path):
    meta = "SI.hChannels.channelSave = [1 3 4]\nSI.hStackManager.framesPerSlice = 4\nSI.hFastZ.enable = 0\n"
    pages = make_video((12, 6, 5), "int16")
    p = tmp_path / "si5.tif"
    write_scanimage(p, pages, meta, how="description")
    with tifffile.TiffFile(p) as t:
        assert t.is_scanimage
    with open_video(p) as r:
        check_reader(r, pages.reshape(4, 3, 6, 5).transpose(0, 2, 3, 1))


def test_plane_choice_errors(tmp_path):
    _, pages = _acquisition(volumes=2, slices=3, fps=2, flyback=1, channels=2)
    p = tmp_path / "vol.tif"
    write_scanimage(p, pages, SI2020)
    with pytest.raises(InputError, match=r"vol\.tif: ScanImage recording has 3 planes .*--plane 0\.\.2"):
        open_video(p)
    with pytest.raises(OptionError, match=r"vol\.tif: --plane 3 is out of range for 3 planes"):
        open_video(p, plane=3)
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, make_video((4, 6, 5), "uint8"), photometric="minisblack")
    with pytest.raises(OptionError, match=r"plain\.tif: --plane applies to ScanImage"):
        open_video(plain, plane=0)


def test_numbered_files_split_inside_a_volume(tmp_path):
    """ScanImage splits files by page count: the layout runs across file boundaries."""
    vol, pages = _acquisition(volumes=4, slices=3, fps=2, flyback=1, channels=2)
    cuts = [0, 17, 40, len(pages)]  # 56 pages; 14 per volume: cuts inside volumes and channel pairs
    for i in range(3):
        write_scanimage(tmp_path / f"base_{i + 1:05d}.tif", pages[cuts[i]:cuts[i + 1]], SI2020)
    with open_video(tmp_path, plane=1) as r:
        assert "3 files" in r.description
        check_reader(r, _plane(vol, 1, 3, 2))


def test_incomplete_last_volume(tmp_path):
    vol, pages = _acquisition(volumes=3, slices=3, fps=2, flyback=1, channels=2)
    p = tmp_path / "stop.tif"
    write_scanimage(p, pages[:14 * 2 + 6], SI2020)  # 2 volumes, then slice 0 (2 frames) + 1 frame of slice 1
    with open_video(p, plane=0) as r:
        check_reader(r, _plane(vol, 0, 3, 2)[:6])
    with open_video(p, plane=1) as r:
        check_reader(r, _plane(vol, 1, 3, 2)[:5])
    with open_video(p, plane=2) as r:
        assert r.n_frames == 4


def test_truncated_scanimage_file(tmp_path):
    _, pages = _acquisition(volumes=3, slices=3, fps=2, flyback=1, channels=2, h=32, w=24)
    p = tmp_path / "cut.tif"
    write_scanimage(p, pages, SI2020)
    raw = p.read_bytes()
    p.write_bytes(raw[: len(raw) * 2 // 3])
    with pytest.raises(InputError, match=r"cut\.tif: truncated ScanImage TIFF"):
        open_video(p, plane=0)


def test_layout_versions():
    assert scanimage_layout({"SI.hChannels.channelSave": 2}).channels == 1
    lay = scanimage_layout({"SI.hStackManager.enable": True, "SI.hStackManager.numSlices": 4,
                            "SI.hStackManager.framesPerSlice": float("inf")})
    assert (lay.slices, lay.frames_per_slice, lay.flyback, lay.volumetric) == (4, 1, 0, True)


def test_100000_pages_hold_no_per_page_objects(tmp_path):
    n = 100_000
    pages = (np.arange(n, dtype=np.uint32) % 65536).astype(np.uint16)[:, None, None] * np.ones((1, 2, 2), np.uint16)
    p = tmp_path / "long.tif"
    write_scanimage(p, pages, "SI.hChannels.channelSave = [1;2]\nSI.hStackManager.framesPerSlice = 50000\n")
    tracemalloc.start()
    try:
        r = open_video(p)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    with r:
        # 8 bytes of page offset per page (0.8 MB) and its growth; a tifffile page list costs ~100x more
        assert peak < 4_000_000, peak
        assert r.shape == (50_000, 2, 2, 2)
        last = r.read(49_998, 50_000)
        assert last[:, 0, 0, :].tolist() == [[(99_996) % 65536, 99_997 % 65536], [99_998 % 65536, 99_999 % 65536]]


def test_fr_compensate_plane(tmp_path):
    vol, pages = _acquisition(volumes=6, slices=3, fps=2, flyback=1, channels=2, h=24, w=20, dtype="uint16")
    p = tmp_path / "vol.tif"
    write_scanimage(p, pages, SI2020)
    res = run_tool("fr-compensate", p, "-o", tmp_path / "out", "-q")
    assert res.returncode == 2 and "--plane 0..2" in res.stderr and res.stderr.count("\n") == 1
    res = run_tool("fr-compensate", p, "-o", tmp_path / "out", "-q", "--plane", "2", "--quality", "fast",
                   "--iterations", "2")
    assert res.returncode == 0, res.stderr
    import h5py
    with h5py.File(tmp_path / "out" / "compensated.HDF5") as f:
        assert f["ch1"].shape == (12, 24, 20) and f["ch2"].shape == (12, 24, 20)


def test_pages_at_irregular_offsets(tmp_path):
    """Per-frame descriptions of different lengths: no common stride, the IFD chain is walked."""
    pages = make_video((8, 6, 5), "int16")
    p = tmp_path / "irregular.tif"
    with tifffile.TiffWriter(p, bigtiff=True) as tw:
        for i, f in enumerate(pages):
            tw.write(f, software="SI.hChannels.channelSave = [1;2]\nSI.hStackManager.framesPerSlice = 4\n",
                     description="frameNumbers = " + "1" * (i + 1) + "\n", metadata=None, contiguous=False)
    with open_video(p) as r:
        assert isinstance(r, ScanImageReader)
        check_reader(r, pages.reshape(4, 2, 6, 5).transpose(0, 2, 3, 1))

"""TIFF layouts read through frkit.io.open_video."""

import struct

import numpy as np
import pytest
import tifffile

from frkit.errors import InputError
from frkit.io import open_video
from frkit.io.tiff import TiffReader

from conftest import DTYPES, assert_input_error_open_or_read, check_reader, make_video, truncate_to_half


@pytest.mark.parametrize("dtype", DTYPES)
def test_plain_multipage_all_dtypes(tmp_path, dtype):
    data = make_video((7, 9, 11), dtype)
    p = tmp_path / "v.tif"
    tifffile.imwrite(p, data, photometric="minisblack")
    with open_video(p) as r:
        assert isinstance(r, TiffReader)
        check_reader(r, data[..., None])


@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_bigtiff_both_byte_orders(tmp_path, byteorder):
    data = make_video((6, 8, 10), "uint16")
    p = tmp_path / "big.tif"
    tifffile.imwrite(p, data, bigtiff=True, byteorder=byteorder, photometric="minisblack")
    with tifffile.TiffFile(p) as t:
        assert t.is_bigtiff and t.byteorder == byteorder
    with open_video(p) as r:
        check_reader(r, data[..., None])


def test_big_endian_float(tmp_path):
    data = make_video((5, 4, 6), "float32")
    p = tmp_path / "be.tif"
    tifffile.imwrite(p, data, byteorder=">", photometric="minisblack")
    with open_video(p) as r:
        check_reader(r, data[..., None])


def test_compressed_pages_read_page_by_page(tmp_path):
    data = make_video((6, 16, 12), "int16")
    p = tmp_path / "z.tif"
    tifffile.imwrite(p, data, compression="zlib", photometric="minisblack")
    with open_video(p) as r:
        assert r._offsets is None  # not contiguous: page path
        check_reader(r, data[..., None])


def test_separate_writes_are_one_video(tmp_path):
    """One TiffWriter.write per frame gives one tifffile series per frame."""
    data = make_video((6, 5, 4), "uint16")
    p = tmp_path / "pages.tif"
    with tifffile.TiffWriter(p) as tw:
        for f in data:
            tw.write(f, contiguous=False)
    with tifffile.TiffFile(p) as t:
        assert len(t.series) == 6
    with open_video(p) as r:
        check_reader(r, data[..., None])


@pytest.mark.parametrize("channels", [1, 2])
def test_imagej_tcyx(tmp_path, channels):
    data = make_video((5, channels, 8, 9), "uint16")
    p = tmp_path / "hyper.tif"
    tifffile.imwrite(p, data, imagej=True, metadata={"axes": "TCYX"})
    with open_video(p) as r:
        check_reader(r, data.transpose(0, 2, 3, 1))


@pytest.mark.parametrize("channels", [1, 2])
def test_imagej_tzcyx_flattens_t_and_z(tmp_path, channels):
    data = make_video((3, 4, channels, 6, 7), "uint8")
    p = tmp_path / "hyper.tif"
    tifffile.imwrite(p, data, imagej=True, metadata={"axes": "TZCYX"})
    expected = data.reshape(12, channels, 6, 7).transpose(0, 2, 3, 1)  # frame = t * Z + z
    with open_video(p) as r:
        check_reader(r, expected)
        np.testing.assert_array_equal(r.read(5, 6)[0, ..., 0], data[1, 1, 0])


def test_imagej_zcyx(tmp_path):
    data = make_video((4, 2, 6, 7), "float32")
    p = tmp_path / "zc.tif"
    tifffile.imwrite(p, data, imagej=True, metadata={"axes": "ZCYX"})
    with open_video(p) as r:
        check_reader(r, data.transpose(0, 2, 3, 1))


def test_imagej_stack_without_axes_is_frames(tmp_path):
    """tifffile.imwrite(imagej=True) declares a plain 3-D stack as channels."""
    data = make_video((6, 5, 4), "uint16")
    p = tmp_path / "stack.tif"
    tifffile.imwrite(p, data, imagej=True)
    with tifffile.TiffFile(p) as t:
        assert t.series[0].axes == "CYX"
    with open_video(p) as r:
        assert "ImageJ channels read as frames" in r.description
        check_reader(r, data[..., None])


def test_imagej_single_ifd_contiguous(tmp_path):
    """An ImageJ file whose frames are all described by the first IFD (as for > 4 GB)."""
    data = make_video((6, 2, 5, 4), "uint16")
    p = tmp_path / "virtual.tif"
    tifffile.imwrite(p, data, imagej=True, metadata={"axes": "TCYX"})
    # keep the header, first IFD and data, drop the other IFDs: rewrite the
    # first IFD's next-IFD offset to 0.
    with tifffile.TiffFile(p) as t:
        first = t.pages.first
        ifd = first.offset
        ntags = len(first.tags)
    raw = bytearray(p.read_bytes())
    next_pos = ifd + 2 + 12 * ntags
    raw[next_pos:next_pos + 4] = struct.pack("<I", 0)
    p.write_bytes(bytes(raw))
    with tifffile.TiffFile(p) as t:
        assert len(t.pages) == 1 and t.series[0].shape == (6, 2, 5, 4)
    with open_video(p) as r:
        assert r._offsets is not None
        check_reader(r, data.transpose(0, 2, 3, 1))


@pytest.mark.parametrize("planar", [False, True])
def test_multisample_pages(tmp_path, planar):
    data = make_video((5, 6, 7, 3), "uint16")  # T, Y, X, S
    p = tmp_path / "rgb.tif"
    if planar:
        tifffile.imwrite(p, data.transpose(0, 3, 1, 2), photometric="minisblack", planarconfig="separate")
    else:
        tifffile.imwrite(p, data, photometric="minisblack", planarconfig="contig")
    with tifffile.TiffFile(p) as t:
        assert t.series[0].axes == ("QSYX" if planar else "QYXS")
    with open_video(p) as r:
        check_reader(r, data)


def test_multisample_compressed_planar(tmp_path):
    data = make_video((4, 6, 7, 2), "uint8")
    p = tmp_path / "rgbz.tif"
    tifffile.imwrite(p, data.transpose(0, 3, 1, 2), photometric="minisblack", planarconfig="separate",
                     compression="zlib")
    with open_video(p) as r:
        check_reader(r, data)


def test_deinterleave_pages(tmp_path):
    data = make_video((10, 6, 5), "int16")  # pages: f0c0 f0c1 f1c0 ...
    p = tmp_path / "inter.tif"
    tifffile.imwrite(p, data, photometric="minisblack")
    with open_video(p, deinterleave=2) as r:
        assert r.shape == (5, 6, 5, 2)
        check_reader(r, data.reshape(5, 2, 6, 5).transpose(0, 2, 3, 1))
    with pytest.raises(InputError, match=r"inter\.tif: 10 pages is not a multiple of --deinterleave 3"):
        open_video(p, deinterleave=3)


def test_deinterleave_rejects_multichannel(tmp_path):
    data = make_video((4, 2, 6, 5), "uint16")
    p = tmp_path / "hyper.tif"
    tifffile.imwrite(p, data, imagej=True, metadata={"axes": "TCYX"})
    with pytest.raises(InputError, match=r"hyper\.tif: --deinterleave 2 needs single-channel pages"):
        open_video(p, deinterleave=2)


def _scanimage(path, frames, frame_data: str):
    """A BigTIFF with a ScanImage v3 static-metadata block after the header."""
    fd = frame_data.encode() + b"\x00"
    roi = b"{}\x00"
    with open(path, "wb") as fh:
        fh.write(b"II" + struct.pack("<HHHQ", 43, 8, 0, 0))
        fh.write(struct.pack("<IIII", 0x07030301, 3, len(fd), len(roi)) + fd + roi)
    with tifffile.TiffWriter(path, append=True, bigtiff=True) as tw:
        for f in frames:
            tw.write(f, software="SI.LINE_", description="frameNumbers = 1\n", metadata=None, contiguous=False)


@pytest.mark.parametrize("fps", ["4", "Inf"])
def test_scanimage_two_saved_channels(tmp_path, fps):
    pages = make_video((8, 6, 5), "int16")
    p = tmp_path / "si.tif"
    _scanimage(p, pages, f"SI.hChannels.channelSave = [1;2]\nSI.hStackManager.framesPerSlice = {fps}\n")
    with tifffile.TiffFile(p) as t:
        assert t.is_scanimage
    with open_video(p) as r:
        assert r.shape == (4, 6, 5, 2)
        check_reader(r, pages.reshape(4, 2, 6, 5).transpose(0, 2, 3, 1))


def test_scanimage_single_channel(tmp_path):
    pages = make_video((6, 6, 5), "int16")
    p = tmp_path / "si1.tif"
    _scanimage(p, pages, "SI.hChannels.channelSave = 1\nSI.hStackManager.framesPerSlice = 6\n")
    with open_video(p) as r:
        check_reader(r, pages[..., None])


def test_axes_override(tmp_path):
    data = make_video((6, 5, 4), "uint16")
    p = tmp_path / "q.tif"
    tifffile.imwrite(p, data.reshape(3, 2, 5, 4), photometric="minisblack")  # QQYX
    with tifffile.TiffFile(p) as t:
        assert t.series[0].axes == "QQYX"
    with open_video(p) as r:  # default: both Q axes are time
        check_reader(r, data[..., None])
    with open_video(p, axes="TCYX") as r:
        check_reader(r, data.reshape(3, 2, 5, 4).transpose(0, 2, 3, 1))
    with open_video(p, axes="cthw") as r:
        check_reader(r, data.reshape(3, 2, 5, 4).transpose(1, 2, 3, 0))
    with pytest.raises(InputError, match=r"q\.tif: .*--axes 'TYX' has 3 letters but the data has 4"):
        open_video(p, axes="TYX")
    with pytest.raises(InputError, match=r"q\.tif: .*unknown letter 'Q'"):
        open_video(p, axes="QTYX")
    with pytest.raises(InputError, match=r"q\.tif: .*must end with the page axes YX"):
        open_video(p, axes="TCXY")


def test_single_page_is_an_error(tmp_path):
    p = tmp_path / "one.tif"
    tifffile.imwrite(p, make_video((8, 9), "uint8"))
    with pytest.raises(InputError, match=r"one\.tif: TIFF has a single image .*need a time axis"):
        open_video(p)


@pytest.mark.parametrize("kind", ["plain", "bigtiff", "imagej", "pages", "compressed", "samples"])
def test_truncated_tiff(tmp_path, kind):
    data = make_video((12, 32, 24), "uint16")
    p = tmp_path / f"cut_{kind}.tif"
    if kind == "plain":
        tifffile.imwrite(p, data, photometric="minisblack")
    elif kind == "bigtiff":
        tifffile.imwrite(p, data, bigtiff=True, photometric="minisblack")
    elif kind == "imagej":
        tifffile.imwrite(p, data, imagej=True, metadata={"axes": "TYX"})
    elif kind == "pages":
        with tifffile.TiffWriter(p) as tw:
            for f in data:
                tw.write(f, contiguous=False, metadata=None)
    elif kind == "compressed":
        tifffile.imwrite(p, data, compression="zlib", photometric="minisblack")
    else:
        tifffile.imwrite(p, data.reshape(12, 32, 8, 3), photometric="minisblack", planarconfig="contig")
    truncate_to_half(p)
    assert_input_error_open_or_read(p)


def test_truncated_real_sima_tiff(shared_data, tmp_path):
    p = tmp_path / "sima_cut.tif"
    p.write_bytes((shared_data / "sima_example.tif").read_bytes())
    truncate_to_half(p)
    assert_input_error_open_or_read(p)


def test_corrupt_page_data_fails_on_read(tmp_path):
    """The structure is intact, so opening works; the damaged page fails when read."""
    data = make_video((6, 32, 24), "uint16")
    p = tmp_path / "corrupt.tif"
    tifffile.imwrite(p, data, compression="zlib", photometric="minisblack")
    with tifffile.TiffFile(p) as t:
        page = t.pages[3]
        off, cnt = page.dataoffsets[0], page.databytecounts[0]
    raw = bytearray(p.read_bytes())
    raw[off:off + cnt] = b"\xff" * cnt
    p.write_bytes(bytes(raw))
    with open_video(p) as r:
        np.testing.assert_array_equal(r.read(0, 3)[..., 0], data[:3])
        with pytest.raises(InputError, match=r"corrupt\.tif: cannot read TIFF page 3"):
            r.read(2, 5)
        with pytest.raises(InputError, match=r"corrupt\.tif: cannot read TIFF page 3"):
            r.read_indices([5, 3])


def test_scanimage_stopped_early(tmp_path):
    """Metadata promise 6 frames x 2 channels, the file holds 4 frames (8 pages)."""
    pages = make_video((8, 6, 5), "int16")
    p = tmp_path / "si_short.tif"
    _scanimage(p, pages, "SI.hChannels.channelSave = [1;2]\nSI.hStackManager.framesPerSlice = 6\n")
    with open_video(p) as r:
        assert "8 of 12 pages" in r.description
        check_reader(r, pages.reshape(4, 2, 6, 5).transpose(0, 2, 3, 1))
    pages = make_video((7, 6, 5), "int16")
    _scanimage(p, pages, "SI.hChannels.channelSave = [1;2]\nSI.hStackManager.framesPerSlice = 6\n")
    with pytest.raises(InputError, match=r"si_short\.tif: ScanImage file with 2 saved channels has 7 pages"):
        open_video(p)


def test_blocks_written_separately_are_concatenated(tmp_path):
    data = make_video((10, 6, 5), "uint16")
    p = tmp_path / "blocks.tif"
    with tifffile.TiffWriter(p) as tw:
        tw.write(data[:5], photometric="minisblack")
        tw.write(data[5:], photometric="minisblack")
    with tifffile.TiffFile(p) as t:
        assert [s.shape for s in t.series] == [(5, 6, 5), (5, 6, 5)]
    with open_video(p) as r:
        assert "2 series" in r.description
        check_reader(r, data[..., None])

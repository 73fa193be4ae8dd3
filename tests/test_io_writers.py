"""frkit.io writers and atomic helpers."""

import json
import struct
import zlib

import h5py
import numpy as np
import pytest
import tifffile
from scipy.io import loadmat

from frkit.errors import OptionError, OutputError
from frkit.io import (Hdf5VideoWriter, MatVideoWriter, TiffVideoWriter, atomic_output, open_video,
                      open_video_writer, partial_path, save_npy_atomic, save_npz_atomic, save_png_atomic,
                      savemat_atomic, write_json_atomic)

from conftest import DTYPES, check_reader, make_video


# -- atomic helpers ----------------------------------------------------------------

def test_partial_path():
    assert partial_path("out/compensated.HDF5").as_posix() == "out/compensated.HDF5.partial"


def test_atomic_output_success_and_failure(tmp_path):
    target = tmp_path / "x.bin"
    with atomic_output(target) as tmp:
        assert tmp == tmp_path / "x.bin.partial"
        tmp.write_bytes(b"abc")
        assert not target.exists()
    assert target.read_bytes() == b"abc" and not tmp.exists()
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            tmp.write_bytes(b"new")
            raise RuntimeError("boom")
    assert target.read_bytes() == b"abc" and not tmp.exists()


def test_atomic_output_unwritable(tmp_path):
    with pytest.raises(OutputError, match=r"x\.bin: cannot write"):
        with atomic_output(tmp_path / "missing_dir" / "x.bin") as tmp:
            tmp.write_bytes(b"abc")


def test_save_npy_npz_json(tmp_path):
    a = make_video((3, 4), "float32")
    save_npy_atomic(tmp_path / "ref", a)  # exactly this name, no .npy appended
    np.testing.assert_array_equal(np.load(tmp_path / "ref"), a)
    save_npz_atomic(tmp_path / "s.npz", x=a, y=np.arange(3))
    with np.load(tmp_path / "s.npz") as z:
        assert sorted(z.files) == ["x", "y"]
        np.testing.assert_array_equal(z["x"], a)
    write_json_atomic(tmp_path / "r.json", {"a": 1, "b": [1.5, "é"]})
    text = (tmp_path / "r.json").read_text(encoding="utf-8")
    assert text == '{\n  "a": 1,\n  "b": [\n    1.5,\n    "é"\n  ]\n}\n'
    assert json.loads(text)["b"][1] == "é"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "ref", "s.npz"]


def _decode_png(data: bytes) -> np.ndarray:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        crc = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0]
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF
        chunks.setdefault(kind, b"")
        chunks[kind] += body
        pos += 12 + n
    w, h, depth, color, comp, filt, inter = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert (depth, color, comp, filt, inter) == (8, 0, 0, 0, 0) and b"IEND" in chunks
    raw = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), np.uint8).reshape(h, w + 1)
    assert (raw[:, 0] == 0).all()
    return raw[:, 1:]


def test_save_png(tmp_path):
    img = make_video((13, 17), "uint8")
    save_png_atomic(tmp_path / "m.png", img)
    np.testing.assert_array_equal(_decode_png((tmp_path / "m.png").read_bytes()), img)
    from skimage import io as skio

    np.testing.assert_array_equal(skio.imread(tmp_path / "m.png"), img)
    with pytest.raises(ValueError):
        save_png_atomic(tmp_path / "bad.png", img.astype(np.uint16))
    assert not (tmp_path / "bad.png").exists() and not (tmp_path / "bad.png.partial").exists()


def test_savemat_atomic(tmp_path):
    savemat_atomic(tmp_path / "o.mat", {"w": np.arange(6.0).reshape(2, 3), "opts": {"a_long_field_name_" * 2: 1}})
    m = loadmat(tmp_path / "o.mat")
    np.testing.assert_array_equal(m["w"], np.arange(6.0).reshape(2, 3))
    assert not (tmp_path / "o.mat.partial").exists()


# -- HDF5 -------------------------------------------------------------------------------

def test_hdf5_writer_layout_and_lifecycle(tmp_path):
    out = tmp_path / "compensated.HDF5"
    video = make_video((7, 6, 5, 2), "float32")
    w = Hdf5VideoWriter(out, 2, 6, 5, np.float32, attrs={"source": "test"})
    assert w.partial == tmp_path / "compensated.HDF5.partial"
    assert w.partial.exists() and not out.exists()
    w.append(video[:3])
    w.append(video[3:3])
    w.append(video[3:])
    assert w.frame_count == 7 and not out.exists()
    w.commit()
    w.commit()  # no-op
    w.abort()   # no-op after commit
    assert out.exists() and not w.partial.exists()
    with h5py.File(out, "r") as f:
        assert sorted(f) == ["ch1", "ch2"]
        for k, name in enumerate(["ch1", "ch2"]):
            d = f[name]
            assert d.shape == (7, 6, 5) and d.dtype == np.float32
            assert d.chunks == (1, 6, 5) and d.maxshape == (None, 6, 5) and d.compression is None
            np.testing.assert_array_equal(d[()], video[..., k])
        assert dict(f.attrs) == {"n_channels": 2, "frame_count": 7, "height": 6, "width": 5, "source": "test"}
    with open_video(out) as r:  # auto-discovery finds ch1, ch2
        check_reader(r, video)


@pytest.mark.parametrize("names,dtype", [(["idx"], np.uint8), (["u", "v"], np.float32)])
def test_hdf5_writer_names(tmp_path, names, dtype):
    video = make_video((4, 3, 5, len(names)), dtype)
    with Hdf5VideoWriter(tmp_path / "o.h5", len(names), 3, 5, dtype, dataset_names=names) as w:
        w.append(video)
    with h5py.File(tmp_path / "o.h5", "r") as f:
        assert sorted(f) == sorted(names)
    with open_video(tmp_path / "o.h5", datasets=names) as r:
        check_reader(r, video)


def test_hdf5_writer_abort_and_exception(tmp_path):
    out = tmp_path / "o.h5"
    w = Hdf5VideoWriter(out, 1, 3, 4, np.uint16)
    w.append(make_video((2, 3, 4, 1), "uint16"))
    w.abort()
    assert not out.exists() and not w.partial.exists()
    with pytest.raises(RuntimeError):
        w.append(make_video((2, 3, 4, 1), "uint16"))
    with pytest.raises(KeyError):
        with Hdf5VideoWriter(out, 1, 3, 4, np.uint16) as w:
            w.append(make_video((2, 3, 4, 1), "uint16"))
            raise KeyError("boom")
    assert list(tmp_path.iterdir()) == []


def test_hdf5_writer_validation(tmp_path):
    with Hdf5VideoWriter(tmp_path / "o.h5", 2, 3, 4, np.int16) as w:
        with pytest.raises(OutputError, match=r"o\.h5: frames of shape \(2, 3, 4, 1\) do not fit"):
            w.append(np.zeros((2, 3, 4, 1), np.int16))
        with pytest.raises(OutputError, match=r"o\.h5: frames of shape \(3, 4, 2\) do not fit"):
            w.append(np.zeros((3, 4, 2), np.int16))
        with pytest.raises(OutputError, match=r"o\.h5: frames are float32, the output is int16"):
            w.append(np.zeros((2, 3, 4, 2), np.float32))
        w.append(np.zeros((2, 3, 4, 2), ">i2"))  # byte order may differ
    with h5py.File(tmp_path / "o.h5", "r") as f:
        assert f["ch1"].dtype == np.dtype("=i2") and f.attrs["frame_count"] == 2
    with pytest.raises(ValueError):
        Hdf5VideoWriter(tmp_path / "p.h5", 2, 3, 4, np.int16, dataset_names=["a"])


def test_hdf5_writer_unchunked(tmp_path):
    video = make_video((5, 3, 4, 1), "float64")
    with Hdf5VideoWriter(tmp_path / "o.h5", 1, 3, 4, np.float64, chunked=False, n_frames=5) as w:
        w.append(video[:2])
        w.append(video[2:])
    with h5py.File(tmp_path / "o.h5", "r") as f:
        assert f["ch1"].chunks is None and f["ch1"].shape == (5, 3, 4)
    w = Hdf5VideoWriter(tmp_path / "p.h5", 1, 3, 4, np.float64, chunked=False, n_frames=5)
    w.append(video[:2])
    with pytest.raises(OutputError, match="2 of the declared 5 frames"):
        w.commit()
    assert not (tmp_path / "p.h5").exists() and not w.partial.exists()


def test_hdf5_writer_unwritable(tmp_path):
    with pytest.raises(OutputError, match=r"o\.h5: cannot create o\.h5\.partial"):
        Hdf5VideoWriter(tmp_path / "nodir" / "o.h5", 1, 3, 4, np.uint8)


# -- TIFF --------------------------------------------------------------------------------

@pytest.mark.parametrize("channels", [1, 2, 3])
@pytest.mark.parametrize("dtype", ["uint16", "float32", "int8"])
def test_tiff_writer_roundtrip(tmp_path, channels, dtype):
    video = make_video((6, 7, 5, channels), dtype)
    out = tmp_path / "o.tif"
    with TiffVideoWriter(out, channels, 7, 5, dtype) as w:
        w.append(video[:4])
        assert w.partial.exists() and not out.exists()
        w.append(video[4:])
    assert not w.partial.exists()
    with tifffile.TiffFile(out) as t:
        assert t.is_bigtiff and len(t.pages) == 6 and len(t.series) == 1
        page = t.pages[0]
        assert page.compression == 1 and page.photometric == 1
        assert t.series[0].shape == ((6, 7, 5) if channels == 1 else (6, 7, 5, channels))
    with open_video(out) as r:
        assert r._offsets is not None  # contiguous: read straight from disk
        check_reader(r, video)


def test_tiff_writer_abort(tmp_path):
    w = TiffVideoWriter(tmp_path / "o.tif", 1, 3, 4, np.uint16)
    w.append(make_video((2, 3, 4, 1), "uint16"))
    w.abort()
    assert list(tmp_path.iterdir()) == []


# -- MAT ------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES + ["int64", "uint64"])
def test_mat_writer_roundtrip(tmp_path, dtype):
    video = make_video((6, 7, 5, 2), dtype)
    out = tmp_path / "o.mat"
    with MatVideoWriter(out, 2, 7, 5, dtype, n_frames=6) as w:
        w.append(video[:1])
        w.append(video[1:4])
        assert w.partial.exists() and not out.exists()
        w.append(video[4:])
    m = loadmat(out)
    assert sorted(k for k in m if not k.startswith("__")) == ["ch1", "ch2"]
    for k in range(2):
        assert m[f"ch{k + 1}"].dtype == np.dtype(dtype)
        assert m[f"ch{k + 1}"].shape == (7, 5, 6)  # MATLAB H x W x T
        np.testing.assert_array_equal(m[f"ch{k + 1}"], video[..., k].transpose(1, 2, 0))
    with open_video(out) as r:
        check_reader(r, video)


def test_mat_writer_logical_and_names(tmp_path):
    mask = make_video((4, 3, 5, 1), "uint8") > 99
    with MatVideoWriter(tmp_path / "m.mat", 1, 3, 5, bool, n_frames=4, dataset_names=["idx"]) as w:
        w.append(mask)
    m = loadmat(tmp_path / "m.mat")
    assert m["idx"].dtype == np.uint8 and m["idx"].shape == (3, 5, 4)  # scipy reads logical as uint8
    np.testing.assert_array_equal(m["idx"], mask[..., 0].transpose(1, 2, 0))
    with open_video(tmp_path / "m.mat") as r:
        check_reader(r, mask.astype(np.uint8))


def test_mat_writer_wrong_frame_count(tmp_path):
    out = tmp_path / "o.mat"
    w = MatVideoWriter(out, 1, 3, 4, np.float32, n_frames=5)
    w.append(np.zeros((3, 3, 4, 1), np.float32))
    with pytest.raises(OutputError, match=r"o\.mat: more than the declared 5 frames"):
        w.append(np.zeros((3, 3, 4, 1), np.float32))
    with pytest.raises(OutputError, match=r"o\.mat: 3 of the declared 5 frames written"):
        w.commit()
    assert list(tmp_path.iterdir()) == []


def test_mat_writer_size_limit(tmp_path):
    with pytest.raises(OutputError, match=r"o\.mat: variable ch1 would be .* GiB; .*write HDF5 or TIFF"):
        MatVideoWriter(tmp_path / "o.mat", 1, 512, 512, np.float64, n_frames=1100)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(OutputError, match="cannot store float16"):
        MatVideoWriter(tmp_path / "o.mat", 1, 5, 5, np.float16, n_frames=1)


# -- factory ------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt,cls", [("HDF5", Hdf5VideoWriter), ("hdf5", Hdf5VideoWriter),
                                     ("TIFF", TiffVideoWriter), ("tiff", TiffVideoWriter),
                                     ("MAT", MatVideoWriter), ("Mat", MatVideoWriter)])
def test_open_video_writer(tmp_path, fmt, cls):
    video = make_video((3, 4, 5, 1), "uint16")
    with open_video_writer(tmp_path / f"o.{fmt}", fmt, 1, 4, 5, np.uint16, n_frames=3) as w:
        assert isinstance(w, cls)
        w.append(video)
    assert (tmp_path / f"o.{fmt}").exists()


def test_open_video_writer_errors(tmp_path):
    with pytest.raises(OptionError, match="unknown output format 'AVI'"):
        open_video_writer(tmp_path / "o.avi", "AVI", 1, 4, 5, np.uint16)
    with pytest.raises(OptionError, match="MAT output needs the number of frames"):
        open_video_writer(tmp_path / "o.mat", "MAT", 1, 4, 5, np.uint16)

"""HDF5 layouts, discovery rules and errors through frkit.io.open_video."""

import h5py
import numpy as np
import pytest

from frkit.errors import InputError
from frkit.io import open_video
from frkit.io.hdf5 import Hdf5Reader

from conftest import DTYPES, assert_input_error_open_or_read, check_reader, make_video, truncate_to_half


def write_h5(path, **datasets):
    """Datasets by path; ``__`` in a keyword stands for ``/`` (a group)."""
    with h5py.File(path, "w") as f:
        for name, data in datasets.items():
            f.create_dataset(name.replace("__", "/"), data=data)
    return path


@pytest.mark.parametrize("dtype", DTYPES)
def test_3d_thw_all_dtypes(tmp_path, dtype):
    data = make_video((6, 7, 8), dtype)
    with open_video(write_h5(tmp_path / "v.h5", mov=data)) as r:
        assert isinstance(r, Hdf5Reader)
        assert r.description == "HDF5 dataset mov (T,H,W)"
        check_reader(r, data[..., None])


@pytest.mark.parametrize("dtype", ["int16", "float64"])
def test_4d_thwc(tmp_path, dtype):
    data = make_video((5, 6, 7, 3), dtype)
    with open_video(write_h5(tmp_path / "v.h5", data=data)) as r:
        check_reader(r, data)


@pytest.mark.parametrize("dtype", [">u2", ">i2", ">i4", ">u4", ">f4", ">f8", "<u2"])
def test_non_native_byte_order(tmp_path, dtype):
    native = make_video((4, 5, 6), np.dtype(dtype).newbyteorder("="))
    stored = native.astype(dtype)
    with open_video(write_h5(tmp_path / "be.h5", data=stored)) as r:
        assert r.dtype == native.dtype and r.dtype.isnative
        check_reader(r, native[..., None])


def test_bool_dataset_reads_as_uint8(tmp_path):
    data = make_video((4, 5, 6), "uint8") > 128
    with open_video(write_h5(tmp_path / "b.h5", idx=data)) as r:
        assert r.dtype == np.uint8
        check_reader(r, data[..., None].astype(np.uint8))


def test_nested_channel_group(tmp_path):
    c1, c2 = make_video((5, 6, 7), "uint16", 1), make_video((5, 6, 7), "uint16", 2)
    p = write_h5(tmp_path / "g.h5", grp__ch1=c1, grp__ch2=c2, grp__meta=np.arange(3))
    with open_video(p) as r:
        assert r.description == "HDF5 datasets grp/ch1, grp/ch2 (T,H,W)"
        check_reader(r, np.stack([c1, c2], axis=-1))


def test_channels_in_numeric_order(tmp_path):
    chans = {f"ch{k}": np.full((3, 4, 5), k, dtype=np.int16) for k in range(1, 13)}
    with open_video(write_h5(tmp_path / "c.h5", **chans)) as r:
        assert r.shape == (3, 4, 5, 12)
        np.testing.assert_array_equal(r.read(0, 1)[0, 0, 0], np.arange(1, 13))


@pytest.mark.parametrize("names", [("Ch_1", "CH_2"), ("channel1", "channel2"), ("chan.1", "chan 2"),
                                   ("ch0", "ch1")])
def test_channel_name_variants(tmp_path, names):
    c1, c2 = make_video((4, 3, 5), "uint8", 1), make_video((4, 3, 5), "uint8", 2)
    with open_video(write_h5(tmp_path / "c.h5", **{names[1]: c2, names[0]: c1})) as r:
        check_reader(r, np.stack([c1, c2], axis=-1))


def test_largest_channel_group_wins(tmp_path):
    small = make_video((4, 3, 5), "uint8")
    p = write_h5(tmp_path / "c.h5", ch1=small, ch2=small, g__ch1=small, g__ch2=small, g__ch3=small)
    with open_video(p) as r:
        assert r.description.startswith("HDF5 datasets g/ch1, g/ch2, g/ch3")


def test_channel_group_beats_larger_dataset(tmp_path):
    c = make_video((4, 3, 5), "uint8")
    p = write_h5(tmp_path / "c.h5", ch1=c, ch2=c, big=make_video((40, 30, 5), "uint8"))
    with open_video(p) as r:
        assert r.shape == (4, 3, 5, 2)


def test_channels_of_different_shapes(tmp_path):
    p = write_h5(tmp_path / "bad.h5", ch1=make_video((4, 3, 5), "uint8"), ch2=make_video((4, 3, 6), "uint8"))
    with pytest.raises(InputError, match=r"bad\.h5: channel datasets differ in shape: ch1 \(4, 3, 5\), "
                                         r"ch2 \(4, 3, 6\)"):
        open_video(p)


def test_named_pass_prefers_root(tmp_path):
    mov = make_video((4, 5, 6), "int16")
    p = write_h5(tmp_path / "n.h5", grp__data=make_video((4, 5, 6), "int16", 3), mov=mov,
                 bigger=make_video((9, 9, 9), "int16"))
    with open_video(p) as r:
        assert "dataset mov " in r.description
        check_reader(r, mov[..., None])


def test_named_pass_nested(tmp_path):
    data = make_video((4, 5, 6), "int16")
    p = write_h5(tmp_path / "n.h5", a__b__Imaging=data, other=make_video((9, 9, 9), "int16"))
    with open_video(p) as r:
        check_reader(r, data[..., None])


def test_named_pass_ambiguous(tmp_path):
    p = write_h5(tmp_path / "amb.h5", mov=make_video((4, 5, 6), "int16"), data=make_video((4, 5, 6), "int16"))
    with pytest.raises(InputError, match=r"amb\.h5: ambiguous: several video datasets \(data, mov\); "
                                         r"choose with --dataset"):
        open_video(p)


def test_shape_pass_largest(tmp_path):
    big = make_video((8, 5, 6), "float32")
    p = write_h5(tmp_path / "s.h5", a=make_video((4, 5, 6), "float32"), g__b=big, c=np.arange(1000.0))
    with open_video(p) as r:
        assert "g/b" in r.description
        check_reader(r, big[..., None])


def test_shape_pass_tie_is_ambiguous(tmp_path):
    p = write_h5(tmp_path / "tie.h5", a=make_video((4, 5, 6), "uint8"), b=make_video((6, 5, 4), "uint8"))
    with pytest.raises(InputError) as ei:
        open_video(p)
    assert str(ei.value).endswith("tie.h5: ambiguous: several video datasets (a, b); choose with --dataset")


def test_no_video_dataset(tmp_path):
    p = write_h5(tmp_path / "input.h5", a=np.arange(10), b=np.zeros((3, 4)))
    with pytest.raises(InputError) as ei:
        open_video(p)
    assert str(ei.value) == f"{p}: no video dataset (3-D or 4-D) found; datasets: a (10,), b (3, 4)"


def test_only_2d_dataset(tmp_path):
    p = write_h5(tmp_path / "img.h5", img=np.zeros((30, 40), np.uint16))
    with pytest.raises(InputError, match=r"img\.h5: dataset img \(30, 40\) has only 2 dimensions; "
                                         r"need a time axis"):
        open_video(p)
    with pytest.raises(InputError, match=r"img\.h5: dataset img \(30, 40\): has only 2 dimensions; "
                                         r"need a time axis"):
        open_video(p, datasets=["img"])


def test_string_datasets_are_skipped(tmp_path):
    data = make_video((4, 5, 6), "uint16")
    with h5py.File(tmp_path / "s.h5", "w") as f:
        f["video"] = data
        f["note"] = "hello"
        f["names"] = np.array([b"a", b"b"])
    with open_video(tmp_path / "s.h5") as r:
        check_reader(r, data[..., None])
    with pytest.raises(InputError, match=r"s\.h5: dataset 'note' is not numeric"):
        open_video(tmp_path / "s.h5", datasets=["note"])


# -- explicit datasets ---------------------------------------------------------

def test_explicit_datasets(tmp_path):
    u, v = make_video((5, 4, 3), "float32", 1), make_video((5, 4, 3), "float32", 2)
    p = write_h5(tmp_path / "w.h5", u=u, v=v, g__x=make_video((5, 4, 3, 2), "float32"))
    with open_video(p) as r:  # the largest
        assert r.description == "HDF5 dataset g/x (T,H,W,C)"
    with pytest.raises(InputError, match=r"w\.h5: ambiguous: several video datasets \(u, v\)"):
        open_video(write_h5(tmp_path / "w.h5", u=u, v=v))
    p = write_h5(tmp_path / "w.h5", u=u, v=v, g__x=make_video((5, 4, 3, 2), "float32"))
    with open_video(p, datasets=["u", "v"]) as r:
        assert r.description == "HDF5 datasets u, v (T,H,W)"
        check_reader(r, np.stack([u, v], axis=-1))
    with open_video(p, datasets=["v"]) as r:
        check_reader(r, v[..., None])
    with open_video(p, datasets="/g/x") as r:
        check_reader(r, make_video((5, 4, 3, 2), "float32"))


def test_explicit_dataset_errors(tmp_path):
    p = write_h5(tmp_path / "e.h5", u=make_video((5, 4, 3), "uint8"), w=make_video((5, 4, 2), "uint8"),
                 g__x=make_video((5, 4, 3, 2), "uint8"))
    with pytest.raises(InputError, match=r"e\.h5: no dataset 'nope'; datasets: .*u \(5, 4, 3\)"):
        open_video(p, datasets=["nope"])
    with pytest.raises(InputError, match=r"e\.h5: 'g' is a group, not a dataset"):
        open_video(p, datasets=["g"])
    with pytest.raises(InputError, match=r"e\.h5: channel datasets differ in shape: u \(5, 4, 3\), w \(5, 4, 2\)"):
        open_video(p, datasets=["u", "w"])
    with pytest.raises(InputError, match=r"e\.h5: dataset g/x .*several channel datasets must be 3-D"):
        open_video(p, datasets=["g/x", "g/x"])


# -- axes ----------------------------------------------------------------------

def test_time_last_hwt(tmp_path):
    thw = make_video((7, 5, 6), "uint16")
    p = write_h5(tmp_path / "hwt.h5", imaging=thw.transpose(1, 2, 0))
    with open_video(p, axes="HWT") as r:
        assert r.description == "HDF5 dataset imaging (H,W,T)"
        check_reader(r, thw[..., None])
    with open_video(p, axes="yxt") as r:
        check_reader(r, thw[..., None])


@pytest.mark.parametrize("axes,perm", [("CTHW", (1, 2, 3, 0)), ("TCYX", (0, 2, 3, 1)), ("HWCT", (3, 0, 1, 2)),
                                       ("TYXC", (0, 1, 2, 3)), ("THWC", (0, 1, 2, 3)), ("XYTC", (2, 1, 0, 3))])
def test_4d_axis_orders(tmp_path, axes, perm):
    expected = make_video((5, 6, 7, 2), "int32")  # T, H, W, C
    letter_of = {"T": 0, "H": 1, "Y": 1, "W": 2, "X": 2, "C": 3}
    stored = expected.transpose([letter_of[a] for a in axes])
    p = write_h5(tmp_path / "o.h5", data=stored)
    with open_video(p, axes=axes) as r:
        check_reader(r, expected)
        assert r.shape == (5, 6, 7, 2)
    assert perm  # documents the inverse permutation; the check above is the real one


def test_z_is_extra_time_in_stored_order(tmp_path):
    data = make_video((3, 4, 5, 6), "uint16")  # T, Z, H, W
    p = write_h5(tmp_path / "tz.h5", data=data)
    with open_video(p, axes="TZHW") as r:
        check_reader(r, data.reshape(12, 5, 6)[..., None])
    with open_video(p, axes="ZTHW") as r:  # same storage, first axis now called Z: same flattening
        check_reader(r, data.reshape(12, 5, 6)[..., None])
    with open_video(p, axes="HZWT") as r:  # silly but legal: time = (Z=axis 1, T=axis 3), in stored order
        check_reader(r, data.transpose(1, 3, 0, 2).reshape(24, 3, 5)[..., None])


def test_tzcyx_five_dims(tmp_path):
    data = make_video((3, 2, 2, 5, 6), "uint8")
    p = write_h5(tmp_path / "5d.h5", data=data)
    with pytest.raises(InputError, match=r"5d\.h5: dataset data .*has 5 dimensions; give the axis order"):
        open_video(p, datasets=["data"])
    with open_video(p, datasets=["data"], axes="TZCYX") as r:
        check_reader(r, data.reshape(6, 2, 5, 6).transpose(0, 2, 3, 1))


@pytest.mark.parametrize("axes,message", [
    ("TH", r"--axes 'TH' needs both H \(or Y\) and W \(or X\)"),
    ("THWC", r"--axes 'THWC' has 4 letters but the data has 3 dimensions"),
    ("TQW", r"--axes 'TQW' has unknown letter 'Q'"),
    ("TYH", r"--axes 'TYH' names the row axis twice"),
    ("CHW", r"--axes 'CHW' has no time axis"),
])
def test_bad_axes(tmp_path, axes, message):
    p = write_h5(tmp_path / "ax.h5", data=make_video((4, 5, 6), "uint8"))
    with pytest.raises(InputError, match=r"ax\.h5: .*" + message):
        open_video(p, axes=axes)


def test_axes_with_channel_for_several_datasets(tmp_path):
    p = write_h5(tmp_path / "ax.h5", ch1=make_video((4, 5, 6, 2), "uint8"), ch2=make_video((4, 5, 6, 2), "uint8"))
    with pytest.raises(InputError, match=r"ax\.h5: .*channel axis, but each of several datasets is one channel"):
        open_video(p, datasets=["ch1", "ch2"], axes="THWC")
    with pytest.raises(InputError, match=r"ax\.h5: .*several channel datasets must be 3-D"):
        open_video(p, datasets=["ch1", "ch2"])


# -- damaged files -------------------------------------------------------------------

@pytest.mark.parametrize("layout", ["contiguous", "chunked", "gzip"])
def test_truncated_hdf5(tmp_path, layout):
    data = make_video((20, 32, 32), "uint16")
    p = tmp_path / f"cut_{layout}.h5"
    kw = {} if layout == "contiguous" else {"chunks": (1, 32, 32)}
    if layout == "gzip":
        kw["compression"] = "gzip"
    with h5py.File(p, "w") as f:
        f.create_dataset("data", data=data, **kw)
    truncate_to_half(p)
    assert_input_error_open_or_read(p)


def test_corrupt_chunk_fails_on_read(tmp_path):
    data = make_video((6, 32, 32), "uint16")
    p = tmp_path / "badchunk.h5"
    with h5py.File(p, "w") as f:
        d = f.create_dataset("data", data=data, chunks=(1, 32, 32), compression="gzip")
        info = d.id.get_chunk_info_by_coord((3, 0, 0))
    raw = bytearray(p.read_bytes())
    raw[info.byte_offset:info.byte_offset + info.size] = b"\x00" * info.size
    p.write_bytes(bytes(raw))
    with open_video(p) as r:
        np.testing.assert_array_equal(r.read(0, 3)[..., 0], data[:3])
        with pytest.raises(InputError, match=r"badchunk\.h5: cannot read frames 2\.\.4: .*truncated or corrupt"):
            r.read(2, 5)
        with pytest.raises(InputError, match=r"badchunk\.h5"):
            r.read_indices([3])


def test_matlab_4d_recording_dataset(tmp_path):
    # MATLAB Flow-Registration writes 4-D video as 'recording', H x W x C x T in
    # MATLAB's order, which h5py sees as (T, C, W, H)
    vid = np.random.default_rng(3).integers(0, 4000, (5, 6, 7, 2)).astype(np.uint16)
    p = tmp_path / "matlab.h5"
    with h5py.File(p, "w") as f:
        f["recording"] = np.ascontiguousarray(vid.transpose(0, 3, 2, 1))
    with open_video(p) as r:
        assert r.shape == (5, 6, 7, 2)
        assert np.array_equal(r.read(0, 5), vid)

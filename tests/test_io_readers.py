"""frkit.io readers: dispatch, the reader contract, error messages, real recordings.

Format-specific layouts are in test_io_tiff.py, test_io_hdf5.py and
test_io_mat.py; the reader-contract helpers they share are in conftest.py.
"""


import h5py
import numpy as np
import pytest
import tifffile

from frkit.errors import InputError, OptionError
from frkit.io import load_image, open_video

from conftest import check_reader, make_video

def _h5(path, data, name="data"):
    with h5py.File(path, "w") as f:
        f[name] = data
    return path


@pytest.mark.parametrize("name", ["v.h5", "v.HDF5", "v.hdf", "v.Hdf5", "v.dat", "v"])
def test_hdf5_dispatch_by_extension_or_signature(tmp_path, name):
    data = make_video((4, 5, 6), "uint16")
    with open_video(_h5(tmp_path / name, data)) as r:
        check_reader(r, data[..., None])


@pytest.mark.parametrize("name", ["v.tif", "v.TIFF", "v.Tif", "v.btf", "v.unknown"])
def test_tiff_dispatch_by_extension_or_signature(tmp_path, name):
    data = make_video((4, 5, 6), "uint16")
    tifffile.imwrite(tmp_path / name, data, photometric="minisblack")
    with open_video(tmp_path / name) as r:
        check_reader(r, data[..., None])


def test_unknown_format(tmp_path):
    p = tmp_path / "video.xyz"
    p.write_bytes(b"not a video at all" * 10)
    with pytest.raises(InputError, match=r"video\.xyz: unsupported file format"):
        open_video(p)


def test_h5_extension_but_not_hdf5(tmp_path):
    p = tmp_path / "fake.h5"
    p.write_bytes(b"\x00" * 1000)
    with pytest.raises(InputError, match=r"fake\.h5: not an HDF5 file"):
        open_video(p)


def test_tif_extension_but_garbage(tmp_path):
    p = tmp_path / "fake.tif"
    p.write_bytes(b"garbage!" * 100)
    with pytest.raises(InputError, match=r"fake\.tif: not a readable TIFF file"):
        open_video(p)


def test_mat_extension_but_garbage(tmp_path):
    p = tmp_path / "fake.mat"
    p.write_bytes(b"garbage!" * 100)
    with pytest.raises(InputError, match=r"fake\.mat: not a MAT-file version 5"):
        open_video(p)


# -- path errors ---------------------------------------------------------------

def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"nothere\.h5: no such file"):
        open_video(tmp_path / "nothere.h5")


def test_directory(tmp_path):
    d = tmp_path / "adir.tif"
    d.mkdir()
    with pytest.raises(InputError, match=r"adir\.tif: is a directory"):
        open_video(d)


@pytest.mark.parametrize("name", ["empty.h5", "empty.tif", "empty.mat", "empty.bin"])
def test_empty_file(tmp_path, name):
    (tmp_path / name).write_bytes(b"")
    with pytest.raises(InputError, match=rf"{name.replace('.', '[.]')}: file is empty \(0 bytes\)"):
        open_video(tmp_path / name)


def test_bad_deinterleave_value(tmp_path):
    with pytest.raises(OptionError, match="deinterleave"):
        open_video(tmp_path / "x.h5", deinterleave=0)


def test_dataset_option_rejected_for_tiff(tmp_path):
    tifffile.imwrite(tmp_path / "v.tif", make_video((3, 4, 5), "uint8"), photometric="minisblack")
    with pytest.raises(OptionError, match="--dataset"):
        open_video(tmp_path / "v.tif", datasets=["data"])


# -- reader contract ------------------------------------------------------------

def test_read_bounds_and_close(tmp_path):
    data = make_video((5, 4, 3), "int16")
    r = open_video(_h5(tmp_path / "v.h5", data))
    with pytest.raises(IndexError):
        r.read(3, 6)
    with pytest.raises(IndexError):
        r.read(-1, 2)
    with pytest.raises(IndexError):
        r.read(3, 2)
    with pytest.raises(IndexError):
        r.read_indices([0, 5])
    with pytest.raises(IndexError):
        r.read_indices([-1])
    r.close()
    r.close()  # idempotent
    with pytest.raises(ValueError):
        r.read(0, 1)


def test_read_indices_long_runs_and_duplicates(tmp_path):
    data = make_video((600, 3, 2), "uint8")
    with open_video(_h5(tmp_path / "v.h5", data)) as r:
        idx = np.concatenate([np.arange(550), [3, 3, 599, 0]])
        np.testing.assert_array_equal(r.read_indices(idx), data[idx][..., None])
        np.testing.assert_array_equal(r.read_indices(np.array([[1, 2], [3, 4]])),
                                      data[[1, 2, 3, 4]][..., None])


def test_deinterleave_hdf5(tmp_path):
    data = make_video((6, 4, 5), "uint16")
    with open_video(_h5(tmp_path / "v.h5", data), deinterleave=2) as r:
        assert "deinterleaved x2" in r.description
        check_reader(r, data.reshape(3, 2, 4, 5).transpose(0, 2, 3, 1))
    with pytest.raises(InputError, match=r"v\.h5: 6 frames is not a multiple of --deinterleave 4"):
        open_video(tmp_path / "v.h5", deinterleave=4)


def test_deinterleave_needs_single_channel(tmp_path):
    data = make_video((6, 4, 5, 2), "uint16")
    with pytest.raises(InputError, match=r"v\.h5: --deinterleave 2 needs single-channel"):
        open_video(_h5(tmp_path / "v.h5", data), deinterleave=2)


# -- load_image -------------------------------------------------------------------

def test_load_image_formats(tmp_path):
    img = make_video((6, 7), "float32")
    np.save(tmp_path / "r.npy", img)
    np.testing.assert_array_equal(load_image(tmp_path / "r.npy"), img)
    tifffile.imwrite(tmp_path / "r.tif", img)
    np.testing.assert_array_equal(load_image(tmp_path / "r.tif"), img)
    rgb = make_video((6, 7, 2), "uint16")
    tifffile.imwrite(tmp_path / "c.tif", rgb.transpose(2, 0, 1), imagej=True, metadata={"axes": "CYX"})
    np.testing.assert_array_equal(load_image(tmp_path / "c.tif"), rgb)
    with h5py.File(tmp_path / "r.h5", "w") as f:
        f["reference"] = img
        f["other"] = img + 1
    np.testing.assert_array_equal(load_image(tmp_path / "r.h5"), img)
    from scipy.io import savemat

    savemat(tmp_path / "r.mat", {"ref": img.astype(np.float64), "note": "x"})
    np.testing.assert_array_equal(load_image(tmp_path / "r.mat"), img)
    with pytest.raises(InputError, match="no such file"):
        load_image(tmp_path / "missing.npy")


# -- real recordings (../shared/data) -----------------------------------------------

def test_sima_h5_hwt_equals_tiff(shared_data):
    with open_video(shared_data / "sima_example.h5", axes="HWT") as h, \
            open_video(shared_data / "sima_example.tif") as t:
        assert h.shape == t.shape == (20, 128, 256, 1)
        assert h.dtype == t.dtype == np.uint16
        np.testing.assert_array_equal(h.read(0, 20), t.read(0, 20))
        np.testing.assert_array_equal(h.read_indices([19, 3, 7]), t.read_indices([19, 3, 7]))
        assert "imaging" in h.description and "H,W,T" in h.description


def test_sima_tiff_matches_tifffile(shared_data):
    ref = tifffile.imread(shared_data / "sima_example.tif")
    with open_video(shared_data / "sima_example.tif") as t:
        check_reader(t, ref[..., None])


def test_allen_discovery_picks_input_frames(shared_data):
    path = shared_data / "allen_792757260_test_data.h5"
    with h5py.File(path, "r") as f:
        ref = f["input_frames"][()]
    with open_video(path) as r:
        assert r.shape == (100, 100, 100, 1) and r.dtype == np.int16
        assert "input_frames" in r.description
        np.testing.assert_array_equal(r.read(10, 20)[..., 0], ref[10:20])
        np.testing.assert_array_equal(r.read_indices([99, 0])[..., 0], ref[[99, 0]])


def test_allen_movie_data(shared_data):
    path = shared_data / "allen_movie_100x100x100.h5"
    with h5py.File(path, "r") as f:
        ref = f["data"][()]
    with open_video(path) as r:
        check_reader(r, ref[..., None])


def test_allen_big_endian_comes_back_native(shared_data):
    path = shared_data / "allen_dewarping_regression_test_input.h5"
    with h5py.File(path, "r") as f:
        stored = f["data"][()]
    assert stored.dtype == np.dtype(">u2")
    with open_video(path) as r:
        assert r.dtype == np.dtype("=u2") and r.dtype.isnative
        frames = r.read(0, 5)
        assert frames.dtype.isnative
        np.testing.assert_array_equal(frames[..., 0], stored.astype("=u2"))
        check_reader(r, stored[..., None])

"""MATLAB MAT v5 (streamed) and v7.3 (HDF5) videos through frkit.io.open_video.

MATLAB's view ``H x W x T`` (column-major) is what scipy.io.savemat writes
for a numpy array of shape ``(H, W, T)``; the reader must return
``(T, H, W, 1)``.
"""

import struct
import zlib

import h5py
import numpy as np
import pytest
from scipy.io import savemat

from frkit.errors import InputError
from frkit.io import mat as matmod
from frkit.io import open_video
from frkit.io.hdf5 import Hdf5Reader
from frkit.io.mat import MatV5Reader

from conftest import DTYPES, assert_input_error_open_or_read, check_reader, make_video, truncate_to_half


def hwt(video_thw):
    """(T, H, W) -> MATLAB H x W x T as numpy (H, W, T)."""
    return np.ascontiguousarray(video_thw.transpose(1, 2, 0))


# -- v5 via scipy.io.savemat -----------------------------------------------------

@pytest.mark.parametrize("compressed", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_v5_3d_all_dtypes(tmp_path, dtype, compressed):
    video = make_video((6, 5, 7), dtype)  # T, H, W
    p = tmp_path / "v.mat"
    savemat(p, {"mov": hwt(video)}, do_compression=compressed)
    with open_video(p) as r:
        assert isinstance(r, MatV5Reader)
        assert r.description.startswith("MAT v5 variable mov (MATLAB H x W x T")
        check_reader(r, video[..., None])


@pytest.mark.parametrize("compressed", [False, True])
def test_v5_4d_hwct(tmp_path, compressed):
    video = make_video((5, 6, 7, 3), "float32")  # T, H, W, C
    p = tmp_path / "v.mat"
    savemat(p, {"data": np.ascontiguousarray(video.transpose(1, 2, 3, 0))}, do_compression=compressed)
    with open_video(p) as r:
        check_reader(r, video)


@pytest.mark.parametrize("compressed", [False, True])
def test_v5_skips_struct_char_cell_and_2d(tmp_path, compressed):
    video = make_video((4, 5, 6), "uint16")
    cell = np.empty((2,), dtype=object)
    cell[0], cell[1] = "a", np.arange(3)
    p = tmp_path / "mixed.mat"
    savemat(p, {"opts": {"alpha": 1.5, "name": "x", "big": np.zeros((9, 9, 9))}, "note": "hello world",
                "cells": cell, "ref": np.zeros((5, 6)), "stack": hwt(video),
                "cplx": np.zeros((9, 9, 9), complex)}, do_compression=compressed)
    with open_video(p) as r:
        assert "stack" in r.description
        check_reader(r, video[..., None])
    with pytest.raises(InputError, match=r"mixed\.mat: variable note \(1x11 char\) is not a real numeric array"):
        open_video(p, datasets=["note"])
    with pytest.raises(InputError, match=r"mixed\.mat: variable cplx \(9x9x9 complex double\) is not"):
        open_video(p, datasets=["cplx"])


@pytest.mark.parametrize("compressed", [False, True])
def test_v5_channel_variables(tmp_path, compressed):
    c = [make_video((4, 5, 6), "int16", k) for k in range(3)]
    p = tmp_path / "ch.mat"
    savemat(p, {"ch10": hwt(c[2]), "ch2": hwt(c[1]), "ch1": hwt(c[0]), "other": np.ones((20, 20, 20))},
            do_compression=compressed)
    with open_video(p) as r:
        assert r.description.startswith("MAT v5 variables ch1, ch2, ch10")
        check_reader(r, np.stack(c, axis=-1))
    with open_video(p, datasets=["ch2"]) as r:
        check_reader(r, c[1][..., None])


def test_v5_logical(tmp_path):
    video = make_video((4, 5, 6), "uint8") > 100
    p = tmp_path / "l.mat"
    savemat(p, {"mask": hwt(video)})
    with open_video(p) as r:
        assert r.dtype == np.uint8
        check_reader(r, video[..., None].astype(np.uint8))


@pytest.mark.parametrize("compressed", [False, True])
def test_v5_other_axis_order(tmp_path, compressed, monkeypatch):
    """MATLAB T x H x W: time is not the outermost C-order axis; small pieces force streaming."""
    monkeypatch.setattr(matmod, "_PIECE", 64)
    video = make_video((6, 5, 7), "float64")
    p = tmp_path / "thw.mat"
    savemat(p, {"frames": video}, do_compression=compressed)  # MATLAB 6 x 5 x 7
    with open_video(p, axes="THW") as r:
        assert r.shape == (6, 5, 7, 1)
        check_reader(r, video[..., None])


@pytest.mark.parametrize("compressed", [False, True])
def test_v5_frames_stored_c_order(tmp_path, compressed):
    """MATLAB W x H x T is C-order (T, H, W): frames come back without a transpose, still as copies."""
    video = make_video((5, 4, 6), "float64")  # T, H, W
    p = tmp_path / "wht.mat"
    savemat(p, {"mov": np.ascontiguousarray(video.transpose(2, 1, 0))}, do_compression=compressed)
    with open_video(p, axes="WHT") as r:
        check_reader(r, video[..., None])
        a = r.read(0, 2)
        a += 1  # writeable, not a view of the file
        np.testing.assert_array_equal(r.read(0, 2), video[:2, ..., None])


def test_v5_compressed_small_pieces_and_backward_seek(tmp_path, monkeypatch):
    monkeypatch.setattr(matmod, "_PIECE", 100)
    monkeypatch.setattr(matmod, "_READ_CHUNK", 37)
    video = make_video((30, 8, 9), "int32")
    p = tmp_path / "z.mat"
    savemat(p, {"mov": hwt(video)}, do_compression=True)
    with open_video(p) as r:
        np.testing.assert_array_equal(r.read(20, 25)[..., 0], video[20:25])
        np.testing.assert_array_equal(r.read(2, 4)[..., 0], video[2:4])  # backwards: restart
        np.testing.assert_array_equal(r.read(4, 30)[..., 0], video[4:])  # forwards: continue
        check_reader(r, video[..., None])


def test_v5_errors(tmp_path):
    p = tmp_path / "none.mat"
    savemat(p, {"a": np.arange(10.0), "b": np.zeros((3, 4)), "s": {"x": 1}})
    with pytest.raises(InputError) as ei:
        open_video(p)
    assert str(ei.value) == (f"{p}: no video variable (3-D or 4-D) found; variables: a (1x10 double), "
                             "b (3x4 double), s (1x1 struct)")
    p = tmp_path / "two.mat"
    savemat(p, {"a": np.zeros((3, 4, 5)), "b": np.zeros((5, 4, 3))})
    with pytest.raises(InputError, match=r"two\.mat: ambiguous: several video variables \(a, b\)"):
        open_video(p)
    with pytest.raises(InputError, match=r"two\.mat: no variable 'c'; variables: a \(3x4x5 double\)"):
        open_video(p, datasets=["c"])
    with pytest.raises(InputError, match=r"two\.mat: channel variables differ in size"):
        open_video(p, datasets=["a", "b"])
    with pytest.raises(InputError, match=r"two\.mat: variable a \(3x4x5 double\): --axes 'THWC' has 4 letters"):
        open_video(p, datasets=["a"], axes="THWC")
    p = tmp_path / "img.mat"
    savemat(p, {"img": np.zeros((30, 40), np.uint16)})
    with pytest.raises(InputError, match=r"img\.mat: variable img \(30x40 uint16\) has only 2 dimensions"):
        open_video(p)


@pytest.mark.parametrize("compressed", [False, True])
def test_v5_truncated(tmp_path, compressed):
    p = tmp_path / "cut.mat"
    savemat(p, {"mov": hwt(make_video((20, 32, 32), "uint16"))}, do_compression=compressed)
    truncate_to_half(p)
    err = assert_input_error_open_or_read(p)
    assert "truncated" in str(err)


def test_v5_corrupt_compressed_stream(tmp_path):
    p = tmp_path / "bad.mat"
    savemat(p, {"mov": hwt(make_video((20, 32, 32), "uint16"))}, do_compression=True)
    raw = bytearray(p.read_bytes())
    mid = len(raw) // 2
    raw[mid:mid + 200] = bytes(200)
    p.write_bytes(bytes(raw))
    assert_input_error_open_or_read(p)


# -- hand-made v5 files: storage type != class, big-endian, small elements -----------

def craft_mat5(path, variables, endian="<", compress=False):
    """Write a v5 MAT-file by hand. ``variables``: (name, fortran_array, class_id, mi_type, flags)."""

    def element(mtype, payload):
        if len(payload) <= 4:  # small element: count in the high, type in the low 16 bits
            return struct.pack(endian + "I", (len(payload) << 16) | mtype) + payload.ljust(4, b"\x00")
        return struct.pack(endian + "II", mtype, len(payload)) + payload + b"\x00" * (-len(payload) % 8)

    code = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 9: "f8", 12: "i8", 13: "u8"}
    header = b"MATLAB 5.0 MAT-file, crafted".ljust(116) + b"\x00" * 8
    header += struct.pack(endian + "H", 0x0100) + (b"IM" if endian == "<" else b"MI")
    body = b""
    for name, arr, class_id, mi_type, flags in variables:
        data = np.asarray(arr).ravel(order="F").astype(endian + code[mi_type]).tobytes()
        sub = (element(6, struct.pack(endian + "II", class_id | flags, 0))
               + element(5, struct.pack(f"{endian}{arr.ndim}i", *arr.shape))
               + element(1, name.encode()) + element(mi_type, data))
        matrix = struct.pack(endian + "II", 14, len(sub)) + sub
        if compress:
            z = zlib.compress(matrix)
            body += struct.pack(endian + "II", 15, len(z)) + z
        else:
            body += matrix
    path.write_bytes(header + body)
    return path


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("compress", [False, True])
def test_v5_crafted_storage_type_and_byte_order(tmp_path, endian, compress):
    video = make_video((5, 4, 6), "uint8")  # T, H, W
    as_double = hwt(video).astype(np.float64)
    p = craft_mat5(tmp_path / "c.mat", [
        ("x", np.zeros((2, 2)), 6, 9, 0),                    # 4-byte name -> small element
        ("mov", as_double, 6, 2, 0),                         # class double stored as miUINT8
        ("i16", hwt(video.astype(np.int16) - 100), 10, 3, 0),
    ], endian=endian, compress=compress)
    with open_video(p, datasets=["mov"]) as r:
        assert r.dtype == np.float64
        check_reader(r, video[..., None].astype(np.float64))
    with open_video(p, datasets=["i16"]) as r:
        check_reader(r, (video.astype(np.int16) - 100)[..., None])


# -- v7.3 (HDF5 with a 512-byte user block) ---------------------------------------------

def write_mat73(path, variables):
    """``variables``: name -> (MATLAB-view numpy array, MATLAB class)."""
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, (arr, cls) in variables.items():
            d = f.create_dataset(name, data=np.asarray(arr).T)  # MATLAB dims appear reversed
            d.attrs["MATLAB_class"] = np.bytes_(cls)
        refs = f.create_group("#refs#")
        refs.create_dataset("a", data=np.zeros((50, 50, 50)))
        note = f.create_dataset("note", data=np.frombuffer("hi there".encode("utf-16-le"), np.uint16)[None, :].T)
        note.attrs["MATLAB_class"] = np.bytes_("char")
        s = f.create_group("opts")
        s.attrs["MATLAB_class"] = np.bytes_("struct")
        big = s.create_dataset("cellref", data=np.zeros((60, 60, 60), np.uint32))
        big.attrs["MATLAB_class"] = np.bytes_("cell")
    text = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
    head = text.ljust(116, b" ") + b"\x00" * 8 + struct.pack("<H", 0x0200) + b"IM"
    with open(path, "r+b") as fh:
        fh.write(head)
    return path


@pytest.mark.parametrize("dtype,cls", [("uint16", "uint16"), ("float64", "double"), ("float32", "single"),
                                       ("int8", "int8"), ("uint32", "uint32")])
def test_v73_3d(tmp_path, dtype, cls):
    video = make_video((6, 5, 7), dtype)
    p = write_mat73(tmp_path / "v73.mat", {"mov": (hwt(video), cls)})
    assert h5py.is_hdf5(p)
    with h5py.File(p, "r") as f:
        assert f["mov"].shape == (6, 7, 5)  # (T, W, H)
    with open_video(p) as r:
        assert isinstance(r, Hdf5Reader)
        assert r.description == "MAT v7.3 variable mov (MATLAB H x W x T)"
        check_reader(r, video[..., None])


def test_v73_4d_and_logical(tmp_path):
    video = make_video((5, 6, 7, 2), "int16")
    mask = make_video((5, 6, 7), "uint8") > 50
    p = write_mat73(tmp_path / "v73.mat", {"data": (np.ascontiguousarray(video.transpose(1, 2, 3, 0)), "int16"),
                                           "mask": (hwt(mask.astype(np.uint8)), "logical")})
    with h5py.File(p, "r") as f:
        assert f["data"].shape == (5, 2, 7, 6)  # (T, C, W, H)
    with open_video(p) as r:
        assert r.description == "MAT v7.3 variable data (MATLAB H x W x C x T)"
        check_reader(r, video)
    with open_video(p, datasets=["mask"]) as r:
        check_reader(r, mask[..., None].astype(np.uint8))


def test_v73_channels_and_axes(tmp_path):
    c1, c2 = make_video((4, 5, 6), "float32", 1), make_video((4, 5, 6), "float32", 2)
    p = write_mat73(tmp_path / "ch.mat", {"ch1": (hwt(c1), "single"), "ch2": (hwt(c2), "single")})
    with open_video(p) as r:
        check_reader(r, np.stack([c1, c2], axis=-1))
    q = write_mat73(tmp_path / "thw.mat", {"frames": (c1, "single")})  # MATLAB T x H x W
    with open_video(q, axes="THW") as r:
        check_reader(r, c1[..., None])
    with pytest.raises(InputError, match=r"thw\.mat: variable frames \(4x5x6 single\): --axes 'THWC'"):
        open_video(q, axes="THWC")
    with pytest.raises(InputError, match=r"thw\.mat: variable 'note' is not numeric \(char\)"):
        open_video(q, datasets=["note"])


def test_v73_only_skipped_variables(tmp_path):
    p = write_mat73(tmp_path / "none.mat", {"ref": (np.zeros((5, 6)), "double")})
    with pytest.raises(InputError, match=r"none\.mat: variable ref \(5x6 double\) has only 2 dimensions"):
        open_video(p)


def test_v73_truncated(tmp_path):
    p = write_mat73(tmp_path / "cut73.mat", {"mov": (hwt(make_video((20, 32, 32), "uint16")), "uint16")})
    truncate_to_half(p)
    assert_input_error_open_or_read(p)

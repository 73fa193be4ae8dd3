"""File input and output for frkit.

Videos are read and written as ``(T, H, W, C)`` arrays (time, rows,
columns, channels), always 4-D, C-contiguous and in native byte order, a
batch of frames at a time -- never a whole recording.

Reading (:func:`open_video`): TIFF (plain multi-page, BigTIFF, ImageJ
hyperstacks, multi-sample pages, ScanImage, interleaved channels), HDF5
(auto-discovery of ``ch1..chN`` / named / largest datasets, any axis order)
and MATLAB MAT files (v5 streamed without scipy, v7.3 via h5py).

Writing: :class:`Hdf5VideoWriter`, :class:`TiffVideoWriter`,
:class:`MatVideoWriter` (or :func:`open_video_writer`), and the atomic
helpers in :mod:`frkit.io.atomic`; every output appears under its final
name only when complete.
"""

import importlib

#: public name -> submodule that defines it. Imported on first use (PEP 562): fr-align and other tools that
#: only write .npy/.npz need none of the HDF5/TIFF/MAT readers (h5py and tifffile cost ~0.2 s to import).
_HOMES = {
    "atomic_output": "atomic", "partial_path": "atomic", "save_npy_atomic": "atomic", "save_npz_atomic": "atomic",
    "save_png_atomic": "atomic", "save_tiff_atomic": "atomic", "savemat_atomic": "atomic",
    "write_json_atomic": "atomic", "VideoReader": "base", "Hdf5Reader": "hdf5", "MatV5Reader": "mat",
    "load_image": "readers", "open_video": "readers", "TiffReader": "tiff", "Hdf5VideoWriter": "writers",
    "MatVideoWriter": "writers", "TiffVideoWriter": "writers", "VideoWriter": "writers",
    "open_video_writer": "writers",
}


def __getattr__(name):
    if name in _HOMES:
        value = getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_HOMES))


__all__ = [
    "Hdf5Reader",
    "Hdf5VideoWriter",
    "MatV5Reader",
    "MatVideoWriter",
    "TiffReader",
    "TiffVideoWriter",
    "VideoReader",
    "VideoWriter",
    "atomic_output",
    "load_image",
    "open_video",
    "open_video_writer",
    "partial_path",
    "save_npy_atomic",
    "save_npz_atomic",
    "save_png_atomic",
    "savemat_atomic",
    "save_tiff_atomic",
    "write_json_atomic",
]

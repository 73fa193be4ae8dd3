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

from .atomic import (atomic_output, partial_path, save_npy_atomic, save_npz_atomic, save_png_atomic,
                     save_tiff_atomic, savemat_atomic, write_json_atomic)
from .base import VideoReader
from .hdf5 import Hdf5Reader
from .mat import MatV5Reader
from .readers import load_image, open_video
from .tiff import TiffReader
from .writers import Hdf5VideoWriter, MatVideoWriter, TiffVideoWriter, VideoWriter, open_video_writer

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

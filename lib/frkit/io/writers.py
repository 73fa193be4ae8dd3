"""Streaming video writers: HDF5, BigTIFF and MAT v5.

All writers take frames as ``(n, H, W, C)`` arrays of exactly the declared
dtype (byte order may differ; values are written in the file's order) and
append them in order; only the batch being written is held in memory.
They write to ``<path>.partial`` (:func:`frkit.io.atomic.partial_path`)
and move it onto ``path`` in :meth:`commit`; :meth:`abort` deletes the
partial file. As context managers they commit on normal exit and abort
when the block raises.

=========  ===================================================================
format     layout
=========  ===================================================================
HDF5       datasets ``ch1 .. chN`` (or ``dataset_names``), each ``(T, H, W)``,
           chunks ``(1, H, W)``, ``maxshape (None, H, W)``, uncompressed;
           file attributes ``n_channels``, ``frame_count``, ``height``,
           ``width`` (+ ``attrs``) written at commit.
TIFF       BigTIFF, one page per frame, ``H x W`` (C = 1) or ``H x W x C``
           samples (contig, minisblack), uncompressed, stored contiguously
           so tifffile reads it as one series ``(T, H, W[, C])``.
MAT        MAT v5, uncompressed, little-endian: variables ``ch1 .. chN`` (or
           ``dataset_names``), each MATLAB ``H x W x T`` of the class
           matching the dtype (float64 double, float32 single, int8..uint64,
           bool logical). The frame count must be known up front; each
           variable must stay below 2 GiB (MATLAB's v5/v7 limit).
=========  ===================================================================
"""

from __future__ import annotations

import re
import struct
import time
from pathlib import Path

import h5py
import numpy as np

from ..errors import OptionError, OutputError
from .atomic import commit_partial, partial_path, remove_quietly

__all__ = ["Hdf5VideoWriter", "MatVideoWriter", "TiffVideoWriter", "VideoWriter", "open_video_writer"]

_MAT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
_MAT_LIMIT = 2**31 - 1

#: numpy dtype -> (MATLAB class id, mi data type, logical flag)
_MAT_TYPES = {
    np.dtype(np.float64): (6, 9), np.dtype(np.float32): (7, 7),
    np.dtype(np.int8): (8, 1), np.dtype(np.uint8): (9, 2),
    np.dtype(np.int16): (10, 3), np.dtype(np.uint16): (11, 4),
    np.dtype(np.int32): (12, 5), np.dtype(np.uint32): (13, 6),
    np.dtype(np.int64): (14, 12), np.dtype(np.uint64): (15, 13),
    np.dtype(np.bool_): (9, 2),
}


def _pad8(n: int) -> int:
    return (n + 7) & ~7


def _native(dtype) -> np.dtype:
    dt = np.dtype(dtype)
    return dt.newbyteorder("=") if dt.byteorder not in ("|", "=") else dt


class VideoWriter:
    """Base of the video writers: validation, frame count, commit/abort.

    Attributes:
        path: final file name.
        partial: the file being written (``<path>.partial``).
        frame_count: frames appended so far.
    """

    format = ""

    def __init__(self, path, n_channels: int, height: int, width: int, dtype):
        for name, v in (("n_channels", n_channels), ("height", height), ("width", width)):
            if int(v) != v or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        self.path = Path(path)
        self.partial = partial_path(self.path)
        self.n_channels, self.height, self.width = int(n_channels), int(height), int(width)
        self.dtype = _native(dtype)
        self.frame_count = 0
        self._state = "open"

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        return (self.height, self.width, self.n_channels)

    def _check(self, frames) -> np.ndarray:
        if self._state != "open":
            raise RuntimeError(f"{self.path}: writer is {self._state}")
        a = np.asarray(frames)
        if a.ndim != 4 or a.shape[1:] != self.frame_shape:
            raise OutputError(f"{self.path}: frames of shape {a.shape} do not fit the output "
                              f"(n, {self.height}, {self.width}, {self.n_channels})")
        if _native(a.dtype) != self.dtype:
            raise OutputError(f"{self.path}: frames are {a.dtype}, the output is {self.dtype}")
        return a

    def append(self, frames) -> None:
        """Append ``(n, H, W, C)`` frames of the writer's dtype."""
        a = self._check(frames)
        if len(a) == 0:
            return
        try:
            self._append(a)
        except OSError as exc:
            raise OutputError(f"{self.path}: cannot write: {exc.strerror or exc}") from exc
        self.frame_count += len(a)

    def commit(self) -> None:
        """Finish the file and move it onto :attr:`path` (no-op once committed)."""
        if self._state == "committed":
            return
        if self._state != "open":
            raise RuntimeError(f"{self.path}: writer is {self._state}")
        try:
            self._finish()
        except BaseException as exc:
            self.abort()
            if isinstance(exc, OSError):
                raise OutputError(f"{self.path}: cannot write: {exc.strerror or exc}") from exc
            raise
        commit_partial(self.partial, self.path)
        self._state = "committed"

    def abort(self) -> None:
        """Close and delete the partial file (no-op after commit or abort)."""
        if self._state != "open":
            return
        self._state = "aborted"
        try:
            self._discard()
        finally:
            remove_quietly(self.partial)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {str(self.path)!r} {self.frame_count} x {self.frame_shape} "
                f"{self.dtype} {self._state}>")

    # subclass hooks
    def _append(self, frames: np.ndarray) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        raise NotImplementedError

    def _discard(self) -> None:
        raise NotImplementedError


def _channel_names(names, n_channels: int) -> list[str]:
    if names is None:
        return [f"ch{i + 1}" for i in range(n_channels)]
    names = [str(n) for n in names]
    if len(names) != n_channels:
        raise ValueError(f"{len(names)} dataset names for {n_channels} channels")
    if len(set(names)) != len(names) or not all(names):
        raise ValueError(f"dataset names must be unique and non-empty: {names}")
    return names


def _open_h5(path: Path, mode: str):
    try:
        return h5py.File(path, mode, locking=False)
    except (TypeError, ValueError):  # HDF5 without the locking switch
        return h5py.File(path, mode)


class Hdf5VideoWriter(VideoWriter):
    """Append frames to an HDF5 file, one ``(T, H, W)`` dataset per channel.

    Parameters:
        path: final file name (written as ``<path>.partial`` until commit).
        n_channels, height, width: frame geometry.
        dtype: element type of the datasets (any numeric numpy dtype;
            stored native-endian).
        dataset_names: one name per channel (default ``ch1 .. chN``), e.g.
            ``["idx"]`` or ``["u", "v"]``.
        chunked: True (default): datasets grow, chunks ``(1, H, W)``,
            ``maxshape (None, H, W)``. False: contiguous datasets of fixed
            size ``n_frames`` (which is then required, and must be reached
            by commit).
        attrs: extra file attributes written at commit.
        n_frames: frame count for ``chunked=False``.
    """

    format = "HDF5"

    def __init__(self, path, n_channels: int, height: int, width: int, dtype, dataset_names=None,
                 chunked: bool = True, attrs: dict | None = None, n_frames: int | None = None):
        super().__init__(path, n_channels, height, width, dtype)
        self.dataset_names = _channel_names(dataset_names, self.n_channels)
        self.chunked = bool(chunked)
        self.attrs = dict(attrs or {})
        if not self.chunked and n_frames is None:
            raise ValueError("chunked=False needs n_frames")
        self.n_frames = n_frames
        try:
            self._file = _open_h5(self.partial, "w")
        except OSError as exc:
            raise OutputError(f"{self.path}: cannot create {self.partial.name}: "
                              f"{exc.strerror or str(exc).splitlines()[0]}") from None
        try:
            h, w = self.height, self.width
            self._dsets = []
            for name in self.dataset_names:
                if self.chunked:
                    d = self._file.create_dataset(name, shape=(0, h, w), maxshape=(None, h, w),
                                                  chunks=(1, h, w), dtype=self.dtype)
                else:
                    d = self._file.create_dataset(name, shape=(int(n_frames), h, w), dtype=self.dtype)
                self._dsets.append(d)
        except BaseException:
            self._file.close()
            remove_quietly(self.partial)
            raise

    def _append(self, frames: np.ndarray) -> None:
        n0, n = self.frame_count, len(frames)
        if not self.chunked and n0 + n > self.n_frames:
            raise OutputError(f"{self.path}: more than the declared {self.n_frames} frames")
        for k, d in enumerate(self._dsets):
            if self.chunked:
                d.resize(n0 + n, axis=0)
            d[n0:n0 + n] = np.ascontiguousarray(frames[..., k], dtype=self.dtype)

    def _finish(self) -> None:
        if not self.chunked and self.frame_count != self.n_frames:
            raise OutputError(f"{self.path}: {self.frame_count} of the declared {self.n_frames} frames written")
        a = self._file.attrs
        a["n_channels"] = self.n_channels
        a["frame_count"] = self.frame_count
        a["height"] = self.height
        a["width"] = self.width
        for k, v in self.attrs.items():
            a[k] = v
        self._file.close()

    def _discard(self) -> None:
        try:
            self._file.close()
        except Exception:  # noqa: BLE001 - discarding anyway
            pass


class TiffVideoWriter(VideoWriter):
    """Append frames to a BigTIFF file, one uncompressed page per frame.

    Pages are ``H x W`` for one channel and ``H x W x C`` samples
    (photometric minisblack, planarconfig contig) otherwise, written with
    ``TiffWriter.write(..., contiguous=True)`` so that the file is one
    tifffile series ``(T, H, W)`` / ``(T, H, W, C)`` whose data can be
    read straight from disk.
    """

    format = "TIFF"

    def __init__(self, path, n_channels: int, height: int, width: int, dtype):
        import tifffile

        super().__init__(path, n_channels, height, width, dtype)
        if self.dtype.kind not in "iuf" or self.dtype.itemsize > 8:
            raise OutputError(f"{self.path}: TIFF cannot store {self.dtype} frames")
        try:
            self._tw = tifffile.TiffWriter(self.partial, bigtiff=True)
        except OSError as exc:
            raise OutputError(f"{self.path}: cannot create {self.partial.name}: {exc.strerror or exc}") from None

    def _append(self, frames: np.ndarray) -> None:
        kw = {"photometric": "minisblack", "contiguous": True}
        if self.n_channels > 1:
            kw["planarconfig"] = "contig"
        for frame in frames:
            page = frame if self.n_channels > 1 else frame[..., 0]
            self._tw.write(np.ascontiguousarray(page, dtype=self.dtype), **kw)

    def _finish(self) -> None:
        self._tw.close()

    def _discard(self) -> None:
        try:
            self._tw.close()
        except Exception:  # noqa: BLE001 - discarding anyway
            pass


class MatVideoWriter(VideoWriter):
    """Write frames to a MAT v5 file, streaming (frame count known up front).

    Each channel is an uncompressed ``miMATRIX`` variable ``H x W x T``
    (column-major: frame ``t`` is the block of ``H*W`` values at
    ``t*H*W``, i.e. the frame transposed in C order). The file layout is
    fixed when the writer is created, so each batch is written straight to
    its place in every variable (seek + write); nothing beyond the batch is
    buffered. The result loads with MATLAB, GNU Octave and
    ``scipy.io.loadmat`` as ``H x W x T`` arrays.

    Parameters:
        path, n_channels, height, width, dtype: as for the other writers;
            dtype float64, float32, int8..int64, uint8..uint64 or bool
            (logical).
        n_frames: total frames that will be appended before commit.
        dataset_names: variable names (default ``ch1 .. chN``); MATLAB
            identifiers of at most 63 characters.

    Raises:
        OutputError: a variable would exceed the v5 2 GiB limit, or the
            dtype has no MATLAB class.
    """

    format = "MAT"

    def __init__(self, path, n_channels: int, height: int, width: int, dtype, n_frames: int,
                 dataset_names=None):
        super().__init__(path, n_channels, height, width, dtype)
        if n_frames is None or int(n_frames) != n_frames or n_frames < 0:
            raise ValueError(f"n_frames must be a non-negative integer, got {n_frames!r}")
        self.n_frames = int(n_frames)
        self.variable_names = _channel_names(dataset_names, self.n_channels)
        for name in self.variable_names:
            if not _MAT_NAME.match(name):
                raise ValueError(f"{name!r} is not a valid MATLAB variable name")
        if self.dtype not in _MAT_TYPES:
            raise OutputError(f"{self.path}: MAT files cannot store {self.dtype} frames; "
                              "use float32/float64 or an integer type")
        class_id, mi_type = _MAT_TYPES[self.dtype]
        flags = class_id | (0x0200 if self.dtype.kind == "b" else 0)
        self._frame_bytes = self.height * self.width * self.dtype.itemsize
        data_nbytes = self._frame_bytes * self.n_frames

        text = (f"MATLAB 5.0 MAT-file, Platform: frkit, Created on: {time.asctime()}").encode("ascii")
        header = text[:116].ljust(116, b" ") + b"\x00" * 8 + struct.pack("<H", 0x0100) + b"IM"
        prefixes, self._data_offsets = [], []
        pos = len(header)
        for name in self.variable_names:
            nb = name.encode("ascii")
            sub = (struct.pack("<IIII", 6, 8, flags, 0)
                   + struct.pack("<II3i", 5, 12, self.height, self.width, self.n_frames) + b"\x00" * 4
                   + struct.pack("<II", 1, len(nb)) + nb.ljust(_pad8(len(nb)), b"\x00")
                   + struct.pack("<II", mi_type, data_nbytes))
            matrix_nbytes = len(sub) + _pad8(data_nbytes)
            if matrix_nbytes > _MAT_LIMIT:
                raise OutputError(f"{self.path}: variable {name} would be {matrix_nbytes / 2**30:.1f} GiB; "
                                  "MAT v5 files hold at most 2 GiB per variable -- write HDF5 or TIFF instead")
            prefix = struct.pack("<II", 14, matrix_nbytes) + sub
            prefixes.append((pos, prefix))
            self._data_offsets.append(pos + len(prefix))
            pos += len(prefix) + _pad8(data_nbytes)
        self._total = pos
        self._le = self.dtype.newbyteorder("<") if self.dtype.kind != "b" else np.dtype(np.uint8)
        try:
            self._fh = open(self.partial, "wb")
            self._fh.write(header)
            for off, prefix in prefixes:
                self._fh.seek(off)
                self._fh.write(prefix)
        except OSError as exc:
            self._discard()
            remove_quietly(self.partial)
            raise OutputError(f"{self.path}: cannot create {self.partial.name}: {exc.strerror or exc}") from None

    def _append(self, frames: np.ndarray) -> None:
        n0, n = self.frame_count, len(frames)
        if n0 + n > self.n_frames:
            raise OutputError(f"{self.path}: more than the declared {self.n_frames} frames")
        for k, off in enumerate(self._data_offsets):
            # (n, H, W) -> (n, W, H) in C order = n column-major H x W frames
            block = np.ascontiguousarray(frames[..., k].transpose(0, 2, 1), dtype=self._le)
            self._fh.seek(off + n0 * self._frame_bytes)
            self._fh.write(memoryview(block).cast("B"))

    def _finish(self) -> None:
        if self.frame_count != self.n_frames:
            raise OutputError(f"{self.path}: {self.frame_count} of the declared {self.n_frames} frames written")
        self._fh.truncate(self._total)
        self._fh.close()

    def _discard(self) -> None:
        fh = getattr(self, "_fh", None)
        if fh is not None:
            try:
                fh.close()
            except OSError:
                pass


def open_video_writer(path, format: str, n_channels: int, height: int, width: int, dtype,
                      n_frames: int | None = None, *, dataset_names=None) -> VideoWriter:
    """A writer for ``format`` (``'HDF5'``, ``'TIFF'`` or ``'MAT'``, any case).

    ``n_frames`` is required for MAT (the layout is fixed up front) and
    ignored otherwise. ``dataset_names`` names the HDF5 datasets / MAT
    variables (default ``ch1 .. chN``; not used for TIFF).
    """
    fmt = str(format).strip().upper()
    if fmt in ("HDF5", "H5", "HDF"):
        return Hdf5VideoWriter(path, n_channels, height, width, dtype, dataset_names=dataset_names)
    if fmt in ("TIFF", "TIF"):
        return TiffVideoWriter(path, n_channels, height, width, dtype)
    if fmt == "MAT":
        if n_frames is None:
            raise OptionError("MAT output needs the number of frames up front")
        return MatVideoWriter(path, n_channels, height, width, dtype, n_frames, dataset_names=dataset_names)
    raise OptionError(f"unknown output format {format!r} (use HDF5, TIFF or MAT)")

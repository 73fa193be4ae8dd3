"""HDF5 and MATLAB v7.3 video reader (h5py).

Layouts (h5py / C-order view unless stated):

- One 3-D dataset ``(T, H, W)`` (default axes ``THW``) or 4-D
  ``(T, H, W, C)`` (default ``THWC``); any other order with ``axes``, e.g.
  ``'HWT'`` reads ``dset[:, :, a:b]`` and transposes.
- Several 3-D datasets, one channel each (``ch1 .. chN`` or as named).
- MATLAB v7.3 files (HDF5 with a 512-byte user block): variables are
  datasets with a ``MATLAB_class`` attribute whose dimensions appear
  reversed in h5py, so MATLAB ``H x W x T`` is h5py ``(T, W, H)`` and
  ``H x W x C x T`` is ``(T, C, W, H)``. Default axes are MATLAB's ``HWT``
  / ``HWCT``; an ``axes`` string for a MAT file is in MATLAB's view.
  ``#refs#``, ``#subsystem#`` and non-numeric classes (char, cell, struct,
  ...) are skipped.

Only the requested frames are read (slice reads); the chunk cache is
enlarged to 64 MiB so datasets chunked over many frames are not
decompressed again for every batch.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from ..errors import InputError
from .base import (AxisLayout, Entry, VideoReader, default_axes, find_video, fmt_shape, guarded,
                   is_numeric_dtype, native_dtype, parse_axes)

__all__ = ["Hdf5Reader", "MATLAB_NUMERIC_CLASSES", "is_matlab_v73"]

#: MATLAB classes read as numbers (logical as uint8)
MATLAB_NUMERIC_CLASSES = frozenset({"double", "single", "int8", "uint8", "int16", "uint16", "int32", "uint32",
                                    "int64", "uint64", "logical"})

_CHUNK_CACHE = 64 * 1024 * 1024


def is_matlab_v73(path) -> bool:
    """True if ``path`` starts with a MATLAB 7.3 MAT-file text header (user block)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(19) == b"MATLAB 7.3 MAT-file"
    except OSError:
        return False


def _matlab_class(obj) -> str | None:
    value = obj.attrs.get("MATLAB_class")
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        value = value.item() if value.size == 1 else value.tobytes()
    if isinstance(value, (bytes, np.bytes_)):
        value = bytes(value).decode("ascii", "replace")
    return str(value)


def _open_readonly(path):
    """h5py.File for reading without file locking (which fails on some network
    file systems and read-only media), with a 64 MiB chunk cache."""
    kw = {"rdcc_nbytes": _CHUNK_CACHE, "rdcc_nslots": 10007}
    try:
        return h5py.File(path, "r", locking=False, **kw)
    except TypeError:  # pragma: no cover - HDF5 built without the locking switch
        return h5py.File(path, "r", **kw)


class Hdf5Reader(VideoReader):
    """Frames of an HDF5 (or MATLAB v7.3) file.

    Parameters:
        path: the file.
        axes: stored axis order (h5py view; MATLAB view for ``matlab=True``),
            see :func:`frkit.io.base.parse_axes`. Default: THW / THWC
            (MATLAB: HWT / HWCT).
        datasets: dataset paths to read: one (3-D, or 4-D with channels) or
            several 3-D datasets of one shape, one channel each. Default:
            auto-discovery (:func:`frkit.io.base.find_video`).
        matlab: interpret the file as a MATLAB v7.3 MAT-file.

    The dtype is the datasets' (promoted if channels differ) in native byte
    order; bool becomes uint8.
    """

    def __init__(self, path, *, axes: str | None = None, datasets: list[str] | None = None,
                 matlab: bool = False):
        path = Path(path)
        self._matlab = matlab
        fmt = "MAT v7.3" if matlab else "HDF5"
        self._file = guarded(path, f"cannot open as {fmt}", lambda: _open_readonly(path))
        try:
            names = guarded(path, f"cannot read the {fmt} structure",
                            lambda: self._choose(path, datasets))
            dsets = [self._file[n] for n in names]
            what = "variable" if matlab else "dataset"
            shapes = {d.shape for d in dsets}
            if len(shapes) > 1:
                listing = ", ".join(f"{n} {self._label_shape(d)}" for n, d in zip(names, dsets))
                raise InputError(f"{path}: channel {what}s differ in shape: {listing}")
            shape = dsets[0].shape
            where = f"{path}: {what} {names[0]} {self._label_shape(dsets[0])}"
            if axes is not None:
                canon = parse_axes(axes, len(shape), where, reverse=matlab, allow_channel=len(names) == 1)
            else:
                # MATLAB Flow-Registration stores 4-D HDF5 video as a dataset
                # named 'recording' in MATLAB's H x W x C x T order
                matlab_4d = not matlab and len(shape) == 4 and names[0].rsplit("/", 1)[-1] == "recording"
                canon = default_axes(len(shape), where, matlab=matlab or matlab_4d)
                if len(names) > 1 and "C" in canon:
                    raise InputError(f"{where}: each of several channel {what}s must be 3-D; "
                                     "give the axis order with --axes")
            layout = AxisLayout(shape, canon)
            try:
                dtype = np.result_type(*[native_dtype(d.dtype) for d in dsets])
            except ValueError:
                raise InputError(f"{where}: data type {dsets[0].dtype} is not a number type") from None
            n_ch = layout.n_channels * len(dsets)
            desc = (f"{fmt} {what}{'s' if len(names) > 1 else ''} {', '.join(names)} "
                    f"({'MATLAB ' if matlab else ''}{layout.describe(matlab=matlab)})")
        except BaseException:
            self._file.close()
            raise
        self._dsets = dsets
        self._layout = layout
        self.names = names
        self.axes = canon
        super().__init__(path, (layout.n_frames, layout.height, layout.width, n_ch), dtype, desc)

    # -- discovery
    def _label_shape(self, dset) -> str:
        if self._matlab:
            cls = _matlab_class(dset) or str(dset.dtype)
            return f"({'x'.join(str(s) for s in dset.shape[::-1])} {cls})"
        return fmt_shape(dset.shape)

    def _entries(self) -> list[Entry]:
        entries: list[Entry] = []

        def visit(name, obj):
            if not isinstance(obj, h5py.Dataset):
                return None
            if self._matlab and any(part.startswith("#") for part in name.split("/")):
                return None
            numeric = is_numeric_dtype(obj.dtype)
            if self._matlab:
                numeric = (numeric and _matlab_class(obj) in MATLAB_NUMERIC_CLASSES
                           and not obj.attrs.get("MATLAB_empty", 0))
            entries.append(Entry(name, tuple(obj.shape), numeric, f"{name} {self._label_shape(obj)}"))
            return None

        self._file.visititems(visit)
        return entries

    def _choose(self, path, datasets) -> list[str]:
        what = "variable" if self._matlab else "dataset"
        if datasets is None:
            return find_video(self._entries(), path, what)
        if isinstance(datasets, str):
            datasets = [datasets]
        if not datasets:
            raise InputError(f"{path}: empty list of {what}s")
        names = []
        for name in datasets:
            key = str(name).strip("/") or "/"
            obj = self._file.get(key)
            if obj is None:
                listing = ", ".join(e.label for e in self._entries()[:12]) or "none"
                raise InputError(f"{path}: no {what} {name!r}; {what}s: {listing}")
            if not isinstance(obj, h5py.Dataset):
                raise InputError(f"{path}: {name!r} is a group, not a {what}")
            if not is_numeric_dtype(obj.dtype) or (
                    self._matlab and _matlab_class(obj) not in MATLAB_NUMERIC_CLASSES):
                cls = _matlab_class(obj) if self._matlab else obj.dtype
                raise InputError(f"{path}: {what} {name!r} is not numeric ({cls})")
            names.append(key)
        return names

    # -- reading
    def _read(self, start: int, stop: int) -> np.ndarray:
        def go():
            if len(self._dsets) == 1:
                return self._layout.read(self._dsets[0], start, stop)
            out = np.empty((stop - start,) + self.shape[1:], dtype=self.dtype)
            for k, d in enumerate(self._dsets):
                out[..., k] = self._layout.read(d, start, stop)[..., 0]
            return out

        return guarded(self.path, f"cannot read frames {start}..{stop - 1}", go)

    def _close(self) -> None:
        try:
            self._file.close()
        except Exception:  # noqa: BLE001 - closing a damaged file must not mask the real error
            pass

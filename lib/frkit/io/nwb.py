"""NWB files: a ``TwoPhotonSeries`` or ``OnePhotonSeries`` read as a recording.

The series is found with pynwb (the optional extra ``frkit[nwb]``): every
object of the file that is a TwoPhotonSeries or OnePhotonSeries (acquisition
or processing modules, extension subclasses included). One series is taken
as is; several need ``--dataset NAME`` (the series' name, or its path such
as ``acquisition/TwoPhotonSeries``).

Layout: NWB's schema names an image series' axes ``[frames, x, y]``, but
the tools that write and read NWB in this field (suite2p, CaImAn, frkit's own
``--output-format nwb``) store ``(frames, rows, columns)``: the default axes
are therefore ``THW``, so frkit reads back what it writes and what suite2p
reads. ``--axes`` overrides them in the h5py (C-order) view, e.g. ``TWH`` for
a file stored strictly x (columns) first; ``TWHZ`` is refused (volumes need a
plane). ``data`` stays an h5py dataset: frames are read a batch at a time.

A series with ``external_file`` (the frames live in other files, e.g.
TIFFs next to the NWB file) is read from those files, in the listed order,
through :func:`frkit.io.open_video` (relative paths are relative to the
NWB file).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError, OptionError
from .base import AxisLayout, VideoReader, native_dtype, one_line, parse_axes

__all__ = ["NwbReader", "open_nwb", "SERIES_TYPES"]

SERIES_TYPES = ("TwoPhotonSeries", "OnePhotonSeries")


def _pynwb(path):
    try:
        import pynwb  # noqa: F401
    except ImportError:
        raise InputError(f"{path}: reading NWB files needs pynwb: pip install 'frkit[nwb]'") from None
    return pynwb


def _series_path(obj) -> str:
    """The HDF5 path of a series read from a file (``acquisition/TwoPhotonSeries``), else its name."""
    name = getattr(getattr(obj, "data", None), "name", None)
    if isinstance(name, str) and name.endswith("/data"):
        return name[:-len("/data")].strip("/")
    return obj.name


def _find_series(nwbfile, path, wanted: list[str] | None):
    from pynwb.ophys import OnePhotonSeries, TwoPhotonSeries

    found = [o for o in nwbfile.objects.values() if isinstance(o, (TwoPhotonSeries, OnePhotonSeries))]
    found.sort(key=_series_path)
    if not found:
        raise InputError(f"{path}: no TwoPhotonSeries or OnePhotonSeries in this NWB file")
    if wanted:
        if len(wanted) > 1:
            raise OptionError(f"{path}: give one --dataset (the series name) for an NWB file")
        hits = [s for s in found if wanted[0].strip("/") in (s.name, _series_path(s))]
        if not hits:
            raise InputError(f"{path}: no imaging series {wanted[0]!r}; series: "
                             f"{', '.join(_series_path(s) for s in found)}")
        return hits[0]
    if len(found) > 1:
        raise InputError(f"{path}: several imaging series ({', '.join(_series_path(s) for s in found)}); "
                         "choose one with --dataset NAME")
    return found[0]


def open_nwb(path, *, axes: str | None = None, datasets: list[str] | None = None) -> VideoReader:
    """The imaging series of an NWB file as a reader (see the module docstring)."""
    pynwb = _pynwb(path)
    path = Path(path)
    try:
        io = pynwb.NWBHDF5IO(str(path), "r")
        nwbfile = io.read()
    except Exception as exc:  # noqa: BLE001 - h5py/hdmf failures on damaged files
        raise InputError(f"{path}: not a readable NWB file ({one_line(exc)}); truncated or corrupt?") from exc
    try:
        series = _find_series(nwbfile, path, datasets)
        external = list(series.external_file[:]) if series.external_file is not None else []
        if external:
            from .readers import open_video

            files = [str(f.decode() if isinstance(f, bytes) else f) for f in external]
            files = [f if Path(f).is_absolute() else str(path.parent / f) for f in files]
            io.close()
            for f in files:
                if not Path(f).is_file():
                    raise InputError(f"{f}: no such file (external_file of {series.name} in {path.name})")
            return open_video(files if len(files) > 1 else files[0], axes=axes)
        return NwbReader(path, io, series, axes)
    except BaseException:
        io.close()
        raise


class NwbReader(VideoReader):
    """Frames of one NWB imaging series' ``data`` (an h5py dataset), streamed."""

    def __init__(self, path: Path, io, series, axes: str | None):
        self._io = io
        data = series.data
        shape = tuple(int(s) for s in data.shape)
        where = f"{path}: series {series.name} {shape}"
        if axes is not None:
            canon = parse_axes(axes, len(shape), where)
        elif len(shape) == 3:
            canon = "THW"
        else:
            raise InputError(f"{where}: has {len(shape)} dimensions; give the axis order with --axes "
                             "(e.g. THW: frames, rows, columns)")
        try:
            dtype = native_dtype(data.dtype)
        except ValueError:
            raise InputError(f"{where}: data type {data.dtype} is not supported") from None
        self._data = data
        self._layout = AxisLayout(shape, canon)
        if self._layout.n_frames < 1:
            raise InputError(f"{where}: has no frames")
        super().__init__(path, (self._layout.n_frames,) + self._layout.frame_shape, dtype,
                         f"NWB {type(series).__name__} {series.name} ({','.join(canon)})")

    def _read(self, start: int, stop: int) -> np.ndarray:
        try:
            return self._layout.read(self._data, start, stop)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise InputError(f"{self.path}: cannot read frames {start}..{stop - 1}: {one_line(exc)}; "
                             "truncated or corrupt file?") from exc

    def _close(self) -> None:
        self._io.close()

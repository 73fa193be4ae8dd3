"""TIFF video reader (tifffile).

The video is ``TiffFile.series[0]`` (or, when a file holds several
identical one-image-per-write series, as written by calling
``TiffWriter.write`` once per frame, all of them in order). A series is a
stack of *pages*; each page is one 2-D image ``(Y, X)``, possibly with
samples ``S`` stored contig ``(Y, X, S)`` or planar ``(S, Y, X)``. The
series axes in front of the page axes (tifffile's letters: ``T``, ``Z``,
``C``, ``I``, ``Q``, ...) are mapped as follows:

- ``C`` (ImageJ hyperstacks, ScanImage, OME) is the channel axis;
- every other leading axis is time, flattened in stored order
  (``TZCYX`` gives ``T*Z`` frames of ``C`` channels);
- a page sample axis ``S`` (``YXS`` or ``SYX``) is the channel axis;
  a file with both ``C`` and ``S`` larger than 1 is not supported.

Special cases:

- ``deinterleave=N``: ``N`` consecutive single-channel pages form one
  ``N``-channel frame (pages must be a multiple of ``N``).
- ScanImage files whose series has no ``C`` axis but whose metadata lists
  several saved channels (``SI.hChannels.channelSave``) are deinterleaved
  by that count.
- ImageJ files whose metadata declares only ``channels`` (no ``frames``,
  no ``slices``), as ``tifffile.imwrite(..., imagej=True)`` writes a 3-D
  stack without axes, are read as frames rather than channels.
- ``axes`` (optional) renames the series axes as shown by tifffile
  (squeezed, e.g. ``'QYX'`` -> ``'TYX'``): the page positions must read
  ``Y``/``H``, ``X``/``W`` (and ``C`` for samples); leading positions may
  be ``T``, ``Z`` or one ``C``.

Reading: uncompressed contiguous series (tifffile ``series.dataoffset``;
this includes ImageJ files > 4 GB with a single IFD) are read straight
from the file with one ``read`` per run of consecutive pages; other files
page by page with ``page.asarray()``. Page objects are not cached
(``TiffFile.pages.cache = False``), so memory stays proportional to the
batch. Files whose IFD chain or data run past the end of the file raise
InputError when opened or read.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
from pathlib import Path

import numpy as np
import tifffile

from ..errors import InputError
from .base import VideoReader, native_dtype, one_line, parse_axes

__all__ = ["TiffReader"]

_CONCAT_KINDS = ("shaped", "generic", "uniform", "")


@contextlib.contextmanager
def _tifffile_log():
    """Collect (and silence) tifffile's log records; yields the list."""
    logger = logging.getLogger("tifffile")
    records: list[logging.LogRecord] = []

    class _Collect(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = _Collect(logging.WARNING)
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _log_error(records) -> str | None:
    for r in records:
        if r.levelno >= logging.ERROR:
            return re.sub(r"^<tifffile[^>]*>\s*", "", r.getMessage()).strip().splitlines()[0]
    return None


def _one_series_per_page(tif) -> bool:
    """True for multi-page files whose first page's tifffile 'shaped' description
    covers that page only (``TiffWriter.write`` called once per frame)."""
    page = tif.pages.first
    if not page.is_shaped or not tif.pages.is_multipage:
        return False
    try:
        shape = json.loads(page.description)["shape"]
        return math.prod(int(s) for s in shape) == math.prod(page.shape)
    except (ValueError, KeyError, TypeError):
        return False


def _channel_save_count(tif) -> int:
    """Number of saved channels in ScanImage metadata (0 if unknown)."""
    try:
        meta = tif.scanimage_metadata or {}
        value = meta.get("FrameData", {}).get("SI.hChannels.channelSave")
    except Exception:  # noqa: BLE001 - damaged metadata: no hint
        return 0
    if value is None:
        return 0
    if isinstance(value, (list, tuple, np.ndarray)):
        return len(value)
    return 1


class TiffReader(VideoReader):
    """Frames of a TIFF file (see the module docstring for the layout rules).

    Parameters:
        path: the file.
        axes: optional renaming of the series axes (squeezed tifffile view).
        deinterleave: pages per frame, one channel each (default 1).

    The dtype is the series' in native byte order (big-endian files come
    back native); 1-bit images come back as uint8.
    """

    def __init__(self, path, *, axes: str | None = None, deinterleave: int = 1):
        path = Path(path)
        self._tif = None
        with _tifffile_log() as records:
            try:
                self._tif = tifffile.TiffFile(path)
                if _one_series_per_page(self._tif):
                    # tifffile would build (and pyramid-match) one series per
                    # page, quadratic in the page count: read the pages as one
                    # uniform stack instead.
                    self._tif.close()
                    self._tif = tifffile.TiffFile(path, is_shaped=False)
            except Exception as exc:  # noqa: BLE001 - any parser failure means an unreadable file
                if self._tif is not None:
                    self._tif.close()
                raise InputError(f"{path}: not a readable TIFF file ({one_line(exc)})") from exc
            failure: InputError | None = None
            try:
                self._setup(path, axes, deinterleave)
            except InputError as exc:
                failure = exc
            except Exception as exc:  # noqa: BLE001 - tifffile raises many types on damaged files
                failure = InputError(f"{path}: cannot read the TIFF structure ({one_line(exc)}); "
                                     "truncated or corrupt file?")
                failure.__cause__ = exc
        err = _log_error(records)  # a damaged file explains any layout error
        if err or failure:
            self._tif.close()
            if err:
                raise InputError(f"{path}: corrupt or truncated TIFF ({err})") from failure
            raise failure
        self._tif.pages.cache = False

    # -- structure
    def _setup(self, path: Path, axes: str | None, deinterleave: int) -> None:
        tif = self._tif
        all_series = tif.series
        if not all_series:
            raise InputError(f"{path}: TIFF file has no images")
        s0 = all_series[0]
        group = [s0]
        if len(all_series) > 1 and s0.kind in _CONCAT_KINDS and all(
                s.kind == s0.kind and s.shape == s0.shape and s.axes == s0.axes and s.dtype == s0.dtype
                for s in all_series[1:]):
            group = list(all_series)
        key = s0.keyframe
        shaped = tuple(int(v) for v in key.shaped)  # (planar S, depth, Y, X, contig S)
        if shaped[1] != 1:
            raise InputError(f"{path}: TIFF pages are volumes (depth {shaped[1]}); not supported")
        sq_axes, sq_shape = s0.axes, tuple(int(v) for v in s0.shape)
        page_shape = tuple(int(v) for v in key.shape)
        n_lead = len(sq_shape) - len(page_shape)
        if n_lead < 0 or sq_shape[n_lead:] != page_shape:
            raise InputError(f"{path}: unsupported TIFF layout (series {sq_axes} {sq_shape}, "
                             f"pages {key.axes} {page_shape})")
        lead_axes, lead_shape = list(sq_axes[:n_lead]), list(sq_shape[:n_lead])
        n_samples = shaped[0] * shaped[4]
        notes = []
        pages_per_series = math.prod(lead_shape)
        if s0.kind == "scanimage" and len(group) == 1 and len(s0) < pages_per_series and axes is None:
            # acquisition stopped early: fewer pages than the metadata's
            # slices x frames x channels; use the pages there are
            notes.append(f"{len(s0)} of {pages_per_series} pages")
            pages_per_series = len(s0)
            lead_axes, lead_shape = ["I"], [pages_per_series]

        if axes is not None:
            where = f"{path}: TIFF series {sq_axes} {sq_shape}"
            canon = parse_axes(axes, len(sq_axes), where)
            page_part = canon[n_lead:]
            expect = "".join({"Y": "H", "X": "W", "S": "C"}.get(a, a) for a in key.axes)
            if page_part != expect:
                raise InputError(f"{where}: --axes {axes!r} must end with the page axes "
                                 f"{expect.replace('H', 'Y').replace('W', 'X')}")
            lead_axes = list(canon[:n_lead])
            if "H" in lead_axes or "W" in lead_axes:
                raise InputError(f"{where}: --axes {axes!r}: rows and columns must be the page axes")
            notes.append(f"axes {axes.upper()}")
        elif (s0.kind == "imagej" and lead_axes == ["C"]
              and not {"frames", "slices"} & set(tif.imagej_metadata or {})):
            lead_axes = ["I"]
            notes.append("ImageJ channels read as frames")

        if "C" in lead_axes and n_samples > 1 and lead_shape[lead_axes.index("C")] > 1:
            raise InputError(f"{path}: TIFF has both a channel axis and {n_samples} samples per pixel; "
                             "not supported")
        if len(group) > 1:
            lead_axes.insert(0, "I")
            lead_shape.insert(0, len(group))
            notes.append(f"{len(group)} series")

        n_pages = pages_per_series * len(group)
        if deinterleave == 1 and tif.is_scanimage and "C" not in lead_axes and n_samples == 1:
            n = _channel_save_count(tif)
            if n > 1:
                if n_pages % n:
                    raise InputError(f"{path}: ScanImage file with {n} saved channels has {n_pages} pages, "
                                     f"not a multiple of {n}")
                deinterleave = n
        if deinterleave > 1:
            n_ch = lead_shape[lead_axes.index("C")] if "C" in lead_axes else 1
            if n_ch * n_samples > 1:
                raise InputError(f"{path}: --deinterleave {deinterleave} needs single-channel pages, "
                                 f"but the TIFF already has {n_ch * n_samples} channels")
            if n_pages % deinterleave:
                raise InputError(f"{path}: {n_pages} pages is not a multiple of --deinterleave {deinterleave}")
            lead_axes, lead_shape = ["T", "C"], [n_pages // deinterleave, deinterleave]
            notes.append(f"deinterleaved x{deinterleave}")

        time_pos = [i for i, a in enumerate(lead_axes) if a != "C"]
        if not time_pos:
            raise InputError(f"{path}: TIFF has a single image (axes {sq_axes}, shape {sq_shape}); "
                             "need a time axis")
        c_pos = lead_axes.index("C") if "C" in lead_axes else None
        self._lead_shape = tuple(lead_shape)
        self._time_pos = time_pos
        self._c_pos = c_pos
        self._time_sizes = tuple(lead_shape[i] for i in time_pos)
        self._lead_channels = lead_shape[c_pos] if c_pos is not None else 1
        self._group = group
        self._pages_per_series = pages_per_series
        self._shaped = shaped
        self._file_dtype = np.dtype(s0.dtype).newbyteorder(tif.byteorder)
        self._page_bytes = math.prod(shaped) * self._file_dtype.itemsize
        try:
            dtype = native_dtype(s0.dtype)
        except ValueError:
            raise InputError(f"{path}: TIFF data type {s0.dtype} is not supported") from None

        # fast path: uncompressed data stored contiguously
        size = path.stat().st_size
        offsets = [s.dataoffset for s in group]
        multifile = any(getattr(s, "is_multifile", False) for s in group)
        if all(o is not None for o in offsets) and not multifile and np.dtype(s0.dtype).kind != "b":
            self._offsets = offsets
            end = max(offsets) + pages_per_series * self._page_bytes
            if end > size:
                raise InputError(f"{path}: truncated TIFF: image data needs {end} bytes, the file has {size}")
        else:
            self._offsets = None
            if len(s0) != pages_per_series:
                raise InputError(f"{path}: TIFF series has {len(s0)} of {pages_per_series} pages and "
                                 "is not stored contiguously; not supported")
            last = group[-1][pages_per_series - 1]
            if last is None:
                raise InputError(f"{path}: TIFF page {n_pages - 1} is missing; truncated or corrupt file")
            end = max((o + c for o, c in zip(last.dataoffsets, last.databytecounts) if o), default=0)
            if end > size:
                raise InputError(f"{path}: truncated TIFF: the last page needs {end} bytes, the file has {size}")

        height, width = shaped[2], shaped[3]
        n_frames = math.prod(self._time_sizes)
        n_channels = self._lead_channels * n_samples
        kind = f"{s0.kind} " if s0.kind else ""
        desc = f"TIFF {kind}series {sq_axes} {sq_shape}" + (f" ({', '.join(notes)})" if notes else "")
        super().__init__(path, (n_frames, height, width, n_channels), dtype, desc)

    # -- reading
    def _page_index(self, frames: np.ndarray) -> np.ndarray:
        """Global page numbers, shape ``(len(frames), lead_channels)``."""
        t_idx = np.unravel_index(frames, self._time_sizes)
        full = [None] * len(self._lead_shape)
        for pos, ix in zip(self._time_pos, t_idx):
            full[pos] = ix[:, None]
        if self._c_pos is not None:
            full[self._c_pos] = np.arange(self._lead_channels)[None, :]
        full = np.broadcast_arrays(*full)
        return np.ravel_multi_index(full, self._lead_shape)

    def _to_hws(self, raw: np.ndarray, n: int) -> np.ndarray:
        """``n`` pages of raw page data -> ``(n, H, W, S)``."""
        ps, _, h, w, cs = self._shaped
        a = raw.reshape((n, ps, h, w, cs))
        return a.transpose(0, 2, 3, 1, 4).reshape((n, h, w, ps * cs))

    def _read(self, start: int, stop: int) -> np.ndarray:
        pages = self._page_index(np.arange(start, stop)).ravel()
        n_lc = self._lead_channels
        out = np.empty((stop - start,) + self.shape[1:], dtype=self.dtype)
        order = np.argsort(pages, kind="stable")
        srt = pages[order]
        pps = self._pages_per_series
        with _tifffile_log() as records:
            a = 0
            while a < len(srt):
                b = a + 1
                if self._offsets is not None:
                    while b < len(srt) and srt[b] == srt[b - 1] + 1 and srt[b] // pps == srt[a] // pps:
                        b += 1
                data = self._fetch(int(srt[a]), b - a)
                for k, flat in enumerate(order[a:b]):
                    i, c = divmod(int(flat), n_lc)
                    if n_lc == 1:
                        out[i] = data[k]
                    else:
                        out[i, :, :, c] = data[k, :, :, 0]
                a = b
        err = _log_error(records)
        if err:
            raise InputError(f"{self.path}: cannot read frames {start}..{stop - 1}: {err}; "
                             "truncated or corrupt TIFF")
        return out

    def _fetch(self, page: int, count: int) -> np.ndarray:
        """``count`` consecutive pages from global page ``page`` as ``(count, H, W, S)``."""
        si, local = divmod(page, self._pages_per_series)
        if self._offsets is not None:
            fh = self._tif.filehandle
            nbytes = count * self._page_bytes
            try:
                fh.seek(self._offsets[si] + local * self._page_bytes)
                buf = fh.read(nbytes)
            except OSError as exc:
                raise InputError(f"{self.path}: cannot read TIFF data: {exc.strerror or exc}") from None
            if len(buf) != nbytes:
                raise InputError(f"{self.path}: TIFF data ends early (page {page}); truncated file")
            return self._to_hws(np.frombuffer(buf, self._file_dtype), count)
        try:
            p = self._group[si][local]
            if p is None:
                raise InputError(f"{self.path}: TIFF page {page} is missing; truncated or corrupt file")
            data = p.asarray()
        except InputError:
            raise
        except Exception as exc:  # noqa: BLE001 - tifffile/decoder errors on damaged data
            raise InputError(f"{self.path}: cannot read TIFF page {page}: {one_line(exc)}; "
                             "truncated or corrupt file?") from exc
        return self._to_hws(np.asarray(data), 1)

    def _close(self) -> None:
        if self._tif is not None:
            self._tif.close()

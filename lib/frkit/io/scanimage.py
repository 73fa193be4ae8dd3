"""ScanImage TIFFs (versions 5 to 2023): channels, planes, flyback frames from the metadata.

Layout (what ScanImage writes, one 2-D page per channel per frame):

- pages run channel fastest (the saved channels, ``SI.hChannels.channelSave``),
  then the ``SI.hStackManager.framesPerSlice`` repeats at one z position,
  then the slices (z planes) of a volume, then volumes;
- a fast-z volume ends with its flyback frames (written to the file, one
  page per channel each, once per volume -- not per slice):
  ``numFramesPerVolumeWithFlyback - numFramesPerVolume`` in ScanImage 2020+
  (``SI.hStackManager``), ``SI.hFastZ.numDiscardFlybackFrames`` before;
- the recording is volumetric only when the stack is enabled
  (``SI.hStackManager.enable`` in 2020+, ``SI.hFastZ.enable`` or a slow
  stack of ``numSlices > 1`` before); slice counts of a disabled stack are
  leftovers and ignored. ``actualNumSlices`` (2020+) wins over ``numSlices``.

The non-varying metadata is read as tifffile parses it
(:func:`tifffile.read_scanimage_metadata`: the binary header of ScanImage
2016+), or from the first page's ``Software`` / ``ImageDescription`` text
(``SI.`` or ``scanimage.SI.`` ``key = value`` lines, ScanImage 5).

A single-plane recording reads as ``(T, H, W, C)`` with ``T = pages / C``.
A multi-plane one needs ``plane`` (0-based z slice): its frames are the
``framesPerSlice`` repeats of that slice in every volume, flyback frames
skipped. Several files of one acquisition (``base_00001.tif``,
``base_00002.tif``) are one page sequence: the layout runs across file
boundaries, as ScanImage splits files by page count, not by volume.

Memory: the page offsets are found by walking the IFD chain once through a
memory map into a numpy array (8 bytes per page); no per-page objects are
kept, so a 100,000-page file costs about a megabyte. Only uncompressed
files take this path (ScanImage does not compress); others go to
:class:`frkit.io.tiff.TiffReader`.
"""

from __future__ import annotations

import math
import mmap
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import tifffile

from ..errors import InputError, OptionError
from .base import VideoReader, native_dtype, one_line

__all__ = ["ScanImageLayout", "ScanImageReader", "UncompressedOnly", "is_scanimage", "scanimage_layout", "scanimage_metadata"]

_TYPE_SIZE = {3: 2, 4: 4, 16: 8, 13: 4, 18: 8}
_TYPE_CHAR = {3: "H", 4: "I", 16: "Q", 13: "I", 18: "Q"}


def scanimage_metadata(tif: tifffile.TiffFile) -> dict[str, Any]:
    """The non-varying ``SI.*`` metadata of an open ScanImage file (``{}`` if there is none)."""
    try:
        framedata = (tif.scanimage_metadata or {}).get("FrameData") or {}
    except Exception:  # noqa: BLE001 - a damaged header: try the text tags
        framedata = {}
    if framedata:
        return dict(framedata)
    page = tif.pages.first
    found: dict[str, Any] = {}
    for text in (page.software, page.description):
        if "SI." not in (text or ""):
            continue
        lines = [ln.strip() for ln in text.splitlines() if "=" in ln and ln.strip().startswith(("SI.", "scanimage.SI"))]
        try:
            parsed = tifffile.matlabstr2py("\n".join(lines))
        except Exception:  # noqa: BLE001 - unparsable text: no metadata from it
            continue
        if isinstance(parsed, dict):
            for k, v in parsed.items():
                found[k.replace("scanimage.SI5.", "SI.").replace("scanimage.SI.", "SI.")] = v
    return found


def is_scanimage(path) -> bool:
    """True for a TIFF file written by ScanImage (reads the header and first page only)."""
    try:
        with tifffile.TiffFile(path) as tif:
            return bool(tif.is_scanimage)
    except Exception:  # noqa: BLE001 - not readable: TiffReader reports why
        return False


@dataclass(frozen=True)
class ScanImageLayout:
    """Pages of a ScanImage acquisition: ``channels`` per frame; per volume ``slices`` x ``frames_per_slice``
    frames then ``flyback`` frames. ``volumetric`` False: every frame is one time point of one plane."""

    channels: int
    slices: int = 1
    frames_per_slice: int = 1
    flyback: int = 0
    volumetric: bool = False

    @property
    def frames_per_volume(self) -> int:
        return self.slices * self.frames_per_slice + self.flyback

    @property
    def pages_per_volume(self) -> int:
        return self.frames_per_volume * self.channels

    def describe(self) -> str:
        if not self.volumetric:
            return f"{self.channels} channel(s)"
        return (f"{self.slices} planes x {self.frames_per_slice} frame(s) per slice + {self.flyback} flyback "
                f"frame(s) per volume, {self.channels} channel(s)")


def _number(meta: dict, *keys, default=None):
    for k in keys:
        v = meta.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return v
    return default


def scanimage_layout(meta: dict[str, Any]) -> ScanImageLayout:
    """The page layout the ``SI.*`` metadata describes (see the module docstring)."""
    save = meta.get("SI.hChannels.channelSave", 1)
    channels = len(save) if isinstance(save, (list, tuple)) else 1
    fps = _number(meta, "SI.hStackManager.framesPerSlice", default=1)
    fps = int(fps) if math.isfinite(fps) and fps >= 1 else 1
    if "SI.hStackManager.enable" in meta:  # ScanImage 2020+
        volumetric = bool(meta.get("SI.hStackManager.enable"))
        slices = _number(meta, "SI.hStackManager.actualNumSlices", "SI.hStackManager.numSlices", default=1)
        with_fb = _number(meta, "SI.hStackManager.numFramesPerVolumeWithFlyback")
        without = _number(meta, "SI.hStackManager.numFramesPerVolume")
        flyback = int(with_fb - without) if with_fb is not None and without is not None else 0
    else:  # ScanImage 5 .. 2019
        fast = bool(meta.get("SI.hFastZ.enable", False))
        slices = _number(meta, "SI.hStackManager.actualNumSlices", "SI.hStackManager.numSlices", default=1)
        volumetric = fast or slices > 1
        flyback = int(_number(meta, "SI.hFastZ.numDiscardFlybackFrames", default=0)) if fast else 0
    if not volumetric:
        return ScanImageLayout(channels, 1, fps)
    return ScanImageLayout(channels, max(int(slices), 1), fps, max(flyback, 0), True)


class _Pages:
    """Data offsets of every page of one uncompressed TIFF, from one walk of its IFD chain."""

    def __init__(self, path: Path, page_bytes: int):
        self.path = path
        self._formats: dict = {}
        self._fh = open(path, "rb")
        try:
            size = self._fh.seek(0, 2)
            if size == 0:
                raise InputError(f"{path}: file is empty (0 bytes)")
            self.mm = mmap.mmap(self._fh.fileno(), 0, access=mmap.ACCESS_READ)
            try:
                self.offsets = self._walk(page_bytes, size)
            except struct.error as exc:  # a tag pointing past the end of the file
                raise InputError(f"{path}: truncated or corrupt ScanImage TIFF ({exc})") from None
        except BaseException:
            self.close()
            raise

    def _walk(self, page_bytes: int, size: int) -> np.ndarray:
        mm, path = self.mm, self.path
        bo = {b"II": "<", b"MM": ">"}.get(mm[:2])
        if bo is None or size < 16:
            raise InputError(f"{path}: not a TIFF file")
        version = struct.unpack_from(bo + "H", mm, 2)[0]
        big = version == 43
        off_fmt, entry, cnt_size = ("Q", 20, 8) if big else ("I", 12, 2)
        ifd = struct.unpack_from(bo + off_fmt, mm, 8 if big else 4)[0]
        regular = self._walk_regular(ifd, bo, big, page_bytes, size)
        if regular is not None:
            return regular
        out = np.empty(1024, dtype=np.int64)
        n = 0
        seen_max = 0
        while ifd:
            if ifd + cnt_size + entry > size:
                raise InputError(f"{path}: truncated ScanImage TIFF: IFD of page {n} lies past the end of the file")
            offset, field, nxt = self._ifd(ifd, bo, big, page_bytes, n)
            if field + struct.calcsize(off_fmt) > size:
                raise InputError(f"{path}: truncated or corrupt ScanImage TIFF at page {n}")
            if offset + page_bytes > size:
                raise InputError(f"{path}: truncated ScanImage TIFF: page {n} needs {offset + page_bytes} bytes, "
                                 f"the file has {size}")
            if n == len(out):
                out = np.resize(out, 2 * n)
            out[n] = offset
            n += 1
            if nxt and nxt <= seen_max:  # a loop in the IFD chain
                raise InputError(f"{path}: corrupt TIFF: the IFD chain loops at page {n}")
            seen_max = max(seen_max, ifd)
            ifd = nxt
        return out[:n].copy()

    def _ifd(self, ifd: int, bo: str, big: bool, page_bytes: int, n: int) -> tuple[int, int, int]:
        """One IFD: ``(data offset, offset of its next-IFD field, next IFD)`` (all entries in one unpack)."""
        mm = self.mm
        cnt_size, entry, value_at = (8, 20, 12) if big else (2, 12, 8)
        (count,) = struct.unpack_from(bo + ("Q" if big else "H"), mm, ifd)
        field = ifd + cnt_size + count * entry
        if count == 0 or field + (8 if big else 4) > len(mm):
            raise InputError(f"{self.path}: truncated or corrupt ScanImage TIFF at page {n}")
        key = (bo, big, count)
        fmt = self._formats.get(key)
        if fmt is None:
            fmt = self._formats[key] = struct.Struct(bo + ("HHQQ" if big else "HHII") * count)
        vals = fmt.unpack_from(mm, ifd + cnt_size)
        codes = vals[0::4]
        tags = {}
        for tag in (259, 273, 279):
            if tag in codes:
                i = codes.index(tag)
                tags[tag] = (vals[4 * i + 1], vals[4 * i + 2], ifd + cnt_size + i * entry + value_at)
        (nxt,) = struct.unpack_from(bo + ("Q" if big else "I"), mm, field)
        return self._strips(tags, bo, 8 if big else 4, page_bytes, n), field, nxt

    def _walk_regular(self, ifd0: int, bo: str, big: bool, page_bytes: int, size: int) -> np.ndarray | None:
        """Page offsets of a file whose pages repeat at one stride (ScanImage pads its per-frame text to
        a fixed length), checked for every page with vectorized reads of the next-IFD and strip-offset
        fields; None if the file is not that regular (then the chain is walked page by page)."""
        try:
            data0, field0, ifd1 = self._ifd(ifd0, bo, big, page_bytes, 0)
            if not ifd1:
                return np.array([data0], dtype=np.int64)
            if ifd1 + 16 > size:
                return None
            data1, _, _ = self._ifd(ifd1, bo, big, page_bytes, 1)
        except (InputError, struct.error):
            return None
        stride = ifd1 - ifd0
        if stride <= 0 or data1 - data0 != stride:
            return None
        off_size = 8 if big else 4
        dt = np.dtype(bo + ("u8" if big else "u4"))
        strip_rel = self._strip_field(ifd0, bo, big)
        if strip_rel is None:
            return None
        n_max = (size - field0 - off_size) // stride + 1
        buf = np.frombuffer(self.mm, np.uint8)
        out = np.empty(n_max, dtype=np.int64)
        block = 8192
        n = None
        for a in range(0, n_max, block):
            k = np.arange(a, min(n_max, a + block), dtype=np.int64)
            nxt = buf[(field0 + k * stride)[:, None] + np.arange(off_size)].copy().view(dt).ravel()
            strip = buf[(strip_rel + k * stride)[:, None] + np.arange(off_size)].copy().view(dt).ravel()
            ends = np.flatnonzero(nxt == 0)
            stop = int(ends[0]) + 1 if len(ends) else len(k)  # pages of this block in the chain
            linked = stop - 1 if len(ends) else stop  # of which those pointing to a next page
            if not (np.array_equal(strip[:stop], data0 + k[:stop] * stride)
                    and np.array_equal(nxt[:linked], ifd0 + (k[:linked] + 1) * stride)):
                return None
            out[a:a + stop] = strip[:stop]
            if len(ends):
                n = a + stop
                break
        if n is None:
            return None  # the chain goes on past the regular part
        if int(out[n - 1]) + page_bytes > size:
            return None
        return out[:n].copy()

    def _strip_field(self, ifd: int, bo: str, big: bool) -> int | None:
        """File offset of the inline single StripOffsets value of the IFD at ``ifd`` (None otherwise)."""
        cnt_fmt, entry = ("Q", 20) if big else ("H", 12)
        cnt_size = 8 if big else 2
        (count,) = struct.unpack_from(bo + cnt_fmt, self.mm, ifd)
        for i in range(count):
            pos = ifd + cnt_size + i * entry
            tag, typ = struct.unpack_from(bo + "HH", self.mm, pos)
            if tag == 273:
                (num,) = struct.unpack_from(bo + ("Q" if big else "I"), self.mm, pos + 4)
                ok = num == 1 and typ == (16 if big else 4)
                return pos + 4 + (8 if big else 4) if ok else None
        return None

    def _values(self, tag, bo, inline) -> list[int]:
        typ, num, pos = tag
        if typ not in _TYPE_SIZE:
            raise InputError(f"{self.path}: unsupported TIFF strip tag type {typ}")
        if num * _TYPE_SIZE[typ] > inline:
            (pos,) = struct.unpack_from(bo + ("Q" if inline == 8 else "I"), self.mm, pos)
        return list(struct.unpack_from(f"{bo}{num}{_TYPE_CHAR[typ]}", self.mm, pos))

    def _strips(self, tags, bo, inline, page_bytes, n) -> int:
        """The data offset of one page (its strips must be uncompressed and contiguous)."""
        if 259 in tags and self._values(tags[259], bo, inline)[0] != 1:
            raise UncompressedOnly()
        if 273 not in tags or 279 not in tags:
            raise InputError(f"{self.path}: TIFF page {n} has no strip offsets; corrupt file")
        offs, counts = self._values(tags[273], bo, inline), self._values(tags[279], bo, inline)
        if sum(counts) != page_bytes or any(o + c != o2 for o, c, o2 in zip(offs, counts, offs[1:])):
            raise InputError(f"{self.path}: TIFF page {n} differs from the first page in size or layout")
        return offs[0]

    def close(self) -> None:
        if getattr(self, "mm", None) is not None:
            self.mm.close()
            self.mm = None
        self._fh.close()


class UncompressedOnly(Exception):
    """Compressed or multi-sample pages: not for this reader (:func:`frkit.io.open_video` falls back to
    :class:`frkit.io.tiff.TiffReader`)."""


class ScanImageReader(VideoReader):
    """One ScanImage acquisition (one file, or its numbered files in order) as ``(T, H, W, C)``.

    Parameters:
        paths: the file, or the files of one acquisition in order.
        plane: 0-based z plane of a multi-plane recording (required there;
            None or 0 for a single-plane one).

    Raises:
        InputError: inconsistent files, truncated data, a page count that
            does not fit the channels, a multi-plane recording without
            ``plane``.
        OptionError: ``plane`` out of range.
    """

    def __init__(self, paths, *, plane: int | None = None):
        paths = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
        self.paths = paths
        self._files: list[_Pages] = []
        try:
            self._setup(paths, plane)
        except BaseException:
            self._close()
            raise

    def _setup(self, paths: Sequence[Path], plane: int | None) -> None:
        first = paths[0]
        try:
            with tifffile.TiffFile(first) as tif:
                page = tif.pages.first
                meta = scanimage_metadata(tif)
                shaped = tuple(int(v) for v in page.shaped)
                dtype = np.dtype(page.dtype).newbyteorder(tif.byteorder)
        except Exception as exc:  # noqa: BLE001
            raise InputError(f"{first}: not a readable TIFF file ({one_line(exc)})") from exc
        if shaped[0] * shaped[1] * shaped[4] != 1:
            raise UncompressedOnly()  # multi-sample pages: the general reader handles them
        self._height, self._width = shaped[2], shaped[3]
        self._file_dtype = dtype
        page_bytes = self._height * self._width * dtype.itemsize
        self._page_bytes = page_bytes
        try:
            out_dtype = native_dtype(dtype)
        except ValueError:
            raise InputError(f"{first}: TIFF data type {dtype} is not supported") from None
        for p in paths:
            self._files.append(_Pages(p, page_bytes))
        counts = np.array([len(f.offsets) for f in self._files], dtype=np.int64)
        self._starts = np.concatenate([[0], np.cumsum(counts)])
        n_pages = int(self._starts[-1])
        lay = scanimage_layout(meta)
        self.layout = lay
        c = lay.channels
        where = first if len(paths) == 1 else f"{first} .. {paths[-1].name}"
        notes = []
        if not lay.volumetric:
            if plane not in (None, 0):
                raise OptionError(f"{where}: --plane {plane}: the ScanImage recording has one plane")
            if n_pages % c:
                raise InputError(f"{where}: ScanImage file with {c} saved channels has {n_pages} pages, "
                                 f"not a multiple of {c}")
            n_frames = n_pages // c
            promised = lay.frames_per_slice * c
            if len(paths) == 1 and lay.frames_per_slice > 1 and n_pages < promised:
                notes.append(f"{n_pages} of {promised} pages")
            self._plane = 0
        else:
            if plane is None:
                if lay.slices > 1:
                    raise InputError(f"{where}: ScanImage recording has {lay.slices} planes ({lay.describe()}); "
                                     f"choose one with --plane 0..{lay.slices - 1}")
                plane = 0
            if not 0 <= plane < lay.slices:
                raise OptionError(f"{where}: --plane {plane} is out of range for {lay.slices} planes "
                                  f"(0..{lay.slices - 1})")
            ppv, fps = lay.pages_per_volume, lay.frames_per_slice
            full, rest = divmod(n_pages, ppv)
            first_page = plane * fps * c
            partial = max(0, min(fps, (rest - first_page) // c)) if rest > first_page else 0
            n_frames = full * fps + partial
            if rest:
                notes.append(f"last volume incomplete ({rest} of {ppv} pages)")
            notes.append(f"plane {plane} of {lay.slices}")
            self._plane = plane
        if n_frames < 1:
            raise InputError(f"{where}: ScanImage recording has no complete frame ({n_pages} pages, "
                             f"{lay.describe()})")
        desc = f"ScanImage TIFF, {lay.describe()}" + (f", {len(paths)} files" if len(paths) > 1 else "")
        desc += f" ({', '.join(notes)})" if notes else ""
        super().__init__(first, (n_frames, self._height, self._width, c), out_dtype, desc)

    def page_numbers(self, frames: np.ndarray) -> np.ndarray:
        """Global page numbers of ``frames``, shape ``(len(frames), C)``."""
        lay = self.layout
        c = lay.channels
        if not lay.volumetric:
            base = frames * c
        else:
            v, k = np.divmod(frames, lay.frames_per_slice)
            base = v * lay.pages_per_volume + (self._plane * lay.frames_per_slice + k) * c
        return base[:, None] + np.arange(c)[None, :]

    def _read(self, start: int, stop: int) -> np.ndarray:
        pages = self.page_numbers(np.arange(start, stop, dtype=np.int64))
        out = np.empty((stop - start,) + self.shape[1:], dtype=self.dtype)
        file_of = np.searchsorted(self._starts, pages, side="right") - 1
        count = self._height * self._width
        for (i, ch), page in np.ndenumerate(pages):
            fi = int(file_of[i, ch])
            f = self._files[fi]
            off = int(f.offsets[page - self._starts[fi]])
            try:
                data = np.frombuffer(f.mm, self._file_dtype, count, off)
            except (ValueError, TypeError) as exc:
                raise InputError(f"{f.path}: cannot read ScanImage page {page - self._starts[fi]}: "
                                 f"{one_line(exc)}; truncated file?") from None
            out[i, :, :, ch] = data.reshape(self._height, self._width)
        return out

    def _close(self) -> None:
        for f in self._files:
            f.close()
        self._files = []

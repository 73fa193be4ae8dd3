"""Recordings stored as several files, read as one.

Microscopes split long acquisitions: ScanImage writes ``mouse1_00001.tif``,
``mouse1_00002.tif``, ...; other rigs write one file per block into a
folder. An INPUT may therefore be

- one file (the usual case);
- a directory: every video file in it (not in subfolders; hidden files and
  non-video files such as ``.xml``/``.env``/``.txt`` are skipped);
- a glob pattern (quoted on the command line, e.g. ``'mouse1_*.tif'``);
- several of these.

The files are read in *natural* sort order (``rec_2`` before ``rec_10``)
as one recording. A numbered group -- names that differ only in their last
run of digits -- must have no gap: ``_00001, _00002, _00004`` is an error
naming the missing number, as a lost file would silently shorten the
recording and shift every later frame.

:class:`ConcatenatedReader` streams across file boundaries with at most
one member file open at a time; each member is opened once up front to
check its frame size, dtype and channel count (all must agree).
"""

from __future__ import annotations

import glob
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..errors import InputError
from .base import VideoReader

__all__ = ["ConcatenatedReader", "expand_inputs", "natural_key", "numbered_gap", "group_stem", "recording_stem",
           "VIDEO_SUFFIXES"]

#: suffixes taken from a directory (any case); other files are skipped
VIDEO_SUFFIXES = (".tif", ".tiff", ".btf", ".tf8", ".tf2", ".h5", ".hdf5", ".hdf", ".mat", ".sbx", ".nwb")

_GLOB_CHARS = re.compile(r"[*?\[]")
_DIGITS = re.compile(r"(\d+)")
#: a file name whose last run of digits is the file number: prefix, number, rest (suffixes)
_NUMBERED = re.compile(r"^(.*?)(\d+)((?:\.[A-Za-z][A-Za-z0-9]*)*)$")


def natural_key(path) -> tuple:
    """Sort key: runs of digits compare as numbers (``rec_2`` < ``rec_10``), the rest as text."""
    parts = _DIGITS.split(str(path))
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts)


def _is_video_file(p: Path) -> bool:
    return p.is_file() and not p.name.startswith(".") and "".join(p.suffixes[-1:]).lower() in VIDEO_SUFFIXES


def _expand_one(item) -> list[Path]:
    """One INPUT item: a file, a directory (its video files) or a glob (its matches)."""
    p = Path(item).expanduser()
    if p.is_dir():
        found = [q for q in p.iterdir() if _is_video_file(q)]
        sbx_stems = {q.stem for q in found if q.suffix.lower() == ".sbx"}
        found = [q for q in found if not (q.suffix.lower() == ".mat" and q.stem in sbx_stems)]  # Scanbox headers
        if not found:
            raise InputError(f"{p}: is a directory with no video files ({', '.join(VIDEO_SUFFIXES)})")
        return found
    if not p.exists() and _GLOB_CHARS.search(str(item)):
        found = [Path(m) for m in glob.glob(str(p)) if Path(m).is_file()]
        if not found:
            raise InputError(f"{item}: no files match this pattern")
        return found
    return [p]


def numbered_gap(paths: Sequence[Path]) -> str | None:
    """The name of the first missing file of a numbered group, or None.

    A group is two or more names that differ only in their last run of
    digits (``base_00001.tif``, ``base_00002.tif``); the numbers must then
    be consecutive. Names outside that shape are not a group (no check).
    """
    if len(paths) < 2:
        return None
    parts = [_NUMBERED.match(Path(p).name) for p in paths]
    if not all(parts):
        return None
    if len({(m.group(1), m.group(3), str(Path(p).parent)) for m, p in zip(parts, paths)}) != 1:
        return None
    numbers = sorted(int(m.group(2)) for m in parts)
    for a, b in zip(numbers, numbers[1:]):
        if b != a + 1:
            m = parts[0]
            width = len(m.group(2))
            return f"{m.group(1)}{a + 1:0{width}d}{m.group(3)}"
    return None


def group_stem(paths: Sequence[Path]) -> str:
    """The name of a group's output folder: the common prefix of a numbered group without its trailing
    separator (``mouse1_00001.tif, mouse1_00002.tif`` -> ``mouse1``), else the first file's stem."""
    first = Path(paths[0])
    m = _NUMBERED.match(first.name)
    if len(paths) > 1 and m and m.group(1).rstrip("_-. "):
        return m.group(1).rstrip("_-. ")
    return first.name.split(".")[0] if first.name.split(".")[0] else first.stem


def recording_stem(spec) -> str:
    """The name of a recording's output folder: a file's stem, a directory's name, a group's
    :func:`group_stem` (a glob or several files)."""
    if isinstance(spec, (list, tuple)) and len(spec) == 1:
        spec = spec[0]
    if isinstance(spec, (str, Path)) and (Path(spec).is_file() or Path(spec).is_dir()):
        p = Path(spec)
        return p.resolve().stem if p.is_dir() else p.stem
    return group_stem(expand_inputs(spec))


def expand_inputs(spec) -> list[Path]:
    """The files of an INPUT (a path, directory, glob, or a sequence of them), in natural order.

    Raises:
        InputError: a pattern or directory with no video files, a file
            named twice, or a numbered group with a missing file.
    """
    items = [spec] if isinstance(spec, (str, Path)) else list(spec)
    if not items:
        raise InputError("no input given")
    files: list[Path] = []
    for item in items:
        files.extend(_expand_one(item))
    seen = set()
    for p in files:
        key = p.resolve() if p.exists() else p
        if key in seen:
            raise InputError(f"{p}: given twice")
        seen.add(key)
    files.sort(key=natural_key)
    gap = numbered_gap(files) if all(p.exists() for p in files) else None
    if gap:
        raise InputError(f"{files[0].parent / gap}: missing from the numbered group {files[0].name} .. "
                         f"{files[-1].name} ({len(files)} files)")
    return files


class ConcatenatedReader(VideoReader):
    """Several readers' frames, one after the other, as one video.

    Parameters:
        paths: the member files, in recording order (two or more).
        opener: ``opener(path) -> VideoReader`` for one member.
        where: how the group is named in messages (a directory, a pattern,
            or the first file).

    Every member is opened once here to check that its frame size, dtype
    and channel count match the first; then reads open members lazily and
    keep at most one open, so memory is the batch plus one reader.
    """

    def __init__(self, paths: Sequence[Path], opener: Callable[[Path], VideoReader], where=None):
        self.paths = [Path(p) for p in paths]
        self._opener = opener
        self._current: tuple[int, VideoReader] | None = None
        counts = []
        first = None
        for p in self.paths:
            with opener(p) as r:
                t, h, w, c = r.shape
                desc = r.description
                if first is None:
                    first = (p, (h, w, c), r.dtype, desc)
                elif (h, w, c) != first[1] or r.dtype != first[2]:
                    fh, fw, fc = first[1]
                    raise InputError(f"{p}: {h}x{w} with {c} channel(s), {r.dtype}, but {first[0].name} is "
                                     f"{fh}x{fw} with {fc}, {first[2]}; the files of one recording must agree")
            counts.append(t)
        self.counts = np.array(counts, dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.counts)])
        h, w, c = first[1]
        super().__init__(where if where is not None else self.paths[0], (int(self.starts[-1]), h, w, c),
                         first[2], f"{len(self.paths)} files ({first[3]} each)")

    def _member(self, i: int) -> VideoReader:
        if self._current is not None and self._current[0] == i:
            return self._current[1]
        if self._current is not None:
            self._current[1].close()
            self._current = None
        r = self._opener(self.paths[i])
        expect = (int(self.counts[i]),) + self.shape[1:]
        if r.shape != expect or r.dtype != self.dtype:  # changed since it was checked
            r.close()
            raise InputError(f"{self.paths[i]}: changed while reading (now {r.shape}, expected {expect})")
        self._current = (i, r)
        return r

    def _read(self, start: int, stop: int) -> np.ndarray:
        out = np.empty((stop - start,) + self.shape[1:], dtype=self.dtype)
        f = start
        while f < stop:
            i = int(np.searchsorted(self.starts, f, side="right") - 1)
            lo = f - int(self.starts[i])
            hi = min(int(self.counts[i]), lo + (stop - f))
            out[f - start:f - start + hi - lo] = self._member(i).read(lo, hi)
            f += hi - lo
        return out

    def _close(self) -> None:
        if self._current is not None:
            self._current[1].close()
            self._current = None

"""Reader base class, axis strings and video discovery shared by all formats.

In memory a video is always a 4-D, C-contiguous array ``(T, H, W, C)`` --
time, rows, columns, channels -- in native byte order, with ``C >= 1``.
Each format module maps its stored layout onto that view:

- :class:`AxisLayout` maps one stored N-D array (an h5py dataset, a MAT
  variable, a memory map) with an axis string such as ``'THW'`` or
  ``'TCWH'`` onto frames, reading only the requested frame range.
- :func:`find_video` implements the dataset/variable auto-discovery rules
  shared by HDF5 and MAT files.
- :class:`VideoReader` is the abstract reader: bounds checks, dtype and
  contiguity normalisation, ``read_indices`` in terms of ``read``.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, OptionError

__all__ = [
    "AxisLayout",
    "DeinterleavedReader",
    "Entry",
    "VideoReader",
    "find_video",
    "native_dtype",
    "parse_axes",
]

#: axis letters accepted in ``--axes`` strings and their canonical form
AXIS_LETTERS = {"T": "T", "Z": "Z", "H": "H", "Y": "H", "W": "W", "X": "W", "C": "C"}

#: dataset / variable names taken as the video in the named discovery pass
VIDEO_NAMES = ("mov", "data", "dataset", "idx", "video", "frames", "imaging")

_CHANNEL_RE = re.compile(r"^(?:ch|channel|chan)[_. ]*(\d+)$", re.IGNORECASE)

#: at most this many frames are read per block by ``read_indices``
_INDEX_BLOCK = 256


def native_dtype(dtype) -> np.dtype:
    """``dtype`` in native byte order; ``bool`` becomes ``uint8``.

    Raises ValueError for non-numeric types (callers turn it into a
    user-facing error naming the file).
    """
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return np.dtype(np.uint8)
    if dt.kind not in "iuf" or dt.fields is not None or dt.subdtype is not None:
        raise ValueError(f"unsupported data type {dt}")
    return dt.newbyteorder("=")


def is_numeric_dtype(dtype) -> bool:
    """True for bool, integer and real floating-point types (any byte order)."""
    dt = np.dtype(dtype)
    return dt.kind in "biuf" and dt.fields is None and dt.subdtype is None


def fmt_shape(shape) -> str:
    """``(10,)`` / ``(3, 4)`` -- a shape as Python prints a tuple."""
    return str(tuple(int(s) for s in shape))


# ---------------------------------------------------------------------------
# axis strings


def parse_axes(axes: str, ndim: int, where: str, *, reverse: bool = False,
               allow_channel: bool = True) -> str:
    """Validate an ``--axes`` string and return its canonical C-order form.

    Parameters:
        axes: the user's string, e.g. ``'HWT'`` or ``'tcyx'``; letters
            ``T`` (time), ``Z`` (extra time, flattened with T in stored
            order), ``H``/``Y`` (rows), ``W``/``X`` (columns), ``C``
            (channel). Each letter at most once; H and W required; T or Z
            required.
        ndim: number of dimensions of the stored array.
        where: ``"<file>: dataset <name> <shape>"`` prefix for messages.
        reverse: the string is in MATLAB (column-major) view; return it
            reversed so it describes the C-order (h5py/numpy) view.
        allow_channel: False where a channel axis is not possible (several
            datasets, one channel each).

    Returns:
        Canonical letters from ``'TZHWC'`` in C-order storage order.

    Raises:
        InputError: (one line, starting with ``where``) if the string has
            unknown or repeated letters, lacks H, W or a time axis, or its
            length differs from ``ndim``.
    """
    raw = axes
    letters = []
    for ch in str(axes).strip().upper():
        if ch not in AXIS_LETTERS:
            raise InputError(f"{where}: --axes {raw!r} has unknown letter {ch!r} "
                             "(use T, Z, H or Y, W or X, C)")
        letters.append(AXIS_LETTERS[ch])
    canon = "".join(letters)
    for ch in set(canon):
        if canon.count(ch) > 1:
            raise InputError(f"{where}: --axes {raw!r} names the {_AXIS_NAMES[ch]} axis twice")
    if "H" not in canon or "W" not in canon:
        raise InputError(f"{where}: --axes {raw!r} needs both H (or Y) and W (or X)")
    if "T" not in canon and "Z" not in canon:
        raise InputError(f"{where}: --axes {raw!r} has no time axis (T)")
    if "C" in canon and not allow_channel:
        raise InputError(f"{where}: --axes {raw!r} has a channel axis, but each of several datasets "
                         "is one channel")
    if len(canon) != ndim:
        raise InputError(f"{where}: --axes {raw!r} has {len(canon)} letters but the data has "
                         f"{ndim} dimensions")
    return canon[::-1] if reverse else canon


_AXIS_NAMES = {"T": "time", "Z": "Z", "H": "row", "W": "column", "C": "channel"}


def default_axes(ndim: int, where: str, *, matlab: bool = False) -> str:
    """Default C-order axes for an ``ndim``-D array (THW / THWC, or MATLAB HWT / HWCT)."""
    if ndim == 3:
        return "TWH" if matlab else "THW"
    if ndim == 4:
        return "TCWH" if matlab else "THWC"
    if ndim <= 2:
        raise InputError(f"{where}: has only {ndim} dimension{'s' if ndim != 1 else ''}; need a time axis")
    raise InputError(f"{where}: has {ndim} dimensions; give the axis order with --axes")


class AxisLayout:
    """How one stored N-D array maps onto ``(T, H, W, C)`` frames.

    ``axes`` (canonical letters, C-order view) names each stored dimension.
    The time axes (``T`` and/or ``Z``) are flattened in stored order: with
    ``axes='ZTHW'`` frame ``f`` is ``(z, t) = divmod(f, n_t)``. ``H`` and
    ``W`` become rows and columns; ``C`` (optional) the channels.

    :meth:`read` slices only the requested frames out of any object that
    supports numpy-style basic indexing with a tuple of slices (h5py
    datasets, memory maps, :class:`frkit.io.mat.MatArray`).
    """

    def __init__(self, shape: Sequence[int], axes: str):
        if len(shape) != len(axes):
            raise ValueError(f"axes {axes!r} do not match shape {tuple(shape)}")
        self.shape = tuple(int(s) for s in shape)
        self.axes = axes
        self.t_axes = [i for i, a in enumerate(axes) if a in "TZ"]
        self.h_axis = axes.index("H")
        self.w_axis = axes.index("W")
        self.c_axis = axes.index("C") if "C" in axes else None
        self.n_frames = math.prod(self.shape[i] for i in self.t_axes)
        self.height = self.shape[self.h_axis]
        self.width = self.shape[self.w_axis]
        self.n_channels = 1 if self.c_axis is None else self.shape[self.c_axis]
        order = self.t_axes + [self.h_axis, self.w_axis]
        if self.c_axis is not None:
            order.append(self.c_axis)
        self._order = tuple(order)

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        return (self.height, self.width, self.n_channels)

    def describe(self, *, matlab: bool = False) -> str:
        """``'T,H,W'`` (or MATLAB's ``'H x W x T'`` for ``matlab=True``)."""
        return " x ".join(self.axes[::-1]) if matlab else ",".join(self.axes)

    def read(self, array: Any, start: int, stop: int) -> np.ndarray:
        """Frames ``[start, stop)`` of ``array`` as ``(n, H, W, C)`` (stored dtype).

        With a single time axis this is one slice read; with T and Z one
        read per outer index touched.
        """
        ndim = len(self.shape)
        blocks = []
        if len(self.t_axes) == 1:
            blocks.append((None, start, stop))
        else:
            outer, inner = self.t_axes
            n_in = self.shape[inner]
            f = start
            while f < stop:
                o, i0 = divmod(f, n_in)
                i1 = min(n_in, i0 + (stop - f))
                blocks.append((o, i0, i1))
                f += i1 - i0
        parts = []
        for o, i0, i1 in blocks:
            index = [slice(None)] * ndim
            if o is not None:
                index[self.t_axes[0]] = slice(o, o + 1)
            index[self.t_axes[-1]] = slice(i0, i1)
            a = np.asarray(array[tuple(index)])
            a = a.transpose(self._order)
            parts.append(a.reshape((-1, self.height, self.width, self.n_channels)))
        return parts[0] if len(parts) == 1 else np.concatenate(parts)


# ---------------------------------------------------------------------------
# discovery


@dataclass(frozen=True)
class Entry:
    """One dataset (HDF5) or variable (MAT) seen during discovery.

    ``name`` is the full path (``'grp/ch1'``); ``shape`` the stored shape
    whose length is used for the 3-D/4-D rules; ``label`` how the entry is
    shown in messages (``'a (10,)'``).
    """

    name: str
    shape: tuple[int, ...]
    numeric: bool
    label: str

    @property
    def parent(self) -> str:
        return self.name.rpartition("/")[0]

    @property
    def basename(self) -> str:
        return self.name.rpartition("/")[2]

    @property
    def depth(self) -> int:
        return self.name.count("/")

    @property
    def size(self) -> int:
        return math.prod(self.shape)


def _listing(entries: Sequence[Entry], limit: int = 12) -> str:
    shown = [e.label for e in entries[:limit]]
    if len(entries) > limit:
        shown.append(f"... ({len(entries) - limit} more)")
    return ", ".join(shown) if shown else "none"


def _the_only_one(candidates: Sequence[Entry], path, kind: str) -> str:
    """The name of the single candidate; several equally good ones are an error, not a guess."""
    if len(candidates) > 1:
        raise InputError(f"{path}: ambiguous: several video {kind}s ({', '.join(e.name for e in candidates)}); "
                         "choose with --dataset")
    return candidates[0].name


def find_video(entries: Sequence[Entry], path, kind: str = "dataset") -> list[str]:
    """Pick the video among ``entries``; return the chosen name(s).

    Rules, in order (``kind`` is ``'dataset'`` or ``'variable'`` in messages):

    1. Channel pass: names (last component) matching
       ``(ch|channel|chan)[_. ]*<n>`` (any case), grouped by parent; a
       group whose members are all numeric, 3-D and of one shape is a
       candidate. The group with the most members wins (ties: the
       shallowest; still tied: error). Members are returned in numeric
       order (ch2 before ch10); each is one channel. If no group qualifies
       but a group holds several 3-D/4-D members of different shapes, that
       is an error (rather than silently reading one channel).
    2. Named pass: a numeric 3-D/4-D entry named one of
       :data:`VIDEO_NAMES` (any case); the shallowest wins, several at that
       depth is an error.
    3. Shape pass: the numeric 3-D/4-D entry with the most elements;
       several of the same largest size is an error.

    Raises:
        InputError: nothing found, ambiguous choice, or a channel group
            whose members differ in shape.
    """
    numeric = [e for e in entries if e.numeric]
    video_like = [e for e in numeric if len(e.shape) in (3, 4) and e.size > 0]

    # 1. channel pass
    groups: dict[str, list[tuple[int, Entry]]] = {}
    for e in numeric:
        m = _CHANNEL_RE.match(e.basename)
        if m:
            groups.setdefault(e.parent, []).append((int(m.group(1)), e))
    good, bad = [], []
    for parent, members in groups.items():
        members.sort(key=lambda ne: (ne[0], ne[1].basename))
        shapes = {m.shape for _, m in members}
        if len(shapes) == 1 and len(members[0][1].shape) == 3 and members[0][1].size > 0:
            good.append((parent, [m for _, m in members]))
        elif len(shapes) > 1 and sum(len(m.shape) in (3, 4) for _, m in members) > 1:
            bad.append([m for _, m in members])
    if good:
        best = max(len(m) for _, m in good)
        top = [g for g in good if len(g[1]) == best]
        if len(top) > 1:
            shallow = min(p_depth(p) for p, _ in top)
            top = [g for g in top if p_depth(g[0]) == shallow]
        if len(top) > 1:
            names = "; ".join(", ".join(m.name for m in g[1]) for g in top)
            raise InputError(f"{path}: ambiguous: several channel groups ({names}); choose with --dataset")
        return [m.name for m in top[0][1]]
    if bad:  # several channel videos that cannot be combined: do not guess
        raise InputError(f"{path}: channel {kind}s differ in shape: {_listing(bad[0])}")

    # 2. named pass
    named = [e for e in video_like if e.basename.lower() in VIDEO_NAMES]
    if named:
        shallow = min(e.depth for e in named)
        return [_the_only_one([e for e in named if e.depth == shallow], path, kind)]

    # 3. shape pass
    if video_like:
        largest = max(e.size for e in video_like)
        return [_the_only_one([e for e in video_like if e.size == largest], path, kind)]

    two_d = [e for e in numeric if len(e.shape) == 2]
    if len(numeric) == 1 and two_d:
        raise InputError(f"{path}: {kind} {two_d[0].label} has only 2 dimensions; need a time axis")
    raise InputError(f"{path}: no video {kind} (3-D or 4-D) found; {kind}s: {_listing(list(entries))}")


def p_depth(parent: str) -> int:
    """Depth of a group path ('' is the root, 'a' is 1, 'a/b' is 2)."""
    return parent.count("/") + 1 if parent else 0


# ---------------------------------------------------------------------------
# readers


class VideoReader:
    """Abstract reader of a video file as ``(T, H, W, C)`` frames.

    Attributes:
        path: the file (as given).
        shape: ``(T, H, W, C)``.
        dtype: element type of the returned frames, native byte order
            (files stored big-endian come back native-endian with the same
            values; MATLAB ``logical`` and HDF5 ``bool`` come back as uint8).
        description: how the video was found, for messages and records,
            e.g. ``'HDF5 datasets ch1, ch2 (T,H,W)'``.

    Subclasses implement :meth:`_read` (frames ``[start, stop)``, already
    bounds-checked, any dtype/byte order/strides) and :meth:`_close`.
    Readers are context managers; :meth:`close` is idempotent.
    """

    path: Path
    shape: tuple[int, int, int, int]
    dtype: np.dtype
    description: str

    def __init__(self, path, shape, dtype, description: str):
        self.path = Path(path)
        self.shape = tuple(int(s) for s in shape)  # type: ignore[assignment]
        self.dtype = np.dtype(dtype)
        self.description = description
        self.closed = False

    # -- shape helpers
    @property
    def n_frames(self) -> int:
        return self.shape[0]

    @property
    def height(self) -> int:
        return self.shape[1]

    @property
    def width(self) -> int:
        return self.shape[2]

    @property
    def n_channels(self) -> int:
        return self.shape[3]

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {str(self.path)!r} {self.shape} {self.dtype} {self.description}>"

    # -- reading
    def read(self, start: int, stop: int) -> np.ndarray:
        """Frames ``start .. stop-1`` as a new C-contiguous ``(stop-start, H, W, C)`` array.

        ``0 <= start <= stop <= n_frames`` (IndexError otherwise; negative
        indices are not wrapped). ``start == stop`` gives an empty array.
        Damaged files raise InputError.
        """
        self._check_open()
        start, stop = operator.index(start), operator.index(stop)
        if not 0 <= start <= stop <= self.shape[0]:
            raise IndexError(f"{self.path}: frames [{start}, {stop}) out of range; the video has "
                             f"{self.shape[0]} frames")
        if start == stop:
            return np.empty((0,) + self.shape[1:], dtype=self.dtype)
        out = np.ascontiguousarray(self._read(start, stop), dtype=self.dtype)
        if not out.flags.writeable:  # a view of a memory map or of a bytes buffer
            out = out.copy()
        if out.shape != (stop - start,) + self.shape[1:]:  # pragma: no cover - reader bug
            raise AssertionError(f"reader returned {out.shape} for frames [{start}, {stop})")
        return out

    def read_indices(self, indices) -> np.ndarray:
        """Frames at ``indices`` (any order, repeats allowed) as ``(n, H, W, C)``.

        Consecutive indices are read as one block (at most 256 frames), so
        sorted index lists cost about as much as :meth:`read`.
        """
        self._check_open()
        idx = np.asarray(indices)
        if idx.ndim != 1 and idx.size:
            idx = idx.ravel()
        if idx.size and idx.dtype.kind not in "iu":
            raise TypeError(f"frame indices must be integers, got {idx.dtype}")
        idx = idx.astype(np.int64, copy=False).reshape(-1)
        n = len(idx)
        out = np.empty((n,) + self.shape[1:], dtype=self.dtype)
        if n == 0:
            return out
        if idx.min() < 0 or idx.max() >= self.shape[0]:
            bad = int(idx[(idx < 0) | (idx >= self.shape[0])][0])
            raise IndexError(f"{self.path}: frame {bad} out of range; the video has {self.shape[0]} frames")
        order = np.argsort(idx, kind="stable")
        srt = idx[order]
        a = 0
        while a < n:
            lo = int(srt[a])
            b = a + 1
            while b < n and srt[b] - srt[b - 1] <= 1 and srt[b] - lo < _INDEX_BLOCK:
                b += 1
            hi = int(srt[b - 1]) + 1
            block = self.read(lo, hi)
            out[order[a:b]] = block[srt[a:b] - lo]
            a = b
        return out

    def _read(self, start: int, stop: int) -> np.ndarray:
        raise NotImplementedError

    # -- lifetime
    def _check_open(self) -> None:
        if self.closed:
            raise ValueError(f"{self.path}: reader is closed")

    def close(self) -> None:
        """Release the file. Further reads raise ValueError."""
        if not self.closed:
            self.closed = True
            self._close()

    def _close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class DeinterleavedReader(VideoReader):
    """Groups of ``n`` consecutive single-channel frames of ``raw`` as ``n``-channel frames.

    Frame ``t`` channel ``c`` is raw frame ``t * n + c``. The raw video
    must have one channel and a multiple of ``n`` frames.
    """

    def __init__(self, raw: VideoReader, n: int):
        t, h, w, c = raw.shape
        if c != 1:
            raw.close()
            raise InputError(f"{raw.path}: --deinterleave {n} needs single-channel frames, "
                             f"but the data already has {c} channels")
        if t % n:
            raw.close()
            raise InputError(f"{raw.path}: {t} frames is not a multiple of --deinterleave {n}")
        super().__init__(raw.path, (t // n, h, w, n), raw.dtype, f"{raw.description}, deinterleaved x{n}")
        self.raw = raw
        self.n = n

    def _read(self, start: int, stop: int) -> np.ndarray:
        frames = self.raw.read(start * self.n, stop * self.n)
        h, w = self.shape[1:3]
        return frames.reshape(stop - start, self.n, h, w).transpose(0, 2, 3, 1)

    def _close(self) -> None:
        self.raw.close()


def check_deinterleave(deinterleave) -> int:
    """``deinterleave`` as an int >= 1 (OptionError otherwise)."""
    try:
        n = operator.index(deinterleave)
    except TypeError:
        raise OptionError(f"--deinterleave must be a whole number >= 1, got {deinterleave!r}") from None
    if n < 1:
        raise OptionError(f"--deinterleave must be >= 1, got {n}")
    return n


def guarded(path, what: str, fn: Callable[[], Any], errors=(OSError, RuntimeError, KeyError, ValueError)):
    """``fn()``, with library ``errors`` turned into one-line InputErrors about ``path``."""
    try:
        return fn()
    except InputError:
        raise
    except errors as exc:
        raise InputError(f"{path}: {what}: {one_line(exc)} (truncated or corrupt file?)") from exc


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message (or its type name)."""
    text = str(exc).strip().splitlines()
    return text[0].strip() if text else type(exc).__name__


def check_file(path, what: str = "video") -> Path:
    """``path`` if it is an existing, readable, non-empty file; else a one-line InputError."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    if p.is_dir():
        raise InputError(f"{p}: is a directory, not a {what} file")
    try:
        size = p.stat().st_size
        with open(p, "rb") as fh:
            fh.read(1)
    except OSError as exc:
        raise InputError(f"{p}: cannot open: {exc.strerror or one_line(exc)}") from None
    if size == 0:
        raise InputError(f"{p}: file is empty (0 bytes)")
    return p

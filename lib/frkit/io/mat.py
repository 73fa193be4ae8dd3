"""Streaming reader for MATLAB MAT-file version 5 (level 5) videos.

A v5 MAT-file is a 128-byte header (116 bytes of text, an 8-byte subsystem
offset, a 2-byte version and the 2-byte endian indicator ``'IM'`` for a
little-endian or ``'MI'`` for a big-endian file) followed by data elements.
Each element has an 8-byte tag (``uint32`` data type, ``uint32`` byte count;
the *small element* format packs type and count into the first 4 bytes and
up to 4 bytes of data into the next 4) and is padded to 8 bytes. A
variable is an ``miMATRIX`` element -- array flags (class, complex/logical
bits), dimensions (``int32``), name (``int8``), real part (any numeric data
type; MATLAB may store e.g. a double array as ``miUINT8``) -- or an
``miCOMPRESSED`` element holding a zlib stream of one ``miMATRIX``
element.

MATLAB arrays are column-major: variable ``H x W x T`` (the default video
layout, MATLAB axes ``HWT``) holds frame ``t`` as one contiguous block of
``H*W`` values in column-major order, i.e. the frame transposed in C order.
``H x W x C x T`` (``HWCT``) holds frame ``t`` as ``H*W*C`` values. Seen
from numpy (C order) the variable has the reversed shape ``(T, W, H)`` /
``(T, C, W, H)`` -- the same view h5py gives of a v7.3 file -- and
:class:`MatArray` exposes exactly that view.

Nothing is loaded whole: uncompressed variables are memory-mapped at their
data offset; compressed variables are decompressed sequentially with
:func:`zlib.decompressobj` up to the requested frames (moving backwards
restarts the stream from the start of the element). Walking the file reads
only element tags and, for compressed variables, the first few hundred
decompressed bytes (flags, dimensions, name).

MAT v4 files and MAT v7.3 files (HDF5, see :mod:`frkit.io.hdf5`) are not
handled here.
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from .base import AxisLayout, Entry, VideoReader, default_axes, find_video, parse_axes

__all__ = ["MX_CLASSES", "MI_DTYPES", "MatArray", "MatV5File", "MatV5Reader", "MatVariable"]

# data types (tags)
MI_INT8, MI_UINT8, MI_INT16, MI_UINT16, MI_INT32, MI_UINT32 = 1, 2, 3, 4, 5, 6
MI_SINGLE, MI_DOUBLE, MI_INT64, MI_UINT64 = 7, 9, 12, 13
MI_MATRIX, MI_COMPRESSED, MI_UTF8 = 14, 15, 16

#: numeric data element types -> numpy type codes (byte order added per file)
MI_DTYPES = {MI_INT8: "i1", MI_UINT8: "u1", MI_INT16: "i2", MI_UINT16: "u2", MI_INT32: "i4",
             MI_UINT32: "u4", MI_SINGLE: "f4", MI_DOUBLE: "f8", MI_INT64: "i8", MI_UINT64: "u8"}

#: array classes (low byte of the array flags)
MX_CLASSES = {1: "cell", 2: "struct", 3: "object", 4: "char", 5: "sparse", 6: "double", 7: "single",
              8: "int8", 9: "uint8", 10: "int16", 11: "uint16", 12: "int32", 13: "uint32", 14: "int64",
              15: "uint64", 16: "function", 17: "opaque"}

#: numeric classes -> numpy type codes
MX_NUMERIC = {6: "f8", 7: "f4", 8: "i1", 9: "u1", 10: "i2", 11: "u2", 12: "i4", 13: "u4", 14: "i8", 15: "u8"}

FLAG_COMPLEX, FLAG_GLOBAL, FLAG_LOGICAL = 0x0800, 0x0400, 0x0200

_READ_CHUNK = 1 << 20          # compressed bytes fed to zlib per call
_PIECE = 32 << 20              # decompressed bytes handled at once by MatArray
_HEAD = 1024                   # decompressed bytes first tried for a variable header


def _pad8(n: int) -> int:
    return (n + 7) & ~7


@dataclass
class MatVariable:
    """One top-level variable of a v5 MAT-file (header only, no data).

    ``dims`` are MATLAB's (column-major); ``stream_offset`` is the data
    offset inside the variable's byte stream: the file for uncompressed
    variables, the decompressed zlib stream (which starts with the
    ``miMATRIX`` tag) for compressed ones.
    """

    name: str
    class_id: int
    dims: tuple[int, ...]
    flags: int
    compressed: bool
    element_offset: int      # file offset of the element's data (after its 8-byte tag)
    element_nbytes: int      # byte count from the element's tag
    data_type: int = 0       # mi type of the real part (numeric classes)
    stream_offset: int = 0
    data_nbytes: int = 0

    @property
    def class_name(self) -> str:
        name = MX_CLASSES.get(self.class_id, f"class {self.class_id}")
        if self.flags & FLAG_LOGICAL:
            name = "logical"
        if self.flags & FLAG_COMPLEX:
            name = "complex " + name
        return name

    @property
    def numeric(self) -> bool:
        """Real numeric (or logical) array with readable data."""
        return (self.class_id in MX_NUMERIC and not self.flags & FLAG_COMPLEX
                and self.data_type in MI_DTYPES)

    @property
    def dtype(self) -> np.dtype:
        """Element type of the variable (its class), native byte order; logical -> uint8."""
        if self.flags & FLAG_LOGICAL:
            return np.dtype(np.uint8)
        return np.dtype(MX_NUMERIC[self.class_id])

    @property
    def label(self) -> str:
        return f"{self.name} ({'x'.join(str(d) for d in self.dims)} {self.class_name})"


class _ZStream:
    """Sequential reader of the decompressed bytes of one ``miCOMPRESSED`` element."""

    def __init__(self, fh, offset: int, nbytes: int, path, name: str = ""):
        self._fh = fh
        self._offset = offset
        self._nbytes = nbytes
        self._path = path
        self._name = name
        self._reset()

    def _reset(self) -> None:
        self._zd = zlib.decompressobj()
        self._consumed = 0      # compressed bytes read from the file
        self._tail = b""        # compressed input not yet consumed by zlib
        self.pos = 0            # position in the decompressed stream

    def _fail(self, why: str):
        var = f" (variable {self._name})" if self._name else ""
        return InputError(f"{self._path}: compressed data{var} {why}; truncated or corrupt MAT file")

    def _pull(self, max_out: int) -> bytes:
        """Up to ``max_out`` (> 0) more decompressed bytes; b'' at the end of the stream."""
        while True:
            if self._tail:
                data = self._tail
            elif self._consumed < self._nbytes:
                self._fh.seek(self._offset + self._consumed)
                data = self._fh.read(min(_READ_CHUNK, self._nbytes - self._consumed))
                if not data:
                    raise self._fail("ends early")
                self._consumed += len(data)
            else:
                data = b""
            try:
                out = self._zd.decompress(data, max_out)
            except zlib.error as exc:
                raise self._fail(f"cannot be decompressed ({exc})") from None
            self._tail = self._zd.unconsumed_tail
            if out or not data:
                return out

    def read(self, n: int, *, exact: bool = True) -> bytes:
        """The next ``n`` decompressed bytes (fewer only at the end with ``exact=False``)."""
        parts = []
        need = n
        while need > 0:
            out = self._pull(need)
            if not out:
                if exact:
                    raise self._fail("ends early")
                break
            parts.append(out)
            need -= len(out)
        self.pos += n - need
        return b"".join(parts)

    def seek(self, pos: int) -> None:
        """Move to decompressed offset ``pos`` (restarting the stream to go back)."""
        if pos < self.pos:
            self._reset()
        while self.pos < pos:
            self.read(min(pos - self.pos, _PIECE))


class _Head:
    """Lazily grown prefix of a variable's byte stream, for header parsing."""

    def __init__(self, fetch, limit: int):
        self._fetch = fetch      # fetch(n) -> first n bytes (or fewer at the end)
        self._limit = limit
        self._buf = b""

    def get(self, a: int, b: int) -> bytes:
        if b > len(self._buf):
            want = min(self._limit, max(b, 2 * len(self._buf), _HEAD))
            self._buf = self._fetch(want)
            if len(self._buf) < b:
                raise EOFError
        return self._buf[a:b]


def _parse_matrix(head: _Head, endian: str, where: str) -> dict:
    """Header fields of the ``miMATRIX`` element starting at offset 0 of ``head``."""

    def tag(pos):
        w0, w1 = struct.unpack(endian + "II", head.get(pos, pos + 8))
        if w0 >> 16:  # small data element: type in the low, count in the high 16 bits
            return w0 & 0xFFFF, w0 >> 16, pos + 4, pos + 8
        return w0, w1, pos + 8, pos + 8 + _pad8(w1)

    try:
        mtype, nbytes, _, _ = tag(0)
        if mtype != MI_MATRIX:
            raise InputError(f"{where}: expected a matrix element, found data type {mtype}")
        if nbytes == 0:
            return {"empty": True}
        ftype, fbytes, fpos, pos = tag(8)
        if ftype != MI_UINT32 or fbytes < 4:
            raise InputError(f"{where}: bad array flags element")
        flags = struct.unpack(endian + "I", head.get(fpos, fpos + 4))[0]
        class_id = flags & 0xFF
        dtype_, dbytes, dpos, pos = tag(pos)
        if dtype_ != MI_INT32:
            raise InputError(f"{where}: bad dimensions element")
        dims = struct.unpack(f"{endian}{dbytes // 4}i", head.get(dpos, dpos + dbytes))
        ntype, nlen, npos, pos = tag(pos)
        name = head.get(npos, npos + nlen).decode("utf-8", "replace") if nlen else ""
        info = {"empty": False, "flags": flags, "class_id": class_id, "dims": tuple(int(d) for d in dims),
                "name": name, "data_type": 0, "stream_offset": 0, "data_nbytes": 0}
        if class_id in MX_NUMERIC:
            rtype, rbytes, rpos, _ = tag(pos)
            info.update(data_type=rtype, stream_offset=rpos, data_nbytes=rbytes)
        return info
    except (EOFError, struct.error):
        raise InputError(f"{where}: variable header is cut short; truncated or corrupt MAT file") from None


class MatV5File:
    """The variable directory of a v5 MAT-file (headers only).

    Attributes:
        endian: ``'<'`` or ``'>'`` (from the header's endian indicator).
        variables: top-level variables in file order (unnamed subsystem
            data and empty arrays skipped).
        header_text: the 116-byte descriptive text, stripped.
    """

    def __init__(self, path, fh):
        self.path = Path(path)
        self.fh = fh
        fh.seek(0, 2)
        self.size = fh.tell()
        fh.seek(0)
        header = fh.read(128)
        if len(header) < 128 or header[126:128] not in (b"IM", b"MI"):
            raise InputError(f"{path}: not a MAT-file version 5 (MAT v4 files and other formats "
                             "are not supported)")
        self.endian = "<" if header[126:128] == b"IM" else ">"
        self.header_text = header[:116].rstrip(b" \x00").decode("latin-1")
        self.variables: list[MatVariable] = []
        pos = 128
        e = self.endian
        while pos + 8 <= self.size:
            fh.seek(pos)
            w0, nbytes = struct.unpack(e + "II", fh.read(8))
            if w0 >> 16 or (w0 == 0 and nbytes == 0):  # padding or stray small element
                pos += 8
                continue
            mtype = w0
            start = pos + 8
            end = start + (nbytes if mtype == MI_COMPRESSED else _pad8(nbytes))
            if start + nbytes > self.size:
                raise InputError(f"{path}: truncated MAT file: the element at byte {pos} needs "
                                 f"{start + nbytes} bytes, the file has {self.size}")
            if mtype in (MI_MATRIX, MI_COMPRESSED):
                self._add(mtype, pos, start, nbytes)
            pos = end

    def _add(self, mtype: int, pos: int, start: int, nbytes: int) -> None:
        where = f"{self.path}: variable at byte {pos}"
        if mtype == MI_COMPRESSED:
            zs = _ZStream(self.fh, start, nbytes, self.path)

            def fetch(n):
                zs.seek(0)
                return zs.read(n, exact=False)

            info = _parse_matrix(_Head(fetch, 1 << 30), self.endian, where)
        else:
            def fetch(n):
                self.fh.seek(pos)
                return self.fh.read(min(n, 8 + nbytes))

            info = _parse_matrix(_Head(fetch, 8 + nbytes), self.endian, where)
            info["stream_offset"] += pos  # file offset
        if info["empty"] or not info["name"]:
            return
        var = MatVariable(name=info["name"], class_id=info["class_id"], dims=info["dims"],
                          flags=info["flags"], compressed=mtype == MI_COMPRESSED, element_offset=start,
                          element_nbytes=nbytes, data_type=info["data_type"],
                          stream_offset=info["stream_offset"], data_nbytes=info["data_nbytes"])
        if var.numeric:
            expect = math.prod(var.dims) * np.dtype(MI_DTYPES[var.data_type]).itemsize
            if var.data_nbytes != expect:
                raise InputError(f"{self.path}: variable {var.name} has {var.data_nbytes} data bytes, "
                                 f"expected {expect} for {var.label}; corrupt MAT file")
        self.variables.append(var)

    def variable(self, name: str) -> MatVariable | None:
        for v in self.variables:
            if v.name == name:
                return v
        return None


class MatArray:
    """A numeric v5 variable as a read-only array in C-order view.

    ``shape`` is MATLAB's dimensions reversed; ``dtype`` the stored data
    type with the file's byte order (callers cast to the class dtype).
    Supports ``array[index]`` where ``index`` is a tuple of step-1 slices
    (one per dimension) -- what :class:`frkit.io.base.AxisLayout` uses.
    A slice over the first (outermost) axis reads only that byte range;
    slices over other axes stream the rows piece by piece (32 MiB).
    """

    def __init__(self, mat: MatV5File, var: MatVariable):
        self.shape = tuple(reversed(var.dims))
        self.dtype = np.dtype(mat.endian + MI_DTYPES[var.data_type])
        self._var = var
        self._mm = None
        self._stream = None
        if var.compressed:
            self._stream = _ZStream(mat.fh, var.element_offset, var.element_nbytes, mat.path, var.name)
        elif math.prod(self.shape) > 0:
            self._mm = np.memmap(mat.path, dtype=self.dtype, mode="r", offset=var.stream_offset,
                                 shape=self.shape, order="C")

    def __getitem__(self, index):
        if not isinstance(index, tuple):
            index = (index,)
        index = index + (slice(None),) * (len(self.shape) - len(index))
        if self._mm is not None:
            return self._mm[index]
        if self._stream is None:
            return np.empty(self.shape, self.dtype)[index]
        o0, o1, step = index[0].indices(self.shape[0])
        if step != 1:
            raise ValueError("MatArray supports step-1 slices only")
        rest = (slice(None),) + tuple(index[1:])
        row_elems = math.prod(self.shape[1:])
        row_bytes = row_elems * self.dtype.itemsize
        per_piece = max(1, _PIECE // max(row_bytes, 1))
        parts = []
        for r0 in range(o0, max(o0, o1), per_piece):
            r1 = min(o1, r0 + per_piece)
            self._stream.seek(self._var.stream_offset + r0 * row_bytes)
            buf = self._stream.read((r1 - r0) * row_bytes)
            a = np.frombuffer(buf, self.dtype).reshape((r1 - r0,) + self.shape[1:])
            parts.append(a[rest])
        if not parts:
            return np.empty((0,) + self.shape[1:], self.dtype)[rest]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def close(self) -> None:
        mm, self._mm = self._mm, None
        if mm is not None and getattr(mm, "_mmap", None) is not None:
            try:
                mm._mmap.close()
            except (BufferError, ValueError):  # still referenced elsewhere; the GC closes it
                pass


class MatV5Reader(VideoReader):
    """Frames of a MAT v5 file, streamed (see the module docstring).

    Parameters:
        path: the file.
        axes: MATLAB-view axis order of the variable(s); default ``HWT``
            (3-D) / ``HWCT`` (4-D).
        datasets: variable name(s): one (3-D, or 4-D with channels) or
            several 3-D variables of one size, one channel each. Default:
            discovery as for HDF5 (``ch1..chN``, then ``mov``/``data``/...,
            then the largest 3-D/4-D numeric variable); cell, struct, char,
            sparse, complex and empty variables are skipped.

    The dtype is the variables' MATLAB class (double -> float64, ...,
    logical -> uint8), native byte order, whatever type the data is stored in.
    """

    def __init__(self, path, *, axes: str | None = None, datasets: list[str] | None = None):
        path = Path(path)
        try:
            fh = open(path, "rb")
        except OSError as exc:
            raise InputError(f"{path}: cannot open: {exc.strerror or exc}") from None
        self._fh = fh
        self._arrays: list[MatArray] = []
        try:
            mat = MatV5File(path, fh)
            if datasets is None:
                entries = [Entry(v.name, v.dims, v.numeric and math.prod(v.dims) > 0, v.label)
                           for v in mat.variables]
                names = find_video(entries, path, "variable")
            else:
                names = [datasets] if isinstance(datasets, str) else list(datasets)
                if not names:
                    raise InputError(f"{path}: empty list of variables")
            variables = []
            for name in names:
                var = mat.variable(name)
                if var is None:
                    listing = ", ".join(v.label for v in mat.variables[:12]) or "none"
                    raise InputError(f"{path}: no variable {name!r}; variables: {listing}")
                if not var.numeric:
                    raise InputError(f"{path}: variable {var.label} is not a real numeric array")
                variables.append(var)
            if len({v.dims for v in variables}) > 1:
                raise InputError(f"{path}: channel variables differ in size: "
                                 f"{', '.join(v.label for v in variables)}")
            first = variables[0]
            where = f"{path}: variable {first.label}"
            shape = tuple(reversed(first.dims))
            if axes is not None:
                canon = parse_axes(axes, len(shape), where, reverse=True, allow_channel=len(variables) == 1)
            else:
                canon = default_axes(len(shape), where, matlab=True)
                if len(variables) > 1 and "C" in canon:
                    raise InputError(f"{where}: each of several channel variables must be 3-D; "
                                     "give the axis order with --axes")
            layout = AxisLayout(shape, canon)
            dtype = np.result_type(*[v.dtype for v in variables])
            self._arrays = [MatArray(mat, v) for v in variables]
            kinds = {"compressed" if v.compressed else "uncompressed" for v in variables}
            desc = (f"MAT v5 variable{'s' if len(names) > 1 else ''} {', '.join(names)} "
                    f"(MATLAB {layout.describe(matlab=True)}, {'/'.join(sorted(kinds))})")
        except BaseException:
            self._close()
            raise
        self._layout = layout
        self.names = names
        self.axes = canon
        super().__init__(path, (layout.n_frames, layout.height, layout.width,
                                layout.n_channels * len(variables)), dtype, desc)

    def _read(self, start: int, stop: int) -> np.ndarray:
        try:
            if len(self._arrays) == 1:
                return self._layout.read(self._arrays[0], start, stop)
            out = np.empty((stop - start,) + self.shape[1:], dtype=self.dtype)
            for k, arr in enumerate(self._arrays):
                out[..., k] = self._layout.read(arr, start, stop)[..., 0]
            return out
        except OSError as exc:
            raise InputError(f"{self.path}: cannot read frames {start}..{stop - 1}: "
                             f"{exc.strerror or exc}") from None

    def _close(self) -> None:
        for arr in self._arrays:
            arr.close()
        self._arrays = []
        self._fh.close()

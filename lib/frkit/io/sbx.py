"""Neurolabware Scanbox recordings: a raw ``.sbx`` file and its ``.mat`` header.

Layout (Scanbox's ``sbxread``): the ``.sbx`` file is uint16 samples, frame
after frame; in MATLAB's view each frame is ``[nchan, columns, lines]``,
so in C order it is ``(lines, columns, nchan)`` -- already ``(H, W, C)``.
Values are stored inverted: the intensity is ``65535 - stored``.

The header is the MATLAB struct ``info`` in ``<name>.mat``:

- ``sz``: ``[lines, columns]`` of a frame; without it the lines are
  ``recordsPerBuffer`` (twice that when ``scanmode == 0``, bidirectional)
  and the columns must be given by ``sz`` anyway;
- channels: ``chan.nchan`` (newer Scanbox), else ``channels`` (1: both
  PMTs, 2: PMT 0 only, 3: PMT 1 only).

The frame count is the file size over the frame size; a file that ends
inside a frame is truncated (InputError). Frames are read through a numpy
memory map, a batch at a time. Optotune (multi-plane) recordings are read
as all their frames in order (planes are not separated).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from .base import VideoReader, one_line

__all__ = ["SbxReader", "sbx_header"]

_UINT16_MAX = np.iinfo(np.uint16).max


def _field(struct, name, default=None):
    return getattr(struct, name, default) if not isinstance(struct, dict) else struct.get(name, default)


def sbx_header(sbx: Path) -> tuple[int, int, int]:
    """``(lines, columns, channels)`` from the ``.mat`` next to ``sbx`` (InputError if missing or unusable)."""
    import scipy.io

    mat = sbx.with_suffix(".mat")
    if not mat.is_file():
        raise InputError(f"{sbx}: its Scanbox header {mat.name} is missing")
    try:
        info = scipy.io.loadmat(mat, squeeze_me=True, struct_as_record=False).get("info")
    except Exception as exc:  # noqa: BLE001 - scipy raises many types on damaged files
        raise InputError(f"{mat}: not a readable Scanbox header ({one_line(exc)})") from None
    if info is None:
        raise InputError(f"{mat}: no 'info' struct (not a Scanbox header)")
    try:
        chan = _field(info, "chan")
        if chan is not None and _field(chan, "nchan") is not None:
            nchan = int(_field(chan, "nchan"))
        else:
            nchan = {1: 2, 2: 1, 3: 1}[int(_field(info, "channels"))]
        sz = _field(info, "sz")
        if sz is None:
            raise KeyError("sz")
        sz = np.atleast_1d(np.asarray(sz)).astype(int)
        lines, cols = int(sz[0]), int(sz[1])
        if lines <= 0 or cols <= 0 or nchan not in (1, 2):
            raise ValueError(f"frame {lines} x {cols} with {nchan} channels")
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise InputError(f"{mat}: Scanbox info lacks a usable frame size or channel count "
                         f"({one_line(exc)})") from None
    return lines, cols, nchan


class SbxReader(VideoReader):
    """A Scanbox ``.sbx`` recording as ``(T, H, W, C)`` uint16 (intensity = 65535 - stored)."""

    def __init__(self, path):
        path = Path(path)
        h, w, c = sbx_header(path)
        size = path.stat().st_size
        frame_bytes = h * w * c * 2
        n, rest = divmod(size, frame_bytes)
        if rest:
            raise InputError(f"{path}: truncated Scanbox file: {size} bytes is not a whole number of "
                             f"{h}x{w}x{c} frames ({frame_bytes} bytes each)")
        if n < 1:
            raise InputError(f"{path}: Scanbox file holds no frame")
        self._mm = np.memmap(path, dtype="<u2", mode="r", shape=(n, h, w, c))
        super().__init__(path, (n, h, w, c), np.uint16, f"Scanbox {h}x{w}, {c} channel(s), inverted uint16")

    def _read(self, start: int, stop: int) -> np.ndarray:
        return _UINT16_MAX - np.asarray(self._mm[start:stop])

    def _close(self) -> None:
        mm = getattr(self._mm, "_mmap", None)
        if mm is not None:
            mm.close()
        self._mm = None

"""Atomic file output: write ``<name>.partial``, then rename onto ``<name>``.

A reader never sees a half-written file under its final name: every output
is written to :func:`partial_path` in the same directory and moved into
place with :func:`os.replace` (atomic on POSIX and Windows within one file
system) only once complete. On failure the partial file is removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import OutputError
from ..layout import PARTIAL_SUFFIX

__all__ = [
    "atomic_output",
    "partial_path",
    "save_npy_atomic",
    "save_npz_atomic",
    "save_png_atomic",
    "savemat_atomic",
    "save_tiff_atomic",
    "write_json_atomic",
    "encode_png",
]


def partial_path(path) -> Path:
    """The temporary name for ``path``: same directory, ``<name>.partial``.

    >>> partial_path("out/compensated.HDF5").name
    'compensated.HDF5.partial'
    """
    p = Path(path)
    return p.with_name(p.name + PARTIAL_SUFFIX)


def remove_quietly(path) -> None:
    """Delete ``path`` if it exists; ignore errors."""
    with contextlib.suppress(OSError):
        Path(path).unlink()


def commit_partial(partial, path) -> None:
    """``os.replace(partial, path)`` with OutputError on failure (partial removed)."""
    try:
        os.replace(partial, path)
    except OSError as exc:
        remove_quietly(partial)
        raise OutputError(f"{path}: cannot move the finished file into place: {exc.strerror or exc}") from None


@contextlib.contextmanager
def atomic_output(path) -> Iterator[Path]:
    """Yield the partial path for ``path``; rename it onto ``path`` on success.

    On an exception inside the block the partial file (if any) is deleted and
    the exception propagates; ``path`` itself is left untouched. OSErrors
    raised while writing become :class:`~frkit.errors.OutputError`.
    """
    final = Path(path)
    partial = partial_path(final)
    try:
        yield partial
    except OSError as exc:
        remove_quietly(partial)
        raise OutputError(f"{final}: cannot write: {exc.strerror or exc}") from exc
    except BaseException:
        remove_quietly(partial)
        raise
    if not partial.exists():
        raise OutputError(f"{final}: nothing was written")
    commit_partial(partial, final)


def save_npy_atomic(path, arr) -> None:
    """``numpy.save`` to ``path`` (exactly that name; no ``.npy`` appended)."""
    with atomic_output(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, np.asarray(arr), allow_pickle=False)


def save_npz_atomic(path, **arrays) -> None:
    """``numpy.savez`` (uncompressed) of ``arrays`` to ``path`` (exactly that name)."""
    with atomic_output(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)


def write_json_atomic(path, obj) -> None:
    """``obj`` as JSON, indent 2, UTF-8, with a trailing newline."""
    text = json.dumps(obj, indent=2, ensure_ascii=False) + "\n"
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def encode_png(image) -> bytes:
    """An 8-bit grayscale PNG of a 2-D ``uint8`` array (rows top to bottom).

    Minimal encoder: signature, IHDR (bit depth 8, colour type 0, no
    interlace), one IDAT (zlib of the rows, each prefixed with filter
    type 0), IEND.
    """
    img = np.asarray(image)
    if img.ndim != 2 or img.dtype != np.uint8:
        raise ValueError(f"PNG needs a 2-D uint8 array, got {img.dtype} {img.shape}")
    h, w = img.shape
    if h == 0 or w == 0:
        raise ValueError("PNG needs a non-empty image")
    raw = np.empty((h, w + 1), dtype=np.uint8)
    raw[:, 0] = 0
    raw[:, 1:] = img

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(raw.tobytes(), 6)) + chunk(b"IEND", b""))


def save_png_atomic(path, image) -> None:
    """Save a 2-D ``uint8`` array as an 8-bit grayscale PNG (see :func:`encode_png`)."""
    data = encode_png(image)
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)


def savemat_atomic(path, mdict: dict, *, do_compression: bool = False) -> None:
    """``scipy.io.savemat`` (MAT v5, ``long_field_names=True``) to ``path``."""
    from scipy.io import savemat

    with atomic_output(path) as tmp, open(tmp, "wb") as fh:
        savemat(fh, mdict, long_field_names=True, do_compression=do_compression)


def save_tiff_atomic(path, image) -> None:
    """An ``(H, W)`` or ``(H, W, C)`` image as one TIFF page (samples contiguous)."""
    import tifffile

    with atomic_output(path) as tmp:
        tifffile.imwrite(tmp, image, photometric="minisblack", planarconfig="contig" if image.shape[-1] > 1 else None)

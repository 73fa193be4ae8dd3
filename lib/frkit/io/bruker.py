"""Bruker Prairie View T-series: a folder of per-frame, per-channel OME-TIFFs.

Prairie View writes every frame of every channel to its own file,
``<name>_Cycle<ccccc>_Ch<k>_<nnnnnn>.ome.tif`` (cycle, channel, frame
within the cycle, all 1-based), plus ``<name>.xml`` describing the
acquisition: ``<Sequence cycle=..>`` elements holding ``<Frame index=..>``
elements, each listing its ``<File channel=.. filename=.. [page=..]/>``.

The recording is read in acquisition order -- cycle by cycle, frame by
frame -- with one channel per Prairie View channel, in channel-number
order:

- with the ``.xml``: the frames and files as it lists them (a ``page``
  attribute, where given, selects that page of a multi-page file);
- without it: from the file names (every cycle's frames ``1..n`` and every
  channel must be present).

Every file's OME metadata links all the others; tifffile follows those
links unless told not to, so each file is opened on its own
(``is_ome=False``), and tifffile's complaints about the empty MetaMorph
date tags Prairie View writes are silenced. A frame missing a channel, a
gap in the numbering, or a file that cannot be read is an InputError naming
the file.
"""

from __future__ import annotations

import contextlib
import re
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import tifffile

from ..errors import InputError
from .base import VideoReader, native_dtype, one_line
from .tiff import _log_error, _tifffile_log

__all__ = ["BrukerReader", "is_bruker_tseries", "BRUKER_NAME"]

#: ``<name>_Cycle00001_Ch1_000001.ome.tif``: name, cycle, channel, frame
BRUKER_NAME = re.compile(r"^(?P<name>.+)_Cycle(?P<cycle>\d+)_Ch(?P<ch>\d+)_(?P<frame>\d+)(?:\.ome)?\.tiff?$",
                         re.IGNORECASE)


def is_bruker_tseries(folder) -> bool:
    """True for a directory holding Prairie View per-frame files (``*_CycleNNNNN_ChK_NNNNNN.ome.tif``)."""
    p = Path(folder)
    return p.is_dir() and any(BRUKER_NAME.match(q.name) for q in p.iterdir())


@contextlib.contextmanager
def _quiet():
    """tifffile's log records and numpy warnings of a Prairie View file kept off stderr; yields the records."""
    with _tifffile_log() as records, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield records


def _read_page(path: Path, page: int) -> np.ndarray:
    """Page ``page`` (0-based) of one file, opened by itself (OME links not followed)."""
    with _quiet() as records:
        try:
            with tifffile.TiffFile(path, is_ome=False, is_stk=False) as tif:
                if page >= len(tif.pages):
                    raise InputError(f"{path}: has {len(tif.pages)} page(s); the T-series lists page {page + 1}")
                data = tif.pages[page].asarray()
        except InputError:
            raise
        except FileNotFoundError:
            raise InputError(f"{path}: no such file (listed in the T-series)") from None
        except Exception as exc:  # noqa: BLE001 - any tifffile failure: a damaged frame file
            raise InputError(f"{path}: cannot read this T-series frame ({one_line(exc)}); truncated or "
                             "corrupt file?") from exc
    err = _log_error(records)
    if err:
        raise InputError(f"{path}: corrupt or truncated TIFF ({err})")
    return data


def _frames_from_names(folder: Path) -> tuple[list[int], list[list[tuple[Path, int]]]]:
    """Channels and per-frame files from the file names (acquisition order: cycle, then frame)."""
    table: dict[tuple[int, int], dict[int, Path]] = {}
    names = set()
    for q in folder.iterdir():
        m = BRUKER_NAME.match(q.name)
        if m and q.is_file():
            names.add(m["name"])
            table.setdefault((int(m["cycle"]), int(m["frame"])), {})[int(m["ch"])] = q
    if len(names) > 1:
        raise InputError(f"{folder}: holds several T-series ({', '.join(sorted(names))}); give one folder each")
    channels = sorted({c for per in table.values() for c in per})
    keys = sorted(table)
    cycles = sorted({c for c, _ in keys})
    for a, b in zip(cycles, cycles[1:]):
        if b != a + 1:
            raise InputError(f"{folder}: T-series cycle {a + 1} is missing (cycles {cycles[0]}..{cycles[-1]})")
    for c in cycles:
        frames = sorted(f for cc, f in keys if cc == c)
        if frames != list(range(1, len(frames) + 1)):
            gap = next(i for i in range(1, frames[-1] + 1) if i not in frames)
            raise InputError(f"{folder}: T-series cycle {c} frame {gap} is missing (no file "
                             f"{next(iter(names))}_Cycle{c:05d}_Ch*_{gap:06d}.ome.tif)")
    _check_channels(folder, keys, table, channels, next(iter(names)))
    return channels, [[(table[k][c], 0) for c in channels] for k in keys]


def _check_channels(folder, keys, table, channels, name) -> None:
    for k in keys:
        missing = [c for c in channels if c not in table[k]]
        if missing:
            c = missing[0]
            raise InputError(f"{folder}: channel {c} is missing for cycle {k[0]} frame {k[1]} (no file "
                             f"{name}_Cycle{k[0]:05d}_Ch{c}_{k[1]:06d}.ome.tif)")


def _find_xml(folder: Path) -> Path | None:
    """The Prairie View ``.xml`` of the folder (the one whose root is ``PVScan``), or None."""
    for q in sorted(folder.glob("*.xml")):
        try:
            for _, elem in ET.iterparse(q, events=("start",)):
                return q if elem.tag == "PVScan" else None
        except ET.ParseError:
            continue
    return None


def _frames_from_xml(folder: Path, xml: Path) -> tuple[list[int], list[list[tuple[Path, int]]]]:
    """Channels and per-frame files as the Prairie View ``.xml`` lists them (streamed parse)."""
    rows: list[tuple[tuple[int, int], dict[int, tuple[Path, int]]]] = []
    cycle = 0
    try:
        for event, elem in ET.iterparse(xml, events=("start", "end")):
            if event == "start" and elem.tag == "Sequence":
                cycle = int(elem.get("cycle", cycle + 1))
            elif event == "end" and elem.tag == "Frame":
                files = {}
                for f in elem.iter("File"):
                    files[int(f.get("channel"))] = (folder / f.get("filename"), int(f.get("page", 1)) - 1)
                rows.append(((cycle, int(elem.get("index", len(rows) + 1))), files))
                elem.clear()
    except (ET.ParseError, TypeError, ValueError) as exc:
        raise InputError(f"{xml}: not a readable Prairie View file list ({one_line(exc)})") from None
    if not rows:
        raise InputError(f"{xml}: lists no frames")
    channels = sorted({c for _, files in rows for c in files})
    for (c, f), files in rows:
        missing = [ch for ch in channels if ch not in files]
        if missing:
            raise InputError(f"{xml}: channel {missing[0]} is missing for cycle {c} frame {f}")
        for path, _ in files.values():
            if not path.is_file():
                raise InputError(f"{path}: no such file (listed in {xml.name})")
    return channels, [[files[ch] for ch in channels] for _, files in rows]


class BrukerReader(VideoReader):
    """A Prairie View T-series folder as ``(T, H, W, C)`` (see the module docstring).

    Parameters:
        folder: the T-series directory.
        use_xml: follow the ``.xml`` file list where there is one (default);
            False reads the order from the file names only.
    """

    def __init__(self, folder, *, use_xml: bool = True):
        folder = Path(folder)
        xml = _find_xml(folder) if use_xml else None
        channels, frames = _frames_from_xml(folder, xml) if xml else _frames_from_names(folder)
        if not frames:
            raise InputError(f"{folder}: no Prairie View T-series files")
        first = _read_page(*frames[0][0])
        if first.ndim != 2:
            raise InputError(f"{frames[0][0][0]}: frame shape {first.shape}; expected one 2-D image per file")
        try:
            dtype = native_dtype(first.dtype)
        except ValueError:
            raise InputError(f"{frames[0][0][0]}: data type {first.dtype} is not supported") from None
        self._frames = frames
        how = f"order from {xml.name}" if xml else "order from file names"
        super().__init__(folder, (len(frames),) + first.shape + (len(channels),), dtype,
                         f"Prairie View T-series, channels {', '.join(f'Ch{c}' for c in channels)} ({how})")

    def _read(self, start: int, stop: int) -> np.ndarray:
        out = np.empty((stop - start,) + self.shape[1:], dtype=self.dtype)
        for i in range(start, stop):
            for c, (path, page) in enumerate(self._frames[i]):
                data = _read_page(path, page)
                if data.shape != self.shape[1:3] or native_dtype(data.dtype) != self.dtype:
                    raise InputError(f"{path}: frame is {data.shape} {data.dtype}, but the T-series is "
                                     f"{self.shape[1:3]} {self.dtype}")
                out[i - start, :, :, c] = data
        return out

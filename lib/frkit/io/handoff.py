"""Hand-on formats: the corrected video written for the tool that comes next.

``--output-format`` on fr-compensate, fr-reproject and fr-apply-flow writes
the corrected video once more, beside the tool's own output, in the layout
the next tool reads without conversion. The copy is made from the finished
video (a :class:`~frkit.io.VideoReader`), streamed a batch of frames at a
time, each file under a ``.partial`` name renamed when complete. The tool's
own output stays: fr-compensate's ``compensated.HDF5`` is the file every
later frkit stage reads.

=========  ===================================================================
format     what is written (``FOLDER``, ``STEM``: see :func:`handoff_outputs`)
=========  ===================================================================
tiff       ``STEM.tif``: BigTIFF with an ImageJ hyperstack description, axes
           TZCYX (Z = 1), one uncompressed page per frame and channel, so
           ImageJ/Fiji split channels and frames right. uint8, uint16 and
           float32 stay; other dtypes become float32 (ImageJ has no other
           pixel types). tifffile calls ImageJ + BigTIFF "nonconformant":
           ImageJ 1.x's own opener reads classic TIFF only; Fiji opens the
           file through Bio-Formats, which reads the ImageJ description.
suite2p    ``FOLDER/suite2p/plane0/``: ``data.bin`` (channel 1) and
           ``data_chan2.bin`` (channel 2): int16 frames ``(T, Ly, Lx)``,
           C order, no header -- suite2p's registered binary -- plus
           ``db.npy`` and ``settings.npy`` (suite2p >= 1.0) and ``ops.npy``
           (suite2p < 1.0), ``do_registration = 0``. uint16 frames are
           halved (``// 2``) as suite2p does when it converts a TIFF; others
           are rounded and clipped to int16. Run suite2p with
           ``db = {"save_path0": FOLDER, "data_path": [FOLDER]}`` and
           ``settings["run"]["do_registration"] = 0``: it finds the binaries
           and goes straight to cell detection. At most 2 channels.
caiman     ``FOLDER/STEM_d1_H_d2_W_d3_1_order_F_frames_T.mmap`` (one per
           channel, ``STEM_chN_...`` when there are several): float32,
           Fortran order, CaImAn's naming, the layout of the memory map its
           own motion correction writes; ``caiman.load_memmap`` reads it,
           and CaImAn's CNMF pipeline takes it like its own motion-corrected
           movie (``cm.save_memmap([file], order='C')`` first, as there).
nwb        ``FOLDER/STEM.nwb`` (:mod:`frkit.io.nwb_out`, needs ``frkit[nwb]``).
=========  ===================================================================
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .. import layout
from ..errors import InputError, OptionError, OutputError
from .atomic import atomic_output, commit_partial, partial_path, remove_quietly
from .base import VideoReader

__all__ = ["FORMATS", "handoff_outputs", "check_handoff", "export_video", "caiman_name", "to_suite2p_int16", "open_handoff"]

FORMATS = layout.HANDOFF_FORMATS
#: frames per batch when copying
BATCH = 64
SUITE2P_PLANE, SUITE2P_BINARIES, SUITE2P_RECORDS = layout.SUITE2P_PLANE, layout.SUITE2P_BINARIES, layout.SUITE2P_RECORDS
#: suite2p results that would be stale next to new binaries
SUITE2P_RESULTS = ("stat.npy", "F.npy", "Fneu.npy", "F_chan2.npy", "Fneu_chan2.npy", "spks.npy", "iscell.npy",
                   "redcell.npy", "detect_outputs.npy", "reg_outputs.npy")
#: ImageJ pixel types
IMAGEJ_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32))
_CAIMAN_NAME = re.compile(r"_d1_(\d+)_d2_(\d+)_d3_(\d+)_order_([CF])_frames_(\d+)_?\.mmap$")
caiman_name = layout.caiman_name
handoff_outputs = layout.handoff_outputs


def _channel_stem(stem: str, c: int, n_ch: int) -> str:
    return stem if n_ch == 1 else f"{stem}_ch{c + 1}"


def check_handoff(params, source, shape) -> None:
    """Refuse, before any work, a hand-on request that cannot be written for a ``(T, H, W, C)`` video from
    ``source``: more than 2 channels for suite2p; for NWB, pynwb missing, no frame rate for a new file, an
    unreadable session template."""
    if params.output_format == "suite2p" and shape[3] > 2:
        raise OptionError(f"--output-format suite2p: suite2p reads at most 2 channels; {source} has {shape[3]}")
    if params.output_format != "nwb":
        return
    from .nwb_out import load_template, require_pynwb

    require_pynwb()
    load_template(params.nwb_template)
    if not params.frame_rate and Path(source).suffix.lower() != ".nwb":
        raise OptionError("--output-format nwb needs --frame-rate (frames per second) unless the input is NWB")


def export_video(reader: VideoReader, fmt: str, folder, stem: str, *, rate: float | None = None,
                 source=None, translation: np.ndarray | None = None, extras: dict | None = None,
                 metadata=None) -> list[str]:
    """Copy ``reader``'s video into ``folder`` in the hand-on format ``fmt``; returns the files written.

    ``rate`` (frames/s) goes into ImageJ's ``fps``, suite2p's ``fs`` and
    the NWB series; ``source`` is the recording the video was corrected
    from, ``translation`` the per-frame mean flow ``(T, 2)`` (u, v),
    ``extras`` more videos (flow fields, valid masks) and ``metadata`` a
    session template file, for NWB (:func:`frkit.io.nwb_out.write_nwb`).
    """
    folder = Path(folder)
    if fmt == "hdf5":
        return []
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{folder}: cannot create folder ({exc.strerror})") from None
    if fmt == "tiff":
        return [str(_write_imagej_tiff(reader, folder / f"{stem}.tif", rate))]
    if fmt == "suite2p":
        return _write_suite2p(reader, folder, rate)
    if fmt == "caiman":
        return _write_caiman(reader, folder, stem)
    if fmt == "nwb":
        from .nwb_out import write_nwb

        return [str(write_nwb(reader, folder / f"{stem}.nwb", rate=rate, source=source, translation=translation,
                              extras=extras or {}, metadata=metadata))]
    raise OptionError(f"unknown output format {fmt!r} (use {', '.join(FORMATS)})")


def _batches(reader: VideoReader):
    t = reader.shape[0]
    for a in range(0, t, BATCH):
        yield reader.read(a, min(t, a + BATCH))


# -- tiff ---------------------------------------------------------------------------------------------------------

def _write_channel_streams(reader: VideoReader, paths: list[Path], encode, *, where: Path) -> None:
    """Stream channel ``k`` of every batch, encoded by ``encode((t, H, W)) -> bytes``, to ``paths[k]``.

    Each file is written under its ``.partial`` name and renamed only when
    every channel is complete; on any failure none of them is left behind.
    """
    handles = []
    try:
        handles = [open(partial_path(p), "wb") for p in paths]
        for frames in _batches(reader):
            for k, fh in enumerate(handles):
                fh.write(encode(frames[..., k]))
        for fh in handles:
            fh.close()
        for p in paths:
            commit_partial(partial_path(p), p)
    except OSError as exc:
        raise OutputError(f"{where}: cannot write: {exc.strerror or exc}") from None
    finally:
        for fh, p in zip(handles, paths):
            fh.close()
            remove_quietly(partial_path(p))


def _write_imagej_tiff(reader: VideoReader, path: Path, rate) -> Path:
    import warnings

    import tifffile

    t, h, w, c = reader.shape
    dtype = np.dtype(reader.dtype)
    dtype = dtype if dtype in IMAGEJ_DTYPES else np.dtype(np.float32)

    def pages():  # TZCYX order: for each frame, its channels
        for frames in _batches(reader):
            for frame in frames:
                for k in range(c):
                    yield np.ascontiguousarray(frame[..., k], dtype=dtype)

    metadata = {"axes": "TZCYX"}
    if rate:
        metadata["fps"] = float(rate)
        metadata["finterval"] = 1.0 / float(rate)
    with atomic_output(path) as tmp, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*nonconformant BigTIFF ImageJ.*")
        with tifffile.TiffWriter(tmp, bigtiff=True, imagej=True) as tw:
            tw.write(pages(), shape=(t, 1, c, h, w), dtype=dtype, photometric="minisblack", metadata=metadata)
    return path


# -- suite2p ------------------------------------------------------------------------------------------------------

def to_suite2p_int16(frames: np.ndarray) -> np.ndarray:
    """suite2p's int16: uint16 halved (as suite2p converts TIFFs), else rounded and clipped."""
    a = np.asarray(frames)
    if a.dtype == np.uint16:
        return (a // 2).astype(np.int16)
    if a.dtype.kind == "f":
        a = np.rint(a)
    return np.clip(a, -32768, 32767).astype(np.int16)


def _suite2p_records(folder: Path, plane: Path, shape, rate) -> dict:
    t, h, w, c = shape
    fs = float(rate) if rate else 10.0  # suite2p's own default
    db = {"data_path": [str(folder)], "save_path0": str(folder), "save_folder": SUITE2P_PLANE[0],
          "save_path": str(plane), "fast_disk": str(plane), "db_path": str(plane / "db.npy"),
          "settings_path": str(plane / "settings.npy"), "reg_file": str(plane / SUITE2P_BINARIES[0]),
          "nplanes": 1, "iplane": 0, "nchannels": c, "functional_chan": 1, "keep_movie_raw": False,
          "input_format": "binary", "nframes": t, "Ly": h, "Lx": w}
    if c > 1:
        db["reg_file_chan2"] = str(plane / SUITE2P_BINARIES[1])
    settings = {"fs": fs, "run": {"do_registration": 0}}
    ops = {**db, "fs": fs, "do_registration": 0, "align_by_chan": 1, "yrange": [0, h], "xrange": [0, w],
           "frkit_int16": "uint16 halved, other types rounded and clipped"}
    return {"db.npy": db, "settings.npy": settings, "ops.npy": ops}


def _write_suite2p(reader: VideoReader, folder: Path, rate) -> list[str]:
    t, h, w, c = reader.shape
    if c > 2:
        raise OutputError(f"{folder}: suite2p reads at most 2 channels; the video has {c}")
    plane = folder.joinpath(*SUITE2P_PLANE)
    try:
        plane.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{plane}: cannot create folder ({exc.strerror})") from None
    for name in SUITE2P_RECORDS + SUITE2P_RESULTS + SUITE2P_BINARIES:  # the old set goes first, records first
        remove_quietly(plane / name)
    bins = [plane / n for n in SUITE2P_BINARIES[:c]]
    _write_channel_streams(reader, bins, lambda frames: to_suite2p_int16(frames).tobytes(), where=plane)
    for name, record in _suite2p_records(folder, plane, reader.shape, rate).items():
        with atomic_output(plane / name) as tmp, open(tmp, "wb") as fh:
            np.save(fh, np.array(record, dtype=object), allow_pickle=True)
    return [str(p) for p in bins] + [str(plane / n) for n in SUITE2P_RECORDS]


# -- caiman -------------------------------------------------------------------------------------------------------

def _write_caiman(reader: VideoReader, folder: Path, stem: str) -> list[str]:
    t, h, w, c = reader.shape
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(f"{stem}*_d1_*_order_*_frames_*.mmap"):  # a stale copy of another length
        if _CAIMAN_NAME.search(old.name):
            remove_quietly(old)
    paths = [folder / caiman_name(_channel_stem(stem, k, c), h, w, t) for k in range(c)]
    # Fortran order: each frame is stored column by column (pixel index y + H * x)
    _write_channel_streams(reader, paths,
                           lambda frames: np.ascontiguousarray(frames.transpose(0, 2, 1), dtype="<f4").tobytes(),
                           where=folder)
    return [str(p) for p in paths]


# -- reading them back (fr-average reads every format frkit writes) ------------------------------------------------

class _RawFramesReader(VideoReader):
    """Frames stored back to back without a header: ``(T, H, W)`` C order, or Fortran-ordered frames."""

    def __init__(self, path, shape, dtype, description: str, fortran: bool):
        super().__init__(path, shape, dtype, description)
        t, h, w, _ = self.shape
        size = Path(path).stat().st_size
        need = t * h * w * np.dtype(dtype).itemsize
        if size != need:
            raise InputError(f"{path}: {size} bytes, {t} frames of {h}x{w} {np.dtype(dtype)} need {need} "
                             "(truncated or not this layout)")
        stored = (t, w, h) if fortran else (t, h, w)
        self._map = np.memmap(path, dtype=dtype, mode="r", shape=stored)
        self._fortran = fortran

    def _read(self, start, stop):
        block = self._map[start:stop]
        return (block.transpose(0, 2, 1) if self._fortran else block)[..., None]

    def _close(self):
        self._map = None


def _suite2p_reader(path: Path) -> VideoReader:
    db = None
    for name in SUITE2P_RECORDS:
        rec = path.parent / name
        if rec.is_file():
            try:
                db = np.load(rec, allow_pickle=True).item()
            except Exception as exc:  # noqa: BLE001 - any damage is the same to the user
                raise InputError(f"{rec}: cannot read suite2p's settings: {exc}") from None
            if all(k in db for k in ("Ly", "Lx")):
                break
    if db is None or not all(k in db for k in ("Ly", "Lx")):
        raise InputError(f"{path}: a suite2p binary needs db.npy or ops.npy with Ly and Lx beside it")
    h, w = int(db["Ly"]), int(db["Lx"])
    t = path.stat().st_size // (2 * h * w)
    if "nframes" in db and int(db["nframes"]) != t:
        raise InputError(f"{path}: holds {t} frames, suite2p's settings say {int(db['nframes'])} (truncated?)")
    return _RawFramesReader(path, (t, h, w, 1), np.int16, "suite2p binary int16 (T,Ly,Lx)", fortran=False)


def _caiman_reader(path: Path) -> VideoReader:
    m = _CAIMAN_NAME.search(path.name)
    if m is None:
        raise InputError(f"{path}: not a CaImAn memory map name (..._d1_H_d2_W_d3_1_order_F_frames_T.mmap)")
    h, w, d3, order, t = int(m[1]), int(m[2]), int(m[3]), m[4], int(m[5])
    if d3 != 1:
        raise InputError(f"{path}: 3-D CaImAn volumes (d3 = {d3}) are not supported")
    if order != "F":
        # C order stores each pixel's time course contiguously: reading a frame touches the whole file
        raise InputError(f"{path}: C-order CaImAn memory maps are not read; frkit reads the F-order ones it writes")
    return _RawFramesReader(path, (t, h, w, 1), np.float32, "CaImAn memory map float32 order F", fortran=True)


def open_handoff(path) -> VideoReader | None:
    """A reader for a hand-on file frkit writes that the general readers do not know, else None.

    suite2p binaries (``*.bin`` with ``db.npy``/``ops.npy`` beside) and CaImAn
    memory maps (``*.mmap``); NWB files holding frkit's ``MotionCorrection``:
    :func:`frkit.io.nwb_out.open_nwb` (other NWB files: :mod:`frkit.io.nwb`).
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".bin":
        return _suite2p_reader(p)
    if suffix == ".mmap":
        return _caiman_reader(p)
    if suffix == ".nwb":
        from .nwb_out import open_nwb

        return open_nwb(p)  # None unless frkit's MotionCorrection layout: the general NWB reader takes it
    return None

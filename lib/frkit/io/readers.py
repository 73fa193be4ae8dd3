"""Opening video files by extension, and loading single images.

=====================  ==========================================================
extension (any case)   reader
=====================  ==========================================================
.tif .tiff .btf .tf8   :class:`~frkit.io.tiff.TiffReader`
.h5 .hdf5 .hdf         :class:`~frkit.io.hdf5.Hdf5Reader`
.mat                   MAT v7.3 (an HDF5 file) -> ``Hdf5Reader(matlab=True)``,
                       otherwise MAT v5 -> :class:`~frkit.io.mat.MatV5Reader`
.nwb                   its TwoPhotonSeries/OnePhotonSeries (:mod:`~frkit.io.nwb`)
.sbx                   Scanbox raw file + its .mat header (:mod:`~frkit.io.sbx`)
anything else          HDF5 if ``h5py.is_hdf5``, TIFF if it starts with a TIFF
                       signature, else InputError "unsupported file format"
=====================  ==========================================================
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from ..errors import InputError, OptionError
from .base import DeinterleavedReader, VideoReader, check_deinterleave, check_file, one_line  # noqa: F401
from .bruker import BRUKER_NAME, BrukerReader, is_bruker_tseries
from .multifile import ConcatenatedReader, expand_inputs, natural_key
from .scanimage import ScanImageReader, UncompressedOnly, is_scanimage
from .hdf5 import Hdf5Reader, is_matlab_v73
from .mat import MatV5Reader
from .tiff import TiffReader

__all__ = ["TIFF_SUFFIXES", "HDF5_SUFFIXES", "MAT_SUFFIXES", "check_file", "load_image", "open_video",
           "recording_files"]

TIFF_SUFFIXES = (".tif", ".tiff", ".btf", ".tf8", ".tf2")
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf")
MAT_SUFFIXES = (".mat",)

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def _is_hdf5(p: Path) -> bool:
    try:
        return bool(h5py.is_hdf5(p))
    except Exception:  # noqa: BLE001 - unreadable: not HDF5 as far as dispatch is concerned
        return False


def _is_tiff(p: Path) -> bool:
    with open(p, "rb") as fh:
        return fh.read(4) in _TIFF_MAGIC


def _format(p: Path) -> str:
    """``'tiff'``, ``'hdf5'``, ``'mat73'`` or ``'mat5'`` for ``p`` (InputError otherwise)."""
    suffix = p.suffix.lower()
    if suffix in TIFF_SUFFIXES:
        return "tiff"
    if suffix == ".sbx":
        return "sbx"
    if suffix == ".nwb":
        if not _is_hdf5(p):
            raise InputError(f"{p}: not an NWB (HDF5) file (no HDF5 signature)")
        return "nwb"
    if suffix in HDF5_SUFFIXES:
        if not _is_hdf5(p):
            raise InputError(f"{p}: not an HDF5 file (no HDF5 signature)")
        return "mat73" if is_matlab_v73(p) else "hdf5"
    if suffix in MAT_SUFFIXES:
        return "mat73" if _is_hdf5(p) else "mat5"
    if _is_hdf5(p):
        return "mat73" if is_matlab_v73(p) else "hdf5"
    if _is_tiff(p):
        return "tiff"
    raise InputError(f"{p}: unsupported file format (expected TIFF .tif/.tiff, HDF5 .h5/.hdf5/.hdf "
                     "or MATLAB .mat)")


def recording_files(path) -> list[Path]:
    """Every file an INPUT (a file, directory, glob or several of them) reads, in recording order.

    A Prairie View T-series folder gives its frame files (and its ``.xml``);
    other inputs as :func:`frkit.io.multifile.expand_inputs`. Used for the
    record of the input and for staleness (Make dependencies).
    """
    if isinstance(path, (str, Path)) and is_bruker_tseries(path):
        return sorted((q for q in Path(path).iterdir() if q.is_file() and (
            BRUKER_NAME.match(q.name) or q.suffix.lower() == ".xml")), key=natural_key)
    return expand_inputs(path)


def open_video(path, *, axes: str | None = None, datasets: list[str] | None = None,
               deinterleave: int = 1, plane: int | None = None) -> VideoReader:
    """Open a recording for reading frames as ``(T, H, W, C)``.

    Parameters:
        path: a TIFF, HDF5 or MAT file (dispatch by extension, see the module
            docstring); or a recording of several files: a directory, a glob
            pattern or a list of paths, read in natural order as one video
            (:mod:`frkit.io.multifile`; ``axes``, ``datasets`` and
            ``deinterleave`` apply to each file); or a Bruker Prairie View
            T-series folder (:mod:`frkit.io.bruker`).
        axes: stored axis order, letters ``T Z H/Y W/X C`` (e.g. ``'HWT'``,
            ``'TCYX'``); for HDF5 in h5py's (C-order) view, for MAT files in
            MATLAB's view, for TIFF a renaming of tifffile's series axes.
            Default: ``THW``/``THWC`` (HDF5), ``HWT``/``HWCT`` (MAT), the
            file's metadata (TIFF).
        datasets: HDF5 dataset paths / MAT variable names: one, or several
            3-D ones that are one channel each. Default: auto-discovery.
            Not applicable to TIFF (OptionError).
        deinterleave: ``N > 1``: every ``N`` consecutive single-channel
            frames (TIFF pages) form one ``N``-channel frame.
        plane: ScanImage multi-plane recordings: the 0-based z plane to
            read (:mod:`frkit.io.scanimage`; channels, planes and flyback
            frames come from its metadata). Not applicable elsewhere.

    Returns:
        A :class:`~frkit.io.base.VideoReader` (a context manager).

    Raises:
        InputError: missing, empty, unreadable, truncated or corrupt file;
            no or ambiguous video data; layout that does not fit ``axes``.
            The message is one line and names the file.
        OptionError: options that do not apply.
    """
    n = check_deinterleave(deinterleave)
    if axes is not None and not str(axes).strip():
        axes = None
    if isinstance(path, (list, tuple)) and len(path) == 1:
        path = path[0]
    if isinstance(path, (str, Path)) and is_bruker_tseries(path):
        if axes is not None or datasets or n > 1:
            raise OptionError(f"{path}: --axes, --dataset and --deinterleave do not apply to a Prairie View "
                              "T-series (channels come from its files)")
        return BrukerReader(path)
    files = expand_inputs(path)
    if axes is None and n == 1 and files[0].suffix.lower() in TIFF_SUFFIXES and is_scanimage(files[0]):
        try:
            return ScanImageReader(files, plane=plane)
        except UncompressedOnly:
            pass  # compressed or multi-sample pages: the general TIFF reader below
    if plane is not None:
        raise OptionError(f"{files[0]}: --plane applies to ScanImage TIFF recordings (without --axes and "
                          "--deinterleave)")
    if len(files) > 1:
        where = path if isinstance(path, (str, Path)) else files[0].parent
        return ConcatenatedReader(files, lambda f: _open_file(f, axes, datasets, n), where)
    return _open_file(files[0], axes, datasets, n)


def _open_file(path, axes, datasets, n: int) -> VideoReader:
    """One file as :func:`open_video` opens it (``n``: the checked deinterleave count)."""
    p = check_file(path)
    from .handoff import open_handoff  # suite2p binaries, CaImAn memory maps, frkit's NWB: what frkit hands on

    handoff = open_handoff(p) if axes is None and not datasets else None
    if handoff is not None:
        return handoff
    fmt = _format(p)
    if isinstance(datasets, str):
        datasets = [datasets]
    if datasets is not None and not len(datasets):
        datasets = None
    if fmt == "tiff":
        if datasets is not None:
            raise OptionError(f"{p}: --dataset applies to HDF5 and MAT files, not TIFF")
        return TiffReader(p, axes=axes, deinterleave=n)
    if fmt == "sbx":
        if axes is not None or datasets is not None:
            raise OptionError(f"{p}: --axes and --dataset do not apply to a Scanbox .sbx file")
        from .sbx import SbxReader

        reader: VideoReader = SbxReader(p)
    elif fmt == "nwb":
        from .nwb import open_nwb

        reader = open_nwb(p, axes=axes, datasets=datasets)
    elif fmt == "hdf5":
        reader = Hdf5Reader(p, axes=axes, datasets=datasets)
    elif fmt == "mat73":
        reader = Hdf5Reader(p, axes=axes, datasets=datasets, matlab=True)
    else:
        reader = MatV5Reader(p, axes=axes, datasets=datasets)
    return DeinterleavedReader(reader, n) if n > 1 else reader


# ---------------------------------------------------------------------------
# single images

_IMAGE_NAMES = ("reference", "reference_frame", "ref", "template", "image", "img", "mean", "average")


def load_image(path) -> np.ndarray:
    """A single image (e.g. a reference frame) as ``(H, W)`` or ``(H, W, C)``.

    - ``.npy``: the array as saved (2-D, or 3-D with channels last).
    - ``.npz``: its only array (or one named like a reference image).
    - TIFF: the first series; ``(C, Y, X)`` ImageJ/planar layouts are moved
      to channels last; a leading axis of length 1 is dropped.
    - ``.png`` / ``.jpg``: via scikit-image.
    - HDF5 / MAT: a single 2-D or 3-D (channels last; MATLAB ``H x W x C``)
      numeric dataset/variable, or one named ``reference``, ``ref``,
      ``image``, ``mean``, ...

    Values keep their stored type (native byte order). Raises InputError
    for missing or unusable files.
    """
    p = check_file(path, "image")
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            arr = np.load(p, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                arr = _pick_named(p, {k: z[k] for k in z.files})
        elif suffix in (".png", ".jpg", ".jpeg", ".bmp", ".gif"):
            from skimage import io as skio

            arr = np.asarray(skio.imread(p))
        else:
            fmt = _format(p)
            if fmt == "tiff":
                arr = _load_tiff_image(p)
            elif fmt in ("hdf5", "mat73"):
                arr = _load_h5_image(p, matlab=fmt == "mat73")
            else:
                arr = _load_mat5_image(p)
    except InputError:
        raise
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"{p}: cannot read image: {one_line(exc)}") from exc
    arr = np.asarray(arr)
    if arr.dtype.kind == "b":
        arr = arr.astype(np.uint8)
    if arr.dtype.kind not in "iuf":
        raise InputError(f"{p}: image data type {arr.dtype} is not numeric")
    while arr.ndim > 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim not in (2, 3):
        raise InputError(f"{p}: image has shape {arr.shape}; expected (H, W) or (H, W, C)")
    return np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("="))


def _pick_named(p: Path, arrays: dict) -> np.ndarray:
    usable = {k: v for k, v in arrays.items() if np.asarray(v).ndim in (2, 3)}
    for name in _IMAGE_NAMES:
        for k in usable:
            if k.rpartition("/")[2].lower() == name:
                return usable[k]
    if len(usable) == 1:
        return next(iter(usable.values()))
    if not usable:
        raise InputError(f"{p}: no 2-D or 3-D image found")
    raise InputError(f"{p}: several images ({', '.join(usable)}); expected one")


def _load_tiff_image(p: Path) -> np.ndarray:
    import tifffile

    with tifffile.TiffFile(p) as tif:
        s = tif.series[0]
        arr = s.asarray()
        axes = s.axes
    if arr.ndim == 3 and axes[0] in "CS" and axes.endswith("YX"):
        arr = np.moveaxis(arr, 0, -1)
    return arr


def _load_h5_image(p: Path, *, matlab: bool) -> np.ndarray:
    from .hdf5 import MATLAB_NUMERIC_CLASSES, _matlab_class

    found = {}
    with h5py.File(p, "r", locking=False) as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and obj.ndim in (2, 3) and obj.dtype.kind in "biuf":
                if matlab and (name.startswith("#") or _matlab_class(obj) not in MATLAB_NUMERIC_CLASSES):
                    return
                found[name] = obj

        f.visititems(visit)
        if not found:
            raise InputError(f"{p}: no 2-D or 3-D image dataset found")
        name = _choose_name(p, list(found))
        arr = found[name][()]
    if matlab:
        arr = arr.T  # MATLAB H x W (x C) appears reversed in h5py
    return arr


def _load_mat5_image(p: Path) -> np.ndarray:
    from .mat import MatArray, MatV5File

    with open(p, "rb") as fh:
        mat = MatV5File(p, fh)
        found = {v.name: v for v in mat.variables if v.numeric and len(v.dims) in (2, 3)}
        if not found:
            raise InputError(f"{p}: no 2-D or 3-D numeric variable found")
        var = found[_choose_name(p, list(found))]
        arr = MatArray(mat, var)
        try:
            data = np.array(arr[(slice(None),) * len(arr.shape)], dtype=var.dtype)
        finally:
            arr.close()
    return data.T  # column-major H x W (x C)


def _choose_name(p: Path, names: list[str]) -> str:
    for want in _IMAGE_NAMES:
        for n in names:
            if n.rpartition("/")[2].lower() == want:
                return n
    if len(names) == 1:
        return names[0]
    raise InputError(f"{p}: several images ({', '.join(names)}); expected one")

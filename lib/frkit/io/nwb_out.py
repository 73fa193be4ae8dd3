"""The corrected video as NWB (Neurodata Without Borders), written with pynwb.

Layout (``processing/ophys``, the NWB ophys convention for motion correction)::

    processing/ophys/MotionCorrection/CorrectedImageStack[_chN]/
        corrected       TwoPhotonSeries, data (T, rows, columns) as compensated.HDF5 holds it
                        (the order suite2p reads and writes), one per channel
        original        link to the raw series: the input's TwoPhotonSeries when the input was
                        NWB (then the file is a copy of the input with this module added), else
                        acquisition/original, an ImageSeries pointing to the input file
                        (external_file, path relative to the NWB file)
        xy_translation  TimeSeries (T, 2): the frame's mean flow (u = x, columns; v = y, rows),
                        pixels -- the displacement sampled to correct it
    processing/ophys/flow_u, flow_v   ImageSeries (T, rows, columns), pixels (when requested)
    processing/ophys/valid_mask       ImageSeries (T, rows, columns), uint8 255 = in view

Every video is streamed into the file with hdmf's ``DataChunkIterator``
(one frame per HDF5 chunk), so no whole movie is ever in memory; the file is
written as ``<name>.partial`` and renamed when complete.

Session metadata: a new file takes ``session_start_time`` from the input
file's modification time and a generic description unless a template (TOML
or JSON) gives them; the template may also hold ``[subject]``, ``[device]``,
``[imaging_plane]`` and ``[optical_channel]`` tables and the NWBFile fields
``session_description``, ``identifier``, ``session_id``, ``experimenter``,
``lab``, ``institution``, ``experiment_description``, ``keywords``.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..errors import InputError, OptionError, OutputError
from .atomic import commit_partial, partial_path, remove_quietly

__all__ = ["write_nwb", "open_nwb", "load_template", "require_pynwb", "MODULE", "MOTION_CORRECTION"]

MODULE = "ophys"
MOTION_CORRECTION = "MotionCorrection"
STACK = "CorrectedImageStack"
NWB_FIELDS = ("session_description", "identifier", "session_id", "experimenter", "lab", "institution",
              "experiment_description", "keywords")
BATCH = 64


def require_pynwb():
    try:
        import pynwb
    except ImportError:
        raise OptionError("--output-format nwb needs pynwb: pip install 'frkit[nwb]'") from None
    return pynwb


def load_template(path) -> dict:
    """The session template (TOML or JSON) as a dict; {} for None."""
    if path is None:
        return {}
    import tomllib

    p = Path(path)
    try:
        text = p.read_text()
        return tomllib.loads(text) if p.suffix.lower() == ".toml" else json.loads(text)
    except FileNotFoundError:
        raise InputError(f"{p}: no such file (NWB session template)") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{p}: cannot read the NWB session template: {str(exc).splitlines()[0]}") from None


def _frames(reader, k: int):
    """Channel ``k`` of ``reader``, one ``(H, W)`` frame at a time, read in batches."""
    t = reader.shape[0]
    for a in range(0, t, BATCH):
        for frame in reader.read(a, min(t, a + BATCH)):
            yield np.ascontiguousarray(frame[..., k])


def _streamed(reader, k: int):
    from hdmf.backends.hdf5.h5_utils import H5DataIO
    from hdmf.data_utils import DataChunkIterator

    t, h, w, _ = reader.shape
    it = DataChunkIterator(data=_frames(reader, k), maxshape=(t, h, w), dtype=np.dtype(reader.dtype),
                           buffer_size=BATCH)
    return H5DataIO(it, chunks=(1, h, w))


def _new_file(pynwb, template: dict, source):
    fields = {k: template[k] for k in NWB_FIELDS if k in template}
    start = template.get("session_start_time")
    if start is not None:
        start = start if isinstance(start, datetime) else datetime.fromisoformat(str(start))
    elif source is not None and Path(source).exists():
        start = datetime.fromtimestamp(Path(source).stat().st_mtime, tz=timezone.utc)
    else:
        start = datetime.now(timezone.utc)
    if start.tzinfo is None:
        start = start.replace(tzinfo=timezone.utc)
    fields.setdefault("session_description", "Two-photon recording, motion-corrected with frkit "
                                             "(Flow-Registration variational optical flow)")
    fields.setdefault("identifier", str(uuid.uuid4()))
    if isinstance(fields.get("experimenter"), str):
        fields["experimenter"] = [fields["experimenter"]]
    nwb = pynwb.NWBFile(session_start_time=start, **fields)
    if "subject" in template:
        nwb.subject = pynwb.file.Subject(**template["subject"])
    return nwb


def _imaging_planes(pynwb, nwb, template: dict, n_ch: int, rate: float):
    from pynwb.ophys import OpticalChannel

    dev = {"name": "Microscope", "description": "two-photon microscope", **template.get("device", {})}
    device = nwb.devices.get(dev["name"]) or nwb.create_device(**dev)
    planes = []
    for k in range(n_ch):
        oc = {"name": f"OpticalChannel{k + 1}", "description": f"channel {k + 1}", "emission_lambda": float("nan"),
              **template.get("optical_channel", {})}
        ip = {"name": f"ImagingPlane{k + 1}" if n_ch > 1 else "ImagingPlane", "description": "imaging plane",
              "excitation_lambda": float("nan"), "indicator": "unknown", "location": "unknown",
              "imaging_rate": rate, **template.get("imaging_plane", {})}
        planes.append(nwb.create_imaging_plane(optical_channel=OpticalChannel(**oc), device=device, **ip))
    return planes


def _external_original(pynwb, nwb, source, path: Path, shape, rate: float):
    from pynwb.image import ImageSeries

    rel = os.path.relpath(Path(source).resolve(), path.resolve().parent)
    kw = dict(name="original", description=f"the raw recording ({Path(source).name}), not copied", unit="n.a.",
              external_file=[rel], format="external", starting_frame=[0], rate=rate, dimension=list(shape[1:3]))
    try:  # pynwb >= 4 wants the frame count of an external file
        series = ImageSeries(num_samples=int(shape[0]), **kw)
    except TypeError:
        series = ImageSeries(**kw)
    nwb.add_acquisition(series)
    return series


def _input_series(nwb, source):
    from pynwb.ophys import TwoPhotonSeries

    found = [s for s in nwb.acquisition.values() if isinstance(s, TwoPhotonSeries)]
    if not found:
        raise InputError(f"{source}: no TwoPhotonSeries in acquisition to link as the original")
    return found[0]


def write_nwb(reader, path, *, rate: float | None = None, source=None, translation=None, extras=None,
              metadata=None) -> Path:
    """Write ``reader``'s corrected video to ``path`` (see the module docstring); returns ``path``.

    ``source``: the raw recording (an ``.nwb`` input makes the output a copy
    of it); ``translation``: ``(T, 2)`` mean flow per frame; ``extras``:
    name -> reader of more videos (``flow`` with channels u, v; ``valid_mask``);
    ``metadata``: a template file (TOML/JSON).
    """
    pynwb = require_pynwb()
    from pynwb.base import TimeSeries
    from pynwb.image import ImageSeries
    from pynwb.ophys import CorrectedImageStack, MotionCorrection, TwoPhotonSeries

    path = Path(path)
    t, h, w, c = reader.shape
    template = load_template(metadata)
    from_nwb = source is not None and Path(source).suffix.lower() == ".nwb"
    tmp = partial_path(path)
    remove_quietly(tmp)
    warnings.filterwarnings("ignore", message=".*does not end in '.nwb'.*")  # the .partial name, renamed at the end
    try:
        if from_nwb:
            shutil.copyfile(source, tmp)
            io = pynwb.NWBHDF5IO(str(tmp), "a")
            nwb = io.read()
            original = _input_series(nwb, source)
            rate = rate or original.rate
            if rate is None:
                raise OptionError(f"{source}: its TwoPhotonSeries has timestamps, not a rate; give --frame-rate")
            planes = [original.imaging_plane] * c
        else:
            if not rate:
                raise OptionError("--output-format nwb needs --frame-rate (frames per second)")
            io = pynwb.NWBHDF5IO(str(tmp), "w")
            nwb = _new_file(pynwb, template, source)
            planes = _imaging_planes(pynwb, nwb, template, c, rate)
            original = _external_original(pynwb, nwb, source, path, reader.shape, rate) if source else None
        module = nwb.processing.get(MODULE) or nwb.create_processing_module(MODULE, "optical physiology processing")
        if original is None:
            raise OptionError("NWB output needs the raw recording it was corrected from")
        if translation is None:
            translation = np.zeros((t, 2))
        stacks = []
        for k in range(c):
            name = STACK if c == 1 else f"{STACK}_ch{k + 1}"
            corrected = TwoPhotonSeries(name="corrected", data=_streamed(reader, k), imaging_plane=planes[k],
                                        rate=float(rate), unit="n.a.", dimension=[h, w],
                                        description=f"motion-corrected (frkit), channel {k + 1}")
            xy = TimeSeries(name="xy_translation", data=np.asarray(translation, dtype=np.float64), unit="pixels",
                            rate=float(rate), description="mean backward flow of each frame: u (x, columns), "
                            "v (y, rows)")
            stacks.append(CorrectedImageStack(name=name, corrected=corrected, original=original, xy_translation=xy))
        mc_name = MOTION_CORRECTION if MOTION_CORRECTION not in module.data_interfaces else "MotionCorrectionFrkit"
        module.add(MotionCorrection(name=mc_name, corrected_image_stacks=stacks))
        for name, extra in (extras or {}).items():
            names = [f"{name}_{x}" for x in ("u", "v")] if extra.shape[3] == 2 else [name]
            for k, series_name in enumerate(names):
                module.add(ImageSeries(name=series_name, data=_streamed(extra, k), rate=float(rate),
                                       unit="pixels" if extra.shape[3] == 2 else "n.a.",
                                       description=f"frkit {name} (T, rows, columns)"))
        try:
            io.write(nwb)
        finally:
            io.close()
    except BaseException as exc:
        remove_quietly(tmp)
        if isinstance(exc, OSError):
            raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from None
        raise
    commit_partial(tmp, path)
    return path


def open_nwb(path):
    """A :class:`~frkit.io.VideoReader` of the corrected video of an NWB file frkit wrote (its
    ``processing/ophys/MotionCorrection``, every channel), else None (:mod:`frkit.io.nwb` reads
    other NWB files)."""
    import h5py

    from .hdf5 import Hdf5Reader

    p = Path(path)
    try:
        with h5py.File(p, "r") as f:
            datasets = []
            ophys = f.get(f"processing/{MODULE}")
            for mc in (MOTION_CORRECTION, "MotionCorrectionFrkit"):
                if ophys is not None and mc in ophys:
                    names = sorted(ophys[mc], key=lambda n: (len(n), n))
                    datasets = [f"processing/{MODULE}/{mc}/{n}/corrected/data" for n in names]
    except OSError as exc:
        raise InputError(f"{p}: cannot open as NWB (HDF5): {str(exc).splitlines()[0]}") from None
    return Hdf5Reader(p, datasets=datasets) if datasets else None

"""Apply a saved per-frame flow (``w.h5``) to another recording of the same frames.

A correction computed on one channel (the structural one, usually) is applied
to another channel, or to a raw or differently filtered copy of the same
frames: frame ``t`` of the target is warped by flow ``t`` with the engine's
:meth:`~frkit.engine.Engine.warp_output`, the very call fr-compensate makes,
so interpolation, integer rounding/clipping and the valid-mask rule are
fr-compensate's.

Out-of-view pixels (invalid samples) take a fill image, as in fr-compensate,
where they take the raw reference. The fill is a given image, or else the
*target's* reference in the corrected grid: the mean, over fr-compensate's
default reference frames, of the target's frames warped by their saved flows
(out-of-view pixels of that mean take the plain mean of those frames). It
differs from what fr-compensate would use for the target channel only in
how the reference frames were registered (fr-compensate pre-registers them to
a provisional mean, with flows it does not save), so only out-of-view pixels
can differ; in-view pixels are identical whatever the fill.

Flow files: frkit's and pyflowreg's ``w.h5`` (datasets ``u``, ``v``, float32
``(T, H, W)``) and MATLAB Flow-Registration's ``w.hdf`` (the same, float64,
used as float32, the precision every engine computes flows in).
"""

from __future__ import annotations

import numpy as np

from . import layout
from .accumulate import add_frames
from .errors import InputError
from .preprocess import check_finite
from .reference import default_reference_frames

__all__ = ["open_flow", "check_flow_fits", "load_fill", "target_reference", "apply_flow"]


def open_flow(path):
    """The flow file ``path`` as a :class:`~frkit.io.VideoReader` of ``(T, H, W, 2)`` frames (u, v)."""
    from .io import open_video
    from .io.readers import check_file

    p = check_file(path, "flow")
    try:
        reader = open_video(p, datasets=list(layout.FLOW_DATASETS))
    except InputError as exc:
        why = str(exc).removeprefix(f"{p}: ")
        raise InputError(f"{p}: not a per-frame flow file (datasets {', '.join(layout.FLOW_DATASETS)}, "
                         f"(T, H, W)): {why}") from None
    if reader.dtype.kind != "f":
        reader.close()
        raise InputError(f"{p}: flow datasets are {reader.dtype}; expected float32 or float64")
    return reader


def check_flow_fits(video, flow) -> None:
    """InputError unless ``flow`` has one field per frame of ``video``, of the frames' size."""
    t, h, w, _ = video.shape
    ft, fh, fw, _ = flow.shape
    if (fh, fw) != (h, w):
        raise InputError(f"{flow.path}: flow fields are {fh}x{fw}, the frames of {video.path} are {h}x{w}")
    if ft != t:
        raise InputError(f"{flow.path}: has {ft} flow fields, {video.path} has {t} frames (a run with "
                         "--bin-size N saves one field per N frames)")


def load_fill(path, shape) -> np.ndarray:
    """The fill image file ``path`` as ``(H, W, C)`` float64 for frames of ``shape`` ``(H, W, C)``."""
    from .io import load_image
    from .io.readers import check_file

    img = np.asarray(load_image(check_file(path, "image")), dtype=np.float64)
    img = img[..., None] if img.ndim == 2 else img
    if img.shape != tuple(shape):
        raise InputError(f"{path}: fill image is {'x'.join(map(str, img.shape))}, the frames are "
                         f"{'x'.join(map(str, shape))} (H x W x channels)")
    if not np.isfinite(img).all():
        raise InputError(f"{path}: fill image contains NaN or Inf")
    return img


def _flows(flow, a: int, b: int) -> np.ndarray:
    w = flow.read(a, b)
    check_finite(w, range(a, b), flow.path)
    return np.ascontiguousarray(w, dtype=np.float32)


def target_reference(video, flow, engine, method: str, chunk: int) -> np.ndarray:
    """The target's reference in the corrected grid, ``(H, W, C)`` float64 (see the module docstring)."""
    indices = default_reference_frames(video.shape[0])
    raw_sum = None
    spans = [indices[i:i + chunk] for i in range(0, len(indices), chunk)]
    for idx in spans:
        frames = video.read(idx[0], idx[-1] + 1)
        check_finite(frames, idx, video.path)
        raw_sum = add_frames(raw_sum, frames)
    raw_mean = raw_sum / len(indices)
    acc = np.zeros(video.shape[1:])
    for idx in spans:
        frames = video.read(idx[0], idx[-1] + 1)
        add_frames(acc, engine.to_host(engine.warp_frames(frames, _flows(flow, idx[0], idx[-1] + 1), raw_mean,
                                                          method, np.float64)))
    return acc / len(indices)


def apply_flow(video, flow, writer, fill: np.ndarray, engine, method: str, chunk: int, progress=None) -> dict:
    """Warp every frame of ``video`` by its flow from ``flow`` into ``writer``; returns a summary.

    ``fill`` ``(H, W, C)`` supplies out-of-view pixels; the output dtype is
    ``writer.dtype`` (integers rounded and clipped, never wrapped). The
    summary's ``translation`` is each frame's mean flow ``(T, 2)`` (u, v).
    """
    check_flow_fits(video, flow)
    t, h, w, _ = video.shape
    translation = np.empty((t, 2))
    valid_sum = 0
    mean_disp = 0.0
    for a in range(0, t, chunk):
        b = min(t, a + chunk)
        frames = video.read(a, b)
        check_finite(frames, range(a, b), video.path)
        fields = _flows(flow, a, b)
        # warp_output takes flows where the engine computes them (the GPU engine: its device)
        on_device = fields if getattr(engine, "xp", np) is np else engine.xp.asarray(fields)
        reg, valid, stats = engine.warp_output(frames, on_device, fill, method, writer.dtype)
        translation[a:b] = fields.mean(axis=(1, 2))
        writer.append(reg)
        valid_sum += int(valid.sum())
        mean_disp += float(stats[:, 0].sum())
        if progress is not None:
            progress(b, t)
    return {"frames": t, "shape": list(video.shape), "valid_fraction": valid_sum / (t * h * w),
            "mean_displacement": mean_disp / t, "translation": translation}

"""Reprojection of a compensated video into the session's reference grid."""

from __future__ import annotations

import numpy as np

from .errors import InputError, OptionError

__all__ = ["FILL_MODES", "reproject", "output_dtype"]

FILL_MODES = ("reference", "zero", "nan")


def output_dtype(input_dtype, fill: str) -> np.dtype:
    """The input dtype, except that NaN fill needs floats (float32 for integers)."""
    dt = np.dtype(input_dtype)
    if fill == "nan" and dt.kind != "f":
        return np.dtype(np.float32)
    return dt


def fill_image(fill: str, shape, reference_average: np.ndarray | None) -> np.ndarray:
    """The ``(H, W, C)`` image that out-of-view pixels take."""
    if fill == "reference":
        if reference_average is None:
            raise OptionError("--fill reference needs the center recording's temporal average "
                              "(--reference-average or --config)")
        ref = np.asarray(reference_average, dtype=np.float64)
        if ref.ndim == 2:
            ref = ref[..., None]
        if ref.shape != tuple(shape):
            raise InputError(f"reference average is {ref.shape}, the video's frames are {tuple(shape)}")
        return ref
    if fill == "zero":
        return np.zeros(shape)
    if fill == "nan":
        return np.full(shape, np.nan)
    raise OptionError(f"--fill must be one of {', '.join(FILL_MODES)}")


def reproject(reader, flow: np.ndarray, writer, fill: np.ndarray, engine, chunk: int = 64, progress=None,
              method: str = "cubic") -> int:
    """Warp every frame of ``reader`` by ``flow`` into ``writer``; returns the frame count.

    Integer outputs are rounded and clipped (never wrapped).
    """
    t, h, w, c = reader.shape
    if flow.shape[:2] != (h, w):
        raise InputError(f"displacement field is {flow.shape[0]}x{flow.shape[1]}, the video is {h}x{w}")
    flow = np.ascontiguousarray(flow, dtype=np.float32)
    for a in range(0, t, chunk):
        b = min(t, a + chunk)
        frames = reader.read(a, b)
        writer.append(engine.to_host(engine.warp_frames(frames, flow, fill, method, writer.dtype)))
        if progress is not None:
            progress(b, t)
    return t

"""Compute engines: where the per-frame work of a chunk runs.

An engine turns chunks of frames into preprocessed frames, flows and warped
output. :class:`CpuEngine` runs frames in parallel threads (every kernel
releases the GIL, so threads scale without copying frames between
processes); ``frkit.gpu`` provides the CUDA engine with the same methods.
Results never depend on the number of workers: each frame is computed on
its own, in the same way.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .errors import OptionError
from .flow.displacement import ReferencePyramid, warp
from .flow.params import FlowParams
from .flow.warp import mask_and_statistics, warp_into
from .preprocess import Preprocessor
from .rigid import rigid_shift

__all__ = ["CpuEngine", "available_cpus", "make_engine", "RigidInit"]


def available_cpus() -> int:
    """CPUs this process may run on (honours affinity masks set by SLURM etc.)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


class RigidInit:
    """Rigid pre-alignment by phase correlation before the flow (``--cc-init``)."""

    def __init__(self, upsample: int = 1, work_size: int = 256):
        self.upsample = upsample
        self.work_size = work_size

    def start(self, ref: ReferencePyramid, moving: np.ndarray, init: np.ndarray | None) -> np.ndarray:
        """Initial flow ``(2, H, W)``: ``init`` plus the rigid shift left after it."""
        h, w = ref.height, ref.width
        base = np.zeros((2, h, w)) if init is None else init
        m1 = warp(moving, base[0], base[1], ref.reference, cubic=False)
        dx, dy = rigid_shift(np.moveaxis(ref.reference, 0, -1), np.moveaxis(m1, 0, -1), self.upsample,
                             self.work_size, ref.params.weights)
        out = base.copy()
        out[0] += dx
        out[1] += dy
        return out


class CpuEngine:
    """Frames of a chunk in parallel threads on the CPU."""

    name = "cpu"

    def __init__(self, workers: int | None = None):
        self.workers = available_cpus() if not workers or workers < 1 else int(workers)
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="frkit") if self.workers > 1 else None

    def close(self):
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def describe(self) -> str:
        return f"cpu ({self.workers} worker{'s' if self.workers != 1 else ''})"

    def _run(self, fn, n: int):
        if self._pool is None or n <= 1:
            for i in range(n):
                fn(i)
        else:
            # list() re-raises the first exception of any frame
            list(self._pool.map(fn, range(n)))

    # -- reference ---------------------------------------------------------
    def prepare(self, reference_proc: np.ndarray, params: FlowParams) -> ReferencePyramid:
        """Cache the reference pyramid; ``reference_proc`` is planar ``(C, H, W)``."""
        return ReferencePyramid(reference_proc, params)

    # -- per chunk ---------------------------------------------------------
    def preprocess(self, frames: np.ndarray, pre: Preprocessor, normalize: bool = True) -> np.ndarray:
        """``(n, H, W, C)`` frames -> normalized, smoothed planar ``(n, C, H, W)`` float32."""
        n, h, w, c = frames.shape
        out = np.empty((n, c, h, w), dtype=np.float32)

        def job(i):
            out[i] = pre.spatial(frames[i], normalize)

        self._run(job, n)
        return out

    def flows(self, ref: ReferencePyramid, proc: np.ndarray, init: np.ndarray | None = None,
              rigid: RigidInit | None = None) -> np.ndarray:
        """Backward flows ``(n, H, W, 2)`` float32 of preprocessed planar frames.

        ``init`` is one ``(H, W, 2)`` start shared by all frames, or None.
        """
        n = proc.shape[0]
        out = np.empty((n, ref.height, ref.width, 2), dtype=np.float32)
        init_planar = None if init is None else np.ascontiguousarray(np.moveaxis(init, -1, 0), dtype=np.float64)

        def job(i):
            start = rigid.start(ref, proc[i], init_planar) if rigid is not None else init_planar
            out[i] = np.moveaxis(ref.flow(proc[i], start), 0, -1)

        self._run(job, n)
        return out

    def warp_output(self, frames: np.ndarray, flows: np.ndarray, fill: np.ndarray, method: str,
                    dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Warp raw frames by their flows; returns (registered, valid, stats).

        ``registered`` has ``dtype`` (integers rounded and clipped), ``valid``
        is bool ``(n, H, W)``, ``stats`` float64 ``(n, 4)`` in
        :data:`frkit.flow.warp.STAT_NAMES` order.
        """
        n = frames.shape[0]
        reg = np.empty(frames.shape, dtype=dtype)
        valid = np.empty(frames.shape[:3], dtype=bool)
        stats = np.empty((n, 4))

        def job(i):
            warp_into(frames[i], flows[i], fill, reg[i], method)
            mask_and_statistics(flows[i], valid[i], stats[i])

        self._run(job, n)
        return reg, valid, stats

    def warp_frames(self, frames: np.ndarray, flow: np.ndarray, fill: np.ndarray, method: str, dtype) -> np.ndarray:
        """Warp ``(n, H, W, C)`` frames by one field ``(H, W, 2)`` or one each ``(n, H, W, 2)``."""
        reg = np.empty(frames.shape, dtype=dtype)
        per_frame = flow.ndim == 4

        def job(i):
            warp_into(frames[i], flow[i] if per_frame else flow, fill, reg[i], method)

        self._run(job, frames.shape[0])
        return reg

    def warp_planar(self, proc: np.ndarray, flows: np.ndarray, fill: np.ndarray, method: str) -> np.ndarray:
        """Warp preprocessed planar frames ``(n, C, H, W)`` (reference update)."""
        out = np.empty(proc.shape, dtype=np.float32)
        cubic = method == "cubic"

        def job(i):
            out[i] = warp(proc[i], flows[i, ..., 0].astype(np.float64), flows[i, ..., 1].astype(np.float64),
                          fill, cubic)

        self._run(job, proc.shape[0])
        return out

    def to_host(self, array):
        return array

    def synchronize(self) -> None:
        """Wait for queued work (nothing is queued on the CPU)."""


def make_engine(device: str = "cpu", workers: int | None = None):
    """Engine for ``device``: ``cpu``, ``cuda`` or ``cuda:N``."""
    device = (device or "cpu").strip().lower()
    if device == "cpu":
        return CpuEngine(workers)
    if device == "cuda" or device.startswith("cuda:"):
        from .gpu import make_cuda_engine

        return make_cuda_engine(device)
    raise OptionError(f"unknown device {device!r}; use cpu, cuda or cuda:N")

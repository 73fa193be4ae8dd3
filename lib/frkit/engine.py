"""Compute engines: where the per-frame work of a chunk runs.

An engine turns chunks of frames into preprocessed frames, flows and warped
output; :class:`Engine` is the interface. :class:`CpuEngine` runs frames in
parallel threads (every kernel releases the GIL, so threads scale without
copying frames between processes); :class:`frkit.gpu.engine.GpuEngine` runs
whole chunks on a GPU. Results never depend on the number of workers: each
frame is computed on its own, in the same way.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import numpy as np

from .errors import OptionError
from .flow.displacement import ReferencePyramid, warp
from .flow.params import FlowParams
from .flow.warp import STAT_NAMES, mask_and_statistics, warp_into
from .pipelining import thread_count
from .preprocess import Preprocessor
from .rigid import rigid_shift

__all__ = ["Engine", "CpuEngine", "make_engine", "RigidInit"]


class Engine(Protocol):
    """What compensate, align, reproject and the reference builder need of an engine.

    *Host* arrays are numpy arrays; *device* arrays are the engine's own
    (numpy for :class:`CpuEngine`, CuPy for the GPU engine) and go back to
    the host only through :meth:`to_host`. Device arrays may be passed back
    into the engine that made them. Layouts: frames are channel-last
    ``(n, H, W, C)``, preprocessed images planar ``(n, C, H, W)`` float32,
    flows ``(n, H, W, 2)`` float32 with ``[..., 0] = u`` (along columns, x)
    and ``[..., 1] = v`` (along rows, y), backward: ``out(y, x) = in(y + v,
    x + u)``. Every engine takes its per-pixel rules from
    :mod:`frkit.flow.policy`. Engines are context managers (``close`` on exit).
    """

    #: frames computed at once on the host (threads); 1 for the GPU engine
    workers: int

    def describe(self) -> str:
        """One line naming the engine and its resources (for the run record)."""

    def close(self) -> None:
        """Release threads and cached device buffers; the engine is not used afterwards."""

    def __enter__(self) -> Any: ...

    def __exit__(self, *exc) -> None: ...

    def preferred_chunk(self, frame_shape: tuple[int, int, int]) -> int:
        """Frames per chunk for frames of shape ``(H, W, C)``, from the engine's memory."""

    def prepare(self, reference_proc: np.ndarray, params: FlowParams) -> Any:
        """The reference's pyramid for :meth:`flows`.

        ``reference_proc`` is host, planar ``(C, H, W)`` float32 (preprocessed);
        ``params`` is not yet resolved for ``C`` channels. The result has
        ``reference`` (the host input), ``height``, ``width`` and ``params``
        (resolved), as :class:`RigidInit` needs.
        """

    def preprocess(self, frames: np.ndarray, pre: Preprocessor, normalize: bool = True) -> Any:
        """Host frames ``(n, H, W, C)`` of any numeric dtype -> device planar ``(n, C, H, W)`` float32.

        Normalized by the preprocessor's per-channel range (unless
        ``normalize`` is false), then Gaussian-smoothed per channel.
        """

    def flows(self, pyramid: Any, proc: Any, init: np.ndarray | None = None,
              rigid: RigidInit | None = None) -> Any:
        """Backward flows, device ``(n, H, W, 2)`` float32, of preprocessed frames.

        ``proc`` is device or host planar ``(n, C, H, W)`` float32; ``init`` one
        host ``(H, W, 2)`` starting flow shared by all frames, or None;
        ``rigid`` adds a per-frame rigid pre-alignment on top of ``init``.
        """

    def warp_output(self, frames: np.ndarray, flows: Any, fill: np.ndarray, method: str,
                    dtype: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Warp raw frames by their own flows; all three results on the host.

        ``frames`` host ``(n, H, W, C)``; ``flows`` device ``(n, H, W, 2)``
        float32; ``fill`` host ``(H, W, C)`` (out-of-view pixels); ``method``
        ``"cubic"`` or ``"linear"``. Returns ``registered`` ``(n, H, W, C)``
        of ``dtype`` (integers rounded and clipped, :func:`~frkit.flow.policy.integer_range`),
        ``valid`` bool ``(n, H, W)`` (:func:`~frkit.flow.policy.valid_mask`)
        and ``stats`` float64 ``(n, 6)`` (:data:`~frkit.flow.policy.STAT_NAMES`).
        """

    def warp_frames(self, frames: np.ndarray, flow: Any, fill: np.ndarray, method: str, dtype: Any) -> np.ndarray:
        """Warp host frames ``(n, H, W, C)`` by one flow ``(H, W, 2)`` or one each ``(n, H, W, 2)``.

        Host result ``(n, H, W, C)`` of ``dtype`` (integers rounded and clipped).
        """

    def warp_planar(self, proc: Any, flows: Any, fill: np.ndarray, method: str) -> Any:
        """Warp device planar ``(n, C, H, W)`` float32 frames by ``(n, H, W, 2)`` flows.

        ``fill`` is host planar ``(C, H, W)`` float32; the result is device
        planar ``(n, C, H, W)`` float32 (reference updates).
        """

    def to_host(self, array: Any) -> np.ndarray:
        """A device array as a numpy array (the array itself on the CPU)."""

    def synchronize(self) -> None:
        """Wait until queued device work is done (honest per-stage times)."""


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
    """Frames of a chunk in parallel threads on the CPU (an :class:`Engine`; "device" arrays are numpy)."""

    def __init__(self, workers: int | None = None):
        self.workers = thread_count(workers)
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

    def preferred_chunk(self, frame_shape) -> int:
        """A few frames per worker; about 40 bytes per pixel and channel in flight, under ~256 MB."""
        h, w, c = frame_shape
        per_frame = max(1, h * w * (c * 16 + 24))
        by_memory = max(1, (256 << 20) // per_frame)
        return int(max(1, min(4 * self.workers, 64, by_memory)))

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

    def flows(self, pyramid: ReferencePyramid, proc: np.ndarray, init: np.ndarray | None = None,
              rigid: RigidInit | None = None) -> np.ndarray:
        """Backward flows ``(n, H, W, 2)`` float32 of preprocessed planar frames.

        ``init`` is one ``(H, W, 2)`` start shared by all frames, or None.
        """
        n = proc.shape[0]
        out = np.empty((n, pyramid.height, pyramid.width, 2), dtype=np.float32)
        init_planar = None if init is None else np.ascontiguousarray(np.moveaxis(init, -1, 0), dtype=np.float64)

        def job(i):
            start = rigid.start(pyramid, proc[i], init_planar) if rigid is not None else init_planar
            out[i] = np.moveaxis(pyramid.flow(proc[i], start), 0, -1)

        self._run(job, n)
        return out

    def warp_output(self, frames: np.ndarray, flows: np.ndarray, fill: np.ndarray, method: str,
                    dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Warp raw frames by their flows; returns (registered, valid, stats).

        ``registered`` has ``dtype`` (integers rounded and clipped), ``valid``
        is bool ``(n, H, W)``, ``stats`` float64 ``(n, 6)`` in
        :data:`frkit.flow.policy.STAT_NAMES` order.
        """
        n = frames.shape[0]
        reg = np.empty(frames.shape, dtype=dtype)
        valid = np.empty(frames.shape[:3], dtype=bool)
        stats = np.empty((n, len(STAT_NAMES)))

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

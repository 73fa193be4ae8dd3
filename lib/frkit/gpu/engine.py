"""The GPU engine: the per-chunk work of :mod:`frkit.engine` on a backend.

Frames are uploaded once per chunk (the raw chunk is kept for the output
warp), preprocessed, registered and warped on the device; only the results
come back (corrected frames, flows, masks, statistics). A chunk that does
not fit in device memory is split in halves until it does.
"""

from __future__ import annotations

import numpy as np

from ..flow.params import FlowParams
from ..flow.policy import flow_statistics, integer_range, valid_mask
from ..preprocess import NORM_EPS, Preprocessor
from .backend import CupyBackend, HostBackend
from .batchflow import BatchPyramid

__all__ = ["GpuEngine", "make_cuda_engine", "make_host_engine"]

#: bytes of device memory per pixel and channel of a frame in flight (tensor,
#: solver arrays, pyramid images, raw and output copies), with headroom
BYTES_PER_PIXEL = 4 * 40


def _is_oom(exc: BaseException) -> bool:
    return type(exc).__name__ in ("OutOfMemoryError", "CUDARuntimeError") and "memory" in str(exc).lower()


class GpuEngine:
    """An :class:`frkit.engine.Engine` whose chunks run on a :mod:`frkit.gpu.backend` backend.

    Its device arrays are the backend's (CuPy, or numpy for the host emulation).
    """

    def __init__(self, backend, max_chunk: int = 512):
        self.bk = backend
        self.xp = backend.xp
        self.max_chunk = max_chunk
        self.workers = 1
        self._raw_cache = None

    def describe(self) -> str:
        return self.bk.describe()

    def close(self):
        self._raw_cache = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def preferred_chunk(self, frame_shape) -> int:
        h, w, c = frame_shape
        per_frame = (h + 2) * (w + 2) * (c + 2) * BYTES_PER_PIXEL
        return int(max(1, min(self.max_chunk, 0.6 * self.bk.free_memory() // per_frame)))

    def to_host(self, array):
        return self.bk.to_host(array)

    def synchronize(self) -> None:
        """Wait for the device (for honest per-stage times)."""
        self.bk.synchronize()

    # -- memory-safe batching -------------------------------------------------
    def _split(self, fn, n, *arrays):
        """``fn(*arrays)`` on the whole batch, or on halves after running out of device memory."""
        try:
            return fn(*arrays)
        except Exception as exc:
            if not _is_oom(exc) or n <= 1:
                raise
        pool = getattr(self.xp, "get_default_memory_pool", None)
        if pool is not None:
            pool().free_all_blocks()
        h = n // 2
        a = self._split(fn, h, *[x[:h] for x in arrays])
        b = self._split(fn, n - h, *[x[h:] for x in arrays])
        return self.xp.concatenate([a, b]) if not isinstance(a, tuple) else tuple(
            self.xp.concatenate([p, q]) for p, q in zip(a, b))

    def _upload(self, frames: np.ndarray):
        """Device copy of a host chunk; the last one is kept for the output warp."""
        cached = self._raw_cache
        if cached is not None and cached[0] is frames:
            return cached[1]
        dev = self.xp.asarray(np.ascontiguousarray(frames))
        self._raw_cache = (frames, dev)
        return dev

    # -- engine interface ------------------------------------------------------
    def prepare(self, reference_proc: np.ndarray, params: FlowParams) -> BatchPyramid:
        return BatchPyramid(self.bk, reference_proc, params)

    def preprocess(self, frames: np.ndarray, pre: Preprocessor, normalize: bool = True):
        xp = self.xp
        n, h, w, c = frames.shape
        planes = xp.ascontiguousarray(self._upload(frames).transpose(0, 3, 1, 2), dtype=xp.float32)
        kr, kc = pre._tables_cached()
        if normalize:
            lo = (pre.low).astype(np.float32)
            scale = (1.0 / (pre.high - pre.low + NORM_EPS)).astype(np.float32)
        else:
            lo, scale = np.zeros(c, np.float32), np.ones(c, np.float32)
        tr, tc = xp.asarray(kr.astype(np.float32)), xp.asarray(kc.astype(np.float32))
        tmp = xp.empty_like(planes)
        self.bk.launch("gauss_rows", planes.size, planes, tmp, n, c, h, w, tr, kr.shape[1] // 2, xp.asarray(lo),
                       xp.asarray(scale))
        out = xp.empty_like(planes)
        self.bk.launch("gauss_cols", planes.size, tmp, out, n, c, h, w, tc, kc.shape[1] // 2)
        return out

    def flows(self, pyramid: BatchPyramid, proc, init=None, rigid=None):
        """Flows ``(n, H, W, 2)`` float32 on the device."""
        xp = self.xp
        proc = xp.asarray(proc, dtype=xp.float32)  # host arrays too (fr-align)
        n = proc.shape[0]
        start = None if init is None else np.ascontiguousarray(np.moveaxis(init, -1, 0), dtype=np.float32)
        if rigid is not None:
            # rigid pre-alignment per frame on the CPU (phase correlation), then one batch on the device
            host = self.to_host(proc)
            base = None if start is None else start.astype(np.float64)
            start = np.stack([rigid.start(pyramid, host[i], base) for i in range(n)]).astype(np.float32)

        def run(p, s):
            return xp.ascontiguousarray(pyramid.flows(p, s).transpose(0, 2, 3, 1))

        if start is not None and start.ndim == 4:
            return self._split(run, n, proc, xp.asarray(start))
        return self._split(lambda p: run(p, start), n, proc)

    def warp_output(self, frames: np.ndarray, flows, fill: np.ndarray, method: str, dtype):
        reg = self._warp_raw(frames, flows, fill, method, dtype)
        return reg, self.to_host(valid_mask(flows, self.xp)), self.to_host(flow_statistics(flows, self.xp))

    def warp_frames(self, frames: np.ndarray, flow, fill: np.ndarray, method: str, dtype) -> np.ndarray:
        xp = self.xp
        n = frames.shape[0]
        flows = xp.asarray(flow, dtype=xp.float32)
        if flows.ndim == 3:
            flows = xp.broadcast_to(flows, (n,) + flows.shape)
        return self._warp_raw(frames, flows, fill, method, dtype)

    def _warp_raw(self, frames, flows, fill, method, dtype) -> np.ndarray:
        xp = self.xp
        n, h, w, c = frames.shape
        src = xp.ascontiguousarray(self._upload(frames), dtype=xp.float32)
        u = xp.ascontiguousarray(flows[..., 0], dtype=xp.float32)
        v = xp.ascontiguousarray(flows[..., 1], dtype=xp.float32)
        out = xp.empty((n, h, w, c), dtype=xp.float32)
        f = xp.asarray(np.ascontiguousarray(fill, dtype=np.float32))
        self.bk.launch("warp_output", n * h * w, src, u, v, f, out, n, h, w, c, int(method == "cubic"))
        limits = integer_range(dtype)
        if limits is not None:
            out = xp.clip(xp.rint(out), *limits)
        return self.to_host(out.astype(dtype))

    def warp_planar(self, proc, flows, fill: np.ndarray, method: str):
        xp = self.xp
        n, k, h, w = proc.shape
        out = xp.empty_like(proc)
        u = xp.ascontiguousarray(flows[..., 0], dtype=xp.float32)
        v = xp.ascontiguousarray(flows[..., 1], dtype=xp.float32)
        f = xp.asarray(np.ascontiguousarray(fill, dtype=np.float32))
        self.bk.launch("warp_level", n * h * w, xp.ascontiguousarray(proc), u, v, f, out, n, k, h, w, 1.0, 1.0,
                       int(method == "cubic"))
        return out


def make_cuda_engine(device: str = "cuda") -> GpuEngine:
    """Engine on ``cuda`` / ``cuda:N``; OptionError when CuPy or the GPU is missing."""
    from ..errors import OptionError

    index = 0
    if ":" in device:
        try:
            index = int(device.split(":", 1)[1])
        except ValueError:
            raise OptionError(f"--device {device}: use cuda or cuda:N") from None
    return GpuEngine(CupyBackend(index))


def make_host_engine(max_chunk: int = 64) -> GpuEngine:
    """The GPU engine running its kernels on the CPU (tests)."""
    return GpuEngine(HostBackend(), max_chunk=max_chunk)

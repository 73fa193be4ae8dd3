"""Where the kernels of ``kernels.cu`` run.

:class:`CupyBackend` compiles them with NVRTC and launches them on a GPU.
:class:`HostBackend` compiles the same source with the host C++ compiler and
runs each kernel as a plain loop on the CPU: slow, but it executes the very
code the GPU runs, so the whole GPU engine is tested on machines without a
GPU. Both expose ``xp`` (numpy or cupy) and ``launch(name, work, *args)``.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..errors import OptionError
from .source import cuda_source, host_source, kernel_signatures

__all__ = ["CupyBackend", "HostBackend", "host_compiler"]

THREADS = 256


def _check_array(name, i, a, xp):
    if not isinstance(a, xp.ndarray):
        raise TypeError(f"{name}: argument {i} must be an array")
    if a.dtype not in (np.float32, np.int32):
        raise TypeError(f"{name}: argument {i} must be float32 or int32, not {a.dtype}")
    if not a.flags.c_contiguous:
        raise TypeError(f"{name}: argument {i} must be C-contiguous")


def host_compiler() -> str | None:
    """The C++ compiler used for host emulation (``$CXX``, g++ or c++), if any."""
    for cand in (os.environ.get("CXX"), "g++", "c++", "clang++"):
        if cand and shutil.which(cand):
            return cand
    return None


class HostBackend:
    """The CUDA kernels compiled for and run on the CPU (tests and emulation)."""

    xp = np

    def __init__(self):
        cxx = host_compiler()
        if cxx is None:
            raise OptionError("host emulation of the GPU kernels needs a C++ compiler (g++)")
        src = host_source()
        digest = hashlib.sha256((src + cxx).encode()).hexdigest()[:16]
        cache = Path(os.environ.get("FRKIT_KERNEL_CACHE", Path(tempfile.gettempdir()) / "frkit-host-kernels"))
        cache.mkdir(parents=True, exist_ok=True)
        lib = cache / f"kernels-{digest}.so"
        if not lib.exists():
            tmp_src = cache / f"kernels-{digest}.{os.getpid()}.cpp"
            tmp_lib = cache / f"kernels-{digest}.{os.getpid()}.so"
            tmp_src.write_text(src)
            # -ffp-contract=off: no fused multiply-adds, like a plain reading of the source
            subprocess.run([cxx, "-O2", "-ffp-contract=off", "-shared", "-fPIC", "-x", "c++", str(tmp_src),
                            "-o", str(tmp_lib)], check=True, capture_output=True)
            os.replace(tmp_lib, lib)
            tmp_src.unlink()
        self._lib = ctypes.CDLL(str(lib))
        self._sigs = kernel_signatures()
        conv = {"p": ctypes.c_void_p, "i": ctypes.c_int, "f": ctypes.c_float}
        for name, kinds in self._sigs.items():
            fn = getattr(self._lib, name)
            fn.argtypes = [conv[k] for k in kinds]
            fn.restype = None

    def launch(self, name: str, work: int, *args) -> None:
        kinds = self._sigs[name]
        if len(args) != len(kinds):
            raise TypeError(f"{name}: {len(kinds)} arguments expected, got {len(args)}")
        cargs = []
        for i, (a, k) in enumerate(zip(args, kinds)):
            if k == "p":
                _check_array(name, i, a, np)
                cargs.append(a.ctypes.data)
            elif k == "i":
                cargs.append(int(a))
            else:
                cargs.append(float(a))
        getattr(self._lib, name)(*cargs)

    def to_host(self, a) -> np.ndarray:
        return np.asarray(a)

    def synchronize(self) -> None:
        pass

    def free_memory(self) -> int:
        return 8 << 30

    def describe(self) -> str:
        return "host emulation of the CUDA kernels"


class CupyBackend:
    """The kernels on an NVIDIA GPU through CuPy (NVRTC)."""

    def __init__(self, device_id: int = 0):
        try:
            import cupy as cp
        except ImportError:
            raise OptionError("--device cuda: CuPy is not installed (pip install 'frkit[gpu]')") from None
        try:
            n = cp.cuda.runtime.getDeviceCount()
        except Exception as exc:  # no driver, no device
            raise OptionError(f"--device cuda: no usable CUDA device ({exc})") from None
        if not 0 <= device_id < n:
            raise OptionError(f"--device cuda:{device_id}: there are {n} CUDA device(s)")
        self.xp = cp
        self.device_id = device_id
        self.device = cp.cuda.Device(device_id)
        self.device.use()
        module = cp.RawModule(code=cuda_source(), options=("--std=c++14",))
        self._sigs = kernel_signatures()
        self._kernels = {name: module.get_function(name) for name in self._sigs}
        props = cp.cuda.runtime.getDeviceProperties(device_id)
        self.device_name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
        self.max_grid = 65535 * 16

    def launch(self, name: str, work: int, *args) -> None:
        kinds = self._sigs[name]
        cargs = []
        for i, (a, k) in enumerate(zip(args, kinds)):
            if k == "p":
                _check_array(name, i, a, self.xp)
                cargs.append(a)
            elif k == "i":
                cargs.append(np.int32(a))
            else:
                cargs.append(np.float32(a))
        grid = max(1, min((int(work) + THREADS - 1) // THREADS, self.max_grid))
        self._kernels[name]((grid,), (THREADS,), tuple(cargs))

    def to_host(self, a) -> np.ndarray:
        return self.xp.asnumpy(a)

    def synchronize(self) -> None:
        self.xp.cuda.Device(self.device_id).synchronize()

    def free_memory(self) -> int:
        free, _ = self.xp.cuda.runtime.memGetInfo()
        return int(free + self.xp.get_default_memory_pool().free_bytes())

    def describe(self) -> str:
        return f"cuda:{self.device_id} ({self.device_name})"

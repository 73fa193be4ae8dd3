"""The CUDA kernel source, for NVRTC and for host compilation in tests.

``kernels.cu`` uses three macros, defined here per target: ``FR_GLOBAL``
(a kernel), ``FR_DEVICE`` (an inline helper) and ``FR_LOOP(i, n)`` (a
grid-stride loop on the GPU, a plain loop on the host), and generated
``#define`` lines: the float32 constants of :data:`frkit.flow.policy.CUDA_CONSTANTS`
and ``FR_MEDIAN25_NETWORK`` (the same comparator network as the CPU median).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from ..flow.median import BOTH, MIN_ONLY, median25_network
from ..flow.policy import CUDA_CONSTANTS

__all__ = ["cuda_source", "host_source", "kernel_signatures"]

KERNELS_CU = Path(__file__).with_name("kernels.cu")

CUDA_PRELUDE = """
#define FR_GLOBAL __global__
#define FR_DEVICE __device__ __forceinline__
#define FR_LOOP(i, n) for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \\
                           i += (long long)blockDim.x * gridDim.x)
"""

HOST_PRELUDE = """
#include <cmath>
#define FR_GLOBAL
#define FR_DEVICE static inline
#define FR_LOOP(i, n) for (long long i = 0; i < (n); ++i)
"""


def _median_network_code() -> str:
    lines = []
    for a, b, mode in median25_network():
        if mode == BOTH:
            lines.append(f"{{ float lo = fminf(v[{a}], v[{b}]); float hi = fmaxf(v[{a}], v[{b}]); "
                         f"v[{a}] = lo; v[{b}] = hi; }}")
        elif mode == MIN_ONLY:
            lines.append(f"v[{a}] = fminf(v[{a}], v[{b}]);")
        else:
            lines.append(f"v[{b}] = fmaxf(v[{a}], v[{b}]);")
    return " \\\n".join(lines)


@lru_cache(maxsize=1)
def _body() -> str:
    # repr() is the shortest decimal of the float64; with the f suffix the C
    # compiler rounds that decimal straight to float32, as for a literal 1e-5f
    consts = "".join(f"#define {name} ({value!r}f)\n" for name, value in CUDA_CONSTANTS.items())
    return consts + f"#define FR_MEDIAN25_NETWORK \\\n{_median_network_code()}\n" + KERNELS_CU.read_text()


def cuda_source() -> str:
    return CUDA_PRELUDE + _body()


def host_source() -> str:
    return HOST_PRELUDE + _body()


_SIG = re.compile(r'extern "C" FR_GLOBAL void (\w+)\(([^)]*)\)', re.S)


@lru_cache(maxsize=1)
def kernel_signatures() -> dict[str, list[str]]:
    """Kernel name -> argument kinds: ``p`` pointer, ``i`` int32, ``f`` float32."""
    out = {}
    for name, args in _SIG.findall(KERNELS_CU.read_text()):
        kinds = []
        for arg in args.split(","):
            arg = " ".join(arg.split())
            if "*" in arg:
                kinds.append("p")
            elif arg.startswith("int "):
                kinds.append("i")
            elif arg.startswith("float "):
                kinds.append("f")
            else:
                raise ValueError(f"unsupported kernel argument {arg!r} in {name}")
        out[name] = kinds
    return out

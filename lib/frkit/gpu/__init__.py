"""The GPU path: CuPy kernels, a whole batch of frames per launch.

Optional: ``pip install 'frkit[gpu]'`` (CuPy for CUDA 12). Without CuPy or
without a GPU, ``--device cuda`` stops at once with a clear message; the CPU
path does not import anything from here.
"""

from __future__ import annotations

__all__ = ["make_cuda_engine"]


def make_cuda_engine(device: str):
    """Engine for ``cuda`` / ``cuda:N`` (see :mod:`frkit.gpu.engine`)."""
    from .engine import make_cuda_engine as make

    return make(device)

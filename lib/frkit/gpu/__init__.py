"""The CUDA engine (CuPy). Optional: ``pip install frkit[gpu]``."""

from __future__ import annotations

from ..errors import OptionError

__all__ = ["make_cuda_engine"]


def make_cuda_engine(device: str):
    """Engine for ``cuda`` / ``cuda:N``; a clear OptionError when CUDA is unavailable."""
    try:
        import cupy  # noqa: F401
    except ImportError:
        raise OptionError(f"--device {device}: CuPy is not installed (pip install 'frkit[gpu]')") from None
    raise OptionError(f"--device {device}: the CUDA engine is not available in this version")

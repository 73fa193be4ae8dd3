"""frkit: Flow-Registration motion correction for 2-photon microscopy.

The library behind the fr-* tools: the variational optical-flow method
(:mod:`frkit.flow`, no file I/O), preprocessing, the streaming pipelines
and the file formats (:mod:`frkit.io`).
"""

from ._version import __version__

__all__ = ["__version__"]

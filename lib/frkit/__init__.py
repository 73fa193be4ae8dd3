"""frkit: Flow-Registration motion correction for 2-photon microscopy.

The library behind the fr-* tools. Where each piece is:

======================  =====================================================
``frkit.flow``          the method: pyramid, resize, warp, gradient-constancy
                        tensor, SOR solver, median (numba); no file I/O
``frkit.preprocess``    normalization from the reference, Gaussian prefilter
                        (rows, cols, time), temporal binning
``frkit.reference``     the reference frame (pre-registered from frames)
``frkit.noise``         the recording's noise level and ``--alpha auto``
``frkit.compensate``    stage 1: one recording, streamed in batches to files
``frkit.average``       the temporal average of a compensated video
``frkit.align``         stage 2: displacement between two recordings' averages
``frkit.mask``          stage 3: valid-pixel masks (temporal AND, warp, the
                        session bundle); loads averages and fields
``frkit.reproject``     stage 3: a video warped into the reference grid
``frkit.rigid``         rigid shift by phase correlation (``--cc-init``, stage 2)
``frkit.filters``       Gaussian smoothing of images (stage 2; no scipy.ndimage)
``frkit.options``       every parameter declared once (default, bounds, help,
                        session.toml keys, flags); what each tool takes
``frkit.tools``         one entry point per tool: inputs, parameters,
                        outputs -> a summary; refuses outputs onto inputs
``frkit.io``            readers and writers (TIFF, HDF5, MAT, npy/npz, PNG),
                        atomic ``.partial`` output
``frkit.layout``        the on-disk contract: file, dataset and key names,
                        dtypes, the ``.partial`` suffix
``frkit.session``       ``session.toml``, ``status.json``, the loops over a
                        session's recordings and its Make planning
``frkit.cli``           the command harness shared by the fr-* tools
``frkit.engine``        the Engine interface; CPU threads
``frkit.gpu``           the CUDA engine (optional, CuPy)
``frkit.synth``         synthetic recordings with known motion
======================  =====================================================

Documentation in the repository: ``docs/method.md`` (the method, step by
step), ``docs/files.md`` (every file the tools read and write) and
``docs/arrays.md`` (array layouts and dtypes at each step).
"""

from ._version import __version__

__all__ = ["__version__"]

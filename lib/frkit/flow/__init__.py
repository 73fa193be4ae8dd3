"""The variational optical-flow method (CPU), and the rules the GPU path shares.

Where each piece is:

=================================  ===============================================
``params.FlowParams``              the method's parameters (alpha, eta, levels,
                                   min_level, iterations, update_lag, a_data,
                                   a_smooth, channel weights, omega)
``policy``                         every rule both engines share: kernel
                                   constants, per-level alpha, when the median
                                   runs, integer output, valid mask, statistics
``pyramid``                        level sizes and spacings, the fused Gaussian +
                                   Keys-cubic resize taps, the B-spline flow
                                   upsampling taps
``displacement.ReferencePyramid``  the coarse-to-fine driver for one frame:
                                   resize, warp, tensor, solve, median, upsample
``kernels``                        numba kernels: resize, level warp, motion
                                   tensor, level solver (SOR), 5x5 median
``median``                         the 25-input median comparator network (also
                                   emitted into the CUDA source)
``warp``                           warping whole frames for output, and the
                                   valid mask and statistics in one pass
``frkit.gpu``                      the same method for a batch of frames on a
                                   GPU (``batchflow.BatchPyramid``, ``kernels.cu``)
=================================  ===============================================

Array layouts and dtypes at each step (CPU path; the GPU path batches the
same steps over frames, keeps everything float32 and its solver arrays
untransposed ``(B, rows + 2, cols + 2)``):

=====================  ==========================  ===========================
step                   layout                      dtype
=====================  ==========================  ===========================
frame in               ``(T, H, W, C)``            any numeric (uint16, ...)
preprocessed           planar ``(C, H, W)``        float32
pyramid level image    ``(C, rows, cols)``         float32
motion tensor          ``(C, 6, cols+2, rows+2)``  float64 (transposed, padded)
flow during the solve  ``(rows, cols)`` planes     float64 (u, v)
solver increments      ``(cols+2, rows+2)``        float64 (transposed, padded)
``ReferencePyramid``   ``(2, H, W)``               float64 (planes u, v)
flow (engines, files)  ``(H, W, 2)``               float32; ``[..., 0] = u``
                                                   (x, columns), ``[..., 1] =
                                                   v`` (y, rows)
warped output          ``(T, H, W, C)``            the output dtype; integers
                                                   rounded and clipped
valid mask             ``(T, H, W)``               bool
statistics             ``(T, 6)``                  float64 (``STAT_NAMES``)
=====================  ==========================  ===========================

Flows are backward: ``out(y, x) = in(y + v(y, x), x + u(y, x))``. The method
itself is described in ``docs/method.md``.
"""

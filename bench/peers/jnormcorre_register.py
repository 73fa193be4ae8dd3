"""NoRMCorre (jnormcorre 1.0.0): piecewise-rigid registration of channel 1, applied to channel 2 as well.

Runs in bench/.jnormcorre-venv. Usage: jnormcorre_register.py VIDEO.h5 OUT.h5 (datasets ch1, ch2: (T, H, W)).
The template comes from jnormcorre's own rigid + piecewise-rigid passes (its README's settings: max shift 15,
strides 64, overlaps 32, max deviation 3); each frame's patch shifts are then computed against it and applied
to both channels with jnormcorre's interpolation (cubic resize of the shift grid, linear sampling).
"""
import sys

import h5py
import jax
import jax.numpy as jnp
import numpy as np
from jnormcorre.motion_correction import MotionCorrect, _register_to_template_pwrigid
from jnormcorre.utils.lazy_array import lazy_data_loader

MAX_SHIFTS, STRIDES, OVERLAPS, MAX_DEV = (15, 15), (64, 64), (32, 32), 3


class ArrayLoader(lazy_data_loader):
    def __init__(self, a):
        self.a = a

    @property
    def dtype(self):
        return self.a.dtype

    @property
    def shape(self):
        return self.a.shape

    @property
    def ndim(self):
        return self.a.ndim

    def _compute_at_indices(self, indices):
        return self.a[indices].astype(np.float32)


def apply(img, shifts, grid):
    """Warp ``img`` by patch shifts as jnormcorre does for the frame the shifts came from."""
    sx = jnp.reshape(-shifts[:, 0], grid)
    sy = jnp.reshape(-shifts[:, 1], grid)
    xg, yg = jnp.meshgrid(jnp.arange(img.shape[1], dtype=jnp.float32), jnp.arange(img.shape[0], dtype=jnp.float32))
    r2 = jax.image.resize(sy.astype(jnp.float32), img.shape, method="cubic") + xg
    r1 = jax.image.resize(sx.astype(jnp.float32), img.shape, method="cubic") + yg
    return jax.scipy.ndimage.map_coordinates(img, [r1, r2], order=1, mode="nearest")


inp, out = sys.argv[1], sys.argv[2]
with h5py.File(inp, "r") as f:
    ch1, ch2 = f["ch1"][:].astype(np.float32), f["ch2"][:].astype(np.float32)
mc = MotionCorrect(ArrayLoader(ch1), max_shifts=MAX_SHIFTS, pw_rigid=True, strides=STRIDES, overlaps=OVERLAPS,
                   max_deviation_rigid=MAX_DEV, niter_rig=1, niter_els=1)
corrector, _ = mc.motion_correct()
template, add = jnp.asarray(corrector.template), float(corrector.add_to_movie)
h, w = ch1.shape[1:]
grid = [(n - s - o) // s + 1 + ((n - s - o) % s > 0) for n, s, o in zip((h, w), STRIDES, OVERLAPS)]
register = jax.jit(lambda img: _register_to_template_pwrigid(img, template, STRIDES[0], STRIDES[1], OVERLAPS[0],
                                                             OVERLAPS[1], MAX_SHIFTS, 10, MAX_DEV, add))
warp = jax.jit(lambda img, shifts: apply(img, shifts, grid))
reg1, reg2 = np.empty_like(ch1), np.empty_like(ch2)
for t in range(len(ch1)):
    frame, shifts = register(jnp.asarray(ch1[t]))
    reg1[t] = np.asarray(frame)
    reg2[t] = np.asarray(warp(jnp.asarray(ch2[t]), shifts))
with h5py.File(out, "w") as f:
    f["ch1"], f["ch2"] = reg1, reg2

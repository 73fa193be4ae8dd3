"""Quality measures of a motion correction: pure functions on arrays.

Everything here works on a batch of frames or on one image, so a recording
is measured in one streaming pass (:mod:`frkit.qc.recording`) with memory
O(batch). The definitions (also in the README, "Quality control"):

* **correlation** of a frame with the template: Pearson's r over the pixels
  valid in that corrected frame (``idx.hdf``), channels averaged. Raw and
  corrected frames are measured over the same pixels against the same
  template (the corrected temporal mean), so the two numbers compare.
* **crispness** (CaImAn's): the Frobenius norm of the gradient magnitude of
  the mean image, ``sqrt(sum |grad mean|^2)``, summed over the pixels valid
  in every corrected frame (eroded by one pixel, so the fill outside the
  view never counts). Raw and corrected use the same pixels.
* **shift** of a frame against the template: the peak of the cross-
  correlation of the mean-free, Hann-windowed images, refined to a fraction
  of a pixel by a parabola through the peak and its neighbours on each axis.
  ``patch_shifts`` does this in a grid of patches (a small non-rigid flow);
  the residual motion of a corrected video is the mean patch-shift length.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import fft as sfft

__all__ = ["gray", "frame_correlation", "frame_correlations", "correlation_from_sums", "crispness", "crispness_region",
           "Template", "patch_grid", "band_seam", "band_spread", "saturated_fraction", "running_median", "robust_z"]


def gray(frames: np.ndarray) -> np.ndarray:
    """``(n, H, W, C)`` of any dtype -> ``(n, H, W)`` float64, the channel mean."""
    f = np.asarray(frames)
    return f.mean(axis=-1, dtype=np.float64) if f.shape[-1] > 1 else f[..., 0].astype(np.float64)


def frame_correlation(frames: np.ndarray, template: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Pearson r of each frame ``(n, H, W)`` with ``template`` ``(H, W)`` over its valid pixels.

    ``valid`` ``(n, H, W)`` bool (None: all pixels). A frame with fewer than
    two valid pixels, or constant over them, gets NaN (no correlation exists).
    """
    return frame_correlations([frames], template, valid)[0]


def frame_correlations(frame_sets, template: np.ndarray, valid: np.ndarray | None = None) -> list[np.ndarray]:
    """:func:`frame_correlation` of several ``(n, H, W)`` sets over the same valid pixels (shared sums).

    Computed from per-frame sums (matrix-vector products: one pass over each
    batch); the template is centred first, so the sums do not cancel.
    """
    t = np.asarray(template, dtype=np.float64).ravel()
    t = t - t.mean()
    n_frames = np.shape(frame_sets[0])[0]
    if valid is None:
        m = None
        n = np.full(n_frames, float(t.size))
        st, stt = np.full(n_frames, t.sum()), np.full(n_frames, (t * t).sum())
    else:
        m = np.asarray(valid, dtype=bool).reshape(n_frames, -1)
        mf = m.astype(np.float64)
        n, st, stt = mf.sum(axis=1), mf @ t, mf @ (t * t)
    out = []
    for frames in frame_sets:
        f = np.asarray(frames, dtype=np.float64).reshape(n_frames, -1)
        fm = f if m is None else np.where(m, f, 0.0)
        out.append(correlation_from_sums(n, st, stt, fm.sum(axis=1), np.einsum("ij,ij->i", fm, fm), fm @ t))
    return out


def correlation_from_sums(n, st, stt, sf, sff, sft) -> np.ndarray:
    """Pearson r per frame from its sums over the valid pixels (``(n_frames,)`` each).

    ``n`` pixels, the centred template's ``st`` = sum t, ``stt`` = sum t^2,
    the frame's ``sf``, ``sff`` and ``sft`` = sum f t. NaN where fewer than
    two pixels are valid or the frame is constant over them.
    """
    n, st, stt, sf, sff, sft = (np.asarray(a, dtype=np.float64) for a in (n, st, stt, sf, sff, sft))
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = sft - sf * st / n
        var_f, var_t = sff - sf * sf / n, stt - st * st / n
        r = cov / np.sqrt(var_f * var_t)
    r[(n < 2) | ~np.isfinite(r) | (var_f <= 1e-12 * np.maximum(sff, 1e-300))] = np.nan
    return np.clip(r, -1.0, 1.0)


def crispness_region(valid_all: np.ndarray) -> np.ndarray:
    """The pixels crispness sums over: valid in every frame, eroded by one pixel (all pixels if none)."""
    v = np.asarray(valid_all, dtype=bool)
    m = np.zeros_like(v)  # a pixel stays when it and its 4 neighbours are valid; the border never does
    c = v[1:-1, 1:-1]
    m[1:-1, 1:-1] = c & v[:-2, 1:-1] & v[2:, 1:-1] & v[1:-1, :-2] & v[1:-1, 2:]
    return m if m.any() else np.ones_like(v)


def crispness(mean_image: np.ndarray, region: np.ndarray | None = None) -> float:
    """CaImAn's crispness: ``sqrt(sum over region of |grad mean_image|^2)`` (``(H, W)`` image)."""
    gy, gx = np.gradient(np.asarray(mean_image, dtype=np.float64))
    g2 = gy * gy + gx * gx
    return float(np.sqrt(g2[region].sum() if region is not None else g2.sum()))


def _prepare(images: np.ndarray, window: np.ndarray) -> np.ndarray:
    x = images - images.mean(axis=(-2, -1), keepdims=True)
    return x * window


def _parabola(c_minus, c0, c_plus):
    """Offset of the vertex of the parabola through (-1, c-), (0, c0), (1, c+), clipped to [-0.5, 0.5]."""
    den = c_minus - 2 * c0 + c_plus
    with np.errstate(invalid="ignore", divide="ignore"):
        off = np.where(den < 0, 0.5 * (c_minus - c_plus) / den, 0.0)
    return np.clip(np.nan_to_num(off), -0.5, 0.5)


class Template:
    """Cross-correlation of frames (or patches) with one template, batched with FFTs.

    ``patches`` splits the images into a grid of that many rows x columns of
    patches, each correlated with the same patch of the template. ``bin``
    averages ``bin x bin`` pixel blocks first (coarse, cheaper; shifts are
    still reported in full-resolution pixels). ``workers``: threads of
    scipy.fft's transforms (-1: every core; 1 when the caller runs batches
    in threads of its own).
    """

    def __init__(self, template: np.ndarray, patches: tuple[int, int] = (1, 1), bin: int = 1, workers: int = -1):
        self.bin, self.workers = int(bin), workers
        t = self._bin(np.asarray(template, dtype=np.float64)[None])[0]
        self.grid = patches
        self.ph, self.pw = t.shape[0] // patches[0], t.shape[1] // patches[1]
        self.window = np.outer(np.hanning(self.ph), np.hanning(self.pw)) if min(self.ph, self.pw) > 2 else 1.0
        # float32 transforms: shifts need a fraction of a pixel, not float64's 16 digits
        self.window = np.float32(self.window) if np.isscalar(self.window) else self.window.astype(np.float32)
        self.ref_fft = np.conj(sfft.rfft2(_prepare(self._patches(t[None]).astype(np.float32), self.window)))

    def _bin(self, images):
        b = self.bin
        if b == 1:
            return images
        n, h, w = images.shape
        h2, w2 = h // b, w // b
        return images[:, :h2 * b, :w2 * b].reshape(n, h2, b, w2, b).mean(axis=(2, 4))

    def _patches(self, images):
        """``(n, H, W)`` -> ``(n, rows*cols, ph, pw)`` (pixels beyond the grid are dropped)."""
        n = images.shape[0]
        (gr, gc), ph, pw = self.grid, self.ph, self.pw
        x = images[:, :gr * ph, :gc * pw].reshape(n, gr, ph, gc, pw)
        return x.transpose(0, 1, 3, 2, 4).reshape(n, gr * gc, ph, pw)

    def shifts(self, frames: np.ndarray) -> np.ndarray:
        """``(n, patches, 2)`` backward shifts ``(dx, dy)`` of ``frames`` ``(n, H, W)`` against the template.

        A frame showing the template moved by ``+dy`` rows and ``+dx`` columns
        gives ``(dx, dy)`` (the constant flow that warps it back), as
        :func:`frkit.rigid.rigid_shift`.
        """
        return self.shifts_binned(self._bin(np.asarray(frames, dtype=np.float32)))

    def shifts_binned(self, binned: np.ndarray) -> np.ndarray:
        """:meth:`shifts` of frames already binned by ``self.bin`` (``(n, H // bin, W // bin)``)."""
        x = _prepare(self._patches(np.asarray(binned, dtype=np.float32)), self.window)
        cc = sfft.irfft2(sfft.rfft2(x, workers=self.workers) * self.ref_fft, s=(self.ph, self.pw), workers=self.workers)
        n, p = cc.shape[:2]
        flat = cc.reshape(n, p, -1).argmax(axis=-1)
        iy, ix = np.unravel_index(flat, (self.ph, self.pw))
        ii, jj = np.meshgrid(np.arange(n), np.arange(p), indexing="ij")
        c0 = cc[ii, jj, iy, ix]
        oy = _parabola(cc[ii, jj, (iy - 1) % self.ph, ix], c0, cc[ii, jj, (iy + 1) % self.ph, ix])
        ox = _parabola(cc[ii, jj, iy, (ix - 1) % self.pw], c0, cc[ii, jj, iy, (ix + 1) % self.pw])
        # circular lag -> signed; the frame content sits at +lag relative to the template
        dy = np.where(iy > self.ph // 2, iy - self.ph, iy) + oy
        dx = np.where(ix > self.pw // 2, ix - self.pw, ix) + ox
        return np.stack([dx, dy], axis=-1) * self.bin


def patch_grid(height: int, width: int, patch: int = 64, most: int = 4) -> tuple[int, int]:
    """Rows x columns of patches about ``patch`` pixels wide (1..``most`` per axis)."""
    return (int(np.clip(height // patch, 1, most)), int(np.clip(width // patch, 1, most)))


def band_seam(band_shifts: np.ndarray, single: float = 0.25, slack: float = 1.5) -> np.ndarray:
    """Per frame: the one clear seam between the shifts of consecutive horizontal bands (pixels), else 0.

    ``band_shifts`` ``(n, bands, 2)`` from a :class:`Template` with a
    ``(bands, 1)`` grid. A torn frame (a block of rows displaced against the
    rest, as when the scanner skips) has exactly one place where the shift
    jumps; real non-rigid motion changes smoothly from band to band, and a
    frame too noisy to measure jumps everywhere. So the largest step counts
    only when every other step is at most ``max(slack, single * largest)``
    and at least two bands lie on each side of it (four bands or more).
    """
    d = np.diff(np.asarray(band_shifts, dtype=np.float64), axis=1)
    n, k = d.shape[:2]
    if k < 3:
        return np.zeros(n)
    steps = np.hypot(d[..., 0], d[..., 1])
    at = steps.argmax(axis=1)
    largest = steps[np.arange(n), at]
    others = np.sort(steps, axis=1)[:, -2]
    # at least two bands on each side: a lone outlying band at an edge is a noise peak, not a tear
    inside = (at >= 1) & (at <= k - 2)
    return np.where(inside & (others <= np.maximum(slack, single * largest)), largest, 0.0)


def band_spread(band_shifts: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Per frame: the largest distance of a band's shift ``(n, bands, 2)`` from the frame's ``(n, 2)`` (pixels).

    A real jump moves every band alike; a noise peak in a frame too dim to
    measure lands somewhere else in every band.
    """
    d = np.asarray(band_shifts, dtype=np.float64) - np.asarray(shift, dtype=np.float64)[:, None, :]
    return np.hypot(d[..., 0], d[..., 1]).max(axis=1)


def saturated_fraction(frames: np.ndarray) -> np.ndarray:
    """Per frame ``(n, H, W, C)``: the fraction of samples at the clipping level.

    Integers: the dtype's maximum (the digitizer's ceiling). Floats have no
    ceiling; there a frame's own maximum counts when many samples share it
    exactly (clipped data), which a noisy natural frame never does.
    """
    f = np.asarray(frames)
    n = f.shape[0]
    flat = f.reshape(n, -1)
    if np.issubdtype(f.dtype, np.integer):
        return (flat == np.iinfo(f.dtype).max).mean(axis=1)
    top = flat.max(axis=1, keepdims=True)
    return (flat == top).mean(axis=1)


def running_median(x: np.ndarray, half: int = 5) -> np.ndarray:
    """Median over ``[t - half, t + half]`` (clipped at the ends), ignoring NaN; ``(T,)`` or ``(T, k)``.

    A window without a finite value gives 0.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.shape[0] == 0:
        return x.copy()
    pad = np.full((x.shape[0] + 2 * half,) + x.shape[1:], np.nan)
    pad[half: half + x.shape[0]] = x  # NaN beyond the ends: nanmedian then sees the clipped window
    windows = np.lib.stride_tricks.sliding_window_view(pad, 2 * half + 1, axis=0)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows
        out = np.nanmedian(windows, axis=-1)
    return np.nan_to_num(out)


def robust_z(x: np.ndarray, floor: float = 0.0) -> np.ndarray:
    """``(x - median) / (1.4826 MAD + floor)`` over the finite values (NaN stays NaN)."""
    x = np.asarray(x, dtype=np.float64)
    ok = np.isfinite(x)
    if not ok.any():
        return np.full_like(x, np.nan)
    med = np.median(x[ok])
    mad = 1.4826 * np.median(np.abs(x[ok] - med))
    scale = mad + floor
    with np.errstate(invalid="ignore", divide="ignore"):
        return (x - med) / scale if scale > 0 else np.where(x == med, 0.0, np.inf * np.sign(x - med))

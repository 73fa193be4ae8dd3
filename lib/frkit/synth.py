"""Synthetic 2-photon recordings with known motion.

A static field of view (smooth neuropil, ring-shaped somata with dark nuclei,
dark vessels) on a canvas larger than the frame; cells fluctuate with
calcium-like activity; each frame views the canvas through a known smooth
deformation (rigid drift plus low-frequency non-rigid warps) and gets
Poisson shot noise.

The ground truth is the backward field ``w_t`` of every frame:
``frame_t(p + w_t(p)) = template(p)``, i.e. warping frame ``t`` by ``w_t``
(``out(y, x) = in(y + v, x + u)``) recovers the unmoved field of view. It is
the field fr-compensate should estimate against a reference of the unmoved
view.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

__all__ = ["SyntheticSession", "Motion", "View", "between_truth", "make_template", "render_frames",
           "true_backward_flow", "MotionError", "session_views", "Transform", "transformed_pair",
           "average_sources"]

MARGIN = 24
#: neuropil texture: (sigma px, amplitude) components; cell density
NEUROPIL = {"base": 0.45, "scales": ((6.0, 0.08), (2.0, 0.06), (1.0, 0.14)), "px_per_cell": 450}
#: resting soma brightness (relative to the 0.25..0.7 neuropil) and the
#: fractional brightness change per spike (GCaMP6-like dF/F of ~50 %)
CELL_BRIGHTNESS = 0.8
DFF_PER_SPIKE = 0.5


@dataclass
class Motion:
    """Forward sampling displacement per frame: ``frame_t(q) = canvas(q + d_t(q))``.

    ``drift`` is ``(T, 2)`` (dx, dy) in pixels; ``modes`` a list of
    ``(amplitude (T, 2), ky, kx, phase)`` low-frequency sinusoids, where
    ``d(q) += amp_t * sin(2 pi (ky*y/H + kx*x/W) + phase)``.
    """

    drift: np.ndarray
    modes: list

    def at(self, t: int, y: np.ndarray, x: np.ndarray, h: int, w: int) -> np.ndarray:
        """``d_t`` evaluated at arbitrary positions (``y``, ``x`` arrays) -> ``(..., 2)``."""
        d = np.empty(np.shape(y) + (2,))
        d[..., 0] = self.drift[t, 0]
        d[..., 1] = self.drift[t, 1]
        for amp, ky, kx, phase in self.modes:
            s = np.sin(2 * np.pi * (ky * y / h + kx * x / w) + phase)
            d[..., 0] += amp[t, 0] * s
            d[..., 1] += amp[t, 1] * s
        return d

    def forward(self, t: int, h: int, w: int) -> np.ndarray:
        """``d_t`` on the pixel grid as ``(H, W, 2)`` (dx, dy)."""
        y, x = np.mgrid[0:h, 0:w].astype(np.float64)
        return self.at(t, y, x, h, w)

    def backward(self, t: int, h: int, w: int, tol: float = 1e-7) -> np.ndarray:
        """The exact backward field ``w(p) = -d(p + w(p))`` by fixed-point iteration."""
        y, x = np.mgrid[0:h, 0:w].astype(np.float64)
        flow = -self.at(t, y, x, h, w)
        for _ in range(100):
            new = -self.at(t, y + flow[..., 1], x + flow[..., 0], h, w)
            change = np.abs(new - flow).max()
            flow = new
            if change < tol:
                break
        return flow


@dataclass
class View:
    """Where a recording sits on the field of view: a rigid shift, a rotation
    about the frame centre and a smooth elastic warp (a few px).

    ``map(y, x)`` gives canvas coordinates (before the margin) of recording
    coordinates; a recording's frame ``t`` shows ``canvas(map(q + d_t(q)))``.
    """

    shift: tuple[float, float] = (0.0, 0.0)  # (dx, dy)
    rotation_deg: float = 0.0
    elastic_px: float = 0.0
    seed: int = 0
    height: int = 0
    width: int = 0

    def __post_init__(self):
        rng = np.random.default_rng(self.seed)
        self._modes = [(rng.uniform(-1, 1, 2) * self.elastic_px / 2, rng.uniform(-1, 1), rng.uniform(-1, 1),
                        rng.uniform(0, 2 * np.pi)) for _ in range(3)]

    def map(self, y, x):
        h, w = self.height, self.width
        cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
        th = np.deg2rad(self.rotation_deg)
        c, s = np.cos(th), np.sin(th)
        yy = c * (y - cy) - s * (x - cx) + cy + self.shift[1]
        xx = s * (y - cy) + c * (x - cx) + cx + self.shift[0]
        for amp, ky, kx, ph in self._modes:
            wave = np.sin(2 * np.pi * (ky * y / h + kx * x / w) + ph)
            xx = xx + amp[0] * wave
            yy = yy + amp[1] * wave
        return yy, xx

    def inverse(self, ty, tx, iterations: int = 200):
        y, x = np.array(ty, dtype=np.float64), np.array(tx, dtype=np.float64)
        for _ in range(iterations):
            yy, xx = self.map(y, x)
            dy, dx = ty - yy, tx - xx
            y, x = y + dy, x + dx
            if max(np.abs(dy).max(), np.abs(dx).max()) < 1e-9:
                break
        return y, x


def between_truth(reference: View, moving: View) -> np.ndarray:
    """The field ``w`` (H, W, 2) with ``moving(p + w(p)) = reference(p)`` for the unmoved views."""
    h, w = reference.height, reference.width
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    ty, tx = reference.map(y, x)
    my, mx = moving.inverse(ty, tx)
    return np.stack([mx - x, my - y], -1)


def _texture(rng, shape, sigma):
    """Gaussian-filtered white noise with zero mean and unit standard deviation."""
    f = ndi.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return f / (f.std() + 1e-12)


def make_template(rng: np.random.Generator, height: int, width: int, n_cells: int | None = None,
                  margin: int = MARGIN):
    """Static canvas ``(H + 2m, W + 2m)`` and the cell footprints.

    Returns ``(background, footprints, centers)``: the background image,
    a list of ``(slice_y, slice_x, patch)`` cell footprints on the canvas and
    their centres. Intensities are in arbitrary units around 0..1.
    """
    ch, cw = height + 2 * margin, width + 2 * margin
    if n_cells is None:
        n_cells = max(8, int(ch * cw / NEUROPIL["px_per_cell"]))
    # neuropil: smooth large-scale variation plus fine texture (dendrites,
    # axons), matching the gradient/Laplacian statistics of real mean images
    neuropil = NEUROPIL["base"] + sum(a * _texture(rng, (ch, cw), sig) for sig, a in NEUROPIL["scales"])
    neuropil = np.clip(neuropil, 0.02, None)
    # vessels: dark smooth curves
    y, x = np.mgrid[0:ch, 0:cw].astype(np.float64)
    vessels = np.zeros((ch, cw))
    for _ in range(max(1, (height + width) // 200)):
        a = rng.uniform(0, np.pi)
        c = rng.uniform(0.2, 0.8) * np.array([ch, cw])
        dist = np.abs((y - c[0]) * np.cos(a) - (x - c[1]) * np.sin(a) + 6 * np.sin(x / 37.0 + y / 53.0))
        vessels = np.maximum(vessels, np.exp(-0.5 * (dist / rng.uniform(2.0, 4.0)) ** 2))
    background = neuropil * (1 - 0.7 * vessels)
    footprints, centers = [], []
    for _ in range(n_cells):
        cy, cx = rng.uniform(3, ch - 3), rng.uniform(3, cw - 3)
        r = rng.uniform(3.0, 5.5)
        half = int(np.ceil(r * 2.2))
        y0, y1 = int(max(0, np.floor(cy) - half)), int(min(ch, np.floor(cy) + half + 1))
        x0, x1 = int(max(0, np.floor(cx) - half)), int(min(cw, np.floor(cx) + half + 1))
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
        d = np.hypot(yy - cy, xx - cx)
        ring = np.exp(-0.5 * ((d - r * 0.75) / (r * 0.35)) ** 2) - 0.5 * np.exp(-0.5 * (d / (r * 0.35)) ** 2)
        footprints.append((slice(y0, y1), slice(x0, x1), np.clip(ring, 0, None)))
        centers.append((cy, cx))
    return background, footprints, np.array(centers)


def calcium_traces(rng, n_cells: int, n_frames: int, rate: float = 0.02, tau: float = 8.0) -> np.ndarray:
    """Spikes convolved with an exponential decay: ``(T, n_cells)`` >= 0."""
    spikes = (rng.random((n_frames, n_cells)) < rate).astype(np.float64)
    kernel = np.exp(-np.arange(int(6 * tau)) / tau)
    out = np.empty_like(spikes)
    for c in range(n_cells):
        out[:, c] = np.convolve(spikes[:, c], kernel)[:n_frames]
    return out


def true_backward_flow(d: np.ndarray, iterations: int = 40) -> np.ndarray:
    """Invert a smooth forward sampling field: ``w(p) = -d(p + w(p))`` (fixed point)."""
    h, w = d.shape[:2]
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    flow = -d.copy()
    for _ in range(iterations):
        coords = [y + flow[..., 1], x + flow[..., 0]]
        flow = np.stack([-ndi.map_coordinates(d[..., k], coords, order=3, mode="nearest") for k in (0, 1)], -1)
    return flow


def render_frames(background, footprints, activity, motion: Motion, frames, height: int, width: int,
                  margin: int = MARGIN, view: View | None = None) -> np.ndarray:
    """Noise-free frames ``(n, H, W)`` float64 for the frame indices ``frames``."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    out = np.empty((len(frames), height, width))
    for n, t in enumerate(frames):
        canvas = background.copy()
        for (sy, sx, patch), a in zip(footprints, activity[t]):
            canvas[sy, sx] += CELL_BRIGHTNESS * (1.0 + DFF_PER_SPIKE * a) * patch
        d = motion.forward(t, height, width)
        qy, qx = y + d[..., 1], x + d[..., 0]
        if view is not None:
            qy, qx = view.map(qy, qx)
        out[n] = ndi.map_coordinates(canvas, [qy + margin, qx + margin], order=3, mode="nearest")
    return out


class SyntheticSession:
    """A reproducible synthetic recording (or several views of one field).

    ``photons`` scales intensities to expected photon counts before Poisson
    noise; ``None`` gives noise-free float frames. ``shift_px`` scales the
    rigid drift, ``warp_px`` the non-rigid part (both as peak amplitude).
    """

    def __init__(self, height=128, width=128, n_frames=60, seed=0, shift_px=3.0, warp_px=1.5,
                 photons: float | None = 100.0, n_cells=None, channels=1, margin=MARGIN,
                 view: View | None = None, motion_seed: int | None = None):
        self.height, self.width, self.n_frames = height, width, n_frames
        self.channels = channels
        self.margin = margin
        self.photons = photons
        self.view = view
        rng = np.random.default_rng(seed)
        self.background, self.footprints, self.centers = make_template(rng, height, width, n_cells, margin)
        # a recording of the same field (same seed) moves and fires on its own
        mrng = rng if motion_seed is None else np.random.default_rng(motion_seed)
        self.activity = calcium_traces(mrng, len(self.footprints), n_frames)
        self.motion = self._motion(mrng, shift_px, warp_px)
        self._noise_seed = (seed if motion_seed is None else motion_seed) + 1000

    def _motion(self, rng, shift_px, warp_px) -> Motion:
        t = np.arange(self.n_frames)
        # slow drift + jitter, peak about shift_px
        phase = rng.uniform(0, 2 * np.pi, 2)
        slow = np.stack([np.sin(2 * np.pi * t / max(40, self.n_frames) + phase[k]) for k in (0, 1)], -1)
        jitter = ndi.gaussian_filter1d(rng.standard_normal((self.n_frames, 2)), 1.5, axis=0)
        jitter /= np.abs(jitter).max() + 1e-12
        drift = shift_px * (0.75 * slow + 0.25 * jitter)
        modes = []
        for _ in range(3):
            ky, kx = rng.uniform(-1.0, 1.0, 2)
            amp = ndi.gaussian_filter1d(rng.standard_normal((self.n_frames, 2)), 3.0, axis=0)
            amp = warp_px / 3 * amp / (np.abs(amp).max() + 1e-12)
            modes.append((amp, ky, kx, rng.uniform(0, 2 * np.pi)))
        return Motion(drift, modes)

    def template(self) -> np.ndarray:
        """The unmoved field of view (mean activity), ``(H, W)`` float64, photon units if noisy."""
        still = Motion(np.zeros((self.n_frames, 2)), [])
        mean_act = np.broadcast_to(self.activity.mean(axis=0), self.activity.shape)
        img = render_frames(self.background, self.footprints, mean_act, still, [0], self.height, self.width,
                            self.margin, self.view)[0]
        return img * (self.photons or 1.0)

    def true_flow(self, t: int) -> np.ndarray:
        """Backward field of frame ``t`` relative to the unmoved view, ``(H, W, 2)``."""
        return self.motion.backward(t, self.height, self.width)

    def frames(self, start: int = 0, stop: int | None = None, dtype=np.uint16) -> np.ndarray:
        """Frames ``(n, H, W, C)``; channel 2+ are dimmer structural copies."""
        stop = self.n_frames if stop is None else stop
        idx = list(range(start, stop))
        clean = render_frames(self.background, self.footprints, self.activity, self.motion, idx, self.height,
                              self.width, self.margin, self.view)
        chans = [clean]
        for c in range(1, self.channels):
            chans.append(0.5 * clean + 0.2)
        out = np.stack(chans, -1)
        if self.photons is None:
            return out.astype(dtype)
        lam = np.clip(out, 0, None) * self.photons
        noisy = np.empty_like(lam)
        for n, t in enumerate(idx):
            # per-frame generator: any frame range renders the same values
            noisy[n] = np.random.default_rng((self._noise_seed, t)).poisson(lam[n])
        if np.dtype(dtype).kind in "iu":
            info = np.iinfo(dtype)
            return np.clip(noisy, info.min, info.max).astype(dtype)
        return noisy.astype(dtype)

    def still_frames(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """The true frames: noise-free, unmoved (the activity of each frame), ``(n, H, W)`` float64."""
        stop = self.n_frames if stop is None else stop
        still = Motion(np.zeros((self.n_frames, 2)), [])
        return render_frames(self.background, self.footprints, self.activity, still, list(range(start, stop)),
                             self.height, self.width, self.margin, self.view)

    def peak_motion(self) -> float:
        """Largest true displacement magnitude over all frames (pixels)."""
        return max(float(np.hypot(*np.moveaxis(self.motion.forward(t, self.height, self.width), -1, 0)).max())
                   for t in range(self.n_frames))


class MotionError:
    """Streaming residual-motion statistics of estimated against true flows.

    Feed frame by frame. With ``e_t = estimate_t - truth_t``, the residual
    motion is the RMS over frames and interior pixels of ``e_t - mean_t e_t``:
    motion left between the corrected frames. A common offset (the
    reference's own position and shape) does not count, since every frame
    is aligned to the same reference. ``input_rms`` is the same statistic of
    the true flows: the motion present before correction.
    """

    def __init__(self, border: int = 0):
        self.border = border
        self.n = 0
        self._sum_e = self._sum_e2 = self._sum_t = self._sum_t2 = None

    def _crop(self, a):
        b = self.border
        return a[b:a.shape[0] - b, b:a.shape[1] - b] if b else a

    def add(self, estimate: np.ndarray, truth: np.ndarray) -> None:
        est = self._crop(np.asarray(estimate, dtype=np.float64))
        tru = self._crop(np.asarray(truth, dtype=np.float64))
        e = est - tru
        if self._sum_e is None:
            self._sum_e = np.zeros_like(e)
            self._sum_e2 = np.zeros(e.shape[:2])
            self._sum_t = np.zeros_like(tru)
            self._sum_t2 = np.zeros(e.shape[:2])
        self._sum_e += e
        self._sum_e2 += (e ** 2).sum(-1)
        self._sum_t += tru
        self._sum_t2 += (tru ** 2).sum(-1)
        self.n += 1

    @staticmethod
    def _rms(s, s2, n):
        mean = s / n
        return float(np.sqrt(max(0.0, (s2 / n - (mean ** 2).sum(-1)).mean())))

    @property
    def residual_rms(self) -> float:
        return self._rms(self._sum_e, self._sum_e2, self.n)

    @property
    def input_rms(self) -> float:
        return self._rms(self._sum_t, self._sum_t2, self.n)




def session_views(n: int, height: int, width: int, seed: int = 0, max_shift: float = 12.0,
                  max_rotation: float = 1.5, elastic_px: float = 2.0) -> list[View]:
    """``n`` views of one field of view: the middle one unmoved, the others shifted
    (up to ``max_shift`` px), rotated (up to ``max_rotation`` degrees) and warped."""
    rng = np.random.default_rng(seed)
    views = []
    for i in range(n):
        if i == (n + 1) // 2 - 1:
            views.append(View((0.0, 0.0), 0.0, elastic_px, seed * 100 + i, height, width))
            continue
        shift = tuple(rng.uniform(-max_shift, max_shift, 2))
        views.append(View(shift, rng.uniform(-max_rotation, max_rotation), elastic_px, seed * 100 + i, height,
                          width))
    return views


# -- pairs of temporal averages with a known transform (stage 2) -------------------------------------------------

class Transform:
    """Moving-recording coordinates -> field coordinates: rotation and scale about the frame centre, a shift
    ``(dx, dy)`` and a smooth elastic warp (three low-frequency waves, about ``elastic_px`` at the peak)."""

    def __init__(self, h, w, shift, rotation_deg, scale, elastic_px, seed):
        self.h, self.w = h, w
        self.shift, self.th, self.scale = shift, np.deg2rad(rotation_deg), scale
        rng = np.random.default_rng(seed)
        self.modes = [(rng.uniform(-1, 1, 2) * elastic_px / 2, rng.uniform(-1.2, 1.2), rng.uniform(-1.2, 1.2),
                       rng.uniform(0, 2 * np.pi)) for _ in range(3)]

    def map(self, y, x):
        cy, cx = (self.h - 1) / 2, (self.w - 1) / 2
        c, s = np.cos(self.th) * self.scale, np.sin(self.th) * self.scale
        yy = c * (y - cy) - s * (x - cx) + cy + self.shift[1]
        xx = s * (y - cy) + c * (x - cx) + cx + self.shift[0]
        for amp, ky, kx, ph in self.modes:
            wave = np.sin(2 * np.pi * (ky * y / self.h + kx * x / self.w) + ph)
            xx, yy = xx + amp[0] * wave, yy + amp[1] * wave
        return yy, xx

    def inverse(self, ty, tx):
        y, x = ty.copy(), tx.copy()
        for _ in range(300):
            yy, xx = self.map(y, x)
            y, x = y + (ty - yy), x + (tx - xx)
        return y, x


def transformed_pair(ref_src, mov_src, h, w, margin, shift, rot, scale, elastic, gain, seed,
                     crop_moving: float = 0.0, border: int = 8):
    """Two averages of one field with a known transform between them: ``(reference, moving, truth, interior)``.

    ``reference`` is ``ref_src[margin:margin+h, margin:margin+w]``; ``moving``
    is ``mov_src`` (same field, other activity and noise) seen through
    :class:`Transform` ``(shift (dx, dy), rot deg, scale, elastic px)`` and
    multiplied by ``gain``. ``truth`` is the backward field (H, W, 2) with
    ``moving(p + truth(p)) = reference(p)``; ``interior`` the pixels at least
    ``border`` px inside the frame whose match lies that far inside the moving
    frame too. ``crop_moving`` blanks that fraction of the moving frame's width
    on one side (a recording that sees less of the field).
    """
    tf = Transform(h, w, shift, rot, scale, elastic, seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    sy, sx = tf.map(y, x)
    moving = ndi.map_coordinates(mov_src, [sy + margin, sx + margin], order=3, mode="nearest") * gain
    reference = ref_src[margin:margin + h, margin:margin + w].copy()
    my, mx = tf.inverse(y, x)
    truth = np.stack([mx - x, my - y], -1)
    lo, hi_y, hi_x = border, h - 1 - border, w - 1 - border
    interior = ((y >= lo) & (y <= hi_y) & (x >= lo) & (x <= hi_x)
                & (my >= lo) & (my <= hi_y) & (mx >= lo) & (mx <= hi_x))
    if crop_moving > 0:
        cut = int(round(crop_moving * w))
        moving[:, w - cut:] = np.median(moving)
        interior &= mx <= w - cut - 1 - border
    return reference, moving, truth, interior


def average_sources(h, w, margin, seed, photons=(30.0, 60.0), frames=(40, 40)):
    """Two temporal averages ``(H + 2 margin, W + 2 margin)`` of one synthetic field, each with its own cell
    activity and shot noise (the mean of ``frames`` frames at ``photons`` per unit intensity)."""
    rng = np.random.default_rng(seed)
    bg, fps, _ = make_template(rng, h + 2 * margin - 2 * MARGIN, w + 2 * margin - 2 * MARGIN)
    out = []
    for k in range(2):
        act = calcium_traces(np.random.default_rng(seed * 10 + k), len(fps), 200).mean(0)
        act = act * np.random.default_rng(seed * 20 + k).uniform(0.3, 2.0, len(fps))  # cells differ per day
        canvas = bg.copy()
        for (sy, sx, patch), a in zip(fps, act):
            canvas[sy, sx] += CELL_BRIGHTNESS * (1 + DFF_PER_SPIKE * a) * patch
        lam = np.clip(canvas, 0, None) * photons[k] * frames[k]
        out.append(np.random.default_rng(seed * 30 + k).poisson(lam) / frames[k])
    return out

"""fr-align's own image filters and phase correlation match the scipy/skimage functions they replace.

fr-align no longer imports scipy.ndimage or skimage (start-up time); these tests pin that the replacements
compute the same thing: scipy's Gaussian (reflect borders, truncate 4), skimage's phase correlation.
"""

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.registration import phase_cross_correlation

from frkit.filters import gaussian_smooth
from frkit.rigid import _prepare, phase_correlation, rigid_shift


@pytest.mark.parametrize("shape", [(64, 80), (40, 56, 2), (7, 9)])
@pytest.mark.parametrize("sigma", [0.7, 2.0, 6.0, 12.0])
def test_gaussian_smooth_is_scipys_gaussian_with_reflected_borders(shape, sigma):
    img = np.random.default_rng(0).random(shape) * 100
    expected = ndi.gaussian_filter(img, (sigma, sigma, 0)[: img.ndim], mode="reflect", truncate=4.0)
    got = gaussian_smooth(img, sigma)
    assert got.shape == img.shape and got.dtype == np.float64
    assert np.allclose(got, expected, rtol=0, atol=1e-6 * np.abs(expected).max())  # float32 taps
    if img.ndim == 3:  # channels are never mixed
        assert np.allclose(gaussian_smooth(img[..., 1], sigma), got[..., 1])


def shifted_pair(rng, h, w, shift, noise=0.01):
    base = ndi.gaussian_filter(rng.random((h + 60, w + 60)), 2.0)
    ref = base[30:30 + h, 30:30 + w]
    mov = ndi.shift(base, shift, order=3)[30:30 + h, 30:30 + w] + rng.normal(0, noise, (h, w))
    return _prepare(ref, None, h, w), _prepare(mov, None, h, w)


def test_phase_correlation_agrees_with_skimage():
    rng = np.random.default_rng(2)
    agree = 0
    for k in range(40):
        h, w = rng.integers(32, 160, 2)
        shift = rng.uniform(-20, 20, 2) if k % 2 else rng.integers(-25, 26, 2)
        ref, mov = shifted_pair(rng, h, w, shift)
        for up in (1, 4):
            expected = phase_cross_correlation(ref, mov, upsample_factor=up, normalization="phase",
                                               disambiguate=True)[0]
            agree += np.allclose(phase_correlation(ref, mov, up), expected, atol=1e-6)
    # the two FFTs round float32 differently; only near-ties of the peak may differ
    assert agree >= 76, agree


def test_rigid_shift_recovers_a_quarter_frame_offset_beyond_half_a_period():
    """The sign of a large shift comes from the unwrapping (modulo the frame, +20 rows is also -44)."""
    rng = np.random.default_rng(3)
    base = ndi.gaussian_filter(rng.random((200, 200)), 2.0)
    ref = base[50:114, 50:146]  # 64 x 96
    mov = base[50 - 20:114 - 20, 50 + 30:146 + 30]  # mov(y, x) = ref(y - 20, x + 30)
    dx, dy = rigid_shift(ref, mov, upsample=4)  # backward: mov(y + dy, x + dx) = ref(y, x)
    assert (dx, dy) == pytest.approx((-30.0, 20.0), abs=0.6)  # the Hann window biases it by up to half a pixel

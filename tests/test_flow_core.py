"""The optical-flow method: pyramid, resize, tensor, solver, median, warp, policies; the engine interface."""

import inspect
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import ndimage as ndi

from frkit.flow import kernels as K
from frkit.flow import policy
from frkit.flow.displacement import get_displacement
from frkit.flow.params import FlowParams
from frkit.flow.pyramid import flow_upsample_table, pyramid_levels, resize_table, warping_depth
from frkit.flow.warp import mask_and_statistics, valid_mask, warp_frame, warp_into

from literal_solver import literal_level_solver


# -- pyramid geometry -------------------------------------------------------

@pytest.mark.parametrize("size,depth", [(64, 9), (128, 12), (256, 15), (512, 18), (796, 20), (1024, 21)])
def test_warping_depth_stops_at_first_level_below_10px(size, depth):
    assert warping_depth(size, 0.8, 100) == depth


def test_pyramid_sizes_and_alpha_scaling_512():
    levels = pyramid_levels(512, 512, 0.8, 100, 0)
    assert [lv.rows for lv in levels] == [9, 12, 14, 18, 23, 28, 35, 44, 55, 69, 86, 107, 134, 168, 210, 262,
                                          328, 410, 512]
    assert levels[0].index == 18 and levels[-1].index == 0
    assert levels[0].alpha_scale == pytest.approx(0.8 ** -9, rel=1e-12)
    assert levels[-2].alpha_scale == pytest.approx(0.8 ** -0.5)
    assert levels[-1].alpha_scale == 1.0
    # the drop to 1 happens at min_level, whatever it is
    balanced = pyramid_levels(512, 512, 0.8, 100, 4)
    assert balanced[-1].index == 4 and balanced[-1].alpha_scale == 1.0 and balanced[-1].rows == 210


def test_non_square_pyramid_axes_shrink_independently():
    levels = pyramid_levels(200, 512, 0.8, 100, 0)
    assert levels[-1].rows == 200 and levels[-1].cols == 512
    # rows stop shrinking at their own depth (14 for 200 px)
    assert min(lv.rows for lv in levels) == round(200 * 0.8 ** warping_depth(200, 0.8, 100))
    for lv in levels:
        assert lv.h_row == pytest.approx(200 / lv.rows) and lv.h_col == pytest.approx(512 / lv.cols)


def test_tiny_image_lowers_min_level():
    levels = pyramid_levels(12, 12, 0.8, 100, 6)
    assert levels[-1].index == levels[0].index - 1 >= 0


# -- resize -----------------------------------------------------------------

def test_resize_table_identity_at_scale_one():
    idx, w = resize_table(17, 17, 0.0)
    x = np.random.default_rng(0).random(17)
    assert np.allclose((w * x[idx]).sum(1), x, atol=1e-7)


@pytest.mark.parametrize("n_in,n_out,sigma", [(512, 210, 0.6 * 512 / 210), (64, 9, 0.6 * 64 / 9)])
def test_resize_tables_preserve_constants_and_ramps(n_in, n_out, sigma):
    idx, w = resize_table(n_in, n_out, sigma)
    assert np.allclose(w.sum(1), 1, atol=1e-6)
    assert idx.min() >= 0 and idx.max() < n_in
    # a linear ramp maps to the ramp at the source positions, away from the reflected borders
    ramp = np.arange(n_in, dtype=np.float64)
    out = (w * ramp[idx]).sum(1)
    pos = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
    inner = (pos > 3 * max(sigma, 1) + 2) & (pos < n_in - 3 * max(sigma, 1) - 3)
    assert np.abs(out[inner] - pos[inner]).max() < 0.06


def test_flow_upsampling_reproduces_ramps_without_overshoot():
    idx, w = flow_upsample_table(10, 40)
    assert idx.min() == 0 and idx.max() == 9 and (w >= 0).all()
    ramp = np.arange(10.0)
    pos = (np.arange(40) + 0.5) / 4 - 0.5
    out = (w * ramp[idx]).sum(1)
    inner = (pos > 1.5) & (pos < 7.5)
    assert np.allclose(out[inner], pos[inner], atol=1e-6)
    step = (np.arange(10) >= 5).astype(float)
    vals = (w * step[idx]).sum(1)
    assert vals.min() >= 0 and vals.max() <= 1 + 1e-6  # no ringing
    i2, w2 = flow_upsample_table(7, 7)
    assert np.array_equal((w2 * ramp[:7][i2]).sum(1), ramp[:7])


# -- motion tensor ----------------------------------------------------------

def _tensor(f1, f2, h_row, h_col):
    r, c = f1.shape
    J = np.empty((6, c + 2, r + 2))
    K.motion_tensor_gc(f1.astype(np.float32), f2.astype(np.float32), h_row, h_col, J)
    return J.transpose(0, 2, 1)  # back to (6, R+2, C+2)


def test_gc_tensor_second_derivative_binds_to_columns():
    # f = 1e-3 x^2 in physical units with h_col = 2: J11 = 0.8 at the centre
    r, c = 9, 9
    x = np.arange(c) * 2.0
    f = np.tile(1e-3 * x**2, (r, 1))
    J = _tensor(f, f, 1.0, 2.0)
    assert J[0, 5, 5] == pytest.approx(0.8, rel=1e-3)
    # identical frames: no temporal terms; the ring is zero
    assert np.all(J[2] == 0) and np.all(J[4] == 0) and np.all(J[5] == 0)
    assert np.all(J[:, 0, :] == 0) and np.all(J[:, :, -1] == 0)


def test_gc_tensor_transposes_with_the_image():
    rng = np.random.default_rng(1)
    f1 = ndi.gaussian_filter(rng.random((20, 20)), 1.5)
    f2 = ndi.shift(f1, (0.3, -0.2), order=3, mode="nearest")
    J = _tensor(f1, f2, 1.0, 1.0)
    Jt = _tensor(f1.T.copy(), f2.T.copy(), 1.0, 1.0)
    # transposing swaps J11/J22 and J13/J23 except where one-sided edge differences enter
    inner = (slice(3, -3), slice(3, -3))
    assert np.allclose(J[0][inner], Jt[1].T[inner], rtol=1e-4, atol=1e-8)
    assert np.allclose(J[4][inner], Jt[5].T[inner], rtol=1e-4, atol=1e-8)


# -- level solver -----------------------------------------------------------

def _random_problem(seed, r=6, c=7, k=1):
    rng = np.random.default_rng(seed)
    J = np.zeros((k, 6, r + 2, c + 2))
    for ch in range(k):
        g = rng.standard_normal((3, r, c))
        # a positive semi-definite tensor from gradient-like vectors
        a, b, t = g
        J[ch, 0, 1:-1, 1:-1] = a * a + 0.1
        J[ch, 1, 1:-1, 1:-1] = b * b + 0.1
        J[ch, 2, 1:-1, 1:-1] = t * t
        J[ch, 3, 1:-1, 1:-1] = a * b
        J[ch, 4, 1:-1, 1:-1] = a * t
        J[ch, 5, 1:-1, 1:-1] = b * t
    U = np.pad(rng.standard_normal((r, c)) * 0.3, 1, mode="edge")
    V = np.pad(rng.standard_normal((r, c)) * 0.3, 1, mode="edge")
    wt = rng.random(k) + 0.2
    return J, U, V, wt / wt.sum()


def _kernel_solve(J, U, V, wt, a_data, iterations, lag, a_s, alpha=(1.5, 2.0), h=(1.3, 0.9)):
    Jt = np.ascontiguousarray(J.transpose(0, 1, 3, 2))
    Ut, Vt = np.ascontiguousarray(U.T), np.ascontiguousarray(V.T)
    dU, dV = np.empty_like(Ut), np.empty_like(Vt)
    K.solve_level(Jt, np.asarray(wt, float), np.asarray(a_data, float), Ut, Vt, alpha[0], alpha[1], h[0], h[1],
                  iterations, lag, a_s, policy.OMEGA, dU, dV)
    return dU.T, dV.T


@pytest.mark.parametrize("k,a_s,lag", [(1, 1.0, 5), (2, 1.0, 3), (1, 0.5, 2), (2, 0.7, 1)])
def test_solver_matches_literal_transcription(k, a_s, lag):
    J, U, V, wt = _random_problem(k * 10 + lag, k=k)
    a_data = [0.45, 0.6][:k]
    dU, dV = _kernel_solve(J, U, V, wt, a_data, 12, lag, a_s)
    lu, lv = literal_level_solver(J, wt, U, V, 1.5, 2.0, 1.3, 0.9, 12, lag, a_data, a_s)
    inner = (slice(1, -1), slice(1, -1))
    assert np.allclose(dU[inner], lu[inner], rtol=1e-7, atol=1e-9)
    assert np.allclose(dV[inner], lv[inner], rtol=1e-7, atol=1e-9)


def test_solver_sweep_order():
    # With a 5-point stencil, column-major and row-major Gauss-Seidel see the
    # same new (left, up) and old (right, down) neighbours at every pixel, so
    # they agree exactly; that is why the transposed layout is free. A sweep
    # in another direction gives a different iterate, and the kernel is not it.
    J, U, V, wt = _random_problem(3)
    dU, _ = _kernel_solve(J, U, V, wt, [0.45], 3, 10, 1.0)
    args = (J, wt, U, V, 1.5, 2.0, 1.3, 0.9, 3, 10, [0.45], 1.0)
    col_u, _ = literal_level_solver(*args, order="column")
    row_u, _ = literal_level_solver(*args, order="row")
    rev_u, _ = literal_level_solver(*args, order="reverse")
    inner = (slice(1, -1), slice(1, -1))
    assert np.array_equal(row_u, col_u)
    assert not np.allclose(rev_u[inner], col_u[inner], rtol=1e-4)
    assert np.allclose(dU[inner], col_u[inner], rtol=1e-8, atol=1e-10)


def test_solver_lag_cadence():
    J, U, V, wt = _random_problem(5)
    # update_lag > iterations: quadratic weights only, a_data has no effect
    a1, _ = _kernel_solve(J, U, V, wt, [0.3], 4, 5, 1.0)
    a2, _ = _kernel_solve(J, U, V, wt, [0.9], 4, 5, 1.0)
    assert np.array_equal(a1, a2)
    # update_lag = 1: the robust weight applies before the first sweep
    b1, _ = _kernel_solve(J, U, V, wt, [0.3], 1, 1, 1.0)
    b2, _ = _kernel_solve(J, U, V, wt, [0.9], 1, 1, 1.0)
    assert not np.allclose(b1, b2)


def test_fast_pow_accuracy():
    x = np.concatenate([np.geomspace(1e-5, 1e8, 50001), [1.0, 2.0, 0.5]])
    for p in (-0.55, -0.5, -1.0, 0.3, 0.0):
        y = x.copy()
        K.pow_inplace(y, p)
        assert np.max(np.abs(y / x**p - 1)) < 1e-8


# -- median -----------------------------------------------------------------

@pytest.mark.parametrize("shape", [(6, 6), (13, 9), (40, 33)])
def test_median5x5_matches_scipy_mirror(shape):
    rng = np.random.default_rng(sum(shape))
    a = np.pad(rng.standard_normal(shape), 1)
    a[3:6, 2:4] = 7.0  # ties
    want = ndi.median_filter(a[1:-1, 1:-1], size=5, mode="mirror")
    K.median5x5(a)
    assert np.array_equal(a[1:-1, 1:-1], want)


# -- warping and valid masks ------------------------------------------------

def test_valid_mask_in_bounds_rule():
    flow = np.zeros((32, 32, 2), np.float32)
    flow[..., 0], flow[..., 1] = 2.5, 1.7
    m = valid_mask(flow)
    assert m[:31, :30].all() and not m[31:].any() and not m[:, 30:].any()
    ones = np.zeros((10, 10, 2))
    ones[..., 0] = 2
    assert valid_mask(ones)[:, :8].all() and not valid_mask(ones)[:, 8:].any()
    ones[..., 0] = -1.5
    assert not valid_mask(ones)[:, :2].any() and valid_mask(ones)[:, 2:].all()
    small = np.zeros((3, 4, 2))
    small[..., 0] = 0.6
    assert valid_mask(small).all()


def test_warp_integer_shift_and_reference_fill():
    rng = np.random.default_rng(2)
    img = rng.random((20, 24, 2))
    fill = np.full_like(img, -1.0)
    flow = np.zeros((20, 24, 2), np.float32)
    flow[..., 0], flow[..., 1] = 3, -2
    out = warp_frame(img, flow, fill, "cubic")
    assert np.allclose(out[2:, :21], img[:-2, 3:])
    assert np.all(out[:2] == -1) and np.all(out[:, 21:] == -1)
    assert np.allclose(warp_frame(img, flow, fill, "linear")[2:, :21], img[:-2, 3:])


def test_warp_follows_backward_convention():
    # content moved by +d: the flow w = +d brings it back
    rng = np.random.default_rng(3)
    ref = ndi.gaussian_filter(rng.random((40, 40)), 2)
    moved = ndi.shift(ref, (1.5, -2.25), order=3, mode="nearest")
    flow = np.zeros((40, 40, 2), np.float32)
    flow[..., 0], flow[..., 1] = -2.25, 1.5
    back = warp_frame(moved[..., None], flow, ref[..., None], "cubic")[..., 0]
    assert np.abs(back - ref)[6:-6, 6:-6].max() < 5e-3


# -- displacement -----------------------------------------------------------

def _textured(n, seed=0):
    rng = np.random.default_rng(seed)
    base = ndi.gaussian_filter(rng.standard_normal((n + 40, n + 40)), 2.0)
    return (base - base.min()) / np.ptp(base)


@pytest.mark.parametrize("min_level", [0, 4])
def test_pure_subpixel_shift_recovered(min_level):
    base = _textured(96)
    fixed = ndi.gaussian_filter(base[20:-20, 20:-20], 1)
    shifted = ndi.gaussian_filter(ndi.shift(base, (0.6, -1.35), order=3, mode="nearest")[20:-20, 20:-20], 1)
    w = get_displacement(fixed, shifted, FlowParams(min_level=min_level))
    inner = (slice(15, -15), slice(15, -15))
    assert abs(w[..., 0][inner].mean() - (-1.35)) < 0.05
    assert abs(w[..., 1][inner].mean() - 0.6) < 0.05
    assert np.isfinite(w).all()


def test_multichannel_weights_select_the_informative_channel():
    base = _textured(80, 4)
    fixed = np.stack([base[20:-20, 20:-20], np.full((80, 80), 0.5)], -1)
    moved_base = ndi.shift(base, (1.0, 0.5), order=3, mode="nearest")[20:-20, 20:-20]
    moving = np.stack([moved_base, np.random.default_rng(0).random((80, 80))], -1)  # channel 2: noise
    good = get_displacement(fixed, moving, FlowParams(min_level=2, weights=(1.0, 0.0)))
    inner = (slice(12, -12), slice(12, -12))
    assert abs(good[..., 0][inner].mean() - 0.5) < 0.1 and abs(good[..., 1][inner].mean() - 1.0) < 0.1


# -- policies: the compiled CPU forms against their definitions ---------------

@pytest.mark.parametrize("shape", [(17, 23), (1, 9), (8, 1), (1, 1)])
def test_compiled_mask_and_statistics_follow_the_policy(shape):
    h, w = shape
    rng = np.random.default_rng(h * 31 + w)
    flow = rng.uniform(-4, 4, (h, w, 2)).astype(np.float32)
    flow[0, -1] = np.nextafter(np.float32(1.0), np.float32(0)), 0.0  # x + u just below W: valid
    flow[-1, 0] = 0.0, 1.0  # y + v == H: not valid
    valid = np.empty((h, w), bool)
    stats = np.empty(len(policy.STAT_NAMES))
    mask_and_statistics(flow, valid, stats)
    assert np.array_equal(valid, policy.valid_mask(flow)) and not valid[-1, 0]
    assert valid[0, -1] or (h, w) == (1, 1)
    assert np.allclose(stats, policy.flow_statistics(flow), rtol=1e-12, atol=1e-12)


def test_integer_output_is_rounded_and_clipped_by_the_policy():
    vals = np.array([-70000.5, -32768.5, -2.5, -1.5, -0.5, 0.49999997, 0.5, 1.5, 2.5, 254.5, 255.5, 32767.5,
                     65535.4, 65535.5, 1e6])
    frame = vals.reshape(1, -1, 1)
    flow = np.zeros(frame.shape[:2] + (2,), np.float32)
    for dt in (np.uint8, np.int16, np.uint16, np.int32):
        for method in ("cubic", "linear"):
            out = warp_into(frame, flow, frame, np.empty(frame.shape, dt), method)
            assert np.array_equal(out, np.clip(np.rint(frame), *policy.integer_range(dt)).astype(dt)), (dt, method)
    assert policy.integer_range(np.float32) is None


def test_pyramid_alpha_schedule_is_the_policy():
    for lv in pyramid_levels(300, 200, 0.8, 100, 3):
        assert lv.alpha_scale == policy.alpha_scale(lv.index, 3, 0.8)
        assert policy.level_alpha((1.5, 2.0), lv) == (1.5 * lv.alpha_scale, 2.0 * lv.alpha_scale)
    assert not policy.median_applies(5, 40) and policy.median_applies(6, 6)


# -- the engine interface ---------------------------------------------------

def test_cpu_and_gpu_engines_implement_the_engine_protocol():
    from frkit.engine import CpuEngine, Engine
    from frkit.gpu.engine import GpuEngine  # importable without CuPy

    methods = [n for n, v in vars(Engine).items()
               if inspect.isfunction(v) and (not n.startswith("_") or n in ("__enter__", "__exit__"))]
    assert {"prepare", "preprocess", "flows", "warp_output", "warp_frames", "warp_planar", "to_host",
            "synchronize", "describe", "close", "preferred_chunk"} <= set(methods)

    def params(fn):
        return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]

    for cls in (CpuEngine, GpuEngine):
        for name in methods:
            assert params(getattr(cls, name)) == params(getattr(Engine, name)), (cls.__name__, name)
    with CpuEngine(1) as cpu:
        gpu = GpuEngine(SimpleNamespace(xp=np))
        for engine in (cpu, gpu):
            for attr in Engine.__annotations__:
                assert hasattr(engine, attr), (type(engine).__name__, attr)
        assert cpu.preferred_chunk((512, 512, 1)) == 4

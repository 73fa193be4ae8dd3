"""The GPU code on the CPU: the CUDA kernels compiled for the host, checked piece
by piece against the CPU path and a numpy red-black oracle, and the GPU engine
end to end. (The same source runs on the GPU in test_gpu_cuda.py.)"""

import os
import re
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest
from scipy import ndimage as ndi

from frkit.compensate import compensate_recording
from frkit.options import COMPENSATE, resolve
from frkit.engine import CpuEngine
from frkit.flow import kernels as K
from frkit.flow import policy
from frkit.flow.displacement import ReferencePyramid, resize, warp
from frkit.flow.params import FlowParams
from frkit.flow.warp import valid_mask, warp_frame
from frkit.gpu.backend import HostBackend, host_compiler
from frkit.gpu.batchflow import BatchPyramid
from frkit.gpu.source import KERNELS_CU, cuda_source, host_source
from frkit.io import open_video
from frkit.preprocess import Preprocessor
from frkit.synth import MotionError, SyntheticSession

from rb_numpy import rb_level

pytestmark = pytest.mark.skipif(host_compiler() is None, reason="needs a C++ compiler")


@pytest.fixture(scope="module")
def bk():
    return HostBackend()


def rng_img(seed, shape, sigma=1.5):
    r = np.random.default_rng(seed)
    return ndi.gaussian_filter(r.random(shape), sigma).astype(np.float32)


def test_kernel_source_compiles_for_the_gpu(tmp_path):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc not installed")
    src = tmp_path / "k.cu"
    src.write_text(cuda_source())
    p = subprocess.run([nvcc, "-arch=sm_90", "-ptx", str(src), "-o", str(tmp_path / "k.ptx")],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


def test_kernel_constants_come_from_the_policy():
    src = host_source()
    for name, value in policy.CUDA_CONSTANTS.items():
        (literal,) = re.findall(rf"#define {name} \(([^)]*)f\)", src)
        assert np.float32(literal) == np.float32(value), name
    # kernels.cu itself defines none of them and hard-codes no exponent literal
    body = KERNELS_CU.read_text()
    assert not re.search(r"#define (KEYS_A|EPS_\w+)", body) and not re.search(r"\de-?\d+f", body)


def test_both_level_drivers_take_the_schedule_from_the_policy(bk, monkeypatch):
    import frkit.flow.displacement as D
    import frkit.gpu.batchflow as BF

    calls = {}
    for mod, key in ((D, "cpu"), (BF, "gpu")):
        for fn in ("level_alpha", "median_applies"):
            def spy(*args, _log=calls.setdefault((key, fn), []), _fn=getattr(policy, fn)):
                _log.append(args)
                return _fn(*args)
            monkeypatch.setattr(mod, fn, spy)
    img = rng_img(20, (1, 30, 40))
    p = FlowParams(min_level=1, alpha=(1.5, 2.5), iterations=3)
    ReferencePyramid(img, p).flow(img)
    BatchPyramid(bk, img, p).flows(img[None])
    levels = ReferencePyramid(img, p).levels
    assert calls["cpu", "median_applies"] == calls["gpu", "median_applies"] == [(lv.rows, lv.cols) for lv in levels]
    assert calls["cpu", "level_alpha"] == calls["gpu", "level_alpha"] == [((1.5, 2.5), lv) for lv in levels]


@pytest.mark.parametrize("method", ["cubic", "linear"])
def test_integer_output_rounding_is_the_policy_on_both_engines(bk, method):
    from frkit.gpu.engine import GpuEngine

    vals = np.array([-70000.5, -32768.5, -2.5, -1.5, -0.5, 0.49999997, 0.5, 1.5, 2.5, 254.5, 255.5, 32767.5,
                     65535.4, 65535.5, 1e6], np.float32)
    frames = np.stack([vals.reshape(1, -1, 1), -vals.reshape(1, -1, 1)])
    zero = np.zeros((1, vals.size, 2), np.float32)
    for dt in (np.uint8, np.int16, np.uint16):
        want = np.clip(np.rint(frames), *policy.integer_range(dt)).astype(dt)
        for engine in (CpuEngine(1), GpuEngine(bk)):
            got = engine.warp_frames(frames, zero, frames[0], method, dt)
            assert got.dtype == dt and np.array_equal(got, want), (type(engine).__name__, dt)


def test_resize_kernels_match_the_cpu_resize(bk):
    img = rng_img(0, (2, 57, 83))
    bp = BatchPyramid(bk, img[:1], FlowParams())
    for rows, cols in ((23, 34), (9, 14), (57, 83)):
        got = bp._resize(img, bp._device_tables(57, 83, rows, cols), rows, cols)
        want = resize(img, rows, cols)
        assert np.allclose(got, want, atol=2e-5), (rows, cols)


def test_gaussian_kernels_match_the_preprocessor(bk):
    from frkit.gpu.engine import GpuEngine

    frames = (np.random.default_rng(1).random((3, 40, 50, 2)) * 1000).astype(np.uint16)
    pre = Preprocessor.from_reference(frames[0].astype(np.float64), [[1, 1, 0.1], [2, 1.5, 0.1]], "separate")
    got = GpuEngine(bk).preprocess(frames, pre)
    for i in range(3):
        assert np.allclose(got[i], pre.spatial(frames[i]), atol=1e-5)


def test_level_warp_matches_the_cpu_warp(bk):
    f2 = rng_img(2, (2, 1, 30, 40))
    f1 = rng_img(3, (1, 30, 40))
    u = (np.random.default_rng(4).random((2, 30, 40)) * 6 - 3).astype(np.float32)
    v = (np.random.default_rng(5).random((2, 30, 40)) * 6 - 3).astype(np.float32)
    out = np.empty_like(f2)
    for cubic in (1, 0):
        bk.launch("warp_level", 2 * 30 * 40, f2, u, v, f1, out, 2, 1, 30, 40, 0.5, 2.0, cubic)
        for b in range(2):
            want = warp(f2[b], u[b].astype(np.float64), v[b].astype(np.float64), f1, bool(cubic), 0.5, 2.0)
            assert np.allclose(out[b], want, atol=2e-5)


def test_tensor_kernel_matches_the_cpu_tensor(bk):
    f1 = rng_img(6, (1, 22, 31))
    f2 = rng_img(7, (3, 1, 22, 31))
    J = np.zeros((3, 1, 6, 24, 33), np.float32)
    bk.launch("tensor_gc", 3 * 22 * 31, f1, f2, J, 3, 1, 22, 31, 1.3, 0.7)
    for b in range(3):
        want = np.empty((6, 33, 24))
        K.motion_tensor_gc(f1[0], f2[b, 0], 1.3, 0.7, want)
        want = want.transpose(0, 2, 1)
        for c in range(6):  # float32 against float64: relative to each component's scale
            assert np.abs(J[b, 0, c] - want[c]).max() <= 2e-5 * np.abs(want[c]).max(), c


def test_median_kernel_matches_scipy_mirror(bk):
    d = np.pad(np.random.default_rng(8).standard_normal((2, 13, 17)).astype(np.float32), ((0, 0), (1, 1), (1, 1)))
    U = np.ones((2, 13, 17), np.float32)
    bk.launch("median_add", 2 * 13 * 17, d, U, 2, 13, 17, 1)
    for b in range(2):
        assert np.allclose(U[b], 1 + ndi.median_filter(d[b, 1:-1, 1:-1], 5, mode="mirror"), atol=1e-6)


@pytest.mark.parametrize("a_s,k,lag", [(1.0, 1, 5), (1.0, 2, 3), (0.6, 1, 2)])
def test_red_black_kernels_match_the_numpy_oracle(bk, a_s, k, lag):
    rng = np.random.default_rng(int(a_s * 10) + k + lag)
    B, R, C = 2, 9, 12
    g = rng.standard_normal((3, B, k, R, C)).astype(np.float32)
    J = np.zeros((B, k, 6, R + 2, C + 2), np.float32)
    a, b, t = g
    for i, comp in enumerate((a * a + 0.1, b * b + 0.1, t * t, a * b, a * t, b * t)):
        J[:, :, i, 1:-1, 1:-1] = comp
    U = np.pad(rng.standard_normal((B, R, C)).astype(np.float32) * 0.3, ((0, 0), (1, 1), (1, 1)), mode="edge")
    V = np.pad(rng.standard_normal((B, R, C)).astype(np.float32) * 0.3, ((0, 0), (1, 1), (1, 1)), mode="edge")
    wk = np.full(k, 1.0 / k, np.float32)
    ad = np.array([0.45, 0.6][:k], np.float32)
    params = FlowParams(alpha=(1.5, 2.0), iterations=8, update_lag=lag, a_smooth=a_s, a_data=tuple(ad),
                        weights=tuple(wk)).for_channels(k)
    bp = BatchPyramid(bk, np.zeros((k, 16, 16), np.float32), params)

    class Level:
        rows, cols, h_col, h_row, alpha_scale = R, C, 1.3, 0.9, 1.0

    du, dv = bp._solve(J, np.ascontiguousarray(U[:, 1:-1, 1:-1]), np.ascontiguousarray(V[:, 1:-1, 1:-1]), Level)
    ou, ov = rb_level(J, wk, ad, U, V, 1.5, 2.0, 1.3, 0.9, 8, lag, a_s)
    inner = (slice(None), slice(1, -1), slice(1, -1))
    assert np.allclose(du[inner], ou[inner], rtol=1e-4, atol=1e-5)
    assert np.allclose(dv[inner], ov[inner], rtol=1e-4, atol=1e-5)


def test_output_warp_kernel_matches_the_cpu_and_the_mask_rule(bk):
    from frkit.gpu.engine import GpuEngine

    frames = (np.random.default_rng(9).random((2, 20, 24, 2)) * 60000).astype(np.uint16)
    flows = np.random.default_rng(10).uniform(-4, 4, (2, 20, 24, 2)).astype(np.float32)
    flows[0, 5, 23, 0] = np.nextafter(np.float32(1.0), np.float32(0))  # x + u just below W
    fill = np.full((20, 24, 2), 7.0)
    reg, valid, stats = GpuEngine(bk).warp_output(frames, flows, fill, "cubic", np.uint16)
    for i in range(2):
        want = warp_frame(frames[i], flows[i], fill, "cubic")
        assert np.abs(reg[i].astype(float) - np.clip(np.rint(want), 0, 65535)).max() <= 2
        assert np.array_equal(valid[i], valid_mask(flows[i]))
    assert valid[0, 5, 23]
    # the statistics (mean_u, mean_v included) are the compiled CPU kernel's, one column per STAT_NAMES
    _, _, cpu_stats = CpuEngine(1).warp_output(frames, flows, fill, "cubic", np.uint16)
    assert stats.shape == (2, len(policy.STAT_NAMES)) and np.allclose(stats, cpu_stats, rtol=1e-9, atol=1e-12)


def test_batch_flows_match_the_cpu_solver(bk):
    base = ndi.gaussian_filter(np.random.default_rng(11).standard_normal((140, 140)), 2.0)
    base = (base - base.min()) / np.ptp(base)
    fixed = ndi.gaussian_filter(base[20:-20, 20:-20], 1).astype(np.float32)
    shifts = [(0.6, -1.35), (-1.2, 0.8)]
    movs = np.stack([ndi.gaussian_filter(ndi.shift(base, s, order=3, mode="nearest")[20:-20, 20:-20], 1)
                     for s in shifts]).astype(np.float32)
    for ml in (0, 3):
        p = FlowParams(min_level=ml)
        g = BatchPyramid(bk, fixed[None], p).flows(movs[:, None])
        cpu = ReferencePyramid(fixed[None], p)
        c = np.stack([cpu.flow(m[None]) for m in movs])
        inner = (slice(None), slice(None), slice(15, -15), slice(15, -15))
        assert np.sqrt(((g - c)[inner] ** 2).sum(1).mean()) < 0.03
        for i, (dy, dx) in enumerate(shifts):
            assert abs(g[i, 0][inner[2:]].mean() - dx) < 0.05 and abs(g[i, 1][inner[2:]].mean() - dy) < 0.05


@pytest.fixture(scope="module")
def engines_on_one_recording(tmp_path_factory):
    from frkit.gpu.engine import make_host_engine

    s = SyntheticSession(96, 96, 40, seed=3)
    d = tmp_path_factory.mktemp("gpu")
    with h5py.File(d / "r.h5", "w") as f:
        f["mov"] = s.frames()[..., 0]
    out = {}
    for name, engine in (("cpu", CpuEngine(2)), ("gpu", make_host_engine(16))):
        with open_video(d / "r.h5") as r:
            compensate_recording(r, d / name, resolve(COMPENSATE, quality="balanced", save_w=True), engine)
        with h5py.File(d / name / "w.h5") as f:
            out[name] = np.stack([f["u"][:], f["v"][:]], -1)
    return s, d, out


def test_gpu_engine_is_as_accurate_as_the_cpu(engines_on_one_recording):
    s, _, flows = engines_on_one_recording
    res = {}
    for name, fl in flows.items():
        e = MotionError(16)
        for t in range(s.n_frames):
            e.add(fl[t], s.true_flow(t))
        res[name] = e.residual_rms
    assert res["gpu"] <= 1.05 * res["cpu"], res
    diff = np.sqrt(((flows["cpu"] - flows["gpu"])[:, 16:-16, 16:-16] ** 2).sum(-1).mean())
    assert diff < 0.05, diff


def test_gpu_engine_writes_the_same_contract(engines_on_one_recording):
    _, d, flows = engines_on_one_recording
    for name in ("compensated.HDF5", "idx.hdf", "statistics.npz", "reference_frame.npy", "compensate.json"):
        assert (d / "gpu" / name).is_file()
    with h5py.File(d / "gpu" / "idx.hdf") as f:
        idx = f["idx"][:]
    for t in range(len(idx)):
        assert np.array_equal(idx[t] == 255, valid_mask(flows["gpu"][t]))
    with h5py.File(d / "gpu" / "compensated.HDF5") as f:
        assert f["ch1"].dtype == np.uint16 and f["ch1"].shape == (40, 96, 96)


def test_chunks_that_do_not_fit_are_split(bk):
    from frkit.gpu.engine import GpuEngine

    class OutOfMemoryError(Exception):
        pass

    class Tight(HostBackend):
        """A host backend that runs out of 'device memory' above 3 frames."""

        def __init__(self):
            super().__init__()
            self.calls = []

        def launch(self, name, work, *args):
            if name == "tensor_gc" and args[3] > 3:  # B
                raise OutOfMemoryError("out of memory allocating tensor")
            self.calls.append(name)
            super().launch(name, work, *args)

    tight = Tight()
    eng = GpuEngine(tight)
    img = rng_img(12, (1, 40, 40))
    pyr = eng.prepare(img, FlowParams(min_level=2))
    proc = np.stack([rng_img(13 + i, (1, 40, 40)) for i in range(7)])
    got = eng.flows(pyr, proc)
    whole = GpuEngine(HostBackend()).flows(GpuEngine(HostBackend()).prepare(img, FlowParams(min_level=2)), proc)
    assert got.shape == (7, 40, 40, 2) and np.allclose(got, whole, atol=1e-6)
    assert tight.calls.count("median_add") > 0  # it did run, in pieces of at most 3 frames


def test_device_cuda_fails_at_once_without_cupy_or_gpu(tmp_path):
    have = True
    try:
        import cupy  # noqa: F401
        have = cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        have = False
    if have:
        pytest.skip("a GPU is available")
    with h5py.File(tmp_path / "r.h5", "w") as f:
        f["mov"] = np.zeros((4, 16, 16), np.uint16)
    exe = os.path.join(os.path.dirname(sys.executable), "fr-compensate")
    p = subprocess.run([exe, str(tmp_path / "r.h5"), "-o", str(tmp_path / "o"), "--device", "cuda"],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "--device cuda" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()

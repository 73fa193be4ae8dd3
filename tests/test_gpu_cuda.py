"""The CUDA engine on a real GPU against the CPU path (skipped without one)."""

import h5py
import numpy as np
import pytest

from frkit.compensate import compensate_recording
from frkit.options import COMPENSATE, resolve
from frkit.engine import CpuEngine
from frkit.flow.warp import valid_mask
from frkit.io import open_video
from frkit.synth import MotionError, SyntheticSession


def _gpu_available():
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not _gpu_available(), reason="needs CuPy and an NVIDIA GPU")]


def test_kernels_agree_with_their_host_emulation():
    from frkit.flow.params import FlowParams
    from frkit.gpu.backend import CupyBackend, HostBackend
    from frkit.gpu.batchflow import BatchPyramid

    s = SyntheticSession(64, 80, 4, seed=2, photons=None)
    frames = s.frames(dtype=np.float32)[..., 0]
    frames = (frames - frames.min()) / np.ptp(frames)
    for ml in (0, 2):
        p = FlowParams(min_level=ml)
        host = BatchPyramid(HostBackend(), frames[0][None], p).flows(frames[:, None])
        dev_bk = CupyBackend(0)
        dev = dev_bk.to_host(BatchPyramid(dev_bk, frames[0][None], p).flows(dev_bk.xp.asarray(frames[:, None])))
        assert np.sqrt(((host - dev) ** 2).sum(1).mean()) < 1e-3


@pytest.mark.parametrize("quality", ["balanced", "quality"])
def test_cuda_engine_is_as_accurate_as_the_cpu(tmp_path, quality):
    from frkit.gpu import make_cuda_engine

    s = SyntheticSession(128, 128, 60, seed=3)
    with h5py.File(tmp_path / "r.h5", "w") as f:
        f["mov"] = s.frames()[..., 0]
    flows = {}
    for name, engine in (("cpu", CpuEngine()), ("cuda", make_cuda_engine("cuda"))):
        with open_video(tmp_path / "r.h5") as r:
            compensate_recording(r, tmp_path / name, resolve(COMPENSATE, quality=quality, save_w=True), engine)
        with h5py.File(tmp_path / name / "w.h5") as f:
            flows[name] = np.stack([f["u"][:], f["v"][:]], -1)
    res = {}
    for name, fl in flows.items():
        e = MotionError(16)
        for t in range(s.n_frames):
            e.add(fl[t], s.true_flow(t))
        res[name] = e.residual_rms
    assert res["cuda"] <= 1.05 * res["cpu"], res
    assert np.sqrt(((flows["cpu"] - flows["cuda"])[:, 16:-16, 16:-16] ** 2).sum(-1).mean()) < 0.05
    with h5py.File(tmp_path / "cuda" / "idx.hdf") as f:
        idx = f["idx"][:]
    assert all(np.array_equal(idx[t] == 255, valid_mask(flows["cuda"][t])) for t in range(len(idx)))


def test_large_frames_do_not_run_out_of_memory(tmp_path):
    from frkit.gpu import make_cuda_engine

    s = SyntheticSession(1024, 1024, 8, seed=4)
    with h5py.File(tmp_path / "big.h5", "w") as f:
        f["mov"] = s.frames()[..., 0]
    engine = make_cuda_engine("cuda")
    engine.max_chunk = 4096  # let the memory estimate and the OOM split decide
    with open_video(tmp_path / "big.h5") as r:
        compensate_recording(r, tmp_path / "o", resolve(COMPENSATE, quality="quality", reference_frames=(0, 1)), engine)
    with h5py.File(tmp_path / "o" / "compensated.HDF5") as f:
        assert f["ch1"].shape == (8, 1024, 1024)

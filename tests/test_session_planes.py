"""Sessions by planes: each plane of a multi-plane ScanImage recording is its own recording (``planes``),
aligned to the center recording's same plane, with its own final_results/plane<K>/."""

import json
import sys

import h5py
import numpy as np
import pytest
import tifffile

from frkit.session.config import load_config
from frkit.session.planes import PlaneRecording, plane_centers
from frkit.synth import SyntheticSession

from conftest import ENV, run_tool as tool
from si_files import write_scanimage

H, W, T = 32, 40, 8
#: two planes, one frame per slice, one channel, no flyback (ScanImage 2020 keys)
SI_2PLANES = ("SI.hChannels.channelSave = 1\nSI.hStackManager.enable = true\nSI.hStackManager.stackMode = 'fast'\n"
              "SI.hStackManager.numSlices = 2\nSI.hStackManager.actualNumSlices = 2\n"
              "SI.hStackManager.framesPerSlice = 1\nSI.hStackManager.numFramesPerVolume = 2\n"
              "SI.hStackManager.numFramesPerVolumeWithFlyback = 2\nSI.hFastZ.enable = true\n")


def _plane_frames(scene, motion):
    """One field of view (``scene``: one per plane, shared by the recordings) under its own motion."""
    s = SyntheticSession(H, W, T, seed=scene, shift_px=1.0, warp_px=0.3, motion_seed=motion, margin=16)
    return np.clip(s.frames()[..., 0], 0, 65535).astype(np.uint16)


def _write(path, planes):
    """Planes (each (T, H, W)) interleaved in ScanImage's page order: volume by volume, plane by plane."""
    write_scanimage(path, np.stack(planes, axis=1).reshape(-1, H, W), SI_2PLANES)


def _session(root, planes='"all"', extra=""):
    root.mkdir(parents=True, exist_ok=True)
    data = {}
    for motion, name in enumerate("ab"):
        data[name] = [_plane_frames(scene, motion + 1) for scene in (11, 17)]
        _write(root / f"{name}.tif", data[name])
    cfg = root / "session.toml"
    cfg.write_text(f'root = "."\npattern = "*.tif"\nplanes = {planes}\nstage1_quality_setting = "fast"\n{extra}'
                   '[flow_options]\niterations = 3\n')
    return cfg, data


def _corr(a, b):
    a, b = a.astype(float).ravel(), b.astype(float).ravel()
    return float(np.corrcoef(a, b)[0, 1])


def test_planes_expand_to_one_recording_per_plane(tmp_path):
    cfg, _ = _session(tmp_path / "s")
    recs = load_config(cfg).recordings()
    assert [r.stem for r in recs] == ["a_plane0", "a_plane1", "b_plane0", "b_plane1"]
    assert all(isinstance(r, PlaneRecording) for r in recs)
    cfg.write_text(cfg.read_text().replace('planes = "all"', "planes = [1]"))
    assert [r.stem for r in load_config(cfg).recordings()] == ["a_plane1", "b_plane1"]
    cfg.write_text(cfg.read_text().replace("planes = [1]", 'planes = "all"\ncenter = "b.tif"'))
    c = load_config(cfg)
    recs = c.recordings()
    center = c.center_index(recs)
    assert recs[center].stem == "b_plane0"  # the center is named by its file; each plane aligns to its plane
    assert [recs[i].stem for i in plane_centers(recs, center)] == ["b_plane0", "b_plane1", "b_plane0", "b_plane1"]


def test_session_by_planes_through_make(tmp_path):
    root = tmp_path / "s"
    cfg, data = _session(root)
    p = tool(sys.executable, "-m", "frkit.session", "plan", cfg)
    assert p.returncode == 0, p.stderr
    mk = p.stdout.strip()
    text = open(mk).read()
    out, final = root / "compensated_outputs", root / "final_results"
    # each plane of b is aligned to the same plane of the center (a: the middle of two)
    for k in (0, 1):
        assert f"fr-align {(out / f'a_plane{k}' / 'temporal_average.npy').resolve()} " \
               f"{(out / f'b_plane{k}' / 'temporal_average.npy').resolve()}" in text
        assert f"--plane {k}" in text
        assert f"-o {(final / f'plane{k}').resolve()}" in text  # each plane's own mask
    # plane 1's stage 3 (plane 0 is the same rules; running one plane keeps the test short)
    k = 1
    targets = [final / "plane1" / "final_valid_idx.npz"] + [final / "plane1" / f"aligned_{n}_plane1.tif" for n in "ab"]
    res = tool("make", "--no-print-directory", "-f", mk, *targets)
    assert res.returncode == 0, res.stdout + res.stderr
    assert not (out / "a_plane0" / "compensate.json").exists()  # plane 0 is a recording of its own
    for name in ("a", "b"):
        folder = out / f"{name}_plane{k}"
        rec = json.loads((folder / "compensate.json").read_text())
        assert rec["result_parameters"]["plane"] == k
        with h5py.File(folder / "compensated.HDF5") as f:
            video = f["ch1"][...]
        assert video.shape[0] == T and video.shape[1:3] == (H, W)
        mean = video.reshape(T, H, W).mean(0)
        # the folder holds its own plane (the planes are different fields of view)
        assert _corr(mean, data[name][k].mean(0)) > _corr(mean, data[name][1 - k].mean(0)) + 0.3
        with np.load(folder / "w_to_reference.npz") as w:  # a plane meets its own field of view
            assert float(w["alignment_correlation"]) > 0.8
        aligned = final / f"plane{k}" / f"aligned_{name}_plane{k}.tif"
        assert tifffile.imread(aligned).shape[0] == T
    with np.load(final / f"plane{k}" / "final_valid_idx.npz") as z:
        assert z["final_valid"].shape == (H, W) and z["final_valid"].mean() > 0.5
        assert z["temporal_averages"].shape[0] == 2  # this plane's two recordings only
        assert str(z["center_file"]) == f"a_plane{k}"
    assert not (final / "final_valid_idx.npz").exists()  # no mask mixes the planes
    assert tool("make", "-q", "-f", mk, *targets).returncode == 0  # up to date
    assert tool(sys.executable, "-m", "frkit.session", "plan", cfg).returncode == 0
    assert (out / "b_plane1" / "compensate.json").is_file()  # the plane's record still matches (plane = 1)
    assert tool("make", "-q", "-f", mk, *targets).returncode == 0
    assert "qc: " + str((out / "a_plane0" / "qc.json").resolve()) in text  # per-plane QC, no session report
    report = tool("fr-qc", "--config", cfg)  # one session report cannot cover separate fields of view
    assert report.returncode == 2 and report.stderr.count("\n") == 1 and "planes" in report.stderr
    lst = tool(sys.executable, "-m", "frkit.session", "list", cfg)
    assert lst.returncode == 0 and "b_plane1" in lst.stdout and "--array=1-4" in lst.stdout
    # the session's own stage-3 loop (fr-mask --config) makes the same per-plane mask as the Make rule
    cfg.write_text(cfg.read_text().replace('planes = "all"', "planes = [1]"))
    direct = tool("fr-mask", "--config", cfg, "-o", tmp_path / "direct", "-q")
    assert direct.returncode == 0, direct.stderr
    with np.load(tmp_path / "direct" / "plane1" / "final_valid_idx.npz") as a, \
            np.load(final / "plane1" / "final_valid_idx.npz") as b:
        assert np.array_equal(a["final_valid"], b["final_valid"]) and str(a["center_file"]) == "a_plane1"
    # and fr-align --config aligns each plane to the center's same plane (another plane would fail the alignment)
    aligned = tool("fr-align", "--config", cfg, "-q")
    assert aligned.returncode == 0, aligned.stderr
    with np.load(out / "b_plane1" / "w_to_reference.npz") as w:
        assert float(w["alignment_correlation"]) > 0.8


def test_array_task_runs_one_plane(tmp_path):
    cfg, data = _session(tmp_path / "s")
    env = dict(ENV, SLURM_ARRAY_TASK_ID="4")  # tasks: a_plane0, a_plane1, b_plane0, b_plane1
    p = tool("fr-compensate", "--config", cfg, "--array-task", "-q", env=env)
    assert p.returncode == 0, p.stderr
    out = tmp_path / "s" / "compensated_outputs"
    assert [d.name for d in out.iterdir() if not d.name.startswith(".")] == ["b_plane1"]
    assert json.loads((out / "b_plane1" / "compensate.json").read_text())["result_parameters"]["plane"] == 1
    with h5py.File(out / "b_plane1" / "compensated.HDF5") as f:
        mean = f["ch1"][...].reshape(T, H, W).mean(0)
    assert _corr(mean, data["b"][1].mean(0)) > _corr(mean, data["b"][0].mean(0)) + 0.3


@pytest.mark.parametrize("planes, extra, message", [
    ("[2]", "", "plane 2 is out of range"),
    ('"every"', "", "planes in"),
    ('"all"', "plane = 1\n", "not both"),
])
def test_bad_planes(tmp_path, planes, extra, message):
    cfg, _ = _session(tmp_path / "s", planes, extra)
    p = tool(sys.executable, "-m", "frkit.session", "plan", cfg)
    assert p.returncode == 2 and p.stderr.count("\n") == 1, p.stderr
    assert message in p.stderr
    assert not (tmp_path / "s" / "compensated_outputs" / "a_plane0").exists()


def test_planes_on_a_plain_tiff_is_refused(tmp_path):
    root = tmp_path / "s"
    root.mkdir()
    tifffile.imwrite(root / "plain.tif", _plane_frames(3, 3), photometric="minisblack")
    cfg = root / "session.toml"
    cfg.write_text('root = "."\npattern = "*.tif"\nplanes = "all"\n')
    p = tool(sys.executable, "-m", "frkit.session", "plan", cfg)
    assert p.returncode == 2 and p.stderr.count("\n") == 1, p.stderr
    assert "plain.tif" in p.stderr and "applies to ScanImage" in p.stderr
